//! Security switched on (`secure = true`, DESIGN.md §7): who a session is once it has
//! logged in ([`Identity`]), how a login is checked ([`Security::login`]), and whether a
//! request is allowed ([`Security::authorize`]).

use std::sync::Arc;

use super::directory::{AuthError, Directory};
use super::grants::{Grants, GrantsError};
use super::model::{Right, SessionFacts};
use super::password::Password;
use crate::error::Error;
use crate::request::Request;

/// Who a logged-in session is: its user and the grants compiled for this session (its
/// templates filled with the user's data and the session's client id).
#[derive(Debug)]
pub struct Identity {
    /// The user's name.
    pub username: String,
    /// What the user may do in this session.
    pub grants: Grants,
}

/// How security behaves.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// Nested permissions (reference: NESTED PERMISSIONS FOR GET AND SET,
    /// `allowNestedPermissions`). Not carried yet: a glob read must be allowed whole.
    pub nested_permissions: bool,
}

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Unknown user or wrong password (the two are not told apart).
    #[error("invalid credentials")]
    BadCredentials,
    /// The password could not be checked.
    #[error("the login could not be checked: {0}")]
    Unavailable(#[source] AuthError),
    /// The user's permissions do not compile (an administrator's template typo).
    #[error("the user's permissions are invalid: {0}")]
    Grants(#[source] GrantsError),
}

impl From<LoginError> for Error {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::BadCredentials => Error::Unauthenticated("invalid credentials".into()),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// The security service of a secure broker: the directory of users and groups and the
/// login and authorization rules. Shared by every protocol through the core.
#[derive(Debug)]
pub struct Security {
    directory: Directory,
    config: SecurityConfig,
}

impl Security {
    /// Security over `directory`.
    pub fn new(directory: Directory, config: SecurityConfig) -> Self {
        Self { directory, config }
    }

    /// The directory, to manage users, groups and permissions from the broker's own
    /// process (DESIGN.md §7: never over the wire).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Checks `username` and `password` and compiles the user's grants for a session
    /// with `facts`.
    ///
    /// # Errors
    /// [`LoginError::BadCredentials`] for an unknown user or a wrong password (timing does
    /// not tell them apart), [`LoginError::Unavailable`], [`LoginError::Grants`].
    pub async fn login(
        &self,
        username: &str,
        password: Password,
        facts: &SessionFacts,
    ) -> Result<Arc<Identity>, LoginError> {
        let user = match self.directory.verify(username, password).await {
            Ok(user) => user,
            Err(AuthError::BadCredentials) => return Err(LoginError::BadCredentials),
            Err(other) => return Err(LoginError::Unavailable(other)),
        };
        let identity = self.trusted_identity(&user.username, facts)?;
        for voided in identity.grants.voided() {
            tracing::warn!(
                username = %identity.username,
                owner = %voided.owner,
                template = %voided.template,
                reason = ?voided.reason,
                "templated permission voided for this session"
            );
        }
        Ok(identity)
    }

    /// The identity of `username` without a password: for the broker's own process (the
    /// local admin client, DESIGN.md §7), never for a network login.
    ///
    /// # Errors
    /// [`LoginError::BadCredentials`] for an unknown user, [`LoginError::Grants`].
    pub fn trusted_identity(
        &self,
        username: &str,
        facts: &SessionFacts,
    ) -> Result<Arc<Identity>, LoginError> {
        let (user, groups) = self
            .directory
            .user_and_groups(username)
            .ok_or(LoginError::BadCredentials)?;
        let groups: Vec<_> = groups.iter().collect();
        let grants = Grants::compile(&user, &groups, facts)
            .map_err(LoginError::Grants)?
            .with_nested(self.config.nested_permissions);
        Ok(Arc::new(Identity {
            username: user.username,
            grants,
        }))
    }

    /// Whether `identity` may run `request` (DESIGN.md §7): `set` for a set, `get` for a
    /// get, count or search (of every path a glob can reach), `remove` for a remove,
    /// `on` for a subscription; `off` is always allowed.
    ///
    /// # Errors
    /// [`Error::Forbidden`] naming the user, the action and the target.
    pub fn authorize(&self, identity: &Identity, request: &Request) -> Result<(), Error> {
        let grants = &identity.grants;
        let (right, target, allowed) = match request {
            Request::Set { path, .. } => (
                Right::Set,
                path.as_str(),
                grants.allows_path(Right::Set, path),
            ),
            Request::Get { target }
            | Request::Count { target }
            | Request::Search { target, .. }
            | Request::CountMatching { target, .. } => (
                Right::Get,
                target.as_str(),
                grants.allows_glob(Right::Get, target),
            ),
            Request::Remove { target, .. } | Request::RemoveMatching { target, .. } => (
                Right::Remove,
                target.as_str(),
                grants.allows_glob(Right::Remove, target),
            ),
            Request::On { pattern, .. } => (
                Right::On,
                pattern.as_str(),
                grants.allows_pattern(Right::On, pattern),
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
