//! Security switched on (`secure = true`, DESIGN.md §7): who a session is once it has
//! logged in ([`Identity`]), how a login is checked ([`Security::login`]), and whether a
//! request is allowed ([`Security::authorize`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::ANONYMOUS_USER;
use super::directory::{ADMIN_USER, AuthError, Directory, DirectoryError, UserInput};
use super::grants::{Grants, GrantsError};
use super::lockout::{LockoutConfig, Lockouts};
use super::login::{ConnectionCounts, Credentials, LoginSession, SessionEnd};
use super::model::{Right, SessionFacts, User};
use super::password::Password;
use super::profile::{Profile, ProfileError, Profiles};
use super::provider::{AuthProvider, BUILT_IN_PROVIDER, ProviderError};
use super::token::{Claims, TokenError, Tokens};
use crate::Store;
use crate::error::Error;
use crate::request::Request;

/// Who a logged-in session is: its user, the grants compiled for this session (its
/// templates filled with the user's data and the session's client id), and, for a
/// network login, its token and policy.
#[derive(Debug)]
pub struct Identity {
    /// The user's name.
    pub username: String,
    /// What the user may do in this session.
    pub grants: Grants,
    /// The user's groups when the grants were compiled (a change to one of them
    /// recomputes this session's grants).
    pub groups: std::collections::BTreeSet<String>,
    /// The login's token, profile and policy counters; `None` for the broker's own
    /// trusted identities ([`Security::trusted_identity`]).
    pub login: Option<Arc<LoginSession>>,
}

impl Identity {
    /// Whether the user's grants and, for a session whose policy has `permissions`, that
    /// scope too, pass `check` (a request needs both: token-scoped permissions).
    pub(crate) fn allows(&self, check: impl Fn(&Grants) -> bool) -> bool {
        let scope = self.login.as_ref().and_then(|login| login.scope.as_ref());
        check(&self.grants) && scope.is_none_or(check)
    }
}

/// How security behaves (DESIGN.md §7; docs/SECURITY.md lists each setting).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// Nested permissions (reference: NESTED PERMISSIONS FOR GET AND SET,
    /// `allowNestedPermissions`): a wildcard `get`/`count`/search or `on` reaching paths
    /// the user may read only some of is allowed, and answers (or delivers) only those.
    pub nested_permissions: bool,
    /// The token signing secret (at least 32 bytes); `None` generates one at first
    /// start and stores it.
    pub token_secret: Option<String>,
    /// How long a token is valid when the session's policy has no `ttl` (default 24 h).
    pub token_ttl: Duration,
    /// Rolling tokens: a login with a token gets a new token and the old one is revoked
    /// (ending the sessions still using it).
    pub rolling_tokens: bool,
    /// Session profiles, in priority order (reference: SECURITY PROFILES).
    pub profiles: Vec<Profile>,
    /// Account lockout after failed password logins; `None` for none (default: 4
    /// failures, 10 minutes).
    pub lockout: Option<LockoutConfig>,
    /// `_ADMIN` may not log in over the network, only in process (reference:
    /// `disableDefaultAdminNetworkConnections`).
    pub disable_default_admin_network_connections: bool,
    /// The user `_ANONYMOUS` may log in without a password (reference: ANONYMOUS USER);
    /// it is created (with no permissions) when missing.
    pub allow_anonymous_access: bool,
    /// Other places password logins are checked, after the directory, in order
    /// ([`super::provider`]).
    pub providers: Vec<Arc<dyn AuthProvider>>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            nested_permissions: false,
            token_secret: None,
            token_ttl: Duration::from_secs(86_400),
            rolling_tokens: false,
            profiles: Vec::new(),
            lockout: Some(LockoutConfig::default()),
            disable_default_admin_network_connections: false,
            allow_anonymous_access: false,
            providers: Vec::new(),
        }
    }
}

