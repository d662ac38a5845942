//! The published happn-3 client (npm `happn-3` 13.x) against pathmq (DESIGN.md §5: "close
//! enough that the published happn-3 client can connect"): `tests/node/happn3_client.js`
//! connects at `/primus`, then does `on`, `set`, `get`, search, count, getPaths, `once`,
//! publish, increment, merge and `offPath`, and checks the answers and events.
//!
//! Needs Node.js and `npm ci --prefix tests/node` (CI installs it).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use tokio::process::Command;

/// The whole script; each of its steps has its own 10 s timeout.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `tests/node/<script>` against a fresh broker and answers its result line.
async fn run_script(script: &str) -> Result<Value> {
    let node_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node");
    if !node_dir.join("node_modules/happn-3").is_dir() {
        bail!(
            "{} has no node_modules/happn-3: run `npm ci --prefix tests/node` at the \
             workspace root first",
            node_dir.display()
        );
    }
    let broker = common::start().await?;
    let run = Command::new("node")
        .arg(node_dir.join(script))
        .arg(broker.http.port().to_string())
        .current_dir(&node_dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .with_context(|| format!("{script} did not finish in time"))?
        .context("could not run `node`: is Node.js (18 or later) installed?")?;

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("PATHMQ_RESULT "))
        .with_context(|| format!("no result line\nstdout:\n{stdout}\nstderr:\n{stderr}"))
        .and_then(|line| Ok(serde_json::from_str(line)?))?;
    if !output.status.success() || result["ok"] != true {
        bail!(
            "{script} failed at {}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            result["stage"],
            result["error"]
        );
    }
    eprintln!("{script} result: {result}");
    Ok(result)
}

#[tokio::test]
async fn published_happn3_client_sets_gets_and_subscribes() -> Result<()> {
    let result = run_script("happn3_client.js").await?;
    assert_eq!(result["get"]["hello"], "world");
    assert_eq!(result["event"]["meta"]["channel"], "/ALL@/pathmq/happn3/*");
    Ok(())
}

/// Reference: CONSISTENCY. DEFERRED and ACKNOWLEDGED publication results reach the
/// happn-3 client's `onPublished`; its subscribers acknowledge by themselves.
#[tokio::test]
async fn happn3_on_published_gets_deferred_and_acknowledged_results() -> Result<()> {
    let result = run_script("happn3_consistency.js").await?;
    assert_eq!(result["acknowledged"]["acknowledged"], 2);
    assert_eq!(result["deferred"]["successful"], 2);
    Ok(())
}
