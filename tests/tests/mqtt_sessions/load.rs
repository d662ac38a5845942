//! Persistent sessions under load: a thousand of them reconnecting at once, and one
//! that stops reading while other topics keep flowing (STYLE 13: a slow consumer never
//! stalls a publisher) and whose held-back publisher is let go when it goes offline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use rumqttc::{Event, Packet, QoS};

use crate::raw::Raw;
use crate::raw_session::{self, DISCONNECT, ack, next_publish};
use crate::support::*;
use crate::*;

/// How many persistent sessions reconnect at once.
const SESSIONS: usize = 1_000;

/// The whole reconnect storm must fit in this.
const STORM: Duration = Duration::from_secs(30);

/// Session `i`: client id and topic.
fn session(i: usize) -> (String, String) {
    (format!("storm-{i}"), format!("storm/{i}"))
}

/// A thousand raw 3.1.1 clients (CleanSession 0) subscribe QoS 1 to their own topic and
/// disconnect; one message is published to each topic; then all reconnect at once. Each
/// gets Session Present 1 [MQTT-3.2.2-2] and its own message [MQTT-3.1.2-5], within
/// [`STORM`]. (2,000 sockets at most: well under the 20,000 descriptors of the test
/// machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_persistent_sessions_reconnect_at_once() {
    let broker = start().await;
    let addr = broker.mqtt;
    // Set up 100 at a time.
    tokio::time::timeout(STORM, async {
        futures_util::stream::iter(0..SESSIONS)
            .map(|i| async move {
                let (id, topic) = session(i);
                let (mut client, present) = raw_session::connect(addr, 4, &id, false, None).await;
                assert!(!present, "{id}");
                raw_session::subscribe(&mut client, 4, 1, &topic, 1).await;
                client.send(&DISCONNECT).await;
                client.expect_closed().await;
            })
            .buffer_unordered(100)
            .collect::<Vec<()>>()
            .await
    })
    .await
    .expect("1,000 sessions set up in time");

    // One QoS 1 message per topic, every PUBACK awaited (rumqttc keeps up to 100 in
    // flight).
    let (publisher, eventloop) = broker.mqtt_v4("storm-pub");
    let mut events = spawn_v4(eventloop);
    let sender = tokio::spawn(async move {
        for i in 0..SESSIONS {
            let (_, topic) = session(i);
            publisher
                .publish(topic, QoS::AtLeastOnce, false, i.to_string())
                .await
                .unwrap();
        }
        publisher
    });
    let mut acked = 0;
    while acked < SESSIONS {
        expect_v4(&mut events, |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
        })
        .await;
        acked += 1;
    }
    let _publisher = sender.await.unwrap();

    let started = Instant::now();
    let barrier = Arc::new(tokio::sync::Barrier::new(SESSIONS));
    let clients: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let (id, topic) = session(i);
                barrier.wait().await;
                let (mut client, present) = raw_session::connect(addr, 4, &id, false, None).await;
                assert!(present, "{id}: its session is there");
                let publish = next_publish(&mut client, 4).await;
                assert_eq!(
                    (publish.topic.as_str(), publish.qos, publish.payload),
                    (topic.as_str(), 1, i.to_string().into_bytes()),
                    "{id}"
                );
                client.send(&ack(0x40, publish.pkid)).await;
                client.send(&DISCONNECT).await;
                client.expect_closed().await;
            })
        })
        .collect();
    tokio::time::timeout(STORM, async {
        for client in clients {
            client.await.expect("a reconnecting session");
        }
    })
    .await
    .expect("1,000 sessions reconnected and got their message in time");
    let elapsed = started.elapsed();
    assert!(elapsed < STORM, "{elapsed:?}");
    broker.broker.shutdown().await;
}

