//! The browser client (`protocols/native/browser/pathmq-client.js`) in headless Chromium
//! against pathmq: `tests/node/browser_test.js` fetches the script from the broker
//! (`/browser_client`: content type, ETag, 304, HEAD), loads it in a page and drives two
//! clients through set/get/on/off/remove, heartbeats, a forced reconnection (the listener
//! is subscribed again) and, when it prints `PATHMQ_SHUTDOWN`, the broker's shutdown
//! (`session-ended`); and checks the frames it sends against a mocked socket.
//!
//! Needs Node.js, `npm ci --prefix tests/node` (for `playwright-core`) and Chromium at
//! `/usr/bin/chromium` (Debian package `chromium`, or `PATHMQ_CHROMIUM`); CI installs
//! them.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use pathmq_native::NativeConfig;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::Command;

/// The whole script; each of its steps has its own 10 s timeout.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The broker's heartbeat in this test: short, so that the page sees several pings within
/// a step. A ping only follows a tick that saw a frame from the client, so pings in a row
/// to an idle client show that it answers them.
const HEARTBEAT: Duration = Duration::from_millis(300);

/// Beats a client may miss before it is closed: generous, so that a loaded machine does
/// not close a slow page's connection.
const ALLOWED_SKIPPED: u32 = 3;

#[tokio::test]
async fn browser_client_in_chromium() -> Result<()> {
    let node_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node");
    if !node_dir.join("node_modules/playwright-core").is_dir() {
        bail!(
            "{} has no node_modules/playwright-core: run `npm ci --prefix tests/node` at \
             the workspace root first",
            node_dir.display()
        );
    }
    let chromium = std::env::var_os("PATHMQ_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        bail!(
            "no Chromium at {}: install the Debian package `chromium` (`apt-get install \
             chromium`) or set PATHMQ_CHROMIUM",
            chromium.display()
        );
    }

    let mut config = NativeConfig::default();
    config.heartbeat_interval = HEARTBEAT;
    config.allowed_skipped_heartbeats = ALLOWED_SKIPPED;
    let broker = common::start_with(config).await?;
    let mut child = Command::new("node")
        .arg(node_dir.join("browser_test.js"))
        .arg(format!("http://{}", broker.http))
        .env("PATHMQ_CHROMIUM", &chromium)
        .current_dir(&node_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("could not run `node`: is Node.js (18 or later) installed?")?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut stderr = child.stderr.take().context("no stderr pipe")?;
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    // Read the script's lines as they come: `PATHMQ_SHUTDOWN` asks for the broker's
    // shutdown (the page then waits for `session-ended`).
    let run = async {
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await? {
            if line == "PATHMQ_SHUTDOWN" {
                broker.core.begin_shutdown();
            }
            seen.push(line);
        }
        let status = child.wait().await?;
        anyhow::Ok((seen, status))
    };
    let (lines, status) = tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .context("browser_test.js did not finish in time")??;
    let stdout = lines.join("\n");
    let stderr = stderr_task.await.unwrap_or_default();

    let result: Value = lines
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix("PATHMQ_RESULT "))
        .with_context(|| format!("no result line\nstdout:\n{stdout}\nstderr:\n{stderr}"))
        .and_then(|line| Ok(serde_json::from_str(line)?))?;
    if !status.success() || result["ok"] != true {
        bail!(
            "browser client failed at {}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            result["stage"],
            result["error"]
        );
    }
    eprintln!("browser client result: {result}");
    assert_eq!(result["data"]["got"]["hello"], "world");
    assert_eq!(
        result["data"]["event"]["meta"]["channel"],
        "/ALL@/browser/items/*"
    );
    assert!(
        result["reconnect"]["events"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e == "reconnect-successful")),
        "{result}"
    );
    assert_eq!(result["sessionEnded"]["reason"], "server shutting down");
    Ok(())
}
