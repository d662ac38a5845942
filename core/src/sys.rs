//! `$SYS` topics (DESIGN.md §3, §9; `docs/MQTT.md`, "$SYS topics"): the broker's
//! statistics under `$SYS/broker/...`, with Mosquitto's topic names, published every
//! [`CoreConfig::sys_interval`](crate::CoreConfig::sys_interval) by one task in
//! [`Core::tasks`] that stops with the shutdown token.
//!
//! Why it is built this way:
//!
//! * Values are plain text (`"42"`, `"3600 seconds"`, `"0.25"`), as Mosquitto's, published
//!   at QoS 0 through [`Core::publish`]: never stored. In pathmq a retained message is a
//!   stored record, and rewriting some fifty records every interval would wear the flash
//!   of a small device (a Raspberry Pi's SD card) for values that mean nothing after a
//!   restart anyway.
//! * Mosquitto's `$SYS` messages are retained, so the latest value of each topic is kept
//!   in memory ([`SysValues`]) and [`Session::retained`](crate::Session::retained) adds
//!   it: a new `$SYS/#` subscriber gets the current values at once, as retained messages.
//! * A topic is published again only when its value changed (as Mosquitto does); the
//!   uptime changes every interval.
//! * Only subscriptions naming `$SYS` get them: wildcards at the first level never match
//!   a `$` topic (MQTT 4.7.2, [`crate::Pattern`] and the router). Clients cannot write
//!   under `/$SYS` (the pipeline refuses it, 403 / MQTT 5 0x87); reading and subscribing
//!   follow the usual permissions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::time::MissedTickBehavior;
use tracing::Instrument as _;

use crate::error::Error;
use crate::event::{Event, EventKind};
use crate::path::Path;
use crate::pattern::{Glob, Pattern, Segment};
use crate::payload::{Format, Payload, Record, now_ms};
use crate::pipeline::Core;
use crate::request::Consistency;
use crate::stats::Stats;

/// Where the `$SYS` topics live, as a path.
pub(crate) const SYS_PREFIX: &str = "/$SYS";

/// Whether `path` is `/$SYS` or under it.
pub(crate) fn is_sys(path: &str) -> bool {
    path.strip_prefix(SYS_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The latest value of each `$SYS` topic: what a new subscriber receives as retained
/// messages. Written once per interval by the `$SYS` task, read by subscriptions that
/// name `$SYS`; nothing else touches it.
#[derive(Debug, Default)]
pub(crate) struct SysValues {
    records: RwLock<BTreeMap<Path, Record>>,
}

impl SysValues {
    /// The values `pattern` matches, ordered by path: none unless its first level is
    /// the literal `$SYS`, which a wildcard never matches (MQTT 4.7.2).
    pub(crate) fn matching(&self, pattern: &Pattern) -> Vec<Record> {
        let names_sys =
            matches!(pattern.segments().first(), Some(Segment::Literal(s)) if &**s == "$SYS");
        if !names_sys {
            return Vec::new();
        }
        let records = self.records.read();
        (records.values())
            .filter(|r| pattern.matches(&r.path, None))
            .cloned()
            .collect()
    }

    /// Sets `path` to `value`: the new record, or `None` when the value is unchanged.
    fn update(&self, path: Path, value: String, now: u64) -> Option<Record> {
        let mut records = self.records.write();
        let created = match records.get(&path) {
            Some(old) if old.payload.bytes == value.as_bytes() => return None,
            Some(old) => old.created,
            None => now,
        };
        let record = Record {
            path: path.clone(),
            payload: Payload {
                format: Format::Text,
                bytes: value.into(),
            },
            created,
            modified: now,
            modified_by: None,
            properties: None,
        };
        records.insert(path, record.clone());
        Some(record)
    }
}

/// Starts the `$SYS` task: an update at once, then one every
/// [`CoreConfig::sys_interval`](crate::CoreConfig::sys_interval). It holds the core only
/// while updating, and ends when the shutdown token is cancelled or the core is gone.
pub(crate) fn spawn(core: &Core) {
    let period = core.config().sys_interval;
    let weak = Arc::downgrade(&core.inner);
    let shutdown = core.shutdown_token().clone();
    let task = async move {
        let mut ticker = tokio::time::interval(period);
        // A late update (a slow store count) does not cause a burst of catch-up updates.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut tree = SysTree::default();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let Some(inner) = weak.upgrade() else { return };
            let core = Core { inner };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tree.update(&core) => {}
            }
        }
    };
    core.tasks()
        .spawn(task.instrument(tracing::info_span!("sys", interval_s = period.as_secs())));
}

