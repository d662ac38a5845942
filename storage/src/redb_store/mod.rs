//! The redb store: records in one embedded, crash-safe file (DESIGN.md §2, STYLE 15).
//!
//! - **Layout**: three tables. `records` maps the path (`&str`) to the encoded record
//!   (`&[u8]`, [`codec`] describes the versioned encoding). Keys are ordered bytewise, which
//!   is [`Path`]'s order, so results come out ordered by path. For durable MQTT sessions
//!   ([`pathmq_core::session_log`], [`sessions`]), `sessions` maps the client id (`&str`)
//!   to the session's state as the core encoded it (`&[u8]`), and `session_messages` maps
//!   `(client id, seq)` (`(&str, u64)`) to a stored message, its head followed by its body
//!   (`&[u8]`); a session's messages are one key range, in `seq` order.
//! - **Writes** (`set`, `remove`) go to one writer thread ([`writer`]) that commits
//!   everything pending in one durable write transaction (group commit) before answering.
//!   `merge` reads and rewrites the record inside that transaction, so it is atomic.
//!   Session operations are queued without waiting and committed by the same thread, in
//!   the same transactions, in submission order ([`writer`] says how).
//! - **Point reads** (`get`) go to reader threads ([`reader`]) that answer every pending
//!   `get` from one fresh read transaction. **Queries** (`query`, `count_matching` with
//!   criteria) run on the same reader threads, after the `get`s of their batch: they
//!   decode and filter the glob's records as they read them, keeping only what the
//!   answer needs (an unsorted page stops the scan once it is full). **Plain range
//!   reads** (`scan`, `count`) run in `spawn_blocking` in their own read transaction.
//!   All are consistent snapshots that never wait for the writer.
//! - **Globs** read only the key range starting with [`Glob::literal_prefix`] ([`range`]).
//!
//! redb is synchronous: nothing here runs redb on a runtime worker.

mod builder;
mod codec;
mod range;
mod reader;
mod sessions;
mod writer;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use pathmq_core::session_log::{SessionOp, StoredSession};
use pathmq_core::{Criteria, Glob, OnCommit, Path, Query, Record, Store, StoreError, Write};
use redb::{Database, ReadOnlyTable, ReadableDatabase};

pub use builder::{OpenError, RedbStoreBuilder};
pub use writer::CommitStats;

use range::{RECORDS, for_each_match};
use reader::Reader;
use writer::{Op, Writer};

/// The default store: records in a redb file, written through a group-committing writer
/// thread.
///
/// Dropping the store (or [`Store::close`]) lets the writer commit what is queued, then
/// stops it and releases the file.
///
/// ```
/// use pathmq_core::{Glob, Path, Payload, Store, Write};
/// use pathmq_storage::RedbStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = RedbStore::open(dir.path().join("data/pathmq.redb"))?;
/// let path = Path::parse("/sensors/kitchen/temp")?;
/// let written = store
///     .set(
///         Write {
///             path: path.clone(),
///             payload: Payload::json(&serde_json::json!({"c": 21.5})),
///             merge: false,
///             modified_by: None,
///             increment: None,
///             properties: None,
///         },
///         None,
///     )
///     .await?;
/// assert_eq!(store.get(&path).await?, Some(written));
/// assert_eq!(store.count(&Glob::parse("/sensors/*")?).await?, 1);
/// store.close().await?;
/// # Ok(())
/// # }
/// ```
pub struct RedbStore {
    file: PathBuf,
    /// The database for reads; `None` once closed. The writer thread holds its own handle.
    db: Mutex<Option<Arc<Database>>>,
    writer: Writer,
    reader: Reader,
}

impl RedbStore {
    /// Opens (or creates, with its parent directories) the store file at `file` with the
    /// default options ([`RedbStoreBuilder`]). Blocking: see [`RedbStoreBuilder::open`].
    ///
    /// # Errors
    /// [`OpenError`]: nothing is left running.
    pub fn open(file: impl AsRef<FsPath>) -> Result<Self, OpenError> {
        Self::builder(file).open()
    }

    /// A builder for opening the store file at `file` with non-default options.
    pub fn builder(file: impl AsRef<FsPath>) -> RedbStoreBuilder {
        RedbStoreBuilder::new(file.as_ref().to_owned())
    }

    /// The store file.
    pub fn file(&self) -> &FsPath {
        &self.file
    }

