//! The `Store` trait: where records live (DESIGN.md §1, §4).
//!
//! Implementations are in `pathmq-storage` (redb, the default, and an in-memory twin).
//! A store owns timestamps (`created` survives updates, `modified` is the time of the
//! write) and makes `merge` atomic with the write.

use async_trait::async_trait;

use crate::path::Path;
use crate::pattern::Glob;
use crate::payload::{Payload, Record};
use crate::query::{Criteria, Query};

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

impl Write {
    /// The record this write leaves when `old` is stored at its path (DESIGN.md §4), at
    /// time `now` (ms since the epoch): a new record gets `created = modified = now`; an
    /// update keeps `created`, sets `modified` (never before `created`), and shallow-merges
    /// when [`Write::merge`] is set. Every store applies writes through this one rule.
    pub fn apply(self, old: Option<&Record>, now: u64) -> Record {
        match old {
            Some(old) => Record {
                payload: if self.merge {
                    old.payload.merged(&self.payload)
                } else {
                    self.payload
                },
                path: self.path,
                created: old.created,
                modified: now.max(old.created),
                modified_by: self.modified_by,
            },
            None => Record {
                path: self.path,
                payload: self.payload,
                created: now,
                modified: now,
                modified_by: self.modified_by,
            },
        }
    }
}

/// Runs once a write is committed, with what it committed, before its caller is answered.
/// Stores call these hooks in commit order, so events are published in the order the
/// writes took effect. A hook must not block (the core's publish never waits).
pub type OnCommit<T> = Box<dyn FnOnce(&T) + Send>;

/// Storage for records. Every method is safe to call from async code: implementations
/// never block a runtime worker.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores one record ([`Write::apply`]) and returns it as stored. Answers only once
    /// the write is durable; `on_commit` runs first, in commit order.
    ///
    /// # Errors
    /// [`StoreError`]: the record is unchanged and `on_commit` did not run.
    async fn set(
        &self,
        write: Write,
        on_commit: Option<OnCommit<Record>>,
    ) -> Result<Record, StoreError>;

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
    /// their paths, ordered. Answers once the removal is durable; `on_commit` runs first,
    /// in commit order, with the removed paths (possibly none).
    ///
    /// # Errors
    /// [`StoreError`]: nothing was removed and `on_commit` did not run.
    async fn remove(
        &self,
        glob: &Glob,
        on_commit: Option<OnCommit<[Path]>>,
    ) -> Result<Vec<Path>, StoreError>;

    /// How many records match `glob`.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn count(&self, glob: &Glob) -> Result<u64, StoreError>;

    /// The records matching `glob` that satisfy the query's criteria, sorted (by path
    /// when the query has no sort), after `skip`, at most `limit`, projected (a projected
    /// record's payload is the JSON of its projected native view). The
    /// [`query`](crate::query) module gives the semantics.
    ///
    /// The default runs [`Query::run`] over [`Store::scan`] on the calling task; stores
    /// override it to evaluate where they read (the redb store does so on its reader
    /// threads, never on a runtime worker), reading only the glob's literal-prefix range.
    ///
    /// # Errors
    /// [`StoreError`] from the read; nothing is changed.
    async fn query(&self, glob: &Glob, query: &Query) -> Result<Vec<Record>, StoreError> {
        Ok(query.run(self.scan(glob).await?))
    }

    /// How many records match `glob` and satisfy `criteria` (all of them for `None`),
    /// ignoring any sort, skip, limit or projection.
    ///
    /// The default is [`Store::count`] without criteria, and a filtered [`Store::scan`]
    /// on the calling task with them; stores override it like [`Store::query`].
    ///
    /// # Errors
    /// [`StoreError`] from the read; nothing is changed.
    async fn count_matching(
        &self,
        glob: &Glob,
        criteria: Option<&Criteria>,
    ) -> Result<u64, StoreError> {
        match criteria {
            None => self.count(glob).await,
            Some(criteria) => Ok(self
                .scan(glob)
                .await?
                .iter()
                .filter(|record| criteria.matches_record(record))
                .count() as u64),
        }
    }

    /// Makes everything written so far durable and stops accepting writes; called once at
    /// shutdown.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn close(&self) -> Result<(), StoreError>;
}
