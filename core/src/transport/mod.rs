//! Transports (DESIGN.md §2): accept loops that hand connections to protocols.
//!
//! Each accept loop takes a connection permit before accepting (STYLE 9), backs off on
//! accept errors without ever ending, spawns one tracked task per connection with its own
//! tracing span, and stops accepting when [`crate::Core::shutdown_token`] is cancelled.
//! Handshakes happen inside the connection task, under a timeout, never in the loop.

mod http;
mod metered;
mod tcp;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

pub use http::{
    HttpConfig, HttpContext, HttpHandler, HttpResponse, HttpRoute, WebSocketRoute, run_http,
    serve_http,
};
pub use tcp::{run_tcp, run_tls};
pub use tls::{PemSource, TlsAcceptor, TlsError, TlsPeer, TlsSettings, self_signed};

/// Limits shared by the accept loops.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// The most connections one listener keeps open at once; further clients wait in the
    /// kernel's backlog. Default 100,000.
    pub max_connections: usize,
    /// How long a client has to finish its handshake (HTTP upgrade, MQTT CONNECT, native
    /// login). Default 10 s.
    pub handshake_timeout: Duration,
    /// The largest WebSocket message accepted, in bytes. Default 16 MiB.
    pub max_websocket_message: usize,
    /// How much a WebSocket connection reads at once, in bytes; the buffer is allocated
    /// (and zeroed) per connection, so it is most of an idle WebSocket's memory.
    /// Default 4 KiB (tungstenite's own default is 128 KiB).
    pub websocket_read_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            handshake_timeout: Duration::from_secs(10),
            max_websocket_message: 16 * 1024 * 1024,
            websocket_read_buffer: 4 * 1024,
        }
    }
}

/// The accept step both loops share: take a connection permit (STYLE 9), then accept,
/// retrying transient errors (EMFILE, ECONNABORTED) with a capped backoff instead of
/// ending the loop, and set `TCP_NODELAY`. `None` once shutdown begins.
async fn next_connection(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let permit = tokio::select! {
        () = shutdown.cancelled() => return None,
        permit = permits.clone().acquire_owned() => permit.ok()?,
    };
    let mut backoff = Duration::from_millis(5);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, %peer, "set_nodelay failed");
                    }
                    return Some((stream, peer, permit));
                }
                Err(error) => {
                    tracing::warn!(%error, backoff_ms = backoff.as_millis() as u64, "accept failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}
