//! Outbound frames: events, system messages and heartbeats
//! (`reference/happn-3-wire.md` §1 and §6; DESIGN.md §5). Responses are in
//! [`crate::response`].
//!
//! Encoding does no I/O. Every frame is JSON text in [`Bytes`]. An event's `data` is the
//! core's [`Event::native_data`], and everything of its frame but the recipient's channel
//! is encoded once too ([`Event::native_frame`]): each recipient's frame is spliced from
//! those shared bytes, never re-serialised.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use pathmq_core::{Event, EventKind, Subscription};
use serde_json::{Map, Value, json};

/// The protocol tag of every response and event (`happn_4`).
pub(crate) const PROTOCOL: &str = "happn_4";

/// The frames for one event delivered to one session: one per distinct channel among
/// `subscriptions` (wire doc §6), each
/// `{data, _meta:{…custom meta, type:'data', channel, action, path, created, modified,
/// sessionId, consistency, publicationId, depth?}, protocol:'happn_4'}`.
///
/// Remove events carry no `created`/`modified`. `depth` is given for channels whose
/// subscriptions were made with one: the smallest among them, which the happn-3 client
/// compares against each listener's own depth.
///
/// Everything but `channel` and `depth` is encoded once per event and shared by all its
/// recipients ([`shared_parts`]); a frame costs one allocation and a copy of those bytes.
pub(crate) fn event_frames(event: &Event, subscriptions: &[Arc<Subscription>]) -> Vec<Bytes> {
    match subscriptions {
        [] => Vec::new(),
        // The common case: one subscription, one frame.
        [sub] => vec![event_frame(
            event,
            &channel_of(sub),
            sub.options.depth,
            sub.options.merge,
        )],
        _ => {
            // (channel, smallest depth, merge of the channel's first subscription)
            let mut channels: Vec<(Cow<'_, str>, Option<usize>, bool)> =
                Vec::with_capacity(subscriptions.len());
            for sub in subscriptions {
                let channel = channel_of(sub);
                match channels.iter_mut().find(|(c, _, _)| *c == channel) {
                    Some((_, depth, _)) => {
                        *depth = match (*depth, sub.options.depth) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        }
                    }
                    None => channels.push((channel, sub.options.depth, sub.options.merge)),
                }
            }
            channels
                .iter()
                .map(|(channel, depth, merge)| event_frame(event, channel, *depth, *merge))
                .collect()
        }
    }
}

/// The channel a subscription's events are sent on: the one its client named, else
/// `/<FILTER>@<pattern>`.
fn channel_of(sub: &Subscription) -> Cow<'_, str> {
    match &sub.options.channel {
        Some(channel) => Cow::Borrowed(channel),
        None => Cow::Owned(format!(
            "/{}@{}",
            sub.options.filter.as_str(),
            sub.pattern.as_str()
        )),
    }
}

/// Where each shared piece is in [`Event::native_frame`]. A frame is
/// `HEAD "<channel>" MID [,"depth":N | CUSTOM_DEPTH] TAIL`.
const HEAD: usize = 0;
const MID: usize = 1;
const CUSTOM_DEPTH: usize = 2;
const TAIL: usize = 3;

/// `{"data":`, the start of every event frame.
const DATA_KEY: &[u8] = b"{\"data\":";

/// `,"depth":`, before a frame's own depth.
const DEPTH_KEY: &[u8] = b",\"depth\":";

