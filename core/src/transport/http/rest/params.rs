//! The query parameters of `/api/data/…`: a search's `criteria`, `sort`, `skip`, `limit`
//! and `fields`, read into the core's [`Query`] (the native `get` options, docs/PROTOCOL.md
//! Queries).
//!
//! | parameter | value |
//! |---|---|
//! | `criteria` | JSON (URL-encoded): `{"temp": {"$gt": 20}}` |
//! | `sort` | JSON (`{"modified": -1}`, `[["name", 1]]`) or fields separated by commas, `-` first for descending: `-modified,name` |
//! | `skip`, `limit` | a non-negative integer (`limit=0`: no limit) |
//! | `fields` | JSON (`{"name": 1}`) or fields separated by commas, `-` first to leave a field out: `name,age` or `-secret` |
//!
//! `token` (and the token cookie's name) carry a token ([`super::auth::token_of`]) and are
//! skipped here. Any other parameter, one given twice, or a malformed escape is a 400:
//! ignoring it would answer with other records than asked for.

use serde_json::{Map, Value, json};

use super::urlencoded;
use crate::error::Error;
use crate::query::{Criteria, Query};

/// The parameters of one request, checked for shape; their meaning is checked by
/// [`Query::parse`].
#[derive(Debug, Default)]
pub(super) struct Params {
    criteria: Option<Value>,
    /// `sort`, `skip`, `limit` and `fields`, as the native `get` options.
    options: Map<String, Value>,
}

impl Params {
    /// Reads the query string `query`, skipping `token` and the names in `ignored`.
    ///
    /// # Errors
    /// [`Error::BadRequest`] naming the parameter: unknown, given twice, a malformed
    /// escape, `criteria` that is not JSON, `skip` or `limit` that is not a number.
    pub(super) fn parse(query: &str, ignored: &[&str]) -> Result<Self, Error> {
        let mut params = Self::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bad_escape = || {
                Error::BadRequest(format!(
                    "the query parameter `{pair}` has a malformed %-escape or is not UTF-8"
                ))
            };
            let key = urlencoded::decode(key, true).ok_or_else(bad_escape)?;
            if key == "token" || ignored.contains(&key.as_str()) {
                continue;
            }
            let value = urlencoded::decode(value, true).ok_or_else(bad_escape)?;
            if seen.contains(&key) {
                return Err(Error::BadRequest(format!(
                    "the query parameter `{key}` is given twice"
                )));
            }
            match key.as_str() {
                "criteria" => params.criteria = Some(json_of("criteria", &value)?),
                "sort" => {
                    let sort = match compact(&key, &value)? {
                        Some(fields) => (fields.into_iter())
                            .map(|(field, minus)| json!([field, if minus { -1 } else { 1 }]))
                            .collect(),
                        None => json_of(&key, &value)?,
                    };
                    params.options.insert(key.clone(), sort);
                }
                "fields" => {
                    let fields = match compact(&key, &value)? {
                        Some(fields) => Value::Object(
                            (fields.into_iter())
                                .map(|(field, minus)| (field, json!(if minus { 0 } else { 1 })))
                                .collect(),
                        ),
                        None => json_of(&key, &value)?,
                    };
                    params.options.insert(key.clone(), fields);
                }
                "skip" | "limit" => {
                    let number = match serde_json::from_str::<Value>(value.trim()) {
                        Ok(number @ Value::Number(_)) => number,
                        _ => {
                            return Err(Error::BadRequest(format!(
                                "the query parameter `{key}` must be a non-negative integer, \
                                 got `{value}`"
                            )));
                        }
                    };
                    params.options.insert(key.clone(), number);
                }
                other => {
                    return Err(Error::BadRequest(format!(
                        "unknown query parameter `{other}`: the data API takes `criteria`, \
                         `sort`, `skip`, `limit`, `fields` (and `token`)"
                    )));
                }
            }
            seen.push(key);
        }
        Ok(params)
    }

    /// The search the parameters ask for; `None` when there is none (a plain read).
    ///
    /// # Errors
    /// The query's own 400s ([`Query::parse`]): an unknown operator, a bad sort direction,
    /// a negative `limit` …
    pub(super) fn query(&self) -> Result<Option<Query>, Error> {
        if self.criteria.is_none() && self.options.is_empty() {
            return Ok(None);
        }
        let options = Value::Object(self.options.clone());
        Ok(Some(Query::parse(self.criteria.as_ref(), Some(&options))?))
    }

    /// The criteria of a `DELETE`, which takes no other parameter.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for `sort`, `skip`, `limit` or `fields` (a remove takes
    /// every record its path and criteria match: ignoring them would remove more than
    /// asked), and bad criteria.
    pub(super) fn criteria_only(&self) -> Result<Option<Criteria>, Error> {
        if let Some(key) = self.options.keys().next() {
            return Err(Error::BadRequest(format!(
                "`{key}` does not apply to DELETE: a remove takes every record its path and \
                 `criteria` match"
            )));
        }
        Ok(self.query()?.and_then(|query| query.criteria))
    }

    /// Refuses any parameter, for a `method` that takes none (`PUT`, `PATCH`).
    ///
    /// # Errors
    /// [`Error::BadRequest`] naming the first parameter given.
    pub(super) fn refuse_any(&self, method: &str) -> Result<(), Error> {
        let first = (self.criteria.as_ref().map(|_| "criteria"))
            .or_else(|| self.options.keys().next().map(String::as_str));
        match first {
            Some(key) => Err(Error::BadRequest(format!(
                "{method} takes no query parameter (`{key}` was given)"
            ))),
            None => Ok(()),
        }
    }
}

