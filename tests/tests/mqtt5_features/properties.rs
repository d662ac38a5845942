//! PUBLISH properties forwarded to MQTT 5 subscribers (MQTT 5 §3.3.2.3): Payload Format
//! Indicator, Message Expiry Interval, Content Type, Response Topic, Correlation Data and
//! User Properties, "unaltered, to all subscribers receiving the Application Message";
//! and the same properties of a will (§3.1.3.2).

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties;

use crate::support::start;
use crate::wire::{Client, Connect, Props, Will, id, options};
use crate::{V5, text, topic};

/// The properties every test here publishes with, as rumqttc sends them.
fn full_properties(correlation: &[u8]) -> PublishProperties {
    PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(120),
        content_type: Some("text/plain; charset=utf-8".into()),
        response_topic: Some("replies/sensor-7".into()),
        correlation_data: Some(Bytes::copy_from_slice(correlation)),
        user_properties: vec![
            ("origin".into(), "sensor-7".into()),
            ("unit".into(), "°C".into()),
        ],
        ..PublishProperties::default()
    }
}

/// At QoS 0, 1 and 2, an MQTT 5 subscriber gets every property the publisher set:
/// the Payload Format Indicator [MQTT-3.3.2-4], the Message Expiry Interval less the time
/// the message waited (here at most a second) [MQTT-3.3.2-6], the Response Topic
/// [MQTT-3.3.2-15], the Correlation Data byte for byte (binary data, not UTF-8)
/// [MQTT-3.3.2-16], the User Properties [MQTT-3.3.2-17] and the Content Type
/// [MQTT-3.3.2-20]. It subscribed without an identifier and announced no Topic Alias
/// Maximum, so neither appears [MQTT-3.1.2-27].
#[tokio::test]
async fn publish_properties_reach_mqtt5_subscribers_unaltered() {
    let broker = start().await;
    let mut subscriber = V5::connect(&broker, "props-sub", |_| {}).await;
    subscriber
        .subscribe("props/#", QoS::ExactlyOnce, None)
        .await;
    let publisher = V5::connect(&broker, "props-pub", |_| {}).await;

    for (n, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let correlation = [0x00, 0xFF, 0xC3, n as u8];
        publisher
            .client
            .publish_with_properties(
                format!("props/{n}"),
                qos,
                false,
                format!("reading {n}"),
                full_properties(&correlation),
            )
            .await
            .unwrap();
        let got = subscriber.next_publish().await;
        assert_eq!(
            (topic(&got).as_str(), text(&got).as_str(), got.qos),
            (
                format!("props/{n}").as_str(),
                format!("reading {n}").as_str(),
                qos
            )
        );
        let props = got
            .properties
            .unwrap_or_else(|| panic!("QoS {n}: the PUBLISH has no properties"));
        let expiry = props.message_expiry_interval.expect("message expiry");
        assert!((119..=120).contains(&expiry), "QoS {n}: expiry {expiry}");
        assert_eq!(
            props,
            PublishProperties {
                message_expiry_interval: Some(expiry),
                ..full_properties(&correlation)
            },
            "QoS {n}"
        );
    }
}

/// Properties belong to one Application Message: a message published without any,
/// right after one with all of them on the same topic, arrives without any (an absent
/// Message Expiry Interval means it does not expire, §3.3.2.3.3). Raw bytes: the
/// property block itself must be empty.
#[tokio::test]
async fn a_message_without_properties_arrives_without_them() {
    let broker = start().await;
    let mut subscriber = Client::plain(broker.mqtt, "bare-sub").await;
    subscriber
        .subscribe_one("bare/#", options(1, false, false, 0), None)
        .await;
    let mut publisher = Client::plain(broker.mqtt, "bare-pub").await;
    let full = Props::new()
        .byte(id::PAYLOAD_FORMAT, 1)
        .four(id::MESSAGE_EXPIRY, 300)
        .bytes(id::CONTENT_TYPE, "text/plain")
        .bytes(id::RESPONSE_TOPIC, "bare/reply")
        .bytes(id::CORRELATION_DATA, [1, 2, 3])
        .user("k", "v");
    publisher
        .publish_qos1("bare/t", 1, false, &full, b"with")
        .await;
    publisher
        .publish_qos1("bare/t", 2, false, &Props::new(), b"without")
        .await;

    let with = subscriber.next_publish().await;
    assert_eq!(with.payload, b"with");
    assert_eq!(with.props.string(id::CONTENT_TYPE), Some("text/plain"));
    let without = subscriber.next_publish().await;
    assert_eq!(without.payload, b"without");
    assert_eq!(
        without.props.0,
        [],
        "no property may carry over from the previous message"
    );
}

