//! What a login is made of and what it leaves on the session (DESIGN.md §7): the
//! [`Credentials`] offered, the [`LoginSession`] a successful login gives (its token, its
//! profile's policy and the counters the policy needs), the per-user connection count,
//! and the [`SessionEnd`] reasons a policy ends a session with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::grants::Grants;
use super::password::Password;
use super::profile::Profile;
use super::token::{Claims, now_s};

/// A password as MQTT hands it over: an empty one is none (mqttbytes cannot tell a
/// CONNECT without the password flag from one with an empty password).
fn non_empty(password: Option<Password>) -> Option<Password> {
    password.filter(|p| !p.is_empty())
}

/// What a client logs in with. `Debug` shows no password and no token.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// A username and password.
    Password {
        /// Who.
        username: String,
        /// Their password (never printed).
        password: Password,
        /// The auth provider to check it with (`authType`); `None` for the directory, then
        /// the other providers ([`super::provider`]).
        auth_type: Option<String>,
    },
    /// A token from an earlier login (reference: SECURITY CLIENT, `login {token}`), with
    /// the username the client gave, if any: it must be the token's.
    Token {
        /// The token.
        token: String,
        /// The username the client claims, checked against the token's.
        username: Option<String>,
    },
    /// The anonymous user (reference: ANONYMOUS USER), when allowed.
    Anonymous,
    /// A user the transport vouches for: the subject CN of a client certificate verified
    /// against the listener's CA, on a listener that uses it as the username (Mosquitto's
    /// `use_identity_as_username`; [`crate::Peer::certificate_username`]). No password is
    /// checked; the user must exist (in the directory or an auth provider's `user`), and
    /// the reserved users (`_ADMIN`, `_ANONYMOUS`: a name starting with `_`) are refused.
    Certificate {
        /// The certificate's CN.
        username: String,
    },
}

impl Credentials {
    /// Credentials from the fields of a login (native `login`, HTTP `/auth/login`): a
    /// `token` wins; `_ANONYMOUS` with no password is the anonymous user; else a
    /// username and password, checked by the provider `auth_type` names. Empty strings
    /// count as absent. `None` when that leaves nothing to log in with.
    pub fn from_fields(
        username: Option<String>,
        password: Option<Password>,
        token: Option<String>,
        auth_type: Option<String>,
    ) -> Option<Self> {
        let username = username.filter(|u| !u.is_empty());
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            return Some(Self::Token { token, username });
        }
        match (username, non_empty(password)) {
            (Some(username), None) if username == super::ANONYMOUS_USER => Some(Self::Anonymous),
            (Some(username), Some(password)) => Some(Self::Password {
                username,
                password,
                auth_type,
            }),
            _ => None,
        }
    }

    /// Credentials as MQTT CONNECT carries them (DESIGN.md §7: "a token as password"): a
    /// password shaped like a JSON Web Token (`eyJ….….…`) is a token; the user name
    /// `_ANONYMOUS` with no password is the anonymous user. `None` without a user name
    /// or password.
    pub fn from_username_password(
        username: Option<&str>,
        password: Option<Password>,
    ) -> Option<Self> {
        let username = username.map(str::to_owned);
        match non_empty(password) {
            Some(password) if looks_like_token(password.expose()) => {
                let token = password.expose().to_owned();
                Self::from_fields(username, None, Some(token), None)
            }
            password => Self::from_fields(username, password, None, None),
        }
    }

    /// The user name given, if any (for logs; never the password or token).
    pub fn username(&self) -> Option<&str> {
        match self {
            Self::Password { username, .. } | Self::Certificate { username } => Some(username),
            Self::Token { username, .. } => username.as_deref(),
            Self::Anonymous => Some(super::ANONYMOUS_USER),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password {
                username,
                auth_type,
                ..
            } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"***")
                .field("auth_type", auth_type)
                .finish(),
            Self::Token { username, .. } => f
                .debug_struct("Token")
                .field("token", &"***")
                .field("username", username)
                .finish(),
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Certificate { username } => f
                .debug_struct("Certificate")
                .field("username", username)
                .finish(),
        }
    }
}

/// Whether `text` has the shape of a compact JWS: three base64url parts, the first a
/// JSON object (`eyJ`).
fn looks_like_token(text: &str) -> bool {
    text.starts_with("eyJ")
        && text.split('.').count() == 3
        && (text.bytes()).all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Why a policy, or a revocation, ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// Past its policy's `ttl`.
    Expired,
    /// No request within its policy's `inactivity_threshold`.
    Inactive,
    /// Its policy's `usage_limit` is spent.
    UsageLimit,
    /// Its token was revoked (logout, `revoke-token`, a rolling token replaced it).
    TokenRevoked,
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Expired => "session expired (policy ttl)",
            Self::Inactive => "session inactive for too long (policy inactivity_threshold)",
            Self::UsageLimit => "session usage limit reached (policy usage_limit)",
            Self::TokenRevoked => "session token revoked",
        })
    }
}

/// What a successful network login leaves on the session, kept when its grants are
/// recomputed. `Debug` does not show the token.
pub struct LoginSession {
    /// The session's token (hand it to the client).
    pub token: String,
    /// Its claims.
    pub claims: Claims,
    /// The profile the session matched.
    pub profile: Arc<Profile>,
    /// The policy's own permissions, when it has some (a request needs these too).
    pub(crate) scope: Option<Grants>,
    started: Instant,
    /// ms since `started` of the last request.
    last_active: AtomicU64,
    usage: AtomicU64,
    /// Logged in with a token (not a password): the session ends when that token expires.
    from_token: bool,
    _slot: Option<ConnectionSlot>,
}