/// A 3.1.1 publisher sending `n` QoS 1 messages of 4 KiB (the first bytes: the index)
/// to one topic in the background, as fast as the broker acknowledges them (rumqttc
/// keeps 100 in flight); dropping it stops it.
struct Flood {
    acked: Arc<AtomicUsize>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Flood {
    fn start(broker: &TestBroker, id: &str, topic: &'static str, n: usize) -> Flood {
        let (client, mut eventloop) = broker.mqtt_v4(id);
        let acked = Arc::new(AtomicUsize::new(0));
        let counted = acked.clone();
        let counter = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if matches!(event, Event::Incoming(Packet::PubAck(_))) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let sender = tokio::spawn(async move {
            for i in 0..n {
                let mut payload = format!("{i:05} ").into_bytes();
                payload.resize(4096, b'x');
                if client
                    .publish(topic, QoS::AtLeastOnce, false, payload)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Flood {
            acked,
            tasks: [counter, sender],
        }
    }

    fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits (bounded by [`WAIT`]) until `n` messages are PUBACKed.
    async fn acked_at_least(&self, n: usize) {
        tokio::time::timeout(WAIT, async {
            while self.acked() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} messages acknowledged, not {}", self.acked()));
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// `n` QoS 1 messages from `publisher` to `subscriber` on `fast/t`, each PUBACKed,
/// all received in order; returns how long that took.
async fn fast_round(
    publisher: &mut Publisher,
    subscriber: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    n: usize,
) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        publisher
            .send("fast/t", QoS::AtLeastOnce, i.to_string())
            .await;
    }
    for i in 0..n {
        let p = expect_v4(subscriber, v4_publish).await;
        assert_eq!(p.payload, i.to_string().into_bytes());
    }
    started.elapsed()
}

/// A persistent subscriber (CleanSession 0, QoS 1) stops reading its socket while a
/// publisher floods its topic: the broker holds that publisher back (its queue is
/// small), but a publisher and a subscriber of another topic go on at the pace they had
/// before the stall, and still after the stalled subscriber's connection drops and its
/// session is offline. Times are compared with the same exchange before the stall, not
/// with a fixed bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_persistent_subscriber_does_not_slow_other_topics() {
    const ROUND: usize = 200;
    let mut config = memory_config();
    config.limits.session_queue = 64;
    // A publisher held back by the stalled session waits this long: far beyond the
    // rounds below, so that a stall leaking to other topics cannot hide.
    config.limits.backpressure_timeout_ms = 20_000;
    let broker = start_with(config).await;

    let (fast_sub, mut fast_loop) = broker.mqtt_v4("fast-sub");
    subscribe_v4(&fast_sub, &mut fast_loop, "fast/#", QoS::AtLeastOnce).await;
    let mut fast_events = spawn_v4(fast_loop);
    let mut fast_pub = Publisher::new(&broker, "fast-pub").await;
    // Warm up, then the reference time.
    fast_round(&mut fast_pub, &mut fast_events, ROUND).await;
    let before = fast_round(&mut fast_pub, &mut fast_events, ROUND).await;

    // The stalled subscriber: subscribes, then never reads again.
    let (mut stalled, _) = raw_session::connect(broker.mqtt, 4, "stalled", false, None).await;
    raw_session::subscribe(&mut stalled, 4, 1, "slow/#", 1).await;
    // Its topic's publisher: 2,000 messages of 4 KiB, as fast as the broker takes them.
    let flood = Flood::start(&broker, "slow-pub", "slow/t", 2_000);
    // More accepted than the 64 queued: the stalled session's window and queue are full.
    flood.acked_at_least(65).await;

    let during = fast_round(&mut fast_pub, &mut fast_events, ROUND).await;
    let limit = before * 5 + Duration::from_millis(500);
    assert!(
        during <= limit,
        "{ROUND} messages on another topic took {during:?} with a stalled subscriber, \
         {before:?} before"
    );

    // The stalled connection drops and its session is offline: other topics still flow.
    drop::<Raw>(stalled);
    let offline = fast_round(&mut fast_pub, &mut fast_events, ROUND).await;
    assert!(
        offline <= limit,
        "{ROUND} messages on another topic took {offline:?} with an offline session \
         being flooded, {before:?} before"
    );
    drop(flood);
    broker.broker.shutdown().await;
}

/// A publisher held back by a stalled persistent subscriber (its queue beyond
/// `limits.session_queue`) is released once that subscriber's connection ends: the
/// session is then offline, its queue takes up to `mqtt.max_queued_messages` (DESIGN.md
/// §6) and there is no reader left to wait for (`limits.backpressure_timeout_ms` holds a
/// publisher only "while a subscriber's queue is beyond its capacity"). On reconnect the
/// session gets every message: the unacknowledged in-flight ones again with DUP
/// [MQTT-4.4.0-1], then the queued ones, in publish order [MQTT-4.6.0-5].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_held_back_by_a_stalled_session_is_released_when_it_goes_offline() {
    const N: usize = 300;
    let mut config = memory_config();
    config.limits.session_queue = 64;
    // Far beyond the bounded waits below: a publisher still held back fails them.
    config.limits.backpressure_timeout_ms = 20_000;
    let broker = start_with(config).await;
    let (mut stalled, _) = raw_session::connect(broker.mqtt, 4, "held", false, None).await;
    raw_session::subscribe(&mut stalled, 4, 1, "held/#", 1).await;
    let flood = Flood::start(&broker, "held-pub", "held/t", N);
    flood.acked_at_least(65).await;
    assert!(
        flood.acked() < N,
        "the stalled subscriber holds the publisher back"
    );

    drop::<Raw>(stalled);
    flood.acked_at_least(N).await;

    let (mut resumed, present) = raw_session::connect(broker.mqtt, 4, "held", false, None).await;
    assert!(present, "[MQTT-3.2.2-2]");
    let mut firsts: Vec<usize> = Vec::new();
    let mut deliveries = 0;
    while firsts.len() < N {
        let publish = next_publish(&mut resumed, 4).await;
        resumed.send(&ack(0x40, publish.pkid)).await;
        deliveries += 1;
        let i: usize = String::from_utf8_lossy(&publish.payload[..5])
            .parse()
            .unwrap();
        if !firsts.contains(&i) {
            firsts.push(i);
        }
    }
    assert_eq!(
        firsts,
        (0..N).collect::<Vec<_>>(),
        "every message, in order ({deliveries} deliveries)"
    );
    drop(flood);
    broker.broker.shutdown().await;
}
