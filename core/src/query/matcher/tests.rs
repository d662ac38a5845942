//! Every operator against a table of documents (with the reference's SEARCH examples),
//! and a property test comparing the matcher with a reference model.

use serde_json::{Map, Value, json};

use super::*;
use crate::path::Path;
use crate::payload::Payload;
use crate::query::Query;

/// Documents for the table: people as in the reference's SEARCH example, and a text
/// record.
fn people() -> Vec<(&'static str, Value)> {
    let record = |name: &str, payload: Payload, created| Record {
        path: Path::parse(&format!("/users/{name}")).unwrap(),
        payload,
        created,
        modified: created,
        modified_by: None,
        properties: None,
    };
    let simon = json!({
        "name": "simon", "surname": "Bishop", "region": "North", "town": "x", "age": 30,
        "tags": ["a", "b"], "scores": [80, 90], "address": {"town": "Cape Town"},
        "pets": [{"kind": "cat", "age": 3}, {"kind": "dog", "age": 5}],
    });
    let mary = json!({
        "name": "Mary Simonsen", "surname": "Emslie", "region": "Central",
        "town": "South.East London", "age": 25.5, "tags": ["b"], "scores": [70],
        "nothing": null,
    });
    let bob = json!({
        "name": "bob", "surname": "Smith", "region": "South", "age": "40", "tags": [],
        "flag": true,
    });
    let text = Payload::detect(bytes::Bytes::from_static(b"hello world"));
    vec![
        (
            "simon",
            document(&record("simon", Payload::json(&simon), 1)),
        ),
        ("mary", document(&record("mary", Payload::json(&mary), 2))),
        ("bob", document(&record("bob", Payload::json(&bob), 3))),
        ("hello", document(&record("hello", text, 4))),
    ]
}

