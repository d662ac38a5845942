//! MQTT 5 shared subscriptions (§4.8.2, `$share/<group>/<filter>`), with rumqttc and
//! mosquitto_sub.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use support::*;

/// An MQTT 5 client subscribed to `filter` at QoS 1 (acknowledging by itself unless
/// `manual_acks`), its events forwarded to a channel.
async fn member(
    broker: &TestBroker,
    id: &str,
    filter: &str,
    manual_acks: bool,
) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let mut options = MqttOptions::new(id, "127.0.0.1", broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_manual_acks(manual_acks);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    poll_v5(&mut eventloop, v5_suback).await;
    (client, forward(eventloop))
}

/// Polls `eventloop` in a task, sending every event on (while anyone listens); ends when
/// the connection does.
fn forward(mut eventloop: EventLoop) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            let _ = tx.send(event);
        }
    });
    rx
}

/// The payloads of the PUBLISHes that arrive within `within`.
async fn received(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    within: Duration,
) -> Vec<String> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if let Event::Incoming(Packet::Publish(p)) = event {
            out.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
    }
    out
}

async fn publisher(broker: &TestBroker) -> AsyncClient {
    let (client, eventloop) = broker.mqtt_v5("publisher");
    drop(forward(eventloop));
    client
}

/// [MQTT-4.8.2-?] Each message of a shared subscription goes to one member of the group,
/// in turn; a plain subscription to the same filter gets every message.
#[tokio::test]
async fn each_message_goes_to_one_member_in_turn() {
    let broker = start().await;
    let (_a, mut a) = member(&broker, "a", "$share/g/s/#", false).await;
    let (_b, mut b) = member(&broker, "b", "$share/g/s/#", false).await;
    let (_plain, mut plain) = member(&broker, "plain", "s/#", false).await;
    let publisher = publisher(&broker).await;
    for i in 0..10 {
        publisher
            .publish(format!("s/{i}"), QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }
    let wait = Duration::from_millis(700);
    let (got_a, got_b) = (received(&mut a, wait).await, received(&mut b, wait).await);
    assert_eq!(received(&mut plain, wait).await.len(), 10);
    assert_eq!(got_a.len() + got_b.len(), 10, "a {got_a:?} b {got_b:?}");
    assert_eq!(
        (got_a.len(), got_b.len()),
        (5, 5),
        "in turn: a {got_a:?} b {got_b:?}"
    );
    let all: BTreeSet<_> = got_a.iter().chain(&got_b).collect();
    assert_eq!(all.len(), 10, "no message twice");
    broker.broker.shutdown().await;
}

/// A new shared subscription gets no retained messages [MQTT-3.8.4-?]; unsubscribing it
/// by its whole filter leaves a plain subscription to the same filter alone.
#[tokio::test]
async fn no_retained_messages_and_unsubscribe_by_the_whole_filter() {
    let broker = start().await;
    let publisher = publisher(&broker).await;
    publisher
        .publish("r/t", QoS::AtLeastOnce, true, "kept")
        .await
        .unwrap();
    let (plain_client, mut plain) = member(&broker, "plain", "r/#", false).await;
    assert_eq!(
        received(&mut plain, Duration::from_millis(300)).await,
        ["kept"]
    );
    let (shared_client, mut shared) = member(&broker, "m", "$share/g/r/#", false).await;
    assert!(
        received(&mut shared, Duration::from_millis(300))
            .await
            .is_empty(),
        "no retained message for a shared subscription"
    );
    // The same session subscribes plainly too; unsubscribing the shared one keeps it.
    shared_client
        .subscribe("r/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    shared_client.unsubscribe("$share/g/r/#").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    received(&mut shared, Duration::from_millis(100)).await;
    publisher
        .publish("r/t", QoS::AtLeastOnce, false, "live")
        .await
        .unwrap();
    assert_eq!(
        received(&mut shared, Duration::from_millis(300)).await,
        ["live"],
        "once, through the plain subscription"
    );
    assert_eq!(
        received(&mut plain, Duration::from_millis(100)).await,
        ["live"]
    );
    drop(plain_client);
    broker.broker.shutdown().await;
}

/// MQTT 5 §4.8.2: a QoS 1 message a member did not acknowledge before its connection
/// ended goes to another member.
#[tokio::test]
async fn an_unacknowledged_message_goes_to_another_member() {
    let broker = start().await;
    let (silent, mut silent_events) = member(&broker, "silent", "$share/g/job/#", true).await;
    let publisher = publisher(&broker).await;
    publisher
        .publish("job/1", QoS::AtLeastOnce, false, "work")
        .await
        .unwrap();
    let got = received(&mut silent_events, Duration::from_millis(500)).await;
    assert_eq!(
        got,
        ["work"],
        "the only member gets it (and does not acknowledge)"
    );
    let (_worker, mut worker) = member(&broker, "worker", "$share/g/job/#", false).await;
    assert!(
        received(&mut worker, Duration::from_millis(200))
            .await
            .is_empty()
    );
    silent.disconnect().await.ok();
    drop(silent_events);
    let got = received(&mut worker, Duration::from_secs(2)).await;
    assert_eq!(got, ["work"], "redelivered to the other member");
    broker.broker.shutdown().await;
}

/// A malformed shared filter gets SUBACK 0x8F (Topic Filter invalid) [MQTT-4.8.2-2];
/// mosquitto_sub (MQTT 5 and 3.1.1) can use shared subscriptions.
#[tokio::test]
async fn malformed_shares_are_refused_and_mosquitto_sub_shares() {
    let broker = start().await;
    let (client, mut eventloop) = broker.mqtt_v5("bad");
    client.subscribe("$share/g", QoS::AtMostOnce).await.unwrap();
    let codes = poll_v5(&mut eventloop, |e| match e {
        Event::Incoming(Packet::SubAck(ack)) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        format!("{codes:?}"),
        "[TopicFilterInvalid]",
        "a share without a filter"
    );
    let before = broker.broker.core().stats().subscriptions;
    let mut subs = Vec::new();
    for (i, version) in ["mqttv5", "mqttv311"].into_iter().enumerate() {
        let child = tokio::process::Command::new("mosquitto_sub")
            .args(["-V", version, "-p", &broker.mqtt.port().to_string()])
            .args(["-i", &format!("sub{i}"), "-t", "$share/g/m/#", "-C", "1"])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        subs.push(child);
    }
    broker.subscribed_beyond(before + 1).await;
    let publisher = publisher(&broker).await;
    for i in 0..2 {
        publisher
            .publish("m/x", QoS::AtLeastOnce, false, format!("m{i}"))
            .await
            .unwrap();
    }
    let mut lines = BTreeSet::new();
    for child in subs {
        let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .expect("mosquitto_sub got its message")
            .unwrap();
        lines.insert(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    assert_eq!(
        lines,
        BTreeSet::from(["m0".into(), "m1".into()]),
        "one each"
    );
    broker.broker.shutdown().await;
}