/// MQTT 3.1.1 has no properties (3.1.1 §3.3.2): a 3.1.1 subscriber gets a message
/// published with every MQTT 5 property, and through a Topic Alias, as a plain 3.1.1
/// PUBLISH with the full topic, byte for byte.
#[tokio::test]
async fn mqtt311_subscribers_get_the_message_without_properties() {
    let broker = start().await;
    let mut old = crate::raw::Raw::connect(broker.mqtt).await;
    old.send(&crate::raw::connect(4, "v311-sub", 60, None))
        .await;
    assert_eq!(old.packet().await, Some(vec![0x20, 0x02, 0x00, 0x00]));
    old.send(&crate::raw::subscribe(4, 1, "v311/#", 0)).await;
    assert_eq!(old.packet().await, Some(vec![0x90, 0x03, 0x00, 0x01, 0x00]));

    let mut publisher = Client::plain(broker.mqtt, "v5-pub").await;
    let props = Props::new()
        .byte(id::PAYLOAD_FORMAT, 1)
        .four(id::MESSAGE_EXPIRY, 60)
        .bytes(id::CONTENT_TYPE, "text/plain")
        .bytes(id::RESPONSE_TOPIC, "v311/replies")
        .bytes(id::CORRELATION_DATA, [9])
        .two(id::TOPIC_ALIAS, 4)
        .user("k", "v");
    publisher
        .publish_qos1("v311/t", 1, false, &props, b"hi")
        .await;
    publisher
        .publish_qos1(
            "",
            2,
            false,
            &Props::new().two(id::TOPIC_ALIAS, 4),
            b"again",
        )
        .await;
    let mut expected = vec![0x30, 0x0A, 0x00, 0x06];
    expected.extend_from_slice(b"v311/thi");
    assert_eq!(old.packet().await, Some(expected));
    let mut expected = vec![0x30, 0x0D, 0x00, 0x06];
    expected.extend_from_slice(b"v311/tagain");
    assert_eq!(old.packet().await, Some(expected));
}

/// User Properties are forwarded unaltered [MQTT-3.3.2-17] and in their order
/// [MQTT-3.3.2-18]; "the same name is allowed to appear more than once" (§3.3.2.3.7), so
/// a repeated name keeps both its values, where they were.
#[tokio::test]
async fn user_properties_keep_their_order_and_repeated_names() {
    let broker = start().await;
    let mut subscriber = Client::plain(broker.mqtt, "order-sub").await;
    subscriber
        .subscribe_one("order/#", options(1, false, false, 0), None)
        .await;
    let mut publisher = Client::plain(broker.mqtt, "order-pub").await;
    let sent = [
        ("zeta", "1"),
        ("alpha", "2"),
        ("zeta", "3"),
        ("", "empty name"),
    ];
    let props = sent
        .iter()
        .fold(Props::new(), |props, (k, v)| props.user(k, v));
    let ack = publisher
        .publish_qos1("order/t", 1, false, &props, b"x")
        .await;
    assert_eq!(ack.reason, 0x00, "{ack:?}");

    let got = subscriber.next_publish().await;
    let expected: Vec<(String, String)> = sent
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got.props.user(), expected, "wire: {:?}", got.props);
}

/// Connects `client_id` with a QoS 1 will on `will_topic` with `props`, then drops the
/// socket without a DISCONNECT, so the will is published [MQTT-3.1.2-8].
async fn leave_will(
    broker: &crate::support::TestBroker,
    client_id: &str,
    will_topic: &str,
    props: Props,
) {
    let will = Will {
        topic: will_topic,
        payload: b"offline",
        qos: 1,
        retain: false,
        props,
    };
    let connect = Connect {
        will: Some(will),
        ..Connect::new(client_id)
    };
    drop(Client::connect(broker.mqtt, &connect).await);
}

