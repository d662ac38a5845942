//! Dotted field paths (`"name"`, `"a.b.c"`, `"_meta.created"`) and how they find values
//! in a document.
//!
//! Two lookups, as in MongoDB:
//!
//! - [`FieldPath::values`] (criteria): a segment names an object key; on an array, a
//!   numeric segment is an index, and the path also continues into every element that is
//!   an object (`"tags.name"` on `{"tags": [{"name": "a"}, {"name": "b"}]}` finds `"a"`
//!   and `"b"`). Nested arrays are not flattened further.
//! - [`FieldPath::value`] (sort): objects and numeric array indexes only; a path through
//!   an array without an index finds nothing.

use std::fmt;

use serde_json::Value;

use super::QueryError;

/// A dotted path to a field of a document: `"name"`, `"address.town"`, `"tags.0"`,
/// `"_meta.modified"`. Segments are non-empty; a numeric segment also indexes arrays.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    text: Box<str>,
    segments: Box<[Box<str>]>,
}

impl FieldPath {
    /// Parses a dotted path.
    ///
    /// # Errors
    /// [`QueryError::BadField`] when `text` is empty or has an empty segment (`"a..b"`,
    /// `".a"`, `"a."`).
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let bad = |reason| QueryError::BadField {
            field: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("a field name cannot be empty"));
        }
        let segments: Box<[Box<str>]> = text.split('.').map(Box::from).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(bad("a dotted field name has an empty segment"));
        }
        Ok(Self {
            text: text.into(),
            segments,
        })
    }

    /// The path as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|s| &**s)
    }

    /// Whether the path is `_meta` or below it (the record's meta, not its payload).
    pub fn is_meta(&self) -> bool {
        &*self.segments[0] == "_meta"
    }

    /// Every value the path reaches in `doc`, following arrays as MongoDB does (module
    /// docs). Empty when the field is missing.
    pub fn values<'a>(&self, doc: &'a Value) -> Vec<&'a Value> {
        let mut found = Vec::new();
        collect(doc, &self.segments, &mut found);
        found
    }

    /// The one value the path names through objects and numeric array indexes, if any.
    pub fn value<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.segments
            .iter()
            .try_fold(doc, |value, segment| step(value, segment))
    }
}

fn step<'a>(value: &'a Value, segment: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

fn collect<'a>(value: &'a Value, segments: &[Box<str>], found: &mut Vec<&'a Value>) {
    let Some((first, rest)) = segments.split_first() else {
        found.push(value);
        return;
    };
    match value {
        Value::Object(map) => {
            if let Some(child) = map.get(&**first) {
                collect(child, rest, found);
            }
        }
        Value::Array(items) => {
            if let Some(item) = first.parse::<usize>().ok().and_then(|i| items.get(i)) {
                collect(item, rest, found);
            }
            for item in items.iter().filter(|item| item.is_object()) {
                collect(item, segments, found);
            }
        }
        _ => {}
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({:?})", &*self.text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(s: &str) -> FieldPath {
        FieldPath::parse(s).unwrap()
    }

    #[test]
    fn empty_names_and_segments_are_refused() {
        for bad in ["", ".", "a..b", ".a", "a."] {
            let err = FieldPath::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        assert_eq!(field("a.b").segments().collect::<Vec<_>>(), ["a", "b"]);
        assert!(field("_meta.created").is_meta());
        assert!(!field("meta").is_meta());
    }

    #[test]
    fn values_follow_objects_indexes_and_arrays_of_objects() {
        let doc = json!({
            "a": {"b": {"c": 1}},
            "tags": [{"name": "x"}, {"name": "y"}, "z", [{"name": "nested"}]],
            "list": [10, 20],
        });
        let values = |p: &str| {
            field(p)
                .values(&doc)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(values("a.b.c"), [json!(1)]);
        assert_eq!(values("a.b"), [json!({"c": 1})]);
        assert_eq!(values("tags.name"), [json!("x"), json!("y")]);
        assert_eq!(values("tags.1.name"), [json!("y")]);
        assert_eq!(values("list.1"), [json!(20)]);
        assert_eq!(values("list"), [json!([10, 20])]);
        assert!(values("a.x").is_empty());
        assert!(values("list.5").is_empty());
        assert!(values("a.b.c.d").is_empty());
    }

    #[test]
    fn value_follows_objects_and_indexes_only() {
        let doc = json!({"a": {"b": 1}, "tags": [{"name": "x"}]});
        assert_eq!(field("a.b").value(&doc), Some(&json!(1)));
        assert_eq!(field("tags.0.name").value(&doc), Some(&json!("x")));
        assert_eq!(field("tags.name").value(&doc), None);
        assert_eq!(field("missing").value(&doc), None);
    }
}
