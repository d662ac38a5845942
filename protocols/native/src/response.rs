//! Responses: `{data, _meta, protocol}` and the array form (`reference/happn-3-wire.md`
//! §5, DESIGN.md §5).
//!
//! Encoding does no I/O. A response is written straight into one buffer: the `_meta`
//! pairs by hand, a record's data as its stored bytes when they already are its native
//! view ([`Payload::native_json`](pathmq_core::Payload::native_json)), so answering a
//! `get` parses nothing and builds no JSON map.

use std::io::Write as _;

use bytes::Bytes;
use pathmq_core::{Error, Payload, Publication, PublishResult, Record, SessionId};
use serde_json::{Map, Value, json};

use crate::frame::PROTOCOL;

/// `,"protocol":"happn_4"}`: the end of every response object.
const END: &[u8] = b",\"protocol\":\"happn_4\"}";

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
    /// Writes the `_meta` object of a response: the record's meta (`path`, `created`,
    /// `modified`, `modifiedBy`) when there is a record, then `item`, then `type`,
    /// `status`, `published`, `eventId`, `sessionId`, `action`.
    fn write_meta(
        &self,
        out: &mut Vec<u8>,
        record: Option<&Record>,
        item: &Map<String, Value>,
        status: &str,
        published: bool,
    ) {
        out.push(b'{');
        if let Some(record) = record {
            write_record_meta(out, record);
            out.push(b',');
        }
        for (key, value) in item {
            push_json(out, key);
            out.push(b':');
            push_json(out, value);
            out.push(b',');
        }
        out.extend_from_slice(b"\"type\":\"response\",\"status\":");
        push_json(out, status);
        out.extend_from_slice(match published {
            true => b",\"published\":true",
            false => b",\"published\":false",
        });
        if let Some(id) = self.event_id {
            out.extend_from_slice(b",\"eventId\":");
            push_json(out, id);
        }
        // A session id is a hyphenated UUID: nothing in it needs escaping.
        let _ = write!(out, ",\"sessionId\":\"{}\"", self.session);
        if let Some(action) = self.action {
            out.extend_from_slice(b",\"action\":");
            push_json(out, action);
        }
        out.push(b'}');
    }

    /// `{data, _meta: {…item, type:'response', status:'ok', …}, protocol}`.
    pub(crate) fn ok(&self, data: Value, item: Map<String, Value>, published: bool) -> Bytes {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"data\":");
        push_json(&mut out, &data);
        out.extend_from_slice(b",\"_meta\":");
        self.write_meta(&mut out, None, &item, "ok", published);
        out.extend_from_slice(END);
        Bytes::from(out)
    }

    /// A record as the answer: `{data: <its native view>, _meta: {path, created,
    /// modified, modifiedBy?, type:'response', …}, protocol}`.
    pub(crate) fn record(&self, record: &Record, published: bool) -> Bytes {
        self.record_with(&record.payload, record, published)
    }

    /// An answer about `record` whose data is something else (an increment's
    /// `{gauge, value}`): `{data: <payload's native view>, _meta: {path, created,
    /// modified, modifiedBy?, …}, protocol}`.
    pub(crate) fn record_with(&self, data: &Payload, record: &Record, published: bool) -> Bytes {
        self.record_item(data, record, &Map::new(), published)
    }

    /// [`Reply::record_with`], with `item` added to the `_meta` (a set's
    /// `publishResults`).
    pub(crate) fn record_item(
        &self,
        data: &Payload,
        record: &Record,
        item: &Map<String, Value>,
        published: bool,
    ) -> Bytes {
        let data = data.native_json();
        let mut out = Vec::with_capacity(data.len() + 256);
        out.extend_from_slice(b"{\"data\":");
        out.extend_from_slice(&data);
        out.extend_from_slice(b",\"_meta\":");
        self.write_meta(&mut out, Some(record), item, "ok", published);
        out.extend_from_slice(END);
        Bytes::from(out)
    }

    /// The array form (wire doc §5): the items, then one trailing meta object.
    pub(crate) fn array(&self, items: Vec<Value>) -> Bytes {
        let mut out = Vec::with_capacity(64 * items.len() + 192);
        out.push(b'[');
        for item in &items {
            push_json(&mut out, item);
            out.push(b',');
        }
        self.write_meta(&mut out, None, &Map::new(), "ok", false);
        out.push(b']');
        Bytes::from(out)
    }

    /// The array form for records: each record's native view with its `_meta` added
    /// ([`write_record_item`]), then the trailing meta object.
    pub(crate) fn records(&self, records: &[Record]) -> Bytes {
        let mut out = Vec::with_capacity(
            records
                .iter()
                .map(|r| r.payload.bytes.len() + 96)
                .sum::<usize>()
                + 192,
        );
        out.push(b'[');
        for record in records {
            write_record_item(&mut out, record);
            out.push(b',');
        }
        self.write_meta(&mut out, None, &Map::new(), "ok", false);
        out.push(b']');
        Bytes::from(out)
    }

    /// `{data: [records as in `records`], _meta: {…item, …}, protocol}`: the object form
    /// with an array of records as its data (an `on`'s initial values).
    pub(crate) fn records_in_data(&self, records: &[Record], item: Map<String, Value>) -> Bytes {
        let mut out = Vec::with_capacity(
            records
                .iter()
                .map(|r| r.payload.bytes.len() + 96)
                .sum::<usize>()
                + 256,
        );
        out.extend_from_slice(b"{\"data\":[");
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_record_item(&mut out, record);
        }
        out.extend_from_slice(b"],\"_meta\":");
        self.write_meta(&mut out, None, &item, "ok", false);
        out.extend_from_slice(END);
        Bytes::from(out)
    }

    /// The `noDataResponse` form of a `set` (used by `publish()`): only `_meta`.
    pub(crate) fn meta_only(&self, item: Map<String, Value>, published: bool) -> Bytes {
        let mut out = Vec::with_capacity(192);
        out.extend_from_slice(b"{\"_meta\":");
        self.write_meta(&mut out, None, &item, "ok", published);
        out.push(b'}');
        Bytes::from(out)
    }

    /// `{data:null, _meta:{…, status:'error', error:{name, code, message}}, protocol}`.
    pub(crate) fn error(&self, error: &Error) -> Bytes {
        let mut item = Map::new();
        item.insert(
            "error".into(),
            json!({ "name": error.name(), "code": error.code(), "message": error.to_string() }),
        );
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"data\":null,\"_meta\":");
        self.write_meta(&mut out, None, &item, "error", false);
        out.extend_from_slice(END);
        Bytes::from(out)
    }
}

