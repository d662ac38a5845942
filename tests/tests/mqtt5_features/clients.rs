//! MQTT 5 through clients no one here wrote, each run as a child process against a
//! broker on `127.0.0.1:0` (its port is the script's one argument):
//!
//! * Python paho-mqtt (Debian `python3-paho-mqtt`, installed by `.ci/run`):
//!   `tests/python/mqtt5_request_response.py`, a request/response round trip between two
//!   paho clients (§4.10: Response Topic, Correlation Data, Content Type, User
//!   Properties, Subscription Identifiers);
//! * the npm `mqtt` package (`npm ci --prefix tests/node`, pinned by
//!   `tests/node/package-lock.json`): `tests/node/mqtt5_alias_expiry.js`, topic aliases
//!   set and used by the client, message expiry, user properties.
//!
//! Each script prints one `PATHMQ_RESULT <json>` line (`"ok": true` or the failed stage
//! and error) and exits 0 only on success.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::support::start;

/// A whole script run; the scripts bound each of their own waits well below it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(9);

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `program script <port>` against a fresh broker; panics with the script's output
/// unless it exits 0 with an `"ok": true` result line, which it returns.
async fn run(program: &str, script: &Path) -> Value {
    let broker = start().await;
    let run = Command::new(program)
        .arg(script)
        .arg(broker.mqtt.port().to_string())
        .current_dir(root())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("{} did not finish in time", script.display()))
        .unwrap_or_else(|e| panic!("could not run `{program}`: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: Option<Value> = stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("PATHMQ_RESULT "))
        .and_then(|line| serde_json::from_str(line).ok());
    match result {
        Some(result) if output.status.success() && result["ok"] == true => {
            eprintln!("{} result: {result}", script.display());
            result
        }
        _ => panic!(
            "{} failed ({}): {result:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            script.display(),
            output.status
        ),
    }
}

/// Debian's interpreter, where `python3-paho-mqtt` installs (a `python3` earlier on the
/// PATH, such as pyenv's, does not see Debian's packages); `python3` elsewhere.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Two paho-mqtt MQTT 5 clients through the broker: the requester subscribes to its
/// reply topic (Subscription Identifier 7) and publishes a request with a Response
/// Topic, Correlation Data, a Content Type and User Properties; the responder
/// (subscribed with identifier 42) gets them unaltered ([MQTT-3.3.2-15],
/// [MQTT-3.3.2-16], [MQTT-3.3.2-17], the User Properties in order with a repeated name
/// [MQTT-3.3.2-18], [MQTT-3.3.2-20]) and its
/// subscription's identifier [MQTT-3.3.4-3], and answers on the Response Topic with the
/// Correlation Data (§4.10.1), which the requester gets with identifier 7.
#[tokio::test]
async fn paho_mqtt_request_response_round_trip() {
    let script = root().join("tests/python/mqtt5_request_response.py");
    let result = run(python(), &script).await;
    assert_eq!(
        result["request"]["subscription_ids"],
        serde_json::json!([42])
    );
    assert_eq!(
        result["response"]["subscription_ids"],
        serde_json::json!([7])
    );
    assert_eq!(
        result["response"]["correlation_data"],
        result["request"]["correlation_data"]
    );
}

/// The npm `mqtt` client publishes through topic aliases it sets and then uses with an
/// empty topic [MQTT-3.3.2-12], with a Message Expiry Interval and User Properties; a
/// subscriber of that package accepting server aliases gets every topic right, the
/// remaining expiry [MQTT-3.3.2-6] and the User Properties [MQTT-3.3.2-17]. A durable
/// subscriber of it that is offline for over 2 s is then not given a message that
/// expired meanwhile [MQTT-3.3.2-5].
#[tokio::test]
async fn npm_mqtt_topic_aliases_expiry_and_user_properties() {
    let node_dir = root().join("tests/node");
    assert!(
        node_dir.join("node_modules/mqtt").is_dir(),
        "{} has no node_modules/mqtt: run `npm ci --prefix tests/node` at the workspace root",
        node_dir.display()
    );
    let result = run("node", &node_dir.join("mqtt5_alias_expiry.js")).await;
    assert_eq!(result["received"].as_array().map(Vec::len), Some(4));
    assert_eq!(result["after_offline"], serde_json::json!(["long"]));
}
