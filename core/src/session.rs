//! Sessions: one per connection (or in-process client), with its outbound queue and its
//! subscriptions (DESIGN.md §2).
//!
//! A [`Session`] is a guard: dropping it removes its subscriptions from the index and
//! the session from the registry, so a vanished client leaves nothing behind.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::event::{CloseReason, Outbound};
use crate::layer::OutboundVerdict;
use crate::pattern::Pattern;
use crate::payload::Record;
use crate::pipeline::Core;
use crate::request::{Request, Response};
use crate::router::{Subscription, SubscriptionId};

/// A session's id: a random UUID, shown hyphenated (`"1b4e28ba-2fa1-11d2-883f-0016d3cca427"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    /// A new random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
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

/// What happened to a message offered to a session's outbound queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It is in the queue.
    Queued,
    /// The queue was full; the message was dropped (and counted), or the session is being
    /// disconnected, as the overflow policy says.
    Dropped,
    /// The session is gone.
    Closed,
}

/// What happens when a session's outbound queue is full. A slow consumer never stalls a
/// publisher: the publisher is never made to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the new message, count it, and log (rate-limited). The default.
    #[default]
    DropNew,
    /// End the session with [`CloseReason::QueueFull`].
    Disconnect,
}

#[derive(Debug)]
struct QueueShared {
    kick: CancellationToken,
    reason: Mutex<Option<CloseReason>>,
    dropped: AtomicU64,
}

/// The sending side of a session's bounded outbound queue.
#[derive(Debug, Clone)]
pub struct SessionQueue {
    tx: mpsc::Sender<Outbound>,
    shared: Arc<QueueShared>,
}

impl SessionQueue {
    /// A queue holding at most `capacity` messages, and its receiving end.
    pub(crate) fn new(capacity: usize) -> (Self, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let shared = Arc::new(QueueShared {
            kick: CancellationToken::new(),
            reason: Mutex::new(None),
            dropped: AtomicU64::new(0),
        });
        (Self { tx, shared }, rx)
    }

    /// Offers a message without waiting; a full queue is handled by `policy`.
    pub(crate) fn deliver(&self, message: Outbound, policy: OverflowPolicy) -> Delivery {
        match self.tx.try_send(message) {
            Ok(()) => Delivery::Queued,
            Err(TrySendError::Closed(_)) => Delivery::Closed,
            Err(TrySendError::Full(_)) => {
                let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                match policy {
                    OverflowPolicy::DropNew => {
                        if dropped.is_power_of_two() {
                            tracing::warn!(
                                dropped,
                                "outbound queue full: dropping messages for a slow session"
                            );
                        }
                    }
                    OverflowPolicy::Disconnect => self.close(CloseReason::QueueFull),
                }
                Delivery::Dropped
            }
        }
    }

    /// Asks the session to end with `reason` (the first reason given wins).
    pub(crate) fn close(&self, reason: CloseReason) {
        self.shared.reason.lock().get_or_insert(reason);
        self.shared.kick.cancel();
    }

    /// How many messages were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// The registry's view of a live session.
#[derive(Debug)]
pub(crate) struct SessionEntry {
    pub(crate) info: SessionInfo,
    pub(crate) queue: SessionQueue,
    pub(crate) subscriptions: Mutex<HashMap<SubscriptionId, Arc<Subscription>>>,
}

/// A live session: what a connection task (or an in-process client) holds. Dropping it
/// ends the session.
pub struct Session {
    pub(crate) core: Core,
    pub(crate) entry: Arc<SessionEntry>,
    rx: mpsc::Receiver<Outbound>,
    /// A message taken from `rx` whose outbound layers have not finished: kept here so a
    /// cancelled [`Session::recv`] loses nothing.
    pending: Option<Outbound>,
}

impl Session {
    pub(crate) fn new(core: Core, entry: Arc<SessionEntry>, rx: mpsc::Receiver<Outbound>) -> Self {
        Self {
            core,
            entry,
            rx,
            pending: None,
        }
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
        self.core.handle(self, request).await
    }

    /// The stored records a new subscription to `pattern` should receive (MQTT retained
    /// messages), ordered by path.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn retained(&self, pattern: &Pattern) -> Result<Vec<Record>, Error> {
        let records = self.core.store().scan(&pattern.covering_glob()).await?;
        Ok(records
            .into_iter()
            .filter(|r| pattern.matches(&r.path, None))
            .collect())
    }

    /// The next message for this session, after the outbound layers. A
    /// [`Outbound::Close`] is the last one: the protocol tells the client why and ends the
    /// connection. `None` when the core is gone.
    ///
    /// Cancel-safe: a message whose outbound layers were interrupted is kept and goes
    /// through the layers again on the next call (layers should be idempotent).
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            let message = match self.pending.take() {
                Some(message) => message,
                None => tokio::select! {
                    biased;
                    () = self.entry.queue.shared.kick.cancelled() => {
                        let reason = self.entry.queue.shared.reason.lock().clone();
                        return Some(Outbound::Close(reason.unwrap_or(CloseReason::Shutdown)));
                    }
                    m = self.rx.recv() => m?,
                },
            };
            if !self.core.has_layers() {
                return Some(message);
            }
            let message = self.pending.insert(message);
            let verdict = self.core.outbound(&self.entry.info, message).await;
            let message = self.pending.take()?;
            if verdict == OutboundVerdict::Continue {
                return Some(message);
            }
        }
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

impl Drop for Session {
    fn drop(&mut self) {
        self.core.close_session(&self.entry);
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("info", &self.entry.info)
            .finish_non_exhaustive()
    }
}
