//! Behaviours of the redb store beyond the shared suite: persistence across restarts,
//! group commit, closing, opening errors, and unreadable records.

use std::sync::Arc;

use pathmq_core::{Criteria, Glob, Path, Payload, Query, Store, StoreError, Write};
use pathmq_storage::{OpenError, RedbStore};
use redb::{ReadableDatabase, TableDefinition};
use serde_json::json;

/// The store's table, as the store defines it (path → encoded record).
const RECORDS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("records");

fn path(s: &str) -> Path {
    Path::parse(s).expect("valid path")
}

fn glob(s: &str) -> Glob {
    Glob::parse(s).expect("valid glob")
}

fn write(p: &str, n: u64) -> Write {
    Write {
        path: path(p),
        payload: Payload::json(&json!({ "n": n })),
        merge: false,
        modified_by: Some("tester".into()),
        increment: None,
        properties: None,
    }
}

#[tokio::test]
async fn records_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/dirs/store.redb");
    let store = RedbStore::open(&file).unwrap();
    let written = store.set(write("/keep/a", 1), None).await.unwrap();
    store.set(write("/keep/b", 2), None).await.unwrap();
    store.set(write("/gone", 3), None).await.unwrap();
    store.remove(&glob("/gone"), None).await.unwrap();
    store.close().await.unwrap();
    drop(store);

    let store = RedbStore::open(&file).unwrap();
    assert_eq!(store.get(&path("/keep/a")).await.unwrap(), Some(written));
    assert_eq!(store.count(&glob("*")).await.unwrap(), 2);
    assert_eq!(store.get(&path("/gone")).await.unwrap(), None);
}

#[tokio::test]
async fn records_survive_a_drop_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.redb");
    let store = RedbStore::open(&file).unwrap();
    store.set(write("/kept", 1), None).await.unwrap();
    drop(store);

    let store = RedbStore::open(&file).unwrap();
    let record = store.get(&path("/kept")).await.unwrap().expect("kept");
    assert_eq!(record.payload.as_json(), Some(json!({"n": 1})));
    assert_eq!(record.modified_by.as_deref(), Some("tester"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_batches_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("store.redb")).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.set(write(&format!("/g/{i}"), i), None).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.operations, 200);
    assert!(stats.largest_batch > 1, "no batching: {stats:?}");
    assert!(stats.transactions < 200, "no batching: {stats:?}");
    assert_eq!(store.count(&glob("/g/*")).await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_batch_limits_operations_per_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::builder(dir.path().join("store.redb"))
        .max_batch(1)
        .queue_capacity(0)
        .open()
        .unwrap();
    let store = Arc::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.set(write(&format!("/one/{i}"), i), None).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let stats = store.stats();
    assert_eq!(
        (stats.transactions, stats.operations, stats.largest_batch),
        (50, 50, 1)
    );
}

#[tokio::test]
async fn operations_after_close_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
    store.set(write("/a", 1), None).await.unwrap();
    store.close().await.unwrap();
    store.close().await.unwrap();
    let closed = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Closed));
    assert!(closed(store.set(write("/b", 2), None).await.map(drop)));
    assert!(closed(store.get(&path("/a")).await.map(drop)));
    assert!(closed(store.scan(&glob("*")).await.map(drop)));
    assert!(closed(store.count(&glob("*")).await.map(drop)));
    assert!(closed(store.remove(&glob("*"), None).await.map(drop)));
}

