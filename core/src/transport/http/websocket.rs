//! WebSocket upgrades: the handshake (RFC 6455 §4.2) answered on the HTTP connection, the
//! upgraded stream handed to the route's protocol in a tracked task.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument as _;

use super::{Shared, WebSocketRoute, text};
use crate::protocol::{BoxIo, Peer};

pub(super) fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

pub(super) fn upgrade(
    shared: &Arc<Shared>,
    route: WebSocketRoute,
    req: &mut Request<Incoming>,
    peer: Peer,
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
