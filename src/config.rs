//! The broker's configuration: TOML file, environment (`PATHMQ_*`) and command line, over
//! the embedded defaults of DESIGN.md §9.
//!
//! ```toml
//! name = "pathmq"
//!
//! [http]                       # native protocol (WebSocket at / and /primus),
//! enabled = true               # MQTT over WebSocket at /mqtt, /ping, /version
//! listen = "127.0.0.1:55000"
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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pathmq_core::security::{LockoutConfig, Profile, Profiles};
use serde::Deserialize;

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
    /// The native protocol over TCP with length-prefixed frames (DESIGN.md §5), for
    /// backend services. Off by default.
    pub native_tcp: NativeTcpListener,
    /// Where records are stored.
    pub storage: Storage,
    /// Users, groups and permissions (DESIGN.md §7). Off by default.
    pub security: SecurityConfig,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Logging.
    pub log: Log,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: "pathmq".into(),
            http: Listener::default(),
            mqtt: MqttListener::default(),
            native_tcp: NativeTcpListener::default(),
            storage: Storage::default(),
            security: SecurityConfig::default(),
            limits: Limits::default(),
            log: Log::default(),
        }
    }
}

/// The HTTP listener: whether it runs and where.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Listener {
    /// Whether the listener runs. Default true.
    pub enabled: bool,
    /// The address to bind; port 0 picks a free port. Default `127.0.0.1:55000`.
    pub listen: SocketAddr,
}

impl Default for Listener {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 55000)),
        }
    }
}

/// Security (DESIGN.md §7, docs/SECURITY.md): off by default for local development.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// Switch security on: every MQTT and native client must log in, and every request
    /// is checked against the user's permissions. Default false.
    pub secure: bool,
    /// The `_ADMIN` user's password, set when `_ADMIN` is first created (later starts
    /// keep the stored one). Required when `secure` is true; prefer the
    /// `PATHMQ_ADMIN_PASSWORD` environment variable to writing it in a file.
    pub admin_password: Option<String>,
    /// bcrypt cost of password hashes (4–31). Default 10.
    pub bcrypt_cost: u32,
    /// Store permissions with their users and groups (reference: `persistPermissions`).
    /// Default true; false keeps permission changes in memory only.
    pub persist_permissions: bool,
    /// The token signing secret, at least 32 bytes (`PATHMQ_TOKEN_SECRET`). Default: one
    /// generated at first start and stored with the data, so tokens survive restarts.
    pub token_secret: Option<String>,
    /// How long a token is valid when the session's profile sets no `ttl`, in ms. Default
    /// 86400000 (24 h).
    pub token_ttl_ms: u64,
    /// A login with a token gets a new token, and the old one is revoked (ending the
    /// sessions still using it). Default false.
    pub rolling_tokens: bool,
    /// `_ANONYMOUS` may log in without a password (reference: ANONYMOUS USER); the user is
    /// created, with no permissions, when missing. Default false.
    pub allow_anonymous_access: bool,
    /// `_ADMIN` may log in only in process, never over the network (reference:
    /// `disableDefaultAdminNetworkConnections`). Default false.
    pub disable_default_admin_network_connections: bool,
    /// Failed password logins that lock an account; 0 for no lockout. Default 4.
    pub lockout_attempts: u32,
    /// How long a locked account stays locked after its last failure, in ms (also the
    /// window failures are counted in). Default 600000 (10 minutes).
    pub lockout_retry_ms: u64,
    /// Session profiles, first match wins (reference: SECURITY PROFILES;
    /// docs/SECURITY.md): `[[security.profiles]]` tables with `name`, `session` (criteria
    /// over the session) and `policy` (`ttl`, `inactivity_threshold`, `usage_limit`,
    /// `permissions`, `sourceIPWhitelist`, `max_connections`).
    pub profiles: Vec<Profile>,
    /// The name of the token cookie `/auth/login` sets and HTTP routes read (reference:
    /// `cookieName`). Default `pathmq_token`.
    pub cookie_name: String,
    /// The broker is reached over HTTPS (through a TLS-terminating proxy): the token
    /// cookie is named `<cookie_name>_https` and marked `Secure` (reference:
    /// `httpsCookie`). Default false.
    pub https_cookie: bool,
    /// A TOML file of extra users checked by the `auth-file` provider
    /// (`plugins/auth-file`: usernames, bcrypt hashes, groups, custom data) after the
    /// directory. Default none.
    pub auth_file: Option<std::path::PathBuf>,
    /// Nested permissions (reference: `allowNestedPermissions`): a wildcard read or
    /// subscription over paths the user may reach only in part is allowed, and answers or
    /// delivers only those paths. Default false (it must be allowed whole).
    pub allow_nested_permissions: bool,
    /// How long a native connection may stay without logging in before it is closed
    /// (reference: `unconfiguredSessionCleanup` threshold), in ms; only when `secure`
    /// (otherwise `limits.handshake_timeout_ms` applies). MQTT logs in with its CONNECT,
    /// under `limits.handshake_timeout_ms`. Default 30000.
    pub login_timeout_ms: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            secure: false,
            admin_password: None,
            bcrypt_cost: 10,
            persist_permissions: true,
            token_secret: None,
            token_ttl_ms: 86_400_000,
            rolling_tokens: false,
            allow_anonymous_access: false,
            disable_default_admin_network_connections: false,
            lockout_attempts: 4,
            lockout_retry_ms: 600_000,
            profiles: Vec::new(),
            cookie_name: "pathmq_token".into(),
            https_cookie: false,
            auth_file: None,
            allow_nested_permissions: false,
            login_timeout_ms: 30_000,
        }
    }
}

