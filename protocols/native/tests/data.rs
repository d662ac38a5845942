//! `set`, `get`, `count` and `remove` on the wire (`reference/happn-3-wire.md` §4–§5,
//! DESIGN.md §3–§4).

mod common;

use anyhow::Result;
use common::Client;
use serde_json::{Value, json};

async fn client() -> Result<(common::Broker, Client)> {
    let broker = common::start().await?;
    let mut client = Client::ws(&broker, "/primus").await?;
    client.handshake().await?;
    Ok((broker, client))
}

#[tokio::test]
async fn set_then_get_answers_the_data_with_its_meta() -> Result<()> {
    let (_broker, mut client) = client().await?;
    let set = client.set("/people/ann", json!({"age": 30})).await?;
    assert_eq!(set["data"], json!({"age": 30}));
    let meta = &set["_meta"];
    assert_eq!(meta["path"], "/people/ann");
    assert_eq!(meta["published"], true);
    assert_eq!(meta["action"], "set");
    assert_eq!(meta["type"], "response");
    let created = meta["created"].as_u64().expect("created");
    assert_eq!(meta["modified"].as_u64(), Some(created));

    let got = client
        .ok(
            "get",
            Some("people/ann"),
            Value::Null,
            json!({"timeout": 60000}),
        )
        .await?;
    assert_eq!(got["data"], json!({"age": 30}));
    assert_eq!(got["_meta"]["path"], "/people/ann");
    assert_eq!(got["_meta"]["created"].as_u64(), Some(created));
    assert_eq!(got["_meta"]["published"], false);
    Ok(())
}

#[tokio::test]
async fn non_object_data_is_stored_as_itself_and_read_as_value() -> Result<()> {
    let (_broker, mut client) = client().await?;
    for (path, data, seen) in [
        ("/n", json!(5), json!({"value": 5})),
        ("/s", json!("text"), json!({"value": "text"})),
        ("/l", json!([1, 2]), json!({"value": [1, 2]})),
    ] {
        let set = client.set(path, data).await?;
        assert_eq!(set["data"], seen, "{path}");
        let got = client
            .ok("get", Some(path), Value::Null, Value::Null)
            .await?;
        assert_eq!(got["data"], seen, "{path}");
    }
    let set = client
        .ok(
            "set",
            Some("/null"),
            Value::Null,
            json!({"nullValue": true}),
        )
        .await?;
    assert_eq!(set["data"], json!({"value": null}));
    Ok(())
}

#[tokio::test]
async fn merge_is_shallow_and_meta_in_data_is_dropped() -> Result<()> {
    let (_broker, mut client) = client().await?;
    client
        .set(
            "/m",
            json!({"a": 1, "n": {"x": 1}, "_meta": {"path": "/spoof"}}),
        )
        .await?;
    let merged = client
        .ok(
            "set",
            Some("/m"),
            json!({"b": 2, "n": {"y": 2}}),
            json!({"merge": true}),
        )
        .await?;
    assert_eq!(merged["data"], json!({"a": 1, "b": 2, "n": {"y": 2}}));
    assert_eq!(merged["_meta"]["path"], "/m");
    Ok(())
}

#[tokio::test]
async fn publish_answers_meta_only_and_stores_nothing() -> Result<()> {
    let (_broker, mut client) = client().await?;
    let response = client
        .ok(
            "set",
            Some("/pub"),
            json!({"x": 1}),
            json!({"noStore": true, "noDataResponse": true}),
        )
        .await?;
    assert!(response.get("data").is_none(), "{response}");
    assert_eq!(response["_meta"]["path"], "/pub");
    assert_eq!(response["_meta"]["published"], true);
    let got = client
        .ok("get", Some("/pub"), Value::Null, Value::Null)
        .await?;
    assert_eq!(got["data"], Value::Null);

    let quiet = client
        .ok(
            "set",
            Some("/quiet"),
            json!({"x": 1}),
            json!({"noPublish": true}),
        )
        .await?;
    assert_eq!(quiet["_meta"]["published"], false);
    Ok(())
}

