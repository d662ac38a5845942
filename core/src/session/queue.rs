//! A session's outbound queue (DESIGN.md §2: every queue is bounded and says what
//! happens when full): backpressure for publishers first, then the overflow policy.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::event::{CloseReason, Outbound};

/// What happened to a message offered to a session's outbound queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// It is in the queue.
    Queued,
    /// It is in the queue, beyond the queue's limit: its publisher should wait for room
    /// ([`SessionQueue::wait_for_room`]) before going on (or acknowledging it).
    Congested,
    /// It is in the queue, in place of the oldest message, which was dropped (and
    /// counted): [`OverflowPolicy::DropOldest`].
    DisplacedOldest,
    /// The queue was full; the message was dropped (and counted), or the session is being
    /// disconnected, as the overflow policy says.
    Dropped,
    /// The session is gone (or, parked, it takes no QoS 0 message).
    Closed,
}

/// What happens when a session's outbound queue is full (docs/CONFIGURATION.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the new message, count it, and log (rate-limited). The default.
    #[default]
    DropNew,
    /// Drop the oldest queued message (count it, log) and queue the new one: the
    /// subscriber gets the latest messages, but one whose publisher was acknowledged may be
    /// lost.
    DropOldest,
    /// End the session with [`CloseReason::QueueFull`] (a parked durable session, which
    /// has no connection to end, drops the new message instead).
    Disconnect,
}

/// How much one queue holds: messages, and payload bytes (0: no byte limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueLimits {
    /// Messages (at least 1).
    pub(crate) messages: usize,
    /// Payload bytes; 0: no limit.
    pub(crate) bytes: usize,
}

impl QueueLimits {
    /// Whether a queue of `len` messages and `bytes` payload bytes, given one more of
    /// `size` bytes, would pass these limits times `times`. An empty queue always takes
    /// a message, however large.
    fn exceeded(self, len: usize, bytes: usize, size: usize, times: usize) -> bool {
        len > 0
            && (len >= self.messages.saturating_mul(times)
                || (self.bytes > 0 && bytes + size > self.bytes.saturating_mul(times)))
    }
}

/// A session's outbound queue: a bounded FIFO that holds no memory while empty (an idle
/// session costs a few words, not a preallocated block), shared by the publishers that
/// push into it and the session that pops from it.
#[derive(Debug)]
struct QueueShared {
    items: Mutex<VecDeque<Outbound>>,
    /// Payload bytes of the queued messages; changed only under `items`' lock.
    bytes: AtomicUsize,
    /// Signalled on every push; a push while nobody waits leaves a permit, so a message
    /// pushed between the receiver's check and its wait is not missed.
    ready: Notify,
    /// Signalled when the queue drops below its limits (publishers waiting for room).
    space: Notify,
    /// Soft limits: beyond them messages are kept (up to twice these) while their
    /// publishers wait for room.
    limits: QueueLimits,
    /// Set when a publisher waited for room in vain: until the queue drains below its
    /// limits, it takes nothing beyond them, so one stuck subscriber costs each publisher
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

/// The payload bytes a queued message counts for.
fn size_of(message: &Outbound) -> usize {
    match message {
        Outbound::Event { event, .. } => event.payload.bytes.len(),
        Outbound::Durable(message) => message.event.payload.bytes.len(),
        _ => 0,
    }
}

impl SessionQueue {
    /// A queue holding at most `capacity` messages (at least 1), without a byte limit.
    #[cfg(test)]
    pub(crate) fn new(capacity: usize) -> Self {
        let limits = QueueLimits {
            messages: capacity,
            bytes: 0,
        };
        Self::with_durable(limits, None)
    }

