//! MQTT 3.1.1 framing for the load generator: the few packets it sends, encoded straight
//! into a write buffer, and a decoder that borrows from the read buffer (no allocation per
//! message). No I/O here: bytes in, packets out.
//!
//! Only what a benchmark client needs: CONNECT (clean session, no will, no login),
//! SUBSCRIBE with one filter, PUBLISH and its acknowledgements, DISCONNECT.

use bytes::{BufMut, BytesMut};

/// A packet from the broker, borrowing its topic and payload from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    /// CONNACK with its return code (0 = accepted).
    ConnAck { code: u8 },
    /// An application message.
    Publish {
        qos: u8,
        pkid: u16,
        topic: &'a [u8],
        payload: &'a [u8],
    },
    /// QoS 1 acknowledgement.
    PubAck(u16),
    /// QoS 2, step 1.
    PubRec(u16),
    /// QoS 2, step 2.
    PubRel(u16),
    /// QoS 2, step 3.
    PubComp(u16),
    /// SUBACK with one return code per filter (0x80 = refused).
    SubAck { pkid: u16, codes: &'a [u8] },
    /// Anything else (PINGRESP, UNSUBACK, …): its packet type.
    Other(u8),
}

/// What is wrong with the broker's bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The remaining length took more than four bytes.
    MalformedLength,
    /// A packet body is shorter than its type requires.
    Truncated(u8),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MalformedLength => write!(f, "malformed remaining length (more than 4 bytes)"),
            Self::Truncated(kind) => write!(f, "packet of type {kind} is too short"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes the packet at the start of `buf`: `Ok(None)` when more bytes are needed,
/// otherwise the packet and how many bytes it took.
pub(crate) fn decode(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut header = 1;
    loop {
        let Some(&byte) = buf.get(header) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7F) << (7 * (header - 1));
        header += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if header > 4 {
            return Err(DecodeError::MalformedLength);
        }
    }
    let total = header + len;
    let Some(body) = buf.get(header..total) else {
        return Ok(None);
    };
    let kind = first >> 4;
    let pkid = || match body {
        [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(DecodeError::Truncated(kind)),
    };
    let packet = match kind {
        2 => Packet::ConnAck {
            code: *body.get(1).ok_or(DecodeError::Truncated(kind))?,
        },
        3 => {
            let qos = (first >> 1) & 0b11;
            let topic_len = usize::from(pkid()?);
            let topic = body
                .get(2..2 + topic_len)
                .ok_or(DecodeError::Truncated(kind))?;
            let mut rest = &body[2 + topic_len..];
            let mut id = 0;
            if qos > 0 {
                let [a, b, tail @ ..] = rest else {
                    return Err(DecodeError::Truncated(kind));
                };
                id = u16::from_be_bytes([*a, *b]);
                rest = tail;
            }
            Packet::Publish {
                qos,
                pkid: id,
                topic,
                payload: rest,
            }
        }
        4 => Packet::PubAck(pkid()?),
        5 => Packet::PubRec(pkid()?),
        6 => Packet::PubRel(pkid()?),
        7 => Packet::PubComp(pkid()?),
        9 => Packet::SubAck {
            pkid: pkid()?,
            codes: &body[2..],
        },
        other => Packet::Other(other),
    };
    Ok(Some((packet, total)))
}

/// Appends the remaining-length varint.
fn put_len(buf: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

fn put_str(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s);
}

/// CONNECT, MQTT 3.1.1, with `keep_alive` seconds (0: off); `clean`: clean session 1 (0
/// asks the broker to keep the session: a persistent subscriber).
pub(crate) fn connect(buf: &mut BytesMut, client_id: &str, keep_alive: u16, clean: bool) {
    buf.put_u8(0x10);
    put_len(buf, 10 + 2 + client_id.len());
    put_str(buf, b"MQTT");
    buf.put_u8(4); // protocol level 3.1.1
    buf.put_u8(if clean { 0x02 } else { 0x00 }); // clean session flag
    buf.put_u16(keep_alive);
    put_str(buf, client_id.as_bytes());
}

/// SUBSCRIBE to one `filter` at `qos`.
pub(crate) fn subscribe(buf: &mut BytesMut, pkid: u16, filter: &str, qos: u8) {
    buf.put_u8(0x82);
    put_len(buf, 2 + 2 + filter.len() + 1);
    buf.put_u16(pkid);
    put_str(buf, filter.as_bytes());
    buf.put_u8(qos);
}

/// The header of a PUBLISH whose payload of `payload_len` bytes the caller appends next
/// (so it can stamp it in place). `pkid` is ignored at QoS 0.
pub(crate) fn publish_header(
    buf: &mut BytesMut,
    topic: &[u8],
    qos: u8,
    pkid: u16,
    payload_len: usize,
) {
    buf.put_u8(0x30 | (qos << 1));
    let id_len = if qos > 0 { 2 } else { 0 };
    put_len(buf, 2 + topic.len() + id_len + payload_len);
    put_str(buf, topic);
    if qos > 0 {
        buf.put_u16(pkid);
    }
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP: a fixed header and a packet id.
pub(crate) fn ack(buf: &mut BytesMut, kind: Ack, pkid: u16) {
    buf.put_u8(kind as u8);
    buf.put_u8(2);
    buf.put_u16(pkid);
}

/// The first byte of each two-byte-body acknowledgement.
#[derive(Debug, Clone, Copy)]
#[allow(
    clippy::enum_variant_names,
    reason = "the packet names of the MQTT spec"
)]
pub(crate) enum Ack {
    PubAck = 0x40,
    PubRec = 0x50,
    PubRel = 0x62,
    PubComp = 0x70,
}

