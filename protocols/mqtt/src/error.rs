//! Protocol violations and how each one is answered (STYLE 20).
//!
//! Every way a client can break MQTT is a [`ProtocolError`] variant that names the spec
//! clause it breaks. [`ProtocolError::reason_code`] is the one place that maps a violation
//! to its MQTT 5 reason code: the connection sends it in a CONNACK (before the session is
//! accepted) or a DISCONNECT (after), then closes. MQTT 3.1.1 has no DISCONNECT from the
//! server, so a 3.1.1 client is simply disconnected, except for the two CONNACK refusals
//! 3.1.1 knows (`0x01` unacceptable protocol level, `0x02` identifier rejected).
//!
//! Failed requests (a layer or the core refused a PUBLISH or SUBSCRIBE) are not
//! violations: [`publish_reason`] and [`subscribe_reason`] map them to the reason code of
//! the acknowledgement.

use pathmq_core::security::SessionEnd;
use pathmq_core::{CloseReason, PathError};

/// An MQTT 5 reason code (MQTT 5 §2.4): `0x00`–`0x7F` success, `0x80`–`0xFF` failure.
pub type ReasonCode = u8;

/// A way a client broke the MQTT protocol, with the clause it broke. The connection is
/// closed after the reply [`ProtocolError::reason_code`] selects; nothing the client sent
/// after the violation is processed. Other connections are not affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The packet could not be decoded (bad lengths, bad UTF-8, unknown property, QoS 3,
    /// …) (MQTT 5 §4.13, MQTT-1.5.3-1, MQTT-4.8.0-1).
    #[error("malformed packet: {detail} [MQTT 5 §4.13]")]
    Malformed {
        /// What the decoder found, e.g. `"TopicNotUtf8"`.
        detail: String,
    },
    /// The fixed header's flags are not the ones required for its packet type
    /// [MQTT-2.2.2-2].
    #[error(
        "packet type {packet_type} with invalid fixed header flags {flags:#06b} [MQTT-2.2.2-2]"
    )]
    InvalidFlags {
        /// The packet type (1–15).
        packet_type: u8,
        /// The low four bits of the first byte.
        flags: u8,
    },
    /// The packet is larger than the Maximum Packet Size the server announced
    /// (MQTT 5 §3.2.2.3.6).
    #[error(
        "packet of {size} bytes exceeds the maximum packet size of {limit} bytes [MQTT 5 §3.2.2.3.6]"
    )]
    PacketTooLarge {
        /// The packet's remaining length, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The first packet of the connection was not a CONNECT [MQTT-3.1.0-1].
    #[error("first packet is type {packet_type}, not CONNECT [MQTT-3.1.0-1]")]
    FirstPacketNotConnect {
        /// The packet type received (1–15).
        packet_type: u8,
    },
    /// A second CONNECT on an established connection [MQTT-3.1.0-2].
    #[error("second CONNECT on the same connection [MQTT-3.1.0-2]")]
    SecondConnect,
    /// The CONNECT's protocol name is neither `MQTT` nor `MQIsdp` [MQTT-3.1.2-1].
    #[error("protocol name {name:?} is not MQTT [MQTT-3.1.2-1]")]
    BadProtocolName {
        /// The name received.
        name: String,
    },
    /// The CONNECT's protocol level is not 3 (MQTT 3.1, name `MQIsdp`), 4 (3.1.1) or 5
    /// (name `MQTT`) [MQTT-3.1.2-2].
    #[error(
        "protocol level {level} is not supported; only 3 (MQIsdp, MQTT 3.1), 4 (MQTT 3.1.1) and 5 are [MQTT-3.1.2-2]"
    )]
    UnsupportedProtocolLevel {
        /// The level received.
        level: u8,
    },
    /// The CONNECT's reserved flag is set [MQTT-3.1.2-3].
    #[error("CONNECT reserved flag is set [MQTT-3.1.2-3]")]
    ReservedConnectFlag,
    /// An MQTT 3.1.1 client sent an empty client id with clean session 0 [MQTT-3.1.3-8].
    #[error("empty client id with clean session 0 [MQTT-3.1.3-8]")]
    ClientIdRejected,
    /// An MQTT 3.1 client sent an empty client id: 3.1 requires one (MQTT 3.1 §3.1, "1 to
    /// 23 characters"; longer ones are accepted, as Mosquitto does). 3.1 return code 2.
    #[error("empty client id from an MQTT 3.1 client [MQTT 3.1 §3.1 Client Identifier]")]
    EmptyClientIdV31,
    /// A 3.1.x client asked for a keep alive longer than the server's maximum
    /// (`MqttConfig::max_keepalive`). 3.1.x cannot be told to use another value (MQTT 5
    /// clients get a Server Keep Alive instead), so, as Mosquitto does, the CONNECT is
    /// refused with return code 2, identifier rejected (MQTT 3.1.1 §3.1.2.10, §3.2.2.3).
    #[error(
        "keep alive of {keep_alive} s exceeds the server's maximum of {max} s [MQTT 3.1.1 §3.1.2.10]"
    )]
    KeepAliveTooLong {
        /// The keep alive asked for, in seconds.
        keep_alive: u16,
        /// The server's maximum, in seconds.
        max: u16,
    },
    /// The will topic is empty, holds a wildcard, or is otherwise not a valid path
    /// [MQTT-3.1.3-10, MQTT-4.7.1-1]; MQTT 5 CONNACK `0x90` (§3.2.2.2), 3.1.x: closed.
    #[error("invalid will topic {topic:?}: {source} [MQTT-4.7.1-1, MQTT 5 §3.2.2.2]")]
    InvalidWillTopic {
        /// The will topic received.
        topic: String,
        /// Why the topic is not a valid path.
        #[source]
        source: PathError,
    },
    /// The will payload is larger than the broker accepts for a PUBLISH (the core's
    /// `max_payload`); MQTT 5 CONNACK `0x95` (§3.2.2.2), 3.1.x: closed.
    #[error(
        "will payload of {size} bytes exceeds the maximum payload of {limit} bytes [MQTT 5 §3.2.2.2]"
    )]
    WillTooLarge {
        /// The will payload's size, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The broker is secure and the CONNECT's user name or password is missing or wrong
    /// (MQTT 5 §3.2.2.2, reason 0x86; 3.1.1 return code 4).
    #[error("bad user name or password [MQTT-3.1.4-2, §3.2.2.2]")]
    BadCredentials,
    /// The credentials are right but the user may not connect (MQTT 5 §3.2.2.2, reason
    /// 0x87; 3.1.1 return code 5).
    #[error("not authorized: {reason} [MQTT 5 §3.2.2.2]")]
    NotAuthorized {
        /// Why.
        reason: String,
    },
    /// The user is locked out after failed logins (MQTT 5 §3.2.2.2, reason 0x8A banned;
    /// 3.1.1 return code 5).
    #[error("banned: {reason} [MQTT 5 §3.2.2.2]")]
    Banned {
        /// Why, and for how long.
        reason: String,
    },
    /// The user has reached its connection limit (policy `max_connections`; MQTT 5
    /// §3.2.2.2, reason 0x97 quota exceeded; 3.1.1 return code 5).
    #[error("quota exceeded: {reason} [MQTT 5 §3.2.2.2]")]
    QuotaExceeded {
        /// Why.
        reason: String,
    },
    /// An MQTT 5 client went over a rate limit (a layer rejected its request with
    /// `Error::RateLimited`, e.g. the `rate-limit` plugin): DISCONNECT `0x96` message rate
    /// too high (MQTT 5 §3.14.2.1). A 3.1.1 client stays connected; its PUBLISH is
    /// dropped.
    #[error("message rate too high: {reason} [MQTT 5 §3.14.2.1]")]
    MessageRateTooHigh {
        /// Why (the limit that was exceeded).
        reason: String,
    },
    /// The login could not be checked (the store, a token secret or an auth provider
    /// failed): MQTT 5 §3.2.2.2 reason 0x88 server unavailable; 3.1.1 return code 3.
    #[error("server unavailable: {reason} [MQTT 5 §3.2.2.2]")]
    ServerUnavailable {
        /// Why.
        reason: String,
    },
    /// The CONNECT asks for extended authentication, which is not supported
    /// (MQTT 5 §4.12).
    #[error("authentication method {method:?} is not supported [MQTT 5 §4.12]")]
    BadAuthenticationMethod {
        /// The method named in the CONNECT.
        method: String,
    },
    /// The CONNECT announces a Receive Maximum of 0 (MQTT 5 §3.1.2.11.3).
    #[error("receive maximum of 0 [MQTT 5 §3.1.2.11.3]")]
    ZeroReceiveMaximum,
    /// The CONNECT announces a Maximum Packet Size of 0 (MQTT 5 §3.1.2.11.4).
    #[error("maximum packet size of 0 [MQTT 5 §3.1.2.11.4]")]
    ZeroMaximumPacketSize,
    /// No packet arrived for 1.5 times the keep alive [MQTT-3.1.2-24].
    #[error("nothing received for 1.5 × the keep alive of {keep_alive_secs} s [MQTT-3.1.2-24]")]
    KeepAliveTimeout {
        /// The keep alive the client asked for, in seconds.
        keep_alive_secs: u16,
    },
    /// A PUBLISH topic name that is empty, holds a wildcard, or is otherwise not a valid
    /// path [MQTT-3.3.2-2, MQTT-4.7.3-1].
    #[error("invalid topic name {topic:?}: {source} [MQTT-3.3.2-2]")]
    InvalidTopic {
        /// The topic received.
        topic: String,
        /// Why the topic is not a valid path.
        #[source]
        source: PathError,
    },
    /// A PUBLISH uses topic alias 0 or one above the announced Topic Alias Maximum
    /// [MQTT-3.3.2-8/-9].
    #[error(
        "topic alias {alias} is not between 1 and the topic alias maximum {max} [MQTT-3.3.2-8/-9]"
    )]
    TopicAliasInvalid {
        /// The alias received.
        alias: u16,
        /// The announced maximum.
        max: u16,
    },
    /// A PUBLISH with an empty topic uses an alias the client never set (MQTT 5
    /// §3.3.2.3.4).
    #[error("topic alias {alias} used with an empty topic before it was set [MQTT 5 §3.3.2.3.4]")]
    UnknownTopicAlias {
        /// The alias received.
        alias: u16,
    },
    /// More unacknowledged QoS 2 PUBLISH packets than the announced Receive Maximum
    /// (MQTT 5 §4.9).
    #[error("more than the receive maximum of {limit} QoS 2 publications in flight [MQTT 5 §4.9]")]
    ReceiveMaximumExceeded {
        /// The announced Receive Maximum.
        limit: u16,
    },
    /// A DISCONNECT setting a session expiry above 0 when the CONNECT's was 0
    /// [MQTT-3.14.2-2].
    #[error("DISCONNECT sets a session expiry when the CONNECT's was 0 [MQTT-3.14.2-2]")]
    SessionExpiryAfterZero,
    /// A client PUBLISH with a Subscription Identifier [MQTT-3.3.4-6].
    #[error("a PUBLISH from a client carries a subscription identifier [MQTT-3.3.4-6]")]
    PublishSubscriptionId,
    /// A SUBSCRIBE with Subscription Identifier 0 (MQTT 5 §3.8.2.1.2).
    #[error("subscription identifier 0 (MQTT 5 §3.8.2.1.2)")]
    ZeroSubscriptionId,
    /// A PUBLISH with an empty topic and no topic alias (MQTT 5 §3.3.2.1).
    #[error("a PUBLISH with an empty topic name and no topic alias (MQTT 5 §3.3.2.1)")]
    EmptyTopicWithoutAlias,
    /// No Local on a shared subscription [MQTT-3.8.3-4].
    #[error("No Local set on a shared subscription [MQTT-3.8.3-4]")]
    SharedNoLocal,
    /// A SUBSCRIBE without topic filters [MQTT-3.8.3-3].
    #[error("SUBSCRIBE without topic filters [MQTT-3.8.3-3]")]
    EmptySubscribe,
    /// An UNSUBSCRIBE without topic filters [MQTT-3.10.3-2].
    #[error("UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]")]
    EmptyUnsubscribe,
    /// A packet only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP) or AUTH
    /// [MQTT-4.8.0-1].
    #[error("unexpected {packet} packet from a client [MQTT-4.8.0-1]")]
    UnexpectedPacket {
        /// The packet's name.
        packet: &'static str,
    },
}

