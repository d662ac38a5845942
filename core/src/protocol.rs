//! The `Protocol` trait (DESIGN.md §8): how a wire protocol plugs into the broker.
//!
//! A protocol is handed connections by a transport ([`crate::transport`]): a byte stream
//! (TCP, later TLS) or an upgraded WebSocket. It runs the connection to its end: it opens a
//! [`crate::Session`], turns frames into [`crate::Request`]s, and turns responses and
//! [`crate::Outbound`] messages into frames. The transport has already spawned the
//! connection's task; the protocol does its own handshake under a timeout.

use std::net::SocketAddr;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::pipeline::Core;

/// A byte stream a protocol can serve: a TCP stream, a TLS stream, an upgraded HTTP
/// connection.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

/// A server-side WebSocket after the HTTP upgrade.
pub type WebSocket = tokio_tungstenite::WebSocketStream<BoxIo>;

/// A wire protocol. Both methods default to closing the connection with a log line, so a
/// protocol implements only the transports it supports.
#[async_trait]
pub trait Protocol: Send + Sync + 'static {
    /// The protocol's name, for logs and [`crate::SessionInfo::protocol`].
    fn name(&self) -> &'static str;

    /// Serves one byte-stream connection until it ends. Must watch
    /// [`Core::shutdown_token`] and tell the client before closing on shutdown.
    async fn serve_io(&self, core: Core, io: BoxIo, peer: SocketAddr) {
        let _ = (core, io);
        tracing::warn!(%peer, protocol = self.name(), "protocol does not serve byte streams; closing");
    }

    /// Serves one WebSocket connection until it ends. Must watch
    /// [`Core::shutdown_token`] and tell the client before closing on shutdown.
    async fn serve_websocket(&self, core: Core, ws: WebSocket, peer: SocketAddr) {
        let _ = (core, ws);
        tracing::warn!(%peer, protocol = self.name(), "protocol does not serve WebSockets; closing");
    }
}
