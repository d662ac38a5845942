//! Durable sessions against a store that records the session log.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt as _;
use parking_lot::Mutex;

use super::codec::{State, StoredSubscription, encode_body, encode_head};
use super::{Attach, Attached, DurableMessage};
use crate::event::{Event, EventKind, Outbound};
use crate::path::Path;
use crate::pattern::{Glob, Pattern};
use crate::payload::{Payload, Record};
use crate::pipeline::{Core, CoreConfig};
use crate::request::{Consistency, OnOptions, Request};
use crate::session::Session;
use crate::session_log::{SessionOp, StoredSession};
use crate::store::{OnCommit, Store, StoreError, Write};

/// Keeps no records; records every session-log operation.
#[derive(Default)]
struct LogStore {
    ops: Mutex<Vec<SessionOp>>,
    stored: Mutex<Vec<StoredSession>>,
}

#[async_trait]
impl Store for LogStore {
    async fn set(&self, _: Write, _: Option<OnCommit<Record>>) -> Result<Record, StoreError> {
        Err(StoreError::Closed)
    }
    async fn get(&self, _: &Path) -> Result<Option<Record>, StoreError> {
        Ok(None)
    }
    async fn scan(&self, _: &Glob) -> Result<Vec<Record>, StoreError> {
        Ok(Vec::new())
    }
    async fn remove(&self, _: &Glob, _: Option<OnCommit<[Path]>>) -> Result<Vec<Path>, StoreError> {
        Err(StoreError::Closed)
    }
    async fn count(&self, _: &Glob) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn keeps_sessions(&self) -> bool {
        true
    }
    fn submit_session_op(&self, op: SessionOp) -> u64 {
        let mut ops = self.ops.lock();
        ops.push(op);
        ops.len() as u64
    }
    async fn load_sessions(&self) -> Result<Vec<StoredSession>, StoreError> {
        Ok(std::mem::take(&mut *self.stored.lock()))
    }
}

impl LogStore {
    /// The operations so far, as short strings (`put-session c`, `put c/1`, `rm c/1`,
    /// `rm-session c`), then forgotten.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.ops.lock())
            .into_iter()
            .map(|op| match op {
                SessionOp::PutSession { client_id, .. } => format!("put-session {client_id}"),
                SessionOp::RemoveSession { client_id } => format!("rm-session {client_id}"),
                SessionOp::PutMessage { client_id, seq, .. } => format!("put {client_id}/{seq}"),
                SessionOp::RemoveMessage { client_id, seq } => format!("rm {client_id}/{seq}"),
            })
            .collect()
    }
}

fn core(store: &Arc<LogStore>, max_queued: usize) -> Core {
    let config = CoreConfig {
        max_queued_messages: max_queued,
        ..CoreConfig::default()
    };
    Core::builder_arc(store.clone()).config(config).build()
}

fn attach(core: &Core, client_id: &str, clean_start: bool, expiry_s: u32) -> Attached {
    let attach = Attach {
        protocol: "mqtt",
        peer: None,
        client_id: client_id.into(),
        clean_start,
        expiry_s,
        username: None,
    };
    core.attach(attach)
        .now_or_never()
        .expect("attach waits for nothing here")
        .expect("attached")
}

fn subscribe(session: &Session, filter: &str, qos: u8) {
    let on = Request::On {
        pattern: Pattern::mqtt(filter).unwrap(),
        options: OnOptions {
            qos,
            ..OnOptions::default()
        },
    };
    session.request(on).now_or_never().unwrap().unwrap();
}

fn publish(core: &Core, topic: &str, qos: u8) {
    core.publish(Arc::new(Event::new(
        EventKind::Set,
        Path::from_topic(topic).unwrap(),
        Payload::json(&serde_json::json!(topic)),
        1,
        1,
        None,
        None,
        Consistency::Transactional,
        None,
        qos,
    )));
}

/// What the session's queue holds now: `d<seq>` for a durable message, `e` for an event.
fn queued(session: &Session) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(Some(message)) = session.recv().now_or_never() {
        out.push(match message {
            Outbound::Durable(m) => format!("d{}", m.seq),
            Outbound::Event { .. } => "e".into(),
            other => format!("{other:?}"),
        });
    }
    out
}

#[test]
fn qos1_messages_are_logged_and_acknowledgements_remove_them() {
    let store = Arc::new(LogStore::default());
    let core = core(&store, 10);
    let Attached {
        session, present, ..
    } = attach(&core, "c", false, 60);
    assert!(!present);
    subscribe(&session, "t/#", 1);
    assert_eq!(store.take(), ["put-session c", "put-session c"]);
    publish(&core, "t/a", 1);
    publish(&core, "t/b", 0);
    assert_eq!(queued(&session), ["d1", "e"], "QoS 0 is not logged");
    assert_eq!(store.take(), ["put c/1"]);
    session.acknowledged(1);
    assert_eq!(store.take(), ["rm c/1"]);
}