#[tokio::test]
async fn get_of_a_missing_path_is_null() -> Result<()> {
    let (_broker, mut client) = client().await?;
    let got = client
        .ok("get", Some("/nothing"), Value::Null, Value::Null)
        .await?;
    assert_eq!(got["data"], Value::Null);
    assert_eq!(got["_meta"]["status"], "ok");
    assert!(got["_meta"].get("path").is_none());
    Ok(())
}

/// `*` in data operations is a glob over the rest of the path (DESIGN.md §3).
#[tokio::test]
async fn get_with_a_glob_answers_items_then_the_trailing_meta() -> Result<()> {
    let (_broker, mut client) = client().await?;
    client.set("/w/a", json!({"n": 1})).await?;
    client.set("/w/a/b", json!(2)).await?;
    client.set("/w/ab/c/d", json!({"n": 3})).await?;
    client.set("/x/a", json!({"n": 4})).await?;

    let id = client
        .send("get", Some("/w/*"), Value::Null, Value::Null)
        .await?;
    let got = client.response(id).await?;
    let items = got.as_array().expect("array form");
    assert_eq!(items.len(), 4, "three items and the meta: {got}");
    let paths: Vec<&str> = items[..3]
        .iter()
        .map(|i| i["_meta"]["path"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(paths, ["/w/a", "/w/a/b", "/w/ab/c/d"]);
    assert_eq!(items[0]["n"], 1);
    assert_eq!(items[1]["value"], 2);
    assert!(items[0]["_meta"]["created"].is_u64() && items[0]["_meta"]["modified"].is_u64());
    let trailer = &items[3];
    assert_eq!(trailer["eventId"], id);
    assert_eq!(trailer["status"], "ok");
    assert_eq!(trailer["action"], "get");

    let paths = client
        .ok(
            "get",
            Some("/w/*"),
            Value::Null,
            json!({"options": {"path_only": true}}),
        )
        .await?;
    assert_eq!(paths[0], json!({"_meta": {"path": "/w/a"}}));

    let none = client
        .ok("get", Some("/zzz/*"), Value::Null, Value::Null)
        .await?;
    assert_eq!(none.as_array().map(Vec::len), Some(1));
    Ok(())
}

#[tokio::test]
async fn count_counts_what_the_glob_matches() -> Result<()> {
    let (_broker, mut client) = client().await?;
    for p in ["/c/1", "/c/2", "/c/2/deep", "/d/1"] {
        client.set(p, json!({})).await?;
    }
    let count = client
        .ok("count", Some("/c/*"), Value::Null, Value::Null)
        .await?;
    assert_eq!(count["data"], json!({"value": 3}));
    // The reference crashes on `get` with `options.count`; pathmq answers a count.
    let count = client
        .ok(
            "get",
            Some("/c/*"),
            Value::Null,
            json!({"options": {"count": true}}),
        )
        .await?;
    assert_eq!(count["data"], json!({"value": 3}));
    Ok(())
}

#[tokio::test]
async fn remove_answers_how_many_with_a_timestamp() -> Result<()> {
    let (_broker, mut client) = client().await?;
    for p in ["/r/1", "/r/2", "/r/2/x"] {
        client.set(p, json!({})).await?;
    }
    let removed = client
        .ok("remove", Some("/r/1"), Value::Null, Value::Null)
        .await?;
    assert_eq!(removed["data"], json!({"removed": 1}));
    assert!(removed["_meta"]["timestamp"].is_u64());
    assert_eq!(removed["_meta"]["path"], "/r/1");

    let removed = client
        .ok("remove", Some("/r/*"), Value::Null, Value::Null)
        .await?;
    assert_eq!(removed["data"], json!({"removed": 2}));
    let count = client
        .ok("count", Some("/r/*"), Value::Null, Value::Null)
        .await?;
    assert_eq!(count["data"]["value"], 0);
    Ok(())
}
