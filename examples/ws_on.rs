//! Subscribes over the native WebSocket protocol and prints every event.
//!
//! ```text
//! cargo run --example ws_on -- '/sensors/**'
//! mosquitto_pub -t sensors/kitchen/temp -m '{"c":22}'
//! ```
//!
//! `*` is one segment, `**` every descendant. Stops after `--count N` events (default:
//! never). The broker URL is `ws://127.0.0.1:55000/` unless `PATHMQ_URL` says otherwise.

#![allow(clippy::print_stdout)]

#[path = "common/ws.rs"]
mod ws;

use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        anyhow::bail!("usage: ws_on <path pattern> [--count N]   e.g. ws_on '/sensors/**'");
    };
    let limit: Option<usize> = match args.iter().position(|a| a == "--count") {
        Some(i) => Some(
            args.get(i + 1)
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("--count needs a number"))?,
        ),
        None => None,
    };
    let mut socket = ws::connect().await?;
    let channel = format!("/ALL@{path}");
    ws::request(&mut socket, json!({"action": "on", "eventId": 3, "path": channel, "data": null, "options": {"event_type": "all", "count": 0}})).await?;
    eprintln!("subscribed to {path}");
    let mut seen = 0;
    while let Some(event) = ws::next_event(&mut socket).await? {
        println!(
            "{} {}",
            event["_meta"]["path"].as_str().unwrap_or("?"),
            event["data"]
        );
        seen += 1;
        if limit.is_some_and(|n| seen >= n) {
            break;
        }
    }
    Ok(())
}
