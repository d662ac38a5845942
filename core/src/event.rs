//! Events and the messages a session's outbound queue carries (DESIGN.md §2, §5).

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::path::Path;
use crate::payload::Payload;
use crate::request::Consistency;
use crate::router::Subscription;
use crate::session::SessionId;

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The record was set (or published without storing).
    Set,
    /// The record was removed.
    Remove,
}

impl EventKind {
    /// `"SET"` or `"REMOVE"`, as in the reference's channel names (`/SET@/a/b`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Set => "SET",
            Self::Remove => "REMOVE",
        }
    }
}

/// Which events a subscription wants (the reference's `event_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFilter {
    /// Set and remove events (`"all"`, `/ALL@…`).
    #[default]
    All,
    /// Set events only (`"set"`, `/SET@…`).
    Set,
    /// Remove events only (`"remove"`, `/REMOVE@…`).
    Remove,
}

impl EventFilter {
    /// Whether an event of `kind` passes.
    pub fn accepts(self, kind: EventKind) -> bool {
        match self {
            Self::All => true,
            Self::Set => kind == EventKind::Set,
            Self::Remove => kind == EventKind::Remove,
        }
    }

    /// `"ALL"`, `"SET"` or `"REMOVE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "ALL",
            Self::Set => "SET",
            Self::Remove => "REMOVE",
        }
    }
}

/// Properties of an application message that MQTT 5 carries from publisher to
/// subscribers unchanged (MQTT 5 §3.3.2.3, [MQTT-3.3.2-4/-20]): set by an MQTT 5 PUBLISH
/// (or will), forwarded to MQTT 5 subscribers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProperties {
    /// Payload Format Indicator as sent: 0 unspecified bytes, 1 UTF-8.
    pub payload_format: Option<u8>,
    /// When the message expires (Message Expiry Interval after its arrival), ms since the
    /// epoch: it is then no longer delivered, and a subscriber receives the remaining
    /// interval [MQTT-3.3.2-5/-6].
    pub expires_at_ms: Option<u64>,
    /// Content Type.
    pub content_type: Option<String>,
    /// Response Topic (request/response).
    pub response_topic: Option<String>,
    /// Correlation Data (request/response).
    pub correlation_data: Option<Bytes>,
    /// User Properties as published: in order, names repeated as they were
    /// [MQTT-3.3.2-18]. ([`Event::meta`] has them as a map, for native subscribers.)
    pub user_properties: Vec<(String, String)>,
}

impl MessageProperties {
    /// Whether the message has expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// The Message Expiry Interval to send at `now_ms`, in seconds (rounded up, at least
    /// 1 while not expired).
    pub fn remaining_expiry_s(&self, now_ms: u64) -> Option<u32> {
        let at = self.expires_at_ms?;
        let left = at.saturating_sub(now_ms).div_ceil(1000).max(1);
        Some(u32::try_from(left).unwrap_or(u32::MAX))
    }
}

/// A change to one record, shared by all its recipients (`Arc<Event>`).
///
/// The payload bytes are shared by every recipient; the native data is encoded once, on
/// first use, by [`Event::native_data`].
#[derive(Debug)]
pub struct Event {
    /// Set or remove.
    pub kind: EventKind,
    /// The record's path.
    pub path: Path,
    /// The payload; empty for a remove (an MQTT subscriber receives an empty message).
    pub payload: Payload,
    /// When the record was created, ms since the epoch (set events).
    pub created: u64,
    /// When the record was modified or removed, ms since the epoch.
    pub modified: u64,
    /// The session that caused the event.
    pub origin: Option<SessionId>,
    /// `<origin session>-<request id>`, as the reference forms it.
    pub publication_id: Option<String>,
    /// The consistency level the writer asked for.
    pub consistency: Consistency,
    /// Custom meta (native `options.meta`, MQTT 5 user properties).
    pub meta: Option<Map<String, Value>>,
    /// The QoS the writer published at (MQTT subscribers get min(this, granted)).
    pub qos: u8,
    /// For a remove event: how many records it removed at this path (0 when an exact
    /// remove found nothing, 1 otherwise).
    pub removed: u64,
    /// When set, only these sessions receive the event (reference: TARGETING EVENTS,
    /// `targetClients`); the others count as skipped. Sorted (looked up by binary
    /// search).
    pub targets: Option<Arc<[SessionId]>>,
    /// For a `set` with `merge`: the writer's input before merging, which merge
    /// subscriptions receive instead of the record ([`crate::OnOptions::merge`]).
    pub merge_input: Option<Payload>,
    /// The MQTT 5 properties the publisher gave, forwarded to MQTT 5 subscribers.
    pub properties: Option<Arc<MessageProperties>>,
    /// Whether the record was stored by this write (an MQTT PUBLISH with retain, a native
    /// `set` without `noStore`): the retain flag a subscription with MQTT 5 Retain As
    /// Published forwards.
    pub retained: bool,
    native_data: OnceLock<Bytes>,
    native_frame: OnceLock<Box<[Bytes]>>,
    /// The shared part of this event's stored form for durable sessions
    /// ([`crate::durable`]), encoded once for all of them (boxed: rarely used).
    stored_body: OnceLock<Box<Bytes>>,
}

