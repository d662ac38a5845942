//! The configuration (`[plugins.validate]` of the broker's config file) and how each rule
//! is compiled: its glob parsed, its schema read and compiled once, its field lists
//! gathered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use pathmq_core::{Glob, PathError};
use serde::Deserialize;
use serde_json::Value;

use crate::rule::{FieldSet, Fields, Rule};

/// The table under `[plugins.validate]` (crate docs for its shape).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// The rules, in order: every rule whose `path` matches a set's path checks it, and
    /// the first violation found is the answer.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// One `[[plugins.validate.rules]]` entry. It must check something: a schema, field
/// lists, or both.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The paths it applies to: a data glob as in permissions, where `*` matches any run
    /// of characters, `/` included (`/sensors/*` matches every descendant of `/sensors`,
    /// not `/sensors` itself).
    pub path: String,
    /// An inline JSON Schema: a TOML table (or `true`/`false`), or a string holding JSON
    /// text (for schemas TOML cannot write, e.g. with `null`). Not with `schema_file`.
    #[serde(default)]
    pub schema: Option<Value>,
    /// A file holding a JSON Schema (JSON text), read when the layer is made; a relative
    /// path is relative to the broker's working directory. Not with `schema`.
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
    /// Per group, the top-level fields its users may set; the key `"*"` applies to
    /// everyone (logged in or not), and the field `"*"` allows every field.
    #[serde(default)]
    pub fields: Option<BTreeMap<String, Vec<String>>>,
}

/// Why a [`ValidateConfig`] was refused; each names the rule as
/// `plugins.validate.rules[<index>]` with its path. Nothing is registered then.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateConfigError {
    /// The rule's `path` is not a valid glob.
    #[error("plugins.validate.rules[{index}].path {path:?}: {source}")]
    Path {
        /// The rule's position in `rules`, from 0.
        index: usize,
        /// Its `path`.
        path: String,
        /// Why the glob was refused.
        #[source]
        source: PathError,
    },
    /// The rule has no `schema`, `schema_file` or `fields`.
    #[error(
        "plugins.validate.rules[{index}] ({path}): checks nothing: give `schema`, `schema_file` or `fields`"
    )]
    Empty {
        /// The rule's position in `rules`, from 0.
        index: usize,
        /// Its `path`.
        path: String,
    },
    /// The rule has both `schema` and `schema_file`.
    #[error("plugins.validate.rules[{index}] ({path}): give `schema` or `schema_file`, not both")]
    TwoSchemas {
        /// The rule's position in `rules`, from 0.
        index: usize,
        /// Its `path`.
        path: String,
    },
    /// The `schema_file` could not be read.
    #[error("plugins.validate.rules[{index}] ({path}): reading schema_file {file:?}: {source}")]
    ReadSchema {
        /// The rule's position in `rules`, from 0.
        index: usize,
        /// Its `path`.
        path: String,
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The schema (the file, or a `schema` string) is not JSON text.
    #[error("plugins.validate.rules[{index}] ({path}): {what} is not JSON: {source}")]
    SchemaNotJson {
        /// The rule's position in `rules`, from 0.
        index: usize,
        /// Its `path`.
        path: String,
        /// `schema` or `schema_file "<file>"`.
        what: String,
        /// The parser's error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The schema is not a valid JSON Schema, or it refers (`$ref`) to a document outside
    /// itself, which is never fetched.
    #[error("plugins.validate.rules[{index}] ({path}): invalid JSON Schema: {reason}")]
    InvalidSchema {
        /// The rule's position in `rules`, from 0.
        index: usize,
        /// Its `path`.
        path: String,
        /// What the compiler said.
        reason: String,
    },
}

/// Compiles every rule of `config`, in order.
pub(crate) fn compile(config: &ValidateConfig) -> Result<Vec<Rule>, ValidateConfigError> {
    (config.rules.iter().enumerate())
        .map(|(index, rule)| compile_rule(index, rule))
        .collect()
}

fn compile_rule(index: usize, rule: &RuleConfig) -> Result<Rule, ValidateConfigError> {
    let path = rule.path.clone();
    let glob = Glob::parse(&rule.path).map_err(|source| ValidateConfigError::Path {
        index,
        path: path.clone(),
        source,
    })?;
    let not_json = |what: String, source| ValidateConfigError::SchemaNotJson {
        index,
        path: path.clone(),
        what,
        source,
    };
    let schema = match (&rule.schema, &rule.schema_file) {
        (Some(_), Some(_)) => return Err(ValidateConfigError::TwoSchemas { index, path }),
        (None, None) if rule.fields.is_none() => {
            return Err(ValidateConfigError::Empty { index, path });
        }
        (None, None) => None,
        (Some(Value::String(text)), None) => {
            Some(serde_json::from_str(text).map_err(|e| not_json("schema".into(), e))?)
        }
        (Some(schema), None) => Some(schema.clone()),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|source| {
                ValidateConfigError::ReadSchema {
                    index,
                    path: path.clone(),
                    file: file.clone(),
                    source,
                }
            })?;
            let what = format!("schema_file {file:?}");
            Some(serde_json::from_str(&text).map_err(|e| not_json(what, e))?)
        }
    };
    let schema = match schema {
        Some(schema) => Some(
            jsonschema::options()
                .offline()
                .build(&schema)
                .map_err(|e| ValidateConfigError::InvalidSchema {
                    index,
                    path: path.clone(),
                    reason: e.to_string(),
                })?,
        ),
        None => None,
    };
    Ok(Rule {
        glob,
        schema,
        fields: rule.fields.as_ref().map(fields),
    })
}

