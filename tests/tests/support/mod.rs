//! The one helper every end-to-end test starts its broker with: a broker on
//! `127.0.0.1:0` (MQTT and HTTP), clients connected to it, and bounded waits.
#![allow(dead_code, unreachable_pub)]

pub mod pki;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use pathmq::RunningBroker;
use pathmq::config::{Config, Engine};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// A broker on loopback with ephemeral ports.
pub struct TestBroker {
    pub broker: RunningBroker,
    pub mqtt: SocketAddr,
    pub http: SocketAddr,
}

/// A config for tests: listeners on loopback port 0, memory store, short shutdown; adjust
/// it before [`start_with`].
pub fn loopback_config() -> Config {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.engine = Engine::Memory;
    config.limits.shutdown_timeout_ms = 2_000;
    config
}

/// The config of a secure broker on loopback (memory store): `_ADMIN`'s password is
/// `admin_password`, bcrypt cost 4 (fast), and no account lockout (tests try wrong
/// passwords; lockout has its own tests).
pub fn secure_config(admin_password: &str) -> Config {
    let mut config = loopback_config();
    config.security.secure = true;
    config.security.admin_password = Some(admin_password.into());
    config.security.bcrypt_cost = 4;
    config.security.lockout_attempts = 0;
    config
}

/// A broker with an in-memory store.
pub async fn start() -> TestBroker {
    start_with(loopback_config()).await
}

/// A broker with a redb store at `file`.
pub async fn start_redb(file: &Path) -> TestBroker {
    let mut config = loopback_config();
    config.storage.engine = Engine::Redb;
    config.storage.path = file.to_owned();
    start_with(config).await
}

/// A broker from a config (its listen addresses should use port 0).
pub async fn start_with(config: Config) -> TestBroker {
    start_builder(pathmq::Broker::builder().config(config)).await
}

/// A broker from a builder (for layers).
pub async fn start_builder(builder: pathmq::Broker) -> TestBroker {
    let broker = builder.start().await.expect("broker starts");
    TestBroker {
        mqtt: broker.mqtt_addr().expect("mqtt listener"),
        http: broker.http_addr().expect("http listener"),
        broker,
    }
}