impl SecurityConfig {
    /// The core's security settings from these.
    pub fn core(&self) -> pathmq_core::security::SecurityConfig {
        let mut core = pathmq_core::security::SecurityConfig::default();
        core.token_secret = self.token_secret.clone();
        core.token_ttl = std::time::Duration::from_millis(self.token_ttl_ms);
        core.rolling_tokens = self.rolling_tokens;
        core.profiles = self.profiles.clone();
        core.lockout = (self.lockout_attempts > 0).then(|| LockoutConfig {
            attempts: self.lockout_attempts,
            retry: std::time::Duration::from_millis(self.lockout_retry_ms),
        });
        core.disable_default_admin_network_connections =
            self.disable_default_admin_network_connections;
        core.allow_anonymous_access = self.allow_anonymous_access;
        core.nested_permissions = self.allow_nested_permissions;
        core
    }
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("secure", &self.secure)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "***"),
            )
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("persist_permissions", &self.persist_permissions)
            .field("token_secret", &self.token_secret.as_ref().map(|_| "***"))
            .field("token_ttl_ms", &self.token_ttl_ms)
            .field("rolling_tokens", &self.rolling_tokens)
            .field("allow_anonymous_access", &self.allow_anonymous_access)
            .field(
                "disable_default_admin_network_connections",
                &self.disable_default_admin_network_connections,
            )
            .field("lockout_attempts", &self.lockout_attempts)
            .field("lockout_retry_ms", &self.lockout_retry_ms)
            .field("profiles", &self.profiles)
            .field("cookie_name", &self.cookie_name)
            .field("https_cookie", &self.https_cookie)
            .field("auth_file", &self.auth_file)
            .field("allow_nested_permissions", &self.allow_nested_permissions)
            .field("login_timeout_ms", &self.login_timeout_ms)
            .finish()
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
}

