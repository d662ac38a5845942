//! Messages published while a persistent session is offline: QoS 1 and 2 are queued and
//! delivered on reconnect, in publish order, once; QoS 0 is not queued (as Mosquitto's
//! default `queue_qos0_messages false`); the queue is bounded by
//! `mqtt.max_queued_messages`.

use rumqttc::QoS;
use rumqttc::v5::mqttbytes::QoS as Q5;

use crate::support::*;
use crate::*;

/// What is published while the subscriber is offline, in order: the QoS 0 ones are not
/// queued. The list ends with QoS 1, whose PUBACK says the earlier QoS 0 ones were
/// handled while the session was offline.
const OFFLINE: [(QoS, &str); 7] = [
    (QoS::AtLeastOnce, "a"),
    (QoS::AtMostOnce, "b"),
    (QoS::ExactlyOnce, "c"),
    (QoS::AtLeastOnce, "d"),
    (QoS::AtMostOnce, "e"),
    (QoS::ExactlyOnce, "f"),
    (QoS::AtLeastOnce, "g"),
];

/// What a QoS 2 subscription gets of [`OFFLINE`] on reconnect, in this order.
const DELIVERED: [(QoS, &str); 5] = [
    (QoS::AtLeastOnce, "a"),
    (QoS::ExactlyOnce, "c"),
    (QoS::AtLeastOnce, "d"),
    (QoS::ExactlyOnce, "f"),
    (QoS::AtLeastOnce, "g"),
];

/// One 3.1.1 persistent subscriber offline while [`OFFLINE`] is published.
async fn offline_delivery_v4(broker: &TestBroker) {
    let id = "offline-v4";
    let (client, mut eventloop, _) = connect_v4(options_v4(broker, id, false)).await;
    subscribe_v4(&client, &mut eventloop, "offline/t", QoS::ExactlyOnce).await;
    disconnect_v4(client, eventloop).await;

    let mut publisher = Publisher::new(broker, "offline-v4-pub").await;
    for (qos, payload) in OFFLINE {
        publisher.send("offline/t", qos, payload).await;
    }

    let (client, mut eventloop, present) = connect_v4(options_v4(broker, id, false)).await;
    assert!(present, "[MQTT-3.2.2-2]");
    for (i, (qos, payload)) in DELIVERED.into_iter().enumerate() {
        let got = next_v4(&mut eventloop).await;
        assert_eq!(
            got,
            ("offline/t".to_owned(), qos, payload.to_owned(), false),
            "message {i}: QoS 1/2 kept while offline [MQTT-3.1.2-5], in order \
             [MQTT-4.6.0-5], a first delivery has DUP 0 [MQTT-4.3.2-1, MQTT-4.3.3-1]"
        );
    }
    // Live again: the next message on the topic is the one published now, so neither a
    // QoS 0 message nor a second copy of a queued one came in between.
    publisher.send("offline/t", QoS::AtLeastOnce, "live").await;
    let got = next_v4(&mut eventloop).await;
    assert_eq!(got.2, "live", "nothing else was queued");
    disconnect_v4(client, eventloop).await;
}

/// [MQTT-3.1.2-4, MQTT-3.1.2-5] with the memory store: the session, its subscription and
/// its QoS 1/2 messages are kept while the client is away; QoS 0 is not queued.
#[tokio::test]
async fn offline_qos1_and_qos2_arrive_in_order_and_qos0_does_not_v4_memory() {
    let broker = start().await;
    offline_delivery_v4(&broker).await;
    broker.broker.shutdown().await;
}

/// The same on the redb store (DESIGN.md §6: offline queues live in redb).
#[tokio::test]
async fn offline_qos1_and_qos2_arrive_in_order_and_qos0_does_not_v4_redb() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_redb(&dir.path().join("sessions.redb")).await;
    offline_delivery_v4(&broker).await;
    broker.broker.shutdown().await;
}

