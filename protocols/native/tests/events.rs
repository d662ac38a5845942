//! `on`, `off` and event frames (`reference/happn-3-wire.md` §4, §6; DESIGN.md §3).
//!
//! "No event" is shown without sleeping: after the write that must not be delivered, a
//! write that must be is made, and the next event has to be that one.

mod common;

use anyhow::Result;
use common::Client;
use serde_json::{Value, json};

#[tokio::test]
async fn set_and_remove_events_carry_the_documented_meta() -> Result<()> {
    let (_broker, mut listener, mut writer, writer_session) = common::pair().await?;
    let id = listener
        .on("/ALL@/e/*", json!({"event_type": "all", "count": 0}))
        .await?;
    assert!(id > 0);

    let set_id = writer
        .send(
            "set",
            Some("/e/x"),
            json!({"v": 1}),
            json!({"meta": {"tag": "t1"}}),
        )
        .await?;
    let set = writer.response(set_id).await?;

    let event = listener.event().await?;
    assert_eq!(event["data"], json!({"v": 1}));
    assert_eq!(event["protocol"], "happn_4");
    let meta = &event["_meta"];
    assert_eq!(meta["type"], "data");
    assert_eq!(meta["channel"], "/ALL@/e/*");
    assert_eq!(meta["action"], "/SET@/e/x");
    assert_eq!(meta["path"], "/e/x");
    assert_eq!(meta["created"], set["_meta"]["created"]);
    assert_eq!(meta["modified"], set["_meta"]["modified"]);
    assert_eq!(meta["sessionId"], writer_session.as_str());
    assert_eq!(meta["consistency"], 2);
    assert_eq!(meta["publicationId"], format!("{writer_session}-{set_id}"));
    assert_eq!(meta["tag"], "t1");
    assert!(meta.get("depth").is_none());

    writer
        .ok("remove", Some("/e/x"), Value::Null, Value::Null)
        .await?;
    let event = listener.event().await?;
    assert_eq!(event["data"], json!({"removed": 1}));
    let meta = &event["_meta"];
    assert_eq!(meta["action"], "/REMOVE@/e/x");
    assert_eq!(meta["channel"], "/ALL@/e/*");
    assert!(meta.get("created").is_none() && meta.get("modified").is_none());

    // Non-object data arrives wrapped, like a get.
    writer.set("/e/n", json!(7)).await?;
    assert_eq!(listener.event().await?["data"], json!({"value": 7}));
    Ok(())
}

#[tokio::test]
async fn a_writer_subscribed_to_its_own_path_gets_its_own_event() -> Result<()> {
    let broker = common::start().await?;
    let mut client = Client::ws(&broker, "/primus").await?;
    client.handshake().await?;
    client.on("/ALL@/self", Value::Null).await?;
    client.set("/self", json!({"me": 1})).await?;
    let event = client.event().await?;
    assert_eq!(event["_meta"]["channel"], "/ALL@/self");
    Ok(())
}

#[tokio::test]
async fn star_matches_exactly_one_segment() -> Result<()> {
    let (_broker, mut listener, mut writer, _) = common::pair().await?;
    listener.on("/ALL@/s/*", Value::Null).await?;
    writer.set("/s/a/b", json!({"deep": true})).await?;
    writer.set("/s", json!({"parent": true})).await?;
    writer.set("/s/a", json!({"child": true})).await?;
    let event = listener.event().await?;
    assert_eq!(event["_meta"]["path"], "/s/a", "{event}");
    Ok(())
}

#[tokio::test]
async fn double_star_matches_descendants_up_to_depth() -> Result<()> {
    let (_broker, mut listener, mut writer, _) = common::pair().await?;
    listener.on("/ALL@/d/**", json!({"depth": 2})).await?;
    writer.set("/d/a/b/c", json!({"too": "deep"})).await?;
    writer.set("/d", json!({"parent": true})).await?;
    writer.set("/d/a/b", json!({"ok": 2})).await?;
    let event = listener.event().await?;
    assert_eq!(event["_meta"]["path"], "/d/a/b", "{event}");
    assert_eq!(event["_meta"]["depth"], 2);
    assert_eq!(event["_meta"]["channel"], "/ALL@/d/**");
    // Without a depth, 5 levels: on_options.rs, variable_depth_defaults_to_five_levels.
    Ok(())
}

#[tokio::test]
async fn event_type_filters_by_channel_prefix() -> Result<()> {
    let (_broker, mut listener, mut writer, _) = common::pair().await?;
    listener.on("/SET@/f", json!({"event_type": "set"})).await?;
    listener
        .on("/REMOVE@/g", json!({"event_type": "remove"}))
        .await?;
    writer.set("/g", json!({})).await?;
    writer
        .ok("remove", Some("/f"), Value::Null, Value::Null)
        .await?;
    writer.set("/f", json!({"x": 1})).await?;
    writer
        .ok("remove", Some("/g"), Value::Null, Value::Null)
        .await?;
    let first = listener.event().await?;
    assert_eq!(first["_meta"]["channel"], "/SET@/f", "{first}");
    let second = listener.event().await?;
    assert_eq!(second["_meta"]["channel"], "/REMOVE@/g", "{second}");
    assert_eq!(second["_meta"]["action"], "/REMOVE@/g");
    Ok(())
}

