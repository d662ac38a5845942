//! The requests one connection has in flight, and the rule that keeps their effects in the
//! order the client sent them (issue 3: pipelining; DESIGN.md §5).
//!
//! A client may send many requests without waiting for answers. They are *started* (first
//! polled) in arrival order and *complete* concurrently; answers leave in request order
//! ([`FuturesOrdered`]). Consecutive stored `set`s of a connection therefore sit in the
//! store's write queue together and share its group commits.
//!
//! # Why effects keep the client's order
//!
//! Every request is classed by when it acts ([`Effect`]):
//!
//! * **Writes** (stored `set`, `remove`) act when the store commits them. They reach the
//!   store's write queue during their first poll: `Session::request` → `Core::handle`
//!   runs the inbound layers, the `/_SYSTEM` check and `Core::set`/`Core::remove`, and
//!   none of these waits before calling `Store::set`/`Store::remove`; `RedbStore` queues
//!   the op with `Writer::submit` (`send` on a bounded channel), `MemoryStore` applies it
//!   on the spot. Calls run `unconstrained` ([`crate::session`]): under tokio's
//!   cooperative budget, a send polled once the connection task's budget is spent yields
//!   before queueing, and would be queued after calls started later. The writer thread
//!   applies its queue in order and commits a batch atomically, running the commit hooks
//!   (publication) in batch order before answering. So writes take effect, and publish,
//!   in the order sent.
//!
//!   While the redb writer's queue is full, `Writer::submit` makes its callers take
//!   turns (a fair lock around the send), so a later call cannot take room freed for an
//!   earlier one (test `pipelined_sets_apply_in_order_while_the_writer_queue_is_full`).
//! * **Reads** (`get`, `count`, `on` with initial records) read a snapshot at some moment
//!   while they run (reader threads): alongside a write they could miss it (still
//!   waiting for its commit) or see a later one (committed in the same group). So reads
//!   and writes never overlap on one connection: a read starts once every earlier write
//!   is answered (committed, its events queued), a write once every earlier read is
//!   answered. Reads run side by side.
//! * **Now** (`on`, `off`, a `noStore` set) act during their first poll: the router is changed or the event published before the poll
//!   returns. They start once every earlier write is answered, so a subscription made
//!   after a set does not receive that set's event, an `off` after a set does not lose it,
//!   and a `noStore` event does not overtake the events of earlier stored sets. Anything
//!   started after them sees their effect, since they acted before it was first polled.
//!
//! A request that must wait is held ([`InFlight::accepts`] turns false) and no further
//! frame is read until it starts, so nothing overtakes it.
//!
//! The guarantee assumes inbound layers (`pathmq_core::Layer`) answer a request's first
//! poll without waiting, as the default (no layers) does. A layer that awaits something
//! (a remote authorizer) would let a later request of the connection reach the store
//! first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt as _, StreamExt as _};

/// A request running against the core: resolves to the frames that answer it. It does
/// nothing until first polled.
pub(crate) type Call = Pin<Box<dyn Future<Output = Vec<Bytes>> + Send>>;

/// When a request acts, which decides what it waits for (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Acts when the store commits it, in the store's write order.
    Write,
    /// Reads a snapshot of the store while it runs.
    Read,
    /// Acts during its first poll, or not at all.
    Now,
    /// Takes several store steps (a search, then removals; a write, then its tag
    /// snapshot): starts once everything before it is answered, and nothing after it
    /// starts before it is answered.
    Exclusive,
}

/// A connection's requests in flight: running ones and answers waiting for their turn.
pub(crate) struct InFlight {
    slots: FuturesOrdered<Slot>,
    /// A request that may not start yet; while it waits, no frame is read.
    held: Option<(Effect, Call)>,
    /// Writes, reads and exclusive requests started and not yet answered.
    writes: usize,
    reads: usize,
    exclusive: usize,
    max: usize,
}

impl InFlight {
    /// Room for `max` requests (at least 1).
    pub(crate) fn new(max: usize) -> Self {
        Self {
            slots: FuturesOrdered::new(),
            held: None,
            writes: 0,
            reads: 0,
            exclusive: 0,
            max: max.max(1),
        }
    }

    /// Whether the connection may read another frame: nothing is held and there is room.
    pub(crate) fn accepts(&self) -> bool {
        self.held.is_none() && self.slots.len() < self.max
    }

