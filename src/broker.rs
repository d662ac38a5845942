//! The `Broker` builder: a core, a store and the listeners of the configuration, started
//! and stopped as one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pathmq_core::security::{AuthProvider, Directory, DirectoryConfig, Password, Security};
use pathmq_core::transport::{self, HttpConfig, HttpHandler, HttpRoute, WebSocketRoute};
use pathmq_core::{Core, CoreConfig, Layer, OverflowPolicy, Store};
use pathmq_mqtt::{Mqtt, MqttConfig};
use pathmq_native::{Native, NativeConfig};
use pathmq_plugin_auth_file::FileAuthProvider;
use pathmq_storage::{MemoryStore, RedbStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::{Config, Engine, Overflow};

/// Why the broker did not start. Nothing is left running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The store could not be opened (the error names the file).
    #[error("cannot open the store: {0}")]
    Store(#[source] pathmq_storage::OpenError),
    /// The stored durable MQTT sessions could not be read.
    #[error("cannot restore the stored MQTT sessions: {0}")]
    Sessions(#[source] pathmq_core::StoreError),
    /// Security could not be set up (the directory of users could not be read, or the
    /// admin password is missing or refused).
    #[error("cannot set up security: {0}")]
    Security(String),
    /// A listener could not bind its address.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which listener (`"mqtt"`, `"http"`).
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why (address in use, permission denied).
        source: std::io::Error,
    },
}

/// Builds and starts a broker.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let broker = pathmq::Broker::builder().start().await?;
/// println!("MQTT on {:?}", broker.mqtt_addr());
/// broker.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Broker {
    config: Config,
    store: Option<Arc<dyn Store>>,
    layers: Vec<Arc<dyn Layer>>,
    providers: Vec<Arc<dyn AuthProvider>>,
    http_routes: Vec<HttpRoute>,
}

impl Broker {
    /// A builder with the embedded defaults (DESIGN.md §9).
    pub fn builder() -> Self {
        Self {
            config: Config::default(),
            store: None,
            layers: Vec::new(),
            providers: Vec::new(),
            http_routes: Vec::new(),
        }
    }