#[test]
fn every_operator_matches_as_documented() {
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({}), &["simon", "mary", "bob", "hello"]),
        // $eq, plain values, arrays and null
        (json!({"name": "simon"}), &["simon"]),
        (json!({"name": {"$eq": "simon"}}), &["simon"]),
        (json!({"tags": "b"}), &["simon", "mary"]),
        (json!({"tags": ["a", "b"]}), &["simon"]),
        (json!({"tags": ["b", "a"]}), &[]),
        (json!({"tags": []}), &["bob"]),
        (json!({"age": 30.0}), &["simon"]),
        (json!({"address": {"town": "Cape Town"}}), &["simon"]),
        (json!({"nothing": null}), &["simon", "mary", "bob", "hello"]),
        (json!({"age": null}), &["hello"]),
        (json!({"name": {"$ne": "simon"}}), &["mary", "bob", "hello"]),
        (json!({"tags": {"$ne": "b"}}), &["bob", "hello"]),
        // $exists
        (json!({"nothing": {"$exists": true}}), &["mary"]),
        (
            json!({"flag": {"$exists": false}}),
            &["simon", "mary", "hello"],
        ),
        (json!({"pets.kind": {"$exists": 1}}), &["simon"]),
        // comparisons, same type only
        (json!({"age": {"$gt": 25}}), &["simon", "mary"]),
        (json!({"age": {"$gte": 30, "$lt": 100}}), &["simon"]),
        (json!({"age": {"$lte": 25.5}}), &["mary"]),
        (json!({"age": {"$lt": "5"}}), &["bob"]),
        (json!({"scores": {"$gt": 85}}), &["simon"]),
        (json!({"name": {"$gte": "m"}}), &["simon"]),
        (json!({"name": {"$lt": "c"}}), &["mary", "bob"]),
        // $in, $nin, $all
        (
            json!({"region": {"$in": ["North", "South"]}}),
            &["simon", "bob"],
        ),
        (
            json!({"region": {"$nin": ["North", "South"]}}),
            &["mary", "hello"],
        ),
        (json!({"region": {"$in": []}}), &[]),
        (json!({"region": {"$in": [null]}}), &["hello"]),
        (json!({"tags": {"$in": ["a"]}}), &["simon"]),
        (json!({"tags": {"$all": ["a", "b"]}}), &["simon"]),
        (json!({"tags": {"$all": ["b"]}}), &["simon", "mary"]),
        (json!({"tags": {"$all": []}}), &[]),
        // $size, $containsAny, $elemMatch
        (json!({"tags": {"$size": 0}}), &["bob"]),
        (json!({"tags": {"$size": 2}}), &["simon"]),
        (json!({"tags": {"$containsAny": ["a", "z"]}}), &["simon"]),
        (json!({"tags": {"$containsAny": "b"}}), &["simon", "mary"]),
        (
            json!({"name": {"$containsAny": ["Simon", "ob"]}}),
            &["mary", "bob"],
        ),
        (json!({"address": {"$containsAny": ["town"]}}), &["simon"]),
        (json!({"age": {"$containsAny": [30]}}), &[]),
        (
            json!({"pets": {"$elemMatch": {"kind": "dog", "age": {"$gt": 4}}}}),
            &["simon"],
        ),
        (
            json!({"pets": {"$elemMatch": {"kind": "cat", "age": {"$gt": 4}}}}),
            &[],
        ),
        (
            json!({"scores": {"$elemMatch": {"$gte": 75, "$lt": 85}}}),
            &["simon"],
        ),
        (json!({"scores": {"$elemMatch": {"$gte": 95}}}), &[]),
        (json!({"tags": {"$elemMatch": {}}}), &[]),
        // dotted paths
        (json!({"pets.kind": "cat"}), &["simon"]),
        (json!({"pets.1.kind": "dog"}), &["simon"]),
        (json!({"pets.0.kind": "dog"}), &[]),
        (json!({"address.town": "Cape Town"}), &["simon"]),
        (json!({"scores.1": 90}), &["simon"]),
        // $not and the logical operators
        (
            json!({"age": {"$not": {"$gt": 26}}}),
            &["mary", "bob", "hello"],
        ),
        (
            json!({"tags": {"$not": {"$size": 1}}}),
            &["simon", "bob", "hello"],
        ),
        (
            json!({"$or": [{"name": "simon"}, {"name": "bob"}]}),
            &["simon", "bob"],
        ),
        (
            json!({"$and": [{"tags": "b"}, {"age": {"$lt": 28}}]}),
            &["mary"],
        ),
        (
            json!({"$nor": [{"name": "simon"}, {"name": "bob"}]}),
            &["mary", "hello"],
        ),
        // $regex (reference: a string, or [pattern, "i"]) and $options
        (json!({"name": {"$regex": ".*simon.*"}}), &["simon"]),
        (
            json!({"name": {"$regex": [".*simon.*", "i"]}}),
            &["simon", "mary"],
        ),
        (
            json!({"name": {"$regex": "^S", "$options": "i"}}),
            &["simon"],
        ),
        (json!({"value": {"$regex": "world$"}}), &["hello"]),
        (json!({"tags": {"$regex": "^a$"}}), &["simon"]),
        (json!({"age": {"$regex": "3"}}), &[]),
        // _meta
        (json!({"_meta.path": "/users/bob"}), &["bob"]),
        (
            json!({"_meta.created": {"$gte": 2}}),
            &["mary", "bob", "hello"],
        ),
        (
            json!({"_meta.path": {"$regex": "^/users/[a-m]"}}),
            &["mary", "bob", "hello"],
        ),
        // the reference's SEARCH example
        (
            json!({
                "$or": [{"region": {"$in": ["North", "South", "East", "West"]}},
                        {"town": {"$in": ["North.Cape Town", "South.East London"]}}],
                "surname": {"$in": ["Bishop", "Emslie"]}
            }),
            &["simon", "mary"],
        ),
    ];
    let docs = people();
    for (criteria, expected) in cases {
        let parsed = Criteria::parse(&criteria).unwrap();
        let matched: Vec<&str> = docs
            .iter()
            .filter(|(_, doc)| parsed.matches(doc))
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(matched, expected, "criteria {criteria}");
    }
}

#[test]
fn matches_record_uses_the_document() {
    let record = Record {
        path: Path::parse("/x").unwrap(),
        payload: Payload::json(&json!(7)),
        created: 1,
        modified: 1,
        modified_by: None,
        properties: None,
    };
    let query = Query::parse(Some(&json!({"value": 7, "_meta.path": "/x"})), None).unwrap();
    assert!(query.criteria.unwrap().matches_record(&record));
}

/// A reference model of the criteria semantics over the property test's small world
/// (fields `a`, `b`, `c`, and `x.e` for `x` in `a`, `d`): it reads the criteria JSON
/// directly, rule by rule as the module docs state them.
mod model {
    use serde_json::{Map, Value};

    pub(super) fn matches(criteria: &Map<String, Value>, doc: &Value) -> bool {
        criteria.iter().all(|(key, value)| match key.as_str() {
            "$and" => list(value).iter().all(|c| matches(c, doc)),
            "$or" => list(value).iter().any(|c| matches(c, doc)),
            "$nor" => !list(value).iter().any(|c| matches(c, doc)),
            field => condition(&lookup(doc, field), value),
        })
    }

