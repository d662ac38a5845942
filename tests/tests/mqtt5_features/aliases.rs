//! Topic Aliases (MQTT 5 §3.3.2.3.4, §3.3.4), from the client (the server's CONNACK says
//! how many it accepts) and to the client (its CONNECT says how many it accepts).

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{PubAckReason, PublishProperties};

use crate::support::start;
use crate::wire::{Client, Connect, Props, id, options, publish};
use crate::{V5, text, topic};

/// The Topic Alias Maximum the server announces by default.
const SERVER_MAXIMUM: u16 = 10;

fn alias(n: u16) -> Props {
    Props::new().two(id::TOPIC_ALIAS, n)
}

/// A client allowing the server `max` aliases.
fn accepting(client_id: &str, max: u16) -> Connect<'_> {
    Connect::new(client_id).props(Props::new().two(id::TOPIC_ALIAS_MAXIMUM, max))
}

/// Sends a PUBLISH that must make the server close the connection with DISCONNECT
/// `reason` (§4.13.1: Protocol Errors named in §3.3.4); the DISCONNECT carries no
/// Session Expiry Interval [MQTT-3.14.2-2].
async fn expect_disconnect(client: &mut Client, packet: &[u8], reason: u8) {
    client.send(packet).await;
    let disconnect = client
        .closed()
        .await
        .unwrap_or_else(|| panic!("closed without DISCONNECT {reason:#04x}"));
    assert_eq!(disconnect.reason, reason, "{disconnect:?}");
    assert!(!disconnect.props.has(id::SESSION_EXPIRY), "{disconnect:?}");
}

/// The CONNACK announces how many aliases the client may set (§3.2.2.3.8): 10.
#[tokio::test]
async fn connack_announces_the_topic_alias_maximum() {
    let broker = start().await;
    let client = Client::plain(broker.mqtt, "max").await;
    assert_eq!(
        client.connack.props.two(id::TOPIC_ALIAS_MAXIMUM),
        Some(SERVER_MAXIMUM),
        "{:?}",
        client.connack
    );
}

/// The server accepts every alias from 1 to its maximum [MQTT-3.3.2-12]: a PUBLISH
/// with a topic and an alias sets the mapping, one with an empty topic uses it, one with
/// another topic replaces it (§3.3.4). Subscribers get the full topic; this one sent no
/// Topic Alias Maximum, so it gets no alias [MQTT-3.1.2-27].
#[tokio::test]
async fn inbound_aliases_are_set_used_and_replaced() {
    let broker = start().await;
    let mut subscriber = Client::plain(broker.mqtt, "in-sub").await;
    subscriber
        .subscribe_one("in/#", options(0, false, false, 0), None)
        .await;
    let mut publisher = Client::plain(broker.mqtt, "in-pub").await;
    let steps: [(&str, u16, &str); 6] = [
        ("in/one", 1, "in/one"),
        ("", 1, "in/one"),
        ("in/ten", SERVER_MAXIMUM, "in/ten"),
        ("", SERVER_MAXIMUM, "in/ten"),
        ("in/uno", 1, "in/uno"),
        ("", 1, "in/uno"),
    ];
    for (n, (sent_topic, alias_n, _)) in steps.iter().enumerate() {
        let ack = publisher
            .publish_qos1(
                sent_topic,
                n as u16 + 1,
                false,
                &alias(*alias_n),
                &[n as u8],
            )
            .await;
        assert_eq!(ack.reason, 0x00, "step {n}: {ack:?}");
    }
    for (n, (_, _, expected)) in steps.iter().enumerate() {
        let got = subscriber.next_publish().await;
        assert_eq!(
            (got.topic.as_str(), got.payload.as_slice()),
            (*expected, &[n as u8][..])
        );
        assert!(!got.props.has(id::TOPIC_ALIAS), "{got:?}");
    }
}

