//! What a SUBSCRIBE asks for beyond its QoS: Subscription Identifiers (MQTT 5
//! §3.8.2.1.2, §3.3.2.3.8, §3.3.4) and Retain As Published (§3.8.3.1, §3.3.1.3).

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{PublishProperties, SubscribeProperties};

use crate::V5;
use crate::support::start;
use crate::wire::{Client, Props, id, options, puback, publish, subscribe};

/// The largest Subscription Identifier (§3.8.2.1.2): a four-byte Variable Byte Integer.
const MAX_ID: u32 = 268_435_455;

/// A message matching a subscription made with a Subscription Identifier carries it
/// [MQTT-3.3.4-3], through rumqttc.
#[tokio::test]
async fn a_publish_carries_the_identifier_of_its_subscription() {
    let broker = start().await;
    let mut subscriber = V5::connect(&broker, "id-sub", |_| {}).await;
    let properties = SubscribeProperties {
        id: Some(42),
        user_properties: Vec::new(),
    };
    subscriber
        .subscribe("ids/#", QoS::AtLeastOnce, Some(properties))
        .await;
    let mut publisher = V5::connect(&broker, "id-pub", |_| {}).await;
    publisher
        .publish_qos1("ids/t", false, "x", PublishProperties::default())
        .await;
    let got = subscriber.next_publish().await;
    let props = got.properties.expect("properties");
    assert_eq!(props.subscription_identifiers, [42]);
}

/// Three overlapping subscriptions of one session: `ov/#` with identifier 1, `ov/+/x`
/// with the largest identifier, `ov/a/x` without one. The server sends one PUBLISH
/// (MQTT 5 §3.3.4 lets it send one or one per subscription) and then "it MUST include
/// in the PUBLISH packet the Subscription Identifiers for all matching subscriptions which
/// have a Subscription Identifiers, their order is not significant" [MQTT-3.3.4-4].
#[tokio::test]
async fn overlapping_subscriptions_send_every_identifier() {
    let broker = start().await;
    let mut subscriber = Client::plain(broker.mqtt, "ov-sub").await;
    let qos1 = options(1, false, false, 0);
    subscriber.subscribe_one("ov/#", qos1, Some(1)).await;
    subscriber.subscribe_one("ov/+/x", qos1, Some(MAX_ID)).await;
    subscriber.subscribe_one("ov/a/x", qos1, None).await;
    let mut publisher = Client::plain(broker.mqtt, "ov-pub").await;
    publisher
        .publish_qos1("ov/a/x", 1, false, &Props::new(), b"all three")
        .await;
    publisher
        .publish_qos1("ov/marker", 2, false, &Props::new(), b"marker")
        .await;

    let mut copies = Vec::new();
    loop {
        let got = subscriber.next_publish().await;
        if got.topic == "ov/marker" {
            assert_eq!(got.props.subscription_ids(), [1], "only ov/# matches");
            break;
        }
        let mut ids = got.props.subscription_ids();
        ids.sort_unstable();
        copies.push(ids);
    }
    match copies.as_slice() {
        [one] => assert_eq!(one, &[1, MAX_ID], "a single copy carries both ids"),
        several => {
            // [MQTT-3.3.4-5]: one copy per subscription, each with its own identifier.
            let mut all: Vec<u32> = several.concat();
            all.sort_unstable();
            assert_eq!(all, [1, MAX_ID], "{several:?}");
        }
    }
}

/// A retained message sent because of a SUBSCRIBE carries that subscription's
/// identifier (§3.8.2.1.2: the identifier "is associated with any subscription created
/// ... as the result of this SUBSCRIBE packet"; [MQTT-3.3.4-3]), with RETAIN 1
/// (§3.3.1.3).
#[tokio::test]
async fn retained_messages_sent_on_subscribe_carry_its_identifier() {
    let broker = start().await;
    let mut publisher = Client::plain(broker.mqtt, "rid-pub").await;
    publisher
        .publish_qos1("rid/a", 1, true, &Props::new(), b"kept")
        .await;
    let mut subscriber = Client::plain(broker.mqtt, "rid-sub").await;
    subscriber
        .subscribe_one("rid/#", options(1, false, false, 0), Some(9))
        .await;
    let got = subscriber.next_publish().await;
    assert_eq!((got.topic.as_str(), got.retain), ("rid/a", true));
    assert_eq!(got.props.subscription_ids(), [9]);
}

