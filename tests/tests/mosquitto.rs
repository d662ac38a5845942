//! Interop with the real Mosquitto command-line clients (Debian `mosquitto-clients`),
//! including the README's two-minute demo in both directions.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::*;
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

fn tool(name: &str) -> Command {
    let mut command = Command::new(name);
    command.kill_on_drop(true).stdin(Stdio::null());
    command
}

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

async fn pub_(broker: &TestBroker, args: &[&str]) {
    let port = broker.mqtt.port().to_string();
    let status = tool("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port])
        .args(args)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "mosquitto_pub {args:?} failed");
}

#[tokio::test]
async fn readme_demo_websocket_set_reaches_mosquitto_sub() {
    require("mosquitto_sub");
    let broker = start().await;
    let port = broker.mqtt.port().to_string();
    let mut sub = tool("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "sensors/#",
            "-v",
            "-C",
            "2",
            "-W",
            "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    subscriptions_reach(&broker, 1).await;

    let mut native = broker.native().await;
    native
        .set("/sensors/kitchen/temp", json!({"c": 21.5}))
        .await;
    pub_(
        &broker,
        &["-t", "sensors/hall/temp", "-m", "19.0", "-q", "1"],
    )
    .await;

    let mut out = String::new();
    sub.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert!(
        sub.wait().await.unwrap().success(),
        "mosquitto_sub exit: {out}"
    );
    assert_eq!(
        out,
        "sensors/kitchen/temp {\"c\":21.5}\nsensors/hall/temp 19.0\n"
    );
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn readme_demo_mosquitto_pub_reaches_a_websocket_client() {
    require("mosquitto_pub");
    let broker = start().await;
    let mut native = broker.native().await;
    native.on("/sensors/**").await;
    pub_(&broker, &["-t", "sensors/kitchen/temp", "-m", "{\"c\":22}"]).await;
    let event = native.next_event().await;
    assert_eq!(event["_meta"]["path"], "/sensors/kitchen/temp");
    assert_eq!(event["data"], json!({"c": 22}));
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn mosquitto_retained_qos2_round_trip() {
    require("mosquitto_pub");
    let broker = start().await;
    pub_(
        &broker,
        &["-t", "m/retained", "-m", "kept", "-r", "-q", "2"],
    )
    .await;
    let port = broker.mqtt.port().to_string();
    let out = tool("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "m/#",
            "-v",
            "-C",
            "1",
            "-W",
            "10",
            "-q",
            "2",
            "-V",
            "mqttv5",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "m/retained kept\n");
    broker.broker.shutdown().await;
}
