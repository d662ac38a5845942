//! The configuration (`[plugins.rate_limit]` of the broker's config file) and how it is
//! checked and resolved into one limit per action kind.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use pathmq_core::{Action, Request};
use serde::Deserialize;

/// The table under `[plugins.rate_limit]` (crate docs for its shape).
///
/// Build it from TOML (`toml::from_str`) or in code; [`crate::RateLimitLayer::new`]
/// checks it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Which buckets a request is counted in; default both. A request passes only when
    /// every one of them has a token. An empty list is refused
    /// ([`RateLimitConfigError::NoScope`]).
    #[serde(default = "both_scopes")]
    pub per: Vec<Scope>,
    /// The limit of every action without its own entry in
    /// [`actions`](Self::actions); `None`: those actions are not limited.
    #[serde(default)]
    pub default: Option<Limit>,
    /// Limits by action name: `set`, `get`, `count`, `remove`, `on`, `off`, `publish`.
    /// `publish` without an entry uses `set`'s, then the default.
    #[serde(default)]
    pub actions: BTreeMap<String, Limit>,
}

impl Default for RateLimitConfig {
    /// Both scopes, nothing limited.
    fn default() -> Self {
        Self {
            per: both_scopes(),
            default: None,
            actions: BTreeMap::new(),
        }
    }
}

fn both_scopes() -> Vec<Scope> {
    vec![Scope::Session, Scope::User]
}

/// A bucket a request is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One bucket per session (connection) and action.
    Session,
    /// One bucket per logged-in user and action, shared by all the user's sessions. Only
    /// on a secure broker: a session that has not logged in has no user.
    User,
}

impl Scope {
    /// How the scope is named in messages: `"session"`, `"user"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::User => "user",
        }
    }
}

/// The limit of one action: at most [`limit`](Self::limit) requests per
/// [`every`](Self::every) milliseconds (a token bucket of `limit` tokens, one token back
/// every `every / limit` ms), and at most [`max_uses`](Self::max_uses) in all per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Requests per window (the bucket's size, so also the largest burst). `0`: no rate
    /// limit, e.g. to exempt one action from the default; `max_uses` still applies.
    pub limit: u32,
    /// The window, in milliseconds; default 1000. Must be above 0 when `limit` is.
    #[serde(default = "one_second")]
    pub every: u64,
    /// How many requests of this action one session may make in all (counted while its
    /// connection lasts); `0`: no cap.
    #[serde(default, alias = "maxUses")]
    pub max_uses: u64,
}

impl Limit {
    /// `limit` requests per `every_ms` milliseconds, no `max_uses` cap.
    pub fn new(limit: u32, every_ms: u64) -> Self {
        Self {
            limit,
            every: every_ms,
            max_uses: 0,
        }
    }

    /// The same limit with a `max_uses` cap.
    pub fn max_uses(self, max_uses: u64) -> Self {
        Self { max_uses, ..self }
    }
}

fn one_second() -> u64 {
    1000
}

/// Why a [`RateLimitConfig`] was refused. Keys are named as in the broker's config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitConfigError {
    /// `actions` has a key that is not an action name.
    #[error(
        "plugins.rate_limit.actions.{action}: unknown action {action:?} (expected one of set, get, count, remove, on, off, publish)"
    )]
    UnknownAction {
        /// The key.
        action: String,
    },
    /// `every = 0` with a `limit` above 0.
    #[error("plugins.rate_limit.{key}.every: must be above 0 ms when `limit` is above 0")]
    ZeroPeriod {
        /// `default` or `actions.<name>`.
        key: String,
    },
    /// More than one request per nanosecond: not a limit governor can keep.
    #[error(
        "plugins.rate_limit.{key}: {limit} requests per {every} ms is more than one per nanosecond"
    )]
    TooFast {
        /// `default` or `actions.<name>`.
        key: String,
        /// The `limit`.
        limit: u32,
        /// The `every`, in ms.
        every: u64,
    },
    /// `per = []`: no bucket to count in.
    #[error("plugins.rate_limit.per: name at least one of \"session\", \"user\"")]
    NoScope,
}

/// The kinds of request a limit applies to: the data actions, with `publish` (a `set`
/// with `no_store`) apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Set,
    Get,
    Count,
    Remove,
    On,
    Off,
    Publish,
}

impl Kind {
    pub(crate) const ALL: [Kind; 7] = [
        Kind::Set,
        Kind::Get,
        Kind::Count,
        Kind::Remove,
        Kind::On,
        Kind::Off,
        Kind::Publish,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Set => "set",
            Self::Get => "get",
            Self::Count => "count",
            Self::Remove => "remove",
            Self::On => "on",
            Self::Off => "off",
            Self::Publish => "publish",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kind of `request`: searches count as `get`, conditional counts and removes as
    /// `count` and `remove` ([`Request::action`]).
    pub(crate) fn of(request: &Request) -> Option<Self> {
        if let Request::Set { options, .. } = request
            && options.no_store
        {
            return Some(Self::Publish);
        }
        Some(match request.action() {
            Action::Set => Self::Set,
            Action::Get => Self::Get,
            Action::Count => Self::Count,
            Action::Remove => Self::Remove,
            Action::On => Self::On,
            Action::Off => Self::Off,
            _ => return None,
        })
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One action kind's resolved limit.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) kind: Kind,
    pub(crate) limit: Limit,
    /// `None` when `limit.limit` is 0 (no rate limit).
    pub(crate) quota: Option<Quota>,
}

/// The checked configuration: which scopes apply and, per [`Kind`] (by
/// [`Kind::index`]), its limit (`None`: not limited at all).
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) per_session: bool,
    pub(crate) per_user: bool,
    pub(crate) kinds: [Option<Resolved>; 7],
}

