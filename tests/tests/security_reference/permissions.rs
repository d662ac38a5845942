//! ANONYMOUS USER, USER PERMISSIONS and VOLATILE PERMISSIONS.

use pathmq::core::security::{ANONYMOUS_USER, Group, Permissions, Right};
use pathmq::native::client::{DataApi as _, OnOptions, SetOptions};
use serde_json::json;

use super::support::start_with;
use super::*;

/// ANONYMOUS USER: with `allowAnonymousAccess: true`, `happn.client.create({username:
/// '_ANONYMOUS'})` logs in without a password, and the anonymous user can be given
/// permissions.
#[tokio::test]
async fn anonymous_user() {
    let mut config = secure_config();
    config.security.allow_anonymous_access = true;
    let broker = start_with(config).await;
    let anonymous = directory(&broker)
        .get_user(ANONYMOUS_USER)
        .expect("created");
    assert!(anonymous.password_hash.is_none() && anonymous.permissions.is_empty());

    let (mut wire, answer) = Wire::login(&broker, json!({"username": "_ANONYMOUS"})).await;
    let session = answer.expect("_ANONYMOUS logs in without a password");
    assert_eq!(session["user"]["username"], "_ANONYMOUS");
    let refused = wire.request("get", Some("/public/x"), json!(null)).await;
    assert_eq!(refused.unwrap_err()["code"], 403, "no permissions yet");

    directory(&broker)
        .upsert_user_permission(ANONYMOUS_USER, "/public/*", Right::Get, true)
        .await
        .unwrap();
    broker
        .broker
        .local_admin_client()
        .set("/public/x", json!({"open": true}), SetOptions::new())
        .await
        .unwrap();
    let (mut wire, answer) = Wire::login(&broker, json!({"username": "_ANONYMOUS"})).await;
    answer.unwrap();
    let got = wire.request("get", Some("/public/x"), json!(null)).await;
    assert_eq!(got.expect("get is allowed now")["open"], true);
    let set = wire.request("set", Some("/public/x"), json!({})).await;
    assert_eq!(set.unwrap_err()["code"], 403, "only get");

    // Off (the default): `_ANONYMOUS` is refused.
    let closed = secure_broker().await;
    let (_, answer) = Wire::login(&closed, json!({"username": "_ANONYMOUS"})).await;
    assert_eq!(answer.unwrap_err()["code"], 401);
}

/// USER PERMISSIONS: permissions added to a user directly (`upsertUser` with
/// `permissions`), then `removePermission` of `on`, of `set`, of the whole path,
/// `upsertPermission` of `set` again, and `listPermissions`.
///
/// pathmq lists a user's own permissions as the `permissions` map of `get_user`
/// (`{glob: {actions, prohibit}}`) rather than `[{action, authorized, path}]`.
#[tokio::test]
async fn user_permissions() {
    let broker = secure_broker().await;
    let directory = directory(&broker);
    let mut permissions = Permissions::new();
    permissions.insert("/test/path/*".into(), allow(&[Right::On, Right::Set]));
    directory
        .upsert_user(UserInput {
            username: "test_username".into(),
            password: Some("test_pwd".into()),
            permissions,
            ..UserInput::default()
        })
        .await
        .unwrap();
    let user = || async { login(&broker, "test_username", "test_pwd").await };

    // "this user specifically can set and listen on /test/path/*"
    let client = user().await;
    assert!(client.on("/test/path/*", OnOptions::new()).await.is_ok());
    client
        .set("/test/path/a", json!({}), SetOptions::new())
        .await
        .unwrap();
    assert_eq!(code(client.get("/test/path/a").await), Some(403));

    assert!(
        directory
            .remove_user_permission("test_username", "/test/path/*", Some(Right::On))
            .await
            .unwrap()
    );
    let client = user().await;
    assert_eq!(
        code(client.on("/test/path/*", OnOptions::new()).await),
        Some(403)
    );
    assert!(
        client
            .set("/test/path/a", json!({}), SetOptions::new())
            .await
            .is_ok()
    );

    directory
        .remove_user_permission("test_username", "/test/path/*", Some(Right::Set))
        .await
        .unwrap();
    let client = user().await;
    let set = client
        .set("/test/path/a", json!({}), SetOptions::new())
        .await;
    assert_eq!(code(set), Some(403));

    // Remove all permissions on the path, then re-add `set`.
    directory
        .upsert_user_permission("test_username", "/test/path/*", Right::Get, true)
        .await
        .unwrap();
    directory
        .remove_user_permission("test_username", "/test/path/*", None)
        .await
        .unwrap();
    assert!(
        directory
            .get_user("test_username")
            .unwrap()
            .permissions
            .is_empty()
    );
    directory
        .upsert_user_permission("test_username", "/test/path/*", Right::Set, true)
        .await
        .unwrap();
    let client = user().await;
    assert!(
        client
            .set("/test/path/a", json!({}), SetOptions::new())
            .await
            .is_ok()
    );

    // listPermissions: [{action: 'set', authorized: true, path: '/test/path/*'}].
    let listed: Vec<_> = (directory.get_user("test_username").unwrap().permissions)
        .into_iter()
        .flat_map(|(path, entry)| {
            entry
                .actions
                .into_iter()
                .map(move |a| (a, true, path.clone()))
        })
        .collect();
    assert_eq!(listed, [(Right::Set, true, "/test/path/*".to_owned())]);
}

