//! Sessions: one per connection (or in-process client), with its outbound queue and its
//! subscriptions (DESIGN.md §2).
//!
//! A [`Session`] is a guard: dropping it removes its subscriptions from the index and
//! the session from the registry, so a vanished client leaves nothing behind.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::Error;
use crate::event::{CloseReason, Outbound};
use crate::layer::OutboundVerdict;
use crate::pattern::Pattern;
use crate::payload::Record;
use crate::pipeline::Core;
use crate::request::{Request, Response};
use crate::router::{Subscription, SubscriptionId};
use crate::security::{Identity, SessionFacts};

/// A session's id: a random UUID, shown hyphenated (`"1b4e28ba-2fa1-11d2-883f-0016d3cca427"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    /// A new random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The id as one number: a cheap sort and hash key.
    pub(crate) fn as_u128(self) -> u128 {
        self.0.as_u128()
    }
}

impl std::str::FromStr for SessionId {
    type Err = uuid::Error;

    /// Parses the hyphenated form [`SessionId`]'s `Display` writes (other UUID forms are
    /// accepted too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0.hyphenated())
    }
}

/// What the core knows of a session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Its id.
    pub id: SessionId,
    /// The protocol it speaks (`"mqtt"`, `"native"`, `"local"`).
    pub protocol: &'static str,
    /// The peer address, for network sessions.
    pub peer: Option<SocketAddr>,
    /// The client id, when the protocol has one (MQTT). At most one live session holds a
    /// client id: a new one takes it over (MQTT 3.1.4-2).
    pub client_id: Option<String>,
}

/// What happened to a message offered to a session's outbound queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It is in the queue.
    Queued,
    /// It is in the queue, beyond the queue's capacity: its publisher should wait for room
    /// ([`SessionQueue::wait_for_room`]) before going on (or acknowledging it).
    Congested,
    /// The queue was full; the message was dropped (and counted), or the session is being
    /// disconnected, as the overflow policy says.
    Dropped,
    /// The session is gone.
    Closed,
}

/// What happens when a session's outbound queue is full. A slow consumer never stalls a
/// publisher: the publisher is never made to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the new message, count it, and log (rate-limited). The default.
    #[default]
    DropNew,
    /// End the session with [`CloseReason::QueueFull`].
    Disconnect,
}

/// A session's outbound queue: a bounded FIFO that holds no memory while empty (an idle
/// session costs a few words, not a preallocated block), shared by the publishers that
/// push into it and the session that pops from it.
#[derive(Debug)]
struct QueueShared {
    items: Mutex<VecDeque<Outbound>>,
    /// Signalled on every push; a push while nobody waits leaves a permit, so a message
    /// pushed between the receiver's check and its wait is not missed.
    ready: Notify,
    /// Signalled when the queue drops below its capacity (publishers waiting for room).
    space: Notify,
    /// Soft limit: beyond it messages are kept (up to twice this) while their publishers
    /// wait for room.
    capacity: usize,
    /// Set when a publisher waited for room in vain: until the queue drains below its
    /// capacity, it takes nothing beyond it, so one stuck subscriber costs each publisher
    /// at most one wait.
    stalled: AtomicBool,
    /// Set when the session is gone: pushes are refused.
    closed: AtomicBool,
    /// Set when the core ends the session ([`SessionQueue::close`]); the receiver is woken
    /// through `ready`. (An atomic, not a cancellation token: one allocation less per
    /// session.)
    kicked: AtomicBool,
    reason: Mutex<Option<CloseReason>>,
    dropped: AtomicU64,
    /// Set for a durable session's queue: QoS 1/2 messages are numbered and written to
    /// the store's session log as they are queued ([`crate::durable`]).
    durable: Option<Arc<crate::durable::Durable>>,
}

/// The sending side of a session's bounded outbound queue.
#[derive(Debug, Clone)]
pub struct SessionQueue {
    shared: Arc<QueueShared>,
}

/// An emptied queue keeps at most this much capacity, in messages (~32 KiB), so a burst
/// does not leave its memory behind, while steady traffic does not reallocate.
const KEEP_QUEUE_CAPACITY: usize = 1024;

