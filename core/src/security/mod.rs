//! Security (DESIGN.md §7; `reference/happn-3.md` SECURITY sections): users, groups,
//! permissions and the decision whether a session may do a request.
//!
//! | module | job |
//! |---|---|
//! | `model` | users, groups, permissions as stored (the reference's shapes) |
//! | `directory` | users and groups in the store, cached; logins; `_ADMIN`; change feed |
//! | `password` | bcrypt hashing off the runtime; a `Password` that never prints |
//! | `template` | `{{user.username}}`, `{{user.custom_data.x}}`, `{{session.client_id}}` in permission globs |
//! | `grants` | the permission engine: a session's merged permissions, compiled at login, and its decisions |
//! | `token` | signed session tokens (HS256), their secret and revocations |
//! | `profile` | session profiles and their policies (ttl, inactivity, usage, scope, addresses, connections) |
//! | `login` | credentials, what a login leaves on a session, per-user connection counts |
//! | `lockout` | account lockout after failed logins |
//! | `provider` | the `AuthProvider` trait: password checks outside the directory |
//! | `service` | `Security`: login, `Identity`, and the authorization of each request |
//! | `refresh` | live sessions' grants recomputed when their user or groups change |
//! | `http` | HTTP requests as stateless sessions: `/auth/login`, token use counts, `@HTTP` route permissions |
//!
//! With `secure = false` (the default) nothing here is consulted. With a [`Security`]
//! given to the core ([`crate::CoreBuilder::security`]), every request of a session
//! needs a logged-in [`Identity`] whose grants allow it.

pub mod directory;
pub mod grants;
pub mod http;
mod lockout;
pub mod login;
#[cfg(test)]
pub(crate) mod mem_store;
pub mod model;
pub mod password;
pub mod profile;
pub mod provider;
mod refresh;
pub mod service;
pub mod template;
pub mod token;

pub use directory::{
    ADMIN_GROUP, ADMIN_USER, AdminSetup, AuthError, Directory, DirectoryChange, DirectoryConfig,
    DirectoryError, UserInput, merge_permissions,
};
pub use grants::{Access, Grants, GrantsError, PermissionOwner, VoidedPermission};
pub use http::{StatelessSessions, http_facts};
pub use lockout::LockoutConfig;
pub use login::{Credentials, LoginSession, SessionEnd};
pub use model::{Group, HTTP_PREFIX, PermissionEntry, Permissions, Right, SessionFacts, User};
pub use password::{Password, PasswordError, PasswordHasher};
pub use profile::{Policy, Profile, ProfileError, Profiles};
pub use provider::{AuthProvider, BUILT_IN_PROVIDER, ProviderError};
pub use service::{Identity, LoginError, Security, SecurityConfig, SecurityError};
pub use template::{Template, TemplateError, VoidReason};
pub use token::{Claims, TokenError, Tokens};

/// Where users are stored: `/_SYSTEM/security/users/<username>` (reserved: never
/// readable or writable over the wire).
pub const USERS_PREFIX: &str = "/_SYSTEM/security/users";

/// The anonymous user (reference: ANONYMOUS USER): logs in with no password when
/// `allow_anonymous_access` is on.
pub const ANONYMOUS_USER: &str = "_ANONYMOUS";

/// Where groups are stored: `/_SYSTEM/security/groups/<name>`.
pub const GROUPS_PREFIX: &str = "/_SYSTEM/security/groups";

pub(crate) use refresh::follow_changes;
