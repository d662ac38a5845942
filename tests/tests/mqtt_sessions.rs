//! Durable MQTT sessions end to end (DESIGN.md §6; MQTT 3.1.1 §3.1.2.4, §3.2.2.2, §4.1,
//! §4.4; MQTT 5 §3.1.2.4, §3.1.2.11.2, §3.2.2.2, §4.1, §4.4), black box, with rumqttc 3.1.1
//! and 5 and raw bytes where the wire matters:
//!
//! * [`present`]: the CONNACK session present flag, and clean session / clean start
//!   discarding a stored session with its subscriptions and queue;
//! * [`offline`]: QoS 1/2 messages published while a persistent session is offline
//!   arrive on reconnect, in order, once; QoS 0 ones are not queued; the offline queue's
//!   bound (`mqtt.max_queued_messages`);
//! * [`expiry`]: the MQTT 5 Session Expiry Interval, its 0 default, and the server's cap
//!   (`mqtt.max_session_expiry_s`), which 3.1.1 persistent sessions get;
//! * [`inflight`]: unacknowledged QoS 1/2 PUBLISH and PUBREL packets resent on reconnect
//!   with DUP and their original packet identifiers (raw bytes);
//! * [`restart`]: sessions, subscriptions, queues and in-flight messages surviving a
//!   graceful broker restart on a redb file (the crash test is `tests/cli/crash.rs`);
//! * [`load`]: a thousand persistent sessions reconnecting at once, and a stalled
//!   persistent subscriber that must not slow other topics, nor hold its own topic's
//!   publisher once it is offline.

mod support;

#[path = "mqtt_sessions/expiry.rs"]
mod expiry;
#[path = "mqtt_sessions/inflight.rs"]
mod inflight;
#[path = "mqtt_sessions/load.rs"]
mod load;
#[path = "mqtt_sessions/offline.rs"]
mod offline;
#[path = "mqtt_sessions/present.rs"]
mod present;
#[path = "mqtt_raw/mod.rs"]
mod raw;
#[path = "mqtt_sessions/raw_session.rs"]
mod raw_session;
#[path = "mqtt_sessions/restart.rs"]
mod restart;

use std::time::Duration;

use pathmq::config::Config;
use rumqttc::v5::mqttbytes::v5::{ConnAck as ConnAck5, Packet as P5};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use support::*;
use tokio::sync::mpsc::UnboundedReceiver;

/// A loopback config (ephemeral ports, memory store) to adjust before
/// [`start_with`].
fn memory_config() -> Config {
    loopback_config()
}

