//! The token protocol enabled from the config file (`[token]`, docs/TOKEN.md), end to end
//! across protocols: a TokenClient-style client with a client certificate, an MQTT
//! subscriber (rumqttc) that receives its tokens byte for byte, and a native client whose
//! `set` on the replies path comes back as a token.

mod support;

use rumqttc::QoS;
use serde_json::json;
use support::pki::Ca;
use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn tokens_reach_mqtt_and_native_replies_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let (cert, key, ca_path) = ca.write(dir.path(), &ca.server());
    let mut config = loopback_config();
    config.tls.cert_path = Some(cert);
    config.tls.key_path = Some(key);
    config.tls.client_ca_path = Some(ca_path);
    config.token.enabled = true;
    config.token.listen = "127.0.0.1:0".parse().unwrap();
    let broker = start_with(config).await;
    let addr = broker
        .broker
        .listener_addr("token")
        .expect("token listener");

    let (mqtt, mut mqtt_events) = broker.mqtt_v4("token-watcher");
    mqtt.subscribe("tokens/device-1/in", QoS::AtLeastOnce)
        .await
        .unwrap();
    poll_v4(&mut mqtt_events, v4_suback).await;

    let identity = ca.client("device-1");
    let mut token = pki::connect(addr, ca.client_config(Some(&identity)))
        .await
        .unwrap();
    token.write_all(&5u32.to_be_bytes()).await.unwrap();
    token.write_all(b"Hello").await.unwrap();
    let message = poll_v4(&mut mqtt_events, v4_publish).await;
    assert_eq!(&message.payload[..], b"Hello", "byte for byte");

    let mut native = broker.native().await;
    native
        .set(
            "/tokens/device-1/out",
            json!({"reply": "I am happy to see you!"}),
        )
        .await;
    let mut len = [0u8; 4];
    tokio::time::timeout(WAIT, token.read_exact(&mut len))
        .await
        .unwrap()
        .unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    token.read_exact(&mut body).await.unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["reply"], "I am happy to see you!");

    // A certificate from another CA never gets a session.
    let other = Ca::new("other CA").client("mallory");
    let refused = async {
        let mut stream = pki::connect(addr, ca.client_config(Some(&other))).await?;
        stream.write_all(&1u32.to_be_bytes()).await?;
        stream.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await
    };
    assert!(tokio::time::timeout(WAIT, refused).await.unwrap().is_err());
    broker.broker.shutdown().await;
}

#[test]
fn a_token_listener_requiring_certificates_needs_a_client_ca() {
    let error = pathmq::config::Config::from_toml("[token]\nenabled = true\n").unwrap_err();
    assert!(error.to_string().contains("tls.client_ca_path"), "{error}");
}
