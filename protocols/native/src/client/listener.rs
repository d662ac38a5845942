//! Listeners: what `on` returns ([`Subscription`], a stream of [`Event`]s) and the
//! registry that routes events to them ([`Hub`]), shared by both clients.
//!
//! Each listener is one subscription on the broker (its id there is the `referenceId`
//! of `off`, wire doc §4), known to the client by a [`ListenerId`] that stays the same
//! when a reconnect subscribes it again under a new broker id. A remote client routes an
//! event by its `_meta.channel` to every listener of that channel (the broker sends one
//! frame per channel, wire doc §6), checking each listener's own depth; an in-process
//! client routes the core's events the same way, by the channel of the subscriptions they
//! matched, so that both clients deliver alike.
//!
//! Delivery never waits: each listener has a bounded queue (`listener_buffer` events);
//! when it is full the event is dropped for that listener, counted
//! ([`Subscription::dropped`]) and logged, so that a slow consumer never stalls the
//! connection (STYLE 13).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::{Notify, mpsc};

use super::ClientError;
use super::event::Event;
use super::item::Item;
use super::options::{OnOptions, channel, effective_depth};

/// A listener's id on the client, for [`DataApi::off`](super::DataApi::off). It stays
/// the same across reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u64);

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A broker subscription to remove because its listener is gone (dropped, or its count
/// reached): `off` with `referenceId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Doomed {
    /// The listener's channel.
    pub(crate) channel: String,
    /// The subscription's id on the broker.
    pub(crate) server_id: u64,
}

/// One live listener.
#[derive(Debug)]
pub(crate) struct Listener {
    /// The path it was made with.
    pub(crate) path: String,
    /// `/<ALL|SET|REMOVE>@<path>`.
    pub(crate) channel: String,
    /// Its options, for subscribing again after a reconnect.
    pub(crate) options: OnOptions,
    /// Events left before it ends (`None`: no count).
    remaining: Option<u64>,
    /// Its subscription id on the broker, once known.
    pub(crate) server_id: Option<u64>,
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
}

impl Listener {
    /// Queues `event` without waiting. `true` when the listener is finished: its count
    /// is reached or its [`Subscription`] is gone.
    fn deliver(&mut self, event: Event) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        channel = %self.channel,
                        path = %event.meta.path,
                        dropped,
                        "listener queue full: dropping events for a slow listener"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return true,
        }
        match &mut self.remaining {
            Some(left) => {
                *left = left.saturating_sub(1);
                *left == 0
            }
            None => false,
        }
    }
}

/// The listeners of one client, shared by the client's handle, its [`Subscription`]s
/// and its connection (or event) task. Its lock is never held across an `.await`.
#[derive(Debug)]
pub(crate) struct Hub {
    registry: Mutex<Registry>,
    /// Signalled when there are [`Doomed`] subscriptions to remove.
    pub(crate) wake: Notify,
    /// Each listener's queue capacity, in events.
    buffer: usize,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    closed: bool,
    listeners: HashMap<ListenerId, Listener>,
    by_channel: HashMap<String, Vec<ListenerId>>,
    doomed: Vec<Doomed>,
}

impl Registry {
    fn remove(&mut self, id: ListenerId) -> Option<Listener> {
        let listener = self.listeners.remove(&id)?;
        if let Some(ids) = self.by_channel.get_mut(&listener.channel) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_channel.remove(&listener.channel);
            }
        }
        Some(listener)
    }

    /// Removes finished listeners and dooms their broker subscriptions; `true` if any.
    fn finish(&mut self, finished: Vec<ListenerId>) -> bool {
        let mut doomed = false;
        for id in finished {
            if let Some(Listener {
                channel,
                server_id: Some(server_id),
                ..
            }) = self.remove(id)
            {
                self.doomed.push(Doomed { channel, server_id });
                doomed = true;
            }
        }
        doomed
    }
}

