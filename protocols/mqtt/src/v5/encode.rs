//! Encoding MQTT 5 packets: control packets with `mqttbytes::v5`, PUBLISH by hand
//! (straight from the shared payload bytes, with its properties, and no intermediate
//! packet struct).

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use mqttbytes::v5;
use serde_json::Value;

use crate::codec::{MAX_REMAINING_LEN, put_string, put_varint, varint_len};
use crate::error::ReasonCode;
use crate::packet::{OutgoingPublish, Reply, TooLarge};

/// Property identifiers (MQTT 5 §2.2.2.2).
const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
const CONTENT_TYPE: u8 = 0x03;
const RESPONSE_TOPIC: u8 = 0x08;
const CORRELATION_DATA: u8 = 0x09;
const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
const TOPIC_ALIAS: u8 = 0x23;
const REASON_STRING: u8 = 0x1F;
const USER_PROPERTY: u8 = 0x26;

/// The CONNACK reason for `code`: every code MQTT 5 §3.2.2.2 allows in a CONNACK is sent
/// as itself (a missing arm once turned a lockout's 0x8A into 0x80); any other is 0x80.
fn connack_code(code: ReasonCode) -> v5::ConnectReturnCode {
    use v5::ConnectReturnCode as C;
    match code {
        0x00 => C::Success,
        0x81 => C::MalformedPacket,
        0x82 => C::ProtocolError,
        0x83 => C::ImplementationSpecificError,
        0x84 => C::UnsupportedProtocolVersion,
        0x85 => C::ClientIdentifierNotValid,
        0x86 => C::BadUserNamePassword,
        0x87 => C::NotAuthorized,
        0x88 => C::ServerUnavailable,
        0x89 => C::ServerBusy,
        0x8A => C::Banned,
        0x8C => C::BadAuthenticationMethod,
        0x90 => C::TopicNameInvalid,
        0x95 => C::PacketTooLarge,
        0x97 => C::QuotaExceeded,
        0x99 => C::PayloadFormatInvalid,
        0x9A => C::RetainNotSupported,
        0x9B => C::QoSNotSupported,
        0x9C => C::UseAnotherServer,
        0x9D => C::ServerMoved,
        0x9F => C::ConnectionRateExceeded,
        _ => C::UnspecifiedError,
    }
}

fn puback_reason(code: ReasonCode) -> v5::PubAckReason {
    use v5::PubAckReason as R;
    match code {
        0x00 => R::Success,
        0x10 => R::NoMatchingSubscribers,
        0x83 => R::ImplementationSpecificError,
        0x87 => R::NotAuthorized,
        0x90 => R::TopicNameInvalid,
        0x91 => R::PacketIdentifierInUse,
        0x97 => R::QuotaExceeded,
        0x99 => R::PayloadFormatInvalid,
        _ => R::UnspecifiedError,
    }
}

fn pubrec_reason(code: ReasonCode) -> v5::PubRecReason {
    use v5::PubRecReason as R;
    match code {
        0x00 => R::Success,
        0x10 => R::NoMatchingSubscribers,
        0x83 => R::ImplementationSpecificError,
        0x87 => R::NotAuthorized,
        0x90 => R::TopicNameInvalid,
        0x91 => R::PacketIdentifierInUse,
        0x97 => R::QuotaExceeded,
        0x99 => R::PayloadFormatInvalid,
        _ => R::UnspecifiedError,
    }
}

fn unsuback_reason(code: ReasonCode) -> v5::UnsubAckReason {
    use v5::UnsubAckReason as R;
    match code {
        0x00 => R::Success,
        0x11 => R::NoSubscriptionExisted,
        0x83 => R::ImplementationSpecificError,
        0x87 => R::NotAuthorized,
        0x8F => R::TopicFilterInvalid,
        _ => R::UnspecifiedError,
    }
}

