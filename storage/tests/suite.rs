//! The store suite: one set of behaviours, run against every [`Store`] (STYLE 25). Each
//! behaviour is a generic async fn; the `suite!` macro instantiates it as a test per
//! store, so `cargo test memory::` or `cargo test redb::` runs one store. The query
//! behaviours are in `suite/query.rs`.

use std::sync::Arc;

use bytes::Bytes;
use pathmq_core::{Format, Glob, Increment, Path, Payload, Store, Write, now_ms};
use pathmq_storage::{MemoryStore, RedbStore};
use serde_json::{Value, json};

#[path = "suite/query.rs"]
mod query;
use query::*;

/// A store under test and whatever must outlive it.
struct Fixture<S> {
    store: Arc<S>,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Fixture<MemoryStore> {
    Fixture {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
    }
}

fn redb() -> Fixture<RedbStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("store.redb")).expect("open redb store");
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

macro_rules! suite {
    ($store:ident: $($case:ident),* $(,)?) => {
        mod $store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::$store();
                    super::$case(std::sync::Arc::clone(&fixture.store)).await;
                }
            )*
        }
    };
}

macro_rules! cases {
    ($($store:ident),*) => {
        $(
            suite!($store:
                set_then_get,
                set_replaces,
                merge_is_shallow,
                merge_with_a_non_object_replaces,
                merge_into_nothing_stores_the_update,
                created_is_kept_and_modified_updated,
                modified_by_is_recorded,
                get_missing_is_none,
                scan_is_ordered_and_star_crosses_segments,
                scan_prefix_does_not_match_siblings,
                scan_exact_and_inner_star,
                remove_exact_returns_the_path,
                remove_by_glob_returns_the_removed_paths,
                remove_nothing_returns_empty,
                count_agrees_with_scan,
                unicode_and_empty_segment_paths,
                text_and_binary_round_trip_byte_exactly,
                concurrent_setters_are_all_answered,
                concurrent_merges_lose_no_key,
                concurrent_increments_lose_nothing,
                commit_hooks_run_in_commit_order,
                remove_hooks_see_the_removed_paths,
                query_search_example,
                query_regex_forms,
                query_pages_equal_the_unpaged_result,
                query_without_sort_is_in_path_order,
                query_sees_meta_and_native_views,
                count_matching_agrees_with_query,
            );
        )*
    };
}

cases!(memory, redb);

fn path(s: &str) -> Path {
    Path::parse(s).expect("valid path")
}

fn glob(s: &str) -> Glob {
    Glob::parse(s).expect("valid glob")
}

fn write(p: &str, value: Value) -> Write {
    Write {
        path: path(p),
        payload: Payload::json(&value),
        merge: false,
        modified_by: None,
        increment: None,
        properties: None,
    }
}

fn merge(p: &str, value: Value) -> Write {
    Write {
        merge: true,
        ..write(p, value)
    }
}

async fn json_at<S: Store>(store: &S, p: &str) -> Value {
    let record = store.get(&path(p)).await.unwrap().expect("record exists");
    record.payload.as_json().expect("json payload")
}

async fn set_all<S: Store>(store: &S, paths: &[&str]) {
    for p in paths {
        store.set(write(p, json!({ "at": p })), None).await.unwrap();
    }
}

fn strs(paths: &[Path]) -> Vec<&str> {
    paths.iter().map(Path::as_str).collect()
}

async fn scanned<S: Store>(store: &S, g: &str) -> Vec<String> {
    let records = store.scan(&glob(g)).await.unwrap();
    records.iter().map(|r| r.path.as_str().to_owned()).collect()
}

async fn set_then_get<S: Store>(store: Arc<S>) {
    let written = store
        .set(write("/a/b", json!({"x": 1})), None)
        .await
        .unwrap();
    assert_eq!(written.path.as_str(), "/a/b");
    assert_eq!(written.created, written.modified);
    let got = store.get(&path("a/b")).await.unwrap();
    assert_eq!(got, Some(written));
}

async fn set_replaces<S: Store>(store: Arc<S>) {
    store
        .set(write("/r", json!({"a": 1, "b": 2})), None)
        .await
        .unwrap();
    let second = store.set(write("/r", json!({"c": 3})), None).await.unwrap();
    assert_eq!(second.payload.as_json(), Some(json!({"c": 3})));
    assert_eq!(json_at(&*store, "/r").await, json!({"c": 3}));
}

async fn merge_is_shallow<S: Store>(store: Arc<S>) {
    store
        .set(write("/m", json!({"a": 1, "n": {"x": 1}})), None)
        .await
        .unwrap();
    let merged = store
        .set(merge("/m", json!({"b": 2, "n": {"y": 2}})), None)
        .await
        .unwrap();
    let expected = json!({"a": 1, "b": 2, "n": {"y": 2}});
    assert_eq!(merged.payload.as_json(), Some(expected.clone()));
    assert_eq!(json_at(&*store, "/m").await, expected);
}

