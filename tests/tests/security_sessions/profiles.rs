//! Profiles and their policies (reference: SECURITY PROFILES;
//! `reference/websocket-session-manager.md`): `max_connections`, `ttl`,
//! `inactivity_threshold`, `usage_limit`, token-scoped `permissions` and
//! `sourceIPWhitelist`, over native and MQTT 3.1.1 and 5.

use std::time::{Duration, Instant};

use rumqttc::ConnectReturnCode as V4Code;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode as V5Code, DisconnectReasonCode, PubAckReason, SubscribeReasonCode,
};
use serde_json::json;

use super::common::*;
use super::mqtt::*;
use super::native::*;

/// How long a session with a 1 s `ttl` or `inactivity_threshold` may take to be ended:
/// the broker sweeps every second, so about 2 s, plus slack for a loaded machine.
const ENDS_WITHIN: Duration = Duration::from_millis(3_000);

/// `max_connections = 3` for the members of `devices` (the reference's group criteria).
fn three_connections() -> serde_json::Value {
    json!([{"name": "devices", "session": {"user.groups.devices": {"$exists": true}},
            "policy": {"max_connections": 3}}])
}

#[tokio::test]
async fn max_connections_counts_mqtt_and_native_and_frees_a_crashed_slot() {
    let broker = secure_broker(config_with_profiles(three_connections())).await;
    let crashing = v4_login(&broker, "dev-1", "dev").await;
    let _second = v5_login(&broker, "dev-2", "dev").await;
    let _third = v4_login(&broker, "dev-3", "dev").await;
    assert_eq!(security(&broker).connection_count("dev"), 3);

    let v4 = v4_connect(&broker, "dev-4", Some(("dev", &password("dev"))))
        .await
        .err();
    assert_eq!(v4, Some(V4Code::NotAuthorized), "3.1.1 return code 5");
    let v5 = v5_connect(&broker, "dev-4", Some(("dev", &password("dev"))))
        .await
        .err();
    assert_eq!(v5, Some(V5Code::QuotaExceeded), "MQTT 5 0x97");
    let native = native_try(
        &broker,
        json!({"username": "dev", "password": password("dev")}),
    )
    .await
    .err();
    assert_denied(
        &native.expect("a 4th native session"),
        403,
        "connection limit",
    );
    assert_eq!(
        security(&broker).connection_count("dev"),
        3,
        "a refused login holds a slot"
    );
    // Users without the profile have no limit.
    let mut others = Vec::new();
    for n in 0..4 {
        others.push(v4_login(&broker, &format!("ann-{n}"), "ann").await);
    }

    // A client that goes away without a DISCONNECT gives its slot back.
    crashing.crash();
    wait_connection_count(&broker, "dev", 2).await;
    let _fourth = v5_login(&broker, "dev-5", "dev").await;
    let v4 = v4_connect(&broker, "dev-6", Some(("dev", &password("dev"))))
        .await
        .err();
    assert_eq!(v4, Some(V4Code::NotAuthorized), "full again");
}

/// A device whose connection half-died reconnects under its client id while the broker
/// still holds the old session: the takeover is allowed at the limit (the old session
/// ends), while a new client id is still refused.
#[tokio::test]
async fn a_takeover_of_an_own_session_is_allowed_at_the_limit() {
    let broker = secure_broker(config_with_profiles(three_connections())).await;
    let _first = v4_login(&broker, "dev-1", "dev").await;
    let _second = v4_login(&broker, "dev-2", "dev").await;
    let _third = v4_login(&broker, "dev-3", "dev").await;
    let _again = v4_login(&broker, "dev-1", "dev").await;
    wait_connection_count(&broker, "dev", 3).await;
    let v4 = v4_connect(&broker, "dev-4", Some(("dev", &password("dev"))))
        .await
        .err();
    assert_eq!(
        v4,
        Some(V4Code::NotAuthorized),
        "a new client id is still refused"
    );
}

