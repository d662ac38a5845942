//! The HTTP listener: WebSocket upgrades routed by path to protocols, the small HTTP
//! endpoints of the reference (`/ping`, `/version`; `reference/happn-3-wire.md` §7), and
//! the static resources protocols provide ([`Protocol::http_resources`], e.g. the browser
//! client at `/browser_client`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hasher as _};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument as _;

use super::Limits;
use crate::pipeline::Core;
use crate::protocol::{BoxIo, HttpResource, Protocol};

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
    /// The protocols' static resources by path.
    resources: HashMap<String, Resource>,
    core: Core,
    limits: Limits,
}

/// The paths the listener answers itself; a protocol's resource cannot take them.
const BUILT_IN: [&str; 4] = ["/", "/ping", "/version", "/metrics"];

/// A protocol's [`HttpResource`], with its headers ready.
struct Resource {
    content_type: HeaderValue,
    /// A strong validator derived from the body: the same bytes give the same tag (also
    /// after a restart of the same build), so a browser's cached copy stays valid until
    /// the bytes change.
    etag: HeaderValue,
    body: Bytes,
}

impl Resource {
    fn new(resource: HttpResource) -> Result<Self, header::InvalidHeaderValue> {
        let mut hasher = DefaultHasher::new();
        hasher.write(&resource.body);
        let etag = format!("\"{:x}-{:016x}\"", resource.body.len(), hasher.finish());
        Ok(Self {
            content_type: HeaderValue::from_str(&resource.content_type)?,
            etag: HeaderValue::from_str(&etag)?,
            body: resource.body,
        })
    }
}

/// The static resources of the routes' protocols, each protocol asked once. A path taken
/// by the listener itself or by an earlier resource is logged and skipped.
fn collect_resources(routes: &[WebSocketRoute]) -> HashMap<String, Resource> {
    let mut asked: Vec<&Arc<dyn Protocol>> = Vec::new();
    let mut resources = HashMap::new();
    for route in routes {
        if asked.iter().any(|p| Arc::ptr_eq(p, &route.protocol)) {
            continue;
        }
        asked.push(&route.protocol);
        for resource in route.protocol.http_resources() {
            let path = resource.path.clone().into_owned();
            let protocol = route.protocol.name();
            if BUILT_IN.contains(&path.as_str()) || resources.contains_key(&path) {
                tracing::warn!(%path, protocol, "HTTP resource path already taken; not served");
                continue;
            }
            match Resource::new(resource) {
                Ok(served) => {
                    resources.insert(path, served);
                }
                Err(error) => {
                    tracing::warn!(%path, protocol, %error, "HTTP resource has a bad header value; not served");
                }
            }
        }
    }
    resources
}

