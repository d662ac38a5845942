//! The Message Expiry Interval (MQTT 5 §3.3.2.3.3): "If the Message Expiry Interval has
//! passed and the Server has not managed to start onward delivery to a matching
//! subscriber, then it MUST delete the copy of the message for that subscriber"
//! [MQTT-3.3.2-5]; "The PUBLISH packet sent to a Client by the Server MUST contain a
//! Message Expiry Interval set to the received value minus the time that the Application
//! Message has been waiting in the Server" [MQTT-3.3.2-6].
//!
//! These tests wait real seconds: the interval is counted in seconds.

use std::time::Duration;

use crate::support::start;
use crate::wire::{Client, Connect, Props, id, options, puback};

/// Longer than an expiry of 1 s, with a margin.
const PAST_ONE_SECOND: Duration = Duration::from_millis(1_200);

fn expiry(seconds: u32) -> Props {
    Props::new().four(id::MESSAGE_EXPIRY, seconds)
}

/// A live subscriber whose Receive Maximum (1) is taken by an unacknowledged message:
/// the messages behind it wait in the server. One with an expiry of 1 s is not
/// delivered once 1.2 s have passed [MQTT-3.3.2-5]; one with 30 s arrives with at most
/// 29 s left [MQTT-3.3.2-6]; one without an expiry arrives without the property.
#[tokio::test]
async fn a_message_that_expires_while_waiting_for_the_window_is_not_delivered() {
    let broker = start().await;
    let connect = Connect::new("slow-sub").props(Props::new().two(id::RECEIVE_MAXIMUM, 1));
    let mut subscriber = Client::connect(broker.mqtt, &connect).await;
    subscriber
        .subscribe_one("wait/#", options(1, false, false, 0), None)
        .await;
    let mut publisher = Client::plain(broker.mqtt, "wait-pub").await;
    publisher
        .publish_qos1("wait/first", 1, false, &Props::new(), b"first")
        .await;
    publisher
        .publish_qos1("wait/short", 2, false, &expiry(1), b"short")
        .await;
    publisher
        .publish_qos1("wait/long", 3, false, &expiry(30), b"long")
        .await;
    publisher
        .publish_qos1("wait/last", 4, false, &Props::new(), b"last")
        .await;

    let first = subscriber.next_publish().await;
    assert_eq!(first.payload, b"first");
    tokio::time::sleep(PAST_ONE_SECOND).await;
    subscriber.send(&puback(first.pkid)).await;

    let next = subscriber.next_publish().await;
    assert_eq!(
        String::from_utf8_lossy(&next.payload),
        "long",
        "the expired message must not be delivered"
    );
    let left = next.props.four(id::MESSAGE_EXPIRY).expect("message expiry");
    assert!(
        (1..=29).contains(&left),
        "waited 1.2 s of 30 s: {left} s left"
    );
    subscriber.send(&puback(next.pkid)).await;
    let last = subscriber.next_publish().await;
    assert_eq!(last.payload, b"last");
    assert!(!last.props.has(id::MESSAGE_EXPIRY), "{:?}", last.props);
}

/// A durable session (Clean Start 0, Session Expiry 60 s) is offline for 2.5 s: the QoS
/// 1 message with an expiry of 1 s queued for it is not delivered when it comes back
/// [MQTT-3.3.2-5]; the one with 60 s arrives, first, with at most 58 s left
/// [MQTT-3.3.2-6].
#[tokio::test]
async fn a_message_queued_for_an_offline_session_expires() {
    let broker = start().await;
    let durable = Connect::new("away-sub").durable(60);
    let mut subscriber = Client::connect(broker.mqtt, &durable).await;
    subscriber
        .subscribe_one("away/#", options(1, false, false, 0), None)
        .await;
    subscriber.disconnect().await;

    let mut publisher = Client::plain(broker.mqtt, "away-pub").await;
    publisher
        .publish_qos1("away/short", 1, false, &expiry(1), b"short")
        .await;
    publisher
        .publish_qos1("away/long", 2, false, &expiry(60), b"long")
        .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    let mut back = Client::connect(broker.mqtt, &durable).await;
    assert!(back.connack.session_present, "the session was kept");
    let got = back.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), String::from_utf8_lossy(&got.payload)),
        ("away/long", "long".into()),
        "the expired message must not be delivered"
    );
    let left = got.props.four(id::MESSAGE_EXPIRY).expect("message expiry");
    assert!(
        (1..=58).contains(&left),
        "waited 2.5 s of 60 s: {left} s left"
    );
}

/// A retained message whose Message Expiry Interval has passed is not sent to a new
/// subscription [MQTT-3.3.2-5]: the server never started its onward delivery to that
/// subscriber. The retained messages beside it are sent: one without an expiry, and one
/// of 60 s with at most 59 s left after 1.2 s [MQTT-3.3.2-6].
#[tokio::test]
async fn an_expired_retained_message_is_not_sent_to_new_subscribers() {
    let broker = start().await;
    let mut publisher = Client::plain(broker.mqtt, "stale-pub").await;
    publisher
        .publish_qos1("stale/short", 1, true, &expiry(1), b"short")
        .await;
    publisher
        .publish_qos1("stale/kept", 2, true, &Props::new(), b"kept")
        .await;
    publisher
        .publish_qos1("stale/long", 4, true, &expiry(60), b"long")
        .await;
    tokio::time::sleep(PAST_ONE_SECOND).await;

    let mut late = Client::plain(broker.mqtt, "stale-sub").await;
    late.subscribe_one("stale/#", options(0, false, false, 0), None)
        .await;
    // Retained messages follow the SUBACK; a live marker published now comes after them.
    publisher
        .publish_qos1("stale/marker", 3, false, &Props::new(), b"marker")
        .await;
    let mut before_marker = Vec::new();
    loop {
        let got = late.next_publish().await;
        if got.topic == "stale/marker" {
            break;
        }
        before_marker.push(got);
    }
    let mut topics: Vec<&str> = before_marker.iter().map(|p| p.topic.as_str()).collect();
    topics.sort_unstable();
    assert_eq!(
        topics,
        ["stale/kept", "stale/long"],
        "only the unexpired retained messages; wire: {before_marker:?}"
    );
    for got in &before_marker {
        let left = got.props.four(id::MESSAGE_EXPIRY);
        match got.topic.as_str() {
            "stale/long" => assert!(left.is_some_and(|s| (1..=59).contains(&s)), "{got:?}"),
            _ => assert_eq!(left, None, "{got:?}"),
        }
    }
}
