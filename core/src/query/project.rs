//! The `fields` option: which parts of a record's payload a result keeps.
//!
//! `{"name": 1, "address.town": 1}` keeps only those fields (inclusion);
//! `{"password": 0}` drops them and keeps the rest (exclusion). `true`/`false` work as
//! `1`/`0`; one projection cannot mix the two, as in MongoDB. Dotted paths reach into
//! objects and into the objects of arrays. Keys naming `_meta` are ignored: the meta is
//! not part of the payload and every result carries it.
//!
//! A projection applies to the record's native view ([`Payload::to_native_value`]); the
//! projected record's payload is the JSON of the projected view (so a text or binary
//! payload becomes JSON).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::QueryError;
use super::brief;
use super::field::FieldPath;
use crate::payload::{Payload, Record};

/// A parsed `fields` option: `{"name": 1, "address.town": 1}` keeps only those payload
/// fields (inclusion), `{"password": 0}` drops them (exclusion); `true`/`false` work as
/// `1`/`0` and one projection cannot mix the two. Dotted paths reach into objects and the
/// objects of arrays; keys naming `_meta` are ignored (every result carries its meta).
/// It applies to the record's native view; a projected record's payload is the JSON of
/// the projected view ([`Projection::apply_record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    exclude: bool,
    tree: Tree,
}

/// The projected fields as a tree of path segments.
type Tree = BTreeMap<Box<str>, Node>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// This field, whole.
    Whole,
    /// Some fields below this one.
    Below(Tree),
}

impl Projection {
    /// Parses a `fields` object. `Ok(None)` when it names no field besides `_meta` (no
    /// projection).
    ///
    /// # Errors
    /// [`QueryError::BadOption`] when `value` is not an object, a value is not `1`, `0`,
    /// `true` or `false`, or inclusions and exclusions are mixed (naming both fields);
    /// [`QueryError::BadField`] for a bad dotted name.
    pub fn parse(value: &Value) -> Result<Option<Self>, QueryError> {
        let bad = |expected: String, value: &Value| QueryError::BadOption {
            option: "fields",
            expected,
            value: brief(value),
        };
        let Value::Object(map) = value else {
            return Err(bad("must be an object of `field: 1 | 0`".into(), value));
        };
        let mut mode: Option<(bool, &str)> = None;
        let mut tree = Tree::new();
        for (name, flag) in map {
            let field = FieldPath::parse(name)?;
            if field.is_meta() {
                continue;
            }
            let exclude = match flag {
                Value::Bool(b) => !b,
                Value::Number(n) if n.as_f64() == Some(1.0) => false,
                Value::Number(n) if n.as_f64() == Some(0.0) => true,
                _ => return Err(bad(format!("needs 1 or 0 for `{name}`"), flag)),
            };
            match mode {
                Some((other, first)) if other != exclude => {
                    return Err(bad(
                        format!("cannot mix inclusion and exclusion (`{first}` and `{name}`)"),
                        value,
                    ));
                }
                _ => mode = Some((exclude, name)),
            }
            insert(&mut tree, &field.segments().collect::<Vec<_>>());
        }
        Ok(mode.map(|(exclude, _)| Self { exclude, tree }))
    }

    /// Whether the projection drops the named fields (`0`) rather than keeping only them.
    pub fn is_exclusion(&self) -> bool {
        self.exclude
    }

    /// Projects a native view.
    pub fn apply(&self, view: Map<String, Value>) -> Map<String, Value> {
        if self.exclude {
            exclude(view, &self.tree)
        } else {
            include(&view, &self.tree)
        }
    }

    /// The record with its payload replaced by the JSON of its projected native view.
    pub fn apply_record(&self, record: Record) -> Record {
        let view = self.apply(record.payload.to_native_value());
        Record {
            payload: Payload::json(&Value::Object(view)),
            ..record
        }
    }
}

/// Adds a path to the tree; a whole field covers any path below it.
fn insert(tree: &mut Tree, segments: &[&str]) {
    let (first, rest) = segments.split_first().expect("a field path has a segment");
    if rest.is_empty() {
        tree.insert((*first).into(), Node::Whole);
        return;
    }
    let node = tree
        .entry((*first).into())
        .or_insert_with(|| Node::Below(Tree::new()));
    if let Node::Below(below) = node {
        insert(below, rest);
    }
}

