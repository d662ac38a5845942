//! The `pathmq` binary: configuration (file, environment, command line), logging, signal
//! handling, and the `user|group|permission` administration subcommands (`admin`).
//! Everything else is in the library crates.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use pathmq::config::{Config, Engine, LogFormat, Overflow};

mod admin;

/// pathmq: a real-time JSON path database and MQTT / WebSocket pub/sub broker.
///
/// Every option can also be set in the config file (`--config`) or with its `PATHMQ_*`
/// environment variable. Precedence: command line, then environment, then config file,
/// then the embedded defaults.
///
/// Without a command, runs the broker. The `user`, `group` and `permission` commands
/// administer the users of its store (redb) while it is stopped.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Administration commands; none runs the broker.
    #[command(subcommand)]
    command: Option<admin::Command>,
    /// TOML config file (see docs/CONFIGURATION.md).
    #[arg(long, short, env = "PATHMQ_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Broker name reported by `describe` [default: pathmq].
    #[arg(long, env = "PATHMQ_NAME")]
    name: Option<String>,
    /// HTTP/WebSocket listen address: native protocol at / and /primus, MQTT over WebSocket at /mqtt [default: 127.0.0.1:55000].
    #[arg(long, env = "PATHMQ_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Disable the HTTP/WebSocket listener.
    #[arg(long, env = "PATHMQ_HTTP_DISABLED")]
    http_disabled: bool,
    /// MQTT TCP listen address [default: 127.0.0.1:1883].
    #[arg(long, env = "PATHMQ_MQTT_LISTEN")]
    mqtt_listen: Option<SocketAddr>,
    /// Disable the MQTT TCP listener.
    #[arg(long, env = "PATHMQ_MQTT_DISABLED")]
    mqtt_disabled: bool,
    /// Serve the native protocol over TCP (length-prefixed JSON frames) on this address
    /// [default: off; 127.0.0.1:55001 when enabled in the config file].
    #[arg(long, env = "PATHMQ_NATIVE_TCP_LISTEN")]
    native_tcp_listen: Option<SocketAddr>,
    /// Switch security on: clients must log in, requests are checked against permissions
    /// (docs/SECURITY.md) [default: off].
    #[arg(long, env = "PATHMQ_SECURE")]
    secure: bool,
    /// The `_ADMIN` password used when `_ADMIN` is first created (required with --secure).
    #[arg(long, env = "PATHMQ_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// The token signing secret, at least 32 bytes [default: generated at first start and
    /// stored with the data].
    #[arg(long, env = "PATHMQ_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// Largest MQTT packet accepted, in bytes [default: 1049600].
    #[arg(long, env = "PATHMQ_MQTT_MAX_PACKET_SIZE")]
    mqtt_max_packet_size: Option<usize>,
    /// How often the $SYS/broker/... statistics are published, in seconds; 0: off
    /// [default: 10].
    #[arg(long, env = "PATHMQ_MQTT_SYS_INTERVAL_S")]
    mqtt_sys_interval_s: Option<u64>,
    /// The longest MQTT keep alive a client may use, in seconds; 0: no maximum
    /// [default: 65535].
    #[arg(long, env = "PATHMQ_MQTT_MAX_KEEPALIVE_S")]
    mqtt_max_keepalive_s: Option<u16>,
    /// The longest MQTT session expiry, in seconds; 0: no durable sessions
    /// [default: 4294967295, never].
    #[arg(long, env = "PATHMQ_MQTT_MAX_SESSION_EXPIRY_S")]
    mqtt_max_session_expiry_s: Option<u32>,
    /// QoS 1/2 messages kept per disconnected MQTT session [default: 1000].
    #[arg(long, env = "PATHMQ_MQTT_MAX_QUEUED_MESSAGES")]
    mqtt_max_queued_messages: Option<usize>,
    /// Their payload bytes; 0: no limit [default: 0].
    #[arg(long, env = "PATHMQ_MQTT_MAX_QUEUED_BYTES")]
    mqtt_max_queued_bytes: Option<usize>,
    /// MQTT 5 topic aliases a client may set per connection; 0: none [default: 10].
    #[arg(long, env = "PATHMQ_MQTT_TOPIC_ALIAS_MAXIMUM")]
    mqtt_topic_alias_maximum: Option<u16>,
    /// Serve MQTT over TLS on this address [default: off; 127.0.0.1:8883 when enabled in
    /// the config file].
    #[arg(long, env = "PATHMQ_MQTT_TLS_LISTEN")]
    mqtt_tls_listen: Option<SocketAddr>,
    /// Idle keep-alive timeout of HTTP connections (and time to send request headers), in
    /// ms; 0: one request per connection [default: 30000].
    #[arg(long, env = "PATHMQ_HTTP_KEEPALIVE_TIMEOUT_MS")]
    http_keepalive_timeout_ms: Option<u64>,
    /// Serve HTTPS and WSS instead of HTTP and WS on the HTTP listener.
    #[arg(long, env = "PATHMQ_HTTP_TLS")]
    http_tls: bool,
    /// Serve the native TCP listener over TLS.
    #[arg(long, env = "PATHMQ_NATIVE_TCP_TLS")]
    native_tcp_tls: bool,
    /// TLS certificate chain (PEM) [default: <data dir>/tls/cert.pem, self-signed when
    /// missing].
    #[arg(long, env = "PATHMQ_TLS_CERT_PATH")]
    tls_cert_path: Option<PathBuf>,
    /// TLS private key (PEM) [default: <data dir>/tls/key.pem].
    #[arg(long, env = "PATHMQ_TLS_KEY_PATH")]
    tls_key_path: Option<PathBuf>,
    /// CA (PEM) client certificates must chain to: clients are asked for one (mTLS).
    #[arg(long, env = "PATHMQ_TLS_CLIENT_CA_PATH")]
    tls_client_ca_path: Option<PathBuf>,
    /// Refuse TLS clients without a certificate (needs --tls-client-ca-path).
    #[arg(long, env = "PATHMQ_TLS_REQUIRE_CLIENT_CERTIFICATE")]
    tls_require_client_certificate: bool,
    /// A verified client certificate's CN is the MQTT username (needs
    /// --tls-client-ca-path).
    #[arg(long, env = "PATHMQ_TLS_USE_IDENTITY_AS_USERNAME")]
    tls_use_identity_as_username: bool,
    /// Storage engine: redb (durable) or memory [default: redb].
    #[arg(long, env = "PATHMQ_STORAGE_ENGINE", value_parser = ["redb", "memory"], global = true)]
    storage_engine: Option<String>,
    /// redb database file; its folder is created [default: ./pathmq-data/pathmq.redb].
    #[arg(long, env = "PATHMQ_STORAGE_PATH", global = true)]
    storage_path: Option<PathBuf>,
    /// Most open connections per listener [default: 100000].
    #[arg(long, env = "PATHMQ_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Time a client has for its handshake, in ms [default: 10000].
    #[arg(long, env = "PATHMQ_HANDSHAKE_TIMEOUT_MS")]
    handshake_timeout_ms: Option<u64>,
    /// Capacity of each session's outbound queue, in messages [default: 10000].
    #[arg(long, env = "PATHMQ_SESSION_QUEUE")]
    session_queue: Option<usize>,
    /// Capacity of each session's outbound queue, in payload bytes; 0: no limit [default: 0].
    #[arg(long, env = "PATHMQ_SESSION_QUEUE_BYTES")]
    session_queue_bytes: Option<usize>,
    /// What a session queue twice full (or stalled) does: drop-new, drop-oldest or disconnect [default: drop-new].
    #[arg(long, env = "PATHMQ_OVERFLOW", value_parser = ["drop-new", "drop-oldest", "disconnect"])]
    overflow: Option<String>,
    /// Longest wait of a publisher for room in a subscriber's queue, in ms [default: 5000].
    #[arg(long, env = "PATHMQ_BACKPRESSURE_TIMEOUT_MS")]
    backpressure_timeout_ms: Option<u64>,
    /// Largest payload accepted, in bytes [default: 1048576].
    #[arg(long, env = "PATHMQ_MAX_PAYLOAD")]
    max_payload: Option<usize>,
    /// Native-protocol heartbeat interval, in ms [default: 30000].
    #[arg(long, env = "PATHMQ_HEARTBEAT_INTERVAL_MS")]
    heartbeat_interval_ms: Option<u64>,
    /// How long shutdown waits for connections, in ms [default: 5000].
    #[arg(long, env = "PATHMQ_SHUTDOWN_TIMEOUT_MS")]
    shutdown_timeout_ms: Option<u64>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "PATHMQ_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// Log filter, e.g. "info" or "info,pathmq_mqtt=debug"; RUST_LOG wins [default: info].
    #[arg(long, env = "PATHMQ_LOG_LEVEL")]
    log_level: Option<String>,
}

