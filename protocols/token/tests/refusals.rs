//! Clients sent away: certificates of another CA, expired ones and none fail the TLS
//! handshake; the protocol refuses a client without a certificate and a CN that cannot
//! name a path; an oversized or truncated token closes that connection only.

mod common;

use common::{Ca, Server, Tls, next_event};
use pathmq_core::Core;
use pathmq_token::TokenConfig;

fn core() -> Core {
    Core::builder(pathmq_storage::MemoryStore::new()).build()
}

#[tokio::test]
async fn another_cas_expired_and_missing_certificates_fail_the_handshake() {
    let server = Server::start(TokenConfig::default()).await;
    let other = Ca::new("other CA");
    for (what, identity) in [
        ("another CA", Some(other.client("mallory"))),
        ("expired", Some(server.ca.expired_client("old-device"))),
        ("none", None),
    ] {
        // TLS 1.3 tells a client its certificate was refused after the handshake: on use.
        let refused = match server.connect(identity.as_ref()).await {
            Err(_) => true,
            Ok(mut client) => {
                let _ = client.send(b"let me in").await;
                client.closed().await.is_ok()
            }
        };
        assert!(refused, "{what}: the connection stayed open");
    }
    assert_eq!(
        server.core.stats().sessions_opened,
        0,
        "no session was opened"
    );
}

#[tokio::test]
async fn the_protocol_refuses_a_client_without_certificate_on_optional_tls() {
    let server = Server::start_on(core(), TokenConfig::default(), Tls::Optional).await;
    let mut client = server.connect(None).await.expect("TLS without certificate");
    let _ = client.send(b"anyone there?").await;
    client.closed().await.unwrap();
    assert_eq!(server.core.stats().sessions_opened, 0);
    // A client with a certificate is served on the same listener.
    let watcher = server.watch("/tokens/*/in").await;
    let mut client = server.connect_as("device-1").await;
    client.send(b"me").await.unwrap();
    assert_eq!(
        next_event(&watcher).await.path.as_str(),
        "/tokens/device-1/in"
    );
}

#[tokio::test]
async fn a_common_name_that_cannot_name_one_segment_is_refused() {
    let server = Server::start(TokenConfig::default()).await;
    for cn in ["a/b", "dev+1", "all#", "*"] {
        let mut client = server.connect_as(cn).await;
        let _ = client.send(b"x").await;
        client.closed().await.unwrap();
    }
    assert_eq!(server.core.stats().sessions_opened, 0);
}

#[tokio::test]
async fn an_oversized_token_closes_only_that_connection() {
    let mut config = TokenConfig::default();
    config.max_token = 1024;
    let server = Server::start(config).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut good = server.connect_as("good").await;
    let mut bad = server.connect_as("bad").await;
    good.send(b"before").await.unwrap();
    next_event(&watcher).await;
    bad.send(&[7; 1024]).await.unwrap();
    assert_eq!(
        next_event(&watcher).await.payload.bytes.len(),
        1024,
        "the limit itself passes"
    );
    // A length prefix of 1025 and a few bytes: refused on the prefix, before the body.
    let _ = bad.send_raw(&[0, 0, 4, 1, 1, 2, 3]).await;
    bad.closed().await.unwrap();
    good.send(b"after").await.unwrap();
    let event = next_event(&watcher).await;
    assert_eq!(
        (event.path.as_str(), &event.payload.bytes[..]),
        ("/tokens/good/in", &b"after"[..])
    );
}

#[tokio::test]
async fn a_huge_length_prefix_is_refused_without_reading_the_body() {
    let server = Server::start(TokenConfig::default()).await;
    let mut client = server.connect_as("greedy").await;
    let _ = client.send_raw(&[0xff, 0xff, 0xff, 0xff]).await;
    client.closed().await.unwrap();
}

#[tokio::test]
async fn a_token_cut_short_by_the_end_of_the_stream_is_dropped() {
    let mut config = TokenConfig::default();
    config.require_certificate = false;
    config.tls = false;
    let server = Server::start_on(core(), config, Tls::Off).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut client = server.connect_plain().await;
    client.send(b"whole").await.unwrap();
    // Five bytes announced, two sent, then the client closes its side.
    client.send_raw(&[0, 0, 0, 5, b'h', b'a']).await.unwrap();
    let mut io = client.into_inner();
    tokio::io::AsyncWriteExt::shutdown(&mut io).await.unwrap();
    assert_eq!(&next_event(&watcher).await.payload.bytes[..], b"whole");
    let mut rest = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut io, &mut rest);
    tokio::time::timeout(common::WAIT, read)
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty(), "closed without a token");
    // The server closed after its loop ended: a publish would be queued by now.
    let nothing = futures_util::FutureExt::now_or_never(watcher.recv());
    assert!(nothing.is_none(), "the cut token was not published");
}
