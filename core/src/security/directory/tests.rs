//! Tests of the directory, over an in-memory store fake.
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::*;
use crate::security::mem_store::MemStore;

const FAST: DirectoryConfig = DirectoryConfig {
    persist_permissions: true,
    bcrypt_cost: 4,
};

async fn open(store: &Arc<MemStore>, config: DirectoryConfig) -> Directory {
    Directory::open(store.clone(), config).await.unwrap()
}

fn user(username: &str, password: Option<&str>) -> UserInput {
    UserInput {
        username: username.into(),
        password: password.map(Password::from),
        custom_data: json!({"something": "usefull"}).as_object().unwrap().clone(),
        ..UserInput::default()
    }
}

fn permissions(value: Value) -> Permissions {
    serde_json::from_value(value).unwrap()
}

fn group(name: &str, permissions_json: Value) -> Group {
    Group {
        name: name.into(),
        permissions: permissions(permissions_json),
        ..Group::default()
    }
}

fn names<T: Entity>(entities: Vec<T>) -> Vec<String> {
    entities.iter().map(|e| e.name().to_owned()).collect()
}

#[tokio::test]
async fn users_are_created_listed_and_deleted() {
    let store = Arc::new(MemStore::default());
    let dir = open(&store, FAST).await;
    for name in ["TEST1", "TEST2", "other"] {
        dir.upsert_user(user(name, Some("pwd"))).await.unwrap();
    }
    assert_eq!(names(dir.list_users(None)), ["TEST1", "TEST2", "other"]);
    assert_eq!(names(dir.list_users(Some("TEST*"))), ["TEST1", "TEST2"]);
    assert_eq!(names(dir.list_users(Some("*2"))), ["TEST2"]);
    let stored = store.json("/_SYSTEM/security/users/TEST1").unwrap();
    assert_eq!(stored["custom_data"], json!({"something": "usefull"}));
    assert!(
        stored["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$2b$04$")
    );

    assert!(dir.delete_user("TEST1").await.unwrap());
    assert!(!dir.delete_user("TEST1").await.unwrap(), "already gone");
    assert!(dir.get_user("TEST1").is_none());
    assert!(store.json("/_SYSTEM/security/users/TEST1").is_none());
}

#[tokio::test]
async fn groups_are_linked_unlinked_and_deleted_with_their_links() {
    let store = Arc::new(MemStore::default());
    let dir = open(&store, FAST).await;
    let mut changes = dir.subscribe_changes();
    dir.upsert_group(group("TEST", json!({"/test/path/*": {"actions": ["get"]}})))
        .await
        .unwrap();
    dir.upsert_group(group("OTHER", json!({}))).await.unwrap();
    dir.upsert_user(user("TEST", Some("pwd"))).await.unwrap();
    assert_eq!(names(dir.list_groups(Some("TES*"))), ["TEST"]);

    assert!(dir.link_group("TEST", "TEST").await.unwrap());
    assert!(
        !dir.link_group("TEST", "TEST").await.unwrap(),
        "already linked"
    );
    assert!(dir.link_group("TEST", "OTHER").await.unwrap());
    assert_eq!(dir.list_usernames_in_group("TEST"), ["TEST"]);
    let (_, groups) = dir.user_and_groups("TEST").unwrap();
    assert_eq!(names(groups), ["OTHER", "TEST"]);
    assert!(matches!(
        dir.link_group("TEST", "NOPE").await,
        Err(DirectoryError::UnknownGroup { name }) if name == "NOPE"
    ));
    assert!(matches!(
        dir.link_group("nobody", "TEST").await,
        Err(DirectoryError::UnknownUser { username }) if username == "nobody"
    ));

    assert!(dir.unlink_group("TEST", "OTHER").await.unwrap());
    assert!(!dir.unlink_group("TEST", "OTHER").await.unwrap());
    assert!(dir.delete_group("TEST").await.unwrap());
    assert!(dir.get_user("TEST").unwrap().groups.is_empty());
    let stored = store.json("/_SYSTEM/security/users/TEST").unwrap();
    assert_eq!(stored["groups"], json!([]), "the unlink is stored");
    assert!(store.json("/_SYSTEM/security/groups/TEST").is_none());

    let mut seen = Vec::new();
    while let Ok(change) = changes.try_recv() {
        seen.push(change);
    }
    let tail = &seen[seen.len() - 2..];
    assert_eq!(
        tail,
        [
            DirectoryChange::UserChanged {
                username: "TEST".into()
            },
            DirectoryChange::GroupDeleted {
                name: "TEST".into()
            },
        ],
        "{seen:?}"
    );
}

