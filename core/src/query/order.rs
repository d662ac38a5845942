//! Comparing JSON values: equality and the sort order (MongoDB's), and the `sort` option.
//!
//! - **Equality** ([`equal`]) is deep; numbers are equal by value (`1 == 1.0`), objects
//!   regardless of key order.
//! - **The sort order** ([`compare`]) ranks types first: missing and `null` (equal to each
//!   other), then numbers, strings, objects, arrays, booleans. Within a type: numbers by
//!   value, strings bytewise (MongoDB's binary collation), objects pair by pair in key
//!   order, then by size, arrays element by element, then by length, `false < true`.
//! - **Comparison operators** (`$gt`, `$gte`, `$lt`, `$lte`) compare only values of one
//!   type: numbers with numbers, strings with strings ([`compare_same_type`]).

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::QueryError;
use super::brief;
use super::field::FieldPath;

/// One key of a sort: a field and a direction (`{"name": 1}` ascending, `-1`
/// descending). Records are ordered by the first key, ties by the next, and remaining
/// ties by path (ascending, whatever the directions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The field sorted on ([`FieldPath::value`] finds it; a missing field sorts as
    /// `null`).
    pub field: FieldPath,
    /// `-1`: largest first (missing and `null` last).
    pub descending: bool,
}

impl SortKey {
    /// Compares two documents' values of this key, in this key's direction.
    pub(super) fn compare(&self, a: Option<&Value>, b: Option<&Value>) -> Ordering {
        let order = compare(a, b);
        if self.descending {
            order.reverse()
        } else {
            order
        }
    }
}

/// Parses the `sort` option: an object `{"field": 1 | -1, …}`, or an array whose items are
/// `["field", 1 | -1]` pairs or one-key objects `{"field": 1 | -1}` (the array form keeps
/// the client's order; an object's keys come in the order the JSON map iterates, which is
/// lexicographic with serde_json's default features).
///
/// # Errors
/// [`QueryError::BadOption`] naming the field whose direction is not `1` or `-1`, or the
/// item that is neither a pair nor a one-key object; [`QueryError::BadField`].
pub(super) fn parse_sort(value: &Value) -> Result<Vec<SortKey>, QueryError> {
    match value {
        Value::Object(map) => map.iter().map(|(f, d)| key(f, d)).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(pair) if pair.len() == 2 => match &pair[0] {
                    Value::String(f) => key(f, &pair[1]),
                    _ => Err(bad_item(item)),
                },
                Value::Object(map) if map.len() == 1 => {
                    let (f, d) = map.iter().next().expect("one key");
                    key(f, d)
                }
                _ => Err(bad_item(item)),
            })
            .collect(),
        other => Err(QueryError::BadOption {
            option: "sort",
            expected: "must be an object of `field: 1 | -1` or an array of such pairs".into(),
            value: brief(other),
        }),
    }
}

fn key(field: &str, direction: &Value) -> Result<SortKey, QueryError> {
    let descending = match direction.as_f64() {
        Some(1.0) => false,
        Some(-1.0) => true,
        _ => {
            return Err(QueryError::BadOption {
                option: "sort",
                expected: format!("needs 1 or -1 as the direction of `{field}`"),
                value: brief(direction),
            });
        }
    };
    Ok(SortKey {
        field: FieldPath::parse(field)?,
        descending,
    })
}

fn bad_item(item: &Value) -> QueryError {
    QueryError::BadOption {
        option: "sort",
        expected: "items must be `[\"field\", 1 | -1]` or `{\"field\": 1 | -1}`".into(),
        value: brief(item),
    }
}

/// Rank of a value's type in the sort order; a missing value ranks as `null`.
fn rank(value: Option<&Value>) -> u8 {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::Number(_)) => 1,
        Some(Value::String(_)) => 2,
        Some(Value::Object(_)) => 3,
        Some(Value::Array(_)) => 4,
        Some(Value::Bool(_)) => 5,
    }
}