impl ProtocolError {
    /// The MQTT 5 reason code that answers this violation, in the CONNACK (before the
    /// session is accepted) or the DISCONNECT (after). The one mapping (STYLE 20).
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::Malformed { .. } | Self::InvalidFlags { .. } | Self::ReservedConnectFlag => 0x81,
            Self::FirstPacketNotConnect { .. }
            | Self::SecondConnect
            | Self::ZeroReceiveMaximum
            | Self::ZeroMaximumPacketSize
            | Self::EmptySubscribe
            | Self::SessionExpiryAfterZero
            | Self::SharedNoLocal
            | Self::PublishSubscriptionId
            | Self::ZeroSubscriptionId
            | Self::EmptyTopicWithoutAlias
            | Self::UnknownTopicAlias { .. }
            | Self::EmptyUnsubscribe
            | Self::UnexpectedPacket { .. } => 0x82,
            Self::BadProtocolName { .. } | Self::UnsupportedProtocolLevel { .. } => 0x84,
            Self::ClientIdRejected | Self::EmptyClientIdV31 | Self::KeepAliveTooLong { .. } => 0x85,
            Self::BadCredentials => 0x86,
            Self::NotAuthorized { .. } => 0x87,
            Self::Banned { .. } => 0x8A,
            Self::ServerUnavailable { .. } => 0x88,
            Self::QuotaExceeded { .. } => 0x97,
            Self::MessageRateTooHigh { .. } => 0x96,
            Self::BadAuthenticationMethod { .. } => 0x8C,
            Self::KeepAliveTimeout { .. } => 0x8D,
            Self::InvalidTopic { .. } | Self::InvalidWillTopic { .. } => 0x90,
            Self::ReceiveMaximumExceeded { .. } => 0x93,
            Self::TopicAliasInvalid { .. } => 0x94,
            Self::PacketTooLarge { .. } | Self::WillTooLarge { .. } => 0x95,
        }
    }
}

