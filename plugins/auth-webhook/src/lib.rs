//! An auth provider that asks an HTTP(S) endpoint, a webhook, whether a username and
//! password may log in ([`pathmq_core::security::AuthProvider`], DESIGN.md §7 "pluggable
//! auth providers"). Typical use: MQTT devices and native clients whose credentials live
//! in a company's user service rather than in the broker's directory.
//!
//! # The webhook's contract
//!
//! Each login the cache cannot answer is one `POST <url>` with the configured headers and
//! a JSON body (`client_id` and `peer` are `null` when the session has none):
//!
//! ```json
//! {"username": "sensor-1", "password": "…", "protocol": "mqtt",
//!  "client_id": "sensor-1-boot-7", "peer": "203.0.113.7:51234"}
//! ```
//!
//! `protocol` is `"mqtt"`, `"native"`, `"http"` or `"local"`. The answer decides:
//!
//! | answer | the login |
//! |---|---|
//! | 200 `{"ok": true, …}` | accepted as the user below |
//! | 200 `{"ok": false}`, or 401, or 403 (any body) | refused: MQTT CONNACK "bad user name or password", native 401 |
//! | anything else: another status (redirects are not followed), a 200 that is not that JSON, no whole answer within `timeout_ms`, no connection | failed: MQTT CONNACK "server unavailable", native 500; nothing is cached |
//!
//! An accepting answer may say who the user is; every field but `ok` is optional, and
//! fields not listed here are ignored:
//!
//! ```json
//! {"ok": true,
//!  "groups": ["devices"],
//!  "custom_data": {"room": "kitchen"},
//!  "permissions": {"/sensors/{{user.username}}/*": {"actions": ["set"]}}}
//! ```
//!
//! `groups` name groups of the broker's directory: their permissions apply. `custom_data`
//! is read by permission templates (`{{user.custom_data.room}}`). `permissions` are the
//! user's own, in the directory's shape (`{"actions": […], "prohibit": […]}` by path
//! glob); a glob that does not compile fails the login. Answers over 64 KiB fail too.
//!
//! Usernames the directory could not hold (empty, starting with `_`, or with `/`, `*` or
//! NUL) and empty passwords are refused without a call. A username the directory has is
//! the directory's: the webhook is never asked about it.
//!
//! # The cache
//!
//! An accepted login is kept for `cache_ttl_ms`: the same username and password log in
//! again without a call. A refused one is kept for `negative_ttl_ms`, so a client
//! retrying a wrong password does not call the webhook each time. Passwords are never
//! kept: an entry holds a salted SHA-256 of the username and password (the salt is drawn
//! at random when the provider is made), compared in constant time. At most `cache_max`
//! usernames are kept; when full, expired entries go first, then the oldest.
//! Logins the cache cannot answer each call the webhook, even several at once for the
//! same username.
//!
//! A password changed or revoked at the webhook still logs in from the cache until its
//! entry expires: choose `cache_ttl_ms` with that in mind.
//!
//! Token logins and grant refreshes cannot call the webhook (they ask
//! [`AuthProvider::user`], which is not async), so they find the user only while its
//! accepted login is cached: after `cache_ttl_ms`, a client with a token must log in with
//! its password again, and a change to one of the user's directory groups logs its live
//! sessions out (the broker no longer knows the user).
//!
//! # Configuration
//!
//! ```toml
//! [security.auth_webhook]
//! url = "https://auth.example/pathmq"        # http:// or https://
//! timeout_ms = 2000                          # per call, connect and answer included
//! cache_ttl_ms = 60000                       # accepted logins (0: not kept)
//! negative_ttl_ms = 5000                     # refused logins (0: not kept)
//! cache_max = 10000                          # usernames kept at most (0: no cache)
//! headers = { Authorization = "Bearer s3cret" }  # sent with every call, never logged
//! ```
//!
//! Only `url` is required; the others have the defaults shown. Or register it in code:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use pathmq_plugin_auth_webhook::{WebhookAuthProvider, WebhookConfig};
//!
//! let config = WebhookConfig::new("https://auth.example/pathmq")
//!     .timeout_ms(1_000)
//!     .header("Authorization", "Bearer s3cret");
//! let provider = WebhookAuthProvider::new(config)?;
//! // pathmq::Broker::builder().auth_provider(provider).start().await?;
//! # drop(provider);
//! # Ok(())
//! # }
//! ```
//!
//! The provider's name, what a native login's `authType` names, is `webhook`
//! ([`WebhookAuthProvider::named`] changes it).
//!
//! Passwords and header values are never logged. A refused login is logged at info, a
//! failed call at warn, each with the username and the status or reason; the URL is
//! logged without its user info and query.

mod cache;
mod config;
mod wire;

#[cfg(test)]
mod tests;

use std::time::Instant;

use parking_lot::Mutex;
use pathmq_core::security::{AuthProvider, Password, ProviderError, SessionFacts, User};
use reqwest::redirect::Policy;

use cache::{Cache, Hit, Salt};
use config::Checked;
pub use config::{
    DEFAULT_CACHE_MAX, DEFAULT_CACHE_TTL_MS, DEFAULT_NEGATIVE_TTL_MS, DEFAULT_TIMEOUT_MS,
    WebhookConfig, WebhookConfigError,
};
use wire::{CallError, LoginRequest, Verdict};