/// "A Topic Alias value of 0 or greater than the Maximum Topic Alias is a Protocol
/// Error, the receiver uses DISCONNECT with Reason Code of 0x94 (Topic Alias invalid)"
/// (§3.3.4; [MQTT-3.3.2-8], [MQTT-3.3.2-9] bind the client). The message is not routed.
#[tokio::test]
async fn an_alias_of_0_or_above_the_maximum_gets_disconnect_0x94() {
    let broker = start().await;
    let mut subscriber = Client::plain(broker.mqtt, "bad-sub").await;
    subscriber
        .subscribe_one("bad/#", options(0, false, false, 0), None)
        .await;
    for (client_id, n) in [("zero", 0), ("eleven", SERVER_MAXIMUM + 1)] {
        let mut client = Client::plain(broker.mqtt, client_id).await;
        let packet = publish("bad/t", 0, false, 0, &alias(n), b"x");
        expect_disconnect(&mut client, &packet, 0x94).await;
    }
    let mut marker = Client::plain(broker.mqtt, "bad-marker").await;
    marker
        .publish_qos1("bad/marker", 1, false, &Props::new(), b"m")
        .await;
    assert_eq!(subscriber.next_publish().await.topic, "bad/marker");
}

/// "If the receiver does not already have a mapping for this Topic Alias ... If the
/// packet has a zero length Topic Name field it is a Protocol Error and the receiver uses
/// DISCONNECT with Reason Code of 0x82 (Protocol Error)" (§3.3.4): alias 1 is set, alias
/// 2 is not.
#[tokio::test]
async fn an_empty_topic_with_an_unknown_alias_gets_disconnect_0x82() {
    let broker = start().await;
    let mut client = Client::plain(broker.mqtt, "unknown").await;
    let ack = client
        .publish_qos1("known/t", 1, false, &alias(1), b"sets alias 1")
        .await;
    assert_eq!(ack.reason, 0x00, "{ack:?}");
    expect_disconnect(
        &mut client,
        &publish("", 0, false, 0, &alias(2), b"x"),
        0x82,
    )
    .await;
}

/// "It is a Protocol Error if the Topic Name is zero length and there is no Topic
/// Alias" (§3.3.2.1): the server closes the connection [MQTT-4.13.1-1] with DISCONNECT
/// 0x82, or 0x90 (Topic Name invalid), which §4.13.1 allows as the more specific code.
#[tokio::test]
async fn an_empty_topic_without_an_alias_is_refused_with_disconnect() {
    let broker = start().await;
    let mut client = Client::plain(broker.mqtt, "no-alias").await;
    client
        .send(&publish("", 0, false, 0, &Props::new(), b"x"))
        .await;
    let disconnect = client.closed().await.expect("a DISCONNECT before closing");
    assert!([0x82, 0x90].contains(&disconnect.reason), "{disconnect:?}");
}

/// "A receiver MUST NOT carry forward any Topic Alias mappings from one Network
/// Connection to another" [MQTT-3.3.2-7]: an alias set on one connection of a durable
/// session is unknown on the next.
#[tokio::test]
async fn inbound_aliases_end_with_their_connection() {
    let broker = start().await;
    let connect = Connect::new("forgets").durable(60);
    let mut first = Client::connect(broker.mqtt, &connect).await;
    let ack = first
        .publish_qos1("forget/t", 1, false, &alias(3), b"x")
        .await;
    assert_eq!(ack.reason, 0x00);
    first.disconnect().await;

    let mut second = Client::connect(broker.mqtt, &connect).await;
    assert!(second.connack.session_present);
    expect_disconnect(
        &mut second,
        &publish("", 0, false, 0, &alias(3), b"x"),
        0x82,
    )
    .await;
}

