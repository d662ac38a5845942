//! Templated permission globs (`reference/happn-3.md` TEMPLATED PERMISSIONS; DESIGN.md §7).
//!
//! A permission glob may name facts of the session in `{{…}}`:
//!
//! | variable | value |
//! |---|---|
//! | `{{user.username}}` | the user's name |
//! | `{{user.custom_data.<key>}}` | a string or number in the user's custom data; `a.b` walks nested objects (`custom_data["a"]["b"]`) |
//! | `{{session.client_id}}` | the MQTT client id (Mosquitto's `%c`); native sessions have none |
//!
//! Spaces inside the braces are ignored (`{{ user.username }}`). Every `{{` starts a
//! variable: a glob cannot hold a literal `{{`. Values are substituted once; a value is
//! never itself read as a template.
//!
//! [`Template::parse`] refuses an unknown variable or an unclosed `{{` (an administrator's
//! typo is reported, not silently ignored), so the directory can check templates when they
//! are saved, and [`Grants::compile`](super::grants::Grants::compile) reports them at login.
//!
//! [`Template::render`] *voids* the permission ([`VoidReason`]) when a value is missing, is
//! not a string or number, is empty, or holds a wildcard (`*`, `+`, `#`) or a `/`: such a
//! value could widen the permission to other users' paths (the reference's
//! `users/{{user.custom_data.test}}/gauges/*` with `test = "*"`). What a voided permission
//! still does is decided by the grants: its allows are dropped, its prohibits are widened
//! to [`Template::widened`] (see [`super::grants`]).
//!
//! Beware `{{session.client_id}}`: the client chooses its client id, so a permission on
//! `/devices/{{session.client_id}}/*` lets any user holding it reach any device's subtree
//! by connecting with that device's id. Prefer `{{user.username}}` for ownership.

use std::fmt;

use serde_json::Value;

use super::model::{SessionFacts, User};
use crate::path::PathError;
use crate::pattern::Glob;

/// A permission glob with its `{{…}}` variables parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    source: Box<str>,
    parts: Vec<Part>,
    widened: Glob,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Var(Var),
}

/// One known variable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    Username,
    /// The keys walked from `custom_data` (at least one, none empty).
    CustomData(Vec<Box<str>>),
    ClientId,
}

impl Var {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "user.username" => Some(Self::Username),
            "session.client_id" => Some(Self::ClientId),
            _ => {
                let keys = name.strip_prefix("user.custom_data.")?;
                let keys: Vec<Box<str>> = keys.split('.').map(Into::into).collect();
                if keys.iter().any(|k| k.is_empty()) {
                    return None;
                }
                Some(Self::CustomData(keys))
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Username => "user.username".into(),
            Self::ClientId => "session.client_id".into(),
            Self::CustomData(keys) => format!("user.custom_data.{}", keys.join(".")),
        }
    }

    /// The value as text, or why there is none usable.
    fn value(&self, user: &User, session: &SessionFacts) -> Result<Value, VoidReason> {
        let found = match self {
            Self::Username => Some(Value::String(user.username.clone())),
            Self::ClientId => session.client_id.clone().map(Value::String),
            Self::CustomData(keys) => {
                let mut node = user.custom_data.get(&*keys[0]);
                for key in &keys[1..] {
                    node = node.and_then(|v| v.get(&**key));
                }
                node.cloned()
            }
        };
        found.ok_or_else(|| VoidReason::Missing {
            variable: self.name(),
        })
    }
}

/// Why a template could not be parsed: the permission is wrong as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{{` without its `}}`.
    #[error("permission `{template}`: `{{{{` without a closing `}}}}`")]
    Unclosed {
        /// The permission glob as written.
        template: String,
    },
    /// A variable that is not one of the three known ones.
    #[error(
        "permission `{template}`: unknown variable `{variable}` (known: `user.username`, \
         `user.custom_data.<key>`, `session.client_id`)"
    )]
    UnknownVariable {
        /// The permission glob as written.
        template: String,
        /// The text between the braces.
        variable: String,
    },
    /// The glob is not a valid path even before substitution (empty, NUL, too long).
    #[error("permission `{template}` is not a valid path glob: {source}")]
    BadGlob {
        /// The permission glob as written.
        template: String,
        /// What is wrong with it.
        #[source]
        source: PathError,
    },
}

/// Why a template rendered for one session voids its permission. Carries the variable's
/// name, never its value (user data stays out of logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VoidReason {
    /// The user or session has no such value (no custom data key, no client id).
    #[error("`{variable}` has no value")]
    Missing {
        /// The variable.
        variable: String,
    },
    /// The value is not a string or a number (an object, array, boolean or null).
    #[error("`{variable}` is not a string or a number")]
    NotScalar {
        /// The variable.
        variable: String,
    },
    /// The value is empty.
    #[error("`{variable}` is empty")]
    Empty {
        /// The variable.
        variable: String,
    },
    /// The value holds `*`, `+` or `#`.
    #[error("`{variable}` holds a wildcard")]
    Wildcard {
        /// The variable.
        variable: String,
    },
    /// The value holds a `/`, which would reach other levels.
    #[error("`{variable}` holds a `/`")]
    Slash {
        /// The variable.
        variable: String,
    },
    /// The substituted glob is not a valid path glob (too long, or a NUL in a value).
    #[error("the substituted permission is not a valid path glob")]
    InvalidGlob,
}

