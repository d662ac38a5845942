//! Attaching a connection to a session by client id (MQTT §3.1.2.4 Clean Start, §4.1
//! Session State), parking a durable session when its connection ends, and ending it
//! (clean start 1, expiry).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Detached, Durable, DurableMessage, NEVER};
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

impl Core {
    /// Opens the session of a connection with a client id (MQTT CONNECT):
    ///
    /// * a live session with the id is taken over (ended with [`CloseReason::TakenOver`],
    ///   MQTT-3.1.4-2); a durable one is waited for until it is parked;
    /// * with `clean_start` (or an expiry of 0) an existing durable session is discarded
    ///   with everything it kept [MQTT-3.1.2-4]; otherwise it is resumed (`present`) with
    ///   its subscriptions, its queue and what its last connection left unacknowledged
    ///   [MQTT-3.1.2-5];
    /// * a new session with an expiry above 0 is durable: stored now, kept when its
    ///   connection ends.
    ///
    /// Waits for the session log only when a session is created or resumed.
    pub async fn attach(&self, attach: Attach) -> Attached {
        let deadline = tokio::time::Instant::now() + TAKEOVER_WAIT;
        loop {
            let Some((old, durable)) = self.durable_entry(&attach.client_id) else {
                return self.attach_new(attach).await;
            };
            if !durable.is_parked() && !durable.state.lock().ended {
                let notified = durable.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                old.queue.close(CloseReason::TakenOver);
                if !durable.is_parked()
                    && tokio::time::timeout_at(deadline, notified).await.is_err()
                {
                    tracing::warn!(
                        client_id = %attach.client_id,
                        "the old connection did not let go of its session in time: discarded"
                    );
                    self.discard(&old, &durable);
                    return self.attach_new(attach).await;
                }
                continue;
            }
            if attach.clean_start || attach.expiry_s == 0 {
                tracing::info!(client_id = %attach.client_id, "clean start: stored session discarded");
                self.discard(&old, &durable);
                return self.attach_new(attach).await;
            }
            return self.resume(&old, &durable, attach).await;
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
            Arc::new(Durable::new(
                attach.client_id.as_str().into(),
                self.store().clone(),
                attach.expiry_s,
                self.config().parked_limits(),
                1,
            ))
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
    async fn resume(
        &self,
        old: &Arc<SessionEntry>,
        durable: &Arc<Durable>,
        attach: Attach,
    ) -> Attached {
        let (unacked, awaiting_pubrel) = {
            let mut state = durable.state.lock();
            state.generation += 1;
            state.expiry_s = attach.expiry_s;
            state.detached_ms = None;
            (
                std::mem::take(&mut state.unacked),
                std::mem::take(&mut state.awaiting_pubrel),
            )
        };
        durable.parked.store(false, Ordering::Release);
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
        Attached {
            session,
            present: true,
            unacked,
            awaiting_pubrel,
        }
    }

    /// Parks a durable session whose connection ended: it keeps its subscriptions and
    /// queue, loses its identity (the login's connection slot is freed), and expires
    /// after its expiry interval. Called from `close_session`.
    pub(crate) fn park(&self, entry: &Arc<SessionEntry>, durable: &Arc<Durable>) {
        *entry.identity.write() = None;
        let (expiry_s, generation) = {
            let mut state = durable.state.lock();
            state.detached_ms = Some(now_ms());
            (state.expiry_s, state.generation)
        };
        durable.parked.store(true, Ordering::Release);
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
    /// since (its generation changed) or the broker stops first.
    pub(crate) fn expire_after(&self, entry: Arc<SessionEntry>, generation: u64, after_ms: u64) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let core = self.clone();
        let shutdown = self.shutdown_token().clone();
        self.tasks().spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(after_ms)) => {}
                () = shutdown.cancelled() => return,
            }
            let Some(durable) = entry.durable.clone() else {
                return;
            };
            let expired = {
                let state = durable.state.lock();
                durable.is_parked() && !state.ended && state.generation == generation
            };
            if expired {
                tracing::info!(client_id = %durable.client_id, "durable session expired");
                core.discard(&entry, &durable);
            }
        });
    }

    /// Ends a durable session for good: out of the router and the registry, its stored
    /// state and messages removed; a delayed will waiting on it is sent.
    pub(crate) fn discard(&self, entry: &Arc<SessionEntry>, durable: &Arc<Durable>) {
        {
            let mut state = durable.state.lock();
            if state.ended {
                return;
            }
            state.ended = true;
            state.unacked.clear();
        }
        if durable.parked.swap(false, Ordering::AcqRel) {
            self.parked_count(-1);
        }
        self.remove_entry(entry);
        self.store().submit_session_op(SessionOp::RemoveSession {
            client_id: durable.client_id.clone(),
        });
        durable.changed.notify_waiters();
    }

    /// What `close_session` does with a durable session whose guard (attach `generation`)
    /// dropped: nothing for a stale guard, park it while its expiry is above 0, otherwise
    /// discard it.
    pub(crate) fn detach_durable(
        &self,
        entry: &Arc<SessionEntry>,
        durable: &Arc<Durable>,
        generation: u64,
    ) {
        let (ended, current, expiry_s) = {
            let state = durable.state.lock();
            (state.ended, state.generation, state.expiry_s)
        };
        if ended {
            // Discarded while this connection still ran: the registry may hold a new
            // session under the client id, whose stored state must stay.
            self.remove_entry(entry);
        } else if current != generation {
            // A newer connection owns the session.
        } else if expiry_s == 0 {
            self.discard(entry, durable);
        } else {
            self.park(entry, durable);
        }
    }
}

