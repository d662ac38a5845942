//! The client's side of the wire (`reference/happn-3-wire.md`; DESIGN.md §5): request
//! frames out, and responses, events, system frames and heartbeats in. No I/O.
//!
//! A request's data is serialised straight into its frame, with no [`Value`] in between.
//! Inbound frames are read as [`Value`]s and sorted by [`classify`]; the answer parsers
//! turn a response into the typed results of [`DataApi`](super::DataApi).

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Number, Value, json};

use super::ClientError;
use super::event::{Event, EventMeta};
use super::item::Item;
use super::options::{GetOptions, OnOptions, RemoveOptions, SetOptions};

/// The protocol the client speaks (`configure-session`, `login`).
pub(crate) const PROTOCOL: &str = "happn_4";

/// A request frame: `{action, eventId, path?, data?, options?}` (wire doc §3).
#[derive(Serialize)]
struct Frame<'a, T: ?Sized> {
    action: &'a str,
    #[serde(rename = "eventId")]
    event_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a T>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    options: &'a Map<String, Value>,
}

/// The JSON text of a request.
///
/// # Errors
/// serde_json's error when `data` cannot be encoded (a map with non-string keys, a
/// failing `Serialize` impl).
pub(crate) fn request<T: Serialize + ?Sized>(
    event_id: u64,
    action: &str,
    path: Option<&str>,
    data: Option<&T>,
    options: &Map<String, Value>,
) -> Result<Bytes, serde_json::Error> {
    let frame = Frame {
        action,
        event_id,
        path,
        data,
        options,
    };
    serde_json::to_vec(&frame).map(Bytes::from)
}

/// The answer to a server heartbeat: the JSON string `"primus::pong::<stamp>"`.
pub(crate) fn pong(stamp: &str) -> Bytes {
    Bytes::from(Value::String(format!("primus::pong::{stamp}")).to_string())
}

/// The wire options of a `set` (wire doc §4).
pub(crate) fn set_options(o: &SetOptions) -> Map<String, Value> {
    let mut out = Map::new();
    let mut flag = |key: &str, on: bool| {
        if on {
            out.insert(key.into(), true.into());
        }
    };
    flag("merge", o.merge);
    flag("noPublish", o.no_publish);
    flag("noStore", o.no_store);
    // `publish` answers with the meta only (wire doc §5).
    flag("noDataResponse", o.no_store);
    if let Some(level) = o.consistency {
        out.insert("consistency".into(), (level as u8).into());
    }
    if let Some(meta) = &o.meta {
        out.insert("meta".into(), Value::Object(meta.clone()));
    }
    if let Some(tag) = &o.tag {
        out.insert("tag".into(), tag.as_str().into());
    }
    if let Some(ids) = &o.target_clients {
        out.insert("targetClients".into(), ids.clone().into());
    }
    if o.sibling {
        out.insert("set_type".into(), "sibling".into());
    }
    if let Some(by) = o.increment {
        out.insert(
            "increment".into(),
            number(by).map_or(Value::Null, Value::Number),
        );
    }
    out
}

/// A number as JSON: an integer when it is one, so that `1` is not sent as `1.0`;
/// `None` when it is not finite.
pub(crate) fn number(n: f64) -> Option<Number> {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Some((n as i64).into())
    } else {
        Number::from_f64(n)
    }
}

/// The wire options of `get` and `count`: `{criteria?, options?: {fields, sort, limit,
/// skip}}` (wire doc §4, reference: SEARCH).
pub(crate) fn get_options(o: &GetOptions) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(criteria) = &o.criteria {
        out.insert("criteria".into(), criteria.clone());
    }
    let q = &o.options;
    let mut query = Map::new();
    for (key, value) in [("fields", &q.fields), ("sort", &q.sort)] {
        if let Some(value) = value {
            query.insert(key.into(), value.clone());
        }
    }
    for (key, value) in [("limit", q.limit), ("skip", q.skip)] {
        if let Some(value) = value {
            query.insert(key.into(), value.into());
        }
    }
    if !query.is_empty() {
        out.insert("options".into(), Value::Object(query));
    }
    out
}

/// The wire options of `remove`: `{criteria?, meta?}` (wire doc §4, reference: DELETE /
/// REMOVE).
pub(crate) fn remove_options(o: &RemoveOptions) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(criteria) = &o.criteria {
        out.insert("criteria".into(), criteria.clone());
    }
    if let Some(meta) = &o.meta {
        out.insert("meta".into(), Value::Object(meta.clone()));
    }
    out
}

/// The wire options of `getPaths`.
pub(crate) fn path_only() -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("options".into(), json!({ "path_only": true }));
    out
}

