//! Evaluating criteria against a document (the [module docs](super) give the semantics).
//!
//! A field clause looks up every value its path reaches ([`FieldPath::values`]); most
//! operators then hold when one of those values, or one element of an array value,
//! satisfies them (MongoDB's implicit array matching). The negations (`$ne`, `$nin`,
//! `$not`, `$nor`) are the exact complements, so they match missing fields.

use serde_json::Value;

use super::criteria::{Clause, Cmp, Criteria, ElemMatch, Op};
use super::document;
use super::order::{compare_same_type, equal};
use crate::payload::Record;

impl Criteria {
    /// Whether `doc` (a record's [`document`]: its native view plus `_meta`) satisfies
    /// every clause.
    pub fn matches(&self, doc: &Value) -> bool {
        self.clauses.iter().all(|clause| clause.matches(doc))
    }

    /// Whether `record` satisfies the criteria: [`Criteria::matches`] on its
    /// [`document`].
    pub fn matches_record(&self, record: &Record) -> bool {
        self.matches(&document(record))
    }
}

impl Clause {
    fn matches(&self, doc: &Value) -> bool {
        match self {
            Self::Field(path, ops) => {
                let values = path.values(doc);
                ops.iter().all(|op| op.matches(&values))
            }
            Self::And(all) => all.iter().all(|c| c.matches(doc)),
            Self::Or(any) => any.iter().any(|c| c.matches(doc)),
            Self::Nor(none) => !none.iter().any(|c| c.matches(doc)),
        }
    }
}

/// Whether one of `values`, or one element of an array among them, satisfies `test`.
fn any_value(values: &[&Value], mut test: impl FnMut(&Value) -> bool) -> bool {
    values.iter().any(|value| {
        test(value)
            || match value {
                Value::Array(items) => items.iter().any(&mut test),
                _ => false,
            }
    })
}

/// `$eq`: `null` also matches a missing field.
fn eq(values: &[&Value], expected: &Value) -> bool {
    (expected.is_null() && values.is_empty()) || any_value(values, |v| equal(v, expected))
}

impl Op {
    /// Whether the values a field path found satisfy this operator.
    fn matches(&self, values: &[&Value]) -> bool {
        match self {
            Self::Eq(expected) => eq(values, expected),
            Self::Ne(expected) => !eq(values, expected),
            Self::Cmp(cmp, bound) => any_value(values, |v| {
                compare_same_type(v, bound).is_some_and(|order| match cmp {
                    Cmp::Gt => order.is_gt(),
                    Cmp::Gte => order.is_ge(),
                    Cmp::Lt => order.is_lt(),
                    Cmp::Lte => order.is_le(),
                })
            }),
            Self::In(options) => options.iter().any(|o| eq(values, o)),
            Self::Nin(options) => !options.iter().any(|o| eq(values, o)),
            Self::All(required) => !required.is_empty() && required.iter().all(|r| eq(values, r)),
            Self::ContainsAny(wanted) => values.iter().any(|v| contains_any(v, wanted)),
            Self::Exists(exists) => values.is_empty() != *exists,
            Self::Regex(regex) => {
                any_value(values, |v| v.as_str().is_some_and(|s| regex.is_match(s)))
            }
            Self::Size(size) => values
                .iter()
                .any(|v| v.as_array().is_some_and(|items| items.len() == *size)),
            Self::ElemMatch(test) => values.iter().any(|v| {
                v.as_array()
                    .is_some_and(|items| items.iter().any(|item| test.matches(item)))
            }),
            Self::Not(ops) => !ops.iter().all(|op| op.matches(values)),
        }
    }
}

impl ElemMatch {
    fn matches(&self, item: &Value) -> bool {
        match self {
            Self::Criteria(criteria) => item.is_object() && criteria.matches(item),
            Self::Ops(ops) => ops.iter().all(|op| op.matches(&[item])),
        }
    }
}

/// `$containsAny` (loki's): an array holds one of `wanted`, a string contains one of the
/// wanted strings, an object has one of the wanted strings as a key.
fn contains_any(value: &Value, wanted: &[Value]) -> bool {
    match value {
        Value::Array(items) => wanted.iter().any(|w| items.iter().any(|i| equal(i, w))),
        Value::String(s) => wanted
            .iter()
            .any(|w| w.as_str().is_some_and(|w| s.contains(w))),
        Value::Object(map) => wanted
            .iter()
            .any(|w| w.as_str().is_some_and(|w| map.contains_key(w))),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
