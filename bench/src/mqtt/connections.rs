//! `connections`: open `--count` idle MQTT connections (CONNECT with keepalive 0, so the
//! broker owes them nothing, then CONNACK), `--concurrency` handshakes at a time. Reports
//! the connection rate and, with `--pid`, the broker's resident memory before and after:
//! `per_connection_kib = (after − before) / connected`. With `--tls-ca` each connection is
//! TLS (handshake included in the rate). `--hold` keeps them open for
//! measuring from outside (several processes at once: each holds its share, and
//! `broker_rss_held_kib` is read at the end of the hold, when all are still open).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::ConnectionsArgs;
use super::conn::Conn;
use super::stream::{Broker, Stream};
use crate::Common;
use crate::report::{Report, rss_kib};

/// Time the broker gets after the last CONNACK before its memory is read (allocations
/// that follow the handshake, e.g. a session's first buffers).
const SETTLE: Duration = Duration::from_millis(500);

/// How long the broker gets to close the connections after DISCONNECT.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

pub(crate) async fn run(common: &Common, args: &ConnectionsArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let nofile = super::raise_nofile();
    let broker = Broker::resolve(common).await?;
    let rss_before = common.pid.and_then(rss_kib);

    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = super::deadline(common);
    let workers: Vec<_> = (0..args.concurrency.min(args.count.max(1)))
        .map(|_| {
            let (next, broker, count) = (next.clone(), broker.clone(), args.count);
            tokio::spawn(async move {
                let mut open = Vec::new();
                let mut failed = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    match Conn::open(&broker, &super::client_id("c", i), 0, deadline).await {
                        Ok(conn) => open.push((conn.into_stream(), Instant::now())),
                        Err(e) => failed.push(format!("{e:#}")),
                    }
                }
                (open, failed)
            })
        })
        .collect();
    let mut streams: Vec<Stream> = Vec::with_capacity(args.count);
    let mut errors = Vec::new();
    let mut last = start;
    for worker in workers {
        let (open, failed) = worker.await?;
        for (stream, at) in open {
            last = last.max(at);
            streams.push(stream);
        }
        errors.extend(failed);
    }
    let connected = streams.len() as u64;
    if connected == 0
        && let Some(first) = errors.first()
    {
        anyhow::bail!("no connection succeeded ({} tried): {first}", errors.len());
    }

    let mut report = Report::new(
        "connections",
        format!("count={} concurrency={}", args.count, args.concurrency),
        "conn/s",
        connected,
        last.duration_since(start),
    );
    report.extra.insert("connected".into(), connected.into());
    report.extra.insert("failed".into(), errors.len().into());
    if let Some(limit) = nofile {
        report.extra.insert("nofile_limit".into(), limit.into());
    }
    if let Some(pid) = common.pid {
        tokio::time::sleep(SETTLE).await;
        let after = rss_kib(pid);
        report.broker_rss_kib = after;
        if let (Some(before), Some(after)) = (rss_before, after) {
            report
                .extra
                .insert("broker_rss_before_kib".into(), before.into());
            if connected > 0 {
                let per = after.saturating_sub(before) as f64 / connected as f64;
                report
                    .extra
                    .insert("per_connection_kib".into(), super::round3(per).into());
            }
        }
    }
    if args.hold > 0 {
        tokio::time::sleep(Duration::from_secs(args.hold)).await;
        if let Some(held) = common.pid.and_then(rss_kib) {
            report
                .extra
                .insert("broker_rss_held_kib".into(), held.into());
        }
    }
    // Still all open? (A broker that dropped idle connections would show here.)
    let mut closed = 0;
    for stream in &mut streams {
        closed += usize::from(stream.is_closed().await);
    }
    if closed > 0 {
        report
            .extra
            .insert("closed_by_broker".into(), closed.into());
    }
    disconnect(streams).await;
    super::finish_extra(&mut report.extra, false, errors);
    Ok(report)
}

/// Sends DISCONNECT on every stream and waits (up to [`CLOSE_WAIT`]) for the broker to
/// close them: the side that closes first keeps the TIME_WAIT entry, and thousands of
/// them here would slow down this machine's next thousands of connects (ephemeral ports).
async fn disconnect(mut streams: Vec<Stream>) {
    for stream in &mut streams {
        stream.write_last(&super::packet::DISCONNECT).await;
    }
    let until = Instant::now() + CLOSE_WAIT;
    for stream in &streams {
        if tokio::time::timeout_at(until, stream.tcp().readable())
            .await
            .is_err()
        {
            break;
        }
    }
}
