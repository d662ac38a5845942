//! Durable sessions in the redb store: session operations apply in submission order,
//! tickets and their durability, persistence across close and reopen, submissions from
//! commit hooks on the writer thread, and concurrent submitters.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pathmq_core::session_log::{SessionOp, StoredSession};
use pathmq_core::{OnCommit, Path, Payload, Record, Store, StoreError, Write};
use pathmq_storage::RedbStore;
use serde_json::json;

/// Every wait in these tests is bounded: a deadlock fails the test instead of hanging it.
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 30s"))
}

fn put_session(client_id: &str, state: &str) -> SessionOp {
    SessionOp::PutSession {
        client_id: Arc::from(client_id),
        state: Bytes::copy_from_slice(state.as_bytes()),
    }
}

fn remove_session(client_id: &str) -> SessionOp {
    SessionOp::RemoveSession {
        client_id: Arc::from(client_id),
    }
}

fn put_message(client_id: &str, seq: u64) -> SessionOp {
    SessionOp::PutMessage {
        client_id: Arc::from(client_id),
        seq,
        head: Bytes::from(format!("h{seq}:")),
        body: Bytes::copy_from_slice(client_id.as_bytes()),
    }
}

/// The stored value of [`put_message`]: head ++ body.
fn message(client_id: &str, seq: u64) -> (u64, Vec<u8>) {
    (seq, format!("h{seq}:{client_id}").into_bytes())
}

fn remove_message(client_id: &str, seq: u64) -> SessionOp {
    SessionOp::RemoveMessage {
        client_id: Arc::from(client_id),
        seq,
    }
}

fn session(client_id: &str, state: &str, messages: Vec<(u64, Vec<u8>)>) -> StoredSession {
    StoredSession {
        client_id: client_id.into(),
        state: state.as_bytes().to_vec(),
        messages,
    }
}

fn write(path: &str, n: u64) -> Write {
    Write {
        path: Path::parse(path).expect("valid path"),
        payload: Payload::json(&json!({ "n": n })),
        merge: false,
        modified_by: None,
        increment: None,
        properties: None,
    }
}

/// Submits `ops` in order and returns the last ticket.
fn submit_all(store: &RedbStore, ops: impl IntoIterator<Item = SessionOp>) -> u64 {
    ops.into_iter()
        .map(|op| store.submit_session_op(op))
        .last()
        .unwrap_or(0)
}

