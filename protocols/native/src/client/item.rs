//! What reads and writes answer: [`Item`], a record's data with its [`Meta`]
//! (`reference/happn-3-wire.md` §5; DESIGN.md §4).

use pathmq_core::Record;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ClientError;

/// One record as a client sees it: its data (the native view, DESIGN.md §4) and its meta.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Item {
    /// The data, always a JSON object: a stored object as itself, any other JSON value as
    /// `{"value": …}`, text as `{"value": "<text>"}`, binary as `{"value_base64": "…"}`.
    /// For a search with `fields`, only those fields.
    pub data: Value,
    /// Where the record is and when it was written.
    pub meta: Meta,
}

/// The meta of an [`Item`] (the `_meta` of the wire, without the response envelope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Meta {
    /// The record's path (`/a/b`).
    pub path: String,
    /// When the path was first set, ms since the Unix epoch (0 when the broker did not
    /// say, as for a `fields` projection).
    pub created: u64,
    /// When the path was last set, ms since the Unix epoch (0 when not said).
    pub modified: u64,
    /// Who last set it (a username), when security knows one.
    pub modified_by: Option<String>,
    /// For the answer to a `set`: whether an event was published. `false` for reads.
    pub published: bool,
}

impl Item {
    /// The record's path.
    pub fn path(&self) -> &str {
        &self.meta.path
    }

    /// The data decoded into `T`. A non-object value was stored wrapped: decode
    /// `{"value": …}` (or read `item.data["value"]`).
    ///
    /// # Errors
    /// [`ClientError::Decode`] when the data does not fit `T`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        T::deserialize(&self.data).map_err(|source| ClientError::Decode {
            what: format!("the data at `{}`", self.meta.path),
            source: Some(source),
        })
    }

    /// An item from an object of the wire: its `_meta` (when it is an object) split off
    /// as the meta, the rest as the data.
    pub(crate) fn from_wire(mut object: Map<String, Value>) -> Self {
        let meta = match object.remove("_meta") {
            Some(Value::Object(meta)) => Meta::from_wire(&meta),
            _ => Meta::default(),
        };
        Self {
            data: Value::Object(object),
            meta,
        }
    }

    /// An item from a core record (in-process clients).
    pub(crate) fn from_record(record: &Record, published: bool) -> Self {
        Self {
            data: Value::Object(record.payload.to_native_value()),
            meta: Meta {
                path: record.path.as_str().to_owned(),
                created: record.created,
                modified: record.modified,
                modified_by: record.modified_by.clone(),
                published,
            },
        }
    }
}

impl Meta {
    /// The meta read from a `_meta` object: `path`, `created`, `modified`, `modifiedBy`,
    /// `published`; other keys (the response envelope) are ignored.
    pub(crate) fn from_wire(meta: &Map<String, Value>) -> Self {
        Self {
            path: text(meta, "path").unwrap_or_default(),
            created: meta.get("created").and_then(Value::as_u64).unwrap_or(0),
            modified: meta.get("modified").and_then(Value::as_u64).unwrap_or(0),
            modified_by: text(meta, "modifiedBy"),
            published: meta.get("published").and_then(Value::as_bool) == Some(true),
        }
    }
}

/// A string field of a JSON object.
pub(crate) fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_items_split_their_meta() {
        let Value::Object(object) = json!({"t": 1, "_meta": {"path": "/a", "created": 5,
            "modified": 6, "modifiedBy": "ann", "type": "response"}})
        else {
            unreachable!()
        };
        let item = Item::from_wire(object);
        assert_eq!(item.data, json!({"t": 1}));
        assert_eq!(
            item.meta,
            Meta {
                path: "/a".into(),
                created: 5,
                modified: 6,
                modified_by: Some("ann".into()),
                published: false,
            }
        );
        #[derive(serde::Deserialize)]
        struct T {
            t: u8,
        }
        assert_eq!(item.data_as::<T>().unwrap().t, 1);
        assert!(matches!(
            item.data_as::<String>(),
            Err(ClientError::Decode { .. })
        ));
    }
}
