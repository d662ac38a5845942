//! A minimal MQTT 5 client in raw bytes, for what only the wire shows: packets with
//! properties built by hand (CONNECT, PUBLISH, SUBSCRIBE, DISCONNECT, acknowledgements),
//! and a connected client that reads the server's packets back, decoded by
//! [`crate::decode`].
//!
//! The TCP side (whole packets, bounded waits) is `tests/tests/mqtt_raw/mod.rs`.

use std::net::SocketAddr;

pub(crate) use crate::decode::{
    Ack, ConnAck, Disconnect, Publish, parse_ack, parse_connack, parse_disconnect, parse_publish,
    parse_suback,
};
use crate::raw::{self, Raw};

/// Property identifiers (MQTT 5 §2.2.2.2).
pub(crate) mod id {
    pub(crate) const PAYLOAD_FORMAT: u8 = 0x01;
    pub(crate) const MESSAGE_EXPIRY: u8 = 0x02;
    pub(crate) const CONTENT_TYPE: u8 = 0x03;
    pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
    pub(crate) const CORRELATION_DATA: u8 = 0x09;
    pub(crate) const SUBSCRIPTION_ID: u8 = 0x0B;
    pub(crate) const SESSION_EXPIRY: u8 = 0x11;
    pub(crate) const REQUEST_PROBLEM_INFO: u8 = 0x17;
    pub(crate) const REASON_STRING: u8 = 0x1F;
    pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
    pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub(crate) const TOPIC_ALIAS: u8 = 0x23;
    pub(crate) const USER_PROPERTY: u8 = 0x26;
    pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
}

/// A Variable Byte Integer (MQTT 5 §1.5.5).
pub(crate) fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return out;
        }
    }
}

/// Properties to send, built one at a time in the order given.
#[derive(Debug, Clone, Default)]
pub(crate) struct Props(Vec<u8>);

impl Props {
    pub(crate) fn new() -> Props {
        Props::default()
    }

    pub(crate) fn byte(mut self, id: u8, value: u8) -> Props {
        self.0.extend([id, value]);
        self
    }

    pub(crate) fn two(mut self, id: u8, value: u16) -> Props {
        self.0.push(id);
        self.0.extend(value.to_be_bytes());
        self
    }

    pub(crate) fn four(mut self, id: u8, value: u32) -> Props {
        self.0.push(id);
        self.0.extend(value.to_be_bytes());
        self
    }

    pub(crate) fn var(mut self, id: u8, value: u32) -> Props {
        self.0.push(id);
        self.0.extend(varint(value as usize));
        self
    }

    /// A UTF-8 string or binary data property.
    pub(crate) fn bytes(mut self, id: u8, value: impl AsRef<[u8]>) -> Props {
        self.0.push(id);
        self.0.extend(raw::string(value));
        self
    }

    pub(crate) fn user(mut self, key: &str, value: &str) -> Props {
        self.0.push(id::USER_PROPERTY);
        self.0.extend(raw::string(key));
        self.0.extend(raw::string(value));
        self
    }

    /// The property block: its length, then the properties.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = varint(self.0.len());
        out.extend_from_slice(&self.0);
        out
    }
}

/// A will in a [`Connect`].
#[derive(Debug, Clone)]
pub(crate) struct Will<'a> {
    pub(crate) topic: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    pub(crate) props: Props,
}

/// An MQTT 5 CONNECT.
#[derive(Debug, Clone)]
pub(crate) struct Connect<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) clean_start: bool,
    pub(crate) keep_alive: u16,
    pub(crate) props: Props,
    pub(crate) will: Option<Will<'a>>,
    /// User name and password.
    pub(crate) login: Option<(&'a str, &'a str)>,
}

