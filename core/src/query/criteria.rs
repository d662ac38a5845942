//! Criteria: the parsed tree of a mongo-style filter, and its parser. What each operator
//! means is in the [module docs](super) and in [`super::matcher`].

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use super::QueryError;
use super::brief;
use super::field::FieldPath;

/// The most memory one compiled `$regex` may take (the `regex` crate's size limit), so a
/// request cannot make the broker compile an enormous automaton.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A parsed filter: every clause must hold (`{"a": 1, "b": 2}` is `a = 1 and b = 2`).
/// Built by [`Criteria::parse`]; tested with [`Criteria::matches`].
#[derive(Debug, Clone)]
pub struct Criteria {
    pub(super) clauses: Vec<Clause>,
}

/// One entry of a criteria object.
#[derive(Debug, Clone)]
pub(super) enum Clause {
    /// `"field": condition`: every operator must hold for the field's values.
    Field(FieldPath, Vec<Op>),
    /// `$and`: every sub-criteria holds.
    And(Vec<Criteria>),
    /// `$or`: at least one holds.
    Or(Vec<Criteria>),
    /// `$nor`: none holds.
    Nor(Vec<Criteria>),
}

/// A field operator and its parsed operand.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Eq(Value),
    Ne(Value),
    Cmp(Cmp, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    All(Vec<Value>),
    ContainsAny(Vec<Value>),
    Exists(bool),
    Regex(Regex),
    Size(usize),
    ElemMatch(ElemMatch),
    Not(Vec<Op>),
}

/// The comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// What an `$elemMatch` tests each array element with.
#[derive(Debug, Clone)]
pub(super) enum ElemMatch {
    /// `{$elemMatch: {"a": 1, …}}`: the element is an object matching these criteria.
    Criteria(Criteria),
    /// `{$elemMatch: {$gte: 80, $lt: 85}}`: the element itself satisfies every operator.
    Ops(Vec<Op>),
}

impl Criteria {
    /// Parses a criteria object (`{"name": "x", "age": {"$gt": 3}, "$or": [...]}`).
    ///
    /// # Errors
    /// [`QueryError::NotAnObject`] when `value` is not an object; otherwise the first
    /// problem found: [`QueryError::UnknownOperator`], [`QueryError::BadOperand`],
    /// [`QueryError::MixedOperators`], [`QueryError::BadField`],
    /// [`QueryError::BadRegex`], [`QueryError::BadRegexFlag`].
    pub fn parse(value: &Value) -> Result<Self, QueryError> {
        match value {
            Value::Object(map) => parse_object(map),
            other => Err(QueryError::NotAnObject {
                what: "criteria",
                value: brief(other),
            }),
        }
    }

    /// Whether the criteria have no clause (they match every document).
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }
}

fn parse_object(map: &Map<String, Value>) -> Result<Criteria, QueryError> {
    let mut clauses = Vec::with_capacity(map.len());
    for (key, value) in map {
        clauses.push(match key.as_str() {
            "$and" => Clause::And(parse_list("$and", value)?),
            "$or" => Clause::Or(parse_list("$or", value)?),
            "$nor" => Clause::Nor(parse_list("$nor", value)?),
            op if op.starts_with('$') => {
                return Err(QueryError::UnknownOperator {
                    operator: op.to_owned(),
                    field: None,
                });
            }
            field => Clause::Field(FieldPath::parse(field)?, parse_condition(field, value)?),
        });
    }
    Ok(Criteria { clauses })
}

/// The operand of `$and`, `$or`, `$nor`: a non-empty array of criteria objects.
fn parse_list(operator: &'static str, value: &Value) -> Result<Vec<Criteria>, QueryError> {
    let bad = || QueryError::BadOperand {
        operator: operator.into(),
        field: None,
        expected: "a non-empty array of criteria objects",
        value: brief(value),
    };
    let Value::Array(items) = value else {
        return Err(bad());
    };
    if items.is_empty() {
        return Err(bad());
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => parse_object(map),
            _ => Err(bad()),
        })
        .collect()
}

/// A field's condition: an object of operators, or any other value meaning `$eq`.
fn parse_condition(field: &str, value: &Value) -> Result<Vec<Op>, QueryError> {
    match value {
        Value::Object(map) if is_operators(field, map)? => parse_ops(field, map),
        other => Ok(vec![Op::Eq(other.clone())]),
    }
}

