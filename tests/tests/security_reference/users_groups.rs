//! SECURITY USERS AND GROUPS: add a group, list groups, add a user, link a fetched user to
//! a fetched group, list users, upsert a permission, remove a permission, remove a
//! permission by upserting a group.

use pathmq::core::security::{Group, PermissionEntry, Right};
use pathmq::native::client::{DataApi as _, OnOptions, SetOptions};
use serde_json::{Value, json};

use super::*;

/// The reference's group: `get` and `set` on `/test/path/*`, everything on
/// `/test/allow/all`, and custom data.
fn test_group() -> Group {
    serde_json::from_value(json!({
        "name": "TEST",
        "permissions": {
            "/test/path/*": {"actions": ["get", "set"]},
            "/test/allow/all": {"actions": ["*"]}
        },
        "custom_data": {"test": "data"}
    }))
    .expect("the reference's group shape")
}

/// A broker with the `TEST` group and the user `TEST` (password `TEST PWD`) in it.
async fn broker_with_test_member() -> TestBroker {
    let broker = secure_broker().await;
    directory(&broker).upsert_group(test_group()).await.unwrap();
    add_user(&broker, "TEST", "TEST PWD", json!({})).await;
    directory(&broker).link_group("TEST", "TEST").await.unwrap();
    broker
}

/// `{actions, prohibit}`.
fn entry(actions: &[Right], prohibit: &[Right]) -> PermissionEntry {
    PermissionEntry {
        actions: actions.iter().copied().collect(),
        prohibit: prohibit.iter().copied().collect(),
    }
}

/// add a group: `upsertGroup(myGroup)` stores the group, its permissions and custom data;
/// the NB: upserting it again merges the new permissions into the stored ones "down to
/// action level".
#[tokio::test]
async fn add_a_group() {
    let broker = secure_broker().await;
    let directory = directory(&broker);
    let upserted = directory.upsert_group(test_group()).await.unwrap();
    assert_eq!(upserted, test_group());
    assert_eq!(directory.get_group("TEST"), Some(upserted));

    let mut more = test_group();
    more.permissions = serde_json::from_value(json!({
        "/test/path/*": {"actions": ["on"]},
        "/test/other": {"actions": ["get"]}
    }))
    .unwrap();
    let merged = directory.upsert_group(more).await.unwrap();
    assert_eq!(
        merged.permissions["/test/path/*"],
        allow(&[Right::Get, Right::Set, Right::On])
    );
    assert_eq!(merged.permissions["/test/allow/all"], allow(&[Right::All]));
    assert_eq!(merged.permissions["/test/other"], allow(&[Right::Get]));
    assert_eq!(merged.custom_data, object(json!({"test": "data"})));
}

/// list groups: `listGroups('TES*', {criteria:{name:{$eq:'TEST'}}})` returns the group
/// just added.
///
/// pathmq's `Directory::list_groups` takes the name pattern only; mongo `criteria`,
/// `skip`, `limit` and `count` are applied by the caller to the returned list.
#[tokio::test]
async fn list_groups() {
    let broker = secure_broker().await;
    let directory = directory(&broker);
    directory.upsert_group(test_group()).await.unwrap();
    for name in ["TESTER", "OTHER"] {
        let mut group = test_group();
        group.name = name.into();
        directory.upsert_group(group).await.unwrap();
    }
    let by_pattern: Vec<String> = (directory.list_groups(Some("TES*")).into_iter())
        .map(|g| g.name)
        .collect();
    assert_eq!(by_pattern, ["TEST", "TESTER"]);
    let found: Vec<Group> = (directory.list_groups(Some("TES*")).into_iter())
        .filter(|g| g.name == "TEST")
        .collect();
    assert_eq!(found, [test_group()], "the group just added");
    assert_eq!(directory.list_groups(Some("TES*")).len(), 2, "count");
    assert!(directory.list_groups(Some("NOPE*")).is_empty());
}

/// add a user: `upsertUser({username:'TEST', password:'TEST PWD', custom_data})` adds a user
/// "with no permissions yet": it logs in, and may do nothing until linked to a group.
#[tokio::test]
async fn add_a_user() {
    let broker = secure_broker().await;
    let user = directory(&broker)
        .upsert_user(UserInput {
            username: "TEST".into(),
            password: Some("TEST PWD".into()),
            custom_data: object(json!({"something": "usefull"})),
            ..UserInput::default()
        })
        .await
        .unwrap();
    assert_eq!(user.username, "TEST");
    assert_eq!(user.custom_data, object(json!({"something": "usefull"})));
    assert!(user.groups.is_empty() && user.permissions.is_empty());
    let hash = user.password_hash.as_deref().expect("a password hash");
    assert!(hash.starts_with("$2") && !hash.contains("TEST PWD"));
    assert_eq!(directory(&broker).get_user("TEST"), Some(user));

    let client = login(&broker, "TEST", "TEST PWD").await;
    assert_eq!(code(client.get("/test/path/x").await), Some(403));
    let set = client
        .set("/test/path/x", json!({}), SetOptions::new())
        .await;
    assert_eq!(code(set), Some(403));
}

