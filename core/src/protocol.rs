//! The `Protocol` trait (DESIGN.md §8): how a wire protocol plugs into the broker.
//!
//! A protocol is handed connections by a transport ([`crate::transport`]): a byte stream
//! (TCP or TLS) or an upgraded WebSocket (over HTTP or HTTPS), with the [`Peer`]: its
//! address and, on TLS, what the handshake told about the client. It runs the connection to its end: it opens a
//! [`crate::Session`], turns frames into [`crate::Request`]s, and turns responses and
//! [`crate::Outbound`] messages into frames. The transport has already spawned the
//! connection's task; the protocol does its own handshake under a timeout.
//!
//! A protocol may also hand the HTTP listener a few static resources to serve
//! ([`Protocol::http_resources`]), such as the script of its browser client.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::pipeline::Core;
use crate::transport::TlsPeer;

/// Who is at the other end of a connection a transport hands a protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// What the TLS handshake told about the client, on a TLS listener (its certificate's
    /// CN, the username to use for it); `None` on a plain one.
    pub tls: Option<Arc<TlsPeer>>,
}

impl Peer {
    /// A peer at `addr` on a plain (not TLS) connection.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, tls: None }
    }

    /// The same peer, with what its TLS handshake told.
    pub fn with_tls(mut self, tls: TlsPeer) -> Self {
        self.tls = Some(Arc::new(tls));
        self
    }

    /// The username the transport vouches for: a verified client certificate's CN on a
    /// listener that uses it as the username (`use_identity_as_username`).
    pub fn certificate_username(&self) -> Option<&str> {
        self.tls.as_deref().and_then(|tls| tls.username.as_deref())
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

/// A byte stream a protocol can serve: a TCP stream, a TLS stream, an upgraded HTTP
/// connection.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

/// A server-side WebSocket after the HTTP upgrade.
pub type WebSocket = tokio_tungstenite::WebSocketStream<BoxIo>;

/// A static resource a protocol serves on the HTTP listener: fixed bytes at a fixed path,
/// answered to `GET` and `HEAD` (e.g. the native protocol's browser client script at
/// `/browser_client`).
///
/// The listener sends the bytes with the content type, an `ETag` derived from the bytes
/// and `Cache-Control: no-cache`, so a browser keeps its copy and revalidates it with a
/// `304 Not Modified` until the broker serves different bytes.
///
/// ```
/// use pathmq_core::HttpResource;
///
/// let script = HttpResource::new("/client.js", "application/javascript", "console.log(1)");
/// assert_eq!(script.path, "/client.js");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpResource {
    /// The request path, starting with `/` (the query string is ignored when matching).
    pub path: Cow<'static, str>,
    /// The `Content-Type` header, e.g. `application/javascript; charset=utf-8`.
    pub content_type: Cow<'static, str>,
    /// The body.
    pub body: Bytes,
}

impl HttpResource {
    /// The resource at `path` with `content_type` and `body`.
    pub fn new(
        path: impl Into<Cow<'static, str>>,
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            path: path.into(),
            content_type: content_type.into(),
            body: body.into(),
        }
    }
}

/// A wire protocol. Both serving methods default to closing the connection with a log
/// line, so a protocol implements only the transports it supports.
#[async_trait]
pub trait Protocol: Send + Sync + 'static {
    /// The protocol's name, for logs and [`crate::SessionInfo::protocol`].
    fn name(&self) -> &'static str;

    /// Static resources to serve on the HTTP listener this protocol is routed on
    /// ([`crate::transport::run_http`] asks each of its routes' protocols once, at start).
    /// Default: none.
    ///
    /// A path the listener already answers (`/`, `/ping`, `/version`, `/metrics`), or one
    /// an earlier route's protocol already gave, is not served again: the listener logs a
    /// warning and keeps the first.
    fn http_resources(&self) -> Vec<HttpResource> {
        Vec::new()
    }

    /// Serves one byte-stream connection until it ends. Must watch
    /// [`Core::shutdown_token`] and tell the client before closing on shutdown.
    async fn serve_io(&self, core: Core, io: BoxIo, peer: Peer) {
        let _ = (core, io);
        tracing::warn!(%peer, protocol = self.name(), "protocol does not serve byte streams; closing");
    }

    /// Serves one WebSocket connection until it ends. Must watch
    /// [`Core::shutdown_token`] and tell the client before closing on shutdown.
    async fn serve_websocket(&self, core: Core, ws: WebSocket, peer: Peer) {
        let _ = (core, ws);
        tracing::warn!(%peer, protocol = self.name(), "protocol does not serve WebSockets; closing");
    }
}
