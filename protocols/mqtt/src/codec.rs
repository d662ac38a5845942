//! Framing and dispatch: bytes in, a packet or "need more" out (STYLE 5: no I/O here).
//!
//! The fixed header is read here, so a packet is decoded only once all its bytes are in
//! the buffer; then `mqttbytes` (through [`crate::v4`] or [`crate::v5`]) decodes the body.
//! Any error from a complete frame is a malformed packet. The first packet is looked at
//! before decoding ([`decode_connect`]): its protocol level selects the codec.

use bytes::{Buf as _, BufMut, BytesMut};

use crate::error::ProtocolError;
use crate::packet::{Connect, OutgoingPublish, Packet, Reply, TooLarge, Version};
use crate::{v4, v5};

/// The fixed header of a complete packet at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The packet type (1–15).
    pub(crate) packet_type: u8,
    /// The low four bits of the first byte.
    pub(crate) flags: u8,
    /// Bytes of the fixed header (2–5).
    pub(crate) header_len: usize,
    /// The remaining length: bytes after the fixed header.
    pub(crate) remaining_len: usize,
}

impl Frame {
    /// The whole packet's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Reads the fixed header at the start of `buf`. `Ok(None)` until the whole packet is in
/// `buf`.
///
/// # Errors
/// [`ProtocolError::Malformed`] for a remaining length longer than 4 bytes,
/// [`ProtocolError::PacketTooLarge`] when the remaining length exceeds `max` (checked as
/// soon as the length is known, before the body arrives).
pub(crate) fn frame(buf: &[u8], max: usize) -> Result<Option<Frame>, ProtocolError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let mut remaining_len = 0usize;
    let mut header_len = 1;
    loop {
        let Some(&byte) = buf.get(header_len) else {
            return Ok(None);
        };
        remaining_len |= usize::from(byte & 0x7F) << (7 * (header_len - 1));
        header_len += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if header_len == 5 {
            return Err(ProtocolError::Malformed {
                detail: "remaining length longer than 4 bytes".into(),
            });
        }
    }
    if remaining_len > max {
        return Err(ProtocolError::PacketTooLarge {
            size: remaining_len,
            limit: max,
        });
    }
    if buf.len() < header_len + remaining_len {
        return Ok(None);
    }
    Ok(Some(Frame {
        packet_type: byte1 >> 4,
        flags: byte1 & 0x0F,
        header_len,
        remaining_len,
    }))
}

/// Checks the fixed header flags of a client packet [MQTT-2.2.2-2] and refuses packet
/// types a client never sends.
fn check_header(frame: &Frame) -> Result<(), ProtocolError> {
    let unexpected = |packet| Err(ProtocolError::UnexpectedPacket { packet });
    match frame.packet_type {
        2 => return unexpected("CONNACK"),
        9 => return unexpected("SUBACK"),
        11 => return unexpected("UNSUBACK"),
        13 => return unexpected("PINGRESP"),
        15 => return unexpected("AUTH"),
        _ => {}
    }
    let required = match frame.packet_type {
        3 => return Ok(()),
        6 | 8 | 10 => 0b0010,
        1 | 4 | 5 | 7 | 12 | 14 => 0,
        _ => 0x10, // type 0 is reserved: no flags are valid
    };
    if frame.flags == required {
        Ok(())
    } else {
        Err(ProtocolError::InvalidFlags {
            packet_type: frame.packet_type,
            flags: frame.flags,
        })
    }
}

