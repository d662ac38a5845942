//! The HTTP listener: WebSocket upgrades routed by path to protocols, the small HTTP
//! endpoints of the reference (`/ping`, `/version`, `/auth/login`, `/auth/logout`;
//! `reference/happn-3-wire.md` §7), the static resources protocols provide
//! ([`Protocol::http_resources`], e.g. the browser client at `/browser_client`), and the
//! embedding program's own routes, guarded by `@HTTP` permissions on a secure broker.
//!
//! | module | job |
//! |---|---|
//! | `websocket` | upgrades to the routes' protocols |
//! | `resources` | the protocols' static resources |
//! | `answer` | the JSON answers and refusals of the listener's own endpoints and of routes |
//! | `auth` | `/auth/login`, `/auth/logout`, the token cookie, where a request's token is |
//! | `routes` | the embedding program's [`HttpRoute`]s and their `@HTTP` check |
//! | `urlencoded` | percent-decoding of paths, query strings and form bodies |
//! | `rest` | the REST data API under `/api/data` (docs/REST.md) |
//! | `health` | `/health`: whether the broker takes work |
//! | `openapi` | `/api/openapi.json`, the OpenAPI document of the JSON endpoints |

mod answer;
mod auth;
mod health;
mod openapi;
mod resources;
mod rest;
mod routes;
#[cfg(test)]
mod tests;
mod urlencoded;
mod websocket;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument as _;

pub use routes::{HttpContext, HttpHandler, HttpRoute};

use super::Limits;
use super::tls::TlsAcceptor;
use crate::pipeline::Core;
use crate::protocol::{Peer, Protocol};
use crate::security::StatelessSessions;

/// What the listener answers with: a response with the whole body in memory.
pub type HttpResponse = Response<Full<Bytes>>;

/// A WebSocket endpoint on the HTTP listener.
#[derive(Clone)]
pub struct WebSocketRoute {
    /// The request path, e.g. `/mqtt` (the query string is ignored).
    pub path: String,
    /// The WebSocket subprotocol echoed when the client offers it (`mqtt` for MQTT).
    pub subprotocol: Option<String>,
    /// The protocol that serves the upgraded connection.
    pub protocol: Arc<dyn Protocol>,
}

/// What the HTTP listener serves besides its built-in endpoints, and how it hands out
/// tokens ([`serve_http`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The WebSocket endpoints.
    pub websocket_routes: Vec<WebSocketRoute>,
    /// The embedding program's routes ([`HttpRoute`]).
    pub routes: Vec<HttpRoute>,
    /// The name of the token cookie `/auth/login` sets and requests may carry (reference:
    /// `cookieName`). Default `pathmq_token`.
    pub cookie_name: String,
    /// The cookie is for HTTPS (the listener sits behind a TLS-terminating proxy): it is
    /// named `<cookie_name>_https` and marked `Secure` (reference: `httpsCookie`). Default
    /// false.
    pub https_cookie: bool,
    /// The largest `/auth/login` body read, in bytes. Default 8 KiB.
    pub max_login_body: usize,
    /// Serve HTTPS (and WSS) with this certificate instead of plain HTTP. Default none.
    pub tls: Option<TlsAcceptor>,
    /// How long a connection may wait for a complete request head: an idle keep-alive
    /// connection is closed this long after its last response (or after it opened, with
    /// no request yet). hyper 1.x has one timer for both waits, so this also bounds how
    /// long a client may take to send a request's headers (the WebSocket upgrade
    /// request's too). Zero turns keep-alive off: the connection closes after each
    /// response, and a request head must arrive within the handshake timeout. Default
    /// 30 s.
    pub keepalive_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            websocket_routes: Vec::new(),
            routes: Vec::new(),
            cookie_name: "pathmq_token".into(),
            https_cookie: false,
            max_login_body: 8 * 1024,
            tls: None,
            keepalive_timeout: Duration::from_secs(30),
        }
    }
}

struct Shared {
    websocket_routes: Vec<WebSocketRoute>,
    /// The protocols' static resources by path.
    resources: HashMap<String, resources::Resource>,
    /// The embedding program's routes, longest prefix first.
    routes: Vec<HttpRoute>,
    cookie: auth::Cookie,
    /// Use counts of tokens used on routes (`security::http`).
    sessions: StatelessSessions,
    max_body: usize,
    /// How long a request body may take to arrive.
    body_timeout: Duration,
    /// [`HttpConfig::keepalive_timeout`].
    keepalive_timeout: Duration,
    core: Core,
    limits: Limits,
}

/// The paths the listener answers itself; a protocol's resource or a route cannot take
/// them (nor anything under [`RESERVED_PREFIXES`]).
const BUILT_IN: [&str; 8] = [
    "/",
    "/ping",
    "/version",
    "/metrics",
    "/health",
    "/auth/login",
    "/auth/logout",
    rest::OPENAPI_PATH,
];

/// The path prefixes the listener keeps for itself, with everything below them.
const RESERVED_PREFIXES: [&str; 2] = ["/auth", "/api"];

