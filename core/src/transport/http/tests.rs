//! The listener as a whole over real sockets on `127.0.0.1:0`: keep-alive and its idle
//! timeout, and the paths it keeps for itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::security::mem_store::MemStore;

/// Every wait here is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

/// A listener with `config` over an in-memory core; its address and core.
async fn start(config: HttpConfig) -> (SocketAddr, Core) {
    let core = Core::builder_arc(Arc::new(MemStore::default())).build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_http(
        listener,
        config,
        core.clone(),
        Limits::default(),
    ));
    (addr, core)
}

/// Sends `GET path` on `stream` and reads its whole response (head and `Content-Length`
/// body), bounded by [`WAIT`].
async fn get(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::timeout(WAIT, async {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = (head.lines())
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed mid-response: {text}");
            bytes.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("the response comes")
}

/// Waits (bounded by [`WAIT`]) until the server closes `stream`; how long that took.
async fn closed(stream: &mut TcpStream) -> Duration {
    let since = Instant::now();
    let mut chunk = [0u8; 64];
    let read = tokio::time::timeout(WAIT, stream.read(&mut chunk))
        .await
        .expect("the server closes the connection");
    // A reset counts as closed too.
    assert_eq!(read.unwrap_or(0), 0, "no bytes come after the response");
    since.elapsed()
}

/// Guards `HttpConfig::keepalive_timeout`: a connection serves several requests, then is
/// closed once it has been idle for the timeout (not before, not never).
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let timeout = Duration::from_millis(400);
    let config = HttpConfig {
        keepalive_timeout: timeout,
        ..HttpConfig::default()
    };
    let (addr, core) = start(config).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for _ in 0..2 {
        let response = get(&mut stream, "/ping").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("\r\n\r\npong"), "{response}");
    }
    // Idle for less than the timeout: still open, and the timer starts again.
    tokio::time::sleep(timeout / 2).await;
    let response = get(&mut stream, "/ping").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let idle = closed(&mut stream).await;
    assert!(
        idle >= timeout.mul_f32(0.75),
        "closed after {idle:?}, before the {timeout:?} timeout"
    );
    core.begin_shutdown();
}

/// A zero keep-alive timeout closes each connection after its response.
#[tokio::test]
async fn a_zero_keep_alive_timeout_closes_after_each_response() {
    let config = HttpConfig {
        keepalive_timeout: Duration::ZERO,
        ..HttpConfig::default()
    };
    let (addr, core) = start(config).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let response = get(&mut stream, "/ping").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(closed(&mut stream).await < WAIT);
    core.begin_shutdown();
}

/// `/health`, `/api/openapi.json` and anything under `/api` or `/auth` are the
/// listener's: neither a protocol's resource nor a route can take them.
#[test]
fn the_listener_keeps_its_paths() {
    for taken in [
        "/",
        "/health",
        "/metrics",
        "/api",
        "/api/",
        "/api/data/x",
        "/api/openapi.json",
        "/auth",
        "/auth/other",
    ] {
        assert!(is_taken(taken), "{taken}");
    }
    for free in ["/apix", "/browser_client", "/healthz", "/authors"] {
        assert!(!is_taken(free), "{free}");
    }
}
