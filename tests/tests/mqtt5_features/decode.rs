//! Decoding the server's MQTT 5 packets property by property (MQTT 5 §2.2.2): a
//! PUBLISH, the acknowledgements, CONNACK, SUBACK and DISCONNECT, with every property
//! kept in wire order, so that a test sees an alias, an empty topic, a DUP flag or a
//! Reason String exactly as sent. A property MQTT 5 does not define, a string that is not
//! UTF-8 or a length that overruns the packet fails the test.

/// One decoded property value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Byte(u8),
    Two(u16),
    Four(u32),
    Var(u32),
    Str(String),
    Bin(Vec<u8>),
    Pair(String, String),
}

/// The properties of a packet the server sent, in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Decoded(pub(crate) Vec<(u8, Value)>);

impl Decoded {
    /// Whether property `id` is there.
    pub(crate) fn has(&self, id: u8) -> bool {
        self.0.iter().any(|(i, _)| *i == id)
    }

    /// Property `id`, which may appear at most once (every property but User Property and
    /// Subscription Identifier: "It is a Protocol Error to include ... more than once").
    pub(crate) fn one(&self, id: u8) -> Option<&Value> {
        let mut found = self.0.iter().filter(|(i, _)| *i == id).map(|(_, v)| v);
        let first = found.next();
        assert!(
            found.next().is_none(),
            "property {id:#04x} sent more than once: {self:?}"
        );
        first
    }

    pub(crate) fn byte(&self, id: u8) -> Option<u8> {
        self.one(id).map(|v| match v {
            Value::Byte(b) => *b,
            other => panic!("{other:?}"),
        })
    }

    pub(crate) fn two(&self, id: u8) -> Option<u16> {
        self.one(id).map(|v| match v {
            Value::Two(n) => *n,
            other => panic!("{other:?}"),
        })
    }

    pub(crate) fn four(&self, id: u8) -> Option<u32> {
        self.one(id).map(|v| match v {
            Value::Four(n) => *n,
            other => panic!("{other:?}"),
        })
    }

    pub(crate) fn string(&self, id: u8) -> Option<&str> {
        self.one(id).map(|v| match v {
            Value::Str(s) => s.as_str(),
            other => panic!("{other:?}"),
        })
    }

    pub(crate) fn binary(&self, id: u8) -> Option<&[u8]> {
        self.one(id).map(|v| match v {
            Value::Bin(b) => b.as_slice(),
            other => panic!("{other:?}"),
        })
    }

