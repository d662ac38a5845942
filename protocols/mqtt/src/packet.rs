//! The version-neutral packet vocabulary shared by [`crate::v4`] and [`crate::v5`].
//!
//! The `v4` and `v5` modules translate `mqttbytes` packets into these types (moving their
//! strings and payload bytes, never copying them) and encode [`Reply`] and
//! [`OutgoingPublish`] in their wire format, so the connection logic exists once.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::ReasonCode;

/// The protocol version of a connection, fixed by its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// MQTT 3.1 (protocol name `MQIsdp`, level 3): after its CONNECT, the same packets as
    /// 3.1.1 (the `v4` codec); its CONNACK has no session present flag.
    V3,
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5 (protocol level 5).
    V5,
}

/// A decoded CONNECT.
#[derive(Debug)]
pub(crate) struct Connect {
    /// The client id; empty when the client wants one assigned.
    pub(crate) client_id: String,
    /// 3.1.1 clean session / MQTT 5 clean start.
    pub(crate) clean_start: bool,
    /// Keep alive, in seconds; 0 turns the timeout off.
    pub(crate) keep_alive: u16,
    /// MQTT 5 session expiry interval, in seconds (0 for 3.1.1 and when absent).
    pub(crate) session_expiry: u32,
    /// MQTT 5 Receive Maximum: the client's window for our QoS 1/2 PUBLISHes.
    pub(crate) receive_maximum: Option<u16>,
    /// MQTT 5 Maximum Packet Size the client accepts, in bytes.
    pub(crate) max_packet_size: Option<u32>,
    /// MQTT 5 Authentication Method (extended authentication).
    pub(crate) authentication_method: Option<String>,
    /// MQTT 5 Topic Alias Maximum: how many aliases the client accepts (0 when absent).
    pub(crate) topic_alias_maximum: u16,
    /// MQTT 5 Request Problem Information: `false` when the client asked for no reason
    /// strings or user properties outside PUBLISH, CONNACK and DISCONNECT (default
    /// `true`).
    pub(crate) request_problem_information: bool,
    /// The will message, when the Will Flag is set (boxed: the CONNECT stays small in the
    /// connection task's future).
    pub(crate) will: Option<Box<Will>>,
    /// The user name, when given (checked when the broker is secure).
    pub(crate) username: Option<String>,
    /// The password, when given; never printed.
    pub(crate) password: Option<pathmq_core::security::Password>,
}

/// A will message (MQTT 3.1.1 §3.1.2.5, §3.1.3.2–3; MQTT 5 §3.1.2.5, §3.1.3.2–4): what the
/// server publishes for the client when its network connection ends without a normal
/// DISCONNECT.
#[derive(Debug)]
pub(crate) struct Will {
    /// The message, as a PUBLISH from the client would carry it (Will Topic, Will Payload,
    /// Will QoS, Will Retain, MQTT 5 will properties; packet id 0, no topic alias), so it
    /// takes the PUBLISH path to the core and carries whatever a PUBLISH carries.
    pub(crate) message: Publish,
    /// MQTT 5 Will Delay Interval, in seconds (0 when absent, and for 3.1.x).
    pub(crate) delay: u32,
}

/// A decoded PUBLISH.
#[derive(Debug)]
pub(crate) struct Publish {
    /// The topic name.
    pub(crate) topic: String,
    /// 0, 1 or 2.
    pub(crate) qos: u8,
    /// The retain flag.
    pub(crate) retain: bool,
    /// The packet identifier (0 for QoS 0).
    pub(crate) pkid: u16,
    /// The payload, exactly as received.
    pub(crate) payload: Bytes,
    /// MQTT 5 Topic Alias.
    pub(crate) topic_alias: Option<u16>,
    /// MQTT 5 user properties, in order.
    pub(crate) user_properties: Vec<(String, String)>,
    /// The other MQTT 5 properties forwarded to subscribers; `None` for 3.1.x and when
    /// none was given.
    pub(crate) properties: Option<Box<PublishProperties>>,
}

