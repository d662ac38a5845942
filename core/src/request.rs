//! Requests and responses: what a session asks of the core and what it is answered
//! (reference: the actions of `reference/happn-3-wire.md` §4).

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::event::EventFilter;
use crate::path::Path;
use crate::pattern::{Glob, Pattern};
use crate::payload::{Payload, Record};
use crate::query::{Criteria, Query};
use crate::router::SubscriptionId;
use crate::session::SessionId;
use crate::store::Increment;

/// Every action of the native protocol (DESIGN.md §5). A closed set: protocols map their
/// frames onto it; the core executes the data actions ([`Request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `configure-session`: protocol version handshake.
    ConfigureSession,
    /// `describe`: server name and whether it is secure.
    Describe,
    /// `login`.
    Login,
    /// `set` (and `publish`, `noStore`).
    Set,
    /// `get`.
    Get,
    /// `count`.
    Count,
    /// `remove`.
    Remove,
    /// `on`: subscribe.
    On,
    /// `off`: unsubscribe.
    Off,
    /// `ack`: acknowledge a publication.
    Ack,
    /// `change-password`.
    ChangePassword,
    /// `revoke-token`.
    RevokeToken,
    /// `disconnect-child-sessions`.
    DisconnectChildSessions,
}

impl Action {
    /// The action's name on the wire (`"set"`, `"configure-session"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConfigureSession => "configure-session",
            Self::Describe => "describe",
            Self::Login => "login",
            Self::Set => "set",
            Self::Get => "get",
            Self::Count => "count",
            Self::Remove => "remove",
            Self::On => "on",
            Self::Off => "off",
            Self::Ack => "ack",
            Self::ChangePassword => "change-password",
            Self::RevokeToken => "revoke-token",
            Self::DisconnectChildSessions => "disconnect-child-sessions",
        }
    }

    /// The action for its wire name, `None` for an unknown one.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "configure-session" => Self::ConfigureSession,
            "describe" => Self::Describe,
            "login" => Self::Login,
            "set" => Self::Set,
            "get" => Self::Get,
            "count" => Self::Count,
            "remove" => Self::Remove,
            "on" => Self::On,
            "off" => Self::Off,
            "ack" => Self::Ack,
            "change-password" => Self::ChangePassword,
            "revoke-token" => Self::RevokeToken,
            "disconnect-child-sessions" => Self::DisconnectChildSessions,
            _ => return None,
        })
    }
}

/// Consistency level of a `set` or `remove` (reference: CONSISTENCY; DESIGN.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// 0: answered at once, published later.
    Queued = 0,
    /// 1: answered at once, publication results reported later.
    Deferred = 1,
    /// 2 (default): answered after the event is in every recipient's queue.
    #[default]
    Transactional = 2,
    /// 3: publication results after every recipient acknowledged.
    Acknowledged = 3,
}

impl Consistency {
    /// The level for its number (0–3).
    pub fn from_level(level: u64) -> Option<Self> {
        Some(match level {
            0 => Self::Queued,
            1 => Self::Deferred,
            2 => Self::Transactional,
            3 => Self::Acknowledged,
            _ => return None,
        })
    }
}

/// Keys of an event's `_meta` that the broker owns: a native client's custom meta cannot
/// set them, and any it carries are dropped ([`without_reserved_keys`]; reference: EVENTS
/// WITH CUSTOM META, plus pathmq's own keys).
pub const RESERVED_META_KEYS: [&str; 12] = [
    "path",
    "created",
    "modified",
    "action",
    "type",
    "published",
    "status",
    "eventId",
    "sessionId",
    "channel",
    "consistency",
    "publicationId",
];

/// `meta` without the [`RESERVED_META_KEYS`]; `None` when nothing is left. The native
/// protocol and the local client apply it to custom meta; MQTT does not, since user
/// properties are forwarded unaltered (MQTT-3.3.2-17).
pub fn without_reserved_keys(meta: Option<Map<String, Value>>) -> Option<Map<String, Value>> {
    let mut meta = meta?;
    meta.retain(|key, _| !RESERVED_META_KEYS.contains(&key.as_str()));
    (!meta.is_empty()).then_some(meta)
}

/// Options of a `set`.
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    /// Shallow-merge into the stored object.
    pub merge: bool,
    /// Store but publish no event.
    pub no_publish: bool,
    /// Publish without storing (the reference's `publish`; an MQTT PUBLISH without retain).
    pub no_store: bool,
    /// Consistency level.
    pub consistency: Consistency,
    /// Custom meta copied into the event's `_meta` (MQTT 5 user properties).
    pub meta: Option<Map<String, Value>>,
    /// The QoS at which MQTT subscribers receive the event (before capping by their
    /// granted QoS): the PUBLISH QoS for MQTT writers, 1 for native writers.
    pub qos: u8,
    /// The writer's request id, used to form the event's publication id.
    pub event_id: Option<u64>,
    /// Only these sessions receive the event (reference: TARGETING EVENTS).
    pub target_clients: Option<Arc<[SessionId]>>,
    /// After the write, store a snapshot of the record at `<path>/<tag>` (reference:
    /// TAGGING). The snapshot is stored without an event.
    pub tag: Option<String>,
    /// MQTT 5 message properties to forward with the event (content type, response topic,
    /// correlation data, payload format, message expiry).
    pub properties: Option<Arc<crate::event::MessageProperties>>,
    /// Add to a gauge instead of writing the payload (reference: INCREMENT): the record
    /// keeps every gauge, the event's payload is `{gauge, value}`
    /// ([`Increment::gauge_payload`]).
    pub increment: Option<Increment>,
}

