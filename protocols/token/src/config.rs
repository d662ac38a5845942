//! The `[token]` table ([`TokenConfig`]) and the path templates it holds.
//!
//! `inbound` and `replies` are path templates: `{{username}}` stands for the client's
//! identity (its certificate CN, see the crate docs). They are checked once, in
//! [`crate::Token::new`], with a sample name; each connection then fills them with its own
//! name, which [`check_username`] has vetted so that it can only ever fill one path
//! segment with no wildcard.

use std::net::SocketAddr;
use std::time::Duration;

use pathmq_core::{Path, PathError, Pattern};
use serde::Deserialize;

/// The placeholder replaced by the client's identity.
pub const USERNAME_PLACEHOLDER: &str = "{{username}}";

/// The largest `max_token`: the 4-byte length prefix cannot say more.
pub const MAX_TOKEN_LIMIT: usize = u32::MAX as usize;

/// The longest identity (certificate CN or peer address) put into a path, in bytes.
pub const MAX_USERNAME_LEN: usize = 256;

/// What a received token does on the inbound path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Publish without storing (the native `publish`, an MQTT PUBLISH without retain):
    /// subscribers get it, nothing is kept. The default.
    #[default]
    Publish,
    /// Store, then publish (the native `set`, an MQTT PUBLISH with retain): the last token
    /// stays readable at the inbound path.
    Set,
}

/// The token protocol's settings: the `[token]` table of the broker's config file.
///
/// ```toml
/// [token]
/// enabled = true                       # default false
/// listen = "127.0.0.1:8090"
/// tls = true                           # TLS with the broker's [tls] certificate and client CA
/// require_certificate = true           # refuse a client without a verified certificate
/// inbound = "/tokens/{{username}}/in"  # where a received token goes
/// mode = "publish"                     # publish (not stored) | set (stored)
/// replies = "/tokens/{{username}}/out" # events here go back as tokens; "" for none
/// max_token = 1048576                  # bytes, both directions
/// write_timeout_ms = 10000             # a client that reads nothing this long is dropped
/// ```
///
/// `enabled`, `listen` and `tls` are for whoever binds the listener (the `pathmq`
/// binary: `ProtocolListener::new("token", listen, ..).tls(tls)`); the protocol itself
/// reads the rest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TokenConfig {
    /// Whether the broker runs a token listener. Default false.
    pub enabled: bool,
    /// The address to bind. Default `127.0.0.1:8090` (the reference's port).
    pub listen: SocketAddr,
    /// Whether the listener runs TLS. Default true (the reference is TLS only).
    pub tls: bool,
    /// Refuse a client that presented no verified certificate. Default true (the
    /// reference asks every client for one). When false, such a client's identity is its
    /// address (`127.0.0.1:53211`) and, on a secure broker, it logs in as the anonymous
    /// user (which must be allowed).
    pub require_certificate: bool,
    /// Where a received token goes: an exact path template. Default
    /// `/tokens/{{username}}/in`.
    pub inbound: String,
    /// Whether a received token is published only or stored too. Default `publish`.
    pub mode: Mode,
    /// Events on this subscription pattern template go back to the client as tokens: an
    /// exact path, or a native pattern (`/tokens/{{username}}/out/**`). Default
    /// `/tokens/{{username}}/out`; empty: the client gets nothing back.
    pub replies: String,
    /// The largest token, in bytes, in either direction. A larger incoming one closes the
    /// connection; a larger event is not sent (logged). Default 1 MiB (1,048,576).
    pub max_token: usize,
    /// How long a write may wait for the client to read, in ms; then the connection is
    /// dropped. Default 10,000.
    pub write_timeout_ms: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            tls: true,
            require_certificate: true,
            inbound: format!("/tokens/{USERNAME_PLACEHOLDER}/in"),
            mode: Mode::Publish,
            replies: format!("/tokens/{USERNAME_PLACEHOLDER}/out"),
            max_token: 1024 * 1024,
            write_timeout_ms: 10_000,
        }
    }
}

impl TokenConfig {
    /// Checks the settings as [`crate::Token::new`] does, for a config file's validation
    /// step.
    ///
    /// # Errors
    /// As [`crate::Token::new`].
    pub fn validate(&self) -> Result<(), TokenConfigError> {
        Settings::new(self.clone()).map(drop)
    }
}

