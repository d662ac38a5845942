//! Account lockout (issue 5; happn-3's `accountLockout`): after `attempts` failed
//! password logins within `retry`, a username is refused for `retry` from the last
//! failure, even with the right password (no bcrypt work is spent on it). A successful
//! login clears the count. Counts live in memory: a restart clears them.
//!
//! An attempt is counted **before** its password is checked ([`Lockouts::begin`]) and
//! forgiven when it succeeds, so logins sent in parallel cannot make more than `attempts`
//! guesses while the first ones are still hashing.
//!
//! Failures of unknown usernames are counted too (so lockout tells nothing about which
//! names exist). At most [`MAX_TRACKED`] names are tracked; when the table is full, stale
//! entries are pruned, then the entry whose last failure is oldest is evicted, so an
//! attacker flooding fresh names cannot stop a tracked account from locking.

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

    /// Starts a password login of `username`: refused with how long it stays locked, or
    /// counted as a failure until [`Lockouts::succeeded`] forgives it.
    pub(crate) fn begin(&self, username: &str) -> Result<(), Duration> {
        if let Some(left) = self.locked(username) {
            return Err(left);
        }
        self.failed(username);
        Ok(())
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
                let oldest = (self.failures.iter())
                    .min_by_key(|entry| entry.value().last)
                    .map(|entry| entry.key().clone());
                if let Some(oldest) = oldest {
                    self.failures.remove(&oldest);
                }
                tracing::warn!("failed-login table full: the oldest entry was evicted");
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

    /// Clears `username`'s count after a successful login (forgiving its own attempt).
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
    fn parallel_attempts_are_counted_before_they_finish() {
        let lockouts = Lockouts::new(Some(LockoutConfig::default()));
        // Four logins start at once; none has finished hashing.
        for _ in 0..4 {
            assert!(lockouts.begin("ann").is_ok());
        }
        assert!(
            lockouts.begin("ann").is_err(),
            "a fifth guess while four are pending"
        );
    }

    #[test]
    fn a_full_table_evicts_the_oldest_rather_than_stop_counting() {
        let lockouts = Lockouts::new(Some(LockoutConfig::default()));
        for _ in 0..3 {
            lockouts.failed("ann");
        }
        for n in 0..MAX_TRACKED {
            lockouts.failed(&format!("spray-{n}"));
        }
        lockouts.failed("bob");
        assert_eq!(lockouts.failures.len(), MAX_TRACKED);
        assert!(
            lockouts.failures.contains_key("bob"),
            "new names are still tracked"
        );
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
