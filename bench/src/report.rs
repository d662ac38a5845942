//! What a scenario measured, printed as one human line block or one JSON object per run.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The result of one scenario run.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    /// The scenario, e.g. `fan-in`.
    pub(crate) scenario: String,
    /// The parameters that define the run, e.g. `publishers=16 qos=0 payload=64`.
    pub(crate) params: String,
    /// Messages (or operations) the scenario counted as done: deliveries for fan-out,
    /// messages received for fan-in, answered requests for native scenarios.
    pub(crate) count: u64,
    /// Wall time of the measured phase, in seconds.
    pub(crate) seconds: f64,
    /// `count / seconds`.
    pub(crate) rate: f64,
    /// What `rate` counts: "msg/s", "deliveries/s", "sets/s", …
    pub(crate) unit: String,
    /// Latency percentiles in microseconds, when the scenario measures latency.
    pub(crate) latency_us: Option<Latency>,
    /// Sequence accounting across all receivers.
    pub(crate) loss: Option<Loss>,
    /// CPU time (user + system) this load generator used during the run, in seconds; a
    /// value close to `seconds × cores` means the generator, not the broker, was the
    /// bottleneck.
    pub(crate) bench_cpu_seconds: f64,
    /// The broker's resident memory after the measured phase, in KiB (`--pid`).
    pub(crate) broker_rss_kib: Option<u64>,
    /// Free-form extra figures (e.g. `per_connection_kib`).
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: u64,
    pub(crate) p99: u64,
    pub(crate) max: u64,
    pub(crate) samples: u64,
}

impl Latency {
    /// Percentiles of a histogram of microseconds.
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
            samples: h.len(),
        }
    }
}

/// Lost, duplicated and out-of-order messages, summed over receivers.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(crate) struct Loss {
    /// Messages expected and never received.
    pub(crate) lost: u64,
    /// Messages received more than once.
    pub(crate) duplicated: u64,
    /// Messages that arrived after a later one from the same publisher.
    pub(crate) out_of_order: u64,
}

impl Report {
    /// A report for `scenario` with `params`, whose rate is `count / elapsed`.
    pub(crate) fn new(
        scenario: &str,
        params: String,
        unit: &str,
        count: u64,
        elapsed: Duration,
    ) -> Self {
        let seconds = elapsed.as_secs_f64();
        Self {
            scenario: scenario.to_owned(),
            params,
            count,
            seconds,
            rate: if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            },
            unit: unit.to_owned(),
            ..Self::default()
        }
    }

    /// Prints the report: one JSON line with `json`, otherwise a short human block.
    pub(crate) fn print(&self, json: bool) {
        if json {
            println!("{}", serde_json::to_string(self).unwrap_or_default());
            return;
        }
        println!("{} [{}]", self.scenario, self.params);
        println!(
            "  {:.0} {} ({} in {:.3} s)",
            self.rate, self.unit, self.count, self.seconds
        );
        if let Some(l) = &self.latency_us {
            println!(
                "  latency µs: p50 {} p99 {} max {} ({} samples)",
                l.p50, l.p99, l.max, l.samples
            );
        }
        if let Some(l) = &self.loss {
            println!(
                "  lost {} duplicated {} out-of-order {}",
                l.lost, l.duplicated, l.out_of_order
            );
        }
        println!("  bench CPU {:.2} s", self.bench_cpu_seconds);
        if let Some(rss) = self.broker_rss_kib {
            println!("  broker RSS {rss} KiB");
        }
        for (k, v) in &self.extra {
            println!("  {k}: {v}");
        }
    }
}

/// Counts lost, duplicated and out-of-order messages of one receiver, per publisher.
/// Sequence numbers start at 0 and increase by one per message of a publisher.
#[derive(Debug, Default)]
pub(crate) struct SequenceTracker {
    /// Per publisher: the highest sequence seen plus one, and a bitmap of what was seen.
    publishers: Vec<(u64, Vec<u64>)>,
    duplicated: u64,
    out_of_order: u64,
    received: u64,
}

impl SequenceTracker {
    /// Records message `seq` of `publisher`.
    pub(crate) fn record(&mut self, publisher: usize, seq: u64) {
        if self.publishers.len() <= publisher {
            self.publishers.resize_with(publisher + 1, Default::default);
        }
        let (next, seen) = &mut self.publishers[publisher];
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if seen.len() <= word {
            seen.resize(word + 1, 0);
        }
        if seen[word] & (1 << bit) != 0 {
            self.duplicated += 1;
            return;
        }
        seen[word] |= 1 << bit;
        self.received += 1;
        if seq + 1 < *next {
            self.out_of_order += 1;
        } else {
            *next = seq + 1;
        }
    }

    /// Distinct messages received.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// The accounting against `expected_per_publisher` messages from each of
    /// `publishers` publishers.
    pub(crate) fn loss(&self, publishers: usize, expected_per_publisher: u64) -> Loss {
        let expected = publishers as u64 * expected_per_publisher;
        Loss {
            lost: expected.saturating_sub(self.received),
            duplicated: self.duplicated,
            out_of_order: self.out_of_order,
        }
    }
}

/// CPU time (user + system) this process has used, in seconds, from `/proc/self/stat`.
pub(crate) fn cpu_seconds() -> f64 {
    proc_stat_cpu("/proc/self/stat").unwrap_or(0.0)
}

/// CPU time (user + system) process `pid` has used, in seconds; `None` when it cannot be
/// read (no such process, not Linux).
pub(crate) fn process_cpu_seconds(pid: u32) -> Option<f64> {
    proc_stat_cpu(&format!("/proc/{pid}/stat"))
}

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`): 100 on Linux.
const CLOCK_TICKS: f64 = 100.0;

fn proc_stat_cpu(file: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(file).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after it.
    let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / CLOCK_TICKS)
}

/// The broker's CPU time over a measured phase: started before it, read after it.
#[derive(Debug)]
pub(crate) struct BrokerCpu {
    pid: Option<u32>,
    before: Option<f64>,
}

impl BrokerCpu {
    /// Reads the broker's CPU time now, if `--pid` was given.
    pub(crate) fn start(pid: Option<u32>) -> Self {
        Self {
            pid,
            before: pid.and_then(process_cpu_seconds),
        }
    }

    /// The broker's CPU seconds since [`BrokerCpu::start`], into `extra` as
    /// `broker_cpu_seconds`.
    pub(crate) fn finish(&self, extra: &mut serde_json::Map<String, serde_json::Value>) {
        if let (Some(pid), Some(before)) = (self.pid, self.before)
            && let Some(after) = process_cpu_seconds(pid)
        {
            let used = ((after - before) * 100.0).round() / 100.0;
            extra.insert("broker_cpu_seconds".into(), used.into());
        }
    }
}

/// Resident memory of process `pid`, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_loss_duplicates_and_reordering() {
        let mut t = SequenceTracker::default();
        for seq in [0, 1, 3, 2, 3, 5] {
            t.record(0, seq);
        }
        t.record(1, 0);
        let loss = t.loss(2, 6);
        assert_eq!(t.received(), 6);
        assert_eq!(loss.duplicated, 1);
        assert_eq!(loss.out_of_order, 1, "2 after 3");
        assert_eq!(loss.lost, 12 - 6);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(cpu_seconds() >= 0.0);
        assert!(process_cpu_seconds(std::process::id()).is_some());
        assert!(rss_kib(std::process::id()).is_some());
    }
}
