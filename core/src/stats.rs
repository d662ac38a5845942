//! The core's counters (DESIGN.md §9): a snapshot type, and its Prometheus text for the
//! HTTP `/metrics` endpoint. The `$SYS` topics ([`crate::sys`]) publish the same counters.
//!
//! Counters on hot paths (every request, every socket read) are striped ([`Striped`]);
//! per-protocol counters are fixed arrays indexed by [`ProtocolSlot`], so counting takes
//! no lock and allocates nothing. The store write latency is a fixed-bucket histogram
//! ([`latency`]): two relaxed atomic adds per write.

mod latency;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub(crate) use latency::Histogram;
pub use latency::LatencyHistogram;

/// Counters of the core, read with [`Core::stats`](crate::Core::stats).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped: AtomicU64,
    /// Sessions opened since start.
    pub(crate) opened: AtomicU64,
    /// The most sessions seen live at once, updated when a snapshot is taken (as
    /// Mosquitto's `clients/maximum`: short-lived peaks between snapshots may be missed).
    pub(crate) max_sessions: AtomicU64,
    /// Network connections accepted since start (every listener).
    pub(crate) accepted: AtomicU64,
    /// Durable sessions without a connection (parked), now.
    pub(crate) parked: std::sync::atomic::AtomicI64,
    /// Bytes read from network connections (every listener), counted per read.
    pub(crate) bytes_received: Striped,
    /// Bytes written to network connections (every listener), counted per write.
    pub(crate) bytes_sent: Striped,
    /// Requests an inbound layer rejected.
    pub(crate) rejected: AtomicU64,
    /// Of those, the ones over a rate limit (429).
    pub(crate) rate_limited: AtomicU64,
    /// Requests received from sessions, by their protocol ([`ProtocolSlot`]).
    pub(crate) requests: [Striped; COUNTED_PROTOCOLS.len()],
    /// Of those, the writes that publish (`set`, `publish`, an MQTT PUBLISH), by protocol.
    pub(crate) messages_received: [Striped; COUNTED_PROTOCOLS.len()],
    /// Event deliveries queued for sessions, by the recipient's protocol.
    pub(crate) messages_delivered: [Striped; COUNTED_PROTOCOLS.len()],
    /// How long store writes (`set`, `remove`) took, from the core's call to the commit.
    pub(crate) store_writes: Histogram,
}

impl Counters {
    /// Counts a request an inbound layer rejected with `error`.
    pub(crate) fn rejected(&self, error: &crate::Error) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        if error.code() == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request received from a session of `protocol`; `write` when it is a write
    /// that publishes (a `set`).
    pub(crate) fn request(&self, protocol: ProtocolSlot, write: bool) {
        self.requests[protocol.index()].add(1);
        if write {
            self.messages_received[protocol.index()].add(1);
        }
    }
}

/// The protocols the per-protocol counters tell apart, as their `protocol` label (the
/// names of [`SessionInfo::protocol`](crate::SessionInfo::protocol)); a session of any
/// other protocol is counted under `"other"`.
pub const COUNTED_PROTOCOLS: [&str; 6] = ["mqtt", "native", "local", "http", "token", "other"];

/// A protocol's index into the per-protocol counters ([`COUNTED_PROTOCOLS`]), worked out once when
/// a session or subscription is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProtocolSlot(u8);

