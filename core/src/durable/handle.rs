//! What a connection does with its durable session: hand back unacknowledged
//! messages, report acknowledgements and stage changes, change the expiry.

use super::{Detached, DurableMessage};
use crate::session::Session;

impl Session {
    /// Hands back, as the connection ends, the messages sent but not acknowledged (with
    /// their packet ids) and those taken from the queue but not sent yet, in the order to
    /// resend them, and the QoS 2 packet ids awaiting the client's PUBREL; then ends this
    /// attachment. A durable session keeps them for the next connection (stored first
    /// when new or re-numbered); otherwise they are dropped.
    pub fn park(self, unacked: Vec<DurableMessage>, awaiting_pubrel: Vec<u16>) {
        if let Some(durable) = self.entry.durable.clone()
            && durable.generation() == self.generation
            && !durable.ended()
        {
            let mut unacked = unacked;
            for message in &mut unacked {
                if message.seq == 0 {
                    message.seq = durable.next_seq();
                    durable.write_message(message);
                } else if message.pkid.is_some() {
                    durable.write_message(message);
                }
            }
            let mut state = durable.state.lock();
            state.unacked = unacked;
            state.awaiting_pubrel = awaiting_pubrel;
        }
    }

    /// Whether this session outlives its connection (MQTT session expiry above 0).
    pub fn is_durable(&self) -> bool {
        self.entry.durable.is_some()
    }

    /// The protocol acknowledged durable message `seq` (MQTT PUBACK, PUBCOMP, or a
    /// message it could not send): it is removed from the store. Does nothing for 0 or a
    /// session that is not durable.
    pub fn acknowledged(&self, seq: u64) {
        if let Some(durable) = &self.entry.durable {
            durable.remove_message(seq);
        }
    }

    /// Stores `message` again with its packet id and stage (a QoS 2 message sent, or its
    /// PUBREC received), so that a restart resends it the same way; returns the ticket
    /// [`Session::written`] waits on before the client is told (0: nothing to wait for).
    pub fn rewrite(&self, message: &DurableMessage) -> u64 {
        match &self.entry.durable {
            Some(durable) if message.seq != 0 && !durable.ended() => durable.write_message(message),
            _ => 0,
        }
    }

    /// Waits until the session-log writes up to `ticket` are durable.
    pub async fn written(&self, ticket: u64) {
        if ticket != 0
            && let Some(durable) = &self.entry.durable
        {
            durable.written(ticket).await;
        }
    }

    /// Changes the session expiry interval, in seconds (MQTT 5 DISCONNECT): 0 ends the
    /// session with its connection.
    pub fn set_expiry(&self, expiry_s: u32) {
        if let Some(durable) = &self.entry.durable {
            durable.set_expiry(expiry_s);
        }
    }

    /// The session expiry interval in seconds (0 for a session that is not durable).
    pub fn expiry_s(&self) -> u32 {
        self.entry.durable.as_ref().map_or(0, |d| d.expiry_s())
    }

    /// A handle on this durable session for a delayed will: it tells whether the session
    /// was resumed or ended ([`Detached::changed`]). `None` when not durable.
    pub fn detached(&self) -> Option<Detached> {
        let durable = self.entry.durable.clone()?;
        Some(Detached {
            durable,
            generation: self.generation,
        })
    }

    /// This session's subscriptions with their granted QoS, by the key MQTT keeps them
    /// under: the pattern (`/a/+`), or a shared subscription's whole filter
    /// (`$share/g/a/+`) (a resumed session's, for the protocol's own bookkeeping).
    pub fn mqtt_subscriptions(&self) -> Vec<(String, u8)> {
        self.entry
            .subscriptions
            .lock()
            .values()
            .map(|s| {
                let key = match &s.options.share {
                    Some(_) => s.options.channel.clone().unwrap_or_default(),
                    None => s.pattern.as_str().to_owned(),
                };
                (key, s.options.qos)
            })
            .collect()
    }
}
