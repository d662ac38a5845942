//! The writer thread and its group commit (DESIGN.md §2, STYLE 15).
//!
//! Callers send [`Op`]s over a bounded channel, each with a oneshot for its answer. The
//! thread takes everything pending (up to the batch limit), applies it in order in one
//! write transaction, commits it durably, and only then answers each caller. Batches form
//! by themselves: while one commit waits for the disk, the next operations queue up.
//!
//! An operation that fails on its own (a merge into an unreadable record) is answered
//! with its error and changes nothing; the rest of its batch commits. An engine error
//! (in the transaction or its commit) fails the whole batch: every caller of the batch gets
//! the error and none of their writes happened.
//!
//! Session operations ([`super::sessions`]) do not wait in the bounded channel: they wait
//! in a [`SessionQueue`], and the first one queued after the thread last took it sends an
//! [`Op::Wake`] (with `try_send`: when the channel is full, the thread has operations to
//! take and takes the session queue with them; when it is closed, the thread is finishing
//! and takes it before it stops). Each transaction applies everything the session queue
//! holds when its batch is taken, before the batch's record operations; a batch of wake-ups
//! alone with nothing queued commits nothing. After the commit the thread publishes the
//! last ticket it took on a watch. When the batch fails, the session operations are lost
//! (logged at error level) and the ticket is published all the same: their waiters are
//! released, the core still holds those sessions in memory. At the end the thread takes
//! the session queue until it is empty, then closes it, so every session operation
//! submitted before `stop` is committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use pathmq_core::session_log::SessionOp;
use pathmq_core::{Glob, OnCommit, Path, Record, StoreError, Write, now_ms};
use redb::{Database, ReadableTable, Table};
use tokio::sync::{mpsc, oneshot, watch};

use super::codec;
use super::range::{RECORDS, for_each_match};
use super::sessions::{self, SessionQueue, Taken};

/// One write, with where to send its answer.
pub(super) enum Op {
    /// Store one record (replace or merge).
    Set {
        write: Write,
        on_commit: Option<OnCommit<Record>>,
        reply: oneshot::Sender<Result<Record, StoreError>>,
    },
    /// Remove every record matching a glob.
    Remove {
        glob: Glob,
        on_commit: Option<OnCommit<[Path]>>,
        reply: oneshot::Sender<Result<Vec<Path>, StoreError>>,
    },
    /// Nothing: session operations are queued ([`Writer::submit_session`]).
    Wake,
}

/// Counts of the writer's work since the store was opened, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitStats {
    /// Write transactions committed (including those holding only session operations).
    pub transactions: u64,
    /// Operations (sets and removes) in those transactions, including any answered with
    /// their own error (such as a merge into an unreadable record).
    pub operations: u64,
    /// The most operations (sets and removes) committed in one transaction.
    pub largest_batch: u64,
    /// Session operations ([`SessionOp`]) in those transactions.
    pub session_operations: u64,
}

#[derive(Debug, Default)]
struct Counters {
    transactions: AtomicU64,
    operations: AtomicU64,
    largest_batch: AtomicU64,
    session_operations: AtomicU64,
}

/// Owns the writer thread: dropping it lets the thread commit what is queued, then joins
/// it (STYLE 16).
#[derive(Debug)]
pub(super) struct Writer {
    /// `None` once stopping has begun: new operations get [`StoreError::Closed`].
    tx: Mutex<Option<mpsc::Sender<Op>>>,
    /// Becomes `true` (or its sender is dropped) when the thread has finished.
    stopped: watch::Receiver<bool>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    /// Session operations waiting for the thread.
    sessions: Arc<SessionQueue>,
    /// The last session ticket committed (or failed); its sender goes with the thread.
    durable: watch::Receiver<u64>,
    /// Senders take turns (a fair, FIFO lock) while the queue is full, so operations enter
    /// it in the order `submit` was called: a later operation cannot take room freed while
    /// an earlier one waits to be polled (pipelined writes of one client keep their order).
    turn: tokio::sync::Mutex<()>,
}