/// MQTT 5, Clean Start 0 and a Session Expiry Interval of 60 s: the session outlives
/// the connection [MQTT-3.1.2-23] and is resumed [MQTT-3.1.2-5]; the messages published
/// meanwhile arrive as in 3.1.1, with rumqttc's PUBACK/PUBREC/PUBCOMP.
#[tokio::test]
async fn offline_qos1_and_qos2_arrive_in_order_and_qos0_does_not_v5() {
    let broker = start().await;
    let options = || options_v5(&broker, "offline-v5", false, Some(60));
    let (client, mut eventloop, _) = connect_v5(options()).await;
    subscribe_v5(&client, &mut eventloop, "offline/v5", Q5::ExactlyOnce).await;
    disconnect_v5(client, eventloop).await;

    let mut publisher = Publisher::new(&broker, "offline-v5-pub").await;
    for (qos, payload) in OFFLINE {
        publisher.send("offline/v5", qos, payload).await;
    }

    let (client, mut eventloop, connack) = connect_v5(options()).await;
    assert!(connack.session_present, "[MQTT-3.2.2-3]");
    for (i, (qos, payload)) in DELIVERED.into_iter().enumerate() {
        let p = poll_v5(&mut eventloop, v5_publish).await;
        assert_eq!(
            (&p.topic[..], p.qos as u8, &p.payload[..], p.dup),
            (&b"offline/v5"[..], qos as u8, payload.as_bytes(), false),
            "message {i}"
        );
    }
    publisher.send("offline/v5", QoS::AtLeastOnce, "live").await;
    let p = poll_v5(&mut eventloop, v5_publish).await;
    assert_eq!(&p.payload[..], b"live", "nothing else was queued");
    disconnect_v5(client, eventloop).await;
    broker.broker.shutdown().await;
}

/// Two persistent subscriptions of one session on different topics and QoS: each topic's
/// messages arrive in the order they were published [MQTT-4.6.0-5].
#[tokio::test]
async fn offline_messages_of_each_topic_keep_their_order() {
    const N: usize = 50;
    let broker = start().await;
    let id = "ordered";
    let (client, mut eventloop, _) = connect_v4(options_v4(&broker, id, false)).await;
    subscribe_v4(&client, &mut eventloop, "ordered/one", QoS::AtLeastOnce).await;
    subscribe_v4(&client, &mut eventloop, "ordered/two", QoS::ExactlyOnce).await;
    disconnect_v4(client, eventloop).await;

    let mut publisher = Publisher::new(&broker, "ordered-pub").await;
    for i in 0..N {
        publisher
            .send("ordered/one", QoS::AtLeastOnce, i.to_string())
            .await;
        publisher
            .send("ordered/two", QoS::ExactlyOnce, i.to_string())
            .await;
    }
    let (client, mut eventloop, present) = connect_v4(options_v4(&broker, id, false)).await;
    assert!(present);
    let (mut one, mut two) = (Vec::new(), Vec::new());
    while one.len() + two.len() < 2 * N {
        let (topic, qos, payload, _) = next_v4(&mut eventloop).await;
        match (topic.as_str(), qos) {
            ("ordered/one", QoS::AtLeastOnce) => one.push(payload),
            ("ordered/two", QoS::ExactlyOnce) => two.push(payload),
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(one, expected, "QoS 1 topic in order, once");
    assert_eq!(two, expected, "QoS 2 topic in order, once");
    disconnect_v4(client, eventloop).await;
    broker.broker.shutdown().await;
}

/// `mqtt.max_queued_messages = 10`: an offline session keeps the first 10 of 20 QoS 1
/// messages; the 10 later ones are dropped (the publisher still gets its PUBACKs) and
/// counted in the broker's `dropped` statistic.
#[tokio::test]
async fn an_offline_queue_keeps_the_first_max_queued_messages() {
    let mut config = memory_config();
    config.mqtt.max_queued_messages = 10;
    let broker = start_with(config).await;
    let id = "capped";
    let (client, mut eventloop, _) = connect_v4(options_v4(&broker, id, false)).await;
    subscribe_v4(&client, &mut eventloop, "capped/t", QoS::AtLeastOnce).await;
    disconnect_v4(client, eventloop).await;

    let dropped = broker.broker.core().stats().dropped;
    let mut publisher = Publisher::new(&broker, "capped-pub").await;
    for i in 0..20 {
        publisher
            .send("capped/t", QoS::AtLeastOnce, i.to_string())
            .await;
    }
    assert_eq!(
        broker.broker.core().stats().dropped - dropped,
        10,
        "the 10 messages beyond the bound are counted"
    );

    let (client, mut eventloop, present) = connect_v4(options_v4(&broker, id, false)).await;
    assert!(present);
    for i in 0..10 {
        let (_, _, payload, _) = next_v4(&mut eventloop).await;
        assert_eq!(payload, i.to_string(), "the first 10, in order");
    }
    publisher.send("capped/t", QoS::AtLeastOnce, "live").await;
    let (_, _, payload, _) = next_v4(&mut eventloop).await;
    assert_eq!(payload, "live", "messages 10..20 were dropped");
    disconnect_v4(client, eventloop).await;
    broker.broker.shutdown().await;
}