impl std::fmt::Debug for LoginSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSession")
            .field("token", &"***")
            .field("user", &self.claims.sub)
            .field("token_id", &self.claims.jti)
            .field("profile", &self.profile.name)
            .field("from_token", &self.from_token)
            .finish_non_exhaustive()
    }
}

impl LoginSession {
    pub(crate) fn new(
        token: String,
        claims: Claims,
        profile: Arc<Profile>,
        scope: Option<Grants>,
        slot: Option<ConnectionSlot>,
        from_token: bool,
    ) -> Self {
        Self {
            token,
            claims,
            profile,
            scope,
            started: Instant::now(),
            last_active: AtomicU64::new(0),
            usage: AtomicU64::new(0),
            from_token,
            _slot: slot,
        }
    }

    /// Whether the session has outlived its policy (`ttl`, `inactivity_threshold`) at
    /// `now`, without counting a use.
    pub(crate) fn lapsed(&self, now: Instant) -> Option<SessionEnd> {
        let policy = &self.profile.policy;
        let age = now.saturating_duration_since(self.started);
        // A session logged in with a token ends with that token, too (a token one
        // minute from expiry does not open a session that lives for ever).
        let token_expired = || self.claims.expired(crate::now_ms());
        if policy.ttl.is_some_and(|ttl| age >= ttl) || (self.from_token && token_expired()) {
            return Some(SessionEnd::Expired);
        }
        let idle = age.saturating_sub(Duration::from_millis(
            self.last_active.load(Ordering::Relaxed),
        ));
        if policy
            .inactivity_threshold
            .is_some_and(|limit| idle >= limit)
        {
            return Some(SessionEnd::Inactive);
        }
        None
    }

    /// Counts one request: an error when the session has lapsed or spent its usage
    /// limit, else records the activity.
    pub(crate) fn use_once(&self) -> Result<(), SessionEnd> {
        let now = Instant::now();
        if let Some(end) = self.lapsed(now) {
            return Err(end);
        }
        if let Some(limit) = self.profile.policy.usage_limit
            && self.usage.fetch_add(1, Ordering::Relaxed) >= limit
        {
            return Err(SessionEnd::UsageLimit);
        }
        let since = u64::try_from(now.saturating_duration_since(self.started).as_millis());
        self.last_active
            .store(since.unwrap_or(u64::MAX), Ordering::Relaxed);
        Ok(())
    }

    /// Seconds until the token expires (0 when it has).
    pub fn token_expires_in(&self) -> u64 {
        self.claims.exp.saturating_sub(now_s())
    }
}

/// Live stateful sessions per user (`max_connections`): a login takes a slot, and the
/// slot is given back when the session's identity is dropped, however the session ended
/// (disconnect, crash, takeover, revocation).
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounts {
    counts: Arc<DashMap<String, u32>>,
}

impl ConnectionCounts {
    /// A slot for `username`, unless they already hold `limit` (when there is a limit).
    /// A login that takes over one of the user's own sessions (an MQTT reconnect under
    /// the same client id) may go one over: the session it replaces ends at once.
    pub(crate) fn acquire(
        &self,
        username: &str,
        limit: Option<u32>,
        takes_over_own: bool,
    ) -> Option<ConnectionSlot> {
        let mut count = self.counts.entry(username.to_owned()).or_insert(0);
        let limit = limit.map(|limit| limit.saturating_add(u32::from(takes_over_own)));
        if limit.is_some_and(|limit| *count >= limit) {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            counts: self.counts.clone(),
            username: username.to_owned(),
        })
    }

    /// How many stateful sessions `username` has now.
    pub(crate) fn count(&self, username: &str) -> u32 {
        self.counts.get(username).map_or(0, |c| *c)
    }
}

/// One live session of a user; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    counts: Arc<DashMap<String, u32>>,
    username: String,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let dashmap::Entry::Occupied(mut entry) = self.counts.entry(self.username.clone()) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_slots_are_counted_and_given_back() {
        let counts = ConnectionCounts::default();
        let slots: Vec<_> = (0..3)
            .map(|_| counts.acquire("ann", Some(3), false).unwrap())
            .collect();
        assert!(counts.acquire("ann", Some(3), false).is_none());
        let takeover = counts.acquire("ann", Some(3), true);
        assert!(
            takeover.is_some(),
            "a takeover of an own session may go one over"
        );
        drop(takeover);
        assert_eq!(counts.count("ann"), 3);
        drop(slots);
        assert_eq!(counts.count("ann"), 0);
        assert!(counts.acquire("ann", Some(3), false).is_some());
    }

    #[test]
    fn token_shaped_passwords_are_tokens() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2ln";
        assert!(matches!(
            Credentials::from_username_password(Some("ann"), Some(token.into())),
            Some(Credentials::Token { username: Some(u), .. }) if u == "ann"
        ));
        assert!(matches!(
            Credentials::from_username_password(None, Some(token.into())),
            Some(Credentials::Token { username: None, .. })
        ));
        assert!(matches!(
            Credentials::from_username_password(Some("ann"), Some("hunter2".into())),
            Some(Credentials::Password { .. })
        ));
        assert!(matches!(
            Credentials::from_username_password(Some("_ANONYMOUS"), None),
            Some(Credentials::Anonymous)
        ));
        assert!(Credentials::from_username_password(Some("ann"), None).is_none());
        assert!(matches!(
            Credentials::from_username_password(Some("_ANONYMOUS"), Some("".into())),
            Some(Credentials::Anonymous)
        ));
    }
}