/// Decodes the next packet of an established connection from `buf`, consuming its bytes.
/// `Ok(None)` when `buf` does not hold a whole packet yet.
///
/// # Errors
/// A [`ProtocolError`] for a packet that is too large, has bad header flags, is of a type a
/// client never sends, or does not decode. The buffer is then in an unspecified state: the
/// connection must close.
pub(crate) fn decode(
    version: Version,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Packet>, ProtocolError> {
    let Some(frame) = frame(buf, max)? else {
        return Ok(None);
    };
    check_header(&frame)?;
    if frame.packet_type == 1 {
        return Err(ProtocolError::SecondConnect);
    }
    // A PUBACK with only its packet identifier (every 3.1.1 PUBACK; an MQTT 5 one with
    // reason Success and no properties, §3.4.2.1) is read here: it is the most frequent
    // packet of a QoS 1 subscriber, and the generic decoders split the buffer for it.
    if frame.packet_type == 4
        && frame.header_len == 2
        && frame.remaining_len == 2
        && let Some(&[high, low]) = buf.get(2..4)
    {
        buf.advance(4);
        return Ok(Some(Packet::PubAck {
            pkid: u16::from_be_bytes([high, low]),
        }));
    }
    let packet = match version {
        Version::V3 | Version::V4 => v4::decode(buf, &frame, max)?,
        Version::V5 => v5::decode(buf, &frame, max)?,
    };
    Ok(Some(packet))
}

/// Why a first packet was refused, and which CONNACK format (if any) can answer it.
#[derive(Debug)]
pub(crate) struct ConnectError {
    /// The version whose CONNACK answers the error; `None`: close without a CONNACK.
    pub(crate) version: Option<Version>,
    /// The violation.
    pub(crate) error: ProtocolError,
}

/// Decodes the first packet of a connection, which must be a CONNECT, consuming its bytes.
/// Its protocol name and level select the codec of the rest of the connection: `MQIsdp` 3
/// (MQTT 3.1), `MQTT` 4 (3.1.1) or `MQTT` 5. `Ok(None)` when `buf` does not hold the whole
/// packet yet.
///
/// # Errors
/// [`ConnectError`] with [`ProtocolError::FirstPacketNotConnect`] (checked on the first
/// byte), [`ProtocolError::BadProtocolName`],
/// [`ProtocolError::UnsupportedProtocolLevel`] (any other level or name/level pair,
/// answered with a 3.1.1 CONNACK for levels below 5, an MQTT 5 one above),
/// [`ProtocolError::ReservedConnectFlag`], or any framing or decoding error.
pub(crate) fn decode_connect(
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<(Version, Connect)>, ConnectError> {
    let fail = |version, error| Err(ConnectError { version, error });
    if let Some(&byte1) = buf.first()
        && byte1 >> 4 != 1
    {
        return fail(
            None,
            ProtocolError::FirstPacketNotConnect {
                packet_type: byte1 >> 4,
            },
        );
    }
    let frame = match frame(buf, max) {
        Ok(Some(frame)) => frame,
        Ok(None) => return Ok(None),
        Err(error) => return fail(None, error),
    };
    if let Err(error) = check_header(&frame) {
        return fail(None, error);
    }
    // Variable header: protocol name (u16 length + bytes), level, connect flags.
    let body = &buf[frame.header_len..frame.len()];
    let malformed = || ProtocolError::Malformed {
        detail: "CONNECT variable header is truncated".into(),
    };
    let Some(name_len) = body
        .get(..2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    else {
        return fail(None, malformed());
    };
    let (Some(name), Some(&level), Some(&flags)) = (
        body.get(2..2 + name_len),
        body.get(2 + name_len),
        body.get(3 + name_len),
    ) else {
        return fail(None, malformed());
    };
    let version = match (name, level) {
        (b"MQIsdp", 3) => Version::V3,
        (b"MQTT", 4) => Version::V4,
        (b"MQTT", 5) => Version::V5,
        (b"MQTT" | b"MQIsdp", level) => {
            let version = if level > 5 { Version::V5 } else { Version::V4 };
            return fail(
                Some(version),
                ProtocolError::UnsupportedProtocolLevel { level },
            );
        }
        _ => {
            return fail(
                None,
                ProtocolError::BadProtocolName {
                    name: String::from_utf8_lossy(name).into_owned(),
                },
            );
        }
    };
    if flags & 0x01 != 0 {
        return fail(Some(version), ProtocolError::ReservedConnectFlag);
    }
    let decoded = match version {
        Version::V3 => v4::decode_connect_v31(buf, &frame, max),
        Version::V4 => v4::decode_connect(buf, max),
        Version::V5 => v5::decode_connect(buf, max),
    };
    match decoded {
        Ok(connect) => Ok(Some((version, connect))),
        Err(error) => fail(Some(version), error),
    }
}

/// Appends `reply` to `buf` in `version`'s format.
pub(crate) fn encode(version: Version, buf: &mut BytesMut, reply: &Reply<'_>) {
    match version {
        Version::V3 | Version::V4 => v4::encode(buf, reply),
        Version::V5 => v5::encode(buf, reply),
    }
}

/// Appends a PUBLISH to `buf` in `version`'s format.
///
/// # Errors
/// [`TooLarge`] (nothing written) when it would exceed `max` bytes (MQTT 5: the client's
/// Maximum Packet Size; ignored for 3.1.1) or what MQTT can express.
pub(crate) fn encode_publish(
    version: Version,
    buf: &mut BytesMut,
    publish: &OutgoingPublish<'_>,
    max: Option<usize>,
) -> Result<(), TooLarge> {
    match version {
        Version::V3 | Version::V4 => v4::encode_publish(buf, publish),
        Version::V5 => v5::encode_publish(buf, publish, max),
    }
}

/// A `mqttbytes` error on a complete frame: always a malformed packet.
pub(crate) fn malformed(error: mqttbytes::Error) -> ProtocolError {
    ProtocolError::Malformed {
        detail: format!("{error:?}"),
    }
}

/// The number of bytes of a variable byte integer (MQTT 5 §1.5.5) holding `n`.
pub(crate) fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `n` (at most 268,435,455) as a variable byte integer.
pub(crate) fn put_varint(buf: &mut BytesMut, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if n == 0 {
            return;
        }
    }
}

/// Writes a UTF-8 string or binary data with its u16 length (MQTT 5 §1.5.4). The caller
/// ensures `bytes` is at most 65,535 bytes long.
pub(crate) fn put_string(buf: &mut BytesMut, bytes: &[u8]) {
    buf.put_u16(bytes.len() as u16);
    buf.put_slice(bytes);
}

/// The largest remaining length MQTT can express (MQTT 5 §1.5.5).
pub(crate) const MAX_REMAINING_LEN: usize = 268_435_455;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_waits_for_the_whole_packet() {
        assert_eq!(frame(&[], 100), Ok(None));
        assert_eq!(frame(&[0x30], 100), Ok(None));
        assert_eq!(frame(&[0x30, 0x03, 0x00], 100), Ok(None));
        let f = frame(&[0x30, 0x03, 0, 1, b'a', 0xFF], 100)
            .unwrap()
            .unwrap();
        assert_eq!((f.packet_type, f.header_len, f.remaining_len), (3, 2, 3));
        // 128 = 0x80 0x01
        assert_eq!(frame(&[0x30, 0x80, 0x01], 1000), Ok(None));
        assert!(matches!(
            frame(&[0x30, 0x80, 0x01], 100),
            Err(ProtocolError::PacketTooLarge {
                size: 128,
                limit: 100
            })
        ));
        assert!(matches!(
            frame(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], usize::MAX),
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[test]
    fn header_flags_are_checked() {
        let f = |packet_type, flags| Frame {
            packet_type,
            flags,
            header_len: 2,
            remaining_len: 0,
        };
        assert!(check_header(&f(8, 2)).is_ok());
        assert!(check_header(&f(8, 0)).is_err());
        assert!(check_header(&f(12, 0)).is_ok());
        assert!(check_header(&f(12, 1)).is_err());
        assert!(check_header(&f(0, 0)).is_err());
        assert!(check_header(&f(3, 0b1011)).is_ok());
        assert!(matches!(
            check_header(&f(9, 0)),
            Err(ProtocolError::UnexpectedPacket { packet: "SUBACK" })
        ));
    }

    #[test]
    fn varints_round_trip() {
        for n in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            MAX_REMAINING_LEN,
        ] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, n);
            assert_eq!(buf.len(), varint_len(n), "{n}");
            let mut framed = BytesMut::from(&[0x30][..]);
            framed.extend_from_slice(&buf);
            framed.resize(1 + buf.len() + n.min(16), 0);
            if n <= 16 {
                let f = frame(&framed, usize::MAX).unwrap().unwrap();
                assert_eq!(f.remaining_len, n);
            }
        }
    }

    #[test]
    fn connect_level_selects_the_codec() {
        // MQTT 3.1 (MQIsdp, level 3).
        let mut buf = BytesMut::from(
            &[
                0x10, 0x12, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 2, 0, 60, 0, 4, b't',
                b'e', b's', b't',
            ][..],
        );
        let (version, connect) = decode_connect(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(version, Version::V3);
        assert_eq!(connect.client_id, "test");
        assert!(buf.is_empty());
        // Level 3 under the name MQTT, level 4 under MQIsdp: a 3.1.1 CONNACK refusal.
        for (name, level) in [(&b"MQTT"[..], 3u8), (&b"MQIsdp"[..], 4)] {
            let mut body = vec![0, name.len() as u8];
            body.extend_from_slice(name);
            body.extend_from_slice(&[level, 2, 0, 60, 0, 1, b't']);
            let mut buf = BytesMut::from(&[0x10, body.len() as u8][..]);
            buf.extend_from_slice(&body);
            let error = decode_connect(&mut buf, 1024).unwrap_err();
            assert_eq!(error.version, Some(Version::V4));
            assert_eq!(
                error.error,
                ProtocolError::UnsupportedProtocolLevel { level }
            );
        }
        // Level 6: answered with an MQTT 5 CONNACK.
        let mut buf =
            BytesMut::from(&[0x10, 0x0A, 0, 4, b'M', b'Q', b'T', b'T', 6, 2, 0, 60, 0, 0][..]);
        assert_eq!(
            decode_connect(&mut buf, 1024).unwrap_err().version,
            Some(Version::V5)
        );
        // Not a CONNECT at all.
        let mut buf = BytesMut::from(&[0xC0, 0x00][..]);
        assert_eq!(
            decode_connect(&mut buf, 1024).unwrap_err().error,
            ProtocolError::FirstPacketNotConnect { packet_type: 12 }
        );
        // A valid 3.1.1 CONNECT.
        let mut buf = BytesMut::from(
            &[
                0x10, 0x10, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 4, b't', b'e', b's', b't',
            ][..],
        );
        let (version, connect) = decode_connect(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(version, Version::V4);
        assert_eq!(connect.client_id, "test");
        assert!(connect.clean_start);
        assert_eq!(connect.keep_alive, 60);
        assert!(buf.is_empty());
    }

    /// Regression guard for "never panic on input": random packets of every type, with
    /// random bodies, through both decoders (a tiny LCG keeps it deterministic).
    /// Guards the PUBACK shortcut in [`decode`]: short PUBACKs of both versions are read
    /// there, longer MQTT 5 ones (reason code, properties) by the generic decoder.
    #[test]
    fn pubacks_decode_short_and_long() {
        for version in [Version::V4, Version::V5] {
            let mut buf = BytesMut::from(&[0x40, 0x02, 0x01, 0x02, 0x40][..]);
            let packet = decode(version, &mut buf, 1024).unwrap();
            assert!(matches!(packet, Some(Packet::PubAck { pkid: 0x0102 })));
            assert_eq!(&buf[..], &[0x40], "only the PUBACK is consumed");
            assert!(decode(version, &mut buf, 1024).unwrap().is_none());
        }
        // MQTT 5 PUBACK with reason 0x10 (no matching subscribers) and no properties.
        let mut buf = BytesMut::from(&[0x40, 0x03, 0x00, 0x07, 0x10][..]);
        let packet = decode(Version::V5, &mut buf, 1024).unwrap();
        assert!(matches!(packet, Some(Packet::PubAck { pkid: 7 })));
        assert!(buf.is_empty());
    }

    #[test]
    fn random_input_never_panics() {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as u8
        };
        for round in 0..20_000 {
            let len = usize::from(next() % 48);
            let mut bytes = vec![(next() & 0xF0) | (next() & 0x0F), len as u8];
            bytes.extend((0..len).map(|_| next()));
            for version in [Version::V4, Version::V5] {
                let mut buf = BytesMut::from(&bytes[..]);
                let _ = decode(version, &mut buf, 1024);
            }
            if round % 4 == 0 {
                // A CONNECT that gets past the name and level checks: MQTT 3.1.1 or 5, or
                // MQTT 3.1 (rewritten as 3.1.1 before decoding).
                let mut body = match next() % 3 {
                    0 => vec![0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3],
                    n => vec![0, 4, b'M', b'Q', b'T', b'T', 3 + n],
                };
                body.push(next() & 0xFE);
                body.extend((0..len).map(|_| next()));
                let mut connect = vec![0x10, body.len() as u8];
                connect.extend(body);
                let _ = decode_connect(&mut BytesMut::from(&connect[..]), 1024);
            }
        }
    }
}
