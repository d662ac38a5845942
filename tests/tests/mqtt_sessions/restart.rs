//! Persistent sessions survive a graceful broker restart on the same redb file (DESIGN.md
//! §6): the session present flag, the subscriptions, the queued messages and the
//! unacknowledged in-flight ones. (A `kill -9` is `tests/cli/crash.rs`.)

use rumqttc::QoS;
use rumqttc::v5::mqttbytes::QoS as Q5;

use crate::raw_session::{self, ack, next_publish};
use crate::support::*;
use crate::*;

/// A 3.1.1 (CleanSession 0) and an MQTT 5 (Session Expiry Interval 1 h) subscriber are
/// offline while QoS 1 and 2 messages are published; the broker restarts; both resume
/// their sessions (Session Present 1 [MQTT-3.2.2-2]), get the queued messages in order
/// per topic, and still hold their subscriptions: a message published after the restart
/// reaches them without a new SUBSCRIBE [MQTT-3.1.2-4].
#[tokio::test]
async fn sessions_subscriptions_and_queues_survive_a_restart() {
    const N: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data").join("sessions.redb");
    let broker = start_redb(&file).await;
    let (client, mut eventloop, _) = connect_v4(options_v4(&broker, "durable-v4", false)).await;
    subscribe_v4(&client, &mut eventloop, "durable/q1", QoS::AtLeastOnce).await;
    subscribe_v4(&client, &mut eventloop, "durable/q2", QoS::ExactlyOnce).await;
    disconnect_v4(client, eventloop).await;
    let v5 = |broker: &TestBroker| options_v5(broker, "durable-v5", false, Some(3_600));
    let (client, mut eventloop, _) = connect_v5(v5(&broker)).await;
    subscribe_v5(&client, &mut eventloop, "durable/q1", Q5::AtLeastOnce).await;
    disconnect_v5(client, eventloop).await;

    let mut publisher = Publisher::new(&broker, "durable-pub").await;
    for i in 0..N {
        publisher
            .send("durable/q1", QoS::AtLeastOnce, format!("one {i}"))
            .await;
        publisher
            .send("durable/q2", QoS::ExactlyOnce, format!("two {i}"))
            .await;
    }
    drop(publisher);
    broker.broker.shutdown().await;

    let broker = start_redb(&file).await;
    let (client4, mut loop4, present) = connect_v4(options_v4(&broker, "durable-v4", false)).await;
    assert!(present, "3.1.1 session survived the restart");
    let (mut one, mut two) = (Vec::new(), Vec::new());
    while one.len() + two.len() < 2 * N {
        let (topic, qos, payload, _) = next_v4(&mut loop4).await;
        match (topic.as_str(), qos) {
            ("durable/q1", QoS::AtLeastOnce) => one.push(payload),
            ("durable/q2", QoS::ExactlyOnce) => two.push(payload),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(one, (0..N).map(|i| format!("one {i}")).collect::<Vec<_>>());
    assert_eq!(two, (0..N).map(|i| format!("two {i}")).collect::<Vec<_>>());

    let (client5, mut loop5, connack) = connect_v5(v5(&broker)).await;
    assert!(
        connack.session_present,
        "MQTT 5 session survived the restart"
    );
    for i in 0..N {
        let p = poll_v5(&mut loop5, v5_publish).await;
        assert_eq!(p.payload, format!("one {i}").into_bytes());
    }

    // The subscriptions came back with the sessions.
    let mut publisher = Publisher::new(&broker, "durable-pub").await;
    publisher
        .send("durable/q1", QoS::AtLeastOnce, "after")
        .await;
    publisher
        .send("durable/q2", QoS::ExactlyOnce, "after")
        .await;
    let mut got = vec![next_v4(&mut loop4).await, next_v4(&mut loop4).await];
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("durable/q1".into(), QoS::AtLeastOnce, "after".into(), false),
            ("durable/q2".into(), QoS::ExactlyOnce, "after".into(), false),
        ]
    );
    let p = poll_v5(&mut loop5, v5_publish).await;
    assert_eq!(
        (&p.topic[..], &p.payload[..]),
        (&b"durable/q1"[..], &b"after"[..])
    );
    disconnect_v4(client4, loop4).await;
    disconnect_v5(client5, loop5).await;
    broker.broker.shutdown().await;
}

/// A QoS 1 PUBLISH sent before the restart and never PUBACKed is resent after it, DUP 1,
/// with its packet identifier [MQTT-4.4.0-1, MQTT-3.3.1-1].
#[tokio::test]
async fn an_unacknowledged_qos1_message_is_resent_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inflight.redb");
    let broker = start_redb(&file).await;
    let id = "durable-inflight";
    let (mut client, _) = raw_session::connect(broker.mqtt, 4, id, false, None).await;
    raw_session::subscribe(&mut client, 4, 1, "durable/inflight", 1).await;
    let mut publisher = Publisher::new(&broker, "durable-inflight-pub").await;
    publisher
        .send("durable/inflight", QoS::AtLeastOnce, "unacked")
        .await;
    let first = next_publish(&mut client, 4).await;
    assert_eq!((&first.payload[..], first.dup), (&b"unacked"[..], false));
    drop(client);
    drop(publisher);
    broker.broker.shutdown().await;

    let broker = start_redb(&file).await;
    let (mut client, present) = raw_session::connect(broker.mqtt, 4, id, false, None).await;
    assert!(present, "the session survived the restart");
    let again = next_publish(&mut client, 4).await;
    assert!(again.dup, "[MQTT-3.3.1-1]: {again:?}");
    assert_eq!(again.pkid, first.pkid, "[MQTT-4.4.0-1]");
    assert_eq!(
        (&again.topic[..], again.qos, &again.payload[..]),
        ("durable/inflight", 1, &b"unacked"[..])
    );
    client.send(&ack(0x40, again.pkid)).await;
    broker.broker.shutdown().await;
}