impl SessionQueue {
    /// A queue holding at most `capacity` messages (at least 1).
    #[cfg(test)]
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_durable(capacity, None)
    }

    /// [`SessionQueue::new`], for a durable session when `durable` is set.
    pub(crate) fn with_durable(
        capacity: usize,
        durable: Option<Arc<crate::durable::Durable>>,
    ) -> Self {
        Self {
            shared: Arc::new(QueueShared {
                items: Mutex::new(VecDeque::new()),
                ready: Notify::new(),
                space: Notify::new(),
                capacity: capacity.max(1),
                stalled: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                kicked: AtomicBool::new(false),
                reason: Mutex::new(None),
                dropped: AtomicU64::new(0),
                durable,
            }),
        }
    }

    /// Offers a message without waiting.
    ///
    /// Below the capacity every message is queued. Beyond it (DESIGN.md §2: backpressure
    /// for a publisher) a message is still queued, up to twice the capacity, and
    /// [`Delivery::Congested`] tells its publisher to wait for room: messages are held
    /// back at the publisher, not dropped. A message beyond twice the capacity, or for a
    /// stalled queue, is handled by `policy` (dropped, or the session is disconnected) and
    /// counted in [`SessionQueue::dropped`].
    pub(crate) fn deliver(&self, message: Outbound, policy: OverflowPolicy) -> Delivery {
        let shared = &*self.shared;
        {
            let mut items = shared.items.lock();
            if shared.closed.load(Ordering::Relaxed) {
                return Delivery::Closed;
            }
            let len = items.len();
            let delivery = if len < shared.capacity {
                Delivery::Queued
            } else if len < 2 * shared.capacity && !shared.stalled.load(Ordering::Relaxed) {
                Delivery::Congested
            } else {
                Delivery::Dropped
            };
            if delivery != Delivery::Dropped {
                items.push_back(message);
                drop(items);
                shared.ready.notify_one();
                return delivery;
            }
        }
        let dropped = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        match policy {
            OverflowPolicy::DropNew => {
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped,
                        "outbound queue full: dropping messages for a slow session"
                    );
                }
            }
            OverflowPolicy::Disconnect => self.close(CloseReason::QueueFull),
        }
        Delivery::Dropped
    }

    /// [`SessionQueue::deliver`], or for a durable session's queue: a QoS 1/2 event is
    /// numbered and written to the session log (raising `ticket` to the write's ticket,
    /// which the publisher waits on), a QoS 0 one is not queued while the session is
    /// parked ([`Delivery::Closed`]).
    pub(crate) fn offer(
        &self,
        message: Outbound,
        policy: OverflowPolicy,
        ticket: &mut u64,
    ) -> Delivery {
        let Some(durable) = &self.shared.durable else {
            return self.deliver(message, policy);
        };
        let Outbound::Event {
            event,
            subscriptions,
        } = &message
        else {
            return self.deliver(message, policy);
        };
        let granted = subscriptions
            .iter()
            .map(|s| s.options.qos)
            .max()
            .unwrap_or(0);
        let qos = event.qos.min(granted).min(2);
        if qos == 0 {
            if durable.is_parked() {
                return Delivery::Closed;
            }
            return self.deliver(message, policy);
        }
        let body = event.stored_body();
        let shared = &*self.shared;
        let mut items = shared.items.lock();
        if shared.closed.load(Ordering::Relaxed) {
            return Delivery::Closed;
        }
        let len = items.len();
        let delivery = if durable.is_parked() {
            match len < durable.max_queued {
                true => Delivery::Queued,
                false => Delivery::Dropped,
            }
        } else if len < shared.capacity {
            Delivery::Queued
        } else if len < 2 * shared.capacity && !shared.stalled.load(Ordering::Relaxed) {
            Delivery::Congested
        } else {
            Delivery::Dropped
        };
        if delivery == Delivery::Dropped {
            drop(items);
            let dropped = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    client_id = %durable.client_id,
                    dropped,
                    parked = durable.is_parked(),
                    "durable session queue full: dropping new messages"
                );
            }
            if policy == OverflowPolicy::Disconnect && !durable.is_parked() {
                self.close(CloseReason::QueueFull);
            }
            return delivery;
        }
        let message = crate::durable::DurableMessage {
            seq: durable.next_seq(),
            event: event.clone(),
            qos,
            retain: false,
            pkid: None,
            released: false,
        };
        *ticket = (*ticket).max(durable.write_message_with_body(&message, body));
        items.push_back(Outbound::Durable(message));
        drop(items);
        shared.ready.notify_one();
        delivery
    }

    /// Puts `message` back at the front (a message a durable session's connection took
    /// but did not finish with).
    pub(crate) fn push_front(&self, message: Outbound) {
        self.shared.items.lock().push_front(message);
    }

    /// How many messages are queued.
    pub(crate) fn len(&self) -> usize {
        self.shared.items.lock().len()
    }

    /// Clears a close request, for a durable session a new connection resumes (the old
    /// connection, told to close, is gone).
    pub(crate) fn reopen(&self) {
        *self.shared.reason.lock() = None;
        self.shared.kicked.store(false, Ordering::Release);
    }

    /// The next queued message, if any (never waits).
    fn pop(&self) -> Option<Outbound> {
        let shared = &*self.shared;
        let mut items = shared.items.lock();
        let message = items.pop_front();
        if message.is_some() && items.len() + 1 == shared.capacity {
            // Just dropped below the capacity: room for waiting publishers.
            shared.stalled.store(false, Ordering::Relaxed);
            shared.space.notify_waiters();
        }
        if items.is_empty() && items.capacity() > KEEP_QUEUE_CAPACITY {
            *items = VecDeque::new();
        }
        message
    }

    /// Waits until the queue is below its capacity (or the session is gone), at most until
    /// `deadline`. `false` when the deadline passed: the queue is then marked stalled and
    /// takes no more messages beyond its capacity until it drains.
    pub(crate) async fn wait_for_room(&self, deadline: tokio::time::Instant) -> bool {
        let shared = &*self.shared;
        loop {
            let notified = shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.closed.load(Ordering::Relaxed) || shared.items.lock().len() < shared.capacity
            {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                shared.stalled.store(true, Ordering::Relaxed);
                tracing::warn!(
                    capacity = shared.capacity,
                    "a subscriber's queue stayed full: messages beyond its capacity are dropped until it drains"
                );
                return false;
            }
        }
    }

    /// Refuses further messages and frees those queued (the session is gone); publishers
    /// waiting for room stop waiting.
    pub(crate) fn shut(&self) {
        let mut items = self.shared.items.lock();
        self.shared.closed.store(true, Ordering::Relaxed);
        *items = VecDeque::new();
        drop(items);
        self.shared.space.notify_waiters();
    }

    /// Asks the session to end with `reason` (the first reason given wins).
    pub(crate) fn close(&self, reason: CloseReason) {
        self.shared.reason.lock().get_or_insert(reason);
        self.shared.kicked.store(true, Ordering::Release);
        // Wakes the receiver, or leaves it a permit if it is not waiting yet.
        self.shared.ready.notify_one();
    }

    /// How many messages were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// The registry's view of a live session.
