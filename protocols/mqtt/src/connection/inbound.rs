//! Packets from the client: PUBLISH and its QoS flows, acknowledgements of our
//! PUBLISHes, SUBSCRIBE (with retained messages) and UNSUBSCRIBE, PINGREQ, DISCONNECT.
//! Each is handled to the end before the next one is decoded, so one connection's
//! publications reach the core in order.

use bytes::Bytes;
use std::sync::Arc;

use pathmq_core::{
    Consistency, Glob, MessageProperties, Off, OnOptions, Path, PathError, Pattern, Payload,
    Request, Response, SetOptions, now_ms,
};
use serde_json::{Map, Value};

use super::outbound::Pending;
use super::{Connection, Ending, FLUSH_AT};
use crate::error::{
    ProtocolError, ReasonCode, publish_reason, subscribe_reason, unsubscribe_reason,
};
use crate::inflight::PubRecAction;
use crate::packet::{
    Packet, Publish, PublishProperties, Reply, RetainHandling, Subscribe, Unsubscribe, Version,
};
use crate::transport::Transport;

impl<T: Transport> Connection<T> {
    /// Handles one packet from the client.
    pub(super) async fn on_packet(&mut self, packet: Packet) -> Result<(), Ending> {
        match packet {
            Packet::Publish(publish) => self.on_publish(publish).await,
            Packet::PubAck { pkid } => {
                match self.inflight.on_puback(pkid) {
                    Some(Some(message)) => self.acknowledged(*message),
                    Some(None) => {}
                    None => tracing::debug!(pkid, "PUBACK for a packet id not in flight; ignored"),
                }
                self.drain_pending();
                Ok(())
            }
            Packet::PubRec { pkid, reason } => {
                match self.inflight.on_pubrec(pkid, reason) {
                    (PubRecAction::SendPubRel, _) => {
                        // A durable message is stored as released first (the flush waits),
                        // so that a restart resends the PUBREL, not the message.
                        if let Some(Some(kept)) = self.inflight.get_mut(pkid)
                            && let Pending::Durable(message) = &mut **kept
                            && !message.released
                        {
                            message.released = true;
                            let ticket = self.session.rewrite(message);
                            self.log_ticket = self.log_ticket.max(ticket);
                        }
                        self.reply(&Reply::PubRel { pkid });
                    }
                    (PubRecAction::Done, message) => {
                        if let Some(Some(message)) = message {
                            self.done_with(*message);
                        }
                        self.drain_pending();
                    }
                }
                Ok(())
            }
            Packet::PubRel { pkid } => {
                // 0x92: packet identifier not found (MQTT 5 §3.7.2.1); 3.1.1 sends PUBCOMP
                // anyway so the client can finish.
                let reason = if self.awaiting_pubrel.remove(&pkid) {
                    0x00
                } else {
                    0x92
                };
                self.reply(&Reply::PubComp { pkid, reason });
                Ok(())
            }
            Packet::PubComp { pkid } => {
                match self.inflight.on_pubcomp(pkid) {
                    Some(Some(message)) => self.acknowledged(*message),
                    Some(None) => {}
                    None => tracing::debug!(pkid, "PUBCOMP for a packet id not in flight; ignored"),
                }
                self.drain_pending();
                Ok(())
            }
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe).await,
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(unsubscribe).await,
            Packet::PingReq => {
                self.reply(&Reply::PingResp);
                Ok(())
            }
            Packet::Disconnect {
                reason,
                session_expiry,
            } => {
                if let Some(expiry) = session_expiry {
                    if expiry > 0 && self.connect_session_expiry == 0 {
                        return Err(ProtocolError::SessionExpiryAfterZero.into());
                    }
                    self.session.set_expiry(expiry.min(self.max_session_expiry));
                }
                Err(Ending::ClientDisconnect { reason })
            }
        }
    }

    /// A PUBLISH (DESIGN.md §4): retained → stored `set`; retained and empty → `remove`;
    /// otherwise a `set` with `no_store`. MQTT 5 user properties become the custom meta (a
    /// repeated key keeps its last value). QoS 1 is acknowledged (PUBACK) and QoS 2 received
    /// (PUBREC) once the request completed, i.e. the record is stored and the event is in
    /// every recipient's queue (DESIGN.md §6). A refused request gets an MQTT 5 failure
    /// reason, except a rate limit, which ends an MQTT 5 connection with DISCONNECT `0x96`;
    /// a 3.1.1 client, which has neither, gets a normal acknowledgement and the message is
    /// dropped (logged at debug, counted by the core when a layer refused it).
    async fn on_publish(&mut self, publish: Publish) -> Result<(), Ending> {
        let Publish {
            topic,
            qos,
            retain,
            pkid,
            payload,
            topic_alias,
            user_properties,
            properties,
        } = publish;
        let topic = match topic_alias {
            Some(alias) => self.aliases.resolve(alias, topic)?,
            None if topic.is_empty() && self.version == Version::V5 => {
                return Err(ProtocolError::EmptyTopicWithoutAlias.into());
            }
            None => topic,
        };
        let path = match Path::from_topic(&topic) {
            Ok(path) => path,
            Err(source) => return Err(ProtocolError::InvalidTopic { topic, source }.into()),
        };
        if qos == 2 {
            if self.awaiting_pubrel.contains(&pkid) {
                // A duplicate of a message already received (MQTT §4.3.3): not again.
                self.reply(&Reply::PubRec {
                    pkid,
                    reason: 0,
                    reason_string: None,
                });
                return Ok(());
            }
            if self.version == Version::V5
                && self.awaiting_pubrel.len() >= usize::from(self.receive_maximum)
            {
                return Err(ProtocolError::ReceiveMaximumExceeded {
                    limit: self.receive_maximum,
                }
                .into());
            }
        }
        let message = Message {
            payload,
            qos,
            retain,
            user_properties,
            properties,
        };
        let request = match message_request(path, message) {
            Ok(request) => request,
            Err(MessageError::Path(source)) => {
                return Err(ProtocolError::InvalidTopic { topic, source }.into());
            }
            Err(error @ MessageError::NotUtf8) => {
                // MQTT-3.3.2-4 allows refusing it: 0x99 payload format invalid.
                tracing::debug!(%error, %topic, qos, "PUBLISH refused");
                let reason = match self.version {
                    Version::V3 | Version::V4 => 0,
                    Version::V5 => 0x99,
                };
                self.acknowledge(qos, pkid, reason, &error.to_string());
                return Ok(());
            }
        };
        let (reason, why) = match self.session.request(request).await {
            Ok(_) => (0, String::new()),
            Err(error) if error.code() == 429 && self.version == Version::V5 => {
                let reason = error.to_string();
                return Err(ProtocolError::MessageRateTooHigh { reason }.into());
            }
            Err(error) => {
                tracing::debug!(%error, %topic, qos, "PUBLISH refused");
                let reason = match self.version {
                    Version::V3 | Version::V4 => 0,
                    Version::V5 => publish_reason(&error),
                };
                (reason, error.to_string())
            }
        };
        self.acknowledge(qos, pkid, reason, &why);
        Ok(())
    }

    /// `why` as the MQTT 5 Reason String of an acknowledgement (PUBACK, PUBREC, SUBACK,
    /// UNSUBACK) whose other bytes (reason codes) are `codes`, or `None`: when it is
    /// empty, when the client asked for no problem information [MQTT-3.1.2-29], or when
    /// it would make the packet larger than the client accepts [MQTT-3.4.2-2,
    /// MQTT-3.9.2-1] (fixed header, packet id, reason code and property lengths take at
    /// most 12 bytes).
    fn problem<'w>(&self, why: &'w str, codes: usize) -> Option<&'w str> {
        let fits = self
            .client_max_packet_size
            .is_none_or(|max| why.len() + codes + 12 <= max as usize);
        (self.problem_information && !why.is_empty() && fits).then_some(why)
    }

    /// Answers a QoS 1 PUBLISH (PUBACK) or QoS 2 one (PUBREC, remembering its packet id
    /// until PUBREL when accepted) with `reason`; a failure carries `why` as its MQTT 5
    /// Reason String unless the client asked for no problem information
    /// [MQTT-3.1.2-29].
    fn acknowledge(&mut self, qos: u8, pkid: u16, reason: ReasonCode, why: &str) {
        let reason_string = (reason >= 0x80).then(|| self.problem(why, 1)).flatten();
        match qos {
            1 => self.reply(&Reply::PubAck {
                pkid,
                reason,
                reason_string,
            }),
            2 => {
                if reason < 0x80 {
                    self.awaiting_pubrel.insert(pkid);
                }
                self.reply(&Reply::PubRec {
                    pkid,
                    reason,
                    reason_string,
                });
            }
            _ => {}
        }
    }

    /// A SUBSCRIBE: per filter an `on` at the requested QoS (replacing an existing
    /// subscription with the same filter, MQTT-3.8.4-3), the SUBACK, then the matching
    /// stored records as retained messages at min(granted QoS, 1), as the MQTT 5 retain
    /// handling option says. A shared subscription (`$share/<group>/<filter>`, MQTT 5
    /// §4.8.2, accepted from 3.1.1 clients too, as Mosquitto does) gets no retained
    /// messages [MQTT-3.8.4-?]; No Local on one is a protocol error [MQTT-3.8.3-4].
    async fn on_subscribe(&mut self, subscribe: Subscribe) -> Result<(), Ending> {
        if subscribe.filters.is_empty() {
            return Err(ProtocolError::EmptySubscribe.into());
        }
        let mut codes: Vec<ReasonCode> = Vec::with_capacity(subscribe.filters.len());
        let mut retained = Vec::new();
        // The first refusal's cause, for the SUBACK's reason string.
        let mut why = String::new();
        for filter in subscribe.filters {
            let (share, topic_filter) = match shared(&filter.filter) {
                Ok(parts) => parts,
                Err(()) => {
                    tracing::debug!(filter = %filter.filter, "malformed shared subscription");
                    codes.push(0x8F);
                    continue;
                }
            };
            if share.is_some() && filter.no_local {
                return Err(ProtocolError::SharedNoLocal.into());
            }
            let pattern = match Pattern::mqtt(topic_filter) {
                Ok(pattern) => pattern,
                Err(error) => {
                    tracing::debug!(%error, "SUBSCRIBE filter refused");
                    codes.push(0x8F);
                    continue;
                }
            };
            let granted = filter.qos.min(2);
            // Shared subscriptions are kept (and unsubscribed) under their whole filter.
            let key = match share {
                Some(_) => filter.filter.clone(),
                None => pattern.as_str().to_owned(),
            };
            let existed = self.subscriptions.contains_key(key.as_str());
            if existed {
                let off = Request::Off(Off::Pattern(key.clone()));
                if let Err(error) = self.session.request(off).await {
                    tracing::debug!(%error, "replacing a subscription: off failed");
                }
                self.subscriptions.remove(key.as_str());
            }
            let on = Request::On {
                pattern: pattern.clone(),
                options: OnOptions {
                    qos: granted,
                    no_local: filter.no_local,
                    retain_as_published: filter.retain_as_published,
                    subscription_id: subscribe.subscription_id,
                    share: share.map(Arc::from),
                    channel: share.map(|_| key.clone()),
                    ..OnOptions::default()
                },
            };
            match self.session.request(on).await {
                Ok(_) => {
                    codes.push(granted);
                    self.subscriptions.insert(key.into(), granted);
                    let send = share.is_none()
                        && match filter.retain_handling {
                            RetainHandling::Always => true,
                            RetainHandling::IfNew => !existed,
                            RetainHandling::Never => false,
                        };
                    if send {
                        retained.push((pattern, granted.min(1)));
                    }
                }
                Err(error) if error.code() == 429 && self.version == Version::V5 => {
                    let reason = error.to_string();
                    return Err(ProtocolError::MessageRateTooHigh { reason }.into());
                }
                Err(error) => {
                    tracing::debug!(%error, filter = %filter.filter, "SUBSCRIBE refused");
                    codes.push(subscribe_reason(&error));
                    if why.is_empty() {
                        why = error.to_string();
                    }
                }
            }
        }
        let reason_string = self.problem(&why, codes.len());
        self.reply(&Reply::SubAck {
            pkid: subscribe.pkid,
            codes: &codes,
            reason_string,
        });
        for (pattern, qos) in retained {
            let records = match self.session.retained(&pattern).await {
                Ok(records) => records,
                Err(error) => {
                    tracing::warn!(%error, %pattern, "reading retained messages failed");
                    continue;
                }
            };
            for record in records {
                self.deliver(
                    Pending::Record(Box::new(record), subscribe.subscription_id),
                    qos,
                );
                if self.write_buf.len() >= FLUSH_AT {
                    self.flush().await?;
                }
            }
        }
        Ok(())
    }

    /// An UNSUBSCRIBE: per filter an `off` of that exact filter; UNSUBACK `0x00`, or (MQTT
    /// 5) `0x11` when no such subscription existed.
    async fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Result<(), Ending> {
        if unsubscribe.filters.is_empty() {
            return Err(ProtocolError::EmptyUnsubscribe.into());
        }
        let mut codes: Vec<ReasonCode> = Vec::with_capacity(unsubscribe.filters.len());
        let mut why = String::new();
        for filter in &unsubscribe.filters {
            let key = match shared(filter) {
                Ok((Some(_), _)) => filter.clone(),
                Ok((None, _)) => match Pattern::mqtt(filter) {
                    Ok(pattern) => pattern.as_str().to_owned(),
                    Err(error) => {
                        tracing::debug!(%error, "UNSUBSCRIBE filter refused");
                        codes.push(0x8F);
                        continue;
                    }
                },
                Err(()) => {
                    codes.push(0x8F);
                    continue;
                }
            };
            let off = Request::Off(Off::Pattern(key.clone()));
            codes.push(match self.session.request(off).await {
                Ok(response) => {
                    // Forgotten only once the core let go of it: a refused UNSUBSCRIBE
                    // leaves a subscription that still delivers.
                    self.subscriptions.remove(key.as_str());
                    match response {
                        Response::Unsubscribed(ids) if !ids.is_empty() => 0x00,
                        _ => 0x11,
                    }
                }
                Err(error) if error.code() == 429 && self.version == Version::V5 => {
                    let reason = error.to_string();
                    return Err(ProtocolError::MessageRateTooHigh { reason }.into());
                }
                Err(error) => {
                    tracing::debug!(%error, %filter, "UNSUBSCRIBE refused");
                    if why.is_empty() {
                        why = error.to_string();
                    }
                    unsubscribe_reason(&error)
                }
            });
        }
        let reason_string = self.problem(&why, codes.len());
        self.reply(&Reply::UnsubAck {
            pkid: unsubscribe.pkid,
            codes: &codes,
            reason_string,
        });
        Ok(())
    }
}

