//! [`LocalClient`]: the client API for programs that embed the broker (reference: the
//! intra-process client; DESIGN.md §1, STYLE 24). It opens a [`Session`] on the
//! [`Core`] and speaks to it in [`Request`]s and [`Response`]s: no socket, no frames,
//! no JSON envelope. Events come from [`Session::recv`] in a task the client owns.
//!

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use pathmq_core::{
    Core, Event as CoreEvent, EventKind, Glob, Increment, Off, Outbound, Path, Pattern, Payload,
    Query, Request, Response, Session, SessionId, SubscriptionId,
};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::event::EventMeta;
use super::listener::{Hub, wildcard_match};
use super::options::effective_depth;
use super::published::{PublicationResults, Publications, Published, published_consistency};
use super::remote::exact;
use super::wire;
use super::{
    ClientError, DataApi, Event, GetOptions, Item, ListenerId, OnOptions, RemoveOptions,
    SessionEvent, SetOptions, Subscription,
};

/// Events each listener holds before new ones are dropped for it.
const LISTENER_BUFFER: usize = 1024;
/// Session events kept for a receiver that has not read them yet.
const SESSION_EVENTS: usize = 16;

/// A client inside the broker's process: the API of [`Client`](super::Client)
/// ([`DataApi`]) over a core [`Session`], with no network and no JSON framing.
///
/// Cheap to clone: clones share the session. Dropping the last clone ends the session
/// (its subscriptions go) and stops its event task.
///
/// ```
/// use pathmq_core::Core;
/// use pathmq_native::client::{DataApi, LocalClient, SetOptions};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), pathmq_native::client::ClientError> {
/// let core = Core::builder(pathmq_storage::MemoryStore::new()).build();
/// let client = LocalClient::admin(&core);
/// client.set("/config/mode", json!({"eco": true}), SetOptions::new()).await?;
/// let item = client.get("/config/mode").await?.expect("stored");
/// assert_eq!(item.data, json!({"eco": true}));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LocalClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The session; `None` once disconnected.
    session: Mutex<Option<Arc<Session>>>,
    hub: Arc<Hub>,
    events: broadcast::Sender<SessionEvent>,
    /// The event task; stopped on drop and on `disconnect`.
    pump: Mutex<Option<JoinHandle<()>>>,
    /// Request ids, for the events' publication ids (`<session>-<id>`).
    next_event_id: AtomicU64,
    /// Writes waiting for their publication results (`set_published`).
    publications: Arc<Publications>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(pump) = lock(&self.pump).take() {
            pump.abort();
        }
    }
}