impl Hub {
    /// An empty hub whose listeners queue up to `buffer` events each (at least 1).
    pub(crate) fn new(buffer: usize) -> Arc<Self> {
        Arc::new(Self {
            registry: Mutex::new(Registry::default()),
            wake: Notify::new(),
            buffer: buffer.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while routing leaves the maps consistent enough to go on.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a listener on `path` and returns its stream, which gets events from now on.
    ///
    /// # Errors
    /// [`ClientError::Closed`] once the client is closed.
    pub(crate) fn register(
        self: &Arc<Self>,
        path: &str,
        options: &OnOptions,
    ) -> Result<Subscription, ClientError> {
        let (tx, rx) = mpsc::channel(self.buffer);
        let dropped = Arc::new(AtomicU64::new(0));
        let channel = channel(path, options.event_type);
        let mut registry = self.lock();
        if registry.closed {
            return Err(ClientError::Closed);
        }
        registry.next += 1;
        let id = ListenerId(registry.next);
        registry.listeners.insert(
            id,
            Listener {
                path: path.to_owned(),
                channel: channel.clone(),
                options: options.clone(),
                remaining: (options.count > 0).then_some(options.count),
                server_id: None,
                tx,
                dropped: dropped.clone(),
            },
        );
        registry
            .by_channel
            .entry(channel.clone())
            .or_default()
            .push(id);
        Ok(Subscription {
            id,
            channel,
            initial: Vec::new(),
            emitted: VecDeque::new(),
            rx,
            dropped,
            hub: self.clone(),
        })
    }

    /// Records the broker id of listener `id` (on channel `channel`). When the listener
    /// is gone meanwhile, that broker subscription is doomed instead.
    pub(crate) fn set_server_id(&self, id: ListenerId, channel: &str, server_id: u64) {
        let mut registry = self.lock();
        match registry.listeners.get_mut(&id) {
            Some(listener) => listener.server_id = Some(server_id),
            None => {
                registry.doomed.push(Doomed {
                    channel: channel.to_owned(),
                    server_id,
                });
                self.wake.notify_one();
            }
        }
    }

    /// Delivers an event that came on `channel` to the listeners of that channel whose
    /// depth it is within; those finished are removed and their subscriptions doomed.
    pub(crate) fn route_channel(&self, event: Event) {
        let mut registry = self.lock();
        let Some(ids) = registry.by_channel.get(&event.meta.channel).cloned() else {
            tracing::debug!(channel = %event.meta.channel, "event for no listener");
            return;
        };
        let mut finished = Vec::new();
        let last = ids.len().saturating_sub(1);
        let mut event = Some(event);
        for (i, id) in ids.into_iter().enumerate() {
            let Some(listener) = registry.listeners.get_mut(&id) else {
                continue;
            };
            let Some(next) = event.as_ref() else { break };
            let depth = effective_depth(&listener.path, listener.options.depth);
            if !within_depth(&listener.path, depth, &next.meta.path) {
                continue;
            }
            let next = if i == last {
                event.take()
            } else {
                event.clone()
            };
            if let Some(next) = next
                && listener.deliver(next)
            {
                finished.push(id);
            }
        }
        if registry.finish(finished) {
            self.wake.notify_one();
        }
    }

    /// Removes listener `id` (its stream ends); `None` when there is none.
    pub(crate) fn remove(&self, id: ListenerId) -> Option<Listener> {
        self.lock().remove(id)
    }

    /// Removes every listener `matches` picks.
    pub(crate) fn remove_where(&self, mut matches: impl FnMut(&Listener) -> bool) -> Vec<Listener> {
        let mut registry = self.lock();
        let ids: Vec<ListenerId> = registry
            .listeners
            .iter()
            .filter(|(_, listener)| matches(listener))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| registry.remove(id))
            .collect()
    }

    /// Removes listener `id` because its [`Subscription`] was dropped, dooming its
    /// broker subscription.
    fn forget(&self, id: ListenerId) {
        let mut registry = self.lock();
        if registry.finish(vec![id]) {
            self.wake.notify_one();
        }
    }

    /// The broker subscriptions to remove, taken.
    pub(crate) fn take_doomed(&self) -> Vec<Doomed> {
        std::mem::take(&mut self.lock().doomed)
    }

    /// Forgets every broker id: the session they belonged to is gone (connection lost).
    pub(crate) fn reset_server_ids(&self) {
        let mut registry = self.lock();
        registry.doomed.clear();
        for listener in registry.listeners.values_mut() {
            listener.server_id = None;
        }
    }

    /// Every live listener: (id, path, options), to subscribe again.
    pub(crate) fn snapshot(&self) -> Vec<(ListenerId, String, OnOptions)> {
        let registry = self.lock();
        let mut all: Vec<_> = registry
            .listeners
            .iter()
            .map(|(id, l)| (*id, l.path.clone(), l.options.clone()))
            .collect();
        all.sort_by_key(|(id, _, _)| *id);
        all
    }

    /// The client is closed: every listener is removed (their streams end) and no new
    /// one is accepted.
    pub(crate) fn close(&self) {
        let mut registry = self.lock();
        registry.closed = true;
        registry.listeners.clear();
        registry.by_channel.clear();
        registry.doomed.clear();
    }

    /// Whether the client is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// Whether an event at `event_path` is within `depth` levels below the prefix of a
/// listener on `listener_path` ending `/**` (reference: VARIABLE DEPTH SUBSCRIPTIONS).
/// Always for other listeners and when there is no depth. The broker sends one frame per
/// channel, with the smallest depth among the channel's subscriptions: each listener
/// checks its own.
fn within_depth(listener_path: &str, depth: Option<usize>, event_path: &str) -> bool {
    let (Some(depth), Some(prefix)) = (depth, listener_path.strip_suffix("**")) else {
        return true;
    };
    let segments = |path: &str| match path.trim_end_matches('/') {
        "" => 0,
        path => path.strip_prefix('/').unwrap_or(path).split('/').count(),
    };
    segments(event_path).saturating_sub(segments(prefix)) <= depth
}

/// `text` matched against `pattern`, where `*` matches any run of characters (the
/// happn-3 client's `offPath` match).
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut tail) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or_default();
    for part in parts {
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

/// A listener's events, from [`DataApi::on`](super::DataApi::on): a
/// [`Stream`](futures_util::Stream) of [`Event`]s (or [`Subscription::recv`]).
///
/// The stream ends when the listener ends: its count is reached, `off`, `off_path` or
/// `off_all` removed it, or the client closed. It stays open across reconnects. Dropping
/// it removes the listener and its subscription on the broker.
pub struct Subscription {
    id: ListenerId,
    channel: String,
    initial: Vec<Item>,
    emitted: VecDeque<Event>,
    rx: mpsc::Receiver<Event>,
    dropped: Arc<AtomicU64>,
    hub: Arc<Hub>,
}

impl Subscription {
    /// The listener's id, for `off`.
    pub fn id(&self) -> ListenerId {
        self.id
    }

    /// The listener's channel, `/<ALL|SET|REMOVE>@<path>`.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The records the path matched when subscribing, with `initial_callback`, ordered
    /// by modification time, then path (reference: EVENT DATA); empty otherwise.
    pub fn initial(&self) -> &[Item] {
        &self.initial
    }

    /// How many events were dropped because this stream was not read fast enough.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The next event; `None` once the listener has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        if let Some(event) = self.emitted.pop_front() {
            return Some(event);
        }
        self.rx.recv().await
    }

    /// Sets the initial values: kept for [`Subscription::initial`] with `callback`, and
    /// queued as the first events with `emit`.
    pub(crate) fn set_initial(&mut self, items: Vec<Item>, callback: bool, emit: bool) {
        if emit {
            let channel = &self.channel;
            self.emitted = items
                .iter()
                .cloned()
                .map(|item| Event::initial(item, channel))
                .collect();
        }
        if callback {
            self.initial = items;
        }
    }
}

impl futures_util::Stream for Subscription {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        if let Some(event) = this.emitted.pop_front() {
            return Poll::Ready(Some(event));
        }
        this.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.forget(self.id);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::event::EventMeta;
    use pathmq_core::{EventFilter, EventKind};
    use serde_json::{Map, Value};

