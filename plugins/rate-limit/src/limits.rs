//! The buckets: per action kind, a governor keyed rate limiter over sessions and one over
//! users, plus each session's `max_uses` counters.
//!
//! Memory is bounded by what is live: a session's keys are removed when its connection
//! ends ([`Limits::forget_session`]): they live in a `DashMap` this module shares with
//! the limiter, since governor has no per-key removal. Users' keys outlive sessions (a
//! user that reconnects keeps its bucket) and are swept with governor's `retain_recent`,
//! which drops only buckets that are full again, every [`SWEEP_EVERY`] ended sessions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, StateStore};
use governor::{NotUntil, RateLimiter};
use pathmq_core::{Error, SessionId};

use crate::config::{Kind, Plan, Resolved, Scope};

/// How many ended sessions between two sweeps of the users' buckets.
const SWEEP_EVERY: u64 = 64;

/// Sessions' bucket states, shared with the limiter so that a session's key can be
/// removed.
#[derive(Debug, Clone, Default)]
struct SessionStore(Arc<DashMap<SessionId, InMemoryState>>);

impl StateStore for SessionStore {
    type Key = SessionId;

    fn measure_and_replace<T, F, E>(&self, key: &SessionId, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        StateStore::measure_and_replace(&*self.0, key, f)
    }
}

type SessionLimiter<C> =
    RateLimiter<SessionId, SessionStore, C, NoOpMiddleware<<C as Clock>::Instant>>;
type UserLimiter<C> =
    RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One action kind's buckets.
#[derive(Debug)]
struct ActionLimit<C: Clock> {
    resolved: Resolved,
    sessions: Option<(SessionStore, SessionLimiter<C>)>,
    users: Option<UserLimiter<C>>,
}

/// Every bucket and counter, on clock `C` (governor's default clock in the broker, a
/// fake one in tests).
#[derive(Debug)]
pub(crate) struct Limits<C: Clock> {
    clock: C,
    kinds: [Option<ActionLimit<C>>; 7],
    /// Per session, how many requests of each kind (by [`Kind::index`]) passed; only for
    /// sessions that made a request of a kind with `max_uses`.
    uses: DashMap<SessionId, [u64; 7]>,
    ended: AtomicU64,
}

impl<C: Clock + Clone> Limits<C> {
    pub(crate) fn new(plan: Plan, clock: C) -> Self {
        let kinds = plan.kinds.map(|resolved| {
            let resolved = resolved?;
            let quota = resolved.quota;
            let sessions = quota.filter(|_| plan.per_session).map(|quota| {
                let store = SessionStore::default();
                let limiter = RateLimiter::new(quota, store.clone(), clock.clone());
                (store, limiter)
            });
            let users = quota
                .filter(|_| plan.per_user)
                .map(|quota| RateLimiter::dashmap_with_clock(quota, clock.clone()));
            Some(ActionLimit {
                resolved,
                sessions,
                users,
            })
        });
        Self {
            clock,
            kinds,
            uses: DashMap::new(),
            ended: AtomicU64::new(0),
        }
    }

    /// Counts a request of `kind` by `session`, logged in as `user`; `Err` (429) when it
    /// is over a limit, and then nothing is counted against `max_uses`.
    pub(crate) fn check(
        &self,
        session: SessionId,
        user: Option<&str>,
        kind: Kind,
    ) -> Result<(), Error> {
        let Some(action) = &self.kinds[kind.index()] else {
            return Ok(());
        };
        let limit = &action.resolved.limit;
        // The session's counters stay locked until the request is counted, so two
        // requests of one session cannot both take the last use.
        let mut uses = (limit.max_uses > 0).then(|| self.uses.entry(session).or_default());
        if let Some(uses) = &uses
            && uses[kind.index()] >= limit.max_uses
        {
            return Err(Error::RateLimited(format!(
                "usage limit exceeded: at most {} {} requests per session",
                limit.max_uses,
                kind.name()
            )));
        }
        if let Some((_, limiter)) = &action.sessions {
            (limiter.check_key(&session)).map_err(|n| self.exceeded(action, Scope::Session, &n))?;
        }
        if let (Some(limiter), Some(user)) = (&action.users, user) {
            (limiter.check_key(&user.to_owned()))
                .map_err(|n| self.exceeded(action, Scope::User, &n))?;
        }
        if let Some(uses) = &mut uses {
            uses[kind.index()] += 1;
        }
        Ok(())
    }

    fn exceeded(
        &self,
        action: &ActionLimit<C>,
        scope: Scope,
        not_until: &NotUntil<C::Instant>,
    ) -> Error {
        let wait = not_until.wait_time_from(self.clock.now());
        let limit = &action.resolved.limit;
        Error::RateLimited(format!(
            "rate limit exceeded: at most {} {} requests per {} ms per {}; try again in {} ms",
            limit.limit,
            action.resolved.kind.name(),
            limit.every,
            scope.as_str(),
            wait.as_nanos().div_ceil(1_000_000),
        ))
    }

