//! The data actions: `set`, `get`, `count`, `remove` (`reference/happn-3-wire.md` §4–§5,
//! `reference/happn-3.md` SET and GET, DESIGN.md §3–§5).
//!
//! Every option is read and checked before the core is asked, so a refused request
//! changes nothing. Options pathmq does not carry (`aggregate`, `collation`) are refused
//! with a clear error rather than ignored, since ignoring them would answer with the
//! wrong data.

use std::sync::Arc;

use bytes::Bytes;
use pathmq_core::{
    Consistency, Criteria, Error, Glob, Increment, Path, Payload, Query, Request, Response,
    Session, SessionId, SetOptions, now_ms,
};
use serde_json::{Map, Value, json};

use crate::envelope::{Envelope, flag, is_set};
use crate::error::FrameError;
use crate::response::{Reply, results_json};
use crate::session::unexpected;

/// Query options pathmq does not carry (they are MongoDB-specific in the reference).
const UNSUPPORTED_OPTIONS: [&str; 2] = ["aggregate", "collation"];

/// What a `get`, `count` or `remove` asks for besides its path (reference: GET, SEARCH).
#[derive(Debug, Default)]
struct GetOptions {
    /// `path_only` (`getPaths`): items are `{_meta:{path}}`.
    path_only: bool,
    /// `options.count`: answer a count instead of the records.
    count: bool,
    /// `criteria` and the search options (`fields`, `sort`, `skip`, `limit`), when any
    /// is given.
    query: Option<Query>,
}

impl GetOptions {
    /// Reads `options.criteria`, and `fields`, `sort`, `skip`, `limit`, `path_only` and
    /// `count` from `options.options` (where the happn-3 client nests them) or from
    /// `options` itself (as the reference also shows; the nested one wins).
    ///
    /// # Errors
    /// [`FrameError::Unsupported`] for `aggregate` and `collation`,
    /// [`FrameError::BadField`] for a mistyped option, and the query's own 400 errors
    /// (an unknown operator, a bad regex, a negative limit …).
    fn read(options: &Map<String, Value>) -> Result<Self, Error> {
        let nested = match options.get("options") {
            None | Some(Value::Null) => None,
            Some(Value::Object(nested)) => Some(nested),
            Some(_) => {
                return Err(FrameError::BadField {
                    field: "options.options",
                    expected: "an object",
                }
                .into());
            }
        };
        for key in UNSUPPORTED_OPTIONS {
            if is_set(options, key) || nested.is_some_and(|n| is_set(n, key)) {
                return Err(FrameError::Unsupported {
                    what: format!("the `{key}` option"),
                    why: "it is specific to MongoDB",
                }
                .into());
            }
        }
        let either = |key, field, nested_field| -> Result<bool, FrameError> {
            Ok(flag(options, key, field)?
                || nested.map_or(Ok(false), |n| flag(n, key, nested_field))?)
        };
        let mut search = Map::new();
        for key in ["fields", "sort", "skip", "limit"] {
            let value = nested
                .and_then(|n| n.get(key))
                .or_else(|| options.get(key))
                .filter(|v| !v.is_null());
            if let Some(value) = value {
                search.insert(key.to_owned(), value.clone());
            }
        }
        let criteria = options.get("criteria").filter(|c| !c.is_null());
        let query = match (criteria, search.is_empty()) {
            (None, true) => None,
            _ => Some(Query::parse(criteria, Some(&Value::Object(search)))?),
        };
        Ok(Self {
            path_only: either(
                "path_only",
                "options.path_only",
                "options.options.path_only",
            )?,
            count: either("count", "options.count", "options.options.count")?,
            query,
        })
    }
}

/// The `{_meta:{path}}` item of a `path_only` answer.
fn path_item(path: &Path) -> Value {
    json!({ "_meta": { "path": path.as_str() } })
}

