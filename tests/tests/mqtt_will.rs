//! Will messages end to end (MQTT 3.1.1 §3.1.2.5, MQTT 5 §3.1.2.5 and §3.1.3.2), with
//! rumqttc 3.1.1 and 5, raw bytes, and Mosquitto's `mosquitto_sub --will-topic`: published
//! when the connection ends without a normal DISCONNECT (dropped socket, keep alive
//! expiry, takeover, MQTT 5 DISCONNECT 0x04), not after a normal one; retained, QoS 1 and
//! user properties as a PUBLISH would carry them; refused by permissions on a secure
//! broker; an invalid will topic refused at CONNECT.

mod support;

#[path = "mqtt_raw/mod.rs"]
mod raw;
#[path = "mqtt_will/secure.rs"]
mod secure;

use std::process::Stdio;
use std::time::{Duration, Instant};

use raw::{Raw, RawWill};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use support::*;

/// A 3.1.1 client subscribed to `filter`; its events arrive on the returned channel.
async fn watcher(
    broker: &TestBroker,
    id: &str,
    filter: &str,
    qos: QoS,
) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let (client, mut eventloop) = broker.mqtt_v4(id);
    client.subscribe(filter, qos).await.unwrap();
    poll_v4(&mut eventloop, v4_suback).await;
    (client, spawn_v4(eventloop))
}

