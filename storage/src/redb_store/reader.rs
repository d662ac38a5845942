//! Batched point reads (`get`): reader threads take every pending `get` and answer them
//! from one read transaction, instead of a blocking-pool task and a transaction per read.
//!
//! Freshness: a batch's read transaction begins after its requests arrived, so it sees
//! every write that was answered before any of them was sent (the writer answers only
//! after its commit): read-after-write holds. A batch never waits for the writer.

use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use pathmq_core::{Path, Record, StoreError};
use redb::{Database, ReadableDatabase};
use tokio::sync::{mpsc, oneshot};

use super::codec;
use super::range::RECORDS;

/// Reader threads. Two is enough to keep both cores of a small machine busy while one
/// thread waits for requests.
pub(super) const READER_THREADS: usize = 2;

/// The most `get`s one read transaction answers.
const MAX_BATCH: usize = 256;

/// Pending `get`s, at most; callers wait for room beyond it.
const QUEUE: usize = 4096;

/// One `get` and where to send its answer.
struct Get {
    path: Path,
    reply: oneshot::Sender<Result<Option<Record>, StoreError>>,
}

/// Owns the reader threads: stopping or dropping it answers what is queued, then joins
/// them, so the file can be closed and reopened at once (STYLE 16).
pub(super) struct Reader {
    /// `None` once stopping has begun: new reads get [`StoreError::Closed`].
    tx: Mutex<Option<mpsc::Sender<Get>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Reader {
    /// Starts [`READER_THREADS`] reader threads over `db`.
    ///
    /// # Errors
    /// The OS refused to start a thread (those started are stopped again).
    pub(super) fn spawn(db: &Arc<Database>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let reader = Self {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(Vec::new()),
        };
        for i in 0..READER_THREADS {
            let (db, rx) = (Arc::clone(db), Arc::clone(&rx));
            let thread = std::thread::Builder::new()
                .name(format!("pathmq-redb-reader-{i}"))
                .spawn(move || run(&db, &rx))?;
            reader.threads.lock().push(thread);
        }
        Ok(reader)
    }

    /// The record at `path`, read in the next batch.
    ///
    /// # Errors
    /// [`StoreError::Closed`] after [`Reader::stop`]; [`StoreError::Corrupt`],
    /// [`StoreError::Engine`] from the read.
    pub(super) async fn get(&self, path: Path) -> Result<Option<Record>, StoreError> {
        let tx = self.tx.lock().clone().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        tx.send(Get { path, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        drop(tx);
        answer
            .await
            .map_err(|_| StoreError::Engine("the redb reader thread stopped".into()))?
    }

    /// Refuses new reads, lets the threads answer what is queued, and waits for them.
    pub(super) async fn stop(&self) {
        drop(self.tx.lock().take());
        let threads = std::mem::take(&mut *self.threads.lock());
        let _ = tokio::task::spawn_blocking(move || join(threads)).await;
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        drop(self.tx.get_mut().take());
        join(std::mem::take(self.threads.get_mut()));
    }
}

fn join(threads: Vec<JoinHandle<()>>) {
    for thread in threads {
        if thread.join().is_err() {
            tracing::error!("a redb reader thread panicked");
        }
    }
}

/// A reader thread: until every sender is gone, take what is pending (one thread waits
/// for requests while the other answers), answer it from one read transaction.
fn run(db: &Database, rx: &Mutex<mpsc::Receiver<Get>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if rx.lock().blocking_recv_many(&mut batch, MAX_BATCH) == 0 {
            return;
        }
        let txn = match db.begin_read() {
            Ok(txn) => txn,
            Err(e) => {
                fail(&mut batch, &format!("cannot begin a read transaction: {e}"));
                continue;
            }
        };
        let table = match txn.open_table(RECORDS) {
            Ok(table) => table,
            Err(e) => {
                fail(&mut batch, &format!("cannot open the records table: {e}"));
                continue;
            }
        };
        for get in batch.drain(..) {
            let result = match table.get(get.path.as_str()) {
                Ok(Some(value)) => codec::decode(get.path, value.value()).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(StoreError::Engine(format!("cannot read a record: {e}"))),
            };
            // A failed send: the caller stopped waiting; nothing to undo.
            let _ = get.reply.send(result);
        }
    }
}

fn fail(batch: &mut Vec<Get>, message: &str) {
    for get in batch.drain(..) {
        let _ = get.reply.send(Err(StoreError::Engine(message.to_owned())));
    }
}
