//! What every test here starts from: a secure broker with its users, its security
//! service, and tokens crafted with `jsonwebtoken`. The clients are in [`super::native`]
//! and [`super::mqtt`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pathmq::config::Config;
use pathmq::core::security::{Group, Permissions, Profile, Security, UserInput};
use serde_json::{Value, json};

use crate::support::{TestBroker, WAIT, start_with};

/// `_ADMIN`'s password in these tests.
pub(crate) const ADMIN_PASSWORD: &str = "admin-secret-sessions";

/// The token secret of the brokers that set one (tokens are crafted with it).
pub(crate) const SECRET: &str = "sessions-test-secret-of-32-bytes-at-least";

/// The password of each test user: `pw-<name>`.
pub(crate) fn password(user: &str) -> String {
    format!("pw-{user}")
}

/// A secure broker's config on loopback, bcrypt cost 4, account lockout off (the lockout
/// tests turn it on).
pub(crate) fn secure_config() -> Config {
    crate::support::secure_config(ADMIN_PASSWORD)
}

/// [`secure_config`] with these profiles (JSON, as the reference writes them).
pub(crate) fn config_with_profiles(profiles: Value) -> Config {
    let mut config = secure_config();
    config.security.profiles =
        serde_json::from_value::<Vec<Profile>>(profiles).expect("the profiles deserialize");
    config
}

/// A secure broker from `config`, with these users (passwords `pw-<name>`), upserted
/// (so a restarted broker can call it again):
///
/// * `ann`, `bob`: in `staff`, which may do everything on `/data` and below;
/// * `dev`: in `staff` and `devices` (no permissions of its own: profiles match it).
pub(crate) async fn secure_broker(config: Config) -> TestBroker {
    let broker = start_with(config).await;
    let directory = security(&broker).directory();
    let everything: Permissions = serde_json::from_value(json!({
        "/data": {"actions": ["*"]},
        "/data/*": {"actions": ["*"]},
    }))
    .unwrap();
    directory
        .upsert_group(Group {
            name: "staff".into(),
            permissions: everything,
            ..Group::default()
        })
        .await
        .unwrap();
    directory
        .upsert_group(Group {
            name: "devices".into(),
            ..Group::default()
        })
        .await
        .unwrap();
    for (name, groups) in [
        ("ann", &["staff"][..]),
        ("bob", &["staff"][..]),
        ("dev", &["staff", "devices"][..]),
    ] {
        directory
            .upsert_user(UserInput {
                username: name.into(),
                password: Some(password(name).into()),
                ..UserInput::default()
            })
            .await
            .unwrap();
        for group in groups {
            directory.link_group(name, group).await.unwrap();
        }
    }
    broker
}

/// The broker's security service.
pub(crate) fn security(broker: &TestBroker) -> &Security {
    broker.broker.core().security().expect("a secure broker")
}

/// The record stored at `path`, read by the broker's own `_ADMIN` client.
pub(crate) async fn stored(broker: &TestBroker, path: &str) -> Option<Value> {
    use pathmq::native::client::DataApi as _;
    let admin = broker.broker.local_admin_client();
    admin
        .get(path)
        .await
        .expect("the admin reads")
        .map(|i| i.data)
}

/// Waits (bounded by [`WAIT`]) until `username` holds `count` connection slots.
pub(crate) async fn wait_connection_count(broker: &TestBroker, username: &str, count: u32) {
    let security = security(broker);
    let reached = tokio::time::timeout(WAIT, async {
        while security.connection_count(username) != count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "`{username}` holds {} connections, not {count}",
        security.connection_count(username)
    );
}

/// Waits until the wall clock is in the first 150 ms of a second (bounded: at most 1 s),
/// so a token issued now has a known position within its `iat` second.
pub(crate) async fn at_second_start() {
    loop {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_millis();
        if ms < 150 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(u64::from(1_010 - ms))).await;
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token with these claims signed (HS256) with `secret`.
pub(crate) fn craft_token(secret: &str, sub: &str, exp: u64) -> String {
    let claims =
        json!({"sub": sub, "jti": format!("crafted-{sub}-{exp}"), "iat": now_s(), "exp": exp});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}
