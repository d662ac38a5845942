//! The webhook's answers, kept for a while: accepted logins for `cache_ttl_ms`, refused
//! ones for `negative_ttl_ms`, at most `cache_max` usernames.
//!
//! A password is never kept: each entry holds `SHA-256(salt ‖ len(username) ‖ username ‖
//! password)` with a salt drawn at random when the provider is made, compared in constant
//! time. One username has at most one accepted and one refused password at a time; a
//! newer answer replaces the older one of its kind.
//!
//! Time is a parameter (`now`), so expiry is tested without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pathmq_core::security::User;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The longest an answer is kept, whatever the config says (so `now + ttl` cannot
/// overflow): a year.
pub(crate) const MAX_KEEP: Duration = Duration::from_secs(365 * 24 * 3600);

/// The salted hash of one username and password.
#[derive(Clone, Copy)]
pub(crate) struct PasswordDigest([u8; 32]);

impl PasswordDigest {
    fn matches(&self, other: &PasswordDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// The salt of a provider's digests.
pub(crate) struct Salt([u8; 32]);

impl Salt {
    /// A fresh random salt.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        let mut salt = [0; 32];
        getrandom::fill(&mut salt)?;
        Ok(Self(salt))
    }

    /// The digest of `username` and `password`. The username's length goes first, so
    /// ("ab", "c") and ("a", "bc") differ.
    pub(crate) fn digest(&self, username: &str, password: &str) -> PasswordDigest {
        let mut hash = Sha256::new();
        hash.update(self.0);
        hash.update((username.len() as u64).to_be_bytes());
        hash.update(username.as_bytes());
        hash.update(password.as_bytes());
        PasswordDigest(hash.finalize().into())
    }
}

/// What the cache knows of a username and password.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Hit {
    /// The webhook accepted them as this user.
    Accepted(User),
    /// The webhook refused them.
    Refused,
}

struct Accepted {
    digest: PasswordDigest,
    user: User,
    until: Instant,
}

struct Refused {
    digest: PasswordDigest,
    until: Instant,
}

#[derive(Default)]
struct Entry {
    accepted: Option<Accepted>,
    refused: Option<Refused>,
    /// When the entry was last written: the oldest goes first when the cache is full.
    written: u64,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.accepted.as_ref().is_some_and(|a| now < a.until)
            || self.refused.as_ref().is_some_and(|r| now < r.until)
    }
}

/// Answers by username (module docs).
pub(crate) struct Cache {
    ttl: Duration,
    negative_ttl: Duration,
    max: usize,
    entries: HashMap<String, Entry>,
    writes: u64,
}

impl Cache {
    /// A cache keeping accepted logins for `ttl`, refused ones for `negative_ttl`, and at
    /// most `max` usernames (`0`: nothing is kept).
    /// Longer times count as [`MAX_KEEP`].
    pub(crate) fn new(ttl: Duration, negative_ttl: Duration, max: usize) -> Self {
        Self {
            ttl: ttl.min(MAX_KEEP),
            negative_ttl: negative_ttl.min(MAX_KEEP),
            max,
            entries: HashMap::new(),
            writes: 0,
        }
    }

    /// The answer kept for `username` and the password of `digest`, if unexpired.
    pub(crate) fn lookup(
        &self,
        username: &str,
        digest: &PasswordDigest,
        now: Instant,
    ) -> Option<Hit> {
        let entry = self.entries.get(username)?;
        if let Some(accepted) = &entry.accepted
            && now < accepted.until
            && accepted.digest.matches(digest)
        {
            return Some(Hit::Accepted(accepted.user.clone()));
        }
        if let Some(refused) = &entry.refused
            && now < refused.until
            && refused.digest.matches(digest)
        {
            return Some(Hit::Refused);
        }
        None
    }

    /// The user of an unexpired accepted login of `username`.
    pub(crate) fn user(&self, username: &str, now: Instant) -> Option<User> {
        let accepted = self.entries.get(username)?.accepted.as_ref()?;
        (now < accepted.until).then(|| accepted.user.clone())
    }