#[tokio::test]
async fn verify_answers_one_error_for_wrong_password_and_unknown_user() {
    let store = Arc::new(MemStore::default());
    let dir = open(&store, FAST).await;
    dir.upsert_user(user("alice", Some("right"))).await.unwrap();
    dir.upsert_user(user("token-only", None)).await.unwrap();

    let alice = dir.verify("alice", "right".into()).await.unwrap();
    assert_eq!(alice.username, "alice");
    for (username, password) in [("alice", "wrong"), ("bob", "right"), ("token-only", "")] {
        assert!(
            matches!(
                dir.verify(username, password.into()).await,
                Err(AuthError::BadCredentials)
            ),
            "{username}"
        );
    }
    // An upsert without a password keeps the hash.
    dir.upsert_user(user("alice", None)).await.unwrap();
    dir.verify("alice", "right".into()).await.unwrap();
    dir.set_password("alice", "new".into()).await.unwrap();
    assert!(dir.verify("alice", "right".into()).await.is_err());
    dir.verify("alice", "new".into()).await.unwrap();
}

#[test]
fn debug_of_a_user_input_never_shows_the_password() {
    let input = user("alice", Some("Sup3r-s3cret"));
    let shown = format!("{input:?} {input:#?}");
    assert!(!shown.contains("Sup3r-s3cret"), "{shown}");
    assert!(shown.contains("***"));
}

/// Reference: "add a group", then "upsert a permission", "remove a permission" and
/// "remove a permission by upserting a group".
#[tokio::test]
async fn upserting_a_group_merges_down_to_action_level_and_prohibits_remove() {
    let store = Arc::new(MemStore::default());
    let dir = open(&store, FAST).await;
    dir.upsert_group(group(
        "TEST",
        json!({
            "/test/path/*": {"actions": ["get", "set"]},
            "/test/allow/all": {"actions": ["*"]},
            "/test/do/not/subscribe": {"actions": ["get", "on"]}
        }),
    ))
    .await
    .unwrap();

    assert!(
        dir.upsert_group_permission("TEST", "/test/path/*", Right::On, true)
            .await
            .unwrap()
    );
    let perms = dir.get_group("TEST").unwrap().permissions;
    assert_eq!(
        perms["/test/path/*"].actions,
        [Right::Get, Right::Set, Right::On].into()
    );
    assert!(
        dir.remove_group_permission("TEST", "/test/path/*", Some(Right::On))
            .await
            .unwrap()
    );
    let perms = dir.get_group("TEST").unwrap().permissions;
    assert_eq!(
        perms["/test/path/*"].actions,
        [Right::Get, Right::Set].into()
    );

    // Upserting merges: globs not named are kept, actions are added, and a prohibit
    // removes the actions it names (and is kept: it wins over other allows).
    dir.upsert_group(group(
        "TEST",
        json!({
            "/test/path/*": {"actions": ["remove"]},
            "/test/do/not/subscribe": {"prohibit": ["on"]},
            "test/new": {"actions": ["get"]}
        }),
    ))
    .await
    .unwrap();
    let expected = permissions(json!({
        "/test/path/*": {"actions": ["get", "set", "remove"]},
        "/test/allow/all": {"actions": ["*"]},
        "/test/do/not/subscribe": {"actions": ["get"], "prohibit": ["on"]},
        "/test/new": {"actions": ["get"]}
    }));
    assert_eq!(dir.get_group("TEST").unwrap().permissions, expected);

    // Allowing again lifts the prohibit; prohibiting `*` removes every action.
    dir.upsert_group_permission("TEST", "/test/do/not/subscribe", Right::On, true)
        .await
        .unwrap();
    dir.upsert_group_permission("TEST", "/test/path/*", Right::All, false)
        .await
        .unwrap();
    let perms = dir.get_group("TEST").unwrap().permissions;
    assert_eq!(
        perms["/test/do/not/subscribe"],
        PermissionEntry {
            actions: [Right::Get, Right::On].into(),
            prohibit: Default::default()
        }
    );
    assert_eq!(
        perms["/test/path/*"],
        PermissionEntry {
            actions: Default::default(),
            prohibit: [Right::All].into()
        }
    );
    assert!(
        dir.remove_group_permission("TEST", "/test/path/*", None)
            .await
            .unwrap()
    );
    assert!(
        !dir.get_group("TEST")
            .unwrap()
            .permissions
            .contains_key("/test/path/*")
    );
    // Persisted as merged.
    let stored = store.json("/_SYSTEM/security/groups/TEST").unwrap();
    assert_eq!(
        stored["permissions"]["/test/new"],
        json!({"actions": ["get"]})
    );
}

