//! Payloads and records (DESIGN.md §4).
//!
//! A payload is bytes plus a [`Format`]. MQTT to MQTT is byte-exact: the bytes a device
//! published are the bytes its subscribers receive. Native clients see JSON through
//! [`Payload::to_native_value`].

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::path::Path;

/// What the bytes of a payload are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Format {
    /// JSON text.
    Json = 0,
    /// UTF-8 text that is not JSON.
    Text = 1,
    /// Anything else.
    Binary = 2,
}

impl Format {
    /// The format for its stored tag byte (`0` json, `1` text, `2` binary), `None` otherwise.
    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0 => Some(Self::Json),
            1 => Some(Self::Text),
            2 => Some(Self::Binary),
            _ => None,
        }
    }

    /// The stored tag byte of this format.
    pub fn tag(self) -> u8 {
        self as u8
    }
}

/// Bytes and their format. Cloning shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// What the bytes are.
    pub format: Format,
    /// The bytes, exactly as published or stored.
    pub bytes: Bytes,
}

impl Payload {
    /// A JSON payload holding `value`.
    pub fn json(value: &Value) -> Self {
        Self {
            format: Format::Json,
            bytes: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        }
    }

    /// Classifies bytes from a device (an MQTT PUBLISH): JSON when they parse as JSON, text
    /// when they are UTF-8, binary otherwise. The bytes are kept as they are.
    pub fn detect(bytes: Bytes) -> Self {
        // UTF-8 first: serde_json does not check the strings it skips, so bytes such as
        // `{"a":"\xff"}` would pass as JSON and then break every native frame they are
        // spliced into.
        let format = match std::str::from_utf8(&bytes) {
            // Skimmed, not built: this runs on every MQTT PUBLISH.
            Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => Format::Json,
            Ok(_) => Format::Text,
            Err(_) => Format::Binary,
        };
        Self { format, bytes }
    }

    /// The JSON value of a `json` payload (`None` for text and binary, or JSON that no
    /// longer parses).
    pub fn as_json(&self) -> Option<Value> {
        match self.format {
            Format::Json => serde_json::from_slice(&self.bytes).ok(),
            _ => None,
        }
    }

    /// What a native client sees (reference rule): a JSON object as itself, any other JSON
    /// value as `{"value": …}`, text as `{"value": "<text>"}`, binary as
    /// `{"value_base64": "…"}`. `_meta` is added by the protocol.
    pub fn to_native_value(&self) -> Map<String, Value> {
        let mut map = Map::new();
        match self.format {
            Format::Json => match serde_json::from_slice::<Value>(&self.bytes) {
                Ok(Value::Object(object)) => return object,
                Ok(other) => {
                    map.insert("value".into(), other);
                }
                Err(_) => {
                    map.insert("value".into(), text_or_base64(&self.bytes));
                }
            },
            Format::Text => {
                map.insert("value".into(), text_or_base64(&self.bytes));
            }
            Format::Binary => {
                map.insert(
                    "value_base64".into(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(&self.bytes)),
                );
            }
        }
        map
    }

    /// The JSON text of [`Payload::to_native_value`]. A JSON object payload already is
    /// its own native view, so its bytes are shared as they are (no parse, no copy); other
    /// payloads are converted. The format tag is trusted: a `json` payload was checked to
    /// be JSON when it was made ([`Payload::detect`], [`Payload::json`]).
    pub fn native_json(&self) -> Bytes {
        // A record stored by an older version may carry the `json` tag on bytes that are
        // not UTF-8: those take the converting path, which never emits them raw.
        if self.format == Format::Json
            && self.bytes.trim_ascii_start().first() == Some(&b'{')
            && std::str::from_utf8(&self.bytes).is_ok()
        {
            return self.bytes.clone();
        }
        Bytes::from(serde_json::to_vec(&self.to_native_value()).unwrap_or_default())
    }

