//! Decoding MQTT 5 packets with `mqttbytes::v5`.
//!
//! Two packets are decoded here instead, because `mqttbytes` 0.6 mishandles them: a
//! DISCONNECT with remaining length 0 or 1 (valid: reason `0x00` and no properties
//! implied, MQTT 5 §3.14.2.1–2), which it refuses, and UNSUBSCRIBE, whose decoder writes
//! the packet id to stderr (a stray `dbg!`).

use bytes::{Buf, Bytes, BytesMut};
use mqttbytes::v5::{Packet as Wire, RetainForwardRule};

use crate::codec::{Frame, malformed};
use crate::error::ProtocolError;
use crate::packet::{
    Connect, Filter, Packet, Publish, PublishProperties, RetainHandling, Subscribe, Unsubscribe,
    Will,
};

/// Decodes the complete packet `frame` describes at the start of `buf`, consuming it.
///
/// # Errors
/// [`ProtocolError::Malformed`] when it does not decode, [`ProtocolError::SecondConnect`],
/// [`ProtocolError::UnexpectedPacket`] for packets only a server sends.
pub(crate) fn decode(
    buf: &mut BytesMut,
    frame: &Frame,
    max: usize,
) -> Result<Packet, ProtocolError> {
    match frame.packet_type {
        14 if frame.remaining_len < 2 => {
            // Remaining length 1: the reason code alone; 0: reason 0x00.
            let reason = match frame.remaining_len {
                1 => buf[frame.header_len],
                _ => 0x00,
            };
            buf.advance(frame.len());
            return Ok(Packet::Disconnect {
                reason,
                session_expiry: None,
            });
        }
        10 => {
            let packet = buf.split_to(frame.len()).freeze();
            return decode_unsubscribe(packet.slice(frame.header_len..));
        }
        _ => {}
    }
    let unexpected = |packet| Err(ProtocolError::UnexpectedPacket { packet });
    Ok(match mqttbytes::v5::read(buf, max).map_err(malformed)? {
        Wire::Publish(p) => {
            if p.properties
                .as_ref()
                .is_some_and(|props| !props.subscription_identifiers.is_empty())
            {
                return Err(ProtocolError::PublishSubscriptionId);
            }
            let (topic_alias, user_properties, properties) = match p.properties {
                Some(props) => (
                    props.topic_alias,
                    props.user_properties,
                    PublishProperties {
                        payload_format: props.payload_format_indicator,
                        message_expiry_s: props.message_expiry_interval,
                        content_type: props.content_type,
                        response_topic: props.response_topic,
                        correlation_data: props.correlation_data,
                    }
                    .non_empty(),
                ),
                None => (None, Vec::new(), None),
            };
            Packet::Publish(Publish {
                topic: p.topic,
                qos: p.qos as u8,
                retain: p.retain,
                pkid: p.pkid,
                payload: p.payload,
                topic_alias,
                user_properties,
                properties,
            })
        }
        Wire::PubAck(a) => Packet::PubAck { pkid: a.pkid },
        Wire::PubRec(r) => Packet::PubRec {
            pkid: r.pkid,
            reason: r.reason as u8,
        },
        Wire::PubRel(r) => Packet::PubRel { pkid: r.pkid },
        Wire::PubComp(c) => Packet::PubComp { pkid: c.pkid },
        Wire::Subscribe(s) if s.properties.as_ref().and_then(|p| p.id) == Some(0) => {
            return Err(ProtocolError::ZeroSubscriptionId);
        }
        Wire::Subscribe(s) => Packet::Subscribe(Subscribe {
            pkid: s.pkid,
            subscription_id: s
                .properties
                .and_then(|p| p.id)
                .map(|id| u32::try_from(id).unwrap_or(u32::MAX)),
            filters: s
                .filters
                .into_iter()
                .map(|f| Filter {
                    filter: f.path,
                    qos: f.qos as u8,
                    no_local: f.nolocal,
                    retain_as_published: f.preserve_retain,
                    retain_handling: match f.retain_forward_rule {
                        RetainForwardRule::OnEverySubscribe => RetainHandling::Always,
                        RetainForwardRule::OnNewSubscribe => RetainHandling::IfNew,
                        RetainForwardRule::Never => RetainHandling::Never,
                    },
                })
                .collect(),
        }),
        Wire::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        }),
        Wire::PingReq => Packet::PingReq,
        Wire::Disconnect(d) => Packet::Disconnect {
            reason: d.reason_code as u8,
            session_expiry: d.properties.and_then(|p| p.session_expiry_interval),
        },
        Wire::Connect(_) => return Err(ProtocolError::SecondConnect),
        Wire::ConnAck(_) => return unexpected("CONNACK"),
        Wire::SubAck(_) => return unexpected("SUBACK"),
        Wire::UnsubAck(_) => return unexpected("UNSUBACK"),
        Wire::PingResp => return unexpected("PINGRESP"),
    })
}