/// Why a [`TokenConfig`] was refused. Nothing was started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenConfigError {
    /// A template holds a placeholder other than `{{username}}`, or a stray `{{`/`}}`.
    #[error("token.{field} = {template:?}: only {USERNAME_PLACEHOLDER} may be used in it")]
    Placeholder {
        /// `"inbound"` or `"replies"`.
        field: &'static str,
        /// The template as configured.
        template: String,
    },
    /// A template does not make a valid path (`inbound`: an exact path, no wildcard) or
    /// subscription pattern (`replies`).
    #[error("token.{field} = {template:?} does not make a valid {what}: {source}")]
    Path {
        /// `"inbound"` or `"replies"`.
        field: &'static str,
        /// The template as configured.
        template: String,
        /// `"path"` or `"subscription pattern"`.
        what: &'static str,
        /// Why.
        #[source]
        source: PathError,
    },
    /// `max_token` is 0 or more than the 4-byte length prefix can say.
    #[error("token.max_token = {value}: must be between 1 and {MAX_TOKEN_LIMIT}")]
    MaxToken {
        /// The configured value.
        value: usize,
    },
    /// `write_timeout_ms` is 0.
    #[error("token.write_timeout_ms must be above 0")]
    WriteTimeout,
    /// `require_certificate` without `tls`: every client would be refused.
    #[error(
        "token.require_certificate is true but token.tls is false: no client could connect \
         (set tls = true, or require_certificate = false)"
    )]
    CertificateWithoutTls,
}

/// A path or pattern with `{{username}}` placeholders, split around them.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<String>,
}

impl Template {
    fn parse(field: &'static str, template: &str) -> Result<Self, TokenConfigError> {
        let parts: Vec<String> = template
            .split(USERNAME_PLACEHOLDER)
            .map(str::to_owned)
            .collect();
        if parts.iter().any(|p| p.contains("{{") || p.contains("}}")) {
            return Err(TokenConfigError::Placeholder {
                field,
                template: template.to_owned(),
            });
        }
        Ok(Self { parts })
    }

    /// The template with every placeholder replaced by `username`.
    pub(crate) fn render(&self, username: &str) -> String {
        self.parts.join(username)
    }
}

/// A [`TokenConfig`] checked and compiled: what each connection reads.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: TokenConfig,
    pub(crate) inbound: Template,
    /// `None`: no replies.
    pub(crate) replies: Option<Template>,
    pub(crate) write_timeout: Duration,
}

impl Settings {
    /// Closes a refused client's stream (TLS `close_notify`, then FIN), giving up after
    /// the write timeout.
    pub(crate) async fn close(&self, mut io: pathmq_core::BoxIo) {
        use tokio::io::AsyncWriteExt as _;
        let _ = tokio::time::timeout(self.write_timeout, io.shutdown()).await;
    }
}

/// A name that passes [`check_username`], to check the templates with.
const SAMPLE_USERNAME: &str = "sample";

impl Settings {
    pub(crate) fn new(config: TokenConfig) -> Result<Self, TokenConfigError> {
        if config.max_token == 0 || config.max_token > MAX_TOKEN_LIMIT {
            return Err(TokenConfigError::MaxToken {
                value: config.max_token,
            });
        }
        if config.write_timeout_ms == 0 {
            return Err(TokenConfigError::WriteTimeout);
        }
        if config.require_certificate && !config.tls {
            return Err(TokenConfigError::CertificateWithoutTls);
        }
        let path_error = |field, template: &str, what, source| TokenConfigError::Path {
            field,
            template: template.to_owned(),
            what,
            source,
        };
        let inbound = Template::parse("inbound", &config.inbound)?;
        Path::parse(&inbound.render(SAMPLE_USERNAME))
            .map_err(|e| path_error("inbound", &config.inbound, "path", e))?;
        let replies = match config.replies.is_empty() {
            true => None,
            false => {
                let replies = Template::parse("replies", &config.replies)?;
                Pattern::native(&replies.render(SAMPLE_USERNAME)).map_err(|e| {
                    path_error("replies", &config.replies, "subscription pattern", e)
                })?;
                Some(replies)
            }
        };
        Ok(Self {
            write_timeout: Duration::from_millis(config.write_timeout_ms),
            config,
            inbound,
            replies,
        })
    }
}

/// Whether `name` may stand for `{{username}}`: it must fill exactly one path segment and
/// add no wildcard, so that a client can never reach another client's paths by its
/// certificate's CN. `Err` says why not.
pub(crate) fn check_username(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_USERNAME_LEN {
        return Err("it is longer than 256 bytes");
    }
    if name.contains('/') {
        return Err("it contains `/`, which would add path levels");
    }
    if name.contains(['*', '+', '#']) {
        return Err("it contains a wildcard character (`*`, `+` or `#`)");
    }
    if name.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
