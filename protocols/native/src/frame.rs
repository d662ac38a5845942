//! Outbound frames: responses, events, system messages and heartbeats
//! (`reference/happn-3-wire.md` §1, §5 and §6; DESIGN.md §5).
//!
//! Encoding does no I/O. Every frame is JSON text in [`Bytes`]. An event's `data` is the
//! core's [`Event::native_data`], encoded once for all recipients; each frame is built
//! around those bytes, never by re-serialising the data.

use std::sync::Arc;

use bytes::Bytes;
use pathmq_core::{Error, Event, EventKind, Record, SessionId, Subscription};
use serde_json::{Map, Value, json};

/// The protocol tag of every response and event (`happn_4`).
pub(crate) const PROTOCOL: &str = "happn_4";

/// The envelope of one response: who asked (`eventId`), for what (`action`), on which
/// session. Builds the `_meta` of responses (wire doc §5).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply<'a> {
    /// The request's `eventId`, echoed.
    pub(crate) event_id: Option<&'a Value>,
    /// The action's wire name (`"set"`); `None` for a frame that had none.
    pub(crate) action: Option<&'a str>,
    /// The answering session.
    pub(crate) session: SessionId,
}

impl Reply<'_> {
    /// `_meta` of a response: `item` (record meta such as `path`, `created`) followed by
    /// `type`, `status`, `published`, `eventId`, `sessionId`, `action`.
    fn meta(&self, mut item: Map<String, Value>, status: &str, published: bool) -> Value {
        item.insert("type".into(), "response".into());
        item.insert("status".into(), status.into());
        item.insert("published".into(), published.into());
        if let Some(id) = self.event_id {
            item.insert("eventId".into(), id.clone());
        }
        item.insert("sessionId".into(), self.session.to_string().into());
        if let Some(action) = self.action {
            item.insert("action".into(), action.into());
        }
        Value::Object(item)
    }

    /// `{data, _meta: {…item, type:'response', status:'ok', …}, protocol}`.
    pub(crate) fn ok(&self, data: Value, item: Map<String, Value>, published: bool) -> Bytes {
        encode(&json!({
            "data": data,
            "_meta": self.meta(item, "ok", published),
            "protocol": PROTOCOL,
        }))
    }

    /// The array form (wire doc §5): the items, then one trailing meta object.
    pub(crate) fn array(&self, mut items: Vec<Value>) -> Bytes {
        items.push(self.meta(Map::new(), "ok", false));
        encode(&Value::Array(items))
    }

    /// The `noDataResponse` form of a `set` (used by `publish()`): only `_meta`.
    pub(crate) fn meta_only(&self, item: Map<String, Value>, published: bool) -> Bytes {
        encode(&json!({ "_meta": self.meta(item, "ok", published) }))
    }

    /// `{data:null, _meta:{…, status:'error', error:{name, code, message}}, protocol}`.
    pub(crate) fn error(&self, error: &Error) -> Bytes {
        let mut item = Map::new();
        item.insert(
            "error".into(),
            json!({ "name": error.name(), "code": error.code(), "message": error.to_string() }),
        );
        encode(&json!({
            "data": null,
            "_meta": self.meta(item, "error", false),
            "protocol": PROTOCOL,
        }))
    }

    /// A `publication-ack` frame reporting that publication results cannot be given
    /// (wire doc §6), so a client's `onPublished` gets a clear error instead of a timeout.
    pub(crate) fn publication_ack_error(&self, message: &str) -> Bytes {
        let id = match self.event_id {
            Some(Value::String(s)) => format!("{}-{s}", self.session),
            Some(other) => format!("{}-{other}", self.session),
            None => format!("{}-", self.session),
        };
        encode(&json!({
            "id": id,
            "action": "publication-ack",
            "status": "error",
            "error": message,
            "_meta": { "type": "ack", "eventId": self.event_id },
            "protocol": PROTOCOL,
        }))
    }
}

/// The item meta of a record in a response: `path`, `created`, `modified`, and
/// `modifiedBy` when known (wire doc §5).
pub(crate) fn record_meta(record: &Record) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert("path".into(), record.path.as_str().into());
    meta.insert("created".into(), record.created.into());
    meta.insert("modified".into(), record.modified.into());
    if let Some(by) = &record.modified_by {
        meta.insert("modifiedBy".into(), by.as_str().into());
    }
    meta
}

/// A record as an array item: its native value with its meta merged in as `_meta`.
pub(crate) fn record_item(record: &Record) -> Value {
    let mut item = record.payload.to_native_value();
    item.insert("_meta".into(), Value::Object(record_meta(record)));
    Value::Object(item)
}

