//! MQTT 5 features end to end, black box, from the MQTT 5.0 specification (OASIS
//! Standard, 7 March 2019; normative statements cited as `[MQTT-x.y.z-n]`, other
//! requirements by section): rumqttc's `v5` client for round trips, raw bytes
//! ([`wire`], [`decode`]) where the exact wire matters, and clients no one here wrote ([`clients`]:
//! Python paho-mqtt and the npm `mqtt` package).
//!
//! * [`properties`]: PUBLISH and will properties forwarded to MQTT 5 subscribers
//!   (§3.3.2.3, §3.1.3.2);
//! * [`expiry`]: the Message Expiry Interval: the remaining interval is sent, an expired
//!   message is not delivered (§3.3.2.3.3);
//! * [`subscribe_options`]: Subscription Identifiers (§3.8.2.1.2, §3.3.4) and Retain As
//!   Published (§3.8.3.1, §3.3.1.3);
//! * [`aliases`]: Topic Aliases from the client and to it (§3.3.2.3.4, §3.3.4);
//! * [`reasons`]: Reason Strings on PUBACK / PUBREC / DISCONNECT and Request Problem
//!   Information (§3.1.2.11.7), Payload Format Indicator 0x99, a DISCONNECT setting a
//!   Session Expiry after 0 (§3.14.2.2.2);
//! * [`durable`]: durable sessions keeping all of these for queued and resent messages.
//!
//! Every broker binds `127.0.0.1:0`; every wait is bounded ([`support::WAIT`]); the only
//! sleeps are the real seconds an expiry needs.

mod support;

#[path = "mqtt5_features/aliases.rs"]
mod aliases;
#[path = "mqtt5_features/clients.rs"]
mod clients;
#[path = "mqtt5_features/decode.rs"]
mod decode;
#[path = "mqtt5_features/durable.rs"]
mod durable;
#[path = "mqtt5_features/expiry.rs"]
mod expiry;
#[path = "mqtt5_features/properties.rs"]
mod properties;
#[path = "mqtt_raw/mod.rs"]
mod raw;
#[path = "mqtt5_features/reasons.rs"]
mod reasons;
#[path = "mqtt5_features/subscribe_options.rs"]
mod subscribe_options;
#[path = "mqtt5_features/wire.rs"]
mod wire;

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, ConnectReturnCode, Packet, PubAckReason, Publish, PublishProperties,
    SubscribeProperties, SubscribeReasonCode,
};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use support::{TestBroker, WAIT};
use tokio::sync::mpsc::UnboundedReceiver;

/// A connected rumqttc MQTT 5 client whose event loop runs in the background, forwarding
/// its events until the connection fails (it is not reconnected).
struct V5 {
    client: AsyncClient,
    events: UnboundedReceiver<Event>,
    connack: ConnAck,
}

impl V5 {
    /// Connects `id` (keep alive 30 s, clean start); `configure` adjusts the options.
    async fn connect(
        broker: &TestBroker,
        id: &str,
        configure: impl FnOnce(&mut MqttOptions),
    ) -> V5 {
        let mut options = MqttOptions::new(id, broker.mqtt.ip().to_string(), broker.mqtt.port());
        options.set_keep_alive(Duration::from_secs(30));
        configure(&mut options);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        let connack = tokio::time::timeout(WAIT, async {
            loop {
                match events.recv().await {
                    Some(Event::Incoming(Packet::ConnAck(c))) => return c,
                    Some(_) => {}
                    None => panic!("{id}: the connection failed before its CONNACK"),
                }
            }
        })
        .await
        .expect("a CONNACK in time");
        assert_eq!(connack.code, ConnectReturnCode::Success, "{id} connects");
        V5 {
            client,
            events,
            connack,
        }
    }

    /// The next incoming packet `pick` accepts, bounded by [`WAIT`].
    async fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(&Packet) -> Option<T>) -> T {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(Event::Incoming(packet)) => {
                        if let Some(found) = pick(&packet) {
                            return found;
                        }
                    }
                    Some(Event::Outgoing(_)) => {}
                    None => panic!("the connection ended while waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// The next PUBLISH received (rumqttc has resolved its topic alias, if any).
    async fn next_publish(&mut self) -> Publish {
        self.expect("a PUBLISH", |p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Subscribes to `filter` with `properties`; panics unless the SUBACK grants `qos`.
    async fn subscribe(&mut self, filter: &str, qos: QoS, properties: Option<SubscribeProperties>) {
        match properties {
            Some(p) => self.client.subscribe_with_properties(filter, qos, p).await,
            None => self.client.subscribe(filter, qos).await,
        }
        .unwrap();
        let codes = self
            .expect("a SUBACK", |p| match p {
                Packet::SubAck(s) => Some(s.return_codes.clone()),
                _ => None,
            })
            .await;
        assert_eq!(
            codes,
            [SubscribeReasonCode::Success(qos)],
            "{filter} granted"
        );
    }

    /// Publishes at QoS 1 with `properties` and returns the PUBACK's reason.
    async fn publish_qos1(
        &mut self,
        topic: &str,
        retain: bool,
        payload: impl Into<bytes::Bytes>,
        properties: PublishProperties,
    ) -> PubAckReason {
        self.client
            .publish_with_properties(topic, QoS::AtLeastOnce, retain, payload, properties)
            .await
            .unwrap();
        self.expect("a PUBACK", |p| match p {
            Packet::PubAck(a) => Some(a.reason),
            _ => None,
        })
        .await
    }
}

/// The payload of a rumqttc PUBLISH as text.
fn text(publish: &Publish) -> String {
    String::from_utf8_lossy(&publish.payload).into_owned()
}

/// The topic of a rumqttc PUBLISH as text.
fn topic(publish: &Publish) -> String {
    String::from_utf8_lossy(&publish.topic).into_owned()
}