/// The total sort order of values (module docs); `None` is a missing value.
pub(super) fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => compare_numbers(x, y),
        (Some(Value::String(x)), Some(Value::String(y))) => x.as_bytes().cmp(y.as_bytes()),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Array(x)), Some(Value::Array(y))) => x
            .iter()
            .zip(y)
            .map(|(x, y)| compare(Some(x), Some(y)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Some(Value::Object(x)), Some(Value::Object(y))) => x
            .iter()
            .zip(y)
            .map(|((xk, xv), (yk, yv))| {
                xk.as_bytes()
                    .cmp(yk.as_bytes())
                    .then_with(|| compare(Some(xv), Some(yv)))
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => Ordering::Equal,
    })
}

/// The order of two numbers, or of two strings; `None` for any other pair of values.
pub(super) fn compare_same_type(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(compare_numbers(x, y)),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

/// Deep equality with numbers compared by value.
pub(super) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y).is_eq(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, xv)| y.get(k).is_some_and(|yv| equal(xv, yv)))
        }
        _ => a == b,
    }
}

/// Numbers by value: integers exactly (`i64` and `u64` alike), otherwise as `f64`.
fn compare_numbers(x: &Number, y: &Number) -> Ordering {
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
        return x.cmp(&y);
    }
    // One is a u64 above i64::MAX and the other a negative i64.
    if x.is_u64() && y.is_i64() {
        return Ordering::Greater;
    }
    if x.is_i64() && y.is_u64() {
        return Ordering::Less;
    }
    let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn types_rank_as_mongodb_orders_them() {
        let ascending = [
            json!(null),
            json!(-5),
            json!(1),
            json!(1.5),
            json!(u64::MAX),
            json!(""),
            json!("B"),
            json!("a"),
            json!({}),
            json!({"a": 1}),
            json!({"a": 2}),
            json!({"b": 0}),
            json!([]),
            json!([1]),
            json!([1, 2]),
            json!([2]),
            json!(false),
            json!(true),
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                assert_eq!(compare(Some(a), Some(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(compare(None, Some(&json!(null))), Ordering::Equal);
        assert_eq!(compare(None, Some(&json!(0))), Ordering::Less);
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(equal(&json!(1), &json!(1.0)));
        assert!(equal(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!equal(&json!([1, 2]), &json!([2, 1])));
        assert!(!equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert_eq!(
            compare_numbers(&(-1i64).into(), &u64::MAX.into()),
            Ordering::Less
        );
        assert_eq!(
            compare_numbers(&u64::MAX.into(), &(-1i64).into()),
            Ordering::Greater
        );
        assert_eq!(
            compare_same_type(&json!(2), &json!(10.5)),
            Some(Ordering::Less)
        );
        assert_eq!(compare_same_type(&json!("10"), &json!(10)), None);
        assert_eq!(
            compare_same_type(&json!("b"), &json!("a")),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn sort_accepts_objects_pairs_and_one_key_objects() {
        let fields = |v: Value| {
            parse_sort(&v)
                .unwrap()
                .into_iter()
                .map(|k| (k.field.to_string(), k.descending))
                .collect::<Vec<_>>()
        };
        let expected = vec![
            ("name".to_owned(), false),
            ("_meta.created".to_owned(), true),
        ];
        assert_eq!(
            fields(json!([["name", 1], ["_meta.created", -1]])),
            expected
        );
        assert_eq!(
            fields(json!([{"name": 1}, {"_meta.created": -1.0}])),
            expected
        );
        // An object's keys come in lexicographic order.
        assert_eq!(
            fields(json!({"name": 1, "_meta.created": -1})),
            vec![
                ("_meta.created".to_owned(), true),
                ("name".to_owned(), false)
            ]
        );
    }

    #[test]
    fn bad_sorts_name_the_field() {
        for (sort, needle) in [
            (json!({"name": 2}), "`name`"),
            (json!({"name": "asc"}), "`name`"),
            (json!([["name"]]), "[\"name\"]"),
            (json!("name"), "\"name\""),
            (json!({"a..b": 1}), "`a..b`"),
        ] {
            let err = parse_sort(&sort).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
