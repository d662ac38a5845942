//! `on` options (`reference/happn-3.md` EVENT DATA, MERGE SUBSCRIPTIONS, VARIABLE DEPTH
//! SUBSCRIPTIONS).

mod common;

use anyhow::Result;
use common::Client;
use serde_json::{Value, json};

async fn client(broker: &common::Broker) -> Result<Client> {
    let mut client = Client::ws(broker, "/primus").await?;
    client.handshake().await?;
    Ok(client)
}

#[tokio::test]
async fn merge_subscriptions_receive_the_raw_merge_input() -> Result<()> {
    let broker = common::start().await?;
    let mut listener = client(&broker).await?;
    let mut writer = client(&broker).await?;
    writer
        .set("/merge/only/path", json!({"a": 1, "b": 1}))
        .await?;
    listener
        .on(
            "/SET@/merge/only/path",
            json!({"event_type": "set", "merge": true}),
        )
        .await?;
    let mut whole = client(&broker).await?;
    whole
        .on("/SET@/merge/only/path", json!({"event_type": "set"}))
        .await?;

    writer
        .ok(
            "set",
            Some("/merge/only/path"),
            json!({"some": "data"}),
            json!({"merge": true}),
        )
        .await?;
    let event = listener.event().await?;
    assert_eq!(event["data"], json!({"some": "data"}));
    assert_eq!(event["_meta"]["channel"], "/SET@/merge/only/path");
    assert_eq!(event["_meta"]["path"], "/merge/only/path");
    assert_eq!(
        whole.event().await?["data"],
        json!({"a": 1, "b": 1, "some": "data"}),
        "a plain subscription gets the merged record"
    );

    // A set without merge: the merge subscription gets the record, which is the input.
    writer.set("/merge/only/path", json!({"c": 3})).await?;
    assert_eq!(listener.event().await?["data"], json!({"c": 3}));
    Ok(())
}

#[tokio::test]
async fn variable_depth_defaults_to_five_levels() -> Result<()> {
    let broker = common::start().await?;
    let mut listener = client(&broker).await?;
    let mut writer = client(&broker).await?;
    listener.on("/ALL@/deep/**", json!({})).await?;
    writer.set("/deep/1/2/3/4/5/6", json!({"level": 6})).await?;
    writer.set("/deep/1/2/3/4/5", json!({"level": 5})).await?;
    let event = listener.event().await?;
    assert_eq!(
        event["data"],
        json!({"level": 5}),
        "the event six levels down was delivered"
    );
    assert_eq!(event["_meta"]["depth"], 5);
    Ok(())
}

#[tokio::test]
async fn initial_values_are_ordered_by_modified() -> Result<()> {
    let broker = common::start().await?;
    let mut c = client(&broker).await?;
    // Written in reverse path order, so path order and modified order differ.
    for name in ["c", "b", "a"] {
        c.set(&format!("/init/{name}"), json!({"name": name}))
            .await?;
        // `modified` has millisecond resolution: make each write's time distinct.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let answer = c
        .ok(
            "on",
            Some("/SET@/init/*"),
            Value::Null,
            json!({"event_type": "set", "initialCallback": true}),
        )
        .await?;
    let names: Vec<&str> = answer["data"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["c", "b", "a"]);
    Ok(())
}
