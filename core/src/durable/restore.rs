//! Start-up: the stored durable sessions come back parked ([`Core::restore_sessions`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::codec::{State, decode_message};
use super::{Durable, NEVER};
use crate::pattern::Pattern;
use crate::payload::now_ms;
use crate::pipeline::Core;
use crate::request::OnOptions;
use crate::session_log::{SessionOp, StoredSession};
use crate::store::StoreError;

impl Core {
    /// Brings back the durable sessions the store kept (call once, before accepting
    /// connections): each is parked with its subscriptions in the router and its stored
    /// messages to be resent first when its client reconnects (those sent before, with
    /// their packet ids, first). A session whose expiry passed while the broker was down
    /// (counted from its last disconnection, or from now after a crash) is removed, as is
    /// an unreadable one (logged). Returns how many sessions were restored.
    ///
    /// # Errors
    /// [`StoreError`] from reading the store (nothing was restored), or from waiting for
    /// the state writes of the restored sessions (they are restored in memory; the
    /// broker should not start on a store that cannot write).
    pub async fn restore_sessions(&self) -> Result<usize, StoreError> {
        if !self.store().keeps_sessions() {
            return Ok(0);
        }
        let stored = self.store().load_sessions().await?;
        let now = now_ms();
        let (mut restored, mut expired, mut last_ticket) = (0, 0, 0);
        for session in stored {
            match self.restore_one(session, now) {
                Some(ticket) => {
                    restored += 1;
                    last_ticket = last_ticket.max(ticket);
                }
                None => expired += 1,
            }
        }
        self.store().session_ops_durable(last_ticket).await?;
        if restored + expired > 0 {
            tracing::info!(restored, removed = expired, "durable sessions restored");
        }
        Ok(restored)
    }

    /// Restores one stored session; `None` when it was removed instead.
    fn restore_one(&self, stored: StoredSession, now: u64) -> Option<u64> {
        let client_id: Arc<str> = stored.client_id.as_str().into();
        let remove = || {
            self.store().submit_session_op(SessionOp::RemoveSession {
                client_id: client_id.clone(),
            });
        };
        let state = match State::decode(&stored.state) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(client_id = %client_id, %error, "unreadable stored session removed");
                remove();
                return None;
            }
        };
        let detached = state.detached_ms.unwrap_or(now);
        let expires_at = (state.expiry_s != NEVER)
            .then(|| detached.saturating_add(u64::from(state.expiry_s) * 1000));
        if expires_at.is_some_and(|at| at <= now) || state.expiry_s == 0 {
            tracing::debug!(client_id = %client_id, "stored session expired while stopped");
            remove();
            return None;
        }
        let mut messages = Vec::with_capacity(stored.messages.len());
        let mut next_seq = 1;
        for (seq, bytes) in &stored.messages {
            next_seq = next_seq.max(seq + 1);
            match decode_message(*seq, bytes) {
                Ok(message) => messages.push(message),
                Err(error) => {
                    tracing::warn!(client_id = %client_id, %error, "unreadable stored message removed");
                    self.store().submit_session_op(SessionOp::RemoveMessage {
                        client_id: client_id.clone(),
                        seq: *seq,
                    });
                }
            }
        }
        // Sent before (they have a packet id) first, each group in queue order.
        messages.sort_by_key(|m| (m.pkid.is_none(), m.seq));
        let durable = Arc::new(Durable::new(
            client_id.clone(),
            self.store().clone(),
            state.expiry_s,
            self.config().parked_limits(),
            next_seq,
        ));
        durable.parked.store(true, Ordering::Release);
        self.parked_count(1);
        let generation = {
            let mut s = durable.state.lock();
            s.detached_ms = Some(detached);
            s.unacked = messages;
            s.owner = state.owner.clone();
            s.awaiting_pubrel = state.awaiting_pubrel.clone();
            s.generation
        };
        let entry = self.new_entry(
            "mqtt",
            None,
            Some(stored.client_id.clone()),
            Some(durable.clone()),
        );
        for sub in &state.subscriptions {
            let pattern = match Pattern::mqtt(&sub.filter) {
                Ok(pattern) => pattern,
                Err(error) => {
                    tracing::warn!(client_id = %client_id, filter = %sub.filter, %error, "stored subscription dropped");
                    continue;
                }
            };
            let options = OnOptions {
                qos: sub.qos.min(2),
                no_local: sub.no_local,
                retain_as_published: sub.retain_as_published,
                subscription_id: sub.subscription_id,
                channel: sub
                    .share
                    .as_ref()
                    .map(|group| format!("$share/{group}/{}", sub.filter)),
                share: sub.share.as_deref().map(Arc::from),
                ..OnOptions::default()
            };
            if let Err(error) = self.add_subscription(&entry, pattern, options) {
                tracing::warn!(client_id = %client_id, filter = %sub.filter, %error, "stored subscription dropped");
            }
        }
        self.register_parked(entry.clone());
        let ticket = durable.write_state(&entry);
        if let Some(at) = expires_at {
            self.expire_after(entry, generation, at.saturating_sub(now));
        }
        Some(ticket)
    }
}