async fn merge_with_a_non_object_replaces<S: Store>(store: Arc<S>) {
    store.set(write("/m", json!({"a": 1})), None).await.unwrap();
    store.set(merge("/m", json!(5)), None).await.unwrap();
    assert_eq!(json_at(&*store, "/m").await, json!(5));
    store.set(merge("/m", json!({"b": 2})), None).await.unwrap();
    assert_eq!(json_at(&*store, "/m").await, json!({"b": 2}));
}

async fn merge_into_nothing_stores_the_update<S: Store>(store: Arc<S>) {
    store
        .set(merge("/new", json!({"a": 1})), None)
        .await
        .unwrap();
    assert_eq!(json_at(&*store, "/new").await, json!({"a": 1}));
}

async fn created_is_kept_and_modified_updated<S: Store>(store: Arc<S>) {
    let first = store.set(write("/t", json!({"v": 1})), None).await.unwrap();
    // Let the millisecond clock move on, so that the second write has a later time.
    while now_ms() <= first.modified {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let second = store.set(merge("/t", json!({"v": 2})), None).await.unwrap();
    assert_eq!(second.created, first.created);
    assert!(
        second.modified > first.modified,
        "{second:?} after {first:?}"
    );
    let stored = store.get(&path("/t")).await.unwrap().unwrap();
    assert_eq!(
        (stored.created, stored.modified),
        (first.created, second.modified)
    );
}

async fn modified_by_is_recorded<S: Store>(store: Arc<S>) {
    let mut w = write("/who", json!({}));
    w.modified_by = Some("alice".into());
    store.set(w, None).await.unwrap();
    let record = store.get(&path("/who")).await.unwrap().unwrap();
    assert_eq!(record.modified_by.as_deref(), Some("alice"));
    store.set(write("/who", json!({})), None).await.unwrap();
    let record = store.get(&path("/who")).await.unwrap().unwrap();
    assert_eq!(record.modified_by, None);
}

async fn get_missing_is_none<S: Store>(store: Arc<S>) {
    assert_eq!(store.get(&path("/nothing/here")).await.unwrap(), None);
    store.set(write("/nothing", json!(1)), None).await.unwrap();
    assert_eq!(store.get(&path("/nothing/here")).await.unwrap(), None);
}

async fn scan_is_ordered_and_star_crosses_segments<S: Store>(store: Arc<S>) {
    set_all(
        &*store,
        &["/w/b", "/w/a/b", "/w", "/x/a", "/w/a", "/wa", "/w/c/d/e"],
    )
    .await;
    assert_eq!(
        scanned(&*store, "/w/*").await,
        ["/w/a", "/w/a/b", "/w/b", "/w/c/d/e"]
    );
    assert_eq!(
        scanned(&*store, "*").await,
        ["/w", "/w/a", "/w/a/b", "/w/b", "/w/c/d/e", "/wa", "/x/a"]
    );
    let records = store.scan(&glob("/w/*")).await.unwrap();
    assert_eq!(records[0].payload.as_json(), Some(json!({"at": "/w/a"})));
}

async fn scan_prefix_does_not_match_siblings<S: Store>(store: Arc<S>) {
    set_all(&*store, &["/a/b", "/a/bc", "/a/b/x", "/a/c", "/a/a", "/a"]).await;
    assert_eq!(scanned(&*store, "/a/b*").await, ["/a/b", "/a/b/x", "/a/bc"]);
    assert_eq!(scanned(&*store, "/a/c*").await, ["/a/c"]);
    assert!(scanned(&*store, "/a/d*").await.is_empty());
}

async fn scan_exact_and_inner_star<S: Store>(store: Arc<S>) {
    set_all(&*store, &["/a/1/c", "/a/1/x/c", "/a/2/d", "/a/c"]).await;
    assert_eq!(scanned(&*store, "/a/1/c").await, ["/a/1/c"]);
    assert!(scanned(&*store, "/a/1").await.is_empty());
    assert_eq!(scanned(&*store, "/a/*/c").await, ["/a/1/c", "/a/1/x/c"]);
}

async fn remove_exact_returns_the_path<S: Store>(store: Arc<S>) {
    set_all(&*store, &["/d/a", "/d/ab"]).await;
    let removed = store.remove(&glob("/d/a"), None).await.unwrap();
    assert_eq!(strs(&removed), ["/d/a"]);
    assert_eq!(store.get(&path("/d/a")).await.unwrap(), None);
    assert!(store.get(&path("/d/ab")).await.unwrap().is_some());
}

async fn remove_by_glob_returns_the_removed_paths<S: Store>(store: Arc<S>) {
    set_all(&*store, &["/d/b", "/d/a/x", "/d", "/e/a", "/d/a"]).await;
    let removed = store.remove(&glob("/d/*"), None).await.unwrap();
    assert_eq!(strs(&removed), ["/d/a", "/d/a/x", "/d/b"]);
    assert_eq!(scanned(&*store, "*").await, ["/d", "/e/a"]);
}

async fn remove_nothing_returns_empty<S: Store>(store: Arc<S>) {
    assert!(store.remove(&glob("/none"), None).await.unwrap().is_empty());
    assert!(
        store
            .remove(&glob("/none/*"), None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn count_agrees_with_scan<S: Store>(store: Arc<S>) {
    set_all(&*store, &["/c/a", "/c/b/c", "/cc", "/c"]).await;
    for (g, n) in [("/c/*", 2), ("/c*", 4), ("*", 4), ("/c", 1), ("/z*", 0)] {
        assert_eq!(store.count(&glob(g)).await.unwrap(), n, "count {g}");
        assert_eq!(scanned(&*store, g).await.len() as u64, n, "scan {g}");
    }
}

async fn unicode_and_empty_segment_paths<S: Store>(store: Arc<S>) {
    let paths = ["/ünï/cødé/🌡", "//a", "//a/b", "/a//b", "/a/", "/日本/東京"];
    set_all(&*store, &paths).await;
    for p in paths {
        assert_eq!(json_at(&*store, p).await, json!({ "at": p }), "{p}");
    }
    assert_eq!(scanned(&*store, "//*").await, ["//a", "//a/b"]);
    assert_eq!(scanned(&*store, "/ünï/*").await, ["/ünï/cødé/🌡"]);
    let removed = store.remove(&glob("//a"), None).await.unwrap();
    assert_eq!(strs(&removed), ["//a"]);
    assert_eq!(store.count(&glob("*")).await.unwrap(), 5);
}

async fn text_and_binary_round_trip_byte_exactly<S: Store>(store: Arc<S>) {
    let cases: [(&str, Format, &'static [u8]); 5] = [
        ("/text", Format::Text, "héllo wörld".as_bytes()),
        ("/bin", Format::Binary, &[0x00, 0xff, 0x80, 0x00, 0x01]),
        ("/empty", Format::Text, b""),
        ("/spaced", Format::Json, b" { \"a\" : 1 } "),
        ("/big", Format::Binary, &[0xab; 70_000]),
    ];
    for (p, format, bytes) in cases {
        let payload = Payload {
            format,
            bytes: Bytes::from_static(bytes),
        };
        let w = Write {
            path: path(p),
            payload: payload.clone(),
            merge: false,
            modified_by: None,
            increment: None,
            properties: None,
        };
        store.set(w, None).await.unwrap();
        let got = store.get(&path(p)).await.unwrap().unwrap();
        assert_eq!(got.payload, payload, "{p}");
    }
}

async fn concurrent_setters_are_all_answered<S: Store>(store: Arc<S>) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            store
                .set(write(&format!("/many/{i:03}"), json!(i)), None)
                .await
        });
    }
    let mut answered = 0;
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("set");
        answered += 1;
    }
    assert_eq!(answered, 200);
    assert_eq!(store.count(&glob("/many/*")).await.unwrap(), 200);
    for i in 0..200 {
        assert_eq!(json_at(&*store, &format!("/many/{i:03}")).await, json!(i));
    }
}

