//! Decoding MQTT 3.1.1 packets with `mqttbytes::v4`.

use bytes::{BufMut as _, Bytes, BytesMut};
use mqttbytes::v4::Packet as Wire;

use crate::codec::{Frame, malformed, put_varint};
use crate::error::ProtocolError;
use crate::packet::{
    Connect, Filter, Packet, Publish, RetainHandling, Subscribe, Unsubscribe, Will,
};

/// Decodes the complete packet `frame` describes at the start of `buf`, consuming it.
///
/// # Errors
/// [`ProtocolError::Malformed`] when `mqttbytes` refuses it,
/// [`ProtocolError::SecondConnect`], [`ProtocolError::UnexpectedPacket`] for packets only a
/// server sends.
pub(crate) fn decode(
    buf: &mut BytesMut,
    _frame: &Frame,
    max: usize,
) -> Result<Packet, ProtocolError> {
    let unexpected = |packet| Err(ProtocolError::UnexpectedPacket { packet });
    Ok(match mqttbytes::v4::read(buf, max).map_err(malformed)? {
        Wire::Publish(p) => Packet::Publish(Publish {
            topic: p.topic,
            qos: p.qos as u8,
            retain: p.retain,
            pkid: p.pkid,
            payload: p.payload,
            topic_alias: None,
            user_properties: Vec::new(),
            properties: None,
        }),
        Wire::PubAck(a) => Packet::PubAck { pkid: a.pkid },
        Wire::PubRec(r) => Packet::PubRec {
            pkid: r.pkid,
            reason: 0,
        },
        Wire::PubRel(r) => Packet::PubRel { pkid: r.pkid },
        Wire::PubComp(c) => Packet::PubComp { pkid: c.pkid },
        Wire::Subscribe(s) => Packet::Subscribe(Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| Filter {
                    filter: f.path,
                    qos: f.qos as u8,
                    no_local: false,
                    retain_handling: RetainHandling::Always,
                    retain_as_published: false,
                })
                .collect(),
            subscription_id: None,
        }),
        Wire::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        }),
        Wire::PingReq => Packet::PingReq,
        Wire::Disconnect => Packet::Disconnect {
            reason: 0x00,
            session_expiry: None,
        },
        Wire::Connect(_) => return Err(ProtocolError::SecondConnect),
        Wire::ConnAck(_) => return unexpected("CONNACK"),
        Wire::SubAck(_) => return unexpected("SUBACK"),
        Wire::UnsubAck(_) => return unexpected("UNSUBACK"),
        Wire::PingResp => return unexpected("PINGRESP"),
    })
}

/// Decodes a complete level-4 CONNECT at the start of `buf`, consuming it.
///
/// # Errors
/// [`ProtocolError::Malformed`] when `mqttbytes` refuses it.
pub(crate) fn decode_connect(buf: &mut BytesMut, max: usize) -> Result<Connect, ProtocolError> {
    match mqttbytes::v4::read(buf, max).map_err(malformed)? {
        Wire::Connect(c) => Ok(Connect {
            client_id: c.client_id,
            clean_start: c.clean_session,
            keep_alive: c.keep_alive,
            session_expiry: 0,
            receive_maximum: None,
            max_packet_size: None,
            authentication_method: None,
            topic_alias_maximum: 0,
            request_problem_information: true,
            // The payload is copied out of the read buffer: the will lives as long as the
            // connection, and should not keep the buffer's allocation alive.
            will: c.last_will.map(|w| {
                Box::new(Will {
                    message: Publish {
                        topic: w.topic,
                        qos: w.qos as u8,
                        retain: w.retain,
                        pkid: 0,
                        payload: Bytes::copy_from_slice(&w.message),
                        topic_alias: None,
                        user_properties: Vec::new(),
                        properties: None,
                    },
                    delay: 0,
                })
            }),
            username: c.login.as_ref().map(|l| l.username.clone()),
            password: c.login.map(|l| l.password.into()),
        }),
        other => Err(ProtocolError::Malformed {
            detail: format!("expected CONNECT, decoded {other:?}"),
        }),
    }
}

/// Decodes a complete MQTT 3.1 CONNECT (protocol name `MQIsdp`, level 3) at the start of
/// `buf`, consuming it. After the protocol name and level, 3.1 lays out a CONNECT as
/// 3.1.1 does (flags, keep alive, client id, will, user name, password), so the packet is
/// rewritten with 3.1.1's name and level (two bytes shorter) and decoded as 3.1.1.
/// `frame` is the CONNECT's fixed header; the caller checked the name and level.
///
/// # Errors
/// [`ProtocolError::Malformed`] when the rest does not decode.
pub(crate) fn decode_connect_v31(
    buf: &mut BytesMut,
    frame: &Frame,
    max: usize,
) -> Result<Connect, ProtocolError> {
    // Fixed header, then `00 06 "MQIsdp" 03`: 9 bytes.
    const V31_HEAD: usize = 9;
    const V311_HEAD: [u8; 7] = [0, 4, b'M', b'Q', b'T', b'T', 4];
    let packet = buf.split_to(frame.len());
    let rest = &packet[frame.header_len + V31_HEAD..];
    let remaining = V311_HEAD.len() + rest.len();
    let mut rewritten = BytesMut::with_capacity(1 + 4 + remaining);
    rewritten.put_u8(0x10);
    put_varint(&mut rewritten, remaining);
    rewritten.put_slice(&V311_HEAD);
    rewritten.put_slice(rest);
    decode_connect(&mut rewritten, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn mqtt_3_1_connect_decodes_with_its_will() {
        // MQIsdp level 3, flags: will (QoS 1, retain) + clean session, keep alive 60,
        // client id "c31", will topic "w/t", will payload "bye".
        let body = [
            0,
            6,
            b'M',
            b'Q',
            b'I',
            b's',
            b'd',
            b'p',
            3,
            0b0010_1110,
            0,
            60,
            0,
            3,
            b'c',
            b'3',
            b'1',
            0,
            3,
            b'w',
            b'/',
            b't',
            0,
            3,
            b'b',
            b'y',
            b'e',
        ];
        let mut buf = BytesMut::from(&[0x10, body.len() as u8][..]);
        buf.extend_from_slice(&body);
        buf.extend_from_slice(&[0xC0, 0x00]); // a PINGREQ right behind it
        let frame = codec::frame(&buf, 1024).unwrap().unwrap();
        let connect = decode_connect_v31(&mut buf, &frame, 1024).unwrap();
        assert_eq!(connect.client_id, "c31");
        assert_eq!(connect.keep_alive, 60);
        assert!(connect.clean_start);
        let will = connect.will.unwrap();
        assert_eq!(will.message.topic, "w/t");
        assert_eq!(&will.message.payload[..], b"bye");
        assert_eq!((will.message.qos, will.message.retain), (1, true));
        assert_eq!(&buf[..], &[0xC0, 0x00], "only the CONNECT is consumed");
    }
}
