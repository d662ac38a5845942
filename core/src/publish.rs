//! Writes and their publication (DESIGN.md §2, §6): `set` and `remove` run against the
//! store, and their events are routed to every matching session's queue.
//!
//! Events are published from the store's commit hook ([`crate::OnCommit`]), so they
//! leave in the order the writes took effect: two concurrent sets of one path reach every
//! subscriber in the order the store holds them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::event::{Event, EventKind, Outbound};
use crate::path::Path;
use crate::pattern::Glob;
use crate::payload::{Format, Payload, Record, now_ms};
use crate::pipeline::Core;
use crate::request::{Consistency, Response, SetOptions};
use crate::router::Subscription;
use crate::session::{Delivery, Session};
use crate::store::{OnCommit, Write};

/// What a publication reached (reference: `onPublished` results).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishResult {
    /// Sessions the event was queued for.
    pub successful: u64,
    /// Sessions whose queue was full.
    pub failed: u64,
    /// Sessions whose subscriptions matched the path but not the event (event type, no
    /// local), or that were closing.
    pub skipped: u64,
}

impl Core {
    pub(crate) async fn set(
        &self,
        session: &Session,
        path: Path,
        payload: Payload,
        options: SetOptions,
    ) -> Result<Response, Error> {
        let limit = self.inner.config.max_payload;
        if payload.bytes.len() > limit {
            return Err(Error::TooLarge {
                what: "payload",
                size: payload.bytes.len(),
                limit,
            });
        }
        let published = !options.no_publish;
        let origin = session.id();
        let event_for = move |record: &Record| {
            Event::new(
                EventKind::Set,
                record.path.clone(),
                record.payload.clone(),
                record.created,
                record.modified,
                Some(origin),
                options.event_id,
                options.consistency,
                options.meta,
                options.qos,
            )
        };
        let record = if options.no_store {
            let now = now_ms();
            let record = Record {
                path,
                payload,
                created: now,
                modified: now,
                modified_by: None,
            };
            if published {
                self.publish(Arc::new(event_for(&record)));
            }
            record
        } else {
            let write = Write {
                path,
                payload,
                merge: options.merge,
                modified_by: None,
            };
            let hook: Option<OnCommit<Record>> = published.then(|| {
                let core = self.clone();
                Box::new(move |record: &Record| {
                    core.publish(Arc::new(event_for(record)));
                }) as OnCommit<Record>
            });
            self.inner.store.set(write, hook).await?
        };
        Ok(Response::Set { record, published })
    }

    /// Removes what `target` matches and publishes one remove event per removed record.
    /// An exact remove always publishes one event, even when nothing was there (with a
    /// `removed` count of 0): an MQTT empty retained PUBLISH is delivered as an empty
    /// message whether or not a record existed (MQTT 3.3.1-6).
    pub(crate) async fn remove(
        &self,
        session: &Session,
        target: Glob,
        meta: Option<Map<String, Value>>,
        event_id: Option<u64>,
    ) -> Result<Response, Error> {
        let exact = match target.has_wildcard() {
            true => None,
            false => Some(Path::parse(target.as_str())?),
        };
        let core = self.clone();
        let origin = session.id();
        let hook: OnCommit<[Path]> = Box::new(move |removed: &[Path]| {
            let now = now_ms();
            let event = |path: Path, count: u64| {
                let empty = Payload {
                    format: Format::Text,
                    bytes: bytes::Bytes::new(),
                };
                Event::new(
                    EventKind::Remove,
                    path,
                    empty,
                    now,
                    now,
                    Some(origin),
                    event_id,
                    Consistency::Transactional,
                    meta.clone(),
                    0,
                )
                .with_removed(count)
            };
            match (removed.is_empty(), exact) {
                (true, Some(path)) => {
                    core.publish(Arc::new(event(path, 0)));
                }
                _ => {
                    for path in removed {
                        core.publish(Arc::new(event(path.clone(), 1)));
                    }
                }
            }
        });
        let removed = self.inner.store.remove(&target, Some(hook)).await?;
        Ok(Response::Removed(removed.len() as u64))
    }

    /// Routes an event to every matching subscription's session queue, once per session
    /// with all of that session's matching subscriptions. Never waits: a full queue is
    /// handled by the overflow policy.
    pub fn publish(&self, event: Arc<Event>) -> PublishResult {
        let counters = &self.inner.counters;
        counters.published.fetch_add(1, Ordering::Relaxed);
        let mut matches = Vec::new();
        self.inner.router.lookup(&event.path, &mut matches);
        let mut result = PublishResult::default();
        if matches.is_empty() {
            return result;
        }
        matches.sort_unstable_by_key(|s| (s.session, s.id));
        for group in matches.chunk_by(|a, b| a.session == b.session) {
            let wanted: Vec<Arc<Subscription>> = group
                .iter()
                .filter(|s| s.options.filter.accepts(event.kind))
                .filter(|s| !(s.options.no_local && event.origin == Some(s.session)))
                .cloned()
                .collect();
            let Some(first) = wanted.first() else {
                result.skipped += 1;
                continue;
            };
            let queue = first.queue.clone();
            let message = Outbound::Event {
                event: event.clone(),
                subscriptions: wanted,
            };
            match queue.deliver(message, self.inner.config.overflow) {
                Delivery::Queued => {
                    result.successful += 1;
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Delivery::Dropped => {
                    result.failed += 1;
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Delivery::Closed => result.skipped += 1,
            }
        }
        result
    }
}
