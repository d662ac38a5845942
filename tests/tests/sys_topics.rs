//! The `$SYS/broker/...` statistics topics (issue 6; docs/MQTT.md, "$SYS topics") with
//! rumqttc (3.1.1 and 5) and the Mosquitto command-line clients: the values and their
//! updates, current values as retained messages, `#` never matching `$SYS`, client writes
//! under `$SYS` refused, `mqtt.sys_interval_s = 0` publishing nothing, and the usual `on`
//! permission on a secure broker.

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use pathmq::config::{Config, Engine};
use pathmq::core::security::{Group, PermissionEntry, Permissions, Right, UserInput};
use pathmq::native::client::DataApi as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use support::{TestBroker, WAIT, start_with};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::mpsc::UnboundedReceiver;

/// A broker on loopback (memory store) publishing `$SYS` every `interval_s` seconds.
async fn broker(interval_s: u64) -> TestBroker {
    start_with(config(interval_s)).await
}

fn config(interval_s: u64) -> Config {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.engine = Engine::Memory;
    config.limits.shutdown_timeout_ms = 2_000;
    config.mqtt.sys_interval_s = interval_s;
    config
}

/// A connected rumqttc 3.1.1 client whose event loop runs in the background, forwarding
/// its incoming packets.
struct V4 {
    client: AsyncClient,
    packets: UnboundedReceiver<Packet>,
    /// The last message seen on each topic (text, retain flag), however it was read: a
    /// value is published only when it changes, so one read past while waiting for
    /// another topic must not be lost.
    latest: HashMap<String, (String, bool)>,
    /// The event loop's task: aborting it drops the connection.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for V4 {
    fn drop(&mut self) {
        // rumqttc's event loop holds a sender of its own requests: dropping the client
        // does not end it.
        self.task.abort();
    }
}

/// Connects `client_id` (with `login` when given) and waits for the CONNACK.
async fn connect(broker: &TestBroker, client_id: &str, login: Option<(&str, &str)>) -> V4 {
    let mut options = MqttOptions::new(client_id, broker.mqtt.ip().to_string(), broker.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let first = tokio::time::timeout(WAIT, eventloop.poll())
        .await
        .expect("a CONNACK in time");
    assert!(
        matches!(first, Ok(Event::Incoming(Packet::ConnAck(_)))),
        "{client_id}: {first:?}"
    );
    let (tx, packets) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(packet) = event
                && tx.send(packet).is_err()
            {
                return;
            }
        }
    });
    V4 {
        client,
        packets,
        latest: HashMap::new(),
        task,
    }
}

