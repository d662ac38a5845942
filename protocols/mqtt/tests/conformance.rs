//! Raw bytes on the wire (STYLE 30): what the server answers to protocol violations and
//! edge cases, and that a bad client never affects another one.

mod common;

use std::time::{Duration, Instant};

use common::{
    Broker, Raw, connect, connect_flags, disconnect_reason, packet, publish, start, start_with,
    string, subscribe,
};
use pathmq_mqtt::MqttConfig;

const CONNACK_V4_OK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
const PINGREQ: [u8; 2] = [0xC0, 0x00];
const PINGRESP: [u8; 2] = [0xD0, 0x00];

/// A v4 client connects and gets a PINGRESP: the broker still serves others.
async fn still_works(broker: &Broker) {
    let mut raw = Raw::connect(broker).await;
    raw.send(&connect(4, "healthy", 30)).await;
    assert_eq!(raw.packet().await.unwrap(), CONNACK_V4_OK);
    raw.send(&PINGREQ).await;
    assert_eq!(raw.packet().await.unwrap(), PINGRESP);
}

/// An MQTT 5 client after its CONNACK.
async fn v5(broker: &Broker, id: &str) -> Raw {
    let mut raw = Raw::connect(broker).await;
    raw.send(&connect(5, id, 30)).await;
    let connack = raw.packet().await.unwrap();
    assert_eq!(
        &connack[..4],
        &[0x20, connack[1], 0x00, 0x00],
        "{connack:?}"
    );
    raw
}

/// An MQTT 3.1.1 client after its CONNACK.
async fn v4(broker: &Broker, id: &str) -> Raw {
    let mut raw = Raw::connect(broker).await;
    raw.send(&connect(4, id, 30)).await;
    assert_eq!(raw.packet().await.unwrap(), CONNACK_V4_OK);
    raw
}

/// A PUBLISH whose topic length runs past the end of the packet.
const MALFORMED_PUBLISH: [u8; 5] = [0x30, 0x03, 0x00, 0x05, b'a'];

#[tokio::test]
async fn malformed_packet_gets_disconnect_0x81_on_v5() {
    let broker = start().await;
    let mut raw = v5(&broker, "bad5").await;
    raw.send(&MALFORMED_PUBLISH).await;
    assert_eq!(disconnect_reason(&raw.packet().await.unwrap()), 0x81);
    raw.expect_closed().await;
    still_works(&broker).await;
}

#[tokio::test]
async fn malformed_packet_closes_v4() {
    let broker = start().await;
    let mut raw = v4(&broker, "bad4").await;
    raw.send(&MALFORMED_PUBLISH).await;
    raw.expect_closed().await;
    still_works(&broker).await;
}

#[tokio::test]
async fn invalid_fixed_header_flags_are_malformed() {
    let broker = start().await;
    let mut raw = v5(&broker, "flags").await;
    // SUBSCRIBE must have flags 0b0010 [MQTT-2.2.2-2].
    let mut sub = subscribe(5, 1, "a", 0);
    sub[0] = 0x80;
    raw.send(&sub).await;
    assert_eq!(disconnect_reason(&raw.packet().await.unwrap()), 0x81);
    raw.expect_closed().await;
    still_works(&broker).await;
}

#[tokio::test]
async fn mqtt_3_1_is_accepted_and_level_3_under_the_name_mqtt_gets_connack_0x01() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.send(&connect(3, "old", 30)).await;
    assert_eq!(raw.packet().await.unwrap(), CONNACK_V4_OK);
    raw.send(&PINGREQ).await;
    assert_eq!(raw.packet().await.unwrap(), PINGRESP);
    // "MQTT" with level 3 is neither 3.1 nor 3.1.1.
    let mut body = string("MQTT");
    body.extend_from_slice(&[3, 0x02, 0, 30]);
    body.extend(string("odd"));
    let mut raw = Raw::connect(&broker).await;
    raw.send(&packet(0x10, &body)).await;
    assert_eq!(raw.packet().await.unwrap(), [0x20, 0x02, 0x00, 0x01]);
    raw.expect_closed().await;
    still_works(&broker).await;
}

#[tokio::test]
async fn a_protocol_level_above_5_gets_an_mqtt5_connack_0x84() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.send(&connect(6, "future", 30)).await;
    assert_eq!(raw.packet().await.unwrap(), [0x20, 0x03, 0x00, 0x84, 0x00]);
    raw.expect_closed().await;
}