impl Writer {
    /// Starts the writer thread for `db`.
    ///
    /// `max_batch` and `queue` must be at least 1 (the builder clamps them).
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub(super) fn spawn(
        db: Arc<Database>,
        max_batch: usize,
        queue: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(queue);
        let (stopped_tx, stopped) = watch::channel(false);
        let (durable_tx, durable) = watch::channel(0);
        let counters = Arc::new(Counters::default());
        let sessions = Arc::new(SessionQueue::default());
        let thread = {
            let (counters, sessions) = (Arc::clone(&counters), Arc::clone(&sessions));
            std::thread::Builder::new()
                .name("pathmq-redb-writer".into())
                .spawn(move || {
                    // Refuses session ops once the thread ends, even by a panic.
                    let _close = CloseOnDrop(&sessions);
                    let thread = Thread {
                        db: &db,
                        counters: &counters,
                        sessions: &sessions,
                        durable: durable_tx,
                    };
                    thread.run(rx, max_batch);
                    drop(thread);
                    // Release the file before saying so: a reopen may follow at once.
                    drop(db);
                    stopped_tx.send_replace(true);
                })?
        };
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            stopped,
            thread: Some(thread),
            counters,
            sessions,
            durable,
            turn: tokio::sync::Mutex::new(()),
        })
    }

    /// Sends the op built by `op` and waits for its answer.
    ///
    /// # Errors
    /// [`StoreError::Closed`] when the writer is stopping or stopped (nothing was sent);
    /// otherwise the op's own answer, or [`StoreError::Engine`] if the thread died before
    /// committing it.
    pub(super) async fn submit<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Op,
    ) -> Result<T, StoreError> {
        let tx = self.tx.lock().clone().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        // Backpressure: waits here while the queue is full, in turn.
        {
            let _turn = self.turn.lock().await;
            tx.send(op(reply)).await.map_err(|_| StoreError::Closed)?;
        }
        // The thread stops once every sender is gone; do not keep it alive while waiting.
        drop(tx);
        answer.await.map_err(|_| {
            StoreError::Engine("the redb writer thread stopped before committing".into())
        })?
    }

    /// Queues a session operation without waiting and returns its ticket (from 1,
    /// increasing in queue order), or 0 when the writer has stopped (`op` is dropped).
    /// Safe on the writer thread itself (commit hooks).
    pub(super) fn submit_session(&self, op: SessionOp) -> u64 {
        let Some((ticket, was_empty)) = self.sessions.push(op) else {
            tracing::debug!("redb store closed; session operation dropped");
            return 0;
        };
        // One wake-up per taking of the queue is enough (module docs). A full or closed
        // channel needs none.
        if was_empty && let Some(tx) = self.tx.lock().as_ref() {
            let _ = tx.try_send(Op::Wake);
        }
        ticket
    }

    /// Waits until the session operation with `ticket` (and every earlier one) has been
    /// committed, or its batch failed (module docs). Returns at once for ticket 0.
    ///
    /// # Errors
    /// [`StoreError::Closed`] when the thread stopped before reaching `ticket`.
    pub(super) async fn session_durable(&self, ticket: u64) -> Result<(), StoreError> {
        if ticket == 0 {
            return Ok(());
        }
        let mut durable = self.durable.clone();
        durable
            .wait_for(|&done| done >= ticket)
            .await
            .map(drop)
            .map_err(|_| StoreError::Closed)
    }

    /// Stops accepting operations and waits until the thread has committed everything
    /// already queued and released the database. Safe to call more than once.
    pub(super) async fn stop(&self) {
        drop(self.tx.lock().take());
        let mut stopped = self.stopped.clone();
        // An error means the thread ended without saying so (it panicked): stopped too.
        let _ = stopped.wait_for(|done| *done).await;
    }

    /// What the writer has committed so far.
    pub(super) fn stats(&self) -> CommitStats {
        CommitStats {
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            operations: self.counters.operations.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
            session_operations: self.counters.session_operations.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.get_mut().take());
        if let Some(thread) = self.thread.take() {
            // Blocks until the queued operations are committed (at most a batch or two:
            // no caller can be waiting to send, since they borrow the store).
            if thread.join().is_err() {
                tracing::error!("the redb writer thread panicked");
            }
        }
    }
}

/// Closes the session queue when the writer thread ends.
struct CloseOnDrop<'a>(&'a SessionQueue);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        let dropped = self.0.close();
        if dropped > 0 {
            tracing::error!(
                dropped,
                "the redb writer thread ended; session operations lost"
            );
        }
    }
}

/// What the writer thread works with.
struct Thread<'a> {
    db: &'a Database,
    counters: &'a Counters,
    sessions: &'a SessionQueue,
    /// The last session ticket committed (or failed).
    durable: watch::Sender<u64>,
}

impl Thread<'_> {
    /// The thread's loop: until every sender is gone and the queue is empty, take a batch
    /// (and the session queue), commit it, answer it; then commit the session queue until
    /// it stays empty, and close it.
    fn run(&self, mut rx: mpsc::Receiver<Op>, max_batch: usize) {
        let mut batch = Vec::with_capacity(max_batch);
        while rx.blocking_recv_many(&mut batch, max_batch) > 0 {
            let ops: Vec<Op> = std::mem::take(&mut batch);
            self.commit(ops, self.sessions.take());
        }
        while let Some(taken) = self.sessions.take_or_close() {
            self.commit(Vec::new(), Some(taken));
        }
    }

    /// Commits `ops` after the session ops `taken` in one transaction, publishes the
    /// session ticket, and answers `ops`. Commits nothing when there is nothing to write.
    fn commit(&self, ops: Vec<Op>, taken: Option<Taken>) {
        let n = ops.iter().filter(|op| !matches!(op, Op::Wake)).count() as u64;
        if n == 0 && taken.is_none() {
            return;
        }
        let (session_ops, last_ticket) = taken.map_or((Vec::new(), 0), |t| (t.ops, t.last_ticket));
        let result = apply(self.db, &session_ops, &ops);
        if result.is_ok() {
            let counters = self.counters;
            counters.transactions.fetch_add(1, Ordering::Relaxed);
            counters.operations.fetch_add(n, Ordering::Relaxed);
            counters.largest_batch.fetch_max(n, Ordering::Relaxed);
            let sessions = session_ops.len() as u64;
            counters
                .session_operations
                .fetch_add(sessions, Ordering::Relaxed);
        }
        if last_ticket > 0 {
            // Also after a failure: the waiters are released (module docs).
            self.durable.send_replace(last_ticket);
        }
        match result {
            Ok(outcomes) => {
                for (op, outcome) in ops.into_iter().zip(outcomes) {
                    answer(op, outcome);
                }
            }
            Err(message) => {
                tracing::error!(
                    ops = n,
                    session_ops = session_ops.len(),
                    error = %message,
                    "redb batch failed; nothing written"
                );
                for op in ops {
                    fail(op, &message);
                }
            }
        }
    }
}