    /// A queue with `limits`, for a durable session when `durable` is set.
    pub(crate) fn with_durable(
        limits: QueueLimits,
        durable: Option<Arc<crate::durable::Durable>>,
    ) -> Self {
        Self {
            shared: Arc::new(QueueShared {
                items: Mutex::new(VecDeque::new()),
                bytes: AtomicUsize::new(0),
                ready: Notify::new(),
                space: Notify::new(),
                limits: QueueLimits {
                    messages: limits.messages.max(1),
                    bytes: limits.bytes,
                },
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
    /// Within the queue's limits (messages, payload bytes) every message is queued.
    /// Beyond them (DESIGN.md §2: backpressure for a publisher) a message is still
    /// queued, up to twice the limits, and [`Delivery::Congested`] tells its publisher to
    /// wait for room: messages are held back at the publisher, not dropped. A message
    /// beyond twice the limits, or for a stalled queue, gets `policy`: dropped, queued in
    /// place of the oldest ([`Delivery::DisplacedOldest`]), or the session is
    /// disconnected; every drop is counted in [`SessionQueue::dropped`].
    pub(crate) fn deliver(&self, message: Outbound, policy: OverflowPolicy) -> Delivery {
        self.admit(message, policy, None)
    }

    /// [`SessionQueue::deliver`], or for a durable session's queue: a QoS 1/2 event is
    /// numbered and written to the session log (raising `ticket` to the write's ticket,
    /// which the publisher waits on), a QoS 0 one is not queued while the session is
    /// parked ([`Delivery::Closed`]). A parked session's queue has its own limits
    /// ([`crate::CoreConfig::max_queued_messages`], `max_queued_bytes`) and no
    /// backpressure: beyond them the policy applies at once.
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
        let crate::event::MqttDelivery {
            qos,
            retain,
            subscription_ids,
            shared_via,
        } = subscriptions.mqtt_delivery(event);
        if qos == 0 {
            if durable.is_parked() {
                return Delivery::Closed;
            }
            return self.deliver(message, policy);
        }
        let message = crate::durable::DurableMessage {
            seq: 0,
            event: event.clone(),
            qos,
            retain,
            pkid: None,
            released: false,
            subscription_ids,
            shared_via,
        };
        self.admit(Outbound::Durable(message), policy, Some(ticket))
    }

    /// Queues `message` as [`SessionQueue::deliver`] says; a durable message is numbered
    /// and written to the session log under the lock, so numbers and writes follow the
    /// queue's order.
    fn admit(
        &self,
        mut message: Outbound,
        policy: OverflowPolicy,
        ticket: Option<&mut u64>,
    ) -> Delivery {
        let shared = &*self.shared;
        let size = size_of(&message);
        let durable = shared.durable.as_deref();
        let parked = durable.is_some_and(|d| d.is_parked());
        let body = match &message {
            Outbound::Durable(m) => Some(m.event.stored_body()),
            _ => None,
        };
        let mut items = shared.items.lock();
        if shared.closed.load(Ordering::Relaxed) {
            return Delivery::Closed;
        }
        let bytes = shared.bytes.load(Ordering::Relaxed);
        let (limits, soft) = match (durable, parked) {
            (Some(d), true) => (d.parked_limits(), false),
            _ => (shared.limits, !shared.stalled.load(Ordering::Relaxed)),
        };
        let mut delivery = if !limits.exceeded(items.len(), bytes, size, 1) {
            Delivery::Queued
        } else if soft && !limits.exceeded(items.len(), bytes, size, 2) {
            Delivery::Congested
        } else {
            Delivery::Dropped
        };
        let mut displaced = 0;
        if delivery == Delivery::Dropped && policy == OverflowPolicy::DropOldest {
            // A stalled or parked queue takes nothing beyond its limits, so the oldest give
            // way down to them; otherwise down to twice them.
            let stalled = shared.stalled.load(Ordering::Relaxed);
            let hard = if parked || stalled { 1 } else { 2 };
            while limits.exceeded(
                items.len(),
                shared.bytes.load(Ordering::Relaxed),
                size,
                hard,
            ) {
                let Some(at) = items
                    .iter()
                    .position(|m| matches!(m, Outbound::Event { .. } | Outbound::Durable(_)))
                else {
                    break;
                };
                if let Some(old) = items.remove(at) {
                    shared.bytes.fetch_sub(size_of(&old), Ordering::Relaxed);
                    if let (Outbound::Durable(old), Some(d)) = (&old, durable) {
                        d.remove_message(old.seq);
                    }
                    displaced += 1;
                }
            }
            if displaced > 0 {
                delivery = Delivery::DisplacedOldest;
            }
        }
        if delivery != Delivery::Dropped {
            if let (Outbound::Durable(m), Some(d), Some(body)) = (&mut message, durable, body) {
                m.seq = d.next_seq();
                let written = d.write_message_with_body(m, body);
                if let Some(ticket) = ticket {
                    *ticket = (*ticket).max(written);
                }
            }
            items.push_back(message);
            shared.bytes.fetch_add(size, Ordering::Relaxed);
            drop(items);
            shared.ready.notify_one();
            if displaced > 0 {
                self.count_drops(displaced, "dropping the oldest messages");
            }
            return delivery;
        }
        drop(items);
        self.count_drops(1, "dropping new messages");
        if policy == OverflowPolicy::Disconnect && !parked {
            self.close(CloseReason::QueueFull);
        }
        Delivery::Dropped
    }

    /// Counts `n` dropped messages and logs (at 1, 2, 4, 8, … drops: a stuck subscriber
    /// does not flood the log).
    fn count_drops(&self, n: u64, what: &str) {
        let shared = &*self.shared;
        let before = shared.dropped.fetch_add(n, Ordering::Relaxed);
        let after = before + n;
        if (before + 1..=after).any(u64::is_power_of_two) {
            let client_id = shared.durable.as_ref().map(|d| d.client_id.clone());
            tracing::warn!(
                dropped = after,
                ?client_id,
                parked = shared.durable.as_ref().is_some_and(|d| d.is_parked()),
                "outbound queue full: {what} for a slow or disconnected session"
            );
        }
    }

    /// Whether this is a parked durable session's queue (no connection reads it).
    pub(crate) fn is_parked(&self) -> bool {
        self.shared.durable.as_ref().is_some_and(|d| d.is_parked())
    }

    /// Puts `message` back at the front (a message a durable session's connection took
    /// but did not finish with).
    pub(crate) fn push_front(&self, message: Outbound) {
        let mut items = self.shared.items.lock();
        self.shared
            .bytes
            .fetch_add(size_of(&message), Ordering::Relaxed);
        items.push_front(message);
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

    /// The next message of the queue, or the close the core asked for (which wins over
    /// queued messages). Cancel-safe: nothing is taken from the queue until it returns.
    pub(crate) async fn next(&self) -> Option<Outbound> {
        let shared = &self.shared;
        loop {
            if shared.kicked.load(Ordering::Acquire) {
                let reason = shared.reason.lock().clone();
                return Some(Outbound::Close(reason.unwrap_or(CloseReason::Shutdown)));
            }
            if let Some(message) = self.pop() {
                return Some(message);
            }
            // A push or a close between the checks above and this wait leaves a permit.
            shared.ready.notified().await;
        }
    }

    /// Resolves when the core asks the session to end, with the reason, taking no
    /// message: for a connection that takes no messages for now (its in-flight window is
    /// full) but must still see a takeover or a shutdown.
    pub(crate) async fn closing(&self) -> CloseReason {
        let shared = &self.shared;
        loop {
            // `space`, not `ready`: pushes must not wake a connection that takes nothing
            // for now. `close` signals it; while nobody pops, nothing else does.
            let notified = shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.kicked.load(Ordering::Acquire) {
                return shared
                    .reason
                    .lock()
                    .clone()
                    .unwrap_or(CloseReason::Shutdown);
            }
            notified.await;
        }
    }

    /// Whether the queue is within its (soft) limits: room for waiting publishers.
    fn has_room(&self, items: &VecDeque<Outbound>) -> bool {
        let bytes = self.shared.bytes.load(Ordering::Relaxed);
        !self.shared.limits.exceeded(items.len(), bytes, 0, 1)
    }

    /// The next queued message, if any (never waits).
    fn pop(&self) -> Option<Outbound> {
        let shared = &*self.shared;
        let mut items = shared.items.lock();
        let had_room = self.has_room(&items);
        let message = items.pop_front();
        if let Some(message) = &message {
            shared.bytes.fetch_sub(size_of(message), Ordering::Relaxed);
            if !had_room && self.has_room(&items) {
                // Just dropped below the limits: room for waiting publishers.
                shared.stalled.store(false, Ordering::Relaxed);
                shared.space.notify_waiters();
            }
        }
        if items.is_empty() && items.capacity() > KEEP_QUEUE_CAPACITY {
            *items = VecDeque::new();
        }
        message
    }

    /// Waits until the queue is within its limits (or the session is gone), at most until
    /// `deadline`. `false` when the deadline passed: the queue is then marked stalled and
    /// takes no more messages beyond its limits until it drains.
    pub(crate) async fn wait_for_room(&self, deadline: tokio::time::Instant) -> bool {
        let shared = &*self.shared;
        loop {
            let notified = shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // A parked durable session has no reader to wait for: its own limits apply.
            let parked = shared.durable.as_ref().is_some_and(|d| d.is_parked());
            if shared.closed.load(Ordering::Relaxed)
                || parked
                || self.has_room(&shared.items.lock())
            {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                shared.stalled.store(true, Ordering::Relaxed);
                tracing::warn!(
                    limit_messages = shared.limits.messages,
                    limit_bytes = shared.limits.bytes,
                    "a subscriber's queue stayed full: messages beyond its limits are dropped until it drains"
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
        self.shared.bytes.store(0, Ordering::Relaxed);
        drop(items);
        self.shared.space.notify_waiters();
    }

    /// Lets publishers waiting for room go on (the session was parked: nobody reads its
    /// queue, so waiting is pointless).
    pub(crate) fn release_publishers(&self) {
        self.shared.stalled.store(false, Ordering::Relaxed);
        self.shared.space.notify_waiters();
    }

    /// Asks the session to end with `reason` (the first reason given wins).
    pub(crate) fn close(&self, reason: CloseReason) {
        self.shared.reason.lock().get_or_insert(reason);
        self.shared.kicked.store(true, Ordering::Release);
        // Wakes the receiver, or leaves it a permit if it is not waiting yet; and one
        // waiting in `closing` (publishers waiting for room just look again).
        self.shared.ready.notify_one();
        self.shared.space.notify_waiters();
    }

    /// How many messages were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
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
        sized(queue, qos, 2)
    }

    /// An event at `qos` whose payload is `size` bytes (at least 2: `{}` padded).
    fn sized(queue: &SessionQueue, qos: u8, size: usize) -> Outbound {
        let path = crate::Path::parse("/q").unwrap();
        let payload = crate::Payload::detect(bytes::Bytes::from(
            format!("\"{}\"", "x".repeat(size.saturating_sub(2))).into_bytes(),
        ));
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
            session: crate::SessionId::new(),
            pattern: crate::Pattern::native("/q").unwrap(),
            options: crate::OnOptions {
                qos,
                ..Default::default()
            },
            queue: queue.clone(),
            protocol: Default::default(),
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

    fn payload_len(message: &Outbound) -> usize {
        size_of(message)
    }

    #[test]
    fn the_byte_limit_congests_then_drops_and_a_large_message_fits_an_empty_queue() {
        let limits = QueueLimits {
            messages: 100,
            bytes: 10,
        };
        let queue = SessionQueue::with_durable(limits, None);
        let policy = OverflowPolicy::DropNew;
        assert_eq!(payload_len(&sized(&queue, 0, 6)), 6);
        assert_eq!(
            queue.deliver(sized(&queue, 0, 50), policy),
            Delivery::Queued,
            "empty"
        );
        queue.pop();
        assert_eq!(queue.deliver(sized(&queue, 0, 6), policy), Delivery::Queued);
        assert_eq!(
            queue.deliver(sized(&queue, 0, 6), policy),
            Delivery::Congested
        );
        assert_eq!(
            queue.deliver(sized(&queue, 0, 6), policy),
            Delivery::Congested
        );
        assert_eq!(
            queue.deliver(sized(&queue, 0, 6), policy),
            Delivery::Dropped,
            "> 20 bytes"
        );
        assert_eq!(queue.dropped(), 1);
        queue.pop();
        queue.pop();
        assert_eq!(queue.shared.bytes.load(Ordering::Relaxed), 6);
        assert_eq!(queue.deliver(sized(&queue, 0, 4), policy), Delivery::Queued);
        queue.shut();
        assert_eq!(queue.shared.bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn drop_oldest_keeps_the_latest_messages() {
        let queue = SessionQueue::new(1);
        let policy = OverflowPolicy::DropOldest;
        for size in [3, 4, 5] {
            queue.deliver(sized(&queue, 0, size), policy);
        }
        assert_eq!(
            queue.deliver(sized(&queue, 0, 6), policy),
            Delivery::DisplacedOldest
        );
        assert_eq!(
            queue.dropped(),
            2,
            "the 3- and 4-byte messages were displaced in turn"
        );
        let left: Vec<_> = std::iter::from_fn(|| queue.pop())
            .map(|m| payload_len(&m))
            .collect();
        assert_eq!(left, [5, 6]);
        // Messages that are not events are never displaced.
        let queue = SessionQueue::new(1);
        queue.deliver(Outbound::Close(CloseReason::Shutdown), policy);
        queue.deliver(Outbound::Close(CloseReason::Shutdown), policy);
        assert_eq!(
            queue.deliver(sized(&queue, 0, 3), policy),
            Delivery::Dropped
        );
    }
}
