//! The in-memory store: the twin of the redb store for tests and for brokers that keep
//! nothing across restarts (STYLE 25).

use std::collections::BTreeMap;
use std::ops::Bound;

use async_trait::async_trait;
use parking_lot::RwLock;
use pathmq_core::{Glob, OnCommit, Path, Record, Store, StoreError, Write, now_ms};

/// Records in a `BTreeMap` ordered by path. Operations never wait on I/O; the lock is
/// held only for the map operation itself.
///
/// [`Store::query`] and [`Store::count_matching`] are the trait's defaults: the glob's
/// records are copied out by [`Store::scan`] (sharing their bytes), then filtered after
/// the lock is released, so writers never wait for a filter.
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
    async fn set(
        &self,
        write: Write,
        on_commit: Option<OnCommit<Record>>,
    ) -> Result<Record, StoreError> {
        let mut map = self.records.write();
        let path = write.path.clone();
        let record = write.apply(map.get(&path), now_ms());
        map.insert(path, record.clone());
        // Under the lock: hooks run in the order the writes took effect.
        if let Some(hook) = on_commit {
            hook(&record);
        }
        Ok(record)
    }

    async fn get(&self, path: &Path) -> Result<Option<Record>, StoreError> {
        Ok(self.records.read().get(path).cloned())
    }

    async fn scan(&self, glob: &Glob) -> Result<Vec<Record>, StoreError> {
        Ok(matching(&self.records.read(), glob).cloned().collect())
    }

    async fn remove(
        &self,
        glob: &Glob,
        on_commit: Option<OnCommit<[Path]>>,
    ) -> Result<Vec<Path>, StoreError> {
        let mut map = self.records.write();
        let paths: Vec<Path> = matching(&map, glob).map(|r| r.path.clone()).collect();
        for p in &paths {
            map.remove(p);
        }
        if let Some(hook) = on_commit {
            hook(&paths);
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
