//! pathmq's native protocol (DESIGN.md §5): JSON requests, responses and events in the
//! envelope of the happn-3 wire protocol (`happn_4`, `reference/happn-3-wire.md`), close
//! enough that the published happn-3 client connects unchanged.
//!
//! Two transports carry exactly the same protocol, through one session state machine:
//!
//! * WebSocket ([`Protocol::serve_websocket`]): one JSON text message per frame, with the
//!   Primus heartbeat (`"primus::ping::<ms>"` / `"primus::pong::<ms>"`). Register it at
//!   [`WEBSOCKET_PATHS`] (`/`, and `/primus` where the happn-3 client connects).
//! * byte streams ([`Protocol::serve_io`], TCP via `transport::run_tcp`): each JSON frame
//!   preceded by its length as a 4-byte big-endian integer.
//!
//! The HTTP listener also serves the browser client, [`BROWSER_CLIENT`], at
//! [`BROWSER_CLIENT_PATHS`] ([`Protocol::http_resources`]): a dependency-free script with
//! the happn-3 client's API that speaks this protocol over WebSocket at `/`.
//!
//! | module | job |
//! |---|---|
//! | `connection` | the connection struct and its `run` loop |
//! | `heartbeat` | the Primus heartbeat: pings, and when a silent client is gone |
//! | `inflight` | a connection's requests in flight, and the rule that keeps their effects in order |
//! | `transport`, `codec` | WebSocket messages or length-prefixed frames in and out |
//! | `envelope` | inbound frames → heartbeat or request |
//! | `session`, `data`, `subscribe` | requests → core calls → answer frames |
//! | `response`, `frame` | answer frames; event, system and heartbeat frames |
//! | `client` | the Rust clients: [`client::Client`] (WebSocket or TCP) and [`client::LocalClient`] (in process), one [`client::DataApi`] |
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use pathmq_core::transport::{self, Limits, WebSocketRoute};
//! use pathmq_core::{Core, Protocol};
//! use pathmq_native::{Native, NativeConfig, WEBSOCKET_PATHS};
//!
//! # async fn run() -> std::io::Result<()> {
//! let core = Core::builder(pathmq_storage::MemoryStore::new()).build();
//! let native: Arc<dyn Protocol> = Arc::new(Native::new(NativeConfig::default()));
//! let routes = WEBSOCKET_PATHS
//!     .iter()
//!     .map(|path| WebSocketRoute {
//!         path: (*path).to_owned(),
//!         subprotocol: None,
//!         protocol: native.clone(),
//!     })
//!     .collect();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:55000").await?;
//! transport::run_http(listener, routes, core, Limits::default()).await;
//! # Ok(())
//! # }
//! ```

pub mod client;
mod codec;
mod connection;
mod data;
mod envelope;
mod error;
mod frame;
mod heartbeat;
mod inflight;
mod response;
mod session;
mod subscribe;
mod transport;

use pathmq_core::Peer;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pathmq_core::{BoxIo, Core, HttpResource, Protocol, WebSocket, async_trait};

use crate::connection::Connection;
use crate::transport::Transport;

/// The WebSocket paths the native protocol is served at: `/`, and `/primus`, where the
/// happn-3 client connects (it adds `?_primuscb=…`, which routing ignores).
pub const WEBSOCKET_PATHS: [&str; 2] = ["/", "/primus"];

/// The browser client (`protocols/native/browser/pathmq-client.js`): a script without
/// dependencies that defines `PathmqClient`, with the happn-3 client's API over this
/// protocol. Its header comment documents it.
pub const BROWSER_CLIENT: &str = include_str!("../browser/pathmq-client.js");

/// Where the HTTP listener serves [`BROWSER_CLIENT`] (the happn-3 server serves its
/// client at `/browser_client`).
pub const BROWSER_CLIENT_PATHS: [&str; 2] = ["/browser_client", "/browser_client.js"];

