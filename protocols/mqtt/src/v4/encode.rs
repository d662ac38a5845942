//! Encoding MQTT 3.1.1 packets: control packets with `mqttbytes::v4`, PUBLISH by hand
//! (straight from the shared payload bytes, with no intermediate packet struct).

use bytes::{BufMut, BytesMut};
use mqttbytes::QoS;
use mqttbytes::v4;

use crate::codec::{MAX_REMAINING_LEN, put_string, put_varint, varint_len};
use crate::error::ReasonCode;
use crate::packet::{OutgoingPublish, Reply, TooLarge};

/// The 3.1.1 CONNACK return code for an MQTT 5 reason code; `None` when 3.1.1 has no
/// equivalent (the connection then closes without a CONNACK, MQTT 3.1.1 §3.2.2.3).
fn connack_code(code: ReasonCode) -> Option<v4::ConnectReturnCode> {
    use v4::ConnectReturnCode as C;
    Some(match code {
        0x00 => C::Success,
        0x84 => C::RefusedProtocolVersion,
        0x85 => C::BadClientId,
        0x88 | 0x89 => C::ServiceUnavailable,
        0x86 => C::BadUserNamePassword,
        0x87 | 0x8A | 0x97 => C::NotAuthorized,
        _ => return None,
    })
}

fn qos(code: ReasonCode) -> QoS {
    match code {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// Appends `reply` to `buf`. Reason codes 3.1.1 cannot carry are dropped (a failed PUBLISH
/// is acknowledged as a success); a DISCONNECT, which 3.1.1 servers never send, and a
/// CONNACK refusal without a 3.1.1 code encode nothing.
pub(crate) fn encode(buf: &mut BytesMut, reply: &Reply<'_>) {
    // mqttbytes only fails to encode packets longer than MAX_REMAINING_LEN; control
    // packets are a few bytes.
    let _ = match reply {
        Reply::ConnAck(c) => match connack_code(c.code) {
            Some(code) => v4::ConnAck::new(code, c.session_present).write(buf),
            None => Ok(0),
        },
        Reply::PubAck { pkid, .. } => v4::PubAck::new(*pkid).write(buf),
        Reply::PubRec { pkid, .. } => v4::PubRec::new(*pkid).write(buf),
        Reply::PubRel { pkid } => v4::PubRel::new(*pkid).write(buf),
        Reply::PubComp { pkid, .. } => v4::PubComp::new(*pkid).write(buf),
        Reply::SubAck { pkid, codes, .. } => {
            let codes = codes
                .iter()
                .map(|&c| match c {
                    0..=2 => v4::SubscribeReasonCode::Success(qos(c)),
                    _ => v4::SubscribeReasonCode::Failure,
                })
                .collect();
            v4::SubAck::new(*pkid, codes).write(buf)
        }
        Reply::UnsubAck { pkid, .. } => v4::UnsubAck::new(*pkid).write(buf),
        Reply::PingResp => v4::PingResp.write(buf),
        Reply::Disconnect { .. } => Ok(0),
    };
}

/// Appends a PUBLISH (MQTT 3.1.1 §3.3). 3.1.1 has no properties: content type and meta
/// are not sent.
///
/// # Errors
/// [`TooLarge`] (nothing written) when the packet exceeds what MQTT can express.
pub(crate) fn encode_publish(buf: &mut BytesMut, p: &OutgoingPublish<'_>) -> Result<(), TooLarge> {
    let remaining = 2 + p.topic.len() + if p.qos > 0 { 2 } else { 0 } + p.payload.len();
    if remaining > MAX_REMAINING_LEN {
        return Err(TooLarge {
            size: 1 + 4 + remaining,
        });
    }
    buf.reserve(1 + varint_len(remaining) + remaining);
    buf.put_u8(0x30 | (u8::from(p.dup) << 3) | (p.qos << 1) | u8::from(p.retain));
    put_varint(buf, remaining);
    put_string(buf, p.topic.as_bytes());
    if p.qos > 0 {
        buf.put_u16(p.pkid);
    }
    buf.put_slice(p.payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(buf: &mut BytesMut) -> v4::Packet {
        v4::read(buf, 1 << 20).unwrap()
    }

    #[test]
    fn publish_decodes_with_mqttbytes() {
        let mut buf = BytesMut::new();
        let payload = [0u8, 0xFF, 0x10];
        for (qos, pkid, retain) in [(0, 0, false), (1, 7, true), (2, 65535, false)] {
            let p = OutgoingPublish {
                topic: "a/b",
                payload: &payload,
                qos,
                retain,
                pkid,
                dup: false,
                properties: None,
                message_expiry_s: None,
                subscription_ids: &[],
                topic_alias: None,
                content_type: Some("application/json"),
                meta: None,
            };
            encode_publish(&mut buf, &p).unwrap();
            let v4::Packet::Publish(decoded) = decode(&mut buf) else {
                panic!("not a publish");
            };
            assert_eq!(decoded.topic, "a/b");
            assert_eq!(decoded.qos as u8, qos);
            assert_eq!(decoded.pkid, pkid);
            assert_eq!(decoded.retain, retain);
            assert_eq!(&decoded.payload[..], &payload);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn refusals_without_a_311_code_send_no_connack() {
        let mut buf = BytesMut::new();
        let connack = crate::packet::ConnAck {
            code: 0x81,
            ..Default::default()
        };
        encode(&mut buf, &Reply::ConnAck(&connack));
        assert!(buf.is_empty());
        let connack = crate::packet::ConnAck {
            code: 0x84,
            ..Default::default()
        };
        encode(&mut buf, &Reply::ConnAck(&connack));
        assert_eq!(&buf[..], &[0x20, 0x02, 0x00, 0x01]);
    }

    #[test]
    fn suback_failures_are_0x80() {
        let mut buf = BytesMut::new();
        encode(
            &mut buf,
            &Reply::SubAck {
                pkid: 1,
                codes: &[0, 2, 0x8F, 0x9E],
                reason_string: None,
            },
        );
        assert_eq!(&buf[..], &[0x90, 0x06, 0x00, 0x01, 0x00, 0x02, 0x80, 0x80]);
    }
}
