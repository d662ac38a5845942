//! The subscription index and the publish path against a growing number of subscriptions
//! on other paths (issue 3: publish cost stays flat within 2× from 1,000 to 1,000,000).
//!
//! One path, `/target/room/temp`, is matched by two subscriptions of two sessions (one
//! exact, one `target/+/temp`). Around it the index holds N subscriptions that never match
//! it:
//!
//! * `mixed/N`: 90% exact paths of depth 2 to 4, 100 per first segment (`/dev<k>/…`, so
//!   up to 10,000 first segments), 10% wildcards of every kind (see [`wildcard`]);
//! * `wildcards/100000`: 100,000 wildcard subscriptions only, among them first-level
//!   ones (`+/s7/value`, `*/*/x7`, `+/k7/#`) that every lookup walks past;
//! * `fanout/1000`: no other subscriptions, and the path matched by 1,000 sessions (the
//!   per-recipient cost).
//!
//! `lookup` times [`Router::lookup`] into a reused vector; `publish` times
//! [`Core::publish`] of one shared event to the matching sessions, whose queues are
//! drained between batches outside the timing. Set `ROUTER_BENCH_MAX=1000` to skip the
//! larger indexes (under callgrind, say).
//!
//! ```text
//! cargo bench -p pathmq-core --bench router -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use pathmq_core::{
    Consistency, Core, CoreConfig, Event, EventKind, Glob, OnCommit, OnOptions, Path, Pattern,
    Payload, Record, Request, Session, Store, StoreError, Write, async_trait,
};

/// A store that keeps nothing: the core needs one, and `pathmq-core` cannot depend on
/// `pathmq-storage`. Nothing here reaches it (`on` and `publish` do not touch the store).
struct NullStore;

#[async_trait]
impl Store for NullStore {
    async fn set(
        &self,
        write: Write,
        on_commit: Option<OnCommit<Record>>,
    ) -> Result<Record, StoreError> {
        let record = write.apply(None, 0);
        if let Some(hook) = on_commit {
            hook(&record);
        }
        Ok(record)
    }

    async fn get(&self, _: &Path) -> Result<Option<Record>, StoreError> {
        Ok(None)
    }

    async fn scan(&self, _: &Glob) -> Result<Vec<Record>, StoreError> {
        Ok(Vec::new())
    }

    async fn remove(
        &self,
        _: &Glob,
        on_commit: Option<OnCommit<[Path]>>,
    ) -> Result<Vec<Path>, StoreError> {
        if let Some(hook) = on_commit {
            hook(&[]);
        }
        Ok(Vec::new())
    }

