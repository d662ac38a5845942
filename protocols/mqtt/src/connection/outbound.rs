//! Messages to the client: events from the session's outbound queue and retained records,
//! encoded as PUBLISH under the in-flight window.
//!
//! The payload bytes are the event's shared bytes, copied once into the write buffer; the
//! topic is the path without its leading `/`; nothing is allocated per message unless it
//! carries meta (MQTT 5 user properties).

use std::sync::Arc;

use futures_util::FutureExt as _;
use pathmq_core::durable::DurableMessage;
use pathmq_core::{
    Consistency, Event, EventKind, Format, MessageProperties, Outbound, Record, Subscription,
    now_ms,
};

use super::{Connection, Ending, FLUSH_AT};
use crate::alias;
use crate::codec;
use crate::inflight::Awaiting;
use crate::packet::{OutgoingPublish, Reply, TooLarge, Version};
use crate::transport::Transport;

/// How many more messages one wake-up takes from the session queue when they are ready,
/// before the write buffer is written.
const OUTBOUND_BATCH: usize = 256;

/// The content type MQTT 5 subscribers get with JSON payloads (DESIGN.md §4).
const JSON: &str = "application/json";

/// What an in-flight slot keeps of its message: the message itself (boxed) when it is
/// still needed after the PUBLISH went out — a durable session hands it back, a shared
/// subscription's may go to another member, a consistency ACKNOWLEDGED writer counts its
/// acknowledgement — and nothing otherwise, so a busy window of an ordinary session
/// keeps a few bytes per message, not the event.
pub(super) type Kept = Option<Box<Pending>>;

/// An application message for the client.
#[derive(Debug)]
pub(super) enum Pending {
    /// A live event.
    Event {
        event: Arc<Event>,
        /// Retain As Published and the event stored a record; otherwise 0.
        retain: bool,
        /// The Subscription Identifiers of the matching subscriptions.
        subscription_ids: Box<[u32]>,
        /// The shared subscription it came through, when only shared ones matched.
        shared_via: Option<Arc<Subscription>>,
    },
    /// A stored record sent because of a SUBSCRIBE (retain 1), with that subscription's
    /// identifier. Boxed: a record is large, and in-flight slots hold a `Pending`.
    Record(Box<Record>, Option<u32>),
    /// A QoS 1/2 message of a durable session: acknowledged to the core once the client
    /// acknowledges it, resent with its packet id (and DUP) when it has one.
    Durable(DurableMessage),
}

impl Pending {
    /// Its MQTT 5 properties (a publisher's, or a retained record's).
    fn properties(&self) -> Option<&MessageProperties> {
        match self {
            Pending::Event { event, .. } => event.properties.as_deref(),
            Pending::Durable(message) => message.event.properties.as_deref(),
            Pending::Record(record, _) => record.properties.as_deref(),
        }
    }

    /// The event it carries (a retained record carries none).
    fn event(&self) -> Option<&Event> {
        match self {
            Pending::Event { event, .. } => Some(event),
            Pending::Durable(message) => Some(&message.event),
            Pending::Record(..) => None,
        }
    }

    /// Whether the message is needed after its PUBLISH went out, whatever the session
    /// ([`Kept`]).
    fn needed_after_sending(&self) -> bool {
        match self {
            Pending::Event {
                event, shared_via, ..
            } => shared_via.is_some() || event.consistency == Consistency::Acknowledged,
            Pending::Durable(_) => true,
            Pending::Record(..) => false,
        }
    }

    /// The packet id a durable message was sent with before.
    fn sent_pkid(&self) -> Option<u16> {
        match self {
            Pending::Durable(message) => message.pkid,
            _ => None,
        }
    }

