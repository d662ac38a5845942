//! `native-fanout`: `--subscribers` connections each subscribe to `/ALL@/<prefix>/fan/*`
//! (every answer awaited), then one writer does `--count` stored sets to
//! `/<prefix>/fan/<i % --paths>`, pipelined. Each set's data carries its sequence number
//! and send time (`{"seq":N,"t":<ns>,"pad":"…"}`), so every subscriber's events are
//! checked for loss, duplicates and order, and timed from set to event.
//!
//! The rate counts distinct events received by all subscribers from the first set to
//! the last event. Subscribers are read by a few tasks ([`readers`]), each polling many
//! sockets, so a thousand subscribers do not mean a thousand tasks and histograms.
//!
//! After the writer is done, subscribers get until every event has arrived, or until no
//! event arrived for [`QUIET`], or `--timeout` after the first set: what is missing then
//! is lost. Events are owed for the sets answered ok (stored and published); sets the
//! writer did not get done in time show as `unanswered`, not as loss.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::stream::SelectAll;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;

use super::client::{self, FIRST_ID, Plan, Ws, latency_histogram};
use super::probe;
use super::wire::{Body, Inbound, Template, classify, now_ns, pong, stamp};
use super::{CONNECT_CONCURRENCY, FanoutArgs, connect_all, path_prefix, phase_timeout};
use crate::Common;
use crate::report::BrokerCpu;
use crate::report::{Latency, Loss, Report, SequenceTracker};

/// How long subscribers may go without an event, once the writer is done, before the
/// missing events are counted as lost.
const QUIET: Duration = Duration::from_secs(2);
/// Frames a reader task handles before it checks its deadline and stop signal again.
const DRAIN: usize = 1024;

/// Runs `native-fanout`.
///
/// # Errors
/// Setting up failed: a connection, a login, or a subscription. Loss, errors and
/// timeouts of the measured phase are in the report.
pub(crate) async fn fanout(common: &Common, args: &FanoutArgs) -> anyhow::Result<Report> {
    let prefix = path_prefix(common, "fan");
    let subscribers = subscribe_all(common, args.subscribers, &format!("/ALL@{prefix}*")).await?;
    let writer = connect_all(common, 1).await?.remove(0);
    let dropped_before = probe::metric(common, "pathmq_dropped_total").await;

    let cpu = BrokerCpu::start(common.pid);
    let deadline = Instant::now() + phase_timeout(common);
    let received = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let readers = readers(subscribers, args.count, deadline, &received, &stop_rx);

    let start = now_ns();
    let plan = Plan {
        template: Arc::new(Template::new(
            "set",
            &prefix,
            &Body::Stamped {
                payload: common.payload,
            },
        )),
        count: args.count,
        pipeline: args.pipeline,
        offset: 0,
        modulo: args.paths.max(1),
        deadline,
        count_empty: false,
    };
    let sets = tokio::spawn(client::drive(writer, plan)).await?;
    // Every set answered ok was stored and published: its event is owed to everyone.
    let expected = sets.answered * args.subscribers as u64;
    let quiet_stop = drain(&received, expected, deadline).await;
    let _ = stop_tx.send(true);
    let mut seen = Seen::new();
    for reader in readers {
        seen.merge(reader.await?);
    }

    let dropped = match (
        dropped_before,
        probe::metric(common, "pathmq_dropped_total").await,
    ) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let end = if seen.last_event_ns > start {
        seen.last_event_ns
    } else {
        now_ns()
    };
    let events = seen.received();
    let params = format!(
        "subscribers={} count={} pipeline={} paths={} payload={}",
        args.subscribers, args.count, args.pipeline, args.paths, common.payload
    );
    let elapsed = Duration::from_nanos(end - start);
    let mut report = Report::new("native-fanout", params, "events/s", events, elapsed);
    if !seen.latency.is_empty() {
        report.latency_us = Some(Latency::from_histogram(&seen.latency));
    }
    report.loss = Some(seen.loss(sets.answered));

    let extra = &mut report.extra;
    extra.insert("expected_events".into(), expected.into());
    extra.insert("sets_answered".into(), sets.answered.into());
    let set_seconds = Duration::from_nanos(sets.last_answer_ns.saturating_sub(start));
    if !set_seconds.is_zero() {
        let rate = sets.answered as f64 / set_seconds.as_secs_f64();
        extra.insert("sets_per_second".into(), rate.round().into());
    }
    if !sets.latency.is_empty() {
        let l = Latency::from_histogram(&sets.latency);
        let text = format!("p50 {} p99 {} max {}", l.p50, l.p99, l.max);
        extra.insert("set_latency_us".into(), text.into());
    }
    client::extras(&sets, extra);
    if seen.closed > 0 {
        extra.insert("subscribers_closed".into(), seen.closed.into());
    }
    if quiet_stop {
        extra.insert("stopped_after_quiet_seconds".into(), QUIET.as_secs().into());
    }
    if let Some(dropped) = dropped {
        extra.insert("broker_dropped".into(), dropped.into());
    }
    cpu.finish(extra);
    Ok(report)
}