/// `value` parsed as JSON, or a 400 naming `parameter`.
fn json_of(parameter: &str, value: &str) -> Result<Value, Error> {
    serde_json::from_str(value.trim()).map_err(|error| {
        Error::BadRequest(format!(
            "the query parameter `{parameter}` is not JSON ({error}); URL-encode it"
        ))
    })
}

/// The compact form of `value` (fields separated by commas, each with `-` first or not),
/// or `None` when it starts like JSON (`{` or `[`).
///
/// # Errors
/// [`Error::BadRequest`] for an empty field name.
fn compact(parameter: &str, value: &str) -> Result<Option<Vec<(String, bool)>>, Error> {
    let value = value.trim();
    if value.starts_with('{') || value.starts_with('[') {
        return Ok(None);
    }
    let mut fields = Vec::new();
    for field in value.split(',').map(str::trim) {
        // A `+` before a field was decoded to a space, trimmed here: ascending.
        let (field, minus) = match field.strip_prefix('-') {
            Some(field) => (field, true),
            None => (field.strip_prefix('+').unwrap_or(field), false),
        };
        if field.is_empty() {
            return Err(Error::BadRequest(format!(
                "the query parameter `{parameter}` has an empty field name: give `a,-b` or \
                 JSON"
            )));
        }
        fields.push((field.to_owned(), minus));
    }
    Ok(Some(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<Params, Error> {
        Params::parse(query, &["pathmq_token"])
    }

    #[test]
    fn search_parameters_become_a_query() {
        let criteria = "%7B%22t%22%3A%7B%22%24gt%22%3A20%7D%7D"; // {"t":{"$gt":20}}
        let params = parse(&format!(
            "criteria={criteria}&sort=-modified,+name&skip=1&limit=2&fields=name,t&token=x"
        ))
        .unwrap();
        assert_eq!(
            params.options["sort"],
            json!([["modified", -1], ["name", 1]])
        );
        assert_eq!(params.options["fields"], json!({"name": 1, "t": 1}));
        let query = params.query().unwrap().unwrap();
        assert!(query.criteria.is_some());
        assert_eq!((query.skip, query.limit), (1, Some(2)));
        assert_eq!(query.sort.len(), 2);
        assert!(query.fields.is_some());

        let json = parse("sort=%7B%22n%22%3A-1%7D&fields=-secret").unwrap();
        assert_eq!(json.options["sort"], json!({"n": -1}));
        assert_eq!(json.options["fields"], json!({"secret": 0}));
        assert!(json.query().unwrap().is_some());

        let plain = parse("token=abc&pathmq_token=def").unwrap();
        assert!(
            plain.query().unwrap().is_none(),
            "token parameters are skipped"
        );
        assert!(plain.refuse_any("PUT").is_ok());
    }

    #[test]
    fn bad_parameters_are_refused_by_name() {
        for (query, says) in [
            ("nope=1", "unknown query parameter `nope`"),
            ("limit=1&limit=2", "`limit` is given twice"),
            ("limit=ten", "`limit` must be a non-negative integer"),
            ("criteria=%7Bx", "`criteria` is not JSON"),
            ("sort=a,,b", "empty field name"),
            ("criteria=%zz", "malformed %-escape"),
        ] {
            let error = parse(query).unwrap_err().to_string();
            assert!(error.contains(says), "{query}: {error}");
        }
        let negative = parse("limit=-1").unwrap().query().unwrap_err();
        assert_eq!(negative.code(), 400);
        let bad_operator = parse("criteria=%7B%22a%22%3A%7B%22%24fuzzy%22%3A1%7D%7D")
            .unwrap()
            .query()
            .unwrap_err();
        assert!(
            bad_operator.to_string().contains("$fuzzy"),
            "{bad_operator}"
        );
        let error = parse("limit=1").unwrap().criteria_only().unwrap_err();
        assert!(
            error.to_string().contains("does not apply to DELETE"),
            "{error}"
        );
        let error = parse("criteria=%7B%7D")
            .unwrap()
            .refuse_any("PATCH")
            .unwrap_err();
        assert!(
            error.to_string().contains("PATCH takes no query parameter"),
            "{error}"
        );
    }
}
