//! Inbound frames: Primus heartbeat strings and request envelopes
//! (`reference/happn-3-wire.md` §1 and §3, DESIGN.md §5).
//!
//! Parsing does no I/O and never fails silently: a frame that is not a request comes back
//! as a [`Rejected`] carrying whatever `eventId` and `action` could be read, so the
//! connection can answer it and stay open.

use pathmq_core::Action;
use serde_json::{Map, Value};

use crate::error::FrameError;

/// One inbound frame, parsed.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// `"primus::ping::<x>"`: a client heartbeat, answered `"primus::pong::<x>"`.
    Ping(String),
    /// `"primus::pong::<x>"`: the answer to a server heartbeat.
    Pong,
    /// A request.
    Request(Envelope),
}

/// A request: `{action, eventId, path?, data?, options?, sessionId?}` (wire doc §3).
/// `sessionId` is ignored: the connection is the session (wire doc §2.5).
#[derive(Debug)]
pub(crate) struct Envelope {
    /// The action.
    pub(crate) action: Action,
    /// The client's correlation id, echoed as sent (the happn-3 client sends integers).
    pub(crate) event_id: Option<Value>,
    /// The path or channel, when the frame has one.
    pub(crate) path: Option<String>,
    /// The data (`null` when absent).
    pub(crate) data: Value,
    /// The options (empty when absent or `null`).
    pub(crate) options: Map<String, Value>,
}

impl Envelope {
    /// The `eventId` as an integer, for publication ids (`<session>-<eventId>`).
    pub(crate) fn event_id_u64(&self) -> Option<u64> {
        self.event_id.as_ref().and_then(Value::as_u64)
    }

    /// The path, or [`FrameError::MissingField`].
    pub(crate) fn require_path(&self) -> Result<&str, FrameError> {
        self.path.as_deref().ok_or(FrameError::MissingField {
            action: self.action.as_str(),
            field: "path",
        })
    }
}

/// A frame that is not a usable request, with what could be read of it for the answer.
#[derive(Debug)]
pub(crate) struct Rejected {
    /// The `eventId`, when the frame was an object that had one.
    pub(crate) event_id: Option<Value>,
    /// The `action` text, when there was one.
    pub(crate) action: Option<String>,
    /// Why the frame was refused.
    pub(crate) error: FrameError,
}

impl Rejected {
    fn bare(error: FrameError) -> Self {
        Self {
            event_id: None,
            action: None,
            error,
        }
    }
}

/// Parses one frame (the JSON text of a WebSocket message or of a length-prefixed TCP
/// frame).
///
/// A frame that is not JSON but starts with `primus::` is read as the string itself, so
/// a client that writes heartbeats unencoded is understood too.
///
/// # Errors
/// [`Rejected`] for bad JSON, a non-object, a missing or unknown `action`, or a `path` or
/// `options` of the wrong type.
pub(crate) fn parse(frame: &[u8]) -> Result<Inbound, Rejected> {
    // Requests are objects: read their fields straight into `Fields`, with no map for the
    // top level. Anything else (heartbeat strings, mistakes) takes the general path.
    if frame.trim_ascii_start().first() == Some(&b'{') {
        return match serde_json::from_slice::<Fields>(frame) {
            Ok(fields) => request(fields),
            Err(error) => Err(Rejected::bare(FrameError::BadJson(error))),
        };
    }
    let value = match serde_json::from_slice::<Value>(frame) {
        Ok(value) => value,
        Err(error) => match std::str::from_utf8(frame) {
            Ok(text) if text.starts_with("primus::") => Value::String(text.to_owned()),
            _ => return Err(Rejected::bare(FrameError::BadJson(error))),
        },
    };
    match value {
        Value::String(text) => heartbeat(&text).ok_or_else(|| not_an_object("string")),
        // Objects were read above; one can only get here through a bug.
        Value::Object(_) => Err(Rejected::bare(FrameError::MissingAction)),
        Value::Array(_) => Err(not_an_object("array")),
        Value::Number(_) => Err(not_an_object("number")),
        Value::Bool(_) => Err(not_an_object("boolean")),
        Value::Null => Err(not_an_object("null")),
    }
}

/// The fields of a request object that pathmq reads; others (`sessionId`, `protocol`)
/// are skipped. Each is a [`Value`] so that a mistyped one is reported by name.
#[derive(serde::Deserialize)]
struct Fields {
    action: Option<Value>,
    #[serde(rename = "eventId")]
    event_id: Option<Value>,
    path: Option<Value>,
    data: Option<Value>,
    options: Option<Value>,
}