/// One event frame on `channel`, from the event's shared pieces. For a merge subscription
/// (`merge`) to a merging `set`, the frame's `data` is the writer's input
/// ([`Event::merge_input`]), spliced in place of the record's.
fn event_frame(event: &Event, channel: &str, depth: Option<usize>, merge: bool) -> Bytes {
    let parts = event.native_frame(shared_parts);
    // HEAD is `{"data":` + the record's data + the start of `_meta`.
    let rest = parts[HEAD].get(DATA_KEY.len() + event.native_data().len()..);
    let merge_head = match (&event.merge_input, merge, rest) {
        (Some(input), true, Some(rest)) => {
            let input = input.native_json();
            let mut head = Vec::with_capacity(DATA_KEY.len() + input.len() + rest.len());
            head.extend_from_slice(DATA_KEY);
            head.extend_from_slice(&input);
            head.extend_from_slice(rest);
            Some(head)
        }
        _ => None,
    };
    let head = merge_head.as_deref().unwrap_or(&parts[HEAD]);
    // JSON text of the channel: channels rarely need escaping, and then it is the text
    // in quotes, written straight into the frame.
    let plain = channel
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    let escaped = match plain {
        true => None,
        false => Some(serde_json::to_vec(channel).unwrap_or_default()),
    };
    let mut digits = [0u8; 20];
    let depth = depth.map(|d| decimal(d, &mut digits));
    let len = head.len()
        + escaped.as_ref().map_or(channel.len() + 2, Vec::len)
        + parts[MID].len()
        + depth.map_or(parts[CUSTOM_DEPTH].len(), |d| DEPTH_KEY.len() + d.len())
        + parts[TAIL].len();
    // Exactly `len`: a full vector becomes `Bytes` without another allocation.
    let mut frame = Vec::with_capacity(len);
    frame.extend_from_slice(head);
    match &escaped {
        Some(escaped) => frame.extend_from_slice(escaped),
        None => {
            frame.push(b'"');
            frame.extend_from_slice(channel.as_bytes());
            frame.push(b'"');
        }
    }
    frame.extend_from_slice(&parts[MID]);
    match depth {
        Some(digits) => {
            frame.extend_from_slice(DEPTH_KEY);
            frame.extend_from_slice(digits);
        }
        None => frame.extend_from_slice(&parts[CUSTOM_DEPTH]),
    }
    frame.extend_from_slice(&parts[TAIL]);
    Bytes::from(frame)
}

/// The decimal digits of `n`, written at the end of `buf`.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// The pieces of an event's frames that all its recipients share (see [`HEAD`]): the
/// frame as it was encoded from one `_meta` map per channel, cut where `channel` and
/// `depth` go. The map orders its keys (serde_json without `preserve_order`), so
/// `channel` sits after the keys that sort before it, then come the keys up to `depth`,
/// then the rest. A custom `depth` stays unless the frame has its own; a custom
/// `channel` is always replaced.
fn shared_parts(event: &Event) -> Box<[Bytes]> {
    let meta = event_meta(event);
    let data = event.native_data();
    let mut head = Vec::with_capacity(data.len() + 256);
    head.extend_from_slice(DATA_KEY);
    head.extend_from_slice(data);
    head.extend_from_slice(b",\"_meta\":{");
    let mut head_pairs = 0;
    let (mut mid, mut custom_depth, mut tail) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in &meta {
        let piece = match key.as_str() {
            "channel" => continue,
            "depth" => &mut custom_depth,
            k if k < "channel" => {
                head_pairs += 1;
                if head_pairs > 1 {
                    head.push(b',');
                }
                push_pair(&mut head, key, value);
                continue;
            }
            k if k < "depth" => &mut mid,
            _ => &mut tail,
        };
        // After `channel`: every pair follows another.
        piece.push(b',');
        push_pair(piece, key, value);
    }
    if head_pairs > 0 {
        head.push(b',');
    }
    head.extend_from_slice(b"\"channel\":");
    tail.extend_from_slice(b"},\"protocol\":\"");
    tail.extend_from_slice(PROTOCOL.as_bytes());
    tail.extend_from_slice(b"\"}");
    [head, mid, custom_depth, tail].map(Bytes::from).into()
}

