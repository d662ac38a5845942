//! The smallest `Store`, for security's unit tests: records in a map; writes fail while
//! `fail` is set.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::Value;

use crate::{Glob, OnCommit, Path, Record, Store, StoreError, Write};

/// The smallest `Store`: records in a map; writes fail while `fail` is set.
#[derive(Default)]
pub(crate) struct MemStore {
    pub(crate) records: parking_lot::Mutex<BTreeMap<String, Record>>,
    pub(crate) fail: AtomicBool,
}

impl MemStore {
    fn check(&self) -> Result<(), StoreError> {
        match self.fail.load(Ordering::SeqCst) {
            true => Err(StoreError::Engine("disk full".into())),
            false => Ok(()),
        }
    }

    pub(crate) fn json(&self, path: &str) -> Option<Value> {
        self.records.lock().get(path)?.payload.as_json()
    }
}

#[async_trait]
impl Store for MemStore {
    async fn set(&self, write: Write, _: Option<OnCommit<Record>>) -> Result<Record, StoreError> {
        self.check()?;
        let mut records = self.records.lock();
        let key = write.path.as_str().to_owned();
        let record = write.apply(records.get(&key), 1);
        records.insert(key, record.clone());
        Ok(record)
    }
    async fn get(&self, path: &Path) -> Result<Option<Record>, StoreError> {
        Ok(self.records.lock().get(path.as_str()).cloned())
    }
    async fn scan(&self, glob: &Glob) -> Result<Vec<Record>, StoreError> {
        let records = self.records.lock();
        Ok(records
            .values()
            .filter(|r| glob.matches(r.path.as_str()))
            .cloned()
            .collect())
    }
    async fn remove(
        &self,
        glob: &Glob,
        _: Option<OnCommit<[Path]>>,
    ) -> Result<Vec<Path>, StoreError> {
        self.check()?;
        let mut records = self.records.lock();
        let removed: Vec<Path> = (records.values())
            .filter(|r| glob.matches(r.path.as_str()))
            .map(|r| r.path.clone())
            .collect();
        for path in &removed {
            records.remove(path.as_str());
        }
        Ok(removed)
    }
    async fn count(&self, glob: &Glob) -> Result<u64, StoreError> {
        Ok(self.scan(glob).await?.len() as u64)
    }
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
