//! CONNECT-time behaviour end to end: MQTT 3.1 clients (protocol name `MQIsdp`, level 3)
//! in raw bytes and with Mosquitto's `-V mqttv31`, and the server's maximum keep alive
//! (`mqtt.max_keepalive_s`): MQTT 5 clients get a Server Keep Alive and are held to it,
//! 3.1.x clients asking for more are refused.

mod support;

#[path = "mqtt_raw/mod.rs"]
mod raw;

use std::process::Stdio;
use std::time::{Duration, Instant};

use pathmq::config::{Config, Engine};
use raw::{Raw, RawWill};
use rumqttc::QoS;
use rumqttc::v5::mqttbytes::v5::Packet as P5;
use support::*;
use tokio::io::AsyncReadExt as _;

/// The CONNACK of an accepted 3.1 / 3.1.1 CONNECT (3.1: no session present flag).
const CONNACK_OK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
/// Return code 2, identifier rejected.
const CONNACK_ID_REJECTED: [u8; 4] = [0x20, 0x02, 0x00, 0x02];

/// A broker on loopback (memory store) whose `max_keepalive_s` is `max`.
async fn start_with_max_keepalive(max: u16) -> TestBroker {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.engine = Engine::Memory;
    config.mqtt.max_keepalive_s = max;
    start_with(config).await
}