impl Template {
    /// Parses a permission glob as stored (a key of [`Permissions`](super::Permissions)).
    ///
    /// # Errors
    /// [`TemplateError::Unclosed`] for a `{{` without `}}`, [`TemplateError::UnknownVariable`]
    /// for anything but the three known variables (including an empty custom-data key, as
    /// in `user.custom_data.a..b`), [`TemplateError::BadGlob`] when the glob is not a valid
    /// path glob with its variables standing for one character. Nothing is kept on error.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].into()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
                template: source.to_owned(),
            })?;
            let name = after[..close].trim();
            let var = Var::parse(name).ok_or_else(|| TemplateError::UnknownVariable {
                template: source.to_owned(),
                variable: name.to_owned(),
            })?;
            parts.push(Part::Var(var));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.into()));
        }
        let widened = Glob::parse(&join(&parts, |_| Some("*".into())).unwrap_or_default())
            .map_err(|source_err| TemplateError::BadGlob {
                template: source.to_owned(),
                source: source_err,
            })?;
        Ok(Self {
            source: source.into(),
            parts,
            widened,
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the glob holds a variable.
    pub fn is_templated(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(_)))
    }

    /// The glob for this user and session.
    ///
    /// # Errors
    /// A [`VoidReason`] when a value is missing, not a string or number, empty, or holds
    /// `*`, `+`, `#` or `/`, or when the result is not a valid glob: the permission is void
    /// for this session.
    pub fn render(&self, user: &User, session: &SessionFacts) -> Result<Glob, VoidReason> {
        let mut void = None;
        let text = join(&self.parts, |var| match substitute(var, user, session) {
            Ok(value) => Some(value),
            Err(reason) => {
                void = Some(reason);
                None
            }
        });
        match (text, void) {
            (Some(text), None) => Glob::parse(&text).map_err(|_| VoidReason::InvalidGlob),
            (_, Some(reason)) => Err(reason),
            (None, None) => Err(VoidReason::InvalidGlob),
        }
    }

    /// The glob with every variable replaced by `*`. Whatever the values, every path the
    /// rendered glob matches, this one matches too (each `*` spans the whole substituted
    /// value, wildcards in it included), so prohibiting it is always at least as strict as
    /// prohibiting any rendering. Without variables it is the glob itself.
    pub fn widened(&self) -> &Glob {
        &self.widened
    }
}

/// Concatenates the parts, asking `value` for each variable; `None` as soon as one has none.
fn join(parts: &[Part], mut value: impl FnMut(&Var) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Literal(l) => out.push_str(l),
            Part::Var(var) => out.push_str(&value(var)?),
        }
    }
    Some(out)
}

