//! Mongo-style queries for `get` and `count` (reference: SEARCH): criteria, and the
//! options `sort`, `skip`, `limit` and `fields`.
//!
//! [`Query::parse`] turns the request's JSON into a typed [`Query`] once, so a bad query
//! is a 400 before any store is touched ([`QueryError`] becomes
//! [`Error::BadRequest`](crate::Error::BadRequest)); regular expressions are compiled
//! there. A store answers it with [`Store::query`](crate::Store::query), feeding the
//! records of a glob, in path order, to a [`Selection`].
//!
//! ```
//! use pathmq_core::{Path, Payload, Query, Record};
//! use serde_json::json;
//!
//! let query = Query::parse(
//!     Some(&json!({"genre": "horror", "episode": {"$gte": 2}})),
//!     Some(&json!({"sort": {"episode": -1}, "limit": 2, "fields": {"episode": 1}})),
//! )?;
//! let records = (0..5).map(|i| Record {
//!     path: Path::parse(&format!("/series/horror/{i}")).unwrap(),
//!     payload: Payload::json(&json!({"genre": "horror", "episode": i})),
//!     created: i,
//!     modified: i,
//!     modified_by: None,
//!     properties: None,
//! });
//! let found: Vec<_> = query.run(records).iter().map(|r| r.payload.as_json()).collect();
//! assert_eq!(found, [Some(json!({"episode": 4})), Some(json!({"episode": 3}))]);
//!
//! let err = Query::parse(Some(&json!({"name": {"$foo": 1}})), None).unwrap_err();
//! assert_eq!(err.to_string(), "unknown query operator `$foo` on field `name`");
//! # Ok::<(), pathmq_core::QueryError>(())
//! ```
//!
//! # The document a record is matched against
//!
//! [`document`]: the record's native view ([`Payload::to_native_value`](crate::Payload::to_native_value): a JSON object
//! as itself, any other value as `{"value": …}`, text as `{"value": "…"}`, binary as
//! `{"value_base64": "…"}`) with `_meta: {path, created, modified}` (times in ms since the
//! epoch) in place of any `_meta` the payload had. So `"_meta.created"` and
//! `"_meta.path"` can be filtered and sorted on like any field.
//!
//! # Criteria (MongoDB semantics)
//!
//! A criteria object is a conjunction of `"field": condition` entries and the logical
//! operators `$and`, `$or`, `$nor` (each a non-empty array of criteria). A field is a
//! dotted path ([`FieldPath`]) that reaches into objects, into array elements by index
//! (`"tags.0"`), and into every object of an array (`"pets.name"`). A condition is an
//! object of operators (all must hold) or any other value, meaning `$eq` (an object with
//! no `$` key is a literal; mixing `$` and plain keys is an error).
//!
//! | operator | holds when |
//! |---|---|
//! | `$eq` (or a plain value) | a value found, or an element of an array found, equals it (deep, numbers by value: `1 == 1.0`); `null` also matches a missing field |
//! | `$ne` | `$eq` does not hold (so a missing field matches) |
//! | `$gt` `$gte` `$lt` `$lte` | a value or element of the same type compares so: numbers with numbers, strings with strings (bytewise); the operand must be a number or a string |
//! | `$in` / `$nin` | `$eq` holds for one of the array's values / for none |
//! | `$all` | `$eq` holds for every value of the (non-empty) array |
//! | `$containsAny` | (happn/loki) the field is an array holding one of the values, a string containing one of the (string) values, or an object with one of them as a key; a single value counts as a one-item array |
//! | `$exists` | `true`: the field is present (even `null`); `false`: it is missing |
//! | `$regex` | a string value or element matches: `"pattern"`, `["pattern", "flags"]`, and/or `$options: "flags"` beside it, flags from `i m s x`. Patterns use the `regex` crate's syntax (no look-around or backreferences) and are unanchored |
//! | `$size` | the field is an array of exactly that many elements |
//! | `$elemMatch` | the field is an array with an element matching: criteria on element objects (`{"a": 1}`), or operators on the element itself (`{"$gte": 80, "$lt": 85}`) |
//! | `$not` | the operator object it wraps does not hold (a missing field matches) |
//!
//! An unknown operator is an error naming it. `$not` is not allowed at the top level (use
//! `$nor`).
//!
//! # Options
//!
//! - `sort`: [`SortKey`]s, as `{"field": 1 | -1}` (keys applied in the JSON map's order:
//!   lexicographic, since serde_json is built without `preserve_order`) or, to choose the
//!   order, `[["field", 1], ["other", -1]]` or `[{"field": 1}, {"other": -1}]`. The order
//!   of values is MongoDB's: missing and `null` first, then numbers, strings, objects,
//!   arrays, booleans; ties are broken by path. Without `sort`, results are in path order.
//! - `skip`: how many matches to pass over (`0`: none). `limit`: the most to return
//!   (`0`, as in MongoDB, means no limit). Both must be non-negative integers.
//! - `fields`: a [`Projection`] of the payload; `_meta` is always kept.
//! - Other keys (`count`, and whatever else the caller's options hold) are ignored here:
//!   counting is the caller's business ([`Store::count_matching`](crate::Store::count_matching)).

