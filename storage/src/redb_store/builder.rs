//! Opening a [`RedbStore`]: the builder, its defaults, and [`OpenError`].

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::RedbStore;
use super::range::RECORDS;
use super::reader::Reader;
use super::sessions::{SESSION_MESSAGES, SESSIONS};
use super::writer::Writer;

/// Why a [`RedbStore`] could not be opened. Nothing is left running and the file, if it
/// was created, holds no records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory for the file could not be created.
    #[error("cannot create directory `{dir}` for the store: {source}")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why (permission denied, a file in the way, …).
        source: std::io::Error,
    },
    /// redb could not open or create the file: it is not a redb database, it is open
    /// elsewhere (in this process or another), it is corrupt (with
    /// [`RedbStoreBuilder::check_integrity_on_open`]), or an I/O error.
    #[error("cannot open redb store `{file}`: {source}")]
    Database {
        /// The store file.
        file: PathBuf,
        /// redb's error.
        source: redb::DatabaseError,
    },
    /// A table (`records`, `sessions` or `session_messages`) could not be created or
    /// opened (for example, it exists with another key or value type).
    #[error("cannot prepare the tables in `{file}`: {source}")]
    Table {
        /// The store file.
        file: PathBuf,
        /// redb's error.
        source: redb::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the writer thread for `{file}`: {source}")]
    Thread {
        /// The store file.
        file: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Options for opening a [`RedbStore`]; from [`RedbStore::builder`].
///
/// ```no_run
/// use pathmq_storage::RedbStore;
///
/// let store = RedbStore::builder("pathmq-data/pathmq.redb")
///     .max_batch(64)
///     .queue_capacity(4096)
///     .open()?;
/// # Ok::<(), pathmq_storage::OpenError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct RedbStoreBuilder {
    file: PathBuf,
    max_batch: usize,
    queue_capacity: usize,
    check_integrity_on_open: bool,
}

impl RedbStoreBuilder {
    /// Default for [`Self::max_batch`]: at most 256 operations per write transaction.
    pub const DEFAULT_MAX_BATCH: usize = 256;
    /// Default for [`Self::queue_capacity`]: 1,024 operations waiting for the writer.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

    pub(super) fn new(file: PathBuf) -> Self {
        Self {
            file,
            max_batch: Self::DEFAULT_MAX_BATCH,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            check_integrity_on_open: false,
        }
    }

    /// The most operations the writer thread commits in one write transaction (group
    /// commit); default [`Self::DEFAULT_MAX_BATCH`]. `0` is taken as `1` (a commit per
    /// operation). Larger batches mean fewer disk syncs under load and a longer wait for
    /// the first caller of a batch.
    pub fn max_batch(mut self, ops: usize) -> Self {
        self.max_batch = ops.max(1);
        self
    }

    /// How many operations may wait for the writer thread; default
    /// [`Self::DEFAULT_QUEUE_CAPACITY`]. When it is full, `set` and `remove` wait for room
    /// (backpressure on the writer; nothing is dropped). `0` is taken as `1`.
    pub fn queue_capacity(mut self, ops: usize) -> Self {
        self.queue_capacity = ops.max(1);
        self
    }

    /// Verify every page checksum when opening (redb's `check_integrity`), so that a file
    /// damaged outside redb is refused with [`OpenError::Database`] instead of risking a
    /// panic inside redb later. Reads the whole file; default `false`. A file left by a
    /// crash is always checked and repaired by redb, whatever this says.
    pub fn check_integrity_on_open(mut self, check: bool) -> Self {
        self.check_integrity_on_open = check;
        self
    }

    /// Creates the parent directories and the file if needed, opens it, and starts the
    /// writer thread. Blocking (file I/O, possibly a repair after a crash): call it before
    /// the runtime starts or inside `tokio::task::spawn_blocking`.
    ///
    /// # Errors
    /// [`OpenError`]: nothing is left running. A directory created before the failure
    /// stays.
    pub fn open(self) -> Result<RedbStore, OpenError> {
        let file = self.file;
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let db = redb::Builder::new()
            .set_check_integrity_on_open(self.check_integrity_on_open)
            .create(&file)
            .map_err(|source| OpenError::Database {
                file: file.clone(),
                source,
            })?;
        create_table(&db).map_err(|source| OpenError::Table {
            file: file.clone(),
            source,
        })?;
        let db = Arc::new(db);
        let writer = Writer::spawn(Arc::clone(&db), self.max_batch, self.queue_capacity).map_err(
            |source| OpenError::Thread {
                file: file.clone(),
                source,
            },
        )?;
        let reader = Reader::spawn(&db).map_err(|source| OpenError::Thread {
            file: file.clone(),
            source,
        })?;
        tracing::debug!(file = %file.display(), "redb store open");
        Ok(RedbStore {
            file,
            db: Mutex::new(Some(db)),
            writer,
            reader,
        })
    }

    /// The file this builder opens.
    pub fn file(&self) -> &FsPath {
        &self.file
    }
}

/// Makes sure the tables exist (with the right types), so that read transactions can
/// always open them.
fn create_table(db: &redb::Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(RECORDS)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(SESSION_MESSAGES)?;
    txn.commit()?;
    Ok(())
}