/// Reference: USER PERMISSIONS.
#[tokio::test]
async fn users_have_their_own_permissions() {
    let store = Arc::new(MemStore::default());
    let dir = open(&store, FAST).await;
    let mut input = user("test_username", Some("test_pwd"));
    input.permissions = permissions(json!({"/test/path/*": {"actions": ["on", "set"]}}));
    dir.upsert_user(input).await.unwrap();
    let path = |dir: &Directory| dir.get_user("test_username").unwrap().permissions;

    dir.remove_user_permission("test_username", "/test/path/*", Some(Right::On))
        .await
        .unwrap();
    assert_eq!(path(&dir)["/test/path/*"].actions, [Right::Set].into());
    dir.remove_user_permission("test_username", "/test/path/*", None)
        .await
        .unwrap();
    assert!(path(&dir).is_empty());
    dir.upsert_user_permission("test_username", "/test/path/*", Right::Set, true)
        .await
        .unwrap();
    assert_eq!(path(&dir)["/test/path/*"].actions, [Right::Set].into());
    assert!(matches!(
        dir.upsert_user_permission("nobody", "/a", Right::Get, true)
            .await,
        Err(DirectoryError::UnknownUser { .. })
    ));
}

#[tokio::test]
async fn the_directory_survives_a_restart() {
    let store = Arc::new(MemStore::default());
    let dir = open(&store, FAST).await;
    dir.upsert_group(group("G", json!({"/a/*": {"actions": ["get"]}})))
        .await
        .unwrap();
    dir.upsert_user(user("u", Some("pwd"))).await.unwrap();
    dir.link_group("u", "G").await.unwrap();
    let (user_before, groups_before) = dir.user_and_groups("u").unwrap();
    drop(dir);

    let dir = open(&store, FAST).await;
    assert_eq!(
        dir.user_and_groups("u").unwrap(),
        (user_before, groups_before)
    );
    dir.verify("u", "pwd".into()).await.unwrap();
}

#[tokio::test]
async fn volatile_permissions_are_not_persisted() {
    let volatile = DirectoryConfig {
        persist_permissions: false,
        ..FAST
    };
    let store = Arc::new(MemStore::default());
    let dir = open(&store, volatile).await;
    dir.ensure_admin("admin".into()).await.unwrap();
    dir.upsert_group(group("G", json!({"/a/*": {"actions": ["get"]}})))
        .await
        .unwrap();
    let mut input = user("u", Some("pwd"));
    input.permissions = permissions(json!({"/u/*": {"actions": ["*"]}}));
    dir.upsert_user(input).await.unwrap();
    dir.link_group("u", "G").await.unwrap();
    dir.upsert_group_permission("G", "/b", Right::Set, true)
        .await
        .unwrap();
    // Cached: in force now.
    assert_eq!(dir.get_group("G").unwrap().permissions.len(), 2);
    assert_eq!(dir.get_user("u").unwrap().permissions.len(), 1);
    // Not stored.
    for path in [
        "/_SYSTEM/security/groups/G",
        "/_SYSTEM/security/users/u",
        "/_SYSTEM/security/groups/_ADMIN",
    ] {
        let stored = store.json(path).unwrap();
        assert_eq!(stored["permissions"], json!({}), "{path}");
    }
    drop(dir);

    // After a restart: users, hashes, links, groups and custom data; no permissions,
    // until `ensure_admin` gives `_ADMIN` its rights back.
    let dir = open(&store, volatile).await;
    let (user, groups) = dir.user_and_groups("u").unwrap();
    assert!(user.permissions.is_empty());
    assert_eq!(user.custom_data["something"], "usefull");
    assert_eq!(names(groups.clone()), ["G"]);
    assert!(groups[0].permissions.is_empty());
    dir.verify("u", "pwd".into()).await.unwrap();
    assert!(dir.get_group(ADMIN_GROUP).unwrap().permissions.is_empty());
    dir.ensure_admin("admin".into()).await.unwrap();
    assert_eq!(
        dir.get_group(ADMIN_GROUP).unwrap().permissions["/*"].actions,
        [Right::All].into()
    );

    // Permissions written by a persisting run are ignored by a volatile one.
    let persisted = Arc::new(MemStore::default());
    open(&persisted, FAST)
        .await
        .upsert_group(group("G", json!({"/a": {"actions": ["get"]}})))
        .await
        .unwrap();
    let dir = open(&persisted, volatile).await;
    assert!(dir.get_group("G").unwrap().permissions.is_empty());
}

