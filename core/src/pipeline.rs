//! The core handle and its request pipeline (DESIGN.md §2):
//! inbound layers → authorize → store → route + publish → per-session outbound queues.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::event::{CloseReason, Outbound};
use crate::layer::{InboundVerdict, Layer, LayerContext, OutboundVerdict};
use crate::path::Path;
use crate::request::{Off, Request, Response};
use crate::reserved::{drop_reserved, nested_read, reaches_reserved, refuse_reserved};
use crate::router::{Router, Subscription};
use crate::security::Security;
use crate::session::{OverflowPolicy, Session, SessionEntry, SessionId, SessionInfo, SessionQueue};
use crate::stats::{COUNTED_PROTOCOLS, Counters, ProtocolSlot, ProtocolStats, Stats};
use crate::store::Store;
use crate::sys::SysValues;

/// Settings of the core. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CoreConfig {
    /// The broker's name (reference: `describe` → `name`). Default `"pathmq"`.
    pub name: String,
    /// Capacity of each session's outbound queue, in messages. Default 10,000 (slots use memory only while filled: about 64 bytes each plus the event, whose payload all recipients share).
    pub session_queue: usize,
    /// Capacity of each session's outbound queue in payload bytes (its messages'
    /// payloads; shared payloads count for each queue); 0: no byte limit. Default 0.
    pub session_queue_bytes: usize,
    /// What happens to a message for a session whose queue is twice full, or stalled (a
    /// parked durable session's: beyond its limits). Default: drop the new message.
    pub overflow: OverflowPolicy,
    /// The largest payload accepted, in bytes. Default 1 MiB (1,048,576).
    pub max_payload: usize,
    /// The most subscriptions one session may hold; `on` / SUBSCRIBE beyond it is
    /// refused (400). Default 10,000.
    pub max_subscriptions: usize,
    /// How long a publisher is held back, at most, while a subscriber's queue is beyond
    /// its capacity; then the queue counts as stalled and drops until it drains.
    /// Default 5 s.
    pub backpressure_timeout: std::time::Duration,
    /// How often the `$SYS/broker/...` statistics topics are published ([`crate::sys`]);
    /// zero: never. Default zero here (a bare core publishes nothing on its own); the
    /// broker's `mqtt.sys_interval_s` sets it (10 s by default there, as Mosquitto).
    pub sys_interval: std::time::Duration,
    /// How long a publication with consistency ACKNOWLEDGED waits for its recipients'
    /// acknowledgements; then its writer is told which did not answer. Default 30 s.
    pub ack_timeout: std::time::Duration,
    /// The most QoS 1/2 messages a parked durable session (MQTT, no connection) queues;
    /// beyond it new messages are dropped and counted. Default 1,000 (Mosquitto's
    /// `max_queued_messages`).
    pub max_queued_messages: usize,
    /// The most payload bytes a parked durable session queues; 0: no byte limit.
    /// Default 0 (as Mosquitto's `max_queued_bytes`).
    pub max_queued_bytes: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            name: "pathmq".into(),
            session_queue: 10_000,
            session_queue_bytes: 0,
            overflow: OverflowPolicy::DropNew,
            max_payload: 1024 * 1024,
            max_subscriptions: 10_000,
            backpressure_timeout: std::time::Duration::from_secs(5),
            sys_interval: std::time::Duration::ZERO,
            ack_timeout: std::time::Duration::from_secs(30),
            max_queued_messages: 1000,
            max_queued_bytes: 0,
        }
    }
}

impl CoreConfig {
    /// A live session's queue limits.
    pub(crate) fn queue_limits(&self) -> crate::session::QueueLimits {
        crate::session::QueueLimits {
            messages: self.session_queue,
            bytes: self.session_queue_bytes,
        }
    }

    /// A parked durable session's queue limits.
    pub(crate) fn parked_limits(&self) -> crate::session::QueueLimits {
        crate::session::QueueLimits {
            messages: self.max_queued_messages,
            bytes: self.max_queued_bytes,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) config: CoreConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) router: Router,
    sessions: DashMap<SessionId, Arc<SessionEntry>>,
    client_ids: DashMap<String, SessionId>,
    layers: Vec<Arc<dyn Layer>>,
    security: Option<Arc<Security>>,
    pub(crate) counters: Counters,
    /// When the core was built: the broker's uptime counts from here.
    started: std::time::Instant,
    /// The latest `$SYS` values, which new `$SYS` subscribers get as retained messages.
    pub(crate) sys: SysValues,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    pub(crate) acks: crate::acks::Acks,
    /// Round-robin turns of shared subscriptions.
    pub(crate) share_turns: crate::share::Turns,
}

