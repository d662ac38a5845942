//! Tokens across protocols: one from `/auth/login` logs in over the native protocol
//! (`login {token}`) and as an MQTT password; forged, tampered, expired and revoked tokens
//! are refused on HTTP routes (401), by the native `login` and by MQTT CONNECT.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pathmq::native::client::{Client, ClientConfig, DataApi as _};
use rumqttc::{ConnectionError, MqttOptions};
use serde_json::json;

use super::{TOKEN_SECRET, TestBroker, WAIT, request, secure_broker, token_of, with_bearer};

/// Whether an MQTT 3.1.1 CONNECT as `ann` with `token` as password is accepted.
async fn mqtt_accepts(broker: &TestBroker, token: &str) -> bool {
    let mut options = MqttOptions::new("ann-dev", "127.0.0.1", broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_credentials("ann", token);
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(options, 16);
    let first = tokio::time::timeout(WAIT, eventloop.poll())
        .await
        .expect("a CONNACK in time");
    match first {
        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => true,
        Err(ConnectionError::ConnectionRefused(_)) => false,
        other => panic!("unexpected first event {other:?}"),
    }
}

/// Whether the native protocol's `login {token}` is accepted.
async fn native_accepts(broker: &TestBroker, token: &str) -> bool {
    let url = format!("ws://{}/", broker.http);
    Client::connect(ClientConfig::websocket(&url).token(token))
        .await
        .is_ok()
}

/// A token for `sub` signed with `secret`, valid from `iat` to `exp` (s since the epoch).
fn sign(secret: &str, sub: &str, iat: u64, exp: u64) -> String {
    let claims = json!({"sub": sub, "jti": format!("test-{iat}-{exp}"), "iat": iat, "exp": exp});
    let key = EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn an_http_token_logs_in_over_native_and_mqtt() {
    let broker = secure_broker().await;
    let token = token_of(&broker, "ann", "pw-ann").await;
    let url = format!("ws://{}/", broker.http);
    let native = Client::connect(ClientConfig::websocket(&url).token(&token))
        .await
        .expect("native login with the HTTP token");
    assert!(native.get("/data/none").await.unwrap().is_none());
    assert!(
        mqtt_accepts(&broker, &token).await,
        "MQTT with the token as password"
    );
    // A token signed with our secret by hand is as good as one we issued.
    let ours = sign(TOKEN_SECRET, "ann", now_s(), now_s() + 600);
    assert_eq!(
        with_bearer(&broker, "GET", "/secure/route/x", &ours)
            .await
            .status,
        200
    );
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn forged_expired_and_revoked_tokens_are_refused_by_every_protocol() {
    let broker = secure_broker().await;
    let now = now_s();
    let forged = sign(
        "another-secret-of-at-least-32-bytes!",
        "_ADMIN",
        now,
        now + 600,
    );
    let expired = sign(TOKEN_SECRET, "ann", now - 120, now - 60);
    let good = token_of(&broker, "ann", "pw-ann").await;
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let signature = parts[2].chars().rev().collect::<String>();
        format!("{}.{}.{signature}", parts[0], parts[1])
    };
    let revoked = token_of(&broker, "ann", "pw-ann").await;
    let bearer = format!("Bearer {revoked}");
    let logout = request(
        broker.http,
        "POST",
        "/auth/logout",
        &[("Authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(logout.status, 200);

    for (what, token, message) in [
        ("forged", &forged, "invalid token"),
        ("tampered", &tampered, "invalid token"),
        ("expired", &expired, "token expired"),
        ("revoked", &revoked, "token revoked"),
    ] {
        let reply = with_bearer(&broker, "GET", "/secure/route/x", token).await;
        let error = reply.error(401);
        assert_eq!(error["message"], message, "{what}");
        let cookie = format!("pathmq_token={token}");
        let by_cookie = request(
            broker.http,
            "GET",
            "/secure/route/x",
            &[("Cookie", &cookie)],
            "",
        )
        .await;
        by_cookie.error(401);
        let query = format!("/secure/route/x?token={token}");
        request(broker.http, "GET", &query, &[], "")
            .await
            .error(401);
        assert!(
            !native_accepts(&broker, token).await,
            "native took a {what} token"
        );
        assert!(
            !mqtt_accepts(&broker, token).await,
            "MQTT took a {what} token"
        );
    }
    // The good one still works everywhere.
    assert!(native_accepts(&broker, &good).await);
    assert!(mqtt_accepts(&broker, &good).await);
    broker.broker.shutdown().await;
}