impl<'a> Connect<'a> {
    /// Clean Start 1, keep alive 60 s, no properties, no will, no login.
    pub(crate) fn new(client_id: &'a str) -> Connect<'a> {
        Connect {
            client_id,
            clean_start: true,
            keep_alive: 60,
            props: Props::new(),
            will: None,
            login: None,
        }
    }

    pub(crate) fn props(mut self, props: Props) -> Connect<'a> {
        self.props = props;
        self
    }

    /// Clean Start 0 with this Session Expiry Interval (more properties may follow).
    pub(crate) fn durable(mut self, expiry: u32) -> Connect<'a> {
        self.clean_start = false;
        self.props = self.props.four(id::SESSION_EXPIRY, expiry);
        self
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = raw::string("MQTT");
        body.push(5);
        let mut flags = u8::from(self.clean_start) << 1;
        if let Some(will) = &self.will {
            flags |= 0x04 | (will.qos << 3) | (u8::from(will.retain) << 5);
        }
        if self.login.is_some() {
            flags |= 0xC0;
        }
        body.push(flags);
        body.extend(self.keep_alive.to_be_bytes());
        body.extend(self.props.encode());
        body.extend(raw::string(self.client_id));
        if let Some(will) = &self.will {
            body.extend(will.props.encode());
            body.extend(raw::string(will.topic));
            body.extend(raw::string(will.payload));
        }
        if let Some((user, password)) = self.login {
            body.extend(raw::string(user));
            body.extend(raw::string(password));
        }
        raw::packet(0x10, &body)
    }
}

/// A PUBLISH from the client.
pub(crate) fn publish(
    topic: &str,
    qos: u8,
    retain: bool,
    pkid: u16,
    props: &Props,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = raw::string(topic);
    if qos > 0 {
        body.extend(pkid.to_be_bytes());
    }
    body.extend(props.encode());
    body.extend_from_slice(payload);
    raw::packet(0x30 | (qos << 1) | u8::from(retain), &body)
}

/// Subscription Options (MQTT 5 §3.8.3.1): QoS, No Local, Retain As Published, Retain
/// Handling.
pub(crate) fn options(qos: u8, no_local: bool, retain_as_published: bool, handling: u8) -> u8 {
    qos | (u8::from(no_local) << 2) | (u8::from(retain_as_published) << 3) | (handling << 4)
}

/// A SUBSCRIBE of `filters` (each with its Subscription Options byte).
pub(crate) fn subscribe(pkid: u16, props: &Props, filters: &[(&str, u8)]) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    body.extend(props.encode());
    for (filter, options) in filters {
        body.extend(raw::string(filter));
        body.push(*options);
    }
    raw::packet(0x82, &body)
}

/// A DISCONNECT with `reason` and properties.
pub(crate) fn disconnect(reason: u8, props: &Props) -> Vec<u8> {
    let mut body = vec![reason];
    body.extend(props.encode());
    raw::packet(0xE0, &body)
}

/// A PUBACK (reason 0x00 left out, MQTT 5 §3.4.2.1).
pub(crate) fn puback(pkid: u16) -> Vec<u8> {
    let [hi, lo] = pkid.to_be_bytes();
    vec![0x40, 0x02, hi, lo]
}

/// A connected MQTT 5 client speaking raw bytes.
pub(crate) struct Client {
    raw: Raw,
    pub(crate) connack: ConnAck,
}

impl Client {
    /// Connects with `connect`; panics unless the CONNACK accepts it.
    pub(crate) async fn connect(addr: SocketAddr, connect: &Connect<'_>) -> Client {
        let mut raw = Raw::connect(addr).await;
        raw.send(&connect.encode()).await;
        let packet = raw
            .packet()
            .await
            .expect("a CONNACK, not a closed connection");
        let connack = parse_connack(&packet);
        assert_eq!(connack.reason, 0x00, "CONNECT accepted: {connack:?}");
        Client { raw, connack }
    }

    /// A clean client `client_id` without properties.
    pub(crate) async fn plain(addr: SocketAddr, client_id: &str) -> Client {
        Client::connect(addr, &Connect::new(client_id)).await
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.raw.send(bytes).await;
    }

