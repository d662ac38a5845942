//! HTTPS and WSS on the HTTP listener, and the native TCP listener over TLS.

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::support::pki::Ca;
use crate::support::*;

/// A broker whose HTTP listener serves HTTPS/WSS and whose native TCP listener serves TLS.
async fn tls_broker(dir: &std::path::Path, ca: &Ca) -> TestBroker {
    let (cert, key, _) = ca.write(dir, &ca.server());
    let mut config = loopback_config();
    config.http.tls = true;
    config.native_tcp.enabled = true;
    config.native_tcp.tls = true;
    config.native_tcp.listen = "127.0.0.1:0".parse().unwrap();
    config.tls.cert_path = Some(cert);
    config.tls.key_path = Some(key);
    start_with(config).await
}

/// A WebSocket over TLS to `path` on the broker's HTTP listener.
async fn wss(
    broker: &TestBroker,
    ca: &Ca,
    path: &str,
    subprotocol: Option<&str>,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tls = pki::connect(broker.http, ca.client_config(None))
        .await
        .unwrap();
    let url = format!("wss://localhost:{}{path}", broker.http.port());
    let mut request = url.into_client_request().unwrap();
    if let Some(subprotocol) = subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", subprotocol.parse().unwrap());
    }
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, tls))
        .await
        .unwrap()
        .unwrap();
    ws
}

/// Sends a native request and returns the answer with its event id.
async fn ask<S>(ws: &mut S, id: u64, action: &str, path: Option<&str>, data: Value) -> Value
where
    S: futures_util::Sink<Message>
        + futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    let mut request = json!({"action": action, "eventId": id, "data": data});
    if let Some(path) = path {
        request["path"] = json!(path);
    }
    ws.send(Message::text(request.to_string())).await.unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            let Message::Text(text) = ws.next().await.unwrap().unwrap() else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<Value>(&text) else {
                continue; // a heartbeat
            };
            let meta = match &value {
                Value::Array(items) => items.last().cloned().unwrap_or_default()["_meta"].clone(),
                other => other["_meta"].clone(),
            };
            if meta["eventId"] == id {
                return value;
            }
        }
    })
    .await
    .expect("no answer")
}

#[tokio::test]
async fn the_native_protocol_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let broker = tls_broker(dir.path(), &ca).await;
    let mut ws = wss(&broker, &ca, "/", None).await;
    ask(
        &mut ws,
        1,
        "configure-session",
        None,
        json!({"protocol": "happn_4"}),
    )
    .await;
    ask(&mut ws, 2, "login", None, json!({})).await;
    let set = ask(&mut ws, 3, "set", Some("/secure/a"), json!({"v": 1})).await;
    assert_eq!(set["_meta"]["status"], "ok", "{set}");
    let got = ask(&mut ws, 4, "get", Some("/secure/a"), Value::Null).await;
    assert_eq!(got["data"]["v"], 1, "{got}");

    // A plain WebSocket to the TLS listener gets nowhere.
    let plain = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{}/", broker.http)),
    )
    .await
    .unwrap();
    assert!(plain.is_err(), "plain HTTP on an HTTPS listener");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_over_wss_and_https_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let broker = tls_broker(dir.path(), &ca).await;
    let mut ws = wss(&broker, &ca, "/mqtt", Some("mqtt")).await;
    let connect = vec![
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 2, b'w', b's',
    ];
    ws.send(Message::binary(connect)).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        reply.into_data().as_ref(),
        [0x20, 2, 0, 0],
        "CONNACK over WSS"
    );

    let mut tls = pki::connect(broker.http, ca.client_config(None))
        .await
        .unwrap();
    tls.write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, tls.read_to_string(&mut response))
        .await
        .unwrap()
        .ok();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("pong"), "{response}");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn the_native_protocol_over_tcp_with_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let broker = tls_broker(dir.path(), &ca).await;
    let addr = broker.broker.native_tcp_addr().unwrap();
    let mut tls = pki::connect(addr, ca.client_config(None)).await.unwrap();
    for (id, action, path, data) in [
        (1, "configure-session", None, json!({"protocol": "happn_4"})),
        (2, "login", None, json!({})),
        (3, "set", Some("/tcp/tls"), json!({"over": "tls"})),
        (4, "get", Some("/tcp/tls"), Value::Null),
    ] {
        let mut request = json!({"action": action, "eventId": id, "data": data});
        if let Some(path) = path {
            request["path"] = json!(path);
        }
        let frame = request.to_string().into_bytes();
        tls.write_all(&(frame.len() as u32).to_be_bytes())
            .await
            .unwrap();
        tls.write_all(&frame).await.unwrap();
        let answer = tokio::time::timeout(WAIT, async {
            loop {
                let mut len = [0u8; 4];
                tls.read_exact(&mut len).await.unwrap();
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                tls.read_exact(&mut body).await.unwrap();
                let value: Value = serde_json::from_slice(&body).unwrap_or_default();
                if value["_meta"]["eventId"] == id {
                    return value;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(answer["_meta"]["status"], "ok", "{action}: {answer}");
        if action == "get" {
            assert_eq!(answer["data"]["over"], "tls", "{answer}");
        }
    }
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn wss_with_client_certificates_refuses_wrong_and_expired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let (cert, key, ca_path) = ca.write(dir.path(), &ca.server());
    let mut config = loopback_config();
    config.http.tls = true;
    config.tls.cert_path = Some(cert);
    config.tls.key_path = Some(key);
    config.tls.client_ca_path = Some(ca_path);
    config.tls.require_client_certificate = true;
    let broker = start_with(config).await;
    let url = format!("wss://localhost:{}/", broker.http.port());

    let upgrade = |identity: Option<pki::Identity>| {
        let config = ca.client_config(identity.as_ref());
        let url = url.clone();
        async move {
            let tls = pki::connect(broker.http, config).await?;
            let request = url.into_client_request().map_err(std::io::Error::other)?;
            tokio_tungstenite::client_async(request, tls)
                .await
                .map(drop)
                .map_err(std::io::Error::other)
        }
    };
    let good = tokio::time::timeout(WAIT, upgrade(Some(ca.client("browser-1")))).await;
    assert!(matches!(good, Ok(Ok(()))), "{good:?}");
    for (what, identity) in [
        ("another CA", Some(Ca::new("other CA").client("mallory"))),
        ("expired", Some(ca.expired_client("old"))),
        ("none", None),
    ] {
        let refused = tokio::time::timeout(WAIT, upgrade(identity)).await.unwrap();
        assert!(refused.is_err(), "{what}: {refused:?}");
    }
    broker.broker.shutdown().await;
}