/// The MQTT 5 DISCONNECT reason code for a session the core ended: `0x8E` session taken
/// over, `0x8B` server shutting down, `0x97` quota exceeded (outbound queue full), `0xA0`
/// maximum connect time (policy ttl), `0x87` not authorized (security ended the session
/// otherwise: inactivity, usage limit, revoked token), `0x80` for any reason added later.
pub(crate) fn close_reason_code(reason: &CloseReason) -> ReasonCode {
    match reason {
        CloseReason::TakenOver => 0x8E,
        CloseReason::Shutdown => 0x8B,
        CloseReason::QueueFull => 0x97,
        CloseReason::SessionEnded(SessionEnd::Expired) => 0xA0,
        CloseReason::SessionEnded(_) => 0x87,
        _ => 0x80,
    }
}

/// The MQTT 5 PUBACK/PUBREC reason code for a PUBLISH whose request failed:
/// 401/403 → `0x87` not authorized, 413/429 → `0x97` quota exceeded, 400 for a path →
/// `0x90` topic name invalid, other 400 → `0x99` payload format invalid, else `0x80`.
pub(crate) fn publish_reason(error: &pathmq_core::Error) -> ReasonCode {
    match error.code() {
        401 | 403 => 0x87,
        413 | 429 => 0x97,
        400 if matches!(error, pathmq_core::Error::Path(_)) => 0x90,
        400 => 0x99,
        _ => 0x80,
    }
}