    fn event(channel: &str, path: &str) -> Event {
        Event {
            data: Value::Null,
            meta: EventMeta {
                kind: EventKind::Set,
                path: path.into(),
                channel: channel.into(),
                created: None,
                modified: None,
                session_id: None,
                consistency: None,
                publication_id: None,
                depth: None,
                custom: Map::new(),
                initial: false,
            },
        }
    }

    #[test]
    fn depth_counts_levels_below_the_prefix() {
        let cases = [
            ("/a/**", Some(1), "/a/b", true),
            ("/a/**", Some(1), "/a/b/c", false),
            ("/a/**", Some(2), "/a/b/c", true),
            ("/**", Some(1), "/x", true),
            ("/**", Some(1), "/x/y", false),
            ("/a/*/**", Some(1), "/a/b/c", true),
            ("/a/*/**", Some(1), "/a/b/c/d", false),
            ("/a/**", None, "/a/b/c/d", true),
            ("/a/b", Some(1), "/a/b", true),
        ];
        for (listener, depth, path, within) in cases {
            assert_eq!(
                within_depth(listener, depth, path),
                within,
                "{listener} {path}"
            );
        }
    }

    #[test]
    fn wildcards_match_any_run() {
        let cases = [
            ("/a/b", "/a/b", true),
            ("/a/b", "/a/c", false),
            ("/a/*", "/a/b/c", true),
            ("*", "/anything", true),
            ("/a/*/c", "/a/b/c", true),
            ("/a/*/c", "/a/b/d", false),
            ("/a*b*", "/axxbyy", true),
            ("*c", "/ab", false),
        ];
        for (pattern, text, matched) in cases {
            assert_eq!(wildcard_match(pattern, text), matched, "{pattern} {text}");
        }
    }