/// The `load/...` topics: Mosquitto's names, each a moving average of a counter's rate
/// per minute over 1, 5 and 15 minutes.
const LOADS: [&str; 9] = [
    "messages/received",
    "messages/sent",
    "publish/received",
    "publish/sent",
    "publish/dropped",
    "bytes/received",
    "bytes/sent",
    "connections",
    "sockets",
];

/// The averaging windows of the `load/...` topics: name and length in seconds.
const WINDOWS: [(&str, f64); 3] = [("1min", 60.0), ("5min", 300.0), ("15min", 900.0)];

/// The `$SYS` task's own state between updates.
#[derive(Debug, Default)]
struct SysTree {
    /// Events this task published: the core counts them as published, but they are not
    /// messages the broker received.
    own: u64,
    /// When the last update ran, and the counters behind [`LOADS`] then.
    last: Option<(Instant, [u64; LOADS.len()])>,
    /// The current moving averages, per load and window.
    loads: [[f64; WINDOWS.len()]; LOADS.len()],
}

impl SysTree {
    /// Reads the counters and publishes every topic whose value changed.
    async fn update(&mut self, core: &Core) {
        let stats = core.stats();
        // Events published before this update, this task's earlier ones taken out.
        let received = stats.published.saturating_sub(self.own);
        let mut values = topics(&stats, received);
        match stored_counts(core).await {
            Ok((all, reserved)) => {
                values.push(("store/messages/count".into(), all.to_string()));
                let retained = all.saturating_sub(reserved);
                values.push(("retained messages/count".into(), retained.to_string()));
            }
            Err(error) => tracing::debug!(%error, "counting stored records for $SYS failed"),
        }
        let totals = [
            received,
            stats.delivered,
            received,
            stats.delivered,
            stats.dropped,
            stats.bytes_received,
            stats.bytes_sent,
            stats.sessions_opened,
            stats.connections_accepted,
        ];
        self.average(Instant::now(), totals);
        for (i, name) in LOADS.iter().enumerate() {
            for (j, (window, _)) in WINDOWS.iter().enumerate() {
                let value = format!("{:.2}", self.loads[i][j]);
                values.push((format!("load/{name}/{window}"), value));
            }
        }
        let now = now_ms();
        for (topic, value) in values {
            self.publish(core, &topic, value, now);
        }
    }

    /// Folds the counters' rates since the last update into the moving averages, as
    /// Mosquitto does: `load = rate + e^(-Δt/window) · (load − rate)`, rate per minute.
    fn average(&mut self, now: Instant, totals: [u64; LOADS.len()]) {
        if let Some((then, before)) = self.last {
            let elapsed = now.duration_since(then).as_secs_f64();
            if elapsed > 0.0 {
                for (i, load) in self.loads.iter_mut().enumerate() {
                    let per_minute = totals[i].saturating_sub(before[i]) as f64 * 60.0 / elapsed;
                    for (value, (_, window)) in load.iter_mut().zip(WINDOWS) {
                        let decay = (-elapsed / window).exp();
                        *value = per_minute + decay * (*value - per_minute);
                    }
                }
            }
        }
        self.last = Some((now, totals));
    }

    /// Publishes `value` on `$SYS/broker/<topic>` when it differs from the last one.
    fn publish(&mut self, core: &Core, topic: &str, value: String, now: u64) {
        let path = match Path::from_topic(&format!("$SYS/broker/{topic}")) {
            Ok(path) => path,
            Err(error) => {
                tracing::warn!(%error, topic, "not a $SYS topic");
                return;
            }
        };
        // The value is kept before it is published: a subscription made meanwhile gets it
        // either as a retained message or as the event, never neither.
        let Some(record) = core.inner.sys.update(path, value, now) else {
            return;
        };
        let event = Event::new(
            EventKind::Set,
            record.path,
            record.payload,
            record.created,
            record.modified,
            None,
            None,
            Consistency::Queued,
            None,
            0,
        );
        core.publish(Arc::new(event));
        self.own += 1;
    }
}