/// Whether an object is an operator expression (every key starts with `$`) rather than a
/// literal (no key does).
///
/// # Errors
/// [`QueryError::MixedOperators`] when some keys start with `$` and some do not.
fn is_operators(field: &str, map: &Map<String, Value>) -> Result<bool, QueryError> {
    let operators = map.keys().filter(|k| k.starts_with('$')).count();
    if operators > 0 && operators < map.len() {
        return Err(QueryError::MixedOperators {
            field: field.to_owned(),
            value: brief(&Value::Object(map.clone())),
        });
    }
    Ok(operators > 0)
}

fn parse_ops(field: &str, map: &Map<String, Value>) -> Result<Vec<Op>, QueryError> {
    let mut ops = Vec::with_capacity(map.len());
    for (key, operand) in map {
        let bad = |expected| QueryError::BadOperand {
            operator: key.clone(),
            field: Some(field.to_owned()),
            expected,
            value: brief(operand),
        };
        ops.push(match key.as_str() {
            "$eq" => Op::Eq(operand.clone()),
            "$ne" => Op::Ne(operand.clone()),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                if !(operand.is_number() || operand.is_string()) {
                    return Err(bad("a number or a string"));
                }
                let cmp = match key.as_str() {
                    "$gt" => Cmp::Gt,
                    "$gte" => Cmp::Gte,
                    "$lt" => Cmp::Lt,
                    _ => Cmp::Lte,
                };
                Op::Cmp(cmp, operand.clone())
            }
            "$in" | "$nin" | "$all" => {
                let Value::Array(values) = operand else {
                    return Err(bad("an array"));
                };
                match key.as_str() {
                    "$in" => Op::In(values.clone()),
                    "$nin" => Op::Nin(values.clone()),
                    _ => Op::All(values.clone()),
                }
            }
            "$containsAny" => Op::ContainsAny(match operand {
                Value::Array(values) => values.clone(),
                one => vec![one.clone()],
            }),
            "$exists" => Op::Exists(match operand {
                Value::Bool(b) => *b,
                Value::Number(n) if n.as_f64() == Some(0.0) => false,
                Value::Number(n) if n.as_f64() == Some(1.0) => true,
                _ => return Err(bad("true or false")),
            }),
            "$size" => Op::Size(match operand.as_u64() {
                Some(n) => usize::try_from(n).map_err(|_| bad("a non-negative integer"))?,
                None => return Err(bad("a non-negative integer")),
            }),
            "$regex" => Op::Regex(parse_regex(field, operand, map.get("$options"))?),
            "$options" if map.contains_key("$regex") => continue,
            "$options" => return Err(bad("a `$regex` beside it")),
            "$elemMatch" => Op::ElemMatch(match operand {
                Value::Object(inner) if is_element_ops(inner) => {
                    ElemMatch::Ops(parse_ops(field, inner)?)
                }
                Value::Object(inner) => ElemMatch::Criteria(parse_object(inner)?),
                _ => return Err(bad("an object")),
            }),
            "$not" => Op::Not(match operand {
                Value::Object(inner) if !inner.is_empty() && is_operators(field, inner)? => {
                    parse_ops(field, inner)?
                }
                _ => return Err(bad("an object of operators")),
            }),
            other => {
                return Err(QueryError::UnknownOperator {
                    operator: other.to_owned(),
                    field: Some(field.to_owned()),
                });
            }
        });
    }
    Ok(ops)
}

