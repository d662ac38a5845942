//! HTTP requests as stateless sessions (DESIGN.md §7; reference: WEB PATH LEVEL SECURITY,
//! USING A BEARER TOKEN AUTHORIZATION HEADER): the login of `/auth/login`, the identity of
//! one request carrying a token, and the `@HTTP` decision for the embedding program's
//! routes. The HTTP listener ([`crate::transport`]) calls these.
//!
//! # One request, one stateless login
//! Each request that carries a token logs in with it again, as a stateless session
//! ([`http_facts`]: protocol `"http"`, profile `type` 0, no connection slot): the token is
//! verified (signature, expiry, revocation), `_ADMIN` over the network is refused when that
//! is disabled, the user must still exist, the profile is selected for this request's peer
//! (so `sourceIPWhitelist` holds per request) and the grants are compiled from the
//! directory as it is now (a permission change applies to the next request). A stateless
//! use never rolls a token (`rolling_tokens` applies to connections logging in).
//!
//! # Counting uses
//! A policy's `usage_limit`, `inactivity_threshold` and `ttl` count across requests, per
//! token: the first request's [`LoginSession`] (its counters) is kept in
//! [`StatelessSessions`] under the token's id, and every later request with that token
//! and profile is counted on it ([`Security::check_session`]). A token whose usage is spent
//! or that went idle too long is refused over HTTP until it expires; a new login gives a
//! new token. Tokens whose policy counts nothing are not kept. The table is bounded
//! ([`StatelessSessions::with_capacity`]): when it is full, expired tokens are dropped
//! first, then an arbitrary one, whose counts then start again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::login::{Credentials, LoginSession};
use super::model::{HTTP_PREFIX, Right, SessionFacts};
use super::service::{Identity, LoginError, Security};
use crate::error::Error;

/// The facts of an HTTP request from `peer`: protocol `"http"`, stateless (profile `type`
/// 0), no client id.
pub fn http_facts(peer: SocketAddr) -> SessionFacts {
    SessionFacts {
        protocol: "http",
        peer: Some(peer),
        stateless: true,
        ..SessionFacts::default()
    }
}

/// The use counters of tokens used over HTTP, by token id (module docs). Bounded.
#[derive(Debug)]
pub struct StatelessSessions {
    by_token: Mutex<HashMap<String, Arc<LoginSession>>>,
    capacity: usize,
}

impl Default for StatelessSessions {
    /// Room for 65,536 tokens.
    fn default() -> Self {
        Self::with_capacity(65_536)
    }
}

impl StatelessSessions {
    /// Room for `capacity` tokens (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            by_token: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// How many tokens are kept.
    pub fn len(&self) -> usize {
        self.by_token.lock().len()
    }

    /// Whether no token is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the counters of the token `jti` (after a logout).
    pub fn forget(&self, jti: &str) {
        self.by_token.lock().remove(jti);
    }

    /// The counters to use for `login`: the kept ones of its token when they are of the
    /// same profile, else `login` itself, kept from now on.
    fn keep(&self, login: Arc<LoginSession>) -> Arc<LoginSession> {
        let mut by_token = self.by_token.lock();
        let jti = &login.claims.jti;
        if let Some(kept) = by_token.get(jti)
            && kept.profile.name == login.profile.name
        {
            return kept.clone();
        }
        if by_token.len() >= self.capacity && !by_token.contains_key(jti) {
            by_token.retain(|_, kept| kept.token_expires_in() > 0);
            if by_token.len() >= self.capacity
                && let Some(any) = by_token.keys().next().cloned()
            {
                by_token.remove(&any);
            }
        }
        by_token.insert(jti.clone(), login.clone());
        login
    }
}

impl Security {
    /// Logs in for `/auth/login` from `peer`: a stateless session ([`http_facts`]) whose
    /// [`LoginSession::token`] is handed to the client.
    ///
    /// # Errors
    /// As [`Security::login`].
    pub async fn login_http(
        &self,
        credentials: Credentials,
        peer: SocketAddr,
    ) -> Result<Arc<Identity>, LoginError> {
        self.login(credentials, &http_facts(peer)).await
    }

    /// Who sends one HTTP request from `peer` carrying `token`, with the request counted
    /// against the policy (module docs).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] (401): the token is forged, expired or revoked, its user
    /// is gone, or its policy's `usage_limit`, `inactivity_threshold` or `ttl` is spent;
    /// [`Error::Forbidden`] (403): `_ADMIN` over the network is disabled, or the peer is
    /// outside the policy's `sourceIPWhitelist`; [`Error::Internal`] (500): the token
    /// service or the user's permissions are broken. Nothing is left behind but a use
    /// count.
    pub async fn http_identity(
        &self,
        token: &str,
        peer: SocketAddr,
        sessions: &StatelessSessions,
    ) -> Result<Arc<Identity>, Error> {
        let identity = self.http_identity_uncounted(token, peer, sessions).await?;
        self.check_session(&identity)
            .map_err(|end| Error::Unauthenticated(end.to_string()))?;
        Ok(identity)
    }

    /// [`Security::http_identity`] without counting the request: for a request that then
    /// runs through the core's pipeline ([`crate::Session::request`]), whose
    /// [`Security::check_session`] counts it (once) and refuses a spent or idle token
    /// there (401).
    ///
    /// # Errors
    /// As [`Security::http_identity`], except for the policy's counts.
    pub(crate) async fn http_identity_uncounted(
        &self,
        token: &str,
        peer: SocketAddr,
        sessions: &StatelessSessions,
    ) -> Result<Arc<Identity>, Error> {
        let credentials = Credentials::Token {
            token: token.to_owned(),
            username: None,
        };
        let fresh = self.login(credentials, &http_facts(peer)).await?;
        let counted = fresh.login.as_ref().filter(|login| {
            let policy = &login.profile.policy;
            policy.usage_limit.is_some()
                || policy.inactivity_threshold.is_some()
                || policy.ttl.is_some()
        });
        let identity = match counted.cloned() {
            Some(login) => {
                let kept = sessions.keep(login);
                match Arc::try_unwrap(fresh) {
                    Ok(mut identity) => {
                        identity.login = Some(kept);
                        Arc::new(identity)
                    }
                    Err(shared) => shared,
                }
            }
            None => fresh,
        };
        Ok(identity)
    }

    /// Whether `identity` may send an HTTP request with the method `right` for
    /// `route_path` (the request's path, e.g. `/secure/route/test`): its grants, and its
    /// policy's permissions when it has some, must allow `right` on `/@HTTP<route_path>`
    /// ([`super::Grants::allows_http`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] naming the user, the method and the `@HTTP` path.
    pub fn authorize_http(
        &self,
        identity: &Identity,
        right: Right,
        route_path: &str,
    ) -> Result<(), Error> {
        // `/a/b/` is decided as `/a/b`: the route that serves both is one resource, and
        // a prohibit on `/@HTTP/a/b` must not be passed by adding a `/`.
        let trimmed = match route_path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        let target = format!("{HTTP_PREFIX}{trimmed}");
        let allowed = identity.allows(|grants| grants.allows_http(right, &target));
        match allowed {
            true => Ok(()),
            false => Err(Error::Forbidden(format!(
                "`{}` may not {} `{target}`",
                identity.username,
                right.as_str()
            ))),
        }
    }
}
