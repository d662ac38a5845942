//! The provider's settings, [`WebhookConfig`] (`[security.auth_webhook]` in the broker's
//! config), and what is wrong with them, [`WebhookConfigError`].

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

/// Where the webhook is and how its answers are kept (crate docs for the TOML).
///
/// `Debug` shows the URL without its user info and query, and the header names without
/// their values: both may hold the webhook's secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The endpoint logins are `POST`ed to: an `http://` or `https://` URL.
    pub url: String,
    /// How long one call may take, connecting and reading the answer included (ms; at
    /// least 1). A call that takes longer fails the login as "server unavailable".
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long an accepted login is kept (ms): the same username and password log in
    /// again without a call, and token logins and grant refreshes find the user. `0` keeps
    /// nothing.
    #[serde(default = "default_cache_ttl_ms")]
    pub cache_ttl_ms: u64,
    /// How long a refused username and password are kept (ms), so a client retrying the
    /// same wrong password does not call the webhook each time. `0` keeps nothing.
    #[serde(default = "default_negative_ttl_ms")]
    pub negative_ttl_ms: u64,
    /// How many usernames the cache holds at most; when full, expired entries go first,
    /// then the oldest. `0` turns the cache off.
    #[serde(default = "default_cache_max")]
    pub cache_max: usize,
    /// Headers sent with every call, e.g. `Authorization` (the webhook's own secret).
    /// Their values are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The default of [`WebhookConfig::timeout_ms`].
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// The default of [`WebhookConfig::cache_ttl_ms`].
pub const DEFAULT_CACHE_TTL_MS: u64 = 60_000;
/// The default of [`WebhookConfig::negative_ttl_ms`].
pub const DEFAULT_NEGATIVE_TTL_MS: u64 = 5_000;
/// The default of [`WebhookConfig::cache_max`].
pub const DEFAULT_CACHE_MAX: usize = 10_000;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_cache_ttl_ms() -> u64 {
    DEFAULT_CACHE_TTL_MS
}
fn default_negative_ttl_ms() -> u64 {
    DEFAULT_NEGATIVE_TTL_MS
}
fn default_cache_max() -> usize {
    DEFAULT_CACHE_MAX
}

impl WebhookConfig {
    /// Settings for the webhook at `url`, everything else at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            cache_ttl_ms: DEFAULT_CACHE_TTL_MS,
            negative_ttl_ms: DEFAULT_NEGATIVE_TTL_MS,
            cache_max: DEFAULT_CACHE_MAX,
            headers: BTreeMap::new(),
        }
    }

    /// Sets [`WebhookConfig::timeout_ms`].
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = ms;
        self
    }

    /// Sets [`WebhookConfig::cache_ttl_ms`].
    pub fn cache_ttl_ms(mut self, ms: u64) -> Self {
        self.cache_ttl_ms = ms;
        self
    }

    /// Sets [`WebhookConfig::negative_ttl_ms`].
    pub fn negative_ttl_ms(mut self, ms: u64) -> Self {
        self.negative_ttl_ms = ms;
        self
    }

    /// Sets [`WebhookConfig::cache_max`].
    pub fn cache_max(mut self, max: usize) -> Self {
        self.cache_max = max;
        self
    }

    /// Adds a header sent with every call.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The checked URL, timeout and headers (header values marked sensitive).
    pub(crate) fn check(&self) -> Result<Checked, WebhookConfigError> {
        let url = Url::parse(&self.url).map_err(|e| WebhookConfigError::Url {
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookConfigError::Scheme {
                scheme: url.scheme().to_owned(),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(WebhookConfigError::Url {
                reason: "no host".into(),
            });
        }
        if self.timeout_ms == 0 {
            return Err(WebhookConfigError::ZeroTimeout);
        }
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let problem = |reason: &str| WebhookConfigError::Header {
                name: name.clone(),
                reason: reason.to_owned(),
            };
            let key = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| problem("not a valid header name"))?;
            // The error names the header, never its value.
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| problem("the value has characters a header cannot hold"))?;
            value.set_sensitive(true);
            headers.insert(key, value);
        }
        Ok(Checked {
            shown: redacted(&url),
            url,
            timeout: Duration::from_millis(self.timeout_ms),
            headers,
        })
    }
}