/// 3.1.1 options for `id` with CleanSession = `clean`.
fn options_v4(broker: &TestBroker, id: &str, clean: bool) -> MqttOptions {
    let mut options = MqttOptions::new(id, broker.mqtt.ip().to_string(), broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(clean);
    options
}

/// MQTT 5 options for `id` with Clean Start = `clean` and a Session Expiry Interval
/// (`None`: the property is left out, which means 0).
fn options_v5(
    broker: &TestBroker,
    id: &str,
    clean: bool,
    expiry: Option<u32>,
) -> rumqttc::v5::MqttOptions {
    let mut options =
        rumqttc::v5::MqttOptions::new(id, broker.mqtt.ip().to_string(), broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_start(clean);
    options.set_session_expiry_interval(expiry);
    options
}

/// A connected 3.1.1 client (CONNACK accepted) and the CONNACK's session present flag.
async fn connect_v4(options: MqttOptions) -> (AsyncClient, rumqttc::EventLoop, bool) {
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let connack = poll_v4(&mut eventloop, |e| match e {
        Event::Incoming(Packet::ConnAck(c)) => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!(connack.code, rumqttc::ConnectReturnCode::Success);
    (client, eventloop, connack.session_present)
}

/// Subscribes and waits for a SUBACK that grants the subscription.
async fn subscribe_v4(
    client: &AsyncClient,
    eventloop: &mut rumqttc::EventLoop,
    filter: &str,
    qos: QoS,
) {
    client.subscribe(filter, qos).await.unwrap();
    let suback = poll_v4(eventloop, |e| match e {
        Event::Incoming(Packet::SubAck(s)) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        suback.return_codes,
        [rumqttc::SubscribeReasonCode::Success(qos)],
        "{filter} granted"
    );
}

/// A normal DISCONNECT; returns once the server closed the connection (it has then
/// taken the session offline).
async fn disconnect_v4(client: AsyncClient, mut eventloop: rumqttc::EventLoop) {
    client.disconnect().await.unwrap();
    tokio::time::timeout(WAIT, async { while eventloop.poll().await.is_ok() {} })
        .await
        .expect("the server closes the connection after DISCONNECT");
}

/// A connected MQTT 5 client and its CONNACK (accepted).
async fn connect_v5(
    options: rumqttc::v5::MqttOptions,
) -> (rumqttc::v5::AsyncClient, rumqttc::v5::EventLoop, ConnAck5) {
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 64);
    let connack = poll_v5(&mut eventloop, |e| match e {
        rumqttc::v5::Event::Incoming(P5::ConnAck(c)) => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        connack.code,
        rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success
    );
    (client, eventloop, connack)
}

/// Subscribes (MQTT 5) and waits for a SUBACK that grants the subscription.
async fn subscribe_v5(
    client: &rumqttc::v5::AsyncClient,
    eventloop: &mut rumqttc::v5::EventLoop,
    filter: &str,
    qos: rumqttc::v5::mqttbytes::QoS,
) {
    client.subscribe(filter, qos).await.unwrap();
    let suback = poll_v5(eventloop, |e| match e {
        rumqttc::v5::Event::Incoming(P5::SubAck(s)) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        suback.return_codes,
        [rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(
            qos
        )],
        "{filter} granted"
    );
}

/// A normal MQTT 5 DISCONNECT (reason 0x00, the session expiry of the CONNECT stays);
/// returns once the server closed the connection.
async fn disconnect_v5(client: rumqttc::v5::AsyncClient, mut eventloop: rumqttc::v5::EventLoop) {
    client.disconnect().await.unwrap();
    tokio::time::timeout(WAIT, async { while eventloop.poll().await.is_ok() {} })
        .await
        .expect("the server closes the connection after DISCONNECT");
}

/// A 3.1.1 clean-session publisher whose events are forwarded in the background.
struct Publisher {
    client: AsyncClient,
    events: UnboundedReceiver<Event>,
}

impl Publisher {
    /// Connects `id` (clean session) to `broker`.
    async fn new(broker: &TestBroker, id: &str) -> Publisher {
        let (client, eventloop) = broker.mqtt_v4(id);
        let mut events = spawn_v4(eventloop);
        expect_v4(&mut events, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
        })
        .await;
        Publisher { client, events }
    }

    /// Publishes one message (not retained) and waits for the end of its flow: the PUBACK
    /// (QoS 1), the PUBCOMP (QoS 2) or, for QoS 0, the packet handed to the socket. A
    /// QoS 0 message is only known to be routed once a later QoS 1/2 one from this
    /// publisher is acknowledged (the server handles one connection's packets in order).
    async fn send(&mut self, topic: &str, qos: QoS, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, qos, false, payload.into())
            .await
            .unwrap();
        expect_v4(&mut self.events, |e| match (qos, e) {
            (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
            | (QoS::AtLeastOnce, Event::Incoming(Packet::PubAck(_)))
            | (QoS::ExactlyOnce, Event::Incoming(Packet::PubComp(_))) => Some(()),
            _ => None,
        })
        .await;
    }
}

/// The payload of a 3.1.1 PUBLISH as text.
fn text(publish: &rumqttc::Publish) -> String {
    String::from_utf8_lossy(&publish.payload).into_owned()
}

/// The next PUBLISH a 3.1.1 client gets, as (topic, QoS, payload, DUP).
async fn next_v4(eventloop: &mut rumqttc::EventLoop) -> (String, QoS, String, bool) {
    let p = poll_v4(eventloop, v4_publish).await;
    (p.topic.clone(), p.qos, text(&p), p.dup)
}