impl V4 {
    /// The next incoming packet `pick` accepts (others are skipped), bounded by [`WAIT`].
    async fn next<T>(&mut self, what: &str, mut pick: impl FnMut(&Packet) -> Option<T>) -> T {
        let wait = async {
            loop {
                match self.packets.recv().await {
                    Some(packet) => {
                        if let Packet::Publish(publish) = &packet {
                            let text = String::from_utf8_lossy(&publish.payload).into_owned();
                            (self.latest).insert(publish.topic.clone(), (text, publish.retain));
                        }
                        if let Some(found) = pick(&packet) {
                            return found;
                        }
                    }
                    None => panic!("the connection ended while waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Subscribes to `filter` at QoS 0: the SUBACK's return code.
    async fn subscribe(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client
            .subscribe(filter, QoS::AtMostOnce)
            .await
            .unwrap();
        self.next("the SUBACK", |p| match p {
            Packet::SubAck(ack) => Some(ack.return_codes[0]),
            _ => None,
        })
        .await
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    async fn publish(&mut self, topic: &str, retain: bool, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
        self.next("the PUBACK", |p| {
            matches!(p, Packet::PubAck(_)).then_some(())
        })
        .await;
    }

    /// The last message on `topic`, if its text `accept`s, or else the next one that
    /// does, as `(text, retain flag)`.
    async fn value(&mut self, topic: &str, accept: impl Fn(&str) -> bool) -> (String, bool) {
        if let Some((text, retain)) = self.latest.get(topic)
            && accept(text)
        {
            return (text.clone(), *retain);
        }
        self.next(topic, |p| match p {
            Packet::Publish(publish) if publish.topic == topic => {
                let text = String::from_utf8(publish.payload.to_vec()).unwrap();
                accept(&text).then_some((text, publish.retain))
            }
            _ => None,
        })
        .await
    }

    /// The next value of counter `topic` at least `min`.
    async fn count_at_least(&mut self, topic: &str, min: u64) -> u64 {
        let (text, _) = self
            .value(topic, |v| v.parse::<u64>().is_ok_and(|n| n >= min))
            .await;
        text.parse().unwrap()
    }

    /// The next message on `topic` whose text `accept`s, ignoring the last one seen.
    async fn next_value(&mut self, topic: &str, accept: impl Fn(&str) -> bool) -> (String, bool) {
        self.latest.remove(topic);
        self.value(topic, accept).await
    }

    /// The topic of the next message, whatever it is.
    async fn next_topic(&mut self) -> String {
        self.next("a message", |p| match p {
            Packet::Publish(publish) => Some(publish.topic.clone()),
            _ => None,
        })
        .await
    }
}

fn seconds(value: &str) -> bool {
    value
        .strip_suffix(" seconds")
        .is_some_and(|n| n.parse::<u64>().is_ok())
}

#[tokio::test]
async fn clients_uptime_and_message_counters_reach_rumqttc() {
    let broker = broker(1).await;
    let mut idle = Vec::new();
    for i in 0..3 {
        idle.push(connect(&broker, &format!("idle-{i}"), None).await);
    }
    let mut watcher = connect(&broker, "watcher", None).await;
    assert_eq!(
        watcher.subscribe("$SYS/broker/#").await,
        SubscribeReasonCode::Success(QoS::AtMostOnce)
    );
    assert_eq!(
        watcher.subscribe("data/#").await,
        SubscribeReasonCode::Success(QoS::AtMostOnce)
    );
    // Three idle clients and the watcher.
    let connected = "$SYS/broker/clients/connected";
    watcher.value(connected, |v| v == "4").await;
    watcher
        .value("$SYS/broker/clients/total", |v| v == "4")
        .await;
    watcher
        .count_at_least("$SYS/broker/clients/maximum", 4)
        .await;
    watcher
        .count_at_least("$SYS/broker/subscriptions/count", 2)
        .await;
    let (version, _) = watcher.value("$SYS/broker/version", |_| true).await;
    assert!(version.starts_with("pathmq version "), "{version}");
    watcher.value("$SYS/broker/uptime", seconds).await;
    let (load, _) = watcher
        .value("$SYS/broker/load/messages/received/1min", |_| true)
        .await;
    assert!(load.parse::<f64>().is_ok() && load.contains('.'), "{load}");

    // The counters grow with the traffic.
    let received = watcher
        .count_at_least("$SYS/broker/publish/messages/received", 0)
        .await;
    let sent = watcher
        .count_at_least("$SYS/broker/publish/messages/sent", 0)
        .await;
    let bytes = watcher
        .count_at_least("$SYS/broker/bytes/received", 0)
        .await;
    let mut publisher = connect(&broker, "publisher", None).await;
    for i in 0..5 {
        publisher.publish("data/t", false, &i.to_string()).await;
    }
    publisher.publish("data/kept", true, "stored").await;
    watcher
        .count_at_least("$SYS/broker/publish/messages/received", received + 6)
        .await;
    watcher
        .count_at_least("$SYS/broker/messages/received", received + 6)
        .await;
    watcher
        .count_at_least("$SYS/broker/publish/messages/sent", sent + 6)
        .await;
    watcher
        .count_at_least("$SYS/broker/bytes/received", bytes + 6 * 10)
        .await;
    watcher.count_at_least("$SYS/broker/bytes/sent", 1).await;
    watcher
        .value("$SYS/broker/retained messages/count", |v| v == "1")
        .await;
    watcher
        .value("$SYS/broker/store/messages/count", |v| v == "1")
        .await;
    watcher
        .value("$SYS/broker/publish/messages/dropped", |v| v == "0")
        .await;

    // A client leaving is seen too (the publisher and one idle client).
    drop(publisher);
    drop(idle.pop());
    watcher.value(connected, |v| v == "3").await;
    broker.broker.shutdown().await;
}

/// Guards the retained overlay: a new `$SYS` subscriber gets the current values at once,
/// flagged retained, though none is stored.
#[tokio::test]
async fn a_new_subscriber_gets_the_current_values_as_retained_messages() {
    let broker = broker(1).await;
    // Once a first subscriber has a value, the broker holds it.
    let mut first = connect(&broker, "first", None).await;
    first.subscribe("$SYS/broker/uptime").await;
    first.value("$SYS/broker/uptime", seconds).await;
    let mut client = connect(&broker, "late", None).await;
    client.subscribe("$SYS/broker/uptime").await;
    let (uptime, retained) = client.value("$SYS/broker/uptime", seconds).await;
    assert!(
        retained,
        "{uptime}: the first value comes as a retained message"
    );
    let admin = broker.broker.local_admin_client();
    let stored = admin.get("/$SYS/broker/uptime").await.unwrap();
    assert!(stored.is_none(), "$SYS values are never stored");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn a_hash_subscriber_gets_no_sys_topics() {
    let broker = broker(1).await;
    let mut everything = connect(&broker, "everything", None).await;
    everything.subscribe("#").await;
    let mut watcher = connect(&broker, "watcher", None).await;
    watcher.subscribe("$SYS/broker/uptime").await;
    // A live update, published after `#` was subscribed.
    watcher.value("$SYS/broker/uptime", seconds).await;
    let (_, retained) = watcher.next_value("$SYS/broker/uptime", seconds).await;
    assert!(!retained, "the second value is a live update");
    watcher.publish("after", false, "x").await;
    // `#` would have queued the update before this message (MQTT 4.7.2).
    assert_eq!(everything.next_topic().await, "after");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn clients_cannot_publish_to_sys_over_3_1_1() {
    let broker = broker(1).await;
    let mut client = connect(&broker, "forger", None).await;
    client.subscribe("$SYS/x").await;
    client.subscribe("marker").await;
    // 3.1.1 has no refusal code: the PUBACK comes, the message is dropped.
    client.publish("$SYS/x", false, "forged").await;
    client.publish("$SYS/broker/uptime", true, "forged").await;
    client.publish("$SYS/broker/uptime", true, "").await;
    client.publish("marker", false, "m").await;
    assert_eq!(client.next_topic().await, "marker");

    let mut reader = connect(&broker, "reader", None).await;
    reader.subscribe("$SYS/broker/uptime").await;
    let (uptime, _) = reader.value("$SYS/broker/uptime", |_| true).await;
    assert!(seconds(&uptime), "{uptime}");
    let admin = broker.broker.local_admin_client();
    assert!(admin.get("/$SYS/x").await.unwrap().is_none());
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn clients_cannot_publish_to_sys_over_5() {
    use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PubAckReason};

    let broker = broker(1).await;
    let (client, mut eventloop) = broker.mqtt_v5("forger-5");
    client
        .publish(
            "$SYS/x",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "forged",
        )
        .await
        .unwrap();
    let reason = support::poll_v5(&mut eventloop, |event| match event {
        rumqttc::v5::Event::Incoming(Packet5::PubAck(ack)) => Some(ack.reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, PubAckReason::NotAuthorized, "0x87");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn interval_zero_publishes_nothing() {
    let broker = broker(0).await;
    let mut client = connect(&broker, "quiet", None).await;
    client.subscribe("$SYS/#").await;
    client.subscribe("m").await;
    client.publish("m", false, "x").await;
    // With `$SYS` on, the current values would have come right after the SUBACK.
    assert_eq!(client.next_topic().await, "m");
    let metrics = broker.broker.core().stats();
    assert_eq!(
        metrics.published, 1,
        "only the client's message was published"
    );
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn mosquitto_sub_reads_sys_topics() {
    let broker = broker(1).await;
    let _a = connect(&broker, "a", None).await;
    let _b = connect(&broker, "b", None).await;
    let port = broker.mqtt.port().to_string();
    let mut sub = tokio::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-v", "-W", "10"])
        .args(["-t", "$SYS/broker/clients/connected"])
        .args(["-t", "$SYS/broker/uptime"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("`mosquitto_sub` runs: apt-get install mosquitto-clients");
    let mut lines = tokio::io::BufReader::new(sub.stdout.take().unwrap()).lines();
    let (mut uptime, mut connected) = (false, false);
    tokio::time::timeout(WAIT, async {
        while !(uptime && connected) {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("mosquitto_sub ended");
            if let Some(value) = line.strip_prefix("$SYS/broker/uptime ") {
                assert!(seconds(value), "{line}");
                uptime = true;
            }
            // `a`, `b` and mosquitto_sub itself.
            connected |= line == "$SYS/broker/clients/connected 3";
        }
    })
    .await
    .expect("mosquitto_sub saw the uptime and 3 connected clients");
    sub.kill().await.unwrap();
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn a_secure_broker_needs_the_on_permission_for_sys() {
    const ADMIN: &str = "admin-secret-sys";
    let mut config = support::secure_config(ADMIN);
    config.mqtt.sys_interval_s = 1;
    let broker = start_with(config).await;
    let directory = broker.broker.core().security().expect("secure").directory();
    let on = PermissionEntry {
        actions: [Right::On].into_iter().collect(),
        ..PermissionEntry::default()
    };
    directory
        .upsert_group(Group {
            name: "monitors".into(),
            // `$SYS/#` also matches `$SYS` itself: the subtree is granted with its root.
            permissions: Permissions::from([("/$SYS".into(), on.clone()), ("/$SYS/*".into(), on)]),
            ..Group::default()
        })
        .await
        .unwrap();
    for user in ["monitor", "plain"] {
        directory
            .upsert_user(UserInput {
                username: user.into(),
                password: Some(format!("pw-{user}").into()),
                ..UserInput::default()
            })
            .await
            .unwrap();
    }
    directory.link_group("monitor", "monitors").await.unwrap();

    let mut monitor = connect(&broker, "monitor", Some(("monitor", "pw-monitor"))).await;
    assert_eq!(
        monitor.subscribe("$SYS/#").await,
        SubscribeReasonCode::Success(QoS::AtMostOnce)
    );
    monitor.value("$SYS/broker/uptime", seconds).await;
    let mut plain = connect(&broker, "plain", Some(("plain", "pw-plain"))).await;
    assert_eq!(
        plain.subscribe("$SYS/#").await,
        SubscribeReasonCode::Failure
    );
    // The store holds the directory's records, which no client can read.
    monitor
        .value("$SYS/broker/retained messages/count", |v| v == "0")
        .await;
    broker.broker.shutdown().await;
}
