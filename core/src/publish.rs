//! Writes and their publication (DESIGN.md §2, §6): `set` and `remove` run against the
//! store, and their events are routed to every matching session's queue.
//!
//! Events are published from the store's commit hook ([`crate::OnCommit`]), so they
//! leave in the order the writes took effect: two concurrent sets of one path reach every
//! subscriber in the order the store holds them.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use foldhash::fast::RandomState;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::event::{Event, EventKind, Matches, Outbound};
use crate::path::Path;
use crate::pattern::Glob;
use crate::payload::{Format, Payload, Record, now_ms};
use crate::pipeline::Core;
use crate::query::{Criteria, Query};
use crate::request::{Consistency, Response, SetOptions};
use crate::router::Subscription;
use crate::session::{Delivery, Session, SessionId, SessionQueue};
use crate::stats::COUNTED_PROTOCOLS;
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

/// What one fan-out left for its writer: the queues it congested, the sessions it reached
/// (collected for consistency ACKNOWLEDGED only) and its results.
#[derive(Default)]
struct Fanned {
    congested: Vec<SessionQueue>,
    recipients: Vec<SessionId>,
    results: PublishResult,
    /// The session-log ticket of the last message written for a durable recipient (0:
    /// none): the writer is answered once it is durable.
    ticket: u64,
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
        // Consistency ACKNOWLEDGED: registered before the event is queued, so an early
        // `ack` counts (crate::acks).
        let awaited = match (published, options.consistency, options.event_id) {
            (true, Consistency::Acknowledged, Some(event_id)) => {
                Some(format!("{origin}-{event_id}"))
            }
            _ => None,
        };
        let event_id = options.event_id;
        let consistency = options.consistency;
        let meta = options.meta;
        let merge_input = options.merge.then(|| payload.clone());
        if options.increment.is_some() && (options.no_store || options.merge) {
            return Err(Error::BadRequest(
                "`increment` adds to a stored gauge: it cannot be combined with `noStore` or `merge`"
                    .into(),
            ));
        }
        let increment = options.increment.clone();
        // A retained MQTT 5 PUBLISH's properties are kept with its record.
        let record_properties = options.properties.clone();
        let tag = match (&options.tag, options.no_store) {
            (Some(tag), false) => Some(path.child(tag)?),
            (Some(_), true) => {
                return Err(Error::BadRequest(
                    "`tag` snapshots a stored record: it cannot be combined with `noStore`".into(),
                ));
            }
            (None, _) => None,
        };
        let event_for = move |record: &Record| {
            let payload = match &increment {
                Some(increment) => increment.gauge_payload(&record.payload),
                None => record.payload.clone(),
            };
            Event::new(
                EventKind::Set,
                record.path.clone(),
                payload,
                record.created,
                record.modified,
                Some(origin),
                options.event_id,
                options.consistency,
                meta,
                options.qos,
            )
            .with_targets(options.target_clients)
            .with_merge_input(merge_input)
            .with_properties(options.properties)
            .with_retained(!options.no_store)
        };
        if let Some(id) = &awaited {
            self.inner.acks.register(id);
        }
        let wants_recipients = awaited.is_some();
        let mut fanned = Fanned::default();
        let record = if options.no_store {
            let now = now_ms();
            let record = Record {
                path,
                payload,
                created: now,
                modified: now,
                modified_by: None,
                properties: record_properties,
            };
            if published {
                fanned.results = self.publish_into(
                    Arc::new(event_for(&record)),
                    Some(&mut fanned.congested),
                    wants_recipients.then_some(&mut fanned.recipients),
                    &mut fanned.ticket,
                );
                self.wait_for_room(&fanned.congested).await;
                self.wait_for_session_log(fanned.ticket).await;
            }
            record
        } else {
            let write = Write {
                path,
                payload,
                merge: options.merge,
                modified_by: None,
                increment: options.increment,
                properties: record_properties,
            };
            // The hook runs on the store's writer thread, which must not wait: it notes
            // the congested queues (and the results), and this task waits for them after
            // the commit.
            let shared = Arc::new(parking_lot::Mutex::new(Fanned::default()));
            let hook: Option<OnCommit<Record>> = published.then(|| {
                let (core, shared) = (self.clone(), shared.clone());
                Box::new(move |record: &Record| {
                    let mut fanned = shared.lock();
                    let Fanned {
                        congested,
                        recipients,
                        results,
                        ticket,
                    } = &mut *fanned;
                    *results = core.publish_into(
                        Arc::new(event_for(record)),
                        Some(congested),
                        wants_recipients.then_some(recipients),
                        ticket,
                    );
                }) as OnCommit<Record>
            });
            let started = Instant::now();
            let stored = self.inner.store.set(write, hook).await;
            self.inner.counters.store_writes.observe(started.elapsed());
            let record = match stored {
                Ok(record) => record,
                Err(error) => {
                    if let Some(id) = &awaited {
                        self.inner.acks.forget(id);
                    }
                    return Err(error.into());
                }
            };
            fanned = std::mem::take(&mut *shared.lock());
            self.wait_for_room(&fanned.congested).await;
            self.wait_for_session_log(fanned.ticket).await;
            if let Some(tag) = tag {
                let snapshot = Write {
                    path: tag,
                    payload: record.payload.clone(),
                    merge: false,
                    modified_by: None,
                    increment: None,
                    properties: None,
                };
                let started = Instant::now();
                let stored = self.inner.store.set(snapshot, None).await;
                self.inner.counters.store_writes.observe(started.elapsed());
                stored?;
            }
            record
        };
        let results = fanned.results;
        if published {
            self.report(session, consistency, event_id, awaited, fanned);
        }
        Ok(Response::Set {
            record,
            published,
            results,
        })
    }

    /// Removes what `target` matches and publishes one remove event per removed record.
    /// An exact remove always publishes one event, even when nothing was there (with a
    /// `removed` count of 0): an MQTT empty retained PUBLISH is delivered as an empty
    /// message whether or not a record existed (MQTT 3.3.1-6).
    ///
    /// `consistency` (DESIGN.md §6) as for `set`: the events carry it; DEFERRED queues
    /// the publication results (all events together) for the writer as soon as they are
    /// out, ACKNOWLEDGED once every recipient acknowledged (one publication id for all the
    /// events of the removal).
    pub(crate) async fn remove(
        &self,
        session: &Session,
        target: Glob,
        meta: Option<Map<String, Value>>,
        event_id: Option<u64>,
        consistency: Consistency,
    ) -> Result<Response, Error> {
        let exact = match target.has_wildcard() {
            true => None,
            false => Some(Path::parse(target.as_str())?),
        };
        let core = self.clone();
        let origin = session.id();
        let awaited = event_id
            .filter(|_| consistency == Consistency::Acknowledged)
            .map(|id| format!("{origin}-{id}"));
        if let Some(id) = &awaited {
            self.inner.acks.register(id);
        }
        let wants_recipients = awaited.is_some();
        let shared = Arc::new(parking_lot::Mutex::new(Fanned::default()));
        let fanned_in_hook = shared.clone();
        let hook: OnCommit<[Path]> = Box::new(move |removed: &[Path]| {
            let mut fanned = fanned_in_hook.lock();
            let Fanned {
                recipients,
                results,
                ticket,
                ..
            } = &mut *fanned;
            let mut publish = |event: Event| {
                let r = core.publish_into(
                    Arc::new(event),
                    None,
                    wants_recipients.then_some(&mut *recipients),
                    ticket,
                );
                results.successful += r.successful;
                results.failed += r.failed;
                results.skipped += r.skipped;
            };
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
                    consistency,
                    meta.clone(),
                    0,
                )
                .with_removed(count)
            };
            match (removed.is_empty(), exact) {
                (true, Some(path)) => publish(event(path, 0)),
                _ => {
                    for path in removed {
                        publish(event(path.clone(), 1));
                    }
                }
            }
        });
        let started = Instant::now();
        let removed = self.inner.store.remove(&target, Some(hook)).await;
        self.inner.counters.store_writes.observe(started.elapsed());
        let removed = match removed {
            Ok(removed) => removed,
            Err(error) => {
                if let Some(id) = &awaited {
                    self.inner.acks.forget(id);
                }
                return Err(error.into());
            }
        };
        let fanned = std::mem::take(&mut *shared.lock());
        self.wait_for_session_log(fanned.ticket).await;
        self.report(session, consistency, event_id, awaited, fanned);
        Ok(Response::Removed(removed.len() as u64))
    }

    /// Tells the writer (`session`) how its publication went, as its consistency asks
    /// (DESIGN.md §6): ACKNOWLEDGED (`awaited`, the registered publication id) once every
    /// recipient acknowledged, DEFERRED at once; other levels not at all (TRANSACTIONAL
    /// answers with the results). The writer's protocol writes the `Outbound::Published`
    /// after its answer.
    fn report(
        &self,
        session: &Session,
        consistency: Consistency,
        event_id: Option<u64>,
        awaited: Option<String>,
        fanned: Fanned,
    ) {
        let origin_queue = session.entry.queue.clone();
        match (awaited, consistency, event_id) {
            (Some(id), _, _) => {
                self.await_acks(
                    id,
                    event_id,
                    fanned.results,
                    fanned.recipients,
                    origin_queue,
                );
            }
            (None, Consistency::Deferred, Some(request)) => {
                let id = format!("{}-{request}", session.id());
                let publication = crate::acks::Publication::deferred(id, event_id, fanned.results);
                origin_queue.deliver(
                    Outbound::Published(Arc::new(publication)),
                    crate::session::OverflowPolicy::DropNew,
                );
            }
            _ => {}
        }
    }

    /// Removes the records under `target` that satisfy `criteria` (all, for `None`), never
    /// a reserved one (`/_SYSTEM`): a search for their
    /// paths, then one exact remove each, run together so that the store can commit them
    /// in one group. Not atomic: a record changed between the two is removed as it was
    /// found, one removed by someone else meanwhile still gets an event (`removed: 0`),
    /// and when one removal fails the error is returned while others may have happened.
    pub(crate) async fn remove_matching(
        &self,
        session: &Session,
        target: Glob,
        criteria: Option<Criteria>,
        meta: Option<Map<String, Value>>,
        event_id: Option<u64>,
    ) -> Result<Response, Error> {
        let query = Query {
            criteria,
            ..Query::default()
        };
        let mut found = self.inner.store.query(&target, &query).await?;
        crate::reserved::drop_reserved(&target, &mut found);
        let removals = found.iter().map(|record| {
            let exact = Glob::parse(record.path.as_str());
            let meta = meta.clone();
            async move {
                match exact {
                    Ok(exact) => {
                        let transactional = Consistency::Transactional;
                        self.remove(session, exact, meta, event_id, transactional)
                            .await
                    }
                    Err(error) => Err(error.into()),
                }
            }
        });
        let mut removed = 0;
        for result in futures_util::future::join_all(removals).await {
            if let Response::Removed(n) = result? {
                removed += n;
            }
        }
        Ok(Response::Removed(removed))
    }

    /// Routes an event to every matching subscription's session queue, once per session
    /// with all of that session's matching subscriptions. Never waits: a full queue is
    /// handled by the overflow policy.
    pub fn publish(&self, event: Arc<Event>) -> PublishResult {
        self.publish_into(event, None, None, &mut 0)
    }

    /// Holds a publisher back until the messages its event left for durable sessions are
    /// in the store's session log (DESIGN.md §6: a PUBACKed message survives a crash).
    async fn wait_for_session_log(&self, ticket: u64) {
        if ticket == 0 {
            return;
        }
        if let Err(error) = self.inner.store.session_ops_durable(ticket).await {
            tracing::warn!(%error, "durable session messages not confirmed by the store");
        }
    }

    /// Holds a publisher back until every queue its event congested has room again, at most [`crate::CoreConfig::backpressure_timeout`] in all (DESIGN.md
    /// §2: backpressure for a publisher). The event is already queued: waiting only
    /// delays the writer's answer (MQTT PUBACK/PUBREC, the native response).
    async fn wait_for_room(&self, congested: &[SessionQueue]) {
        if congested.is_empty() {
            return;
        }
        let deadline = tokio::time::Instant::now() + self.inner.config.backpressure_timeout;
        for queue in congested {
            queue.wait_for_room(deadline).await;
        }
    }

    /// [`Core::publish`], noting in `congested` the queues that took the event beyond
    /// their capacity ([`Delivery::Congested`]), in `recipients` the sessions it was
    /// queued for, and in `ticket` the last session-log write it caused (durable
    /// sessions).
    pub(crate) fn publish_into(
        &self,
        event: Arc<Event>,
        congested: Option<&mut Vec<SessionQueue>>,
        recipients: Option<&mut Vec<SessionId>>,
        ticket: &mut u64,
    ) -> PublishResult {
        let counters = &self.inner.counters;
        counters.published.fetch_add(1, Ordering::Relaxed);
        // Taken rather than borrowed: a publish nested in this one (none today) would get a
        // fresh list instead of a panic.
        let mut matches = MATCHES.take();
        self.inner.router.lookup(&event.path, &mut matches);
        self.pick_shared(&mut matches);
        let result = self.fan_out(&event, &mut matches, congested, recipients, ticket);
        matches.clear();
        if matches.capacity() <= KEEP_MATCHES {
            MATCHES.set(matches);
        }
        // Once per publish, not per recipient: these counters are shared by every thread.
        if result.successful > 0 {
            counters
                .delivered
                .fetch_add(result.successful, Ordering::Relaxed);
        }
        if result.failed > 0 {
            counters.dropped.fetch_add(result.failed, Ordering::Relaxed);
        }
        result
    }

    /// Queues `event` once for each session among `matches`, with that session's wanted
    /// subscriptions.
    fn fan_out(
        &self,
        event: &Arc<Event>,
        matches: &mut [Arc<Subscription>],
        mut congested: Option<&mut Vec<SessionQueue>>,
        mut recipients: Option<&mut Vec<SessionId>>,
        ticket: &mut u64,
    ) -> PublishResult {
        let mut result = PublishResult::default();
        // Deliveries by the recipients' protocol, added to the shared counters once at the
        // end rather than per recipient.
        let mut by_protocol = [0u64; COUNTED_PROTOCOLS.len()];
        // A session with several matching subscriptions gets one message: bring them
        // together. Usually each session has one match, which is checked without sorting.
        if repeats_a_session(matches) {
            matches.sort_unstable_by_key(|s| (s.session.as_u128(), s.id));
        }
        let policy = self.inner.config.overflow;
        let wants = |s: &Subscription| {
            s.options.filter.accepts(event.kind)
                && !(s.options.no_local && event.origin == Some(s.session))
                && event
                    .targets
                    .as_ref()
                    .is_none_or(|t| t.binary_search(&s.session).is_ok())
        };
        for group in matches.chunk_by(|a, b| a.session == b.session) {
            let subscriptions = match group {
                [sub] => match wants(sub) {
                    true => Matches::from(sub.clone()),
                    false => {
                        result.skipped += 1;
                        continue;
                    }
                },
                _ => {
                    let wanted: Matches = group.iter().filter(|s| wants(s)).cloned().collect();
                    if wanted.is_empty() {
                        result.skipped += 1;
                        continue;
                    }
                    wanted
                }
            };
            let message = Outbound::Event {
                event: event.clone(),
                subscriptions,
            };
            // Every subscription of a session holds the session's queue.
            let delivery = group[0].queue.offer(message, policy, ticket);
            // A native client acknowledges any event (`ack`); an MQTT one only what it
            // gets at QoS 1 or 2 (PUBACK/PUBCOMP). Looked up only when recipients are
            // collected (consistency ACKNOWLEDGED).
            let can_ack = || {
                group.iter().any(|s| event.qos.min(s.options.qos) > 0)
                    || self.session_protocol(group[0].session) == Some("native")
            };
            if recipients.is_some()
                && can_ack()
                && matches!(
                    delivery,
                    Delivery::Queued | Delivery::Congested | Delivery::DisplacedOldest
                )
                && let Some(recipients) = recipients.as_deref_mut()
            {
                recipients.push(group[0].session);
            }
            if matches!(
                delivery,
                Delivery::Queued | Delivery::Congested | Delivery::DisplacedOldest
            ) {
                by_protocol[group[0].protocol.index()] += 1;
            }
            match delivery {
                Delivery::Queued => result.successful += 1,
                Delivery::Congested => {
                    result.successful += 1;
                    if let Some(congested) = congested.as_deref_mut() {
                        congested.push(group[0].queue.clone());
                    }
                }
                Delivery::DisplacedOldest => {
                    result.successful += 1;
                    // The displaced message (at least one) counts as dropped.
                    self.inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Delivery::Dropped => result.failed += 1,
                Delivery::Closed => result.skipped += 1,
            }
        }
        let delivered = &self.inner.counters.messages_delivered;
        for (counter, n) in delivered.iter().zip(by_protocol) {
            if n > 0 {
                counter.add(n);
            }
        }
        result
    }
}

