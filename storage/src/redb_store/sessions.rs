//! Durable MQTT sessions in the redb store ([`pathmq_core::session_log`]): their tables,
//! the queue of session operations waiting for the writer thread, applying them inside the
//! writer's transactions, and loading them back at start-up.
//!
//! - **Tables**: [`SESSIONS`] maps a client id to the session's state; [`SESSION_MESSAGES`]
//!   maps `(client id, seq)` to a stored message (`head ++ body`). Both are ordered by
//!   client id (bytewise), and messages by `seq` within a client id.
//! - **Submission** never blocks: [`SessionQueue::push`] appends the op and gives it the
//!   next ticket under one lock, so tickets follow the queue's order. The queue is
//!   unbounded: it holds what the core also holds in memory (the sessions' queues, which
//!   the core bounds), for at most the time of one commit.
//! - **Commit**: the writer thread takes everything queued ([`SessionQueue::take`]) into
//!   each transaction it commits and applies it ([`apply`]) before that batch's record
//!   operations; then it publishes the highest ticket it committed.
//! - **Load** ([`load`]) reads both tables in one read transaction.

use parking_lot::Mutex;
use pathmq_core::StoreError;
use pathmq_core::session_log::{SessionOp, StoredSession};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::engine;

/// Session states: client id → the state encoded by the core.
pub(super) const SESSIONS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("sessions");

/// Stored messages: `(client id, seq)` → `head ++ body`.
pub(super) const SESSION_MESSAGES: TableDefinition<'static, (&'static str, u64), &'static [u8]> =
    TableDefinition::new("session_messages");

/// Session operations submitted but not yet taken by the writer thread.
#[derive(Debug, Default)]
pub(super) struct SessionQueue {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    ops: Vec<SessionOp>,
    /// The ticket of the last op accepted (0: none yet).
    last_ticket: u64,
    /// Set once the writer thread has taken its last ops: nothing more is accepted.
    closed: bool,
}

/// Ops taken from the queue, in submission order, with the ticket of the last one.
#[derive(Debug)]
pub(super) struct Taken {
    pub(super) ops: Vec<SessionOp>,
    pub(super) last_ticket: u64,
}

impl SessionQueue {
    /// Appends `op` and returns its ticket (from 1, increasing) and whether the queue was
    /// empty before (the writer thread then needs a wake-up), or `None` when the queue is
    /// closed (`op` is dropped).
    pub(super) fn push(&self, op: SessionOp) -> Option<(u64, bool)> {
        let mut pending = self.pending.lock();
        if pending.closed {
            return None;
        }
        let was_empty = pending.ops.is_empty();
        pending.last_ticket += 1;
        pending.ops.push(op);
        Some((pending.last_ticket, was_empty))
    }

    /// Everything queued, or `None` when nothing is.
    pub(super) fn take(&self) -> Option<Taken> {
        Self::take_from(&mut self.pending.lock())
    }

    /// Everything queued; when nothing is, closes the queue instead (atomically, so an op
    /// is either taken here or refused by [`Self::push`]) and returns `None`.
    pub(super) fn take_or_close(&self) -> Option<Taken> {
        let mut pending = self.pending.lock();
        let taken = Self::take_from(&mut pending);
        pending.closed |= taken.is_none();
        taken
    }

    /// Closes the queue and drops what it holds (the writer thread ended without taking
    /// it); returns how many ops were dropped.
    pub(super) fn close(&self) -> usize {
        let mut pending = self.pending.lock();
        pending.closed = true;
        std::mem::take(&mut pending.ops).len()
    }

    fn take_from(pending: &mut Pending) -> Option<Taken> {
        if pending.ops.is_empty() {
            return None;
        }
        Some(Taken {
            ops: std::mem::take(&mut pending.ops),
            last_ticket: pending.last_ticket,
        })
    }
}

/// Applies `ops` in order inside the writer's transaction `txn` (not committed here).
/// Opens the session tables only when there is something to apply.
///
/// # Errors
/// The engine's error: the transaction must not be committed.
pub(super) fn apply(txn: &WriteTransaction, ops: &[SessionOp]) -> Result<(), redb::Error> {
    if ops.is_empty() {
        return Ok(());
    }
    let mut states = txn.open_table(SESSIONS)?;
    let mut messages = txn.open_table(SESSION_MESSAGES)?;
    for op in ops {
        match op {
            SessionOp::PutSession { client_id, state } => {
                states.insert(&**client_id, &**state)?;
            }
            SessionOp::RemoveSession { client_id } => {
                let cid: &str = client_id;
                states.remove(cid)?;
                messages.retain_in((cid, 0)..=(cid, u64::MAX), |_, _| false)?;
            }
            SessionOp::PutMessage {
                client_id,
                seq,
                head,
                body,
            } => {
                let mut value = Vec::with_capacity(head.len() + body.len());
                value.extend_from_slice(head);
                value.extend_from_slice(body);
                messages.insert((&**client_id, *seq), value.as_slice())?;
            }
            SessionOp::RemoveMessage { client_id, seq } => {
                messages.remove((&**client_id, *seq))?;
            }
        }
    }
    Ok(())
}

