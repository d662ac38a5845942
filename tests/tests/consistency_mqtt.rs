//! Consistency ACKNOWLEDGED (DESIGN.md §6) with MQTT subscribers: their PUBACK / PUBCOMP
//! acknowledge a native writer's publication; a QoS 0 subscriber is not waited for.

mod support;

use std::time::Duration;

use rumqttc::QoS;
use serde_json::{Value, json};
use support::*;

/// A native `set` with consistency 3 at `path`; returns its `publication-ack` frame.
async fn acknowledged_set(writer: &mut Native, path: &str) -> Value {
    writer
        .request(
            "set",
            Some(path),
            json!({"v": 1}),
            Some(json!({"consistency": 3})),
        )
        .await
        .expect("set answered at once");
    loop {
        let frame = writer.next_frame().await;
        if frame["action"] == "publication-ack" {
            return frame;
        }
    }
}

/// An MQTT 3.1.1 subscriber to `filter` at `qos`, acknowledging by itself unless
/// `manual_acks`; its event loop runs in a task.
async fn subscriber(broker: &TestBroker, id: &str, filter: &str, qos: QoS, manual_acks: bool) {
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_manual_acks(manual_acks);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
    client.subscribe(filter, qos).await.unwrap();
    poll_v4(&mut eventloop, v4_suback).await;
    tokio::spawn(async move {
        let _client = client;
        while eventloop.poll().await.is_ok() {}
    });
}

/// A QoS 1 and a QoS 2 MQTT subscriber acknowledge with PUBACK and PUBCOMP; a QoS 0 one
/// is a recipient that is not waited for.
#[tokio::test]
async fn mqtt_acknowledgements_complete_a_publication() {
    let broker = start().await;
    subscriber(&broker, "q1", "acked/#", QoS::AtLeastOnce, false).await;
    subscriber(&broker, "q2", "acked/#", QoS::ExactlyOnce, false).await;
    subscriber(&broker, "q0", "acked/#", QoS::AtMostOnce, false).await;
    let mut writer = broker.native().await;
    let ack = acknowledged_set(&mut writer, "/acked/x").await;
    assert_eq!(ack["status"], "ok", "{ack}");
    assert_eq!(ack["result"]["successful"], 3, "{ack}");
    assert_eq!(ack["result"]["acknowledged"], 2, "{ack}");
    broker.broker.shutdown().await;
}

/// A QoS 1 subscriber that never sends PUBACK is named in the writer's error after
/// `limits.ack_timeout_ms`.
#[tokio::test]
async fn a_silent_mqtt_subscriber_is_reported() {
    let mut config = loopback_config();
    config.limits.ack_timeout_ms = 300;
    let broker = start_with(config).await;
    subscriber(&broker, "silent", "quiet/#", QoS::AtLeastOnce, true).await;
    let mut writer = broker.native().await;
    let started = std::time::Instant::now();
    let ack = acknowledged_set(&mut writer, "/quiet/x").await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(ack["status"], "error", "{ack}");
    assert_eq!(ack["result"]["acknowledged"], 0, "{ack}");
    assert!(
        ack["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not acknowledge")),
        "{ack}"
    );
    broker.broker.shutdown().await;
}