    /// Adds an HTTP route: `handler` serves requests for `prefix` and below on the HTTP
    /// listener (reference: WEB PATH LEVEL SECURITY, `connect.use`). On a secure broker
    /// each request needs a token (the `pathmq_token` cookie, `?token=` or
    /// `Authorization: Bearer`) whose user may use the request's method on
    /// `/@HTTP<path>`: 401 without a valid token, 403 without the permission
    /// (docs/SECURITY.md, HTTP). The longest matching prefix wins; a prefix under `/auth`
    /// or equal to a built-in path is not served.
    pub fn http_route(mut self, prefix: impl Into<String>, handler: impl HttpHandler) -> Self {
        self.http_routes.push(HttpRoute::new(prefix, handler));
        self
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Uses this store instead of the configured one.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Appends a middleware layer (DESIGN.md §8).
    pub fn layer(mut self, layer: impl Layer) -> Self {
        self.layers.push(Arc::new(layer));
        self
    }

    /// Adds an auth provider (DESIGN.md §7): password logins the directory does not know
    /// are offered to the providers in the order added (after `security.auth_file`'s).
    /// Only used when the broker is secure.
    pub fn auth_provider(mut self, provider: impl AuthProvider) -> Self {
        self.providers.push(Arc::new(provider));
        self
    }

    /// Opens the store `storage` configures, as [`Broker::start`] does: a new
    /// [`MemoryStore`], or the redb file (created with its folder if missing). The
    /// `pathmq user|group|permission` subcommands open the broker's store this way.
    ///
    /// # Errors
    /// [`StartError::Store`]; a redb file another process holds (a running broker) is
    /// `OpenError::Database` with `redb::DatabaseError::DatabaseAlreadyOpen`.
    pub async fn open_store(
        storage: &crate::config::Storage,
    ) -> Result<Arc<dyn Store>, StartError> {
        match storage.engine {
            Engine::Memory => Ok(Arc::new(MemoryStore::new())),
            Engine::Redb => {
                let path = storage.path.clone();
                // Opening reads the file: keep it off the runtime's workers.
                let opened = tokio::task::spawn_blocking(move || RedbStore::open(&path))
                    .await
                    .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
                Ok(Arc::new(opened.map_err(StartError::Store)?))
            }
        }
    }

    /// Opens the directory of users and groups over `store` with the bcrypt cost and
    /// `persist_permissions` of `security`, as a secure [`Broker::start`] does. Creates
    /// nothing (not even `_ADMIN`).
    ///
    /// # Errors
    /// As [`Directory::open`]: nothing is written.
    pub async fn open_directory(
        store: Arc<dyn Store>,
        security: &crate::config::SecurityConfig,
    ) -> Result<Directory, pathmq_core::security::DirectoryError> {
        let directory_config = DirectoryConfig {
            persist_permissions: security.persist_permissions,
            bcrypt_cost: security.bcrypt_cost,
        };
        Directory::open(store, directory_config).await
    }

    /// Opens the store, binds the listeners and starts serving.
    ///
    /// # Errors
    /// [`StartError::Store`] or [`StartError::Bind`]; nothing is left running.
    pub async fn start(self) -> Result<RunningBroker, StartError> {
        let config = self.config;
        let store: Arc<dyn Store> = match (self.store, config.storage.engine) {
            (Some(store), _) => store,
            (None, _) => Self::open_store(&config.storage).await?,
        };
        let limits = &config.limits;
        let mut core_config = CoreConfig::default();
        core_config.name = config.name.clone();
        core_config.session_queue = limits.session_queue;
        core_config.session_queue_bytes = limits.session_queue_bytes;
        core_config.max_queued_bytes = config.mqtt.max_queued_bytes;
        core_config.max_payload = limits.max_payload;
        core_config.backpressure_timeout = Duration::from_millis(limits.backpressure_timeout_ms);
        core_config.ack_timeout = Duration::from_millis(limits.ack_timeout_ms);
        core_config.max_queued_messages = config.mqtt.max_queued_messages.max(1);
        // The `$SYS` task lives in the core's task tracker and stops with its shutdown
        // token: `RunningBroker::shutdown` (or dropping it) ends it.
        core_config.sys_interval = Duration::from_secs(config.mqtt.sys_interval_s);
        core_config.overflow = match limits.overflow {
            Overflow::DropNew => OverflowPolicy::DropNew,
            Overflow::DropOldest => OverflowPolicy::DropOldest,
            Overflow::Disconnect => OverflowPolicy::Disconnect,
        };
        let mut builder = Core::builder_arc(store.clone()).config(core_config);
        if config.security.secure {
            let security = security(store, &config.security, self.providers).await?;
            builder = builder.security(security);
        }
        for layer in self.layers {
            builder = builder.layer_arc(layer);
        }
        let core = builder.build();
        // Before any listener: a returning client finds its session.
        core.restore_sessions()
            .await
            .map_err(StartError::Sessions)?;

        let mut transport_limits = transport::Limits::default();
        transport_limits.max_connections = limits.max_connections;
        transport_limits.handshake_timeout = Duration::from_millis(limits.handshake_timeout_ms);
        transport_limits.max_websocket_message = limits.max_payload.saturating_add(64 * 1024);

        let mut mqtt_config = MqttConfig::default();
        mqtt_config.connect_timeout = transport_limits.handshake_timeout;
        mqtt_config.max_packet_size = config.mqtt.max_packet_size;
        mqtt_config.max_keepalive = config.mqtt.max_keepalive_s;
        mqtt_config.max_session_expiry = config.mqtt.max_session_expiry_s;
        mqtt_config.topic_alias_maximum = config.mqtt.topic_alias_maximum;
        let mqtt: Arc<dyn pathmq_core::Protocol> = Arc::new(Mqtt::new(mqtt_config));
        let mut native_config = NativeConfig::default();
        native_config.heartbeat_interval = Duration::from_millis(limits.heartbeat_interval_ms);
        // Below the WebSocket limit, so an oversized frame gets a 413 instead of a close.
        native_config.max_frame = limits.max_payload.saturating_add(32 * 1024);
        native_config.cookie_name = match config.security.https_cookie {
            true => format!("{}_https", config.security.cookie_name),
            false => config.security.cookie_name.clone(),
        };
        native_config.login_timeout = match config.security.secure {
            true => Duration::from_millis(config.security.login_timeout_ms),
            false => transport_limits.handshake_timeout,
        };
        let native: Arc<dyn pathmq_core::Protocol> = Arc::new(Native::new(native_config));

        let bind = |what: &'static str, addr: SocketAddr| {
            listen(addr).map_err(|source| StartError::Bind { what, addr, source })
        };
        let mqtt_listener = match config.mqtt.enabled {
            true => Some(bind("mqtt", config.mqtt.listen)?),
            false => None,
        };
        let http_listener = match config.http.enabled {
            true => Some(bind("http", config.http.listen)?),
            false => None,
        };
        let native_tcp_listener = match config.native_tcp.enabled {
            true => Some(bind("native tcp", config.native_tcp.listen)?),
            false => None,
        };

        let mut running = RunningBroker {
            core: core.clone(),
            mqtt_addr: None,
            http_addr: None,
            native_tcp_addr: None,
            accept_loops: Vec::new(),
            shutdown_timeout: Duration::from_millis(limits.shutdown_timeout_ms),
        };
        if let Some(listener) = mqtt_listener {
            running.mqtt_addr = listener.local_addr().ok();
            if let Some(addr) = running.mqtt_addr {
                tracing::info!(%addr, "MQTT listening");
            }
            let task = transport::run_tcp(
                listener,
                mqtt.clone(),
                core.clone(),
                transport_limits.clone(),
            );
            running.accept_loops.push(tokio::spawn(task));
        }
        if let Some(listener) = native_tcp_listener {
            running.native_tcp_addr = listener.local_addr().ok();
            if let Some(addr) = running.native_tcp_addr {
                tracing::info!(%addr, "native protocol listening on TCP (length-prefixed frames)");
            }
            let task = transport::run_tcp(
                listener,
                native.clone(),
                core.clone(),
                transport_limits.clone(),
            );
            running.accept_loops.push(tokio::spawn(task));
        }
        if let Some(listener) = http_listener {
            running.http_addr = listener.local_addr().ok();
            if let Some(addr) = running.http_addr {
                tracing::info!(
                    %addr,
                    "HTTP listening: native WebSocket at / and /primus, MQTT over WebSocket at /mqtt"
                );
            }
            let route =
                |path: &str,
                 subprotocol: Option<&str>,
                 protocol: &Arc<dyn pathmq_core::Protocol>| WebSocketRoute {
                    path: path.into(),
                    subprotocol: subprotocol.map(Into::into),
                    protocol: protocol.clone(),
                };
            let routes = vec![
                route("/", None, &native),
                route("/primus", None, &native),
                route("/mqtt", Some("mqtt"), &mqtt),
            ];
            let mut http = HttpConfig::default();
            http.websocket_routes = routes;
            http.routes = self.http_routes;
            http.cookie_name = config.security.cookie_name.clone();
            http.https_cookie = config.security.https_cookie;
            let task = transport::serve_http(listener, http, core.clone(), transport_limits);
            running.accept_loops.push(tokio::spawn(task));
        }
        Ok(running)
    }
}

