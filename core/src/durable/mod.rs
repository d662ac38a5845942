//! Durable sessions (DESIGN.md §6): MQTT sessions with clean start 0 and a session expiry
//! above 0 outlive their network connection.
//!
//! * **While attached** the session is an ordinary [`Session`] whose queue also writes
//!   every QoS 1/2 message it takes to the store's session log
//!   ([`crate::session_log`]), numbered by a per-session sequence number; the protocol
//!   reports each acknowledgement ([`Session::acknowledged`]), which removes it. The
//!   publisher is answered once those writes are durable, so a PUBACKed message survives
//!   a crash.
//! * **When the connection ends** the session is *parked* instead of closed: its
//!   subscriptions stay in the router, its queue keeps taking QoS 1/2 messages (up to
//!   [`crate::CoreConfig::max_queued_messages`]; QoS 0 is not queued, as in Mosquitto),
//!   and the protocol hands back what was sent but not acknowledged ([`Session::park`]).
//!   After the session expiry interval it is removed.
//! * **A new connection with the client id** ([`Core::attach`]) resumes it (session
//!   present) or, with clean start 1, discards it.
//! * **At start-up** ([`Core::restore_sessions`]) stored sessions come back parked, their
//!   stored messages to be resent first.

mod attach;
mod codec;
mod handle;
mod restore;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

pub use attach::{Attach, AttachError, Attached};
pub(crate) use codec::encode_body;

use crate::event::Event;
use crate::session::SessionEntry;
use crate::session_log::SessionOp;
use crate::store::Store;

/// A session expiry interval meaning "never" (MQTT 5 §3.1.2.11.2: `0xFFFFFFFF`), in
/// seconds.
pub const NEVER: u32 = u32::MAX;

/// A QoS 1/2 message of a durable session, as its queue holds it and as the protocol
/// hands it back when the connection ends unacknowledged.
#[derive(Debug, Clone)]
pub struct DurableMessage {
    /// Its place in the session's queue; also its key in the store. 0: not stored yet (a
    /// retained message sent because of a SUBSCRIBE), [`Session::park`] stores it.
    pub seq: u64,
    /// The event (for a restored message: rebuilt from the store, a set without origin).
    pub event: Arc<Event>,
    /// The QoS it is delivered at (1 or 2).
    pub qos: u8,
    /// Whether it goes out as a retained message.
    pub retain: bool,
    /// The packet identifier it was last sent with: a resend uses the same one, with DUP
    /// set (MQTT-4.4.0-1). `None`: never sent.
    pub pkid: Option<u16>,
    /// QoS 2 only: PUBREC arrived and PUBREL was sent; a resend is the PUBREL.
    pub released: bool,
    /// The MQTT 5 Subscription Identifiers of the session's subscriptions it matched.
    pub subscription_ids: Box<[u32]>,
    /// The shared subscription it came through, when only shared ones matched: a QoS 1
    /// message left unacknowledged goes to another member of the group
    /// ([`crate::Core::redeliver_shared`]). Not stored: after a restart it stays with
    /// this session.
    pub shared_via: Option<Arc<crate::Subscription>>,
}

/// What a durable session keeps beyond its connections. Shared by its entry, its queue
/// and the tasks waiting on it (expiry, a delayed will).
pub(crate) struct Durable {
    pub(crate) client_id: Arc<str>,
    store: Arc<dyn Store>,
    /// The next message's sequence number.
    next_seq: AtomicU64,
    /// No connection is attached: QoS 0 messages are not queued, the queue's limit is
    /// [`crate::CoreConfig::max_queued_messages`].
    parked: AtomicBool,
    /// What the queue holds at most while parked.
    parked_limits: crate::session::QueueLimits,
    state: Mutex<DurableState>,
    /// Signalled when a connection attaches or the session ends (a delayed will waits on
    /// it).
    changed: Notify,
}

#[derive(Debug, Default)]
pub(crate) struct DurableState {
    /// Session expiry interval in seconds ([`NEVER`]: never; 0: ends with the connection).
    expiry_s: u32,
    /// Bumped by every attach: a stale connection's guard and an old expiry timer see it.
    pub(crate) generation: u64,
    /// Removed: the session ended (expired, discarded, replaced).
    pub(crate) ended: bool,
    /// The user whose session it is (secure broker), once known.
    owner: Option<String>,
    /// When the session was parked (ms since the epoch).
    detached_ms: Option<u64>,
    /// Handed back by the last connection: resent first on resume.
    unacked: Vec<DurableMessage>,
    /// QoS 2 packet ids received from the client whose PUBREL has not arrived (MQTT
    /// §4.3.3 receiver state).
    awaiting_pubrel: Vec<u16>,
}

/// What happened to a parked session that a delayed will waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new connection resumed it: a delayed will is not sent [MQTT-3.1.3-9].
    Resumed,
    /// It ended (expired or discarded): a delayed will is sent now.
    Ended,
}

