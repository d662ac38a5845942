//! What a [`Store`](crate::Store) keeps of sessions that outlive their connection
//! (DESIGN.md §6: MQTT clean start 0 / session expiry > 0): one state record per session
//! and its undelivered QoS 1/2 messages, ordered by a per-session sequence number.
//!
//! The core encodes both values ([`crate::durable`]); a store keeps the bytes as they
//! are. Operations are queued without waiting ([`Store::submit_session_op`](crate::Store::submit_session_op))
//! and applied in submission order; [`Store::session_ops_durable`](crate::Store::session_ops_durable)
//! waits until a ticket's operation is on disk.

use std::sync::Arc;

use bytes::Bytes;

/// One change to the stored sessions.
#[derive(Debug, Clone)]
pub enum SessionOp {
    /// Writes (or replaces) the state of the session `client_id` (its expiry and
    /// subscriptions, encoded by the core).
    PutSession {
        /// The MQTT client id.
        client_id: Arc<str>,
        /// The encoded state.
        state: Bytes,
    },
    /// Removes the session `client_id` and every message stored for it.
    RemoveSession {
        /// The MQTT client id.
        client_id: Arc<str>,
    },
    /// Writes (or replaces) message `seq` of the session `client_id`; the stored value is
    /// `head` followed by `body`.
    PutMessage {
        /// The MQTT client id.
        client_id: Arc<str>,
        /// The message's place in the session's queue (unique, increasing).
        seq: u64,
        /// The per-recipient part of the encoding (QoS, packet id).
        head: Bytes,
        /// The shared part (topic, payload, properties).
        body: Bytes,
    },
    /// Removes message `seq` of the session `client_id` (acknowledged, dropped or
    /// expired); nothing happens when it is not stored.
    RemoveMessage {
        /// The MQTT client id.
        client_id: Arc<str>,
        /// The message's sequence number.
        seq: u64,
    },
}

/// A session as a store gives it back at start-up ([`Store::load_sessions`](crate::Store::load_sessions)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The MQTT client id.
    pub client_id: String,
    /// The state last written by [`SessionOp::PutSession`].
    pub state: Vec<u8>,
    /// The stored messages, `(seq, head ++ body)`, in increasing `seq` order.
    pub messages: Vec<(u64, Vec<u8>)>,
}