impl Cli {
    /// The config file (or defaults) with the command line and environment laid over it,
    /// not yet validated (the admin commands check it their own way).
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        set(&mut c.name, self.name);
        set(&mut c.http.listen, self.http_listen);
        c.http.enabled &= !self.http_disabled;
        set(&mut c.mqtt.listen, self.mqtt_listen);
        c.mqtt.enabled &= !self.mqtt_disabled;
        c.security.secure |= self.secure;
        if self.admin_password.is_some() {
            c.security.admin_password = self.admin_password;
        }
        if self.token_secret.is_some() {
            c.security.token_secret = self.token_secret;
        }
        if let Some(addr) = self.native_tcp_listen {
            c.native_tcp.listen = addr;
            c.native_tcp.enabled = true;
        }
        if let Some(addr) = self.mqtt_tls_listen {
            c.mqtt_tls.listen = addr;
            c.mqtt_tls.enabled = true;
        }
        c.http.tls |= self.http_tls;
        set(
            &mut c.http.keepalive_timeout_ms,
            self.http_keepalive_timeout_ms,
        );
        c.native_tcp.tls |= self.native_tcp_tls;
        if self.tls_cert_path.is_some() {
            c.tls.cert_path = self.tls_cert_path;
        }
        if self.tls_key_path.is_some() {
            c.tls.key_path = self.tls_key_path;
        }
        if self.tls_client_ca_path.is_some() {
            c.tls.client_ca_path = self.tls_client_ca_path;
        }
        c.tls.require_client_certificate |= self.tls_require_client_certificate;
        c.tls.use_identity_as_username |= self.tls_use_identity_as_username;
        set(&mut c.mqtt.max_packet_size, self.mqtt_max_packet_size);
        set(&mut c.mqtt.sys_interval_s, self.mqtt_sys_interval_s);
        set(&mut c.mqtt.max_keepalive_s, self.mqtt_max_keepalive_s);
        set(
            &mut c.mqtt.max_session_expiry_s,
            self.mqtt_max_session_expiry_s,
        );
        set(
            &mut c.mqtt.max_queued_messages,
            self.mqtt_max_queued_messages,
        );
        set(&mut c.mqtt.max_queued_bytes, self.mqtt_max_queued_bytes);
        set(
            &mut c.mqtt.topic_alias_maximum,
            self.mqtt_topic_alias_maximum,
        );
        set(&mut c.storage.path, self.storage_path);
        set(&mut c.limits.max_connections, self.max_connections);
        set(
            &mut c.limits.handshake_timeout_ms,
            self.handshake_timeout_ms,
        );
        set(&mut c.limits.session_queue, self.session_queue);
        set(&mut c.limits.session_queue_bytes, self.session_queue_bytes);
        set(&mut c.limits.max_payload, self.max_payload);
        set(
            &mut c.limits.backpressure_timeout_ms,
            self.backpressure_timeout_ms,
        );
        set(
            &mut c.limits.heartbeat_interval_ms,
            self.heartbeat_interval_ms,
        );
        set(&mut c.limits.shutdown_timeout_ms, self.shutdown_timeout_ms);
        set(&mut c.log.level, self.log_level);
        if let Some(engine) = self.storage_engine {
            c.storage.engine = if engine == "memory" {
                Engine::Memory
            } else {
                Engine::Redb
            };
        }
        if let Some(overflow) = self.overflow {
            c.limits.overflow = match overflow.as_str() {
                "disconnect" => Overflow::Disconnect,
                "drop-oldest" => Overflow::DropOldest,
                _ => Overflow::DropNew,
            };
        }
        if let Some(format) = self.log_format {
            c.log.format = if format == "json" {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
        }
        Ok(c)
    }
}

