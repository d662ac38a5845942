//! The listeners: HTTP (native WebSocket, MQTT over WebSocket, REST), MQTT over TCP, and
//! the native protocol over TCP.

use std::net::SocketAddr;

use serde::Deserialize;

/// The HTTP listener: whether it runs and where.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Listener {
    /// Whether the listener runs. Default true.
    pub enabled: bool,
    /// The address to bind; port 0 picks a free port. Default `127.0.0.1:55000`.
    pub listen: SocketAddr,
    /// Serve HTTPS and WSS (instead of HTTP and WS) with the `[tls]` certificate. The
    /// token cookie is then marked `Secure`. Default false.
    pub tls: bool,
    /// How long an idle keep-alive HTTP connection (REST, `/metrics`) stays open, and how
    /// long a client has to send a request's headers, in ms; 0: one request per
    /// connection (WebSocket connections are not affected once upgraded). Default 30,000.
    pub keepalive_timeout_ms: u64,
}

impl Default for Listener {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 55000)),
            tls: false,
            keepalive_timeout_ms: 30_000,
        }
    }
}

/// The native protocol's TCP listener: JSON frames with a 4-byte big-endian length
/// prefix (`docs/PROTOCOL.md`, transports).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct NativeTcpListener {
    /// Whether the listener runs. Default false.
    pub enabled: bool,
    /// The address to bind. Default `127.0.0.1:55001`.
    pub listen: SocketAddr,
    /// Serve TLS with the `[tls]` certificate. Default false.
    pub tls: bool,
}

impl Default for NativeTcpListener {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 55001)),
            tls: false,
        }
    }
}

/// The MQTT listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MqttListener {
    /// Whether the listener runs. Default true.
    pub enabled: bool,
    /// The address to bind. Default `127.0.0.1:1883`.
    pub listen: SocketAddr,
    /// The largest MQTT packet accepted, in bytes. Default 1,049,600 (1 MiB payload plus
    /// headers).
    pub max_packet_size: usize,
    /// How often the `$SYS/broker/...` statistics topics are published, in seconds
    /// (docs/MQTT.md); 0 turns them off. Default 10, as Mosquitto. They reach every
    /// protocol's subscribers (MQTT over WebSocket, native `/$SYS/**`), so they run even
    /// when this TCP listener is disabled. At most 86,400 (a day).
    pub sys_interval_s: u64,
    /// The longest keep alive a client may use, in seconds; 0: no maximum. MQTT 5 clients
    /// asking for more (or 0) are told this value (Server Keep Alive); 3.1.x clients asking
    /// for more are refused (return code 2). Default 65,535, as Mosquitto's
    /// `max_keepalive` (docs/MQTT.md).
    pub max_keepalive_s: u16,
    /// The longest session expiry interval, in seconds (docs/MQTT.md, Sessions): 3.1.1
    /// clients with clean session 0 get it, MQTT 5 clients get at most it; 0 turns
    /// durable sessions off. Default 4,294,967,295 (`u32::MAX`): sessions never expire,
    /// as Mosquitto's default.
    pub max_session_expiry_s: u32,
    /// The most QoS 1/2 messages a disconnected durable session queues; beyond it new
    /// messages are dropped, counted and logged. Default 1,000 (Mosquitto's
    /// `max_queued_messages`).
    pub max_queued_messages: usize,
    /// The most payload bytes a disconnected durable session queues; 0: no byte limit.
    /// Default 0 (as Mosquitto's `max_queued_bytes`).
    pub max_queued_bytes: usize,
    /// How many MQTT 5 topic aliases a client may set per connection (the CONNACK's
    /// Topic Alias Maximum); 0: none. Default 10 (as Mosquitto's `max_topic_alias`).
    pub topic_alias_maximum: u16,
}

impl Default for MqttListener {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            max_packet_size: 1024 * 1024 + 1024,
            sys_interval_s: 10,
            max_keepalive_s: u16::MAX,
            max_session_expiry_s: u32::MAX,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            topic_alias_maximum: 10,
        }
    }
}