impl Event {
    /// A new event. `publication_id` is formed from `origin` and `event_id` when both exist.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: EventKind,
        path: Path,
        payload: Payload,
        created: u64,
        modified: u64,
        origin: Option<SessionId>,
        event_id: Option<u64>,
        consistency: Consistency,
        meta: Option<Map<String, Value>>,
        qos: u8,
    ) -> Self {
        let publication_id = match (origin, event_id) {
            (Some(o), Some(e)) => Some(format!("{o}-{e}")),
            _ => None,
        };
        Self {
            kind,
            path,
            payload,
            created,
            modified,
            origin,
            publication_id,
            consistency,
            meta,
            qos,
            removed: u64::from(kind == EventKind::Remove),
            targets: None,
            merge_input: None,
            properties: None,
            retained: false,
            native_data: OnceLock::new(),
            native_frame: OnceLock::new(),
            stored_body: OnceLock::new(),
        }
    }

    /// Sets [`Event::targets`].
    pub fn with_targets(mut self, targets: Option<Arc<[SessionId]>>) -> Self {
        // Sorted here when the caller did not sort them.
        self.targets = targets.map(|t| {
            if t.is_sorted() {
                t
            } else {
                let mut sorted = t.to_vec();
                sorted.sort_unstable();
                sorted.into()
            }
        });
        self
    }

    /// Sets [`Event::merge_input`].
    pub fn with_merge_input(mut self, input: Option<Payload>) -> Self {
        self.merge_input = input;
        self
    }

    /// Sets [`Event::properties`].
    pub fn with_properties(mut self, properties: Option<Arc<MessageProperties>>) -> Self {
        self.properties = properties;
        self
    }

    /// Sets [`Event::retained`].
    pub fn with_retained(mut self, retained: bool) -> Self {
        self.retained = retained;
        self
    }

    /// Whether the message expired at `now_ms` (MQTT 5 Message Expiry).
    pub fn expired(&self, now_ms: u64) -> bool {
        self.properties.as_ref().is_some_and(|p| p.expired(now_ms))
    }

    /// Sets [`Event::removed`].
    pub fn with_removed(mut self, count: u64) -> Self {
        self.removed = count;
        self
    }

    /// The event's `data` as native clients see it, as JSON text, encoded once: the
    /// payload's native view for a set ([`Payload::to_native_value`]), `{"removed":N}` for
    /// a remove (reference: remove events).
    pub fn native_data(&self) -> &Bytes {
        self.native_data.get_or_init(|| match self.kind {
            EventKind::Set => self.payload.native_json(),
            EventKind::Remove => Bytes::from(format!("{{\"removed\":{}}}", self.removed)),
        })
    }

    /// The parts of this event's native frame that every recipient shares, made by
    /// `encode` on first use and kept for the others (DESIGN.md §2: an event is encoded
    /// once per wire format). What the pieces are is the native protocol's business: it
    /// builds each recipient's frame from them and that recipient's own parts (its
    /// channel). Only the native protocol calls this, always with the same `encode`.
    pub fn native_frame(&self, encode: impl FnOnce(&Self) -> Box<[Bytes]>) -> &[Bytes] {
        self.native_frame.get_or_init(|| encode(self))
    }

    /// The event's stored form for durable sessions, encoded once ([`crate::durable`]).
    pub(crate) fn stored_body(&self) -> Bytes {
        // Boxed: most events never have a durable recipient; the slot stays one word.
        Bytes::clone(
            self.stored_body
                .get_or_init(|| Box::new(crate::durable::encode_body(self))),
        )
    }
}

