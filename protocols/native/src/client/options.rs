//! Options of the client calls: [`SetOptions`], [`GetOptions`], [`RemoveOptions`] and
//! [`OnOptions`] (`reference/happn-3.md` SET, GET, SEARCH, DELETE / REMOVE, EVENTS;
//! `reference/happn-3-wire.md` §4).
//!
//! Each is `Default` plus chained setters, so that fields can be added later:
//! `SetOptions::new().merge(true)`. The fields are public for reading and for setting on
//! a value one already has.

use pathmq_core::{Consistency, EventFilter};
use serde_json::{Map, Value};

/// Options of `set` (reference: SET, MERGING, TAGGING, EVENTS WITH CUSTOM META).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SetOptions {
    /// Shallow-merge the data into the stored object instead of replacing it.
    pub merge: bool,
    /// Store without publishing an event.
    pub no_publish: bool,
    /// The consistency level (reference: CONSISTENCY); `None` is the broker's default,
    /// TRANSACTIONAL.
    pub consistency: Option<Consistency>,
    /// Custom meta, copied into the `_meta` of the events this set publishes.
    pub meta: Option<Map<String, Value>>,
    /// Also store a snapshot of the result at `<path>/<tag>` (reference: TAGGING).
    pub tag: Option<String>,
    /// Only these sessions (ids as [`EventMeta::session_id`](super::EventMeta) shows
    /// them) receive the event (reference: TARGETING EVENTS).
    pub target_clients: Option<Vec<String>>,
    /// Publish without storing (`publish`).
    pub(crate) no_store: bool,
    /// Store at a new unique child of the path (`set_sibling`).
    pub(crate) sibling: bool,
    /// Add this to a gauge instead of storing the data (`increment`).
    pub(crate) increment: Option<f64>,
}

impl SetOptions {
    /// The defaults: replace, publish, the broker's consistency, no meta, no tag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`SetOptions::merge`].
    pub fn merge(mut self, merge: bool) -> Self {
        self.merge = merge;
        self
    }

    /// Sets [`SetOptions::no_publish`].
    pub fn no_publish(mut self, no_publish: bool) -> Self {
        self.no_publish = no_publish;
        self
    }

    /// Sets [`SetOptions::consistency`].
    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = Some(consistency);
        self
    }

    /// Sets [`SetOptions::meta`].
    pub fn meta(mut self, meta: Map<String, Value>) -> Self {
        self.meta = Some(meta);
        self
    }

    /// Sets [`SetOptions::tag`].
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Sets [`SetOptions::target_clients`].
    pub fn target_clients<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.target_clients = Some(ids.into_iter().map(Into::into).collect());
        self
    }
}

/// Options of `get_many` and `count`: mongo-style search criteria and query options
/// (reference: SEARCH). On the wire `{criteria, options: {fields, sort, limit, skip}}`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct GetOptions {
    /// Criteria the records must meet, e.g. `{"genre": "horror"}`.
    pub criteria: Option<Value>,
    /// Projection, sort and paging.
    pub options: QueryOptions,
}

/// Projection, sort and paging of a search (reference: SEARCH).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct QueryOptions {
    /// The fields to return, e.g. `{"name": 1}`.
    pub fields: Option<Value>,
    /// The order, e.g. `{"_meta.created": -1}`.
    pub sort: Option<Value>,
    /// At most this many records.
    pub limit: Option<u64>,
    /// Skip this many records first.
    pub skip: Option<u64>,
}

impl GetOptions {
    /// No criteria, no query options: every record the path matches, ordered by path.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`GetOptions::criteria`].
    pub fn criteria(mut self, criteria: Value) -> Self {
        self.criteria = Some(criteria);
        self
    }

    /// Sets [`QueryOptions::fields`].
    pub fn fields(mut self, fields: Value) -> Self {
        self.options.fields = Some(fields);
        self
    }

    /// Sets [`QueryOptions::sort`].
    pub fn sort(mut self, sort: Value) -> Self {
        self.options.sort = Some(sort);
        self
    }

    /// Sets [`QueryOptions::limit`].
    pub fn limit(mut self, limit: u64) -> Self {
        self.options.limit = Some(limit);
        self
    }

    /// Sets [`QueryOptions::skip`].
    pub fn skip(mut self, skip: u64) -> Self {
        self.options.skip = Some(skip);
        self
    }

    /// Whether this asks for a search (anything but the defaults).
    pub fn is_search(&self) -> bool {
        *self != Self::default()
    }
}

/// Options of `remove_many` (reference: DELETE / REMOVE, EVENTS WITH CUSTOM META). On the
/// wire `{criteria?, meta?}`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RemoveOptions {
    /// Criteria the records must meet to be removed, e.g. `{"surname": "Emslie"}`, as in
    /// a search ([`GetOptions::criteria`]); `None` (or `{}`) removes every record the
    /// path matches.
    pub criteria: Option<Value>,
    /// Custom meta, copied into the `_meta` of the remove events (reserved keys are
    /// dropped by the broker).
    pub meta: Option<Map<String, Value>>,
}

