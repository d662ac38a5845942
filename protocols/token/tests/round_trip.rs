//! Tokens in and out through a real TLS client with a client certificate: a token
//! reaches subscribers of the inbound path byte for byte, `set` mode stores it, events on
//! the replies path come back as tokens, and many tokens keep their order both ways.

mod common;

use bytes::Bytes;
use common::{Server, WAIT, next_event, subscribe, write};
use futures_util::{SinkExt, StreamExt as _};
use pathmq_core::{Format, Glob, Payload, Request, Response};
use pathmq_token::{Mode, TokenConfig};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

#[tokio::test]
async fn a_token_reaches_inbound_subscribers_byte_exact_and_is_not_stored() {
    let server = Server::start(TokenConfig::default()).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut client = server.connect_as("device-1").await;
    for token in [&b"Hello!"[..], &[0xff, 0x00, 0x01], b"{\"c\":21.5}", b""] {
        client.send(token).await.unwrap();
        let event = next_event(&watcher).await;
        assert_eq!(event.path.as_str(), "/tokens/device-1/in");
        assert_eq!(&event.payload.bytes[..], token, "the bytes as sent");
    }
    let formats = async {
        client.send(b"[1,2]").await.unwrap();
        next_event(&watcher).await.payload.format
    };
    assert_eq!(
        formats.await,
        Format::Json,
        "classified as MQTT payloads are"
    );
    let target = Glob::parse("/tokens/device-1/in").unwrap();
    let stored = watcher.request(Request::Get { target }).await.unwrap();
    assert!(
        matches!(stored, Response::Record(None)),
        "publish mode stores nothing"
    );
}

#[tokio::test]
async fn set_mode_stores_the_last_token() {
    let mut config = TokenConfig::default();
    config.mode = Mode::Set;
    let server = Server::start(config).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut client = server.connect_as("device-2").await;
    client.send(b"first").await.unwrap();
    client.send(b"second").await.unwrap();
    next_event(&watcher).await;
    assert_eq!(&next_event(&watcher).await.payload.bytes[..], b"second");
    let target = Glob::parse("/tokens/device-2/in").unwrap();
    let Response::Record(Some(record)) = watcher.request(Request::Get { target }).await.unwrap()
    else {
        panic!("the token is stored");
    };
    assert_eq!(
        record.payload,
        Payload::detect(Bytes::from_static(b"second"))
    );
}

