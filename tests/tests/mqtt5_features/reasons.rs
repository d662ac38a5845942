//! Reason codes and Reason Strings: a refused PUBLISH (permissions, a payload that is not
//! what its Payload Format Indicator says) gets a PUBACK / PUBREC failure with a Reason
//! String (MQTT 5 §3.4.2.2.2, §3.5.2.2.2), unless the client asked for no problem
//! information [MQTT-3.1.2-29] or it would not fit the client's Maximum Packet Size
//! [MQTT-3.4.2-2]; a server DISCONNECT explains itself the same way (§3.14.2.2.3); and a
//! DISCONNECT may not turn a Session Expiry of 0 into more (§3.14.2.2.2).

use pathmq::core::security::{PermissionEntry, Permissions, Right, UserInput};

use crate::raw::Raw;
use crate::support::{TestBroker, secure_config, start, start_with};
use crate::wire::{
    Ack, Client, Connect, Props, Will, disconnect, id, options, parse_ack, parse_connack,
    parse_disconnect, publish,
};

/// A payload that is not UTF-8 (a lone continuation byte).
const NOT_UTF8: &[u8] = &[b'o', b'k', 0x80, b'!'];

/// A secure broker where `ann` (password `pw-ann`) may publish and subscribe under
/// `sensors/ann` only.
async fn secure_broker() -> TestBroker {
    let broker = start_with(secure_config("admin-secret-mqtt5")).await;
    let directory = broker.broker.core().security().expect("secure").directory();
    let entry = PermissionEntry {
        actions: [Right::Set, Right::On].into_iter().collect(),
        ..PermissionEntry::default()
    };
    directory
        .upsert_user(UserInput {
            username: "ann".into(),
            password: Some("pw-ann".to_owned().into()),
            permissions: Permissions::from([
                ("/sensors/ann".into(), entry.clone()),
                ("/sensors/ann/*".into(), entry),
            ]),
            ..UserInput::default()
        })
        .await
        .unwrap();
    broker
}

/// `ann`'s CONNECT with these properties.
fn ann(props: Props) -> Connect<'static> {
    Connect {
        login: Some(("ann", "pw-ann")),
        ..Connect::new("ann-1").props(props)
    }
}

/// Sends a QoS 1 and a QoS 2 PUBLISH to `topic`; returns the PUBACK and the PUBREC. An
/// accepted QoS 2 PUBLISH is released (PUBREL, PUBCOMP) so that its packet id is free
/// again.
async fn publish_qos1_and_qos2(
    client: &mut Client,
    topic: &str,
    props: &Props,
    payload: &[u8],
) -> (Ack, Ack) {
    client
        .send(&publish(topic, 1, false, 10, props, payload))
        .await;
    let puback = client.next_ack().await;
    assert_eq!((puback.kind, puback.pkid), (4, 10), "{puback:?}");
    client
        .send(&publish(topic, 2, false, 11, props, payload))
        .await;
    let pubrec = client.next_ack().await;
    assert_eq!((pubrec.kind, pubrec.pkid), (5, 11), "{pubrec:?}");
    if pubrec.reason < 0x80 {
        client.send(&[0x62, 0x02, 0x00, 11]).await;
        let pubcomp = client.next_ack().await;
        assert_eq!(
            (pubcomp.kind, pubcomp.pkid, pubcomp.reason),
            (7, 11, 0),
            "{pubcomp:?}"
        );
    }
    (puback, pubrec)
}

/// Asserts `ack` refuses with `reason` and explains why in a non-empty Reason String.
fn assert_explained(ack: &Ack, reason: u8) {
    assert_eq!(ack.reason, reason, "{ack:?}");
    let why = ack.props.string(id::REASON_STRING).unwrap_or_default();
    assert!(!why.is_empty(), "a Reason String: {ack:?}");
}

/// A PUBLISH the user may not make gets PUBACK / PUBREC 0x87 (Not authorized), each
/// with a Reason String saying why (§3.4.2.2.2, §3.5.2.2.2).
#[tokio::test]
async fn a_denied_publish_gets_0x87_with_a_reason_string() {
    let broker = secure_broker().await;
    let mut client = Client::connect(broker.mqtt, &ann(Props::new())).await;
    let (puback, pubrec) =
        publish_qos1_and_qos2(&mut client, "sensors/bob/t", &Props::new(), b"1").await;
    assert_explained(&puback, 0x87);
    assert_explained(&pubrec, 0x87);
    let (ok, _) = publish_qos1_and_qos2(&mut client, "sensors/ann/t", &Props::new(), b"1").await;
    assert_eq!(ok.reason, 0x00, "{ok:?}");
}