/// Checks the fields of a request object.
fn request(fields: Fields) -> Result<Inbound, Rejected> {
    // `Option<Value>` reads `null` as `None`: absent and null are the same here.
    let event_id = fields.event_id;
    let reject = |action: Option<String>, error| Rejected {
        event_id: event_id.clone(),
        action,
        error,
    };
    let action_text = match fields.action {
        Some(Value::String(text)) => text,
        _ => return Err(reject(None, FrameError::MissingAction)),
    };
    let Some(action) = Action::parse(&action_text) else {
        return Err(reject(
            Some(action_text.clone()),
            FrameError::UnknownAction(action_text),
        ));
    };
    let path = match fields.path {
        None => None,
        Some(Value::String(path)) => Some(path),
        Some(_) => {
            return Err(reject(
                Some(action_text),
                FrameError::BadField {
                    field: "path",
                    expected: "a string",
                },
            ));
        }
    };
    let options = match fields.options {
        None => Map::new(),
        Some(Value::Object(options)) => options,
        Some(_) => {
            return Err(reject(
                Some(action_text),
                FrameError::BadField {
                    field: "options",
                    expected: "an object",
                },
            ));
        }
    };
    Ok(Inbound::Request(Envelope {
        action,
        event_id,
        path,
        data: fields.data.unwrap_or(Value::Null),
        options,
    }))
}

fn heartbeat(text: &str) -> Option<Inbound> {
    if let Some(stamp) = text.strip_prefix("primus::ping::") {
        Some(Inbound::Ping(stamp.to_owned()))
    } else if text.starts_with("primus::pong::") {
        Some(Inbound::Pong)
    } else {
        None
    }
}

fn not_an_object(found: &'static str) -> Rejected {
    Rejected::bare(FrameError::NotAnObject { found })
}

/// A boolean option: absent, `null` and `false` are false.
///
/// # Errors
/// [`FrameError::BadField`] for any other type.
pub(crate) fn flag(
    options: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<bool, FrameError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(FrameError::BadField {
            field,
            expected: "a boolean",
        }),
    }
}

/// Whether an option is present with a value that asks for something: not absent, `null`,
/// `false`, `0`, `""`, or an empty object or array. Used to refuse options pathmq does not
/// carry yet (a `criteria` of `{}` asks for nothing and is accepted).
pub(crate) fn is_set(options: &Map<String, Value>, key: &str) -> bool {
    match options.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(true)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(frame: &str) -> Envelope {
        match parse(frame.as_bytes()) {
            Ok(Inbound::Request(envelope)) => envelope,
            other => panic!("{frame}: {other:?}"),
        }
    }

    fn rejected(frame: &[u8]) -> Rejected {
        match parse(frame) {
            Err(rejected) => rejected,
            Ok(other) => panic!("{frame:?}: {other:?}"),
        }
    }

    #[test]
    fn requests_parse_with_their_fields() {
        let e = request(
            r#"{"action":"set","eventId":7,"path":"/a","data":{"x":1},"options":{"merge":true},"sessionId":"s"}"#,
        );
        assert_eq!(e.action, Action::Set);
        assert_eq!(e.event_id_u64(), Some(7));
        assert_eq!(e.path.as_deref(), Some("/a"));
        assert_eq!(e.data, json!({"x": 1}));
        assert!(flag(&e.options, "merge", "options.merge").unwrap());

        let e = request(r#"{"action":"describe","eventId":1}"#);
        assert_eq!((e.data, e.options.len(), e.path), (Value::Null, 0, None));
    }

    #[test]
    fn heartbeats_parse_encoded_and_raw() {
        assert!(matches!(parse(br#""primus::ping::12""#), Ok(Inbound::Ping(s)) if s == "12"));
        assert!(matches!(parse(b"primus::ping::x"), Ok(Inbound::Ping(s)) if s == "x"));
        assert!(matches!(parse(br#""primus::pong::12""#), Ok(Inbound::Pong)));
    }

    #[test]
    fn bad_frames_are_rejected_with_what_could_be_read() {
        assert!(matches!(rejected(b"{nope").error, FrameError::BadJson(_)));
        // A field given twice is ambiguous: refused rather than guessed.
        assert!(matches!(
            rejected(br#"{"action":"get","path":"/a","path":"/b"}"#).error,
            FrameError::BadJson(_)
        ));
        assert!(matches!(
            rejected(b"[1]").error,
            FrameError::NotAnObject { found: "array" }
        ));
        assert!(matches!(
            rejected(br#""hello""#).error,
            FrameError::NotAnObject { found: "string" }
        ));
        let r = rejected(br#"{"eventId":3}"#);
        assert_eq!(r.event_id, Some(json!(3)));
        assert!(matches!(r.error, FrameError::MissingAction));
        let r = rejected(br#"{"eventId":4,"action":"bogus"}"#);
        assert_eq!(
            (r.event_id, r.action.as_deref()),
            (Some(json!(4)), Some("bogus"))
        );
        let r = rejected(br#"{"eventId":5,"action":"get","path":3}"#);
        assert!(matches!(
            r.error,
            FrameError::BadField { field: "path", .. }
        ));
        let r = rejected(br#"{"eventId":5,"action":"get","path":"/a","options":[]}"#);
        assert!(matches!(
            r.error,
            FrameError::BadField {
                field: "options",
                ..
            }
        ));
    }

    #[test]
    fn is_set_treats_empty_values_as_absent() {
        let options = json!({"a": null, "b": {}, "c": 0, "d": {"x": 1}, "e": 5, "f": false});
        let options = options.as_object().unwrap();
        for key in ["a", "b", "c", "f", "missing"] {
            assert!(!is_set(options, key), "{key}");
        }
        for key in ["d", "e"] {
            assert!(is_set(options, key), "{key}");
        }
    }
}