/// Whether the listener answers `path` itself ([`BUILT_IN`], [`RESERVED_PREFIXES`]), so
/// that no resource or route can be served there.
fn is_taken(path: &str) -> bool {
    BUILT_IN.contains(&path)
        || RESERVED_PREFIXES.iter().any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// Serves HTTP on `listener` with only `routes` for WebSocket endpoints: [`serve_http`]
/// with the default [`HttpConfig`] otherwise.
pub async fn run_http(
    listener: TcpListener,
    routes: Vec<WebSocketRoute>,
    core: Core,
    limits: Limits,
) {
    let config = HttpConfig {
        websocket_routes: routes,
        ..HttpConfig::default()
    };
    serve_http(listener, config, core, limits).await;
}

/// Serves HTTP on `listener`: WebSocket upgrades at each WebSocket route's path, `/ping`,
/// `/version`, `/metrics`, `/auth/login` and `/auth/logout` (docs/PROTOCOL.md), `/health`
/// and the REST API under `/api` (docs/REST.md), the
/// WebSocket routes' protocols' static resources ([`Protocol::http_resources`], on `GET`
/// and `HEAD`), the embedding program's [`HttpRoute`]s, 404 elsewhere; until
/// [`Core::shutdown_token`] is cancelled.
pub async fn serve_http(listener: TcpListener, config: HttpConfig, core: Core, limits: Limits) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let shutdown = core.shutdown_token().clone();
    let shared = Arc::new(Shared {
        resources: resources::collect_resources(&config.websocket_routes),
        websocket_routes: config.websocket_routes,
        routes: routes::checked(config.routes),
        cookie: auth::Cookie::new(&config.cookie_name, config.https_cookie),
        sessions: StatelessSessions::default(),
        max_body: config.max_login_body,
        body_timeout: limits.handshake_timeout,
        keepalive_timeout: config.keepalive_timeout,
        core: core.clone(),
        limits,
    });
    let tls = config.tls;
    let transport = if tls.is_some() { "https" } else { "http" };
    while let Some((stream, peer, permit)) =
        super::next_connection(&listener, &permits, &shutdown).await
    {
        let span = tracing::info_span!("conn", transport, %peer);
        let (shared2, tls) = (shared.clone(), tls.clone());
        let task = async move {
            let stream = super::metered::Metered::new(stream, &shared2.core);
            let timeout = shared2.limits.handshake_timeout;
            match tls {
                None => serve_connection(shared2, stream, Peer::new(peer), permit).await,
                // Boxed: a plain connection's task stays small (idle memory).
                Some(tls) => match Box::pin(tls.accept(stream, timeout)).await {
                    Ok((stream, tls_peer)) => {
                        let peer = Peer::new(peer).with_tls(tls_peer);
                        Box::pin(serve_connection(shared2, stream, peer, permit)).await;
                    }
                    Err(error) => tracing::debug!(%error, "TLS handshake failed"),
                },
            }
        };
        core.tasks().spawn(task.instrument(span));
    }
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it closes, or until shutdown
/// once the request in flight is answered.
async fn serve_connection<S: crate::protocol::Io>(
    shared: Arc<Shared>,
    stream: S,
    peer: Peer,
    permit: OwnedSemaphorePermit,
) {
    let permit = Arc::new(permit);
    let shutdown = shared.core.shutdown_token().clone();
    // hyper's header read timer restarts whenever the connection goes idle: it is the
    // keep-alive idle timeout too (`HttpConfig::keepalive_timeout`).
    let keepalive = shared.keepalive_timeout;
    let header_timeout = match keepalive.is_zero() {
        true => shared.limits.handshake_timeout,
        false => keepalive,
    };
    let service = hyper::service::service_fn(move |req| {
        let (shared, permit, peer) = (shared.clone(), permit.clone(), peer.clone());
        async move { Ok::<_, Infallible>(route(&shared, req, peer, permit).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(!keepalive.is_zero())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "http connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            // Finish the request in flight (upgraded connections live on in their own task).
            conn.as_mut().graceful_shutdown();
            if let Err(error) = conn.await {
                tracing::debug!(%error, "http connection ended with an error during shutdown");
            }
        }
    }
}

async fn route(
    shared: &Arc<Shared>,
    mut req: Request<Incoming>,
    client: Peer,
    permit: Arc<OwnedSemaphorePermit>,
) -> HttpResponse {
    let peer = client.addr;
    let path = req.uri().path().to_owned();
    if websocket::is_websocket_upgrade(&req) {
        return match shared.websocket_routes.iter().find(|r| r.path == path) {
            Some(route) => websocket::upgrade(shared, route.clone(), &mut req, client, permit),
            None => text(
                StatusCode::NOT_FOUND,
                format!("no WebSocket endpoint at {path}"),
            ),
        };
    }
    match path.as_str() {
        "/ping" => text(StatusCode::OK, "pong".into()),
        "/metrics" => {
            let mut response = text(StatusCode::OK, shared.core.stats().to_prometheus());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/version" => json(format!("{{\"version\":\"{}\"}}", env!("CARGO_PKG_VERSION"))),
        "/auth/login" => auth::login(shared, req, peer).await,
        "/auth/logout" => auth::logout(shared, req).await,
        "/health" => health::serve(&shared.core, req.method()).await,
        api if rest::serves(api) => rest::serve(shared, req, peer).await,
        "/" => text(
            StatusCode::OK,
            format!(
                "{} {}\n",
                shared.core.config().name,
                env!("CARGO_PKG_VERSION")
            ),
        ),
        _ => match shared.resources.get(&path) {
            Some(resource) => resources::serve_resource(resource, req.method(), req.headers()),
            None => routes::serve(shared, req, peer).await,
        },
    }
}

fn text(status: StatusCode, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(body: String) -> HttpResponse {
    let mut response = text(StatusCode::OK, body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
