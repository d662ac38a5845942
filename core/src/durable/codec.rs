//! The stored forms of a durable session ([`crate::session_log`]): its state as JSON and
//! each message as a small binary record.
//!
//! A message is `head ++ body`:
//!
//! | part | bytes | |
//! |---|---|---|
//! | head | 1 | version (1) |
//! | | 1 | QoS (1 or 2) |
//! | | 1 | flags: bit 0 retain, bit 1 released (QoS 2, PUBREL sent), bit 2 has a packet id |
//! | | 2 | packet id, big-endian (0 without one) |
//! | | 1 + 4n | MQTT 5 subscription identifiers: their count, then each, big-endian |
//! | body | 1 | payload format tag ([`Format`]) |
//! | | 8 + 8 | created, modified (ms since the epoch, big-endian) |
//! | | 4 + n | path (length-prefixed UTF-8) |
//! | | 4 + n | meta (length-prefixed JSON object; length 0: none) |
//! | | 4 + n | MQTT 5 message properties (length-prefixed JSON; length 0: none), and whether the write stored the record (bit 0 of one more byte) |
//! | | rest | payload |
//!
//! The body is the same for every recipient of an event and encoded once
//! ([`crate::Event`] keeps it).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::DurableMessage;
use crate::event::{Event, EventKind, MessageProperties};
use crate::path::Path;
use crate::payload::{Format, Payload};
use crate::request::Consistency;

const VERSION: u8 = 1;
/// The head without its subscription identifiers.
const HEAD_LEN: usize = 6;
const RETAIN: u8 = 1;
const RELEASED: u8 = 2;
const HAS_PKID: u8 = 4;

/// The body of `event`'s stored form (see the module docs).
pub(crate) fn encode_body(event: &Event) -> Bytes {
    let meta = match &event.meta {
        Some(meta) if !meta.is_empty() => serde_json::to_vec(meta).unwrap_or_default(),
        _ => Vec::new(),
    };
    let properties = match &event.properties {
        Some(p) => p.to_stored(),
        None => Vec::new(),
    };
    let path = event.path.as_str().as_bytes();
    let payload = &event.payload.bytes;
    let mut out = BytesMut::with_capacity(
        1 + 16 + 13 + path.len() + meta.len() + properties.len() + payload.len(),
    );
    out.put_u8(event.payload.format as u8);
    out.put_u64(event.created);
    out.put_u64(event.modified);
    out.put_u32(path.len() as u32);
    out.put_slice(path);
    out.put_u32(meta.len() as u32);
    out.put_slice(&meta);
    out.put_u32(properties.len() as u32);
    out.put_slice(&properties);
    out.put_u8(u8::from(event.retained));
    out.put_slice(payload);
    out.freeze()
}

/// The head of `message`'s stored form: what is particular to its recipient.
pub(crate) fn encode_head(message: &DurableMessage) -> Bytes {
    let mut flags = 0;
    if message.retain {
        flags |= RETAIN;
    }
    if message.released {
        flags |= RELEASED;
    }
    if message.pkid.is_some() {
        flags |= HAS_PKID;
    }
    let pkid = message.pkid.unwrap_or(0).to_be_bytes();
    let ids = &message.subscription_ids[..message.subscription_ids.len().min(255)];
    let mut head = BytesMut::with_capacity(HEAD_LEN + 4 * ids.len());
    head.put_slice(&[VERSION, message.qos, flags, pkid[0], pkid[1]]);
    head.put_u8(ids.len() as u8);
    for id in ids {
        head.put_u32(*id);
    }
    head.freeze()
}