#[tokio::test]
async fn ensure_admin_creates_once_and_never_resets_the_password() {
    let store = Arc::new(MemStore::default());
    let dir = open(&store, FAST).await;
    let setup = dir.ensure_admin("first".into()).await.unwrap();
    assert_eq!(
        setup,
        AdminSetup {
            user_created: true,
            group_created: true
        }
    );
    let (admin, groups) = dir.user_and_groups(ADMIN_USER).unwrap();
    assert_eq!(names(groups.clone()), [ADMIN_GROUP]);
    assert_eq!(
        groups[0].permissions,
        permissions(json!({"/*": {"actions": ["*"]}}))
    );
    drop(dir);

    let dir = open(&store, FAST).await;
    let mut changes = dir.subscribe_changes();
    let setup = dir.ensure_admin("second".into()).await.unwrap();
    assert_eq!(
        setup,
        AdminSetup {
            user_created: false,
            group_created: false
        }
    );
    assert_eq!(dir.get_user(ADMIN_USER).unwrap(), admin, "kept as it was");
    assert!(changes.try_recv().is_err(), "nothing changed");
    dir.verify(ADMIN_USER, "first".into()).await.unwrap();
    assert!(dir.verify(ADMIN_USER, "second".into()).await.is_err());

    dir.reset_admin_password("second".into()).await.unwrap();
    dir.verify(ADMIN_USER, "second".into()).await.unwrap();

    assert!(matches!(
        dir.delete_user(ADMIN_USER).await,
        Err(DirectoryError::Reserved { .. })
    ));
    assert!(matches!(
        dir.delete_group(ADMIN_GROUP).await,
        Err(DirectoryError::Reserved { .. })
    ));
    assert!(matches!(
        dir.unlink_group(ADMIN_USER, ADMIN_GROUP).await,
        Err(DirectoryError::Reserved { .. })
    ));
    assert!(matches!(
        dir.ensure_admin("".into()).await,
        Err(DirectoryError::Password {
            source: PasswordError::Empty,
            ..
        })
    ));
}

#[tokio::test]
async fn bad_names_and_globs_are_refused_with_the_value() {
    let store = Arc::new(MemStore::default());
    let dir = open(&store, FAST).await;
    let long = "x".repeat(MAX_NAME_LEN + 1);
    for name in [
        "",
        "a/b",
        "dev*",
        "a+",
        "#",
        "a?",
        "{{user.username}}",
        "a\nb",
        &long,
    ] {
        match dir.upsert_user(user(name, None)).await {
            Err(DirectoryError::InvalidName {
                kind: "user",
                name: n,
                ..
            }) => {
                assert_eq!(n, name)
            }
            other => panic!("{name:?}: {other:?}"),
        }
        assert!(matches!(
            dir.upsert_group(group(name, json!({}))).await,
            Err(DirectoryError::InvalidName { kind: "group", .. })
        ));
    }
    let bad_glob = group("G", json!({"": {"actions": ["get"]}}));
    assert!(matches!(
        dir.upsert_group(bad_glob).await,
        Err(DirectoryError::InvalidPermissionPath { path, .. }) if path.is_empty()
    ));
    for typo in ["/s/{{user.usrname}}/*", "/s/{{user.username/*"] {
        let bad_template = group("G", json!({ typo: {"actions": ["get"]} }));
        assert!(matches!(
            dir.upsert_group(bad_template).await,
            Err(DirectoryError::InvalidTemplate { path, .. }) if path == typo
        ));
        assert!(matches!(
            dir.upsert_user_permission("_ADMIN", typo, Right::Get, true)
                .await,
            Err(DirectoryError::InvalidTemplate { .. })
        ));
    }
    assert!(dir.list_groups(None).is_empty() && dir.list_users(None).is_empty());
}

#[tokio::test]
async fn a_failed_store_write_leaves_the_cache_unchanged() {
    let store = Arc::new(MemStore::default());
    let dir = open(&store, FAST).await;
    dir.upsert_group(group("G", json!({"/a": {"actions": ["get"]}})))
        .await
        .unwrap();
    let before = dir.get_group("G");
    store.fail.store(true, Ordering::SeqCst);
    let err = dir
        .upsert_group_permission("G", "/b", Right::Set, true)
        .await
        .unwrap_err();
    assert!(matches!(err, DirectoryError::Store { .. }), "{err}");
    assert!(err.to_string().contains("group `G`"), "{err}");
    assert!(matches!(
        dir.delete_group("G").await,
        Err(DirectoryError::Store { .. })
    ));
    assert_eq!(dir.get_group("G"), before);
}

#[tokio::test]
async fn a_corrupt_record_stops_the_directory_from_opening() {
    let store = Arc::new(MemStore::default());
    let write = Write {
        path: Path::parse("/_SYSTEM/security/groups/G").unwrap(),
        payload: Payload::json(&json!({"name": "H"})),
        merge: false,
        modified_by: None,
        increment: None,
        properties: None,
    };
    store.set(write, None).await.unwrap();
    assert!(matches!(
        Directory::open(store, FAST).await,
        Err(DirectoryError::Corrupt { path, .. }) if path == "/_SYSTEM/security/groups/G"
    ));
}
