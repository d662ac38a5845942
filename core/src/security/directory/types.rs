//! The directory's configuration, inputs, change notices and errors.

use serde_json::{Map, Value};

use super::super::model::Permissions;
use super::super::password::{DEFAULT_COST, Password, PasswordError};
use crate::{PathError, StoreError};

/// The administrator's username, created at first start ([`Directory::ensure_admin`]).
pub const ADMIN_USER: &str = "_ADMIN";

/// The administrators' group: every right on every path.
pub const ADMIN_GROUP: &str = "_ADMIN";

/// The longest username or group name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// How many changes a slow [`Directory::subscribe_changes`] receiver may fall behind
/// before it misses some and is told so (`RecvError::Lagged`): it should then recompute
/// everything it derived from the directory.
pub(super) const CHANGES_CAPACITY: usize = 1024;

/// How the directory stores and hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryConfig {
    /// Store permissions with their users and groups (the default). `false` keeps them in
    /// memory only (reference: `persistPermissions`; see the module docs for what survives
    /// a restart).
    pub persist_permissions: bool,
    /// bcrypt cost of new password hashes ([`super::password::MIN_COST`] to
    /// [`super::password::MAX_COST`]; default [`DEFAULT_COST`]).
    pub bcrypt_cost: u32,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            persist_permissions: true,
            bcrypt_cost: DEFAULT_COST,
        }
    }
}

/// What [`Directory::upsert_user`] is given (reference: add a user). Its `Debug` shows
/// the password as `***`.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    /// The login name.
    pub username: String,
    /// The new password; `None` keeps the stored hash (or leaves a new user without one:
    /// such a user cannot log in with a password).
    pub password: Option<Password>,
    /// Replaces the user's `custom_data`.
    pub custom_data: Map<String, Value>,
    /// Merged into the user's permissions ([`merge_permissions`]).
    pub permissions: Permissions,
}

/// A user or group changed; sessions of the users concerned recompute their grants.
/// A group change concerns its members ([`Directory::list_usernames_in_group`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirectoryChange {
    /// The user was created or changed (password, data, groups or permissions).
    UserChanged {
        /// Who.
        username: String,
    },
    /// The user was deleted.
    UserDeleted {
        /// Who.
        username: String,
    },
    /// The group was created or changed.
    GroupChanged {
        /// Which.
        name: String,
    },
    /// The group was deleted (its members were unlinked first, each announced).
    GroupDeleted {
        /// Which.
        name: String,
    },
}

/// A directory operation failed. Unless the variant says otherwise, nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// A username or group name breaks the naming rules.
    #[error("{kind} name `{name}` is invalid: {reason}")]
    InvalidName {
        /// `"user"` or `"group"`.
        kind: &'static str,
        /// The refused name.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A permission's path glob is not a valid glob.
    #[error("permission path `{path}` is invalid")]
    InvalidPermissionPath {
        /// The refused glob.
        path: String,
        /// Why.
        #[source]
        source: PathError,
    },
    /// A permission's glob holds a template that cannot be parsed (an unclosed `{{`, an
    /// unknown variable): refused when the permission is written, not at login.
    #[error("permission path `{path}` has an invalid template")]
    InvalidTemplate {
        /// The refused glob.
        path: String,
        /// Why.
        #[source]
        source: crate::security::TemplateError,
    },
    /// No user by that name.
    #[error("there is no user `{username}`")]
    UnknownUser {
        /// The name looked for.
        username: String,
    },
    /// No group by that name.
    #[error("there is no group `{name}`")]
    UnknownGroup {
        /// The name looked for.
        name: String,
    },
    /// The operation would take `_ADMIN`'s rights away (deleting the `_ADMIN` user or
    /// group, or unlinking one from the other).
    #[error("`{name}` is reserved: {what}")]
    Reserved {
        /// The reserved name.
        name: String,
        /// What was refused.
        what: &'static str,
    },
    /// The password given for a user was refused or could not be hashed.
    #[error("the password for user `{username}` was not set")]
    Password {
        /// Whose password.
        username: String,
        /// Why.
        #[source]
        source: PasswordError,
    },
    /// The configuration is invalid (the bcrypt cost).
    #[error("invalid security directory configuration")]
    Config(#[source] PasswordError),
    /// The store failed. What was written before this operation is intact; the message
    /// says what is left of this one.
    #[error("the store failed {what}")]
    Store {
        /// What was being done, and what state is left.
        what: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A stored user or group record is unreadable: the directory refuses to open rather
    /// than run without it (it could hold a prohibit).
    #[error("stored security record `{path}` is unreadable")]
    Corrupt {
        /// The record's path.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// A login was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Unknown user, wrong password, or a user without a password: deliberately one
    /// answer, so a client cannot learn which usernames exist.
    #[error("bad credentials: unknown user or wrong password")]
    BadCredentials,
    /// The password could not be checked (the hashing task failed).
    #[error("the password could not be checked")]
    Unavailable(#[source] PasswordError),
}

/// What [`Directory::ensure_admin`] created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminSetup {
    /// The `_ADMIN` user was created now, with the given password.
    pub user_created: bool,
    /// The `_ADMIN` group was created now.
    pub group_created: bool,
}
