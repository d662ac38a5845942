//! The length-prefixed TCP transport (DESIGN.md §5): the same protocol as WebSocket.

mod common;

use anyhow::Result;
use common::Client;
use pathmq_native::NativeConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn tcp_speaks_the_same_protocol() -> Result<()> {
    let broker = common::start().await?;
    let mut client = Client::tcp(&broker).await?;
    let session = client.handshake().await?;
    assert!(session["id"].is_string());

    client.on("/ALL@/t/*", Value::Null).await?;
    let set = client.set("/t/1", json!({"over": "tcp"})).await?;
    assert_eq!(set["_meta"]["path"], "/t/1");
    let event = client.event().await?;
    assert_eq!(event["data"], json!({"over": "tcp"}));
    assert_eq!(event["_meta"]["channel"], "/ALL@/t/*");

    let got = client
        .ok("get", Some("/t/*"), Value::Null, Value::Null)
        .await?;
    assert_eq!(got.as_array().map(Vec::len), Some(2));

    client.send_raw("{oops").await?;
    let error = client.next().await?;
    assert_eq!(error["_meta"]["error"]["code"], 400);
    client
        .ok("describe", None, Value::Null, Value::Null)
        .await?;
    Ok(())
}

#[tokio::test]
async fn websocket_and_tcp_clients_share_events() -> Result<()> {
    let broker = common::start().await?;
    let mut tcp = Client::tcp(&broker).await?;
    let mut ws = Client::ws(&broker, "/").await?;
    tcp.on("/ALL@/shared", Value::Null).await?;
    ws.set("/shared", json!({"from": "ws"})).await?;
    assert_eq!(tcp.event().await?["data"], json!({"from": "ws"}));
    Ok(())
}

/// Guards: an oversized TCP frame is answered with 413 and skipped; the stream stays in
/// step and the connection usable.
#[tokio::test]
async fn an_oversized_frame_is_refused_and_the_connection_stays_usable() -> Result<()> {
    let mut config = NativeConfig::default();
    config.max_frame = 1024;
    let broker = common::start_with(config).await?;
    for mut client in [Client::tcp(&broker).await?, Client::ws(&broker, "/").await?] {
        let big =
            json!({"action": "set", "eventId": 1, "path": "/big", "data": {"x": "y".repeat(4096)}});
        client.send_raw(&big.to_string()).await?;
        let error = client.next().await?;
        assert_eq!(error["_meta"]["status"], "error", "{error}");
        assert_eq!(error["_meta"]["error"]["code"], 413);
        assert_eq!(error["_meta"]["error"]["name"], "PayloadTooLarge");
        client.set("/small", json!({"x": 1})).await?;
    }
    Ok(())
}
