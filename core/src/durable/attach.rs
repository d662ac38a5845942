//! Attaching a connection to a session by client id (MQTT §3.1.2.4 Clean Start, §4.1
//! Session State), parking a durable session when its connection ends, and ending it
//! (clean start 1, expiry).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Durable, DurableMessage, DurableState, NEVER};
use crate::event::CloseReason;
use crate::payload::now_ms;
use crate::pipeline::Core;
use crate::session::{Session, SessionEntry};

use crate::session_log::SessionOp;

/// How long a new connection waits for the old connection of its client id to let go of
/// a durable session (it is told at once; one stuck writing to a client that does not
/// read may take longer). Past it, the old session is discarded and the new one starts
/// afresh (session present 0).
const TAKEOVER_WAIT: Duration = Duration::from_secs(10);

/// A connection asking for a session ([`Core::attach`]).
#[derive(Debug, Clone)]
pub struct Attach {
    /// The protocol (`"mqtt"`).
    pub protocol: &'static str,
    /// The peer address.
    pub peer: Option<SocketAddr>,
    /// The client id (MQTT: as sent, or assigned).
    pub client_id: String,
    /// Clean start (MQTT 5) / clean session (3.1.1): discard any existing session.
    pub clean_start: bool,
    /// Session expiry interval in seconds: 0, the session ends with the connection;
    /// [`NEVER`](super::NEVER): it never expires.
    pub expiry_s: u32,
    /// The user the connection logged in as (secure broker): a durable session belongs to
    /// the user who made it ([`AttachError::OtherUser`]).
    pub username: Option<String>,
}

/// The session a connection got ([`Core::attach`]).
#[derive(Debug)]
pub struct Attached {
    /// The session, attached to the connection.
    pub session: Session,
    /// Whether an existing session was resumed (MQTT CONNACK session present).
    pub present: bool,
    /// Messages to resend first, in order: the previous connection's unacknowledged ones
    /// (with their packet ids) and, after a restart, every stored one.
    pub unacked: Vec<DurableMessage>,
    /// QoS 2 packet ids received from the client that still await its PUBREL.
    pub awaiting_pubrel: Vec<u16>,
}

/// Why a connection cannot have the session of its client id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The client id's durable session belongs to another user (secure broker): its
    /// messages are not handed to someone else. Nothing changed.
    #[error("client id `{client_id}` holds a session of another user")]
    OtherUser {
        /// The client id.
        client_id: String,
    },
}

impl Core {
    /// Opens the session of a connection with a client id (MQTT CONNECT):
    ///
    /// * a live session with the id is taken over (ended with [`CloseReason::TakenOver`],
    ///   MQTT-3.1.4-2); a durable one is waited for until it is parked;
    /// * with `clean_start` an existing durable session is discarded with everything it
    ///   kept [MQTT-3.1.2-4]; otherwise it is resumed (`present`) with its
    ///   subscriptions, its queue and what its last connection left unacknowledged
    ///   [MQTT-3.1.2-5], and the new expiry (0: it ends with this connection);
    /// * a new session with an expiry above 0 is durable: stored now, kept when its
    ///   connection ends.
    ///
    /// Every change of a durable session's state (parked, attached, ended) is made under
    /// its lock, with the condition checked in the same step, so a resume, an expiry and
    /// a takeover racing each other leave exactly one outcome. Waits for the session log
    /// only when a session is created or resumed.
    ///
    /// # Errors
    /// [`AttachError::OtherUser`] when `username` differs from the user whose durable
    /// session the client id holds.
    pub async fn attach(&self, attach: Attach) -> Result<Attached, AttachError> {
        let deadline = tokio::time::Instant::now() + TAKEOVER_WAIT;
        loop {
            let Some((old, durable)) = self.durable_entry(&attach.client_id) else {
                return Ok(self.attach_new(attach).await);
            };
            let (ended, owner) = {
                let state = durable.state.lock();
                (state.ended, state.owner.clone())
            };
            if let (Some(owner), Some(user)) = (&owner, &attach.username)
                && owner != user
            {
                tracing::warn!(client_id = %attach.client_id, %owner, user, "client id of another user's session refused");
                return Err(AttachError::OtherUser {
                    client_id: attach.client_id,
                });
            }
            if ended {
                // Ended but still registered for a moment: gone for this connection.
                self.remove_entry(&old);
                continue;
            }
            if !durable.is_parked() {
                let notified = durable.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                old.queue.close(CloseReason::TakenOver);
                let still_live = !durable.is_parked() && !durable.state.lock().ended;
                if still_live && tokio::time::timeout_at(deadline, notified).await.is_err() {
                    tracing::warn!(
                        client_id = %attach.client_id,
                        "the old connection did not let go of its session in time: discarded"
                    );
                    self.end(&old, &durable, |_, _| true);
                    return Ok(self.attach_new(attach).await);
                }
                continue;
            }
            if attach.clean_start {
                tracing::info!(client_id = %attach.client_id, "clean start: stored session discarded");
                self.end(&old, &durable, |_, _| true);
                return Ok(self.attach_new(attach).await);
            }
            if let Some(attached) = self.resume(&old, &durable, &attach).await {
                return Ok(attached);
            }
        }
    }