/// Locks a mutex of the client; its state stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LocalClient {
    /// A client with its own session on `core` (protocol `"local"`). Must be called
    /// within a Tokio runtime: the event task is spawned on it.
    pub fn new(core: &Core) -> Self {
        let session = Arc::new(core.open_session("local", None, None));
        let hub = Hub::new(LISTENER_BUFFER);
        let events = broadcast::channel(SESSION_EVENTS).0;
        let publications = Arc::new(Publications::default());
        let pump = tokio::spawn(pump(
            session.clone(),
            hub.clone(),
            events.clone(),
            publications.clone(),
        ));
        Self {
            inner: Arc::new(Inner {
                session: Mutex::new(Some(session)),
                hub,
                events,
                pump: Mutex::new(Some(pump)),
                next_event_id: AtomicU64::new(1),
                publications,
            }),
        }
    }

    /// The broker's own client, the reference's `local_admin_client()`: on a secure
    /// broker its session is `_ADMIN`'s, with `_ADMIN`'s permissions (everything but
    /// `/_SYSTEM`, which only the security API reaches); [`LocalClient::new`] has no
    /// identity, so on a secure broker its requests are refused with 401.
    pub fn admin(core: &Core) -> Self {
        let client = Self::new(core);
        if let Some(security) = core.security()
            && let Ok(session) = client.session()
        {
            match security.trusted_identity(pathmq_core::security::ADMIN_USER, &session.facts()) {
                Ok(identity) => session.set_identity(identity),
                Err(error) => tracing::warn!(%error, "the local admin client has no identity"),
            }
        }
        client
    }

    /// The session's id; `None` once disconnected.
    pub fn session_id(&self) -> Option<SessionId> {
        self.session().ok().map(|s| s.id())
    }

    /// The session, while open.
    fn session(&self) -> Result<Arc<Session>, ClientError> {
        let session = lock(&self.inner.session).clone();
        match session {
            Some(session) if !self.inner.hub.is_closed() => Ok(session),
            _ => Err(ClientError::Closed),
        }
    }

    /// Runs a request through the core.
    async fn request(
        &self,
        action: &'static str,
        request: Request,
    ) -> Result<Response, ClientError> {
        let session = self.session()?;
        session
            .request(request)
            .await
            .map_err(|error| ClientError::from_core(action, error))
    }

    fn event_id(&self) -> u64 {
        self.inner.next_event_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// The error for a response of the wrong kind (a layer answered with one).
fn unexpected(action: &'static str, response: &Response) -> ClientError {
    ClientError::shape(format!("the core's answer to `{action}`: {response:?}"))
}

/// A core error about a path as the client's error.
fn bad_path(action: &'static str, error: pathmq_core::PathError) -> ClientError {
    ClientError::from_core(action, error.into())
}

/// The core query of a search (reference: SEARCH), read as the broker reads the wire's
/// `{criteria, options}`; `None` for no search.
///
/// # Errors
/// 400 ([`ClientError::Server`]) for criteria or options the query engine refuses.
fn query(action: &'static str, options: &GetOptions) -> Result<Option<Query>, ClientError> {
    if !options.is_search() {
        return Ok(None);
    }
    let wire = wire::get_options(options);
    Query::parse(wire.get("criteria"), wire.get("options"))
        .map(Some)
        .map_err(|error| ClientError::from_core(action, error.into()))
}

impl LocalClient {
    /// A `set` with request id `event_id`.
    async fn store<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        options: SetOptions,
        event_id: u64,
    ) -> Result<Item, ClientError> {
        let mut path = Path::parse(path).map_err(|e| bad_path("set", e))?;
        if options.sibling {
            path = path
                .child(&crate::data::sibling_id())
                .map_err(|e| bad_path("set", e))?;
        }
        let target_clients = match &options.target_clients {
            None => None,
            Some(ids) => Some(
                ids.iter()
                    .map(|id| {
                        id.parse::<SessionId>().map_err(|_| {
                            ClientError::InvalidArgument(format!("`{id}` is not a session id"))
                        })
                    })
                    .collect::<Result<Arc<[SessionId]>, _>>()?,
            ),
        };
        let mut value = serde_json::to_value(&data).map_err(|source| ClientError::Encode {
            action: "set",
            source,
        })?;
        // As over the wire: a `_meta` key is the protocol's, not data.
        if let Value::Object(object) = &mut value {
            object.remove("_meta");
        }
        // An increment's data is the gauge's name (as the happn-3 client sends it).
        let increment = match (options.increment, &value) {
            (None, _) => None,
            (Some(by), Value::String(gauge)) if !gauge.is_empty() => Some(Increment {
                gauge: gauge.clone(),
                by: wire::number(by).ok_or_else(|| {
                    ClientError::InvalidArgument(format!("{by} is not a finite number"))
                })?,
            }),
            (Some(_), other) => {
                return Err(ClientError::InvalidArgument(format!(
                    "an increment's data is its gauge's name, not {other}"
                )));
            }
        };
        let core_options = pathmq_core::SetOptions {
            merge: options.merge,
            no_publish: options.no_publish,
            no_store: options.no_store,
            consistency: options.consistency.unwrap_or_default(),
            meta: pathmq_core::without_reserved_keys(options.meta),
            qos: 1,
            event_id: Some(event_id),
            target_clients,
            tag: options.tag,
            increment: increment.clone(),
            properties: None,
        };
        let request = Request::Set {
            path,
            payload: Payload::json(&value),
            options: core_options,
        };
        match self.request("set", request).await? {
            Response::Set {
                record, published, ..
            } => {
                let mut item = Item::from_record(&record, published);
                // As the broker answers an increment: the gauge, `{gauge, value}`.
                if let Some(increment) = increment {
                    item.data = increment
                        .gauge_payload(&record.payload)
                        .as_json()
                        .unwrap_or_default();
                }
                Ok(item)
            }
            other => Err(unexpected("set", &other)),
        }
    }
}

