//! `on` and `off` (`reference/happn-3-wire.md` §4, `reference/happn-3.md` EVENTS,
//! DESIGN.md §3).
//!
//! A subscription is named by its channel, `/<ALL|SET|REMOVE>@<path>` (`/ALL@*` for
//! everything). The channel is kept with the subscription ([`OnOptions::channel`]) and
//! sent back in each event's `_meta.channel`: the happn-3 client routes events to its
//! listeners by that exact text.

use bytes::Bytes;
use pathmq_core::{
    Error, EventFilter, Off, OnOptions, Pattern, Request, Response, Session, SubscriptionId,
};
use serde_json::{Map, Value, json};

use crate::envelope::{Envelope, flag};
use crate::error::FrameError;
use crate::response::Reply;
use crate::session::unexpected;

/// How many levels below its prefix a `/**` subscription reaches when `options.depth` is
/// not given (reference: VARIABLE DEPTH SUBSCRIPTIONS, "the default variable depth is 5").
const DEFAULT_VARIABLE_DEPTH: usize = 5;

/// The depth a subscription on `path` reaches: its own, or for a variable-depth pattern
/// (`**`, `…/**`) given none or 0, [`DEFAULT_VARIABLE_DEPTH`] (the reference's client
/// default, `defaultVariableDepth`; both clients read 0 as "not given"). The broker and
/// the Rust clients apply this one rule.
pub(crate) fn effective_depth(path: &str, depth: Option<usize>) -> Option<usize> {
    match depth {
        None | Some(0) if path == "**" || path.ends_with("/**") => Some(DEFAULT_VARIABLE_DEPTH),
        depth => depth,
    }
}

/// The filter an `event_type` or channel prefix names (`all`/`*`, `set`, `remove`, any
/// case).
fn filter_named(name: &str) -> Option<EventFilter> {
    if name.eq_ignore_ascii_case("all") || name == "*" {
        Some(EventFilter::All)
    } else if name.eq_ignore_ascii_case("set") {
        Some(EventFilter::Set)
    } else if name.eq_ignore_ascii_case("remove") {
        Some(EventFilter::Remove)
    } else {
        None
    }
}

/// Splits a channel into its filter and path: `/SET@/a/*` → (Set, `/a/*`). A bare path
/// (no `/<ACTION>@` prefix) is accepted with `event_type` (default all) and given the
/// channel `/<EVENT_TYPE>@<path>`. Returns (filter, path, channel).
fn split_channel(text: &str, event_type: Option<EventFilter>) -> (EventFilter, &str, String) {
    if let Some(rest) = text.strip_prefix('/')
        && let Some((kind, path)) = rest.split_once('@')
        && let Some(filter) = filter_named(kind)
    {
        return (filter, path, text.to_owned());
    }
    let filter = event_type.unwrap_or_default();
    (filter, text, format!("/{}@{text}", filter.as_str()))
}

/// A `referenceId`: a positive integer or its decimal text; `0`, `""`, `false`, `null`
/// and absence mean "none" (wire doc §4: falsy = every subscription on the channel).
fn reference_id(options: &Map<String, Value>) -> Result<Option<u64>, FrameError> {
    let bad = FrameError::BadField {
        field: "options.referenceId",
        expected: "a subscription id",
    };
    match options.get("referenceId") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(|n| (n != 0).then_some(n)).ok_or(bad),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| bad),
        Some(_) => Err(bad),
    }
}