    /// The result of a shallow merge (reference: `set` with `merge: true`): when both
    /// payloads are JSON objects, `update`'s keys replace or add to `self`'s; otherwise
    /// `update` replaces `self` whole.
    pub fn merged(&self, update: &Payload) -> Payload {
        match (self.as_json(), update.as_json()) {
            (Some(Value::Object(mut base)), Some(Value::Object(changes))) => {
                for (k, v) in changes {
                    base.insert(k, v);
                }
                Payload::json(&Value::Object(base))
            }
            _ => update.clone(),
        }
    }
}

fn text_or_base64(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

/// A stored record (DESIGN.md §4). Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where the record is stored.
    pub path: Path,
    /// Its payload.
    pub payload: Payload,
    /// When the path was first set, ms since the epoch.
    pub created: u64,
    /// When the path was last set, ms since the epoch.
    pub modified: u64,
    /// Who last set it (a username), when security knows one.
    pub modified_by: Option<String>,
    /// The MQTT 5 properties of the PUBLISH that stored it (a retained message's content
    /// type, message expiry, …): sent with it to MQTT 5 subscribers [MQTT-3.3.1-?].
    pub properties: Option<std::sync::Arc<crate::event::MessageProperties>>,
}

impl Record {
    /// The record as an item of a list or a REST answer: its native view (DESIGN.md §4)
    /// with `"_meta": {path, created, modified, modifiedBy?}` (replacing any `_meta` key
    /// of the stored object).
    pub fn to_native_item(&self) -> Value {
        let mut meta = Map::new();
        meta.insert("path".into(), self.path.as_str().into());
        meta.insert("created".into(), self.created.into());
        meta.insert("modified".into(), self.modified.into());
        if let Some(by) = &self.modified_by {
            meta.insert("modifiedBy".into(), by.as_str().into());
        }
        let mut item = self.payload.to_native_value();
        item.insert("_meta".into(), Value::Object(meta));
        Value::Object(item)
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detect_classifies_device_bytes() {
        assert_eq!(
            Payload::detect(Bytes::from_static(b"21.5")).format,
            Format::Json
        );
        assert_eq!(
            Payload::detect(Bytes::from_static(b"{\"c\":1}")).format,
            Format::Json
        );
        assert_eq!(
            Payload::detect(Bytes::from_static(b"hello")).format,
            Format::Text
        );
        assert_eq!(
            Payload::detect(Bytes::from_static(b"")).format,
            Format::Text
        );
        assert_eq!(
            Payload::detect(Bytes::from_static(&[0xff, 0x00])).format,
            Format::Binary
        );
    }

    /// Regression guard: JSON-shaped bytes that are not UTF-8 are binary, never spliced
    /// raw into a native frame (which would make the frame unreadable).
    #[test]
    fn json_shaped_bytes_that_are_not_utf8_are_binary() {
        let bytes = Bytes::from_static(b"{\"a\":\"\xff\"}");
        let payload = Payload::detect(bytes.clone());
        assert_eq!(payload.format, Format::Binary);
        assert!(std::str::from_utf8(&payload.native_json()).is_ok());
        // A record tagged `json` by an older version takes the converting path.
        let legacy = Payload {
            format: Format::Json,
            bytes,
        };
        assert!(std::str::from_utf8(&legacy.native_json()).is_ok());
    }

    #[test]
    fn native_view_wraps_non_objects() {
        let view = |b: &'static [u8]| {
            Value::Object(Payload::detect(Bytes::from_static(b)).to_native_value())
        };
        assert_eq!(view(b"{\"c\":1}"), json!({"c": 1}));
        assert_eq!(view(b"21.5"), json!({"value": 21.5}));
        assert_eq!(view(b"hello"), json!({"value": "hello"}));
        assert_eq!(view(&[0xff, 0x00]), json!({"value_base64": "/wA="}));
    }

    #[test]
    fn merge_is_shallow_and_replaces_non_objects() {
        let a = Payload::json(&json!({"a": 1, "n": {"x": 1}}));
        let b = Payload::json(&json!({"b": 2, "n": {"y": 2}}));
        assert_eq!(
            a.merged(&b).as_json().unwrap(),
            json!({"a": 1, "b": 2, "n": {"y": 2}})
        );
        let c = Payload::json(&json!(5));
        assert_eq!(a.merged(&c), c);
    }
}
