//! MQTT ↔ WebSocket ↔ MQTT through one core (DESIGN.md §4): payload mapping both ways,
//! byte-exact MQTT to MQTT, retained messages as stored records.

mod support;

use rumqttc::QoS;
use serde_json::json;
use support::*;

#[tokio::test]
async fn mqtt_publish_reaches_a_websocket_subscriber() {
    let broker = start().await;
    let mut native = broker.native().await;
    native.on("/sensors/**").await;

    let (client, mut eventloop) = broker.mqtt_v4("device-1");
    client
        .publish(
            "sensors/kitchen/temp",
            QoS::AtLeastOnce,
            false,
            br#"{"c":21.5}"#.to_vec(),
        )
        .await
        .unwrap();
    client
        .publish(
            "sensors/kitchen/label",
            QoS::AtLeastOnce,
            false,
            b"hello".to_vec(),
        )
        .await
        .unwrap();
    poll_v4(&mut eventloop, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(a)) if a.pkid == 2)
            .then_some(())
    })
    .await;

    let event = native.next_event().await;
    assert_eq!(event["data"], json!({"c": 21.5}));
    assert_eq!(event["_meta"]["path"], "/sensors/kitchen/temp");
    assert_eq!(event["_meta"]["action"], "/SET@/sensors/kitchen/temp");
    let event = native.next_event().await;
    assert_eq!(
        event["data"],
        json!({"value": "hello"}),
        "text is wrapped as {{value}}"
    );

    // Without the retain flag a PUBLISH is not stored.
    let got = native.get("/sensors/kitchen/temp").await;
    assert!(
        got["data"].is_null(),
        "non-retained publish must not be stored: {got}"
    );
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn websocket_set_reaches_mqtt_v4_and_v5_subscribers() {
    let broker = start().await;
    let (c4, mut e4) = broker.mqtt_v4("sub-v4");
    c4.subscribe("sensors/#", QoS::AtLeastOnce).await.unwrap();
    poll_v4(&mut e4, v4_suback).await;
    let (c5, mut e5) = broker.mqtt_v5("sub-v5");
    c5.subscribe("sensors/+/temp", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await
        .unwrap();
    poll_v5(&mut e5, v5_suback).await;

    let mut native = broker.native().await;
    native
        .set("/sensors/kitchen/temp", json!({"c": 21.5}))
        .await;

    let p4 = poll_v4(&mut e4, v4_publish).await;
    assert_eq!(p4.topic, "sensors/kitchen/temp");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&p4.payload).unwrap(),
        json!({"c": 21.5})
    );
    assert!(!p4.retain, "a live message is not retained");
    let p5 = poll_v5(&mut e5, v5_publish).await;
    assert_eq!(&p5.topic[..], b"sensors/kitchen/temp");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&p5.payload).unwrap(),
        json!({"c": 21.5})
    );

    // A native set of a non-object reaches MQTT as the bare JSON value.
    native.set("/sensors/kitchen/temp", json!(22)).await;
    let p4 = poll_v4(&mut e4, v4_publish).await;
    assert_eq!(&p4.payload[..], b"22");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_to_mqtt_is_byte_exact() {
    let broker = start().await;
    let (sub, mut sub_loop) = broker.mqtt_v4("exact-sub");
    sub.subscribe("bin/#", QoS::ExactlyOnce).await.unwrap();
    poll_v4(&mut sub_loop, v4_suback).await;

    let payloads: Vec<Vec<u8>> = vec![
        (0u8..=255).collect(),
        b"  {\"spaced\" :  1 }  ".to_vec(),
        b"21.50".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        Vec::new(),
    ];
    let (publisher, mut pub_loop) = broker.mqtt_v5("exact-pub");
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
    for (i, payload) in payloads.iter().enumerate() {
        publisher
            .publish(
                format!("bin/{i}"),
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                false,
                payload.clone(),
            )
            .await
            .unwrap();
    }
    for (i, payload) in payloads.iter().enumerate() {
        let p = poll_v4(&mut sub_loop, v4_publish).await;
        assert_eq!(p.topic, format!("bin/{i}"));
        assert_eq!(
            &p.payload[..],
            &payload[..],
            "payload {i} must arrive byte for byte"
        );
    }
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn retained_messages_are_stored_records() {
    let broker = start().await;
    let (publisher, pub_loop) = broker.mqtt_v4("retainer");
    let mut pub_events = spawn_v4(pub_loop);
    publisher
        .publish("r/a", QoS::AtLeastOnce, true, b"x".to_vec())
        .await
        .unwrap();
    expect_v4(&mut pub_events, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))).then_some(())
    })
    .await;

    let mut native = broker.native().await;
    native.set("/r/b", json!({"v": 1})).await;
    let got = native.get("/r/a").await;
    assert_eq!(got["data"], json!({"value": "x"}), "{got}");

    // A new subscriber receives both as retained messages.
    let (sub, mut sub_loop) = broker.mqtt_v4("late-sub");
    sub.subscribe("r/+", QoS::AtLeastOnce).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let p = poll_v4(&mut sub_loop, v4_publish).await;
        assert!(p.retain, "stored records arrive as retained messages");
        seen.push((p.topic.clone(), p.payload.to_vec()));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("r/a".into(), b"x".to_vec()),
            ("r/b".into(), br#"{"v":1}"#.to_vec())
        ]
    );

    // An empty retained PUBLISH removes the record (MQTT 3.3.1-10/11).
    publisher
        .publish("r/a", QoS::AtLeastOnce, true, Vec::new())
        .await
        .unwrap();
    let cleared = poll_v4(&mut sub_loop, v4_publish).await;
    assert_eq!(cleared.topic, "r/a");
    assert!(cleared.payload.is_empty());
    let got = native.get("/r/a").await;
    assert!(got["data"].is_null(), "{got}");
    broker.broker.shutdown().await;
}