/// Splits a topic filter into its shared subscription group and the filter proper:
/// `$share/<group>/<filter>` → `(Some(group), filter)`; any other → `(None, filter)`.
///
/// # Errors
/// A `$share/` filter without a group, with `+` or `#` in it, or without a filter
/// [MQTT-4.8.2-1/-2].
fn shared(filter: &str) -> Result<(Option<&str>, &str), ()> {
    let Some(rest) = filter.strip_prefix("$share/") else {
        return Ok((None, filter));
    };
    match rest.split_once('/') {
        Some((group, filter))
            if !group.is_empty() && !group.contains(['+', '#']) && !filter.is_empty() =>
        {
            Ok((Some(group), filter))
        }
        _ => Err(()),
    }
}

/// An application message from the client: a PUBLISH's or a will's.
pub(super) struct Message {
    pub(super) payload: Bytes,
    pub(super) qos: u8,
    pub(super) retain: bool,
    pub(super) user_properties: Vec<(String, String)>,
    pub(super) properties: Option<Box<PublishProperties>>,
}

/// Why an application message cannot become a request.
#[derive(Debug, thiserror::Error)]
pub(super) enum MessageError {
    /// The topic cannot be a remove target.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Payload Format Indicator 1 with a payload that is not UTF-8 (MQTT 5 §3.3.2.3.2).
    #[error("payload format indicator 1 (UTF-8), but the payload is not UTF-8")]
    NotUtf8,
}