/// link a fetched user to a fetched group: `getUser('TEST')`, `getGroup('TEST')`,
/// `linkGroup(group, user)`: "your TEST user now has the permissions assigned by your TEST
/// group".
///
/// pathmq also merges the permissions of several groups on one glob (docs/SECURITY.md
/// "The model": the reference keeps only one group's entry).
#[tokio::test]
async fn link_a_fetched_user_to_a_fetched_group() {
    let broker = secure_broker().await;
    let directory = directory(&broker);
    directory.upsert_group(test_group()).await.unwrap();
    add_user(&broker, "TEST", "TEST PWD", json!({})).await;

    let user = directory.get_user("TEST").expect("getUser");
    let group = directory.get_group("TEST").expect("getGroup");
    assert!(
        directory
            .link_group(&user.username, &group.name)
            .await
            .unwrap()
    );
    assert!(directory.get_user("TEST").unwrap().groups.contains("TEST"));

    let client = login(&broker, "TEST", "TEST PWD").await;
    client
        .set("/test/path/a", json!({"n": 1}), SetOptions::new())
        .await
        .expect("set on /test/path/*");
    assert_eq!(
        client.get("/test/path/a").await.unwrap().unwrap().data["n"],
        1
    );
    client
        .set("/test/allow/all", json!({}), SetOptions::new())
        .await
        .expect("* on /test/allow/all");
    assert!(client.remove("/test/allow/all").await.is_ok());
    assert_eq!(
        code(client.on("/test/path/*", OnOptions::new()).await),
        Some(403)
    );
    assert_eq!(
        code(client.set("/elsewhere", json!({}), SetOptions::new()).await),
        Some(403)
    );

    // pathmq: a second group's `on` on the same glob adds to the first's `get` and `set`.
    let mut second = test_group();
    second.name = "TEST2".into();
    second.permissions = [("/test/path/*".to_owned(), allow(&[Right::On]))].into();
    directory.upsert_group(second).await.unwrap();
    directory.link_group("TEST", "TEST2").await.unwrap();
    let client = login(&broker, "TEST", "TEST PWD").await;
    assert!(client.on("/test/path/*", OnOptions::new()).await.is_ok());
    assert!(
        client.get("/test/path/a").await.is_ok(),
        "merged, not replaced"
    );
}

/// list users: `listUsers('TEST*', {criteria:{username:{$eq:'TESTUSER1'}}})`,
/// `listUsersByGroup('TEST')` and `listUserNamesByGroup('TEST')`.
///
/// pathmq's `Directory::list_users` takes the name pattern only (criteria applied by the
/// caller); by group, `list_usernames_in_group`, and the users themselves from the list.
#[tokio::test]
async fn list_users() {
    let broker = secure_broker().await;
    let directory = directory(&broker);
    directory.upsert_group(test_group()).await.unwrap();
    for name in ["TESTUSER1", "TESTUSER2", "TESTUSER3", "OTHERUSER"] {
        add_user(&broker, name, "pw", json!({"test": 1})).await;
    }
    directory.link_group("TESTUSER1", "TEST").await.unwrap();

    let names = |users: Vec<pathmq::core::security::User>| -> Vec<String> {
        users.into_iter().map(|u| u.username).collect()
    };
    assert_eq!(
        names(directory.list_users(Some("TEST*"))),
        ["TESTUSER1", "TESTUSER2", "TESTUSER3"]
    );
    let with_criteria: Vec<_> = (directory.list_users(Some("TEST*")).into_iter())
        .filter(|u| u.username == "TESTUSER1")
        .collect();
    assert_eq!(names(with_criteria), ["TESTUSER1"]);

    // listUsersByGroup('TEST'): the users, with their custom data.
    let by_group: Vec<(String, Value)> = (directory.list_users(None).into_iter())
        .filter(|u| u.groups.contains("TEST"))
        .map(|u| (u.username, Value::Object(u.custom_data)))
        .collect();
    assert_eq!(by_group, [("TESTUSER1".to_owned(), json!({"test": 1}))]);
    // listUserNamesByGroup('TEST'): just the names.
    assert_eq!(directory.list_usernames_in_group("TEST"), ["TESTUSER1"]);
    assert!(directory.list_usernames_in_group("NOGROUP").is_empty());
}