    async fn count(&self, _: &Glob) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Subscriptions per background session.
const PER_SESSION: usize = 1_000;

/// The path every lookup and publish is for.
const TARGET: &str = "target/room/temp";

/// The receivers of the `mixed` and `wildcards` series: one exact subscription, one
/// wildcard.
const TWO: [&str; 2] = [TARGET, "target/+/temp"];

/// The `i`-th wildcard subscription on other paths: every position and kind, including
/// first-level wildcards (the last three) that every lookup visits.
fn wildcard(i: usize) -> (Pattern, Option<usize>) {
    let (a, b) = (i / 100, i % 100);
    match i % 7 {
        0 => (Pattern::mqtt(&format!("dev{a}/+/value")).unwrap(), None),
        1 => (Pattern::mqtt(&format!("dev{a}/s{b}/#")).unwrap(), None),
        2 => (Pattern::native(&format!("/dev{a}/*/x{i}")).unwrap(), None),
        3 => (
            Pattern::native(&format!("/dev{a}/s{b}/**")).unwrap(),
            Some(2),
        ),
        4 => (Pattern::mqtt(&format!("+/s{i}/value")).unwrap(), None),
        5 => (Pattern::native(&format!("/*/*/x{i}")).unwrap(), None),
        _ => (Pattern::mqtt(&format!("+/k{i}/#")).unwrap(), None),
    }
}

/// The `i`-th exact subscription on other paths: depth 2 to 4, 100 per first segment.
fn exact(i: usize) -> Pattern {
    let (a, b) = (i / 100, i % 100);
    let topic = match i % 3 {
        0 => format!("dev{a}/s{b}"),
        1 => format!("dev{a}/s{b}/value"),
        _ => format!("dev{a}/s{b}/value/{i}"),
    };
    Pattern::mqtt(&topic).unwrap()
}

fn subscribe(session: &Session, pattern: Pattern, depth: Option<usize>) {
    let on = Request::On {
        pattern,
        options: OnOptions {
            depth,
            ..Default::default()
        },
    };
    // `on` never waits (no store access, no layers).
    session
        .request(on)
        .now_or_never()
        .expect("`on` completes at once")
        .expect("subscribed");
}

/// A core holding `others` (pattern, depth) subscriptions that do not match [`TARGET`],
/// plus one session for each of `receivers`, a filter matching it; returns the core, the
/// background sessions (kept alive) and the receiving sessions.
fn fixture(
    others: impl Iterator<Item = (Pattern, Option<usize>)>,
    receivers: &[&str],
) -> (Core, Vec<Session>, Vec<Session>) {
    let mut config = CoreConfig::default();
    config.max_subscriptions = PER_SESSION;
    let core = Core::builder(NullStore).config(config).build();
    let mut background = Vec::new();
    for (i, (pattern, depth)) in others.enumerate() {
        if i % PER_SESSION == 0 {
            background.push(core.open_session("local", None, None));
        }
        subscribe(background.last().unwrap(), pattern, depth);
    }
    let receivers = receivers
        .iter()
        .map(|filter| {
            let session = core.open_session("local", None, None);
            subscribe(&session, Pattern::mqtt(filter).unwrap(), None);
            session
        })
        .collect();
    (core, background, receivers)
}

/// Benchmarks `lookup/<series>/<label>` and `publish/<series>/<label>` on an index of
/// `others` and one receiving session for each of `filters` (see [`fixture`]).
fn run(
    c: &mut Criterion,
    series: &str,
    label: usize,
    others: Vec<(Pattern, Option<usize>)>,
    filters: &[&str],
) {
    let n = others.len();
    let (core, _background, mut receivers) = fixture(others.into_iter(), filters);
    let path = Path::from_topic(TARGET).unwrap();
    let router = core.router();
    let mut out = Vec::new();
    router.lookup(&path, &mut out);
    assert_eq!(out.len(), receivers.len(), "only the receivers match");
    assert_eq!(router.len(), n + receivers.len());
    out.clear();

    c.benchmark_group(format!("lookup/{series}"))
        .bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                router.lookup(black_box(&path), &mut out);
                out.clear();
            })
        });

    let event = Arc::new(Event::new(
        EventKind::Set,
        path.clone(),
        Payload::json(&serde_json::json!({"t": 21.5})),
        1,
        1,
        None,
        None,
        Consistency::Transactional,
        None,
        0,
    ));
    c.benchmark_group(format!("publish/{series}"))
        .bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    // Fewer than a queue holds, so every delivery is queued, not dropped.
                    let batch = left.min(1_000);
                    let start = Instant::now();
                    for _ in 0..batch {
                        let result = core.publish(black_box(event.clone()));
                        debug_assert_eq!(result.successful, receivers.len() as u64);
                    }
                    timed += start.elapsed();
                    for receiver in receivers.iter_mut() {
                        while let Some(Some(_)) = receiver.recv().now_or_never() {}
                    }
                    left -= batch;
                }
                timed
            })
        });
}

fn router(c: &mut Criterion) {
    let max: usize = std::env::var("ROUTER_BENCH_MAX")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(usize::MAX);
    for n in [1_000, 10_000, 100_000, 1_000_000] {
        if n > max {
            break;
        }
        let others = (0..n)
            .map(|i| match i % 10 {
                0 => wildcard(i / 10),
                _ => (exact(i), None),
            })
            .collect();
        run(c, "mixed", n, others, &TWO);
    }
    let n = 100_000.min(max);
    run(c, "wildcards", n, (0..n).map(wildcard).collect(), &TWO);
    // Fan-out: the same path, now matched by 1,000 sessions' subscriptions.
    run(c, "fanout", 1_000, Vec::new(), &[TARGET; 1_000]);
}

criterion_group!(benches, router);
criterion_main!(benches);
