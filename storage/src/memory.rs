//! The in-memory store: the twin of the redb store for tests and for brokers that keep
//! nothing across restarts (STYLE 25).

use std::collections::BTreeMap;
use std::ops::Bound;

use async_trait::async_trait;
use parking_lot::RwLock;
use pathmq_core::{Glob, Path, Record, Store, StoreError, Write, now_ms};

/// Records in a `BTreeMap` ordered by path. Operations never wait on I/O; the lock is
/// held only for the map operation itself.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: RwLock<BTreeMap<Path, Record>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Every record whose path starts with `glob`'s literal prefix and matches it, in path
/// order.
fn matching<'a>(
    map: &'a BTreeMap<Path, Record>,
    glob: &'a Glob,
) -> impl Iterator<Item = &'a Record> + 'a {
    let prefix = glob.literal_prefix();
    let start = Path::parse(prefix).ok();
    let range = match start {
        Some(start) => map.range((Bound::Included(start), Bound::Unbounded)),
        None => map.range::<Path, _>(..),
    };
    range
        .take_while(move |(p, _)| p.as_str().starts_with(prefix))
        .filter(move |(p, _)| glob.matches(p.as_str()))
        .map(|(_, r)| r)
}

#[async_trait]
impl Store for MemoryStore {
    async fn set(&self, write: Write) -> Result<Record, StoreError> {
        let now = now_ms();
        let mut map = self.records.write();
        let record = match map.get(&write.path) {
            Some(old) => Record {
                path: write.path.clone(),
                payload: if write.merge {
                    old.payload.merged(&write.payload)
                } else {
                    write.payload
                },
                created: old.created,
                modified: now.max(old.created),
                modified_by: write.modified_by,
            },
            None => Record {
                path: write.path.clone(),
                payload: write.payload,
                created: now,
                modified: now,
                modified_by: write.modified_by,
            },
        };
        map.insert(write.path, record.clone());
        Ok(record)
    }

    async fn get(&self, path: &Path) -> Result<Option<Record>, StoreError> {
        Ok(self.records.read().get(path).cloned())
    }

    async fn scan(&self, glob: &Glob) -> Result<Vec<Record>, StoreError> {
        Ok(matching(&self.records.read(), glob).cloned().collect())
    }

    async fn remove(&self, glob: &Glob) -> Result<Vec<Path>, StoreError> {
        let mut map = self.records.write();
        let paths: Vec<Path> = matching(&map, glob).map(|r| r.path.clone()).collect();
        for p in &paths {
            map.remove(p);
        }
        Ok(paths)
    }

    async fn count(&self, glob: &Glob) -> Result<u64, StoreError> {
        Ok(matching(&self.records.read(), glob).count() as u64)
    }

    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
