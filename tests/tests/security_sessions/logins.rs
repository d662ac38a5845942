//! Who may log in at all: account lockout, the anonymous user (reference: ANONYMOUS
//! USER) and `disableDefaultAdminNetworkConnections` (reference: SECURITY OPTIONS).

use std::time::Duration;

use pathmq::core::security::Right;
use pathmq::native::client::{DataApi as _, SetOptions};
use rumqttc::ConnectReturnCode as V4Code;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode as V5Code, PubAckReason, SubscribeReasonCode};
use serde_json::json;

use super::common::*;
use super::mqtt::*;
use super::native::*;
use crate::support::TestBroker;

/// A native login of `user` with `password` on a new connection.
async fn native_password(
    broker: &TestBroker,
    user: &str,
    password: &str,
) -> Result<(Ws, serde_json::Value), serde_json::Value> {
    native_try(broker, json!({"username": user, "password": password})).await
}

#[tokio::test]
async fn four_failed_logins_lock_the_account_everywhere() {
    let mut config = secure_config();
    config.security.lockout_attempts = 4;
    let broker = secure_broker(config).await;
    for attempt in 1..=4 {
        let refused = native_password(&broker, "ann", "wrong").await.err();
        let refused = refused.unwrap_or_else(|| panic!("attempt {attempt} logs in"));
        assert_denied(&refused, 401, "invalid credentials");
    }
    let locked = native_password(&broker, "ann", &password("ann"))
        .await
        .err();
    assert_denied(&locked.expect("ann after 4 failures"), 401, "locked");
    let v5 = v5_connect(&broker, "ann-v5", Some(("ann", &password("ann"))))
        .await
        .err();
    assert_eq!(v5, Some(V5Code::Banned), "MQTT 5 0x8A");
    let v4 = v4_connect(&broker, "ann-v4", Some(("ann", &password("ann"))))
        .await
        .err();
    assert_eq!(v4, Some(V4Code::NotAuthorized), "3.1.1 return code 5");
    // Another user is not affected.
    native_login(&broker, "bob").await;
    v5_login(&broker, "bob-v5", "bob").await;
    v4_login(&broker, "bob-v4", "bob").await;
}

#[tokio::test]
async fn failed_mqtt_logins_lock_the_account_too() {
    let mut config = secure_config();
    config.security.lockout_attempts = 4;
    let broker = secure_broker(config).await;
    for attempt in 1..=4 {
        let refused = v5_connect(&broker, "ann-v5", Some(("ann", "wrong")))
            .await
            .err();
        assert_eq!(
            refused,
            Some(V5Code::BadUserNamePassword),
            "attempt {attempt}"
        );
    }
    let v5 = v5_connect(&broker, "ann-v5", Some(("ann", &password("ann"))))
        .await
        .err();
    assert_eq!(v5, Some(V5Code::Banned));
    let locked = native_password(&broker, "ann", &password("ann"))
        .await
        .err();
    assert_denied(&locked.expect("ann after 4 failures"), 401, "locked");
}

#[tokio::test]
async fn a_lock_lapses_after_lockout_retry() {
    let mut config = secure_config();
    config.security.lockout_attempts = 4;
    config.security.lockout_retry_ms = 400;
    let broker = secure_broker(config).await;
    for _ in 0..4 {
        assert!(native_password(&broker, "ann", "wrong").await.is_err());
    }
    let locked = native_password(&broker, "ann", &password("ann"))
        .await
        .err();
    assert_denied(&locked.expect("ann right after 4 failures"), 401, "locked");
    tokio::time::sleep(Duration::from_millis(600)).await;
    native_login(&broker, "ann").await;
    v5_login(&broker, "ann-v5", "ann").await;
}

/// A broker allowing the anonymous user, who may read, watch and write `/public` and
/// below.
async fn anonymous_broker() -> TestBroker {
    let mut config = secure_config();
    config.security.allow_anonymous_access = true;
    let broker = secure_broker(config).await;
    let directory = security(&broker).directory();
    for glob in ["/public", "/public/*"] {
        for right in [Right::Get, Right::On, Right::Set] {
            directory
                .upsert_user_permission("_ANONYMOUS", glob, right, true)
                .await
                .unwrap();
        }
    }
    broker
}

#[tokio::test]
async fn the_anonymous_user_logs_in_without_a_password_when_allowed() {
    let broker = anonymous_broker().await;
    let (mut ws, answer) = native_try(&broker, json!({"username": "_ANONYMOUS"}))
        .await
        .expect("_ANONYMOUS with no password");
    assert_eq!(answer["user"]["username"], "_ANONYMOUS", "{answer}");
    ws.set("/public/x", json!({"n": 1})).await.expect("allowed");
    ws.get("/public/x").await.expect("allowed");
    assert_denied(
        &ws.set("/data/x", json!({})).await.unwrap_err(),
        403,
        "_ANONYMOUS",
    );
    assert_denied(&ws.get("/data/x").await.unwrap_err(), 403, "_ANONYMOUS");
    // A password is not a way in either.
    let refused = native_password(&broker, "_ANONYMOUS", "guess").await.err();
    assert_denied(
        &refused.expect("_ANONYMOUS with a password"),
        401,
        "invalid",
    );
}

