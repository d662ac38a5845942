//! Sessions: one per connection (or in-process client), with its outbound queue and its
//! subscriptions (DESIGN.md §2).
//!
//! The outbound queue is in [`queue`]. A [`Session`] is a guard: dropping it removes its subscriptions from the index and
//! the session from the registry, so a vanished client leaves nothing behind.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Error;
use crate::event::{CloseReason, Outbound};
use crate::layer::OutboundVerdict;
use crate::pattern::Pattern;
use crate::payload::Record;
use crate::pipeline::Core;
use crate::request::{Request, Response};
use crate::router::{Subscription, SubscriptionId};
use crate::security::{Identity, SessionFacts};

mod queue;

pub(crate) use queue::QueueLimits;
pub use queue::{Delivery, OverflowPolicy, SessionQueue};

/// A session's id: a random UUID, shown hyphenated (`"1b4e28ba-2fa1-11d2-883f-0016d3cca427"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    /// A new random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The id as one number: a cheap sort and hash key.
    pub(crate) fn as_u128(self) -> u128 {
        self.0.as_u128()
    }
}

impl std::str::FromStr for SessionId {
    type Err = uuid::Error;

    /// Parses the hyphenated form [`SessionId`]'s `Display` writes (other UUID forms are
    /// accepted too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0.hyphenated())
    }
}

/// What the core knows of a session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Its id.
    pub id: SessionId,
    /// The protocol it speaks (`"mqtt"`, `"native"`, `"local"`).
    pub protocol: &'static str,
    /// The peer address, for network sessions.
    pub peer: Option<SocketAddr>,
    /// The client id, when the protocol has one (MQTT). At most one live session holds a
    /// client id: a new one takes it over (MQTT 3.1.4-2).
    pub client_id: Option<String>,
}

/// The registry's view of a live session.
#[derive(Debug)]
pub(crate) struct SessionEntry {
    pub(crate) info: SessionInfo,
    pub(crate) queue: SessionQueue,
    pub(crate) subscriptions: Mutex<HashMap<SubscriptionId, Arc<Subscription>>>,
    /// Who the session is, once it logged in on a secure broker.
    pub(crate) identity: parking_lot::RwLock<Option<Arc<Identity>>>,
    /// Set for a session that outlives its connection ([`crate::durable`]).
    pub(crate) durable: Option<Arc<crate::durable::Durable>>,
}

impl SessionEntry {
    /// Ends a logged-in session for security's `end`: it loses its identity (its
    /// requests get 401) and the protocol is told to close it with the reason.
    pub(crate) fn end(&self, end: crate::security::SessionEnd) {
        tracing::info!(session = %self.info.id, reason = %end, "session ended by security");
        *self.identity.write() = None;
        self.queue.close(CloseReason::SessionEnded(end));
    }

    /// What templated permissions may read of this session (`{{session.client_id}}`).
    pub(crate) fn facts(&self) -> SessionFacts {
        SessionFacts {
            client_id: self.info.client_id.clone(),
            protocol: self.info.protocol,
            peer: self.info.peer,
            stateless: false,
            takes_over: None,
        }
    }
}

/// A live session: what a connection task (or an in-process client) holds. Dropping it
/// ends the session.
pub struct Session {
    pub(crate) core: Core,
    pub(crate) entry: Arc<SessionEntry>,
    /// A message taken from the queue whose outbound layers have not finished: kept here so a
    /// cancelled [`Session::recv`] loses nothing. Behind a lock (never held across an
    /// `.await`) so that `recv` takes `&self`: a connection can wait for messages while its
    /// requests (also `&self`) are in flight.
    pending: Mutex<Option<Outbound>>,
    /// A durable session's attach generation when this guard was made: a guard that
    /// outlived its attachment leaves the session alone when dropped.
    pub(crate) generation: u64,
}

