//! TEMPLATED PERMISSIONS: the username and custom-data example, and the NB on values
//! with a wildcard.

use pathmq::core::security::Group;
use pathmq::native::client::{DataApi as _, OnOptions, SetOptions};
use serde_json::json;

use super::*;

/// The templated-permissions example's group: everything on `/gauges/{{user.username}}`
/// and below, `get` and `set` on `/custom/{{user.custom_data.custom_field1}}`.
fn templated_group(test_id: &str) -> Group {
    serde_json::from_value(json!({
        "name": format!("TEST GROUP{test_id}"),
        "custom_data": {"customString": "custom1", "customNumber": 0},
        "permissions": {
            "/gauges/{{user.username}}": {"actions": ["*"]},
            "/gauges/{{user.username}}/*": {"actions": ["*"]},
            "/custom/{{user.custom_data.custom_field1}}": {"actions": ["get", "set"]}
        }
    }))
    .unwrap()
}

/// TEMPLATED PERMISSIONS: a group with `/gauges/{{user.username}}` and
/// `/custom/{{user.custom_data.custom_field1}}`; the linked user listens on
/// `'/gauges/' + username` and increments the `logins` gauge there: the handler gets
/// `{value: 1, gauge: 'logins'}`.
#[tokio::test]
async fn templated_permissions() {
    let broker = secure_broker().await;
    let test_id = "1528278832638_V1DWIA5xxB";
    let group = templated_group(test_id);
    let group_name = group.name.clone();
    let added = directory(&broker).upsert_group(group).await.unwrap();
    let username = format!("TEST USER@blah.com{test_id}");
    add_user(
        &broker,
        &username,
        "TEST PWD",
        json!({"custom_field1": "custom_field1_value"}),
    )
    .await;
    directory(&broker)
        .link_group(&username, &added.name)
        .await
        .unwrap();
    assert_eq!(added.name, group_name);

    let client = login(&broker, &username, "TEST PWD").await;
    let gauge = format!("/gauges/{username}");
    let mut events = client.on(&gauge, OnOptions::new()).await.expect("on");
    client
        .increment(&gauge, "logins", 1.0)
        .await
        .expect("increment");
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("an event");
    assert_eq!(event.data["value"], 1);
    assert_eq!(event.data["gauge"], "logins");
    assert!(
        client
            .set(&format!("{gauge}/below"), json!({}), SetOptions::new())
            .await
            .is_ok()
    );

    // The custom-data template, and nothing beyond either template.
    let custom = "/custom/custom_field1_value";
    assert!(
        client
            .set(custom, json!({"v": 1}), SetOptions::new())
            .await
            .is_ok()
    );
    assert!(client.get(custom).await.unwrap().is_some());
    assert_eq!(
        code(client.remove(custom).await),
        Some(403),
        "only get and set"
    );
    for other in [
        "/custom/other",
        "/gauges/someone-else",
        "/gauges/someone-else/x",
    ] {
        let set = client.set(other, json!({}), SetOptions::new()).await;
        assert_eq!(code(set), Some(403), "{other}");
    }
}

/// TEMPLATED PERMISSIONS, the NB: a user whose `custom_data.test` is `*` gets nothing from
/// `users/{{user.custom_data.test}}/gauges/*`: "the template would resolve to
/// users/*/gauges/*, which may leak other users data".
///
/// pathmq also voids a value holding a `/` (docs/SECURITY.md "The model", templates), and
/// stores the glob with a leading slash, as every path (`/users/…`).
#[tokio::test]
async fn templated_permissions_with_a_wildcard_value_are_ignored() {
    let broker = secure_broker().await;
    let group: Group = serde_json::from_value(json!({
        "name": "test",
        "permissions": {"users/{{user.custom_data.test}}/gauges/*": {"actions": ["on", "set"]}}
    }))
    .unwrap();
    let stored = directory(&broker).upsert_group(group).await.unwrap();
    assert_eq!(
        stored.permissions.keys().collect::<Vec<_>>(),
        ["/users/{{user.custom_data.test}}/gauges/*"],
        "pathmq: globs get a leading slash"
    );
    for (name, value) in [("test", "*"), ("slash", "a/b"), ("honest", "honest")] {
        add_user(&broker, name, "blah", json!({"test": value})).await;
        directory(&broker).link_group(name, "test").await.unwrap();
    }

    let wild = login(&broker, "test", "blah").await;
    for path in ["/users/other/gauges/x", "/users/test/gauges/x"] {
        let set = wild.set(path, json!({}), SetOptions::new()).await;
        assert_eq!(code(set), Some(403), "{path}");
    }
    let on = wild.on("/users/*/gauges/*", OnOptions::new()).await;
    assert_eq!(code(on), Some(403));

    let slash = login(&broker, "slash", "blah").await;
    let set = slash
        .set("/users/a/b/gauges/x", json!({}), SetOptions::new())
        .await;
    assert_eq!(
        code(set),
        Some(403),
        "pathmq: a `/` in the value voids it too"
    );

    let honest = login(&broker, "honest", "blah").await;
    let path = "/users/honest/gauges/x";
    assert!(honest.set(path, json!({}), SetOptions::new()).await.is_ok());
    let set = honest
        .set("/users/other/gauges/x", json!({}), SetOptions::new())
        .await;
    assert_eq!(code(set), Some(403));
}