/// With Request Problem Information 0 the server "MUST NOT send a Reason String or User
/// Properties on any packet other than PUBLISH, CONNACK, or DISCONNECT" [MQTT-3.1.2-29]:
/// the same refusals come without properties.
#[tokio::test]
async fn request_problem_information_0_leaves_reason_strings_out() {
    let broker = secure_broker().await;
    let quiet = Props::new().byte(id::REQUEST_PROBLEM_INFO, 0);
    let mut client = Client::connect(broker.mqtt, &ann(quiet)).await;
    let (puback, pubrec) =
        publish_qos1_and_qos2(&mut client, "sensors/bob/t", &Props::new(), b"1").await;
    for ack in [puback, pubrec] {
        assert_eq!(ack.reason, 0x87, "{ack:?}");
        assert!(!ack.props.has(id::REASON_STRING), "{ack:?}");
        assert!(!ack.props.has(id::USER_PROPERTY), "{ack:?}");
    }
}

/// Payload Format Indicator 1 says the payload is UTF-8 (§3.3.2.3.2); the server may
/// check it and refuse it with 0x99 (Payload format invalid), here with a Reason String,
/// and does not route it. A UTF-8 payload with the indicator, and any payload with
/// indicator 0, are accepted. Request Problem Information 0 leaves the Reason String out
/// [MQTT-3.1.2-29].
#[tokio::test]
async fn payload_format_1_with_a_non_utf8_payload_gets_0x99() {
    let broker = start().await;
    let mut subscriber = Client::plain(broker.mqtt, "pf-sub").await;
    subscriber
        .subscribe_one("pf/#", options(0, false, false, 0), None)
        .await;
    let utf8 = Props::new().byte(id::PAYLOAD_FORMAT, 1);
    let binary = Props::new().byte(id::PAYLOAD_FORMAT, 0);

    let mut client = Client::plain(broker.mqtt, "pf-pub").await;
    let (puback, pubrec) = publish_qos1_and_qos2(&mut client, "pf/bad", &utf8, NOT_UTF8).await;
    assert_explained(&puback, 0x99);
    assert_explained(&pubrec, 0x99);
    let (ok, _) = publish_qos1_and_qos2(&mut client, "pf/text", &utf8, "é ok".as_bytes()).await;
    assert_eq!(ok.reason, 0x00, "{ok:?}");
    let (ok, _) = publish_qos1_and_qos2(&mut client, "pf/bin", &binary, NOT_UTF8).await;
    assert_eq!(ok.reason, 0x00, "{ok:?}");

    let quiet = Connect::new("pf-quiet").props(Props::new().byte(id::REQUEST_PROBLEM_INFO, 0));
    let mut quiet = Client::connect(broker.mqtt, &quiet).await;
    let (puback, pubrec) = publish_qos1_and_qos2(&mut quiet, "pf/bad", &utf8, NOT_UTF8).await;
    for ack in [puback, pubrec] {
        assert_eq!(ack.reason, 0x99, "{ack:?}");
        assert!(!ack.props.has(id::REASON_STRING), "{ack:?}");
    }

    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(subscriber.next_publish().await.topic);
    }
    assert_eq!(
        got,
        ["pf/text", "pf/text", "pf/bin", "pf/bin"],
        "the refused messages are not routed"
    );
}

/// A client accepting packets of at most 12 bytes.
fn tiny(client_id: &str) -> Connect<'_> {
    Connect::new(client_id).props(Props::new().four(id::MAXIMUM_PACKET_SIZE, TINY as u32))
}

/// The Maximum Packet Size of [`tiny`] clients.
const TINY: usize = 12;

/// The Reason String is left out rather than make the PUBACK [MQTT-3.4.2-2] or PUBREC
/// [MQTT-3.5.2-2] larger than the client's Maximum Packet Size; no packet larger than
/// that is sent at all [MQTT-3.1.2-24]. (A 0x99 refusal here; its Reason String alone
/// would not fit in 12 bytes.)
#[tokio::test]
async fn puback_and_pubrec_reason_strings_respect_the_client_maximum_packet_size() {
    let broker = start().await;
    let mut client = Client::connect(broker.mqtt, &tiny("tiny-ack")).await;
    let utf8 = Props::new().byte(id::PAYLOAD_FORMAT, 1);
    client
        .send(&publish("tiny/t", 1, false, 1, &utf8, NOT_UTF8))
        .await;
    let puback = client.next().await;
    client
        .send(&publish("tiny/t", 2, false, 2, &utf8, NOT_UTF8))
        .await;
    let pubrec = client.next().await;
    for packet in [&puback, &pubrec] {
        assert!(
            packet.len() <= TINY,
            "{} bytes: {packet:02x?}",
            packet.len()
        );
        assert_eq!(parse_ack(packet).reason, 0x99, "{packet:02x?}");
    }
}