    /// Whether nothing is in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.held.is_none()
    }

    /// Adds a request that runs `call`: started now, or held until the requests it must
    /// follow are answered. Call only while [`InFlight::accepts`].
    pub(crate) fn submit(&mut self, effect: Effect, call: Call) {
        debug_assert!(self.held.is_none(), "submit while a request is held");
        if self.may_start(effect) {
            self.start(effect, call);
        } else {
            self.held = Some((effect, call));
        }
    }

    /// Adds a request answered already (a session action, a refused frame): its frames
    /// leave in their turn.
    pub(crate) fn answered(&mut self, frames: Vec<Bytes>) {
        self.slots.push_back(Slot::Answered(Some(frames)));
    }

    /// The next answer, in request order; pending while the oldest request runs, and
    /// never ready while nothing is in flight. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Vec<Bytes> {
        match self.slots.next().await {
            Some((effect, frames)) => {
                self.finished(effect);
                frames
            }
            // Nothing in flight (nothing can be held then): wait for ever, like an empty
            // queue.
            None => std::future::pending().await,
        }
    }

    /// The next answer if it is ready now. Polling also starts requests submitted since
    /// the last poll (their first poll), in the order submitted.
    pub(crate) fn next_ready(&mut self) -> Option<Vec<Bytes>> {
        if self.slots.is_empty() {
            return None;
        }
        self.next().now_or_never()
    }

    fn may_start(&self, effect: Effect) -> bool {
        self.exclusive == 0
            && match effect {
                Effect::Write => self.reads == 0,
                Effect::Read | Effect::Now => self.writes == 0,
                Effect::Exclusive => self.writes == 0 && self.reads == 0,
            }
    }

    fn start(&mut self, effect: Effect, call: Call) {
        match effect {
            Effect::Write => self.writes += 1,
            Effect::Read => self.reads += 1,
            Effect::Exclusive => self.exclusive += 1,
            Effect::Now => {}
        }
        self.slots.push_back(Slot::Running(effect, call));
    }

    /// A request of `effect` was answered: the held request may start now.
    fn finished(&mut self, effect: Option<Effect>) {
        match effect {
            Some(Effect::Write) => self.writes -= 1,
            Some(Effect::Read) => self.reads -= 1,
            Some(Effect::Exclusive) => self.exclusive -= 1,
            Some(Effect::Now) | None => {}
        }
        if let Some((effect, _)) = &self.held
            && self.may_start(*effect)
            && let Some((effect, call)) = self.held.take()
        {
            self.start(effect, call);
        }
    }
}

/// One request's place in the answer order.
enum Slot {
    /// Its frames, ready (taken when the slot completes).
    Answered(Option<Vec<Bytes>>),
    /// Running.
    Running(Effect, Call),
}