    /// This message as a durable session keeps it, sent under `pkid` at `stage` (`None`:
    /// not sent), or `None` for QoS 0.
    pub(super) fn into_durable(
        self,
        qos: u8,
        sent: Option<(u16, Awaiting)>,
    ) -> Option<DurableMessage> {
        let mut message = match self {
            Pending::Durable(message) => message,
            _ if qos == 0 => return None,
            Pending::Event {
                event,
                retain,
                subscription_ids,
                shared_via,
            } => DurableMessage {
                seq: 0,
                event,
                qos,
                retain,
                pkid: None,
                released: false,
                subscription_ids,
                shared_via,
            },
            Pending::Record(record, subscription_id) => {
                let record = *record;
                DurableMessage {
                    seq: 0,
                    event: Arc::new(
                        Event::new(
                            EventKind::Set,
                            record.path,
                            record.payload,
                            record.created,
                            record.modified,
                            None,
                            None,
                            Consistency::Transactional,
                            None,
                            qos,
                        )
                        .with_properties(record.properties),
                    ),
                    qos,
                    retain: true,
                    pkid: None,
                    released: false,
                    subscription_ids: subscription_id.into_iter().collect(),
                    shared_via: None,
                }
            }
        };
        if let Some((pkid, stage)) = sent {
            message.pkid = Some(pkid);
            message.released = stage == Awaiting::Completion;
        }
        Some(message)
    }
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
                let pathmq_core::MqttDelivery {
                    qos,
                    retain,
                    subscription_ids,
                    shared_via,
                } = subscriptions.mqtt_delivery(&event);
                let pending = Pending::Event {
                    event,
                    retain,
                    subscription_ids,
                    shared_via,
                };
                self.deliver(pending, qos);
                Ok(())
            }
            Outbound::Durable(message) => {
                let qos = message.qos;
                self.deliver(Pending::Durable(message), qos);
                Ok(())
            }
            Outbound::Close(reason) => Err(Ending::Core(reason)),
            other => {
                tracing::debug!(?other, "outbound message MQTT does not handle; ignored");
                Ok(())
            }
        }
    }

    /// Resends what a resumed session's last connection left unacknowledged, in order
    /// (MQTT-4.4.0-1): a PUBREL for a QoS 2 message whose PUBREC arrived, the PUBLISH
    /// (with DUP and its packet id, when it was sent) otherwise.
    pub(super) fn resend(&mut self, unacked: Vec<DurableMessage>) {
        for message in unacked {
            match message.pkid {
                Some(pkid) if message.released && message.qos == 2 => {
                    let kept = Some(Box::new(Pending::Durable(message)));
                    if self.inflight.resume(pkid, Awaiting::Completion, kept) {
                        self.reply(&Reply::PubRel { pkid });
                    }
                }
                _ => {
                    let qos = message.qos;
                    self.deliver(Pending::Durable(message), qos);
                }
            }
        }
    }

    /// Sends `message` at `qos` now, or queues it behind earlier ones when the window is
    /// full (order is kept).
    pub(super) fn deliver(&mut self, message: Pending, qos: u8) {
        if self.pending.is_empty() && (qos == 0 || self.inflight.has_room()) {
            self.send(message, qos);
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
                self.send(message, qos);
            }
        }
    }

    /// The client acknowledged `message` (PUBACK, PUBCOMP): a writer waiting with
    /// consistency ACKNOWLEDGED counts it (DESIGN.md §6), and it is done with.
    pub(super) fn acknowledged(&self, message: Pending) {
        if let Some(event) = message.event()
            && event.consistency == Consistency::Acknowledged
            && let Some(id) = &event.publication_id
        {
            self.session.core().acknowledge(self.session.id(), id);
        }
        self.done_with(message);
    }

    /// The client is done with `message` (acknowledged, refused, or it could not be
    /// sent): a durable one leaves the store.
    pub(super) fn done_with(&self, message: Pending) {
        if let Pending::Durable(message) = message {
            self.session.acknowledged(message.seq);
        }
    }

    /// Encodes one PUBLISH into the write buffer and keeps a QoS 1/2 message in the
    /// window. A message larger than the client's Maximum Packet Size is dropped (MQTT 5
    /// §3.1.2.11.4), as if it had been sent. A durable QoS 2 message is stored with its
    /// packet id before the PUBLISH is written (the next flush waits for it), so a
    /// restart resends it under the same id.
    fn send(&mut self, mut message: Pending, qos: u8) {
        // The clock is read only for a message with an expiry.
        let now = match message.properties().and_then(|p| p.expires_at_ms) {
            Some(_) => now_ms(),
            None => 0,
        };
        // MQTT-3.3.2-5: an expired message is not delivered — unless it was sent before
        // (a resend must complete its flow, MQTT-4.4.0-1).
        if message.sent_pkid().is_none() && message.properties().is_some_and(|p| p.expired(now)) {
            return self.done_with(message);
        }
        let mut dup = false;
        let pkid = match qos {
            0 => 0,
            _ => match message.sent_pkid() {
                Some(pkid) if !self.inflight.in_use(pkid) => {
                    dup = true;
                    pkid
                }
                // Callers check the window; should it be full, the message is dropped
                // rather than sent beyond the client's Receive Maximum.
                _ => match self.inflight.free_id() {
                    Some(pkid) => pkid,
                    None => return self.done_with(message),
                },
            },
        };
        if qos == 2
            && let Pending::Durable(durable) = &mut message
            && durable.pkid != Some(pkid)
        {
            durable.pkid = Some(pkid);
            self.log_ticket = self.log_ticket.max(self.session.rewrite(durable));
        }
        let (path, payload, meta, retain, ids): (_, _, _, _, &[u32]) = match &message {
            Pending::Event {
                event,
                retain,
                subscription_ids,
                ..
            } => (
                &event.path,
                &event.payload,
                event.meta.as_ref(),
                *retain,
                subscription_ids,
            ),
            Pending::Record(record, id) => {
                (&record.path, &record.payload, None, true, id.as_slice())
            }
            Pending::Durable(m) => (
                &m.event.path,
                &m.event.payload,
                m.event.meta.as_ref(),
                m.retain,
                &m.subscription_ids,
            ),
        };
        let properties = message.properties();
        let topic = path.to_topic();
        let alias = match self.version {
            Version::V5 => self.aliases.outbound(topic),
            Version::V3 | Version::V4 => alias::Outbound::Topic,
        };
        let (sent_topic, topic_alias) = match alias {
            alias::Outbound::Topic => (topic, None),
            alias::Outbound::Set(alias) => (topic, Some(alias)),
            alias::Outbound::Use(alias) => ("", Some(alias)),
        };
        let publish = OutgoingPublish {
            topic: sent_topic,
            payload: &payload.bytes,
            qos,
            retain,
            pkid,
            dup,
            content_type: (payload.format == Format::Json).then_some(JSON),
            meta,
            properties,
            message_expiry_s: properties.and_then(|p| p.remaining_expiry_s(now)),
            subscription_ids: ids,
            topic_alias,
        };
        let encoded = codec::encode_publish(
            self.version,
            &mut self.write_buf,
            &publish,
            self.client_max_packet_size.map(|max| max as usize),
        );
        match encoded {
            Ok(()) if qos > 0 => {
                let stage = match qos {
                    1 => Awaiting::Ack,
                    _ => Awaiting::Receipt,
                };
                let kept = (self.session.is_durable() || message.needed_after_sending())
                    .then(|| Box::new(message));
                self.inflight.put(pkid, stage, kept);
            }
            Ok(()) => self.done_with(message),
            Err(TooLarge { size }) => {
                tracing::debug!(
                    topic,
                    size,
                    limit = self.client_max_packet_size,
                    "message larger than the client accepts; dropped"
                );
                if let alias::Outbound::Set(_) = alias {
                    // Never sent: the client does not know it.
                    self.aliases.forget(topic);
                }
                self.done_with(message);
            }
        }
    }
}