/// A DISCONNECT packet.
pub(crate) const DISCONNECT: [u8; 2] = [0xE0, 0];

/// Appends DISCONNECT.
pub(crate) fn disconnect(buf: &mut BytesMut) {
    buf.put_slice(&DISCONNECT);
}

#[cfg(test)]
mod tests {
    use mqttbytes::QoS;
    use mqttbytes::v4::{self, ConnAck, ConnectReturnCode, SubAck, SubscribeReasonCode};

    use super::*;

    fn read(buf: &BytesMut) -> v4::Packet {
        v4::read(&mut buf.clone(), 1 << 20).expect("mqttbytes decodes it")
    }

    #[test]
    fn connect_is_a_clean_3_1_1_session() {
        let mut buf = BytesMut::new();
        connect(&mut buf, "bench-1", 0, true);
        let v4::Packet::Connect(c) = read(&buf) else {
            panic!("not a CONNECT")
        };
        assert_eq!(c.client_id, "bench-1");
        assert_eq!(c.keep_alive, 0);
        assert!(c.clean_session);
        assert!(c.last_will.is_none() && c.login.is_none());
    }

    #[test]
    fn subscribe_carries_filter_and_qos() {
        let mut buf = BytesMut::new();
        subscribe(&mut buf, 7, "bench/fanin/+", 1);
        let v4::Packet::Subscribe(s) = read(&buf) else {
            panic!("not a SUBSCRIBE")
        };
        assert_eq!(s.pkid, 7);
        assert_eq!(s.filters.len(), 1);
        assert_eq!(s.filters[0].path, "bench/fanin/+");
        assert_eq!(s.filters[0].qos, QoS::AtLeastOnce);
    }

    #[test]
    fn publish_round_trips_at_each_qos_and_large_lengths() {
        for (qos, len) in [(0u8, 64usize), (1, 200), (2, 20_000)] {
            let mut buf = BytesMut::new();
            publish_header(&mut buf, b"bench/fanin/3", qos, 42, len);
            buf.put_bytes(0xAB, len);
            let v4::Packet::Publish(p) = read(&buf) else {
                panic!("not a PUBLISH")
            };
            assert_eq!(
                (p.topic.as_str(), p.qos as u8, p.payload.len()),
                ("bench/fanin/3", qos, len)
            );
            assert_eq!(p.pkid, if qos > 0 { 42 } else { 0 });
            let (packet, used) = decode(&buf).unwrap().unwrap();
            assert_eq!(used, buf.len());
            let Packet::Publish {
                qos: q,
                pkid,
                topic,
                payload,
            } = packet
            else {
                panic!()
            };
            assert_eq!(
                (q, pkid, topic, payload.len()),
                (qos, p.pkid, &b"bench/fanin/3"[..], len)
            );
        }
    }

    #[test]
    fn acks_round_trip() {
        let mut buf = BytesMut::new();
        ack(&mut buf, Ack::PubAck, 1);
        ack(&mut buf, Ack::PubRec, 2);
        ack(&mut buf, Ack::PubRel, 3);
        ack(&mut buf, Ack::PubComp, 4);
        disconnect(&mut buf);
        let mut at = 0;
        let mut seen = Vec::new();
        while let Some((p, used)) = decode(&buf[at..]).unwrap() {
            seen.push(format!("{p:?}"));
            at += used;
        }
        assert_eq!(
            seen,
            [
                "PubAck(1)",
                "PubRec(2)",
                "PubRel(3)",
                "PubComp(4)",
                "Other(14)"
            ]
        );
        assert!(matches!(read(&buf), v4::Packet::PubAck(a) if a.pkid == 1));
    }

    #[test]
    fn decodes_what_mqttbytes_encodes() {
        let mut buf = BytesMut::new();
        ConnAck::new(ConnectReturnCode::NotAuthorized, false)
            .write(&mut buf)
            .unwrap();
        SubAck::new(
            9,
            vec![
                SubscribeReasonCode::Success(QoS::ExactlyOnce),
                SubscribeReasonCode::Failure,
            ],
        )
        .write(&mut buf)
        .unwrap();
        let (first, used) = decode(&buf).unwrap().unwrap();
        assert_eq!(first, Packet::ConnAck { code: 5 });
        let (second, _) = decode(&buf[used..]).unwrap().unwrap();
        assert_eq!(
            second,
            Packet::SubAck {
                pkid: 9,
                codes: &[2, 0x80]
            }
        );
    }

    #[test]
    fn partial_input_needs_more_and_bad_lengths_fail() {
        let mut buf = BytesMut::new();
        publish_header(&mut buf, b"t", 1, 5, 300);
        buf.put_bytes(0, 300);
        for cut in [0, 1, 2, 3, buf.len() - 1] {
            assert_eq!(decode(&buf[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            decode(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(DecodeError::MalformedLength)
        );
        assert_eq!(decode(&[0x40, 0x01, 0x00]), Err(DecodeError::Truncated(4)));
    }
}
