//! The HTTP listener: WebSocket upgrades routed by path to protocols, and the small HTTP
//! endpoints of the reference (`/ping`, `/version`; `reference/happn-3-wire.md` §7).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument as _;

use super::Limits;
use crate::pipeline::Core;
use crate::protocol::{BoxIo, Protocol};

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

struct Shared {
    routes: Vec<WebSocketRoute>,
    core: Core,
    limits: Limits,
}

/// Serves HTTP on `listener`: WebSocket upgrades at each route's path, `/ping`,
/// `/version` and `/metrics`, 404 elsewhere; until [`Core::shutdown_token`] is cancelled.
pub async fn run_http(
    listener: TcpListener,
    routes: Vec<WebSocketRoute>,
    core: Core,
    limits: Limits,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let shutdown = core.shutdown_token().clone();
    let shared = Arc::new(Shared {
        routes,
        core: core.clone(),
        limits,
    });
    while let Some((stream, peer, permit)) =
        super::next_connection(&listener, &permits, &shutdown).await
    {
        let span = tracing::info_span!("conn", transport = "http", %peer);
        let shared2 = shared.clone();
        core.tasks()
            .spawn(serve_connection(shared2, stream, peer, permit).instrument(span));
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let permit = Arc::new(permit);
    let shutdown = shared.core.shutdown_token().clone();
    let header_timeout = shared.limits.handshake_timeout;
    let service = hyper::service::service_fn(move |req| {
        let (shared, permit) = (shared.clone(), permit.clone());
        async move { Ok::<_, Infallible>(route(&shared, req, peer, permit)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
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

fn route(
    shared: &Arc<Shared>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    permit: Arc<OwnedSemaphorePermit>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if is_websocket_upgrade(&req) {
        return match shared.routes.iter().find(|r| r.path == path) {
            Some(route) => upgrade(shared, route.clone(), &mut req, peer, permit),
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
        "/" => text(
            StatusCode::OK,
            format!(
                "{} {}\n",
                shared.core.config().name,
                env!("CARGO_PKG_VERSION")
            ),
        ),
        _ => text(StatusCode::NOT_FOUND, format!("not found: {path}")),
    }
}

fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

fn upgrade(
    shared: &Arc<Shared>,
    route: WebSocketRoute,
    req: &mut Request<Incoming>,
    peer: SocketAddr,
    permit: Arc<OwnedSemaphorePermit>,
) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key".into());
    };
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        let mut response = text(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is supported".into(),
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    let accept = derive_accept_key(key.as_bytes());
    let offered = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()))
        .collect::<Vec<_>>();
    let chosen = route
        .subprotocol
        .as_ref()
        .filter(|p| offered.iter().any(|o| o == *p))
        .cloned();

    let on_upgrade = hyper::upgrade::on(req);
    let core = shared.core.clone();
    let max = shared.limits.max_websocket_message;
    let read_buffer = shared.limits.websocket_read_buffer;
    let span = tracing::info_span!("ws", protocol = route.protocol.name(), path = %route.path);
    shared.core.tasks().spawn(
        async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(error) => {
                    tracing::debug!(%error, "websocket upgrade failed");
                    return;
                }
            };
            let io: BoxIo = Box::new(TokioIo::new(upgraded));
            // Frames are written to the socket once 16 KiB are buffered, or on flush.
            let config = WebSocketConfig::default()
                .max_message_size(Some(max))
                .max_frame_size(Some(max))
                .read_buffer_size(read_buffer)
                .write_buffer_size(16 * 1024);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            route.protocol.serve_websocket(core, ws, peer).await;
            drop(permit);
        }
        .instrument(span),
    );

    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(p) = chosen {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    response.body(Full::new(Bytes::new())).unwrap_or_default()
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(body: String) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::OK, body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