impl ProtocolSlot {
    /// The slot of the protocol named `protocol`: its place in [`COUNTED_PROTOCOLS`], else
    /// `"other"`'s.
    pub(crate) fn of(protocol: &str) -> Self {
        let last = COUNTED_PROTOCOLS.len() - 1;
        let index = COUNTED_PROTOCOLS[..last]
            .iter()
            .position(|p| *p == protocol)
            .unwrap_or(last);
        Self(index as u8)
    }

    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for ProtocolSlot {
    /// `"other"`.
    fn default() -> Self {
        Self((COUNTED_PROTOCOLS.len() - 1) as u8)
    }
}

/// How many stripes a [`Striped`] counter has.
const STRIPES: usize = 8;

/// One stripe, alone on its cache line(s) so that threads adding to different stripes do
/// not contend.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// A counter added to on hot paths (every socket read and write): each thread adds to its
/// own stripe, so concurrent connections do not fight over one cache line; a read sums
/// the stripes.
#[derive(Debug, Default)]
pub(crate) struct Striped([Stripe; STRIPES]);

impl Striped {
    pub(crate) fn add(&self, n: u64) {
        self.0[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        (self.0.iter())
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// This thread's stripe: threads take stripes in turn as they first count.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// The counters of one protocol's sessions, in a [`Stats`] snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ProtocolStats {
    /// The protocol's name, one of [`COUNTED_PROTOCOLS`].
    pub protocol: &'static str,
    /// Its live sessions (a parked durable session is not live).
    pub sessions: usize,
    /// Requests its sessions sent since start (every data request, subscribe and
    /// unsubscribe: a native `get`, an MQTT PUBLISH or SUBSCRIBE, a REST `GET`).
    pub requests: u64,
    /// Of those, the writes that publish (`set`, `publish`, an MQTT PUBLISH, a REST `PUT`
    /// or `PATCH`): messages in.
    pub messages_received: u64,
    /// Event deliveries queued for its sessions since start: messages out.
    pub messages_delivered: u64,
}

/// Reads one per-protocol counter out of a [`ProtocolStats`] (for the Prometheus text).
type PerProtocol = fn(&ProtocolStats) -> u64;

/// A snapshot of the core's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live sessions (with a connection, or in-process).
    pub sessions: usize,
    /// Durable MQTT sessions kept without a connection (parked, DESIGN.md §6).
    pub sessions_parked: usize,
    /// The most sessions live at once since start (as seen by snapshots).
    pub sessions_max: usize,
    /// Sessions opened since start.
    pub sessions_opened: u64,
    /// Network connections accepted since start, on every listener.
    pub connections_accepted: u64,
    /// Live subscriptions.
    pub subscriptions: usize,
    /// Events published since start.
    pub published: u64,
    /// Event deliveries queued for sessions since start.
    pub delivered: u64,
    /// Event deliveries dropped (full queues) since start.
    pub dropped: u64,
    /// Bytes read from network connections since start, on every listener.
    pub bytes_received: u64,
    /// Bytes written to network connections since start, on every listener.
    pub bytes_sent: u64,
    /// Requests an inbound layer (middleware) rejected since start.
    pub rejected: u64,
    /// Requests rejected for a rate limit (429) since start, included in `rejected`.
    pub rate_limited: u64,
    /// Seconds since the core started.
    pub uptime_secs: u64,
    /// Per protocol, in the order of [`COUNTED_PROTOCOLS`].
    pub protocols: [ProtocolStats; COUNTED_PROTOCOLS.len()],
    /// How long store writes (`set`, `remove`: from the core's call until the store
    /// committed and answered) took since start.
    pub store_writes: LatencyHistogram,
}

impl Stats {
    /// The counters of the protocol named `protocol` (one of [`COUNTED_PROTOCOLS`]).
    pub fn protocol(&self, protocol: &str) -> Option<&ProtocolStats> {
        self.protocols.iter().find(|p| p.protocol == protocol)
    }

