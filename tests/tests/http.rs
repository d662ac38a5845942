//! The plain HTTP endpoints of the HTTP listener: `/ping`, `/version`, `/metrics`
//! (Prometheus text, DESIGN.md §9), and a 404 for anything else.

mod support;

use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A raw HTTP/1.1 GET; returns the whole response (the server closes after it).
async fn get(broker: &TestBroker, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(broker.http).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("the response comes")
        .unwrap();
    response
}

#[tokio::test]
async fn ping_version_and_404() {
    let broker = start().await;
    assert!(get(&broker, "/ping").await.ends_with("\r\n\r\npong"));
    let version = get(&broker, "/version").await;
    assert!(version.starts_with("HTTP/1.1 200"), "{version}");
    assert!(version.contains("\"version\":"), "{version}");
    assert!(
        get(&broker, "/nothing-here")
            .await
            .starts_with("HTTP/1.1 404")
    );
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn metrics_count_sessions_and_deliveries() {
    let broker = start().await;
    let mut native = broker.native().await;
    native.on("/m/**").await;
    native.set("/m/a", json!({"n": 1})).await;
    native.next_event().await;

    let metrics = get(&broker, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    assert!(metrics.contains("\npathmq_sessions 1\n"), "{metrics}");
    assert!(metrics.contains("\npathmq_subscriptions 1\n"), "{metrics}");
    assert!(
        metrics.contains("\npathmq_delivered_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("\npathmq_dropped_total 0\n"), "{metrics}");
    broker.broker.shutdown().await;
}