/// A handle to the broker core. Cheap to clone; every protocol, plugin and in-process
/// client holds one.
#[derive(Clone)]
pub struct Core {
    pub(crate) inner: Arc<Inner>,
}

/// Builds a [`Core`].
pub struct CoreBuilder {
    config: CoreConfig,
    store: Arc<dyn Store>,
    layers: Vec<Arc<dyn Layer>>,
    security: Option<Arc<Security>>,
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

    /// Switches security on (DESIGN.md §7): every request then needs a session that
    /// logged in ([`Session::set_identity`]) and whose grants allow it.
    pub fn security(mut self, security: Arc<Security>) -> Self {
        self.security = Some(security);
        self
    }

    /// [`CoreBuilder::layer`] for a layer already in an `Arc`.
    pub fn layer_arc(mut self, layer: Arc<dyn Layer>) -> Self {
        self.layers.push(layer);
        self
    }

    /// Builds the core. With security, inside a tokio runtime, it also starts following
    /// the directory's changes, so live sessions' grants stay current. With a
    /// [`CoreConfig::sys_interval`], inside a tokio runtime, it starts publishing the
    /// `$SYS` topics: a task in [`Core::tasks`] that ends when the shutdown token is
    /// cancelled ([`Core::begin_shutdown`]) or the core is dropped.
    pub fn build(self) -> Core {
        let core = self.build_core();
        let in_runtime = tokio::runtime::Handle::try_current().is_ok();
        if core.inner.security.is_some() && in_runtime {
            // On the core's tracker: shutdown waits for it (it ends when the token is
            // cancelled).
            core.tasks()
                .spawn(crate::security::follow_changes(core.clone()));
        }
        if !core.inner.config.sys_interval.is_zero() && in_runtime {
            crate::sys::spawn(&core);
        }
        core
    }