#[tokio::test]
async fn first_packet_not_connect_closes() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.send(&PINGREQ).await;
    raw.expect_closed().await;
    still_works(&broker).await;
}

/// Enhanced authentication (MQTT 5 §4.12) is not supported: a CONNECT with an
/// Authentication Method gets CONNACK 0x8C (Bad authentication method) [MQTT-4.12.0-1],
/// then the connection closes.
#[tokio::test]
async fn enhanced_authentication_gets_connack_0x8c() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker).await;
    let connect = [
        0x10, 0x16, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, // header
        0x08, 0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // Authentication Method
        0x00, 0x01, b'a', // client id
    ];
    raw.send(&connect).await;
    let connack = raw.packet().await.unwrap();
    assert_eq!(&connack[..4], [0x20, 0x03, 0x00, 0x8C], "{connack:02x?}");
    raw.expect_closed().await;
    still_works(&broker).await;
}

#[tokio::test]
async fn reserved_connect_flag_closes_v4() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.send(&connect_flags(4, "r", 30, 0x03)).await;
    raw.expect_closed().await;
}

#[tokio::test]
async fn empty_client_id_without_clean_session_gets_connack_0x02_on_v4() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.send(&connect_flags(4, "", 30, 0x00)).await;
    assert_eq!(raw.packet().await.unwrap(), [0x20, 0x02, 0x00, 0x02]);
    raw.expect_closed().await;
    // With clean session the server assigns one.
    let mut raw = Raw::connect(&broker).await;
    raw.send(&connect(4, "", 30)).await;
    assert_eq!(raw.packet().await.unwrap(), CONNACK_V4_OK);
}

#[tokio::test]
async fn second_connect_is_a_protocol_error() {
    let broker = start().await;
    let mut raw = v5(&broker, "twice").await;
    raw.send(&connect(5, "twice", 30)).await;
    assert_eq!(disconnect_reason(&raw.packet().await.unwrap()), 0x82);
    raw.expect_closed().await;
    still_works(&broker).await;
}

#[tokio::test]
async fn packet_larger_than_the_maximum_gets_0x95() {
    let mut config = MqttConfig::default();
    config.max_packet_size = 64;
    let broker = start_with(config).await;
    let mut raw = v5(&broker, "big").await;
    raw.send(&publish(5, "t", 0, 0, false, &[7; 100])).await;
    assert_eq!(disconnect_reason(&raw.packet().await.unwrap()), 0x95);
    raw.expect_closed().await;
    still_works(&broker).await;
}

#[tokio::test]
async fn publish_to_an_invalid_topic_gets_0x90() {
    let broker = start().await;
    let mut raw = v5(&broker, "topic").await;
    raw.send(&publish(5, "a/+", 0, 0, false, b"x")).await;
    assert_eq!(disconnect_reason(&raw.packet().await.unwrap()), 0x90);
    raw.expect_closed().await;
    let mut raw = v4(&broker, "topic4").await;
    raw.send(&publish(4, "", 0, 0, false, b"x")).await;
    raw.expect_closed().await;
    still_works(&broker).await;
}

#[tokio::test]
async fn invalid_subscribe_filter_is_refused_in_the_suback() {
    let broker = start().await;
    let mut raw = v5(&broker, "filter").await;
    raw.send(&subscribe(5, 3, "a/#/b", 1)).await;
    assert_eq!(
        raw.packet().await.unwrap(),
        [0x90, 0x04, 0x00, 0x03, 0x00, 0x8F]
    );
    let mut raw = v4(&broker, "filter4").await;
    raw.send(&subscribe(4, 3, "a/b#", 1)).await;
    assert_eq!(raw.packet().await.unwrap(), [0x90, 0x03, 0x00, 0x03, 0x80]);
}

#[tokio::test]
async fn keepalive_timeout_closes_a_silent_client() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.send(&connect(4, "silent", 1)).await;
    assert_eq!(raw.packet().await.unwrap(), CONNACK_V4_OK);
    let started = Instant::now();
    raw.expect_closed().await;
    let elapsed = started.elapsed();
    // 1.5 × 1 s [MQTT-3.1.2-24], with room for a slow machine.
    assert!(
        elapsed >= Duration::from_millis(1_300),
        "closed after {elapsed:?}"
    );
    assert!(
        elapsed <= Duration::from_millis(3_000),
        "closed after {elapsed:?}"
    );
    still_works(&broker).await;
}

