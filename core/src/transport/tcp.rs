//! The plain TCP and the TLS accept loops.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::Limits;
use super::tls::TlsAcceptor;
use crate::pipeline::Core;
use crate::protocol::{Peer, Protocol};

/// Accepts TCP connections on `listener` and hands each to `protocol` in its own task,
/// until [`Core::shutdown_token`] is cancelled. Returns once it stops accepting;
/// connection tasks go on in [`Core::tasks`].
pub async fn run_tcp(
    listener: TcpListener,
    protocol: Arc<dyn Protocol>,
    core: Core,
    limits: Limits,
) {
    run(listener, None, protocol, core, limits).await;
}

/// [`run_tcp`] over TLS: each connection's task first runs the TLS handshake with
/// `tls` under [`Limits::handshake_timeout`] (a failed or slow handshake closes that
/// connection only, logged at debug), then hands the decrypted stream and the
/// [`TlsPeer`](super::TlsPeer) in [`Peer::tls`] to `protocol`.
pub async fn run_tls(
    listener: TcpListener,
    tls: TlsAcceptor,
    protocol: Arc<dyn Protocol>,
    core: Core,
    limits: Limits,
) {
    run(listener, Some(tls), protocol, core, limits).await;
}

async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    protocol: Arc<dyn Protocol>,
    core: Core,
    limits: Limits,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let shutdown = core.shutdown_token().clone();
    let transport = if tls.is_some() { "tls" } else { "tcp" };
    while let Some((stream, peer, permit)) =
        super::next_connection(&listener, &permits, &shutdown).await
    {
        let span = tracing::info_span!("conn", protocol = protocol.name(), transport, %peer);
        let (protocol, core2, tls) = (protocol.clone(), core.clone(), tls.clone());
        let timeout = limits.handshake_timeout;
        core.tasks().spawn(
            async move {
                let stream = super::metered::Metered::new(stream, &core2);
                match tls {
                    None => {
                        protocol
                            .serve_io(core2, Box::new(stream), Peer::new(peer))
                            .await
                    }
                    // Boxed: a plain connection's task stays small (idle memory).
                    Some(tls) => match Box::pin(tls.accept(stream, timeout)).await {
                        Ok((stream, tls_peer)) => {
                            let peer = Peer::new(peer).with_tls(tls_peer);
                            protocol.serve_io(core2, Box::new(stream), peer).await;
                        }
                        Err(error) => tracing::debug!(%error, "TLS handshake failed"),
                    },
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}