    /// Frees what `session` holds; every [`SWEEP_EVERY`] calls, also drops users' buckets
    /// that are full again.
    pub(crate) fn forget_session(&self, session: SessionId) {
        self.uses.remove(&session);
        let actions = self.kinds.iter().flatten();
        for (store, _) in actions.clone().filter_map(|a| a.sessions.as_ref()) {
            store.0.remove(&session);
        }
        if (self.ended.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(SWEEP_EVERY) {
            for users in actions.filter_map(|a| a.users.as_ref()) {
                users.retain_recent();
            }
        }
    }

    /// How many keys are held: sessions with buckets or counters, and users' buckets.
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize) {
        let actions = || self.kinds.iter().flatten();
        let sessions = actions()
            .filter_map(|a| a.sessions.as_ref())
            .map(|(store, _)| store.0.len())
            .sum::<usize>()
            + self.uses.len();
        let users = actions().filter_map(|a| a.users.as_ref()).map(|u| u.len());
        (sessions, users.sum())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::config::RateLimitConfig;

    fn limits(toml: &str) -> (Limits<FakeRelativeClock>, FakeRelativeClock) {
        let config: RateLimitConfig = toml::from_str(toml).unwrap();
        let clock = FakeRelativeClock::default();
        (
            Limits::new(Plan::new(&config).unwrap(), clock.clone()),
            clock,
        )
    }

    fn message(result: Result<(), Error>) -> String {
        match result {
            Err(Error::RateLimited(message)) => message,
            other => panic!("expected a 429, got {other:?}"),
        }
    }

    #[test]
    fn a_session_gets_limit_requests_per_window_then_429_until_a_token_is_back() {
        let (limits, clock) = limits("[actions.set]\nlimit = 3\nevery = 1000");
        let s = SessionId::new();
        for _ in 0..3 {
            limits.check(s, None, Kind::Set).unwrap();
        }
        let error = message(limits.check(s, None, Kind::Set));
        assert_eq!(
            error,
            "rate limit exceeded: at most 3 set requests per 1000 ms per session; try again in 334 ms"
        );
        // One token comes back every 1000 / 3 ms.
        clock.advance(Duration::from_millis(333));
        assert!(limits.check(s, None, Kind::Set).is_err());
        clock.advance(Duration::from_millis(1));
        limits.check(s, None, Kind::Set).unwrap();
        assert!(limits.check(s, None, Kind::Set).is_err());
        // Other kinds and other sessions have buckets of their own (or none).
        limits.check(s, None, Kind::Get).unwrap();
        limits.check(SessionId::new(), None, Kind::Set).unwrap();
    }

    #[test]
    fn a_user_bucket_is_shared_by_the_users_sessions() {
        let (limits, _clock) = limits("per = [\"user\"]\n[default]\nlimit = 2\nevery = 60000");
        let (a, b) = (SessionId::new(), SessionId::new());
        limits.check(a, Some("ann"), Kind::On).unwrap();
        limits.check(b, Some("ann"), Kind::On).unwrap();
        let error = message(limits.check(SessionId::new(), Some("ann"), Kind::On));
        assert!(
            error.contains("at most 2 on requests per 60000 ms per user"),
            "{error}"
        );
        limits.check(a, Some("bob"), Kind::On).unwrap();
        // Without a user (insecure broker) only session buckets apply: none here.
        for _ in 0..10 {
            limits.check(a, None, Kind::On).unwrap();
        }
    }

    #[test]
    fn both_scopes_apply_and_either_refuses() {
        let (limits, _clock) = limits("[actions.remove]\nlimit = 2\nevery = 60000");
        let (a, b) = (SessionId::new(), SessionId::new());
        limits.check(a, Some("ann"), Kind::Remove).unwrap();
        limits.check(a, Some("ann"), Kind::Remove).unwrap();
        let error = message(limits.check(a, Some("bob"), Kind::Remove));
        assert!(error.contains("per session"), "{error}");
        let error = message(limits.check(b, Some("ann"), Kind::Remove));
        assert!(error.contains("per user"), "{error}");
    }

    #[test]
    fn max_uses_caps_a_session_and_refused_requests_do_not_count() {
        let (limits, clock) = limits("[actions.publish]\nlimit = 1\nevery = 1000\nmax_uses = 2");
        let s = SessionId::new();
        limits.check(s, None, Kind::Publish).unwrap();
        assert!(
            limits.check(s, None, Kind::Publish).is_err(),
            "rate limited"
        );
        clock.advance(Duration::from_secs(1));
        limits.check(s, None, Kind::Publish).unwrap();
        clock.advance(Duration::from_secs(1));
        let error = message(limits.check(s, None, Kind::Publish));
        assert_eq!(
            error,
            "usage limit exceeded: at most 2 publish requests per session"
        );
        limits.check(SessionId::new(), None, Kind::Publish).unwrap();
    }

    #[test]
    fn ended_sessions_are_forgotten_and_idle_users_swept() {
        let (limits, clock) = limits("[default]\nlimit = 5\nevery = 1000\nmax_uses = 100");
        let sessions: Vec<SessionId> = (0..SWEEP_EVERY).map(|_| SessionId::new()).collect();
        for (i, s) in sessions.iter().enumerate() {
            limits
                .check(*s, Some(&format!("user-{i}")), Kind::Get)
                .unwrap();
            limits
                .check(*s, Some(&format!("user-{i}")), Kind::Set)
                .unwrap();
        }
        let n = SWEEP_EVERY as usize;
        assert_eq!(limits.held(), (3 * n, 2 * n));
        // Once their buckets are full again, users are indistinguishable from new ones.
        clock.advance(Duration::from_secs(1));
        for s in &sessions {
            limits.forget_session(*s);
        }
        assert_eq!(limits.held(), (0, 0));
    }
}