#[tokio::test]
async fn keepalive_timeout_gets_0x8d_on_v5_and_pings_keep_it_alive() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker).await;
    raw.send(&connect(5, "pinger", 1)).await;
    raw.packet().await.unwrap();
    // Three pings, each answered, span more than 1.5 s in total: the connection lives.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        raw.send(&PINGREQ).await;
        assert_eq!(raw.packet().await.unwrap(), PINGRESP);
    }
    assert_eq!(disconnect_reason(&raw.packet().await.unwrap()), 0x8D);
    raw.expect_closed().await;
}

#[tokio::test]
async fn connect_timeout_closes_a_client_that_never_connects() {
    let mut config = MqttConfig::default();
    config.connect_timeout = Duration::from_millis(200);
    let broker = start_with(config).await;
    let mut raw = Raw::connect(&broker).await;
    // Half a CONNECT.
    raw.send(&connect(4, "slow", 30)[..5]).await;
    raw.expect_closed().await;
    still_works(&broker).await;
}

#[tokio::test]
async fn packets_pipelined_behind_connect_are_processed() {
    let broker = start().await;
    let mut raw = Raw::connect(&broker).await;
    let mut bytes = connect(4, "pipe", 30);
    bytes.extend(subscribe(4, 9, "p/q", 1));
    bytes.extend(publish(4, "p/q", 1, 10, false, b"hello"));
    bytes.extend(PINGREQ);
    raw.send(&bytes).await;
    assert_eq!(raw.packet().await.unwrap(), CONNACK_V4_OK);
    assert_eq!(raw.packet().await.unwrap(), [0x90, 0x03, 0x00, 0x09, 0x01]);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(raw.packet().await.unwrap());
    }
    // The PUBACK for our publish, the publish itself (QoS 1, packet id 1), the PINGRESP.
    assert!(got.contains(&vec![0x40, 0x02, 0x00, 0x0A]), "{got:?}");
    assert!(got.contains(&PINGRESP.to_vec()), "{got:?}");
    let delivered = publish(4, "p/q", 1, 1, false, b"hello");
    assert!(got.contains(&delivered), "{got:?}");
}

#[tokio::test]
async fn qos2_duplicates_are_delivered_once() {
    let broker = start().await;
    let mut sub = v4(&broker, "sub").await;
    sub.send(&subscribe(4, 1, "q2/#", 0)).await;
    sub.packet().await.unwrap();
    let mut publisher = v4(&broker, "pub").await;
    let message = publish(4, "q2/x", 2, 7, false, b"once");
    publisher.send(&message).await;
    assert_eq!(publisher.packet().await.unwrap(), [0x50, 0x02, 0x00, 0x07]);
    // The same packet id again, with DUP: received, not processed [MQTT §4.3.3].
    let mut dup = message.clone();
    dup[0] |= 0x08;
    publisher.send(&dup).await;
    assert_eq!(publisher.packet().await.unwrap(), [0x50, 0x02, 0x00, 0x07]);
    publisher.send(&[0x62, 0x02, 0x00, 0x07]).await;
    assert_eq!(publisher.packet().await.unwrap(), [0x70, 0x02, 0x00, 0x07]);
    // Released: the id may be used for a new message.
    publisher
        .send(&publish(4, "q2/marker", 2, 7, false, b"m"))
        .await;
    assert_eq!(publisher.packet().await.unwrap(), [0x50, 0x02, 0x00, 0x07]);
    assert_eq!(
        sub.packet().await.unwrap(),
        publish(4, "q2/x", 0, 0, false, b"once")
    );
    assert_eq!(
        sub.packet().await.unwrap(),
        publish(4, "q2/marker", 0, 0, false, b"m")
    );
}

#[tokio::test]
async fn unknown_pubrel_gets_0x92_on_v5() {
    let broker = start().await;
    let mut raw = v5(&broker, "rel").await;
    raw.send(&[0x62, 0x02, 0x00, 0x05]).await;
    assert_eq!(raw.packet().await.unwrap(), [0x70, 0x03, 0x00, 0x05, 0x92]);
}

