//! The `[security]` table (DESIGN.md §7, docs/SECURITY.md).

use pathmq_core::security::{LockoutConfig, Profile};
use serde::Deserialize;

/// Security (DESIGN.md §7, docs/SECURITY.md): off by default for local development.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// Switch security on: every MQTT and native client must log in, and every request
    /// is checked against the user's permissions. Default false.
    pub secure: bool,
    /// The `_ADMIN` user's password, set when `_ADMIN` is first created (later starts
    /// keep the stored one). Required when `secure` is true; prefer the
    /// `PATHMQ_ADMIN_PASSWORD` environment variable to writing it in a file.
    pub admin_password: Option<String>,
    /// bcrypt cost of password hashes (4–31). Default 10.
    pub bcrypt_cost: u32,
    /// Store permissions with their users and groups (reference: `persistPermissions`).
    /// Default true; false keeps permission changes in memory only.
    pub persist_permissions: bool,
    /// The token signing secret, at least 32 bytes (`PATHMQ_TOKEN_SECRET`). Default: one
    /// generated at first start and stored with the data, so tokens survive restarts.
    pub token_secret: Option<String>,
    /// How long a token is valid when the session's profile sets no `ttl`, in ms. Default
    /// 86400000 (24 h).
    pub token_ttl_ms: u64,
    /// A login with a token gets a new token, and the old one is revoked (ending the
    /// sessions still using it). Default false.
    pub rolling_tokens: bool,
    /// `_ANONYMOUS` may log in without a password (reference: ANONYMOUS USER); the user is
    /// created, with no permissions, when missing. Default false.
    pub allow_anonymous_access: bool,
    /// `_ADMIN` may log in only in process, never over the network (reference:
    /// `disableDefaultAdminNetworkConnections`). Default false.
    pub disable_default_admin_network_connections: bool,
    /// Failed password logins that lock an account; 0 for no lockout. Default 4.
    pub lockout_attempts: u32,
    /// How long a locked account stays locked after its last failure, in ms (also the
    /// window failures are counted in). Default 600000 (10 minutes).
    pub lockout_retry_ms: u64,
    /// Session profiles, first match wins (reference: SECURITY PROFILES;
    /// docs/SECURITY.md): `[[security.profiles]]` tables with `name`, `session` (criteria
    /// over the session) and `policy` (`ttl`, `inactivity_threshold`, `usage_limit`,
    /// `permissions`, `sourceIPWhitelist`, `max_connections`).
    pub profiles: Vec<Profile>,
    /// The name of the token cookie `/auth/login` sets and HTTP routes read (reference:
    /// `cookieName`). Default `pathmq_token`.
    pub cookie_name: String,
    /// The broker is reached over HTTPS (through a TLS-terminating proxy): the token
    /// cookie is named `<cookie_name>_https` and marked `Secure` (reference:
    /// `httpsCookie`). Default false.
    pub https_cookie: bool,
    /// A TOML file of extra users checked by the `auth-file` provider
    /// (`plugins/auth-file`: usernames, bcrypt hashes, groups, custom data) after the
    /// directory. Default none.
    pub auth_file: Option<std::path::PathBuf>,
    /// An auth provider that asks an HTTP endpoint (`plugins/auth-webhook`): password
    /// logins the directory and `auth_file` do not know are checked by a POST to its
    /// `url`, with a timeout and a cache. Default none.
    pub auth_webhook: Option<pathmq_plugin_auth_webhook::WebhookConfig>,
    /// Nested permissions (reference: `allowNestedPermissions`): a wildcard read or
    /// subscription over paths the user may reach only in part is allowed, and answers or
    /// delivers only those paths. Default false (it must be allowed whole).
    pub allow_nested_permissions: bool,
    /// How long a native connection may stay without logging in before it is closed
    /// (reference: `unconfiguredSessionCleanup` threshold), in ms; only when `secure`
    /// (otherwise `limits.handshake_timeout_ms` applies). MQTT logs in with its CONNECT,
    /// under `limits.handshake_timeout_ms`. Default 30000.
    pub login_timeout_ms: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            secure: false,
            admin_password: None,
            bcrypt_cost: 10,
            persist_permissions: true,
            token_secret: None,
            token_ttl_ms: 86_400_000,
            rolling_tokens: false,
            allow_anonymous_access: false,
            disable_default_admin_network_connections: false,
            lockout_attempts: 4,
            lockout_retry_ms: 600_000,
            profiles: Vec::new(),
            cookie_name: "pathmq_token".into(),
            https_cookie: false,
            auth_file: None,
            auth_webhook: None,
            allow_nested_permissions: false,
            login_timeout_ms: 30_000,
        }
    }
}

impl SecurityConfig {
    /// The core's security settings from these.
    pub fn core(&self) -> pathmq_core::security::SecurityConfig {
        let mut core = pathmq_core::security::SecurityConfig::default();
        core.token_secret = self.token_secret.clone();
        core.token_ttl = std::time::Duration::from_millis(self.token_ttl_ms);
        core.rolling_tokens = self.rolling_tokens;
        core.profiles = self.profiles.clone();
        core.lockout = (self.lockout_attempts > 0).then(|| LockoutConfig {
            attempts: self.lockout_attempts,
            retry: std::time::Duration::from_millis(self.lockout_retry_ms),
        });
        core.disable_default_admin_network_connections =
            self.disable_default_admin_network_connections;
        core.allow_anonymous_access = self.allow_anonymous_access;
        core.nested_permissions = self.allow_nested_permissions;
        core
    }
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("secure", &self.secure)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "***"),
            )
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("persist_permissions", &self.persist_permissions)
            .field("token_secret", &self.token_secret.as_ref().map(|_| "***"))
            .field("token_ttl_ms", &self.token_ttl_ms)
            .field("rolling_tokens", &self.rolling_tokens)
            .field("allow_anonymous_access", &self.allow_anonymous_access)
            .field(
                "disable_default_admin_network_connections",
                &self.disable_default_admin_network_connections,
            )
            .field("lockout_attempts", &self.lockout_attempts)
            .field("lockout_retry_ms", &self.lockout_retry_ms)
            .field("profiles", &self.profiles)
            .field("cookie_name", &self.cookie_name)
            .field("https_cookie", &self.https_cookie)
            .field("auth_file", &self.auth_file)
            .field("auth_webhook", &self.auth_webhook)
            .field("allow_nested_permissions", &self.allow_nested_permissions)
            .field("login_timeout_ms", &self.login_timeout_ms)
            .finish()
    }
}