    fn build_core(self) -> Core {
        Core {
            inner: Arc::new(Inner {
                config: self.config,
                store: self.store,
                router: Router::new(),
                sessions: DashMap::new(),
                client_ids: DashMap::new(),
                layers: self.layers,
                security: self.security,
                counters: Counters::default(),
                started: std::time::Instant::now(),
                sys: SysValues::default(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                acks: Default::default(),
                share_turns: Default::default(),
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
            security: None,
        }
    }

    /// Every live session's entry (for security's grant refresh).
    pub(crate) fn session_entries(&self) -> Vec<Arc<SessionEntry>> {
        self.inner
            .sessions
            .iter()
            .map(|e| e.value().clone())
            .collect()
    }

    /// The protocol of the live session `id` (`"mqtt"`, `"native"`, `"local"`), if any.
    pub fn session_protocol(&self, id: SessionId) -> Option<&'static str> {
        self.inner
            .sessions
            .get(&id)
            .map(|entry| entry.info.protocol)
    }

    /// The user logged in on the live session holding MQTT client id `client_id`, if any
    /// (a login under that id would take the session over).
    pub fn client_id_user(&self, client_id: &str) -> Option<String> {
        let id = *self.inner.client_ids.get(client_id)?;
        let entry = self.inner.sessions.get(&id)?;
        let identity = entry.identity.read();
        identity.as_ref().map(|identity| identity.username.clone())
    }

    /// The security service, when the broker is secure.
    pub fn security(&self) -> Option<&Arc<Security>> {
        self.inner.security.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The subscription index, for inspection and benchmarks (subscriptions are made and
    /// ended through [`Session::request`] and session drop, which keep the session's own
    /// list in step).
    pub fn router(&self) -> &Router {
        &self.inner.router
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

    /// How long ago the core was built.
    pub(crate) fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    /// A snapshot of the counters. Also raises the recorded maximum of live sessions to
    /// the current count.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let parked = c.parked.load(Ordering::Relaxed).max(0) as usize;
        let sessions = self.inner.sessions.len().saturating_sub(parked);
        let sessions_max = c.max_sessions.fetch_max(sessions as u64, Ordering::Relaxed);
        Stats {
            sessions,
            sessions_parked: parked,
            sessions_max: (sessions_max as usize).max(sessions),
            sessions_opened: c.opened.load(Ordering::Relaxed),
            connections_accepted: c.accepted.load(Ordering::Relaxed),
            subscriptions: self.inner.router.len(),
            published: c.published.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.sum(),
            bytes_sent: c.bytes_sent.sum(),
            rejected: c.rejected.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            uptime_secs: self.inner.started.elapsed().as_secs(),
            protocols: self.protocol_stats(),
            store_writes: c.store_writes.snapshot(),
        }
    }

    /// The per-protocol part of [`Core::stats`]: live sessions are counted by walking the
    /// registry (once per snapshot, not per session change), leaving parked ones out.
    fn protocol_stats(&self) -> [ProtocolStats; COUNTED_PROTOCOLS.len()] {
        let mut live = [0usize; COUNTED_PROTOCOLS.len()];
        for entry in self.inner.sessions.iter() {
            if !entry.durable.as_ref().is_some_and(|d| d.is_parked()) {
                live[ProtocolSlot::of(entry.info.protocol).index()] += 1;
            }
        }
        let c = &self.inner.counters;
        std::array::from_fn(|i| ProtocolStats {
            protocol: COUNTED_PROTOCOLS[i],
            sessions: live[i],
            requests: c.requests[i].sum(),
            messages_received: c.messages_received[i].sum(),
            messages_delivered: c.messages_delivered[i].sum(),
        })
    }

    /// Opens a session. With a client id, an existing session holding that id is ended
    /// with [`CloseReason::TakenOver`] (MQTT 3.1.4-2). (MQTT connections use
    /// [`Core::attach`], which also resumes durable sessions.)
    pub fn open_session(
        &self,
        protocol: &'static str,
        peer: Option<std::net::SocketAddr>,
        client_id: Option<String>,
    ) -> Session {
        let entry = self.new_entry(protocol, peer, client_id, None);
        self.register(entry)
    }

    /// A new session entry (not registered yet).
    pub(crate) fn new_entry(
        &self,
        protocol: &'static str,
        peer: Option<std::net::SocketAddr>,
        client_id: Option<String>,
        durable: Option<Arc<crate::durable::Durable>>,
    ) -> Arc<SessionEntry> {
        let queue = SessionQueue::with_durable(self.inner.config.queue_limits(), durable.clone());
        Arc::new(SessionEntry {
            info: SessionInfo {
                id: SessionId::new(),
                protocol,
                peer,
                client_id,
            },
            queue,
            subscriptions: Mutex::new(HashMap::new()),
            identity: parking_lot::RwLock::new(None),
            durable,
        })
    }

    /// Registers a new entry under its id and client id (taking the client id over from
    /// a live session) and attaches a guard to it.
    pub(crate) fn register(&self, entry: Arc<SessionEntry>) -> Session {
        let id = entry.info.id;
        self.inner.sessions.insert(id, entry.clone());
        self.inner.counters.opened.fetch_add(1, Ordering::Relaxed);
        if let Some(cid) = &entry.info.client_id
            && let Some(old) = self.inner.client_ids.insert(cid.clone(), id)
            && old != id
            && let Some(old) = self.inner.sessions.get(&old).map(|e| e.value().clone())
        {
            tracing::info!(client_id = %cid, old_session = %old.info.id, "client id taken over");
            old.queue.close(CloseReason::TakenOver);
            // A durable session displaced here (two first connections racing) would be
            // parked under a client id that is no longer its own: it ends now.
            if let Some(durable) = &old.durable {
                self.end(&old, durable, |_, _| true);
            }
        }
        // A REST request is a session of its own: one line per request at info would
        // drown the connections' lines.
        if entry.info.protocol == "http" {
            tracing::debug!(session = %id, protocol = entry.info.protocol, "session attached");
        } else {
            tracing::info!(session = %id, protocol = entry.info.protocol, "session attached");
        }
        Session::new(self.clone(), entry)
    }

    /// Registers `entry` in place of the entry with the same id (a resumed durable
    /// session) and attaches a guard to it.
    pub(crate) fn reregister(&self, entry: Arc<SessionEntry>) -> Session {
        self.inner.sessions.insert(entry.info.id, entry.clone());
        if let Some(cid) = &entry.info.client_id {
            self.inner.client_ids.insert(cid.clone(), entry.info.id);
        }
        self.inner.counters.opened.fetch_add(1, Ordering::Relaxed);
        Session::new(self.clone(), entry)
    }

    /// Registers a parked durable session restored at start-up (no guard).
    pub(crate) fn register_parked(&self, entry: Arc<SessionEntry>) {
        if let Some(cid) = &entry.info.client_id {
            self.inner.client_ids.insert(cid.clone(), entry.info.id);
        }
        self.inner.sessions.insert(entry.info.id, entry);
    }

    /// The entry of the session (live or parked) holding `client_id`.
    pub(crate) fn entry_of_client(&self, client_id: &str) -> Option<Arc<SessionEntry>> {
        let id = *self.inner.client_ids.get(client_id)?;
        self.inner.sessions.get(&id).map(|e| e.value().clone())
    }

    /// A session guard (attach `generation`) dropped: a durable session is parked (or left
    /// to a newer connection), any other ends.
    pub(crate) fn close_session(&self, entry: &Arc<SessionEntry>, generation: u64) {
        for layer in &self.inner.layers {
            layer.session_ended(&entry.info);
        }
        match &entry.durable {
            Some(durable) => self.detach_durable(entry, durable, generation),
            None => self.remove_entry(entry),
        }
    }

    /// Removes a session: its subscriptions, its client id, and itself.
    pub(crate) fn remove_entry(&self, entry: &SessionEntry) {
        entry.queue.shut();
        let subs: Vec<_> = entry.subscriptions.lock().drain().map(|(_, s)| s).collect();
        for sub in &subs {
            self.inner.router.remove(sub);
        }
        if let Some(cid) = &entry.info.client_id {
            self.inner
                .client_ids
                .remove_if(cid, |_, v| *v == entry.info.id);
        }
        self.inner
            .sessions
            .remove_if(&entry.info.id, |_, e| std::ptr::eq(&**e, entry));
        if entry.info.protocol == "http" {
            tracing::debug!(session = %entry.info.id, protocol = entry.info.protocol, "session detached");
        } else {
            tracing::info!(session = %entry.info.id, protocol = entry.info.protocol, "session detached");
        }
    }

    /// Ends every session with [`CloseReason::Shutdown`] and stops accepting connections.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.cancel();
        for entry in self.inner.sessions.iter() {
            entry.queue.close(CloseReason::Shutdown);
        }
    }

    pub(crate) fn has_layers(&self) -> bool {
        !self.inner.layers.is_empty()
    }

    pub(crate) async fn outbound(
        &self,
        entry: &SessionEntry,
        message: &mut Outbound,
    ) -> OutboundVerdict {
        let cx = LayerContext::new(&entry.info, entry.identity.read().clone());
        for layer in &self.inner.layers {
            if layer.outbound(&cx, message).await == OutboundVerdict::Drop {
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
        let write = matches!(request, Request::Set { .. });
        (self.inner.counters).request(ProtocolSlot::of(session.entry.info.protocol), write);
        if self.has_layers() {
            // On a secure broker a session that has not logged in gets its 401 before any
            // layer: it neither spends its rate limit nor learns what a validator checks.
            if self.inner.security.is_some() && session.identity().is_none() {
                return Err(Error::Unauthenticated(
                    "this broker is secure: log in first".into(),
                ));
            }
            let cx = LayerContext::new(&session.entry.info, session.identity());
            for layer in &self.inner.layers {
                match layer.inbound(&cx, &mut request).await {
                    InboundVerdict::Continue => {}
                    InboundVerdict::Respond(response) => return Ok(response),
                    InboundVerdict::Reject(error) => {
                        self.inner.counters.rejected(&error);
                        return Err(error);
                    }
                }
            }
        }
        refuse_reserved(&request)?;
        if let Some(security) = &self.inner.security {
            let identity = session.identity().ok_or_else(|| {
                Error::Unauthenticated("this broker is secure: log in first".into())
            })?;
            if let Err(end) = security.check_session(&identity) {
                session.end(end);
                return Err(Error::Unauthenticated(end.to_string()));
            }
            security.authorize(&identity, &request)?;
            if nested_read(&identity, &request) {
                return self.filtered_read(&identity, request).await;
            }
        }
        match request {
            Request::Set {
                path,
                payload,
                options,
            } => self.set(session, path, payload, options).await,
            Request::Get { target } => {
                if target.has_wildcard() {
                    let mut records = self.inner.store.scan(&target).await?;
                    drop_reserved(&target, &mut records);
                    Ok(Response::Records(records))
                } else {
                    let path = Path::parse(target.as_str())?;
                    Ok(Response::Record(self.inner.store.get(&path).await?))
                }
            }
            Request::Count { target } => {
                let count = self.inner.store.count(&target).await?;
                Ok(Response::Count(
                    count - self.reserved_matches(&target, None).await?,
                ))
            }
            Request::Search { target, query } => {
                let mut records = self.inner.store.query(&target, &query).await?;
                // A page may come out short by the reserved records it held: there are
                // none unless security is on, and then only users and groups.
                drop_reserved(&target, &mut records);
                Ok(Response::Records(records))
            }
            Request::CountMatching { target, criteria } => {
                let count = self
                    .inner
                    .store
                    .count_matching(&target, Some(&criteria))
                    .await?;
                let reserved = self.reserved_matches(&target, Some(&criteria)).await?;
                Ok(Response::Count(count - reserved))
            }
            // A glob that could reach `/_SYSTEM` is removed record by record, skipping it.
            Request::Remove {
                target,
                meta,
                event_id,
                ..
            } if reaches_reserved(&target) => {
                self.remove_matching(session, target, None, meta, event_id)
                    .await
            }
            Request::Remove {
                target,
                meta,
                event_id,
                consistency,
            } => {
                self.remove(session, target, meta, event_id, consistency)
                    .await
            }
            Request::RemoveMatching {
                target,
                criteria,
                meta,
                event_id,
            } => {
                self.remove_matching(session, target, Some(criteria), meta, event_id)
                    .await
            }
            Request::On { pattern, options } => {
                let id = self.add_subscription(&session.entry, pattern, options)?;
                self.subscriptions_changed(session).await;
                Ok(Response::Subscribed(id))
            }
            Request::Off(off) => {
                let removed: Vec<Arc<Subscription>> = {
                    let mut subs = session.entry.subscriptions.lock();
                    let ids: Vec<_> = subs
                        .values()
                        .filter(|s| match &off {
                            Off::Id(id) => s.id == *id,
                            Off::Pattern(p) => {
                                (s.pattern.as_str() == p && s.options.share.is_none())
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
                if !removed.is_empty() {
                    self.subscriptions_changed(session).await;
                }
                Ok(Response::Unsubscribed(
                    removed.iter().map(|s| s.id).collect(),
                ))
            }
        }
    }
}

impl Core {
    /// Adds a subscription of `entry`'s session: in its own list and in the router.
    ///
    /// # Errors
    /// [`Error::BadRequest`] when the session already holds
    /// [`CoreConfig::max_subscriptions`]; nothing is added.
    pub(crate) fn add_subscription(
        &self,
        entry: &SessionEntry,
        pattern: crate::pattern::Pattern,
        options: crate::request::OnOptions,
    ) -> Result<crate::router::SubscriptionId, Error> {
        let sub = Arc::new(Subscription {
            id: self.inner.router.next_id(),
            session: entry.info.id,
            pattern,
            options,
            queue: entry.queue.clone(),
            protocol: ProtocolSlot::of(entry.info.protocol),
        });
        {
            let mut subs = entry.subscriptions.lock();
            let limit = self.inner.config.max_subscriptions;
            if subs.len() >= limit {
                return Err(Error::BadRequest(format!(
                    "this session already holds {limit} subscriptions, the limit"
                )));
            }
            subs.insert(sub.id, sub.clone());
        }
        self.inner.router.insert(sub.clone());
        Ok(sub.id)
    }

    /// A durable session's subscriptions changed: its state is written, and the SUBACK /
    /// UNSUBACK waits until it is durable.
    async fn subscriptions_changed(&self, session: &Session) {
        if let Some(durable) = &session.entry.durable {
            let ticket = durable.write_state(&session.entry);
            durable.written(ticket).await;
        }
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