/// A parked session, as a delayed will sees it.
#[derive(Debug, Clone)]
pub struct Detached {
    durable: Arc<Durable>,
    generation: u64,
}

impl Detached {
    /// Waits until the session is resumed by a new connection or ends.
    pub async fn changed(&self) -> Change {
        loop {
            let notified = self.durable.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.durable.state.lock();
                if state.ended {
                    return Change::Ended;
                }
                if state.generation != self.generation {
                    return Change::Resumed;
                }
            }
            notified.await;
        }
    }
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("client_id", &self.client_id)
            .field("parked", &self.is_parked())
            .finish_non_exhaustive()
    }
}

impl Durable {
    fn new(
        client_id: Arc<str>,
        store: Arc<dyn Store>,
        expiry_s: u32,
        parked_limits: crate::session::QueueLimits,
        next_seq: u64,
    ) -> Self {
        Self {
            client_id,
            store,
            next_seq: AtomicU64::new(next_seq.max(1)),
            parked: AtomicBool::new(false),
            parked_limits: crate::session::QueueLimits {
                messages: parked_limits.messages.max(1),
                bytes: parked_limits.bytes,
            },
            state: Mutex::new(DurableState {
                expiry_s,
                generation: 1,
                ..DurableState::default()
            }),
            changed: Notify::new(),
        }
    }

    /// Whether no connection is attached.
    pub(crate) fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire)
    }

    /// What the queue holds at most while parked.
    pub(crate) fn parked_limits(&self) -> crate::session::QueueLimits {
        self.parked_limits
    }

    /// The attach generation a new [`Session`](crate::Session) guard holds.
    pub(crate) fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// Numbers a message the queue takes; called under the queue's lock, so numbers follow
    /// the queue's order.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Submits a write of `message` (new, or its packet id / stage changed); returns the
    /// ticket to wait on.
    pub(crate) fn write_message(&self, message: &DurableMessage) -> u64 {
        self.write_message_with_body(message, message.event.stored_body())
    }

    pub(crate) fn write_message_with_body(
        &self,
        message: &DurableMessage,
        body: bytes::Bytes,
    ) -> u64 {
        self.store.submit_session_op(SessionOp::PutMessage {
            client_id: self.client_id.clone(),
            seq: message.seq,
            head: codec::encode_head(message),
            body,
        })
    }

    /// Whether the session ended (its store entries are gone; writes for it are ignored).
    pub(crate) fn ended(&self) -> bool {
        self.state.lock().ended
    }

    /// Submits the removal of message `seq` (acknowledged, dropped).
    pub(crate) fn remove_message(&self, seq: u64) {
        if seq != 0 && !self.ended() {
            self.store.submit_session_op(SessionOp::RemoveMessage {
                client_id: self.client_id.clone(),
                seq,
            });
        }
    }

    /// Submits the session's state: its expiry, whether it is parked, and `entry`'s
    /// subscriptions; returns the ticket.
    pub(crate) fn write_state(&self, entry: &SessionEntry) -> u64 {
        let (expiry_s, detached_ms, owner, awaiting_pubrel) = {
            let state = self.state.lock();
            (
                state.expiry_s,
                state.detached_ms,
                state.owner.clone(),
                state.awaiting_pubrel.clone(),
            )
        };
        let mut subscriptions: Vec<codec::StoredSubscription> = entry
            .subscriptions
            .lock()
            .values()
            .map(|s| codec::StoredSubscription {
                filter: s.pattern.as_str().get(1..).unwrap_or_default().to_owned(),
                share: s.options.share.as_deref().map(str::to_owned),
                qos: s.options.qos,
                no_local: s.options.no_local,
                retain_as_published: s.options.retain_as_published,
                subscription_id: s.options.subscription_id,
            })
            .collect();
        subscriptions.sort_by(|a, b| a.filter.cmp(&b.filter));
        let state = codec::State {
            v: 1,
            expiry_s,
            detached_ms,
            subscriptions,
            owner,
            awaiting_pubrel,
        };
        self.store.submit_session_op(SessionOp::PutSession {
            client_id: self.client_id.clone(),
            state: state.encode(),
        })
    }

    /// Waits until the session-log writes up to `ticket` are durable (errors are logged:
    /// the messages are still held in memory).
    pub(crate) async fn written(&self, ticket: u64) {
        if let Err(error) = self.store.session_ops_durable(ticket).await {
            tracing::warn!(client_id = %self.client_id, %error, "session log write not confirmed");
        }
    }

    /// Sets the session expiry interval (MQTT 5 DISCONNECT may change it), in seconds.
    pub(crate) fn set_expiry(&self, expiry_s: u32) {
        self.state.lock().expiry_s = expiry_s;
    }

    pub(crate) fn expiry_s(&self) -> u32 {
        self.state.lock().expiry_s
    }
}