/// Serves HTTP on `listener`: WebSocket upgrades at each route's path, `/ping`,
/// `/version` and `/metrics`, the routes' protocols' static resources
/// ([`Protocol::http_resources`], on `GET` and `HEAD`), 404 elsewhere; until
/// [`Core::shutdown_token`] is cancelled.
pub async fn run_http(
    listener: TcpListener,
    routes: Vec<WebSocketRoute>,
    core: Core,
    limits: Limits,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let shutdown = core.shutdown_token().clone();
    let shared = Arc::new(Shared {
        resources: collect_resources(&routes),
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
        _ => match shared.resources.get(&path) {
            Some(resource) => serve_resource(resource, req.method(), req.headers()),
            None => text(StatusCode::NOT_FOUND, format!("not found: {path}")),
        },
    }
}

/// Answers a request for a static resource: the body on `GET`, the headers alone on
/// `HEAD`, `304 Not Modified` when `If-None-Match` names its tag, 405 for other methods.
fn serve_resource(
    resource: &Resource,
    method: &Method,
    headers: &header::HeaderMap,
) -> Response<Full<Bytes>> {
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here; use GET or HEAD"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag.as_bytes() == resource.etag.as_bytes());
    let (status, body) = match (fresh, head) {
        (true, _) => (StatusCode::NOT_MODIFIED, Bytes::new()),
        (false, true) => (StatusCode::OK, Bytes::new()),
        (false, false) => (StatusCode::OK, resource.body.clone()),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::ETAG, resource.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if status == StatusCode::OK {
        headers.insert(header::CONTENT_TYPE, resource.content_type.clone());
        // On HEAD, the length of the body a GET would get.
        headers.insert(header::CONTENT_LENGTH, resource.body.len().into());
    }
    response
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    struct Static(Vec<HttpResource>);

    #[async_trait::async_trait]
    impl Protocol for Static {
        fn name(&self) -> &'static str {
            "static"
        }

        fn http_resources(&self) -> Vec<HttpResource> {
            self.0.clone()
        }
    }

    fn route(path: &str, protocol: &Arc<dyn Protocol>) -> WebSocketRoute {
        WebSocketRoute {
            path: path.into(),
            subprotocol: None,
            protocol: protocol.clone(),
        }
    }

    fn body(response: Response<Full<Bytes>>) -> Bytes {
        let collect = response.into_body().collect();
        futures_util::FutureExt::now_or_never(collect)
            .and_then(Result::ok)
            .map(|c| c.to_bytes())
            .unwrap_or_default()
    }

    /// Guards the first-wins rule: a built-in path or one already given is not taken, and
    /// a protocol routed at two paths is asked once.
    #[test]
    fn resources_keep_the_first_and_leave_built_ins_alone() {
        let first: Arc<dyn Protocol> = Arc::new(Static(vec![
            HttpResource::new("/client.js", "application/javascript", "first"),
            HttpResource::new("/ping", "text/plain", "not pong"),
        ]));
        let second: Arc<dyn Protocol> = Arc::new(Static(vec![
            HttpResource::new("/client.js", "application/javascript", "second"),
            HttpResource::new("/other", "text/plain", "other"),
            HttpResource::new("/bad", "text/plain\n", "bad header"),
        ]));
        let routes = [
            route("/", &first),
            route("/primus", &first),
            route("/x", &second),
        ];
        let resources = collect_resources(&routes);
        let mut paths: Vec<_> = resources.keys().map(String::as_str).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["/client.js", "/other"]);
        assert_eq!(&resources["/client.js"].body[..], b"first");
    }

    #[test]
    fn resources_answer_get_head_and_revalidation() {
        let resource =
            Resource::new(HttpResource::new("/c.js", "application/javascript", "abc")).unwrap();
        let none = header::HeaderMap::new();

        let get = serve_resource(&resource, &Method::GET, &none);
        assert_eq!(get.status(), StatusCode::OK);
        assert_eq!(
            get.headers()[header::CONTENT_TYPE],
            "application/javascript"
        );
        assert_eq!(get.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(get.headers()[header::ETAG], resource.etag);
        assert_eq!(&body(get)[..], b"abc");

        let head = serve_resource(&resource, &Method::HEAD, &none);
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()[header::CONTENT_LENGTH], "3");
        assert!(body(head).is_empty());

        let mut cached = header::HeaderMap::new();
        let tags = format!("\"other\", W/{}", resource.etag.to_str().unwrap());
        cached.insert(header::IF_NONE_MATCH, tags.parse().unwrap());
        let revalidated = serve_resource(&resource, &Method::GET, &cached);
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        assert!(body(revalidated).is_empty());

        let mut stale = header::HeaderMap::new();
        stale.insert(header::IF_NONE_MATCH, "\"other\"".parse().unwrap());
        assert_eq!(
            serve_resource(&resource, &Method::GET, &stale).status(),
            StatusCode::OK
        );

        let post = serve_resource(&resource, &Method::POST, &none);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");

        // The same bytes give the same tag (also after a restart); other bytes another.
        let again = Resource::new(HttpResource::new("/d.js", "text/plain", "abc")).unwrap();
        let other =
            Resource::new(HttpResource::new("/c.js", "application/javascript", "abd")).unwrap();
        assert_eq!(again.etag, resource.etag);
        assert_ne!(other.etag, resource.etag);
    }
}