/// 3.1.1 client options for `id` with `will`.
fn options_v4(broker: &TestBroker, id: &str, will: LastWill) -> MqttOptions {
    let mut options = MqttOptions::new(id, broker.mqtt.ip().to_string(), broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_last_will(will);
    options
}

/// A 3.1.1 client, connected (CONNACK received); dropping the event loop drops its TCP
/// stream without a DISCONNECT.
async fn connected_v4(options: MqttOptions) -> (AsyncClient, rumqttc::EventLoop) {
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    poll_v4(&mut eventloop, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await;
    (client, eventloop)
}

/// A 3.1.1 client with `will`, connected.
async fn with_will_v4(
    broker: &TestBroker,
    id: &str,
    will: LastWill,
) -> (AsyncClient, rumqttc::EventLoop) {
    connected_v4(options_v4(broker, id, will)).await
}

/// The broker's live session count.
fn sessions(broker: &TestBroker) -> usize {
    broker.broker.core().stats().sessions
}

/// Waits until the broker holds fewer than `n` sessions: a closed connection finished,
/// its will (if any) published.
async fn sessions_below(broker: &TestBroker, n: usize) {
    tokio::time::timeout(WAIT, async {
        while sessions(broker) >= n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the closed connection's session never ended");
}

#[tokio::test]
async fn will_is_published_when_the_connection_drops() {
    let broker = start().await;
    let (_watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let will = LastWill::new("will/dying", "gone", QoS::AtMostOnce, false);
    let (_client, eventloop) = with_will_v4(&broker, "dying", will).await;
    drop(eventloop);
    let publish = expect_v4(&mut events, v4_publish).await;
    assert_eq!(publish.topic, "will/dying");
    assert_eq!(&publish.payload[..], b"gone");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn will_is_published_when_the_keep_alive_expires() {
    let broker = start().await;
    let (_watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let will = RawWill {
        topic: "will/silent",
        payload: b"timed out",
        qos: 0,
        retain: false,
        properties: &[],
    };
    let mut silent = Raw::connect(broker.mqtt).await;
    silent
        .send(&raw::connect(4, "silent", 1, Some(&will)))
        .await;
    assert_eq!(silent.packet().await.unwrap(), [0x20, 0x02, 0x00, 0x00]);
    let since = Instant::now();
    // Nothing is sent: 1.5 × 1 s later the server closes [MQTT-3.1.2-24].
    let publish = expect_v4(&mut events, v4_publish).await;
    assert!(
        since.elapsed() >= Duration::from_millis(1_400),
        "{:?}",
        since.elapsed()
    );
    assert_eq!(publish.topic, "will/silent");
    assert_eq!(&publish.payload[..], b"timed out");
    silent.expect_closed().await;
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn normal_disconnect_discards_the_will_in_3_1_1_and_5() {
    let broker = start().await;
    let (watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let before = sessions(&broker);
    let will = LastWill::new("will/v4", "gone", QoS::AtMostOnce, false);
    let (client, mut eventloop) = with_will_v4(&broker, "polite4", will).await;
    client.disconnect().await.unwrap();
    while eventloop.poll().await.is_ok() {}

    let mut options = rumqttc::v5::MqttOptions::new("polite5", "127.0.0.1", broker.mqtt.port());
    options.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
        "will/v5",
        "gone",
        rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        false,
        None,
    ));
    let (client5, mut eventloop5) = rumqttc::v5::AsyncClient::new(options, 16);
    poll_v5(&mut eventloop5, |e| {
        matches!(
            e,
            rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(_))
        )
        .then_some(())
    })
    .await;
    client5.disconnect().await.unwrap();
    while eventloop5.poll().await.is_ok() {}
    // Both connections are over (a will would be in the watcher's queue by now): the
    // first message the watcher gets is this marker.
    sessions_below(&broker, before + 1).await;
    watcher
        .publish("will/marker", QoS::AtMostOnce, false, "m")
        .await
        .unwrap();
    let first = expect_v4(&mut events, v4_publish).await;
    assert_eq!(first.topic, "will/marker");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn mqtt5_disconnect_0x04_publishes_the_will() {
    let broker = start().await;
    let (_watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let will = RawWill {
        topic: "will/asked",
        payload: b"on purpose",
        qos: 0,
        retain: false,
        properties: &[],
    };
    let mut client = Raw::connect(broker.mqtt).await;
    client.send(&raw::connect(5, "asks", 30, Some(&will))).await;
    let connack = client.packet().await.unwrap();
    assert_eq!(
        (connack[0], connack[2], connack[3]),
        (0x20, 0x00, 0x00),
        "{connack:?}"
    );
    // DISCONNECT, reason 0x04 Disconnect with Will Message, no properties.
    client.send(&[0xE0, 0x02, 0x04, 0x00]).await;
    client.expect_closed().await;
    let publish = expect_v4(&mut events, v4_publish).await;
    assert_eq!(publish.topic, "will/asked");
    assert_eq!(&publish.payload[..], b"on purpose");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn retained_qos1_will_is_stored_and_reaches_a_qos1_subscriber_at_qos1() {
    let broker = start().await;
    let (_watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtLeastOnce).await;
    let will = LastWill::new("will/status", "offline", QoS::AtLeastOnce, true);
    let (_client, eventloop) = with_will_v4(&broker, "device", will).await;
    drop(eventloop);
    let live = expect_v4(&mut events, v4_publish).await;
    assert_eq!(
        (live.topic.as_str(), live.qos),
        ("will/status", QoS::AtLeastOnce)
    );
    assert_eq!(&live.payload[..], b"offline");
    // Stored: a later subscriber gets it as a retained message.
    let (late, mut late_loop) = broker.mqtt_v4("late");
    late.subscribe("will/status", QoS::AtLeastOnce)
        .await
        .unwrap();
    let retained = poll_v4(&mut late_loop, v4_publish).await;
    assert!(retained.retain);
    assert_eq!(&retained.payload[..], b"offline");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn will_user_properties_reach_mqtt5_subscribers_and_native_meta() {
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::mqttbytes::v5::{LastWill as Will5, LastWillProperties};
    let broker = start().await;
    let mut native = broker.native().await;
    native.on("/will/**").await;
    let (sub5, mut sub5_loop) = broker.mqtt_v5("watcher5");
    sub5.subscribe("will/#", Q5::AtMostOnce).await.unwrap();
    poll_v5(&mut sub5_loop, v5_suback).await;

    let properties = LastWillProperties {
        delay_interval: None,
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: vec![
            ("origin".into(), "sensor-1".into()),
            ("why".into(), "lost".into()),
        ],
    };
    let mut options = rumqttc::v5::MqttOptions::new("props", "127.0.0.1", broker.mqtt.port());
    options.set_last_will(Will5::new(
        "will/props",
        "{\"up\":false}",
        Q5::AtMostOnce,
        false,
        Some(properties),
    ));
    let (_client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 16);
    poll_v5(&mut eventloop, |e| {
        matches!(
            e,
            rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(_))
        )
        .then_some(())
    })
    .await;
    drop(eventloop);

    let publish = poll_v5(&mut sub5_loop, v5_publish).await;
    assert_eq!(&publish.topic[..], b"will/props");
    let mut user = publish.properties.expect("properties").user_properties;
    user.sort();
    assert_eq!(
        user,
        [
            ("origin".to_owned(), "sensor-1".to_owned()),
            ("why".to_owned(), "lost".to_owned())
        ]
    );
    let event = native.next_event().await;
    assert_eq!(event["_meta"]["path"], "/will/props");
    assert_eq!(event["_meta"]["origin"], "sensor-1");
    assert_eq!(event["_meta"]["why"], "lost");
    assert_eq!(event["data"], serde_json::json!({"up": false}));
    broker.broker.shutdown().await;
}

/// MQTT 5 options for `id`: session expiry `expiry_s`, a QoS 0 will on `topic` with
/// delay `delay_s`, and clean start as given.
fn delayed_will_options(
    broker: &TestBroker,
    id: &str,
    topic: &str,
    expiry_s: u32,
    delay_s: u32,
    clean_start: bool,
) -> rumqttc::v5::MqttOptions {
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::mqttbytes::v5::{LastWill as Will5, LastWillProperties};
    let properties = LastWillProperties {
        delay_interval: Some(delay_s),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    };
    let mut options = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", broker.mqtt.port());
    options.set_session_expiry_interval(Some(expiry_s));
    options.set_clean_start(clean_start);
    options.set_last_will(Will5::new(
        topic,
        "gone",
        Q5::AtMostOnce,
        false,
        Some(properties),
    ));
    options
}

/// Connects with `options` and returns the CONNACK's session present flag; the client
/// stays connected while the returned event loop is kept.
async fn connect_v5(
    options: rumqttc::v5::MqttOptions,
) -> (bool, rumqttc::v5::AsyncClient, rumqttc::v5::EventLoop) {
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 16);
    let present = poll_v5(&mut eventloop, |e| match e {
        rumqttc::v5::Event::Incoming(P5::ConnAck(c)) => Some(c.session_present),
        _ => None,
    })
    .await;
    (present, client, eventloop)
}

/// MQTT 5 §3.1.3.2.2, [MQTT-3.1.3-9]: a durable session's will waits out its delay, and
/// a new connection with clean start 0 within it resumes the session and cancels the will.
#[tokio::test]
async fn a_resumed_session_cancels_its_delayed_will() {
    let broker = start().await;
    let (_watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let options = delayed_will_options(&broker, "later", "will/later", 7200, 3600, false);
    let (present, _client, eventloop) = connect_v5(options.clone()).await;
    assert!(!present);
    drop(eventloop);
    let (present, _again, _eventloop) = connect_v5(options).await;
    assert!(present, "the session was resumed");
    let will = tokio::time::timeout(Duration::from_millis(800), events.recv()).await;
    assert!(will.is_err(), "no will after a resume: {will:?}");
    broker.broker.shutdown().await;
}

/// The delay is min(will delay, session expiry) (MQTT 5 §3.1.3.2.2): a session that
/// expires after 1 s sends its will then, long before the hour of will delay.
#[tokio::test]
async fn a_delayed_will_is_sent_when_the_session_expires() {
    let broker = start().await;
    let (_watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let options = delayed_will_options(&broker, "short", "will/short", 1, 3600, false);
    let (_, _client, eventloop) = connect_v5(options).await;
    let gone = std::time::Instant::now();
    drop(eventloop);
    let publish = expect_v4(&mut events, v4_publish).await;
    assert_eq!(publish.topic, "will/short");
    assert!(
        gone.elapsed() >= Duration::from_millis(900),
        "{:?}",
        gone.elapsed()
    );
    broker.broker.shutdown().await;
}

/// [MQTT-3.1.3-9]: a new connection with clean start 1 ends the old session, so its will
/// is sent at once, delay or not.
#[tokio::test]
async fn a_clean_start_ends_the_session_and_sends_its_delayed_will() {
    let broker = start().await;
    let (_watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let options = delayed_will_options(&broker, "restart", "will/restart", 7200, 3600, false);
    let (_, _client, eventloop) = connect_v5(options).await;
    drop(eventloop);
    let clean = delayed_will_options(&broker, "restart", "will/other", 0, 0, true);
    let (present, _again, _eventloop) = connect_v5(clean).await;
    assert!(!present, "clean start discards the session");
    let publish = expect_v4(&mut events, v4_publish).await;
    assert_eq!(publish.topic, "will/restart");
    broker.broker.shutdown().await;
}

/// MQTT-3.1.4-2 (3.1.1) / MQTT-3.1.4-3 (5): a new connection with the client id closes
/// the old one, whose will is published (MQTT 5: its delay is 0 here, see above).
#[tokio::test]
async fn takeover_publishes_the_old_connections_will() {
    let broker = start().await;
    let (_watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let will = LastWill::new("will/taken", "replaced", QoS::AtMostOnce, false);
    let (_old, _old_loop) = with_will_v4(&broker, "twin", will).await;
    let (_new, mut new_loop) = broker.mqtt_v4("twin");
    poll_v4(&mut new_loop, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await;
    let publish = expect_v4(&mut events, v4_publish).await;
    assert_eq!(publish.topic, "will/taken");

    let will = RawWill {
        topic: "will/taken5",
        payload: b"replaced",
        qos: 0,
        retain: false,
        properties: &[],
    };
    let mut old = Raw::connect(broker.mqtt).await;
    old.send(&raw::connect(5, "twin5", 30, Some(&will))).await;
    assert_eq!(old.packet().await.unwrap()[0], 0x20);
    let mut new = Raw::connect(broker.mqtt).await;
    new.send(&raw::connect(5, "twin5", 30, None)).await;
    assert_eq!(new.packet().await.unwrap()[0], 0x20);
    // The old connection is told why: DISCONNECT 0x8E session taken over.
    assert_eq!(disconnect_reason(&old.packet().await.unwrap()), 0x8E);
    let publish = expect_v4(&mut events, v4_publish).await;
    assert_eq!(publish.topic, "will/taken5");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn invalid_will_topic_is_refused_at_connect() {
    let broker = start().await;
    let will = RawWill {
        topic: "will/+",
        payload: b"x",
        qos: 0,
        retain: false,
        properties: &[],
    };
    // MQTT 5: CONNACK 0x90 Topic Name invalid.
    let mut v5 = Raw::connect(broker.mqtt).await;
    v5.send(&raw::connect(5, "wild5", 30, Some(&will))).await;
    assert_eq!(v5.packet().await.unwrap(), [0x20, 0x03, 0x00, 0x90, 0x00]);
    v5.expect_closed().await;
    // 3.1.1 has no return code for it: the connection is closed.
    let mut v4 = Raw::connect(broker.mqtt).await;
    v4.send(&raw::connect(4, "wild4", 30, Some(&will))).await;
    assert_eq!(v4.packet().await, None);
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn mosquitto_sub_killed_gets_its_will_published() {
    let port = |broker: &TestBroker| broker.mqtt.port().to_string();
    let broker = start().await;
    let (_watcher, mut events) = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let subscriptions = broker.broker.core().stats().subscriptions;
    let mut sub = tokio::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port(&broker), "-t", "elsewhere/#"])
        .args(["--will-topic", "will/mosquitto", "--will-payload", "killed"])
        .args(["--will-qos", "1", "-i", "mosq-will"])
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("mosquitto_sub is installed (mosquitto-clients)");
    broker.subscribed_beyond(subscriptions).await;
    sub.kill().await.unwrap();
    let publish = expect_v4(&mut events, v4_publish).await;
    assert_eq!(publish.topic, "will/mosquitto");
    assert_eq!(&publish.payload[..], b"killed");
    broker.broker.shutdown().await;
}