#[test]
fn a_parked_session_queues_qos1_up_to_its_limit_and_resumes_with_it() {
    let store = Arc::new(LogStore::default());
    let core = core(&store, 2);
    let Attached { session, .. } = attach(&core, "c", false, 60);
    subscribe(&session, "t/#", 2);
    let id = session.id();
    drop(session);
    assert_eq!(core.stats().sessions_parked, 1);
    assert_eq!(core.stats().sessions, 0);
    store.take();
    publish(&core, "t/a", 0);
    publish(&core, "t/a", 1);
    publish(&core, "t/a", 2);
    publish(&core, "t/a", 1);
    assert_eq!(
        store.take(),
        ["put c/1", "put c/2"],
        "QoS 0 and the 3rd dropped"
    );
    let Attached {
        session, present, ..
    } = attach(&core, "c", false, 60);
    assert!(present);
    assert_eq!(session.id(), id, "the same session");
    assert_eq!(session.mqtt_subscriptions(), [("/t/#".to_owned(), 2)]);
    assert_eq!(queued(&session), ["d1", "d2"]);
    assert_eq!(core.stats().sessions_parked, 0);
}

#[test]
fn unacknowledged_messages_come_back_first_and_are_stored_with_their_packet_ids() {
    let store = Arc::new(LogStore::default());
    let core = core(&store, 10);
    let Attached { session, .. } = attach(&core, "c", false, 60);
    subscribe(&session, "t/#", 1);
    publish(&core, "t/a", 1);
    let Some(Some(Outbound::Durable(mut sent))) = session.recv().now_or_never() else {
        panic!("a durable message");
    };
    publish(&core, "t/b", 1);
    store.take();
    sent.pkid = Some(7);
    session.park(vec![sent], vec![3]);
    assert_eq!(store.take(), ["put c/1", "put-session c"]);
    let Attached {
        session,
        present,
        unacked,
        awaiting_pubrel,
    } = attach(&core, "c", false, 60);
    assert!(present);
    assert_eq!(unacked.len(), 1);
    assert_eq!((unacked[0].seq, unacked[0].pkid), (1, Some(7)));
    assert_eq!(awaiting_pubrel, [3]);
    assert_eq!(queued(&session), ["d2"]);
}

#[test]
fn clean_start_discards_the_stored_session() {
    let store = Arc::new(LogStore::default());
    let core = core(&store, 10);
    let Attached { session, .. } = attach(&core, "c", false, 60);
    subscribe(&session, "t/#", 1);
    drop(session);
    publish(&core, "t/a", 1);
    store.take();
    let Attached {
        session, present, ..
    } = attach(&core, "c", true, 0);
    assert!(!present);
    assert!(!session.is_durable());
    assert_eq!(store.take(), ["rm-session c"]);
    assert_eq!(core.router().len(), 0, "its subscriptions are gone");
    assert!(queued(&session).is_empty());
    drop(session);
    assert_eq!(core.stats().sessions + core.stats().sessions_parked, 0);
}

#[tokio::test(start_paused = true)]
async fn a_parked_session_expires() {
    let store = Arc::new(LogStore::default());
    let core = core(&store, 10);
    let Attached { session, .. } = attach(&core, "c", false, 2);
    subscribe(&session, "t/#", 1);
    drop(session);
    store.take();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(core.router().len(), 1);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(store.take(), ["rm-session c"]);
    assert_eq!(core.router().len(), 0);
    let Attached { present, .. } = attach(&core, "c", false, 2);
    assert!(!present);
}