mod criteria;
mod field;
mod matcher;
mod order;
mod project;
mod select;

use serde_json::{Map, Value, json};

pub use criteria::{Criteria, REGEX_SIZE_LIMIT};
pub use field::FieldPath;
pub use order::SortKey;
pub use project::Projection;
pub use select::Selection;

use crate::payload::Record;

/// A parsed query: what [`Store::query`](crate::Store::query) answers. The default is
/// every record, in path order.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Which records match; `None` (or empty criteria): all of them.
    pub criteria: Option<Criteria>,
    /// The order of the results; empty: by path.
    pub sort: Vec<SortKey>,
    /// How many matches to pass over before the first result (`0`: none).
    pub skip: usize,
    /// The most results to return; `None`: no limit.
    pub limit: Option<usize>,
    /// Which payload fields the results keep; `None`: all.
    pub fields: Option<Projection>,
}

impl Query {
    /// Parses a request's `criteria` and `options` (`{fields, sort, skip, limit}`; other
    /// keys are ignored). `None` or `null` for either means none.
    ///
    /// # Errors
    /// [`QueryError`], naming the field, operator or option at fault.
    pub fn parse(criteria: Option<&Value>, options: Option<&Value>) -> Result<Self, QueryError> {
        let mut query = Self {
            criteria: match criteria.filter(|c| !c.is_null()) {
                Some(c) => Some(Criteria::parse(c)?).filter(|c| !c.is_empty()),
                None => None,
            },
            ..Self::default()
        };
        let Some(options) = options.filter(|o| !o.is_null()) else {
            return Ok(query);
        };
        let Value::Object(options) = options else {
            return Err(QueryError::NotAnObject {
                what: "options",
                value: brief(options),
            });
        };
        let present = |key| options.get(key).filter(|v: &&Value| !v.is_null());
        if let Some(sort) = present("sort") {
            query.sort = order::parse_sort(sort)?;
        }
        if let Some(skip) = present("skip") {
            query.skip = count_option("skip", skip)?;
        }
        if let Some(limit) = present("limit") {
            query.limit = Some(count_option("limit", limit)?).filter(|&l| l > 0);
        }
        if let Some(fields) = present("fields") {
            query.fields = Projection::parse(fields)?;
        }
        Ok(query)
    }

    /// Whether the query is every record in path order, unchanged (a plain scan).
    pub fn is_plain(&self) -> bool {
        self.criteria.is_none()
            && self.sort.is_empty()
            && self.skip == 0
            && self.limit.is_none()
            && self.fields.is_none()
    }
}

fn count_option(option: &'static str, value: &Value) -> Result<usize, QueryError> {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| QueryError::BadOption {
            option,
            expected: "must be a non-negative integer".into(),
            value: brief(value),
        })
}

/// The document a record's criteria and sort keys are evaluated against ([module
/// docs](self)): the native view of its payload plus `_meta: {path, created, modified}`.
pub fn document(record: &Record) -> Value {
    let mut doc: Map<String, Value> = record.payload.to_native_value();
    doc.insert(
        "_meta".into(),
        json!({
            "path": record.path.as_str(),
            "created": record.created,
            "modified": record.modified,
        }),
    );
    Value::Object(doc)
}

