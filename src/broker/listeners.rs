//! Binding the configured listeners (MQTT, MQTT over TLS, HTTP or HTTPS, native TCP or
//! TLS, and protocol plugins' listeners), setting up their TLS certificate, and starting
//! their accept loops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pathmq_core::transport::{self, HttpConfig, Limits, TlsAcceptor, WebSocketRoute};
use pathmq_core::{Core, Protocol};
use tokio::net::TcpListener;

use super::{RunningBroker, StartError};
use crate::config::Config;

/// A listener for a protocol plugin (DESIGN.md §8): the protocol serves every connection
/// accepted on the address, over TLS with the broker's `[tls]` certificate when asked.
///
/// ```no_run
/// # use std::sync::Arc;
/// # async fn demo(protocol: Arc<dyn pathmq::core::Protocol>) -> Result<(), pathmq::StartError> {
/// let addr = "127.0.0.1:8090".parse().unwrap();
/// let broker = pathmq::Broker::builder()
///     .listener(pathmq::ProtocolListener::new("token", addr, protocol).tls(true))
///     .start()
///     .await?;
/// println!("token protocol on {:?}", broker.listener_addr("token"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ProtocolListener {
    name: String,
    addr: SocketAddr,
    protocol: Arc<dyn Protocol>,
    tls: bool,
}

impl ProtocolListener {
    /// `protocol` on `addr` (port 0 picks a free port), named `name` in logs, errors and
    /// [`RunningBroker::listener_addr`]. Plain TCP until [`ProtocolListener::tls`].
    pub fn new(name: impl Into<String>, addr: SocketAddr, protocol: Arc<dyn Protocol>) -> Self {
        Self {
            name: name.into(),
            addr,
            protocol,
            tls: false,
        }
    }

    /// Serve TLS with the broker's `[tls]` certificate (client certificates as `[tls]`
    /// says).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }
}

impl std::fmt::Debug for ProtocolListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolListener")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("protocol", &self.protocol.name())
            .field("tls", &self.tls)
            .finish()
    }
}

/// The protocols the listeners serve.
pub(super) struct Protocols {
    pub(super) mqtt: Arc<dyn Protocol>,
    pub(super) native: Arc<dyn Protocol>,
    /// The HTTP listener's settings, without its WebSocket routes and TLS (added here).
    pub(super) http: HttpConfig,
    pub(super) extra: Vec<ProtocolListener>,
}

