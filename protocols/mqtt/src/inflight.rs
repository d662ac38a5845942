//! The in-flight window of a connection's outbound QoS 1 and 2 PUBLISHes: packet
//! identifier allocation and the acknowledgement flows (MQTT §4.3.2, §4.3.3).
//!
//! The window is the backpressure (STYLE 13): while it is full the connection stops
//! pulling from its session's outbound queue, so a slow subscriber never makes the broker
//! buffer more than `window` unacknowledged messages for it; the core's bounded queue then
//! applies its overflow policy. Each slot keeps its message (an `Arc`'d event or a record,
//! no copy of the payload): a durable session hands the unacknowledged ones back to the
//! core when the connection ends, to be resent on the next one (MQTT-4.4.0-1).

use std::collections::HashMap;

/// The keys are identifiers this window allocates itself, so a fixed-seed fast hash is
/// safe (a client's PUBACK only looks one up) and cheaper than SipHash, which showed in
/// profiles of QoS 1 fan-out.
type Hasher = foldhash::fast::FixedState;

/// Which acknowledgement an outbound QoS 1/2 message awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Awaiting {
    /// QoS 1, PUBLISH sent, waiting for PUBACK.
    Ack,
    /// QoS 2, PUBLISH sent, waiting for PUBREC.
    Receipt,
    /// QoS 2, PUBREL sent, waiting for PUBCOMP.
    Completion,
}

/// What to do about a PUBREC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PubRecAction {
    /// Send PUBREL (also for an unknown identifier, so the client can finish its flow).
    SendPubRel,
    /// The client refused the message (reason `>= 0x80`): the flow is over.
    Done,
}

#[derive(Debug)]
struct Slot<M> {
    stage: Awaiting,
    /// When it was sent, counted per window: the order to resend in.
    order: u64,
    message: M,
}

/// Packet identifiers of unacknowledged outbound messages, at most `window` of them,
/// each with its message `M`.
#[derive(Debug)]
pub(crate) struct Inflight<M> {
    window: usize,
    next: u16,
    sent: u64,
    slots: HashMap<u16, Slot<M>, Hasher>,
}

impl<M> Inflight<M> {
    /// An empty window admitting `window` (1–65,535) messages at once; 0 is treated as 1.
    pub(crate) fn new(window: u16) -> Self {
        Self {
            window: usize::from(window.max(1)),
            next: 1,
            sent: 0,
            slots: HashMap::default(),
        }
    }

    /// Whether another message may be sent now.
    pub(crate) fn has_room(&self) -> bool {
        self.slots.len() < self.window
    }

    /// Allocates a packet identifier for a QoS 1 or 2 `message`; `None` when the window is
    /// full.
    #[cfg(test)]
    pub(crate) fn allocate(&mut self, qos: u8, message: M) -> Option<u16> {
        let pkid = self.free_id()?;
        let stage = if qos >= 2 {
            Awaiting::Receipt
        } else {
            Awaiting::Ack
        };
        self.put(pkid, stage, message);
        Some(pkid)
    }

    /// The next free packet identifier, when the window has room (taken by
    /// [`Inflight::put`]). Identifiers are used in turn (1, 2, …, 65,535, 1, …), skipping
    /// ones in use.
    pub(crate) fn free_id(&mut self) -> Option<u16> {
        if !self.has_room() {
            return None;
        }
        // The window is below 65,535, so a free identifier exists within 65,535 steps.
        loop {
            let pkid = self.next;
            self.next = self.next.checked_add(1).unwrap_or(1);
            if !self.slots.contains_key(&pkid) {
                return Some(pkid);
            }
        }
    }

    /// Whether `pkid` is in flight.
    pub(crate) fn in_use(&self, pkid: u16) -> bool {
        self.slots.contains_key(&pkid)
    }

    /// Takes `pkid` for a resent message at `stage` (a resumed session's, whose packet id
    /// the client may already know), even beyond the window; `false` (nothing taken)
    /// when it is in use.
    pub(crate) fn resume(&mut self, pkid: u16, stage: Awaiting, message: M) -> bool {
        if pkid == 0 || self.slots.contains_key(&pkid) {
            return false;
        }
        self.put(pkid, stage, message);
        true
    }

    /// Keeps `message`, sent under `pkid` (from [`Inflight::free_id`], or a resend's own),
    /// awaiting `stage`.
    pub(crate) fn put(&mut self, pkid: u16, stage: Awaiting, message: M) {
        self.sent += 1;
        let order = self.sent;
        self.slots.insert(
            pkid,
            Slot {
                stage,
                order,
                message,
            },
        );
    }

