//! Rate limits for pathmq (`reference/hapta.md`, "Ratelimiting"): a middleware
//! [`Layer`] with token buckets per session, per user and per action, and an optional
//! cap on how many requests of an action one session may make.
//!
//! # Configuration
//!
//! The table under `[plugins.rate_limit]` of the broker's config file deserializes into
//! [`RateLimitConfig`] (unknown keys are refused):
//!
//! ```toml
//! [plugins.rate_limit]
//! per = ["session", "user"]    # the buckets a request is counted in; default both
//!
//! [plugins.rate_limit.default] # every action without an entry below; absent: not limited
//! limit = 10                   # requests per `every` (also the largest burst)
//! every = 1000                 # ms; default 1000
//! max_uses = 0                 # requests of that action one session may make; 0 = no cap
//!
//! [plugins.rate_limit.actions.set]
//! limit = 100
//! every = 1000
//!
//! [plugins.rate_limit.actions.get]
//! limit = 0                    # 0: no rate limit for `get` (exempt from the default)
//! ```
//!
//! * **Actions**: `set`, `get`, `count`, `remove`, `on`, `off`, and `publish`: a `set`
//!   that is not stored (an MQTT PUBLISH without retain, a native `publish`/`noStore`).
//!   An MQTT PUBLISH with retain is a `set` (an empty one a `remove`), SUBSCRIBE is `on`,
//!   UNSUBSCRIBE `off`; native searches count as `get`. Logins, `describe` and other
//!   session actions are never limited.
//! * **Fallback**: an action's own entry, else (for `publish`) `set`'s entry, else
//!   `default`, else not limited. The fallback lends the numbers, not the bucket: every
//!   action has its own buckets, so `publish` falling back to `set`'s 100/s may make 100
//!   publishes and 100 sets each second.
//! * **Buckets**: a bucket holds `limit` tokens and gets one back every `every / limit`
//!   ms ([governor]'s GCRA); a request takes one token from each bucket it is counted in
//!   (`per`). `session`: one bucket per session (connection). `user`: one per logged-in
//!   user, shared by all the user's sessions, so opening more connections does not buy
//!   more requests. Users exist only on a **secure** broker once a session has logged
//!   in; on an insecure broker (or before login) only session buckets apply. Every
//!   session logged in as the same user — the anonymous user too — shares that user's
//!   buckets.
//! * **`limit = 0`** means "no rate limit" for that action (its `every` is ignored), so
//!   an action can be exempted from `default`; its `max_uses`, if any, still applies.
//! * **`max_uses`** counts the requests of that action a session made while its
//!   connection lasts (a durable MQTT session that reconnects starts again); refused
//!   requests do not count.
//!
//! Nonsense is refused when the layer is made, naming the key ([`RateLimitConfigError`]):
//! an unknown action, `every = 0` with a `limit` above 0, more than one request per
//! nanosecond, `per = []`.
//!
//! # Registering it
//!
//! ```
//! use pathmq_plugin_rate_limit::{Limit, RateLimitConfig, RateLimitLayer};
//!
//! // From the config file's table …
//! let config: RateLimitConfig = toml::from_str("[default]\nlimit = 10\nevery = 1000")?;
//! // … or in code.
//! let mut config = RateLimitConfig { default: Some(Limit::new(10, 1000)), ..config };
//! config.actions.insert("publish".into(), Limit::new(100, 1000).max_uses(10_000));
//! let layer = RateLimitLayer::new(config)?;
//! // pathmq::Broker::builder().layer(layer).start().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What a client over a limit gets
//!
//! The request is rejected with [`pathmq_core::Error::RateLimited`] (429) and nothing
//! happens; the message names the limit: `rate limit exceeded: at most 10 set requests
//! per 1000 ms per session; try again in 37 ms`, or `usage limit exceeded: at most 5 set
//! requests per session`. A native client gets a 429 error answer; an MQTT 5 client is
//! disconnected with reason `0x96` (message rate too high); an MQTT 3.1.1 client stays
//! connected and its PUBLISH is dropped. Each rejection is counted in
//! `pathmq_rate_limited_total` (and `pathmq_rejected_total`).
//!
//! # Memory
//!
//! A session's buckets and counters are freed when its connection ends
//! ([`Layer::session_ended`]). Users' buckets are kept across sessions and swept
//! (governor's `retain_recent`, dropping those that are full again) every 64 ended
//! sessions, so both are bounded by what is live, not by every session ever seen.

mod config;
mod limits;

use async_trait::async_trait;
use governor::clock::DefaultClock;
use pathmq_core::{InboundVerdict, Layer, LayerContext, Request, SessionInfo};

pub use config::{Limit, RateLimitConfig, RateLimitConfigError, Scope};

use config::{Kind, Plan};
use limits::Limits;

/// The rate-limit middleware (crate docs). Register it with
/// `pathmq::Broker::builder().layer(RateLimitLayer::new(config)?)`.
#[derive(Debug)]
pub struct RateLimitLayer {
    limits: Limits<DefaultClock>,
}