/// Binds every configured listener, then starts their accept loops. Nothing is accepted
/// unless every listener bound.
///
/// # Errors
/// [`StartError::Tls`], [`StartError::Bind`]; nothing is left listening.
pub(super) fn start(
    config: &Config,
    core: Core,
    protocols: Protocols,
    limits: Limits,
    shutdown_timeout: Duration,
) -> Result<RunningBroker, StartError> {
    let Protocols {
        mqtt,
        native,
        mut http,
        extra,
    } = protocols;
    let tls = match config.uses_tls() || extra.iter().any(|l| l.tls) {
        true => Some(tls_acceptor(config)?),
        false => None,
    };
    let acceptor = |on: bool| tls.clone().filter(|_| on);
    // (name, address, what serves it, TLS)
    let mut wanted: Vec<(String, SocketAddr, Serve, Option<TlsAcceptor>)> = Vec::new();
    if config.mqtt.enabled {
        let serve = Serve::Stream(mqtt.clone());
        wanted.push(("mqtt".into(), config.mqtt.listen, serve, None));
    }
    if config.mqtt_tls.enabled {
        let serve = Serve::Stream(mqtt.clone());
        wanted.push((
            "mqtt_tls".into(),
            config.mqtt_tls.listen,
            serve,
            tls.clone(),
        ));
    }
    if config.native_tcp.enabled {
        let serve = Serve::Stream(native.clone());
        let on = acceptor(config.native_tcp.tls);
        wanted.push(("native_tcp".into(), config.native_tcp.listen, serve, on));
    }
    if config.http.enabled {
        let route =
            |path: &str, subprotocol: Option<&str>, protocol: &Arc<dyn Protocol>| WebSocketRoute {
                path: path.into(),
                subprotocol: subprotocol.map(Into::into),
                protocol: protocol.clone(),
            };
        http.websocket_routes = vec![
            route("/", None, &native),
            route("/primus", None, &native),
            route("/mqtt", Some("mqtt"), &mqtt),
        ];
        http.tls = acceptor(config.http.tls);
        let on = http.tls.clone();
        wanted.push(("http".into(), config.http.listen, Serve::Http(http), on));
    }
    for listener in extra {
        let on = acceptor(listener.tls);
        let serve = Serve::Stream(listener.protocol);
        wanted.push((listener.name, listener.addr, serve, on));
    }

    let mut bound = Vec::with_capacity(wanted.len());
    for (name, addr, serve, tls) in wanted {
        match listen(addr) {
            Ok(listener) => bound.push((name, listener, serve, tls)),
            Err(source) => {
                return Err(StartError::Bind {
                    what: name,
                    addr,
                    source,
                });
            }
        }
    }

    let mut addrs = HashMap::new();
    let mut accept_loops = Vec::new();
    for (name, listener, serve, tls) in bound {
        let addr = listener.local_addr().ok();
        if let Some(addr) = addr {
            let scheme = if tls.is_some() { "TLS" } else { "plain" };
            tracing::info!(%addr, listener = %name, scheme, "{}", serve.describe(&name));
            addrs.insert(name, addr);
        }
        let (core, limits) = (core.clone(), limits.clone());
        let task = match (serve, tls) {
            (Serve::Http(http), _) => {
                tokio::spawn(transport::serve_http(listener, http, core, limits))
            }
            (Serve::Stream(protocol), None) => {
                tokio::spawn(transport::run_tcp(listener, protocol, core, limits))
            }
            (Serve::Stream(protocol), Some(tls)) => {
                tokio::spawn(transport::run_tls(listener, tls, protocol, core, limits))
            }
        };
        accept_loops.push(task);
    }
    Ok(RunningBroker::new(
        core,
        addrs,
        accept_loops,
        shutdown_timeout,
        tls,
    ))
}

/// What a listener serves.
enum Serve {
    /// A byte-stream protocol.
    Stream(Arc<dyn Protocol>),
    /// HTTP: WebSocket routes, REST, metrics.
    Http(HttpConfig),
}

impl Serve {
    /// The log line of the listener `name` (tests and scripts wait for "MQTT listening",
    /// "HTTP listening").
    fn describe(&self, name: &str) -> String {
        match (self, name) {
            (Self::Http(_), _) => "HTTP listening: native WebSocket at / and /primus, MQTT \
                                   over WebSocket at /mqtt, REST at /api"
                .into(),
            (_, "mqtt") => "MQTT listening".into(),
            (_, "mqtt_tls") => "MQTT over TLS listening".into(),
            (_, "native_tcp") => "native protocol listening on TCP (length-prefixed frames)".into(),
            (Self::Stream(protocol), name) => format!("{name} listening ({})", protocol.name()),
        }
    }
}

/// The TLS acceptor of the `[tls]` settings; creates the self-signed certificate files
/// first when they are used and neither exists (logged).
fn tls_acceptor(config: &Config) -> Result<TlsAcceptor, StartError> {
    if let Some((cert, key)) = config.tls.files(&config.storage.path) {
        let created = transport::self_signed(&cert, &key, &config.tls.self_signed_names)
            .map_err(StartError::Tls)?;
        if created {
            tracing::warn!(
                cert = %cert.display(),
                key = %key.display(),
                names = ?config.tls.self_signed_names,
                "created a self-signed TLS certificate: clients must be told to trust it (or configure tls.cert_path)"
            );
        }
    }
    TlsAcceptor::new(config.tls.settings(&config.storage.path)).map_err(StartError::Tls)
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