/// The provider's default name (what `authType` names).
pub const NAME: &str = "webhook";

/// Logins checked by a webhook, with a timeout and a cache (crate docs).
pub struct WebhookAuthProvider {
    name: String,
    client: reqwest::Client,
    target: Checked,
    salt: Salt,
    /// Held only to read or write an entry, never across a call.
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for WebhookAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAuthProvider")
            .field("name", &self.name)
            .field("url", &self.target.shown)
            .field("timeout", &self.target.timeout)
            .field("cached", &self.cache.lock().len())
            .finish_non_exhaustive()
    }
}

impl WebhookAuthProvider {
    /// A provider calling the webhook `config` describes. Nothing is called yet.
    ///
    /// # Errors
    /// Each names its key: [`WebhookConfigError::Url`] (not a URL, no host),
    /// [`WebhookConfigError::Scheme`] (not http/https), [`WebhookConfigError::ZeroTimeout`],
    /// [`WebhookConfigError::Header`] (a name or value that cannot be sent); and
    /// [`WebhookConfigError::Client`], [`WebhookConfigError::Salt`] when the system
    /// cannot give TLS roots or randomness.
    pub fn new(config: WebhookConfig) -> Result<Self, WebhookConfigError> {
        let target = config.check()?;
        let client = reqwest::Client::builder()
            // A redirect would send the password somewhere else: it fails the call.
            .redirect(Policy::none())
            // Nor a proxy from the environment (`HTTPS_PROXY`): passwords go straight to
            // the configured endpoint.
            .no_proxy()
            .user_agent(concat!("pathmq-auth-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(WebhookConfigError::Client)?;
        let salt = Salt::random().map_err(WebhookConfigError::Salt)?;
        let cache = Cache::new(
            std::time::Duration::from_millis(config.cache_ttl_ms),
            std::time::Duration::from_millis(config.negative_ttl_ms),
            config.cache_max,
        );
        Ok(Self {
            name: NAME.to_owned(),
            client,
            target,
            salt,
            cache: Mutex::new(cache),
        })
    }

    /// Renames the provider (for `authType`), e.g. to register two webhooks.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How many usernames the cache holds now (expired ones included until pushed out).
    pub fn cached(&self) -> usize {
        self.cache.lock().len()
    }

    /// Asks the webhook about `username` and `password`, bounded by the timeout.
    async fn call(
        &self,
        username: &str,
        password: &Password,
        facts: &SessionFacts,
    ) -> Result<Verdict, CallError> {
        let body = LoginRequest::new(username, password.expose(), facts);
        let exchange = async {
            let mut response = (self.client.post(self.target.url.clone()))
                .headers(self.target.headers.clone())
                .json(&body)
                .send()
                .await?;
            let status = response.status();
            let body = match status {
                reqwest::StatusCode::OK => wire::read_body(&mut response).await?,
                _ => Vec::new(),
            };
            wire::verdict(status, &body, username)
        };
        let ms = self
            .target
            .timeout
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX);
        tokio::time::timeout(self.target.timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout { ms })?
    }
}

/// Whether the directory could hold `username` (as `auth-file` checks its users).
fn acceptable(username: &str) -> bool {
    !username.is_empty() && !username.starts_with('_') && !username.contains(['/', '*', '\0'])
}

#[async_trait::async_trait]
impl AuthProvider for WebhookAuthProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn login(
        &self,
        username: &str,
        password: Password,
        facts: &SessionFacts,
    ) -> Result<Option<User>, ProviderError> {
        if !acceptable(username) || password.is_empty() {
            tracing::debug!(username, "not a webhook login: refused without a call");
            return Ok(None);
        }
        let digest = self.salt.digest(username, password.expose());
        let hit = self.cache.lock().lookup(username, &digest, Instant::now());
        if let Some(hit) = hit {
            tracing::debug!(
                username,
                accepted = matches!(hit, Hit::Accepted(_)),
                "auth webhook answer from the cache"
            );
            return Ok(match hit {
                Hit::Accepted(user) => Some(user),
                Hit::Refused => None,
            });
        }
        match self.call(username, &password, facts).await {
            Ok(Verdict::Accepted(user)) => {
                let now = Instant::now();
                self.cache
                    .lock()
                    .accept(username, digest, user.clone(), now);
                Ok(Some(user))
            }
            Ok(Verdict::Refused(status)) => {
                tracing::info!(
                    username,
                    status = status.as_u16(),
                    provider = %self.name,
                    "login refused by the auth webhook"
                );
                self.cache.lock().refuse(username, digest, Instant::now());
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(
                    username,
                    url = %self.target.shown,
                    provider = %self.name,
                    %error,
                    "auth webhook call failed"
                );
                Err(ProviderError {
                    provider: self.name.clone(),
                    reason: format!("webhook {error}"),
                })
            }
        }
    }

    fn user(&self, username: &str) -> Option<User> {
        self.cache.lock().user(username, Instant::now())
    }
}