#[tokio::test]
async fn events_on_the_replies_path_come_back_as_their_bytes() {
    let server = Server::start(TokenConfig::default()).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut client = server.connect_as("device-3").await;
    // Once a token is through, the connection has subscribed to its replies.
    client.send(b"Hello!").await.unwrap();
    next_event(&watcher).await;
    let writer = server.writer();
    let out = "/tokens/device-3/out";
    let raw = Payload::detect(Bytes::from_static(b"I am happy to see you!"));
    write(&writer, out, raw, false).await;
    assert_eq!(&client.recv().await[..], b"I am happy to see you!");
    let json = Payload::json(&serde_json::json!({"a": 1, "b": [true]}));
    write(&writer, out, json, true).await;
    assert_eq!(&client.recv().await[..], br#"{"a":1,"b":[true]}"#);
    let binary = Payload::detect(Bytes::from_static(&[0, 159, 146, 150]));
    write(&writer, out, binary, false).await;
    assert_eq!(&client.recv().await[..], &[0, 159, 146, 150]);
    // Another client's replies, and removes, are not sent.
    write(
        &writer,
        "/tokens/device-4/out",
        Payload::json(&1.into()),
        false,
    )
    .await;
    let target = Glob::parse(out).unwrap();
    let remove = Request::Remove {
        target,
        meta: None,
        event_id: None,
        consistency: Default::default(),
    };
    writer.request(remove).await.unwrap();
    write(&writer, out, Payload::json(&2.into()), false).await;
    assert_eq!(&client.recv().await[..], b"2", "nothing came in between");
}

#[tokio::test]
async fn a_replies_pattern_below_the_path_and_no_replies_both_work() {
    let mut config = TokenConfig::default();
    config.replies = "/tokens/{{username}}/out/**".into();
    let server = Server::start(config).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut client = server.connect_as("cam").await;
    client.send(b"x").await.unwrap();
    next_event(&watcher).await;
    let writer = server.writer();
    write(
        &writer,
        "/tokens/cam/out/a/b",
        Payload::json(&3.into()),
        false,
    )
    .await;
    assert_eq!(&client.recv().await[..], b"3");

    let mut config = TokenConfig::default();
    config.replies = String::new();
    let server = Server::start(config).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut client = server.connect_as("cam").await;
    client.send(b"y").await.unwrap();
    next_event(&watcher).await;
    assert_eq!(
        watcher.core().router().len(),
        1,
        "only the watcher subscribed"
    );
}

#[tokio::test]
async fn many_tokens_keep_their_order_in_both_directions() {
    const N: usize = 2_000;
    let server = Server::start(TokenConfig::default()).await;
    // An echo: every token on an inbound path goes back on that client's replies path.
    let echo = server.watch("/tokens/*/in").await;
    let echo_task = tokio::spawn(async move {
        for i in 0..N {
            let event = next_event(&echo).await;
            assert_eq!(event.payload.bytes, i.to_string(), "inbound order");
            let out = event.path.as_str().replace("/in", "/out");
            write(&echo, &out, event.payload.clone(), false).await;
        }
    });
    let client = server.connect_as("device-5").await;
    let (read, write_half) = tokio::io::split(client.into_inner());
    let mut reader = FramedRead::new(read, LengthDelimitedCodec::new());
    let mut writer = FramedWrite::new(write_half, LengthDelimitedCodec::new());
    let sender = tokio::spawn(async move {
        for i in 0..N {
            writer.feed(Bytes::from(i.to_string())).await.unwrap();
        }
        SinkExt::<Bytes>::flush(&mut writer).await.unwrap();
        writer
    });
    for i in 0..N {
        let token = tokio::time::timeout(WAIT, reader.next())
            .await
            .expect("a reply in time")
            .expect("open")
            .unwrap();
        assert_eq!(token, i.to_string(), "reply order");
    }
    echo_task.await.unwrap();
    let _writer = sender.await.unwrap();
    // And a burst from the server alone.
    let burst = server.writer();
    for i in 0..N {
        let payload = Payload::detect(Bytes::from(format!("b{i}")));
        write(&burst, "/tokens/device-5/out", payload, false).await;
    }
    for i in 0..N {
        let token = tokio::time::timeout(WAIT, reader.next()).await.unwrap();
        assert_eq!(token.unwrap().unwrap(), format!("b{i}"));
    }
}

#[tokio::test]
async fn without_a_certificate_the_peer_address_is_the_identity_when_allowed() {
    let mut config = TokenConfig::default();
    config.require_certificate = false;
    config.tls = false;
    let core = pathmq_core::Core::builder(pathmq_storage::MemoryStore::new()).build();
    let server = Server::start_on(core, config, common::Tls::Off).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut client = server.connect_plain().await;
    client.send(b"plain").await.unwrap();
    let event = next_event(&watcher).await;
    let address = event.path.segments().nth(1).unwrap().to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    // A replier answers on the path named by that address.
    let writer = server.writer();
    let out = format!("/tokens/{address}/out");
    write(&writer, &out, Payload::json(&"ok".into()), false).await;
    assert_eq!(&client.recv().await[..], br#""ok""#);
}

#[tokio::test]
async fn shutdown_closes_the_stream_cleanly() {
    let server = Server::start(TokenConfig::default()).await;
    let watcher = server.watch("/tokens/*/in").await;
    let mut client = server.connect_as("device-6").await;
    client.send(b"hi").await.unwrap();
    next_event(&watcher).await;
    let writer = server.writer();
    subscribe(&writer, "/unrelated").await;
    write(
        &writer,
        "/tokens/device-6/out",
        Payload::json(&1.into()),
        false,
    )
    .await;
    server.core.begin_shutdown();
    let mut got = Vec::new();
    while let Some(token) = client.next().await.expect("a clean close") {
        got.push(token);
    }
    // The core's close wins over what is still queued: at most that token came first.
    assert!(got.len() <= 1, "{got:?}");
}