    /// What the writer thread has committed since the store was opened. With concurrent
    /// writers, `operations / transactions` shows how well group commit batches.
    pub fn stats(&self) -> CommitStats {
        self.writer.stats()
    }

    /// Runs `read` on the records table in a fresh read transaction, on the blocking pool.
    ///
    /// # Errors
    /// [`StoreError::Closed`] after [`Store::close`]; [`StoreError::Engine`] when the
    /// transaction cannot start; otherwise what `read` returns.
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadOnlyTable<&'static str, &'static [u8]>) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        let db = self.db.lock().clone().ok_or(StoreError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let txn = db
                .begin_read()
                .map_err(engine("begin a read transaction"))?;
            let table = txn
                .open_table(RECORDS)
                .map_err(engine("open the records table"))?;
            read(&table)
        })
        .await
        .map_err(engine("read task"))?
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("file", &self.file)
            .field("open", &self.db.lock().is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Turns an engine error into [`StoreError::Engine`], saying what was being done.
fn engine<E: std::fmt::Display>(doing: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Engine(format!("cannot {doing}: {e}"))
}

#[async_trait]
impl Store for RedbStore {
    /// Queued to the writer thread; answered after the batch holding it is committed. A
    /// call cancelled after it was queued (its future dropped) is still committed.
    ///
    /// # Errors
    /// [`StoreError::Closed`] after `close`; [`StoreError::Corrupt`] when the stored record
    /// is unreadable (it is left as it is; `remove` clears it); [`StoreError::Engine`]
    /// when the batch failed. In every case nothing was written.
    async fn set(
        &self,
        write: Write,
        on_commit: Option<OnCommit<Record>>,
    ) -> Result<Record, StoreError> {
        self.writer
            .submit(|reply| Op::Set {
                write,
                on_commit,
                reply,
            })
            .await
    }

    /// Answered by a reader thread, batched with other pending `get`s.
    async fn get(&self, path: &Path) -> Result<Option<Record>, StoreError> {
        self.reader.get(path.clone()).await
    }

    /// # Errors
    /// [`StoreError::Corrupt`] for the first unreadable record; [`StoreError::Engine`],
    /// [`StoreError::Closed`].
    async fn scan(&self, glob: &Glob) -> Result<Vec<Record>, StoreError> {
        let glob = glob.clone();
        self.read(move |table| {
            let mut records = Vec::new();
            let mut bad = None;
            for_each_match(table, &glob, |key, value| {
                match codec::decode_entry(key, value) {
                    Ok(record) => {
                        records.push(record);
                        true
                    }
                    Err(e) => {
                        bad = Some(e);
                        false
                    }
                }
            })
            .map_err(engine("scan records"))?;
            bad.map_or(Ok(records), Err)
        })
        .await
    }

    /// Queued to the writer thread like `set`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a matching key is not a path; [`StoreError::Engine`],
    /// [`StoreError::Closed`]. In every case nothing was removed.
    async fn remove(
        &self,
        glob: &Glob,
        on_commit: Option<OnCommit<[Path]>>,
    ) -> Result<Vec<Path>, StoreError> {
        let glob = glob.clone();
        self.writer
            .submit(|reply| Op::Remove {
                glob,
                on_commit,
                reply,
            })
            .await
    }

    async fn count(&self, glob: &Glob) -> Result<u64, StoreError> {
        let glob = glob.clone();
        self.read(move |table| {
            // Every key is a path, so `/*` matches them all: redb keeps the table's length
            // (the `$SYS` statistics count the whole store every interval).
            if glob.as_str() == "/*" {
                return redb::ReadableTableMetadata::len(table).map_err(engine("count records"));
            }
            let mut n = 0u64;
            for_each_match(table, &glob, |_, _| {
                n += 1;
                true
            })
            .map_err(engine("count records"))?;
            Ok(n)
        })
        .await
    }

    /// Runs on one of the store's reader threads: reads the glob's literal-prefix key range,
    /// decoding each record and offering it to the query's
    /// [`Selection`](pathmq_core::query::Selection); stops early once an unsorted page is
    /// full.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for the first unreadable record in the range;
    /// [`StoreError::Engine`], [`StoreError::Closed`].
    async fn query(&self, glob: &Glob, query: &Query) -> Result<Vec<Record>, StoreError> {
        let (glob, query) = (glob.clone(), query.clone());
        self.reader
            .scan(move |table| {
                let mut selection = query.select();
                let mut bad = None;
                for_each_match(table, &glob, |key, value| {
                    match codec::decode_entry(key, value) {
                        Ok(record) => selection.offer(record),
                        Err(e) => {
                            bad = Some(e);
                            false
                        }
                    }
                })
                .map_err(engine("query records"))?;
                bad.map_or_else(|| Ok(selection.finish()), Err)
            })
            .await
    }

    /// Without criteria, [`Store::count`]; with them, filtered on a reader thread like
    /// [`Store::query`].
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for the first unreadable record in the range;
    /// [`StoreError::Engine`], [`StoreError::Closed`].
    async fn count_matching(
        &self,
        glob: &Glob,
        criteria: Option<&Criteria>,
    ) -> Result<u64, StoreError> {
        let Some(criteria) = criteria else {
            return self.count(glob).await;
        };
        let (glob, criteria) = (glob.clone(), criteria.clone());
        self.reader
            .scan(move |table| {
                let mut n = 0u64;
                let mut bad = None;
                for_each_match(table, &glob, |key, value| {
                    match codec::decode_entry(key, value) {
                        Ok(record) => {
                            n += u64::from(criteria.matches_record(&record));
                            true
                        }
                        Err(e) => {
                            bad = Some(e);
                            false
                        }
                    }
                })
                .map_err(engine("count matching records"))?;
                bad.map_or(Ok(n), Err)
            })
            .await
    }

    /// Keeps them: see [`Store::submit_session_op`] and [`Store::load_sessions`].
    fn keeps_sessions(&self) -> bool {
        true
    }

    /// Queues `op` for the writer thread without blocking (safe in a commit hook, which
    /// runs on that thread) and returns its ticket: from 1, increasing in submission
    /// order. The writer applies queued session operations in that order, in the next
    /// transaction it commits, before that transaction's sets and removes. Returns 0 and
    /// drops `op` once the store is closed (or its writer thread has died).
    fn submit_session_op(&self, op: SessionOp) -> u64 {
        self.writer.submit_session(op)
    }

    /// Waits until the transaction holding `ticket` (and every earlier session operation)
    /// has been committed. Returns at once for ticket 0.
    ///
    /// When that transaction fails, the error is logged and this returns `Ok` all the
    /// same: the waiters are released rather than stuck, and the core still holds the
    /// sessions in memory (they are not on disk, and a later write of the same session
    /// rewrites its state).
    ///
    /// # Errors
    /// [`StoreError::Closed`] when the writer stopped before reaching `ticket`: its
    /// thread died, or `ticket` was never given out (such a wait ends only then).
    async fn session_ops_durable(&self, ticket: u64) -> Result<(), StoreError> {
        self.writer.session_durable(ticket).await
    }

    /// Reads the `sessions` and `session_messages` tables in one read transaction on the
    /// blocking pool: every session ordered by client id (bytewise), its messages
    /// `(seq, head ++ body)` in increasing `seq` order. Messages of a client id without
    /// a stored state are skipped (logged at warn level).
    ///
    /// # Errors
    /// [`StoreError::Closed`] after `close`; [`StoreError::Engine`] when a table or entry
    /// cannot be read. Nothing is changed.
    async fn load_sessions(&self) -> Result<Vec<StoredSession>, StoreError> {
        let db = self.db.lock().clone().ok_or(StoreError::Closed)?;
        tokio::task::spawn_blocking(move || sessions::load(&db))
            .await
            .map_err(engine("load sessions"))?
    }

    /// Stops accepting operations, waits until the writer has committed everything
    /// queued before the call (session operations included), and releases the file (once reads still running finish).
    /// Later operations return [`StoreError::Closed`]; closing again does nothing.
    ///
    /// # Errors
    /// [`StoreError::Engine`] when redb reports an error while closing the file; every
    /// answered write is durable regardless.
    async fn close(&self) -> Result<(), StoreError> {
        self.writer.stop().await;
        self.reader.stop().await;
        let db = self.db.lock().take();
        // Close explicitly when no read holds the database, to see redb's error; otherwise
        // the last reader's drop closes it.
        if let Some(db) = db.and_then(Arc::into_inner) {
            tokio::task::spawn_blocking(move || db.close())
                .await
                .map_err(engine("close the database"))?
                .map_err(engine("close the database"))?;
        }
        tracing::debug!(file = %self.file.display(), "redb store closed");
        Ok(())
    }
}
