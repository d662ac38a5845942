//! At-least-once messages are held back at the publisher, not dropped, when a
//! subscriber's queue is full (issue 3: "a PUBACKed message is delivered or its loss is
//! counted under an explicit, documented policy").

mod support;

use rumqttc::QoS;
use support::*;

#[tokio::test]
async fn a_slow_qos1_subscriber_holds_the_publisher_back_and_loses_nothing() {
    let mut config = pathmq::config::Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.engine = pathmq::config::Engine::Memory;
    config.limits.session_queue = 8;
    let broker = start_with(config).await;

    let (sub, mut sub_loop) = broker.mqtt_v4("slow-sub");
    sub.subscribe("bp/#", QoS::AtLeastOnce).await.unwrap();
    poll_v4(&mut sub_loop, v4_suback).await;

    // The subscriber does not read while the publisher sends 300 QoS 1 messages: the
    // broker's in-flight window to it fills, then its queue, then the publisher waits.
    const N: usize = 300;
    let (publisher, pub_loop) = broker.mqtt_v4("fast-pub");
    let _pub_events = spawn_v4(pub_loop);
    let sender = tokio::spawn(async move {
        for i in 0..N {
            publisher
                .publish("bp/t", QoS::AtLeastOnce, false, i.to_string())
                .await
                .unwrap();
        }
        publisher
    });
    // 32 in flight to the subscriber + 8 queued + 1 beyond the queue's capacity: that one
    // is kept and its publisher held back (no PUBACK) until the subscriber reads. Without
    // backpressure it and later ones would be dropped.
    let core = broker.broker.core().clone();
    tokio::time::timeout(WAIT, async {
        while core.stats().delivered < 41 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the publisher fills the subscriber's window and queue");

    // Now read: every message arrives, in order, none dropped.
    for i in 0..N {
        let p = poll_v4(&mut sub_loop, v4_publish).await;
        assert_eq!(
            p.payload,
            i.to_string().as_bytes(),
            "message {i} in order; {:?}",
            broker.broker.core().stats()
        );
    }
    let _publisher = sender.await.unwrap();
    assert_eq!(
        broker.broker.core().stats().dropped,
        0,
        "nothing was dropped"
    );
    broker.broker.shutdown().await;
}