/// The wire options of `on` (wire doc §4). `initial` false leaves out `initialCallback`
/// and `initialEmit` (a listener subscribed again after a reconnect).
pub(crate) fn on_options(o: &OnOptions, initial: bool) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "event_type".into(),
        o.event_type.as_str().to_ascii_lowercase().into(),
    );
    out.insert("count".into(), o.count.into());
    if initial && o.initial_callback {
        out.insert("initialCallback".into(), true.into());
    }
    if initial && o.initial_emit {
        out.insert("initialEmit".into(), true.into());
    }
    if let Some(depth) = o.depth {
        out.insert("depth".into(), depth.into());
    }
    if o.merge {
        out.insert("merge".into(), true.into());
    }
    if let Some(meta) = &o.meta {
        out.insert("meta".into(), Value::Object(meta.clone()));
    }
    out
}

/// The wire options of `off` for one subscription.
pub(crate) fn reference(server_id: u64) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("referenceId".into(), server_id.into());
    out
}

/// One inbound frame, sorted.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// `"primus::ping::<stamp>"`: answer with [`pong`].
    Ping(String),
    /// `"primus::server::close"`: the server ends the socket on purpose; do not reconnect.
    ServerClose,
    /// The response to request `eventId`, whole (object or array form).
    Response(u64, Value),
    /// An event (`_meta.type == "data"`).
    Event(Value),
    /// `server-side-disconnect`, with the reason.
    Disconnect(String),
    /// A `publication-ack` (`_meta.type == "ack"`) for request `eventId`.
    Publication(u64, Value),
    /// Anything else: pongs, other system frames.
    Other(Value),
}

/// Sorts one inbound frame.
///
/// # Errors
/// serde_json's error for a frame that is not JSON (and not a bare heartbeat).
pub(crate) fn classify(frame: &[u8]) -> Result<Inbound, serde_json::Error> {
    let value = match serde_json::from_slice::<Value>(frame) {
        Ok(value) => value,
        Err(error) => match std::str::from_utf8(frame) {
            Ok(text) if text.starts_with("primus::") => Value::String(text.to_owned()),
            _ => return Err(error),
        },
    };
    if let Value::String(text) = &value {
        if let Some(stamp) = text.strip_prefix("primus::ping::") {
            return Ok(Inbound::Ping(stamp.to_owned()));
        }
        if text == "primus::server::close" {
            return Ok(Inbound::ServerClose);
        }
        return Ok(Inbound::Other(value));
    }
    let meta = meta_of(&value);
    match meta.get("type").and_then(Value::as_str) {
        Some("response") => match meta.get("eventId").and_then(Value::as_u64) {
            Some(id) => Ok(Inbound::Response(id, value)),
            None => Ok(Inbound::Other(value)),
        },
        Some("data") => Ok(Inbound::Event(value)),
        Some("ack") => match meta.get("eventId").and_then(Value::as_u64) {
            Some(id) => Ok(Inbound::Publication(id, value)),
            None => Ok(Inbound::Other(value)),
        },
        Some("system") if value.get("eventKey") == Some(&json!("server-side-disconnect")) => {
            let reason = value["data"]["reason"].as_str().unwrap_or_default();
            Ok(Inbound::Disconnect(reason.to_owned()))
        }
        _ => Ok(Inbound::Other(value)),
    }
}

/// The `_meta` of a response or event: the object's `_meta`, or the trailing meta object
/// of the array form (wire doc §5). Empty when there is none.
fn meta_of(frame: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let meta = match frame {
        Value::Array(items) => items.last(),
        other => other.get("_meta"),
    };
    meta.and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// The response itself when it says `status: 'ok'`.
///
/// # Errors
/// [`ClientError::Server`] with the response's `_meta.error`.
pub(crate) fn check(action: &'static str, frame: Value) -> Result<Value, ClientError> {
    let meta = meta_of(&frame);
    if meta.get("status").and_then(Value::as_str) != Some("error") {
        return Ok(frame);
    }
    let error = meta.get("error").unwrap_or(&Value::Null);
    let field = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
    Err(ClientError::Server {
        action,
        code: error
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500),
        name: field("name").unwrap_or_else(|| "Error".into()),
        message: field("message").unwrap_or_else(|| error.to_string()),
        source: None,
    })
}

/// The answer's `data` and `_meta` (object form).
fn parts(action: &str, frame: Value) -> Result<(Value, Map<String, Value>), ClientError> {
    let Value::Object(mut object) = frame else {
        return Err(ClientError::shape(format!(
            "the answer to `{action}`: an array where an object was expected"
        )));
    };
    let meta = match object.remove("_meta") {
        Some(Value::Object(meta)) => meta,
        _ => Map::new(),
    };
    Ok((object.remove("data").unwrap_or(Value::Null), meta))
}