impl Session {
    pub(crate) fn new(core: Core, entry: Arc<SessionEntry>) -> Self {
        let generation = entry.durable.as_ref().map_or(0, |d| d.generation());
        Self {
            core,
            entry,
            pending: Mutex::new(None),
            generation,
        }
    }

    /// Records who the session is (after a successful login on a secure broker); its
    /// requests are then authorized against `identity`'s grants.
    pub fn set_identity(&self, identity: Arc<Identity>) {
        *self.entry.identity.write() = Some(identity);
    }

    /// Ends the session for security's `end` (see `SessionEntry::end`).
    pub(crate) fn end(&self, end: crate::security::SessionEnd) {
        self.entry.end(end);
    }

    /// Who the session is, once logged in.
    pub fn identity(&self) -> Option<Arc<Identity>> {
        self.entry.identity.read().clone()
    }

    /// What templated permissions may read of this session (`{{session.client_id}}`).
    pub fn facts(&self) -> SessionFacts {
        self.entry.facts()
    }

    /// The session's id.
    pub fn id(&self) -> crate::session::SessionId {
        self.entry.info.id
    }

    /// What the core knows of the session.
    pub fn info(&self) -> &SessionInfo {
        &self.entry.info
    }

    /// The core this session belongs to.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Runs a request through the inbound layers and the core.
    ///
    /// # Errors
    /// [`Error`]: a layer rejected the request, or the core could not carry it out (see
    /// each variant); a failed request changes nothing.
    pub async fn request(&self, request: Request) -> Result<Response, Error> {
        // Boxed: the pipeline's future is large, and it would otherwise be inlined into
        // every connection task's future, which idle connections keep allocated.
        Box::pin(self.core.handle(self, request)).await
    }