/// The MQTT 5 PUBLISH (or will) properties that travel to subscribers (MQTT 5
/// §3.3.2.3.2–7): all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PublishProperties {
    /// Payload Format Indicator: 0 bytes, 1 UTF-8.
    pub(crate) payload_format: Option<u8>,
    /// Message Expiry Interval, in seconds from publication.
    pub(crate) message_expiry_s: Option<u32>,
    /// Content Type.
    pub(crate) content_type: Option<String>,
    /// Response Topic.
    pub(crate) response_topic: Option<String>,
    /// Correlation Data.
    pub(crate) correlation_data: Option<Bytes>,
}

impl PublishProperties {
    /// `None` when no property is set.
    pub(crate) fn non_empty(self) -> Option<Box<Self>> {
        (self != Self::default()).then(|| Box::new(self))
    }
}

/// MQTT 5 retain handling of a subscription (MQTT 5 §3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetainHandling {
    /// 0: send retained messages at every SUBSCRIBE.
    Always,
    /// 1: send them only when the subscription is new.
    IfNew,
    /// 2: never send them.
    Never,
}

/// One topic filter of a SUBSCRIBE.
#[derive(Debug)]
pub(crate) struct Filter {
    /// The topic filter.
    pub(crate) filter: String,
    /// The requested QoS (0–2).
    pub(crate) qos: u8,
    /// MQTT 5 No Local.
    pub(crate) no_local: bool,
    /// MQTT 5 retain handling (3.1.1: always).
    pub(crate) retain_handling: RetainHandling,
    /// MQTT 5 Retain As Published.
    pub(crate) retain_as_published: bool,
}

/// A decoded SUBSCRIBE.
#[derive(Debug)]
pub(crate) struct Subscribe {
    /// The packet identifier.
    pub(crate) pkid: u16,
    /// The filters, in order.
    pub(crate) filters: Vec<Filter>,
    /// The MQTT 5 Subscription Identifier (1 to 268,435,455), if given.
    pub(crate) subscription_id: Option<u32>,
}

/// A decoded UNSUBSCRIBE.
#[derive(Debug)]
pub(crate) struct Unsubscribe {
    /// The packet identifier.
    pub(crate) pkid: u16,
    /// The filters, in order.
    pub(crate) filters: Vec<String>,
}

/// A packet from a client after its CONNECT (a second CONNECT is a [`crate::ProtocolError`]).
#[derive(Debug)]
pub(crate) enum Packet {
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK for one of our QoS 1 PUBLISHes.
    PubAck {
        /// The packet identifier.
        pkid: u16,
    },
    /// PUBREC for one of our QoS 2 PUBLISHes.
    PubRec {
        /// The packet identifier.
        pkid: u16,
        /// MQTT 5 reason code (`0x00` for 3.1.1); `>= 0x80` ends the flow.
        reason: ReasonCode,
    },
    /// PUBREL for one of the client's QoS 2 PUBLISHes.
    PubRel {
        /// The packet identifier.
        pkid: u16,
    },
    /// PUBCOMP for one of our QoS 2 PUBLISHes.
    PubComp {
        /// The packet identifier.
        pkid: u16,
    },
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect {
        /// MQTT 5 reason code (`0x00` for 3.1.x and when absent): `0x00` discards the will,
        /// any other (`0x04` Disconnect with Will Message) has it published.
        reason: ReasonCode,
        /// MQTT 5 Session Expiry Interval property, in seconds: replaces the one of the
        /// CONNECT (§3.14.2.2.2).
        session_expiry: Option<u32>,
    },
}