/// Opens `n` connections, each subscribed to `channel` (the answer awaited), within
/// `--timeout`.
async fn subscribe_all(common: &Common, n: usize, channel: &str) -> anyhow::Result<Vec<Ws>> {
    let on = serde_json::json!({
        "action": "on",
        "eventId": FIRST_ID,
        "path": channel,
        "data": null,
        "options": { "event_type": "all", "count": 0 },
    })
    .to_string();
    let open = futures_util::stream::iter(0..n)
        .map(|_| async {
            let mut ws = client::connect(common).await?;
            client::call(&mut ws, &on, FIRST_ID).await?;
            anyhow::Ok(ws)
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>();
    let opened = timeout(phase_timeout(common), open)
        .await
        .with_context(|| format!("subscribing {n} connections took over --timeout"))?;
    opened.into_iter().collect()
}

/// Waits until `expected` events were received, or none arrived for [`QUIET`], or the
/// deadline. Returns whether it stopped for quiet (events are missing).
async fn drain(received: &AtomicU64, expected: u64, deadline: Instant) -> bool {
    let mut last = received.load(Relaxed);
    let mut last_change = Instant::now();
    loop {
        let now = received.load(Relaxed);
        if now >= expected || Instant::now() >= deadline {
            return false;
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        } else if last_change.elapsed() >= QUIET {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the subscribers of one reader task saw.
#[derive(Debug)]
struct Seen {
    /// Per subscriber: the writer's sequence numbers.
    trackers: Vec<SequenceTracker>,
    /// Set → event, µs.
    latency: Histogram<u64>,
    /// When the last event arrived ([`now_ns`]).
    last_event_ns: u64,
    /// Subscribers whose connection ended early.
    closed: u64,
}

impl Seen {
    fn new() -> Self {
        Self {
            trackers: Vec::new(),
            latency: latency_histogram(),
            last_event_ns: 0,
            closed: 0,
        }
    }

    fn merge(&mut self, other: Seen) {
        self.trackers.extend(other.trackers);
        let _ = self.latency.add(&other.latency);
        self.last_event_ns = self.last_event_ns.max(other.last_event_ns);
        self.closed += other.closed;
    }

    /// Distinct events received, over all subscribers.
    fn received(&self) -> u64 {
        self.trackers.iter().map(SequenceTracker::received).sum()
    }

    /// Loss against `count` events per subscriber. Events of sets that were sent but not
    /// answered by the deadline may arrive too; they count as received, not as owed.
    fn loss(&self, count: u64) -> Loss {
        self.trackers.iter().fold(Loss::default(), |sum, t| {
            let l = t.loss(1, count);
            Loss {
                lost: sum.lost + l.lost,
                duplicated: sum.duplicated + l.duplicated,
                out_of_order: sum.out_of_order + l.out_of_order,
            }
        })
    }
}

/// Spreads `subscribers` over a few reader tasks (two per core), each reading until its
/// subscribers have `count` events each, the stop signal, or the deadline. `received`
/// counts events as they arrive.
fn readers(
    subscribers: Vec<Ws>,
    count: u64,
    deadline: Instant,
    received: &Arc<AtomicU64>,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Seen>> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let tasks = (cores * 2).clamp(1, subscribers.len().max(1));
    let mut groups: Vec<Vec<Ws>> = (0..tasks).map(|_| Vec::new()).collect();
    for (i, ws) in subscribers.into_iter().enumerate() {
        groups[i % tasks].push(ws);
    }
    groups
        .into_iter()
        .map(|group| {
            let (received, stop) = (received.clone(), stop.clone());
            tokio::spawn(read_events(group, count, deadline, received, stop))
        })
        .collect()
}

/// One reader task: polls its subscribers' sockets together.
async fn read_events(
    group: Vec<Ws>,
    count: u64,
    deadline: Instant,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::new();
    let mut sinks = Vec::with_capacity(group.len());
    let mut streams = SelectAll::new();
    for (i, ws) in group.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        sinks.push(sink);
        streams.push(stream.map(move |message| (i, message)));
        seen.trackers.push(SequenceTracker::default());
    }
    let mut waiting = sinks.len();
    let mut pongs = Vec::new();
    let expiry = sleep_until(deadline);
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::pin!(expiry, stopped);

    'read: while waiting > 0 {
        let first = tokio::select! {
            biased;
            () = &mut expiry => break,
            () = &mut stopped => break,
            item = streams.next() => item,
        };
        let mut item = first;
        let mut handled = 0;
        loop {
            let Some((i, message)) = item else {
                // Every socket has ended.
                break 'read;
            };
            let text = match message {
                Ok(Message::Text(text)) => Some(text),
                Ok(Message::Close(_)) | Err(_) => {
                    seen.closed += 1;
                    None
                }
                Ok(_) => None,
            };
            if let Some(text) = text {
                if let Some((seq, t)) = stamp(&text) {
                    let now = now_ns();
                    let tracker = &mut seen.trackers[i];
                    tracker.record(0, seq);
                    if tracker.received() == count {
                        waiting -= 1;
                    }
                    seen.latency
                        .saturating_record(now.saturating_sub(t) / 1_000);
                    seen.last_event_ns = now;
                    received.fetch_add(1, Relaxed);
                } else if let Inbound::Ping(ping) = classify(&text) {
                    pongs.push((i, pong(ping)));
                }
            }
            handled += 1;
            if handled == DRAIN {
                break;
            }
            item = match streams.next().now_or_never() {
                Some(next) => next,
                None => break,
            };
        }
        for (i, pong) in pongs.drain(..) {
            let _ = timeout(Duration::from_secs(1), sinks[i].send(Message::text(pong))).await;
        }
    }
    seen
}
