//! In-flight messages of a persistent session, on the wire: a QoS 1/2 PUBLISH the server
//! sent and the client did not acknowledge before its connection dropped is sent again
//! on reconnect with DUP = 1 [MQTT-3.3.1-1] and its original packet identifier
//! [MQTT-4.4.0-1]; a PUBREL that was not completed is sent again, the PUBLISH not
//! [MQTT-4.3.3-1].

use rumqttc::QoS;

use crate::raw_session::{self, DISCONNECT, ack, next_publish};
use crate::support::*;
use crate::*;

/// A raw persistent subscriber to `filter` at `qos` that has just received one message
/// (`payload` on `topic`, published by `publisher`), checked as a first delivery (DUP 0).
async fn receive_once(
    broker: &TestBroker,
    level: u8,
    id: &str,
    (filter, qos): (&str, u8),
    publisher: &mut Publisher,
    (topic, payload): (&str, &str),
) -> (crate::raw::Raw, raw_session::Incoming) {
    let expiry = (level == 5).then_some(60);
    let (mut client, present) = raw_session::connect(broker.mqtt, level, id, false, expiry).await;
    assert!(!present);
    raw_session::subscribe(&mut client, level, 1, filter, qos).await;
    let publish_qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(qos)];
    publisher.send(topic, publish_qos, payload).await;
    let first = next_publish(&mut client, level).await;
    assert_eq!(
        (
            first.topic.as_str(),
            first.qos,
            &first.payload[..],
            first.dup
        ),
        (topic, qos, payload.as_bytes(), false),
        "a first delivery has DUP 0 [MQTT-4.3.2-1, MQTT-4.3.3-1]"
    );
    assert_ne!(first.pkid, 0, "[MQTT-2.3.1-1]");
    (client, first)
}

/// The resend of `first`: same topic, QoS, payload and packet identifier, DUP 1.
fn assert_resent(again: &raw_session::Incoming, first: &raw_session::Incoming) {
    assert!(
        again.dup,
        "a re-delivery has DUP 1 [MQTT-3.3.1-1]: {again:?}"
    );
    assert_eq!(
        again.pkid, first.pkid,
        "resent with its original packet identifier [MQTT-4.4.0-1]"
    );
    assert_eq!(
        (&again.topic, again.qos, &again.payload),
        (&first.topic, first.qos, &first.payload),
        "the same message"
    );
}

/// 3.1.1: the QoS 1 PUBLISH is received, the socket closed without a PUBACK; on
/// reconnect (CleanSession 0) it comes again, DUP 1, same packet identifier. Once
/// PUBACKed it is not resent again [MQTT-4.3.2-2 for the sender's side of the flow].
#[tokio::test]
async fn unacknowledged_qos1_is_resent_with_dup_and_its_packet_id_v4() {
    let broker = start().await;
    let mut publisher = Publisher::new(&broker, "inflight-q1-pub").await;
    let id = "inflight-q1";
    let (client, first) = receive_once(
        &broker,
        4,
        id,
        ("inflight/q1", 1),
        &mut publisher,
        ("inflight/q1", "m1"),
    )
    .await;
    drop(client);

    let (mut client, present) = raw_session::connect(broker.mqtt, 4, id, false, None).await;
    assert!(present, "[MQTT-3.2.2-2]");
    let again = next_publish(&mut client, 4).await;
    assert_resent(&again, &first);
    client.send(&ack(0x40, again.pkid)).await;
    client.send(&DISCONNECT).await;
    client.expect_closed().await;

    let (mut client, present) = raw_session::connect(broker.mqtt, 4, id, false, None).await;
    assert!(present);
    publisher.send("inflight/q1", QoS::AtLeastOnce, "m2").await;
    let next = next_publish(&mut client, 4).await;
    assert_eq!(
        (&next.payload[..], next.dup),
        (&b"m2"[..], false),
        "the PUBACKed message is not resent"
    );
    broker.broker.shutdown().await;
}

/// MQTT 5 (Clean Start 0, Session Expiry Interval 60 s): the same resend of an
/// unacknowledged QoS 1 PUBLISH [MQTT-4.4.0-1, MQTT-3.3.1-1].
#[tokio::test]
async fn unacknowledged_qos1_is_resent_with_dup_and_its_packet_id_v5() {
    let broker = start().await;
    let mut publisher = Publisher::new(&broker, "inflight-v5-pub").await;
    let id = "inflight-v5";
    let (client, first) = receive_once(
        &broker,
        5,
        id,
        ("inflight/v5", 1),
        &mut publisher,
        ("inflight/v5", "m1"),
    )
    .await;
    drop(client);

    let (mut client, present) = raw_session::connect(broker.mqtt, 5, id, false, Some(60)).await;
    assert!(present, "[MQTT-3.2.2-3]");
    let again = next_publish(&mut client, 5).await;
    assert_resent(&again, &first);
    client.send(&ack(0x40, again.pkid)).await;
    publisher.send("inflight/v5", QoS::AtLeastOnce, "m2").await;
    let next = next_publish(&mut client, 5).await;
    assert_eq!((&next.payload[..], next.dup), (&b"m2"[..], false));
    broker.broker.shutdown().await;
}

