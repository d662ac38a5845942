//! Round trips through a real MQTT 3.1.1 client (rumqttc).

mod common;

use bytes::Bytes;
use common::{Incoming, start, v4_client};
use rumqttc::{Packet, QoS};

async fn publish_acked(
    client: &rumqttc::AsyncClient,
    incoming: &mut Incoming<Packet>,
    topic: &str,
    qos: QoS,
    retain: bool,
    payload: impl Into<Vec<u8>>,
) {
    client.publish(topic, qos, retain, payload).await.unwrap();
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => {
            incoming
                .until(|p| matches!(p, Packet::PubAck(_)).then_some(()))
                .await
        }
        QoS::ExactlyOnce => {
            incoming
                .until(|p| matches!(p, Packet::PubComp(_)).then_some(()))
                .await
        }
    }
}

async fn subscribed(
    client: &rumqttc::AsyncClient,
    incoming: &mut Incoming<Packet>,
    filter: &str,
    qos: QoS,
) {
    client.subscribe(filter, qos).await.unwrap();
    incoming
        .until(|p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await;
}

async fn next_publish(incoming: &mut Incoming<Packet>) -> rumqttc::Publish {
    incoming
        .until(|p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
}

#[tokio::test]
async fn publish_subscribe_round_trip_at_each_qos() {
    let broker = start().await;
    let (sub, mut sub_in) = v4_client(&broker, "sub").await;
    let (publisher, mut pub_in) = v4_client(&broker, "pub").await;
    subscribed(&sub, &mut sub_in, "rt/+", QoS::ExactlyOnce).await;
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let topic = format!("rt/{i}");
        publish_acked(&publisher, &mut pub_in, &topic, qos, false, format!("m{i}")).await;
        let got = next_publish(&mut sub_in).await;
        assert_eq!(got.topic, topic);
        assert_eq!(got.qos, qos, "delivered at the publish QoS");
        assert_eq!(&got.payload[..], format!("m{i}").as_bytes());
        assert!(!got.retain, "live messages have retain 0");
    }
}

#[tokio::test]
async fn delivery_qos_is_capped_by_the_granted_qos_and_overlaps_deliver_once() {
    let broker = start().await;
    let (sub, mut sub_in) = v4_client(&broker, "sub").await;
    let (publisher, mut pub_in) = v4_client(&broker, "pub").await;
    subscribed(&sub, &mut sub_in, "d/+", QoS::AtMostOnce).await;
    subscribed(&sub, &mut sub_in, "d/#", QoS::AtLeastOnce).await;
    publish_acked(
        &publisher,
        &mut pub_in,
        "d/x",
        QoS::ExactlyOnce,
        false,
        "one",
    )
    .await;
    publish_acked(
        &publisher,
        &mut pub_in,
        "d/marker",
        QoS::AtMostOnce,
        false,
        "m",
    )
    .await;
    let first = next_publish(&mut sub_in).await;
    assert_eq!((first.topic.as_str(), first.qos), ("d/x", QoS::AtLeastOnce));
    let second = next_publish(&mut sub_in).await;
    assert_eq!(second.topic, "d/marker", "the overlapping event came once");
}

#[tokio::test]
async fn binary_payload_is_byte_exact() {
    let broker = start().await;
    let (sub, mut sub_in) = v4_client(&broker, "sub").await;
    let (publisher, mut pub_in) = v4_client(&broker, "pub").await;
    subscribed(&sub, &mut sub_in, "bin", QoS::AtLeastOnce).await;
    let payload: Vec<u8> = (0..=255u8).chain([0, 0xFF, 0xC3, 0x28]).collect();
    publish_acked(
        &publisher,
        &mut pub_in,
        "bin",
        QoS::AtLeastOnce,
        false,
        payload.clone(),
    )
    .await;
    let got = next_publish(&mut sub_in).await;
    assert_eq!(got.payload, Bytes::from(payload));
    // JSON text is not re-serialised either.
    let json = br#"{ "b" : 1,"a":[1.50, 2] }"#.to_vec();
    publish_acked(
        &publisher,
        &mut pub_in,
        "bin",
        QoS::AtLeastOnce,
        false,
        json.clone(),
    )
    .await;
    assert_eq!(next_publish(&mut sub_in).await.payload, Bytes::from(json));
}

#[tokio::test]
async fn retained_messages_are_delivered_on_subscribe_and_cleared_by_an_empty_one() {
    let broker = start().await;
    let (publisher, mut pub_in) = v4_client(&broker, "pub").await;
    publish_acked(
        &publisher,
        &mut pub_in,
        "r/1",
        QoS::AtLeastOnce,
        true,
        "one",
    )
    .await;
    publish_acked(
        &publisher,
        &mut pub_in,
        "r/2",
        QoS::AtLeastOnce,
        true,
        "two",
    )
    .await;

    let (sub, mut sub_in) = v4_client(&broker, "sub").await;
    subscribed(&sub, &mut sub_in, "r/#", QoS::ExactlyOnce).await;
    let mut retained = Vec::new();
    for _ in 0..2 {
        let p = next_publish(&mut sub_in).await;
        assert!(p.retain, "retained messages have retain 1");
        assert_eq!(
            p.qos,
            QoS::AtLeastOnce,
            "retained messages go at min(granted, 1)"
        );
        retained.push((p.topic, p.payload));
    }
    retained.sort();
    assert_eq!(
        retained,
        [
            ("r/1".to_owned(), Bytes::from("one")),
            ("r/2".to_owned(), Bytes::from("two"))
        ]
    );

    // An empty retained PUBLISH removes the record; subscribers get an empty message.
    publish_acked(&publisher, &mut pub_in, "r/1", QoS::AtLeastOnce, true, "").await;
    let cleared = next_publish(&mut sub_in).await;
    assert_eq!((cleared.topic.as_str(), cleared.payload.len()), ("r/1", 0));

    // A new subscriber gets only r/2, then the marker published after its SUBACK.
    let (late, mut late_in) = v4_client(&broker, "late").await;
    subscribed(&late, &mut late_in, "r/#", QoS::AtLeastOnce).await;
    let only = next_publish(&mut late_in).await;
    assert_eq!((only.topic.as_str(), only.retain), ("r/2", true));
    publish_acked(
        &publisher,
        &mut pub_in,
        "r/marker",
        QoS::AtLeastOnce,
        false,
        "m",
    )
    .await;
    let marker = next_publish(&mut late_in).await;
    assert_eq!((marker.topic.as_str(), marker.retain), ("r/marker", false));
}

#[tokio::test]
async fn wildcards_route_as_mqtt_says() {
    let broker = start().await;
    let (plus, mut plus_in) = v4_client(&broker, "plus").await;
    let (hash, mut hash_in) = v4_client(&broker, "hash").await;
    let (publisher, mut pub_in) = v4_client(&broker, "pub").await;
    subscribed(&plus, &mut plus_in, "w/+/t", QoS::AtLeastOnce).await;
    subscribed(&hash, &mut hash_in, "w/#", QoS::AtLeastOnce).await;
    for topic in ["w/a/t", "w/a/b/t", "w", "x/a/t", "w/z/t"] {
        publish_acked(
            &publisher,
            &mut pub_in,
            topic,
            QoS::AtLeastOnce,
            false,
            topic,
        )
        .await;
    }
    let mut got_plus = Vec::new();
    for _ in 0..2 {
        got_plus.push(next_publish(&mut plus_in).await.topic);
    }
    assert_eq!(got_plus, ["w/a/t", "w/z/t"]);
    let mut got_hash = Vec::new();
    for _ in 0..4 {
        got_hash.push(next_publish(&mut hash_in).await.topic);
    }
    assert_eq!(got_hash, ["w/a/t", "w/a/b/t", "w", "w/z/t"]);
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let broker = start().await;
    let (sub, mut sub_in) = v4_client(&broker, "sub").await;
    let (publisher, mut pub_in) = v4_client(&broker, "pub").await;
    subscribed(&sub, &mut sub_in, "u/a", QoS::AtLeastOnce).await;
    subscribed(&sub, &mut sub_in, "u/marker", QoS::AtLeastOnce).await;
    sub.unsubscribe("u/a").await.unwrap();
    sub_in
        .until(|p| matches!(p, Packet::UnsubAck(_)).then_some(()))
        .await;
    publish_acked(&publisher, &mut pub_in, "u/a", QoS::AtLeastOnce, false, "x").await;
    publish_acked(
        &publisher,
        &mut pub_in,
        "u/marker",
        QoS::AtLeastOnce,
        false,
        "m",
    )
    .await;
    assert_eq!(next_publish(&mut sub_in).await.topic, "u/marker");
}

#[tokio::test]
async fn a_second_connection_with_the_same_client_id_takes_over() {
    let broker = start().await;
    let (_old, mut old_in) = v4_client(&broker, "same").await;
    let (new, mut new_in) = v4_client(&broker, "same").await;
    // 3.1.1 has no DISCONNECT from the server: the old connection is closed.
    let error = old_in.error().await;
    assert!(!error.is_empty());
    // The new connection works.
    subscribed(&new, &mut new_in, "t/o", QoS::AtLeastOnce).await;
    publish_acked(&new, &mut new_in, "t/o", QoS::AtLeastOnce, false, "hi").await;
    assert_eq!(next_publish(&mut new_in).await.payload, Bytes::from("hi"));
}