#[tokio::test]
async fn max_connections_over_native_including_token_logins() {
    let broker = secure_broker(config_with_profiles(three_connections())).await;
    let (first, answer) = native_login(&broker, "dev").await;
    let token = token_of(&answer);
    let (_second, _) = native_try(&broker, json!({"token": token}))
        .await
        .expect("a token login");
    let (_third, _) = native_login(&broker, "dev").await;
    assert_eq!(security(&broker).connection_count("dev"), 3);
    for login in [
        json!({"username": "dev", "password": password("dev")}),
        json!({"token": token}),
    ] {
        let refused = native_try(&broker, login).await.err();
        assert_denied(&refused.expect("a 4th session"), 403, "connection limit");
    }
    let v5 = v5_connect(&broker, "dev-mqtt", Some(("dev", &token)))
        .await
        .err();
    assert_eq!(v5, Some(V5Code::QuotaExceeded));
    // Dropping a WebSocket without a close frame gives its slot back.
    drop(first);
    wait_connection_count(&broker, "dev", 2).await;
    native_try(&broker, json!({"token": token}))
        .await
        .expect("a slot is free again");
    wait_connection_count(&broker, "dev", 3).await;
}

#[tokio::test]
async fn a_session_past_its_ttl_is_ended() {
    let broker = secure_broker(config_with_profiles(json!([
        {"name": "short", "session": {"user": {"username": {"$eq": "ann"}}},
         "policy": {"ttl": "1 second"}}
    ])))
    .await;
    let started = Instant::now();
    let mut v5 = v5_login(&broker, "ann-v5", "ann").await;
    assert_eq!(
        v5.subscribe("data/#").await,
        SubscribeReasonCode::Success(rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
    );
    let mut v4 = v4_login(&broker, "ann-v4", "ann").await;
    let (mut ws, answer) = native_login(&broker, "ann").await;
    assert_eq!(answer["policy"]["ttl"], 1000, "{answer}");
    let (mut bob, _) = native_login(&broker, "bob").await;

    assert_eq!(
        v5.server_disconnect(ENDS_WITHIN).await,
        DisconnectReasonCode::MaximumConnectTime
    );
    let ended = started.elapsed();
    assert!(ended >= Duration::from_millis(900), "ended after {ended:?}");
    let reason = ws.server_disconnect(ENDS_WITHIN).await;
    assert!(reason.contains("expired"), "{reason}");
    assert!(
        v4.ending(ENDS_WITHIN).await.is_some(),
        "the MQTT 3.1.1 session is still open"
    );
    bob.set("/data/bob/x", json!({}))
        .await
        .expect("bob has no ttl");
}

#[tokio::test]
async fn an_idle_session_is_ended_after_its_inactivity_threshold() {
    let broker = secure_broker(config_with_profiles(json!([
        {"name": "idle", "session": {"user": {"username": {"$eq": "ann"}}},
         "policy": {"inactivity_threshold": 1000}}
    ])))
    .await;
    let mut v5 = v5_login(&broker, "ann-v5", "ann").await;
    v5.subscribe("data/#").await;
    let (mut ws, answer) = native_login(&broker, "ann").await;
    assert_eq!(answer["policy"]["inactivity_threshold"], 1000, "{answer}");
    // Requests keep the native session alive well past the threshold.
    let busy = Instant::now();
    while busy.elapsed() < Duration::from_millis(2_500) {
        ws.get("/data/ann/x").await.expect("an active session");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        v5.server_disconnect(ENDS_WITHIN).await,
        DisconnectReasonCode::NotAuthorized,
        "MQTT 5 0x87"
    );
    let idle = Instant::now();
    let reason = ws.server_disconnect(ENDS_WITHIN).await;
    assert!(reason.contains("inactive"), "{reason}");
    assert!(idle.elapsed() >= Duration::from_millis(700));
}

#[tokio::test]
async fn a_session_ends_when_its_usage_limit_is_spent() {
    let broker = secure_broker(config_with_profiles(json!([
        {"name": "twice", "session": {"user.username": {"$eq": "ann"}},
         "policy": {"usage_limit": 2}}
    ])))
    .await;
    let (mut ws, _) = native_login(&broker, "ann").await;
    ws.set("/data/ann/one", json!({}))
        .await
        .expect("first request");
    ws.get("/data/ann/one").await.expect("second request");
    let third = ws.set("/data/ann/three", json!({})).await.unwrap_err();
    assert_denied(&third, 401, "usage limit");
    let reason = ws.server_disconnect(ENDS_WITHIN).await;
    assert!(reason.contains("usage limit"), "{reason}");
    assert!(stored(&broker, "/data/ann/three").await.is_none());

    let mut v5 = v5_login(&broker, "ann-v5", "ann").await;
    v5.subscribe("data/ann/#").await;
    assert_eq!(
        v5.publish("data/ann/v5-two", "{}").await,
        PubAckReason::Success
    );
    v5.client
        .publish(
            "data/ann/v5-three",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            true,
            "{}",
        )
        .await
        .unwrap();
    assert_eq!(
        v5.server_disconnect(ENDS_WITHIN).await,
        DisconnectReasonCode::NotAuthorized
    );
    assert!(stored(&broker, "/data/ann/v5-two").await.is_some());
    assert!(stored(&broker, "/data/ann/v5-three").await.is_none());
}

#[tokio::test]
async fn policy_permissions_narrow_what_the_user_may_do() {
    let mut config = config_with_profiles(json!([
        {"name": "scoped", "session": {"user.groups.devices": {"$exists": true}},
         "policy": {"permissions": {
             "/data/{{user.username}}": {"actions": ["*"]},
             "/data/{{user.username}}/*": {"actions": ["*"]}}}}
    ]));
    config.security.token_secret = Some(SECRET.into());
    let broker = secure_broker(config).await;
    // `dev` may do everything on `/data` through `staff`, but the policy limits it.
    let (mut ws, answer) = native_login(&broker, "dev").await;
    ws.set("/data/dev/x", json!({}))
        .await
        .expect("inside the scope");
    assert_denied(
        &ws.set("/data/ann/x", json!({})).await.unwrap_err(),
        403,
        "dev",
    );
    assert_denied(&ws.get("/data/ann/x").await.unwrap_err(), 403, "dev");
    assert_denied(&ws.get("/data/*").await.unwrap_err(), 403, "dev");
    // A token login is held to the same scope.
    let (mut again, _) = native_try(&broker, json!({"token": token_of(&answer)}))
        .await
        .expect("token login");
    assert_denied(
        &again.set("/data/ann/x", json!({})).await.unwrap_err(),
        403,
        "dev",
    );
    // ann, outside the profile, is not limited.
    let (mut ann, _) = native_login(&broker, "ann").await;
    ann.set("/data/dev/by-ann", json!({})).await.expect("ann");

    let mut v5 = v5_login(&broker, "dev-v5", "dev").await;
    assert_eq!(v5.publish("data/dev/y", "{}").await, PubAckReason::Success);
    assert_eq!(
        v5.publish("data/ann/y", "{}").await,
        PubAckReason::NotAuthorized
    );
    assert_eq!(
        v5.subscribe("data/#").await,
        SubscribeReasonCode::NotAuthorized
    );
    assert!(matches!(
        v5.subscribe("data/dev/#").await,
        SubscribeReasonCode::Success(_)
    ));
    let mut v4 = v4_login(&broker, "dev-v4", "dev").await;
    assert_eq!(
        v4.subscribe("data/#").await,
        rumqttc::SubscribeReasonCode::Failure
    );
    assert!(stored(&broker, "/data/ann/x").await.is_none());
    assert!(stored(&broker, "/data/ann/y").await.is_none());
}

#[tokio::test]
async fn source_ip_whitelist_admits_only_listed_addresses() {
    let mut config = config_with_profiles(json!([
        {"name": "far", "session": {"user": {"username": {"$eq": "ann"}}},
         "policy": {"sourceIPWhitelist": ["10.1.2.3"]}},
        {"name": "near", "session": {"user": {"username": {"$eq": "bob"}}},
         "policy": {"sourceIPWhitelist": ["127.0.0.1"]}}
    ]));
    config.security.token_secret = Some(SECRET.into());
    let broker = secure_broker(config).await;

    let refused = native_try(
        &broker,
        json!({"username": "ann", "password": password("ann")}),
    )
    .await
    .err();
    assert_denied(&refused.expect("ann from 127.0.0.1"), 403, "127.0.0.1");
    let token = craft_token(SECRET, "ann", now_s() + 3_600);
    let refused = native_try(&broker, json!({"token": token})).await.err();
    assert_denied(
        &refused.expect("ann's token from 127.0.0.1"),
        403,
        "127.0.0.1",
    );
    let ann = ("ann", password("ann"));
    let v4 = v4_connect(&broker, "ann-v4", Some((ann.0, &ann.1)))
        .await
        .err();
    assert_eq!(v4, Some(V4Code::NotAuthorized), "3.1.1 return code 5");
    let v5 = v5_connect(&broker, "ann-v5", Some((ann.0, &ann.1)))
        .await
        .err();
    assert_eq!(v5, Some(V5Code::NotAuthorized), "MQTT 5 0x87");

    let (_ws, answer) = native_login(&broker, "bob").await;
    assert_eq!(answer["policy"]["profile"], "near", "{answer}");
    v4_login(&broker, "bob-v4", "bob").await;
    v5_login(&broker, "bob-v5", "bob").await;
}