/// `set`: stores `data` at `path` (no `*`) and publishes it.
///
/// Options: `merge`, `noStore`, `noPublish`, `nullValue`, `meta` (copied into the
/// event's `_meta`, reserved keys dropped), `consistency` (0–3), `noDataResponse`,
/// `setSibling` (store at `<path>/<12-character id>`), `targetClients` (session ids
/// that alone get the event), `tag` (a snapshot at `<path>/<tag>`), `increment` (add to
/// the gauge named by `data`; answer and event data `{gauge, value}`). Non-object data
/// is stored as the JSON value itself and read back as `{value: …}` (DESIGN.md §4); a
/// `_meta` key in object data is dropped. Answer: the stored value (merged, for
/// `merge`) with `_meta {path, created, modified, published}`.
///
/// Consistency (reference: CONSISTENCY; DESIGN.md §6): the answer comes once the event
/// is in every recipient's queue at every level; DEFERRED (1) follows it with a
/// `publication-ack` frame of the results `{successful, failed, skipped, queued}`;
/// ACKNOWLEDGED (3) with one once every native recipient answered `ack` (or the
/// acknowledgement timeout passed: `status: 'error'` naming those that did not), with
/// `acknowledged`.
///
/// # Errors
/// 400 for a missing or wildcard path, a mistyped option, or an increment whose data is
/// not a gauge name; the core's errors (413 payload too large, 500 store failure).
pub(crate) async fn set(
    session: &Session,
    envelope: &Envelope,
    reply: Reply<'_>,
) -> Result<Vec<Bytes>, Error> {
    let mut path = Path::parse(envelope.require_path()?)?;
    let o = &envelope.options;
    // `setSibling: true`, or `set_type: 'sibling'` as older happn clients send it.
    let sibling = flag(o, "setSibling", "options.setSibling")?
        || o.get("set_type").and_then(Value::as_str) == Some("sibling");
    if sibling {
        path = path.child(&sibling_id())?;
    }
    let increment = increment(o, &envelope.data)?;
    let consistency = consistency(o)?;
    let meta = custom_meta(o)?;
    let no_data_response = flag(o, "noDataResponse", "options.noDataResponse")?;
    let publish_results = flag(o, "publishResults", "options.publishResults")?;
    let mut data = if flag(o, "nullValue", "options.nullValue")? {
        Value::Null
    } else {
        envelope.data.clone()
    };
    if let Value::Object(object) = &mut data {
        object.remove("_meta");
    }
    let options = SetOptions {
        merge: flag(o, "merge", "options.merge")?,
        no_publish: flag(o, "noPublish", "options.noPublish")?,
        no_store: flag(o, "noStore", "options.noStore")?,
        consistency,
        meta,
        qos: 1,
        event_id: envelope.event_id_u64(),
        target_clients: target_clients(o)?,
        tag: tag(o)?,
        increment: increment.clone(),
        properties: None,
    };

    let response = session
        .request(Request::Set {
            path,
            payload: Payload::json(&data),
            options,
        })
        .await?;
    let Response::Set {
        record,
        published,
        results,
    } = response
    else {
        return Err(unexpected(envelope.action, &response));
    };
    let mut frames = Vec::with_capacity(2);
    // Wire doc §4: `publishResults: true` with consistency TRANSACTIONAL adds the results
    // to the answer's meta.
    let mut item = Map::new();
    if published && publish_results && consistency == Consistency::Transactional {
        item.insert("publishResults".into(), results_json(&results));
    }
    if no_data_response {
        item.insert("path".into(), record.path.as_str().into());
        frames.push(reply.meta_only(item, published));
    } else {
        let data = match &increment {
            // The reference answers an increment with the gauge: `{gauge, value}`.
            Some(increment) => increment.gauge_payload(&record.payload),
            None => record.payload.clone(),
        };
        frames.push(reply.record_item(&data, &record, &item, published));
    }
    // DEFERRED and ACKNOWLEDGED results come from the core (`Outbound::Published`), written
    // after this answer by the connection.
    Ok(frames)
}

/// `get`: an exact path answers the record (`data` + `_meta {path, created,
/// modified}`) or `data: null`; a path with `*` (a glob over the rest of the path,
/// DESIGN.md §3) answers the array form, each item with its `_meta`, then the
/// trailing meta object. With `options.criteria` or search options (`fields`, `sort`,
/// `skip`, `limit`) it is a search (reference: SEARCH) and always answers the array
/// form. `options.path_only` answers `[{_meta:{path}}, …]`; `options.options.count`
/// answers `{value: N}` (the reference crashes on it).
///
/// # Errors
/// 400 for a missing or empty path or a bad query; 500 store failure.
pub(crate) async fn get(
    session: &Session,
    envelope: &Envelope,
    reply: Reply<'_>,
) -> Result<Vec<Bytes>, Error> {
    let target = Glob::parse(envelope.require_path()?)?;
    let options = GetOptions::read(&envelope.options)?;
    if options.count {
        let criteria = options.query.and_then(|q| q.criteria);
        return count_of(session, envelope, target, criteria, reply).await;
    }
    let request = match options.query {
        Some(query) => Request::Search { target, query },
        None => Request::Get { target },
    };
    let response = session.request(request).await?;
    let frame = match (response, options.path_only) {
        (Response::Record(record), true) => {
            reply.array(record.iter().map(|r| path_item(&r.path)).collect())
        }
        (Response::Record(Some(record)), false) => reply.record(&record, false),
        (Response::Record(None), false) => reply.ok(Value::Null, Map::new(), false),
        (Response::Records(records), true) => {
            reply.array(records.iter().map(|r| path_item(&r.path)).collect())
        }
        (Response::Records(records), false) => reply.records(&records),
        (other, _) => return Err(unexpected(envelope.action, &other)),
    };
    Ok(vec![frame])
}

