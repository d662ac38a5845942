//! Will messages (MQTT 3.1.1 §3.1.2.5–7, §3.1.3.2–3; MQTT 5 §3.1.2.5, §3.1.3.2–4).
//!
//! * At CONNECT ([`check`]) the will topic must be a topic name the core accepts (no
//!   wildcards, MQTT-4.7.1-1) and the payload within the core's `max_payload`; otherwise
//!   the CONNECT is refused: MQTT 5 CONNACK `0x90` / `0x95`, 3.1.x (no such code) closed.
//! * When the connection ends ([`keep`]) the will is published unless the client sent a
//!   DISCONNECT with reason `0x00` [MQTT-3.1.2-10, MQTT-3.14.4-3]: after a socket error or
//!   EOF, keep alive expiry, a protocol violation, a takeover by a new connection with the
//!   same client id [MQTT-3.1.4-2/3], the overflow policy's disconnect, the end of a
//!   secure session, shutdown, and an MQTT 5 DISCONNECT with any other reason (`0x04`
//!   Disconnect with Will Message) [MQTT-3.1.2-8].
//! * It is published ([`publish`]) like a PUBLISH from the client, through its session and
//!   [`message_request`]: the inbound layers run, a secure broker authorizes it against
//!   the session's identity (a will the client may not `set` is dropped and logged), a
//!   retained will is stored (an empty retained one removes), its QoS is the PUBLISH QoS.
//!
//! Will Delay Interval (MQTT 5 §3.1.3.2.2): the will waits until the delay has passed or
//! the session ends, whichever is first (the delay is min(will delay, session expiry),
//! fixed at CONNECT), and is not sent when a new connection resumes the session first
//! [MQTT-3.1.3-9]. A session that ends with its connection (expiry 0) has its will
//! published at once ([`publish`]); a durable one is parked first and its will waits on
//! it ([`publish_parked`]): a new connection with clean start 0 cancels it, one with clean
//! start 1 (the session ends) or the session's expiry sends it now.

use std::time::Duration;

use std::net::SocketAddr;
use std::sync::Arc;

use pathmq_core::durable::{Change, Detached};
use pathmq_core::security::Identity;
use pathmq_core::{CloseReason, Core, Off, Outbound, Path, Request, Session};
use tokio_util::sync::CancellationToken;

use super::Ending;
use super::inbound::{Message, MessageError, message_request};
use crate::error::ProtocolError;
use crate::packet::{Publish, Will};

/// Checks a CONNECT's will: a valid topic name, a payload of at most `max_payload` bytes.
///
/// # Errors
/// [`ProtocolError::InvalidWillTopic`], [`ProtocolError::WillTooLarge`].
pub(super) fn check(will: &Will, max_payload: usize) -> Result<(), ProtocolError> {
    let message = &will.message;
    if let Err(source) = Path::from_topic(&message.topic) {
        return Err(ProtocolError::InvalidWillTopic {
            topic: message.topic.clone(),
            source,
        });
    }
    if message.payload.len() > max_payload {
        return Err(ProtocolError::WillTooLarge {
            size: message.payload.len(),
            limit: max_payload,
        });
    }
    Ok(())
}

impl Ending {
    /// Whether the will is published after this ending: always, except after a DISCONNECT
    /// with reason `0x00` [MQTT-3.14.4-3].
    pub(super) fn publishes_will(&self) -> bool {
        !matches!(self, Ending::ClientDisconnect { reason: 0x00 })
    }
}

/// The will to publish after `ending`, or `None` (discarded, logged) after a normal
/// DISCONNECT.
pub(super) fn keep(will: Box<Will>, ending: &Ending) -> Option<Box<Will>> {
    if ending.publishes_will() {
        Some(will)
    } else {
        tracing::debug!(topic = %will.message.topic, "normal DISCONNECT: will discarded");
        None
    }
}

