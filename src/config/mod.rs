//! The broker's configuration: TOML file, environment (`PATHMQ_*`) and command line, over
//! the embedded defaults of DESIGN.md §9.
//!
//! ```toml
//! name = "pathmq"
//!
//! [http]                       # native protocol (WebSocket at / and /primus),
//! enabled = true               # MQTT over WebSocket at /mqtt, REST at /api, /metrics
//! listen = "127.0.0.1:55000"
//! tls = false                  # HTTPS and WSS with the [tls] certificate
//!
//! [mqtt]
//! enabled = true
//! listen = "127.0.0.1:1883"
//! max_packet_size = 1049600    # bytes
//! sys_interval_s = 10          # $SYS/broker/... statistics; 0: off
//! max_keepalive_s = 65535      # longest client keep alive; 0: no maximum
//! max_session_expiry_s = 4294967295 # longest session expiry; 0: no durable sessions
//! max_queued_messages = 1000   # QoS 1/2 messages kept per disconnected session
//! max_queued_bytes = 0         # their payload bytes; 0: no limit
//! topic_alias_maximum = 10     # MQTT 5 topic aliases a client may set; 0: none
//!
//! [mqtt_tls]                   # MQTT over TLS, same settings as [mqtt]
//! enabled = false
//! listen = "127.0.0.1:8883"
//!
//! [native_tcp]                 # native protocol, length-prefixed JSON frames
//! enabled = false
//! listen = "127.0.0.1:55001"
//! tls = false
//!
//! [tls]                        # the certificate of every TLS listener
//! cert_path = "./pathmq-data/tls/cert.pem" # default: beside the store; created
//! key_path = "./pathmq-data/tls/key.pem"   # self-signed when both are missing
//! # cert = "-----BEGIN CERTIFICATE-----…"  # or the PEM text itself
//! client_ca_path = "ca.pem"    # verify client certificates (mTLS); default: not asked
//! require_client_certificate = false
//! use_identity_as_username = false # the certificate's CN is the MQTT username
//!
//! [token]                      # the token protocol (docs/TOKEN.md), off by default
//! enabled = false
//! listen = "127.0.0.1:8090"
//! tls = true                   # with the [tls] certificate; clients need a certificate
//! inbound = "/tokens/{{username}}/in"   # a token is published here ({{username}}: its CN)
//! replies = "/tokens/{{username}}/out"  # events here go back as tokens
//!
//! [storage]
//! engine = "redb"              # or "memory" (nothing survives a restart)
//! path = "./pathmq-data/pathmq.redb"
//!
//! [limits]
//! max_connections = 100000     # per listener
//! handshake_timeout_ms = 10000
//! session_queue = 10000        # messages per session's outbound queue
//! session_queue_bytes = 0      # payload bytes per session's queue; 0: no limit
//! overflow = "drop-new"        # or "drop-oldest", "disconnect": for a queue twice full or stalled
//! backpressure_timeout_ms = 5000 # publishers wait this long at most for room
//! ack_timeout_ms = 30000        # consistency ACKNOWLEDGED: wait this long for acks
//! max_payload = 1048576        # bytes
//! heartbeat_interval_ms = 30000 # native protocol pings
//! shutdown_timeout_ms = 5000
//!
//! [log]
//! format = "text"              # or "json"
//! level = "info"               # a tracing filter, e.g. "info,pathmq_mqtt=debug"
//! ```

mod limits;
mod listeners;
mod plugins;
mod security;
mod tls;
mod validate;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use limits::{Engine, Limits, Log, LogFormat, Overflow, Storage};
pub use listeners::{Listener, MqttListener, NativeTcpListener};
pub use plugins::PluginsConfig;
pub use security::SecurityConfig;
pub use tls::{MqttTlsListener, TlsConfig};

/// The largest `limits.max_payload` accepted, in bytes: the MQTT packet maximum.
pub const MAX_PAYLOAD_LIMIT: usize = 268_435_455;

/// The largest `mqtt.sys_interval_s` accepted: a day.
pub const MAX_SYS_INTERVAL_S: u64 = 86_400;

/// Why a configuration was refused. The message names the key and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or has the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("config key `{key}`: {problem}")]
    Invalid {
        /// The dotted key, e.g. `limits.session_queue`.
        key: &'static str,
        /// What is wrong with its value.
        problem: String,
    },
}

/// The whole configuration. `Default` is the embedded defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The broker's name, as `describe` reports it. Default `"pathmq"`.
    pub name: String,
    /// The HTTP listener.
    pub http: Listener,
    /// The MQTT TCP listener.
    pub mqtt: MqttListener,
    /// MQTT over TLS (same MQTT settings as `mqtt`). Off by default.
    pub mqtt_tls: MqttTlsListener,
    /// The native protocol over TCP with length-prefixed frames (DESIGN.md §5), for
    /// backend services. Off by default.
    pub native_tcp: NativeTcpListener,
    /// Where records are stored.
    pub storage: Storage,
    /// Users, groups and permissions (DESIGN.md §7). Off by default.
    pub security: SecurityConfig,
    /// The certificate of the TLS listeners, and client certificates.
    pub tls: TlsConfig,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Middleware plugins enabled from the config file (rate limits, validation).
    pub plugins: PluginsConfig,
    /// The token protocol of `reference/token-server.md` (`protocols/token`,
    /// docs/TOKEN.md): length-prefixed tokens over TLS with client certificates. Off by
    /// default.
    pub token: pathmq_token::TokenConfig,
    /// Logging.
    pub log: Log,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: "pathmq".into(),
            http: Listener::default(),
            mqtt: MqttListener::default(),
            mqtt_tls: MqttTlsListener::default(),
            native_tcp: NativeTcpListener::default(),
            storage: Storage::default(),
            security: SecurityConfig::default(),
            tls: TlsConfig::default(),
            limits: Limits::default(),
            plugins: PluginsConfig::default(),
            token: pathmq_token::TokenConfig::default(),
            log: Log::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults (keys left out keep their default).
    ///
    /// # Errors
    /// [`ConfigError::Read`], [`ConfigError::Parse`] (unknown key, wrong type: the message
    /// names the key and line), [`ConfigError::Invalid`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text over the defaults.
    ///
    /// # Errors
    /// As [`Config::from_file`]; `path` in a `Parse` error is `<text>`.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
