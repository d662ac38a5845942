//! The Primus heartbeat (`reference/happn-3-wire.md` §1), with a short interval.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result};
use common::Client;
use pathmq_native::NativeConfig;
use serde_json::{Value, json};

fn every(ms: u64, allowed: u32) -> NativeConfig {
    let mut config = NativeConfig::default();
    config.heartbeat_interval = Duration::from_millis(ms);
    config.allowed_skipped_heartbeats = allowed;
    config
}

/// The stamp of a `"primus::ping::<ms>"` frame.
fn ping_stamp(frame: &Value) -> Option<&str> {
    frame.as_str()?.strip_prefix("primus::ping::")
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() -> Result<()> {
    let broker = common::start_with(every(50, 1)).await?;
    let mut client = Client::ws(&broker, "/primus").await?;
    // Well past the point (two intervals) where a silent client is closed.
    for _ in 0..6 {
        let frame = client.next().await?;
        let stamp = ping_stamp(&frame).with_context(|| format!("expected a ping, got {frame}"))?;
        assert!(stamp.parse::<u64>().is_ok(), "{frame}");
        client
            .send_raw(&Value::String(format!("primus::pong::{stamp}")).to_string())
            .await?;
    }
    client
        .ok("describe", None, Value::Null, Value::Null)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_silent_client_is_closed_after_its_skipped_beats() -> Result<()> {
    let broker = common::start_with(every(50, 1)).await?;
    for mut client in [
        Client::ws(&broker, "/primus").await?,
        Client::tcp(&broker).await?,
    ] {
        let mut pings = 0;
        while let Some(frame) = client.read().await? {
            assert!(ping_stamp(&frame).is_some(), "only pings expected: {frame}");
            pings += 1;
        }
        // As Primus: one ping, then skipped beats send none until the connection ends.
        assert_eq!(pings, 1);
    }
    Ok(())
}

#[tokio::test]
async fn a_client_ping_is_answered_with_a_pong() -> Result<()> {
    let broker = common::start().await?;
    let mut client = Client::ws(&broker, "/primus").await?;
    client.send_raw(r#""primus::ping::42""#).await?;
    assert_eq!(client.next().await?, json!("primus::pong::42"));
    // Unencoded, as legacy clients write it.
    client.send_raw("primus::ping::43").await?;
    assert_eq!(client.next().await?, json!("primus::pong::43"));
    Ok(())
}

#[tokio::test]
async fn heartbeats_can_be_turned_off() -> Result<()> {
    let broker = common::start_with(every(0, 0)).await?;
    let mut client = Client::tcp(&broker).await?;
    let described = client
        .ok("describe", None, Value::Null, Value::Null)
        .await?;
    assert_eq!(described["data"]["secure"], false);
    Ok(())
}