/// Publishes `will` for `session`, whose connection has ended, after its delay (see the
/// module docs); `taken_over`: a new connection took the client id over, which cancels a
/// delayed will. Ends the session when done.
pub(super) async fn publish(
    session: Session,
    will: Will,
    taken_over: bool,
    shutdown: CancellationToken,
) {
    // Nothing more goes to this session: the will (or anything else) is not queued for
    // it, and a full queue of its own does not hold the will's publication back.
    if session.subscription_count() > 0
        && let Err(error) = session.request(Request::Off(Off::All)).await
    {
        tracing::debug!(%error, "ending the subscriptions of a closed connection failed");
    }
    if will.delay > 0 {
        if taken_over {
            tracing::debug!(
                topic = %will.message.topic,
                "a new connection took the client id over within the will delay: will discarded [MQTT-3.1.3-9]"
            );
            return;
        }
        let delay = Duration::from_secs(u64::from(will.delay));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            // The broker stops: the session ends now.
            () = shutdown.cancelled() => {}
            () = taken_over_by_new_connection(&session) => {
                tracing::debug!(
                    topic = %will.message.topic,
                    "a new connection for the client id within the will delay: will discarded [MQTT-3.1.3-9]"
                );
                return;
            }
        }
    }
    publish_now(&session, will.message).await;
}

/// A parked durable session whose connection had a will.
pub(super) struct Parked {
    pub(super) core: Core,
    /// Who the connection was logged in as (the will is authorized as that user).
    pub(super) identity: Option<Arc<Identity>>,
    pub(super) peer: Option<SocketAddr>,
    pub(super) detached: Detached,
}

/// Publishes the will of a durable session's connection after its delay, unless a new
/// connection resumes the session first; when the session ends (clean start 1, expiry)
/// or the broker stops, at once. It goes out through a short-lived session with the
/// connection's identity, as the connection's PUBLISH would.
pub(super) async fn publish_parked(parked: Parked, will: Will, shutdown: CancellationToken) {
    if will.delay > 0 {
        let delay = Duration::from_secs(u64::from(will.delay));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => {}
            change = parked.detached.changed() => if change == Change::Resumed {
                tracing::debug!(
                    topic = %will.message.topic,
                    "the session was resumed within the will delay: will discarded [MQTT-3.1.3-9]"
                );
                return;
            },
        }
    }
    let session = parked.core.open_session("mqtt", parked.peer, None);
    if let Some(identity) = parked.identity {
        session.set_identity(identity);
    }
    publish_now(&session, will.message).await;
}

/// Resolves when a new connection takes the session's client id over. A session the core
/// had already closed for another reason keeps reporting that first reason, so a takeover
/// cannot be told apart: then this never resolves and the will waits out its delay.
async fn taken_over_by_new_connection(session: &Session) {
    loop {
        match session.recv().await {
            Some(Outbound::Close(CloseReason::TakenOver)) => return,
            Some(Outbound::Close(_)) | None => std::future::pending::<()>().await,
            Some(_) => {}
        }
    }
}