#[tokio::test]
async fn mqtt_3_1_client_subscribes_and_publishes_in_raw_bytes() {
    let broker = start().await;
    let mut client = Raw::connect(broker.mqtt).await;
    // A client id longer than 3.1's 23 characters is accepted, as Mosquitto does.
    client
        .send(&raw::connect(
            3,
            "an-mqtt-3-1-client-with-a-long-id",
            30,
            None,
        ))
        .await;
    assert_eq!(client.packet().await.unwrap(), CONNACK_OK);
    client.send(&raw::subscribe(3, 1, "t31/#", 1)).await;
    assert_eq!(
        client.packet().await.unwrap(),
        [0x90, 0x03, 0x00, 0x01, 0x01]
    );
    client.send(&raw::publish(3, "t31/a", 1, 7, b"hello")).await;
    // The PUBACK, and the message back through the client's own subscription, at QoS 1.
    let mut packets = [
        client.packet().await.unwrap(),
        client.packet().await.unwrap(),
    ];
    packets.sort();
    assert_eq!(packets[1], [0x40, 0x02, 0x00, 0x07]);
    let publish = &packets[0];
    assert_eq!(publish[0], 0x32, "{publish:?}");
    assert_eq!(&publish[2..9], b"\x00\x05t31/a");
    assert_eq!(&publish[11..], b"hello");
    let pkid = [publish[9], publish[10]];
    client.send(&[0x40, 0x02, pkid[0], pkid[1]]).await;
    client.send(&[0xC0, 0x00]).await;
    assert_eq!(client.packet().await.unwrap(), [0xD0, 0x00]);
    // A 3.1.1 subscriber gets what a 3.1 client publishes.
    let (sub, mut sub_loop) = broker.mqtt_v4("modern");
    sub.subscribe("t31/b", QoS::AtMostOnce).await.unwrap();
    poll_v4(&mut sub_loop, v4_suback).await;
    client
        .send(&raw::publish(3, "t31/b", 0, 0, b"to 3.1.1"))
        .await;
    let publish = poll_v4(&mut sub_loop, v4_publish).await;
    assert_eq!(&publish.payload[..], b"to 3.1.1");
    // DISCONNECT: the server closes.
    client.send(&[0xE0, 0x00]).await;
    client.expect_closed().await;
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_requires_a_client_id_and_publishes_its_will() {
    let broker = start().await;
    let mut anonymous = Raw::connect(broker.mqtt).await;
    anonymous.send(&raw::connect(3, "", 30, None)).await;
    assert_eq!(anonymous.packet().await.unwrap(), CONNACK_ID_REJECTED);
    anonymous.expect_closed().await;

    let (watcher, mut watcher_loop) = broker.mqtt_v4("watcher");
    watcher.subscribe("will/#", QoS::AtMostOnce).await.unwrap();
    poll_v4(&mut watcher_loop, v4_suback).await;
    let will = RawWill {
        topic: "will/old",
        payload: b"3.1 gone",
        qos: 0,
        retain: false,
        properties: &[],
    };
    let mut old = Raw::connect(broker.mqtt).await;
    old.send(&raw::connect(3, "old", 30, Some(&will))).await;
    assert_eq!(old.packet().await.unwrap(), CONNACK_OK);
    drop(old);
    let publish = poll_v4(&mut watcher_loop, v4_publish).await;
    assert_eq!(publish.topic, "will/old");
    assert_eq!(&publish.payload[..], b"3.1 gone");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn mosquitto_clients_speak_mqtt_3_1() {
    let broker = start().await;
    let port = broker.mqtt.port().to_string();
    let subscriptions = broker.broker.core().stats().subscriptions;
    let mut sub = tokio::process::Command::new("mosquitto_sub")
        .args(["-V", "mqttv31", "-h", "127.0.0.1", "-p", &port])
        .args(["-t", "t31/m", "-C", "1", "-W", "10"])
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub is installed (mosquitto-clients)");
    broker.subscribed_beyond(subscriptions).await;
    let status = tokio::process::Command::new("mosquitto_pub")
        .args(["-V", "mqttv31", "-h", "127.0.0.1", "-p", &port])
        .args(["-t", "t31/m", "-m", "over 3.1", "-q", "1"])
        .stdin(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let mut out = String::new();
    let mut stdout = sub.stdout.take().unwrap();
    tokio::time::timeout(WAIT, stdout.read_to_string(&mut out))
        .await
        .expect("mosquitto_sub output in time")
        .unwrap();
    assert_eq!(out, "over 3.1\n");
    assert!(sub.wait().await.unwrap().success());
    broker.broker.shutdown().await;
}

/// MQTT-3.2.2-21/22: a Server Keep Alive in the CONNACK replaces the client's; without
/// one, the client's is used. (rumqttc's MQTT 5 client insists on at least 5 s.)
#[tokio::test]
async fn mqtt5_clients_asking_for_more_than_the_maximum_get_a_server_keep_alive() {
    let broker = start_with_max_keepalive(10).await;
    let port = broker.mqtt.port();
    let server_keep_alive = |keep_alive: u64, id: &'static str| async move {
        let mut options = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(keep_alive));
        let (_client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 16);
        poll_v5(&mut eventloop, |e| match e {
            rumqttc::v5::Event::Incoming(P5::ConnAck(c)) => Some(c.clone()),
            _ => None,
        })
        .await
        .properties
        .and_then(|p| p.server_keep_alive)
    };
    assert_eq!(server_keep_alive(60, "long").await, Some(10));
    assert_eq!(server_keep_alive(5, "short").await, None);
    assert_eq!(server_keep_alive(10, "equal").await, None);
    broker.broker.shutdown().await;
}

/// An MQTT 5 client asking for no keep alive (0) gets the maximum, and the server holds
/// it to it: DISCONNECT 0x8D after 1.5 × the Server Keep Alive of silence.
#[tokio::test]
async fn mqtt5_client_without_keep_alive_is_held_to_the_server_keep_alive() {
    let broker = start_with_max_keepalive(2).await;
    let mut silent = Raw::connect(broker.mqtt).await;
    silent.send(&raw::connect(5, "silent", 0, None)).await;
    let connack = silent.packet().await.unwrap();
    assert_eq!((connack[0], connack[3]), (0x20, 0x00), "{connack:?}");
    // Property 0x13 Server Keep Alive, 2 s.
    assert!(
        connack.windows(3).any(|w| w == [0x13, 0x00, 0x02]),
        "no Server Keep Alive in {connack:?}"
    );
    let since = Instant::now();
    assert_eq!(disconnect_reason(&silent.packet().await.unwrap()), 0x8D);
    assert!(
        since.elapsed() >= Duration::from_millis(2_800),
        "{:?}",
        since.elapsed()
    );
    silent.expect_closed().await;
    broker.broker.shutdown().await;
}

/// 3.1.x cannot be told another keep alive: more than the maximum is refused with return
/// code 2 (as Mosquitto does); 0 (no keep alive) is accepted.
#[tokio::test]
async fn mqtt_3_1_x_clients_asking_for_more_than_the_maximum_are_refused() {
    let broker = start_with_max_keepalive(60).await;
    for level in [3, 4] {
        let mut long = Raw::connect(broker.mqtt).await;
        long.send(&raw::connect(level, "long", 61, None)).await;
        assert_eq!(
            long.packet().await.unwrap(),
            CONNACK_ID_REJECTED,
            "level {level}"
        );
        long.expect_closed().await;
        for keep_alive in [0, 60] {
            let mut ok = Raw::connect(broker.mqtt).await;
            ok.send(&raw::connect(level, "ok", keep_alive, None)).await;
            assert_eq!(ok.packet().await.unwrap(), CONNACK_OK, "level {level}");
        }
    }
    broker.broker.shutdown().await;
}

/// The default maximum is 65,535 s: MQTT 5 clients asking for a keep alive keep theirs.
#[tokio::test]
async fn by_default_mqtt5_clients_keep_their_keep_alive() {
    let broker = start().await;
    let (_client, mut eventloop) = broker.mqtt_v5("default");
    let connack = poll_v5(&mut eventloop, |e| match e {
        rumqttc::v5::Event::Incoming(P5::ConnAck(c)) => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!(connack.properties.and_then(|p| p.server_keep_alive), None);
    broker.broker.shutdown().await;
}