/// The core request of an application message from the client (DESIGN.md §4), shared by
/// PUBLISH and the will message (published "like a PUBLISH from that client"): retained →
/// stored `set`; retained and empty → `remove` of the exact path; otherwise a `set` with
/// `no_store`. MQTT 5 user properties become the custom meta (a repeated key keeps its
/// last value); the other MQTT 5 properties travel with the event ([`MessageProperties`]:
/// the message expiry counts from now). QoS 0 is QUEUED, QoS 1/2 TRANSACTIONAL
/// (DESIGN.md §6).
///
/// # Errors
/// [`MessageError`].
pub(super) fn message_request(path: Path, message: Message) -> Result<Request, MessageError> {
    let Message {
        payload,
        qos,
        retain,
        user_properties,
        properties,
    } = message;
    if properties
        .as_ref()
        .is_some_and(|p| p.payload_format == Some(1))
        && std::str::from_utf8(&payload).is_err()
    {
        return Err(MessageError::NotUtf8);
    }
    let meta = (!user_properties.is_empty()).then(|| {
        user_properties
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>()
    });
    if retain && payload.is_empty() {
        return Ok(Request::Remove {
            target: Glob::parse(path.as_str())?,
            meta,
            event_id: None,
            consistency: Consistency::Transactional,
        });
    }
    // A stored payload is copied out of the read buffer so that the record does not keep
    // the whole chunk it arrived in alive; live messages share it (zero-copy).
    let payload = if retain {
        Bytes::copy_from_slice(&payload)
    } else {
        payload
    };
    // MQTT 5 user properties go on as published: order and repeated names kept
    // [MQTT-3.3.2-18].
    let properties = match (properties, user_properties.is_empty()) {
        (None, false) => Some(Box::default()),
        (properties, _) => properties,
    };
    let properties = properties.map(|p| {
        let p = *p;
        Arc::new(MessageProperties {
            payload_format: p.payload_format,
            expires_at_ms: p
                .message_expiry_s
                .map(|s| now_ms().saturating_add(u64::from(s) * 1000)),
            content_type: p.content_type,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            user_properties,
        })
    });
    let options = SetOptions {
        no_store: !retain,
        qos,
        meta,
        consistency: if qos == 0 {
            Consistency::Queued
        } else {
            Consistency::Transactional
        },
        properties,
        ..SetOptions::default()
    };
    Ok(Request::Set {
        path,
        payload: Payload::detect(payload),
        options,
    })
}