/// upsert a permission: `upsertPermission('TEST', '/test/path/*', 'on', true)`: members of
/// TEST may now `on` as well as `get` and `set` there.
///
/// With `allow = false` the reference removes the permission; pathmq records a prohibit
/// of the action, which removes it from the group's allows and also wins over any other
/// group's allow (`Directory::upsert_group_permission`; docs/SECURITY.md "The model").
#[tokio::test]
async fn upsert_a_permission() {
    let broker = broker_with_test_member().await;
    let directory = directory(&broker);
    let before = login(&broker, "TEST", "TEST PWD").await;
    assert_eq!(
        code(before.on("/test/path/*", OnOptions::new()).await),
        Some(403)
    );

    assert!(
        directory
            .upsert_group_permission("TEST", "/test/path/*", Right::On, true)
            .await
            .unwrap()
    );
    assert_eq!(
        directory.get_group("TEST").unwrap().permissions["/test/path/*"],
        allow(&[Right::Get, Right::Set, Right::On])
    );
    let client = login(&broker, "TEST", "TEST PWD").await;
    let mut events = client
        .on("/test/path/*", OnOptions::new())
        .await
        .expect("on is allowed now");
    client
        .set("/test/path/x", json!({"v": 1}), SetOptions::new())
        .await
        .unwrap();
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("an event");
    assert_eq!(event.data["v"], 1);
    // The session logged in before the change gets it too (docs/SECURITY.md).
    eventually("the earlier session may `on`", || async {
        before.on("/test/path/*", OnOptions::new()).await.is_ok()
    })
    .await;

    // pathmq: `allow = false` prohibits.
    directory
        .upsert_group_permission("TEST", "/test/path/*", Right::On, false)
        .await
        .unwrap();
    assert_eq!(
        directory.get_group("TEST").unwrap().permissions["/test/path/*"],
        entry(&[Right::Get, Right::Set], &[Right::On])
    );
    let client = login(&broker, "TEST", "TEST PWD").await;
    assert_eq!(
        code(client.on("/test/path/*", OnOptions::new()).await),
        Some(403)
    );
    assert!(client.get("/test/path/x").await.is_ok());
}

/// remove a permission: `removePermission('TEST', '/test/path/*', 'on')`: "users belonging
/// to the TEST group can now only do set and get operations".
#[tokio::test]
async fn remove_a_permission() {
    let broker = broker_with_test_member().await;
    let directory = directory(&broker);
    directory
        .upsert_group_permission("TEST", "/test/path/*", Right::On, true)
        .await
        .unwrap();
    let client = login(&broker, "TEST", "TEST PWD").await;
    assert!(client.on("/test/path/*", OnOptions::new()).await.is_ok());

    assert!(
        directory
            .remove_group_permission("TEST", "/test/path/*", Some(Right::On))
            .await
            .unwrap()
    );
    assert_eq!(
        directory.get_group("TEST").unwrap().permissions["/test/path/*"],
        allow(&[Right::Get, Right::Set])
    );
    let client = login(&broker, "TEST", "TEST PWD").await;
    assert_eq!(
        code(client.on("/test/path/*", OnOptions::new()).await),
        Some(403)
    );
    client
        .set("/test/path/x", json!({}), SetOptions::new())
        .await
        .expect("set is kept");
    assert!(client.get("/test/path/x").await.is_ok(), "get is kept");
    // Removing it again changes nothing.
    assert!(
        !directory
            .remove_group_permission("TEST", "/test/path/*", Some(Right::On))
            .await
            .unwrap()
    );
}

/// remove a permission by upserting a group: upserting `TEST` with
/// `'/test/do/not/subscribe': {prohibit: ['on']}` deletes the `on` permission there.
///
/// pathmq keeps the prohibit, and a prohibit wins over any allow from wherever it comes
/// (docs/SECURITY.md "The model"): another group's `on` does not lift it.
#[tokio::test]
async fn remove_a_permission_by_upserting_a_group() {
    let broker = broker_with_test_member().await;
    let directory = directory(&broker);
    directory
        .upsert_group_permission("TEST", "/test/do/not/subscribe", Right::On, true)
        .await
        .unwrap();
    directory
        .upsert_group_permission("TEST", "/test/do/not/subscribe", Right::Get, true)
        .await
        .unwrap();
    let client = login(&broker, "TEST", "TEST PWD").await;
    assert!(
        client
            .on("/test/do/not/subscribe", OnOptions::new())
            .await
            .is_ok()
    );

    let group: Group = serde_json::from_value(json!({
        "name": "TEST",
        "permissions": {
            "/test/path/*": {"actions": ["get", "set"]},
            "/test/allow/all": {"actions": ["*"]},
            "/test/do/not/subscribe": {"prohibit": ["on"]}
        },
        "custom_data": {"test": "data"}
    }))
    .unwrap();
    let upserted = directory.upsert_group(group).await.unwrap();
    assert_eq!(
        upserted.permissions["/test/do/not/subscribe"],
        entry(&[Right::Get], &[Right::On]),
        "`on` is gone; pathmq keeps the prohibit"
    );
    let client = login(&broker, "TEST", "TEST PWD").await;
    assert_eq!(
        code(client.on("/test/do/not/subscribe", OnOptions::new()).await),
        Some(403)
    );
    assert!(client.get("/test/do/not/subscribe").await.is_ok());

    // pathmq: the prohibit wins over another group's allow.
    let mut other = test_group();
    other.name = "SUBSCRIBERS".into();
    other.permissions = [("/test/do/*".to_owned(), allow(&[Right::On]))].into();
    directory.upsert_group(other).await.unwrap();
    directory.link_group("TEST", "SUBSCRIBERS").await.unwrap();
    let client = login(&broker, "TEST", "TEST PWD").await;
    assert!(
        client
            .on("/test/do/something", OnOptions::new())
            .await
            .is_ok()
    );
    assert_eq!(
        code(client.on("/test/do/not/subscribe", OnOptions::new()).await),
        Some(403)
    );
}
