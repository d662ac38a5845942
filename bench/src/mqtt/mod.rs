//! The MQTT scenarios and the minimal, pipelined MQTT 3.1.1 client they drive.
//!
//! | file | what |
//! |---|---|
//! | `packet.rs` | encode the packets a client sends, decode what a broker sends (no I/O) |
//! | `stamp.rs` | the payload: sequence number and send time |
//! | `stream.rs` | the broker's address and the byte stream: TCP, or TLS with `--tls-ca` |
//! | `conn.rs` | one connection: stream + read/write buffers, batched I/O, no task of its own |
//! | `publisher.rs` | pipelined publishing with an in-flight window, optional pacing |
//! | `receiver.rs` | subscribing side: batched acks, sequence and latency accounting |
//! | `fan_in.rs`, `fan_out.rs`, `latency.rs`, `connections.rs` | the scenarios |
//!
//! Each connection is driven by at most one task; nothing is shared on the message path
//! but the clock origin. Timing: a scenario's clock starts after every connection is open
//! and subscribed, so only message flow is measured.

mod conn;
mod connections;
mod fan_in;
mod fan_out;
mod latency;
mod packet;
mod publisher;
mod receiver;
mod stamp;
mod stream;

use anyhow::ensure;
use clap::Args;
use hdrhistogram::Histogram;
use tokio::time::Instant;

pub(crate) use connections::run as connections;
pub(crate) use fan_in::run as fan_in;
pub(crate) use fan_out::run as fan_out;
pub(crate) use latency::run as latency;

use crate::Common;
use crate::report::{Latency, Loss};
use receiver::Received;
pub(crate) use stream::negotiated as tls_negotiated;

/// `fan-in` options.
#[derive(Debug, Args)]
pub(crate) struct FanInArgs {
    /// Publishing connections.
    #[arg(long, default_value_t = 16)]
    pub(crate) publishers: usize,
    /// Messages per publisher.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) messages: u64,
    /// QoS of publishes and of the subscription (0, 1 or 2).
    #[arg(long, default_value_t = 0)]
    pub(crate) qos: u8,
    /// Unacknowledged QoS 1/2 publishes per publisher.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) inflight: usize,
}

/// `fan-out` options.
#[derive(Debug, Args)]
pub(crate) struct FanOutArgs {
    /// Subscribing connections.
    #[arg(long, default_value_t = 100)]
    pub(crate) subscribers: usize,
    /// Messages published (each delivered to every subscriber).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) messages: u64,
    /// QoS of publishes and subscriptions (0, 1 or 2).
    #[arg(long, default_value_t = 0)]
    pub(crate) qos: u8,
    /// Unacknowledged QoS 1/2 publishes.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) inflight: usize,
    /// Subscribers keep their sessions (clean session 0): a broker with durable sessions
    /// stores every QoS 1/2 delivery until it is acknowledged.
    #[arg(long)]
    pub(crate) persistent: bool,
}

/// `latency` options.
#[derive(Debug, Args)]
pub(crate) struct LatencyArgs {
    /// Messages per second.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) rate: u64,
    /// How long to publish, in seconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) seconds: u64,
    /// QoS of publishes and the subscription (0, 1 or 2).
    #[arg(long, default_value_t = 0)]
    pub(crate) qos: u8,
}

/// `connections` options.
#[derive(Debug, Args)]
pub(crate) struct ConnectionsArgs {
    /// Connections to open from this process (at most ~19,000: the fd limit).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) count: usize,
    /// Connections being opened at once. Keep it below the broker's listen backlog
    /// (Mosquitto: 100, tokio's default: 128), or the kernel drops SYNs and the client
    /// retries a second later: that measures the retransmit timer, not the broker.
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Keep the connections open this many seconds after the last one connected (for
    /// measuring from outside, e.g. several processes at once).
    #[arg(long, default_value_t = 0)]
    pub(crate) hold: u64,
}

/// How many connections are opened (CONNECT + SUBSCRIBE) at once during setup.
const SETUP_CONCURRENCY: usize = 64;

/// A client id unique to this process: several bench processes may share a broker.
fn client_id(role: &str, i: usize) -> String {
    format!("pmqb{}-{role}{i}", std::process::id())
}

fn check_qos(qos: u8) -> anyhow::Result<()> {
    ensure!(qos <= 2, "--qos must be 0, 1 or 2, not {qos}");
    Ok(())
}

/// Raises this process's open-file soft limit to the hard limit (each connection is a
/// file descriptor); returns the limit now in force.
fn raise_nofile() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// The deadline of a phase that starts now.
fn deadline(common: &Common) -> Instant {
    Instant::now() + std::time::Duration::from_secs(common.timeout)
}

/// What all receivers of a scenario saw together.
struct Merged {
    /// Distinct messages received, summed over receivers.
    received: u64,
    loss: Loss,
    latency: Histogram<u64>,
    /// The last arrival at any receiver.
    last: Option<Instant>,
    timed_out: bool,
    errors: Vec<String>,
}

/// Sums `all`, each receiver expecting `per_publisher` messages from each of `publishers`.
fn merge(all: Vec<Received>, publishers: usize, per_publisher: u64) -> Merged {
    let mut merged = Merged {
        received: 0,
        loss: Loss::default(),
        latency: receiver::histogram(3),
        last: None,
        timed_out: false,
        errors: Vec::new(),
    };
    for r in all {
        let loss = r.tracker.loss(publishers, per_publisher);
        merged.received += r.tracker.received();
        merged.loss.lost += loss.lost;
        merged.loss.duplicated += loss.duplicated;
        merged.loss.out_of_order += loss.out_of_order;
        merged
            .latency
            .add(&r.latency)
            .expect("histograms with the same bounds add up");
        merged.last = merged.last.max(r.last);
        merged.timed_out |= r.timed_out;
        merged.errors.extend(r.error);
    }
    merged
}

impl Merged {
    fn latency(&self) -> Option<Latency> {
        (!self.latency.is_empty()).then(|| Latency::from_histogram(&self.latency))
    }
}

/// Adds the publishers' figures to `extra`: what was sent and acknowledged, and how long
/// publishing took (next to the receive time it shows a broker that acknowledges before it
/// delivers, letting publishers run ahead).
fn publisher_extra(
    extra: &mut serde_json::Map<String, serde_json::Value>,
    published: &[publisher::Published],
    qos: u8,
    start: Instant,
) -> Vec<String> {
    let sent: u64 = published.iter().map(|p| p.sent).sum();
    extra.insert("published".into(), sent.into());
    if qos > 0 {
        extra.insert(
            "acknowledged".into(),
            published.iter().map(|p| p.acked).sum::<u64>().into(),
        );
    }
    if published.iter().all(|p| p.done.is_some()) {
        let done = published
            .iter()
            .filter_map(|p| p.done)
            .max()
            .unwrap_or(start);
        let secs = done.duration_since(start).as_secs_f64();
        extra.insert("publish_seconds".into(), round3(secs).into());
    }
    published.iter().filter_map(|p| p.error.clone()).collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Records the end state of a run in `extra`: errors (first few) and a deadline hit.
fn finish_extra(
    extra: &mut serde_json::Map<String, serde_json::Value>,
    timed_out: bool,
    mut errors: Vec<String>,
) {
    if timed_out {
        extra.insert("timed_out".into(), true.into());
    }
    if !errors.is_empty() {
        extra.insert("error_count".into(), errors.len().into());
        errors.truncate(3);
        extra.insert("errors".into(), errors.into());
    }
}
