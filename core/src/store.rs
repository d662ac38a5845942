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
use crate::session_log::{SessionOp, StoredSession};

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
    /// Add to a gauge of the stored object instead of writing `payload` (reference:
    /// INCREMENT); see [`Increment`].
    pub increment: Option<Increment>,
    /// The MQTT 5 properties to keep with the record (a retained PUBLISH's); a write
    /// without them clears them.
    pub properties: Option<std::sync::Arc<crate::event::MessageProperties>>,
}

/// A gauge increment (reference: INCREMENT): the stored JSON object keeps one
/// `{"value": <number>}` per gauge name, e.g. `{"counter": {"value": 10}, "custom":
/// {"value": 1}}`. Applying it adds `by` (negative to decrement) to that gauge, which
/// starts at 0 when the record, the gauge or a numeric `value` is missing; other keys of
/// the object are kept. A stored payload that is not a JSON object is replaced. Integers
/// stay integers while the sum fits an `i64`; otherwise the sum is a float. Atomic like
/// every write: stores apply writes to one path one at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Increment {
    /// The gauge's name (a key of the stored object).
    pub gauge: String,
    /// How much to add.
    pub by: serde_json::Number,
}

impl Increment {
    /// The gauge's value in `object`, when it has a numeric one.
    pub fn value_in(&self, object: &serde_json::Value) -> Option<serde_json::Number> {
        match object.get(&self.gauge)?.get("value")? {
            serde_json::Value::Number(n) => Some(n.clone()),
            _ => None,
        }
    }

    /// `{"gauge": <name>, "value": <its value in stored>}`: what a write with this
    /// increment answers and publishes (reference: INCREMENT, "the data on the event will
    /// look like this").
    pub fn gauge_payload(&self, stored: &Payload) -> Payload {
        let value = stored.as_json().and_then(|object| self.value_in(&object));
        Payload::json(&serde_json::json!({ "gauge": self.gauge, "value": value }))
    }

    /// `old + by`.
    fn add(&self, old: Option<serde_json::Number>) -> serde_json::Number {
        let old = old.unwrap_or_else(|| 0.into());
        if let (Some(a), Some(b)) = (old.as_i64(), self.by.as_i64())
            && let Some(sum) = a.checked_add(b)
        {
            return sum.into();
        }
        let sum = old.as_f64().unwrap_or(0.0) + self.by.as_f64().unwrap_or(0.0);
        // A sum beyond f64 (not a JSON number) leaves the gauge as it was.
        serde_json::Number::from_f64(sum).unwrap_or(old)
    }

    /// The payload after adding to the gauge of `old`'s object.
    fn applied_to(&self, old: Option<&Payload>) -> Payload {
        let mut object = match old.and_then(Payload::as_json) {
            Some(serde_json::Value::Object(object)) => object,
            _ => serde_json::Map::new(),
        };
        let current = match object.get(&self.gauge).and_then(|g| g.get("value")) {
            Some(serde_json::Value::Number(n)) => Some(n.clone()),
            _ => None,
        };
        let value = self.add(current);
        object.insert(self.gauge.clone(), serde_json::json!({ "value": value }));
        Payload::json(&serde_json::Value::Object(object))
    }
}

impl Write {
    /// The record this write leaves when `old` is stored at its path (DESIGN.md §4), at
    /// time `now` (ms since the epoch): a new record gets `created = modified = now`; an
    /// update keeps `created`, sets `modified` (never before `created`), and shallow-merges
    /// when [`Write::merge`] is set, or adds to a gauge for [`Write::increment`]. Every
    /// store applies writes through this one rule.
    pub fn apply(self, old: Option<&Record>, now: u64) -> Record {
        if let Some(increment) = &self.increment {
            let payload = increment.applied_to(old.map(|r| &r.payload));
            return Write {
                payload,
                increment: None,
                merge: false,
                ..self
            }
            .apply(old, now);
        }
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
                properties: self.properties,
            },
            None => Record {
                path: self.path,
                payload: self.payload,
                created: now,
                modified: now,
                modified_by: self.modified_by,
                properties: self.properties,
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

    /// Whether this store keeps sessions across restarts (the redb store does; the
    /// memory store keeps nothing, so its session operations are no-ops).
    fn keeps_sessions(&self) -> bool {
        false
    }

    /// Queues `op` on the session log (durable MQTT sessions, [`crate::session_log`])
    /// and returns its ticket, without waiting: callable from a commit hook on the
    /// store's writer thread. Operations apply in the order they were submitted; tickets
    /// increase in that order. The default (a store that keeps no sessions) drops `op`
    /// and returns 0.
    fn submit_session_op(&self, op: SessionOp) -> u64 {
        drop(op);
        0
    }

    /// Waits until the operation with `ticket`, and every one submitted before it, is
    /// durable. Returns at once for ticket 0.
    ///
    /// # Errors
    /// [`StoreError::Closed`] when the store stopped before writing them.
    async fn session_ops_durable(&self, ticket: u64) -> Result<(), StoreError> {
        let _ = ticket;
        Ok(())
    }

    /// Every stored session with its messages, ordered by client id (start-up).
    ///
    /// # Errors
    /// [`StoreError::Engine`] when the store cannot be read, [`StoreError::Closed`] after
    /// `close`; nothing is changed.
    async fn load_sessions(&self) -> Result<Vec<StoredSession>, StoreError> {
        Ok(Vec::new())
    }

    /// Makes everything written so far durable and stops accepting writes; called once at
    /// shutdown.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn close(&self) -> Result<(), StoreError>;
}

/// A store that answers every call with [`StoreError::Closed`], for tests of what the core
/// does without one (`on` and `publish` never reach the store; `/health` reports it).
#[cfg(test)]
pub(crate) struct ClosedStore;

#[cfg(test)]
#[async_trait::async_trait]
impl Store for ClosedStore {
    async fn set(&self, _: Write, _: Option<OnCommit<Record>>) -> Result<Record, StoreError> {
        Err(StoreError::Closed)
    }
    async fn get(&self, _: &Path) -> Result<Option<Record>, StoreError> {
        Err(StoreError::Closed)
    }
    async fn scan(&self, _: &Glob) -> Result<Vec<Record>, StoreError> {
        Err(StoreError::Closed)
    }
    async fn remove(&self, _: &Glob, _: Option<OnCommit<[Path]>>) -> Result<Vec<Path>, StoreError> {
        Err(StoreError::Closed)
    }
    async fn count(&self, _: &Glob) -> Result<u64, StoreError> {
        Err(StoreError::Closed)
    }
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