/// Every stored session, ordered by client id, each with its messages in `seq` order, from
/// one read transaction. Blocking: run it on the blocking pool.
///
/// Messages whose client id has no state row (orphans: a session is only of use with its
/// state) are skipped, not returned, and logged at warn level once per client id; they
/// stay in the file until a `RemoveSession` of that client id.
///
/// # Errors
/// [`StoreError::Engine`] when the transaction, a table or an entry cannot be read;
/// nothing is changed.
pub(super) fn load(db: &Database) -> Result<Vec<StoredSession>, StoreError> {
    let txn = db
        .begin_read()
        .map_err(engine("begin a read transaction"))?;
    let states = txn
        .open_table(SESSIONS)
        .map_err(engine("open the sessions table"))?;
    let messages = txn
        .open_table(SESSION_MESSAGES)
        .map_err(engine("open the session_messages table"))?;

    let mut sessions = Vec::new();
    for entry in states.iter().map_err(engine("read sessions"))? {
        let (client_id, state) = entry.map_err(engine("read a session"))?;
        sessions.push(StoredSession {
            client_id: client_id.value().to_owned(),
            state: state.value().to_vec(),
            messages: Vec::new(),
        });
    }

    // Both tables are ordered by client id the same way (bytewise): merge them.
    let mut at = 0;
    let mut orphans: Option<(String, u64)> = None;
    for entry in messages.iter().map_err(engine("read session messages"))? {
        let (key, value) = entry.map_err(engine("read a session message"))?;
        let (client_id, seq) = key.value();
        while sessions
            .get(at)
            .is_some_and(|s| s.client_id.as_str() < client_id)
        {
            at += 1;
        }
        match sessions.get_mut(at) {
            Some(session) if session.client_id == client_id => {
                session.messages.push((seq, value.value().to_vec()));
            }
            _ => match &mut orphans {
                Some((id, n)) if id == client_id => *n += 1,
                _ => {
                    warn_orphans(orphans.take());
                    orphans = Some((client_id.to_owned(), 1));
                }
            },
        }
    }
    warn_orphans(orphans);
    Ok(sessions)
}

fn warn_orphans(orphans: Option<(String, u64)>) {
    if let Some((client_id, messages)) = orphans {
        tracing::warn!(
            client_id,
            messages,
            "stored session messages without a session state; skipped"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;

    fn remove(client_id: &str) -> SessionOp {
        SessionOp::RemoveSession {
            client_id: Arc::from(client_id),
        }
    }

    #[test]
    fn tickets_follow_the_queue_and_wake_only_when_it_was_empty() {
        let queue = SessionQueue::default();
        assert_eq!(queue.push(remove("a")), Some((1, true)));
        assert_eq!(queue.push(remove("b")), Some((2, false)));
        let taken = queue.take().expect("two ops");
        assert_eq!((taken.ops.len(), taken.last_ticket), (2, 2));
        assert!(queue.take().is_none());
        assert_eq!(queue.push(remove("c")), Some((3, true)));
    }

    #[test]
    fn take_or_close_takes_first_then_refuses() {
        let queue = SessionQueue::default();
        queue.push(remove("a"));
        assert_eq!(queue.take_or_close().map(|t| t.last_ticket), Some(1));
        assert!(queue.take_or_close().is_none());
        assert_eq!(queue.push(remove("b")), None);
    }

    #[test]
    fn close_drops_what_is_pending() {
        let queue = SessionQueue::default();
        queue.push(remove("a"));
        assert_eq!(queue.close(), 1);
        assert_eq!(queue.push(remove("b")), None);
    }

    #[test]
    fn orphan_messages_are_skipped_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("s.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let message = |client_id: &str, seq| SessionOp::PutMessage {
            client_id: Arc::from(client_id),
            seq,
            head: Bytes::from_static(b"h"),
            body: Bytes::from_static(b"b"),
        };
        let ops = [
            message("a", 1),
            message("b", 1),
            message("b", 2),
            SessionOp::PutSession {
                client_id: Arc::from("c"),
                state: Bytes::from_static(b"s"),
            },
            message("c", 7),
            message("d", 1),
        ];
        apply(&txn, &ops).unwrap();
        txn.commit().unwrap();
        let loaded = load(&db).unwrap();
        assert_eq!(
            loaded,
            vec![StoredSession {
                client_id: "c".into(),
                state: b"s".to_vec(),
                messages: vec![(7, b"hb".to_vec())],
            }]
        );
    }
}