/// A query that cannot be parsed. Every variant names what was wrong (and the offending
/// value, shortened); nothing was read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// `criteria` or `options` is not a JSON object.
    #[error("{what} must be a JSON object, got {value}")]
    NotAnObject {
        /// `"criteria"` or `"options"`.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A `$` key that is not a supported operator (or is one where it is not allowed).
    #[error("unknown query operator `{operator}`{}", on_field(.field.as_deref()))]
    UnknownOperator {
        /// The operator as given, e.g. `$foo`.
        operator: String,
        /// The field it was applied to; `None` at the top level of a criteria object.
        field: Option<String>,
    },
    /// An operator's operand has the wrong shape (`$in` without an array, …).
    #[error("`{operator}`{} needs {expected}, got {value}", on_field(.field.as_deref()))]
    BadOperand {
        /// The operator, e.g. `$in`.
        operator: String,
        /// The field it was applied to; `None` for `$and`, `$or`, `$nor`.
        field: Option<String>,
        /// What the operand must be.
        expected: &'static str,
        /// The operand given.
        value: String,
    },
    /// A condition object mixes operators with plain keys (`{"$gt": 1, "b": 2}`).
    #[error("the condition on `{field}` mixes operators and plain keys: {value}")]
    MixedOperators {
        /// The field.
        field: String,
        /// The condition given.
        value: String,
    },
    /// A field name is empty or has an empty dotted segment.
    #[error("bad field name `{field}`: {reason}")]
    BadField {
        /// The name as given.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `$regex` pattern does not compile (bad syntax, or over [`REGEX_SIZE_LIMIT`]).
    #[error("bad regular expression on `{field}`: {source}")]
    BadRegex {
        /// The field the pattern was for.
        field: String,
        /// The `regex` crate's error.
        #[source]
        source: regex::Error,
    },
    /// A `$regex` flag other than `i`, `m`, `s`, `x`.
    #[error("unknown regular expression flag `{flag}` on `{field}` (flags are i, m, s, x)")]
    BadRegexFlag {
        /// The field the pattern was for.
        field: String,
        /// The flag given.
        flag: char,
    },
    /// An option (`sort`, `skip`, `limit`, `fields`) has a bad value.
    #[error("option `{option}` {expected}, got {value}")]
    BadOption {
        /// The option's name.
        option: &'static str,
        /// What it must be (naming the field at fault, if any).
        expected: String,
        /// The value given.
        value: String,
    },
}

impl From<QueryError> for crate::Error {
    /// A bad query is a bad request (400), with the query error's message.
    fn from(error: QueryError) -> Self {
        Self::BadRequest(error.to_string())
    }
}

fn on_field(field: Option<&str>) -> String {
    field
        .map(|f| format!(" on field `{f}`"))
        .unwrap_or_default()
}

/// A value for an error message: its JSON, cut to about 80 characters.
fn brief(value: &Value) -> String {
    const MAX: usize = 80;
    let text = value.to_string();
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Error;
    use crate::path::Path;
    use crate::payload::Payload;

    #[test]
    fn the_reference_search_options_parse() {
        let options = json!({"fields": {"name": 1}, "sort": {"name": 1}, "limit": 10, "skip": 5});
        let criteria = json!({
            "$or": [{"region": {"$in": ["North", "South", "East", "West"]}},
                    {"town": {"$in": ["North.Cape Town", "South.East London"]}}],
            "surname": {"$in": ["Bishop", "Emslie"]}
        });
        let query = Query::parse(Some(&criteria), Some(&options)).unwrap();
        assert!(query.criteria.is_some());
        assert_eq!(query.sort.len(), 1);
        assert_eq!(query.sort[0].field.as_str(), "name");
        assert!(!query.sort[0].descending);
        assert_eq!((query.skip, query.limit), (5, Some(10)));
        assert!(query.fields.is_some());
        assert!(!query.is_plain());
    }

    #[test]
    fn absent_null_and_empty_parts_mean_none() {
        for (criteria, options) in [
            (None, None),
            (Some(json!(null)), Some(json!(null))),
            (
                Some(json!({})),
                Some(json!({"count": true, "limit": 0, "skip": null, "sort": []})),
            ),
        ] {
            let query = Query::parse(criteria.as_ref(), options.as_ref()).unwrap();
            assert!(query.is_plain(), "{criteria:?} {options:?}");
        }
    }

    #[test]
    fn bad_options_name_the_option() {
        for (options, needle) in [
            (json!({"skip": -1}), "option `skip`"),
            (json!({"skip": 1.5}), "option `skip`"),
            (json!({"limit": "10"}), "option `limit`"),
            (json!({"sort": {"name": 0}}), "`name`"),
            (json!({"fields": 1}), "option `fields`"),
            (json!([1]), "options must be a JSON object"),
        ] {
            let err = Query::parse(None, Some(&options)).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn query_errors_are_bad_requests() {
        let err: Error = Query::parse(Some(&json!({"a": {"$foo": 1}})), None)
            .unwrap_err()
            .into();
        assert_eq!(err.code(), 400);
        assert_eq!(
            err.to_string(),
            "unknown query operator `$foo` on field `a`"
        );
        let long = json!({"a": {"$in": "x".repeat(500)}});
        let message = Query::parse(Some(&long), None).unwrap_err().to_string();
        assert!(message.len() < 200 && message.ends_with('…'), "{message}");
    }

    #[test]
    fn documents_are_the_native_view_with_meta() {
        let record = |payload| Record {
            path: Path::parse("/a/b").unwrap(),
            payload,
            created: 1,
            modified: 2,
            modified_by: Some("u".into()),
            properties: None,
        };
        let meta = json!({"path": "/a/b", "created": 1, "modified": 2});
        assert_eq!(
            document(&record(Payload::json(&json!({"x": 1, "_meta": "mine"})))),
            json!({"x": 1, "_meta": meta})
        );
        assert_eq!(
            document(&record(Payload::json(&json!(5)))),
            json!({"value": 5, "_meta": meta})
        );
    }
}