/// A stored message back as a [`DurableMessage`] numbered `seq`.
///
/// # Errors
/// A description of what is wrong (an unknown version, a truncated record, a bad path).
pub(crate) fn decode_message(seq: u64, bytes: &[u8]) -> Result<DurableMessage, String> {
    let short = || format!("message {seq} is truncated");
    if bytes.len() < HEAD_LEN {
        return Err(short());
    }
    if bytes[0] != VERSION {
        return Err(format!("message {seq} has unknown version {}", bytes[0]));
    }
    let (qos, flags) = (bytes[1], bytes[2]);
    let pkid = u16::from_be_bytes([bytes[3], bytes[4]]);
    let ids_end = HEAD_LEN + 4 * usize::from(bytes[5]);
    let subscription_ids = bytes
        .get(HEAD_LEN..ids_end)
        .ok_or_else(short)?
        .chunks_exact(4)
        .map(|id| u32::from_be_bytes([id[0], id[1], id[2], id[3]]))
        .collect();
    let body = &bytes[ids_end..];
    if body.len() < 1 + 16 + 13 {
        return Err(short());
    }
    let format = Format::from_tag(body[0]).ok_or_else(|| format!("message {seq}: bad format"))?;
    let u64_at = |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().unwrap_or_default());
    let (created, modified) = (u64_at(1), u64_at(9));
    let mut at = 17;
    let field = |at: &mut usize| -> Result<&[u8], String> {
        let len_bytes = body.get(*at..*at + 4).ok_or_else(short)?;
        let len = u32::from_be_bytes(len_bytes.try_into().unwrap_or_default()) as usize;
        let value = body.get(*at + 4..*at + 4 + len).ok_or_else(short)?;
        *at += 4 + len;
        Ok(value)
    };
    let path = std::str::from_utf8(field(&mut at)?)
        .map_err(|_| format!("message {seq}: path is not UTF-8"))?;
    let path = Path::parse(path).map_err(|e| format!("message {seq}: {e}"))?;
    let meta = field(&mut at)?;
    let meta: Option<Map<String, Value>> = match meta.is_empty() {
        true => None,
        false => {
            Some(serde_json::from_slice(meta).map_err(|e| format!("message {seq}: meta: {e}"))?)
        }
    };
    let properties = field(&mut at)?;
    let properties: Option<Arc<MessageProperties>> = match properties.is_empty() {
        true => None,
        false => {
            let stored = MessageProperties::from_stored(properties)
                .map_err(|e| format!("message {seq}: properties: {e}"))?;
            Some(Arc::new(stored))
        }
    };
    let retained = body.get(at).ok_or_else(short)? & 1 != 0;
    at += 1;
    let payload = Payload {
        format,
        bytes: Bytes::copy_from_slice(&body[at..]),
    };
    let event = Event::new(
        EventKind::Set,
        path,
        payload,
        created,
        modified,
        None,
        None,
        Consistency::Transactional,
        meta,
        qos,
    )
    .with_properties(properties)
    .with_retained(retained);
    Ok(DurableMessage {
        seq,
        event: Arc::new(event),
        qos: qos.clamp(1, 2),
        retain: flags & RETAIN != 0,
        pkid: (flags & HAS_PKID != 0).then_some(pkid),
        released: flags & RELEASED != 0,
        subscription_ids,
        shared_via: None,
    })
}

/// [`MessageProperties`] as stored (JSON; correlation data in hex).
#[derive(Debug, Serialize, Deserialize)]
struct StoredProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_format: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlation_data_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    user_properties: Vec<(String, String)>,
}

impl From<&MessageProperties> for StoredProperties {
    fn from(p: &MessageProperties) -> Self {
        Self {
            payload_format: p.payload_format,
            expires_at_ms: p.expires_at_ms,
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data_hex: p
                .correlation_data
                .as_ref()
                .map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            user_properties: p.user_properties.clone(),
        }
    }
}

impl From<StoredProperties> for MessageProperties {
    fn from(p: StoredProperties) -> Self {
        let correlation_data = p.correlation_data_hex.map(|hex| {
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect();
            Bytes::from(bytes)
        });
        Self {
            payload_format: p.payload_format,
            expires_at_ms: p.expires_at_ms,
            content_type: p.content_type,
            response_topic: p.response_topic,
            correlation_data,
            user_properties: p.user_properties,
        }
    }
}