/// Publication results as the reference gives them: `{successful, failed, skipped,
/// queued}` (queued: the recipients the event was queued for, as successful).
pub(crate) fn results_json(results: &PublishResult) -> Value {
    json!({
        "successful": results.successful,
        "failed": results.failed,
        "skipped": results.skipped,
        "queued": results.successful,
    })
}

/// The `publication-ack` frame of publication `id`: `result` with `acknowledged` for
/// consistency ACKNOWLEDGED, `status: 'error'` and `error` when some recipients did not
/// acknowledge in time.
pub(crate) fn publication_ack_frame(
    id: &str,
    event_id: Option<Value>,
    results: &PublishResult,
    acknowledged: Option<u64>,
    error: Option<&str>,
) -> Bytes {
    let mut result = results_json(results);
    if let Some(acknowledged) = acknowledged {
        result["acknowledged"] = acknowledged.into();
    }
    if let Some(error) = error {
        result["lastError"] = error.into();
    }
    let mut frame = json!({
        "id": id,
        "action": "publication-ack",
        "result": result,
        "status": if error.is_some() { "error" } else { "ok" },
        "_meta": { "type": "ack", "eventId": event_id },
        "protocol": PROTOCOL,
    });
    if let Some(error) = error {
        frame["error"] = error.into();
    }
    Bytes::from(serde_json::to_vec(&frame).unwrap_or_default())
}

/// The `publication-ack` frame of a publication the core finished waiting for.
pub(crate) fn publication_frame(publication: &Publication) -> Bytes {
    publication_ack_frame(
        &publication.id,
        publication.event_id.map(Value::from),
        &publication.results,
        publication.acknowledged,
        publication.error.as_deref(),
    )
}

/// Writes `"path":…,"created":…,"modified":…` and `,"modifiedBy":…` when known: the item
/// meta of a record in a response (wire doc §5).
fn write_record_meta(out: &mut Vec<u8>, record: &Record) {
    out.extend_from_slice(b"\"path\":");
    push_json(out, record.path.as_str());
    let _ = write!(
        out,
        ",\"created\":{},\"modified\":{}",
        record.created, record.modified
    );
    if let Some(by) = &record.modified_by {
        out.extend_from_slice(b",\"modifiedBy\":");
        push_json(out, by);
    }
}

/// Writes a record as an array item: its native view with `"_meta":{path, created,
/// modified, modifiedBy?}` added as the last key. The view is a JSON object (its text
/// ends with `}`), so the meta is spliced in before that brace; a `_meta` key the stored
/// object may have is thereby overridden, as JSON readers keep the last of duplicate keys.
fn write_record_item(out: &mut Vec<u8>, record: &Record) {
    let data = record.payload.native_json();
    let text = data.trim_ascii();
    match text.strip_suffix(b"}") {
        Some(body) => {
            out.extend_from_slice(body);
            // `{` alone (after trimming) is an empty object: no pair before `_meta`.
            if body.trim_ascii() != b"{" {
                out.push(b',');
            }
        }
        None => out.push(b'{'),
    }
    out.extend_from_slice(b"\"_meta\":{");
    write_record_meta(out, record);
    out.extend_from_slice(b"}}");
}