/// Overwrites `slot` when the command line or environment gave a value.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => {
            EnvFilter::try_new(directives).context("RUST_LOG")?
        }
        _ => EnvFilter::try_new(&config.log.level).context("config key `log.level`")?,
    };
    // The WebSocket library logs whole frames at trace, login frames (passwords, tokens)
    // included: capped at debug whatever the filter says, so credentials never reach the
    // logs (docs/SECURITY.md).
    let filter = ["tungstenite=debug", "tokio_tungstenite=debug"]
        .into_iter()
        .fold(filter, |filter, cap| {
            filter.add_directive(cap.parse().expect("a valid directive"))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Listens for SIGINT and SIGTERM. Registered before the broker starts, so a signal that
/// arrives while it starts up shuts it down gracefully instead of killing it.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

/// Listens for Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// jemalloc instead of glibc malloc: a broker allocates small, short-lived buffers on
/// every runtime worker and frees many of them on another (frames, events, store
/// results); glibc's arena locks were the top cost in profiles of native `get` (153k/s
/// with glibc, ~500k/s with jemalloc), and jemalloc kept idle connections smaller than
/// mimalloc did (3.6 vs 4.75 KiB each). docs/BENCHMARKS.md, history.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    let command = cli.command.take();
    let config = cli.into_config()?;
    if let Some(command) = command {
        init_logging(&config)?;
        return admin::run(command, config).await;
    }
    config.validate()?;
    init_logging(&config)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), storage = ?config.storage.engine, path = %config.storage.path.display(), "starting pathmq");
    let stop = shutdown_signal()?;
    let mut reload = reload_signal()?;
    let broker = pathmq::Broker::builder().config(config).start().await?;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(()) = reload.recv() => match broker.reload_tls() {
                Ok(true) => tracing::info!("SIGHUP: TLS certificates reloaded"),
                Ok(false) => tracing::info!("SIGHUP: no TLS listener; nothing to reload"),
                Err(error) => tracing::error!(%error, "SIGHUP: TLS certificates not reloaded; the ones in use are kept"),
            },
        }
    }
    broker.shutdown().await;
    Ok(())
}

/// SIGHUP, which reloads the TLS certificates (as Mosquitto does): one item per signal.
#[cfg(unix)]
fn reload_signal() -> anyhow::Result<tokio::sync::mpsc::Receiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            // A reload already waiting covers this signal too.
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

/// No SIGHUP here: never reloads.
#[cfg(not(unix))]
fn reload_signal() -> anyhow::Result<tokio::sync::mpsc::Receiver<()>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::mem::forget(tx);
    Ok(rx)
}
