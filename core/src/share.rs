//! MQTT 5 shared subscriptions (§4.8.2): of the subscriptions of one group with one
//! topic filter (`$share/<group>/<filter>`), each message goes to one.
//!
//! Members are taken in turn (round robin per group and filter, by a counter in one of
//! [`TURNS`] slots picked by hashing the two), preferring members with a connection over
//! parked durable sessions. When a member's connection ends with QoS 1 messages it had not
//! acknowledged, the protocol hands them to another member ([`Core::redeliver_shared`]).

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::event::{Event, Outbound};
use crate::pipeline::Core;
use crate::router::Subscription;
use crate::session::Delivery;

/// How many round-robin counters groups share.
const TURNS: usize = 64;

/// The round-robin counters of shared subscriptions.
#[derive(Debug)]
pub(crate) struct Turns {
    slots: [AtomicUsize; TURNS],
    hasher: foldhash::fast::FixedState,
}

impl Default for Turns {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| AtomicUsize::new(0)),
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

impl Turns {
    /// The next turn of `group` with `pattern`.
    fn next(&self, group: &str, pattern: &str) -> usize {
        let slot = self.hasher.hash_one((group, pattern)) as usize % TURNS;
        self.slots[slot].fetch_add(1, Ordering::Relaxed)
    }
}

/// The group and filter that make a subscription one of a shared set.
fn key(s: &Subscription) -> Option<(&str, &str)> {
    Some((s.options.share.as_deref()?, s.pattern.as_str()))
}

impl Core {
    /// Keeps, of the shared subscriptions among `matches`, one per group and filter (the
    /// next in turn among members with a connection, or among all when none has one);
    /// other subscriptions are left as they are.
    pub(crate) fn pick_shared(&self, matches: &mut Vec<Arc<Subscription>>) {
        if !matches.iter().any(|s| s.options.share.is_some()) {
            return;
        }
        let mut shared: Vec<Arc<Subscription>> = Vec::new();
        matches.retain(|s| match s.options.share.is_some() {
            true => {
                shared.push(s.clone());
                false
            }
            false => true,
        });
        // A stable order, so that turns go round the members.
        shared.sort_by(|a, b| (key(a), a.session).cmp(&(key(b), b.session)));
        for members in shared.chunk_by(|a, b| key(a) == key(b)) {
            if let Some(chosen) = self.next_member(members.iter()) {
                matches.push(chosen);
            }
        }
    }

    /// The next member in turn among `members` (all of one group and filter).
    fn next_member<'a>(
        &self,
        members: impl Iterator<Item = &'a Arc<Subscription>> + Clone,
    ) -> Option<Arc<Subscription>> {
        let online: Vec<_> = members.clone().filter(|s| !s.queue.is_parked()).collect();
        let pool = match online.is_empty() {
            true => members.collect(),
            false => online,
        };
        let first = pool.first()?;
        let (group, pattern) = key(first)?;
        let turn = self.inner.share_turns.next(group, pattern);
        Some(pool[turn % pool.len()].clone())
    }

    /// Sends `event` to a member of the shared subscription `via` other than `via`'s own
    /// session (at the QoS that member was granted): for a QoS 1 message `via`'s session
    /// did not acknowledge before its connection ended (MQTT 5 §4.8.2). `false` when no
    /// other member took it.
    pub fn redeliver_shared(&self, event: Arc<Event>, via: &Subscription) -> bool {
        let Some((group, pattern)) = key(via) else {
            return false;
        };
        let mut matches = Vec::new();
        self.inner.router.lookup(&event.path, &mut matches);
        let others = matches
            .iter()
            .filter(|s| key(s) == Some((group, pattern)) && s.session != via.session);
        let Some(chosen) = self.next_member(others) else {
            tracing::debug!(
                group,
                pattern,
                "no other member to redeliver a shared message to"
            );
            return false;
        };
        let message = Outbound::Event {
            event,
            subscriptions: chosen.clone().into(),
        };
        let delivery = chosen
            .queue
            .offer(message, self.inner.config.overflow, &mut 0);
        matches!(
            delivery,
            Delivery::Queued | Delivery::Congested | Delivery::DisplacedOldest
        )
    }
}