#[tokio::test]
async fn session_ops_apply_in_submission_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
    assert!(store.keeps_sessions());

    let ticket = submit_all(
        &store,
        [
            put_session("a", "first"),
            put_message("a", 1),
            put_message("a", 2),
            put_message("a", 3),
            put_session("a", "second"),
            remove_message("a", 2),
            remove_message("a", 99),
            put_session("ab", "other"),
            put_message("ab", 1),
            put_message("ab", 2),
            put_session("b", "last"),
            put_message("b", 5),
        ],
    );
    bounded("durable", store.session_ops_durable(ticket))
        .await
        .unwrap();
    assert_eq!(
        store.load_sessions().await.unwrap(),
        vec![
            session("a", "second", vec![message("a", 1), message("a", 3)]),
            session("ab", "other", vec![message("ab", 1), message("ab", 2)]),
            session("b", "last", vec![message("b", 5)]),
        ]
    );

    // Removing "a" removes its messages, not those of "ab" (whose id starts with "a").
    // A session put again after its removal starts empty.
    let ticket = submit_all(
        &store,
        [
            remove_session("a"),
            remove_session("missing"),
            put_session("a", "again"),
            put_message("a", 7),
        ],
    );
    bounded("durable", store.session_ops_durable(ticket))
        .await
        .unwrap();
    assert_eq!(
        store.load_sessions().await.unwrap(),
        vec![
            session("a", "again", vec![message("a", 7)]),
            session("ab", "other", vec![message("ab", 1), message("ab", 2)]),
            session("b", "last", vec![message("b", 5)]),
        ]
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn tickets_increase_and_durable_resolves_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
    bounded("ticket 0", store.session_ops_durable(0))
        .await
        .unwrap();

    let tickets: Vec<u64> = [
        put_session("c", "s"),
        put_message("c", 1),
        put_message("c", 2),
    ]
    .into_iter()
    .map(|op| store.submit_session_op(op))
    .collect();
    assert!(tickets[0] > 0, "{tickets:?}");
    assert!(tickets.windows(2).all(|w| w[0] < w[1]), "{tickets:?}");

    bounded("durable", store.session_ops_durable(tickets[2]))
        .await
        .unwrap();
    // An earlier ticket is durable too.
    bounded("durable", store.session_ops_durable(tickets[0]))
        .await
        .unwrap();
    assert_eq!(
        store.load_sessions().await.unwrap(),
        vec![session("c", "s", vec![message("c", 1), message("c", 2)])]
    );
    let stats = store.stats();
    assert_eq!(stats.session_operations, 3, "{stats:?}");
    assert_eq!(stats.operations, 0, "{stats:?}");
    assert!(stats.transactions >= 1, "{stats:?}");
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_session_op_is_committed_before_a_later_set_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
    store.submit_session_op(put_session("early", "s"));
    bounded("set", store.set(write("/after", 1), None))
        .await
        .unwrap();
    // No wait on the ticket: the set's answer implies the earlier session op committed.
    assert_eq!(
        store.load_sessions().await.unwrap(),
        vec![session("early", "s", vec![])]
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn everything_submitted_before_close_is_on_disk_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.redb");
    let store = RedbStore::open(&file).unwrap();
    store.submit_session_op(put_session("kept", "s"));
    store.submit_session_op(put_session("gone", "s"));
    store.submit_session_op(put_message("gone", 1));
    for seq in 1..=500 {
        store.submit_session_op(put_message("kept", seq));
    }
    let last = store.submit_session_op(remove_session("gone"));
    bounded("close", store.close()).await.unwrap();

    // After close: submissions are dropped, later tickets never come, loads are refused.
    assert_eq!(store.submit_session_op(put_session("late", "s")), 0);
    bounded("ticket 0", store.session_ops_durable(0))
        .await
        .unwrap();
    bounded("committed ticket", store.session_ops_durable(last))
        .await
        .unwrap();
    assert!(matches!(
        bounded("unknown ticket", store.session_ops_durable(last + 1)).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.load_sessions().await,
        Err(StoreError::Closed)
    ));
    drop(store);

    let store = RedbStore::open(&file).unwrap();
    let expected = session("kept", "s", (1..=500).map(|s| message("kept", s)).collect());
    assert_eq!(store.load_sessions().await.unwrap(), vec![expected]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn session_ops_survive_a_drop_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.redb");
    let store = RedbStore::open(&file).unwrap();
    submit_all(&store, [put_session("d", "s"), put_message("d", 1)]);
    drop(store);

    let store = RedbStore::open(&file).unwrap();
    assert_eq!(
        store.load_sessions().await.unwrap(),
        vec![session("d", "s", vec![message("d", 1)])]
    );
    store.close().await.unwrap();
}

/// Commit hooks run on the writer thread; with a queue of one operation, the bounded
/// channel is full while they run, so the wake-up cannot be sent and must not be waited
/// for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submitting_from_a_commit_hook_does_not_deadlock_with_a_full_queue() {
    const WRITES: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        RedbStore::builder(dir.path().join("store.redb"))
            .queue_capacity(1)
            .max_batch(1)
            .open()
            .unwrap(),
    );
    store.submit_session_op(put_session("hook", "s"));
    let tickets = Arc::new(parking_lot::Mutex::new(Vec::new()));

    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=WRITES {
        let (store, tickets) = (Arc::clone(&store), Arc::clone(&tickets));
        tasks.spawn(async move {
            let hook_store = Arc::clone(&store);
            let hook: OnCommit<Record> = Box::new(move |_: &Record| {
                // Two ops per hook: the second finds the session queue non-empty.
                let first = hook_store.submit_session_op(put_message("hook", i));
                let second = hook_store.submit_session_op(put_message("hook", i + WRITES));
                tickets.lock().extend([first, second]);
            });
            store.set(write(&format!("/w/{i}"), i), Some(hook)).await
        });
    }
    bounded("sets with hooks", async {
        while let Some(result) = tasks.join_next().await {
            result.unwrap().unwrap();
        }
    })
    .await;

    let last = {
        let tickets = tickets.lock();
        assert_eq!(tickets.len() as u64, 2 * WRITES);
        assert!(tickets.iter().all(|&t| t > 0), "{tickets:?}");
        tickets.iter().copied().max().unwrap()
    };
    bounded("durable", store.session_ops_durable(last))
        .await
        .unwrap();
    let loaded = store.load_sessions().await.unwrap();
    assert_eq!(loaded.len(), 1);
    let seqs: Vec<u64> = loaded[0].messages.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=2 * WRITES).collect::<Vec<_>>());
    bounded("close", store.close()).await.unwrap();
}

/// Each task's operations only make sense in order: a message removed right after it was
/// put must stay removed, and the state must be the task's last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submitters_keep_their_own_order() {
    const TASKS: usize = 8;
    const MESSAGES: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        RedbStore::builder(dir.path().join("store.redb"))
            .queue_capacity(4)
            .max_batch(8)
            .open()
            .unwrap(),
    );

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let client_id = format!("client-{task}");
            let mut tickets = vec![store.submit_session_op(put_session(&client_id, "0"))];
            for seq in 1..=MESSAGES {
                tickets.push(store.submit_session_op(put_message(&client_id, seq)));
                if seq % 2 == 0 {
                    tickets.push(store.submit_session_op(remove_message(&client_id, seq)));
                }
                let state = seq.to_string();
                tickets.push(store.submit_session_op(put_session(&client_id, &state)));
                if seq % 16 == 0 {
                    // Interleave record writes, and let other tasks run.
                    store.set(write(&format!("/t/{task}"), seq), None).await?;
                }
            }
            assert!(
                tickets.windows(2).all(|w| w[0] < w[1]),
                "tickets of {client_id} out of order"
            );
            Ok::<u64, StoreError>(*tickets.last().unwrap())
        });
    }
    let last = bounded("submitters", async {
        let mut last = 0;
        while let Some(result) = tasks.join_next().await {
            last = last.max(result.unwrap().unwrap());
        }
        last
    })
    .await;
    bounded("durable", store.session_ops_durable(last))
        .await
        .unwrap();

    let loaded = store.load_sessions().await.unwrap();
    let expected: Vec<StoredSession> = (0..TASKS)
        .map(|task| {
            let client_id = format!("client-{task}");
            let messages = (1..=MESSAGES)
                .filter(|seq| seq % 2 == 1)
                .map(|seq| message(&client_id, seq))
                .collect();
            session(&client_id, &MESSAGES.to_string(), messages)
        })
        .collect();
    assert_eq!(loaded, expected);
    bounded("close", store.close()).await.unwrap();
}

#[tokio::test]
async fn loading_an_empty_store_gives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
    assert_eq!(store.load_sessions().await.unwrap(), vec![]);
    store.close().await.unwrap();
}