impl TestBroker {
    /// Waits (bounded by [`WAIT`]) until the broker holds more than `before` live
    /// subscriptions: an external client (`mosquitto_sub`) has subscribed.
    pub async fn subscribed_beyond(&self, before: usize) {
        tokio::time::timeout(WAIT, async {
            while self.broker.core().stats().subscriptions <= before {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the client never subscribed");
    }

    /// A rumqttc 3.1.1 client and its event loop.
    pub fn mqtt_v4(&self, client_id: &str) -> (rumqttc::AsyncClient, rumqttc::EventLoop) {
        let mut options =
            rumqttc::MqttOptions::new(client_id, self.mqtt.ip().to_string(), self.mqtt.port());
        options.set_keep_alive(Duration::from_secs(30));
        rumqttc::AsyncClient::new(options, 64)
    }

    /// A rumqttc MQTT 5 client and its event loop.
    pub fn mqtt_v5(&self, client_id: &str) -> (rumqttc::v5::AsyncClient, rumqttc::v5::EventLoop) {
        let mut options =
            rumqttc::v5::MqttOptions::new(client_id, self.mqtt.ip().to_string(), self.mqtt.port());
        options.set_keep_alive(Duration::from_secs(30));
        rumqttc::v5::AsyncClient::new(options, 64)
    }

    /// A native-protocol WebSocket client, logged in.
    pub async fn native(&self) -> Native {
        Native::connect(&format!("ws://{}/", self.http)).await
    }
}

/// Drives a rumqttc 3.1.1 event loop until `pick` returns something, bounded by [`WAIT`].
pub async fn poll_v4<T>(
    eventloop: &mut rumqttc::EventLoop,
    mut pick: impl FnMut(&rumqttc::Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = eventloop.poll().await.expect("mqtt v4 connection");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("timed out waiting for an MQTT 3.1.1 event")
}

/// Drives a rumqttc MQTT 5 event loop until `pick` returns something, bounded by [`WAIT`].
pub async fn poll_v5<T>(
    eventloop: &mut rumqttc::v5::EventLoop,
    mut pick: impl FnMut(&rumqttc::v5::Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = eventloop.poll().await.expect("mqtt v5 connection");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("timed out waiting for an MQTT 5 event")
}

/// The incoming PUBLISH of a 3.1.1 event, if it is one.
pub fn v4_publish(event: &rumqttc::Event) -> Option<rumqttc::Publish> {
    match event {
        rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => Some(p.clone()),
        _ => None,
    }
}

/// Whether a 3.1.1 event is the SUBACK.
pub fn v4_suback(event: &rumqttc::Event) -> Option<()> {
    matches!(event, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))).then_some(())
}

/// The incoming PUBLISH of an MQTT 5 event, if it is one.
pub fn v5_publish(event: &rumqttc::v5::Event) -> Option<rumqttc::v5::mqttbytes::v5::Publish> {
    match event {
        rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::Publish(p)) => {
            Some(p.clone())
        }
        _ => None,
    }
}

/// Whether an MQTT 5 event is the SUBACK.
pub fn v5_suback(event: &rumqttc::v5::Event) -> Option<()> {
    matches!(
        event,
        rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::SubAck(_))
    )
    .then_some(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A native-protocol client over tokio-tungstenite, speaking the happn_4 envelope.
pub struct Native {
    ws: Socket,
    next_id: u64,
    /// Events that arrived while waiting for a response.
    pending: std::collections::VecDeque<Value>,
}

impl Native {
    /// Connects to `url` and runs `configure-session` and `login` (a broker with security
    /// off takes any login).
    pub async fn connect(url: &str) -> Native {
        let mut native = Native::open(url).await;
        native
            .request("login", None, json!({}), None)
            .await
            .expect("login");
        native
    }

    /// Connects to `url` and runs `configure-session`, without logging in.
    pub async fn open(url: &str) -> Native {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket connect timed out")
            .expect("websocket connects");
        let mut native = Native {
            ws,
            next_id: 0,
            pending: Default::default(),
        };
        native
            .request(
                "configure-session",
                None,
                json!({"protocol": "happn_4"}),
                None,
            )
            .await
            .expect("configure-session");
        native
    }

    /// Sends a raw text frame.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// Sends a request; returns the whole response frame, or the error meta as `Err`.
    pub async fn request(
        &mut self,
        action: &str,
        path: Option<&str>,
        data: Value,
        options: Option<Value>,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut frame = json!({"action": action, "eventId": id, "data": data});
        if let Some(path) = path {
            frame["path"] = json!(path);
        }
        if let Some(options) = options {
            frame["options"] = options;
        }
        self.send_raw(&frame.to_string()).await;
        self.response(id).await
    }

    /// Waits for the response to `event_id`, keeping events for [`Native::next_event`].
    pub async fn response(&mut self, event_id: u64) -> Result<Value, Value> {
        loop {
            let frame = self.next_frame().await;
            let meta = match &frame {
                Value::Array(items) => items.last().cloned().unwrap_or_default(),
                other => other["_meta"].clone(),
            };
            if meta["type"] == "response" && meta["eventId"] == json!(event_id) {
                return if meta["status"] == "error" {
                    Err(meta)
                } else {
                    Ok(frame)
                };
            }
            if meta["type"] == "data" {
                self.pending.push_back(frame);
            }
        }
    }

    /// `set` a value at `path`.
    pub async fn set(&mut self, path: &str, data: Value) -> Value {
        self.request("set", Some(path), data, None)
            .await
            .expect("set succeeds")
    }

    /// `get` `path` (an exact path or a glob).
    pub async fn get(&mut self, path: &str) -> Value {
        self.request("get", Some(path), Value::Null, None)
            .await
            .expect("get succeeds")
    }

    /// `on` `/ALL@<path>`; returns the response.
    pub async fn on(&mut self, path: &str) -> Value {
        let channel = format!("/ALL@{path}");
        self.request(
            "on",
            Some(&channel),
            Value::Null,
            Some(json!({"event_type": "all", "count": 0})),
        )
        .await
        .expect("on succeeds")
    }

    /// The next event frame, bounded by [`WAIT`].
    pub async fn next_event(&mut self) -> Value {
        if let Some(event) = self.pending.pop_front() {
            return event;
        }
        loop {
            let frame = self.next_frame().await;
            if frame["_meta"]["type"] == "data" {
                return frame;
            }
        }
    }

    /// Whether an event arrives within `within`.
    pub async fn event_within(&mut self, within: Duration) -> Option<Value> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        tokio::time::timeout(within, self.next_event()).await.ok()
    }

    /// The next JSON frame, answering heartbeats; bounded by [`WAIT`].
    pub async fn next_frame(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection open")
                .expect("websocket frame");
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).expect("frames are JSON");
            if let Some(ping) = value
                .as_str()
                .and_then(|s| s.strip_prefix("primus::ping::"))
            {
                let pong = json!(format!("primus::pong::{ping}")).to_string();
                self.send_raw(&pong).await;
                continue;
            }
            return value;
        }
    }
}

/// Polls a 3.1.1 event loop in the background, forwarding its events, so a client can
/// publish while the test waits on another one.
pub fn spawn_v4(
    mut eventloop: rumqttc::EventLoop,
) -> tokio::sync::mpsc::UnboundedReceiver<rumqttc::Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a forwarded event that `pick` accepts, bounded by [`WAIT`].
pub async fn expect_v4<T>(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<rumqttc::Event>,
    mut pick: impl FnMut(&rumqttc::Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("mqtt v4 connection ended");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("timed out waiting for an MQTT 3.1.1 event")
}

/// The reason code of an MQTT 5 DISCONNECT packet (asserting that it is one, with a
/// reason string or not).
pub fn disconnect_reason(packet: &[u8]) -> u8 {
    assert_eq!(
        packet.first(),
        Some(&0xE0),
        "not a DISCONNECT: {packet:02x?}"
    );
    assert!(
        packet.len() >= 3 && packet[1] < 0x80,
        "unexpected DISCONNECT: {packet:02x?}"
    );
    packet[2]
}
