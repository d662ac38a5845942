//! Account lockout (issue 5; happn-3's `accountLockout`): after `attempts` failed
//! password logins within `retry`, a username is refused for `retry` from the last
//! failure, even with the right password (no bcrypt work is spent on it). A successful
//! login clears the count. Counts live in memory: a restart clears them.
//!
//! Failures of unknown usernames are counted too (so lockout tells nothing about which
//! names exist); at most [`MAX_TRACKED`] names are tracked, stale ones are pruned first,
//! and past that new names are not tracked (logged).

use std::time::{Duration, Instant};

use dashmap::DashMap;

/// The most usernames tracked at once.
pub(crate) const MAX_TRACKED: usize = 65_536;

/// Lockout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failed logins that lock the account (reference default 4).
    pub attempts: u32,
    /// How long the account stays locked after the last failure, and the window failures
    /// are counted in (reference default 10 minutes).
    pub retry: Duration,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            attempts: 4,
            retry: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// The failure counts.
#[derive(Debug, Default)]
pub(crate) struct Lockouts {
    config: Option<LockoutConfig>,
    failures: DashMap<String, Failures>,
}

impl Lockouts {
    pub(crate) fn new(config: Option<LockoutConfig>) -> Self {
        Self {
            config: config.filter(|c| c.attempts > 0),
            failures: DashMap::new(),
        }
    }

    /// How long `username` stays locked, if it is.
    pub(crate) fn locked(&self, username: &str) -> Option<Duration> {
        let config = self.config?;
        let failures = *self.failures.get(username)?;
        let until = failures.last + config.retry;
        let now = Instant::now();
        (failures.count >= config.attempts && until > now).then(|| until - now)
    }

    /// Counts a failed login of `username`.
    pub(crate) fn failed(&self, username: &str) {
        let Some(config) = self.config else {
            return;
        };
        let now = Instant::now();
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(username) {
            self.failures
                .retain(|_, f| now.saturating_duration_since(f.last) < config.retry);
            if self.failures.len() >= MAX_TRACKED {
                tracing::warn!("too many usernames with failed logins; not tracking more");
                return;
            }
        }
        let mut entry = self
            .failures
            .entry(username.to_owned())
            .or_insert(Failures {
                count: 0,
                last: now,
            });
        if now.saturating_duration_since(entry.last) >= config.retry {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        if entry.count == config.attempts {
            tracing::warn!(
                username,
                attempts = entry.count,
                retry_s = config.retry.as_secs(),
                "account locked out after failed logins"
            );
        }
    }

    /// Clears `username`'s count after a successful login.
    pub(crate) fn succeeded(&self, username: &str) {
        if self.config.is_some() {
            self.failures.remove(username);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fourth_failure_locks_and_success_clears() {
        let lockouts = Lockouts::new(Some(LockoutConfig::default()));
        for _ in 0..3 {
            lockouts.failed("ann");
            assert!(lockouts.locked("ann").is_none());
        }
        lockouts.failed("ann");
        let left = lockouts.locked("ann").unwrap();
        assert!(left > Duration::from_secs(590) && left <= Duration::from_secs(600));
        assert!(lockouts.locked("bob").is_none());
        lockouts.succeeded("ann");
        assert!(lockouts.locked("ann").is_none());
    }

    #[test]
    fn a_lock_lapses_after_retry_and_off_means_off() {
        let config = LockoutConfig {
            attempts: 1,
            retry: Duration::from_millis(30),
        };
        let lockouts = Lockouts::new(Some(config));
        lockouts.failed("ann");
        assert!(lockouts.locked("ann").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(lockouts.locked("ann").is_none());
        let off = Lockouts::new(None);
        (0..10).for_each(|_| off.failed("ann"));
        assert!(off.locked("ann").is_none());
    }
}