#[derive(Debug)]
pub(crate) struct SessionEntry {
    pub(crate) info: SessionInfo,
    pub(crate) queue: SessionQueue,
    pub(crate) subscriptions: Mutex<HashMap<SubscriptionId, Arc<Subscription>>>,
    /// Who the session is, once it logged in on a secure broker.
    pub(crate) identity: parking_lot::RwLock<Option<Arc<Identity>>>,
    /// Set for a session that outlives its connection ([`crate::durable`]).
    pub(crate) durable: Option<Arc<crate::durable::Durable>>,
}

impl SessionEntry {
    /// Ends a logged-in session for security's `end`: it loses its identity (its
    /// requests get 401) and the protocol is told to close it with the reason.
    pub(crate) fn end(&self, end: crate::security::SessionEnd) {
        tracing::info!(session = %self.info.id, reason = %end, "session ended by security");
        *self.identity.write() = None;
        self.queue.close(CloseReason::SessionEnded(end));
    }

    /// What templated permissions may read of this session (`{{session.client_id}}`).
    pub(crate) fn facts(&self) -> SessionFacts {
        SessionFacts {
            client_id: self.info.client_id.clone(),
            protocol: self.info.protocol,
            peer: self.info.peer,
            stateless: false,
            takes_over: None,
        }
    }
}

