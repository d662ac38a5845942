//! The native-protocol scenarios (`reference/happn-3-wire.md`), over WebSocket at
//! `ws://<host>:<port>/`: stored `set` throughput, `get` throughput, and stored sets fanned
//! out to subscribers as events.
//!
//! | module | job |
//! |---|---|
//! | `wire` | request templates, reading answers and event stamps (no I/O) |
//! | `client` | connect and log in; the pipelined request driver and its tally |
//! | `probe` | the broker's `/metrics` counters and CPU time, best effort |
//! | `set`, `get`, `fanout` | one scenario each |
//!
//! Every phase (connecting, measuring, draining events) ends by `--timeout`; what did not
//! happen in time is reported (unanswered requests, lost events), not raised as an error.

mod client;
mod fanout;
mod get;
mod probe;
mod set;
mod wire;

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures_util::{StreamExt as _, TryStreamExt as _};

pub(crate) use self::fanout::fanout;
pub(crate) use self::get::get;
pub(crate) use self::set::set;

use self::client::{Tally, Ws};
use crate::Common;
use crate::report::{Latency, Report};

/// `native-set` options.
#[derive(Debug, Args)]
pub(crate) struct SetArgs {
    /// Sets in flight per connection (1: sequential, each waits for its answer).
    #[arg(long, default_value_t = 256)]
    pub(crate) pipeline: usize,
    /// Connections.
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// Sets per connection.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) count: u64,
}

/// `native-get` options.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// Gets in flight per connection.
    #[arg(long, default_value_t = 256)]
    pub(crate) pipeline: usize,
    /// Connections.
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// Gets per connection.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) count: u64,
    /// Paths set before the measured phase, then read round-robin.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) keys: u64,
}

/// `native-fanout` options.
#[derive(Debug, Args)]
pub(crate) struct FanoutArgs {
    /// Subscribing WebSocket connections.
    #[arg(long, default_value_t = 50)]
    pub(crate) subscribers: usize,
    /// Stored sets (each an event to every subscriber).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) count: u64,
    /// Sets in flight on the writing connection.
    #[arg(long, default_value_t = 256)]
    pub(crate) pipeline: usize,
    /// Paths the writer cycles through (`/<prefix>/fan/0` …), all under the subscribed
    /// `/<prefix>/fan/*`.
    #[arg(long, default_value_t = 1)]
    pub(crate) paths: u64,
}

/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 64;

/// `--timeout` as a duration.
fn phase_timeout(common: &Common) -> Duration {
    Duration::from_secs(common.timeout)
}

/// `/<prefix>/<kind>/`: where a scenario's paths live.
fn path_prefix(common: &Common, kind: &str) -> String {
    format!("/{}/{kind}/", common.prefix.trim_matches('/'))
}

/// Opens and logs in `n` connections, [`CONNECT_CONCURRENCY`] at a time, all within
/// `--timeout`.
///
/// # Errors
/// Any connection failed, or the phase took too long.
async fn connect_all(common: &Common, n: usize) -> anyhow::Result<Vec<Ws>> {
    let open = futures_util::stream::iter(0..n)
        .map(|_| client::connect(common))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect::<Vec<Ws>>();
    tokio::time::timeout(phase_timeout(common), open)
        .await
        .with_context(|| format!("connecting {n} connections took over --timeout"))?
}

/// The report of a pipelined phase that began at `start_ns` (see [`wire::now_ns`]): the
/// rate counts ok answers up to the last answer.
fn pipelined_report(
    scenario: &str,
    params: String,
    unit: &str,
    tally: &Tally,
    start_ns: u64,
) -> Report {
    let end_ns = if tally.last_answer_ns > start_ns {
        tally.last_answer_ns
    } else {
        wire::now_ns()
    };
    let elapsed = Duration::from_nanos(end_ns - start_ns);
    let mut report = Report::new(scenario, params, unit, tally.answered, elapsed);
    if !tally.latency.is_empty() {
        report.latency_us = Some(Latency::from_histogram(&tally.latency));
    }
    client::extras(tally, &mut report.extra);
    report
}