/// Options of an `on`.
#[derive(Debug, Clone, Default)]
pub struct OnOptions {
    /// Which events are delivered.
    pub filter: EventFilter,
    /// For `**`: how many levels below the prefix are delivered (`None`: all).
    pub depth: Option<usize>,
    /// The highest QoS an MQTT subscriber is sent (its granted QoS).
    pub qos: u8,
    /// MQTT 5 no local: events this session published are not delivered to it.
    pub no_local: bool,
    /// MQTT 5 Retain As Published: events keep the retain flag they were published with
    /// ([`crate::Event::retained`]) instead of 0.
    pub retain_as_published: bool,
    /// MQTT 5 Subscription Identifier, sent with every message this subscription
    /// matches.
    pub subscription_id: Option<u32>,
    /// MQTT 5 shared subscription (`$share/<group>/<filter>`): the group's name. Of the
    /// subscriptions of one group with one pattern, each event goes to one
    /// ([`crate::Core::publish`]); the subscription's [`OnOptions::channel`] is its
    /// whole filter text, by which it is unsubscribed.
    pub share: Option<Arc<str>>,
    /// The channel name a native client knows this subscription by (`/ALL@/a/*`).
    pub channel: Option<String>,
    /// A merge subscription: a `set` with `merge` delivers the writer's raw input, not the
    /// merged record (reference: MERGE SUBSCRIPTIONS; [`crate::Event::merge_input`]).
    pub merge: bool,
}

/// What an `off` removes.
#[derive(Debug, Clone)]
pub enum Off {
    /// One subscription by its id (the reference's `referenceId`).
    Id(SubscriptionId),
    /// Every subscription of the session whose pattern is this text (an MQTT UNSUBSCRIBE
    /// filter, a native channel path).
    Pattern(String),
    /// Every subscription of the session.
    All,
}

/// A data request of a session, executed by the core after the inbound layers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Request {
    /// Store (and publish) a payload.
    Set {
        /// Where.
        path: Path,
        /// What.
        payload: Payload,
        /// How.
        options: SetOptions,
    },
    /// Read one record, or every record matching a glob.
    Get {
        /// An exact path (no `*`) or a glob.
        target: Glob,
    },
    /// Count the records matching a glob.
    Count {
        /// An exact path or a glob.
        target: Glob,
    },
    /// Remove one record, or every record matching a glob; one event per removed record.
    Remove {
        /// An exact path or a glob.
        target: Glob,
        /// Custom meta for the remove events.
        meta: Option<Map<String, Value>>,
        /// The writer's request id.
        event_id: Option<u64>,
        /// The consistency level of the remove events (DESIGN.md §6).
        consistency: Consistency,
    },
    /// Search (reference: SEARCH): the records matching a glob that satisfy the query's
    /// criteria, sorted, skipped, limited and projected ([`crate::query`]); answered
    /// with [`Response::Records`].
    Search {
        /// An exact path or a glob.
        target: Glob,
        /// Criteria and options.
        query: Query,
    },
    /// Count the records matching a glob that satisfy `criteria`; [`Response::Count`].
    CountMatching {
        /// An exact path or a glob.
        target: Glob,
        /// What the records must satisfy.
        criteria: Criteria,
    },
    /// Remove the records matching a glob that satisfy `criteria`, one event per removed
    /// record; [`Response::Removed`]. Not atomic with the search: a record changed in
    /// between is removed as it was found.
    RemoveMatching {
        /// An exact path or a glob.
        target: Glob,
        /// What the records must satisfy.
        criteria: Criteria,
        /// Custom meta for the remove events.
        meta: Option<Map<String, Value>>,
        /// The writer's request id.
        event_id: Option<u64>,
    },
    /// Subscribe.
    On {
        /// What to match.
        pattern: Pattern,
        /// How.
        options: OnOptions,
    },
    /// Unsubscribe.
    Off(Off),
}

impl Request {
    /// The action this request performs.
    pub fn action(&self) -> Action {
        match self {
            Self::Set { .. } => Action::Set,
            Self::Get { .. } | Self::Search { .. } => Action::Get,
            Self::Count { .. } | Self::CountMatching { .. } => Action::Count,
            Self::Remove { .. } | Self::RemoveMatching { .. } => Action::Remove,
            Self::On { .. } => Action::On,
            Self::Off(_) => Action::Off,
        }
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Response {
    /// A stored record (`set`), with whether an event was published.
    Set {
        /// The record as stored; for `no_store` a record that was never stored.
        record: Record,
        /// Whether an event was published.
        published: bool,
        /// Where the event went (zeros when none was published).
        results: crate::PublishResult,
    },
    /// The record at an exact path, or `None`.
    Record(Option<Record>),
    /// The records matching a glob, ordered by path.
    Records(Vec<Record>),
    /// How many records matched.
    Count(u64),
    /// How many records were removed.
    Removed(u64),
    /// A new subscription and its id.
    Subscribed(SubscriptionId),
    /// The ids of the removed subscriptions.
    Unsubscribed(Vec<SubscriptionId>),
}