    /// The next packet; panics when the server closed the connection instead.
    pub(crate) async fn next(&mut self) -> Vec<u8> {
        self.raw
            .packet()
            .await
            .expect("a packet, not a closed connection")
    }

    /// The next packet, or `None` when the server closed the connection.
    pub(crate) async fn next_maybe(&mut self) -> Option<Vec<u8>> {
        self.raw.packet().await
    }

    /// The next packet, which must be a PUBLISH.
    pub(crate) async fn next_publish(&mut self) -> Publish {
        parse_publish(&self.next().await)
    }

    /// The next packet, which must be an acknowledgement.
    pub(crate) async fn next_ack(&mut self) -> Ack {
        parse_ack(&self.next().await)
    }

    /// Subscribes and returns the SUBACK's reason codes.
    pub(crate) async fn subscribe(
        &mut self,
        pkid: u16,
        props: &Props,
        filters: &[(&str, u8)],
    ) -> Vec<u8> {
        self.send(&subscribe(pkid, props, filters)).await;
        let (acked, codes) = parse_suback(&self.next().await);
        assert_eq!(acked, pkid, "the SUBACK's packet id");
        codes
    }

    /// Subscribes to one filter with these options (and, when given, a Subscription
    /// Identifier); panics unless the SUBACK grants the requested QoS.
    pub(crate) async fn subscribe_one(&mut self, filter: &str, options: u8, id: Option<u32>) {
        let props = match id {
            Some(n) => Props::new().var(id::SUBSCRIPTION_ID, n),
            None => Props::new(),
        };
        let codes = self.subscribe(1, &props, &[(filter, options)]).await;
        assert_eq!(codes, [options & 0x03], "{filter} granted");
    }

    /// Publishes at QoS 1 and returns the PUBACK.
    pub(crate) async fn publish_qos1(
        &mut self,
        topic: &str,
        pkid: u16,
        retain: bool,
        props: &Props,
        payload: &[u8],
    ) -> Ack {
        self.send(&publish(topic, 1, retain, pkid, props, payload))
            .await;
        let ack = self.next_ack().await;
        assert_eq!((ack.kind, ack.pkid), (4, pkid), "the PUBACK: {ack:?}");
        ack
    }

    /// A normal DISCONNECT (reason 0x00); returns once the server closed the connection
    /// (a durable session is then offline).
    pub(crate) async fn disconnect(mut self) {
        self.send(&disconnect(0x00, &Props::new())).await;
        self.expect_closed().await;
    }

    /// Waits until the server closes the connection; returns the DISCONNECT it sent
    /// first, if any (packets before it are skipped).
    pub(crate) async fn closed(&mut self) -> Option<Disconnect> {
        let mut last = None;
        while let Some(packet) = self.raw.packet().await {
            if packet[0] == 0xE0 {
                last = Some(parse_disconnect(&packet));
            }
        }
        last
    }

    /// Asserts the next thing the server does is close the connection, after a
    /// DISCONNECT with `reason` if it sends one (§4.13.1: it "MUST close the Network
    /// Connection" [MQTT-4.13.1-1] and "SHOULD send a DISCONNECT").
    pub(crate) async fn expect_refused(&mut self, reason: u8) {
        match self.next_maybe().await {
            None => {}
            Some(packet) if packet[0] == 0xE0 => {
                let disconnect = parse_disconnect(&packet);
                assert_eq!(disconnect.reason, reason, "{disconnect:?}");
                self.expect_closed().await;
            }
            Some(packet) => panic!(
                "expected DISCONNECT {reason:#04x} and a closed connection, got {packet:02x?}"
            ),
        }
    }

    /// Waits until the server closes the connection.
    pub(crate) async fn expect_closed(&mut self) {
        self.raw.expect_closed().await;
    }
}