#[tokio::test]
async fn unsubscribe_reports_missing_subscriptions_on_v5() {
    let broker = start().await;
    let mut raw = v5(&broker, "unsub").await;
    raw.send(&subscribe(5, 1, "u/a", 0)).await;
    raw.packet().await.unwrap();
    let mut body = vec![0x00, 0x02, 0x00];
    body.extend(string("u/a"));
    body.extend(string("u/none"));
    raw.send(&packet(0xA2, &body)).await;
    assert_eq!(
        raw.packet().await.unwrap(),
        [0xB0, 0x05, 0x00, 0x02, 0x00, 0x00, 0x11]
    );
    // An UNSUBSCRIBE without filters is a protocol error [MQTT-3.10.3-2].
    raw.send(&packet(0xA2, &[0x00, 0x03, 0x00])).await;
    assert_eq!(disconnect_reason(&raw.packet().await.unwrap()), 0x82);
    raw.expect_closed().await;
}

#[tokio::test]
async fn shutdown_sends_server_shutting_down() {
    let broker = start().await;
    let mut raw5 = v5(&broker, "s5").await;
    let mut raw4 = v4(&broker, "s4").await;
    broker.core.begin_shutdown();
    assert_eq!(disconnect_reason(&raw5.packet().await.unwrap()), 0x8B);
    raw5.expect_closed().await;
    raw4.expect_closed().await;
}

#[tokio::test]
async fn outbound_window_holds_messages_until_acknowledged() {
    let mut config = MqttConfig::default();
    config.max_inflight = 2;
    let broker = start_with(config).await;
    let mut sub = v4(&broker, "slow").await;
    sub.send(&subscribe(4, 1, "win/#", 1)).await;
    sub.packet().await.unwrap();
    let mut publisher = v4(&broker, "pub").await;
    for i in 1..=4u16 {
        publisher
            .send(&publish(4, "win/x", 1, i, false, &[i as u8]))
            .await;
        assert_eq!(publisher.packet().await.unwrap()[0], 0x40);
    }
    // Two messages fill the window; the third waits for an acknowledgement.
    assert_eq!(
        sub.packet().await.unwrap(),
        publish(4, "win/x", 1, 1, false, &[1])
    );
    assert_eq!(
        sub.packet().await.unwrap(),
        publish(4, "win/x", 1, 2, false, &[2])
    );
    sub.send(&PINGREQ).await;
    assert_eq!(
        sub.packet().await.unwrap(),
        PINGRESP,
        "nothing beyond the window"
    );
    sub.send(&[0x40, 0x02, 0x00, 0x01]).await;
    assert_eq!(
        sub.packet().await.unwrap(),
        publish(4, "win/x", 1, 3, false, &[3])
    );
    sub.send(&PINGREQ).await;
    assert_eq!(sub.packet().await.unwrap(), PINGRESP);
    sub.send(&[0x40, 0x02, 0x00, 0x02]).await;
    assert_eq!(
        sub.packet().await.unwrap(),
        publish(4, "win/x", 1, 4, false, &[4])
    );
}

#[tokio::test]
async fn messages_larger_than_the_client_maximum_are_not_sent() {
    let broker = start().await;
    // An MQTT 5 CONNECT with Maximum Packet Size (0x27) = 50.
    let mut body = string("MQTT");
    body.extend([5, 0x02, 0, 30, 5, 0x27, 0, 0, 0, 50]);
    body.extend(string("small"));
    let mut sub = Raw::connect(&broker).await;
    sub.send(&packet(0x10, &body)).await;
    assert_eq!(sub.packet().await.unwrap()[3], 0x00);
    sub.send(&subscribe(5, 1, "mx/#", 0)).await;
    sub.packet().await.unwrap();
    let mut publisher = v5(&broker, "pub").await;
    publisher
        .send(&publish(5, "mx/big", 1, 1, false, &[1; 100]))
        .await;
    publisher.packet().await.unwrap();
    publisher
        .send(&publish(5, "mx/small", 1, 2, false, &[2; 10]))
        .await;
    publisher.packet().await.unwrap();
    assert_eq!(
        sub.packet().await.unwrap(),
        publish(5, "mx/small", 0, 0, false, &[2; 10])
    );
}