impl RateLimitLayer {
    /// A layer enforcing `config`.
    ///
    /// # Errors
    /// [`RateLimitConfigError`] naming the offending key: an unknown action name, `every
    /// = 0` with a `limit` above 0, a rate above one request per nanosecond, `per = []`.
    /// Nothing is registered then.
    pub fn new(config: RateLimitConfig) -> Result<Self, RateLimitConfigError> {
        let plan = Plan::new(&config)?;
        Ok(Self {
            limits: Limits::new(plan, DefaultClock::default()),
        })
    }
}

#[async_trait]
impl Layer for RateLimitLayer {
    fn name(&self) -> &str {
        "rate-limit"
    }

    async fn inbound(&self, cx: &LayerContext<'_>, request: &mut Request) -> InboundVerdict {
        let Some(kind) = Kind::of(request) else {
            return InboundVerdict::Continue;
        };
        let session = cx.session();
        match self.limits.check(session.id, cx.username(), kind) {
            Ok(()) => InboundVerdict::Continue,
            Err(error) => {
                tracing::debug!(session = %session.id, user = cx.username(), %error, "rate limited");
                InboundVerdict::Reject(error)
            }
        }
    }

    fn session_ended(&self, session: &SessionInfo) {
        self.limits.forget_session(session.id);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use pathmq_core::security::{Grants, Identity};
    use pathmq_core::{Error, Path, Payload, SessionId, SetOptions};
    use serde_json::json;

    use super::*;

    fn info() -> SessionInfo {
        SessionInfo {
            id: SessionId::new(),
            protocol: "native",
            peer: None,
            client_id: None,
        }
    }

    fn identity(username: &str) -> Arc<Identity> {
        Arc::new(Identity {
            username: username.into(),
            grants: Grants::default(),
            groups: BTreeSet::new(),
            login: None,
        })
    }

    fn set(no_store: bool) -> Request {
        Request::Set {
            path: Path::parse("/a").unwrap(),
            payload: Payload::json(&json!({"v": 1})),
            options: SetOptions {
                no_store,
                ..SetOptions::default()
            },
        }
    }

    async fn verdict(
        layer: &RateLimitLayer,
        cx: &LayerContext<'_>,
        request: Request,
    ) -> Option<Error> {
        match layer.inbound(cx, &mut { request }).await {
            InboundVerdict::Continue => None,
            InboundVerdict::Reject(error) => Some(error),
            other => panic!("unexpected verdict {other:?}"),
        }
    }

    #[tokio::test]
    async fn sets_and_publishes_are_limited_apart_through_the_layer() {
        let config: RateLimitConfig =
            toml::from_str("[actions.set]\nlimit = 2\nevery = 60000").unwrap();
        let layer = RateLimitLayer::new(config).unwrap();
        let session = info();
        let cx = LayerContext::new(&session, None);
        for _ in 0..2 {
            assert!(verdict(&layer, &cx, set(false)).await.is_none());
            assert!(verdict(&layer, &cx, set(true)).await.is_none());
        }
        let error = verdict(&layer, &cx, set(false)).await.unwrap();
        assert_eq!(error.code(), 429);
        assert!(
            error.to_string().contains("at most 2 set requests"),
            "{error}"
        );
        let error = verdict(&layer, &cx, set(true)).await.unwrap();
        assert!(
            error.to_string().contains("at most 2 publish requests"),
            "{error}"
        );
        // Requests of kinds without a limit pass.
        let get = Request::Get {
            target: pathmq_core::Glob::parse("/a").unwrap(),
        };
        assert!(verdict(&layer, &cx, get).await.is_none());
    }

    #[tokio::test]
    async fn logged_in_sessions_share_their_users_bucket() {
        let config: RateLimitConfig =
            toml::from_str("per = [\"user\"]\n[default]\nlimit = 1\nevery = 60000").unwrap();
        let layer = RateLimitLayer::new(config).unwrap();
        let (one, two) = (info(), info());
        let ann = identity("ann");
        let cx_one = LayerContext::new(&one, Some(ann.clone()));
        let cx_two = LayerContext::new(&two, Some(ann));
        assert!(verdict(&layer, &cx_one, set(false)).await.is_none());
        let error = verdict(&layer, &cx_two, set(false)).await.unwrap();
        assert!(error.to_string().contains("per user"), "{error}");
        layer.session_ended(&one);
        layer.session_ended(&two);
        // The user's bucket outlives its sessions.
        let three = info();
        let cx_three = LayerContext::new(&three, Some(identity("ann")));
        assert!(verdict(&layer, &cx_three, set(false)).await.is_some());
    }

    #[tokio::test]
    async fn session_ended_frees_the_sessions_buckets() {
        let config: RateLimitConfig =
            toml::from_str("[default]\nlimit = 1\nevery = 60000\nmax_uses = 5").unwrap();
        let layer = RateLimitLayer::new(config).unwrap();
        let session = info();
        let cx = LayerContext::new(&session, None);
        assert!(verdict(&layer, &cx, set(false)).await.is_none());
        assert!(verdict(&layer, &cx, set(false)).await.is_some());
        assert_eq!(layer.limits.held(), (2, 0));
        layer.session_ended(&session);
        assert_eq!(layer.limits.held(), (0, 0));
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let mut config = RateLimitConfig::default();
        config.actions.insert("publish".into(), Limit::new(5, 0));
        assert_eq!(
            RateLimitLayer::new(config).unwrap_err(),
            RateLimitConfigError::ZeroPeriod {
                key: "actions.publish".into()
            }
        );
    }
}