    fn list(value: &Value) -> Vec<&Map<String, Value>> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_object().unwrap())
            .collect()
    }

    /// `field` or `field.e`: the values found (an array's objects are looked into).
    fn lookup(doc: &Value, field: &str) -> Vec<Value> {
        let (first, rest) = match field.split_once('.') {
            Some((first, rest)) => (first, Some(rest)),
            None => (field, None),
        };
        let Some(value) = doc.get(first) else {
            return vec![];
        };
        match rest {
            None => vec![value.clone()],
            Some(rest) => match value {
                Value::Object(o) => o.get(rest).cloned().into_iter().collect(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_object()?.get(rest).cloned())
                    .collect(),
                _ => vec![],
            },
        }
    }

    fn is_ops(value: &Value) -> bool {
        value
            .as_object()
            .is_some_and(|o| !o.is_empty() && o.keys().all(|k| k.starts_with('$')))
    }

    fn condition(values: &[Value], cond: &Value) -> bool {
        if is_ops(cond) {
            let ops = cond.as_object().unwrap();
            ops.iter().all(|(op, arg)| operator(values, op, arg, ops))
        } else {
            eq(values, cond)
        }
    }

    /// The values and the elements of the array values.
    fn flat(values: &[Value]) -> Vec<Value> {
        let mut all = values.to_vec();
        for v in values {
            if let Value::Array(items) = v {
                all.extend(items.iter().cloned());
            }
        }
        all
    }

    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }

    fn eq(values: &[Value], x: &Value) -> bool {
        (x.is_null() && values.is_empty()) || flat(values).iter().any(|v| same(v, x))
    }

    fn compare(v: &Value, x: &Value, op: &str) -> bool {
        let order = match (v, x) {
            (Value::Number(a), Value::Number(b)) => {
                a.as_f64().unwrap().partial_cmp(&b.as_f64().unwrap())
            }
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            _ => None,
        };
        order.is_some_and(|o| match op {
            "$gt" => o.is_gt(),
            "$gte" => o.is_ge(),
            "$lt" => o.is_lt(),
            _ => o.is_le(),
        })
    }

    /// The property test's regexes, by what they mean.
    fn regex(pattern: &str, s: &str) -> bool {
        match pattern {
            "^x" => s.starts_with('x'),
            "y$" => s.ends_with('y'),
            "x" => s.contains('x'),
            "^$" => s.is_empty(),
            other => panic!("no model for regex {other}"),
        }
    }

    fn operator(values: &[Value], op: &str, arg: &Value, ops: &Map<String, Value>) -> bool {
        let args = || arg.as_array().unwrap().clone();
        match op {
            "$eq" => eq(values, arg),
            "$ne" => !eq(values, arg),
            "$gt" | "$gte" | "$lt" | "$lte" => flat(values).iter().any(|v| compare(v, arg, op)),
            "$in" => args().iter().any(|x| eq(values, x)),
            "$nin" => !args().iter().any(|x| eq(values, x)),
            "$all" => !args().is_empty() && args().iter().all(|x| eq(values, x)),
            "$containsAny" => values.iter().any(|v| match v {
                Value::Array(items) => args().iter().any(|w| items.iter().any(|i| same(i, w))),
                Value::String(s) => args()
                    .iter()
                    .any(|w| w.as_str().is_some_and(|w| s.contains(w))),
                Value::Object(o) => args()
                    .iter()
                    .any(|w| w.as_str().is_some_and(|w| o.contains_key(w))),
                _ => false,
            }),
            "$exists" => values.is_empty() != arg.as_bool().unwrap(),
            "$regex" => {
                assert!(!ops.contains_key("$options"));
                flat(values)
                    .iter()
                    .any(|v| v.as_str().is_some_and(|s| regex(arg.as_str().unwrap(), s)))
            }
            "$size" => values.iter().any(|v| {
                v.as_array()
                    .is_some_and(|a| a.len() as u64 == arg.as_u64().unwrap())
            }),
            "$elemMatch" => values.iter().any(|v| {
                v.as_array().is_some_and(|items| {
                    items.iter().any(|item| {
                        if is_ops(arg) {
                            condition(std::slice::from_ref(item), arg)
                        } else {
                            item.is_object() && matches(arg.as_object().unwrap(), item)
                        }
                    })
                })
            }),
            "$not" => !condition(values, arg),
            other => panic!("no model for {other}"),
        }
    }
}

