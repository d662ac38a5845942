//! The CONNACK session present flag, and a clean session / clean start discarding the
//! stored session, its subscriptions and its queue.

use rumqttc::QoS;
use rumqttc::v5::mqttbytes::QoS as Q5;

use crate::support::*;
use crate::*;

/// 3.1.1: Session Present is 0 on the first CleanSession = 0 connect [MQTT-3.2.2-3], 1
/// when one resumes the stored session [MQTT-3.2.2-2] (which the server kept after a
/// DISCONNECT and after a dropped network connection alike [MQTT-3.1.2-4]), and 0 with
/// CleanSession = 1 [MQTT-3.2.2-1], whose session is discarded and not stored after
/// its connection [MQTT-3.1.2-6]: the next CleanSession = 0 connect finds none.
#[tokio::test]
async fn session_present_follows_the_stored_session_v4() {
    let broker = start().await;
    let id = "present-v4";
    let (client, mut eventloop, present) = connect_v4(options_v4(&broker, id, false)).await;
    assert!(!present, "no stored session yet [MQTT-3.2.2-3]");
    subscribe_v4(&client, &mut eventloop, "present/v4", QoS::AtLeastOnce).await;
    disconnect_v4(client, eventloop).await;

    let (_client, eventloop, present) = connect_v4(options_v4(&broker, id, false)).await;
    assert!(present, "the stored session resumes [MQTT-3.2.2-2]");
    // The network connection ends without a DISCONNECT: the session is stored all the same.
    drop(eventloop);
    let (client, eventloop, present) = connect_v4(options_v4(&broker, id, false)).await;
    assert!(present, "kept after a dropped connection [MQTT-3.1.2-4]");
    disconnect_v4(client, eventloop).await;

    let (client, eventloop, present) = connect_v4(options_v4(&broker, id, true)).await;
    assert!(!present, "CleanSession = 1 [MQTT-3.2.2-1]");
    disconnect_v4(client, eventloop).await;
    let (client, eventloop, present) = connect_v4(options_v4(&broker, id, false)).await;
    assert!(
        !present,
        "the clean session discarded the old one and was not stored [MQTT-3.1.2-6]"
    );
    disconnect_v4(client, eventloop).await;
    broker.broker.shutdown().await;
}

/// MQTT 5: Session Present is 0 on the first Clean Start = 0 connect, 1 when the session
/// (Session Expiry Interval 60 s) is resumed [MQTT-3.2.2-3, MQTT-3.1.2-5], 0 with Clean
/// Start = 1 [MQTT-3.2.2-2], which discards the stored session [MQTT-3.1.2-4].
#[tokio::test]
async fn session_present_follows_the_stored_session_v5() {
    let broker = start().await;
    let id = "present-v5";
    let options = |clean| options_v5(&broker, id, clean, Some(60));
    let (client, mut eventloop, connack) = connect_v5(options(false)).await;
    assert!(!connack.session_present, "no stored session yet");
    subscribe_v5(&client, &mut eventloop, "present/v5", Q5::AtLeastOnce).await;
    disconnect_v5(client, eventloop).await;

    let (client, eventloop, connack) = connect_v5(options(false)).await;
    assert!(connack.session_present, "resumed [MQTT-3.2.2-3]");
    disconnect_v5(client, eventloop).await;

    let (client, eventloop, connack) = connect_v5(options(true)).await;
    assert!(!connack.session_present, "Clean Start = 1 [MQTT-3.2.2-2]");
    disconnect_v5(client, eventloop).await;
    // The clean start's own session (expiry 60 s) is the one stored now: it has no
    // subscription, and a resume says so.
    let (client, mut eventloop, connack) = connect_v5(options(false)).await;
    assert!(connack.session_present, "the new session was stored");
    let mut publisher = Publisher::new(&broker, "present-v5-pub").await;
    publisher
        .send("present/v5", QoS::AtLeastOnce, "old filter")
        .await;
    subscribe_v5(&client, &mut eventloop, "present/marker", Q5::AtLeastOnce).await;
    publisher
        .send("present/marker", QoS::AtLeastOnce, "marker")
        .await;
    let first = poll_v5(&mut eventloop, v5_publish).await;
    assert_eq!(
        &first.topic[..],
        b"present/marker",
        "the discarded session's subscription is gone [MQTT-3.1.2-4]"
    );
    disconnect_v5(client, eventloop).await;
    broker.broker.shutdown().await;
}

/// CleanSession = 1 discards the stored session [MQTT-3.1.2-6]: the QoS 1 message queued
/// for it while offline is not delivered, and its subscription is gone.
#[tokio::test]
async fn clean_session_discards_the_stored_subscriptions_and_queue() {
    let broker = start().await;
    let id = "discard";
    let mut publisher = Publisher::new(&broker, "discard-pub").await;
    let (client, mut eventloop, _) = connect_v4(options_v4(&broker, id, false)).await;
    subscribe_v4(&client, &mut eventloop, "discard/t", QoS::AtLeastOnce).await;
    disconnect_v4(client, eventloop).await;
    publisher
        .send("discard/t", QoS::AtLeastOnce, "queued")
        .await;

    // A clean session: the queued message is not delivered. It subscribes the same topic
    // itself: the first message on it is the one published now.
    let (client, mut eventloop, present) = connect_v4(options_v4(&broker, id, true)).await;
    assert!(!present, "[MQTT-3.2.2-1]");
    subscribe_v4(&client, &mut eventloop, "discard/t", QoS::AtLeastOnce).await;
    publisher.send("discard/t", QoS::AtLeastOnce, "fresh").await;
    let (topic, _, payload, _) = next_v4(&mut eventloop).await;
    assert_eq!(
        (topic.as_str(), payload.as_str()),
        ("discard/t", "fresh"),
        "the old queue was discarded [MQTT-3.1.2-6]"
    );
    disconnect_v4(client, eventloop).await;

    // Neither the first session's subscription nor the clean one's remains.
    let (client, mut eventloop, present) = connect_v4(options_v4(&broker, id, false)).await;
    assert!(!present, "[MQTT-3.1.2-6]");
    publisher
        .send("discard/t", QoS::AtLeastOnce, "orphan")
        .await;
    subscribe_v4(&client, &mut eventloop, "discard/marker", QoS::AtLeastOnce).await;
    publisher
        .send("discard/marker", QoS::AtLeastOnce, "marker")
        .await;
    let (topic, _, payload, _) = next_v4(&mut eventloop).await;
    assert_eq!(
        (topic.as_str(), payload.as_str()),
        ("discard/marker", "marker"),
        "no subscription to discard/t survived"
    );
    disconnect_v4(client, eventloop).await;
    broker.broker.shutdown().await;
}