#[pathmq_core::async_trait]
impl DataApi for LocalClient {
    async fn set<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        options: SetOptions,
    ) -> Result<Item, ClientError> {
        let event_id = self.event_id();
        self.store(path, data, options, event_id).await
    }

    async fn set_published<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        options: SetOptions,
    ) -> Result<(Item, Published), ClientError> {
        published_consistency(&options)?;
        let event_id = self.event_id();
        // Registered first: the core may report before `store` returns.
        let published = self.inner.publications.expect(event_id);
        match self.store(path, data, options, event_id).await {
            Ok(item) => Ok((item, published)),
            Err(error) => {
                self.inner.publications.forget(event_id);
                Err(error)
            }
        }
    }

    async fn publish<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        mut options: SetOptions,
    ) -> Result<(), ClientError> {
        options.no_store = true;
        self.set(path, data, options).await.map(drop)
    }

    async fn get(&self, path: &str) -> Result<Option<Item>, ClientError> {
        exact("get", path)?;
        let target = Glob::parse(path).map_err(|e| bad_path("get", e))?;
        match self.request("get", Request::Get { target }).await? {
            Response::Record(record) => Ok(record.map(|r| Item::from_record(&r, false))),
            other => Err(unexpected("get", &other)),
        }
    }

    async fn get_many(&self, glob: &str, options: GetOptions) -> Result<Vec<Item>, ClientError> {
        let target = Glob::parse(glob).map_err(|e| bad_path("get", e))?;
        let request = match query("get", &options)? {
            Some(query) => Request::Search { target, query },
            None => Request::Get { target },
        };
        match self.request("get", request).await? {
            Response::Records(records) => Ok(records
                .iter()
                .map(|r| Item::from_record(r, false))
                .collect()),
            Response::Record(record) => {
                Ok(record.iter().map(|r| Item::from_record(r, false)).collect())
            }
            other => Err(unexpected("get", &other)),
        }
    }

    async fn get_paths(&self, glob: &str) -> Result<Vec<String>, ClientError> {
        let target = Glob::parse(glob).map_err(|e| bad_path("get", e))?;
        let path = |r: &pathmq_core::Record| r.path.as_str().to_owned();
        match self.request("get", Request::Get { target }).await? {
            Response::Records(records) => Ok(records.iter().map(path).collect()),
            Response::Record(record) => Ok(record.iter().map(path).collect()),
            other => Err(unexpected("get", &other)),
        }
    }

    async fn count(&self, glob: &str, options: GetOptions) -> Result<u64, ClientError> {
        let target = Glob::parse(glob).map_err(|e| bad_path("count", e))?;
        // As the broker does: a count takes the criteria; sort and paging do not apply.
        let request = match query("count", &options)?.and_then(|q| q.criteria) {
            Some(criteria) => Request::CountMatching { target, criteria },
            None => Request::Count { target },
        };
        match self.request("count", request).await? {
            Response::Count(n) => Ok(n),
            other => Err(unexpected("count", &other)),
        }
    }

    async fn remove_many(&self, glob: &str, options: RemoveOptions) -> Result<u64, ClientError> {
        let target = Glob::parse(glob).map_err(|e| bad_path("remove", e))?;
        // Read as the broker reads the wire's `criteria`: `{}` (no condition) is none.
        let criteria = match &options.criteria {
            None => None,
            Some(criteria) => {
                Query::parse(Some(criteria), None)
                    .map_err(|error| ClientError::from_core("remove", error.into()))?
                    .criteria
            }
        };
        let (meta, event_id) = (
            pathmq_core::without_reserved_keys(options.meta),
            Some(self.event_id()),
        );
        let request = match criteria {
            Some(criteria) => Request::RemoveMatching {
                target,
                criteria,
                meta,
                event_id,
            },
            None => Request::Remove {
                target,
                meta,
                event_id,
                consistency: pathmq_core::Consistency::Transactional,
            },
        };
        match self.request("remove", request).await? {
            Response::Removed(n) => Ok(n),
            other => Err(unexpected("remove", &other)),
        }
    }

    async fn on(&self, path: &str, options: OnOptions) -> Result<Subscription, ClientError> {
        let pattern = Pattern::native(path).map_err(|e| bad_path("on", e))?;
        // Registered first: the pump may route an event before the core's answer is back.
        let mut subscription = self.inner.hub.register(path, &options)?;
        let depth = effective_depth(path, options.depth);
        let on = pathmq_core::OnOptions {
            filter: options.event_type,
            depth,
            qos: 1,
            channel: Some(subscription.channel().to_owned()),
            merge: options.merge,
            ..Default::default()
        };
        let request = Request::On {
            pattern: pattern.clone(),
            options: on,
        };
        let id = match self.request("on", request).await? {
            Response::Subscribed(id) => id,
            other => return Err(unexpected("on", &other)),
        };
        self.inner
            .hub
            .set_server_id(subscription.id(), subscription.channel(), id.0);
        if options.initial_callback || options.initial_emit {
            let session = self.session()?;
            // On failure the subscription is dropped, which removes it from the core.
            let records = session
                .initial_values(&pattern, depth)
                .await
                .map_err(|error| ClientError::from_core("on", error))?;
            let items = records
                .iter()
                .map(|r| Item::from_record(r, false))
                .collect();
            subscription.set_initial(items, options.initial_callback, options.initial_emit);
        }
        Ok(subscription)
    }

    async fn off(&self, id: ListenerId) -> Result<(), ClientError> {
        let Some(listener) = self.inner.hub.remove(id) else {
            return Ok(());
        };
        match listener.server_id {
            Some(server_id) => self.off_ids(&[server_id]).await,
            None => Ok(()),
        }
    }

    async fn off_path(&self, path: &str) -> Result<(), ClientError> {
        let removed = self
            .inner
            .hub
            .remove_where(|listener| wildcard_match(path, &listener.path));
        let ids: Vec<u64> = removed.iter().filter_map(|l| l.server_id).collect();
        self.off_ids(&ids).await
    }

    async fn off_all(&self) -> Result<(), ClientError> {
        self.inner.hub.remove_where(|_| true);
        self.request("off", Request::Off(Off::All)).await.map(drop)
    }

    fn session_events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    async fn disconnect(&self) -> Result<(), ClientError> {
        let session = lock(&self.inner.session).take();
        self.inner.hub.close();
        let pump = lock(&self.inner.pump).take();
        if let Some(pump) = pump {
            pump.abort();
            // Once it is stopped it holds the session no more.
            let _ = pump.await;
        }
        // The core ends the session when its last holder (a request in flight) lets go.
        drop(session);
        Ok(())
    }
}