/// Decodes an UNSUBSCRIBE body (after the fixed header, MQTT 5 §3.10): packet id,
/// properties (skipped: only user properties are allowed), then topic filters.
fn decode_unsubscribe(mut body: Bytes) -> Result<Packet, ProtocolError> {
    let bad = |detail: &str| ProtocolError::Malformed {
        detail: format!("UNSUBSCRIBE {detail}"),
    };
    if body.len() < 2 {
        return Err(bad("without a packet identifier"));
    }
    let pkid = body.get_u16();
    let (props_len, len_len) = read_varint(&body).ok_or_else(|| bad("property length"))?;
    if body.len() < len_len + props_len {
        return Err(bad("properties overrun the packet"));
    }
    body.advance(len_len + props_len);
    let mut filters = Vec::with_capacity(1);
    while body.has_remaining() {
        if body.len() < 2 {
            return Err(bad("filter length"));
        }
        let len = usize::from(body.get_u16());
        if body.len() < len {
            return Err(bad("filter overruns the packet"));
        }
        let filter = String::from_utf8(body.split_to(len).to_vec())
            .map_err(|_| bad("filter is not UTF-8"))?;
        filters.push(filter);
    }
    Ok(Packet::Unsubscribe(Unsubscribe { pkid, filters }))
}

/// A variable byte integer at the start of `bytes`: `(value, bytes used)`.
fn read_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Decodes a complete level-5 CONNECT at the start of `buf`, consuming it.
///
/// # Errors
/// [`ProtocolError::Malformed`] when `mqttbytes` refuses it.
pub(crate) fn decode_connect(buf: &mut BytesMut, max: usize) -> Result<Connect, ProtocolError> {
    match mqttbytes::v5::read(buf, max).map_err(malformed)? {
        Wire::Connect(c) => {
            let props = c.properties;
            Ok(Connect {
                client_id: c.client_id,
                clean_start: c.clean_session,
                keep_alive: c.keep_alive,
                session_expiry: props
                    .as_ref()
                    .and_then(|p| p.session_expiry_interval)
                    .unwrap_or(0),
                receive_maximum: props.as_ref().and_then(|p| p.receive_maximum),
                max_packet_size: props.as_ref().and_then(|p| p.max_packet_size),
                topic_alias_maximum: props.as_ref().and_then(|p| p.topic_alias_max).unwrap_or(0),
                request_problem_information: props
                    .as_ref()
                    .and_then(|p| p.request_problem_info)
                    .is_none_or(|r| r != 0),
                authentication_method: props.and_then(|p| p.authentication_method),
                will: c.last_will.map(will),
                username: c.login.as_ref().map(|l| l.username.clone()),
                password: c.login.map(|l| l.password.into()),
            })
        }
        other => Err(ProtocolError::Malformed {
            detail: format!("expected CONNECT, decoded {other:?}"),
        }),
    }
}