/// VOLATILE PERMISSIONS: with `persistPermissions: false`, permissions are not kept
/// between restarts (users and groups are: docs/SECURITY.md, `persist_permissions`).
#[tokio::test]
async fn volatile_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let config = |persist: bool| {
        let mut config = secure_config();
        config.storage.engine = pathmq::config::Engine::Redb;
        config.storage.path = dir.path().join(format!("persist-{persist}.redb"));
        config.security.persist_permissions = persist;
        config
    };
    for persist in [false, true] {
        let broker = start_with(config(persist)).await;
        let group: Group = serde_json::from_value(json!({
            "name": "TEST",
            "permissions": {"/test/path/*": {"actions": ["get", "set"]}},
            "custom_data": {"kept": true}
        }))
        .unwrap();
        directory(&broker).upsert_group(group).await.unwrap();
        add_user(&broker, "TEST", "TEST PWD", json!({"kept": true})).await;
        directory(&broker).link_group("TEST", "TEST").await.unwrap();
        directory(&broker)
            .upsert_user_permission("TEST", "/own/*", Right::Set, true)
            .await
            .unwrap();
        let client = login(&broker, "TEST", "TEST PWD").await;
        assert!(
            client
                .set("/test/path/a", json!({}), SetOptions::new())
                .await
                .is_ok()
        );
        drop(client);
        broker.broker.shutdown().await;

        let broker = start_with(config(persist)).await;
        let directory = directory(&broker);
        let group = directory.get_group("TEST").expect("the group is kept");
        let user = directory.get_user("TEST").expect("the user is kept");
        assert_eq!(group.custom_data, object(json!({"kept": true})));
        assert!(user.groups.contains("TEST"), "links are kept");
        let client = login(&broker, "TEST", "TEST PWD").await;
        let set = client
            .set("/test/path/a", json!({}), SetOptions::new())
            .await;
        let own = client.set("/own/a", json!({}), SetOptions::new()).await;
        if persist {
            assert!(set.is_ok() && own.is_ok(), "persisted permissions are kept");
        } else {
            assert!(group.permissions.is_empty() && user.permissions.is_empty());
            assert_eq!((code(set), code(own)), (Some(403), Some(403)));
            // `_ADMIN` gets its rights back at every start.
            let admin = login(&broker, "_ADMIN", ADMIN_PASSWORD).await;
            assert!(
                admin
                    .set("/test/path/a", json!({}), SetOptions::new())
                    .await
                    .is_ok()
            );
        }
        broker.broker.shutdown().await;
    }
}