/// The client accepts two aliases: the first two topics the server sends get one (the
/// first PUBLISH of each with its topic and alias, later ones with an empty topic and
/// the alias), the third none; never an alias of 0 [MQTT-3.3.2-8] or above the client's
/// maximum [MQTT-3.1.2-26], [MQTT-3.3.2-11].
#[tokio::test]
async fn outbound_aliases_go_to_the_first_topics_up_to_the_client_maximum() {
    let broker = start().await;
    let mut subscriber = Client::connect(broker.mqtt, &accepting("out-sub", 2)).await;
    subscriber
        .subscribe_one("out/#", options(0, false, false, 0), None)
        .await;
    let mut publisher = Client::plain(broker.mqtt, "out-pub").await;
    let sequence = [
        "out/a", "out/a", "out/b", "out/c", "out/b", "out/c", "out/a",
    ];
    for (n, t) in sequence.iter().enumerate() {
        publisher
            .publish_qos1(t, n as u16 + 1, false, &Props::new(), &[n as u8])
            .await;
    }
    let expected: [(&str, Option<u16>); 7] = [
        ("out/a", Some(1)),
        ("", Some(1)),
        ("out/b", Some(2)),
        ("out/c", None),
        ("", Some(2)),
        ("out/c", None),
        ("", Some(1)),
    ];
    for (n, (wire_topic, wire_alias)) in expected.into_iter().enumerate() {
        let got = subscriber.next_publish().await;
        assert_eq!(got.payload, [n as u8], "in order");
        assert_eq!(
            (got.topic.as_str(), got.props.two(id::TOPIC_ALIAS)),
            (wire_topic, wire_alias),
            "PUBLISH {n} ({})",
            sequence[n]
        );
    }
}

/// A retained message sent because of a SUBSCRIBE is a PUBLISH like the others: it
/// sets an alias with its topic, and a live message on that topic then uses it alone
/// (§3.3.2.3.4), within the client's maximum [MQTT-3.3.2-11].
#[tokio::test]
async fn retained_messages_sent_on_subscribe_set_aliases_too() {
    let broker = start().await;
    let mut publisher = Client::plain(broker.mqtt, "ra-pub").await;
    publisher
        .publish_qos1("ra/x", 1, true, &Props::new(), b"kept")
        .await;
    let mut subscriber = Client::connect(broker.mqtt, &accepting("ra-sub", 5)).await;
    subscriber
        .subscribe_one("ra/#", options(0, false, false, 0), None)
        .await;
    let retained = subscriber.next_publish().await;
    assert!(retained.retain);
    assert_eq!(retained.topic, "ra/x", "{retained:?}");
    let set = retained.props.two(id::TOPIC_ALIAS).expect("an alias");
    assert!((1..=5).contains(&set), "{retained:?}");
    publisher
        .publish_qos1("ra/x", 2, false, &Props::new(), b"live")
        .await;
    let live = subscriber.next_publish().await;
    assert_eq!(
        (
            live.topic.as_str(),
            live.props.two(id::TOPIC_ALIAS),
            live.payload.as_slice()
        ),
        ("", Some(set), &b"live"[..])
    );
}

/// "If Topic Alias Maximum is absent or zero, the Server MUST NOT send any Topic Aliases
/// to the Client" [MQTT-3.1.2-27]: here it is 0.
#[tokio::test]
async fn no_outbound_alias_when_the_client_maximum_is_0() {
    let broker = start().await;
    let mut subscriber = Client::connect(broker.mqtt, &accepting("zero-max", 0)).await;
    subscriber
        .subscribe_one("zmax/#", options(0, false, false, 0), None)
        .await;
    let mut publisher = Client::plain(broker.mqtt, "zmax-pub").await;
    for pkid in 1..=3 {
        publisher
            .publish_qos1("zmax/t", pkid, false, &Props::new(), b"x")
            .await;
        let got = subscriber.next_publish().await;
        assert_eq!(got.topic, "zmax/t");
        assert!(!got.props.has(id::TOPIC_ALIAS), "{got:?}");
    }
}