/// The will of a CONNECT (MQTT 5 §3.1.3.2–4): the Will Delay Interval, and the other
/// will properties (user properties in order, payload format indicator, message expiry,
/// content type, response topic, correlation data) as a PUBLISH's, forwarded when the
/// will is published (its message expiry counts from then). The payload is copied out of
/// the read buffer (the will lives as long as the connection).
fn will(w: mqttbytes::v5::LastWill) -> Box<Will> {
    let (delay, user_properties, properties) = match w.properties {
        Some(p) => (
            p.delay_interval.unwrap_or(0),
            p.user_properties,
            PublishProperties {
                payload_format: p.payload_format_indicator,
                message_expiry_s: p.message_expiry_interval,
                content_type: p.content_type,
                response_topic: p.response_topic,
                correlation_data: p.correlation_data,
            }
            .non_empty(),
        ),
        None => (0, Vec::new(), None),
    };
    Box::new(Will {
        message: Publish {
            topic: w.topic,
            qos: w.qos as u8,
            retain: w.retain,
            pkid: 0,
            payload: Bytes::copy_from_slice(&w.message),
            topic_alias: None,
            user_properties,
            properties,
        },
        delay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn decode_all(bytes: &[u8]) -> Result<Packet, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        let frame = codec::frame(&buf, 1024).unwrap().unwrap();
        let packet = decode(&mut buf, &frame, 1024);
        assert!(buf.is_empty() || packet.is_err());
        packet
    }

    #[test]
    fn short_disconnect_is_a_normal_disconnect() {
        assert!(matches!(
            decode_all(&[0xE0, 0x00]),
            Ok(Packet::Disconnect { reason: 0x00, .. })
        ));
        assert!(matches!(
            decode_all(&[0xE0, 0x01, 0x00]),
            Ok(Packet::Disconnect { reason: 0x00, .. })
        ));
    }

    /// Guards MQTT-3.14.4-3: only reason 0x00 discards the will, so the reason code of a
    /// DISCONNECT must survive decoding, in its short and long forms.
    #[test]
    fn disconnect_keeps_its_reason_code() {
        assert!(matches!(
            decode_all(&[0xE0, 0x01, 0x04]),
            Ok(Packet::Disconnect { reason: 0x04, .. })
        ));
        assert!(matches!(
            decode_all(&[0xE0, 0x02, 0x04, 0x00]),
            Ok(Packet::Disconnect { reason: 0x04, .. })
        ));
    }

    #[test]
    fn connect_will_keeps_delay_and_user_properties_in_order() {
        let mut will =
            mqttbytes::v5::LastWill::new("w/t", "bye", mqttbytes::QoS::AtLeastOnce, true);
        will.properties = Some(mqttbytes::v5::WillProperties {
            delay_interval: Some(7),
            payload_format_indicator: Some(1),
            message_expiry_interval: None,
            content_type: Some("text/plain".into()),
            response_topic: None,
            correlation_data: None,
            user_properties: vec![("z".into(), "1".into()), ("a".into(), "2".into())],
        });
        let mut connect = mqttbytes::v5::Connect::new("c5");
        connect.last_will = Some(will);
        let mut buf = BytesMut::new();
        connect.write(&mut buf).unwrap();
        let connect = decode_connect(&mut buf, 1024).unwrap();
        let will = connect.will.unwrap();
        assert_eq!(will.delay, 7);
        assert_eq!(will.message.topic, "w/t");
        assert_eq!(&will.message.payload[..], b"bye");
        assert_eq!((will.message.qos, will.message.retain), (1, true));
        assert_eq!(
            will.message.user_properties,
            [
                ("z".to_owned(), "1".to_owned()),
                ("a".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn unsubscribe_is_decoded_without_mqttbytes() {
        // pkid 5, one user property (0x26 "k" "v"), filters "a/b" and "#".
        let body = [
            0x00, 0x05, 0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', 0x00, 0x03, b'a', b'/',
            b'b', 0x00, 0x01, b'#',
        ];
        let mut bytes = vec![0xA2, body.len() as u8];
        bytes.extend_from_slice(&body);
        let Ok(Packet::Unsubscribe(u)) = decode_all(&bytes) else {
            panic!("not an unsubscribe");
        };
        assert_eq!(u.pkid, 5);
        assert_eq!(u.filters, ["a/b", "#"]);
        // A filter that overruns the packet.
        assert!(matches!(
            decode_all(&[0xA2, 0x05, 0x00, 0x01, 0x00, 0x00, 0x09]),
            Err(ProtocolError::Malformed { .. })
        ));
        // Properties that overrun the packet.
        assert!(matches!(
            decode_all(&[0xA2, 0x03, 0x00, 0x01, 0x7F]),
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        // Every packet type with every short body: decoding fails or succeeds, never panics.
        for byte1 in [
            0x30u8, 0x32, 0x34, 0x40, 0x50, 0x62, 0x70, 0x82, 0xA2, 0xC0, 0xE0,
        ] {
            for len in 0..12u8 {
                let mut bytes = vec![byte1, len];
                bytes.extend((0..len).map(|i| i.wrapping_mul(37) ^ 0xA5));
                let mut buf = BytesMut::from(&bytes[..]);
                if let Ok(Some(frame)) = codec::frame(&buf, 1024) {
                    let _ = decode(&mut buf, &frame, 1024);
                }
            }
        }
    }
}