/// The topics read straight from the counters (below `$SYS/broker/`), with their values.
/// `received` is the number of messages clients published.
fn topics(stats: &Stats, received: u64) -> Vec<(String, String)> {
    let count = |topic: &str, n: u64| (topic.to_owned(), n.to_string());
    vec![
        (
            "version".into(),
            format!("pathmq version {}", env!("CARGO_PKG_VERSION")),
        ),
        ("uptime".into(), format!("{} seconds", stats.uptime_secs)),
        count("clients/connected", stats.sessions as u64),
        count("clients/disconnected", stats.sessions_parked as u64),
        count(
            "clients/total",
            (stats.sessions + stats.sessions_parked) as u64,
        ),
        count("clients/maximum", stats.sessions_max as u64),
        // pathmq counts application messages only: Mosquitto's `messages/*` also count
        // control packets (CONNECT, PINGREQ, acknowledgements).
        count("messages/received", received),
        count("messages/sent", stats.delivered),
        count("publish/messages/received", received),
        count("publish/messages/sent", stats.delivered),
        count("publish/messages/dropped", stats.dropped),
        count("bytes/received", stats.bytes_received),
        count("bytes/sent", stats.bytes_sent),
        count("subscriptions/count", stats.subscriptions as u64),
    ]
}

/// How many records the store holds, and how many of them are the broker's own under
/// `/_SYSTEM` (users, groups), which no client can read.
async fn stored_counts(core: &Core) -> Result<(u64, u64), Error> {
    let all = core.store().count(&Glob::parse("*")?).await?;
    let reserved = Glob::parse(&format!("{}/*", crate::reserved::RESERVED_PREFIX))?;
    let reserved = core.store().count(&reserved).await?;
    Ok((all, reserved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_paths() {
        for (path, sys) in [
            ("/$SYS", true),
            ("/$SYS/broker/uptime", true),
            ("/$SYSTEM", false),
            ("/a/$SYS", false),
            ("//$SYS", false),
        ] {
            assert_eq!(is_sys(path), sys, "{path}");
        }
    }

    /// Guards the retained overlay: only patterns naming `$SYS` see the values, an
    /// unchanged value is not published again, a changed one keeps its creation time.
    #[test]
    fn values_are_kept_and_matched_by_sys_patterns_only() {
        let values = SysValues::default();
        let uptime = Path::from_topic("$SYS/broker/uptime").unwrap();
        let first = values.update(uptime.clone(), "1 seconds".into(), 10);
        assert!(first.is_some());
        assert_eq!(values.update(uptime.clone(), "1 seconds".into(), 20), None);
        let second = values
            .update(uptime.clone(), "2 seconds".into(), 30)
            .unwrap();
        assert_eq!((second.created, second.modified), (10, 30));
        let clients = Path::from_topic("$SYS/broker/clients/connected").unwrap();
        values.update(clients, "3".into(), 30);

        let topics = |filter: &str| -> Vec<String> {
            let pattern = Pattern::mqtt(filter).unwrap();
            (values.matching(&pattern).iter())
                .map(|r| r.path.to_topic().to_owned())
                .collect()
        };
        assert_eq!(
            topics("$SYS/#"),
            ["$SYS/broker/clients/connected", "$SYS/broker/uptime"]
        );
        assert_eq!(topics("$SYS/broker/uptime"), ["$SYS/broker/uptime"]);
        assert_eq!(topics("$SYS/+/uptime"), ["$SYS/broker/uptime"]);
        assert!(topics("#").is_empty(), "MQTT 4.7.2");
        assert!(topics("+/broker/uptime").is_empty(), "MQTT 4.7.2");
        assert!(topics("a/#").is_empty());
    }

    /// The moving averages follow Mosquitto's formula: a steady rate converges to itself.
    #[test]
    fn loads_average_the_rate_per_minute() {
        let mut tree = SysTree::default();
        let start = Instant::now();
        tree.average(start, [0; LOADS.len()]);
        // A minute with 120 messages received.
        let mut totals = [0; LOADS.len()];
        totals[0] = 120;
        tree.average(start + std::time::Duration::from_secs(60), totals);
        let one_minute = tree.loads[0][0];
        let expected = 120.0 * (1.0 - (-1.0f64).exp());
        assert!((one_minute - expected).abs() < 1e-9, "{one_minute}");
        assert!(
            tree.loads[0][2] < one_minute,
            "the 15 min average moves slower"
        );
        assert_eq!(tree.loads[1], [0.0; 3]);
    }
}