/// One record (`set`, `get` of an exact path): `None` for `data: null`.
///
/// # Errors
/// [`ClientError::Decode`] for the array form.
pub(crate) fn item(action: &str, frame: Value) -> Result<Option<Item>, ClientError> {
    let (data, meta) = parts(action, frame)?;
    if data.is_null() {
        return Ok(None);
    }
    Ok(Some(Item {
        data,
        meta: super::item::Meta::from_wire(&meta),
    }))
}

/// The records of a wildcard `get`: the array form's items (the trailing meta dropped),
/// or the object form's one record or none.
///
/// # Errors
/// [`ClientError::Decode`] for an item that is not an object.
pub(crate) fn items(action: &str, frame: Value) -> Result<Vec<Item>, ClientError> {
    let Value::Array(mut array) = frame else {
        return Ok(item(action, frame)?.into_iter().collect());
    };
    array.pop();
    array
        .into_iter()
        .map(|value| match value {
            Value::Object(object) => Ok(Item::from_wire(object)),
            other => Err(ClientError::shape(format!(
                "an item of the answer to `{action}`: {other}"
            ))),
        })
        .collect()
}

/// A number in the answer's data: `{value: N}` for `count`, `{removed: N}` for `remove`.
///
/// # Errors
/// [`ClientError::Decode`] when it is missing.
pub(crate) fn count(action: &str, frame: Value, key: &str) -> Result<u64, ClientError> {
    let (data, _) = parts(action, frame)?;
    data.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| ClientError::shape(format!("`{key}` in the answer to `{action}`: {data}")))
}

/// The answer to `on`: the subscription id and, with initial values, the records.
///
/// # Errors
/// [`ClientError::Decode`] when there is no id.
pub(crate) fn subscribed(frame: Value) -> Result<(u64, Vec<Item>), ClientError> {
    let (data, meta) = parts("on", frame)?;
    let missing =
        || ClientError::shape(format!("the subscription id in the answer to `on`: {data}"));
    match &data {
        Value::Array(initial) => {
            let id = meta
                .get("referenceId")
                .and_then(Value::as_u64)
                .ok_or_else(missing)?;
            let items = initial
                .iter()
                .filter_map(|v| v.as_object().cloned().map(Item::from_wire))
                .collect();
            Ok((id, items))
        }
        _ => Ok((
            data.get("id").and_then(Value::as_u64).ok_or_else(missing)?,
            Vec::new(),
        )),
    }
}

/// The session id in the answer to `login`.
pub(crate) fn session_id(frame: Value) -> Result<String, ClientError> {
    let (data, _) = parts("login", frame)?;
    data.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ClientError::shape(format!("the session id in the answer to `login`: {data}"))
        })
}