/// `count`: `{value: N}`, the number of records matching the path or glob (and
/// `options.criteria`, when given).
///
/// # Errors
/// 400 for a missing or empty path or bad criteria; 500 store failure.
pub(crate) async fn count(
    session: &Session,
    envelope: &Envelope,
    reply: Reply<'_>,
) -> Result<Vec<Bytes>, Error> {
    let target = Glob::parse(envelope.require_path()?)?;
    let criteria = GetOptions::read(&envelope.options)?
        .query
        .and_then(|q| q.criteria);
    count_of(session, envelope, target, criteria, reply).await
}

async fn count_of(
    session: &Session,
    envelope: &Envelope,
    target: Glob,
    criteria: Option<Criteria>,
    reply: Reply<'_>,
) -> Result<Vec<Bytes>, Error> {
    let request = match criteria {
        Some(criteria) => Request::CountMatching { target, criteria },
        None => Request::Count { target },
    };
    match session.request(request).await? {
        Response::Count(n) => Ok(vec![reply.ok(json!({ "value": n }), Map::new(), false)]),
        other => Err(unexpected(envelope.action, &other)),
    }
}

/// `remove`: removes the record at the path, or every record matching a glob (and
/// `options.criteria`, when given), and publishes one remove event per record
/// (`options.meta` goes into their `_meta`). Answer: `{removed: N}` with
/// `_meta {timestamp, path, published}`.
///
/// # Errors
/// 400 for a missing or empty path, bad criteria, `sort`/`skip`/`limit`/`fields`, or a
/// mistyped `meta`; 500 store failure (nothing was removed, except by a removal by
/// criteria, which may have removed some records before the failure).
pub(crate) async fn remove(
    session: &Session,
    envelope: &Envelope,
    reply: Reply<'_>,
) -> Result<Vec<Bytes>, Error> {
    let target = Glob::parse(envelope.require_path()?)?;
    let options = GetOptions::read(&envelope.options)?;
    if let Some(query) = &options.query
        && (!query.sort.is_empty()
            || query.skip > 0
            || query.limit.is_some()
            || query.fields.is_some())
    {
        // Ignoring them would remove more than asked.
        return Err(FrameError::Unsupported {
            what: "`sort`, `skip`, `limit` and `fields` on `remove`".into(),
            why: "a remove takes every record its path and criteria match",
        }
        .into());
    }
    let meta = custom_meta(&envelope.options)?;
    let consistency = consistency(&envelope.options)?;
    let glob = target.as_str().to_owned();
    // The core publishes a remove event for an exact path even when nothing was
    // there (an MQTT empty retained message), and one per removed record for a glob.
    // Not for a removal by criteria: it publishes only for what it found.
    let exact =
        !target.has_wildcard() && options.query.as_ref().is_none_or(|q| q.criteria.is_none());
    let event_id = envelope.event_id_u64();
    let request = match options.query.and_then(|q| q.criteria) {
        Some(criteria) => Request::RemoveMatching {
            target,
            criteria,
            meta,
            event_id,
        },
        None => Request::Remove {
            target,
            meta,
            event_id,
            consistency,
        },
    };
    let response = session.request(request).await?;
    let Response::Removed(n) = response else {
        return Err(unexpected(envelope.action, &response));
    };
    let mut item = Map::new();
    item.insert("timestamp".into(), now_ms().into());
    item.insert("path".into(), glob.into());
    Ok(vec![reply.ok(
        json!({ "removed": n }),
        item,
        n > 0 || exact,
    )])
}

/// `options.consistency` (reference: CONSISTENCY): 0 to 3; TRANSACTIONAL when absent.
///
/// # Errors
/// [`FrameError::BadField`] for anything else.
fn consistency(options: &Map<String, Value>) -> Result<Consistency, FrameError> {
    match options.get("consistency") {
        None | Some(Value::Null) => Ok(Consistency::default()),
        Some(level) => {
            level
                .as_u64()
                .and_then(Consistency::from_level)
                .ok_or(FrameError::BadField {
                    field: "options.consistency",
                    expected: "an integer from 0 to 3",
                })
        }
    }
}