/// A live session: what a connection task (or an in-process client) holds. Dropping it
/// ends the session.
pub struct Session {
    pub(crate) core: Core,
    pub(crate) entry: Arc<SessionEntry>,
    /// A message taken from the queue whose outbound layers have not finished: kept here so a
    /// cancelled [`Session::recv`] loses nothing. Behind a lock (never held across an
    /// `.await`) so that `recv` takes `&self`: a connection can wait for messages while its
    /// requests (also `&self`) are in flight.
    pending: Mutex<Option<Outbound>>,
    /// A durable session's attach generation when this guard was made: a guard that
    /// outlived its attachment leaves the session alone when dropped.
    pub(crate) generation: u64,
}

impl Session {
    pub(crate) fn new(core: Core, entry: Arc<SessionEntry>) -> Self {
        let generation = entry.durable.as_ref().map_or(0, |d| d.generation());
        Self {
            core,
            entry,
            pending: Mutex::new(None),
            generation,
        }
    }

    /// Records who the session is (after a successful login on a secure broker); its
    /// requests are then authorized against `identity`'s grants.
    pub fn set_identity(&self, identity: Arc<Identity>) {
        *self.entry.identity.write() = Some(identity);
    }

    /// Ends the session for security's `end` (see `SessionEntry::end`).
    pub(crate) fn end(&self, end: crate::security::SessionEnd) {
        self.entry.end(end);
    }

    /// Who the session is, once logged in.
    pub fn identity(&self) -> Option<Arc<Identity>> {
        self.entry.identity.read().clone()
    }

    /// What templated permissions may read of this session (`{{session.client_id}}`).
    pub fn facts(&self) -> SessionFacts {
        self.entry.facts()
    }

    /// The session's id.
    pub fn id(&self) -> crate::session::SessionId {
        self.entry.info.id
    }

    /// What the core knows of the session.
    pub fn info(&self) -> &SessionInfo {
        &self.entry.info
    }

    /// The core this session belongs to.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Runs a request through the inbound layers and the core.
    ///
    /// # Errors
    /// [`Error`]: a layer rejected the request, or the core could not carry it out (see
    /// each variant); a failed request changes nothing.
    pub async fn request(&self, request: Request) -> Result<Response, Error> {
        // Boxed: the pipeline's future is large, and it would otherwise be inlined into
        // every connection task's future, which idle connections keep allocated.
        Box::pin(self.core.handle(self, request)).await
    }

