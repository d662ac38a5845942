//! pathmq MQTT: MQTT 3.1.1 and 5 (and 3.1, protocol name `MQIsdp`) for the pathmq broker,
//! over TCP and WebSocket (DESIGN.md §2–§6).
//!
//! [`Mqtt`] implements [`pathmq_core::Protocol`]. Each connection runs in one task
//! (`connection/`): the CONNECT handshake under a timeout, then one `select!` loop over the
//! client's bytes, the session's outbound queue, the keepalive timer and shutdown, the same
//! for TCP and WebSocket (`transport.rs`). The packet codec is the `mqttbytes` crate
//! (`v4/` and `v5/` adapt it to the version-neutral vocabulary of `packet.rs`); the broker
//! logic is here; the data model is the core's. Protocol violations are [`ProtocolError`]s,
//! each naming its spec clause and mapped to one reason code.
//!
//! | MQTT | core |
//! |---|---|
//! | PUBLISH, retain, payload | [`Request::Set`](pathmq_core::Request::Set) (stored) |
//! | PUBLISH, retain, empty payload | [`Request::Remove`](pathmq_core::Request::Remove) of the exact path |
//! | PUBLISH, no retain | `Request::Set` with `no_store` |
//! | topic `a/b` | path `/a/b` ([`Path::from_topic`](pathmq_core::Path::from_topic)) |
//! | SUBSCRIBE filter | [`Request::On`](pathmq_core::Request::On) with [`Pattern::mqtt`](pathmq_core::Pattern::mqtt), then stored records as retained messages |
//! | UNSUBSCRIBE filter | [`Off::Pattern`](pathmq_core::Off::Pattern) |
//! | MQTT 5 user properties | custom meta |
//!
//! Delivery: one PUBLISH per event per session, at min(publish QoS, highest granted QoS of
//! the session's matching subscriptions), with the payload bytes exactly as stored; MQTT 5
//! subscribers also get the meta as user properties and, for JSON payloads,
//! `content_type: application/json`. Retained messages are sent at min(granted QoS, 1):
//! records do not keep the QoS they were published with.
//!
//! Will messages are published through the core like a PUBLISH from their client when
//! its connection ends without a normal DISCONNECT (`connection/will.rs`); a client may
//! keep alive at most [`MqttConfig::max_keepalive`] (MQTT 5: Server Keep Alive). See
//! docs/MQTT.md.
//!
//! Not yet: durable sessions (clean session 0 / session expiry are accepted, session
//! present is always 0, so a will's delay ends with the connection), topic aliases (Topic
//! Alias Maximum 0), shared subscriptions (`0x9E`), subscription identifiers (`0xA1`),
//! message expiry and the other PUBLISH (and will) properties but user properties,
//! retain-as-published, extended authentication. Topic names holding `*` are refused (`0x90`):
//! in pathmq `*` is the data wildcard, so the core does not accept it in a path.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pathmq_core::{Core, transport};
//! use pathmq_mqtt::{Mqtt, MqttConfig};
//!
//! # async fn run(core: Core) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:1883").await?;
//! let mqtt = Arc::new(Mqtt::new(MqttConfig::default()));
//! transport::run_tcp(listener, mqtt, core, transport::Limits::default()).await;
//! # Ok(())
//! # }
//! ```

mod alias;
mod codec;
mod config;
mod connection;
mod error;
mod inflight;
mod packet;
mod transport;
mod v4;
mod v5;

use pathmq_core::Peer;

use async_trait::async_trait;
use pathmq_core::{BoxIo, Core, Protocol, WebSocket};

pub use config::MqttConfig;
pub use error::{ProtocolError, ReasonCode};

use transport::{StreamTransport, WebSocketTransport};

/// The MQTT protocol (`"mqtt"`): serves byte streams (TCP, TLS) with
/// [`Protocol::serve_io`] and MQTT over WebSocket (binary messages, subprotocol `mqtt`)
/// with [`Protocol::serve_websocket`], through the same connection state machine.
#[derive(Debug, Clone, Default)]
pub struct Mqtt {
    config: MqttConfig,
}

impl Mqtt {
    /// The protocol with `config`.
    pub fn new(config: MqttConfig) -> Self {
        Self { config }
    }

    /// Its settings.
    pub fn config(&self) -> &MqttConfig {
        &self.config
    }
}

#[async_trait]
impl Protocol for Mqtt {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    async fn serve_io(&self, core: Core, io: BoxIo, peer: Peer) {
        connection::serve(StreamTransport::new(io), core, &self.config, peer).await;
    }

    async fn serve_websocket(&self, core: Core, ws: WebSocket, peer: Peer) {
        connection::serve(WebSocketTransport::new(ws), core, &self.config, peer).await;
    }
}