impl Session {
    /// Hands back, as the connection ends, the messages sent but not acknowledged (with
    /// their packet ids) and those taken from the queue but not sent yet, in the order to
    /// resend them, and the QoS 2 packet ids awaiting the client's PUBREL; then ends this
    /// attachment. A durable session keeps them for the next connection (stored first
    /// when new or re-numbered); otherwise they are dropped.
    pub fn park(self, unacked: Vec<DurableMessage>, awaiting_pubrel: Vec<u16>) {
        if let Some(durable) = self.entry.durable.clone()
            && durable.generation() == self.generation
        {
            let mut unacked = unacked;
            for message in &mut unacked {
                if message.seq == 0 {
                    message.seq = durable.next_seq();
                    durable.write_message(message);
                } else if message.pkid.is_some() {
                    durable.write_message(message);
                }
            }
            let mut state = durable.state.lock();
            state.unacked = unacked;
            state.awaiting_pubrel = awaiting_pubrel;
        }
    }

    /// Whether this session outlives its connection (MQTT session expiry above 0).
    pub fn is_durable(&self) -> bool {
        self.entry.durable.is_some()
    }

    /// The protocol acknowledged durable message `seq` (MQTT PUBACK, PUBCOMP, or a
    /// message it could not send): it is removed from the store. Does nothing for 0 or a
    /// session that is not durable.
    pub fn acknowledged(&self, seq: u64) {
        if let Some(durable) = &self.entry.durable {
            durable.remove_message(seq);
        }
    }

    /// Stores `message` again with its packet id and stage (a QoS 2 message sent, or its
    /// PUBREC received), so that a restart resends it the same way; returns the ticket
    /// [`Session::written`] waits on before the client is told (0: nothing to wait for).
    pub fn rewrite(&self, message: &DurableMessage) -> u64 {
        match &self.entry.durable {
            Some(durable) if message.seq != 0 => durable.write_message(message),
            _ => 0,
        }
    }

    /// Waits until the session-log writes up to `ticket` are durable.
    pub async fn written(&self, ticket: u64) {
        if ticket != 0
            && let Some(durable) = &self.entry.durable
        {
            durable.written(ticket).await;
        }
    }

    /// Changes the session expiry interval, in seconds (MQTT 5 DISCONNECT): 0 ends the
    /// session with its connection.
    pub fn set_expiry(&self, expiry_s: u32) {
        if let Some(durable) = &self.entry.durable {
            durable.set_expiry(expiry_s);
        }
    }

    /// The session expiry interval in seconds (0 for a session that is not durable).
    pub fn expiry_s(&self) -> u32 {
        self.entry.durable.as_ref().map_or(0, |d| d.expiry_s())
    }

    /// A handle on this durable session for a delayed will: it tells whether the session
    /// was resumed or ended ([`Detached::changed`]). `None` when not durable.
    pub fn detached(&self) -> Option<Detached> {
        let durable = self.entry.durable.clone()?;
        Some(Detached {
            durable,
            generation: self.generation,
        })
    }

    /// This session's subscriptions with their granted QoS, by the key MQTT keeps them
    /// under: the pattern (`/a/+`), or a shared subscription's whole filter
    /// (`$share/g/a/+`) (a resumed session's, for the protocol's own bookkeeping).
    pub fn mqtt_subscriptions(&self) -> Vec<(String, u8)> {
        self.entry
            .subscriptions
            .lock()
            .values()
            .map(|s| {
                let key = match &s.options.share {
                    Some(_) => s.options.channel.clone().unwrap_or_default(),
                    None => s.pattern.as_str().to_owned(),
                };
                (key, s.options.qos)
            })
            .collect()
    }
}