thread_local! {
    /// The publish path's list of matching subscriptions, kept between publishes so that
    /// routing allocates nothing once it has grown to the usual fan-out.
    static MATCHES: Cell<Vec<Arc<Subscription>>> = const { Cell::new(Vec::new()) };
    /// The sessions seen in one large fan-out, kept for the same reason.
    static SESSIONS: Cell<Option<HashSet<u128, RandomState>>> = const { Cell::new(None) };
}

/// A scratch list or set that grew beyond this (a rare huge fan-out) is freed, not kept on
/// the thread.
const KEEP_MATCHES: usize = 4096;

/// Up to this many matches, repeated sessions are looked for pair by pair; above, in a
/// hash set (sorting a thousand matches by session cost more than delivering them).
const PAIRWISE_MAX: usize = 8;

/// Whether two of `matches` belong to one session.
fn repeats_a_session(matches: &[Arc<Subscription>]) -> bool {
    if matches.len() <= PAIRWISE_MAX {
        return matches
            .iter()
            .enumerate()
            .any(|(i, a)| matches[i + 1..].iter().any(|b| a.session == b.session));
    }
    let mut seen = SESSIONS.take().unwrap_or_default();
    let repeated = !matches.iter().all(|s| seen.insert(s.session.as_u128()));
    seen.clear();
    if seen.capacity() <= KEEP_MATCHES {
        SESSIONS.set(Some(seen));
    }
    repeated
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;
    use crate::event::EventFilter;
    use crate::pattern::Pattern;
    use crate::request::{OnOptions, Request};
    use crate::router::SubscriptionId;

    fn on(session: &Session, filter: &str, options: OnOptions) -> SubscriptionId {
        let pattern = Pattern::mqtt(filter).unwrap();
        match session
            .request(Request::On { pattern, options })
            .now_or_never()
        {
            Some(Ok(Response::Subscribed(id))) => id,
            other => panic!("on {filter}: {other:?}"),
        }
    }

    fn event(origin: Option<&Session>) -> Arc<Event> {
        event_at("a/b", origin)
    }

    fn event_at(topic: &str, origin: Option<&Session>) -> Arc<Event> {
        Arc::new(Event::new(
            EventKind::Set,
            Path::from_topic(topic).unwrap(),
            Payload::json(&serde_json::json!(1)),
            1,
            1,
            origin.map(Session::id),
            None,
            Consistency::Transactional,
            None,
            0,
        ))
    }

    /// The subscription ids of every message queued for `session`, one list per message.
    fn received(session: &mut Session) -> Vec<Vec<SubscriptionId>> {
        let mut messages = Vec::new();
        while let Some(Some(message)) = session.recv().now_or_never() {
            match message {
                Outbound::Event { subscriptions, .. } => {
                    messages.push(subscriptions.iter().map(|s| s.id).collect());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        messages
    }

    /// Guards the grouping without a sort: a session matched by several subscriptions
    /// still gets one message listing all of them (in id order), whether the matches are
    /// few (checked pair by pair) or many (sorted).
    #[test]
    fn each_session_gets_one_message_with_all_its_matches() {
        for others in [0, 20] {
            let core = Core::builder(crate::store::ClosedStore).build();
            let mut twice = core.open_session("local", None, None);
            let first = on(&twice, "a/+", OnOptions::default());
            let second = on(&twice, "a/b", OnOptions::default());
            let mut once = core.open_session("local", None, None);
            let only = on(&once, "#", OnOptions::default());
            let mut crowd: Vec<_> = (0..others)
                .map(|_| {
                    let s = core.open_session("local", None, None);
                    on(&s, "#", OnOptions::default());
                    s
                })
                .collect();

            let result = core.publish(event(None));
            assert_eq!(result.successful, 2 + others as u64, "{others} others");
            assert_eq!(received(&mut twice), vec![vec![first, second]]);
            assert_eq!(received(&mut once), vec![vec![only]]);
            for s in &mut crowd {
                assert_eq!(received(s).len(), 1);
            }
            // No session matched twice.
            let result = core.publish(event_at("x/y", None));
            assert_eq!(result.successful, 1 + others as u64, "{others} others");
            assert!(received(&mut twice).is_empty());
            assert_eq!(received(&mut once), vec![vec![only]]);
            for s in &mut crowd {
                assert_eq!(received(s).len(), 1);
            }
            assert_eq!(core.stats().delivered, 3 + 2 * others as u64);
        }
    }

    /// Guards the per-subscription checks: event type filters and no local drop the
    /// subscriptions that do not want the event, and a session left with none is skipped.
    #[test]
    fn unwanted_subscriptions_are_left_out() {
        let core = Core::builder(crate::store::ClosedStore).build();
        let mut publisher = core.open_session("local", None, None);
        let no_local = OnOptions {
            no_local: true,
            ..Default::default()
        };
        on(&publisher, "a/b", no_local);
        let mut picky = core.open_session("local", None, None);
        let removes = OnOptions {
            filter: EventFilter::Remove,
            ..Default::default()
        };
        on(&picky, "a/b", removes.clone());
        let wanted = on(&picky, "a/+", OnOptions::default());
        let mut deaf = core.open_session("local", None, None);
        on(&deaf, "a/#", removes);

        let result = core.publish(event(Some(&publisher)));
        assert_eq!((result.successful, result.skipped), (1, 2));
        assert!(received(&mut publisher).is_empty());
        assert_eq!(received(&mut picky), vec![vec![wanted]]);
        assert!(received(&mut deaf).is_empty());
    }
}
