//! A started broker: its addresses, its core, certificate reload, and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pathmq_core::Core;
use pathmq_core::security::Security;
use pathmq_core::transport::{TlsAcceptor, TlsError};
use tokio::task::JoinHandle;

/// A started broker. [`RunningBroker::shutdown`] stops it gracefully; dropping it stops
/// accepting and ends every session at once, without waiting or flushing.
pub struct RunningBroker {
    core: Core,
    /// Bound addresses by listener name (`mqtt`, `mqtt_tls`, `http`, `native_tcp`, and
    /// protocol listeners' names).
    addrs: HashMap<String, SocketAddr>,
    accept_loops: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
    tls: Option<TlsAcceptor>,
}

impl RunningBroker {
    pub(super) fn new(
        core: Core,
        addrs: HashMap<String, SocketAddr>,
        accept_loops: Vec<JoinHandle<()>>,
        shutdown_timeout: Duration,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        Self {
            core,
            addrs,
            accept_loops,
            shutdown_timeout,
            tls,
        }
    }

    /// The core, for in-process sessions (`core().open_session(..)`).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The security service of a secure broker (`None` when security is off): manage
    /// users, groups and permissions with `security().directory()`, revoke tokens with
    /// `revoke_token` (DESIGN.md §7: administration from the broker's own process only;
    /// docs/SECURITY.md).
    pub fn security(&self) -> Option<&Arc<Security>> {
        self.core().security()
    }

    /// A client of this broker in its own process (reference: `local_admin_client()`):
    /// the native client's API ([`pathmq_native::client::DataApi`]) over the core, with
    /// no socket and no JSON, logged in as `_ADMIN` on a secure broker
    /// ([`LocalClient::admin`](pathmq_native::client::LocalClient::admin)). Must be
    /// called inside a tokio runtime (its event task is spawned on it).
    pub fn local_admin_client(&self) -> pathmq_native::client::LocalClient {
        pathmq_native::client::LocalClient::admin(&self.core)
    }

    /// The bound MQTT address (with the real port when configured with port 0).
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.listener_addr("mqtt")
    }

    /// The bound MQTT over TLS address, when `mqtt_tls` is enabled.
    pub fn mqtt_tls_addr(&self) -> Option<SocketAddr> {
        self.listener_addr("mqtt_tls")
    }

    /// The bound HTTP/WebSocket address (HTTPS/WSS when `http.tls` is set).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.listener_addr("http")
    }

    /// The bound native TCP address, when `native_tcp` is enabled.
    pub fn native_tcp_addr(&self) -> Option<SocketAddr> {
        self.listener_addr("native_tcp")
    }

    /// The bound address of the listener named `name`: `mqtt`, `mqtt_tls`, `http`,
    /// `native_tcp`, or a [`ProtocolListener`](super::ProtocolListener)'s name.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.get(name).copied()
    }

    /// Reads the TLS certificate, key and client CA files again and serves them on every
    /// TLS listener's new handshakes; open connections keep theirs (the binary calls this
    /// on SIGHUP). `Ok(false)` when no listener uses TLS.
    ///
    /// # Errors
    /// [`TlsError`] when the files cannot be read or used; the certificate in use is kept.
    pub fn reload_tls(&self) -> Result<bool, TlsError> {
        match &self.tls {
            None => Ok(false),
            Some(tls) => tls.reload().map(|()| true),
        }
    }

    /// Shuts down gracefully: stops accepting, tells every client (MQTT 5 DISCONNECT 0x8B,
    /// native `server-side-disconnect`), waits up to the configured shutdown timeout for
    /// connections to close, then flushes and closes the store.
    pub async fn shutdown(mut self) {
        tracing::info!("shutting down");
        self.core.begin_shutdown();
        for task in std::mem::take(&mut self.accept_loops) {
            let _ = task.await;
        }
        let tasks = self.core.tasks();
        tasks.close();
        if tokio::time::timeout(self.shutdown_timeout, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = tasks.len(),
                "connections still open after the shutdown timeout"
            );
        }
        if let Err(error) = self.core.store().close().await {
            tracing::error!(%error, "closing the store failed");
        }
        tracing::info!("stopped");
    }
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        // A no-op after `shutdown`; otherwise (a panicking test, a dropped handle) nothing
        // is left listening.
        self.core.begin_shutdown();
    }
}