#[tokio::test]
async fn stored_sessions_come_back_parked_with_sent_messages_first() {
    let store = Arc::new(LogStore::default());
    let state = State {
        v: 1,
        expiry_s: super::NEVER,
        detached_ms: Some(1),
        owner: None,
        awaiting_pubrel: vec![9],
        subscriptions: vec![StoredSubscription {
            filter: "t/+".into(),
            share: None,
            qos: 1,
            no_local: false,
            retain_as_published: false,
            subscription_id: None,
        }],
    };
    let message = |seq: u64, pkid: Option<u16>| {
        let event = Arc::new(Event::new(
            EventKind::Set,
            Path::parse("/t/a").unwrap(),
            Payload::json(&serde_json::json!(seq)),
            1,
            1,
            None,
            None,
            Consistency::Transactional,
            None,
            1,
        ));
        let m = DurableMessage {
            seq,
            event,
            qos: 1,
            retain: false,
            pkid,
            released: false,
            subscription_ids: Box::default(),
            shared_via: None,
        };
        let mut bytes = encode_head(&m).to_vec();
        bytes.extend_from_slice(&encode_body(&m.event));
        (seq, bytes)
    };
    let expired = State {
        expiry_s: 5,
        ..state.clone()
    };
    *store.stored.lock() = vec![
        StoredSession {
            client_id: "c".into(),
            state: state.encode().to_vec(),
            messages: vec![message(4, None), message(5, Some(9)), message(6, None)],
        },
        StoredSession {
            client_id: "old".into(),
            state: expired.encode().to_vec(),
            messages: vec![],
        },
        StoredSession {
            client_id: "bad".into(),
            state: b"{".to_vec(),
            messages: vec![],
        },
    ];
    let core = core(&store, 10);
    assert_eq!(core.restore_sessions().await.unwrap(), 1);
    assert_eq!(core.stats().sessions_parked, 1);
    assert_eq!(core.router().len(), 1);
    let ops = store.take();
    assert!(ops.contains(&"rm-session old".to_owned()), "{ops:?}");
    assert!(ops.contains(&"rm-session bad".to_owned()), "{ops:?}");
    publish(&core, "t/b", 1);
    assert_eq!(store.take(), ["put c/7"], "numbering continues");
    let Attached {
        session,
        present,
        unacked,
        awaiting_pubrel,
    } = core
        .attach(Attach {
            protocol: "mqtt",
            peer: None,
            client_id: "c".into(),
            clean_start: false,
            expiry_s: 60,
            username: None,
        })
        .await
        .unwrap();
    assert!(present);
    assert_eq!(awaiting_pubrel, [9], "kept across the restart");
    let order: Vec<_> = unacked.iter().map(|m| (m.seq, m.pkid)).collect();
    assert_eq!(order, [(5, Some(9)), (4, None), (6, None)]);
    assert_eq!(queued(&session), ["d7"]);
}

#[test]
fn drop_oldest_on_a_parked_session_removes_the_stored_message() {
    let store = Arc::new(LogStore::default());
    let config = CoreConfig {
        max_queued_messages: 2,
        overflow: crate::session::OverflowPolicy::DropOldest,
        ..CoreConfig::default()
    };
    let core = Core::builder_arc(store.clone()).config(config).build();
    let Attached { session, .. } = attach(&core, "c", false, 60);
    subscribe(&session, "t/#", 1);
    drop(session);
    store.take();
    for _ in 0..3 {
        publish(&core, "t/a", 1);
    }
    assert_eq!(store.take(), ["put c/1", "put c/2", "rm c/1", "put c/3"]);
    assert_eq!(core.stats().dropped, 1);
    let Attached { session, .. } = attach(&core, "c", false, 60);
    assert_eq!(queued(&session), ["d2", "d3"]);
}

/// [MQTT-3.1.2-5]: clean start 0 resumes whatever the new expiry; with expiry 0 the
/// session then ends with this connection.
#[test]
fn clean_start_0_with_expiry_0_resumes_then_ends() {
    let store = Arc::new(LogStore::default());
    let core = core(&store, 10);
    let Attached { session, .. } = attach(&core, "c", false, 60);
    subscribe(&session, "t/#", 1);
    drop(session);
    publish(&core, "t/a", 1);
    let Attached {
        session, present, ..
    } = attach(&core, "c", false, 0);
    assert!(present, "resumed");
    assert_eq!(queued(&session), ["d1"]);
    store.take();
    drop(session);
    assert_eq!(store.take(), ["rm-session c"], "ended with the connection");
    assert_eq!(core.router().len(), 0);
}

/// A secure broker's durable session belongs to its user: another user's connection
/// with the client id is refused and the session is left as it was.
#[test]
fn another_user_cannot_take_a_durable_session() {
    let store = Arc::new(LogStore::default());
    let core = core(&store, 10);
    let as_user = |user: &str, clean_start| Attach {
        protocol: "mqtt",
        peer: None,
        client_id: "c".into(),
        clean_start,
        expiry_s: 60,
        username: Some(user.into()),
    };
    let ann = core
        .attach(as_user("ann", false))
        .now_or_never()
        .unwrap()
        .unwrap();
    subscribe(&ann.session, "t/#", 1);
    drop(ann);
    for clean_start in [false, true] {
        let refused = core
            .attach(as_user("bob", clean_start))
            .now_or_never()
            .unwrap();
        assert!(matches!(refused, Err(super::AttachError::OtherUser { .. })));
    }
    assert_eq!(core.router().len(), 1, "ann's subscription is still there");
    let again = core
        .attach(as_user("ann", false))
        .now_or_never()
        .unwrap()
        .unwrap();
    assert!(again.present);
}