fn substitute(var: &Var, user: &User, session: &SessionFacts) -> Result<String, VoidReason> {
    let variable = || var.name();
    let text = match var.value(user, session)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(VoidReason::NotScalar {
                variable: variable(),
            });
        }
    };
    if text.is_empty() {
        Err(VoidReason::Empty {
            variable: variable(),
        })
    } else if text.contains(['*', '+', '#']) {
        Err(VoidReason::Wildcard {
            variable: variable(),
        })
    } else if text.contains('/') {
        Err(VoidReason::Slash {
            variable: variable(),
        })
    } else {
        Ok(text)
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", &*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(custom: Value) -> User {
        User {
            username: "ann".into(),
            custom_data: custom.as_object().cloned().unwrap_or_default(),
            ..User::default()
        }
    }

    fn render(template: &str, user: &User, client_id: Option<&str>) -> Result<String, VoidReason> {
        let session = SessionFacts {
            client_id: client_id.map(Into::into),
            ..SessionFacts::default()
        };
        Template::parse(template)
            .unwrap()
            .render(user, &session)
            .map(|g| g.as_str().to_owned())
    }

    #[test]
    fn variables_are_substituted() {
        let u = user(json!({"x": "kitchen", "n": 7, "deep": {"er": {"key": "k"}}}));
        let cases = [
            ("/gauges/{{user.username}}", "/gauges/ann"),
            ("/gauges/{{ user.username }}/*", "/gauges/ann/*"),
            ("/custom/{{user.custom_data.x}}", "/custom/kitchen"),
            ("/n/{{user.custom_data.n}}", "/n/7"),
            ("/d/{{user.custom_data.deep.er.key}}", "/d/k"),
            ("/devices/{{session.client_id}}/*", "/devices/dev-1/*"),
            ("{{user.username}}/{{user.custom_data.x}}", "/ann/kitchen"),
            ("/plain/*", "/plain/*"),
            ("*", "/*"),
        ];
        for (template, expected) in cases {
            assert_eq!(
                render(template, &u, Some("dev-1")).as_deref(),
                Ok(expected),
                "{template}"
            );
        }
    }

    /// Reference: "permissions that resolve to context properties with * in them are
    /// ignored"; the issue adds `+`, `#` and `/`.
    #[test]
    fn unsafe_or_missing_values_void_the_permission() {
        let u = user(json!({
            "star": "*", "plus": "a+", "hash": "#", "slash": "a/b", "empty": "",
            "obj": {"a": 1}, "arr": [1], "flag": true, "null": null, "nul": "a\u{0}b"
        }));
        let var = |v: &str| v.to_owned();
        let cases: &[(&str, Option<&str>, VoidReason)] = &[
            (
                "/users/{{user.custom_data.star}}/gauges/*",
                None,
                VoidReason::Wildcard {
                    variable: var("user.custom_data.star"),
                },
            ),
            (
                "/u/{{user.custom_data.plus}}",
                None,
                VoidReason::Wildcard {
                    variable: var("user.custom_data.plus"),
                },
            ),
            (
                "/u/{{user.custom_data.hash}}",
                None,
                VoidReason::Wildcard {
                    variable: var("user.custom_data.hash"),
                },
            ),
            (
                "/u/{{user.custom_data.slash}}",
                None,
                VoidReason::Slash {
                    variable: var("user.custom_data.slash"),
                },
            ),
            (
                "/u/{{user.custom_data.empty}}",
                None,
                VoidReason::Empty {
                    variable: var("user.custom_data.empty"),
                },
            ),
            (
                "/u/{{user.custom_data.missing}}",
                None,
                VoidReason::Missing {
                    variable: var("user.custom_data.missing"),
                },
            ),
            (
                "/u/{{user.custom_data.obj.b}}",
                None,
                VoidReason::Missing {
                    variable: var("user.custom_data.obj.b"),
                },
            ),
            (
                "/u/{{user.custom_data.obj}}",
                None,
                VoidReason::NotScalar {
                    variable: var("user.custom_data.obj"),
                },
            ),
            (
                "/u/{{user.custom_data.arr}}",
                None,
                VoidReason::NotScalar {
                    variable: var("user.custom_data.arr"),
                },
            ),
            (
                "/u/{{user.custom_data.flag}}",
                None,
                VoidReason::NotScalar {
                    variable: var("user.custom_data.flag"),
                },
            ),
            (
                "/u/{{user.custom_data.null}}",
                None,
                VoidReason::NotScalar {
                    variable: var("user.custom_data.null"),
                },
            ),
            ("/u/{{user.custom_data.nul}}", None, VoidReason::InvalidGlob),
            (
                "/c/{{session.client_id}}",
                None,
                VoidReason::Missing {
                    variable: var("session.client_id"),
                },
            ),
            (
                "/c/{{session.client_id}}",
                Some("+"),
                VoidReason::Wildcard {
                    variable: var("session.client_id"),
                },
            ),
            (
                "/c/{{session.client_id}}",
                Some("a/b"),
                VoidReason::Slash {
                    variable: var("session.client_id"),
                },
            ),
        ];
        for (template, client_id, reason) in cases {
            assert_eq!(
                render(template, &u, *client_id).as_ref(),
                Err(reason),
                "{template}"
            );
        }
        let slashed = User {
            username: "a/b".into(),
            ..User::default()
        };
        assert!(matches!(
            render("/g/{{user.username}}", &slashed, None),
            Err(VoidReason::Slash { .. })
        ));
    }

    #[test]
    fn typos_are_errors_when_parsed() {
        for (template, variable) in [
            ("/a/{{user.name}}", "user.name"),
            ("/a/{{user.customdata.x}}", "user.customdata.x"),
            ("/a/{{user.custom_data}}", "user.custom_data"),
            ("/a/{{user.custom_data.}}", "user.custom_data."),
            ("/a/{{user.custom_data.a..b}}", "user.custom_data.a..b"),
            ("/a/{{session.clientId}}", "session.clientId"),
            ("/a/{{}}", ""),
        ] {
            match Template::parse(template) {
                Err(TemplateError::UnknownVariable { variable: v, .. }) => {
                    assert_eq!(v, variable, "{template}");
                }
                other => panic!("{template}: {other:?}"),
            }
        }
        assert!(matches!(
            Template::parse("/a/{{user.username"),
            Err(TemplateError::Unclosed { .. })
        ));
        assert!(matches!(
            Template::parse(""),
            Err(TemplateError::BadGlob { .. })
        ));
        let message = Template::parse("/a/{{user.name}}").unwrap_err().to_string();
        assert!(message.contains("user.name") && message.contains("user.username"));
    }

    #[test]
    fn widening_replaces_every_variable_by_a_star() {
        let t = Template::parse("/u/{{user.username}}/x/{{session.client_id}}").unwrap();
        assert!(t.is_templated());
        assert_eq!(t.widened().as_str(), "/u/*/x/*");
        let plain = Template::parse("a/b").unwrap();
        assert!(!plain.is_templated());
        assert_eq!(plain.widened().as_str(), "/a/b");
    }
}