async fn concurrent_merges_lose_no_key<S: Store>(store: Arc<S>) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            store
                .set(merge("/shared", json!({ format!("k{i}"): i })), None)
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("merge");
    }
    let value = json_at(&*store, "/shared").await;
    let object = value.as_object().expect("object");
    assert_eq!(object.len(), 100, "every merge kept: {value}");
}

async fn concurrent_increments_lose_nothing<S: Store>(store: Arc<S>) {
    store
        .set(write("/gauges", json!({"other": "kept"})), None)
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let w = Write {
                increment: Some(Increment {
                    gauge: "hits".into(),
                    by: if i % 4 == 0 { (-1).into() } else { 3.into() },
                }),
                ..write("/gauges", json!(null))
            };
            store.set(w, None).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("increment");
    }
    // 150 × 3 − 50 × 1
    assert_eq!(
        json_at(&*store, "/gauges").await,
        json!({"other": "kept", "hits": {"value": 400}})
    );
}

/// Regression guard: events are published from commit hooks, so the last hook to run
/// must have seen the value the store ends up holding (no reordering between commit and
/// publish).
async fn commit_hooks_run_in_commit_order<S: Store>(store: Arc<S>) {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (store, seen) = (Arc::clone(&store), Arc::clone(&seen));
        tasks.spawn(async move {
            let hook: pathmq_core::OnCommit<pathmq_core::Record> =
                Box::new(move |record| seen.lock().push(record.payload.as_json()));
            store.set(write("/ordered", json!(i)), Some(hook)).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("set");
    }
    let stored = json_at(&*store, "/ordered").await;
    let seen = seen.lock();
    assert_eq!(seen.len(), 100, "every hook ran once");
    assert_eq!(seen.last().cloned().flatten(), Some(stored));
}

async fn remove_hooks_see_the_removed_paths<S: Store>(store: Arc<S>) {
    set_all(&*store, &["/h/a", "/h/b", "/i"]).await;
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let hook: pathmq_core::OnCommit<[Path]> =
        Box::new(move |paths| seen2.lock().extend(paths.iter().map(|p| p.to_string())));
    store.remove(&glob("/h/*"), Some(hook)).await.unwrap();
    assert_eq!(*seen.lock(), vec!["/h/a".to_owned(), "/h/b".to_owned()]);
}