    /// The Subscription Identifiers, in wire order.
    pub(crate) fn subscription_ids(&self) -> Vec<u32> {
        self.0
            .iter()
            .filter_map(|(_, v)| match v {
                Value::Var(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    /// The User Properties, in wire order.
    pub(crate) fn user(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter_map(|(_, v)| match v {
                Value::Pair(k, v) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect()
    }
}

/// A Variable Byte Integer at `*at`.
fn read_varint(buf: &[u8], at: &mut usize) -> usize {
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let byte = buf[*at];
        *at += 1;
        n |= usize::from(byte & 0x7F) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return n;
        }
        assert!(
            shift < 28,
            "variable byte integer longer than 4 bytes: {buf:02x?}"
        );
    }
}

fn read_u16(buf: &[u8], at: &mut usize) -> u16 {
    let n = u16::from_be_bytes([buf[*at], buf[*at + 1]]);
    *at += 2;
    n
}

fn read_bytes(buf: &[u8], at: &mut usize) -> Vec<u8> {
    let len = usize::from(read_u16(buf, at));
    let out = buf[*at..*at + len].to_vec();
    *at += len;
    out
}

fn read_string(buf: &[u8], at: &mut usize) -> String {
    String::from_utf8(read_bytes(buf, at)).expect("UTF-8 Encoded String (MQTT 5 §1.5.4)")
}

/// A property block at `*at`: its length, then the properties; panics on an identifier
/// MQTT 5 does not define.
fn read_properties(buf: &[u8], at: &mut usize) -> Decoded {
    let len = read_varint(buf, at);
    let end = *at + len;
    assert!(
        end <= buf.len(),
        "properties overrun the packet: {buf:02x?}"
    );
    let mut props = Vec::new();
    while *at < end {
        let id = buf[*at];
        *at += 1;
        let value = match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                *at += 1;
                Value::Byte(buf[*at - 1])
            }
            0x13 | 0x21 | 0x22 | 0x23 => Value::Two(read_u16(buf, at)),
            0x02 | 0x11 | 0x18 | 0x27 => {
                let n = u32::from_be_bytes(buf[*at..*at + 4].try_into().unwrap());
                *at += 4;
                Value::Four(n)
            }
            0x0B => Value::Var(read_varint(buf, at) as u32),
            0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => Value::Str(read_string(buf, at)),
            0x09 | 0x16 => Value::Bin(read_bytes(buf, at)),
            0x26 => Value::Pair(read_string(buf, at), read_string(buf, at)),
            other => panic!("unknown property {other:#04x} in {buf:02x?}"),
        };
        props.push((id, value));
    }
    assert_eq!(*at, end, "property length mismatch: {buf:02x?}");
    Decoded(props)
}

/// The offset just past the fixed header of a whole packet.
fn body_start(packet: &[u8]) -> usize {
    let mut at = 1;
    read_varint(packet, &mut at);
    at
}

/// A PUBLISH the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish {
    pub(crate) dup: bool,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    /// As on the wire: empty when the server used a Topic Alias alone.
    pub(crate) topic: String,
    /// 0 at QoS 0.
    pub(crate) pkid: u16,
    pub(crate) props: Decoded,
    pub(crate) payload: Vec<u8>,
}

/// Decodes a whole packet as an MQTT 5 PUBLISH; panics if it is something else.
pub(crate) fn parse_publish(packet: &[u8]) -> Publish {
    assert_eq!(packet[0] >> 4, 3, "a PUBLISH: {packet:02x?}");
    let qos = (packet[0] >> 1) & 0x03;
    let mut at = body_start(packet);
    let topic = read_string(packet, &mut at);
    let pkid = if qos > 0 {
        read_u16(packet, &mut at)
    } else {
        0
    };
    let props = read_properties(packet, &mut at);
    Publish {
        dup: packet[0] & 0x08 != 0,
        qos,
        retain: packet[0] & 0x01 != 0,
        topic,
        pkid,
        props,
        payload: packet[at..].to_vec(),
    }
}

/// A PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    /// The packet type (4 PUBACK, 5 PUBREC, 6 PUBREL, 7 PUBCOMP).
    pub(crate) kind: u8,
    pub(crate) pkid: u16,
    pub(crate) reason: u8,
    pub(crate) props: Decoded,
}

/// Decodes an acknowledgement (MQTT 5 §3.4.2: reason and properties may be left out).
pub(crate) fn parse_ack(packet: &[u8]) -> Ack {
    let kind = packet[0] >> 4;
    assert!((4..=7).contains(&kind), "an acknowledgement: {packet:02x?}");
    let mut at = body_start(packet);
    let pkid = read_u16(packet, &mut at);
    let reason = packet.get(at).copied().unwrap_or(0);
    at += 1;
    let props = if at < packet.len() {
        read_properties(packet, &mut at)
    } else {
        Decoded::default()
    };
    Ack {
        kind,
        pkid,
        reason,
        props,
    }
}

/// A CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnAck {
    pub(crate) session_present: bool,
    pub(crate) reason: u8,
    pub(crate) props: Decoded,
}

pub(crate) fn parse_connack(packet: &[u8]) -> ConnAck {
    assert_eq!(packet[0], 0x20, "a CONNACK: {packet:02x?}");
    let mut at = body_start(packet);
    let flags = packet[at];
    let reason = packet[at + 1];
    at += 2;
    ConnAck {
        session_present: flags & 1 == 1,
        reason,
        props: read_properties(packet, &mut at),
    }
}

/// A DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Disconnect {
    pub(crate) reason: u8,
    pub(crate) props: Decoded,
}

pub(crate) fn parse_disconnect(packet: &[u8]) -> Disconnect {
    assert_eq!(packet[0], 0xE0, "a DISCONNECT: {packet:02x?}");
    let mut at = body_start(packet);
    let reason = packet.get(at).copied().unwrap_or(0);
    at += 1;
    let props = if at < packet.len() {
        read_properties(packet, &mut at)
    } else {
        Decoded::default()
    };
    Disconnect { reason, props }
}

/// A SUBACK: its packet id and reason codes.
pub(crate) fn parse_suback(packet: &[u8]) -> (u16, Vec<u8>) {
    assert_eq!(packet[0], 0x90, "a SUBACK: {packet:02x?}");
    let mut at = body_start(packet);
    let pkid = read_u16(packet, &mut at);
    read_properties(packet, &mut at);
    (pkid, packet[at..].to_vec())
}