    /// The stored values a native subscription with `initialCallback`/`initialEmit`
    /// receives (reference: EVENT DATA): the records `pattern` matches within `depth`,
    /// "ordered by modified", then by path.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn initial_values(
        &self,
        pattern: &Pattern,
        depth: Option<usize>,
    ) -> Result<Vec<Record>, Error> {
        let mut records = self.retained(pattern).await?;
        records.retain(|r| pattern.matches(&r.path, depth));
        records.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        Ok(records)
    }

    /// The stored records a new subscription to `pattern` should receive (MQTT retained
    /// messages), ordered by path; for a pattern naming `$SYS`, the current `$SYS`
    /// values too (kept in memory, never stored: `crate::sys`).
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn retained(&self, pattern: &Pattern) -> Result<Vec<Record>, Error> {
        let mut records = self.core.store().scan(&pattern.covering_glob()).await?;
        let sys = self.core.inner.sys.matching(pattern);
        if !sys.is_empty() {
            // The live values stand for their topics (a record stored there before
            // clients were refused `$SYS` writes is left out).
            records.retain(|r| !crate::sys::is_sys(r.path.as_str()));
            records.extend(sys);
            records.sort_by(|a, b| a.path.cmp(&b.path));
        }
        let visible = self.visible();
        Ok(records
            .into_iter()
            .filter(|r| pattern.matches(&r.path, None))
            .filter(|r| !crate::pipeline::is_reserved(r.path.as_str()))
            .filter(|r| visible(&r.path))
            .collect())
    }

    /// Whether an event or a subscription's stored record on a path may reach this
    /// session: always without security; with it, when the session is logged in and its
    /// grants allow `on` there now (DESIGN.md §7). A subscription was authorized when it
    /// was made; this keeps it to what the grants allow as they change (a revoked
    /// permission stops its events at once), and is what gives nested permissions their
    /// filtered subscriptions (reference: NESTED PERMISSIONS FOR GET AND SET).
    fn visible(&self) -> impl Fn(&crate::Path) -> bool + use<> {
        let identity = self.core.security().map(|_| self.identity());
        move |path| match &identity {
            None => true,
            Some(None) => false,
            Some(Some(identity)) => {
                (identity.grants).allows_record(crate::security::Right::On, path)
            }
        }
    }

    /// The next message for this session, after the outbound layers. A
    /// [`Outbound::Close`] is the last one: the protocol tells the client why and ends the
    /// connection. `None` when the core is gone.
    ///
    /// Cancel-safe: a message whose outbound layers were interrupted is kept and goes
    /// through the layers again on the next call (layers should be idempotent). Takes
    /// `&self` so that it can run beside [`Session::request`]s of the same session; should
    /// two calls race, each message still goes to exactly one of them.
    pub async fn recv(&self) -> Option<Outbound> {
        loop {
            let kept = self.pending.lock().take();
            let message = match kept {
                Some(message) => message,
                None => self.next_queued().await?,
            };
            match &message {
                Outbound::Event { event, .. }
                    if self.core.security().is_some() && !self.visible()(&event.path) =>
                {
                    continue;
                }
                Outbound::Durable(durable)
                    if self.core.security().is_some() && !self.visible()(&durable.event.path) =>
                {
                    self.acknowledged(durable.seq);
                    continue;
                }
                _ => {}
            }
            if !self.core.has_layers() {
                return Some(message);
            }
            let mut kept = Kept {
                slot: &self.pending,
                message: Some(message),
            };
            let Some(message) = kept.message.as_mut() else {
                continue;
            };
            let verdict = self.core.outbound(&self.entry.info, message).await;
            let Some(message) = kept.message.take() else {
                continue;
            };
            if verdict == OutboundVerdict::Continue {
                return Some(message);
            }
        }
    }

    /// The next message of the queue, or the close the core asked for (which wins over
    /// queued messages). Cancel-safe: nothing is taken from the queue until it returns.
    async fn next_queued(&self) -> Option<Outbound> {
        let shared = &self.entry.queue.shared;
        loop {
            if shared.kicked.load(Ordering::Acquire) {
                let reason = shared.reason.lock().clone();
                return Some(Outbound::Close(reason.unwrap_or(CloseReason::Shutdown)));
            }
            if let Some(message) = self.entry.queue.pop() {
                return Some(message);
            }
            // A push or a close between the checks above and this wait leaves a permit.
            shared.ready.notified().await;
        }
    }

    /// The number of live subscriptions of this session.
    pub fn subscription_count(&self) -> usize {
        self.entry.subscriptions.lock().len()
    }

    /// How many messages this session lost because its outbound queue was full.
    pub fn dropped(&self) -> u64 {
        self.entry.queue.dropped()
    }
}

/// A message going through the outbound layers: put back into the session's `pending`
/// slot if [`Session::recv`] is dropped before the layers finish.
struct Kept<'a> {
    slot: &'a Mutex<Option<Outbound>>,
    message: Option<Outbound>,
}

