//! NESTED PERMISSIONS FOR GET AND SET: off by default, the `get` and the listener
//! examples.

use pathmq::core::security::{Group, Right};
use pathmq::native::client::{DataApi as _, GetOptions, OnOptions, SetOptions};
use serde_json::json;

use super::support::start_with;
use super::*;

/// The nested-permissions example's group: `get` and `on` on three paths below
/// `/test/path`.
fn nested_group() -> Group {
    serde_json::from_value(json!({
        "name": "TEST",
        "permissions": {
            "/test/path/1": {"actions": ["get", "on"]},
            "/test/path/2/3": {"actions": ["get", "on"]},
            "/test/path/4/5/6": {"actions": ["get", "on"]}
        }
    }))
    .unwrap()
}

/// A broker with the nested example's group, the user `nested` in it, and records at the
/// three paths and at `/test/path/7`.
async fn nested_broker(config: pathmq::config::Config) -> TestBroker {
    let broker = start_with(config).await;
    directory(&broker)
        .upsert_group(nested_group())
        .await
        .unwrap();
    add_user(&broker, "nested", "pw", json!({})).await;
    directory(&broker)
        .link_group("nested", "TEST")
        .await
        .unwrap();
    let admin = broker.broker.local_admin_client();
    for path in [
        "/test/path/1",
        "/test/path/2/3",
        "/test/path/4/5/6",
        "/test/path/7",
    ] {
        admin
            .set(path, json!({"at": path}), SetOptions::new())
            .await
            .unwrap();
    }
    broker
}

/// The config of the nested-permissions examples: `allowNestedPermissions: true`.
fn nested_config() -> pathmq::config::Config {
    let mut config = secure_config();
    config.security.allow_nested_permissions = true;
    config
}

/// NESTED PERMISSIONS FOR GET AND SET: "by default, nested permissions are not switched
/// on, hence a call to get or listen on 'test/path/**' will be unauthorized unless you
/// explicitly have permissions on 'test/path/*'".
#[tokio::test]
async fn nested_permissions_are_off_by_default() {
    let broker = nested_broker(secure_config()).await;
    let client = login(&broker, "nested", "pw").await;
    let get = client.get_many("/test/path/*", GetOptions::default()).await;
    assert_eq!(code(get), Some(403));
    assert_eq!(
        code(client.on("/test/path/**", OnOptions::new()).await),
        Some(403)
    );
    assert!(client.get("/test/path/1").await.unwrap().is_some());

    directory(&broker)
        .upsert_group_permission("TEST", "/test/path/*", Right::Get, true)
        .await
        .unwrap();
    directory(&broker)
        .upsert_group_permission("TEST", "/test/path/*", Right::On, true)
        .await
        .unwrap();
    let client = login(&broker, "nested", "pw").await;
    let all = client.get_many("/test/path/*", GetOptions::default()).await;
    assert_eq!(all.unwrap().len(), 4);
    assert!(client.on("/test/path/**", OnOptions::new()).await.is_ok());
}

/// NESTED PERMISSIONS FOR GET AND SET, "Nested permissions behaviour": with
/// `allowNestedPermissions`, a get on `/test/path/**` returns the subpaths the user may
/// get, and only those; with no permission on any subpath it is still unauthorized.
/// (pathmq's data glob `*` reaches every depth: the reference's `get('/test/path/**')` is
/// `get_many('/test/path/*')`.)
#[tokio::test]
async fn nested_permissions_get_returns_only_permitted_subpaths() {
    let broker = nested_broker(nested_config()).await;
    let client = login(&broker, "nested", "pw").await;
    let items = client
        .get_many("/test/path/*", GetOptions::default())
        .await
        .expect("a nested get is allowed");
    let mut paths: Vec<String> = items.into_iter().map(|i| i.meta.path).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/test/path/1", "/test/path/2/3", "/test/path/4/5/6"]
    );

    add_user(&broker, "stranger", "pw", json!({})).await;
    let stranger = login(&broker, "stranger", "pw").await;
    let get = stranger
        .get_many("/test/path/*", GetOptions::default())
        .await;
    assert_eq!(code(get), Some(403), "no permission on any subpath");
    let on = stranger.on("/test/path/**", OnOptions::new()).await;
    assert_eq!(code(on), Some(403), "no permission on any subpath");
}

/// NESTED PERMISSIONS FOR GET AND SET, "Nested listener behaviour example": a member
/// subscribed on `test/path/**` gets events on exactly `/test/path/1`, `/test/path/2/3` and
/// `/test/path/4/5/6`; after losing `/test/path/1` its events stop, after gaining
/// `/test/path/xyz` those fire the handler.
#[tokio::test]
async fn nested_permissions_listener_follows_permission_changes() {
    let broker = nested_broker(nested_config()).await;
    let client = login(&broker, "nested", "pw").await;
    let mut events = client
        .on("/test/path/**", OnOptions::new())
        .await
        .expect("a nested on is allowed");
    let admin = broker.broker.local_admin_client();
    for path in [
        "/test/path/7",
        "/test/path/1",
        "/test/path/2/3",
        "/test/path/4/5/6",
    ] {
        admin
            .set(path, json!({"n": 2}), SetOptions::new())
            .await
            .unwrap();
    }
    for expected in ["/test/path/1", "/test/path/2/3", "/test/path/4/5/6"] {
        assert_eq!(next_path(&mut events).await.as_deref(), Some(expected));
    }

    let directory = directory(&broker);
    directory
        .remove_group_permission("TEST", "/test/path/1", None)
        .await
        .unwrap();
    directory
        .upsert_group_permission("TEST", "/test/path/xyz", Right::On, true)
        .await
        .unwrap();
    directory
        .upsert_group_permission("TEST", "/test/path/xyz", Right::Get, true)
        .await
        .unwrap();
    // The grants of live sessions are recomputed on the change feed: retry, bounded.
    let followed = tokio::time::timeout(WAIT, async {
        loop {
            admin
                .set("/test/path/1", json!({}), SetOptions::new())
                .await
                .unwrap();
            admin
                .set("/test/path/xyz", json!({}), SetOptions::new())
                .await
                .unwrap();
            if next_path(&mut events).await.as_deref() == Some("/test/path/xyz") {
                return;
            }
        }
    })
    .await;
    assert!(
        followed.is_ok(),
        "events do not follow the permission change"
    );
}

/// The path of the next event, `None` when none comes within [`WAIT`].
async fn next_path(events: &mut pathmq::native::client::Subscription) -> Option<String> {
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .ok()
        .flatten();
    event.map(|e| e.meta.path)
}