impl MessageProperties {
    /// The properties as stored with a record or a durable message: JSON (correlation data
    /// in hex).
    pub fn to_stored(&self) -> Vec<u8> {
        serde_json::to_vec(&StoredProperties::from(self)).unwrap_or_default()
    }

    /// Properties written by [`MessageProperties::to_stored`].
    ///
    /// # Errors
    /// The JSON error, as text.
    pub fn from_stored(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice::<StoredProperties>(bytes)
            .map(Self::from)
            .map_err(|e| e.to_string())
    }
}

/// A durable session's stored state (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    /// Format version (1).
    pub(crate) v: u8,
    /// Session expiry interval, in seconds; `u32::MAX`: never.
    pub(crate) expiry_s: u32,
    /// When the session's last connection ended (ms since the epoch); `None` while one is
    /// attached (after a crash: the restart counts as the end).
    pub(crate) detached_ms: Option<u64>,
    /// The subscriptions.
    pub(crate) subscriptions: Vec<StoredSubscription>,
    /// The user whose session it is (secure broker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<String>,
    /// QoS 2 packet ids received from the client whose PUBREL had not come when its
    /// connection ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) awaiting_pubrel: Vec<u16>,
}

/// One subscription of a durable session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredSubscription {
    /// The MQTT topic filter (`a/+/c`), without any `$share/<group>/`.
    pub(crate) filter: String,
    /// The shared subscription group, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) share: Option<String>,
    /// The granted QoS.
    pub(crate) qos: u8,
    /// MQTT 5 no local.
    #[serde(default)]
    pub(crate) no_local: bool,
    /// MQTT 5 retain as published.
    #[serde(default)]
    pub(crate) retain_as_published: bool,
    /// MQTT 5 subscription identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) subscription_id: Option<u32>,
}

impl State {
    pub(crate) fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// # Errors
    /// The JSON error, as text.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips() {
        let mut meta = Map::new();
        meta.insert("k".into(), Value::String("v".into()));
        let event = Event::new(
            EventKind::Set,
            Path::parse("/a/b").unwrap(),
            Payload::detect(Bytes::from_static(b"\x00\xffbinary")),
            5,
            7,
            None,
            None,
            Consistency::Transactional,
            Some(meta.clone()),
            2,
        )
        .with_retained(true)
        .with_properties(Some(Arc::new(MessageProperties {
            payload_format: Some(1),
            expires_at_ms: Some(99),
            content_type: Some("text/plain".into()),
            response_topic: Some("r/t".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\xfe")),
            user_properties: vec![("k".into(), "1".into()), ("k".into(), "2".into())],
        })));
        let message = DurableMessage {
            seq: 9,
            event: Arc::new(event),
            qos: 2,
            retain: true,
            pkid: Some(513),
            released: true,
            subscription_ids: vec![7, 70_000].into(),
            shared_via: None,
        };
        let mut bytes = encode_head(&message).to_vec();
        bytes.extend_from_slice(&encode_body(&message.event));
        let back = decode_message(9, &bytes).unwrap();
        assert_eq!((back.seq, back.qos, back.retain), (9, 2, true));
        assert_eq!((back.pkid, back.released), (Some(513), true));
        assert_eq!(back.event.path.as_str(), "/a/b");
        assert_eq!(back.event.payload, message.event.payload);
        assert_eq!((back.event.created, back.event.modified), (5, 7));
        assert_eq!(back.event.meta, Some(meta));
        assert_eq!(back.event.properties, message.event.properties);
        assert!(back.event.retained);
        assert_eq!(&*back.subscription_ids, &[7, 70_000]);
        assert!(decode_message(9, &bytes[..bytes.len() - 20]).is_err());
        assert!(decode_message(9, &[2, 1, 0, 0, 0, 0]).is_err());
        assert!(
            decode_message(9, &[1, 1, 0, 0, 0, 3, 0]).is_err(),
            "ids cut short"
        );
    }
}
