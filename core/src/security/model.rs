//! What security stores: users, groups and their permissions, in the reference's shapes
//! (`reference/happn-3.md` SECURITY USERS AND GROUPS, USER PERMISSIONS; DESIGN.md §7).
//!
//! These are plain data, serialised as JSON into the store under
//! [`USERS_PREFIX`](super::USERS_PREFIX) and [`GROUPS_PREFIX`](super::GROUPS_PREFIX).
//! What they allow is decided by the compiled form ([`super::grants`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An action a permission grants or prohibits (DESIGN.md §7: `get set remove on *`, and
/// the HTTP methods of `@HTTP` permissions). `count` is authorised as `get`; MQTT PUBLISH
/// needs `set`, SUBSCRIBE needs `on`.
///
/// The data rights are `get`, `set`, `remove` and `on`. A permission on `/@HTTP<route>`
/// (reference: WEB PATH LEVEL SECURITY) names HTTP methods instead: `get` (shared with the
/// data right of that name), `post`, `put`, `delete`, `patch`, `head`, `options`. `*`
/// covers every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Right {
    /// Read records (`get`, `count`, search); HTTP `GET` on an `@HTTP` route.
    #[serde(rename = "get")]
    Get,
    /// Write records (`set`, MQTT PUBLISH).
    #[serde(rename = "set")]
    Set,
    /// Remove records.
    #[serde(rename = "remove")]
    Remove,
    /// Subscribe (`on`, MQTT SUBSCRIBE).
    #[serde(rename = "on")]
    On,
    /// Every action.
    #[serde(rename = "*")]
    All,
    /// HTTP `POST` on an `@HTTP` route.
    #[serde(rename = "post")]
    Post,
    /// HTTP `PUT` on an `@HTTP` route.
    #[serde(rename = "put")]
    Put,
    /// HTTP `DELETE` on an `@HTTP` route.
    #[serde(rename = "delete")]
    Delete,
    /// HTTP `PATCH` on an `@HTTP` route.
    #[serde(rename = "patch")]
    Patch,
    /// HTTP `HEAD` on an `@HTTP` route (not implied by `get`).
    #[serde(rename = "head")]
    Head,
    /// HTTP `OPTIONS` on an `@HTTP` route.
    #[serde(rename = "options")]
    Options,
}

impl Right {
    /// Every right, in the order of [`Right::NAMES`].
    pub const EVERY: [Right; 11] = [
        Self::Get,
        Self::Set,
        Self::Remove,
        Self::On,
        Self::All,
        Self::Post,
        Self::Put,
        Self::Delete,
        Self::Patch,
        Self::Head,
        Self::Options,
    ];

    /// The wire name of every right (what [`Right::parse`] accepts).
    pub const NAMES: [&'static str; 11] = [
        "get", "set", "remove", "on", "*", "post", "put", "delete", "patch", "head", "options",
    ];

    /// The wire name (`"get"`, …, `"*"`, `"post"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Remove => "remove",
            Self::On => "on",
            Self::All => "*",
            Self::Post => "post",
            Self::Put => "put",
            Self::Delete => "delete",
            Self::Patch => "patch",
            Self::Head => "head",
            Self::Options => "options",
        }
    }

    /// The right named `name` (a wire name, [`Right::NAMES`]); `None` for anything else.
    pub fn parse(name: &str) -> Option<Right> {
        Self::EVERY.into_iter().find(|r| r.as_str() == name)
    }

    /// The right an HTTP request with `method` (`GET`, `POST`, …, any case) needs on its
    /// `@HTTP` route; `None` for a method no permission can name (`TRACE`, `CONNECT`,
    /// extension methods).
    pub fn of_http_method(method: &str) -> Option<Right> {
        let right = Self::parse(&method.to_ascii_lowercase())?;
        right.is_http_method().then_some(right)
    }

    /// Whether the right names an HTTP method (`get` included).
    pub fn is_http_method(self) -> bool {
        matches!(
            self,
            Self::Get
                | Self::Post
                | Self::Put
                | Self::Delete
                | Self::Patch
                | Self::Head
                | Self::Options
        )
    }

    /// Whether a permission naming `self` covers `action` (`*` covers every action).
    pub fn covers(self, action: Right) -> bool {
        self == Self::All || self == action
    }
}

/// The prefix of the permission globs that guard the broker's HTTP routes (reference: WEB
/// PATH LEVEL SECURITY): an HTTP request for `/secure/x` needs its method's right on
/// `/@HTTP/secure/x`. A glob under this prefix grants nothing on data.
pub const HTTP_PREFIX: &str = "/@HTTP";

/// The permission of one path glob: `{actions: ["get", "on"], prohibit: ["set"]}`
/// (reference: upsertGroup). Any matching prohibit wins over any allow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionEntry {
    /// Allowed actions.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub actions: BTreeSet<Right>,
    /// Prohibited actions.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub prohibit: BTreeSet<Right>,
}