impl Future for Slot {
    /// The request's effect (`None`: answered without running) and its frames.
    type Output = (Option<Effect>, Vec<Bytes>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Answered(frames) => Poll::Ready((None, frames.take().unwrap_or_default())),
            Self::Running(effect, call) => call.as_mut().poll(cx).map(|f| (Some(*effect), f)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::oneshot;

    use super::*;

    /// Names of the calls first polled so far, in order.
    type Started = Arc<Mutex<Vec<&'static str>>>;

    /// A call named `name` that records its first poll in `started` and answers `name`
    /// once `done` fires (or is dropped).
    fn call(started: &Started, name: &'static str) -> (oneshot::Sender<()>, Call) {
        let (done, wait) = oneshot::channel();
        let started = started.clone();
        let call = Box::pin(async move {
            started.lock().unwrap().push(name);
            let _ = wait.await;
            vec![Bytes::from_static(name.as_bytes())]
        });
        (done, call)
    }

    fn answer(in_flight: &mut InFlight) -> Option<Bytes> {
        in_flight.next_ready().map(|frames| frames.concat().into())
    }

    /// Guards the ordering rule: writes start together, a read is held until every
    /// earlier write is answered, a write after a read until the read is; answers leave in
    /// request order.
    #[test]
    fn reads_and_writes_do_not_overlap_and_answers_keep_order() {
        let started = Started::default();
        let mut in_flight = InFlight::new(8);
        let (w1, call_w1) = call(&started, "w1");
        let (w2, call_w2) = call(&started, "w2");
        let (r, call_r) = call(&started, "r");
        let (_w3, call_w3) = call(&started, "w3");

        in_flight.submit(Effect::Write, call_w1);
        in_flight.submit(Effect::Write, call_w2);
        assert!(in_flight.accepts());
        in_flight.submit(Effect::Read, call_r);
        assert!(!in_flight.accepts(), "the read is held behind the writes");
        assert_eq!(answer(&mut in_flight), None);
        assert_eq!(*started.lock().unwrap(), ["w1", "w2"]);

        w2.send(()).unwrap();
        assert_eq!(answer(&mut in_flight), None, "w2 waits for w1's turn");
        w1.send(()).unwrap();
        assert_eq!(answer(&mut in_flight).as_deref(), Some(&b"w1"[..]));
        assert!(!in_flight.accepts(), "w2 is not answered yet");
        assert_eq!(answer(&mut in_flight).as_deref(), Some(&b"w2"[..]));
        assert!(
            in_flight.accepts(),
            "the read started once the writes were answered"
        );
        assert_eq!(answer(&mut in_flight), None);
        assert_eq!(*started.lock().unwrap(), ["w1", "w2", "r"]);

        in_flight.submit(Effect::Write, call_w3);
        assert!(!in_flight.accepts(), "a write waits for the read");
        r.send(()).unwrap();
        assert_eq!(answer(&mut in_flight).as_deref(), Some(&b"r"[..]));
        assert!(in_flight.accepts());
        assert_eq!(answer(&mut in_flight), None, "the write runs");
        assert_eq!(*started.lock().unwrap(), ["w1", "w2", "r", "w3"]);
    }

    /// Guards: `on`/`off` and `noStore` sets (effect now) wait for earlier writes, not
    /// for reads; answered requests keep their turn.
    #[test]
    fn now_requests_wait_for_writes_only() {
        let started = Started::default();
        let mut in_flight = InFlight::new(8);
        let (r, call_r) = call(&started, "r");
        let (_on, call_on) = call(&started, "on");
        in_flight.submit(Effect::Read, call_r);
        in_flight.submit(Effect::Now, call_on);
        assert!(in_flight.accepts(), "after a read, an `on` starts at once");
        in_flight.answered(vec![Bytes::from_static(b"login")]);
        let (w, call_w) = call(&started, "w");
        let (_off, call_off) = call(&started, "off");
        drop(r);
        assert_eq!(answer(&mut in_flight).as_deref(), Some(&b"r"[..]));
        in_flight.submit(Effect::Write, call_w);
        in_flight.submit(Effect::Now, call_off);
        assert!(!in_flight.accepts(), "an `off` after a set waits for it");
        assert_eq!(answer(&mut in_flight), None, "`on` is still running");
        assert_eq!(*started.lock().unwrap(), ["r", "on", "w"]);
        w.send(()).unwrap();
        drop(in_flight);
    }

    /// Guards: a request of several store steps (remove by criteria, set with a tag)
    /// waits for earlier writes, and a later write waits for it, so a search never sees
    /// a write sent after it.
    #[test]
    fn exclusive_requests_run_alone() {
        let started = Started::default();
        let mut in_flight = InFlight::new(8);
        let (w1, call_w1) = call(&started, "w1");
        let (x, call_x) = call(&started, "x");
        let (_w2, call_w2) = call(&started, "w2");
        in_flight.submit(Effect::Write, call_w1);
        in_flight.submit(Effect::Exclusive, call_x);
        assert!(!in_flight.accepts(), "held behind w1");
        assert_eq!(answer(&mut in_flight), None);
        w1.send(()).unwrap();
        assert_eq!(answer(&mut in_flight).as_deref(), Some(&b"w1"[..]));
        assert!(in_flight.accepts());
        in_flight.submit(Effect::Write, call_w2);
        assert!(
            !in_flight.accepts(),
            "a later write waits for the exclusive one"
        );
        assert_eq!(answer(&mut in_flight), None);
        assert_eq!(*started.lock().unwrap(), ["w1", "x"]);
        x.send(()).unwrap();
        assert_eq!(answer(&mut in_flight).as_deref(), Some(&b"x"[..]));
        assert_eq!(answer(&mut in_flight), None, "w2 runs");
        assert_eq!(*started.lock().unwrap(), ["w1", "x", "w2"]);
    }

    #[test]
    fn the_limit_counts_every_unanswered_request() {
        let started = Started::default();
        let mut in_flight = InFlight::new(2);
        let (_w, call_w) = call(&started, "w");
        in_flight.submit(Effect::Write, call_w);
        assert!(in_flight.accepts());
        in_flight.answered(vec![Bytes::from_static(b"describe")]);
        assert!(!in_flight.accepts(), "two in flight, the limit");
        assert_eq!(InFlight::new(0).max, 1, "0 is one at a time");
    }
}