/// A PUBLISH larger than the client's Maximum Packet Size is not sent [MQTT-3.1.2-25]:
/// the alias it would have set was never received, so the next PUBLISH on that topic
/// must carry the topic again (a client with no mapping for an alias treats an empty
/// topic as a Protocol Error, §3.3.4).
#[tokio::test]
async fn a_publish_too_large_for_the_client_does_not_set_an_alias() {
    let broker = start().await;
    let connect = Connect::new("small-sub").props(
        Props::new()
            .two(id::TOPIC_ALIAS_MAXIMUM, 5)
            .four(id::MAXIMUM_PACKET_SIZE, 64),
    );
    let mut subscriber = Client::connect(broker.mqtt, &connect).await;
    subscriber
        .subscribe_one("big/#", options(0, false, false, 0), None)
        .await;
    let mut publisher = Client::plain(broker.mqtt, "big-pub").await;
    publisher
        .publish_qos1("big/t", 1, false, &Props::new(), &[b'x'; 100])
        .await;
    publisher
        .publish_qos1("big/t", 2, false, &Props::new(), b"small")
        .await;
    publisher
        .publish_qos1("big/t", 3, false, &Props::new(), b"again")
        .await;

    let first = subscriber.next_publish().await;
    assert_eq!(first.payload, b"small", "the large one is dropped");
    assert_eq!(first.topic, "big/t", "the alias is set now: {first:?}");
    let set = first.props.two(id::TOPIC_ALIAS).expect("an alias");
    let second = subscriber.next_publish().await;
    assert_eq!(
        (second.topic.as_str(), second.props.two(id::TOPIC_ALIAS)),
        ("", Some(set))
    );
}

/// Real clients: rumqttc publishes with an alias it sets and then uses (empty topic), to
/// a rumqttc subscriber accepting 3 aliases for 5 topics. rumqttc 0.25 reports an
/// incoming PUBLISH before resolving its alias (its event keeps the empty topic), so the
/// test resolves them as a client must (§3.3.4): every empty topic has an alias set
/// earlier on this connection, every alias is within 1..=3 [MQTT-3.3.2-11], and every
/// message resolves to the topic it was published on.
#[tokio::test]
async fn rumqttc_round_trip_with_aliases_both_ways() {
    let broker = start().await;
    let mut subscriber = V5::connect(&broker, "rq-sub", |o| {
        o.set_topic_alias_max(Some(3));
    })
    .await;
    subscriber.subscribe("rq/#", QoS::AtLeastOnce, None).await;
    let mut publisher = V5::connect(&broker, "rq-pub", |_| {}).await;
    assert_eq!(
        publisher
            .connack
            .properties
            .as_ref()
            .and_then(|p| p.topic_alias_max),
        Some(SERVER_MAXIMUM)
    );
    let aliased = |n| PublishProperties {
        topic_alias: Some(n),
        ..PublishProperties::default()
    };
    let mut expected = Vec::new();
    for round in 0..2 {
        for t in 0..5u16 {
            let name = format!("rq/{t}");
            let payload = format!("{round}-{t}");
            // Topics 0 and 1 go through aliases 1 and 2: set in round 0, used in round 1.
            let (sent_topic, properties) = match (t, round) {
                (0 | 1, 0) => (name.as_str(), aliased(t + 1)),
                (0 | 1, _) => ("", aliased(t + 1)),
                _ => (name.as_str(), PublishProperties::default()),
            };
            let reason = publisher
                .publish_qos1(sent_topic, false, payload.clone(), properties)
                .await;
            assert_eq!(reason, PubAckReason::Success, "{name} round {round}");
            expected.push((name, payload));
        }
    }
    let mut mappings = std::collections::HashMap::new();
    for (name, payload) in expected {
        let got = subscriber.next_publish().await;
        let alias = got.properties.as_ref().and_then(|p| p.topic_alias);
        let resolved = match (topic(&got), alias) {
            (wire, None) => wire,
            (wire, Some(n)) => {
                assert!((1..=3).contains(&n), "alias {n} beyond the client's 3");
                if wire.is_empty() {
                    mappings
                        .get(&n)
                        .cloned()
                        .unwrap_or_else(|| panic!("alias {n} used before it was set"))
                } else {
                    mappings.insert(n, wire.clone());
                    wire
                }
            }
        };
        assert_eq!((resolved, text(&got)), (name, payload));
    }
}
