//! The subscriber side of every scenario: read in large batches, acknowledge QoS 1/2
//! messages in batches (the acks collect in the write buffer and go out with the next
//! write), and account for each message: sequence tracking per publisher and latency from
//! the payload's timestamp, taken once per read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::conn::Conn;
use super::packet::{Ack, Packet, ack};
use super::stamp;
use crate::report::SequenceTracker;

/// How long a receiver keeps listening after every publisher finished and nothing came
/// in: what has not arrived by then is counted as lost.
pub(crate) const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How often an idle receiver looks at the clock and the publishers' progress.
const TICK: Duration = Duration::from_millis(100);

/// Publishers still publishing; receivers start their drain grace when it reaches 0.
#[derive(Debug, Clone)]
pub(crate) struct Running(Arc<AtomicUsize>);

impl Running {
    /// `n` publishers running.
    pub(crate) fn new(n: usize) -> Self {
        Self(Arc::new(AtomicUsize::new(n)))
    }

    /// One publisher finished (or gave up).
    pub(crate) fn finish(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }

    fn all_done(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }
}

/// What one receiver saw.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) tracker: SequenceTracker,
    /// Latency of each distinct or duplicate message, in µs.
    pub(crate) latency: Histogram<u64>,
    /// When the last message arrived.
    pub(crate) last: Option<Instant>,
    /// Why it stopped early, if it did (socket error, malformed input).
    pub(crate) error: Option<String>,
    /// It stopped at the deadline with messages still missing.
    pub(crate) timed_out: bool,
}

/// A latency histogram in µs up to one hour, with `sigfig` significant digits (2 keeps a
/// thousand of them small, 3 for the single-receiver scenarios).
pub(crate) fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, sigfig).expect("valid histogram bounds")
}

/// Receives on `conn` until `expected` distinct messages arrived, or `deadline`, or every
/// publisher finished and nothing came for [`DRAIN_GRACE`]. Closes the connection.
pub(crate) async fn receive(
    mut conn: Conn,
    expected: u64,
    sigfig: u8,
    running: Running,
    deadline: Instant,
) -> Received {
    let mut got = Received {
        tracker: SequenceTracker::default(),
        latency: histogram(sigfig),
        last: None,
        error: None,
        timed_out: false,
    };
    // When this receiver first saw every publisher finished.
    let mut done_seen: Option<Instant> = None;
    while got.tracker.received() < expected {
        let now = Instant::now();
        if now >= deadline {
            got.timed_out = true;
            break;
        }
        if running.all_done() {
            let done = *done_seen.get_or_insert(now);
            let quiet_since = got.last.map_or(done, |last| last.max(done));
            if now.duration_since(quiet_since) >= DRAIN_GRACE {
                break;
            }
        }
        let read = match conn.io_for(TICK.min(deadline - now)).await {
            Ok(read) => read,
            Err(e) => {
                got.error = Some(format!("receiving: {e}"));
                break;
            }
        };
        if read == 0 {
            continue;
        }
        let at = Instant::now();
        let now_ns = stamp::nanos_at(at.into_std());
        let Received {
            tracker, latency, ..
        } = &mut got;
        let mut any = false;
        let drained = conn.drain(|packet, wbuf| match packet {
            Packet::Publish {
                qos,
                pkid,
                topic,
                payload,
            } => {
                match qos {
                    1 => ack(wbuf, Ack::PubAck, pkid),
                    2 => ack(wbuf, Ack::PubRec, pkid),
                    _ => {}
                }
                if let Some((seq, sent_ns)) = stamp::read(payload) {
                    tracker.record(stamp::publisher_of(topic), seq);
                    latency.saturating_record((now_ns.saturating_sub(sent_ns) / 1_000).max(1));
                    any = true;
                }
            }
            Packet::PubRel(pkid) => ack(wbuf, Ack::PubComp, pkid),
            _ => {}
        });
        if any {
            got.last = Some(at);
        }
        if let Err(e) = drained {
            got.error = Some(format!("{e:#}"));
            break;
        }
    }
    // The last acks, if the socket takes them now; then DISCONNECT.
    if !conn.is_written() {
        let _ = conn.io_for(Duration::from_millis(50)).await;
    }
    conn.close().await;
    got
}
