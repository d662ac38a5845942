//! The pipelined publisher: PUBLISH packets are encoded in batches of up to
//! [`WRITE_BATCH`] bytes and written with one syscall, without waiting for the broker;
//! at QoS 1 and 2 an in-flight window bounds what is unacknowledged, and PUBACK / PUBREC /
//! PUBCOMP are handled as they arrive (PUBRELs go out with the next write). Optionally
//! paced at a fixed rate.

use std::time::Duration;

use tokio::time::Instant;

use super::conn::Conn;
use super::packet::{self, Ack, Packet};
use super::stamp;

/// Bytes of publishes encoded before the next write.
const WRITE_BATCH: usize = 64 * 1024;

/// What to publish.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) topic: String,
    pub(crate) qos: u8,
    /// Messages, numbered 0..count.
    pub(crate) count: u64,
    /// Payload size in bytes (≥ 16).
    pub(crate) payload: usize,
    /// Unacknowledged QoS 1/2 publishes allowed at once (1..=65,535).
    pub(crate) window: usize,
    /// Messages per second, or as fast as possible.
    pub(crate) rate: Option<f64>,
}

/// How far a publisher got.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Publishes written to the socket.
    pub(crate) sent: u64,
    /// Publishes the broker acknowledged (PUBACK, or PUBCOMP at QoS 2).
    pub(crate) acked: u64,
    /// When the last publish was written (QoS 0) or acknowledged (QoS 1/2).
    pub(crate) done: Option<Instant>,
    /// Why it stopped early (socket error, malformed input, deadline).
    pub(crate) error: Option<String>,
}

/// The in-flight window: one state per packet id.
struct Window {
    /// 0 free, 1 waiting for PUBACK/PUBREC, 2 waiting for PUBCOMP.
    state: Vec<u8>,
    used: usize,
    limit: usize,
    next: u16,
}

impl Window {
    fn new(limit: usize) -> Self {
        Self {
            state: vec![0; 1 << 16],
            used: 0,
            limit: limit.clamp(1, 65_535),
            next: 1,
        }
    }

    /// A free packet id, or `None` when the window is full (or the next id is still
    /// taken, which only happens when acks come far out of order).
    fn take(&mut self) -> Option<u16> {
        let id = self.next;
        if self.used >= self.limit || self.state[usize::from(id)] != 0 {
            return None;
        }
        self.state[usize::from(id)] = 1;
        self.used += 1;
        self.next = if id == u16::MAX { 1 } else { id + 1 };
        Some(id)
    }

    /// Moves `id` from state `from` to `to`; false if it was not in `from` (a stray ack).
    fn step(&mut self, id: u16, from: u8, to: u8) -> bool {
        let slot = &mut self.state[usize::from(id)];
        if *slot != from {
            return false;
        }
        *slot = to;
        if to == 0 {
            self.used -= 1;
        }
        true
    }
}

/// Publishes `plan` on `conn`, starting the pacing clock at `start`, until every message is
/// written (QoS 0) or acknowledged (QoS 1/2), or `deadline`.
pub(crate) async fn publish(
    conn: &mut Conn,
    plan: &Plan,
    start: Instant,
    deadline: Instant,
) -> Published {
    let mut out = Published::default();
    let mut window = Window::new(plan.window);
    let topic = plan.topic.as_bytes();
    loop {
        let now = Instant::now();
        if now >= deadline {
            out.error = Some(format!(
                "deadline: {} sent, {} acknowledged of {}",
                out.sent, out.acked, plan.count
            ));
            break;
        }
        let due = match plan.rate {
            Some(rate) => ((now - start).as_secs_f64() * rate) as u64 + 1,
            None => u64::MAX,
        }
        .min(plan.count);
        if out.sent < due && conn.wbuf.len() < WRITE_BATCH {
            // One timestamp per batch: the batch goes out in the write that follows.
            let now_ns = stamp::nanos_at(now.into_std());
            while out.sent < due && conn.wbuf.len() < WRITE_BATCH {
                let pkid = if plan.qos == 0 {
                    0
                } else {
                    match window.take() {
                        Some(id) => id,
                        None => break,
                    }
                };
                packet::publish_header(&mut conn.wbuf, topic, plan.qos, pkid, plan.payload);
                stamp::put(&mut conn.wbuf, out.sent, now_ns, plan.payload);
                out.sent += 1;
            }
        }
        if out.sent == plan.count && window.used == 0 && conn.is_written() {
            out.done = Some(now);
            break;
        }
        // Wait for the socket, or for the next message to be due when pacing.
        let next_due = match plan.rate {
            Some(rate) if out.sent < plan.count && out.sent >= due => {
                Some(start + Duration::from_secs_f64(out.sent as f64 / rate))
            }
            _ => None,
        };
        let wake = next_due.map_or(deadline, |at| at.min(deadline));
        let io = match tokio::time::timeout_at(wake, conn.io()).await {
            Ok(io) => io,
            Err(_) => continue,
        };
        if let Err(e) = io {
            out.error = Some(format!("publishing: {e}"));
            break;
        }
        let acked = &mut out.acked;
        let drained = conn.drain(|p, wbuf| match p {
            Packet::PubAck(id) if plan.qos == 1 && window.step(id, 1, 0) => *acked += 1,
            // A repeated PUBREC gets its PUBREL again.
            Packet::PubRec(id)
                if plan.qos == 2
                    && (window.step(id, 1, 2) || window.state[usize::from(id)] == 2) =>
            {
                packet::ack(wbuf, Ack::PubRel, id);
            }
            Packet::PubComp(id) if plan.qos == 2 && window.step(id, 2, 0) => *acked += 1,
            _ => {}
        });
        if let Err(e) = drained {
            out.error = Some(format!("{e:#}"));
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_in_flight_ids_and_wraps() {
        let mut w = Window::new(2);
        assert_eq!(w.take(), Some(1));
        assert_eq!(w.take(), Some(2));
        assert_eq!(w.take(), None, "full");
        assert!(w.step(1, 1, 0));
        assert!(!w.step(1, 1, 0), "a second PUBACK for a free id is stray");
        assert_eq!(w.take(), Some(3));
        assert!(w.step(2, 1, 2), "PUBREC");
        assert!(w.step(2, 2, 0), "PUBCOMP");
        w.next = u16::MAX;
        assert!(w.step(3, 1, 0));
        assert_eq!(w.take(), Some(u16::MAX));
        assert_eq!(w.take(), Some(1), "0 is never a packet id");
    }

    #[test]
    fn window_waits_for_an_id_still_in_flight() {
        let mut w = Window::new(65_535);
        w.next = 5;
        w.state[5] = 1;
        w.used = 1;
        assert_eq!(w.take(), None);
    }
}
