//! Consistency levels on `remove`, and `publishResults` on a TRANSACTIONAL `set`
//! (reference: CONSISTENCY; `reference/happn-3-wire.md` §4, §6; DESIGN.md §6).

mod common;

use anyhow::Result;
use serde_json::{Value, json};

/// `publishResults: true` with consistency TRANSACTIONAL (the default) adds the results
/// to the answer's `_meta` (wire doc §4); without it they are not there.
#[tokio::test]
async fn publish_results_come_in_the_answer_on_request() -> Result<()> {
    let (_broker, mut listener, mut writer, _) = common::pair().await?;
    listener.on("/ALL@/pr/*", Value::Null).await?;
    let id = writer
        .send(
            "set",
            Some("/pr/a"),
            json!({"v": 1}),
            json!({"publishResults": true}),
        )
        .await?;
    let answer = writer.response(id).await?;
    assert_eq!(
        answer["_meta"]["publishResults"],
        json!({"successful": 1, "failed": 0, "skipped": 0, "queued": 1}),
        "{answer}"
    );
    let id = writer
        .send("set", Some("/pr/a"), json!({"v": 2}), Value::Null)
        .await?;
    let answer = writer.response(id).await?;
    assert!(answer["_meta"].get("publishResults").is_none(), "{answer}");
    Ok(())
}

/// DEFERRED on `remove`: answered at once, then a `publication-ack` with the results of
/// its remove events.
#[tokio::test]
async fn a_deferred_remove_reports_its_publication() -> Result<()> {
    let (_broker, mut listener, mut writer, writer_session) = common::pair().await?;
    listener.on("/ALL@/rm/*", Value::Null).await?;
    writer
        .send("set", Some("/rm/a"), json!({"v": 1}), Value::Null)
        .await?;
    writer.next().await?;
    listener.event().await?;
    let id = writer
        .send(
            "remove",
            Some("/rm/a"),
            Value::Null,
            json!({"consistency": 1}),
        )
        .await?;
    assert_eq!(writer.response(id).await?["data"]["removed"], 1);
    let ack = writer.next().await?;
    assert_eq!(ack["action"], "publication-ack", "{ack}");
    assert_eq!(ack["id"], format!("{writer_session}-{id}"));
    assert_eq!(ack["result"]["successful"], 1, "{ack}");
    let event = listener.event().await?;
    assert_eq!(event["_meta"]["action"], "/REMOVE@/rm/a", "{event}");
    assert_eq!(event["_meta"]["consistency"], 1);
    Ok(())
}

/// ACKNOWLEDGED on `remove`: the `publication-ack` comes once the listener acknowledged
/// the remove event.
#[tokio::test]
async fn an_acknowledged_remove_waits_for_the_recipients() -> Result<()> {
    let (_broker, mut listener, mut writer, writer_session) = common::pair().await?;
    listener.on("/ALL@/ack/*", Value::Null).await?;
    let id = writer
        .send(
            "remove",
            Some("/ack/a"),
            Value::Null,
            json!({"consistency": 3}),
        )
        .await?;
    writer.response(id).await?;
    let event = listener.event().await?;
    let publication = event["_meta"]["publicationId"].clone();
    assert_eq!(publication, format!("{writer_session}-{id}"));
    let ack = listener.send("ack", None, publication, Value::Null).await?;
    listener.response(ack).await?;
    let result = writer.next().await?;
    assert_eq!(result["action"], "publication-ack", "{result}");
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["result"]["acknowledged"], 1, "{result}");
    Ok(())
}

/// The Rust clients' `set_published` (reference: CONSISTENCY, `onPublished`): DEFERRED
/// results, and ACKNOWLEDGED results once a remote listener (which acknowledges by
/// itself) got the event; for the remote and the in-process client alike.
#[tokio::test]
async fn the_rust_clients_get_publication_results() -> Result<()> {
    use pathmq_native::client::{
        Client as RustClient, ClientConfig, Consistency, DataApi, LocalClient, OnOptions,
        SetOptions,
    };

    let broker = common::start().await?;
    let url = format!("ws://{}/", broker.http);
    let listener = RustClient::connect(ClientConfig::websocket(url.clone())).await?;
    let mut events = listener.on("/pub/*", OnOptions::new()).await?;
    let remote = RustClient::connect(ClientConfig::websocket(url)).await?;
    let local = LocalClient::new(&broker.core);
    let deferred = SetOptions::new().consistency(Consistency::Deferred);
    let acknowledged = SetOptions::new().consistency(Consistency::Acknowledged);
    let wait = |published: pathmq_native::client::Published| async move {
        tokio::time::timeout(common::WAIT, published.results()).await
    };

    let (item, published) = remote
        .set_published("/pub/a", json!({"v": 1}), deferred.clone())
        .await?;
    assert_eq!(item.meta.path, "/pub/a");
    let results = wait(published).await??;
    assert_eq!((results.successful, results.acknowledged), (1, None));
    let (_, published) = remote
        .set_published("/pub/b", json!({"v": 2}), acknowledged.clone())
        .await?;
    let results = wait(published).await??;
    assert_eq!(
        (results.successful, results.acknowledged),
        (1, Some(1)),
        "{results:?}"
    );
    assert_eq!(results.error, None);

    let (_, published) = local
        .set_published("/pub/c", json!({"v": 3}), deferred)
        .await?;
    assert_eq!(wait(published).await??.successful, 1);
    let (_, published) = local
        .set_published("/pub/d", json!({"v": 4}), acknowledged)
        .await?;
    let results = wait(published).await??;
    assert_eq!(
        (results.successful, results.acknowledged),
        (1, Some(1)),
        "{results:?}"
    );
    for _ in 0..4 {
        tokio::time::timeout(common::WAIT, events.recv()).await?;
    }
    // TRANSACTIONAL has no separate results.
    let refused = remote
        .set_published("/pub/e", json!({}), SetOptions::new())
        .await;
    assert!(refused.is_err());
    Ok(())
}
