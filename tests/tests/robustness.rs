//! Bad input and vanished clients affect only their own connection: keepalive timeout,
//! malformed MQTT packets, malformed native frames (STYLE: "bad input gets a clear error
//! and loses nothing").

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A 3.1.1 CONNECT with clean session and the given keepalive, client id `raw`.
fn connect_v4(keepalive: u16) -> Vec<u8> {
    let mut p = vec![0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02];
    p.extend_from_slice(&keepalive.to_be_bytes());
    p.extend_from_slice(&[0, 3, b'r', b'a', b'w']);
    p
}

/// An MQTT 5 CONNECT with clean start, keepalive 30, no properties, client id `raw5`.
fn connect_v5() -> Vec<u8> {
    vec![
        0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 30, 0, 0, 4, b'r', b'a', b'w', b'5',
    ]
}

/// Reads until the peer closes; returns everything read. Bounded by [`WAIT`].
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 256];
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the broker must close the connection");
    all
}

async fn assert_mqtt_still_works(broker: &TestBroker) {
    let (client, mut eventloop) = broker.mqtt_v4("still-alive");
    client
        .subscribe("alive", rumqttc::QoS::AtMostOnce)
        .await
        .unwrap();
    poll_v4(&mut eventloop, v4_suback).await;
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn silent_client_is_closed_after_one_and_a_half_keepalives() {
    let broker = start().await;
    let mut stream = TcpStream::connect(broker.mqtt).await.unwrap();
    stream.write_all(&connect_v4(1)).await.unwrap();
    let started = Instant::now();
    let bytes = read_until_closed(&mut stream).await;
    let elapsed = started.elapsed();
    assert_eq!(&bytes[..4], &[0x20, 2, 0, 0], "CONNACK accepted first");
    assert!(
        elapsed >= Duration::from_millis(1400),
        "closed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "closed too late: {elapsed:?}"
    );
    assert_mqtt_still_works(&broker).await;
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn malformed_packets_close_only_that_connection() {
    let broker = start().await;
    let (watcher, mut watch_loop) = broker.mqtt_v4("watcher");
    watcher
        .subscribe("w", rumqttc::QoS::AtMostOnce)
        .await
        .unwrap();
    poll_v4(&mut watch_loop, v4_suback).await;

    // MQTT 5: a packet of the reserved type 0 → DISCONNECT with reason 0x81, then close.
    let mut s5 = TcpStream::connect(broker.mqtt).await.unwrap();
    s5.write_all(&connect_v5()).await.unwrap();
    let mut header = [0u8; 2];
    s5.read_exact(&mut header).await.unwrap();
    assert_eq!(header[0], 0x20, "CONNACK");
    assert!(header[1] < 128, "short CONNACK");
    let mut connack = vec![0u8; header[1] as usize];
    s5.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack[1], 0x00, "CONNACK success");
    s5.write_all(&[0x00, 0x00]).await.unwrap();
    let rest = read_until_closed(&mut s5).await;
    assert_eq!(
        rest.first(),
        Some(&0xE0),
        "an MQTT 5 client is told why with DISCONNECT: {rest:02x?}"
    );
    assert_eq!(
        rest.get(2),
        Some(&0x81),
        "reason code malformed packet: {rest:02x?}"
    );

    // MQTT 3.1.1: a PUBLISH whose remaining length overruns its topic → closed.
    let mut s4 = TcpStream::connect(broker.mqtt).await.unwrap();
    s4.write_all(&connect_v4(30)).await.unwrap();
    s4.write_all(&[0x30, 3, 0, 9, b'a']).await.unwrap();
    read_until_closed(&mut s4).await;

    // Not MQTT at all.
    let mut junk = TcpStream::connect(broker.mqtt).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    read_until_closed(&mut junk).await;

    // The others were not disturbed.
    let (publisher, mut pub_loop) = broker.mqtt_v4("publisher");
    publisher
        .publish("w", rumqttc::QoS::AtLeastOnce, false, b"ok".to_vec())
        .await
        .unwrap();
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
    let p = poll_v4(&mut watch_loop, v4_publish).await;
    assert_eq!(&p.payload[..], b"ok");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn malformed_native_frames_get_errors_and_the_connection_lives() {
    let broker = start().await;
    let mut native = broker.native().await;

    native.send_raw("this is not json").await;
    let error = native.next_frame().await;
    assert_eq!(error["_meta"]["status"], "error", "{error}");
    assert_eq!(error["_meta"]["error"]["code"], 400, "{error}");

    native.send_raw(r#"{"action":"fly","eventId":77}"#).await;
    let error = native.response(77).await.unwrap_err();
    assert_eq!(error["error"]["code"], 400, "{error}");

    let bad_path = native
        .request("set", Some("/a/*"), json!({"x": 1}), None)
        .await
        .unwrap_err();
    assert_eq!(bad_path["error"]["code"], 400, "{bad_path}");
    let bad_path = native
        .request("set", Some(""), json!({"x": 1}), None)
        .await
        .unwrap_err();
    assert_eq!(bad_path["error"]["code"], 400, "{bad_path}");

    // Still usable, and nothing bad was stored.
    native.set("/still/here", json!({"ok": true})).await;
    let got = native.get("/still/here").await;
    assert_eq!(got["data"]["ok"], Value::Bool(true));
    let all = native.get("/a/*").await;
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(1),
        "only the trailing meta: {all}"
    );
    broker.broker.shutdown().await;
}