fn include(view: &Map<String, Value>, tree: &Tree) -> Map<String, Value> {
    let mut kept = Map::new();
    for (key, node) in tree {
        let Some(value) = view.get(&**key) else {
            continue;
        };
        let projected = match node {
            Node::Whole => Some(value.clone()),
            Node::Below(below) => include_below(value, below),
        };
        if let Some(projected) = projected {
            kept.insert(key.to_string(), projected);
        }
    }
    kept
}

/// The parts of `value` named by `below`: an object projected, an array's objects
/// projected (other elements dropped), nothing for a scalar.
fn include_below(value: &Value, below: &Tree) -> Option<Value> {
    match value {
        Value::Object(map) => Some(Value::Object(include(map, below))),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(_) | Value::Array(_) => include_below(item, below),
                    _ => None,
                })
                .collect(),
        )),
        _ => None,
    }
}

fn exclude(mut view: Map<String, Value>, tree: &Tree) -> Map<String, Value> {
    for (key, node) in tree {
        match node {
            Node::Whole => {
                view.remove(&**key);
            }
            Node::Below(below) => {
                if let Some(value) = view.get_mut(&**key) {
                    exclude_below(value, below);
                }
            }
        }
    }
    view
}

fn exclude_below(value: &mut Value, below: &Tree) {
    match value {
        Value::Object(map) => *map = exclude(std::mem::take(map), below),
        Value::Array(items) => items.iter_mut().for_each(|item| exclude_below(item, below)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn project(fields: Value, view: Value) -> Value {
        let Value::Object(view) = view else {
            panic!("a view is an object")
        };
        let projection = Projection::parse(&fields).unwrap().expect("a projection");
        Value::Object(projection.apply(view))
    }

    #[test]
    fn inclusion_keeps_only_the_named_fields() {
        let view = json!({
            "name": "simon", "surname": "bishop",
            "address": {"town": "Cape Town", "street": "Long"},
            "pets": [{"kind": "cat", "name": "a"}, {"kind": "dog"}, 3],
            "n": 5,
        });
        assert_eq!(
            project(json!({"name": 1, "_meta": 1}), view.clone()),
            json!({"name": "simon"})
        );
        assert_eq!(
            project(
                json!({"address.town": true, "pets.kind": 1, "n.x": 1}),
                view.clone()
            ),
            json!({"address": {"town": "Cape Town"}, "pets": [{"kind": "cat"}, {"kind": "dog"}]})
        );
        assert_eq!(
            project(json!({"address": 1, "address.town": 1}), view.clone()),
            json!({"address": {"town": "Cape Town", "street": "Long"}})
        );
        assert_eq!(project(json!({"missing": 1}), view), json!({}));
    }

    #[test]
    fn exclusion_drops_the_named_fields() {
        let view = json!({
            "name": "simon", "password": "x",
            "address": {"town": "Cape Town", "street": "Long"},
            "pets": [{"kind": "cat", "name": "a"}, 3],
        });
        assert_eq!(
            project(
                json!({"password": 0, "address.street": false, "pets.name": 0}),
                view
            ),
            json!({"name": "simon", "address": {"town": "Cape Town"}, "pets": [{"kind": "cat"}, 3]})
        );
    }

    #[test]
    fn meta_only_or_empty_is_no_projection() {
        assert_eq!(Projection::parse(&json!({})).unwrap(), None);
        assert_eq!(
            Projection::parse(&json!({"_meta": 0, "_meta.path": 1})).unwrap(),
            None
        );
        assert!(
            Projection::parse(&json!({"a": 0}))
                .unwrap()
                .unwrap()
                .is_exclusion()
        );
    }

    #[test]
    fn bad_projections_name_the_fields() {
        for (fields, needle) in [
            (json!({"a": 1, "b": 0}), "(`a` and `b`)"),
            (json!({"a": 2}), "`a`"),
            (json!({"a": "yes"}), "`a`"),
            (json!(["a"]), "[\"a\"]"),
            (json!({"a..b": 1}), "`a..b`"),
        ] {
            let err = Projection::parse(&fields).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn projected_records_carry_json_payloads() {
        let record = Record {
            path: crate::Path::parse("/t").unwrap(),
            payload: Payload::detect(bytes::Bytes::from_static(b"hello")),
            created: 1,
            modified: 2,
            modified_by: None,
            properties: None,
        };
        let projection = Projection::parse(&json!({"value": 1})).unwrap().unwrap();
        let projected = projection.apply_record(record);
        assert_eq!(projected.payload.as_json(), Some(json!({"value": "hello"})));
        assert_eq!((projected.created, projected.modified), (1, 2));
    }
}
