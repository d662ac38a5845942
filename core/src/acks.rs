//! Publication results and acknowledgements (DESIGN.md §6; reference: CONSISTENCY): what
//! a `set` with consistency ACKNOWLEDGED waits for after its answer.
//!
//! The writer's publication id (`<origin session>-<request id>`) is registered before its
//! event is queued, so an `ack` that arrives before the fan-out has finished is not lost.
//! Once queued, the publication is *sealed* with its recipients that can acknowledge
//! (native sessions: their clients answer `ack` with the publication id; MQTT sessions
//! that got it at QoS 1/2: their PUBACK / PUBCOMP); a task waits
//! until every one of them has, or until [`CoreConfig::ack_timeout`], then queues a
//! [`Outbound::Published`] for the writer's session: the protocol writes it as a
//! `publication-ack` frame. An `ack` is matched on the session that sends it, never on
//! a client-supplied id, and only a recipient's first `ack` counts.
//!
//! [`CoreConfig::ack_timeout`]: crate::CoreConfig::ack_timeout

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::event::Outbound;
use crate::pipeline::Core;
use crate::publish::PublishResult;
use crate::session::{OverflowPolicy, SessionId, SessionQueue};

/// How a publication went, for its writer (`onPublished`; wire doc: publication-ack).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Publication {
    /// `<origin session>-<request id>`.
    pub id: String,
    /// The writer's request id.
    pub event_id: Option<u64>,
    /// Where the event went.
    pub results: PublishResult,
    /// Recipients that acknowledged (consistency ACKNOWLEDGED).
    pub acknowledged: Option<u64>,
    /// Why it is not a success: the recipients that did not acknowledge in time.
    pub error: Option<String>,
}

impl Publication {
    /// The results of a publication with consistency DEFERRED (nothing to wait for).
    pub(crate) fn deferred(id: String, event_id: Option<u64>, results: PublishResult) -> Self {
        Self {
            id,
            event_id,
            results,
            acknowledged: None,
            error: None,
        }
    }
}

/// One publication waiting for acknowledgements.
#[derive(Debug, Default)]
struct Waiting {
    state: Mutex<WaitState>,
    done: Notify,
}

#[derive(Debug, Default)]
struct WaitState {
    /// The recipients still to acknowledge, once sealed.
    expected: Option<HashSet<SessionId>>,
    /// Acknowledgements that came before the seal.
    early: HashSet<SessionId>,
    acknowledged: u64,
}

/// The publications waiting for acknowledgements, by publication id.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    waiting: dashmap::DashMap<String, Arc<Waiting>>,
}

impl Acks {
    /// Registers `id` before its event is queued.
    pub(crate) fn register(&self, id: &str) {
        self.waiting.insert(id.to_owned(), Arc::default());
    }

    /// Forgets `id` (its publication failed before sealing).
    pub(crate) fn forget(&self, id: &str) {
        self.waiting.remove(id);
    }

    /// Records `session`'s acknowledgement of `id`. Answers whether it counted.
    pub(crate) fn acknowledge(&self, session: SessionId, id: &str) -> bool {
        let Some(waiting) = self.waiting.get(id).map(|w| w.clone()) else {
            return false;
        };
        let mut state = waiting.state.lock();
        let counted = match &mut state.expected {
            Some(expected) => expected.remove(&session),
            None => state.early.insert(session),
        };
        if counted && state.expected.is_some() {
            state.acknowledged += 1;
            if state.expected.as_ref().is_some_and(HashSet::is_empty) {
                waiting.done.notify_one();
            }
        }
        counted
    }
}

impl Core {
    /// Records that `session` acknowledged the publication `id` (native `ack`; MQTT
    /// PUBACK/PUBCOMP of the delivered message). Answers whether it counted: `false` for
    /// an unknown or finished publication, a session that was not a recipient, or a
    /// repeated acknowledgement.
    pub fn acknowledge(&self, session: SessionId, id: &str) -> bool {
        self.inner.acks.acknowledge(session, id)
    }

    /// Seals the registered publication `id` with the `recipients` its event was queued
    /// for, and starts waiting for those that can acknowledge; then queues the outcome
    /// for the writer (`origin`).
    pub(crate) fn await_acks(
        &self,
        id: String,
        event_id: Option<u64>,
        results: PublishResult,
        recipients: Vec<SessionId>,
        origin: SessionQueue,
    ) {
        let Some(waiting) = self.inner.acks.waiting.get(&id).map(|w| w.clone()) else {
            return;
        };
        {
            let mut state = waiting.state.lock();
            let mut expected: HashSet<SessionId> = (recipients.into_iter())
                .filter(|s| self.can_acknowledge(*s))
                .collect();
            let early = std::mem::take(&mut state.early);
            let before = expected.len();
            expected.retain(|s| !early.contains(s));
            state.acknowledged = (before - expected.len()) as u64;
            state.expected = Some(expected);
        }
        let core = self.clone();
        let timeout = self.inner.config.ack_timeout;
        self.tasks().spawn(async move {
            let all = async {
                loop {
                    let notified = waiting.done.notified();
                    if waiting
                        .state
                        .lock()
                        .expected
                        .as_ref()
                        .is_some_and(HashSet::is_empty)
                    {
                        return;
                    }
                    notified.await;
                }
            };
            let finished = tokio::select! {
                () = core.shutdown_token().cancelled() => false,
                timed = tokio::time::timeout(timeout, all) => timed.is_ok(),
            };
            core.inner.acks.forget(&id);
            let state = waiting.state.lock();
            let missing: Vec<String> = (state.expected.iter().flatten())
                .map(ToString::to_string)
                .collect();
            let error = (!finished).then(|| {
                format!(
                    "{} recipient(s) did not acknowledge within {} ms: {}",
                    missing.len(),
                    timeout.as_millis(),
                    missing.join(", ")
                )
            });
            let publication = Publication {
                id,
                event_id,
                results,
                acknowledged: Some(state.acknowledged),
                error,
            };
            drop(state);
            origin.deliver(
                Outbound::Published(Arc::new(publication)),
                OverflowPolicy::DropNew,
            );
        });
    }

    /// Whether `session` can acknowledge an event: a native session (its client answers
    /// `ack`), or an MQTT session that got it at QoS 1 or 2 (its PUBACK or PUBCOMP; the
    /// fan-out leaves out those that got it at QoS 0).
    fn can_acknowledge(&self, session: SessionId) -> bool {
        matches!(self.session_protocol(session), Some("native" | "mqtt"))
    }
}