    /// The stored values a native subscription with `initialCallback`/`initialEmit`
    /// receives (reference: EVENT DATA): the records `pattern` matches within `depth`,
    /// "ordered by modified", then by path.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn initial_values(
        &self,
        pattern: &Pattern,
        depth: Option<usize>,
    ) -> Result<Vec<Record>, Error> {
        let mut records = self.retained(pattern).await?;
        records.retain(|r| pattern.matches(&r.path, depth));
        records.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        Ok(records)
    }

    /// The stored records a new subscription to `pattern` should receive (MQTT retained
    /// messages), ordered by path; for a pattern naming `$SYS`, the current `$SYS`
    /// values too (kept in memory, never stored: `crate::sys`).
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn retained(&self, pattern: &Pattern) -> Result<Vec<Record>, Error> {
        let mut records = self.core.store().scan(&pattern.covering_glob()).await?;
        let sys = self.core.inner.sys.matching(pattern);
        if !sys.is_empty() {
            // The live values stand for their topics (a record stored there before
            // clients were refused `$SYS` writes is left out).
            records.retain(|r| !crate::sys::is_sys(r.path.as_str()));
            records.extend(sys);
            records.sort_by(|a, b| a.path.cmp(&b.path));
        }
        let visible = self.visible();
        let now = crate::payload::now_ms();
        Ok(records
            .into_iter()
            .filter(|r| pattern.matches(&r.path, None))
            // MQTT 5: a retained message past its Message Expiry Interval is not sent
            // [MQTT-3.3.2-5].
            .filter(|r| !r.properties.as_ref().is_some_and(|p| p.expired(now)))
            .filter(|r| !crate::reserved::is_reserved(r.path.as_str()))
            .filter(|r| visible(&r.path))
            .collect())
    }

    /// Whether an event or a subscription's stored record on a path may reach this
    /// session: always without security; with it, when the session is logged in and its
    /// grants allow `on` there now (DESIGN.md §7). A subscription was authorized when it
    /// was made; this keeps it to what the grants allow as they change (a revoked
    /// permission stops its events at once), and is what gives nested permissions their
    /// filtered subscriptions (reference: NESTED PERMISSIONS FOR GET AND SET).
    fn visible(&self) -> impl Fn(&crate::Path) -> bool + use<> {
        let identity = self.core.security().map(|_| self.identity());
        move |path| match &identity {
            None => true,
            Some(None) => false,
            Some(Some(identity)) => {
                (identity.grants).allows_record(crate::security::Right::On, path)
            }
        }
    }

    /// The next message for this session, after the outbound layers. A
    /// [`Outbound::Close`] is the last one: the protocol tells the client why and ends the
    /// connection. Once closed, every further call returns `Outbound::Close` again at
    /// once, so a loop that skips what it does not handle must stop on it (or it spins).
    /// `None` when the core is gone.
    ///
    /// Cancel-safe: a message whose outbound layers were interrupted is kept and goes
    /// through the layers again on the next call (layers should be idempotent). Takes
    /// `&self` so that it can run beside [`Session::request`]s of the same session; should
    /// two calls race, each message still goes to exactly one of them.
    pub async fn recv(&self) -> Option<Outbound> {
        loop {
            let kept = self.pending.lock().take();
            let message = match kept {
                Some(message) => message,
                None => self.next_queued().await?,
            };
            match &message {
                Outbound::Event { event, .. } if !self.may_receive(&event.path) => continue,
                Outbound::Durable(durable) if !self.may_receive(&durable.event.path) => {
                    self.acknowledged(durable.seq);
                    continue;
                }
                _ => {}
            }
            if !self.core.has_layers() {
                return Some(message);
            }
            let mut kept = Kept {
                slot: &self.pending,
                message: Some(message),
            };
            let Some(message) = kept.message.as_mut() else {
                continue;
            };
            let verdict = self.core.outbound(&self.entry, message).await;
            let Some(message) = kept.message.take() else {
                continue;
            };
            if verdict == OutboundVerdict::Continue {
                return Some(message);
            }
            // A durable message a layer dropped is done with: out of the store too.
            if let Outbound::Durable(dropped) = &message {
                self.acknowledged(dropped.seq);
            }
        }
    }

    /// Resolves when the core asks this session to end, with the reason, without taking
    /// a message from its queue (for a protocol that is not reading the queue for now,
    /// e.g. while its in-flight window is full: a takeover or shutdown still reaches it).
    /// Cancel-safe.
    pub async fn closing(&self) -> CloseReason {
        self.entry.queue.closing().await
    }

    /// Whether a message on `path` may reach this session now (see `visible`): for
    /// messages handed to the protocol outside [`Session::recv`] (a resumed durable
    /// session's resends).
    pub fn may_receive(&self, path: &crate::Path) -> bool {
        self.core.security().is_none() || self.visible()(path)
    }

    /// The next message of the queue, or the close the core asked for (which wins over
    /// queued messages). Cancel-safe: nothing is taken from the queue until it returns.
    async fn next_queued(&self) -> Option<Outbound> {
        self.entry.queue.next().await
    }

    /// The number of live subscriptions of this session.
    pub fn subscription_count(&self) -> usize {
        self.entry.subscriptions.lock().len()
    }

    /// How many messages this session lost because its outbound queue was full.
    pub fn dropped(&self) -> u64 {
        self.entry.queue.dropped()
    }
}

/// A message going through the outbound layers: put back into the session's `pending`
/// slot if [`Session::recv`] is dropped before the layers finish.
struct Kept<'a> {
    slot: &'a Mutex<Option<Outbound>>,
    message: Option<Outbound>,
}

impl Drop for Kept<'_> {
    fn drop(&mut self) {
        if let Some(message) = self.message.take() {
            *self.slot.lock() = Some(message);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.entry.durable.is_some()
            && let Some(message) = self.pending.get_mut().take()
        {
            self.entry.queue.push_front(message);
        }
        self.core.close_session(&self.entry, self.generation);
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("info", &self.entry.info)
            .finish_non_exhaustive()
    }
}
