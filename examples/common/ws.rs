//! The native-protocol handshake shared by the WebSocket examples: connect, then
//! `configure-session` and `login` (reference/happn-3-wire.md §2).
#![allow(dead_code)] // each example uses part of it

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The broker's WebSocket URL: `PATHMQ_URL`, or the default `ws://127.0.0.1:55000/`.
pub(crate) fn url() -> String {
    std::env::var("PATHMQ_URL").unwrap_or_else(|_| "ws://127.0.0.1:55000/".into())
}

/// Connects and logs in; returns the socket.
pub(crate) async fn connect() -> anyhow::Result<Socket> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url()).await?;
    request(
        &mut ws,
        json!({"action": "configure-session", "eventId": 1, "data": {"protocol": "happn_4"}}),
    )
    .await?;
    request(
        &mut ws,
        json!({"action": "login", "eventId": 2, "data": {}}),
    )
    .await?;
    Ok(ws)
}

/// Sends a request and returns its response (the frame answering its `eventId`); fails on
/// an error response.
pub(crate) async fn request(ws: &mut Socket, frame: Value) -> anyhow::Result<Value> {
    let event_id = frame["eventId"].clone();
    ws.send(Message::text(frame.to_string())).await?;
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let value: Value = serde_json::from_str(&text)?;
        let meta = match &value {
            Value::Array(items) => items.last().cloned().unwrap_or_default(),
            other => other["_meta"].clone(),
        };
        if meta["type"] == "response" && meta["eventId"] == event_id {
            if meta["status"] == "error" {
                anyhow::bail!("error response: {}", meta["error"]);
            }
            return Ok(value);
        }
    }
    anyhow::bail!("connection closed before the response")
}

/// The next frame that is an event (skips heartbeats and other frames).
pub(crate) async fn next_event(ws: &mut Socket) -> anyhow::Result<Option<Value>> {
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            if value["_meta"]["type"] == "data" {
                return Ok(Some(value));
            }
            if let Some(ping) = value
                .as_str()
                .and_then(|s| s.strip_prefix("primus::ping::"))
            {
                ws.send(Message::text(
                    json!(format!("primus::pong::{ping}")).to_string(),
                ))
                .await?;
            }
        }
    }
    Ok(None)
}