impl Plan {
    pub(crate) fn new(config: &RateLimitConfig) -> Result<Self, RateLimitConfigError> {
        if config.per.is_empty() {
            return Err(RateLimitConfigError::NoScope);
        }
        if let Some(name) = (config.actions.keys()).find(|name| Kind::parse(name).is_none()) {
            return Err(RateLimitConfigError::UnknownAction {
                action: name.clone(),
            });
        }
        if let Some(limit) = &config.default {
            quota("default", limit)?;
        }
        let mut kinds: [Option<Resolved>; 7] = Default::default();
        for kind in Kind::ALL {
            let own = config.actions.get(kind.name()).map(|l| (kind.name(), l));
            let fallback = match kind {
                Kind::Publish => config.actions.get("set").map(|l| ("set", l)),
                _ => None,
            };
            let Some((key, limit)) = own
                .or(fallback)
                .or(config.default.as_ref().map(|l| ("", l)))
            else {
                continue;
            };
            let key = match key {
                "" => "default".to_owned(),
                name => format!("actions.{name}"),
            };
            let quota = quota(&key, limit)?;
            if quota.is_some() || limit.max_uses > 0 {
                kinds[kind.index()] = Some(Resolved {
                    kind,
                    limit: *limit,
                    quota,
                });
            }
        }
        Ok(Self {
            per_session: config.per.contains(&Scope::Session),
            per_user: config.per.contains(&Scope::User),
            kinds,
        })
    }
}

/// `limit` tokens, one back every `every / limit` (`None` for `limit = 0`).
fn quota(key: &str, limit: &Limit) -> Result<Option<Quota>, RateLimitConfigError> {
    let Some(burst) = NonZeroU32::new(limit.limit) else {
        return Ok(None);
    };
    if limit.every == 0 {
        return Err(RateLimitConfigError::ZeroPeriod {
            key: key.to_owned(),
        });
    }
    let period = Duration::from_millis(limit.every) / limit.limit;
    let quota = Quota::with_period(period).ok_or_else(|| RateLimitConfigError::TooFast {
        key: key.to_owned(),
        limit: limit.limit,
        every: limit.every,
    })?;
    Ok(Some(quota.allow_burst(burst)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RateLimitConfig {
        toml::from_str(text).unwrap()
    }

    /// The shape the crate docs show parses as documented.
    #[test]
    fn the_documented_table_parses() {
        let config = parse(
            r#"
            per = ["session", "user"]
            [default]
            limit = 10
            every = 1000
            max_uses = 0
            [actions.set]
            limit = 100
            every = 1000
            [actions.get]
            limit = 0
            [actions.publish]
            limit = 5
            maxUses = 50
            "#,
        );
        assert_eq!(config.per, [Scope::Session, Scope::User]);
        assert_eq!(config.default, Some(Limit::new(10, 1000)));
        assert_eq!(config.actions["set"], Limit::new(100, 1000));
        assert_eq!(config.actions["get"], Limit::new(0, 1000));
        assert_eq!(config.actions["publish"], Limit::new(5, 1000).max_uses(50));
        assert_eq!(parse(""), RateLimitConfig::default());
    }

    #[test]
    fn unknown_keys_are_refused_by_the_parser() {
        for text in [
            "limits = 3",
            "[default]\nlimit = 1\nevry = 5",
            "per = [\"ip\"]",
        ] {
            assert!(toml::from_str::<RateLimitConfig>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn nonsense_is_refused_naming_the_key() {
        let cases: [(&str, &str); 4] = [
            (
                "[actions.sett]\nlimit = 1",
                "plugins.rate_limit.actions.sett: unknown action",
            ),
            (
                "[actions.set]\nlimit = 1\nevery = 0",
                "plugins.rate_limit.actions.set.every: must be above 0",
            ),
            (
                "[default]\nlimit = 4000000\nevery = 1",
                "plugins.rate_limit.default: 4000000 requests per 1 ms",
            ),
            ("per = []", "plugins.rate_limit.per"),
        ];
        for (text, expected) in cases {
            let error = Plan::new(&parse(text)).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
        // `every` does not matter without a rate limit.
        assert!(Plan::new(&parse("[default]\nlimit = 0\nevery = 0\nmax_uses = 3")).is_ok());
    }

    #[test]
    fn publish_falls_back_to_set_then_default_and_limit_0_exempts() {
        let plan = Plan::new(&parse(
            "[default]\nlimit = 10\n[actions.set]\nlimit = 100\n[actions.get]\nlimit = 0",
        ))
        .unwrap();
        let limit = |kind: Kind| plan.kinds[kind.index()].as_ref().map(|r| r.limit.limit);
        assert_eq!(limit(Kind::Publish), Some(100));
        assert_eq!(limit(Kind::Set), Some(100));
        assert_eq!(limit(Kind::Count), Some(10));
        assert_eq!(
            limit(Kind::Get),
            None,
            "limit 0 and no max_uses: not limited"
        );
        let plan = Plan::new(&parse("[default]\nlimit = 10")).unwrap();
        let publish = plan.kinds[Kind::Publish.index()].as_ref().unwrap();
        assert_eq!(publish.limit.limit, 10);
        let quota = publish.quota.unwrap();
        assert_eq!(quota.burst_size().get(), 10);
        assert_eq!(quota.replenish_interval(), Duration::from_millis(100));
        assert!(
            Plan::new(&parse(""))
                .unwrap()
                .kinds
                .iter()
                .all(Option::is_none)
        );
    }
}