/// A will carries the same properties as a PUBLISH (§3.1.3.2): its Payload Format
/// Indicator, Content Type, Response Topic, Correlation Data and User Properties reach
/// the subscribers, and its Message Expiry Interval "is sent as the Publication Expiry
/// Interval when the Server publishes the Will Message" (§3.1.3.2.4). (User Properties
/// with distinct names in alphabetical order here; their order is the next test.)
#[tokio::test]
async fn will_properties_reach_mqtt5_subscribers() {
    let broker = start().await;
    let mut subscriber = V5::connect(&broker, "will-sub", |_| {}).await;
    subscriber.subscribe("will/#", QoS::AtLeastOnce, None).await;
    let props = Props::new()
        .byte(id::PAYLOAD_FORMAT, 1)
        .four(id::MESSAGE_EXPIRY, 90)
        .bytes(id::CONTENT_TYPE, "text/plain")
        .bytes(id::RESPONSE_TOPIC, "will/ack")
        .bytes(id::CORRELATION_DATA, [0xCA, 0xFE])
        .user("at", "door")
        .user("cause", "lost");
    leave_will(&broker, "device-9", "will/device-9", props).await;

    let got = subscriber.next_publish().await;
    assert_eq!(
        (topic(&got).as_str(), text(&got).as_str()),
        ("will/device-9", "offline")
    );
    let props = got.properties.expect("the will's properties");
    let expiry = props.message_expiry_interval.expect("message expiry");
    assert!((89..=90).contains(&expiry), "expiry {expiry}");
    assert_eq!(props.payload_format_indicator, Some(1));
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.response_topic.as_deref(), Some("will/ack"));
    assert_eq!(props.correlation_data.as_deref(), Some(&[0xCA, 0xFE][..]));
    assert_eq!(
        props.user_properties,
        [
            ("at".to_owned(), "door".to_owned()),
            ("cause".to_owned(), "lost".to_owned())
        ]
    );
}

/// "The Server MUST maintain the order of User Properties when publishing the Will
/// Message" [MQTT-3.1.3-10]; a name may repeat (§3.1.3.2.8).
#[tokio::test]
async fn will_user_properties_keep_their_order() {
    let broker = start().await;
    let mut subscriber = Client::plain(broker.mqtt, "will-order-sub").await;
    subscriber
        .subscribe_one("will/#", options(1, false, false, 0), None)
        .await;
    let props = Props::new()
        .user("cause", "lost")
        .user("at", "door")
        .user("cause", "battery");
    leave_will(&broker, "device-10", "will/device-10", props).await;

    let got = subscriber.next_publish().await;
    assert_eq!(got.topic, "will/device-10");
    assert_eq!(
        got.props.user(),
        [
            ("cause".to_owned(), "lost".to_owned()),
            ("at".to_owned(), "door".to_owned()),
            ("cause".to_owned(), "battery".to_owned())
        ],
        "wire: {:?}",
        got.props
    );
}

/// A retained message is an Application Message like any other: a client that
/// subscribes later receives it with the properties it was published with
/// ([MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-20]:
/// "to all subscribers receiving the Application Message"), and with the Message Expiry
/// Interval less the time it was kept [MQTT-3.3.2-6]. Raw bytes, to show the wire.
#[tokio::test]
async fn a_retained_message_keeps_its_properties_for_later_subscribers() {
    let broker = start().await;
    let mut publisher = Client::plain(broker.mqtt, "kept-pub").await;
    let props = Props::new()
        .byte(id::PAYLOAD_FORMAT, 1)
        .four(id::MESSAGE_EXPIRY, 120)
        .bytes(id::CONTENT_TYPE, "text/plain")
        .bytes(id::RESPONSE_TOPIC, "kept/replies")
        .bytes(id::CORRELATION_DATA, [0x00, 0xFF])
        .user("origin", "sensor-7")
        .user("unit", "°C");
    let ack = publisher
        .publish_qos1("kept/t", 1, true, &props, b"kept reading")
        .await;
    assert_eq!(ack.reason, 0x00, "{ack:?}");

    let mut late = Client::plain(broker.mqtt, "kept-late").await;
    late.subscribe_one("kept/#", options(1, false, false, 0), None)
        .await;
    let got = late.next_publish().await;
    assert!(got.retain, "sent because of the subscription: RETAIN 1");
    assert_eq!(got.payload, b"kept reading");
    let p = &got.props;
    assert_eq!(p.byte(id::PAYLOAD_FORMAT), Some(1), "{got:?}");
    let left = p.four(id::MESSAGE_EXPIRY).expect("message expiry");
    assert!((119..=120).contains(&left), "{left} s left");
    assert_eq!(p.string(id::CONTENT_TYPE), Some("text/plain"));
    assert_eq!(p.string(id::RESPONSE_TOPIC), Some("kept/replies"));
    assert_eq!(p.binary(id::CORRELATION_DATA), Some(&[0x00, 0xFF][..]));
    assert_eq!(
        p.user(),
        [
            ("origin".to_owned(), "sensor-7".to_owned()),
            ("unit".to_owned(), "°C".to_owned())
        ]
    );
}