/// The embedding program's own client (`RunningBroker::local_admin_client`) and an MQTT
/// device see each other's writes through the one core.
#[tokio::test]
async fn the_local_admin_client_and_an_mqtt_device_meet_in_the_core() {
    use pathmq::native::client::{DataApi, SetOptions};

    let broker = start().await;
    let local = broker.broker.local_admin_client();
    let (client, mut eventloop) = broker.mqtt_v4("device-local");
    client
        .subscribe("config/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    poll_v4(&mut eventloop, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))).then_some(())
    })
    .await;

    local
        .set("/config/rate", json!({"hz": 10}), SetOptions::new())
        .await
        .expect("local set");
    let publish = poll_v4(&mut eventloop, v4_publish).await;
    assert_eq!(publish.topic, "config/rate");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&publish.payload).unwrap(),
        json!({"hz": 10})
    );

    client
        .publish(
            "state/pump",
            QoS::AtLeastOnce,
            true,
            br#"{"on":true}"#.to_vec(),
        )
        .await
        .unwrap();
    poll_v4(&mut eventloop, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))).then_some(())
    })
    .await;
    let item = local
        .get("/state/pump")
        .await
        .expect("local get")
        .expect("the retained publish is stored");
    assert_eq!(item.data, json!({"on": true}));
}

/// `native_tcp` serves the native protocol with length-prefixed frames, for backend
/// services: the Rust client over TCP meets a WebSocket-less broker config.
#[tokio::test]
async fn the_native_tcp_listener_serves_the_rust_client() {
    use pathmq::native::client::{Client, ClientConfig, DataApi, SetOptions};

    let mut config = pathmq::config::Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.native_tcp.enabled = true;
    config.native_tcp.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.engine = pathmq::config::Engine::Memory;
    let broker = start_with(config).await;
    let addr = broker
        .broker
        .native_tcp_addr()
        .expect("native tcp listener");
    let client = Client::connect(ClientConfig::tcp(addr.to_string()))
        .await
        .expect("connect over tcp");
    client
        .set("/backend/job", json!({"n": 1}), SetOptions::new())
        .await
        .expect("set over tcp");
    let local = broker.broker.local_admin_client();
    let item = local.get("/backend/job").await.unwrap().unwrap();
    assert_eq!(item.data, json!({"n": 1}));
}