mod strategies {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    pub(super) fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(null)),
            (-1i64..=2).prop_map(Value::from),
            Just(json!(1.5)),
            Just(json!(2.0)),
            Just(json!("x")),
            Just(json!("y")),
            Just(json!("xy")),
            Just(json!("")),
            any::<bool>().prop_map(Value::from),
        ]
    }

    fn object_with_e() -> impl Strategy<Value = Value> {
        scalar().prop_map(|e| json!({ "e": e }))
    }

    fn field_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => scalar(),
            2 => proptest::collection::vec(scalar(), 0..4).prop_map(Value::from),
            1 => object_with_e(),
            1 => proptest::collection::vec(object_with_e(), 0..3).prop_map(Value::from),
        ]
    }

    /// A document with some of the fields `a`, `b`, `c`, `d`.
    pub(super) fn doc() -> impl Strategy<Value = Value> {
        proptest::collection::vec(
            (
                prop::sample::select(vec!["a", "b", "c", "d"]),
                field_value(),
            ),
            0..5,
        )
        .prop_map(|fields| {
            Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
    }

    fn comparable() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-1i64..=2).prop_map(Value::from),
            Just(json!(1.5)),
            Just(json!("x")),
            Just(json!("xy")),
            Just(json!("")),
        ]
    }

    fn values() -> impl Strategy<Value = Value> {
        proptest::collection::vec(scalar(), 0..3).prop_map(Value::from)
    }

    fn operator() -> impl Strategy<Value = Value> {
        let one = |name: &'static str, arg: BoxedStrategy<Value>| {
            arg.prop_map(move |arg| {
                let mut ops = Map::new();
                ops.insert(name.to_owned(), arg);
                Value::Object(ops)
            })
        };
        let leaf = prop_oneof![
            one("$eq", field_value().boxed()),
            one("$ne", scalar().boxed()),
            one("$gt", comparable().boxed()),
            one("$gte", comparable().boxed()),
            one("$lt", comparable().boxed()),
            one("$lte", comparable().boxed()),
            one("$in", values().boxed()),
            one("$nin", values().boxed()),
            one("$all", values().boxed()),
            one("$containsAny", values().boxed()),
            one("$exists", any::<bool>().prop_map(Value::from).boxed()),
            one(
                "$regex",
                prop::sample::select(vec!["^x", "y$", "x", "^$"])
                    .prop_map(Value::from)
                    .boxed()
            ),
            one("$size", (0u64..3).prop_map(Value::from).boxed()),
            one("$elemMatch", object_with_e().boxed()),
            one(
                "$elemMatch",
                (comparable(), comparable())
                    .prop_map(|(lo, hi)| json!({"$gte": lo, "$lt": hi}))
                    .boxed()
            ),
        ];
        leaf.prop_recursive(2, 8, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|op| json!({ "$not": op })),
                (inner.clone(), inner).prop_map(|(a, b)| {
                    let mut ops = a.as_object().unwrap().clone();
                    ops.extend(b.as_object().unwrap().clone());
                    Value::Object(ops)
                }),
            ]
        })
    }

    fn condition() -> impl Strategy<Value = Value> {
        prop_oneof![1 => field_value(), 3 => operator()]
    }

    /// Criteria over the fields `a`, `b`, `c`, `a.e`, `d.e`, with nested `$and`, `$or`,
    /// `$nor`.
    pub(super) fn criteria() -> impl Strategy<Value = Value> {
        let field = prop::sample::select(vec!["a", "b", "c", "a.e", "d.e"]);
        let leaf = proptest::collection::vec((field, condition()), 1..3).prop_map(|clauses| {
            Value::Object(
                clauses
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            )
        });
        leaf.prop_recursive(3, 16, 3, |inner| {
            (
                prop::sample::select(vec!["$and", "$or", "$nor"]),
                proptest::collection::vec(inner, 1..3),
            )
                .prop_map(|(op, list)| json!({ op: list }))
        })
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// The matcher agrees with the reference model on random documents and criteria.
    #[test]
    fn matcher_agrees_with_the_reference_model(
        criteria in strategies::criteria(),
        docs in proptest::collection::vec(strategies::doc(), 1..8),
    ) {
        let parsed = Criteria::parse(&criteria).expect("generated criteria parse");
        let object: &Map<String, Value> = criteria.as_object().unwrap();
        for doc in &docs {
            proptest::prop_assert_eq!(
                parsed.matches(doc),
                model::matches(object, doc),
                "criteria {} on {}", criteria, doc
            );
        }
    }
}
