//! The Primus heartbeat (`reference/happn-3-wire.md` §1): the server's pings, and when a
//! silent client counts as gone.

use std::time::Duration;

use pathmq_core::now_ms;
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// A connection's heartbeat: every interval the server sends `"primus::ping::<ms>"`. Any frame from the client — the pong, or anything else —
/// shows it is alive. A tick that finds no sign of life since the last ping is a skipped
/// beat and sends no new ping (as Primus); more than `allowed` skipped beats in a row end
/// the connection.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    interval: Option<Interval>,
    alive: bool,
    skipped: u32,
    allowed: u32,
}

/// What a heartbeat tick asks the connection to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Send a ping stamped with this time (ms since the epoch).
    Ping(u64),
    /// A beat was skipped; wait for the next tick.
    Skip,
    /// Too many beats skipped: end the connection.
    Dead,
}

impl Heartbeat {
    /// A heartbeat every `every` (none when zero), tolerating `allowed` skipped beats.
    pub(crate) fn new(every: Duration, allowed: u32) -> Self {
        let interval = (!every.is_zero()).then(|| {
            let mut interval = tokio::time::interval_at(Instant::now() + every, every);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self {
            interval,
            alive: true,
            skipped: 0,
            allowed,
        }
    }

    /// Waits for the next tick; never completes when heartbeats are off. Cancel-safe.
    pub(crate) async fn tick(&mut self) -> Beat {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending::<()>().await,
        }
        self.beat()
    }

    fn beat(&mut self) -> Beat {
        if !self.alive {
            self.skipped += 1;
            return if self.skipped > self.allowed {
                Beat::Dead
            } else {
                Beat::Skip
            };
        }
        self.alive = false;
        self.skipped = 0;
        Beat::Ping(now_ms())
    }

    /// The client sent something.
    pub(crate) fn alive(&mut self) {
        self.alive = true;
        self.skipped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_skips_then_dies_like_primus() {
        let mut hb = Heartbeat::new(Duration::ZERO, 1);
        assert!(matches!(hb.beat(), Beat::Ping(_)));
        assert_eq!(hb.beat(), Beat::Skip);
        assert_eq!(hb.beat(), Beat::Dead);

        let mut hb = Heartbeat::new(Duration::ZERO, 1);
        assert!(matches!(hb.beat(), Beat::Ping(_)));
        assert_eq!(hb.beat(), Beat::Skip);
        hb.alive();
        assert!(matches!(hb.beat(), Beat::Ping(_)));
        assert_eq!(hb.beat(), Beat::Skip);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_ticks_at_the_interval() {
        let mut hb = Heartbeat::new(Duration::from_secs(30), 0);
        let start = Instant::now();
        assert!(matches!(hb.tick().await, Beat::Ping(_)));
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(hb.tick().await, Beat::Dead);
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }
}
