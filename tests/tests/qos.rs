//! QoS 1 and 2 round trips with the full in-session flows, MQTT 3.1.1 and 5
//! (DESIGN.md §6: delivery QoS = min(publish QoS, granted QoS)).

mod support;

use rumqttc::{Event, Outgoing, Packet, QoS};
use support::*;

#[tokio::test]
async fn qos1_and_qos2_round_trips_v4() {
    let broker = start().await;
    let (sub, mut sub_loop) = broker.mqtt_v4("q-sub");
    sub.subscribe("q/2", QoS::ExactlyOnce).await.unwrap();
    sub.subscribe("q/1", QoS::AtLeastOnce).await.unwrap();
    poll_v4(&mut sub_loop, v4_suback).await;
    poll_v4(&mut sub_loop, v4_suback).await;

    let (publisher, pub_loop) = broker.mqtt_v4("q-pub");
    let mut pub_events = spawn_v4(pub_loop);
    publisher
        .publish("q/2", QoS::ExactlyOnce, false, b"two".to_vec())
        .await
        .unwrap();
    // The publisher's QoS 2 flow: PUBREC in, PUBREL out, PUBCOMP in.
    expect_v4(&mut pub_events, |e| {
        matches!(e, Event::Incoming(Packet::PubRec(_))).then_some(())
    })
    .await;
    expect_v4(&mut pub_events, |e| {
        matches!(e, Event::Incoming(Packet::PubComp(_))).then_some(())
    })
    .await;
    let p = poll_v4(&mut sub_loop, v4_publish).await;
    assert_eq!((p.qos, &p.payload[..]), (QoS::ExactlyOnce, &b"two"[..]));
    // The subscriber answers PUBREC, the broker PUBREL, the subscriber PUBCOMP.
    poll_v4(&mut sub_loop, |e| {
        matches!(e, Event::Incoming(Packet::PubRel(_))).then_some(())
    })
    .await;
    poll_v4(&mut sub_loop, |e| {
        matches!(e, Event::Outgoing(Outgoing::PubComp(_))).then_some(())
    })
    .await;

    // QoS 2 published to a QoS 1 subscription is delivered at QoS 1.
    publisher
        .publish("q/1", QoS::ExactlyOnce, false, b"capped".to_vec())
        .await
        .unwrap();
    let p = poll_v4(&mut sub_loop, v4_publish).await;
    assert_eq!((p.qos, &p.payload[..]), (QoS::AtLeastOnce, &b"capped"[..]));
    poll_v4(&mut sub_loop, |e| {
        matches!(e, Event::Outgoing(Outgoing::PubAck(_))).then_some(())
    })
    .await;

    // QoS 1 publish: PUBACK to the publisher, QoS 1 delivery.
    publisher
        .publish("q/1", QoS::AtLeastOnce, false, b"one".to_vec())
        .await
        .unwrap();
    expect_v4(&mut pub_events, |e| {
        matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
    })
    .await;
    let p = poll_v4(&mut sub_loop, v4_publish).await;
    assert_eq!((p.qos, &p.payload[..]), (QoS::AtLeastOnce, &b"one"[..]));
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn qos1_and_qos2_round_trips_v5() {
    use rumqttc::v5::Event as E5;
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    let broker = start().await;
    let (sub, mut sub_loop) = broker.mqtt_v5("q5-sub");
    sub.subscribe("q5/#", Q5::ExactlyOnce).await.unwrap();
    poll_v5(&mut sub_loop, v5_suback).await;

    let (publisher, mut pub_loop) = broker.mqtt_v5("q5-pub");
    publisher
        .publish("q5/a", Q5::ExactlyOnce, false, b"two".to_vec())
        .await
        .unwrap();
    // The PUBCOMP comes back only after the broker queued the message for the subscriber.
    poll_v5(&mut pub_loop, |e| {
        matches!(e, E5::Incoming(P5::PubComp(_))).then_some(())
    })
    .await;
    let p = poll_v5(&mut sub_loop, v5_publish).await;
    assert_eq!((p.qos, &p.payload[..]), (Q5::ExactlyOnce, &b"two"[..]));

    publisher
        .publish("q5/b", Q5::AtLeastOnce, false, b"one".to_vec())
        .await
        .unwrap();
    poll_v5(&mut pub_loop, |e| {
        matches!(e, E5::Incoming(P5::PubAck(_))).then_some(())
    })
    .await;
    let p = poll_v5(&mut sub_loop, v5_publish).await;
    assert_eq!((p.qos, &p.payload[..]), (Q5::AtLeastOnce, &b"one"[..]));
    broker.broker.shutdown().await;
}