impl Drop for Kept<'_> {
    fn drop(&mut self) {
        if let Some(message) = self.message.take() {
            *self.slot.lock() = Some(message);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.entry.durable.is_some()
            && let Some(message) = self.pending.get_mut().take()
        {
            self.entry.queue.push_front(message);
        }
        self.core.close_session(&self.entry, self.generation);
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("info", &self.entry.info)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Outbound {
        Outbound::Close(CloseReason::Shutdown)
    }

    #[test]
    fn queue_is_bounded_counts_drops_and_refuses_after_shut() {
        let queue = SessionQueue::new(2);
        let policy = OverflowPolicy::DropNew;
        assert_eq!(queue.deliver(event(&queue, 0), policy), Delivery::Queued);
        assert_eq!(queue.deliver(event(&queue, 0), policy), Delivery::Queued);
        assert_eq!(queue.deliver(event(&queue, 0), policy), Delivery::Congested);
        assert_eq!(queue.deliver(event(&queue, 0), policy), Delivery::Congested);
        assert_eq!(queue.deliver(event(&queue, 0), policy), Delivery::Dropped);
        assert_eq!(queue.dropped(), 1);
        for _ in 0..3 {
            assert!(queue.pop().is_some());
        }
        assert_eq!(
            queue.deliver(event(&queue, 0), policy),
            Delivery::Queued,
            "room again"
        );
        queue.shut();
        assert_eq!(queue.deliver(event(&queue, 0), policy), Delivery::Closed);
        assert!(queue.pop().is_none(), "shut frees what was queued");
    }

    #[test]
    fn a_drained_queue_gives_its_memory_back() {
        let queue = SessionQueue::new(10_000);
        for _ in 0..5_000 {
            queue.deliver(message(), OverflowPolicy::DropNew);
        }
        while queue.pop().is_some() {}
        assert!(queue.shared.items.lock().capacity() <= KEEP_QUEUE_CAPACITY);
    }

    /// An event the session gets at `qos` (its subscription granted `qos` too).
    fn event(queue: &SessionQueue, qos: u8) -> Outbound {
        let path = crate::Path::parse("/q").unwrap();
        let payload = crate::Payload::json(&serde_json::json!({}));
        let event = crate::Event::new(
            crate::EventKind::Set,
            path.clone(),
            payload,
            0,
            0,
            None,
            None,
            crate::Consistency::default(),
            None,
            qos,
        );
        let subscription = Arc::new(crate::Subscription {
            id: crate::SubscriptionId(1),
            session: SessionId::new(),
            pattern: crate::Pattern::native("/q").unwrap(),
            options: crate::OnOptions {
                qos,
                ..Default::default()
            },
            queue: queue.clone(),
        });
        Outbound::Event {
            event: Arc::new(event),
            subscriptions: subscription.into(),
        }
    }

    #[test]
    fn messages_beyond_capacity_are_kept_up_to_twice_it_at_any_qos() {
        let queue = SessionQueue::new(2);
        let policy = OverflowPolicy::DropNew;
        assert_eq!(queue.deliver(event(&queue, 1), policy), Delivery::Queued);
        assert_eq!(queue.deliver(event(&queue, 0), policy), Delivery::Queued);
        assert_eq!(queue.deliver(event(&queue, 0), policy), Delivery::Congested);
        assert_eq!(queue.deliver(event(&queue, 2), policy), Delivery::Congested);
        let beyond = queue.deliver(event(&queue, 1), policy);
        assert_eq!(beyond, Delivery::Dropped, "beyond twice the capacity");
        assert_eq!(queue.dropped(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_publisher_waits_for_room_and_a_stalled_queue_drops() {
        let queue = SessionQueue::new(1);
        let policy = OverflowPolicy::DropNew;
        queue.deliver(event(&queue, 1), policy);
        assert_eq!(queue.deliver(event(&queue, 1), policy), Delivery::Congested);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let (waiter, popper) = (queue.clone(), queue.clone());
        let wait = tokio::spawn(async move { waiter.wait_for_room(deadline).await });
        tokio::task::yield_now().await;
        popper.pop();
        popper.pop();
        assert!(wait.await.unwrap(), "room after the session read");

        queue.deliver(event(&queue, 1), policy);
        assert_eq!(queue.deliver(event(&queue, 1), policy), Delivery::Congested);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        assert!(
            !queue.wait_for_room(deadline).await,
            "nobody reads: the wait ends at the deadline"
        );
        assert_eq!(
            queue.deliver(event(&queue, 1), policy),
            Delivery::Dropped,
            "stalled"
        );
        queue.pop();
        queue.pop();
        queue.deliver(event(&queue, 1), policy);
        assert_eq!(
            queue.deliver(event(&queue, 1), policy),
            Delivery::Congested,
            "drained: no longer stalled"
        );
    }

    #[test]
    fn disconnect_policy_kicks_the_session() {
        let queue = SessionQueue::new(1);
        queue.deliver(event(&queue, 0), OverflowPolicy::Disconnect);
        queue.deliver(event(&queue, 0), OverflowPolicy::Disconnect);
        assert_eq!(
            queue.deliver(event(&queue, 0), OverflowPolicy::Disconnect),
            Delivery::Dropped
        );
        assert!(queue.shared.kicked.load(Ordering::Acquire));
        assert_eq!(*queue.shared.reason.lock(), Some(CloseReason::QueueFull));
    }
}