    /// Keeps that the webhook accepted `username` with the password of `digest` as `user`.
    pub(crate) fn accept(
        &mut self,
        username: &str,
        digest: PasswordDigest,
        user: User,
        now: Instant,
    ) {
        let ttl = self.ttl;
        if let Some(entry) = self.entry(username, ttl, now, false) {
            if entry
                .refused
                .as_ref()
                .is_some_and(|r| r.digest.matches(&digest))
            {
                entry.refused = None;
            }
            entry.accepted = Some(Accepted {
                digest,
                user,
                until: now + ttl,
            });
        }
    }

    /// Keeps that the webhook refused `username` with the password of `digest`.
    pub(crate) fn refuse(&mut self, username: &str, digest: PasswordDigest, now: Instant) {
        let ttl = self.negative_ttl;
        if let Some(entry) = self.entry(username, ttl, now, true) {
            if entry
                .accepted
                .as_ref()
                .is_some_and(|a| a.digest.matches(&digest))
            {
                entry.accepted = None;
            }
            entry.refused = Some(Refused {
                digest,
                until: now + ttl,
            });
        }
    }

    /// How many usernames are kept (expired ones included until they are pushed out).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry to write for `username`, making room for it; `None` when nothing is kept
    /// for `ttl`, or when a refusal (`refusal`) would have to push out a live accepted
    /// login: bogus logins must not evict the users whose tokens `user` answers for.
    fn entry(
        &mut self,
        username: &str,
        ttl: Duration,
        now: Instant,
        refusal: bool,
    ) -> Option<&mut Entry> {
        if self.max == 0 || ttl.is_zero() {
            return None;
        }
        if !self.entries.contains_key(username) && self.entries.len() >= self.max {
            // Full: expired entries go first, then the oldest written. O(n), but only
            // when full, and after a webhook call that costs far more.
            self.entries.retain(|_, entry| entry.live(now));
            if self.entries.len() >= self.max {
                let evictable = |entry: &Entry| {
                    !refusal || entry.accepted.as_ref().is_none_or(|a| now >= a.until)
                };
                let oldest = (self.entries.iter())
                    .filter(|(_, entry)| evictable(entry))
                    .min_by_key(|(_, entry)| entry.written)
                    .map(|(name, _)| name.clone());
                self.entries.remove(&oldest?);
            }
        }
        self.writes += 1;
        let entry = self.entries.entry(username.to_owned()).or_default();
        entry.written = self.writes;
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);
    const NEGATIVE: Duration = Duration::from_secs(5);

    fn user(name: &str) -> User {
        User {
            username: name.into(),
            ..User::default()
        }
    }

    #[test]
    fn digests_are_salted_and_bound_to_the_username() {
        let (a, b) = (Salt::random().unwrap(), Salt::random().unwrap());
        assert!(a.digest("u", "pw").matches(&a.digest("u", "pw")));
        assert!(!a.digest("u", "pw").matches(&b.digest("u", "pw")));
        assert!(!a.digest("ab", "c").matches(&a.digest("a", "bc")));
        assert!(!a.digest("u", "pw").matches(&a.digest("u", "pw2")));
    }

    #[test]
    fn accepted_logins_last_their_ttl_and_only_for_their_password() {
        let salt = Salt::random().unwrap();
        let mut cache = Cache::new(TTL, NEGATIVE, 10);
        let now = Instant::now();
        cache.accept("ann", salt.digest("ann", "pw"), user("ann"), now);
        let hit = cache.lookup("ann", &salt.digest("ann", "pw"), now + TTL / 2);
        assert_eq!(hit, Some(Hit::Accepted(user("ann"))));
        assert_eq!(cache.lookup("ann", &salt.digest("ann", "other"), now), None);
        assert_eq!(cache.lookup("bob", &salt.digest("bob", "pw"), now), None);
        assert!(cache.user("ann", now + TTL / 2).is_some());
        assert_eq!(
            cache.lookup("ann", &salt.digest("ann", "pw"), now + TTL),
            None
        );
        assert!(cache.user("ann", now + TTL).is_none());
    }

