//! The core's counters (DESIGN.md §9): a snapshot type, and its Prometheus text for the
//! HTTP `/metrics` endpoint.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

/// Counters of the core, read with [`Core::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

/// A snapshot of the core's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live sessions.
    pub sessions: usize,
    /// Live subscriptions.
    pub subscriptions: usize,
    /// Events published since start.
    pub published: u64,
    /// Event deliveries queued for sessions since start.
    pub delivered: u64,
    /// Event deliveries dropped (full queues) since start.
    pub dropped: u64,
}

impl Stats {
    /// The snapshot in the Prometheus text exposition format (version 0.0.4): one gauge or
    /// counter per field, prefixed `pathmq_`.
    pub fn to_prometheus(&self) -> String {
        let metrics: [(&str, &str, &str, u64); 5] = [
            ("sessions", "gauge", "Live sessions.", self.sessions as u64),
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
        ];
        let mut out = String::new();
        for (name, kind, help, value) in metrics {
            let _ = writeln!(
                out,
                "# HELP pathmq_{name} {help}\n# TYPE pathmq_{name} {kind}\npathmq_{name} {value}"
            );
        }
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
            subscriptions: 3,
            published: 4,
            delivered: 5,
            dropped: 6,
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
        assert_eq!(text.lines().count(), 15);
    }
}
