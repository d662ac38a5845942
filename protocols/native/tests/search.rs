//! Search, count and remove with criteria over the wire (`reference/happn-3.md` SEARCH,
//! DELETE / REMOVE). The matcher itself is tested in `pathmq-core` (`query`), and the
//! stores in `pathmq-storage`'s suite.

mod common;

use anyhow::Result;
use common::Client;
use serde_json::{Value, json};

async fn client_with_users() -> Result<(common::Broker, Client)> {
    let broker = common::start().await?;
    let mut c = Client::ws(&broker, "/primus").await?;
    c.handshake().await?;
    let users = [
        ("simon", "Bishop", "North", "x"),
        ("jane", "Emslie", "South", "y"),
        ("bob", "Bishop", "Nowhere", "North.Cape Town"),
        ("SIMONE", "Smith", "East", "z"),
        ("amy", "Emslie", "West", "w"),
    ];
    for (name, surname, region, town) in users {
        c.set(
            &format!("/users/{name}"),
            json!({"name": name, "surname": surname, "region": region, "town": town}),
        )
        .await?;
    }
    Ok((broker, c))
}

/// The items of an array answer, without the trailing meta object.
fn items(answer: &Value) -> Vec<Value> {
    let mut items = answer.as_array().cloned().unwrap_or_default();
    items.pop();
    items
}

fn names(answer: &Value) -> Vec<String> {
    items(answer)
        .iter()
        .filter_map(|i| i["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_reference_search_example() -> Result<()> {
    let (_broker, mut c) = client_with_users().await?;
    let criteria = json!({
        "$or": [{"region": {"$in": ["North", "South", "East", "West"]}},
                {"town": {"$in": ["North.Cape Town", "South.East London"]}}],
        "surname": {"$in": ["Bishop", "Emslie"]}
    });
    let answer = c
        .ok(
            "get",
            Some("/users/*"),
            Value::Null,
            json!({"criteria": criteria,
                   "options": {"fields": {"name": 1}, "sort": {"name": 1}, "limit": 2, "skip": 1}}),
        )
        .await?;
    // Matches: amy, bob, jane, simon (sorted by name); skip 1, limit 2.
    assert_eq!(names(&answer), ["bob", "jane"]);
    let first = &items(&answer)[0];
    assert!(first.get("surname").is_none(), "fields projects: {first}");
    assert_eq!(first["_meta"]["path"], "/users/bob");
    Ok(())
}

#[tokio::test]
async fn regex_as_a_string_or_with_flags() -> Result<()> {
    let (_broker, mut c) = client_with_users().await?;
    let search = |criteria: Value| json!({"criteria": criteria, "options": {"sort": {"name": 1}}});
    let sensitive = c
        .ok(
            "get",
            Some("/users/*"),
            Value::Null,
            search(json!({"name": {"$regex": ".*simon.*"}})),
        )
        .await?;
    assert_eq!(names(&sensitive), ["simon"]);
    let insensitive = c
        .ok(
            "get",
            Some("/users/*"),
            Value::Null,
            search(json!({"name": {"$regex": [".*simon.*", "i"]}})),
        )
        .await?;
    assert_eq!(names(&insensitive), ["SIMONE", "simon"]);
    Ok(())
}

#[tokio::test]
async fn count_and_remove_take_criteria() -> Result<()> {
    let (broker, mut c) = client_with_users().await?;
    let count = c
        .ok(
            "count",
            Some("/users/*"),
            Value::Null,
            json!({"criteria": {"surname": "Bishop"}}),
        )
        .await?;
    assert_eq!(count["data"]["value"], 2);

    let mut listener = Client::ws(&broker, "/primus").await?;
    listener.handshake().await?;
    listener
        .on("/REMOVE@/users/*", json!({"event_type": "remove"}))
        .await?;
    let removed = c
        .ok(
            "remove",
            Some("/users/*"),
            Value::Null,
            json!({"criteria": {"surname": "Emslie"}}),
        )
        .await?;
    assert_eq!(removed["data"]["removed"], 2);
    // Paging a remove would be ignored and remove more than asked: refused.
    let paged = c
        .call(
            "remove",
            Some("/users/*"),
            Value::Null,
            json!({"options": {"limit": 1}}),
        )
        .await?;
    assert_eq!(paged["_meta"]["error"]["code"], 400);
    let mut paths = vec![
        listener.event().await?["_meta"]["path"].clone(),
        listener.event().await?["_meta"]["path"].clone(),
    ];
    paths.sort_by_key(|p| p.to_string());
    assert_eq!(paths, [json!("/users/amy"), json!("/users/jane")]);
    let left = c
        .ok("get", Some("/users/*"), Value::Null, Value::Null)
        .await?;
    assert_eq!(items(&left).len(), 3);
    Ok(())
}

#[tokio::test]
async fn an_unknown_operator_is_a_400_naming_it() -> Result<()> {
    let (_broker, mut c) = client_with_users().await?;
    let answer = c
        .call(
            "get",
            Some("/users/*"),
            Value::Null,
            json!({"criteria": {"name": {"$fuzzy": "sim"}}}),
        )
        .await?;
    assert_eq!(answer["_meta"]["error"]["code"], 400);
    let message = answer["_meta"]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("$fuzzy"), "{message}");
    Ok(())
}
