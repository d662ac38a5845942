//! The `Store` trait: where records live (DESIGN.md §1, §4).
//!
//! Implementations are in `pathmq-storage` (redb, the default, and an in-memory twin).
//! A store owns timestamps (`created` survives updates, `modified` is the time of the
//! write) and makes `merge` atomic with the write.

use async_trait::async_trait;

use crate::path::Path;
use crate::pattern::Glob;
use crate::payload::{Payload, Record};

/// A store operation failed. The operation did not happen; data written before is intact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage engine reported an error (I/O, corruption, a full disk).
    #[error("storage engine error: {0}")]
    Engine(String),
    /// A stored value could not be decoded (written by an incompatible version).
    #[error("stored record at `{path}` is unreadable: {reason}")]
    Corrupt {
        /// The path of the unreadable record.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The store has shut down and accepts no more operations.
    #[error("the store is closed")]
    Closed,
}

/// What a `set` writes.
#[derive(Debug, Clone)]
pub struct Write {
    /// The record's path.
    pub path: Path,
    /// The new payload.
    pub payload: Payload,
    /// Shallow-merge into the stored JSON object instead of replacing it
    /// ([`Payload::merged`]).
    pub merge: bool,
    /// Who writes (recorded as `modified_by`).
    pub modified_by: Option<String>,
}

/// Storage for records. Every method is safe to call from async code: implementations
/// never block a runtime worker.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores one record and returns it as stored (merged, with its timestamps). Answers
    /// only once the write is durable.
    ///
    /// # Errors
    /// [`StoreError`]: the record is unchanged.
    async fn set(&self, write: Write) -> Result<Record, StoreError>;

    /// The record at `path`, if any.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn get(&self, path: &Path) -> Result<Option<Record>, StoreError>;

    /// Every record whose path matches `glob`, ordered by path. Implementations scan only
    /// the keys starting with [`Glob::literal_prefix`].
    ///
    /// # Errors
    /// [`StoreError`].
    async fn scan(&self, glob: &Glob) -> Result<Vec<Record>, StoreError>;

    /// Removes every record matching `glob` (an exact path when it has no `*`) and returns
    /// their paths, ordered. Answers once the removal is durable.
    ///
    /// # Errors
    /// [`StoreError`]: nothing was removed.
    async fn remove(&self, glob: &Glob) -> Result<Vec<Path>, StoreError>;

    /// How many records match `glob`.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn count(&self, glob: &Glob) -> Result<u64, StoreError>;

    /// Makes everything written so far durable and stops accepting writes; called once at
    /// shutdown.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn close(&self) -> Result<(), StoreError>;
}