    /// A PUBACK arrived: the QoS 1 message it acknowledges, if it matched one in flight.
    pub(crate) fn on_puback(&mut self, pkid: u16) -> Option<M> {
        self.remove_if(pkid, Awaiting::Ack)
    }

    /// A PUBREC arrived with an MQTT 5 reason code (`0x00` for 3.1.1); with a refusal the
    /// message is returned (its flow is over).
    pub(crate) fn on_pubrec(&mut self, pkid: u16, reason: u8) -> (PubRecAction, Option<M>) {
        if reason >= 0x80 {
            let message = self.remove_if(pkid, Awaiting::Receipt);
            return (PubRecAction::Done, message);
        }
        if let Some(slot) = self.slots.get_mut(&pkid)
            && slot.stage == Awaiting::Receipt
        {
            slot.stage = Awaiting::Completion;
        }
        (PubRecAction::SendPubRel, None)
    }

    /// The message in flight under `pkid`.
    pub(crate) fn get_mut(&mut self, pkid: u16) -> Option<&mut M> {
        self.slots.get_mut(&pkid).map(|slot| &mut slot.message)
    }

    /// A PUBCOMP arrived: the QoS 2 message it completes, if it matched one in flight.
    pub(crate) fn on_pubcomp(&mut self, pkid: u16) -> Option<M> {
        self.remove_if(pkid, Awaiting::Completion)
    }

    /// Every message in flight, in the order they were sent, with packet id and stage.
    pub(crate) fn drain(&mut self) -> Vec<(u16, Awaiting, M)> {
        let mut slots: Vec<_> = self.slots.drain().collect();
        slots.sort_by_key(|(_, slot)| slot.order);
        slots
            .into_iter()
            .map(|(pkid, slot)| (pkid, slot.stage, slot.message))
            .collect()
    }

    fn remove_if(&mut self, pkid: u16, stage: Awaiting) -> Option<M> {
        if self.slots.get(&pkid).map(|slot| slot.stage) == Some(stage) {
            self.slots.remove(&pkid).map(|slot| slot.message)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_and_acks_free_it() {
        let mut w = Inflight::new(2);
        let a = w.allocate(1, 'a').unwrap();
        let b = w.allocate(2, 'b').unwrap();
        assert_ne!(a, b);
        assert!(!w.has_room());
        assert_eq!(w.allocate(1, 'c'), None);
        // A PUBACK for the QoS 2 message does not free it.
        assert_eq!(w.on_puback(b), None);
        assert_eq!(w.on_puback(a), Some('a'));
        assert!(w.has_room());
        assert_eq!(w.on_pubrec(b, 0), (PubRecAction::SendPubRel, None));
        assert_eq!(w.on_puback(b), None);
        assert_eq!(w.on_pubcomp(b), Some('b'));
        assert!(w.slots.is_empty());
    }

    #[test]
    fn refused_pubrec_ends_the_flow() {
        let mut w = Inflight::new(1);
        let a = w.allocate(2, ()).unwrap();
        assert_eq!(w.on_pubrec(a, 0x87), (PubRecAction::Done, Some(())));
        assert!(w.has_room());
    }

    #[test]
    fn identifiers_wrap_and_skip_those_in_use() {
        let mut w = Inflight::new(u16::MAX);
        let first = w.allocate(1, ()).unwrap();
        assert_eq!(first, 1);
        for _ in 0..65_533 {
            let pkid = w.allocate(1, ()).unwrap();
            assert!(w.on_puback(pkid).is_some());
        }
        // next is 65,535, then wraps to 1 (in use), so 2.
        assert_eq!(w.allocate(1, ()), Some(65_535));
        assert_eq!(w.allocate(1, ()), Some(2));
        assert_ne!(w.allocate(1, ()), Some(0));
    }

    #[test]
    fn drain_gives_messages_in_send_order_and_resume_keeps_packet_ids() {
        let mut w = Inflight::new(3);
        assert!(w.resume(40, Awaiting::Completion, 'x'));
        assert!(!w.resume(40, Awaiting::Ack, 'y'), "in use");
        let a = w.allocate(1, 'a').unwrap();
        let b = w.allocate(2, 'b').unwrap();
        assert_eq!(
            w.drain(),
            vec![
                (40, Awaiting::Completion, 'x'),
                (a, Awaiting::Ack, 'a'),
                (b, Awaiting::Receipt, 'b')
            ]
        );
    }
}
