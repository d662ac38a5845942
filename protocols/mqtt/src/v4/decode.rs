//! Decoding MQTT 3.1.1 packets with `mqttbytes::v4`.

use bytes::BytesMut;
use mqttbytes::v4::Packet as Wire;

use crate::codec::{Frame, malformed};
use crate::error::ProtocolError;
use crate::packet::{Connect, Filter, Packet, Publish, RetainHandling, Subscribe, Unsubscribe};

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
                })
                .collect(),
            has_subscription_id: false,
        }),
        Wire::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        }),
        Wire::PingReq => Packet::PingReq,
        Wire::Disconnect => Packet::Disconnect,
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
            has_will: c.last_will.is_some(),
            username: c.login.as_ref().map(|l| l.username.clone()),
            password: c.login.map(|l| l.password.into()),
        }),
        other => Err(ProtocolError::Malformed {
            detail: format!("expected CONNECT, decoded {other:?}"),
        }),
    }
}
