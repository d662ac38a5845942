//! The `Broker` builder: a core, a store and the listeners of the configuration, started
//! and stopped as one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pathmq_core::security::{AuthProvider, Directory, DirectoryConfig, Password, Security};
use pathmq_core::transport::{self, HttpConfig, HttpHandler, HttpRoute, TlsError};
use pathmq_core::{Core, CoreConfig, Layer, OverflowPolicy, Store};
use pathmq_mqtt::{Mqtt, MqttConfig};
use pathmq_native::{Native, NativeConfig};
use pathmq_plugin_auth_file::FileAuthProvider;
use pathmq_plugin_auth_webhook::WebhookAuthProvider;
use pathmq_plugin_rate_limit::RateLimitLayer;
use pathmq_plugin_validate::ValidateLayer;
use pathmq_storage::{MemoryStore, RedbStore};

use crate::config::{Config, Engine, Overflow};

mod listeners;
mod running;

pub use listeners::ProtocolListener;
pub use running::RunningBroker;

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
    /// A plugin enabled in the config file refused its settings (the message names the
    /// key, e.g. `plugins.rate_limit.actions.set.every`).
    #[error("cannot set up a plugin: {0}")]
    Plugin(String),
    /// TLS could not be set up: the certificate, key or client CA cannot be read or used,
    /// or a self-signed certificate could not be created.
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] TlsError),
    /// A listener could not bind its address.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which listener (`"mqtt"`, `"mqtt_tls"`, `"http"`, `"native_tcp"`, or a
        /// protocol listener's name).
        what: String,
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
    listeners: Vec<ProtocolListener>,
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
            listeners: Vec::new(),
        }
    }

    /// Adds a listener for a protocol plugin (DESIGN.md §8): `listener.protocol` serves
    /// every connection accepted on `listener.addr`, over TLS with the `[tls]` certificate
    /// when `listener.tls` is set. Its bound address is
    /// [`RunningBroker::listener_addr`]`(name)`.
    pub fn listener(mut self, listener: ProtocolListener) -> Self {
        self.listeners.push(listener);
        self
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
    /// are offered to the providers in the order added (after `security.auth_file`'s and
    /// `security.auth_webhook`'s).
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
        // The config file's plugins first (rate limits before validation: a flood of
        // invalid requests is limited before it is parsed), then the builder's layers.
        if let Some(rate_limit) = &config.plugins.rate_limit {
            let layer = RateLimitLayer::new(rate_limit.clone())
                .map_err(|e| StartError::Plugin(e.to_string()))?;
            builder = builder.layer(layer);
        }
        if let Some(validate) = &config.plugins.validate {
            let layer = ValidateLayer::new(validate.clone())
                .map_err(|e| StartError::Plugin(e.to_string()))?;
            builder = builder.layer(layer);
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
        // Over HTTPS (a TLS-terminating proxy, or `http.tls`) the cookie is `<name>_https`
        // and `Secure`: the same name for the native protocol and the HTTP listener.
        let https_cookie = config.security.https_cookie || config.http.tls;
        native_config.cookie_name = match https_cookie {
            true => format!("{}_https", config.security.cookie_name),
            false => config.security.cookie_name.clone(),
        };
        native_config.login_timeout = match config.security.secure {
            true => Duration::from_millis(config.security.login_timeout_ms),
            false => transport_limits.handshake_timeout,
        };
        let native: Arc<dyn pathmq_core::Protocol> = Arc::new(Native::new(native_config));

        let mut http = HttpConfig::default();
        http.routes = self.http_routes;
        http.cookie_name = config.security.cookie_name.clone();
        http.https_cookie = https_cookie;
        http.keepalive_timeout = Duration::from_millis(config.http.keepalive_timeout_ms);
        let mut extra = Vec::new();
        if config.token.enabled {
            let token = pathmq_token::Token::new(config.token.clone())
                .map_err(|e| StartError::Plugin(format!("token: {e}")))?;
            let listener = ProtocolListener::new("token", config.token.listen, Arc::new(token));
            extra.push(listener.tls(config.token.tls));
        }
        extra.extend(self.listeners);
        let protocols = listeners::Protocols {
            mqtt,
            native,
            http,
            extra,
        };
        let shutdown_timeout = Duration::from_millis(limits.shutdown_timeout_ms);
        listeners::start(&config, core, protocols, transport_limits, shutdown_timeout)
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
    if let Some(webhook) = &config.auth_webhook {
        // The error names its key (`security.auth_webhook.url: …`).
        let webhook = WebhookAuthProvider::new(webhook.clone())
            .map_err(|e| StartError::Security(e.to_string()))?;
        core_config.providers.push(Arc::new(webhook));
    }
    core_config.providers.extend(providers);
    let security = Security::open(directory, store, core_config)
        .await
        .map_err(|e| StartError::Security(e.to_string()))?;
    Ok(Arc::new(security))
}
