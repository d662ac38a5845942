//! The plain TCP accept loop.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::Limits;
use crate::pipeline::Core;
use crate::protocol::Protocol;

/// Accepts TCP connections on `listener` and hands each to `protocol` in its own task,
/// until [`Core::shutdown_token`] is cancelled. Returns once it stops accepting;
/// connection tasks go on in [`Core::tasks`].
pub async fn run_tcp(
    listener: TcpListener,
    protocol: Arc<dyn Protocol>,
    core: Core,
    limits: Limits,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let shutdown = core.shutdown_token().clone();
    while let Some((stream, peer, permit)) =
        super::next_connection(&listener, &permits, &shutdown).await
    {
        let span = tracing::info_span!("conn", protocol = protocol.name(), %peer);
        let (protocol, core2) = (protocol.clone(), core.clone());
        core.tasks().spawn(
            async move {
                let stream = super::metered::Metered::new(stream, &core2);
                protocol.serve_io(core2, Box::new(stream), peer).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}
