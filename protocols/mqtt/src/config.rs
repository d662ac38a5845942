//! Settings of the MQTT protocol.

use std::time::Duration;

/// Settings of [`crate::Mqtt`]. `Default` gives the documented defaults; build one with
/// `MqttConfig::default()` and change the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MqttConfig {
    /// How long a client has, from the moment its connection is accepted, to send a
    /// complete CONNECT; then the connection is closed. Default 10 s.
    pub connect_timeout: Duration,
    /// The largest packet accepted from a client, counted as its remaining length in bytes
    /// (everything after the fixed header), and announced to MQTT 5 clients as the Maximum
    /// Packet Size. A larger packet ends the connection (MQTT 5: DISCONNECT `0x95`).
    /// Default 1,049,600: a 1 MiB payload (the core's default `max_payload`) plus 1 KiB for
    /// the topic and properties.
    pub max_packet_size: usize,
    /// The in-flight window of outbound QoS 1/2 messages to an MQTT 3.1.1 client: how many
    /// may await PUBACK/PUBCOMP at once. While it is full the connection stops taking
    /// messages from its session queue (the core's overflow policy then applies). MQTT 5
    /// clients announce their own window (Receive Maximum; 65,535 when absent).
    /// Default 32.
    pub max_inflight: u16,
    /// The Receive Maximum announced to MQTT 5 clients: how many of their QoS 2
    /// publications may await PUBREL at once. A client that sends more is disconnected with
    /// `0x93`. (QoS 1 publications are acknowledged as soon as they are processed, in
    /// order, so they never accumulate.) Default 128.
    pub receive_maximum: u16,
    /// The longest keep alive a client may use, in seconds; 0: no maximum (a client's keep
    /// alive is used as asked, 0 included: never timed out). An MQTT 5 client asking for
    /// more, or for 0, gets this value as the CONNACK's Server Keep Alive and is held to it
    /// (MQTT-3.2.2-21/22). A 3.1.x client asking for more is refused with return code 2
    /// (identifier rejected), as Mosquitto does: 3.1.x cannot be told another value; one
    /// asking for 0 is accepted (and not timed out). Default 65,535 (as Mosquitto's
    /// `max_keepalive`): only MQTT 5 clients asking for 0 are affected, and are timed out
    /// after 1.5 × 65,535 s (~27 h) of silence, so a half-open connection does not live
    /// forever.
    pub max_keepalive: u16,
    /// The longest session expiry interval, in seconds; `u32::MAX`: sessions may live
    /// forever. A 3.1.1 client with clean session 0 gets this expiry; an MQTT 5 client
    /// asking for more (or for `0xFFFFFFFF`) gets this value, told in the CONNACK's Session
    /// Expiry Interval (MQTT-3.2.2 §3.2.2.3.2). 0 turns durable sessions off: every
    /// session ends with its connection. Default `u32::MAX` (as Mosquitto's
    /// `persistent_client_expiration`, which is unset by default).
    pub max_session_expiry: u32,
    /// The MQTT 5 Topic Alias Maximum announced to clients: how many topic aliases a
    /// client may set on this connection (0: none). Default 10 (as Mosquitto's
    /// `max_topic_alias`).
    pub topic_alias_maximum: u16,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            max_packet_size: 1024 * 1024 + 1024,
            max_inflight: 32,
            receive_maximum: 128,
            max_keepalive: u16::MAX,
            max_session_expiry: u32::MAX,
            topic_alias_maximum: 10,
        }
    }
}