fn fields(lists: &BTreeMap<String, Vec<String>>) -> Fields {
    let set = |list: &Vec<String>| match list.iter().any(|f| f == "*") {
        true => FieldSet::Any,
        false => FieldSet::Only(list.iter().cloned().collect::<BTreeSet<_>>()),
    };
    Fields {
        anyone: lists.get("*").map(set),
        groups: (lists.iter())
            .filter(|(group, _)| *group != "*")
            .map(|(group, list)| (group.clone(), set(list)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn config(text: &str) -> ValidateConfig {
        toml::from_str(text).unwrap()
    }

    /// The shapes the crate docs show parse and compile.
    #[test]
    fn the_documented_tables_compile() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, r#"{{"type": "object", "required": ["name"]}}"#).unwrap();
        let text = format!(
            r#"
            [[rules]]
            path = "/sensors/*"
            schema = {{ type = "object", properties = {{ temp = {{ type = "number" }} }} }}
            fields = {{ devices = ["temp", "unit"], "*" = ["temp"] }}

            [[rules]]
            path = "/users/*"
            schema_file = {:?}

            [[rules]]
            path = "/config/*"
            schema = '{{"type": ["object", "null"]}}'
            "#,
            file.path()
        );
        let rules = compile(&config(&text)).unwrap();
        assert_eq!(rules.len(), 3);
        assert!(rules.iter().all(|r| r.schema.is_some()));
        let fields = rules[0].fields.as_ref().unwrap();
        assert!(fields.groups.contains_key("devices") && fields.anyone.is_some());
        assert!(compile(&ValidateConfig::default()).unwrap().is_empty());
        // References inside the schema itself resolve without fetching anything.
        let internal = r##"
            [[rules]]
            path = "/a/*"
            schema = '{"$defs": {"t": {"type": "number"}}, "properties": {"t": {"$ref": "#/$defs/t"}}}'
        "##;
        let rules = compile(&config(internal)).unwrap();
        let schema = rules[0].schema.as_ref().unwrap();
        assert!(!schema.is_valid(&serde_json::json!({"t": "x"})));
        assert!(schema.is_valid(&serde_json::json!({"t": 1})));
    }

    #[test]
    fn unknown_keys_are_refused_by_the_parser() {
        for text in [
            "rule = []",
            "[[rules]]\npath = \"/a\"\nschemas = {}",
            "[[rules]]\nschema = {}",
        ] {
            assert!(toml::from_str::<ValidateConfig>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule() {
        let cases = [
            ("[[rules]]\npath = \"\"\nfields = {}", "rules[0].path"),
            ("[[rules]]\npath = \"/a\"", "rules[0] (/a): checks nothing"),
            (
                "[[rules]]\npath = \"/a\"\nschema = {}\nschema_file = \"x.json\"",
                "not both",
            ),
            (
                "[[rules]]\npath = \"/a\"\nfields = {}\n[[rules]]\npath = \"/b\"\nschema_file = \"/nonexistent/s.json\"",
                "rules[1] (/b): reading schema_file",
            ),
            (
                "[[rules]]\npath = \"/a\"\nschema = \"{not json\"",
                "rules[0] (/a): schema is not JSON",
            ),
            (
                "[[rules]]\npath = \"/a\"\nschema = { type = \"nope\" }",
                "rules[0] (/a): invalid JSON Schema",
            ),
            (
                "[[rules]]\npath = \"/a\"\nschema = { \"$ref\" = \"https://example.com/s.json\" }",
                "invalid JSON Schema",
            ),
            (
                "[[rules]]\npath = \"/a\"\nschema = { \"$ref\" = \"file:///etc/passwd\" }",
                "invalid JSON Schema",
            ),
        ];
        for (text, expected) in cases {
            let error = compile(&config(text)).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.starts_with("plugins.validate.rules["), "{error}");
        }
    }
}