/// The answer to one op of a committed batch.
enum Outcome {
    Set(Result<Record, StoreError>),
    Remove(Result<Vec<Path>, StoreError>),
    Wake,
}

/// Runs the op's commit hook (ops are answered in batch order, so hooks run in commit
/// order), then answers it. A failed send means the caller stopped waiting (its future
/// was dropped); the write has happened all the same.
fn answer(op: Op, outcome: Outcome) {
    match (op, outcome) {
        (
            Op::Set {
                reply, on_commit, ..
            },
            Outcome::Set(result),
        ) => {
            if let (Some(hook), Ok(record)) = (on_commit, &result) {
                hook(record);
            }
            let _ = reply.send(result);
        }
        (
            Op::Remove {
                reply, on_commit, ..
            },
            Outcome::Remove(result),
        ) => {
            if let (Some(hook), Ok(paths)) = (on_commit, &result) {
                hook(paths);
            }
            let _ = reply.send(result);
        }
        (Op::Wake, Outcome::Wake) => {}
        // `apply` returns one outcome of the same kind per op, in order.
        (op, _) => fail(op, "internal error: mismatched batch outcome"),
    }
}

fn fail(op: Op, message: &str) {
    let error = || StoreError::Engine(message.to_owned());
    match op {
        Op::Set { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Op::Remove { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Op::Wake => {}
    }
}

/// Applies `session_ops`, then `ops`, in order in one write transaction and commits it
/// durably.
///
/// # Errors
/// The engine's error, as text: the transaction was not committed.
fn apply(db: &Database, session_ops: &[SessionOp], ops: &[Op]) -> Result<Vec<Outcome>, String> {
    let txn = db
        .begin_write()
        .map_err(|e| format!("cannot begin a write transaction: {e}"))?;
    sessions::apply(&txn, session_ops).map_err(|e| format!("session write failed: {e}"))?;
    let mut outcomes = Vec::with_capacity(ops.len());
    {
        let mut table = txn
            .open_table(RECORDS)
            .map_err(|e| format!("cannot open the records table: {e}"))?;
        for op in ops {
            let outcome = match op {
                Op::Set { write, .. } => set(&mut table, write).map(Outcome::Set),
                Op::Remove { glob, .. } => remove(&mut table, glob).map(Outcome::Remove),
                Op::Wake => Ok(Outcome::Wake),
            };
            outcomes.push(outcome.map_err(|e| format!("write failed: {e}"))?);
        }
    }
    txn.commit().map_err(|e| format!("commit failed: {e}"))?;
    Ok(outcomes)
}

type RecordsTable<'txn> = Table<'txn, &'static str, &'static [u8]>;

/// One set, read-modify-write inside the batch's transaction. The outer error is the
/// engine's (fails the batch); the inner one is this op's alone (nothing written).
fn set(
    table: &mut RecordsTable<'_>,
    write: &Write,
) -> Result<Result<Record, StoreError>, redb::StorageError> {
    let old = match table.get(write.path.as_str())? {
        Some(value) => match codec::decode(write.path.clone(), value.value()) {
            Ok(old) => Some(old),
            Err(e) => return Ok(Err(e)),
        },
        None => None,
    };
    let record = write.clone().apply(old.as_ref(), now_ms());
    table.insert(write.path.as_str(), codec::encode(&record).as_slice())?;
    Ok(Ok(record))
}

/// One removal by glob, inside the batch's transaction; an unreadable key fails this op
/// alone, before anything is removed.
fn remove(
    table: &mut RecordsTable<'_>,
    glob: &Glob,
) -> Result<Result<Vec<Path>, StoreError>, redb::StorageError> {
    let mut keys = Vec::new();
    for_each_match(table, glob, |key, _| {
        keys.push(key.to_owned());
        true
    })?;
    let paths = match keys.iter().map(|k| codec::parse_key(k)).collect() {
        Ok(paths) => paths,
        Err(e) => return Ok(Err(e)),
    };
    for key in &keys {
        table.remove(key.as_str())?;
    }
    Ok(Ok(paths))
}
