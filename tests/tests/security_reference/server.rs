//! SECURITY SERVER, SECURITY CLIENT, SECURITY OPTIONS and UNCONFIGURED SESSION CLEANUP.

use std::time::Duration;

use pathmq::core::security::{
    ADMIN_GROUP, ADMIN_USER, Credentials, LoginError, Right, SessionFacts,
};
use pathmq::native::client::{DataApi as _, GetOptions, SetOptions};
use serde_json::json;

use super::support::start_with;
use super::*;

/// SECURITY SERVER: `happn.service.create({secure:true, adminUser:{password:'testPWD'}})`
/// creates the `_ADMIN` user and group, and `_ADMIN` logs in with that password.
///
/// pathmq has no default admin password (the reference's is `happn`): a secure start
/// without one is refused, with how to set it (docs/SECURITY.md "Turning it on").
#[tokio::test]
async fn security_server_create_with_admin_password() {
    let broker = secure_broker().await;
    let directory = directory(&broker);
    let admin = directory.get_user(ADMIN_USER).expect("_ADMIN is created");
    assert!(admin.groups.contains(ADMIN_GROUP), "{admin:?}");
    let hash = admin.password_hash.as_deref().expect("a password");
    assert!(hash.starts_with("$2") && !hash.contains(ADMIN_PASSWORD));
    let group = directory.get_group(ADMIN_GROUP).expect("the _ADMIN group");
    assert_eq!(group.permissions["/*"], allow(&[Right::All]));

    let client = login(&broker, ADMIN_USER, ADMIN_PASSWORD).await;
    client
        .set("/anything/at/all", json!({"a": 1}), SetOptions::new())
        .await
        .expect("_ADMIN may set anywhere");
    assert_eq!(refused_login(&broker, ADMIN_USER, "happn").await.0, 401);

    let mut no_password = secure_config();
    no_password.security.admin_password = None;
    let refused = pathmq::Broker::builder().config(no_password).start().await;
    let error = refused
        .err()
        .expect("a secure start without an admin password");
    assert!(
        error.to_string().contains("PATHMQ_ADMIN_PASSWORD"),
        "{error}"
    );
}

/// SECURITY CLIENT: `happn.client.create({username:'_ADMIN', password:'testPWD',
/// secure:true})` logs in; a secure broker refuses a client without credentials.
#[tokio::test]
async fn security_client_logs_in_with_admin_credentials() {
    let broker = secure_broker().await;
    let client = login(&broker, ADMIN_USER, ADMIN_PASSWORD).await;
    assert!(client.session_id().is_some());
    client
        .set("/test/client", json!({"logged": "in"}), SetOptions::new())
        .await
        .unwrap();
    let got = client.get("/test/client").await.unwrap().expect("stored");
    assert_eq!(got.data["logged"], "in");

    assert_eq!(refused_login(&broker, ADMIN_USER, "wrong").await.0, 401);
    // Without credentials at all.
    let mut anonymous = ClientConfig::websocket(url(&broker));
    anonymous.reconnect = ReconnectPolicy::disabled();
    assert!(Client::connect(anonymous).await.is_err());
}

/// SECURITY OPTIONS, `disableDefaultAdminNetworkConnections`: `_ADMIN` over the network is
/// refused with `AccessDenied: use of _ADMIN credentials over the network is disabled`;
/// `localAdminClient()` and `localClient({username:'_ADMIN', password:'happn'})` in
/// process still work.
///
/// pathmq differs on `get('/_SYSTEM/*')`: `/_SYSTEM` is refused to every session, the local
/// `_ADMIN` included; users and groups are read with the directory API instead
/// (docs/SECURITY.md "What each request needs", "Administration").
#[tokio::test]
async fn security_options_disable_default_admin_network_connections() {
    let mut config = secure_config();
    config.security.admin_password = Some("happn".into());
    config.security.disable_default_admin_network_connections = true;
    let broker = start_with(config).await;

    let (status, name, message) = refused_login(&broker, ADMIN_USER, "happn").await;
    assert_eq!((status, name.as_str()), (403, "AccessDenied"));
    assert_eq!(
        format!("{name}: {message}"),
        "AccessDenied: use of _ADMIN credentials over the network is disabled"
    );
    // Other users still log in over the network.
    add_user(&broker, "someone", "pw", json!({})).await;
    login(&broker, "someone", "pw").await;

    // localAdminClient: works in process.
    let local = broker.broker.local_admin_client();
    local
        .set("/local/admin", json!({"in": "process"}), SetOptions::new())
        .await
        .unwrap();
    assert!(local.get("/local/admin").await.unwrap().is_some());
    let system = local.get_many("/_SYSTEM/*", GetOptions::default()).await;
    assert_eq!(code(system), Some(403), "pathmq: /_SYSTEM is never served");
    assert!(!directory(&broker).list_users(None).is_empty());

    // localClient({username:'_ADMIN', password:'happn'}): an in-process login (no peer).
    let security = broker.broker.core().security().unwrap();
    let in_process = SessionFacts {
        protocol: "local",
        ..SessionFacts::default()
    };
    let password =
        |p: &str| Credentials::from_username_password(Some(ADMIN_USER), Some(p.into())).unwrap();
    let identity = security
        .login(password("happn"), &in_process)
        .await
        .expect("_ADMIN logs in in process");
    assert_eq!(identity.username, ADMIN_USER);
    let networked = SessionFacts {
        protocol: "native",
        peer: Some("127.0.0.1:40000".parse().unwrap()),
        ..SessionFacts::default()
    };
    assert!(matches!(
        security.login(password("happn"), &networked).await,
        Err(LoginError::AccessDenied(_))
    ));
}

