//! The Debian Mosquitto command-line clients (`mosquitto-clients` 2.0), MQTT 3.1.1 and 5,
//! against a secure broker. Both exit with the CONNACK code of a refused login (4 for
//! 3.1.1, 0x86 = 134 for 5) and name it on stderr.

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::json;
use tokio::process::Command;

use super::{ADMIN_PASSWORD, password, secure_broker, secure_broker_with, secure_config, stored};
use crate::support::{TestBroker, WAIT};

/// The protocol versions, as `-V` names them.
const VERSIONS: [&str; 2] = ["mqttv311", "mqttv5"];

fn require(name: &str) {
    let found = std::process::Command::new(name)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{name}` is not installed: run `apt-get install mosquitto-clients` (.ci/run does)"
    );
}

/// `name` against `broker` with `args`, killed if it outlives the test.
fn tool(name: &str, broker: &TestBroker, args: &[&str]) -> Command {
    require(name);
    let mut command = Command::new(name);
    command
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .args(["-h", "127.0.0.1", "-p", &broker.mqtt.port().to_string()])
        .args(args);
    command
}

/// Runs `name` to its end, bounded by twice [`WAIT`] (`mosquitto_sub` is given `-W`).
async fn run(name: &str, broker: &TestBroker, args: &[&str]) -> Output {
    tokio::time::timeout(2 * WAIT, tool(name, broker, args).output())
        .await
        .unwrap_or_else(|_| panic!("{name} {args:?} did not exit"))
        .expect("the client runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits until the broker holds `n` subscriptions (a client finished subscribing).
async fn subscriptions_reach(broker: &TestBroker, n: usize) {
    tokio::time::timeout(WAIT, async {
        while broker.broker.core().stats().subscriptions < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the subscriber never subscribed");
}

/// No credentials, a wrong password, an unknown user, `_ADMIN` with a user's password, a
/// user name without a password: CONNACK 4 / 0x86, for both clients and both versions.
#[tokio::test]
async fn refused_logins_exit_with_the_connack_code() {
    let broker = secure_broker().await;
    let cases = [
        (
            "mosquitto_pub",
            ["-t", "sensors/ann/t", "-m", "1", "-q", "1", "-r"].as_slice(),
        ),
        (
            "mosquitto_sub",
            ["-t", "sensors/ann/#", "-W", "10"].as_slice(),
        ),
    ];
    for ((name, action), version) in cases.into_iter().flat_map(|c| VERSIONS.map(|v| (c, v))) {
        for login in [
            &[][..],
            &["-u", "ann", "-P", "wrong-pw"],
            &["-u", "nobody", "-P", "pw-ann"],
            &["-u", "_ADMIN", "-P", "pw-ann"],
            &["-u", "ann"],
        ] {
            let mut args = vec!["-V", version];
            args.extend_from_slice(action);
            args.extend_from_slice(login);
            let out = run(name, &broker, &args).await;
            let stderr = text(&out.stderr);
            // libmosquitto reports an MQTT 5 refusal as a protocol error on the next line.
            let (code, says) = match version {
                "mqttv5" => (0x86, "Connection error: Bad User Name or Password\n"),
                _ => (
                    4,
                    "Connection error: Connection Refused: bad user name or password.\n",
                ),
            };
            assert_eq!(out.status.code(), Some(code), "{name} {args:?}: {stderr}");
            assert!(stderr.starts_with(says), "{name} {args:?}: {stderr}");
        }
    }
    assert_eq!(stored(&broker, "/sensors/ann/t").await, None);
}

/// Logins with the right password that are refused all the same: `_ADMIN` over the network
/// when that is disabled (CONNACK 5 / 0x87), and an account locked out after 4 failed
/// logins (5 / 0x8A).
#[tokio::test]
async fn right_passwords_refused_exit_with_not_authorised() {
    let mut config = secure_config();
    config.security.disable_default_admin_network_connections = true;
    config.security.lockout_attempts = 4;
    let broker = secure_broker_with(config).await;
    let publish = |user: &'static str, pw: &'static str, version: &'static str| {
        [
            "-V",
            version,
            "-u",
            user,
            "-P",
            pw,
            "-t",
            "sensors/ann/t",
            "-m",
            "1",
            "-q",
            "1",
        ]
    };
    for _ in 0..4 {
        let out = run(
            "mosquitto_pub",
            &broker,
            &publish("ann", "wrong-pw", "mqttv311"),
        )
        .await;
        assert_eq!(out.status.code(), Some(4), "{out:?}");
    }
    for version in VERSIONS {
        for (user, pw, v5_code, v5_says) in [
            ("_ADMIN", ADMIN_PASSWORD, 0x87, "Not authorized"),
            ("ann", "pw-ann", 0x8A, "Banned"),
        ] {
            let out = run("mosquitto_pub", &broker, &publish(user, pw, version)).await;
            let stderr = text(&out.stderr);
            let (code, says) = match version {
                "mqttv5" => (v5_code, format!("Connection error: {v5_says}\n")),
                _ => (
                    5,
                    "Connection error: Connection Refused: not authorised.\n".to_owned(),
                ),
            };
            assert_eq!(out.status.code(), Some(code), "{user} {version}: {stderr}");
            assert!(stderr.starts_with(&says), "{user} {version}: {stderr}");
        }
    }
    assert_eq!(stored(&broker, "/sensors/ann/t").await, None);
}

/// With the right password a device publishes to its subtree; beyond it (another device's
/// subtree, a room voided by `*` in `eve`'s data, anything for a dashboard that may only
/// watch), 3.1.1 cannot say no: the PUBLISH is acknowledged as usual and dropped. MQTT 5
/// answers PUBACK 0x87, which `mosquitto_pub` reports as a warning (it still exits 0).
/// Nothing refused is stored.
#[tokio::test]
async fn mosquitto_pub_publishes_only_where_allowed() {
    let broker = secure_broker().await;
    for version in VERSIONS {
        let topic = format!("sensors/ann/{version}");
        let pw = password("ann");
        let args = [
            "-V",
            version,
            "-u",
            "ann",
            "-P",
            &pw,
            "-q",
            "1",
            "-r",
            "-t",
            &topic,
            "-m",
            r#"{"ok":true}"#,
        ];
        let out = run("mosquitto_pub", &broker, &args).await;
        assert!(out.status.success(), "{args:?}: {out:?}");
        let path = format!("/{topic}");
        assert_eq!(stored(&broker, &path).await, Some(json!({"ok": true})));

        for (user, topic) in [
            ("ann", "sensors/bob/t"),
            ("eve", "rooms/kitchen/light"),
            ("dash", "sensors/dash/t"),
        ] {
            let topic = format!("{topic}-{version}");
            let pw = password(user);
            let args = [
                "-V", version, "-u", user, "-P", &pw, "-q", "1", "-r", "-t", &topic, "-m", "1",
            ];
            let out = run("mosquitto_pub", &broker, &args).await;
            let stderr = text(&out.stderr);
            assert!(out.status.success(), "{args:?}: {out:?}");
            if version == "mqttv5" {
                // mosquitto_pub prints the PUBACK's reason string on the next line.
                let why = format!("`{user}` may not set `/{topic}`\n");
                assert_eq!(
                    stderr,
                    format!("Warning: Publish 1 failed: Not authorized.\n{why}"),
                    "{args:?}"
                );
            } else {
                assert_eq!(stderr, "", "{args:?}");
            }
            let path = format!("/{topic}");
            assert_eq!(stored(&broker, &path).await, None, "{path} was stored");
        }
    }
}

/// `mosquitto_sub -t '#'` by a device allowed only `sensors/ann/#`, and the like: SUBACK
/// 0x80 (3.1.1) or 0x87 (5); `mosquitto_sub` says every subscription was denied and
/// disconnects (exit status 0).
#[tokio::test]
async fn mosquitto_sub_beyond_the_permissions_is_refused() {
    let broker = secure_broker().await;
    for version in VERSIONS {
        for (user, filter) in [
            ("ann", "#"),
            ("ann", "sensors/#"),
            ("ann", "+/ann/#"),
            ("eve", "rooms/kitchen/#"),
            ("mal", "rooms/+/#"),
        ] {
            let pw = password(user);
            let args = [
                "-V", version, "-u", user, "-P", &pw, "-t", filter, "-d", "-W", "10",
            ];
            let out = run("mosquitto_sub", &broker, &args).await;
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            let code = if version == "mqttv5" { 0x87 } else { 0x80 };
            assert!(
                stdout.contains(&format!("Subscribed (mid: 1): {code}\n")),
                "{args:?}: {stdout}"
            );
            assert_eq!(
                stderr, "All subscription requests were denied.\n",
                "{args:?}"
            );
            assert!(out.status.success(), "{args:?}: {out:?}");
        }
    }
    assert_eq!(broker.broker.core().stats().subscriptions, 0);
}

/// One SUBSCRIBE with a refused and a granted filter: the SUBACK has both codes and only
/// the granted filter's messages arrive.
#[tokio::test]
async fn mosquitto_sub_gets_only_what_it_may() {
    for version in VERSIONS {
        let broker = secure_broker().await;
        let args = [
            "-V",
            version,
            "-u",
            "ann",
            "-P",
            "pw-ann",
            "-t",
            "#",
            "-t",
            "sensors/ann/#",
            "-q",
            "1",
            "-d",
            "-v",
            "-C",
            "1",
            "-W",
            "10",
        ];
        let sub = tool("mosquitto_sub", &broker, &args).spawn().unwrap();
        subscriptions_reach(&broker, 1).await;
        let admin = broker.broker.local_admin_client();
        use pathmq::native::client::{DataApi as _, SetOptions};
        admin
            .set("/sensors/bob/t", json!({"t": 1}), SetOptions::new())
            .await
            .unwrap();
        let topic = format!("sensors/ann/{version}");
        let pub_args = [
            "-V", version, "-u", "ann", "-P", "pw-ann", "-t", &topic, "-m", "hi",
        ];
        let published = run("mosquitto_pub", &broker, &pub_args).await;
        assert!(published.status.success(), "{published:?}");

        let out = tokio::time::timeout(2 * WAIT, sub.wait_with_output())
            .await
            .expect("mosquitto_sub exits")
            .unwrap();
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        let code = if version == "mqttv5" { 0x87 } else { 0x80 };
        assert!(
            stdout.contains(&format!("Subscribed (mid: 1): {code}, 1")),
            "{stdout}"
        );
        let messages: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("sensors/"))
            .collect();
        assert_eq!(messages, [format!("{topic} hi")], "{stdout}");
    }
}
