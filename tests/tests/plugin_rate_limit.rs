//! The `rate-limit` plugin end to end: what a native client, an MQTT 5 client and an
//! MQTT 3.1.1 client get when they go over a limit.

mod support;

use std::collections::BTreeMap;

use pathmq_plugin_rate_limit::{Limit, RateLimitConfig, RateLimitLayer};
use rumqttc::v5::mqttbytes::v5::{DisconnectReasonCode, Packet as V5Packet, PubAckReason};
use serde_json::json;
use support::*;

/// A window long enough that no token comes back during a test.
const MINUTE: u64 = 60_000;

/// A broker whose only limit is `limit` requests of `action` per minute.
async fn broker_limiting(action: &str, limit: u32) -> TestBroker {
    let config = RateLimitConfig {
        actions: BTreeMap::from([(action.to_owned(), Limit::new(limit, MINUTE))]),
        ..RateLimitConfig::default()
    };
    let layer = RateLimitLayer::new(config).expect("a valid config");
    start_builder(
        pathmq::Broker::builder()
            .config(loopback_config())
            .layer(layer),
    )
    .await
}

#[tokio::test]
async fn a_native_client_over_the_limit_gets_429() {
    let broker = broker_limiting("set", 3).await;
    let mut native = broker.native().await;
    for i in 0..3 {
        native.set("/limited/a", json!({"i": i})).await;
    }
    let error = native
        .request("set", Some("/limited/a"), json!({"i": 3}), None)
        .await
        .expect_err("the fourth set is over the limit");
    assert_eq!(error["error"]["code"], 429, "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("rate limit exceeded: at most 3 set requests per 60000 ms per session"),
        "{error}"
    );
    // Nothing changed, other actions are not limited, and another session has its own
    // bucket (an insecure broker has no users to share one).
    assert_eq!(native.get("/limited/a").await["data"]["i"], 2);
    let mut other = broker.native().await;
    other.set("/limited/b", json!({"i": 0})).await;
    assert_eq!(broker.broker.core().stats().rate_limited, 1);
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn an_mqtt5_client_over_the_limit_is_disconnected_with_0x96() {
    let broker = broker_limiting("publish", 3).await;
    let mut watcher = broker.native().await;
    watcher.on("/telemetry/**").await;
    let (client, mut eventloop) = broker.mqtt_v5("fast-v5");
    poll_v5(&mut eventloop, |e| {
        matches!(e, rumqttc::v5::Event::Incoming(V5Packet::ConnAck(_))).then_some(())
    })
    .await;
    for i in 0..5 {
        client
            .publish(
                "telemetry/a",
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                false,
                format!("{i}"),
            )
            .await
            .unwrap();
    }
    // rumqttc reports the DISCONNECT as the poll's error (and drops the PUBACKs it read
    // in the same batch, so they are not counted here).
    let ending = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::v5::Event::Incoming(V5Packet::PubAck(ack))) => {
                    assert_eq!(ack.reason, PubAckReason::Success);
                }
                Ok(_) => {}
                Err(error) => return error,
            }
        }
    })
    .await
    .expect("the connection ends in time");
    match ending {
        rumqttc::v5::ConnectionError::MqttState(rumqttc::v5::StateError::ServerDisconnect {
            reason_code,
            ..
        }) => assert_eq!(reason_code, DisconnectReasonCode::MessageRateTooHigh),
        other => panic!("the connection ended without a DISCONNECT: {other:?}"),
    }
    assert_eq!(broker.broker.core().stats().rate_limited, 1);
    // The publishes within the limit were delivered, the rest not: a native `set` (not
    // limited here) marks the end of the stream.
    watcher.set("/telemetry/end", json!({"end": true})).await;
    let mut delivered = Vec::new();
    loop {
        let event = watcher.next_event().await;
        if event["_meta"]["path"] == "/telemetry/end" {
            break;
        }
        delivered.push(event["data"]["value"].clone());
    }
    assert_eq!(delivered, [json!(0), json!(1), json!(2)]);
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn an_mqtt311_client_over_the_limit_stays_connected_and_its_excess_is_dropped() {
    let broker = broker_limiting("publish", 3).await;
    let (subscriber, sub_loop) = broker.mqtt_v4("sub-v4");
    let mut sub_events = spawn_v4(sub_loop);
    subscriber
        .subscribe("telemetry/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    expect_v4(&mut sub_events, v4_suback).await;

    let (publisher, pub_loop) = broker.mqtt_v4("fast-v4");
    let mut pub_events = spawn_v4(pub_loop);
    for i in 0..5 {
        publisher
            .publish(
                "telemetry/a",
                rumqttc::QoS::AtLeastOnce,
                false,
                format!("m{i}"),
            )
            .await
            .unwrap();
    }
    // A retained PUBLISH is a `set`, which has no limit here: it marks the end. A 3.1.1
    // client is acknowledged either way, so the PUBACKs say the connection is alive.
    publisher
        .publish("telemetry/end", rumqttc::QoS::AtLeastOnce, true, "end")
        .await
        .unwrap();
    for _ in 0..6 {
        expect_v4(&mut pub_events, |e| {
            matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))).then_some(())
        })
        .await;
    }

    let mut received = Vec::new();
    while received.last().map(String::as_str) != Some("end") {
        let publish = expect_v4(&mut sub_events, v4_publish).await;
        received.push(String::from_utf8_lossy(&publish.payload).into_owned());
    }
    assert_eq!(received, ["m0", "m1", "m2", "end"]);
    assert_eq!(broker.broker.core().stats().rate_limited, 2);
    broker.broker.shutdown().await;
}