/// A control packet the server sends. Reason codes are MQTT 5 codes; the 3.1.1 encoder
/// maps them (or drops them where 3.1.1 has none).
#[derive(Debug)]
pub(crate) enum Reply<'a> {
    /// CONNACK.
    ConnAck(&'a ConnAck),
    /// PUBACK.
    PubAck {
        /// The packet identifier.
        pkid: u16,
        /// The reason code.
        reason: ReasonCode,
        /// MQTT 5 Reason String: why a failure (`None` when the client asked for no
        /// problem information).
        reason_string: Option<&'a str>,
    },
    /// PUBREC.
    PubRec {
        /// The packet identifier.
        pkid: u16,
        /// The reason code.
        reason: ReasonCode,
        /// MQTT 5 Reason String, as for PUBACK.
        reason_string: Option<&'a str>,
    },
    /// PUBREL.
    PubRel {
        /// The packet identifier.
        pkid: u16,
    },
    /// PUBCOMP.
    PubComp {
        /// The packet identifier.
        pkid: u16,
        /// The reason code (`0x92` packet identifier not found).
        reason: ReasonCode,
    },
    /// SUBACK: per filter the granted QoS (0–2) or a failure code (`>= 0x80`).
    SubAck {
        /// The packet identifier.
        pkid: u16,
        /// One code per filter.
        codes: &'a [ReasonCode],
        /// MQTT 5 Reason String: why a filter was refused.
        reason_string: Option<&'a str>,
    },
    /// UNSUBACK: per filter `0x00`, `0x11` no subscription existed, or a failure code.
    UnsubAck {
        /// The packet identifier.
        pkid: u16,
        /// One code per filter (MQTT 5 only).
        codes: &'a [ReasonCode],
        /// MQTT 5 Reason String: why a filter was refused.
        reason_string: Option<&'a str>,
    },
    /// PINGRESP.
    PingResp,
    /// DISCONNECT from the server (MQTT 5 only; 3.1.1 encodes nothing).
    Disconnect {
        /// The reason code.
        reason: ReasonCode,
        /// MQTT 5 Reason String: why, in words.
        reason_string: Option<&'a str>,
    },
}

/// What a CONNACK says.
#[derive(Debug, Default)]
pub(crate) struct ConnAck {
    /// The MQTT 5 reason code (`0x00` success).
    pub(crate) code: ReasonCode,
    /// Session present (always 0 until durable sessions exist; MQTT 3.1 has no such flag
    /// and must get 0).
    pub(crate) session_present: bool,
    /// MQTT 5 Assigned Client Identifier, when the server chose the id.
    pub(crate) assigned_client_id: Option<String>,
    /// MQTT 5 Receive Maximum announced.
    pub(crate) receive_maximum: u16,
    /// MQTT 5 Maximum Packet Size announced, in bytes.
    pub(crate) max_packet_size: u32,
    /// MQTT 5 Session Expiry Interval the server uses, when it differs from the client's.
    pub(crate) session_expiry: Option<u32>,
    /// MQTT 5 Server Keep Alive: the keep alive the server uses instead of the client's
    /// (MQTT-3.2.2-21).
    pub(crate) server_keep_alive: Option<u16>,
    /// MQTT 5 Topic Alias Maximum: how many aliases the client may set.
    pub(crate) topic_alias_maximum: u16,
}

/// An application message to send: a live event or a retained record.
#[derive(Debug)]
pub(crate) struct OutgoingPublish<'a> {
    /// The topic name.
    pub(crate) topic: &'a str,
    /// The payload bytes, sent unchanged.
    pub(crate) payload: &'a [u8],
    /// 0, 1 or 2.
    pub(crate) qos: u8,
    /// The retain flag.
    pub(crate) retain: bool,
    /// The packet identifier (0 for QoS 0).
    pub(crate) pkid: u16,
    /// The DUP flag: a resend of a message sent before (MQTT-3.3.1-1).
    pub(crate) dup: bool,
    /// MQTT 5: the publisher's properties (content type, response topic, correlation
    /// data, payload format); `content_type` below is used only without them.
    pub(crate) properties: Option<&'a pathmq_core::MessageProperties>,
    /// MQTT 5: the remaining Message Expiry Interval, in seconds.
    pub(crate) message_expiry_s: Option<u32>,
    /// MQTT 5: the Subscription Identifiers of the matching subscriptions.
    pub(crate) subscription_ids: &'a [u32],
    /// MQTT 5: the Topic Alias (with an empty `topic` when the client knows it).
    pub(crate) topic_alias: Option<u16>,
    /// MQTT 5 Content Type.
    pub(crate) content_type: Option<&'static str>,
    /// Custom meta, sent as MQTT 5 user properties.
    pub(crate) meta: Option<&'a Map<String, Value>>,
}

/// A PUBLISH that was not encoded because it is larger than the receiver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge {
    /// The size the packet would have had, in bytes.
    pub(crate) size: usize,
}
