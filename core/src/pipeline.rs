//! The core handle and its request pipeline (DESIGN.md §2):
//! inbound layers → authorize → store → route + publish → per-session outbound queues.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::event::{CloseReason, Event, EventKind, Outbound};
use crate::layer::{InboundVerdict, Layer, OutboundVerdict};
use crate::path::Path;
use crate::payload::{Format, Payload, Record, now_ms};
use crate::request::{Consistency, Off, Request, Response, SetOptions};
use crate::router::{Router, Subscription};
use crate::session::{
    Delivery, OverflowPolicy, Session, SessionEntry, SessionId, SessionInfo, SessionQueue,
};
use crate::store::{Store, Write};

/// Settings of the core. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CoreConfig {
    /// The broker's name (reference: `describe` → `name`). Default `"pathmq"`.
    pub name: String,
    /// Capacity of each session's outbound queue, in messages. Default 1,024.
    pub session_queue: usize,
    /// What happens when a session's outbound queue is full. Default: drop the new message.
    pub overflow: OverflowPolicy,
    /// The largest payload accepted, in bytes. Default 1 MiB (1,048,576).
    pub max_payload: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            name: "pathmq".into(),
            session_queue: 1024,
            overflow: OverflowPolicy::DropNew,
            max_payload: 1024 * 1024,
        }
    }
}

/// Counters of the core, read with [`Core::stats`].
#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

/// A snapshot of the core's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live sessions.
    pub sessions: usize,
    /// Live subscriptions.
    pub subscriptions: usize,
    /// Events published since start.
    pub published: u64,
    /// Event deliveries queued for sessions since start.
    pub delivered: u64,
    /// Event deliveries dropped (full queues) since start.
    pub dropped: u64,
}

/// What a publication reached (reference: `onPublished` results).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishResult {
    /// Sessions the event was queued for.
    pub successful: u64,
    /// Sessions whose queue was full.
    pub failed: u64,
    /// Sessions whose subscriptions matched the path but not the event (event type, no
    /// local), or that were closing.
    pub skipped: u64,
}

struct Inner {
    config: CoreConfig,
    store: Arc<dyn Store>,
    router: Router,
    sessions: DashMap<SessionId, Arc<SessionEntry>>,
    client_ids: DashMap<String, SessionId>,
    layers: Vec<Arc<dyn Layer>>,
    counters: Counters,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// A handle to the broker core. Cheap to clone; every protocol, plugin and in-process
/// client holds one.
#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

/// Builds a [`Core`].
pub struct CoreBuilder {
    config: CoreConfig,
    store: Arc<dyn Store>,
    layers: Vec<Arc<dyn Layer>>,
}

impl CoreBuilder {
    /// Sets the configuration.
    pub fn config(mut self, config: CoreConfig) -> Self {
        self.config = config;
        self
    }

    /// Appends a layer to the middleware queue (inbound and outbound run in this order).
    pub fn layer(mut self, layer: impl Layer) -> Self {
        self.layers.push(Arc::new(layer));
        self
    }

    /// [`CoreBuilder::layer`] for a layer already in an `Arc`.
    pub fn layer_arc(mut self, layer: Arc<dyn Layer>) -> Self {
        self.layers.push(layer);
        self
    }