    /// Adds `delta` to the count of parked sessions (`Stats::sessions_parked`).
    pub(crate) fn parked_count(&self, delta: i64) {
        (self.inner.counters.parked).fetch_add(delta, Ordering::Relaxed);
    }

    /// The entry of the durable session holding `client_id`, if any.
    fn durable_entry(&self, client_id: &str) -> Option<(Arc<SessionEntry>, Arc<Durable>)> {
        let entry = self.entry_of_client(client_id)?;
        let durable = entry.durable.clone()?;
        Some((entry, durable))
    }

    async fn attach_new(&self, attach: Attach) -> Attached {
        let durable = (attach.expiry_s > 0).then(|| {
            let durable = Durable::new(
                attach.client_id.as_str().into(),
                self.store().clone(),
                attach.expiry_s,
                self.config().parked_limits(),
                1,
            );
            durable.state.lock().owner = attach.username.clone();
            Arc::new(durable)
        });
        let entry = self.new_entry(
            attach.protocol,
            attach.peer,
            Some(attach.client_id),
            durable.clone(),
        );
        let session = self.register(entry);
        if let Some(durable) = durable {
            let ticket = durable.write_state(&session.entry);
            durable.written(ticket).await;
        }
        Attached {
            session,
            present: false,
            unacked: Vec::new(),
            awaiting_pubrel: Vec::new(),
        }
    }

    /// Attaches a new connection to the parked session `old`: a new entry (this
    /// connection's peer, no identity yet) over the same id, queue and subscriptions.
    /// `None` when the session is no longer parked (another connection resumed it, or it
    /// ended): the caller looks again.
    async fn resume(
        &self,
        old: &Arc<SessionEntry>,
        durable: &Arc<Durable>,
        attach: &Attach,
    ) -> Option<Attached> {
        let (unacked, awaiting_pubrel) = {
            let mut state = durable.state.lock();
            if state.ended || !durable.is_parked() {
                return None;
            }
            state.generation += 1;
            state.expiry_s = attach.expiry_s;
            state.detached_ms = None;
            if state.owner.is_none() {
                state.owner = attach.username.clone();
            }
            durable.parked.store(false, Ordering::Release);
            (
                std::mem::take(&mut state.unacked),
                std::mem::take(&mut state.awaiting_pubrel),
            )
        };
        self.parked_count(-1);
        durable.changed.notify_waiters();
        old.queue.reopen();
        let entry = Arc::new(SessionEntry {
            info: crate::session::SessionInfo {
                peer: attach.peer,
                ..old.info.clone()
            },
            queue: old.queue.clone(),
            subscriptions: parking_lot::Mutex::new(std::mem::take(&mut *old.subscriptions.lock())),
            identity: parking_lot::RwLock::new(None),
            durable: Some(durable.clone()),
        });
        let session = self.reregister(entry);
        tracing::info!(
            client_id = %durable.client_id,
            session = %session.id(),
            resent = unacked.len(),
            queued = session.entry.queue.len(),
            "durable session resumed"
        );
        let ticket = durable.write_state(&session.entry);
        durable.written(ticket).await;
        Some(Attached {
            session,
            present: true,
            unacked,
            awaiting_pubrel,
        })
    }