/// Why security could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// The token service did not open.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A profile is wrong.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The anonymous user could not be created.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Unknown user or wrong password (the two are not told apart).
    #[error("invalid credentials")]
    BadCredentials,
    /// The token is forged, expired or revoked.
    #[error(transparent)]
    Token(TokenError),
    /// Too many failed logins: the account is locked for this long.
    #[error("account locked after too many failed logins; retry in {} s", .retry_after.as_secs().max(1))]
    LockedOut {
        /// How long it stays locked.
        retry_after: Duration,
    },
    /// The user may not log in this way: `_ADMIN` over the network when that is
    /// disabled, or from an address outside the policy's `sourceIPWhitelist`.
    #[error("{0}")]
    AccessDenied(String),
    /// The user already has `limit` sessions (policy `max_connections`).
    #[error(
        "`{username}` has reached the connection limit of {limit}; no more connections allowed"
    )]
    TooManyConnections {
        /// Who.
        username: String,
        /// The policy's limit.
        limit: u32,
    },
    /// The password could not be checked.
    #[error("the login could not be checked: {0}")]
    Unavailable(#[source] AuthError),
    /// An auth provider could not answer.
    #[error(transparent)]
    Provider(ProviderError),
    /// The user's permissions do not compile (an administrator's template typo).
    #[error("the user's permissions are invalid: {0}")]
    Grants(#[source] GrantsError),
}

impl From<LoginError> for Error {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::BadCredentials => Error::Unauthenticated("invalid credentials".into()),
            LoginError::Token(TokenError::Store { .. } | TokenError::Secret(_)) => {
                Error::Internal(error.to_string())
            }
            LoginError::Token(_) | LoginError::LockedOut { .. } => {
                Error::Unauthenticated(error.to_string())
            }
            LoginError::AccessDenied(_) | LoginError::TooManyConnections { .. } => {
                Error::Forbidden(error.to_string())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

/// The security service of a secure broker: the directory of users and groups, tokens,
/// profiles, and the login and authorization rules. Shared by every protocol through the
/// core.
#[derive(Debug)]
pub struct Security {
    directory: Directory,
    tokens: Tokens,
    profiles: Profiles,
    config: SecurityConfig,
    lockouts: Lockouts,
    connections: ConnectionCounts,
    /// Ids of tokens revoked by this process: the core ends their sessions.
    revocations: broadcast::Sender<String>,
}

impl Security {
    /// Security over `directory`, with tokens kept in `store` (its secret and
    /// revocations, under `/_SYSTEM/security`).
    ///
    /// # Errors
    /// [`SecurityError::Token`] (a bad configured secret, an unreadable store),
    /// [`SecurityError::Profile`] (a bad profile), [`SecurityError::Directory`] (the
    /// anonymous user could not be created).
    pub async fn open(
        directory: Directory,
        store: Arc<dyn Store>,
        config: SecurityConfig,
    ) -> Result<Self, SecurityError> {
        let tokens = Tokens::open(store, config.token_secret.as_deref()).await?;
        let profiles = Profiles::new(config.profiles.clone())?;
        if config.allow_anonymous_access && directory.get_user(ANONYMOUS_USER).is_none() {
            directory
                .upsert_user(UserInput {
                    username: ANONYMOUS_USER.into(),
                    ..UserInput::default()
                })
                .await?;
            tracing::info!("created the {ANONYMOUS_USER} user (no permissions yet)");
        }
        Ok(Self {
            directory,
            tokens,
            profiles,
            lockouts: Lockouts::new(config.lockout),
            connections: ConnectionCounts::default(),
            revocations: broadcast::channel(1024).0,
            config,
        })
    }

    /// The directory, to manage users, groups and permissions from the broker's own
    /// process (DESIGN.md §7: never over the wire).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The token service.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The profiles.
    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// How many stateful sessions `username` has now (policy `max_connections`).
    pub fn connection_count(&self, username: &str) -> u32 {
        self.connections.count(username)
    }

    /// Checks `credentials` for a session described by `facts`, selects its profile and
    /// compiles its grants (DESIGN.md §7). A password or anonymous login gets a new
    /// token; a token login keeps its token (or, with rolling tokens, gets a new one and
    /// the old one is revoked).
    ///
    /// # Errors
    /// [`LoginError::BadCredentials`] for an unknown user or a wrong password (timing does
    /// not tell them apart), or a disallowed anonymous login; [`LoginError::Token`];
    /// [`LoginError::LockedOut`]; [`LoginError::AccessDenied`];
    /// [`LoginError::TooManyConnections`]; [`LoginError::Unavailable`];
    /// [`LoginError::Grants`]. A refused login leaves nothing behind but a failure count.
    pub async fn login(
        &self,
        credentials: Credentials,
        facts: &SessionFacts,
    ) -> Result<Arc<Identity>, LoginError> {
        // A password login's name, to forgive its counted attempt once every check passed.
        let password_login = match &credentials {
            Credentials::Password { username, .. } => Some(username.clone()),
            _ => None,
        };
        let (user, previous) = match credentials {
            Credentials::Password {
                username,
                password,
                auth_type,
            } => {
                self.check_admin_network(&username, facts)?;
                // Refused by address before any password work: a right password from the
                // wrong place must not be told apart from a wrong one.
                if let Some(known) = self.lookup_user(&username) {
                    self.check_address(&known, facts)?;
                }
                let provider_named = auth_type.as_deref().is_some_and(|t| t != BUILT_IN_PROVIDER);
                if provider_named
                    && !self
                        .config
                        .providers
                        .iter()
                        .any(|p| Some(p.name()) == auth_type.as_deref())
                {
                    // An unknown provider: refused at once, and not counted (it checks no
                    // password, so it must not be a cheap way to fill the lockout table).
                    return Err(LoginError::BadCredentials);
                }
                self.lockouts
                    .begin(&username)
                    .map_err(|retry_after| LoginError::LockedOut { retry_after })?;
                let user = self
                    .check_password(&username, password, auth_type.as_deref(), facts)
                    .await?;
                (user, None)
            }
            Credentials::Token { token, username } => {
                let claims = self.tokens.verify(&token).map_err(LoginError::Token)?;
                if username.is_some_and(|u| u != claims.sub) {
                    return Err(LoginError::Token(TokenError::Invalid));
                }
                self.check_admin_network(&claims.sub, facts)?;
                if claims.sub == ANONYMOUS_USER && !self.config.allow_anonymous_access {
                    return Err(LoginError::BadCredentials);
                }
                let user = self
                    .lookup_user(&claims.sub)
                    .ok_or(LoginError::BadCredentials)?;
                // Tokens without `iat_ms` (signed elsewhere) are placed at the end of
                // their second.
                let issued_ms = match claims.iat_ms {
                    0 => claims.iat.saturating_mul(1000).saturating_add(999),
                    ms => ms,
                };
                if issued_ms < user.tokens_after_ms {
                    // Issued before the password changed, or to an earlier user of the name.
                    return Err(LoginError::Token(TokenError::Revoked));
                }
                (user, Some((token, claims)))
            }
            Credentials::Certificate { username } => {
                // A CA that signs device certificates must not mint `_ADMIN` or
                // `_ANONYMOUS` logins: reserved users log in with a password or a token.
                if username.starts_with('_') {
                    return Err(LoginError::BadCredentials);
                }
                self.check_admin_network(&username, facts)?;
                let user = self
                    .lookup_user(&username)
                    .ok_or(LoginError::BadCredentials)?;
                (user, None)
            }
            Credentials::Anonymous => {
                let user = (self.lookup_user(ANONYMOUS_USER))
                    .filter(|_| self.config.allow_anonymous_access)
                    .ok_or(LoginError::BadCredentials)?;
                (user, None)
            }
        };
        let profile = self.check_address(&user, facts)?;
        let slot = match facts.stateless {
            true => None,
            false => Some(
                (self.connections)
                    .acquire(
                        &user.username,
                        profile.policy.max_connections,
                        facts.takes_over.as_deref() == Some(user.username.as_str()),
                    )
                    .ok_or_else(|| LoginError::TooManyConnections {
                        username: user.username.clone(),
                        limit: profile.policy.max_connections.unwrap_or_default(),
                    })?,
            ),
        };
        let scope = (profile.policy.grants(&user, facts)).map_err(LoginError::Grants)?;
        let mut identity = self.identity_from(user.clone(), facts)?;
        let from_token = previous.is_some();
        let (token, claims) = match previous {
            // A stateless use (an HTTP request) never rolls its token: security/http.rs.
            Some((token, claims)) if !self.config.rolling_tokens || facts.stateless => {
                (token, claims)
            }
            previous => {
                let ttl = profile.policy.ttl.unwrap_or(self.config.token_ttl);
                let issued = self.tokens.issue(&user.username, ttl);
                if let Some((_, old)) = previous {
                    self.revoke_token(&old).await.map_err(LoginError::Token)?;
                }
                issued
            }
        };
        identity.login = Some(Arc::new(LoginSession::new(
            token, claims, profile, scope, slot, from_token,
        )));
        if let Some(username) = password_login {
            self.lockouts.succeeded(&username);
        }
        for voided in identity.grants.voided() {
            tracing::warn!(
                username = %identity.username,
                owner = %voided.owner,
                template = %voided.template,
                reason = ?voided.reason,
                "templated permission voided for this session"
            );
        }
        Ok(Arc::new(identity))
    }

    /// The identity of `username` without a password: for the broker's own process (the
    /// local admin client, DESIGN.md §7), never for a network login. No token, no policy.
    ///
    /// # Errors
    /// [`LoginError::BadCredentials`] for an unknown user, [`LoginError::Grants`].
    pub fn trusted_identity(
        &self,
        username: &str,
        facts: &SessionFacts,
    ) -> Result<Arc<Identity>, LoginError> {
        self.identity_of(username, facts).map(Arc::new)
    }

    /// `identity` with its grants compiled anew from the directory (after a change to its
    /// user or groups), keeping its login; `None` when the user is gone or its
    /// permissions no longer compile.
    pub fn renew(&self, identity: &Identity, facts: &SessionFacts) -> Option<Arc<Identity>> {
        let mut renewed = self.identity_of(&identity.username, facts).ok()?;
        renewed.login = identity.login.clone();
        Some(Arc::new(renewed))
    }

    /// Revokes a token for good (logout, `revoke-token`): stored, then every session using
    /// it ends ([`SessionEnd::TokenRevoked`]). Answers whether it was not revoked
    /// already.
    ///
    /// # Errors
    /// [`TokenError::Store`]: the token is still valid.
    pub async fn revoke_token(&self, claims: &Claims) -> Result<bool, TokenError> {
        let revoked = self.tokens.revoke(claims).await?;
        if revoked {
            tracing::info!(username = %claims.sub, token = %claims.jti, "token revoked");
            let _ = self.revocations.send(claims.jti.clone());
        }
        Ok(revoked)
    }

    /// Token ids revoked from now on (the core ends their sessions).
    pub(crate) fn subscribe_revocations(&self) -> broadcast::Receiver<String> {
        self.revocations.subscribe()
    }

    /// Counts one request of `identity`'s session against its policy.
    ///
    /// # Errors
    /// The [`SessionEnd`] that ends the session: its token was revoked, or its `ttl`,
    /// `inactivity_threshold` or `usage_limit` is spent.
    pub fn check_session(&self, identity: &Identity) -> Result<(), SessionEnd> {
        let Some(login) = &identity.login else {
            return Ok(());
        };
        if self.tokens.is_revoked(&login.claims.jti) {
            return Err(SessionEnd::TokenRevoked);
        }
        login.use_once()
    }

    /// The profile of `user`'s session, unless its policy's `sourceIPWhitelist` refuses
    /// the session's address.
    fn check_address(&self, user: &User, facts: &SessionFacts) -> Result<Arc<Profile>, LoginError> {
        let profile = self.profiles.select(user, facts);
        let peer = facts.peer.map(|p| p.ip());
        if !profile.policy.admits(peer) {
            return Err(LoginError::AccessDenied(format!(
                "`{}` may not log in from {} (profile `{}`)",
                user.username,
                peer.map_or_else(String::new, |ip| ip.to_canonical().to_string()),
                profile.name
            )));
        }
        Ok(profile)
    }

    fn check_admin_network(&self, username: &str, facts: &SessionFacts) -> Result<(), LoginError> {
        if username == ADMIN_USER
            && self.config.disable_default_admin_network_connections
            && facts.peer.is_some()
        {
            return Err(LoginError::AccessDenied(
                "use of _ADMIN credentials over the network is disabled".into(),
            ));
        }
        Ok(())
    }

    /// Checks a password with the provider `auth_type` names, or the directory and then
    /// the other providers (module docs of [`super::provider`]).
    async fn check_password(
        &self,
        username: &str,
        password: Password,
        auth_type: Option<&str>,
        facts: &SessionFacts,
    ) -> Result<User, LoginError> {
        let providers = &self.config.providers;
        let candidates: Vec<&Arc<dyn AuthProvider>> = match auth_type {
            None => providers.iter().collect(),
            Some(BUILT_IN_PROVIDER) => Vec::new(),
            Some(name) => match providers.iter().find(|p| p.name() == name) {
                Some(provider) => vec![provider],
                None => return Err(LoginError::BadCredentials),
            },
        };
        let known = self.directory.get_user(username).is_some();
        let use_directory = match auth_type {
            Some(BUILT_IN_PROVIDER) => true,
            // A name the directory has is the directory's: a provider may not log in as it
            // (its tokens, refreshes and data would be the directory user's).
            Some(_) if known => return Err(LoginError::BadCredentials),
            Some(_) => false,
            None => providers.is_empty() || known,
        };
        if use_directory {
            return match self.directory.verify(username, password).await {
                Ok(user) => Ok(user),
                Err(AuthError::BadCredentials) => Err(LoginError::BadCredentials),
                Err(other) => Err(LoginError::Unavailable(other)),
            };
        }
        for provider in candidates {
            let found = (provider.login(username, password.clone(), facts).await)
                .map_err(LoginError::Provider)?;
            if let Some(user) = found {
                tracing::debug!(
                    username,
                    provider = provider.name(),
                    "login accepted by auth provider"
                );
                return Ok(user);
            }
        }
        Err(LoginError::BadCredentials)
    }

    /// The user by name: the directory's, else the first provider's that knows it.
    fn lookup_user(&self, username: &str) -> Option<User> {
        self.directory
            .get_user(username)
            .or_else(|| self.config.providers.iter().find_map(|p| p.user(username)))
    }

    fn identity_of(&self, username: &str, facts: &SessionFacts) -> Result<Identity, LoginError> {
        let user = self
            .lookup_user(username)
            .ok_or(LoginError::BadCredentials)?;
        self.identity_from(user, facts)
    }

    /// `user`'s identity for a session with `facts`: its own permissions and those of its
    /// groups that exist in the directory.
    fn identity_from(&self, user: User, facts: &SessionFacts) -> Result<Identity, LoginError> {
        let groups = self.directory.groups_named(&user.groups);
        let groups: Vec<_> = groups.iter().collect();
        let grants = Grants::compile(&user, &groups, facts)
            .map_err(LoginError::Grants)?
            .with_nested(self.config.nested_permissions);
        Ok(Identity {
            username: user.username,
            grants,
            groups: user.groups,
            login: None,
        })
    }

    /// Whether `identity` may run `request` (DESIGN.md §7): `set` for a set, `get` for a
    /// get, count or search (of every path a glob can reach), `remove` for a remove,
    /// `on` for a subscription; `off` is always allowed.
    ///
    /// # Errors
    /// [`Error::Forbidden`] naming the user, the action and the target.
    pub fn authorize(&self, identity: &Identity, request: &Request) -> Result<(), Error> {
        let (right, target, allowed) = match request {
            Request::Set { path, .. } => (
                Right::Set,
                path.as_str(),
                identity.allows(|g| g.allows_path(Right::Set, path)),
            ),
            Request::Get { target }
            | Request::Count { target }
            | Request::Search { target, .. }
            | Request::CountMatching { target, .. } => (
                Right::Get,
                target.as_str(),
                identity.allows(|g| g.allows_glob(Right::Get, target)),
            ),
            Request::Remove { target, .. } | Request::RemoveMatching { target, .. } => (
                Right::Remove,
                target.as_str(),
                identity.allows(|g| g.allows_glob(Right::Remove, target)),
            ),
            Request::On { pattern, .. } => (
                Right::On,
                pattern.as_str(),
                identity.allows(|g| g.allows_pattern(Right::On, pattern)),
            ),
            Request::Off(_) => return Ok(()),
        };
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