/// The MQTT 5 SUBACK/UNSUBACK reason code for a subscription request that failed:
/// 401/403 → `0x87` not authorized, 413/429 → `0x97` quota exceeded, 400 for a filter →
/// `0x8F` topic filter invalid, else `0x80` (including other 400s such as the core's
/// subscriptions-per-session limit, which has no variant of its own yet).
pub(crate) fn subscribe_reason(error: &pathmq_core::Error) -> ReasonCode {
    match error.code() {
        401 | 403 => 0x87,
        413 | 429 => 0x97,
        400 if matches!(error, pathmq_core::Error::Path(_)) => 0x8F,
        _ => 0x80,
    }
}

/// The MQTT 5 UNSUBACK reason code for an unsubscribe request that failed (only the
/// codes MQTT 5 §3.11.2.2 allows): 401/403 → `0x87` not authorized, 400 for a filter →
/// `0x8F` topic filter invalid, else `0x80` (a rate limit ends an MQTT 5 connection with
/// DISCONNECT `0x96` before this is asked).
pub(crate) fn unsubscribe_reason(error: &pathmq_core::Error) -> ReasonCode {
    match error.code() {
        401 | 403 => 0x87,
        400 if matches!(error, pathmq_core::Error::Path(_)) => 0x8F,
        _ => 0x80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_violation_names_its_clause_and_maps_to_a_failure_code() {
        let cases = [
            ProtocolError::Malformed { detail: "x".into() },
            ProtocolError::InvalidFlags {
                packet_type: 8,
                flags: 0,
            },
            ProtocolError::PacketTooLarge { size: 2, limit: 1 },
            ProtocolError::SecondConnect,
            ProtocolError::UnsupportedProtocolLevel { level: 3 },
            ProtocolError::KeepAliveTimeout { keep_alive_secs: 1 },
            ProtocolError::InvalidTopic {
                topic: "a/+".into(),
                source: PathError::Empty,
            },
            ProtocolError::EmptySubscribe,
            ProtocolError::EmptyClientIdV31,
            ProtocolError::KeepAliveTooLong {
                keep_alive: 600,
                max: 60,
            },
            ProtocolError::InvalidWillTopic {
                topic: "a/#".into(),
                source: PathError::Empty,
            },
            ProtocolError::WillTooLarge { size: 2, limit: 1 },
        ];
        for error in cases {
            assert!(error.reason_code() >= 0x80, "{error}");
            assert!(error.to_string().contains("[MQTT"), "{error}");
        }
        assert_eq!(ProtocolError::SecondConnect.reason_code(), 0x82);
        assert_eq!(
            ProtocolError::PacketTooLarge { size: 2, limit: 1 }.reason_code(),
            0x95
        );
    }

    #[test]
    fn failed_requests_map_to_ack_reasons() {
        use pathmq_core::Error;
        assert_eq!(publish_reason(&Error::Forbidden("no".into())), 0x87);
        assert_eq!(
            publish_reason(&Error::TooLarge {
                what: "payload",
                size: 2,
                limit: 1
            }),
            0x97
        );
        assert_eq!(publish_reason(&Error::Path(PathError::Empty)), 0x90);
        assert_eq!(unsubscribe_reason(&Error::RateLimited("x".into())), 0x80);
        assert_eq!(
            unsubscribe_reason(&Error::TooLarge {
                what: "x",
                size: 2,
                limit: 1
            }),
            0x80
        );
        assert_eq!(unsubscribe_reason(&Error::Forbidden("x".into())), 0x87);
        assert_eq!(publish_reason(&Error::BadRequest("x".into())), 0x99);
        assert_eq!(publish_reason(&Error::Internal("x".into())), 0x80);
        assert_eq!(subscribe_reason(&Error::Forbidden("no".into())), 0x87);
        assert_eq!(subscribe_reason(&Error::Path(PathError::Empty)), 0x8F);
        assert_eq!(subscribe_reason(&Error::BadRequest("limit".into())), 0x80);
        assert_eq!(close_reason_code(&CloseReason::TakenOver), 0x8E);
        assert_eq!(close_reason_code(&CloseReason::Shutdown), 0x8B);
        assert_eq!(close_reason_code(&CloseReason::QueueFull), 0x97);
        let ended = |end| close_reason_code(&CloseReason::SessionEnded(end));
        assert_eq!(ended(SessionEnd::Expired), 0xA0);
        assert_eq!(ended(SessionEnd::TokenRevoked), 0x87);
    }
}
