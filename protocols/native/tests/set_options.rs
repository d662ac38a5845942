//! `set` options beyond store-and-publish (`reference/happn-3.md` SET SIBLING, TARGETING
//! EVENTS, EVENTS WITH CUSTOM META, TAGGING).
//!
//! "No event" is shown without sleeping: after the write that must not be delivered, a
//! write that must be is made, and the next event has to be that one.

mod common;

use anyhow::Result;
use common::Client;
use serde_json::{Value, json};

async fn client(broker: &common::Broker) -> Result<(Client, String)> {
    let mut client = Client::ws(broker, "/primus").await?;
    let session = client.handshake().await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((client, session))
}

#[tokio::test]
async fn set_sibling_stores_under_a_new_unique_child() -> Result<()> {
    let broker = common::start().await?;
    let (mut c, _) = client(&broker).await?;
    let mut paths = Vec::new();
    for n in 0..3 {
        let answer = c
            .ok(
                "set",
                Some("/sib"),
                json!({"n": n}),
                json!({"setSibling": true}),
            )
            .await?;
        assert_eq!(answer["data"], json!({"n": n}));
        let path = answer["_meta"]["path"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let id = path.strip_prefix("/sib/").unwrap_or_default();
        assert_eq!(id.len(), 12, "{path}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{path}");
        paths.push(path);
    }
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 3);
    let all = c
        .ok("get", Some("/sib/*"), Value::Null, Value::Null)
        .await?;
    // Three items and the trailing meta.
    assert_eq!(all.as_array().map(Vec::len), Some(4));
    Ok(())
}

#[tokio::test]
async fn target_clients_receive_the_event_and_others_do_not() -> Result<()> {
    let broker = common::start().await?;
    let (mut me, my_session) = client(&broker).await?;
    let (mut other, _) = client(&broker).await?;
    me.on("/ALL@/eyes/only", json!({})).await?;
    other.on("/ALL@/eyes/only", json!({})).await?;

    me.ok(
        "set",
        Some("/eyes/only"),
        json!({"secret": 1}),
        json!({"targetClients": [my_session]}),
    )
    .await?;
    assert_eq!(me.event().await?["data"], json!({"secret": 1}));

    me.ok("set", Some("/eyes/only"), json!({"public": 2}), Value::Null)
        .await?;
    assert_eq!(
        other.event().await?["data"],
        json!({"public": 2}),
        "the targeted event reached another session"
    );

    let error = me
        .call(
            "set",
            Some("/eyes/only"),
            json!({}),
            json!({"targetClients": ["not-a-session"]}),
        )
        .await?;
    assert_eq!(error["_meta"]["status"], "error");
    assert_eq!(error["_meta"]["error"]["code"], 400);
    Ok(())
}

#[tokio::test]
async fn custom_meta_reaches_subscribers_without_its_reserved_keys() -> Result<()> {
    let broker = common::start().await?;
    let (mut listener, _) = client(&broker).await?;
    let (mut writer, writer_session) = client(&broker).await?;
    listener.on("/ALL@/m", json!({})).await?;
    writer
        .ok(
            "set",
            Some("/m"),
            json!({"DATA": 1}),
            json!({"meta": {"custom": 1, "status": "spoofed", "sessionId": "x",
                            "published": false, "eventId": 9, "path": "/elsewhere"}}),
        )
        .await?;
    let meta = listener.event().await?["_meta"].clone();
    assert_eq!(meta["custom"], 1);
    assert_eq!(meta["path"], "/m");
    assert_eq!(meta["sessionId"], writer_session.as_str());
    for key in ["status", "published", "eventId"] {
        assert!(meta.get(key).is_none(), "reserved key {key} passed: {meta}");
    }
    Ok(())
}

#[tokio::test]
async fn tag_keeps_a_snapshot_under_the_tag_path() -> Result<()> {
    let broker = common::start().await?;
    let (mut c, _) = client(&broker).await?;
    c.ok("set", Some("/doc"), json!({"v": 1, "w": 1}), Value::Null)
        .await?;
    c.ok(
        "set",
        Some("/doc"),
        json!({"v": 2}),
        json!({"merge": true, "tag": "release-1"}),
    )
    .await?;
    c.ok("set", Some("/doc"), json!({"v": 3}), Value::Null)
        .await?;
    let snapshot = c
        .ok("get", Some("/doc/release-1"), Value::Null, Value::Null)
        .await?;
    assert_eq!(snapshot["data"], json!({"v": 2, "w": 1}));
    let current = c.ok("get", Some("/doc"), Value::Null, Value::Null).await?;
    assert_eq!(current["data"], json!({"v": 3}));

    for bad in [
        json!({"tag": "a/b"}),
        json!({"tag": 5}),
        json!({"tag": "x", "noStore": true}),
    ] {
        let answer = c
            .call("set", Some("/doc"), json!({"v": 4}), bad.clone())
            .await?;
        assert_eq!(answer["_meta"]["error"]["code"], 400, "{bad}");
    }
    Ok(())
}