/// Sends the will message through the session, as its PUBLISH would go.
async fn publish_now(session: &Session, message: Publish) {
    let Publish {
        topic,
        qos,
        retain,
        payload,
        user_properties,
        properties,
        ..
    } = message;
    let message = Message {
        payload,
        qos,
        retain,
        user_properties,
        properties,
    };
    let request = Path::from_topic(&topic)
        .map_err(MessageError::from)
        .and_then(|path| message_request(path, message));
    let request = match request {
        Ok(request) => request,
        // The topic is checked at CONNECT; the payload format is not.
        Err(error) => {
            tracing::info!(%error, %topic, "will refused; dropped");
            return;
        }
    };
    match session.request(request).await {
        Ok(_) => tracing::debug!(%topic, qos, retain, "will message published"),
        Err(error) => tracing::info!(%error, %topic, qos, retain, "will message refused; dropped"),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use pathmq_core::{Core, OnOptions, Pattern};

    use super::*;

    fn will(topic: &str, payload: &'static [u8], delay: u32) -> Will {
        Will {
            message: Publish {
                topic: topic.into(),
                qos: 1,
                retain: false,
                pkid: 0,
                payload: Bytes::from_static(payload),
                topic_alias: None,
                user_properties: vec![("k".into(), "v".into())],
                properties: None,
            },
            delay,
        }
    }

    #[test]
    fn only_a_normal_disconnect_discards_the_will() {
        let cases = [
            (Ending::ClientDisconnect { reason: 0x00 }, false),
            (Ending::ClientDisconnect { reason: 0x04 }, true),
            (Ending::ClientDisconnect { reason: 0x80 }, true),
            (Ending::Closed(None), true),
            (Ending::Violation(ProtocolError::SecondConnect), true),
            (Ending::Core(CloseReason::TakenOver), true),
            (Ending::Core(CloseReason::QueueFull), true),
            (Ending::Shutdown, true),
        ];
        for (ending, publishes) in cases {
            assert_eq!(ending.publishes_will(), publishes, "{ending:?}");
        }
    }

    #[test]
    fn will_topic_and_size_are_checked() {
        assert!(check(&will("a/b", b"x", 0), 1).is_ok());
        for topic in ["a/+", "a/#", "", "a/*"] {
            assert!(matches!(
                check(&will(topic, b"x", 0), 1),
                Err(ProtocolError::InvalidWillTopic { .. })
            ));
        }
        assert_eq!(
            check(&will("a", b"xy", 0), 1),
            Err(ProtocolError::WillTooLarge { size: 2, limit: 1 })
        );
    }

    /// A core, a session holding client id `c` (the closed connection's), and a
    /// subscriber to `w/#`.
    async fn setup() -> (Core, Session, Session) {
        let core = Core::builder(pathmq_storage::MemoryStore::new()).build();
        let closed = core.open_session("mqtt", None, Some("c".into()));
        let subscriber = core.open_session("test", None, None);
        let on = Request::On {
            pattern: Pattern::mqtt("w/#").unwrap(),
            options: OnOptions {
                qos: 1,
                ..OnOptions::default()
            },
        };
        subscriber.request(on).await.unwrap();
        (core, closed, subscriber)
    }

    async fn next_event(subscriber: &Session, within: Duration) -> Option<(String, Bytes)> {
        match tokio::time::timeout(within, subscriber.recv()).await {
            Ok(Some(Outbound::Event { event, .. })) => {
                Some((event.path.as_str().to_owned(), event.payload.bytes.clone()))
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_will_is_published_when_the_delay_has_passed() {
        let (core, closed, subscriber) = setup().await;
        let token = core.shutdown_token().clone();
        let task = tokio::spawn(publish(closed, will("w/x", b"gone", 5), false, token));
        assert_eq!(next_event(&subscriber, Duration::from_secs(4)).await, None);
        let event = next_event(&subscriber, Duration::from_secs(2)).await;
        assert_eq!(event, Some(("/w/x".into(), Bytes::from_static(b"gone"))));
        task.await.unwrap();
    }

    /// MQTT-3.1.3-9: a new connection for the client id within the delay cancels it.
    #[tokio::test(start_paused = true)]
    async fn new_connection_within_the_delay_cancels_the_will() {
        let (core, closed, subscriber) = setup().await;
        let token = core.shutdown_token().clone();
        let task = tokio::spawn(publish(closed, will("w/x", b"gone", 5), false, token));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _reconnected = core.open_session("mqtt", None, Some("c".into()));
        task.await.unwrap();
        assert_eq!(next_event(&subscriber, Duration::from_secs(10)).await, None);
        // A takeover that ended the connection itself cancels a delayed will at once.
        let closed = core.open_session("mqtt", None, Some("d".into()));
        let token = core.shutdown_token().clone();
        publish(closed, will("w/y", b"gone", 5), true, token).await;
        assert_eq!(next_event(&subscriber, Duration::from_secs(10)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn will_without_delay_is_published_at_once_and_shutdown_ends_a_delay() {
        let (core, closed, subscriber) = setup().await;
        let token = core.shutdown_token().clone();
        publish(closed, will("w/now", b"1", 0), true, token.clone()).await;
        let event = next_event(&subscriber, Duration::from_millis(1)).await;
        assert_eq!(event, Some(("/w/now".into(), Bytes::from_static(b"1"))));
        let closed = core.open_session("mqtt", None, Some("e".into()));
        let task = tokio::spawn(publish(closed, will("w/late", b"2", 3600), false, token));
        tokio::task::yield_now().await;
        core.shutdown_token().cancel();
        task.await.unwrap();
        let event = next_event(&subscriber, Duration::from_millis(1)).await;
        assert_eq!(event, Some(("/w/late".into(), Bytes::from_static(b"2"))));
    }
}