#[tokio::test]
async fn the_anonymous_user_connects_over_mqtt_without_a_password_when_allowed() {
    let broker = anonymous_broker().await;
    // rumqttc leaves an empty password out of the CONNECT: no password flag.
    let v4 = v4_connect(&broker, "anon-v4", Some(("_ANONYMOUS", ""))).await;
    let v5 = v5_connect(&broker, "anon-v5", Some(("_ANONYMOUS", ""))).await;
    let (mut v4, mut v5) = match (v4, v5) {
        (Ok(v4), Ok(v5)) => (v4, v5),
        (v4, v5) => panic!(
            "_ANONYMOUS without a password: 3.1.1 {:?}, 5 {:?}",
            v4.err(),
            v5.err()
        ),
    };
    assert!(matches!(
        v4.subscribe("public/#").await,
        rumqttc::SubscribeReasonCode::Success(_)
    ));
    assert_eq!(
        v4.subscribe("data/#").await,
        rumqttc::SubscribeReasonCode::Failure
    );
    assert_eq!(v5.publish("public/y", "{}").await, PubAckReason::Success);
    assert_eq!(
        v5.publish("data/y", "{}").await,
        PubAckReason::NotAuthorized
    );
    assert_eq!(
        v5.subscribe("data/#").await,
        SubscribeReasonCode::NotAuthorized
    );
    assert!(stored(&broker, "/public/y").await.is_some());
    assert!(stored(&broker, "/data/y").await.is_none());
}

#[tokio::test]
async fn the_anonymous_user_is_refused_when_not_allowed() {
    let broker = secure_broker(secure_config()).await;
    let refused = native_try(&broker, json!({"username": "_ANONYMOUS"}))
        .await
        .err();
    assert_denied(
        &refused.expect("_ANONYMOUS logs in"),
        401,
        "invalid credentials",
    );
    let v4 = v4_connect(&broker, "anon-v4", Some(("_ANONYMOUS", "")))
        .await
        .err();
    assert_eq!(v4, Some(V4Code::BadUserNamePassword));
    let v5 = v5_connect(&broker, "anon-v5", Some(("_ANONYMOUS", "")))
        .await
        .err();
    assert_eq!(v5, Some(V5Code::BadUserNamePassword));
}

#[tokio::test]
async fn admin_network_logins_can_be_disabled() {
    let mut config = secure_config();
    config.security.disable_default_admin_network_connections = true;
    config.security.token_secret = Some(SECRET.into());
    let broker = secure_broker(config).await;
    let refused = native_password(&broker, "_ADMIN", ADMIN_PASSWORD)
        .await
        .err();
    assert_denied(
        &refused.expect("_ADMIN over the network"),
        403,
        "use of _ADMIN credentials over the network is disabled",
    );
    // A token for `_ADMIN` (signed with the broker's secret) is no way round it.
    let token = craft_token(SECRET, "_ADMIN", now_s() + 3_600);
    let refused = native_try(&broker, json!({"token": token})).await.err();
    assert_denied(&refused.expect("_ADMIN's token"), 403, "over the network");
    let v4 = v4_connect(&broker, "admin-v4", Some(("_ADMIN", ADMIN_PASSWORD)))
        .await
        .err();
    assert_eq!(v4, Some(V4Code::NotAuthorized), "3.1.1 return code 5");
    let v5 = v5_connect(&broker, "admin-v5", Some(("_ADMIN", ADMIN_PASSWORD)))
        .await
        .err();
    assert_eq!(v5, Some(V5Code::NotAuthorized), "MQTT 5 0x87");

    let admin = broker.broker.local_admin_client();
    admin
        .set("/admin/x", json!({"n": 1}), SetOptions::new())
        .await
        .expect("the in-process admin writes");
    assert!(admin.get("/admin/x").await.unwrap().is_some());
    native_login(&broker, "ann").await;
}

#[tokio::test]
async fn admin_network_logins_are_allowed_by_default() {
    let broker = secure_broker(secure_config()).await;
    let (mut ws, _) = native_password(&broker, "_ADMIN", ADMIN_PASSWORD)
        .await
        .expect("_ADMIN over the network");
    ws.set("/admin/x", json!({})).await.expect("_ADMIN writes");
    v5_connect(&broker, "admin-v5", Some(("_ADMIN", ADMIN_PASSWORD)))
        .await
        .expect("_ADMIN over MQTT");
}
