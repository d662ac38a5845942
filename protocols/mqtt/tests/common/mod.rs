//! The shared test helper: a broker on `127.0.0.1:0` (TCP, optionally HTTP/WebSocket),
//! rumqttc clients whose events arrive on a channel, and a raw-byte MQTT client.
//!
//! Every wait is bounded by [`TIMEOUT`]; nothing sleeps to synchronise.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use pathmq_core::Core;
use pathmq_core::transport::{self, Limits, WebSocketRoute};
use pathmq_mqtt::{Mqtt, MqttConfig};
use pathmq_storage::MemoryStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How long any single wait in a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A running broker; shut down when dropped.
pub struct Broker {
    pub core: Core,
    /// MQTT over TCP.
    pub addr: SocketAddr,
    /// HTTP with MQTT over WebSocket at `/mqtt`.
    pub http_addr: SocketAddr,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.core.begin_shutdown();
    }
}

/// A broker with the default MQTT settings.
pub async fn start() -> Broker {
    start_with(MqttConfig::default()).await
}

/// A broker with `config`, on a fresh in-memory store.
pub async fn start_with(config: MqttConfig) -> Broker {
    let core = Core::builder(MemoryStore::new()).build();
    let mqtt = Arc::new(Mqtt::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(transport::run_tcp(
        listener,
        mqtt.clone(),
        core.clone(),
        Limits::default(),
    ));
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    let route = WebSocketRoute {
        path: "/mqtt".into(),
        subprotocol: Some("mqtt".into()),
        protocol: mqtt,
    };
    tokio::spawn(transport::run_http(
        http,
        vec![route],
        core.clone(),
        Limits::default(),
    ));
    Broker {
        core,
        addr,
        http_addr,
    }
}

/// Awaits `future` for at most [`TIMEOUT`].
pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// What a client's event loop reported: its incoming packets, then the error that
/// stopped it.
pub struct Incoming<P> {
    rx: mpsc::UnboundedReceiver<Result<P, String>>,
}

impl<P: std::fmt::Debug> Incoming<P> {
    /// The next incoming packet.
    pub async fn next(&mut self) -> P {
        match within("an incoming packet", self.rx.recv()).await {
            Some(Ok(packet)) => packet,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    /// Skips packets until `pick` returns `Some`.
    pub async fn until<R>(&mut self, mut pick: impl FnMut(&P) -> Option<R>) -> R {
        loop {
            let packet = self.next().await;
            if let Some(r) = pick(&packet) {
                return r;
            }
        }
    }

    /// Skips packets until the event loop fails; returns its error.
    pub async fn error(&mut self) -> String {
        loop {
            match within("the connection to fail", self.rx.recv()).await {
                Some(Ok(_)) => {}
                Some(Err(error)) => return error,
                None => panic!("event loop ended without an error"),
            }
        }
    }
}

/// A connected MQTT 3.1.1 rumqttc client (the CONNACK has been received).
pub async fn v4_client(
    broker: &Broker,
    id: &str,
) -> (rumqttc::AsyncClient, Incoming<rumqttc::Packet>) {
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", broker.addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(packet)) => {
                    if tx.send(Ok(packet)).is_err() {
                        return;
                    }
                }
                Ok(rumqttc::Event::Outgoing(_)) => {}
                Err(error) => {
                    let _ = tx.send(Err(error.to_string()));
                    return;
                }
            }
        }
    });
    let mut incoming = Incoming { rx };
    incoming
        .until(|p| matches!(p, rumqttc::Packet::ConnAck(_)).then_some(()))
        .await;
    (client, incoming)
}