/// Why the core ends a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Another connection logged in with the same client id (MQTT 3.1.4-2 takeover).
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
    /// The session's outbound queue overflowed and the policy is to disconnect.
    QueueFull,
    /// Security ended the session: its policy's ttl, inactivity threshold or usage
    /// limit, or its token was revoked (DESIGN.md §7).
    SessionEnded(crate::security::SessionEnd),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TakenOver => "session taken over by another connection with the same client id",
            Self::Shutdown => "server shutting down",
            Self::QueueFull => "outbound queue full",
            Self::SessionEnded(end) => return end.fmt(f),
        })
    }
}

/// A message in a session's outbound queue.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outbound {
    /// An event, with every subscription of this session it matched (at least one).
    Event {
        /// The event.
        event: Arc<Event>,
        /// The matching subscriptions of the receiving session.
        subscriptions: Matches,
    },
    /// The core ends the session: the protocol tells the client why, then closes.
    Close(CloseReason),
    /// How a publication of this session's went, once its recipients acknowledged (or
    /// did not in time): consistency ACKNOWLEDGED (native `publication-ack`).
    Published(Arc<crate::acks::Publication>),
    /// A QoS 1/2 message of a durable session (MQTT clean start 0): kept in the store
    /// until the protocol reports it acknowledged ([`crate::Session::acknowledged`]).
    Durable(crate::durable::DurableMessage),
}

/// The subscriptions of one session that one event matched, as [`Outbound::Event`] carries
/// them: a slice of `Arc<Subscription>` (through `Deref`). One subscription, the common
/// case, is held inline, so queueing an event for a session allocates nothing.
///
/// ```
/// use pathmq_core::Matches;
///
/// let none = Matches::from(Vec::new());
/// assert!(none.is_empty());
/// ```
#[derive(Clone)]
pub struct Matches(MatchesRepr);

#[derive(Clone)]
enum MatchesRepr {
    One(Arc<Subscription>),
    Many(Box<[Arc<Subscription>]>),
}

/// How an event goes to an MQTT session, from the subscriptions of it that matched
/// ([`Matches::mqtt_delivery`]).
#[derive(Debug)]
pub struct MqttDelivery {
    /// min(publish QoS, the highest granted QoS), at most 2.
    pub qos: u8,
    /// The retain flag: the event stored a record and a subscription asked for Retain As
    /// Published.
    pub retain: bool,
    /// The Subscription Identifiers of the matching subscriptions.
    pub subscription_ids: Box<[u32]>,
    /// The shared subscription it came through, when only shared ones matched.
    pub shared_via: Option<Arc<Subscription>>,
}

impl Matches {
    /// How `event` goes to the session these subscriptions belong to (MQTT 5 §3.3.1.3,
    /// §3.3.4, §4.8.2).
    pub fn mqtt_delivery(&self, event: &Event) -> MqttDelivery {
        let granted = self.iter().map(|s| s.options.qos).max().unwrap_or(0);
        MqttDelivery {
            qos: event.qos.min(granted).min(2),
            retain: event.retained && self.iter().any(|s| s.options.retain_as_published),
            subscription_ids: self
                .iter()
                .filter_map(|s| s.options.subscription_id)
                .collect(),
            shared_via: self
                .iter()
                .all(|s| s.options.share.is_some())
                .then(|| self.first().cloned())
                .flatten(),
        }
    }
}

impl Deref for Matches {
    type Target = [Arc<Subscription>];

    fn deref(&self) -> &Self::Target {
        match &self.0 {
            MatchesRepr::One(sub) => std::slice::from_ref(sub),
            MatchesRepr::Many(subs) => subs,
        }
    }
}

impl From<Arc<Subscription>> for Matches {
    fn from(sub: Arc<Subscription>) -> Self {
        Self(MatchesRepr::One(sub))
    }
}

impl From<Vec<Arc<Subscription>>> for Matches {
    fn from(mut subs: Vec<Arc<Subscription>>) -> Self {
        match subs.len() {
            1 => Self(MatchesRepr::One(subs.swap_remove(0))),
            _ => Self(MatchesRepr::Many(subs.into_boxed_slice())),
        }
    }
}

impl FromIterator<Arc<Subscription>> for Matches {
    fn from_iter<I: IntoIterator<Item = Arc<Subscription>>>(iter: I) -> Self {
        Vec::from_iter(iter).into()
    }
}

impl<'a> IntoIterator for &'a Matches {
    type Item = &'a Arc<Subscription>;
    type IntoIter = std::slice::Iter<'a, Arc<Subscription>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::fmt::Debug for Matches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