/// Every write answered `Ok` before or during `close` is durable; the rest are refused
/// with `Closed`, never lost silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_every_accepted_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.redb");
    let store = Arc::new(RedbStore::open(&file).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { (i, store.set(write(&format!("/c/{i}"), i), None).await) });
    }
    store.close().await.unwrap();
    let mut accepted = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (i, Ok(_)) => accepted.push(i),
            (_, Err(StoreError::Closed)) => {}
            (i, Err(e)) => panic!("write {i} failed: {e}"),
        }
    }
    drop(tasks);
    drop(store);
    let store = RedbStore::open(&file).unwrap();
    for i in &accepted {
        assert!(
            store
                .get(&path(&format!("/c/{i}")))
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(
        store.count(&glob("/c/*")).await.unwrap(),
        accepted.len() as u64
    );
}

#[test]
fn open_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    match RedbStore::open(blocker.join("store.redb")) {
        Err(OpenError::CreateDir { dir: d, .. }) => assert_eq!(d, blocker),
        other => panic!("expected CreateDir, got {other:?}"),
    }

    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    match RedbStore::open(&garbage) {
        Err(e @ OpenError::Database { .. }) => {
            assert!(e.to_string().contains("garbage.redb"), "{e}");
        }
        other => panic!("expected Database, got {other:?}"),
    }

    let file = dir.path().join("store.redb");
    let _first = RedbStore::open(&file).unwrap();
    match RedbStore::open(&file) {
        Err(OpenError::Database { file: f, .. }) => assert_eq!(f, file),
        other => panic!("expected Database (already open), got {other:?}"),
    }
}

/// Queries run on the reader threads, not on the runtime: a closed store refuses them,
/// and a query still answers while the runtime's only worker is busy waiting for it.
#[tokio::test(flavor = "current_thread")]
async fn queries_run_off_the_runtime_and_stop_with_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
    for n in 0..50 {
        store
            .set(write(&format!("/q/{n:02}"), n), None)
            .await
            .unwrap();
    }
    let query = Query::parse(
        Some(&json!({"n": {"$gte": 10}})),
        Some(&json!({"sort": [["n", -1]], "limit": 3})),
    )
    .unwrap();
    let found = store.query(&glob("/q/*"), &query).await.unwrap();
    let ns: Vec<_> = found
        .iter()
        .map(|r| r.payload.as_json().unwrap()["n"].clone())
        .collect();
    assert_eq!(ns, [json!(49), json!(48), json!(47)]);
    let criteria = query.criteria.as_ref();
    assert_eq!(
        store.count_matching(&glob("/q/*"), criteria).await.unwrap(),
        40
    );
    store.close().await.unwrap();
    assert!(matches!(
        store.query(&glob("/q/*"), &query).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.count_matching(&glob("/q/*"), criteria).await,
        Err(StoreError::Closed)
    ));
}

/// Guards the decoder against bytes it did not write: the store answers `Corrupt` naming
/// the path, keeps the record as it is, and `remove` still clears it.
#[tokio::test]
async fn unreadable_records_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.redb");
    drop(RedbStore::open(&file).unwrap());
    {
        let db = redb::Database::create(&file).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(RECORDS)
            .unwrap()
            .insert("/bad", [9u8, 9, 9].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = RedbStore::open(&file).unwrap();
    store.set(write("/good", 1), None).await.unwrap();
    let is_corrupt =
        |e: StoreError| matches!(e, StoreError::Corrupt { ref path, .. } if path == "/bad");
    assert!(is_corrupt(store.get(&path("/bad")).await.unwrap_err()));
    assert!(is_corrupt(store.scan(&glob("*")).await.unwrap_err()));
    assert!(is_corrupt(
        store
            .query(&glob("*"), &Query::default())
            .await
            .unwrap_err()
    ));
    let criteria = Criteria::parse(&json!({"n": 1})).unwrap();
    assert!(is_corrupt(
        store
            .count_matching(&glob("*"), Some(&criteria))
            .await
            .unwrap_err()
    ));
    let mut merge = write("/bad", 2);
    merge.merge = true;
    assert!(is_corrupt(store.set(merge, None).await.unwrap_err()));
    // The failed merge did not stop the rest of the store.
    assert_eq!(store.count(&glob("*")).await.unwrap(), 2);
    let removed = store.remove(&glob("/bad"), None).await.unwrap();
    assert_eq!(removed, [path("/bad")]);
    assert_eq!(store.scan(&glob("*")).await.unwrap().len(), 1);

    store.close().await.unwrap();
    let db = redb::Database::create(&file).unwrap();
    let txn = db.begin_read().unwrap();
    assert!(
        txn.open_table(RECORDS)
            .unwrap()
            .get("/bad")
            .unwrap()
            .is_none()
    );
}
