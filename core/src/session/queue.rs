//! A session's outbound queue (DESIGN.md §2: every queue is bounded and says what
//! happens when full): backpressure for publishers first, then the overflow policy.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::event::{CloseReason, Outbound};

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
            session: crate::SessionId::new(),
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