/// What [`WebhookConfig::check`] gives.
pub(crate) struct Checked {
    pub(crate) url: Url,
    /// The URL as logs may show it.
    pub(crate) shown: String,
    pub(crate) timeout: Duration,
    pub(crate) headers: HeaderMap,
}

/// `url` without user info, query and fragment: what logs and `Debug` may show.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = Url::parse(&self.url).map_or_else(|_| "<invalid>".to_owned(), |u| redacted(&u));
        f.debug_struct("WebhookConfig")
            .field("url", &url)
            .field("timeout_ms", &self.timeout_ms)
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .field("negative_ttl_ms", &self.negative_ttl_ms)
            .field("cache_max", &self.cache_max)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why [`WebhookConfig`] cannot be used: each names its key. Nothing is registered then.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookConfigError {
    /// `url` is not a URL, or has no host. (The URL itself is not repeated: it may hold
    /// a secret.)
    #[error("security.auth_webhook.url: not a usable URL: {reason}")]
    Url {
        /// What is wrong with it.
        reason: String,
    },
    /// `url` is neither `http://` nor `https://`.
    #[error("security.auth_webhook.url: scheme `{scheme}` is not http or https")]
    Scheme {
        /// The scheme given.
        scheme: String,
    },
    /// `timeout_ms` is 0.
    #[error("security.auth_webhook.timeout_ms: must be at least 1 (ms)")]
    ZeroTimeout,
    /// A header's name or value cannot be sent (the value is not repeated).
    #[error("security.auth_webhook.headers: `{name}`: {reason}")]
    Header {
        /// The header's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built (its TLS roots, for example).
    #[error("security.auth_webhook: building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The system gave no randomness for the cache's salt.
    #[error("security.auth_webhook: no randomness for the cache's salt: {0}")]
    Salt(#[source] getrandom::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_reads_with_defaults_and_refuses_unknown_keys() {
        let config: WebhookConfig = toml::from_str(
            r#"
            url = "https://auth.example/pathmq"
            timeout_ms = 1500
            headers = { Authorization = "Bearer s3cret" }
            "#,
        )
        .unwrap();
        assert_eq!(config.timeout_ms, 1500);
        assert_eq!(config.cache_ttl_ms, DEFAULT_CACHE_TTL_MS);
        assert_eq!(config.negative_ttl_ms, DEFAULT_NEGATIVE_TTL_MS);
        assert_eq!(config.cache_max, DEFAULT_CACHE_MAX);
        assert!(config.check().is_ok());
        let shown = format!("{config:?}");
        assert!(
            shown.contains("Authorization") && !shown.contains("s3cret"),
            "{shown}"
        );

        let unknown = toml::from_str::<WebhookConfig>("url = \"http://a\"\ntimeout = 3\n");
        assert!(unknown.unwrap_err().to_string().contains("timeout"));
    }

    #[test]
    fn bad_settings_name_their_key_and_hide_secrets() {
        for (config, expect) in [
            (WebhookConfig::new("not a url"), "url: not a usable URL"),
            (WebhookConfig::new("ftp://host/x"), "scheme `ftp`"),
            (WebhookConfig::new("http://h/").timeout_ms(0), "timeout_ms"),
            (
                WebhookConfig::new("http://h/").header("bad name", "x"),
                "headers: `bad name`",
            ),
            (
                WebhookConfig::new("http://h/").header("X-Key", "s3cret\n"),
                "headers: `X-Key`",
            ),
        ] {
            let error = config.check().err().expect(expect).to_string();
            assert!(error.contains(expect), "{expect}: {error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn the_shown_url_drops_credentials_and_query() {
        let config = WebhookConfig::new("https://user:pw@auth.example:8443/check?key=k#f");
        let checked = config.check().unwrap();
        assert_eq!(checked.shown, "https://auth.example:8443/check");
        assert!(!format!("{config:?}").contains("pw@"));
    }
}