#[tokio::test]
async fn all_star_receives_everything() -> Result<()> {
    let (_broker, mut listener, mut writer, _) = common::pair().await?;
    listener.on("/ALL@*", Value::Null).await?;
    writer.set("/any/where/at/all", json!({})).await?;
    let event = listener.event().await?;
    assert_eq!(event["_meta"]["channel"], "/ALL@*");
    assert_eq!(event["_meta"]["path"], "/any/where/at/all");
    Ok(())
}

/// Guards: one frame per distinct channel, however many subscriptions share it.
#[tokio::test]
async fn one_frame_per_distinct_channel() -> Result<()> {
    let (_broker, mut listener, mut writer, _) = common::pair().await?;
    listener.on("/ALL@/k/*", Value::Null).await?;
    listener
        .on("/ALL@/k/*", json!({"meta": {"other": 1}}))
        .await?;
    listener.on("/ALL@/k/**", json!({"depth": 5})).await?;
    writer.set("/k/1", json!({"n": 1})).await?;
    writer.set("/k/2", json!({"n": 2})).await?;

    let mut channels = Vec::new();
    for _ in 0..2 {
        let event = listener.event().await?;
        assert_eq!(event["_meta"]["path"], "/k/1");
        channels.push(
            event["_meta"]["channel"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    channels.sort();
    assert_eq!(channels, ["/ALL@/k/*", "/ALL@/k/**"]);
    assert_eq!(listener.event().await?["_meta"]["path"], "/k/2");
    Ok(())
}

#[tokio::test]
async fn off_by_reference_by_channel_and_all() -> Result<()> {
    let (_broker, mut listener, mut writer, _) = common::pair().await?;
    let a = listener.on("/ALL@/o/a", Value::Null).await?;
    listener.on("/ALL@/o/b", Value::Null).await?;
    listener
        .on("/ALL@/o/b", json!({"meta": {"second": true}}))
        .await?;
    listener.on("/ALL@/o/c", Value::Null).await?;

    let off = listener
        .ok(
            "off",
            Some("/ALL@/o/a"),
            Value::Null,
            json!({"referenceId": a}),
        )
        .await?;
    assert_eq!(off["data"], json!({"id": a, "removed": [a]}));
    let off = listener
        .ok(
            "off",
            Some("/ALL@/o/b"),
            Value::Null,
            json!({"referenceId": 0}),
        )
        .await?;
    assert_eq!(off["data"]["id"], false);
    assert_eq!(off["data"]["removed"].as_array().map(Vec::len), Some(2));

    writer.set("/o/a", json!({})).await?;
    writer.set("/o/b", json!({})).await?;
    writer.set("/o/c", json!({})).await?;
    assert_eq!(listener.event().await?["_meta"]["path"], "/o/c");

    let off = listener
        .ok("off", Some("*"), Value::Null, Value::Null)
        .await?;
    assert_eq!(off["data"]["removed"].as_array().map(Vec::len), Some(1));
    listener.on("/ALL@/o/z", Value::Null).await?;
    writer.set("/o/c", json!({})).await?;
    writer.set("/o/z", json!({})).await?;
    assert_eq!(listener.event().await?["_meta"]["path"], "/o/z");
    Ok(())
}

#[tokio::test]
async fn initial_callback_answers_the_stored_records() -> Result<()> {
    let (_broker, mut listener, mut writer, _) = common::pair().await?;
    writer.set("/i/1", json!({"n": 1})).await?;
    writer.set("/i/2", json!(2)).await?;
    writer.set("/i/2/deep", json!({"n": 3})).await?;
    let response = listener
        .ok(
            "on",
            Some("/ALL@/i/*"),
            Value::Null,
            json!({"initialCallback": true}),
        )
        .await?;
    let items = response["data"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{response}");
    assert_eq!(items[0]["n"], 1);
    assert_eq!(items[0]["_meta"]["path"], "/i/1");
    assert_eq!(items[1]["value"], 2);
    let reference = response["_meta"]["referenceId"]
        .as_u64()
        .expect("referenceId");
    writer.set("/i/3", json!({})).await?;
    assert_eq!(listener.event().await?["_meta"]["path"], "/i/3");
    listener
        .ok(
            "off",
            Some("/ALL@/i/*"),
            Value::Null,
            json!({"referenceId": reference}),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn publish_without_storing_is_delivered() -> Result<()> {
    let (_broker, mut listener, mut writer, _) = common::pair().await?;
    listener.on("/ALL@/p/*", Value::Null).await?;
    writer
        .ok(
            "set",
            Some("/p/1"),
            json!({"x": 1}),
            json!({"noStore": true, "noDataResponse": true}),
        )
        .await?;
    assert_eq!(listener.event().await?["data"], json!({"x": 1}));
    let got = writer
        .ok("get", Some("/p/1"), Value::Null, Value::Null)
        .await?;
    assert_eq!(got["data"], Value::Null);
    Ok(())
}

/// Reference: CONSISTENCY. DEFERRED (1): the answer, then a `publication-ack` with the
/// results `{successful, failed, skipped, queued}`.
#[tokio::test]
async fn deferred_consistency_reports_the_publication_results() -> Result<()> {
    let (_broker, mut listener, mut writer, writer_session) = common::pair().await?;
    listener.on("/ALL@/q", Value::Null).await?;
    let id = writer
        .send("set", Some("/q"), json!({}), json!({"consistency": 1}))
        .await?;
    let response = writer.response(id).await?;
    assert_eq!(response["_meta"]["status"], "ok");
    let ack = writer.next().await?;
    assert_eq!(ack["action"], "publication-ack");
    assert_eq!(ack["_meta"]["type"], "ack");
    assert_eq!(ack["_meta"]["eventId"], id);
    assert_eq!(ack["status"], "ok");
    assert_eq!(ack["id"], format!("{writer_session}-{id}"));
    assert_eq!(
        ack["result"],
        json!({"successful": 1, "failed": 0, "skipped": 0, "queued": 1})
    );
    assert_eq!(listener.event().await?["_meta"]["consistency"], 1);
    Ok(())
}

/// ACKNOWLEDGED (3): the `publication-ack` comes once every recipient answered `ack`
/// with the publication id; an `ack` from a session that was not a recipient does not
/// count.
#[tokio::test]
async fn acknowledged_consistency_waits_for_every_recipient() -> Result<()> {
    let (broker, mut listener, mut writer, writer_session) = common::pair().await?;
    let mut stranger = Client::ws(&broker, "/primus").await?;
    stranger.handshake().await?;
    listener.on("/ALL@/q", Value::Null).await?;
    let id = writer
        .send(
            "set",
            Some("/q"),
            json!({"v": 1}),
            json!({"consistency": 3}),
        )
        .await?;
    assert_eq!(writer.response(id).await?["_meta"]["status"], "ok");
    let event = listener.event().await?;
    assert_eq!(event["_meta"]["consistency"], 3);
    let publication = event["_meta"]["publicationId"].clone();
    assert_eq!(publication, format!("{writer_session}-{id}"));
    // Not a recipient: answered, not counted.
    let stray = stranger
        .send("ack", None, publication.clone(), Value::Null)
        .await?;
    stranger.response(stray).await?;
    let ack = listener
        .send("ack", None, publication.clone(), Value::Null)
        .await?;
    assert_eq!(listener.response(ack).await?["data"], publication);
    let result = writer.next().await?;
    assert_eq!(result["action"], "publication-ack");
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["result"]["acknowledged"], 1);
    assert_eq!(result["result"]["successful"], 1);
    Ok(())
}

/// ACKNOWLEDGED with a recipient that never answers: after the acknowledgement timeout
/// the writer gets `status: 'error'` naming the silent session.
#[tokio::test]
async fn a_missing_acknowledgement_is_reported_after_the_timeout() -> Result<()> {
    let mut core_config = pathmq_core::CoreConfig::default();
    core_config.ack_timeout = std::time::Duration::from_millis(200);
    let broker = common::start_core(
        std::sync::Arc::new(pathmq_storage::MemoryStore::new()),
        core_config,
        Default::default(),
    )
    .await?;
    let mut listener = Client::ws(&broker, "/primus").await?;
    let mut writer = Client::ws(&broker, "/primus").await?;
    let listener_session = listener.handshake().await?["id"].clone();
    writer.handshake().await?;
    listener.on("/ALL@/q", Value::Null).await?;
    let id = writer
        .send("set", Some("/q"), json!({}), json!({"consistency": 3}))
        .await?;
    writer.response(id).await?;
    let result = writer.next().await?;
    assert_eq!(result["status"], "error", "{result}");
    assert_eq!(result["result"]["acknowledged"], 0);
    let error = result["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(listener_session.as_str().unwrap_or("?")),
        "{error}"
    );
    Ok(())
}

/// Reference: CONSISTENCY. The Rust client acknowledges events of consistency
/// ACKNOWLEDGED by itself, so a writer's publication completes with it as a recipient.
#[tokio::test]
async fn the_rust_client_acknowledges_acknowledged_events() -> Result<()> {
    use pathmq_native::client::{Client as RustClient, ClientConfig, DataApi, OnOptions};

    let broker = common::start().await?;
    let url = format!("ws://{}/", broker.http);
    let subscriber = RustClient::connect(ClientConfig::websocket(url)).await?;
    let mut events = subscriber.on("/acked/*", OnOptions::new()).await?;
    let mut writer = Client::ws(&broker, "/primus").await?;
    writer.handshake().await?;
    let id = writer
        .send(
            "set",
            Some("/acked/1"),
            json!({"v": 1}),
            json!({"consistency": 3}),
        )
        .await?;
    writer.response(id).await?;
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the listener ended"))?;
    assert_eq!(
        event.meta.consistency,
        Some(pathmq_core::Consistency::Acknowledged)
    );
    let result = writer.next().await?;
    assert_eq!(result["action"], "publication-ack");
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["result"]["acknowledged"], 1);
    Ok(())
}