    #[test]
    fn refusals_last_the_negative_ttl_and_keep_an_accepted_password() {
        let salt = Salt::random().unwrap();
        let mut cache = Cache::new(TTL, NEGATIVE, 10);
        let now = Instant::now();
        cache.accept("ann", salt.digest("ann", "pw"), user("ann"), now);
        cache.refuse("ann", salt.digest("ann", "wrong"), now);
        let wrong = salt.digest("ann", "wrong");
        assert_eq!(cache.lookup("ann", &wrong, now), Some(Hit::Refused));
        assert_eq!(cache.lookup("ann", &wrong, now + NEGATIVE), None);
        let right = cache.lookup("ann", &salt.digest("ann", "pw"), now + NEGATIVE);
        assert_eq!(right, Some(Hit::Accepted(user("ann"))));
        // A later refusal of the accepted password (it changed) drops the acceptance.
        cache.refuse("ann", salt.digest("ann", "pw"), now + NEGATIVE);
        assert!(cache.user("ann", now + NEGATIVE).is_none());
    }

    /// Guards the review finding: a flood of refused bogus usernames must not push the
    /// accepted users out (their token logins are answered from the cache).
    #[test]
    fn refusals_never_evict_live_accepted_logins() {
        let salt = Salt::random().unwrap();
        let mut cache = Cache::new(TTL, NEGATIVE, 2);
        let now = Instant::now();
        for name in ["a", "b"] {
            cache.accept(name, salt.digest(name, "pw"), user(name), now);
        }
        for i in 0..10 {
            let name = format!("bogus-{i}");
            cache.refuse(&name, salt.digest(&name, "x"), now);
        }
        for name in ["a", "b"] {
            assert!(cache.user(name, now).is_some(), "{name}");
        }
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_the_oldest() {
        let salt = Salt::random().unwrap();
        let mut cache = Cache::new(TTL, NEGATIVE, 3);
        let now = Instant::now();
        cache.refuse("expired", salt.digest("expired", "x"), now);
        for name in ["a", "b"] {
            cache.accept(name, salt.digest(name, "pw"), user(name), now);
        }
        let later = now + NEGATIVE;
        cache.accept("c", salt.digest("c", "pw"), user("c"), later);
        assert_eq!(cache.len(), 3);
        assert!(
            cache.user("a", later).is_some(),
            "the expired entry went first"
        );
        // Writing `a` again makes `b` the oldest.
        cache.accept("a", salt.digest("a", "pw"), user("a"), later);
        cache.accept("d", salt.digest("d", "pw"), user("d"), later);
        assert_eq!(cache.len(), 3);
        assert!(cache.user("b", later).is_none());
        for name in ["a", "c", "d"] {
            assert!(cache.user(name, later).is_some(), "{name}");
        }
    }

    #[test]
    fn zero_ttls_or_size_keep_nothing() {
        let salt = Salt::random().unwrap();
        let now = Instant::now();
        for mut cache in [
            Cache::new(Duration::ZERO, Duration::ZERO, 10),
            Cache::new(TTL, NEGATIVE, 0),
        ] {
            cache.accept("a", salt.digest("a", "pw"), user("a"), now);
            cache.refuse("b", salt.digest("b", "pw"), now);
            assert_eq!(cache.len(), 0);
        }
    }

    #[test]
    fn huge_ttls_are_capped_instead_of_overflowing() {
        let salt = Salt::random().unwrap();
        let mut cache = Cache::new(Duration::MAX, Duration::MAX, 10);
        let now = Instant::now();
        cache.accept("a", salt.digest("a", "pw"), user("a"), now);
        cache.refuse("b", salt.digest("b", "pw"), now);
        assert!(cache.user("a", now + MAX_KEEP / 2).is_some());
        assert!(cache.user("a", now + MAX_KEEP).is_none());
    }
}