/// `options.increment` (reference: INCREMENT): the amount, with the gauge's name as the
/// request's `data` (the happn-3 client sends `set(path, gauge, {increment})`).
fn increment(options: &Map<String, Value>, data: &Value) -> Result<Option<Increment>, FrameError> {
    let by = match options.get("increment") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(by)) => by.clone(),
        Some(_) => {
            return Err(FrameError::BadField {
                field: "options.increment",
                expected: "a number",
            });
        }
    };
    match data {
        Value::String(gauge) if !gauge.is_empty() => Ok(Some(Increment {
            gauge: gauge.clone(),
            by,
        })),
        _ => Err(FrameError::BadField {
            field: "data",
            expected: "the gauge's name (a non-empty string) for an increment",
        }),
    }
}

/// `options.targetClients`: the session ids (as `_meta.sessionId` and `session.id` show
/// them) that alone receive the event (reference: TARGETING EVENTS).
fn target_clients(options: &Map<String, Value>) -> Result<Option<Arc<[SessionId]>>, FrameError> {
    let bad = || FrameError::BadField {
        field: "options.targetClients",
        expected: "an array of session ids",
    };
    match options.get("targetClients") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| id.as_str().and_then(|id| id.parse().ok()).ok_or_else(bad))
            .collect::<Result<Vec<SessionId>, _>>()
            .map(|ids| Some(ids.into())),
        Some(_) => Err(bad()),
    }
}

/// `options.tag`: the name under which a snapshot of the record is kept, at
/// `<path>/<tag>` (reference: TAGGING).
fn tag(options: &Map<String, Value>) -> Result<Option<String>, FrameError> {
    match options.get("tag") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(tag)) if !tag.is_empty() => Ok(Some(tag.clone())),
        Some(_) => Err(FrameError::BadField {
            field: "options.tag",
            expected: "a non-empty string",
        }),
    }
}

/// A short unique path segment for `setSibling` (reference: SET SIBLING, "suffixed with a
/// random short id"): 12 base-62 characters from 71 random bits. The `LocalClient` makes
/// its siblings with it too.
pub(crate) fn sibling_id() -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = uuid::Uuid::new_v4().as_u128();
    (0..12)
        .map(|_| {
            let c = ALPHABET[(n % 62) as usize];
            n /= 62;
            char::from(c)
        })
        .collect()
}

/// `options.meta`: the custom meta copied into events (reference: EVENTS WITH CUSTOM
/// META), without the [`pathmq_core::RESERVED_META_KEYS`].
///
/// # Errors
/// [`FrameError::BadField`] when it is present and not an object.
fn custom_meta(options: &Map<String, Value>) -> Result<Option<Map<String, Value>>, FrameError> {
    match options.get("meta") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(meta)) => Ok(pathmq_core::without_reserved_keys(Some(meta.clone()))),
        Some(_) => Err(FrameError::BadField {
            field: "options.meta",
            expected: "an object",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(options: Value) -> Result<GetOptions, Error> {
        GetOptions::read(options.as_object().unwrap())
    }

    #[test]
    fn query_options_are_read_top_level_and_nested() {
        assert!(read(json!({"path_only": true})).unwrap().path_only);
        assert!(
            read(json!({"options": {"path_only": true}}))
                .unwrap()
                .path_only
        );
        assert!(read(json!({"options": {"count": true}})).unwrap().count);
        let plain = read(json!({"timeout": 60000})).unwrap();
        assert!(!plain.count && plain.query.is_none());
        let search = read(json!({"criteria": {"a": 1}, "options": {"limit": 5}, "skip": 2}))
            .unwrap()
            .query
            .unwrap();
        assert!(search.criteria.is_some());
        assert_eq!((search.skip, search.limit), (2, Some(5)));
        // Nested options win over top-level ones.
        let nested = read(json!({"limit": 1, "options": {"limit": 7}})).unwrap();
        assert_eq!(nested.query.unwrap().limit, Some(7));
    }

    #[test]
    fn bad_queries_and_mongo_only_options_are_refused() {
        for options in [
            json!({"criteria": {"a": {"$foo": 1}}}),
            json!({"options": {"limit": -1}}),
            json!({"options": {"aggregate": [{"$match": {}}]}}),
            json!({"options": 3}),
        ] {
            let error = read(options.clone()).err();
            assert_eq!(error.map(|e| e.code()), Some(400), "{options}");
        }
    }
}