/// Opens the directory of users over `store` and makes sure `_ADMIN` exists.
async fn security(
    store: Arc<dyn Store>,
    config: &crate::config::SecurityConfig,
    providers: Vec<Arc<dyn AuthProvider>>,
) -> Result<Arc<Security>, StartError> {
    let password = config.admin_password.clone().ok_or_else(|| {
        StartError::Security(
            "security.secure is true but no admin password is set (PATHMQ_ADMIN_PASSWORD)".into(),
        )
    })?;
    let directory = Broker::open_directory(store.clone(), config)
        .await
        .map_err(|e| StartError::Security(e.to_string()))?;
    let setup = directory
        .ensure_admin(Password::from(password))
        .await
        .map_err(|e| StartError::Security(e.to_string()))?;
    if setup.user_created {
        tracing::info!("security on: created the _ADMIN user with the configured password");
    } else {
        tracing::info!("security on");
    }
    let mut core_config = config.core();
    if let Some(path) = &config.auth_file {
        let file = FileAuthProvider::load(path)
            .await
            .map_err(|e| StartError::Security(format!("security.auth_file: {e}")))?;
        core_config.providers.push(Arc::new(file));
    }
    core_config.providers.extend(providers);
    let security = Security::open(directory, store, core_config)
        .await
        .map_err(|e| StartError::Security(e.to_string()))?;
    Ok(Arc::new(security))
}

/// The listen backlog: connections the kernel completes before the broker accepts them.
/// tokio's default (128) overflows when thousands of devices reconnect at once; the
/// kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener with [`LISTEN_BACKLOG`] and `SO_REUSEADDR` (a restart does not wait
/// for the old connections' TIME_WAIT).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A started broker. [`RunningBroker::shutdown`] stops it gracefully; dropping it stops
/// accepting and ends every session at once, without waiting or flushing.
pub struct RunningBroker {
    core: Core,
    mqtt_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    native_tcp_addr: Option<SocketAddr>,
    accept_loops: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl RunningBroker {
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
        self.mqtt_addr
    }

    /// The bound HTTP/WebSocket address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The bound native TCP address, when `native_tcp` is enabled.
    pub fn native_tcp_addr(&self) -> Option<SocketAddr> {
        self.native_tcp_addr
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