impl RemoveOptions {
    /// No criteria, no meta: every record the path matches.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`RemoveOptions::criteria`].
    pub fn criteria(mut self, criteria: Value) -> Self {
        self.criteria = Some(criteria);
        self
    }

    /// Sets [`RemoveOptions::meta`].
    pub fn meta(mut self, meta: Map<String, Value>) -> Self {
        self.meta = Some(meta);
        self
    }
}

/// Options of `on` (reference: EVENTS, EVENT DATA, MERGE SUBSCRIPTIONS, VARIABLE DEPTH
/// SUBSCRIPTIONS).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct OnOptions {
    /// Which events: all (default), sets or removes. Names the channel:
    /// `/<ALL|SET|REMOVE>@<path>`.
    pub event_type: EventFilter,
    /// The listener ends after this many events; 0 (default) means never.
    pub count: u64,
    /// The records the path matches now come with the answer
    /// ([`Subscription::initial`](super::Subscription::initial)).
    pub initial_callback: bool,
    /// The records the path matches now are the first events of the stream, marked
    /// [`EventMeta::initial`](super::EventMeta::initial).
    pub initial_emit: bool,
    /// For a path ending `/**`: how many levels below the prefix are delivered; `None`
    /// is 5, the reference's default variable depth.
    pub depth: Option<usize>,
    /// Receive only the fields a merge `set` sent, not the whole merged record.
    ///
    /// Listeners on one channel (same path and event type) share the broker's events
    /// (wire doc §6): the channel's first listener decides whether its events carry the
    /// merge input. Give a merge listener a channel of its own, e.g. with
    /// `event_type(EventFilter::Set)` as the reference's example does.
    pub merge: bool,
    /// Custom meta kept with the subscription on the broker.
    pub meta: Option<Map<String, Value>>,
}

impl OnOptions {
    /// The defaults: all events, no count, no initial values, every depth.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`OnOptions::event_type`].
    pub fn event_type(mut self, event_type: EventFilter) -> Self {
        self.event_type = event_type;
        self
    }

    /// Sets [`OnOptions::count`].
    pub fn count(mut self, count: u64) -> Self {
        self.count = count;
        self
    }

    /// Sets [`OnOptions::initial_callback`].
    pub fn initial_callback(mut self, on: bool) -> Self {
        self.initial_callback = on;
        self
    }

    /// Sets [`OnOptions::initial_emit`].
    pub fn initial_emit(mut self, on: bool) -> Self {
        self.initial_emit = on;
        self
    }

    /// Sets [`OnOptions::depth`].
    pub fn depth(mut self, depth: usize) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Sets [`OnOptions::merge`].
    pub fn merge(mut self, merge: bool) -> Self {
        self.merge = merge;
        self
    }

    /// Sets [`OnOptions::meta`].
    pub fn meta(mut self, meta: Map<String, Value>) -> Self {
        self.meta = Some(meta);
        self
    }
}

/// The depth a listener on `path` reaches, by the broker's rule.
pub(crate) use crate::subscribe::effective_depth;

/// The channel a listener on `path` is known by, on the wire and in event meta:
/// `/<ALL|SET|REMOVE>@<path>` (`/ALL@*` for everything; wire doc §4).
pub(crate) fn channel(path: &str, event_type: EventFilter) -> String {
    format!("/{}@{path}", event_type.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn setters_chain_and_searches_are_told_apart() {
        let set = SetOptions::new().merge(true).tag("t");
        assert!(set.merge && set.tag.as_deref() == Some("t") && !set.no_publish);
        assert!(!GetOptions::new().is_search());
        assert!(GetOptions::new().limit(3).is_search());
        assert!(GetOptions::new().criteria(json!({"a": 1})).is_search());
        let remove = RemoveOptions::new().criteria(json!({"a": 1}));
        assert_eq!(
            (remove.criteria, remove.meta),
            (Some(json!({"a": 1})), None)
        );
        let on = OnOptions::new()
            .event_type(EventFilter::Set)
            .count(1)
            .depth(2);
        assert_eq!((on.count, on.depth), (1, Some(2)));
        assert_eq!(channel("/a/*", on.event_type), "/SET@/a/*");
        assert_eq!(channel("*", EventFilter::All), "/ALL@*");
        assert_eq!(effective_depth("/a/**", None), Some(5));
        assert_eq!(effective_depth("/a/**", Some(2)), Some(2));
        assert_eq!(effective_depth("/a/*", None), None);
        assert_eq!(effective_depth("**", Some(0)), Some(5));
    }
}