    /// Builds the core.
    pub fn build(self) -> Core {
        Core {
            inner: Arc::new(Inner {
                config: self.config,
                store: self.store,
                router: Router::new(),
                sessions: DashMap::new(),
                client_ids: DashMap::new(),
                layers: self.layers,
                counters: Counters::default(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }
}

impl Core {
    /// A builder over `store`, with the default configuration and no layers.
    pub fn builder(store: impl Store) -> CoreBuilder {
        Self::builder_arc(Arc::new(store))
    }

    /// [`Core::builder`] for a store already in an `Arc`.
    pub fn builder_arc(store: Arc<dyn Store>) -> CoreBuilder {
        CoreBuilder {
            config: CoreConfig::default(),
            store,
            layers: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Cancelled when the broker begins to shut down: accept loops stop, connections tell
    /// their clients and close.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The tracker of connection tasks; shutdown waits for them.
    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            sessions: self.inner.sessions.len(),
            subscriptions: self.inner.router.len(),
            published: c.published.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }

    /// Opens a session. With a client id, an existing session holding that id is ended
    /// with [`CloseReason::TakenOver`] (MQTT 3.1.4-2).
    pub fn open_session(
        &self,
        protocol: &'static str,
        peer: Option<std::net::SocketAddr>,
        client_id: Option<String>,
    ) -> Session {
        let id = SessionId::new();
        let (queue, rx) = SessionQueue::new(self.inner.config.session_queue);
        let entry = Arc::new(SessionEntry {
            info: SessionInfo {
                id,
                protocol,
                peer,
                client_id: client_id.clone(),
            },
            queue,
            subscriptions: Mutex::new(HashMap::new()),
        });
        self.inner.sessions.insert(id, entry.clone());
        if let Some(cid) = client_id
            && let Some(old) = self.inner.client_ids.insert(cid.clone(), id)
            && let Some(old) = self.inner.sessions.get(&old)
        {
            tracing::info!(client_id = %cid, old_session = %old.info.id, "client id taken over");
            old.queue.close(CloseReason::TakenOver);
        }
        tracing::info!(session = %id, protocol, "session attached");
        Session::new(self.clone(), entry, rx)
    }

    /// Ends a session: removes its subscriptions, its client id, and itself.
    pub(crate) fn close_session(&self, entry: &SessionEntry) {
        let subs: Vec<_> = entry.subscriptions.lock().drain().map(|(_, s)| s).collect();
        for sub in &subs {
            self.inner.router.remove(sub);
        }
        if let Some(cid) = &entry.info.client_id {
            self.inner
                .client_ids
                .remove_if(cid, |_, v| *v == entry.info.id);
        }
        self.inner.sessions.remove(&entry.info.id);
        tracing::info!(session = %entry.info.id, protocol = entry.info.protocol, "session detached");
    }

    /// Ends every session with [`CloseReason::Shutdown`] and stops accepting connections.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.cancel();
        for entry in self.inner.sessions.iter() {
            entry.queue.close(CloseReason::Shutdown);
        }
    }

    pub(crate) async fn outbound(
        &self,
        info: &SessionInfo,
        message: &mut Outbound,
    ) -> OutboundVerdict {
        for layer in &self.inner.layers {
            if layer.outbound(info, message).await == OutboundVerdict::Drop {
                return OutboundVerdict::Drop;
            }
        }
        OutboundVerdict::Continue
    }

    pub(crate) async fn handle(
        &self,
        session: &Session,
        mut request: Request,
    ) -> Result<Response, Error> {
        for layer in &self.inner.layers {
            match layer.inbound(&session.entry.info, &mut request).await {
                InboundVerdict::Continue => {}
                InboundVerdict::Respond(response) => return Ok(response),
                InboundVerdict::Reject(error) => return Err(error),
            }
        }
        // Authorization hooks in here once security lands (DESIGN.md §7).
        match request {
            Request::Set {
                path,
                payload,
                options,
            } => self.set(session, path, payload, options).await,
            Request::Get { target } => {
                if target.has_wildcard() {
                    Ok(Response::Records(self.inner.store.scan(&target).await?))
                } else {
                    let path = Path::parse(target.as_str())?;
                    Ok(Response::Record(self.inner.store.get(&path).await?))
                }
            }
            Request::Count { target } => {
                Ok(Response::Count(self.inner.store.count(&target).await?))
            }
            Request::Remove {
                target,
                meta,
                event_id,
            } => {
                let removed = self.inner.store.remove(&target).await?;
                let now = now_ms();
                let mut paths = removed.clone();
                // An exact remove always tells its subscribers, even when nothing was
                // there: an MQTT empty retained PUBLISH is delivered as an empty message.
                if paths.is_empty() && !target.has_wildcard() {
                    paths.push(Path::parse(target.as_str())?);
                }
                for path in paths {
                    let empty = Payload {
                        format: Format::Text,
                        bytes: bytes::Bytes::new(),
                    };
                    let event = Event::new(
                        EventKind::Remove,
                        path,
                        empty,
                        now,
                        now,
                        Some(session.id()),
                        event_id,
                        Consistency::Transactional,
                        meta.clone(),
                        0,
                    );
                    self.publish(Arc::new(event));
                }
                Ok(Response::Removed(removed.len() as u64))
            }
            Request::On { pattern, options } => {
                let sub = Arc::new(Subscription {
                    id: self.inner.router.next_id(),
                    session: session.id(),
                    pattern,
                    options,
                    queue: session.entry.queue.clone(),
                });
                session
                    .entry
                    .subscriptions
                    .lock()
                    .insert(sub.id, sub.clone());
                self.inner.router.insert(sub.clone());
                Ok(Response::Subscribed(sub.id))
            }
            Request::Off(off) => {
                let removed: Vec<Arc<Subscription>> = {
                    let mut subs = session.entry.subscriptions.lock();
                    let ids: Vec<_> = subs
                        .values()
                        .filter(|s| match &off {
                            Off::Id(id) => s.id == *id,
                            Off::Pattern(p) => {
                                s.pattern.as_str() == p
                                    || s.options.channel.as_deref() == Some(p.as_str())
                            }
                            Off::All => true,
                        })
                        .map(|s| s.id)
                        .collect();
                    ids.iter().filter_map(|id| subs.remove(id)).collect()
                };
                for sub in &removed {
                    self.inner.router.remove(sub);
                }
                Ok(Response::Unsubscribed(
                    removed.iter().map(|s| s.id).collect(),
                ))
            }
        }
    }

    async fn set(
        &self,
        session: &Session,
        path: Path,
        payload: Payload,
        options: SetOptions,
    ) -> Result<Response, Error> {
        let limit = self.inner.config.max_payload;
        if payload.bytes.len() > limit {
            return Err(Error::TooLarge {
                what: "payload",
                size: payload.bytes.len(),
                limit,
            });
        }
        let record = if options.no_store {
            let now = now_ms();
            Record {
                path,
                payload,
                created: now,
                modified: now,
                modified_by: None,
            }
        } else {
            let write = Write {
                path,
                payload,
                merge: options.merge,
                modified_by: None,
            };
            self.inner.store.set(write).await?
        };
        let published = !options.no_publish;
        if published {
            let event = Event::new(
                EventKind::Set,
                record.path.clone(),
                record.payload.clone(),
                record.created,
                record.modified,
                Some(session.id()),
                options.event_id,
                options.consistency,
                options.meta,
                options.qos,
            );
            self.publish(Arc::new(event));
        }
        Ok(Response::Set { record, published })
    }

    /// Routes an event to every matching subscription's session queue, once per session
    /// with all of that session's matching subscriptions. Never waits: a full queue is
    /// handled by the overflow policy.
    pub fn publish(&self, event: Arc<Event>) -> PublishResult {
        let counters = &self.inner.counters;
        counters.published.fetch_add(1, Ordering::Relaxed);
        let mut matches = Vec::new();
        self.inner.router.lookup(&event.path, &mut matches);
        let mut result = PublishResult::default();
        if matches.is_empty() {
            return result;
        }
        matches.sort_unstable_by_key(|s| (s.session, s.id));
        for group in matches.chunk_by(|a, b| a.session == b.session) {
            let wanted: Vec<Arc<Subscription>> = group
                .iter()
                .filter(|s| s.options.filter.accepts(event.kind))
                .filter(|s| !(s.options.no_local && event.origin == Some(s.session)))
                .cloned()
                .collect();
            if wanted.is_empty() {
                result.skipped += 1;
                continue;
            }
            let queue = wanted[0].queue.clone();
            let message = Outbound::Event {
                event: event.clone(),
                subscriptions: wanted,
            };
            match queue.deliver(message, self.inner.config.overflow) {
                Delivery::Queued => {
                    result.successful += 1;
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Delivery::Dropped => {
                    result.failed += 1;
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Delivery::Closed => result.skipped += 1,
            }
        }
        result
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