/// Appends `reply` to `buf`. A successful CONNACK carries the server's limits as
/// properties: Receive Maximum, Maximum Packet Size, Topic Alias Maximum (when above 0;
/// shared subscriptions and subscription identifiers are available, the default), and the Assigned Client
/// Identifier / Session Expiry Interval / Server Keep Alive when set.
pub(crate) fn encode(buf: &mut BytesMut, reply: &Reply<'_>) {
    // mqttbytes only fails to encode packets longer than MAX_REMAINING_LEN; control
    // packets are a few bytes (a CONNACK carries one assigned client id).
    let _ = match reply {
        Reply::ConnAck(c) => {
            // The property length is not optional in a CONNACK (MQTT 5 §3.2.2.3): a
            // refusal carries an empty property block.
            let mut p = v5::ConnAckProperties::new();
            if c.code == 0 {
                p.receive_max = Some(c.receive_maximum);
                p.max_packet_size = Some(c.max_packet_size);
                p.assigned_client_identifier = c.assigned_client_id.clone();
                p.session_expiry_interval = c.session_expiry;
                p.server_keep_alive = c.server_keep_alive;
                p.topic_alias_max = (c.topic_alias_maximum > 0).then_some(c.topic_alias_maximum);
            }
            v5::ConnAck {
                session_present: c.session_present,
                code: connack_code(c.code),
                properties: Some(p),
            }
            .write(buf)
        }
        Reply::PubAck {
            pkid,
            reason,
            reason_string,
        } => v5::PubAck {
            pkid: *pkid,
            reason: puback_reason(*reason),
            properties: reason_string.map(|r| v5::PubAckProperties {
                reason_string: Some(r.to_owned()),
                user_properties: Vec::new(),
            }),
        }
        .write(buf),
        Reply::PubRec {
            pkid,
            reason,
            reason_string,
        } => v5::PubRec {
            pkid: *pkid,
            reason: pubrec_reason(*reason),
            properties: reason_string.map(|r| v5::PubRecProperties {
                reason_string: Some(r.to_owned()),
                user_properties: Vec::new(),
            }),
        }
        .write(buf),
        Reply::PubRel { pkid } => v5::PubRel::new(*pkid).write(buf),
        Reply::PubComp { pkid, reason } => v5::PubComp {
            pkid: *pkid,
            reason: match reason {
                0x92 => v5::PubCompReason::PacketIdentifierNotFound,
                _ => v5::PubCompReason::Success,
            },
            properties: None,
        }
        .write(buf),
        Reply::SubAck {
            pkid,
            codes,
            reason_string,
        } => {
            let codes = codes
                .iter()
                .map(|&c| {
                    v5::SubscribeReasonCode::try_from(c)
                        .unwrap_or(v5::SubscribeReasonCode::Unspecified)
                })
                .collect();
            v5::SubAck {
                pkid: *pkid,
                return_codes: codes,
                properties: reason_string.map(|r| v5::SubAckProperties {
                    reason_string: Some(r.to_owned()),
                    user_properties: Vec::new(),
                }),
            }
            .write(buf)
        }
        Reply::UnsubAck {
            pkid,
            codes,
            reason_string,
        } => v5::UnsubAck {
            pkid: *pkid,
            reasons: codes.iter().map(|&c| unsuback_reason(c)).collect(),
            properties: reason_string.map(|r| v5::UnsubAckProperties {
                reason_string: Some(r.to_owned()),
                user_properties: Vec::new(),
            }),
        }
        .write(buf),
        Reply::PingResp => v5::PingResp.write(buf),
        // By hand, with an explicit empty property block (`E0 02 rc 00`): MQTT 5 allows
        // leaving it out, but some clients (rumqttc 0.25) cannot decode `E0 01 rc`, and
        // mqttbytes 0.6 encodes a reason code with empty properties as `E0 00`.
        Reply::Disconnect {
            reason,
            reason_string,
        } => {
            // At most 1 KiB of reason, cut at a character boundary: a DISCONNECT stays
            // small and its string UTF-8 [MQTT-1.5.4-1].
            let text = reason_string.map_or(&b""[..], |r| {
                let mut end = r.len().min(1024);
                while !r.is_char_boundary(end) {
                    end -= 1;
                }
                &r.as_bytes()[..end]
            });
            let props = if text.is_empty() { 0 } else { 3 + text.len() };
            let remaining = 1 + varint_len(props) + props;
            buf.put_u8(0xE0);
            put_varint(buf, remaining);
            buf.put_u8(*reason);
            put_varint(buf, props);
            if !text.is_empty() {
                buf.put_u8(REASON_STRING);
                put_string(buf, text);
            }
            Ok(1 + varint_len(remaining) + remaining)
        }
    };
}

