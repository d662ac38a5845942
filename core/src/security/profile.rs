//! Session profiles and their policies (reference: SECURITY PROFILES; DESIGN.md §7;
//! `reference/websocket-session-manager.md` for the per-user connection limit).
//!
//! Profiles are an ordered list; the first whose `session` criteria match a logging-in
//! session gives its [`Policy`]. No match gives the default policy: no limits, as the
//! reference's `default-stateful`/`default-stateless`.
//!
//! The criteria are mongo-style (the query engine of [`crate::query`]) over the session
//! document:
//!
//! ```json
//! {"user": {"username": "ann", "groups": {"devices": {}}, "custom_data": {}},
//!  "type": 1, "ip_address": "127.0.0.1", "protocol": "mqtt", "client_id": "sensor-1"}
//! ```
//!
//! `type` is 1 for a stateful session (MQTT, native WebSocket or TCP) and 0 for a
//! stateless one (an HTTP request carrying a token); `groups` is an object keyed by group
//! name, so `{"user.groups.devices": {"$exists": true}}` matches members, as in the
//! reference; `ip_address` is the peer address in its canonical form (`::ffff:127.0.0.1`
//! is `127.0.0.1`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use super::directory::merge_permissions;
use super::grants::{Grants, GrantsError};
use super::model::{Group, Permissions, SessionFacts, User};
use super::template::{Template, TemplateError};
use crate::query::{Criteria, QueryError};

/// One profile: which sessions (criteria over the session document; none for every
/// session) get which policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Its name, logged and reported with the session.
    pub name: String,
    /// Mongo-style criteria over the session document (module docs); absent matches
    /// every session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Value>,
    /// What the matched sessions are held to.
    #[serde(default)]
    pub policy: Policy,
}

/// What a session is held to. Every limit is optional; absent means none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// How long a session and its token live after login, ms or a duration text
    /// (`"4 seconds"`, `"10m"`, `"2 hours"`); `0` or `"infinity"` for ever. A session past
    /// it ends (MQTT 5 DISCONNECT 0xA0, native `server-side-disconnect`); its token is
    /// refused.
    #[serde(
        default,
        deserialize_with = "duration",
        serialize_with = "as_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl: Option<Duration>,
    /// How long a session may go without a request before it ends, as `ttl`.
    #[serde(
        default,
        deserialize_with = "duration",
        serialize_with = "as_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub inactivity_threshold: Option<Duration>,
    /// How many requests a session may make; the next one ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<u64>,
    /// Permissions the session is limited to whatever its user may do (token-scoped): a
    /// request needs both the user's grants and these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
    /// The only addresses the session may log in from.
    #[serde(
        default,
        rename = "sourceIPWhitelist",
        alias = "source_ip_whitelist",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_ip_whitelist: Option<Vec<IpAddr>>,
    /// How many stateful sessions one user may have at once; the next login is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
}

/// Why a profile list was refused (at start: a configuration error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The `session` criteria do not parse.
    #[error("profile `{profile}`: bad session criteria: {source}")]
    Criteria {
        /// The profile.
        profile: String,
        /// Why.
        #[source]
        source: QueryError,
    },
    /// A policy permission's glob or template is wrong.
    #[error("profile `{profile}`: bad permission `{glob}`: {source}")]
    Permission {
        /// The profile.
        profile: String,
        /// The glob as written.
        glob: String,
        /// Why.
        #[source]
        source: TemplateError,
    },
}

/// A profile ready to match sessions.
#[derive(Debug)]
struct Compiled {
    criteria: Option<Criteria>,
    profile: Arc<Profile>,
}

/// The ordered, checked profiles of a secure broker.
#[derive(Debug, Default)]
pub struct Profiles {
    list: Vec<Compiled>,
    default: Arc<Profile>,
}

impl Profiles {
    /// Checks and compiles `profiles` (in priority order).
    ///
    /// # Errors
    /// [`ProfileError`] naming the first bad profile.
    pub fn new(profiles: Vec<Profile>) -> Result<Self, ProfileError> {
        let mut list = Vec::with_capacity(profiles.len());
        for mut profile in profiles {
            let criteria = match &profile.session {
                None => None,
                Some(value) => Some(Criteria::parse(&flatten(value)).map_err(|source| {
                    ProfileError::Criteria {
                        profile: profile.name.clone(),
                        source,
                    }
                })?),
            };
            if let Some(permissions) = profile.policy.permissions.take() {
                let mut normalized = Permissions::new();
                for (glob, entry) in permissions {
                    let template =
                        Template::parse(&glob).map_err(|source| ProfileError::Permission {
                            profile: profile.name.clone(),
                            glob: glob.clone(),
                            source,
                        })?;
                    let key = template.as_str().to_owned();
                    merge_permissions(&mut normalized, Permissions::from([(key, entry)]));
                }
                profile.policy.permissions = Some(normalized);
            }
            list.push(Compiled {
                criteria,
                profile: Arc::new(profile),
            });
        }
        Ok(Self {
            list,
            default: Arc::new(Profile {
                name: "default".into(),
                ..Profile::default()
            }),
        })
    }