/// QoS 2, no PUBREC sent: the PUBLISH is unacknowledged and is resent with DUP 1 and its
/// packet identifier [MQTT-4.4.0-1, MQTT-3.3.1-1]; the flow then completes (PUBREC →
/// PUBREL with that identifier → PUBCOMP) and the message is not delivered a third time.
#[tokio::test]
async fn qos2_publish_without_pubrec_is_resent_with_dup_and_its_packet_id() {
    let broker = start().await;
    let mut publisher = Publisher::new(&broker, "q2-publish-pub").await;
    let id = "q2-publish";
    let (client, first) = receive_once(
        &broker,
        4,
        id,
        ("inflight/q2", 2),
        &mut publisher,
        ("inflight/q2", "once"),
    )
    .await;
    drop(client);

    let (mut client, present) = raw_session::connect(broker.mqtt, 4, id, false, None).await;
    assert!(present);
    let again = next_publish(&mut client, 4).await;
    assert_resent(&again, &first);
    client.send(&ack(0x50, again.pkid)).await;
    assert_eq!(
        client.packet().await.expect("a PUBREL"),
        ack(0x62, again.pkid),
        "PUBREL for the PUBREC [MQTT-4.3.3-1]"
    );
    client.send(&ack(0x70, again.pkid)).await;
    publisher
        .send("inflight/q2", QoS::ExactlyOnce, "next")
        .await;
    let next = next_publish(&mut client, 4).await;
    assert_eq!((&next.payload[..], next.dup), (&b"next"[..], false));
    broker.broker.shutdown().await;
}

/// QoS 2, PUBREC sent and PUBREL received, no PUBCOMP: on reconnect the server resends
/// the PUBREL with its packet identifier [MQTT-4.4.0-1] and not the PUBLISH, which it
/// must not send again once it sent the PUBREL [MQTT-4.3.3-1]: the message is delivered
/// exactly once.
#[tokio::test]
async fn qos2_pubrel_without_pubcomp_is_resent_and_the_publish_is_not() {
    let broker = start().await;
    let mut publisher = Publisher::new(&broker, "q2-pubrel-pub").await;
    let id = "q2-pubrel";
    let (mut client, first) = receive_once(
        &broker,
        4,
        id,
        ("inflight/rel", 2),
        &mut publisher,
        ("inflight/rel", "once"),
    )
    .await;
    client.send(&ack(0x50, first.pkid)).await;
    assert_eq!(
        client.packet().await.expect("a PUBREL"),
        ack(0x62, first.pkid)
    );
    drop(client);

    let (mut client, present) = raw_session::connect(broker.mqtt, 4, id, false, None).await;
    assert!(present);
    assert_eq!(
        client.packet().await.expect("the PUBREL again"),
        ack(0x62, first.pkid),
        "the unacknowledged PUBREL is resent with its identifier [MQTT-4.4.0-1]"
    );
    client.send(&ack(0x70, first.pkid)).await;
    publisher
        .send("inflight/rel", QoS::ExactlyOnce, "next")
        .await;
    let next = next_publish(&mut client, 4).await;
    assert_eq!(
        (&next.payload[..], next.dup),
        (&b"next"[..], false),
        "the released message is not delivered again [MQTT-4.3.3-1]"
    );
    broker.broker.shutdown().await;
}

/// [MQTT-3.1.4-3, MQTT-4.4.0-1]: a client whose old connection is still open with a full
/// in-flight window (a half-open socket) reconnects: the old connection is closed at once,
/// the session resumes (present 1) and every message comes — the unacknowledged ones
/// again with DUP 1, then those that waited.
#[tokio::test]
async fn a_takeover_with_a_full_window_resumes_the_session() {
    let broker = start().await;
    let mut publisher = Publisher::new(&broker, "flap-pub").await;
    let (mut old, present) = raw_session::connect(broker.mqtt, 4, "flap", false, None).await;
    assert!(!present);
    raw_session::subscribe(&mut old, 4, 1, "flap/#", 1).await;
    // 40 messages: 32 fill the 3.1.1 window unacknowledged, 8 wait behind them.
    for i in 0..40 {
        publisher
            .send("flap/t", QoS::AtLeastOnce, format!("m{i}"))
            .await;
    }
    for _ in 0..32 {
        next_publish(&mut old, 4).await;
    }
    let started = std::time::Instant::now();
    let (mut new, present) = raw_session::connect(broker.mqtt, 4, "flap", false, None).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "no takeover wait"
    );
    assert!(present, "resumed");
    let mut got = Vec::new();
    for _ in 0..40 {
        let message = next_publish(&mut new, 4).await;
        new.send(&ack(0x40, message.pkid)).await;
        got.push((
            String::from_utf8_lossy(&message.payload).into_owned(),
            message.dup,
        ));
    }
    let expected: Vec<_> = (0..40).map(|i| (format!("m{i}"), i < 32)).collect();
    assert_eq!(got, expected);
    drop(old);
    broker.broker.shutdown().await;
}
