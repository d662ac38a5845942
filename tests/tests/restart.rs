//! Data written before a restart is there after it (redb store, DESIGN.md §1).

mod support;

use rumqttc::QoS;
use serde_json::json;
use support::*;

#[tokio::test]
async fn records_and_retained_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data").join("pathmq.redb");

    let broker = start_redb(&file).await;
    let mut native = broker.native().await;
    native.set("/persist/a", json!({"n": 1})).await;
    native
        .request(
            "set",
            Some("/persist/a"),
            json!({"m": 2}),
            Some(json!({"merge": true})),
        )
        .await
        .unwrap();
    let (client, mut eventloop) = broker.mqtt_v4("persister");
    client
        .publish("persist/b", QoS::AtLeastOnce, true, b"hello".to_vec())
        .await
        .unwrap();
    poll_v4(&mut eventloop, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))).then_some(())
    })
    .await;
    drop(native);
    broker.broker.shutdown().await;

    let broker = start_redb(&file).await;
    let mut native = broker.native().await;
    let got = native.get("/persist/a").await;
    assert_eq!(got["data"]["n"], 1, "{got}");
    assert_eq!(got["data"]["m"], 2, "{got}");
    let (client, mut eventloop) = broker.mqtt_v4("reader");
    client
        .subscribe("persist/b", QoS::AtLeastOnce)
        .await
        .unwrap();
    let p = poll_v4(&mut eventloop, v4_publish).await;
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"hello");
    broker.broker.shutdown().await;
}