/// The frames for one event delivered to one session: one per distinct channel among
/// `subscriptions` (wire doc §6), each
/// `{data, _meta:{…custom meta, type:'data', channel, action, path, created, modified,
/// sessionId, consistency, publicationId, depth?}, protocol:'happn_4'}`.
///
/// Remove events carry no `created`/`modified`. `depth` is given for channels whose
/// subscriptions were made with one: the smallest among them, which the happn-3 client
/// compares against each listener's own depth.
pub(crate) fn event_frames(event: &Event, subscriptions: &[Arc<Subscription>]) -> Vec<Bytes> {
    let mut channels: Vec<(String, Option<usize>)> = Vec::with_capacity(subscriptions.len());
    for sub in subscriptions {
        let channel = match &sub.options.channel {
            Some(channel) => channel.clone(),
            None => format!("/{}@{}", sub.options.filter.as_str(), sub.pattern.as_str()),
        };
        match channels.iter_mut().find(|(c, _)| *c == channel) {
            Some((_, depth)) => {
                *depth = match (*depth, sub.options.depth) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            None => channels.push((channel, sub.options.depth)),
        }
    }

    let base = event_meta(event);
    let data = event.native_data();
    channels
        .into_iter()
        .map(|(channel, depth)| {
            let mut meta = base.clone();
            meta.insert("channel".into(), channel.into());
            if let Some(depth) = depth {
                meta.insert("depth".into(), depth.into());
            }
            let meta = encode(&Value::Object(meta));
            let mut frame = Vec::with_capacity(data.len() + meta.len() + 40);
            frame.extend_from_slice(b"{\"data\":");
            frame.extend_from_slice(data);
            frame.extend_from_slice(b",\"_meta\":");
            frame.extend_from_slice(&meta);
            frame.extend_from_slice(b",\"protocol\":\"");
            frame.extend_from_slice(PROTOCOL.as_bytes());
            frame.extend_from_slice(b"\"}");
            Bytes::from(frame)
        })
        .collect()
}

/// The part of an event's `_meta` that is the same for every channel. Custom meta goes in
/// first so it cannot replace the protocol's keys.
fn event_meta(event: &Event) -> Map<String, Value> {
    let mut meta = event.meta.clone().unwrap_or_default();
    meta.insert("type".into(), "data".into());
    meta.insert(
        "action".into(),
        format!("/{}@{}", event.kind.as_str(), event.path).into(),
    );
    meta.insert("path".into(), event.path.as_str().into());
    match event.kind {
        EventKind::Set => {
            meta.insert("created".into(), event.created.into());
            meta.insert("modified".into(), event.modified.into());
        }
        EventKind::Remove => {}
    }
    if let Some(origin) = event.origin {
        meta.insert("sessionId".into(), origin.to_string().into());
    }
    meta.insert("consistency".into(), (event.consistency as u8).into());
    if let Some(id) = &event.publication_id {
        meta.insert("publicationId".into(), id.as_str().into());
    }
    meta
}

/// `{_meta:{type:'system'}, eventKey:'server-side-disconnect', data:{reason}}` (wire doc
/// §6), sent before the server closes a connection on purpose.
pub(crate) fn server_side_disconnect(reason: &str) -> Bytes {
    encode(&json!({
        "_meta": { "type": "system" },
        "eventKey": "server-side-disconnect",
        "data": { "reason": reason },
        "protocol": PROTOCOL,
    }))
}

/// The JSON string `"primus::ping::<ms>"` (wire doc §1).
pub(crate) fn ping(now_ms: u64) -> Bytes {
    encode(&Value::String(format!("primus::ping::{now_ms}")))
}

/// The JSON string `"primus::pong::<stamp>"`, answering a client's ping.
pub(crate) fn pong(stamp: &str) -> Bytes {
    encode(&Value::String(format!("primus::pong::{stamp}")))
}

/// JSON text of `value`. Serialising a [`Value`] cannot fail (its map keys are strings).
fn encode(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pathmq_core::{Consistency, Path, Payload};

    fn parse(frame: &Bytes) -> Value {
        serde_json::from_slice(frame).unwrap()
    }

    #[test]
    fn responses_carry_the_envelope() {
        let session = SessionId::new();
        let id = json!(4);
        let reply = Reply {
            event_id: Some(&id),
            action: Some("get"),
            session,
        };
        let ok = parse(&reply.ok(json!({"x": 1}), Map::new(), false));
        assert_eq!(ok["data"], json!({"x": 1}));
        assert_eq!(ok["_meta"]["status"], "ok");
        assert_eq!(ok["_meta"]["eventId"], 4);
        assert_eq!(ok["_meta"]["action"], "get");
        assert_eq!(ok["_meta"]["sessionId"], session.to_string());
        assert_eq!(ok["protocol"], "happn_4");

        let array = parse(&reply.array(vec![json!({"a": 1})]));
        assert_eq!(array.as_array().unwrap().len(), 2);
        assert_eq!(array[1]["eventId"], 4);

        let error = parse(&reply.error(&Error::BadRequest("nope".into())));
        assert_eq!(error["data"], Value::Null);
        assert_eq!(
            error["_meta"]["error"],
            json!({"name": "BadRequest", "code": 400, "message": "nope"})
        );
    }

    #[test]
    fn event_frames_splice_the_shared_data() {
        let origin = SessionId::new();
        let mut meta = Map::new();
        meta.insert("custom".into(), json!(1));
        meta.insert("type".into(), json!("spoofed"));
        let event = Event::new(
            EventKind::Set,
            Path::parse("/a/b").unwrap(),
            Payload::json(&json!(5)),
            10,
            20,
            Some(origin),
            Some(3),
            Consistency::Transactional,
            Some(meta),
            1,
        );
        let frames = event_frames(&event, &[]);
        assert!(frames.is_empty());
        let base = event_meta(&event);
        assert_eq!(base["type"], "data");
        assert_eq!(base["custom"], 1);
        assert_eq!(base["action"], "/SET@/a/b");
        assert_eq!(base["publicationId"], format!("{origin}-3"));
        assert_eq!(base["consistency"], 2);
        assert_eq!(&**event.native_data(), br#"{"value":5}"#);
    }

    #[test]
    fn heartbeats_are_json_strings() {
        assert_eq!(&*ping(12), br#""primus::ping::12""#);
        assert_eq!(&*pong("a\"b"), br#""primus::pong::a\"b""#);
    }
}