/// Settings of the native protocol. `Default` gives the documented defaults; set fields
/// on a default value to change them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NativeConfig {
    /// How often the server sends a heartbeat (`"primus::ping::<ms>"`), on both
    /// transports. Default 30 s (Primus `pingInterval`). `Duration::ZERO` turns
    /// heartbeats off.
    pub heartbeat_interval: Duration,
    /// How many heartbeats in a row may pass with nothing from the client before the
    /// connection is closed. Any frame counts, not only the pong. Default 1 (happn-3
    /// `allowSkippedHeartBeats`): a silent client is closed about two intervals after the
    /// last ping it did not answer.
    pub allowed_skipped_heartbeats: u32,
    /// The largest inbound frame accepted, in bytes (a TCP frame without its prefix, a
    /// WebSocket message). A larger frame is answered with a 413 error and skipped; the
    /// connection stays open. Default 10 MiB (10,485,760; Primus `maxLength`). The HTTP
    /// transport's `Limits::max_websocket_message` caps WebSocket messages before this.
    pub max_frame: usize,
    /// How long a connection may go without a successful `login` before it is closed
    /// (with a `server-side-disconnect` saying why): sockets that never log in do not
    /// hold a connection slot for ever (DESIGN.md §7). Default 10 s; `Duration::ZERO`
    /// turns it off.
    pub login_timeout: Duration,
    /// How long writing one batch of frames to the client may take before the connection
    /// is dropped as broken: a client that stops reading cannot hold its task, its session
    /// and its connection slot. Default 10 s.
    pub write_timeout: Duration,
    /// How many requests of one connection may be in flight at once (sent by the client,
    /// not yet answered). Requests are started in the order they arrive and answered in
    /// that order; consecutive stored `set`s share the store's group commits. At the
    /// limit, the connection reads no more frames until an answer is sent: that is the
    /// backpressure on a client that pipelines faster than the broker answers. Default
    /// 256; 0 is taken as 1 (one request at a time).
    pub max_in_flight: usize,
    /// The name of the token cookie the HTTP listener reads (`security.cookie_name`,
    /// with its `_https` suffix when configured): a secure broker names it as
    /// `cookieName` in `describe` and `login` answers, so browser clients (the happn-3
    /// client, `/browser_client`) write the cookie HTTP routes read. Default
    /// `pathmq_token`.
    pub cookie_name: String,
}

impl Default for NativeConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(30),
            allowed_skipped_heartbeats: 1,
            max_frame: 10 * 1024 * 1024,
            login_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_in_flight: 256,
            cookie_name: "pathmq_token".into(),
        }
    }
}

/// The native protocol, to register with the transports (`run_http` routes at
/// [`WEBSOCKET_PATHS`], `run_tcp`). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Native {
    config: Arc<NativeConfig>,
}

impl Native {
    /// The native protocol with `config`.
    pub fn new(config: NativeConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &NativeConfig {
        &self.config
    }
}

#[async_trait]
impl Protocol for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    /// The browser client script at [`BROWSER_CLIENT_PATHS`].
    fn http_resources(&self) -> Vec<HttpResource> {
        BROWSER_CLIENT_PATHS
            .iter()
            .map(|path| {
                HttpResource::new(
                    *path,
                    "application/javascript; charset=utf-8",
                    Bytes::from_static(BROWSER_CLIENT.as_bytes()),
                )
            })
            .collect()
    }

    /// Serves length-prefixed JSON frames on a byte stream until the client leaves or the
    /// broker shuts down (clients are sent `server-side-disconnect` first).
    async fn serve_io(&self, core: Core, io: BoxIo, peer: Peer) {
        let transport = Transport::stream(io, self.config.max_frame);
        Connection::serve(core, transport, peer.addr, &self.config).await;
    }

    /// Serves JSON text messages on an upgraded WebSocket until the client leaves or the
    /// broker shuts down (clients are sent `server-side-disconnect` first).
    async fn serve_websocket(&self, core: Core, ws: WebSocket, peer: Peer) {
        let transport = Transport::WebSocket {
            ws: Box::new(ws),
            max: self.config.max_frame,
        };
        Connection::serve(core, transport, peer.addr, &self.config).await;
    }
}
