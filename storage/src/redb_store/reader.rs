//! Reads on reader threads: point reads (`get`) and filtered range reads (`query`,
//! `count_matching`). Reader threads take every pending request and answer them from one
//! read transaction, instead of a blocking-pool task and a transaction per read.
//!
//! In a batch, the `get`s are answered first, then the range reads run one after another
//! ([`Reader::scan`]): a long query delays only the requests behind it on its thread,
//! while the other thread goes on answering. With [`READER_THREADS`] threads, at most that
//! many range reads run at once; the rest wait in the queue (backpressure, not more
//! threads).
//!
//! Freshness: a batch's read transaction begins after its requests arrived, so it sees
//! every write that was answered before any of them was sent (the writer answers only
//! after its commit): read-after-write holds. A batch never waits for the writer.

use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use pathmq_core::{Path, Record, StoreError};
use redb::{Database, ReadOnlyTable, ReadableDatabase};
use tokio::sync::{mpsc, oneshot};

use super::codec;
use super::range::RECORDS;

/// Reader threads. Two is enough to keep both cores of a small machine busy while one
/// thread waits for requests.
pub(super) const READER_THREADS: usize = 2;

/// The most requests one read transaction answers.
const MAX_BATCH: usize = 256;

/// Pending requests, at most; callers wait for room beyond it.
const QUEUE: usize = 4096;

/// The records table as a reader thread's transaction opened it.
pub(super) type Table = ReadOnlyTable<&'static str, &'static [u8]>;

/// A range read: runs on a reader thread with the batch's table (or the error that kept
/// the table from opening) and sends its own answer.
type Scan = Box<dyn FnOnce(Result<&Table, StoreError>) + Send>;

/// A request to the reader threads.
enum Job {
    /// One `get` and where to send its answer.
    Get {
        path: Path,
        reply: oneshot::Sender<Result<Option<Record>, StoreError>>,
    },
    /// A range read ([`Reader::scan`]).
    Scan(Scan),
}

/// Owns the reader threads: stopping or dropping it answers what is queued, then joins
/// them, so the file can be closed and reopened at once (STYLE 16).
pub(super) struct Reader {
    /// `None` once stopping has begun: new reads get [`StoreError::Closed`].
    tx: Mutex<Option<mpsc::Sender<Job>>>,
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
        let (reply, answer) = oneshot::channel();
        self.send(Job::Get { path, reply }).await?;
        answer
            .await
            .map_err(|_| StoreError::Engine("the redb reader thread stopped".into()))?
    }

    /// Runs `read` on a reader thread, in the read transaction of the next batch, after
    /// that batch's `get`s. `read` may take as long as it needs (it holds one of the
    /// [`READER_THREADS`]), and it never runs on a runtime worker.
    ///
    /// # Errors
    /// [`StoreError::Closed`] after [`Reader::stop`]; [`StoreError::Engine`] when the
    /// transaction cannot start or the thread stopped; otherwise what `read` returns.
    pub(super) async fn scan<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Table) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let scan: Scan = Box::new(move |table| {
            // A failed send: the caller stopped waiting; nothing to undo.
            let _ = reply.send(table.and_then(read));
        });
        self.send(Job::Scan(scan)).await?;
        answer
            .await
            .map_err(|_| StoreError::Engine("the redb reader thread stopped".into()))?
    }

    async fn send(&self, job: Job) -> Result<(), StoreError> {
        let tx = self.tx.lock().clone().ok_or(StoreError::Closed)?;
        tx.send(job).await.map_err(|_| StoreError::Closed)
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
/// for requests while the other answers), answer it from one read transaction: the
/// `get`s first, then the range reads.
fn run(db: &Database, rx: &Mutex<mpsc::Receiver<Job>>) {
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
        let mut scans = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Get { path, reply } => {
                    let result = match table.get(path.as_str()) {
                        Ok(Some(value)) => codec::decode(path, value.value()).map(Some),
                        Ok(None) => Ok(None),
                        Err(e) => Err(StoreError::Engine(format!("cannot read a record: {e}"))),
                    };
                    // A failed send: the caller stopped waiting; nothing to undo.
                    let _ = reply.send(result);
                }
                Job::Scan(scan) => scans.push(scan),
            }
        }
        for scan in scans {
            scan(Ok(&table));
        }
    }
}

fn fail(batch: &mut Vec<Job>, message: &str) {
    for job in batch.drain(..) {
        let error = StoreError::Engine(message.to_owned());
        match job {
            Job::Get { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Job::Scan(scan) => scan(Err(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Range reads run on the reader threads (never on a runtime worker), after the
    /// `get`s of their batch, and are refused once the reader stops.
    #[tokio::test(flavor = "current_thread")]
    async fn scans_run_on_reader_threads() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("r.redb")).unwrap());
        let txn = db.begin_write().unwrap();
        txn.open_table(RECORDS).unwrap();
        txn.commit().unwrap();
        let reader = Reader::spawn(&db).unwrap();
        let thread = reader
            .scan(|_| Ok(std::thread::current().name().map(str::to_owned)))
            .await
            .unwrap()
            .unwrap();
        assert!(thread.starts_with("pathmq-redb-reader-"), "{thread}");
        assert_eq!(
            reader.get(Path::parse("/none").unwrap()).await.unwrap(),
            None
        );
        reader.stop().await;
        assert!(matches!(
            reader.scan(|_| Ok(())).await,
            Err(StoreError::Closed)
        ));
    }
}