/// UNCONFIGURED SESSION CLEANUP: a secure server disconnects sockets that have not logged
/// in within `threshold` of being created (`unconfiguredSessionCleanup`).
///
/// pathmq's equivalent is the native login timeout, `[security] login_timeout_ms` (the
/// `threshold`): no separate `interval` (each socket has its own deadline), and the reason
/// is sent in a `server-side-disconnect`. Insecure brokers close such sockets too, after
/// `limits.handshake_timeout_ms` (docs/PROTOCOL.md "Login timeout"), where the reference
/// cleans up secure servers only.
#[tokio::test]
async fn unconfigured_session_cleanup() {
    const THRESHOLD_MS: u64 = 300;
    let mut config = secure_config();
    config.security.login_timeout_ms = THRESHOLD_MS;
    let broker = start_with(config).await;
    add_user(&broker, "ann", "pw-ann", json!({})).await;
    let reason = Some("no login within the login timeout".to_owned());

    // A socket that never says anything.
    let mut silent = Wire::open(&broker).await;
    assert_eq!(silent.ended().await, reason);
    // One that configures its session but never logs in.
    let mut configured = Wire::configured(&broker).await;
    assert_eq!(configured.ended().await, reason);
    // One whose login was refused: still unconfigured.
    let (mut refused, answer) =
        Wire::login(&broker, json!({"username": "ann", "password": "wrong"})).await;
    assert_eq!(answer.unwrap_err()["code"], 401);
    assert_eq!(refused.ended().await, reason);

    // pathmq: insecure brokers clean up too.
    let mut insecure = secure_config();
    insecure.security.secure = false;
    insecure.limits.handshake_timeout_ms = THRESHOLD_MS;
    let open = start_with(insecure).await;
    let mut silent = Wire::open(&open).await;
    assert_eq!(silent.ended().await, reason);
}

/// UNCONFIGURED SESSION CLEANUP, continued: only sockets that have not logged in are
/// cleaned up; a logged-in session stays connected past the `threshold`, even when it
/// sends nothing after its login.
#[tokio::test]
async fn unconfigured_session_cleanup_spares_logged_in_sessions() {
    const THRESHOLD_MS: u64 = 300;
    let mut config = secure_config();
    config.security.login_timeout_ms = THRESHOLD_MS;
    let broker = start_with(config).await;
    add_user(&broker, "ann", "pw-ann", json!({})).await;
    for attempt in 0..5 {
        let (mut wire, answer) =
            Wire::login(&broker, json!({"username": "ann", "password": "pw-ann"})).await;
        answer.expect("ann logs in");
        let quiet = Duration::from_millis(THRESHOLD_MS * 3);
        if let Ok(heard) = tokio::time::timeout(quiet, wire.hear()).await {
            panic!("attempt {attempt}: a logged-in session heard {heard:?}");
        }
        let got = wire.request("get", Some("/x"), json!(null)).await;
        assert_eq!(got.unwrap_err()["code"], 403, "still connected");
    }
    // The same with the Rust client (it sends configure-session and login together).
    for attempt in 0..5 {
        let client = login(&broker, "ann", "pw-ann").await;
        tokio::time::sleep(Duration::from_millis(THRESHOLD_MS * 3)).await;
        let got = client.get("/x").await;
        let still = got.as_ref().err().and_then(|e| e.code());
        assert_eq!(
            still,
            Some(403),
            "attempt {attempt}: still connected: {got:?}"
        );
    }
}
