//! What listeners and the session report: [`Event`] with its [`EventMeta`]
//! (`reference/happn-3-wire.md` §6, `reference/happn-3.md` EVENTS), and [`SessionEvent`]
//! (reference: SESSION AND CONNECTION EVENTS).

use std::time::Duration;

use pathmq_core::{Consistency, EventKind};
use serde_json::{Map, Value};

use super::item::{Item, text};

/// A change to a record, delivered to a listener.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The record's data as set (the native view: non-objects wrapped as
    /// `{"value": …}`), or `{"removed": N}` for a remove.
    pub data: Value,
    /// What happened, where, and who did it.
    pub meta: EventMeta,
}

/// The meta of an [`Event`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventMeta {
    /// Set or remove (the wire's `action`, `/SET@<path>` or `/REMOVE@<path>`).
    pub kind: EventKind,
    /// The record's path.
    pub path: String,
    /// The listener's channel, `/<ALL|SET|REMOVE>@<subscribed path>`.
    pub channel: String,
    /// When the record was created, ms since the Unix epoch (set events).
    pub created: Option<u64>,
    /// When the record was modified, ms since the Unix epoch (set events).
    pub modified: Option<u64>,
    /// The session of the writer.
    pub session_id: Option<String>,
    /// The consistency level the writer asked for.
    pub consistency: Option<Consistency>,
    /// `<writer session>-<request id>`.
    pub publication_id: Option<String>,
    /// The depth of a `/**` subscription.
    pub depth: Option<usize>,
    /// The custom meta the writer gave (`SetOptions::meta`).
    pub custom: Map<String, Value>,
    /// Whether this is a record emitted on subscribing (`OnOptions::initial_emit`)
    /// rather than a change.
    pub initial: bool,
}

/// The `_meta` keys of an event frame that are not custom meta.
const KNOWN: [&str; 10] = [
    "type",
    "channel",
    "action",
    "path",
    "created",
    "modified",
    "sessionId",
    "consistency",
    "publicationId",
    "depth",
];

impl EventMeta {
    /// The meta of an event frame's `_meta` object. `None` when it has no `path` or no
    /// `action` naming SET or REMOVE.
    pub(crate) fn from_wire(mut meta: Map<String, Value>) -> Option<Self> {
        let action = meta.get("action").and_then(Value::as_str)?;
        let kind = if action.starts_with("/SET@") {
            EventKind::Set
        } else if action.starts_with("/REMOVE@") {
            EventKind::Remove
        } else {
            return None;
        };
        let number = |key| meta.get(key).and_then(Value::as_u64);
        let parsed = Self {
            kind,
            path: text(&meta, "path")?,
            channel: text(&meta, "channel").unwrap_or_default(),
            created: number("created"),
            modified: number("modified"),
            session_id: text(&meta, "sessionId"),
            consistency: number("consistency").and_then(Consistency::from_level),
            publication_id: text(&meta, "publicationId"),
            depth: number("depth").and_then(|d| usize::try_from(d).ok()),
            custom: Map::new(),
            initial: false,
        };
        meta.retain(|key, _| !KNOWN.contains(&key.as_str()));
        Some(Self {
            custom: meta,
            ..parsed
        })
    }
}

impl Event {
    /// A record emitted on subscribing to `channel` (`OnOptions::initial_emit`).
    pub(crate) fn initial(item: Item, channel: &str) -> Self {
        Self {
            data: item.data,
            meta: EventMeta {
                kind: EventKind::Set,
                path: item.meta.path,
                channel: channel.to_owned(),
                created: Some(item.meta.created),
                modified: Some(item.meta.modified),
                session_id: None,
                consistency: None,
                publication_id: None,
                depth: None,
                custom: Map::new(),
                initial: true,
            },
        }
    }
}

/// A change in the client's connection or session, from
/// [`DataApi::session_events`](super::DataApi::session_events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The broker ended the session and said why (the system frame
    /// `server-side-disconnect`, or an in-process session closed by the core). A remote
    /// client then reconnects, unless reconnecting is off.
    SessionEnded {
        /// The broker's reason, e.g. "server shutting down".
        reason: String,
    },
    /// The connection was lost; attempt `attempt` (from 1) to open a new one starts after
    /// `delay`. Calls fail with `ClientError::ConnectionLost` meanwhile.
    ReconnectScheduled {
        /// Which attempt this is, from 1.
        attempt: u32,
        /// The wait before it (exponential backoff).
        delay: Duration,
    },
    /// A new connection is open and logged in, and every live listener is subscribed
    /// again. Calls work again.
    ReconnectSuccessful {
        /// The new session's id.
        session_id: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_meta_separates_custom_keys() {
        let Value::Object(meta) = json!({"type": "data", "channel": "/ALL@/a/*",
            "action": "/SET@/a/b", "path": "/a/b", "created": 1, "modified": 2,
            "sessionId": "s", "consistency": 2, "publicationId": "s-1", "tag": "t1"})
        else {
            unreachable!()
        };
        let meta = EventMeta::from_wire(meta).unwrap();
        assert_eq!(meta.kind, EventKind::Set);
        assert_eq!(meta.channel, "/ALL@/a/*");
        assert_eq!(meta.consistency, Some(Consistency::Transactional));
        assert_eq!(
            meta.custom,
            json!({"tag": "t1"}).as_object().cloned().unwrap()
        );
        let Value::Object(remove) = json!({"action": "/REMOVE@/a", "path": "/a"}) else {
            unreachable!()
        };
        let remove = EventMeta::from_wire(remove).unwrap();
        assert_eq!((remove.kind, remove.created), (EventKind::Remove, None));
        assert!(EventMeta::from_wire(Map::new()).is_none());
    }
}