    #[tokio::test]
    async fn listeners_share_a_channel_and_end_at_their_count() {
        let hub = Hub::new(8);
        let mut all = hub.register("/a/*", &OnOptions::new()).unwrap();
        let mut once = hub.register("/a/*", &OnOptions::new().count(1)).unwrap();
        hub.set_server_id(once.id(), once.channel(), 7);
        let set_only = hub
            .register("/a/*", &OnOptions::new().event_type(EventFilter::Set))
            .unwrap();
        assert_ne!(all.channel(), set_only.channel());

        hub.route_channel(event("/ALL@/a/*", "/a/1"));
        hub.route_channel(event("/ALL@/a/*", "/a/2"));
        assert_eq!(all.recv().await.unwrap().meta.path, "/a/1");
        assert_eq!(all.recv().await.unwrap().meta.path, "/a/2");
        assert_eq!(once.recv().await.unwrap().meta.path, "/a/1");
        assert!(once.recv().await.is_none(), "ended at its count");
        assert_eq!(
            hub.take_doomed(),
            [Doomed {
                channel: "/ALL@/a/*".into(),
                server_id: 7
            }]
        );

        hub.set_server_id(all.id(), all.channel(), 8);
        let id = all.id();
        drop(all);
        assert_eq!(hub.take_doomed()[0].server_id, 8);
        assert!(hub.remove(id).is_none());
        hub.close();
        assert!(matches!(
            hub.register("/b", &OnOptions::new()),
            Err(ClientError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_full_listener_drops_and_counts() {
        let hub = Hub::new(1);
        let mut sub = hub.register("/a", &OnOptions::new()).unwrap();
        hub.route_channel(event("/ALL@/a", "/a"));
        hub.route_channel(event("/ALL@/a", "/a"));
        assert_eq!(sub.dropped(), 1);
        assert!(sub.recv().await.is_some());
    }
}