impl LocalClient {
    /// Removes the core subscriptions `ids`.
    async fn off_ids(&self, ids: &[u64]) -> Result<(), ClientError> {
        for &id in ids {
            self.request("off", Request::Off(Off::Id(SubscriptionId(id))))
                .await?;
        }
        Ok(())
    }
}

/// The event task: delivers the session's events to the listeners, and removes the core
/// subscriptions of finished listeners. Ends when the core ends the session (reported as
/// [`SessionEvent::SessionEnded`]); the listener streams end with it.
async fn pump(
    session: Arc<Session>,
    hub: Arc<Hub>,
    events: broadcast::Sender<SessionEvent>,
    publications: Arc<Publications>,
) {
    loop {
        tokio::select! {
            // Finished listeners first: their core subscriptions go before the next
            // event is taken, so the core stops routing to them promptly.
            biased;
            () = hub.wake.notified() => {
                for doomed in hub.take_doomed() {
                    let off = Request::Off(Off::Id(SubscriptionId(doomed.server_id)));
                    if let Err(error) = session.request(off).await {
                        tracing::debug!(%error, "removing a finished listener's subscription failed");
                    }
                }
            }
            outbound = session.recv() => match outbound {
                Some(Outbound::Event { event, subscriptions }) => {
                    // One event per distinct channel, with the smallest depth among its
                    // subscriptions and the merge option of its first, as the broker
                    // sends frames (wire doc §6).
                    let mut channels: BTreeMap<&str, (Option<usize>, bool)> = BTreeMap::new();
                    for sub in subscriptions.iter() {
                        let Some(channel) = sub.options.channel.as_deref() else { continue };
                        let (depth, _) = channels
                            .entry(channel)
                            .or_insert((sub.options.depth, sub.options.merge));
                        *depth = match (*depth, sub.options.depth) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    let data = event_data(&event);
                    for (channel, (depth, merge)) in channels {
                        let data = match (&event.merge_input, merge) {
                            // A merge subscription gets the writer's input, not the record.
                            (Some(input), true) => Value::Object(input.to_native_value()),
                            _ => data.clone(),
                        };
                        hub.route_channel(local_event(&event, data, channel, depth));
                    }
                }
                Some(Outbound::Published(publication)) => {
                    if let Some(id) = publication.event_id {
                        publications.resolve(id, PublicationResults::from_core(&publication));
                    }
                }
                Some(Outbound::Close(reason)) => {
                    let _ = events.send(SessionEvent::SessionEnded { reason: reason.to_string() });
                    break;
                }
                Some(other) => tracing::debug!(?other, "ignoring an outbound message"),
                None => break,
            },
        }
    }
    hub.close();
}

/// An event's data as native clients see it: the native view of a set's payload,
/// `{"removed": N}` for a remove.
fn event_data(event: &CoreEvent) -> Value {
    match event.kind {
        EventKind::Set => Value::Object(event.payload.to_native_value()),
        EventKind::Remove => json!({ "removed": event.removed }),
    }
}

/// A core event as a listener on `channel` sees it.
fn local_event(event: &CoreEvent, data: Value, channel: &str, depth: Option<usize>) -> Event {
    let (created, modified) = match event.kind {
        EventKind::Set => (Some(event.created), Some(event.modified)),
        EventKind::Remove => (None, None),
    };
    Event {
        data,
        meta: EventMeta {
            kind: event.kind,
            path: event.path.as_str().to_owned(),
            channel: channel.to_owned(),
            created,
            modified,
            session_id: event.origin.map(|origin| origin.to_string()),
            consistency: Some(event.consistency),
            publication_id: event.publication_id.clone(),
            depth,
            custom: event.meta.clone().unwrap_or_default(),
            initial: false,
        },
    }
}