/// `on`: subscribes to a channel. `*` in the path is exactly one segment, `**` (last)
/// every descendant up to `options.depth` levels (default 5, as the reference; DESIGN.md
/// §3). With `options.merge`, a `set` with `merge` delivers the writer's raw input
/// (reference: MERGE SUBSCRIPTIONS).
/// Answer: `{id}`, the subscription id the client passes back as `referenceId`.
///
/// With `options.initialCallback` or `initialEmit`, the answer's `data` is instead
/// the array of stored records the subscription matches (each with its `_meta`, ordered
/// by `modified` as the reference says), and
/// the id is in `_meta.referenceId`.
///
/// # Errors
/// 400 for a missing, empty or invalid pattern (`**` not last) or a mistyped option;
/// 500 when the initial records cannot be read (the subscription is undone).
pub(crate) async fn on(
    session: &Session,
    envelope: &Envelope,
    reply: Reply<'_>,
) -> Result<Vec<Bytes>, Error> {
    let o = &envelope.options;
    let bad_event_type = FrameError::BadField {
        field: "options.event_type",
        expected: "\"all\", \"set\" or \"remove\"",
    };
    let event_type = match o.get("event_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(filter_named(name).ok_or(bad_event_type)?),
        Some(_) => return Err(bad_event_type.into()),
    };
    let (filter, path, channel) = split_channel(envelope.require_path()?, event_type);
    let pattern = Pattern::native(path)?;
    let depth = match o.get("depth") {
        None | Some(Value::Null) => None,
        Some(depth) => Some(depth.as_u64().and_then(|d| usize::try_from(d).ok()).ok_or(
            FrameError::BadField {
                field: "options.depth",
                expected: "a non-negative integer",
            },
        )?),
    };
    let depth = effective_depth(path, depth);
    let initial = flag(o, "initialCallback", "options.initialCallback")?
        || flag(o, "initialEmit", "options.initialEmit")?;

    let options = OnOptions {
        filter,
        depth,
        qos: 1,
        no_local: false,
        channel: Some(channel),
        merge: flag(o, "merge", "options.merge")?,
        ..OnOptions::default()
    };
    let response = session
        .request(Request::On {
            pattern: pattern.clone(),
            options,
        })
        .await?;
    let Response::Subscribed(id) = response else {
        return Err(unexpected(envelope.action, &response));
    };
    if !initial {
        return Ok(vec![reply.ok(json!({ "id": id.0 }), Map::new(), false)]);
    }

    let records = match session.initial_values(&pattern, depth).await {
        Ok(records) => records,
        Err(error) => {
            if let Err(undo) = session.request(Request::Off(Off::Id(id))).await {
                tracing::warn!(%undo, subscription = %id, "could not undo a subscription");
            }
            return Err(error);
        }
    };
    let mut meta = Map::new();
    meta.insert("referenceId".into(), id.0.into());
    Ok(vec![reply.records_in_data(&records, meta)])
}

/// `off`: with `options.referenceId`, removes that subscription; otherwise every
/// subscription on the channel in `path`, or all of them for `*`. Answer:
/// `{id: <referenceId or false>, removed: [<subscription ids>]}`.
///
/// # Errors
/// 400 for a missing path or a `referenceId` that is not an id.
pub(crate) async fn off(
    session: &Session,
    envelope: &Envelope,
    reply: Reply<'_>,
) -> Result<Vec<Bytes>, Error> {
    let channel = envelope.require_path()?;
    let reference = reference_id(&envelope.options)?;
    let off = match reference {
        Some(id) => Off::Id(SubscriptionId(id)),
        None if channel == "*" => Off::All,
        None => Off::Pattern(channel.to_owned()),
    };
    let response = session.request(Request::Off(off)).await?;
    let Response::Unsubscribed(removed) = response else {
        return Err(unexpected(envelope.action, &response));
    };
    let removed: Vec<u64> = removed.iter().map(|id| id.0).collect();
    let id = reference.map_or(Value::Bool(false), Value::from);
    Ok(vec![reply.ok(
        json!({ "id": id, "removed": removed }),
        Map::new(),
        false,
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_split_into_filter_and_path() {
        let cases = [
            ("/ALL@/a/*", None, EventFilter::All, "/a/*", "/ALL@/a/*"),
            ("/SET@/a", None, EventFilter::Set, "/a", "/SET@/a"),
            (
                "/REMOVE@/a/**",
                None,
                EventFilter::Remove,
                "/a/**",
                "/REMOVE@/a/**",
            ),
            ("/ALL@*", None, EventFilter::All, "*", "/ALL@*"),
            ("/a/b", None, EventFilter::All, "/a/b", "/ALL@/a/b"),
            (
                "/a/b",
                Some(EventFilter::Set),
                EventFilter::Set,
                "/a/b",
                "/SET@/a/b",
            ),
            // `@` inside a path that is not a channel prefix stays part of the path.
            (
                "/user@x/y",
                None,
                EventFilter::All,
                "/user@x/y",
                "/ALL@/user@x/y",
            ),
            (
                "/ALL@/mail/a@b",
                None,
                EventFilter::All,
                "/mail/a@b",
                "/ALL@/mail/a@b",
            ),
        ];
        for (text, event_type, filter, path, channel) in cases {
            assert_eq!(
                split_channel(text, event_type),
                (filter, path, channel.to_owned()),
                "{text}"
            );
        }
    }

    #[test]
    fn reference_ids_treat_falsy_as_none() {
        let read = |v: Value| reference_id(json!({ "referenceId": v }).as_object().unwrap());
        assert_eq!(read(json!(0)).unwrap(), None);
        assert_eq!(read(json!(false)).unwrap(), None);
        assert_eq!(read(json!("")).unwrap(), None);
        assert_eq!(read(json!(7)).unwrap(), Some(7));
        assert_eq!(read(json!("7")).unwrap(), Some(7));
        assert!(read(json!("x")).is_err());
        assert!(read(json!(-1)).is_err());
    }
}