/// Appends a PUBLISH (MQTT 5 §3.3) with its properties: the Content Type, and the meta as
/// user properties (string values as they are, other JSON values serialized; a key or value
/// longer than 65,535 bytes is left out).
///
/// # Errors
/// [`TooLarge`] (nothing written) when the whole packet would exceed `max` bytes (the
/// client's Maximum Packet Size, MQTT 5 §3.1.2.11.4) or what MQTT can express.
pub(crate) fn encode_publish(
    buf: &mut BytesMut,
    p: &OutgoingPublish<'_>,
    max: Option<usize>,
) -> Result<(), TooLarge> {
    let user: Vec<(&str, Cow<'_, str>)> = match (p.properties, p.meta) {
        // An MQTT 5 publisher's user properties, exactly as published.
        (Some(forwarded), _) if !forwarded.user_properties.is_empty() => forwarded
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str())))
            .collect(),
        (_, Some(meta)) => meta
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => Cow::Borrowed(s.as_str()),
                    other => Cow::Owned(other.to_string()),
                };
                (k.as_str(), v)
            })
            .filter(|(k, v)| k.len() <= usize::from(u16::MAX) && v.len() <= usize::from(u16::MAX))
            .collect(),
        (_, None) => Vec::new(),
    };
    let forwarded = p.properties;
    // The publisher's content type, unaltered [MQTT-3.3.2-20]; without one, ours for a
    // JSON payload (DESIGN.md §4).
    let content_type = forwarded
        .and_then(|f| f.content_type.as_deref())
        .or(p.content_type);
    let response_topic = forwarded.and_then(|f| f.response_topic.as_deref());
    let correlation = forwarded.and_then(|f| f.correlation_data.as_deref());
    let format = forwarded.and_then(|f| f.payload_format);
    let mut props_len = content_type.map_or(0, |ct| 1 + 2 + ct.len());
    props_len += format.map_or(0, |_| 2);
    props_len += p.message_expiry_s.map_or(0, |_| 5);
    props_len += response_topic.map_or(0, |t| 1 + 2 + t.len());
    props_len += correlation.map_or(0, |d| 1 + 2 + d.len());
    props_len += p.topic_alias.map_or(0, |_| 3);
    props_len += p
        .subscription_ids
        .iter()
        .map(|id| 1 + varint_len(*id as usize))
        .sum::<usize>();
    props_len += user
        .iter()
        .map(|(k, v)| 1 + 2 + k.len() + 2 + v.len())
        .sum::<usize>();
    let remaining = 2
        + p.topic.len()
        + if p.qos > 0 { 2 } else { 0 }
        + varint_len(props_len)
        + props_len
        + p.payload.len();
    let size = 1 + varint_len(remaining) + remaining;
    if remaining > MAX_REMAINING_LEN || max.is_some_and(|max| size > max) {
        return Err(TooLarge { size });
    }
    buf.reserve(size);
    buf.put_u8(0x30 | (u8::from(p.dup) << 3) | (p.qos << 1) | u8::from(p.retain));
    put_varint(buf, remaining);
    put_string(buf, p.topic.as_bytes());
    if p.qos > 0 {
        buf.put_u16(p.pkid);
    }
    put_varint(buf, props_len);
    if let Some(format) = format {
        buf.put_u8(PAYLOAD_FORMAT_INDICATOR);
        buf.put_u8(format);
    }
    if let Some(expiry) = p.message_expiry_s {
        buf.put_u8(MESSAGE_EXPIRY_INTERVAL);
        buf.put_u32(expiry);
    }
    if let Some(ct) = content_type {
        buf.put_u8(CONTENT_TYPE);
        put_string(buf, ct.as_bytes());
    }
    if let Some(topic) = response_topic {
        buf.put_u8(RESPONSE_TOPIC);
        put_string(buf, topic.as_bytes());
    }
    if let Some(data) = correlation {
        buf.put_u8(CORRELATION_DATA);
        put_string(buf, data);
    }
    for id in p.subscription_ids {
        buf.put_u8(SUBSCRIPTION_IDENTIFIER);
        put_varint(buf, *id as usize);
    }
    if let Some(alias) = p.topic_alias {
        buf.put_u8(TOPIC_ALIAS);
        buf.put_u16(alias);
    }
    for (k, v) in &user {
        buf.put_u8(USER_PROPERTY);
        put_string(buf, k.as_bytes());
        put_string(buf, v.as_bytes());
    }
    buf.put_slice(p.payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn publish_with_properties_decodes_with_mqttbytes() {
        let meta = json!({"who": "sensor", "n": 5, "nested": {"a": [1, 2]}});
        let meta = meta.as_object().unwrap();
        let payload = br#"{"t":21.5}"#;
        let p = OutgoingPublish {
            topic: "a/b",
            payload,
            qos: 1,
            retain: true,
            pkid: 9,
            dup: false,
            properties: None,
            message_expiry_s: None,
            subscription_ids: &[],
            topic_alias: None,
            content_type: Some("application/json"),
            meta: Some(meta),
        };
        let mut buf = BytesMut::new();
        encode_publish(&mut buf, &p, None).unwrap();
        let v5::Packet::Publish(decoded) = v5::read(&mut buf, 1 << 20).unwrap() else {
            panic!("not a publish");
        };
        assert!(buf.is_empty());
        assert_eq!(decoded.topic, "a/b");
        assert_eq!(decoded.pkid, 9);
        assert!(decoded.retain);
        assert_eq!(&decoded.payload[..], payload);
        let props = decoded.properties.unwrap();
        assert_eq!(props.content_type.as_deref(), Some("application/json"));
        let mut user = props.user_properties;
        user.sort();
        assert_eq!(
            user,
            [
                ("n".to_owned(), "5".to_owned()),
                ("nested".to_owned(), r#"{"a":[1,2]}"#.to_owned()),
                ("who".to_owned(), "sensor".to_owned()),
            ]
        );
    }

    #[test]
    fn publish_larger_than_the_client_maximum_is_not_written() {
        let p = OutgoingPublish {
            topic: "t",
            payload: &[0; 100],
            qos: 0,
            retain: false,
            pkid: 0,
            dup: false,
            properties: None,
            message_expiry_s: None,
            subscription_ids: &[],
            topic_alias: None,
            content_type: None,
            meta: None,
        };
        let mut buf = BytesMut::new();
        // 1 + 1 + (2 + 1 + 1 + 100) = 106 bytes.
        assert_eq!(
            encode_publish(&mut buf, &p, Some(105)),
            Err(TooLarge { size: 106 })
        );
        assert!(buf.is_empty());
        encode_publish(&mut buf, &p, Some(106)).unwrap();
        assert_eq!(buf.len(), 106);
    }

    #[test]
    fn control_packets_decode_with_mqttbytes() {
        let mut buf = BytesMut::new();
        let connack = crate::packet::ConnAck {
            code: 0,
            session_present: false,
            assigned_client_id: Some("auto-1".into()),
            receive_maximum: 32,
            max_packet_size: 1000,
            session_expiry: Some(0),
            server_keep_alive: Some(60),
            topic_alias_maximum: 10,
        };
        encode(&mut buf, &Reply::ConnAck(&connack));
        let v5::Packet::ConnAck(decoded) = v5::read(&mut buf, 1 << 20).unwrap() else {
            panic!("not a connack");
        };
        let props = decoded.properties.unwrap();
        assert_eq!(props.assigned_client_identifier.as_deref(), Some("auto-1"));
        assert_eq!(props.receive_max, Some(32));
        assert_eq!(props.max_packet_size, Some(1000));
        assert_eq!(props.server_keep_alive, Some(60));
        let refusal = crate::packet::ConnAck {
            code: 0x84,
            ..Default::default()
        };
        encode(&mut buf, &Reply::ConnAck(&refusal));
        assert_eq!(&buf[..], &[0x20, 0x03, 0x00, 0x84, 0x00]);
        buf.clear();
        // Regression: a locked-out client (0x8A banned) was sent 0x80.
        for code in [
            0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
            0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
        ] {
            let refusal = crate::packet::ConnAck {
                code,
                ..Default::default()
            };
            encode(&mut buf, &Reply::ConnAck(&refusal));
            assert_eq!(&buf[..], &[0x20, 0x03, 0x00, code, 0x00], "{code:#x}");
            buf.clear();
        }
        encode(
            &mut buf,
            &Reply::Disconnect {
                reason: 0x81,
                reason_string: None,
            },
        );
        assert_eq!(&buf[..], &[0xE0, 0x02, 0x81, 0x00]);
        buf.clear();
        encode(
            &mut buf,
            &Reply::PubAck {
                pkid: 3,
                reason: 0x87,
                reason_string: None,
            },
        );
        assert_eq!(&buf[..], &[0x40, 0x03, 0x00, 0x03, 0x87]);
        buf.clear();
        encode(
            &mut buf,
            &Reply::PubAck {
                pkid: 3,
                reason: 0x87,
                reason_string: Some("forbidden"),
            },
        );
        let v5::Packet::PubAck(ack) = v5::read(&mut buf, 1 << 20).unwrap() else {
            panic!("not a puback");
        };
        assert_eq!(
            ack.properties.unwrap().reason_string.as_deref(),
            Some("forbidden")
        );
        encode(
            &mut buf,
            &Reply::Disconnect {
                reason: 0x8E,
                reason_string: Some("taken over"),
            },
        );
        let v5::Packet::Disconnect(d) = v5::read(&mut buf, 1 << 20).unwrap() else {
            panic!("not a disconnect");
        };
        assert_eq!(d.reason_code as u8, 0x8E);
        assert_eq!(
            d.properties.unwrap().reason_string.as_deref(),
            Some("taken over")
        );
        encode(
            &mut buf,
            &Reply::SubAck {
                pkid: 5,
                codes: &[0x01, 0x87],
                reason_string: Some("`ann` may not `on` `/x`"),
            },
        );
        let v5::Packet::SubAck(ack) = v5::read(&mut buf, 1 << 20).unwrap() else {
            panic!("not a suback");
        };
        assert_eq!(ack.return_codes.len(), 2);
        assert_eq!(
            ack.properties.unwrap().reason_string.as_deref(),
            Some("`ann` may not `on` `/x`")
        );
        encode(
            &mut buf,
            &Reply::UnsubAck {
                pkid: 4,
                codes: &[0x00, 0x11],
                reason_string: None,
            },
        );
        assert_eq!(&buf[..], &[0xB0, 0x05, 0x00, 0x04, 0x00, 0x00, 0x11]);
    }
}
