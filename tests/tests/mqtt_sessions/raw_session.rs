//! Persistent sessions in raw bytes, for what only the wire shows (the DUP flag, packet
//! identifiers, PUBREL resends): a CONNECT with Clean Session / Clean Start 0 and a
//! Session Expiry Interval, a PUBLISH parser, acknowledgements.

use std::net::SocketAddr;

use crate::raw::{self, Raw};

/// A normal DISCONNECT (3.1.1; MQTT 5 with reason 0x00 and no properties).
pub(crate) const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// A CONNECT at `level` (4 or 5) for `client_id`, keep alive 60 s, Clean Session /
/// Clean Start = `clean`; level 5 carries a Session Expiry Interval property when
/// `expiry` is given.
pub(crate) fn connect_packet(
    level: u8,
    client_id: &str,
    clean: bool,
    expiry: Option<u32>,
) -> Vec<u8> {
    let mut body = raw::string("MQTT");
    body.push(level);
    body.push(if clean { 0x02 } else { 0x00 });
    body.extend_from_slice(&60u16.to_be_bytes());
    if level == 5 {
        match expiry {
            Some(expiry) => {
                body.extend_from_slice(&[5, 0x11]);
                body.extend_from_slice(&expiry.to_be_bytes());
            }
            None => body.push(0),
        }
    }
    body.extend(raw::string(client_id));
    raw::packet(0x10, &body)
}

/// Connects and sends [`connect_packet`]; panics unless the CONNACK accepts. Returns the
/// client and the CONNACK's session present flag.
pub(crate) async fn connect(
    addr: SocketAddr,
    level: u8,
    client_id: &str,
    clean: bool,
    expiry: Option<u32>,
) -> (Raw, bool) {
    let mut client = Raw::connect(addr).await;
    client
        .send(&connect_packet(level, client_id, clean, expiry))
        .await;
    let connack = client.packet().await.expect("a CONNACK");
    assert_eq!(connack[0], 0x20, "a CONNACK: {connack:?}");
    assert_eq!(connack[3], 0x00, "the CONNECT is accepted: {connack:?}");
    assert_eq!(
        connack[2] & 0xFE,
        0,
        "reserved acknowledge flags: {connack:?}"
    );
    (client, connack[2] & 0x01 == 1)
}

/// Subscribes to `filter` at `qos`; panics unless the SUBACK grants exactly `qos`.
pub(crate) async fn subscribe(client: &mut Raw, level: u8, pkid: u16, filter: &str, qos: u8) {
    client.send(&raw::subscribe(level, pkid, filter, qos)).await;
    let suback = client.packet().await.expect("a SUBACK");
    assert_eq!(suback[0], 0x90, "a SUBACK: {suback:?}");
    assert_eq!(suback[2..4], pkid.to_be_bytes(), "{suback:?}");
    assert_eq!(suback.last(), Some(&qos), "{filter} granted: {suback:?}");
}

/// A PUBLISH the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incoming {
    pub(crate) dup: bool,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    pub(crate) topic: String,
    /// 0 at QoS 0.
    pub(crate) pkid: u16,
    pub(crate) payload: Vec<u8>,
}

/// Parses a whole packet as a PUBLISH at `level`; panics if it is something else.
pub(crate) fn parse_publish(level: u8, packet: &[u8]) -> Incoming {
    assert_eq!(packet[0] >> 4, 3, "a PUBLISH: {packet:?}");
    let (dup, qos, retain) = (
        packet[0] & 0x08 != 0,
        (packet[0] >> 1) & 0x03,
        packet[0] & 1 != 0,
    );
    let mut at = 1;
    while packet[at] & 0x80 != 0 {
        at += 1;
    }
    at += 1;
    let topic_len = usize::from(u16::from_be_bytes([packet[at], packet[at + 1]]));
    let topic = String::from_utf8(packet[at + 2..at + 2 + topic_len].to_vec()).unwrap();
    at += 2 + topic_len;
    let mut pkid = 0;
    if qos > 0 {
        pkid = u16::from_be_bytes([packet[at], packet[at + 1]]);
        at += 2;
    }
    if level == 5 {
        let (mut properties, mut shift) = (0usize, 0);
        loop {
            let byte = packet[at];
            at += 1;
            properties |= usize::from(byte & 0x7F) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        at += properties;
    }
    Incoming {
        dup,
        qos,
        retain,
        topic,
        pkid,
        payload: packet[at..].to_vec(),
    }
}

/// An acknowledgement of packet `pkid`: PUBACK `0x40`, PUBREC `0x50`, PUBREL `0x62`,
/// PUBCOMP `0x70` (MQTT 5: reason 0x00 left out).
pub(crate) fn ack(byte1: u8, pkid: u16) -> [u8; 4] {
    let [hi, lo] = pkid.to_be_bytes();
    [byte1, 0x02, hi, lo]
}

/// The next packet, which must be a PUBLISH.
pub(crate) async fn next_publish(client: &mut Raw, level: u8) -> Incoming {
    let packet = client
        .packet()
        .await
        .expect("a PUBLISH, not a closed connection");
    parse_publish(level, &packet)
}
