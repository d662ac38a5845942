//! The in-flight window of a connection's outbound QoS 1 and 2 PUBLISHes: packet
//! identifier allocation and the acknowledgement flows (MQTT §4.3.2, §4.3.3).
//!
//! The window is the backpressure (STYLE 13): while it is full the connection stops
//! pulling from its session's outbound queue, so a slow subscriber never makes the broker
//! buffer more than `window` unacknowledged messages for it; the core's bounded queue then
//! applies its overflow policy. No payload is kept: sessions are not durable yet, so
//! nothing is ever retransmitted.

use std::collections::HashMap;

/// The keys are identifiers this window allocates itself, so a fixed-seed fast hash is
/// safe (a client's PUBACK only looks one up) and cheaper than SipHash, which showed in
/// profiles of QoS 1 fan-out.
type Hasher = foldhash::fast::FixedState;

/// Which acknowledgement an outbound QoS 1/2 message awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
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

/// Packet identifiers of unacknowledged outbound messages, at most `window` of them.
#[derive(Debug)]
pub(crate) struct Inflight {
    window: usize,
    next: u16,
    stages: HashMap<u16, Awaiting, Hasher>,
}

impl Inflight {
    /// An empty window admitting `window` (1–65,535) messages at once; 0 is treated as 1.
    pub(crate) fn new(window: u16) -> Self {
        Self {
            window: usize::from(window.max(1)),
            next: 1,
            stages: HashMap::default(),
        }
    }

    /// Whether another message may be sent now.
    pub(crate) fn has_room(&self) -> bool {
        self.stages.len() < self.window
    }

    /// Allocates a packet identifier for a QoS 1 or 2 message; `None` when the window is
    /// full. Identifiers are used in turn (1, 2, …, 65,535, 1, …), skipping ones in use.
    pub(crate) fn allocate(&mut self, qos: u8) -> Option<u16> {
        if !self.has_room() {
            return None;
        }
        // The window is below 65,535, so a free identifier exists within 65,535 steps.
        loop {
            let pkid = self.next;
            self.next = self.next.checked_add(1).unwrap_or(1);
            if let std::collections::hash_map::Entry::Vacant(slot) = self.stages.entry(pkid) {
                slot.insert(if qos >= 2 {
                    Awaiting::Receipt
                } else {
                    Awaiting::Ack
                });
                return Some(pkid);
            }
        }
    }

    /// Gives back an identifier whose PUBLISH was never sent.
    pub(crate) fn release(&mut self, pkid: u16) {
        self.stages.remove(&pkid);
    }

    /// A PUBACK arrived; whether it matched a QoS 1 message in flight.
    pub(crate) fn on_puback(&mut self, pkid: u16) -> bool {
        self.remove_if(pkid, Awaiting::Ack)
    }

    /// A PUBREC arrived with an MQTT 5 reason code (`0x00` for 3.1.1).
    pub(crate) fn on_pubrec(&mut self, pkid: u16, reason: u8) -> PubRecAction {
        if reason >= 0x80 {
            self.remove_if(pkid, Awaiting::Receipt);
            return PubRecAction::Done;
        }
        if let Some(stage) = self.stages.get_mut(&pkid)
            && *stage == Awaiting::Receipt
        {
            *stage = Awaiting::Completion;
        }
        PubRecAction::SendPubRel
    }

    /// A PUBCOMP arrived; whether it matched a QoS 2 message in flight.
    pub(crate) fn on_pubcomp(&mut self, pkid: u16) -> bool {
        self.remove_if(pkid, Awaiting::Completion)
    }

    fn remove_if(&mut self, pkid: u16, stage: Awaiting) -> bool {
        if self.stages.get(&pkid) == Some(&stage) {
            self.stages.remove(&pkid);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_and_acks_free_it() {
        let mut w = Inflight::new(2);
        let a = w.allocate(1).unwrap();
        let b = w.allocate(2).unwrap();
        assert_ne!(a, b);
        assert!(!w.has_room());
        assert_eq!(w.allocate(1), None);
        // A PUBACK for the QoS 2 message does not free it.
        assert!(!w.on_puback(b));
        assert!(w.on_puback(a));
        assert!(w.has_room());
        assert_eq!(w.on_pubrec(b, 0), PubRecAction::SendPubRel);
        assert!(!w.on_puback(b));
        assert!(w.on_pubcomp(b));
        assert!(w.stages.is_empty());
    }

    #[test]
    fn refused_pubrec_ends_the_flow() {
        let mut w = Inflight::new(1);
        let a = w.allocate(2).unwrap();
        assert_eq!(w.on_pubrec(a, 0x87), PubRecAction::Done);
        assert!(w.has_room());
    }

    #[test]
    fn identifiers_wrap_and_skip_those_in_use() {
        let mut w = Inflight::new(u16::MAX);
        let first = w.allocate(1).unwrap();
        assert_eq!(first, 1);
        for _ in 0..65_533 {
            let pkid = w.allocate(1).unwrap();
            assert!(w.on_puback(pkid));
        }
        // next is 65,535, then wraps to 1 (in use), so 2.
        assert_eq!(w.allocate(1), Some(65_535));
        assert_eq!(w.allocate(1), Some(2));
        assert_ne!(w.allocate(1), Some(0));
    }
}