    /// Parks a durable session whose connection (attach `generation`) ended: it keeps
    /// its subscriptions and queue, loses its identity (the login's connection slot is
    /// freed), and expires after its expiry interval. Nothing happens when the session
    /// ended or a newer connection holds it. Called from `close_session`.
    fn park(&self, entry: &Arc<SessionEntry>, durable: &Arc<Durable>, generation: u64) {
        let expiry_s = {
            let mut state = durable.state.lock();
            if state.ended || state.generation != generation || durable.is_parked() {
                return;
            }
            state.detached_ms = Some(now_ms());
            durable.parked.store(true, Ordering::Release);
            state.expiry_s
        };
        *entry.identity.write() = None;
        self.parked_count(1);
        entry.queue.release_publishers();
        durable.write_state(entry);
        durable.changed.notify_waiters();
        tracing::info!(
            client_id = %durable.client_id,
            session = %entry.info.id,
            expiry_s,
            "durable session parked"
        );
        if expiry_s != NEVER {
            self.expire_after(entry.clone(), generation, u64::from(expiry_s) * 1000);
        }
    }

    /// Removes the parked session `entry` after `after_ms` unless a connection attached
    /// since (its generation changed: the timer stops then) or the broker stops first.
    pub(crate) fn expire_after(&self, entry: Arc<SessionEntry>, generation: u64, after_ms: u64) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let Some(durable) = entry.durable.clone() else {
            return;
        };
        let core = self.clone();
        let shutdown = self.shutdown_token().clone();
        self.tasks().spawn(async move {
            let sleep = tokio::time::sleep(Duration::from_millis(after_ms));
            tokio::pin!(sleep);
            loop {
                let changed = durable.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                {
                    let state = durable.state.lock();
                    if state.ended || state.generation != generation {
                        return;
                    }
                }
                tokio::select! {
                    () = &mut sleep => break,
                    () = shutdown.cancelled() => return,
                    () = changed => {}
                }
            }
            let expired = core.end(&entry, &durable, |state, parked| {
                parked && state.generation == generation
            });
            if expired {
                tracing::info!(client_id = %durable.client_id, "durable session expired");
            }
        });
    }

    /// Ends a durable session for good when `condition(state, parked)` holds (checked
    /// under its lock): out of the router and the registry, its stored state and
    /// messages removed; a delayed will waiting on it is sent. `false` when it had ended
    /// already or the condition did not hold.
    pub(crate) fn end(
        &self,
        entry: &Arc<SessionEntry>,
        durable: &Arc<Durable>,
        condition: impl FnOnce(&DurableState, bool) -> bool,
    ) -> bool {
        let was_parked = {
            let mut state = durable.state.lock();
            if state.ended || !condition(&state, durable.is_parked()) {
                return false;
            }
            state.ended = true;
            state.unacked.clear();
            durable.parked.swap(false, Ordering::AcqRel)
        };
        if was_parked {
            self.parked_count(-1);
        }
        self.remove_entry(entry);
        self.store().submit_session_op(SessionOp::RemoveSession {
            client_id: durable.client_id.clone(),
        });
        durable.changed.notify_waiters();
        true
    }

    /// What `close_session` does with a durable session whose guard (attach `generation`)
    /// dropped: nothing for a stale guard, park it while its expiry is above 0, otherwise
    /// end it.
    pub(crate) fn detach_durable(
        &self,
        entry: &Arc<SessionEntry>,
        durable: &Arc<Durable>,
        generation: u64,
    ) {
        let (ended, expiry_s) = {
            let state = durable.state.lock();
            (state.ended, state.expiry_s)
        };
        if ended {
            // Ended while this connection still ran: the registry may hold a new session
            // under the client id, whose stored state must stay.
            self.remove_entry(entry);
        } else if expiry_s == 0 {
            self.end(entry, durable, |state, _| state.generation == generation);
        } else {
            self.park(entry, durable, generation);
        }
    }
}
