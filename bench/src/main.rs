//! `pathmq-bench`: a load generator for any MQTT broker (and pathmq's native protocol),
//! like `redis-benchmark` or `emqtt-bench`. Each subcommand runs one scenario and prints
//! one report (`--json` for one JSON line): throughput, latency percentiles, lost /
//! duplicated / out-of-order counts, the generator's own CPU time (to show when it is the
//! bottleneck) and, with `--pid`, the broker's memory.
//!
//! ```text
//! pathmq-bench fan-in --publishers 16 --qos 1
//! pathmq-bench fan-out --subscribers 1000
//! pathmq-bench latency --rate 1000 --seconds 10
//! pathmq-bench connections --count 10000 --pid $(pidof pathmq)
//! pathmq-bench --port 8883 --tls-ca cert.pem fan-in --publishers 16 --qos 1
//! pathmq-bench native-set --pipeline 256 --port 55000
//! ```
//! `bench/compare.sh` runs every scenario against pathmq and Mosquitto side by side.

#![allow(clippy::print_stdout)]

mod mqtt;
mod native;
mod report;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A load generator for MQTT brokers and pathmq's native protocol.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

/// Options every scenario takes.
#[derive(Debug, Args, Clone)]
pub(crate) struct Common {
    /// Broker host (loopback only: this is a load generator).
    #[arg(long, global = true, default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// Broker port (MQTT for the MQTT scenarios, HTTP/WebSocket for the native ones).
    #[arg(long, global = true, default_value_t = 1883)]
    pub(crate) port: u16,
    /// The broker's process id: its resident memory is read from /proc/<pid>/status.
    #[arg(long, global = true)]
    pub(crate) pid: Option<u32>,
    /// Print one JSON line instead of the human report.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Payload size in bytes (at least 16: sequence number and timestamp).
    #[arg(long, global = true, default_value_t = 64)]
    pub(crate) payload: usize,
    /// Give up on a phase after this many seconds (the report counts what was lost).
    #[arg(long, global = true, default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Topic / path prefix, so runs do not see each other's messages.
    #[arg(long, global = true, default_value = "bench")]
    pub(crate) prefix: String,
    /// MQTT over TLS: every connection does a TLS handshake, trusting only the
    /// certificates in this PEM file (a CA, or the broker's self-signed certificate).
    /// MQTT scenarios only.
    #[arg(long, global = true, value_name = "FILE.pem")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// With --tls-ca: the name the broker's certificate must be valid for.
    #[arg(long, global = true, default_value = "localhost")]
    pub(crate) tls_server_name: String,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Many publishers → one subscriber on one topic each; reports msg/s received.
    FanIn(mqtt::FanInArgs),
    /// One publisher → many subscribers of one topic; reports deliveries/s and latency.
    FanOut(mqtt::FanOutArgs),
    /// One publisher at a fixed rate → one subscriber; latency percentiles.
    Latency(mqtt::LatencyArgs),
    /// Open many idle connections: connection rate and broker memory per connection.
    Connections(mqtt::ConnectionsArgs),
    /// Native protocol: stored `set` throughput over WebSocket (sequential or pipelined).
    NativeSet(native::SetArgs),
    /// Native protocol: `get` throughput over WebSocket.
    NativeGet(native::GetArgs),
    /// Native protocol: stored sets fanned out to WebSocket subscribers; events/s.
    NativeFanout(native::FanoutArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(
        cli.common.payload >= 16,
        "--payload must be at least 16 bytes"
    );
    let native = matches!(
        cli.scenario,
        Scenario::NativeSet(_) | Scenario::NativeGet(_) | Scenario::NativeFanout(_)
    );
    anyhow::ensure!(
        !(native && cli.common.tls_ca.is_some()),
        "--tls-ca applies to the MQTT scenarios only"
    );
    let cpu_before = report::cpu_seconds();
    // The whole run's broker CPU time, for scenarios that do not measure their own phase.
    let broker_cpu = report::BrokerCpu::start(cli.common.pid);
    let mut report = match &cli.scenario {
        Scenario::FanIn(args) => mqtt::fan_in(&cli.common, args).await?,
        Scenario::FanOut(args) => mqtt::fan_out(&cli.common, args).await?,
        Scenario::Latency(args) => mqtt::latency(&cli.common, args).await?,
        Scenario::Connections(args) => mqtt::connections(&cli.common, args).await?,
        Scenario::NativeSet(args) => native::set(&cli.common, args).await?,
        Scenario::NativeGet(args) => native::get(&cli.common, args).await?,
        Scenario::NativeFanout(args) => native::fanout(&cli.common, args).await?,
    };
    report.bench_cpu_seconds = report::cpu_seconds() - cpu_before;
    if let Some(tls) = mqtt::tls_negotiated() {
        report.extra.insert("tls".into(), tls.into());
    }
    if !report.extra.contains_key("broker_cpu_seconds") {
        broker_cpu.finish(&mut report.extra);
    }
    if let (Some(pid), None) = (cli.common.pid, report.broker_rss_kib) {
        report.broker_rss_kib = report::rss_kib(pid);
    }
    report.print(cli.common.json);
    Ok(())
}