/// Permissions by path glob. A glob is a native path where `*` matches any run of
/// characters, `/` included (DESIGN.md §3, permissions row), and may hold templates
/// (`{{user.username}}`, `{{user.custom_data.x}}`, `{{session.client_id}}`).
pub type Permissions = BTreeMap<String, PermissionEntry>;

/// A user (reference: add a user). The password is only ever kept as a bcrypt hash, and
/// `Debug` does not show even that.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The login name; unique.
    pub username: String,
    /// The bcrypt hash of the password (`$2b$…`); `None` for a user who cannot log in
    /// with a password (the anonymous user, token-only users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Anything the application keeps with the user; readable by templates as
    /// `{{user.custom_data.<key>}}`.
    #[serde(default)]
    pub custom_data: Map<String, Value>,
    /// The groups the user belongs to, by name.
    #[serde(default)]
    pub groups: BTreeSet<String>,
    /// Permissions of this user alone (reference: USER PERMISSIONS), merged with the
    /// groups' ones.
    #[serde(default)]
    pub permissions: Permissions,
    /// Tokens issued before this time (ms since the epoch) do not log in: set when the
    /// user is created and when its password changes, so a password change, or a user
    /// deleted and created again under the same name, does not inherit old tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens_after_ms: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "***"))
            .field("custom_data", &self.custom_data)
            .field("groups", &self.groups)
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// A group (reference: add a group).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The group's name; unique.
    pub name: String,
    /// Anything the application keeps with the group.
    #[serde(default)]
    pub custom_data: Map<String, Value>,
    /// Its permissions.
    #[serde(default)]
    pub permissions: Permissions,
}

/// What is known of a session when it logs in: what templates may read
/// (`{{session.client_id}}`) and what profiles match on (reference: SECURITY PROFILES).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFacts {
    /// The MQTT client id, when the session has one.
    pub client_id: Option<String>,
    /// The protocol (`"mqtt"`, `"native"`, `"http"`, `"local"`).
    pub protocol: &'static str,
    /// The peer's address; `None` for an in-process session.
    pub peer: Option<std::net::SocketAddr>,
    /// A stateless session (an HTTP request with a token: profile `type` 0) rather than a
    /// connection (`type` 1).
    pub stateless: bool,
    /// The user of the live session this login would take over (an MQTT client id in
    /// use): a takeover by the same user is not held to `max_connections`' count, since
    /// the old session ends.
    pub takes_over: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_read_the_reference_shape() {
        let group: Group = serde_json::from_value(json!({
            "name": "TEST",
            "permissions": {
                "/test/path/*": {"actions": ["get", "set"]},
                "/test/allow/all": {"actions": ["*"]},
                "/test/do/not/subscribe": {"prohibit": ["on"]}
            },
            "custom_data": {"test": "data"}
        }))
        .unwrap();
        assert!(
            group.permissions["/test/path/*"]
                .actions
                .contains(&Right::Set)
        );
        assert!(
            group.permissions["/test/allow/all"]
                .actions
                .contains(&Right::All)
        );
        assert!(
            group.permissions["/test/do/not/subscribe"]
                .prohibit
                .contains(&Right::On)
        );
        assert!(Right::All.covers(Right::On) && !Right::Get.covers(Right::Set));
        assert!(Right::All.covers(Right::Post) && !Right::Get.covers(Right::Head));
        let unknown = serde_json::from_value::<PermissionEntry>(json!({"actions": ["fly"]}));
        assert!(
            unknown.is_err(),
            "an unknown action is refused, not ignored"
        );
    }

    #[test]
    fn rights_have_one_name_each_and_http_methods_map() {
        for (right, name) in Right::EVERY.into_iter().zip(Right::NAMES) {
            assert_eq!(right.as_str(), name);
            assert_eq!(Right::parse(name), Some(right));
            assert_eq!(serde_json::to_value(right).unwrap(), json!(name));
        }
        assert_eq!(Right::of_http_method("GET"), Some(Right::Get));
        assert_eq!(Right::of_http_method("post"), Some(Right::Post));
        assert_eq!(Right::of_http_method("OPTIONS"), Some(Right::Options));
        for not_http in ["SET", "ON", "REMOVE", "*", "TRACE", "CONNECT", ""] {
            assert_eq!(Right::of_http_method(not_http), None, "{not_http}");
        }
        let group: Group = serde_json::from_value(json!({
            "name": "web",
            "permissions": {
                "/@HTTP/secure/route/*": {"actions": ["get"]},
                "/@HTTP/secure/another/route/test": {"actions": ["put", "post"]}
            }
        }))
        .unwrap();
        let entry = &group.permissions["/@HTTP/secure/another/route/test"];
        assert_eq!(entry.actions, [Right::Post, Right::Put].into());
    }
}