/// The same for a server DISCONNECT [MQTT-3.14.2-3]: Topic Alias 0 gets DISCONNECT
/// 0x94 within the client's 12 bytes.
#[tokio::test]
async fn disconnect_reason_string_respects_the_client_maximum_packet_size() {
    let broker = start().await;
    let mut client = Client::connect(broker.mqtt, &tiny("tiny-dis")).await;
    client
        .send(&publish(
            "tiny/t",
            0,
            false,
            0,
            &Props::new().two(id::TOPIC_ALIAS, 0),
            b"",
        ))
        .await;
    let packet = client.next().await;
    assert!(
        packet.len() <= TINY,
        "{} bytes: {packet:02x?}",
        packet.len()
    );
    assert_eq!(parse_disconnect(&packet).reason, 0x94);
    client.expect_closed().await;
}

/// A server DISCONNECT says why in a Reason String (§3.14.2.2.3), and never carries a
/// Session Expiry Interval [MQTT-3.14.2-2], not even for a durable session.
#[tokio::test]
async fn server_disconnect_has_a_reason_string_and_no_session_expiry() {
    let broker = start().await;
    let mut client = Client::connect(broker.mqtt, &Connect::new("why").durable(60)).await;
    client
        .send(&publish(
            "why/t",
            0,
            false,
            0,
            &Props::new().two(id::TOPIC_ALIAS, 0),
            b"",
        ))
        .await;
    let disconnect = client.closed().await.expect("a DISCONNECT before closing");
    assert_eq!(disconnect.reason, 0x94, "{disconnect:?}");
    assert!(
        !disconnect
            .props
            .string(id::REASON_STRING)
            .unwrap_or_default()
            .is_empty(),
        "{disconnect:?}"
    );
    assert!(!disconnect.props.has(id::SESSION_EXPIRY), "{disconnect:?}");
}

/// "If the Session Expiry Interval in the CONNECT packet was zero, then it is a Protocol
/// Error to set a non-zero Session Expiry Interval in the DISCONNECT packet sent by the
/// Client. If such a non-zero Session Expiry Interval is received by the Server, it does
/// not treat it as a valid DISCONNECT packet. The Server uses DISCONNECT with Reason Code
/// 0x82 (Protocol Error)" (§3.14.2.2.2), without a Session Expiry Interval
/// [MQTT-3.14.2-2]. Not a valid DISCONNECT, it does not discard the will (only a
/// DISCONNECT 0x00 does, [MQTT-3.14.4-3]): the will is published [MQTT-3.1.2-8]; and the
/// session, whose expiry stayed 0, ends: a Clean Start 0 reconnection finds none
/// [MQTT-3.2.2-3].
#[tokio::test]
async fn disconnect_setting_a_session_expiry_after_0_gets_disconnect_0x82() {
    let broker = start().await;
    let mut watcher = Client::plain(broker.mqtt, "sx-watch").await;
    watcher
        .subscribe_one("sx/#", options(0, false, false, 0), None)
        .await;
    let connect = Connect {
        will: Some(Will {
            topic: "sx/will",
            payload: b"gone",
            qos: 0,
            retain: false,
            props: Props::new(),
        }),
        ..Connect::new("sx")
    };
    let mut client = Client::connect(broker.mqtt, &connect).await;
    client
        .send(&disconnect(
            0x00,
            &Props::new().four(id::SESSION_EXPIRY, 60),
        ))
        .await;
    let answer = client.closed().await.expect("a DISCONNECT 0x82");
    assert_eq!(answer.reason, 0x82, "{answer:?}");
    assert!(!answer.props.has(id::SESSION_EXPIRY), "{answer:?}");

    let will = watcher.next_publish().await;
    assert_eq!(
        (will.topic.as_str(), will.payload.as_slice()),
        ("sx/will", &b"gone"[..])
    );

    let mut again = Raw::connect(broker.mqtt).await;
    let resume = Connect {
        clean_start: false,
        ..Connect::new("sx")
    };
    again.send(&resume.encode()).await;
    let connack = parse_connack(&again.packet().await.expect("a CONNACK"));
    assert_eq!(connack.reason, 0x00);
    assert!(!connack.session_present, "no session was kept: {connack:?}");
}

/// The converse is allowed: a durable session (expiry 60 s) may end with a DISCONNECT
/// setting its expiry to 0 (§3.14.2.2.2); the server closes without an error and the
/// session is gone [MQTT-3.2.2-3].
#[tokio::test]
async fn disconnect_may_set_a_durable_session_expiry_to_0() {
    let broker = start().await;
    let durable = Connect::new("sx0").durable(60);
    let mut client = Client::connect(broker.mqtt, &durable).await;
    client
        .send(&disconnect(0x00, &Props::new().four(id::SESSION_EXPIRY, 0)))
        .await;
    assert_eq!(client.closed().await, None, "closed without a DISCONNECT");
    let again = Client::connect(broker.mqtt, &durable).await;
    assert!(!again.connack.session_present, "{:?}", again.connack);
}