/// Appends the JSON text of `value`. Writing into a vector cannot fail, and a [`Value`]'s
/// map keys are strings, so serialising cannot either.
fn push_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pathmq_core::{Path, Payload};

    fn parse(frame: &Bytes) -> Value {
        serde_json::from_slice(frame).unwrap()
    }

    fn reply(id: &Value) -> Reply<'_> {
        Reply {
            event_id: Some(id),
            action: Some("get"),
            session: SessionId::new(),
        }
    }

    fn record(payload: Payload, modified_by: Option<&str>) -> Record {
        Record {
            path: Path::parse("/a/\"b\"").unwrap(),
            payload,
            created: 10,
            modified: 20,
            modified_by: modified_by.map(str::to_owned),
            properties: None,
        }
    }

    #[test]
    fn responses_carry_the_envelope() {
        let id = json!(4);
        let reply = reply(&id);
        let ok = parse(&reply.ok(json!({"x": 1}), Map::new(), false));
        assert_eq!(ok["data"], json!({"x": 1}));
        assert_eq!(ok["_meta"]["status"], "ok");
        assert_eq!(ok["_meta"]["type"], "response");
        assert_eq!(ok["_meta"]["published"], false);
        assert_eq!(ok["_meta"]["eventId"], 4);
        assert_eq!(ok["_meta"]["action"], "get");
        assert_eq!(ok["_meta"]["sessionId"], reply.session.to_string());
        assert_eq!(ok["protocol"], "happn_4");

        let array = parse(&reply.array(vec![json!({"a": 1})]));
        assert_eq!(array.as_array().unwrap().len(), 2);
        assert_eq!(array[1]["eventId"], 4);

        let error = parse(&reply.error(&Error::BadRequest("nope".into())));
        assert_eq!(error["data"], Value::Null);
        assert_eq!(error["_meta"]["status"], "error");
        assert_eq!(
            error["_meta"]["error"],
            json!({"name": "BadRequest", "code": 400, "message": "nope"})
        );

        let mut item = Map::new();
        item.insert("path".into(), "/p".into());
        let meta_only = parse(&reply.meta_only(item, true));
        assert_eq!(
            meta_only,
            json!({"_meta": {
            "path": "/p", "type": "response", "status": "ok", "published": true,
            "eventId": 4, "sessionId": reply.session.to_string(), "action": "get"}})
        );
    }

    #[test]
    fn a_record_answer_shares_the_stored_object_and_adds_its_meta() {
        let id = json!("x\"y");
        let reply = reply(&id);
        let stored = Payload::detect(Bytes::from_static(b" {\"t\": 1, \"_meta\": 5} "));
        let frame = parse(&reply.record(&record(stored, Some("ann")), true));
        assert_eq!(frame["data"], json!({"t": 1, "_meta": 5}));
        assert_eq!(frame["_meta"]["path"], "/a/\"b\"");
        assert_eq!(frame["_meta"]["created"], 10);
        assert_eq!(frame["_meta"]["modified"], 20);
        assert_eq!(frame["_meta"]["modifiedBy"], "ann");
        assert_eq!(frame["_meta"]["published"], true);
        assert_eq!(frame["_meta"]["eventId"], "x\"y");

        let scalar = parse(&reply.record(&record(Payload::json(&json!(5)), None), false));
        assert_eq!(scalar["data"], json!({"value": 5}));
        assert!(scalar["_meta"].get("modifiedBy").is_none());
    }

    #[test]
    fn record_items_match_their_value_form() {
        let id = json!(1);
        let reply = reply(&id);
        let records = [
            record(Payload::detect(Bytes::from_static(b"{\"t\":1}")), None),
            record(Payload::detect(Bytes::from_static(b"{ }")), Some("bob")),
            record(
                Payload::detect(Bytes::from_static(b"{\"_meta\":{\"x\":1}}")),
                None,
            ),
            record(Payload::detect(Bytes::from_static(b"\"text\"")), None),
            record(Payload::detect(Bytes::from_static(b"plain")), None),
            record(Payload::detect(Bytes::from_static(&[0xff, 0x00])), None),
        ];
        let array = parse(&reply.records(&records));
        let items = array.as_array().unwrap();
        assert_eq!(items.len(), records.len() + 1);
        for (item, record) in items.iter().zip(&records) {
            assert_eq!(item, &record.to_native_item(), "{record:?}");
        }
        assert_eq!(
            items[0],
            json!({"t": 1, "_meta": {"path": "/a/\"b\"", "created": 10, "modified": 20}})
        );
        assert_eq!(items[1]["_meta"]["modifiedBy"], "bob");
        assert_eq!(items[2]["_meta"]["created"], 10);
        assert_eq!(items[records.len()]["eventId"], 1);

        let mut meta = Map::new();
        meta.insert("referenceId".into(), 7.into());
        let in_data = parse(&reply.records_in_data(&records, meta));
        assert_eq!(
            in_data["data"].as_array().unwrap()[..],
            items[..records.len()]
        );
        assert_eq!(in_data["_meta"]["referenceId"], 7);
        let empty = parse(&reply.records_in_data(&[], Map::new()));
        assert_eq!(empty["data"], json!([]));
    }
}
