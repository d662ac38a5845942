//! Storage, limits and logging.

use std::path::PathBuf;

use serde::Deserialize;

/// The storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// redb, embedded, durable (the default).
    Redb,
    /// In memory: nothing survives a restart.
    Memory,
}

/// Where records are stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Storage {
    /// The engine. Default redb.
    pub engine: Engine,
    /// The redb file. Default `./pathmq-data/pathmq.redb`; its folder is created.
    pub path: PathBuf,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            engine: Engine::Redb,
            path: PathBuf::from("./pathmq-data/pathmq.redb"),
        }
    }
}

/// What a full session queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// Drop the new message, count and log it.
    DropNew,
    /// Drop the oldest queued message (count and log it) and queue the new one.
    DropOldest,
    /// Disconnect the slow session.
    Disconnect,
}

/// Limits and timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Most open connections per listener. Default 100,000.
    pub max_connections: usize,
    /// Time a client has for its handshake, in ms. Default 10,000.
    pub handshake_timeout_ms: u64,
    /// Capacity of each session's outbound queue, in messages. Default 10,000 (slots use memory only while filled: about 64 bytes each plus the event, whose payload all recipients share).
    pub session_queue: usize,
    /// Capacity of each session's outbound queue in payload bytes, like `session_queue`
    /// (beyond it publishers wait, beyond twice it `overflow` applies); 0: no byte limit.
    /// Default 0.
    pub session_queue_bytes: usize,
    /// What a session queue that is twice full, or stalled, does with a new message
    /// (`drop-new`, `drop-oldest`, `disconnect`); also what a disconnected durable MQTT
    /// session's queue does beyond `mqtt.max_queued_*` (`disconnect` drops new there).
    /// Default `drop-new`.
    pub overflow: Overflow,
    /// How long a publisher is held back, at most, while a subscriber's queue is beyond
    /// its capacity, in ms. Default 5,000.
    pub backpressure_timeout_ms: u64,
    /// How long a publication with consistency ACKNOWLEDGED waits for its recipients'
    /// `ack`s before its writer is told which did not answer, in ms. Default 30000.
    pub ack_timeout_ms: u64,
    /// Largest payload accepted, in bytes. Default 1,048,576.
    pub max_payload: usize,
    /// Interval of native-protocol heartbeat pings, in ms; 0 turns them off. Default 30,000.
    pub heartbeat_interval_ms: u64,
    /// How long shutdown waits for connections to close, in ms. Default 5,000.
    pub shutdown_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            handshake_timeout_ms: 10_000,
            session_queue: 10_000,
            session_queue_bytes: 0,
            overflow: Overflow::DropNew,
            backpressure_timeout_ms: 5_000,
            ack_timeout_ms: 30_000,
            max_payload: 1024 * 1024,
            heartbeat_interval_ms: 30_000,
            shutdown_timeout_ms: 5_000,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Log {
    /// Output format. Default text.
    pub format: LogFormat,
    /// A tracing filter directive. Default `"info"`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}