/// Whether an `$elemMatch` operand tests the elements themselves: a non-empty object of
/// field operators only (the logical operators make it criteria on element objects).
fn is_element_ops(map: &Map<String, Value>) -> bool {
    !map.is_empty()
        && map
            .keys()
            .all(|k| k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor"))
}

/// `"pattern"`, `["pattern"]` or `["pattern", "flags"]`, plus the flags of a `$options`
/// beside it.
fn parse_regex(field: &str, operand: &Value, options: Option<&Value>) -> Result<Regex, QueryError> {
    let bad = |operator: &str, value: &Value| QueryError::BadOperand {
        operator: operator.into(),
        field: Some(field.to_owned()),
        expected: "a pattern string or a [pattern, flags] array of strings",
        value: brief(value),
    };
    let (pattern, mut flags) = match operand {
        Value::String(p) => (p.as_str(), String::new()),
        Value::Array(items) => match items.as_slice() {
            [Value::String(p)] => (p.as_str(), String::new()),
            [Value::String(p), Value::String(f)] => (p.as_str(), f.clone()),
            _ => return Err(bad("$regex", operand)),
        },
        _ => return Err(bad("$regex", operand)),
    };
    match options {
        None => {}
        Some(Value::String(f)) => flags.push_str(f),
        Some(other) => return Err(bad("$options", other)),
    }
    let mut builder = RegexBuilder::new(pattern);
    builder.size_limit(REGEX_SIZE_LIMIT);
    for flag in flags.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            's' => builder.dot_matches_new_line(true),
            'x' => builder.ignore_whitespace(true),
            _ => {
                return Err(QueryError::BadRegexFlag {
                    field: field.to_owned(),
                    flag,
                });
            }
        };
    }
    builder.build().map_err(|source| QueryError::BadRegex {
        field: field.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error(criteria: Value) -> String {
        Criteria::parse(&criteria).unwrap_err().to_string()
    }

    #[test]
    fn unknown_operators_are_named() {
        assert_eq!(
            error(json!({"name": {"$foo": 1}})),
            "unknown query operator `$foo` on field `name`"
        );
        assert_eq!(
            error(json!({"$where": "1"})),
            "unknown query operator `$where`"
        );
        assert!(error(json!({"$or": [{"a": {"$and": []}}]})).contains("`$and`"));
        assert!(error(json!({"a": {"$elemMatch": {"$gt": 1, "$bad": 2}}})).contains("`$bad`"));
    }

    #[test]
    fn bad_operands_name_the_field_and_operator() {
        for (criteria, needles) in [
            (
                json!({"region": {"$in": "North"}}),
                &["`$in`", "`region`", "array"][..],
            ),
            (json!({"a": {"$nin": 1}}), &["`$nin`", "`a`"]),
            (json!({"a": {"$all": {}}}), &["`$all`"]),
            (
                json!({"a": {"$gt": [1]}}),
                &["`$gt`", "a number or a string"],
            ),
            (json!({"a": {"$gte": null}}), &["`$gte`"]),
            (json!({"a": {"$size": -1}}), &["`$size`", "-1"]),
            (json!({"a": {"$size": 1.5}}), &["`$size`"]),
            (json!({"a": {"$exists": "yes"}}), &["`$exists`"]),
            (json!({"a": {"$not": 5}}), &["`$not`"]),
            (json!({"a": {"$not": {}}}), &["`$not`"]),
            (json!({"a": {"$elemMatch": 5}}), &["`$elemMatch`"]),
            (json!({"a": {"$options": "i"}}), &["`$options`", "`$regex`"]),
            (json!({"a": {"$regex": 5}}), &["`$regex`", "`a`"]),
            (json!({"a": {"$regex": ["x", 1]}}), &["`$regex`"]),
            (
                json!({"a": {"$regex": "x", "$options": 1}}),
                &["`$options`"],
            ),
            (json!({"$or": []}), &["`$or`", "non-empty"]),
            (json!({"$and": {"a": 1}}), &["`$and`"]),
            (json!({"$nor": [1]}), &["`$nor`"]),
            (json!({"a": {"$gt": 1, "b": 2}}), &["`a`", "mixes"]),
            (json!({"a..b": 1}), &["`a..b`"]),
        ] {
            let err = error(criteria.clone());
            for needle in needles {
                assert!(err.contains(needle), "{criteria}: {err} lacks {needle}");
            }
        }
    }

    #[test]
    fn regexes_are_compiled_with_their_flags_once() {
        assert!(
            error(json!({"name": {"$regex": "("}})).contains("bad regular expression on `name`")
        );
        assert_eq!(
            error(json!({"name": {"$regex": ["x", "ig"]}})),
            "unknown regular expression flag `g` on `name` (flags are i, m, s, x)"
        );
        let criteria = Criteria::parse(&json!({"a": {"$regex": ["^X.Y$", "is"]}})).unwrap();
        let [Clause::Field(_, ops)] = criteria.clauses.as_slice() else {
            panic!("one field clause");
        };
        let [Op::Regex(regex)] = ops.as_slice() else {
            panic!("one regex");
        };
        assert!(regex.is_match("x\ny"));
        let with_options =
            Criteria::parse(&json!({"a": {"$regex": "^x # comment", "$options": "xi"}})).unwrap();
        assert_eq!(with_options.clauses.len(), 1);
        assert!(
            error(json!({"a": {"$regex": "a{1000}{1000}{1000}"}}))
                .contains("bad regular expression")
        );
    }

    #[test]
    fn plain_values_and_literal_objects_mean_eq() {
        let criteria = Criteria::parse(&json!({"a": {"b": 1}, "c": [1], "d": {}})).unwrap();
        assert_eq!(criteria.clauses.len(), 3);
        for clause in &criteria.clauses {
            assert!(
                matches!(clause, Clause::Field(_, ops) if matches!(ops.as_slice(), [Op::Eq(_)]))
            );
        }
        assert!(Criteria::parse(&json!({})).unwrap().is_empty());
        assert!(error(json!([1])).contains("criteria must be a JSON object"));
    }
}