/// A SUBSCRIBE with the same filter replaces the subscription [MQTT-3.8.4-3], and with
/// it the identifier: "If this property is not specified, then the absence of a
/// Subscription Identifier is stored with the subscription" (§3.8.2.1.2).
#[tokio::test]
async fn a_replaced_subscription_takes_the_new_identifier_or_none() {
    let broker = start().await;
    let mut subscriber = Client::plain(broker.mqtt, "rep-sub").await;
    let mut publisher = Client::plain(broker.mqtt, "rep-pub").await;
    let qos0 = options(0, false, false, 0);
    for (pkid, id) in [(1, Some(5)), (2, None), (3, Some(6))] {
        subscriber.subscribe_one("rep/#", qos0, id).await;
        publisher
            .publish_qos1("rep/t", pkid, false, &Props::new(), b"x")
            .await;
        let got = subscriber.next_publish().await;
        assert_eq!(
            got.props.subscription_ids(),
            id.into_iter().collect::<Vec<_>>(),
            "after subscribing with {id:?}"
        );
    }
}

/// "It is a Protocol Error if the Subscription Identifier has a value of 0"
/// (§3.8.2.1.2): the server closes the connection [MQTT-4.13.1-1], after a DISCONNECT
/// 0x82 (Protocol Error) if it sends one, and grants nothing.
#[tokio::test]
async fn subscription_identifier_0_is_a_protocol_error() {
    let broker = start().await;
    let mut client = Client::plain(broker.mqtt, "id0").await;
    let props = Props::new().var(id::SUBSCRIPTION_ID, 0);
    client.send(&subscribe(1, &props, &[("zero/#", 0)])).await;
    client.expect_refused(0x82).await;
}

/// A PUBLISH from a client "MUST NOT contain a Subscription Identifier" [MQTT-3.3.4-6]:
/// a Protocol Error, so the server closes the connection [MQTT-4.13.1-1] (after a
/// DISCONNECT 0x82 if it sends one), and the identifier never reaches a subscriber.
#[tokio::test]
async fn a_client_publish_with_a_subscription_identifier_is_a_protocol_error() {
    let broker = start().await;
    let mut subscriber = Client::plain(broker.mqtt, "forged-sub").await;
    subscriber
        .subscribe_one("forged/#", options(1, false, false, 0), None)
        .await;
    let mut publisher = Client::plain(broker.mqtt, "forged-pub").await;
    let props = Props::new().var(id::SUBSCRIPTION_ID, 77);
    publisher
        .send(&publish("forged/t", 1, false, 1, &props, b"x"))
        .await;
    publisher.expect_refused(0x82).await;
    let mut marker = Client::plain(broker.mqtt, "forged-marker").await;
    marker
        .publish_qos1("forged/marker", 1, false, &Props::new(), b"m")
        .await;
    let got = subscriber.next_publish().await;
    assert_eq!(
        got.topic, "forged/marker",
        "the forged message was not routed"
    );
}

/// Retain As Published (§3.8.3.1): a retained PUBLISH forwarded live keeps RETAIN 1 for
/// a subscription with the option [MQTT-3.3.1-13] and gets RETAIN 0 for one without it
/// [MQTT-3.3.1-12]; a message published with RETAIN 0 has it 0 for both. A retained
/// message sent because a subscription was made has RETAIN 1 whatever the option
/// (§3.3.1.3).
#[tokio::test]
async fn retain_as_published_keeps_the_flag_only_where_asked() {
    let broker = start().await;
    let mut keeps = Client::plain(broker.mqtt, "rap-1").await;
    keeps
        .subscribe_one("rap/#", options(1, false, true, 0), None)
        .await;
    let mut clears = Client::plain(broker.mqtt, "rap-0").await;
    clears
        .subscribe_one("rap/#", options(1, false, false, 0), None)
        .await;
    let mut publisher = Client::plain(broker.mqtt, "rap-pub").await;
    publisher
        .publish_qos1("rap/retained", 1, true, &Props::new(), b"r")
        .await;
    publisher
        .publish_qos1("rap/live", 2, false, &Props::new(), b"l")
        .await;

    for (client, retained_flag) in [(&mut keeps, true), (&mut clears, false)] {
        let retained = client.next_publish().await;
        assert_eq!(
            (retained.topic.as_str(), retained.retain),
            ("rap/retained", retained_flag)
        );
        client.send(&puback(retained.pkid)).await;
        let live = client.next_publish().await;
        assert_eq!((live.topic.as_str(), live.retain), ("rap/live", false));
        client.send(&puback(live.pkid)).await;
    }

    let mut late = Client::plain(broker.mqtt, "rap-late").await;
    late.subscribe_one("rap/#", options(1, false, false, 0), None)
        .await;
    let got = late.next_publish().await;
    assert_eq!((got.topic.as_str(), got.retain), ("rap/retained", true));
}
