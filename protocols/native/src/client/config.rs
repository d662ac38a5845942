//! Settings of the remote [`Client`](super::Client): where to connect, how to log in,
//! timeouts and reconnection ([`ClientConfig`]).

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

/// Where the broker's native protocol is served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// A WebSocket URL, `ws://host:port/` (pathmq also serves `/primus`). One JSON text
    /// message per frame.
    WebSocket(String),
    /// A TCP address, `host:port`: each JSON frame preceded by its length as a 4-byte
    /// big-endian integer (DESIGN.md §5).
    Tcp(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WebSocket(url) => f.write_str(url),
            Self::Tcp(address) => write!(f, "tcp://{address}"),
        }
    }
}

/// A username and password for `login`. Its `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// How a lost connection is re-established: attempts `min_delay`, `2 × min_delay`, …
/// apart, at most `max_delay` (exponential backoff, no jitter). Each attempt opens a new
/// connection, logs in again and subscribes every live listener again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Whether to reconnect at all. Default true.
    pub enabled: bool,
    /// The wait before the first attempt. Default 500 ms.
    pub min_delay: Duration,
    /// The longest wait between attempts. Default 30 s.
    pub max_delay: Duration,
    /// Give up (and close the client) after this many failed attempts; `None` (default)
    /// never gives up. A login refused with 401 or 403 always gives up.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// No reconnecting: a lost connection closes the client.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Reconnecting with backoff from `min_delay` to `max_delay`.
    pub fn backoff(min_delay: Duration, max_delay: Duration) -> Self {
        Self {
            min_delay,
            max_delay,
            ..Self::default()
        }
    }

    /// The wait before attempt `attempt` (from 1): `min_delay × 2^(attempt-1)`, at most
    /// `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.min_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Settings of a remote [`Client`](super::Client). Make one with
/// [`ClientConfig::websocket`] or [`ClientConfig::tcp`], then set fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// The login; `None` (default) logs in without credentials, which a broker with
    /// security off accepts.
    pub credentials: Option<Credentials>,
    /// A token from an earlier login (`docs/SECURITY.md`, "Logging in, and tokens"): the
    /// login sends it instead of `credentials`. After each login the client logs in
    /// again, on reconnect, with the token the broker answered last ([`Client::token`]).
    ///
    /// [`Client::token`]: super::Client::token
    pub token: Option<String>,
    /// What the client says about itself at login (`info`); the broker keeps it with
    /// the session. Default empty.
    pub info: Map<String, Value>,
    /// How long opening a connection may take: TCP connect, WebSocket upgrade,
    /// `configure-session` and `login`. Default 10 s.
    pub connect_timeout: Duration,
    /// How long a request waits for its answer. Default 30 s.
    pub request_timeout: Duration,
    /// A connection on which nothing (not even a heartbeat) arrives for this long is
    /// taken as lost. Default 45 s (the happn-3 client's `pingTimeout`; the broker pings
    /// every 30 s by default). `Duration::ZERO` turns the check off.
    pub ping_timeout: Duration,
    /// Reconnection after a lost connection.
    pub reconnect: ReconnectPolicy,
    /// The largest frame accepted from the broker, in bytes. Default 64 MiB.
    pub max_frame: usize,
    /// How many events each listener holds before new ones are dropped for it. Default
    /// 1,024.
    pub listener_buffer: usize,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("info", &self.info)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("ping_timeout", &self.ping_timeout)
            .field("reconnect", &self.reconnect)
            .field("max_frame", &self.max_frame)
            .field("listener_buffer", &self.listener_buffer)
            .finish()
    }
}

impl ClientConfig {
    /// Settings for the broker's WebSocket at `url` (`ws://127.0.0.1:55000/`).
    pub fn websocket(url: impl Into<String>) -> Self {
        Self::new(Endpoint::WebSocket(url.into()))
    }

    /// Settings for the broker's length-prefixed TCP listener at `address`
    /// (`127.0.0.1:55001`).
    pub fn tcp(address: impl Into<String>) -> Self {
        Self::new(Endpoint::Tcp(address.into()))
    }

    fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            credentials: None,
            token: None,
            info: Map::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(45),
            reconnect: ReconnectPolicy::default(),
            max_frame: 64 * 1024 * 1024,
            listener_buffer: 1024,
        }
    }

    /// Logs in as `username` with `password`.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Logs in with a token from an earlier login (for example one fetched with a
    /// password by another program).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let policy = ReconnectPolicy::backoff(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<u128> = (1..=6).map(|a| policy.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(1));
        assert_eq!(policy.delay(0), Duration::from_millis(100));
    }

    #[test]
    fn credentials_hide_the_password() {
        let config = ClientConfig::tcp("127.0.0.1:1").credentials("ann", "secret");
        assert!(!format!("{config:?}").contains("secret"));
        assert_eq!(config.endpoint.to_string(), "tcp://127.0.0.1:1");
    }
}