/// An event frame as an [`Event`]; `None` when it lacks the meta the protocol gives.
pub(crate) fn event(frame: Value) -> Option<Event> {
    let Value::Object(mut object) = frame else {
        return None;
    };
    let Some(Value::Object(meta)) = object.remove("_meta") else {
        return None;
    };
    Some(Event {
        data: object.remove("data").unwrap_or(Value::Null),
        meta: EventMeta::from_wire(meta)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pathmq_core::{Consistency, EventFilter};

    fn text(bytes: &Bytes) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn requests_carry_only_what_is_given() {
        let none = Map::new();
        let frame = request::<Value>(3, "describe", None, None, &none).unwrap();
        assert_eq!(text(&frame), r#"{"action":"describe","eventId":3}"#);
        let options = set_options(&SetOptions::new().merge(true));
        let frame = request(4, "set", Some("/a"), Some(&json!({"x": 1})), &options).unwrap();
        assert_eq!(
            text(&frame),
            r#"{"action":"set","eventId":4,"path":"/a","data":{"x":1},"options":{"merge":true}}"#
        );
        assert_eq!(text(&pong("12")), r#""primus::pong::12""#);
    }

    #[test]
    fn options_use_the_wire_names() {
        let mut set = SetOptions::new()
            .consistency(Consistency::Queued)
            .tag("v1")
            .target_clients(["s1"]);
        set.no_store = true;
        set.sibling = true;
        set.increment = Some(2.0);
        assert_eq!(
            Value::Object(set_options(&set)),
            json!({"noStore": true, "noDataResponse": true, "consistency": 0, "tag": "v1",
                "targetClients": ["s1"], "set_type": "sibling", "increment": 2})
        );
        let get = GetOptions::new()
            .criteria(json!({"a": 1}))
            .limit(5)
            .sort(json!({"a": -1}));
        assert_eq!(
            Value::Object(get_options(&get)),
            json!({"criteria": {"a": 1}, "options": {"sort": {"a": -1}, "limit": 5}})
        );
        assert!(get_options(&GetOptions::new()).is_empty());
        let mut meta = Map::new();
        meta.insert("why".into(), "cleanup".into());
        let remove = RemoveOptions::new()
            .criteria(json!({"a": {"$lt": 2}}))
            .meta(meta);
        assert_eq!(
            Value::Object(remove_options(&remove)),
            json!({"criteria": {"a": {"$lt": 2}}, "meta": {"why": "cleanup"}})
        );
        assert!(remove_options(&RemoveOptions::new()).is_empty());
        let on = OnOptions::new()
            .event_type(EventFilter::Remove)
            .initial_emit(true)
            .depth(3);
        assert_eq!(
            Value::Object(on_options(&on, true)),
            json!({"event_type": "remove", "count": 0, "initialEmit": true, "depth": 3})
        );
        assert!(!on_options(&on, false).contains_key("initialEmit"));
    }

    #[test]
    fn inbound_frames_are_sorted() {
        let sort = |s: &str| classify(s.as_bytes()).unwrap();
        assert!(matches!(sort(r#""primus::ping::9""#), Inbound::Ping(s) if s == "9"));
        assert!(matches!(sort("primus::ping::9"), Inbound::Ping(_)));
        assert!(matches!(
            sort(r#""primus::server::close""#),
            Inbound::ServerClose
        ));
        assert!(matches!(
            sort(r#"{"data":null,"_meta":{"type":"response","status":"ok","eventId":7}}"#),
            Inbound::Response(7, _)
        ));
        assert!(matches!(
            sort(r#"[{"a":1},{"type":"response","status":"ok","eventId":8}]"#),
            Inbound::Response(8, _)
        ));
        assert!(matches!(
            sort(r#"{"data":{},"_meta":{"type":"data"}}"#),
            Inbound::Event(_)
        ));
        assert!(matches!(
            sort(r#"{"_meta":{"type":"system"},"eventKey":"server-side-disconnect","data":{"reason":"bye"}}"#),
            Inbound::Disconnect(r) if r == "bye"
        ));
        assert!(matches!(
            sort(r#"{"_meta":{"type":"ack","eventId":1}}"#),
            Inbound::Publication(1, _)
        ));
        assert!(matches!(
            sort(r#"{"_meta":{"type":"ack"}}"#),
            Inbound::Other(_)
        ));
        assert!(classify(b"{nope").is_err());
    }

    #[test]
    fn errors_and_answers_are_typed() {
        let error = json!({"data": null, "_meta": {"type": "response", "status": "error",
            "error": {"name": "BadRequest", "code": 400, "message": "no"}}});
        let error = check("get", error).unwrap_err();
        assert!(
            matches!(&error, ClientError::Server { code: 400, name, .. } if name == "BadRequest")
        );

        let set = json!({"data": {"x": 1}, "_meta": {"path": "/a", "created": 1, "modified": 2,
            "published": true, "type": "response", "status": "ok"}});
        let item = item("set", set).unwrap().unwrap();
        assert_eq!(
            (item.path(), item.meta.published, item.data["x"].as_u64()),
            ("/a", true, Some(1))
        );
        assert_eq!(
            super::item("get", json!({"data": null, "_meta": {}})).unwrap(),
            None
        );

        let many = json!([{"v": 1, "_meta": {"path": "/a/1"}}, {"v": 2, "_meta": {"path": "/a/2"}},
            {"type": "response", "status": "ok"}]);
        let many = items("get", many).unwrap();
        assert_eq!(
            many.iter().map(Item::path).collect::<Vec<_>>(),
            ["/a/1", "/a/2"]
        );
        assert_eq!(many[1].data, json!({"v": 2}));

        assert_eq!(
            count("count", json!({"data": {"value": 4}}), "value").unwrap(),
            4
        );
        assert!(count("remove", json!({"data": {}}), "removed").is_err());
        assert_eq!(subscribed(json!({"data": {"id": 9}})).unwrap().0, 9);
        let (id, initial) = subscribed(json!({"data": [{"v": 1, "_meta": {"path": "/p"}}],
            "_meta": {"referenceId": 10}}))
        .unwrap();
        assert_eq!((id, initial.len()), (10, 1));
        assert_eq!(session_id(json!({"data": {"id": "s1"}})).unwrap(), "s1");
    }

    #[test]
    fn event_frames_become_events() {
        let frame = json!({"data": {"v": 1}, "_meta": {"type": "data", "channel": "/ALL@/a",
            "action": "/SET@/a", "path": "/a", "created": 1, "modified": 1}});
        let event = event(frame).unwrap();
        assert_eq!(
            (event.data["v"].as_u64(), event.meta.channel.as_str()),
            (Some(1), "/ALL@/a")
        );
        assert!(super::event(json!({"data": {}})).is_none());
    }
}