    /// The snapshot in the Prometheus text exposition format (version 0.0.4), every name
    /// prefixed `pathmq_`: one gauge or counter per scalar field; the per-protocol
    /// counters with a `protocol` label (`protocol_sessions`, `requests_total`,
    /// `messages_received_total`, `messages_delivered_total`); and the store write
    /// latency as the histogram `store_write_seconds` (`_bucket{le}`, `_sum`, `_count`).
    pub fn to_prometheus(&self) -> String {
        let metrics: [(&str, &str, &str, u64); 14] = [
            ("sessions", "gauge", "Live sessions.", self.sessions as u64),
            (
                "sessions_parked",
                "gauge",
                "Durable sessions kept without a connection.",
                self.sessions_parked as u64,
            ),
            (
                "sessions_max",
                "gauge",
                "The most sessions live at once since start.",
                self.sessions_max as u64,
            ),
            (
                "sessions_opened_total",
                "counter",
                "Sessions opened since start.",
                self.sessions_opened,
            ),
            (
                "connections_accepted_total",
                "counter",
                "Network connections accepted since start.",
                self.connections_accepted,
            ),
            (
                "subscriptions",
                "gauge",
                "Live subscriptions.",
                self.subscriptions as u64,
            ),
            (
                "published_total",
                "counter",
                "Events published since start.",
                self.published,
            ),
            (
                "delivered_total",
                "counter",
                "Event deliveries queued for sessions since start.",
                self.delivered,
            ),
            (
                "dropped_total",
                "counter",
                "Event deliveries dropped because a session's outbound queue was full (the overflow policy).",
                self.dropped,
            ),
            (
                "received_bytes_total",
                "counter",
                "Bytes read from network connections since start.",
                self.bytes_received,
            ),
            (
                "sent_bytes_total",
                "counter",
                "Bytes written to network connections since start.",
                self.bytes_sent,
            ),
            (
                "rejected_total",
                "counter",
                "Requests an inbound layer (middleware) rejected since start.",
                self.rejected,
            ),
            (
                "rate_limited_total",
                "counter",
                "Requests rejected for a rate limit since start (included in rejected_total).",
                self.rate_limited,
            ),
            (
                "uptime_seconds",
                "gauge",
                "Seconds since the broker started.",
                self.uptime_secs,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in metrics {
            let _ = writeln!(
                out,
                "# HELP pathmq_{name} {help}\n# TYPE pathmq_{name} {kind}\npathmq_{name} {value}"
            );
        }
        let by_protocol: [(&str, &str, &str, PerProtocol); 4] = [
            (
                "protocol_sessions",
                "gauge",
                "Live sessions by protocol.",
                |p| p.sessions as u64,
            ),
            (
                "requests_total",
                "counter",
                "Requests received from sessions since start, by protocol.",
                |p| p.requests,
            ),
            (
                "messages_received_total",
                "counter",
                "Writes that publish (set, publish, MQTT PUBLISH, REST PUT and PATCH) received since start, by protocol.",
                |p| p.messages_received,
            ),
            (
                "messages_delivered_total",
                "counter",
                "Event deliveries queued for sessions since start, by the recipient's protocol.",
                |p| p.messages_delivered,
            ),
        ];
        for (name, kind, help, value) in by_protocol {
            let _ = writeln!(
                out,
                "# HELP pathmq_{name} {help}\n# TYPE pathmq_{name} {kind}"
            );
            for protocol in &self.protocols {
                let _ = writeln!(
                    out,
                    "pathmq_{name}{{protocol=\"{}\"}} {}",
                    protocol.protocol,
                    value(protocol)
                );
            }
        }
        self.store_writes.write_prometheus(
            &mut out,
            "pathmq_store_write_seconds",
            "Time store writes (set, remove) took, from the core's call until the store committed and answered.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_help_type_and_value() {
        let stats = Stats {
            sessions: 2,
            sessions_parked: 1,
            sessions_max: 7,
            sessions_opened: 8,
            connections_accepted: 9,
            subscriptions: 3,
            published: 4,
            delivered: 5,
            dropped: 6,
            bytes_received: 10,
            bytes_sent: 11,
            rejected: 13,
            rate_limited: 14,
            uptime_secs: 12,
            protocols: std::array::from_fn(|i| ProtocolStats {
                protocol: COUNTED_PROTOCOLS[i],
                sessions: i,
                requests: 10 * i as u64,
                messages_received: 100 * i as u64,
                messages_delivered: 1000 * i as u64,
            }),
            store_writes: LatencyHistogram::default(),
        };
        let text = stats.to_prometheus();
        assert!(
            text.contains("# TYPE pathmq_sessions gauge\npathmq_sessions 2\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE pathmq_dropped_total counter\npathmq_dropped_total 6\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE pathmq_sent_bytes_total counter\npathmq_sent_bytes_total 11\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE pathmq_protocol_sessions gauge\n\
                 pathmq_protocol_sessions{protocol=\"mqtt\"} 0\n\
                 pathmq_protocol_sessions{protocol=\"native\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\npathmq_requests_total{protocol=\"local\"} 20\n"),
            "{text}"
        );
        assert!(
            text.contains("\npathmq_messages_received_total{protocol=\"http\"} 300\n"),
            "{text}"
        );
        assert!(
            text.contains("\npathmq_messages_delivered_total{protocol=\"other\"} 5000\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE pathmq_store_write_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\npathmq_store_write_seconds_count 0\n"),
            "{text}"
        );
        // 14 scalars (HELP, TYPE, value); 4 labelled metrics (HELP, TYPE, a line per
        // protocol); the histogram (HELP, TYPE, 17 buckets, sum, count).
        let labelled = 2 + COUNTED_PROTOCOLS.len();
        assert_eq!(text.lines().count(), 14 * 3 + 4 * labelled + 21);
    }

    /// Protocol names map to their slot; unknown ones to `other`.
    #[test]
    fn protocol_slots() {
        for (i, name) in COUNTED_PROTOCOLS.iter().enumerate() {
            assert_eq!(ProtocolSlot::of(name).index(), i);
        }
        assert_eq!(
            ProtocolSlot::of("a-plugin").index(),
            COUNTED_PROTOCOLS.len() - 1
        );
        assert_eq!(ProtocolSlot::default(), ProtocolSlot::of("other"));
    }

    /// The striped counter adds up what every thread added.
    #[test]
    fn striped_counter_sums_all_threads() {
        let counter = std::sync::Arc::new(Striped::default());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| counter.add(2)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(counter.sum(), 24_000);
    }
}
