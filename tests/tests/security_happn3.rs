//! The published happn-3 client (npm `happn-3` 13.x) against a secure pathmq broker
//! (reference: SECURITY CLIENT; DESIGN.md §7): `tests/node/happn3_secure.js` logs in as
//! `_ADMIN` (token and user on the session), sets and gets, is refused a wrong password
//! with `AccessDenied`, logs in with the session's token, logs out (the client is
//! disconnected and the revoked token no longer logs in), and, as a user limited to
//! `/limited/*`, is refused a set elsewhere.
//!
//! Needs Node.js and `npm ci --prefix tests/node` (CI installs it).

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use pathmq::core::security::{Group, PermissionEntry, Right, UserInput};
use pathmq::native::client::DataApi as _;
use serde_json::Value;
use tokio::process::Command;

/// The whole script; each of its steps has its own 10 s timeout.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

const ADMIN_PASSWORD: &str = "happn3-secure-admin";
const LIMITED_USER: &str = "limited";
const LIMITED_PASSWORD: &str = "limited-pw";

#[tokio::test]
async fn published_happn3_client_logs_in_securely() {
    let node_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node");
    assert!(
        node_dir.join("node_modules/happn-3").is_dir(),
        "{} has no node_modules/happn-3: run `npm ci --prefix tests/node` at the workspace \
         root first",
        node_dir.display()
    );

    let config = support::secure_config(ADMIN_PASSWORD);
    let broker = support::start_with(config).await;
    let directory = broker.broker.core().security().unwrap().directory();
    let set_and_get = PermissionEntry {
        actions: [Right::Set, Right::Get].into(),
        ..PermissionEntry::default()
    };
    directory
        .upsert_group(Group {
            name: "limited".into(),
            permissions: [("/limited/*".to_owned(), set_and_get)].into(),
            ..Group::default()
        })
        .await
        .unwrap();
    directory
        .upsert_user(UserInput {
            username: LIMITED_USER.into(),
            password: Some(LIMITED_PASSWORD.into()),
            ..UserInput::default()
        })
        .await
        .unwrap();
    directory.link_group(LIMITED_USER, "limited").await.unwrap();

    let run = Command::new("node")
        .arg(node_dir.join("happn3_secure.js"))
        .arg(broker.http.port().to_string())
        .arg(ADMIN_PASSWORD)
        .arg(LIMITED_USER)
        .arg(LIMITED_PASSWORD)
        .current_dir(&node_dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .expect("happn3_secure.js did not finish in time")
        .expect("could not run `node`: is Node.js (18 or later) installed?");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("PATHMQ_RESULT "))
        .map(|line| serde_json::from_str(line).expect("the result line is JSON"))
        .unwrap_or_else(|| panic!("no result line\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    assert!(
        output.status.success() && result["ok"] == true,
        "happn-3 client failed at {}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        result["stage"],
        result["error"]
    );
    eprintln!("happn-3 secure client result: {result}");
    assert_eq!(result["admin"]["user"], "_ADMIN");
    assert_eq!(result["get"]["hello"], "secure");
    assert_eq!(result["wrongPassword"]["name"], "AccessDenied");
    assert_eq!(result["wrongPassword"]["code"], 401);
    assert_eq!(result["tokenLogin"]["user"], "_ADMIN");
    assert_eq!(result["afterLogout"]["message"], "client is disconnected");
    assert_eq!(result["revokedToken"]["code"], 401);
    assert_eq!(result["limitedDenied"]["code"], 403);

    // What the refused set would have written is not there.
    let admin = broker.broker.local_admin_client();
    let item = admin.get("/secure/happn3/item").await.unwrap().unwrap();
    assert_eq!(item.data, serde_json::json!({"hello": "secure"}));
    assert!(admin.get("/limited/item").await.unwrap().is_some());
}
