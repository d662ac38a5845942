//! Durable sessions (Clean Start 0, Session Expiry > 0; MQTT 5 §4.1) keep what the
//! MQTT 5 features attach to a message: a message queued while the client is offline, or
//! resent because it was not acknowledged, arrives with its properties, the identifiers
//! of its subscriptions and its retain flag as published; topic aliases start over with
//! the new connection [MQTT-3.3.2-7]. (Message expiry in the offline queue is in
//! `expiry.rs`.)

use crate::support::start;
use crate::wire::{Client, Connect, Props, Publish, id, options, puback};

/// The properties of the message under test, as sent (User Properties with distinct
/// names in alphabetical order: their order has its own test in `properties.rs`).
fn sent_properties() -> Props {
    Props::new()
        .byte(id::PAYLOAD_FORMAT, 1)
        .four(id::MESSAGE_EXPIRY, 60)
        .bytes(id::CONTENT_TYPE, "text/plain")
        .bytes(id::RESPONSE_TOPIC, "dur/replies")
        .bytes(id::CORRELATION_DATA, [0x00, 0x01, 0xFE])
        .user("m", "1")
        .user("n", "2")
}

/// Asserts `got` carries [`sent_properties`], the expiry reduced by at most a second.
fn assert_sent_properties(got: &Publish) {
    let props = &got.props;
    assert_eq!(props.byte(id::PAYLOAD_FORMAT), Some(1), "{props:?}");
    let left = props.four(id::MESSAGE_EXPIRY).expect("message expiry");
    assert!((59..=60).contains(&left), "{left} s left");
    assert_eq!(props.string(id::CONTENT_TYPE), Some("text/plain"));
    assert_eq!(props.string(id::RESPONSE_TOPIC), Some("dur/replies"));
    assert_eq!(
        props.binary(id::CORRELATION_DATA),
        Some(&[0x00, 0x01, 0xFE][..])
    );
    assert_eq!(
        props.user(),
        [("m".into(), "1".into()), ("n".into(), "2".into())]
    );
}

/// A durable subscriber (Topic Alias Maximum 5; `dur/#` at QoS 1 with Retain As
/// Published and Subscription Identifier 77) has had `dur/a` aliased on its first
/// connection. Offline, it is sent a retained QoS 1 message with every property and a
/// plain one. On its return (session present [MQTT-3.2.2-3]) they arrive in order, each
/// with identifier 77 [MQTT-3.3.4-3], the retained one with RETAIN 1 [MQTT-3.3.1-13]
/// and its properties ([MQTT-3.3.2-4], [MQTT-3.3.2-6], [MQTT-3.3.2-15],
/// [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-20]); `dur/a` is sent with its topic
/// again, as the old connection's alias is not carried forward [MQTT-3.3.2-7].
#[tokio::test]
async fn queued_messages_keep_properties_identifiers_and_retain_as_published() {
    let broker = start().await;
    let connect = Connect::new("dur-sub")
        .props(Props::new().two(id::TOPIC_ALIAS_MAXIMUM, 5))
        .durable(600);
    let mut subscriber = Client::connect(broker.mqtt, &connect).await;
    subscriber
        .subscribe_one("dur/#", options(1, false, true, 0), Some(77))
        .await;
    let mut publisher = Client::plain(broker.mqtt, "dur-pub").await;
    publisher
        .publish_qos1("dur/a", 1, false, &Props::new(), b"live")
        .await;
    let live = subscriber.next_publish().await;
    assert_eq!(
        (live.topic.as_str(), live.props.two(id::TOPIC_ALIAS)),
        ("dur/a", Some(1))
    );
    subscriber.send(&puback(live.pkid)).await;
    subscriber.disconnect().await;

    publisher
        .publish_qos1("dur/a", 2, true, &sent_properties(), b"kept")
        .await;
    publisher
        .publish_qos1("dur/b", 3, false, &Props::new(), b"plain")
        .await;

    let mut back = Client::connect(broker.mqtt, &connect).await;
    assert!(back.connack.session_present);
    let kept = back.next_publish().await;
    assert_eq!(
        (
            kept.topic.as_str(),
            kept.payload.as_slice(),
            kept.qos,
            kept.retain
        ),
        ("dur/a", &b"kept"[..], 1, true),
        "{kept:?}"
    );
    assert!(
        kept.props
            .two(id::TOPIC_ALIAS)
            .is_some_and(|a| (1..=5).contains(&a))
    );
    assert_eq!(kept.props.subscription_ids(), [77]);
    assert_sent_properties(&kept);
    back.send(&puback(kept.pkid)).await;

    let plain = back.next_publish().await;
    assert_eq!(
        (plain.topic.as_str(), plain.payload.as_slice(), plain.retain),
        ("dur/b", &b"plain"[..], false),
        "{plain:?}"
    );
    assert_eq!(plain.props.subscription_ids(), [77]);
    assert!(!plain.props.has(id::CONTENT_TYPE), "{plain:?}");
    back.send(&puback(plain.pkid)).await;
}

/// A QoS 1 message sent but not acknowledged before the connection ended is sent again
/// on the next one [MQTT-4.4.0-1] with DUP 1 [MQTT-3.3.1-1] and the same packet
/// identifier, and with everything it had the first time: its properties, its
/// subscription identifier, and a topic (not an alias alone: the alias set on the old
/// connection is gone [MQTT-3.3.2-7]).
#[tokio::test]
async fn an_unacknowledged_message_is_resent_with_dup_and_its_properties() {
    let broker = start().await;
    let connect = Connect::new("dup-sub")
        .props(Props::new().two(id::TOPIC_ALIAS_MAXIMUM, 5))
        .durable(600);
    let mut subscriber = Client::connect(broker.mqtt, &connect).await;
    subscriber
        .subscribe_one("dup/#", options(1, false, false, 0), Some(3))
        .await;
    let mut publisher = Client::plain(broker.mqtt, "dup-pub").await;
    publisher
        .publish_qos1("dup/t", 1, false, &sent_properties(), b"once")
        .await;
    let first = subscriber.next_publish().await;
    assert!(!first.dup);
    assert_eq!(first.topic, "dup/t");
    assert!(first.props.has(id::TOPIC_ALIAS));
    subscriber.disconnect().await; // without the PUBACK

    let mut back = Client::connect(broker.mqtt, &connect).await;
    assert!(back.connack.session_present);
    let again = back.next_publish().await;
    assert!(again.dup, "DUP 1 on the resend: {again:?}");
    assert_eq!(
        (again.pkid, again.topic.as_str(), again.payload.as_slice()),
        (first.pkid, "dup/t", &b"once"[..])
    );
    assert_eq!(again.props.subscription_ids(), [3]);
    assert_sent_properties(&again);
    back.send(&puback(again.pkid)).await;
}