    /// The first profile matching the session of `user` (in `groups`) described by
    /// `facts`; the default profile (no limits) when none does.
    pub fn select(&self, user: &User, facts: &SessionFacts) -> Arc<Profile> {
        if self.list.is_empty() {
            return self.default.clone();
        }
        let doc = session_document(user, facts);
        (self.list.iter())
            .find(|c| c.criteria.as_ref().is_none_or(|c| c.matches(&doc)))
            .map_or_else(|| self.default.clone(), |c| c.profile.clone())
    }

    /// Whether any profile limits a session's lifetime or idleness (then sessions are
    /// swept every second).
    pub fn has_timeouts(&self) -> bool {
        (self.list.iter()).any(|c| {
            c.profile.policy.ttl.is_some() || c.profile.policy.inactivity_threshold.is_some()
        })
    }
}

impl Policy {
    /// Whether a session from `peer` may log in: no whitelist, an in-process session, or
    /// a whitelisted address (compared canonically).
    pub fn admits(&self, peer: Option<IpAddr>) -> bool {
        match (&self.source_ip_whitelist, peer) {
            (None, _) | (_, None) => true,
            (Some(list), Some(ip)) => list.iter().any(|a| a.to_canonical() == ip.to_canonical()),
        }
    }

    /// The policy's own permissions compiled for `user`'s session (templates filled), or
    /// `None` when it has none.
    ///
    /// # Errors
    /// [`GrantsError`] when a template does not parse (checked at start, so not expected).
    pub fn grants(&self, user: &User, facts: &SessionFacts) -> Result<Option<Grants>, GrantsError> {
        let Some(permissions) = &self.permissions else {
            return Ok(None);
        };
        let scope = Group {
            name: "profile".into(),
            permissions: permissions.clone(),
            ..Group::default()
        };
        let bare = User {
            username: user.username.clone(),
            custom_data: user.custom_data.clone(),
            ..User::default()
        };
        Grants::compile(&bare, &[&scope], facts).map(Some)
    }
}

/// The document profile criteria are matched against (module docs).
pub fn session_document(user: &User, facts: &SessionFacts) -> Value {
    let groups: Map<String, Value> = (user.groups.iter())
        .map(|g| (g.clone(), json!({})))
        .collect();
    json!({
        "user": {
            "username": user.username,
            "groups": groups,
            "custom_data": user.custom_data,
        },
        "type": u8::from(!facts.stateless),
        "ip_address": facts.peer.map(|p| p.ip().to_canonical().to_string()),
        "protocol": facts.protocol,
        "client_id": facts.client_id,
    })
}

/// Criteria as the reference writes them, nested (`{user: {username: {$eq: "x"}}}`,
/// sift's reading), in the dotted form of the query engine (`{"user.username": {$eq:
/// "x"}}`): an object value whose keys are all field names (no `$`) is a path, not an
/// embedded document to compare with.
fn flatten(criteria: &Value) -> Value {
    fn fields(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
        match value {
            Value::Object(map) if !map.is_empty() && map.keys().all(|k| !k.starts_with('$')) => {
                for (key, inner) in map {
                    fields(&format!("{prefix}.{key}"), inner, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), flatten_operators(other));
            }
        }
    }
    fn flatten_operators(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                (map.iter())
                    .map(|(k, v)| match (k.as_str(), v) {
                        ("$not" | "$elemMatch", _) => (k.clone(), flatten(v)),
                        _ => (k.clone(), v.clone()),
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let Value::Object(map) = criteria else {
        return criteria.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        match (key.as_str(), value) {
            ("$and" | "$or" | "$nor", Value::Array(list)) => {
                out.insert(
                    key.clone(),
                    Value::Array(list.iter().map(flatten).collect()),
                );
            }
            (k, _) if k.starts_with('$') => {
                out.insert(key.clone(), value.clone());
            }
            _ => fields(key, value, &mut out),
        }
    }
    Value::Object(out)
}

/// A duration as ms.
fn as_ms<S: serde::Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(d) => serializer.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => serializer.serialize_none(),
    }
}

/// A duration: ms as a number, or text (`"4 seconds"`, `"infinity"`); 0 and infinity
/// are `None` (no limit).
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Ms(f64),
        Text(String),
    }
    let parsed = match Option::<Raw>::deserialize(deserializer)? {
        None => return Ok(None),
        Some(Raw::Ms(ms)) if ms.is_infinite() || ms == 0.0 => return Ok(None),
        Some(Raw::Ms(ms)) if ms < 0.0 || ms.is_nan() => {
            return Err(serde::de::Error::custom("a duration cannot be negative"));
        }
        Some(Raw::Ms(ms)) => Duration::from_secs_f64(ms / 1000.0),
        Some(Raw::Text(text)) => {
            let text = text.trim();
            if text.eq_ignore_ascii_case("infinity") || text == "0" {
                return Ok(None);
            }
            humantime::parse_duration(text).map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a duration (ms, or text such as \"4 seconds\"): {e}"
                ))
            })?
        }
    };
    Ok((!parsed.is_zero()).then_some(parsed))
}

#[cfg(test)]
mod tests;