/// Appends `"key":value`.
fn push_pair(out: &mut Vec<u8>, key: &str, value: &Value) {
    // Writing JSON into a vector cannot fail (a `Value`'s map keys are strings).
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
    let _ = serde_json::to_writer(&mut *out, value);
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
    use futures_util::FutureExt;
    use pathmq_core::{Consistency, Core, OnOptions, Path, Pattern, Payload, Request, SessionId};
    use pathmq_storage::MemoryStore;

    fn parse(frame: &Bytes) -> Value {
        serde_json::from_slice(frame).unwrap()
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

    /// The frames as they were built before the shared pieces: one `_meta` map per
    /// channel, encoded whole. `event_frames` must match it byte for byte.
    fn reference_frames(event: &Event, subscriptions: &[Arc<Subscription>]) -> Vec<Bytes> {
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

    /// Subscriptions matching `/a/b`, made through a core: (pattern, channel, depth).
    fn subscriptions(specs: &[(&str, Option<&str>, Option<usize>)]) -> Vec<Arc<Subscription>> {
        let core = Core::builder(MemoryStore::new()).build();
        let session = core.open_session("local", None, None);
        for (pattern, channel, depth) in specs {
            let on = Request::On {
                pattern: Pattern::native(pattern).unwrap(),
                options: OnOptions {
                    depth: *depth,
                    channel: channel.map(str::to_owned),
                    ..Default::default()
                },
            };
            session.request(on).now_or_never().unwrap().unwrap();
        }
        let mut subs = Vec::new();
        core.router()
            .lookup(&Path::parse("/a/b").unwrap(), &mut subs);
        subs.sort_by_key(|s| s.id);
        assert_eq!(subs.len(), specs.len());
        subs
    }

    /// Guards the shared pieces: frames built from them are byte for byte the frames
    /// encoded whole, whatever the custom meta (keys sorting before, between and after
    /// `channel` and `depth`, and those two keys themselves), the event kind and the
    /// channels (several, merged, derived, needing escapes, with and without depth).
    #[test]
    fn event_frames_match_the_whole_encoding() {
        let origin = SessionId::new();
        let custom = |pairs: Value| match pairs {
            Value::Object(map) => Some(map),
            _ => None,
        };
        let metas = [
            None,
            custom(json!({"aaa": "x", "custom": 1, "type": "spoofed", "zzz": [1, {"b": null}]})),
            custom(json!({"channel": "mine", "depth": 9, "d": true, "ca": "\u{1}"})),
            custom(json!({"depth": 5})),
        ];
        let mut events = Vec::new();
        for meta in metas {
            for (kind, origin, id) in [
                (EventKind::Set, Some(origin), Some(3)),
                (EventKind::Remove, None, None),
                (EventKind::Set, Some(origin), None),
            ] {
                events.push(Event::new(
                    kind,
                    Path::parse("/a/b").unwrap(),
                    Payload::json(&json!({"v": "é\"", "n": [1.5]})),
                    10,
                    20,
                    origin,
                    id,
                    Consistency::Transactional,
                    meta.clone(),
                    1,
                ));
            }
        }
        let sets = [
            subscriptions(&[("/a/b", Some("/ALL@/a/b"), None)]),
            subscriptions(&[("/a/**", Some("/ALL@/a/**"), Some(2))]),
            subscriptions(&[
                ("/a/**", Some("/SET@/a/**"), Some(3)),
                ("/a/**", Some("/SET@/a/**"), Some(1)),
                ("/a/*", None, None),
                ("/*/b", Some("/ALL@/*/b"), None),
            ]),
            subscriptions(&[("/a/b", Some("/ALL@/a/\"b\"\t"), Some(12_345))]),
        ];
        for event in &events {
            for subs in &sets {
                let frames = event_frames(event, subs);
                assert_eq!(frames, reference_frames(event, subs), "{event:?}");
                for frame in &frames {
                    parse(frame);
                }
            }
        }
    }

    #[test]
    fn heartbeats_are_json_strings() {
        assert_eq!(&*ping(12), br#""primus::ping::12""#);
        assert_eq!(&*pong("a\"b"), br#""primus::pong::a\"b""#);
    }
}