/// An MQTT 5 rumqttc client; `configure` adjusts its options. Returns after CONNACK, which
/// is returned too.
pub async fn v5_client_with(
    broker: &Broker,
    id: &str,
    configure: impl FnOnce(&mut rumqttc::v5::MqttOptions),
) -> (
    rumqttc::v5::AsyncClient,
    Incoming<rumqttc::v5::mqttbytes::v5::Packet>,
    rumqttc::v5::mqttbytes::v5::ConnAck,
) {
    use rumqttc::v5::mqttbytes::v5::Packet;
    let mut options = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", broker.addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    configure(&mut options);
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 64);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::v5::Event::Incoming(packet)) => {
                    if tx.send(Ok(packet)).is_err() {
                        return;
                    }
                }
                Ok(rumqttc::v5::Event::Outgoing(_)) => {}
                Err(error) => {
                    let _ = tx.send(Err(error.to_string()));
                    return;
                }
            }
        }
    });
    let mut incoming = Incoming { rx };
    let connack = incoming
        .until(|p| match p {
            Packet::ConnAck(c) => Some(c.clone()),
            _ => None,
        })
        .await;
    (client, incoming, connack)
}

/// An MQTT 5 rumqttc client with default options.
pub async fn v5_client(
    broker: &Broker,
    id: &str,
) -> (
    rumqttc::v5::AsyncClient,
    Incoming<rumqttc::v5::mqttbytes::v5::Packet>,
) {
    let (client, incoming, _) = v5_client_with(broker, id, |_| {}).await;
    (client, incoming)
}

/// A client that speaks raw bytes, for conformance tests.
pub struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub async fn connect(broker: &Broker) -> Self {
        let stream = within("TCP connect", TcpStream::connect(broker.addr))
            .await
            .unwrap();
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next whole packet, or `None` when the server closed the connection.
    pub async fn packet(&mut self) -> Option<Vec<u8>> {
        within("a packet or close", async {
            loop {
                if let Some(len) = frame_len(&self.buf) {
                    return Some(self.buf.split_to(len).to_vec());
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
    }

    /// Asserts the server closes the connection without sending anything more.
    pub async fn expect_closed(&mut self) {
        assert_eq!(self.packet().await, None, "expected the server to close");
    }
}

/// The length of the whole packet at the start of `buf`, once it is complete.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for i in 1..5 {
        let byte = *buf.get(i)?;
        len |= usize::from(byte & 0x7F) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            return (buf.len() >= i + 1 + len).then_some(i + 1 + len);
        }
    }
    None
}

/// Splits a byte stream into whole packets.
pub fn packets(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(len) = frame_len(bytes) {
        out.push(bytes[..len].to_vec());
        bytes.advance(len);
    }
    out
}

/// Prefixes `body` with a fixed header (first byte and remaining length).
pub fn packet(byte1: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![byte1];
    let mut n = body.len();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A u16-length-prefixed string.
pub fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// A CONNECT with protocol `level` (4 or 5; 5 adds an empty property block), clean
/// session/start, and `keep_alive` seconds.
pub fn connect(level: u8, client_id: &str, keep_alive: u16) -> Vec<u8> {
    connect_flags(level, client_id, keep_alive, 0x02)
}

/// A CONNECT with explicit connect flags.
pub fn connect_flags(level: u8, client_id: &str, keep_alive: u16, flags: u8) -> Vec<u8> {
    let mut body = string(if level == 3 { "MQIsdp" } else { "MQTT" });
    body.push(level);
    body.push(flags);
    body.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        body.push(0);
    }
    body.extend(string(client_id));
    packet(0x10, &body)
}

/// A SUBSCRIBE (packet id `pkid`) of one filter; `level` 5 adds an empty property block.
pub fn subscribe(level: u8, pkid: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    if level == 5 {
        body.push(0);
    }
    body.extend(string(filter));
    body.push(qos);
    packet(0x82, &body)
}

/// A PUBLISH; `level` 5 adds an empty property block.
pub fn publish(
    level: u8,
    topic: &str,
    qos: u8,
    pkid: u16,
    retain: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = string(topic);
    if qos > 0 {
        body.extend_from_slice(&pkid.to_be_bytes());
    }
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1) | u8::from(retain), &body)
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
