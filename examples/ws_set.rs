//! Sets a record over the native WebSocket protocol and prints the answer.
//!
//! ```text
//! cargo run --example ws_set -- /sensors/kitchen/temp '{"c":21.5}'
//! ```
//!
//! MQTT subscribers of `sensors/#` receive `{"c":21.5}`. The broker URL is
//! `ws://127.0.0.1:55000/` unless `PATHMQ_URL` says otherwise.

#![allow(clippy::print_stdout)]

#[path = "common/ws.rs"]
mod ws;

use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(data)) = (args.next(), args.next()) else {
        anyhow::bail!(
            "usage: ws_set <path> <json>   e.g. ws_set /sensors/kitchen/temp '{{\"c\":21.5}}'"
        );
    };
    let data: Value =
        serde_json::from_str(&data).map_err(|e| anyhow::anyhow!("<json> is not JSON: {e}"))?;
    let mut socket = ws::connect().await?;
    let answer = ws::request(
        &mut socket,
        json!({"action": "set", "eventId": 3, "path": path, "data": data}),
    )
    .await?;
    println!("{answer}");
    Ok(())
}