impl Default for NativeTcpListener {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 55001)),
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

    /// Checks ranges that types cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |key, value: u64| {
            if value == 0 {
                Err(ConfigError::Invalid {
                    key,
                    problem: "must be greater than 0".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("limits.max_connections", self.limits.max_connections as u64)?;
        positive(
            "mqtt.max_queued_messages",
            self.mqtt.max_queued_messages as u64,
        )?;
        if self.security.secure
            && self
                .security
                .admin_password
                .as_deref()
                .unwrap_or("")
                .is_empty()
        {
            return Err(ConfigError::Invalid {
                key: "security.admin_password",
                problem: "security.secure is true, so an admin password is required: set \
                          PATHMQ_ADMIN_PASSWORD (or security.admin_password in the config file)"
                    .into(),
            });
        }
        if !(4..=31).contains(&self.security.bcrypt_cost) {
            return Err(ConfigError::Invalid {
                key: "security.bcrypt_cost",
                problem: format!("must be from 4 to 31, not {}", self.security.bcrypt_cost),
            });
        }
        if self
            .security
            .token_secret
            .as_ref()
            .is_some_and(|s| s.len() < 32)
        {
            return Err(ConfigError::Invalid {
                key: "security.token_secret",
                problem: "must be at least 32 bytes (or unset: one is generated)".into(),
            });
        }
        positive("security.token_ttl_ms", self.security.token_ttl_ms)?;
        positive("security.login_timeout_ms", self.security.login_timeout_ms)?;
        if self.security.lockout_attempts > 0 {
            positive("security.lockout_retry_ms", self.security.lockout_retry_ms)?;
        }
        let cookie_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        let cookie_name = &self.security.cookie_name;
        if cookie_name.is_empty() || !cookie_name.chars().all(cookie_char) {
            return Err(ConfigError::Invalid {
                key: "security.cookie_name",
                problem: format!(
                    "`{cookie_name}` is not a cookie name: use letters, digits, `-`, `_`, `.` (RFC 6265)"
                ),
            });
        }
        if let Err(error) = Profiles::new(self.security.profiles.clone()) {
            return Err(ConfigError::Invalid {
                key: "security.profiles",
                problem: error.to_string(),
            });
        }
        positive(
            "limits.handshake_timeout_ms",
            self.limits.handshake_timeout_ms,
        )?;
        positive("limits.session_queue", self.limits.session_queue as u64)?;
        positive("limits.ack_timeout_ms", self.limits.ack_timeout_ms)?;
        positive("limits.max_payload", self.limits.max_payload as u64)?;
        if self.limits.max_payload > MAX_PAYLOAD_LIMIT {
            return Err(ConfigError::Invalid {
                key: "limits.max_payload",
                problem: format!(
                    "{} is over {MAX_PAYLOAD_LIMIT} bytes (256 MiB, the MQTT packet maximum)",
                    self.limits.max_payload
                ),
            });
        }
        if self.mqtt.max_packet_size < 64 || self.mqtt.max_packet_size > 268_435_455 {
            return Err(ConfigError::Invalid {
                key: "mqtt.max_packet_size",
                problem: format!(
                    "{} is outside 64..=268435455 bytes (the MQTT maximum)",
                    self.mqtt.max_packet_size
                ),
            });
        }
        if self.mqtt.sys_interval_s > MAX_SYS_INTERVAL_S {
            return Err(ConfigError::Invalid {
                key: "mqtt.sys_interval_s",
                problem: format!(
                    "{} is over {MAX_SYS_INTERVAL_S} seconds (a day); 0 turns $SYS topics off",
                    self.mqtt.sys_interval_s
                ),
            });
        }
        if self.name.is_empty() {
            return Err(ConfigError::Invalid {
                key: "name",
                problem: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_profiles_read_from_toml() {
        let c = Config::from_toml(
            r#"
            [security]
            lockout_attempts = 0
            [[security.profiles]]
            name = "devices"
            session = { "user.groups.devices" = { "$exists" = true } }
            policy = { max_connections = 3, inactivity_threshold = "10 minutes" }
            [[security.profiles]]
            name = "web"
            session = { type = { "$eq" = 0 } }
            policy = { ttl = 3600000, sourceIPWhitelist = ["127.0.0.1"] }
            "#,
        )
        .unwrap();
        let profiles = &c.security.profiles;
        assert_eq!(profiles[0].policy.max_connections, Some(3));
        assert_eq!(
            profiles[0].policy.inactivity_threshold,
            Some(std::time::Duration::from_secs(600))
        );
        assert_eq!(
            profiles[1].policy.ttl,
            Some(std::time::Duration::from_secs(3600))
        );
        assert!(c.security.core().lockout.is_none());
        let bad = Config::from_toml(
            "[[security.profiles]]\nname = \"x\"\nsession = { a = { \"$fly\" = 1 } }\n",
        );
        assert!(bad.unwrap_err().to_string().contains("security.profiles"));
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:55000");
        assert_eq!(c.mqtt.listen.to_string(), "127.0.0.1:1883");
        assert_eq!(c.storage.path, PathBuf::from("./pathmq-data/pathmq.redb"));
        assert_eq!(c.storage.engine, Engine::Redb);
    }

    #[test]
    fn keys_override_defaults() {
        let c = Config::from_toml(
            "[mqtt]\nlisten = \"0.0.0.0:1884\"\n[storage]\nengine = \"memory\"\n",
        )
        .unwrap();
        assert_eq!(c.mqtt.listen.port(), 1884);
        assert!(c.mqtt.enabled);
        assert_eq!(c.storage.engine, Engine::Memory);
    }

    #[test]
    fn a_table_with_only_some_keys_keeps_the_other_defaults() {
        let c = Config::from_toml("[http]\nenabled = false\n").unwrap();
        assert!(!c.http.enabled);
        assert_eq!(c.http.listen.port(), 55000);
        let c = Config::from_toml("[limits]\nheartbeat_interval_ms = 0\n").unwrap();
        assert_eq!(c.limits.heartbeat_interval_ms, 0, "0 turns heartbeats off");
    }

    #[test]
    fn bad_config_names_the_key() {
        let err = Config::from_toml("[mqtt]\nlisten = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
        let err = Config::from_toml("[limits]\nsesion_queue = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sesion_queue"), "{err}");
        let err = Config::from_toml("[limits]\nsession_queue = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.session_queue"), "{err}");
        let err = Config::from_toml("[limits]\nmax_payload = 300000000\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.max_payload"), "{err}");
        let err = Config::from_toml("[storage]\nengine = \"mongo\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mongo"), "{err}");
    }

    #[test]
    fn sys_interval_defaults_to_ten_seconds_and_zero_turns_it_off() {
        assert_eq!(Config::from_toml("").unwrap().mqtt.sys_interval_s, 10);
        let c = Config::from_toml("[mqtt]\nsys_interval_s = 0\n").unwrap();
        assert_eq!(c.mqtt.sys_interval_s, 0);
        let err = Config::from_toml("[mqtt]\nsys_interval_s = 86401\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mqtt.sys_interval_s"), "{err}");
    }

    #[test]
    fn the_token_cookie_is_configurable() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.security.cookie_name, "pathmq_token");
        assert!(!c.security.https_cookie);
        let c = Config::from_toml(
            "[security]\ncookie_name = \"myCookie\"\nhttps_cookie = true\n\
             [[security.profiles]]\nname = \"http\"\nsession = {type = 0}\n\
             policy = {usage_limit = 1000, inactivity_threshold = \"30m\"}\n",
        )
        .unwrap();
        assert_eq!(c.security.cookie_name, "myCookie");
        assert!(c.security.https_cookie);
        for bad in ["", "a b", "a;b", "a=b"] {
            let toml = format!("[security]\ncookie_name = \"{bad}\"\n");
            let err = Config::from_toml(&toml).unwrap_err().to_string();
            assert!(err.contains("security.cookie_name"), "{bad}: {err}");
        }
    }
}
