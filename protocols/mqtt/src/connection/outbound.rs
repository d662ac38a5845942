//! Messages to the client: events from the session's outbound queue and retained records,
//! encoded as PUBLISH under the in-flight window.
//!
//! The payload bytes are the event's shared bytes, copied once into the write buffer; the
//! topic is the path without its leading `/`; nothing is allocated per message unless it
//! carries meta (MQTT 5 user properties).

use std::sync::Arc;

use futures_util::FutureExt as _;
use pathmq_core::{Event, Format, Outbound, Record};

use super::{Connection, Ending, FLUSH_AT};
use crate::codec;
use crate::packet::{OutgoingPublish, TooLarge};
use crate::transport::Transport;

/// How many more messages one wake-up takes from the session queue when they are ready,
/// before the write buffer is written.
const OUTBOUND_BATCH: usize = 256;

/// The content type MQTT 5 subscribers get with JSON payloads (DESIGN.md §4).
const JSON: &str = "application/json";

/// An application message for the client.
#[derive(Debug)]
pub(super) enum Pending {
    /// A live event (retain 0).
    Event(Arc<Event>),
    /// A stored record sent because of a SUBSCRIBE (retain 1).
    Record(Record),
}

impl<T: Transport> Connection<T> {
    /// Whether the loop may take the next message from the session queue: only while
    /// nothing waits for the window and the window has room (STYLE 13).
    pub(super) fn can_pull(&self) -> bool {
        self.pending.is_empty() && self.inflight.has_room()
    }

    /// Handles `first` and up to [`OUTBOUND_BATCH`] more messages that are ready now, so
    /// that a burst is written at once.
    pub(super) fn on_outbound_batch(&mut self, first: Outbound) -> Result<(), Ending> {
        self.on_outbound(first)?;
        for _ in 0..OUTBOUND_BATCH {
            if !self.can_pull() || self.write_buf.len() >= FLUSH_AT {
                break;
            }
            // `recv` is cancel-safe: a message not ready now stays queued.
            match self.session.recv().now_or_never() {
                Some(Some(message)) => self.on_outbound(message)?,
                Some(None) => return Err(Ending::Shutdown),
                None => break,
            }
        }
        Ok(())
    }

    fn on_outbound(&mut self, message: Outbound) -> Result<(), Ending> {
        match message {
            Outbound::Event {
                event,
                subscriptions,
            } => {
                // One PUBLISH per event for this session, at the highest QoS any of its
                // matching subscriptions was granted, capped by the publish QoS.
                let granted = subscriptions
                    .iter()
                    .map(|s| s.options.qos)
                    .max()
                    .unwrap_or(0);
                let qos = event.qos.min(granted).min(2);
                self.deliver(Pending::Event(event), qos);
                Ok(())
            }
            Outbound::Close(reason) => Err(Ending::Core(reason)),
            other => {
                tracing::debug!(?other, "outbound message MQTT does not handle; ignored");
                Ok(())
            }
        }
    }

    /// Sends `message` at `qos` now, or queues it behind earlier ones when the window is
    /// full (order is kept).
    pub(super) fn deliver(&mut self, message: Pending, qos: u8) {
        if self.pending.is_empty() && (qos == 0 || self.inflight.has_room()) {
            self.send(&message, qos);
        } else {
            self.pending.push_back((message, qos));
        }
    }

    /// Sends queued messages while the window has room.
    pub(super) fn drain_pending(&mut self) {
        while let Some((_, qos)) = self.pending.front() {
            if *qos > 0 && !self.inflight.has_room() {
                break;
            }
            if let Some((message, qos)) = self.pending.pop_front() {
                self.send(&message, qos);
            }
        }
    }

    /// Encodes one PUBLISH into the write buffer. A message larger than the client's
    /// Maximum Packet Size is dropped (MQTT 5 §3.1.2.11.4), as if it had been sent.
    fn send(&mut self, message: &Pending, qos: u8) {
        let (path, payload, meta, retain) = match message {
            Pending::Event(event) => (&event.path, &event.payload, event.meta.as_ref(), false),
            Pending::Record(record) => (&record.path, &record.payload, None, true),
        };
        let pkid = match qos {
            0 => 0,
            _ => match self.inflight.allocate(qos) {
                Some(pkid) => pkid,
                // Callers check the window; should it be full, the message is dropped
                // rather than sent beyond the client's Receive Maximum.
                None => return,
            },
        };
        let publish = OutgoingPublish {
            topic: path.to_topic(),
            payload: &payload.bytes,
            qos,
            retain,
            pkid,
            content_type: (payload.format == Format::Json).then_some(JSON),
            meta,
        };
        let encoded = codec::encode_publish(
            self.version,
            &mut self.write_buf,
            &publish,
            self.client_max_packet_size,
        );
        if let Err(TooLarge { size }) = encoded {
            tracing::debug!(
                topic = publish.topic,
                size,
                limit = self.client_max_packet_size,
                "message larger than the client accepts; dropped"
            );
            if pkid != 0 {
                self.inflight.release(pkid);
            }
        }
    }
}
