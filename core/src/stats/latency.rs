//! A latency histogram with fixed buckets, cheap enough for the write path: an
//! observation is two relaxed atomic adds (its bucket and the sum), no lock, no
//! allocation. Buckets hold their own counts; a snapshot makes them cumulative for
//! Prometheus (`_bucket{le}`), and the total count is their sum.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the buckets, in microseconds: 100 µs to 10 s. A last, unbounded
/// bucket (`+Inf`) takes the rest.
const BOUNDS_MICROS: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// How many buckets there are: one per bound, and `+Inf`.
const BUCKETS: usize = BOUNDS_MICROS.len() + 1;

/// The live histogram (in [`super::Counters`]).
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Observations per bucket (not cumulative).
    counts: [AtomicU64; BUCKETS],
    /// The sum of all observations, in microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Counts one observation of `elapsed`.
    pub(crate) fn observe(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The counts so far. Taken bucket by bucket while others may be counting: a snapshot
    /// may miss an observation in flight, never count one twice.
    pub(crate) fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a latency histogram (in [`Stats`](super::Stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// Observations per bucket, not cumulative: `counts[i]` were at most
    /// [`LatencyHistogram::BOUNDS_MICROS`]`[i]` µs and more than the bound before it; the
    /// last entry counts those above the highest bound.
    pub counts: [u64; BUCKETS],
    /// The sum of all observations, in microseconds.
    pub sum_micros: u64,
}

impl LatencyHistogram {
    /// The upper bounds of the buckets, in microseconds (100 µs to 10 s).
    pub const BOUNDS_MICROS: [u64; BUCKETS - 1] = BOUNDS_MICROS;

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0, |sum, n| sum.wrapping_add(*n))
    }

    /// Appends the histogram in the Prometheus text format: `# HELP`, `# TYPE … histogram`,
    /// one cumulative `<name>_bucket{le="<seconds>"}` line per bound and `+Inf`, then
    /// `<name>_sum` (seconds) and `<name>_count`.
    pub(crate) fn write_prometheus(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative = cumulative.wrapping_add(*count);
            match BOUNDS_MICROS.get(i) {
                Some(bound) => {
                    let seconds = *bound as f64 / 1e6;
                    let _ = writeln!(out, "{name}_bucket{{le=\"{seconds}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_micros as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_render_cumulatively() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(100)); // the first bound is inclusive
        histogram.observe(Duration::from_micros(101));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(60)); // above every bound
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count(), 4);
        assert_eq!(snapshot.counts[0], 1);
        assert_eq!(snapshot.counts[1], 1);
        assert_eq!(snapshot.counts[5], 1, "3 ms is in the 5 ms bucket");
        assert_eq!(snapshot.counts[BUCKETS - 1], 1);
        assert_eq!(snapshot.sum_micros, 100 + 101 + 3_000 + 60_000_000);

        let mut text = String::new();
        snapshot.write_prometheus(&mut text, "t_seconds", "Test.");
        assert!(text.starts_with("# HELP t_seconds Test.\n# TYPE t_seconds histogram\n"));
        assert!(
            text.contains("\nt_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("\nt_seconds_bucket{le=\"0.00025\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("\nt_seconds_bucket{le=\"0.005\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("\nt_seconds_bucket{le=\"10\"} 3\n"), "{text}");
        assert!(
            text.contains("\nt_seconds_bucket{le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("\nt_seconds_sum 60.003201\n"), "{text}");
        assert!(text.ends_with("\nt_seconds_count 4\n"), "{text}");
    }
}
