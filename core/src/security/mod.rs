//! Security (DESIGN.md §7; `reference/happn-3.md` SECURITY sections): users, groups,
//! permissions and the decision whether a session may do a request.
//!
//! | module | job |
//! |---|---|
//! | `model` | users, groups, permissions as stored (the reference's shapes) |
//!
//! Work in progress (issue 5): the permission engine (templates, globs, prohibit),
//! the directory of users and groups in the store, and enforcement in the core and the
//! protocols come next; with `secure = false` (the default) nothing here is consulted.

pub mod model;

pub use model::{Group, PermissionEntry, Permissions, Right, SessionFacts, User};

/// Where users are stored: `/_SYSTEM/security/users/<username>` (reserved: never
/// readable or writable over the wire).
pub const USERS_PREFIX: &str = "/_SYSTEM/security/users";

/// Where groups are stored: `/_SYSTEM/security/groups/<name>`.
pub const GROUPS_PREFIX: &str = "/_SYSTEM/security/groups";
