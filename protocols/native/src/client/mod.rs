//! The Rust client of the native protocol: [`Client`] over the network (WebSocket or
//! length-prefixed TCP, DESIGN.md §5) and [`LocalClient`] inside the broker's process
//! (DESIGN.md §1, STYLE 24), with one API, the [`DataApi`] trait: the client API of
//! `reference/happn-3.md` (SET through SESSION AND CONNECTION EVENTS), typed.
//!
//! Code written against `DataApi` runs on either client:
//!
//! ```
//! use pathmq_core::Core;
//! use pathmq_native::client::{ClientError, DataApi, LocalClient, OnOptions, SetOptions};
//! use serde_json::json;
//!
//! /// Subscribes, writes, and reads the event back: the same over any client.
//! async fn thermostat(client: &impl DataApi) -> Result<f64, ClientError> {
//!     let mut changes = client.on("/rooms/*/temp", OnOptions::new()).await?;
//!     client.set("/rooms/kitchen/temp", 21.5, SetOptions::new()).await?;
//!     let event = changes.recv().await.ok_or(ClientError::Closed)?;
//!     // A non-object value is seen wrapped: `{"value": 21.5}` (DESIGN.md §4).
//!     Ok(event.data["value"].as_f64().unwrap_or_default())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ClientError> {
//! let core = Core::builder(pathmq_storage::MemoryStore::new()).build();
//! assert_eq!(thermostat(&LocalClient::admin(&core)).await?, 21.5);
//!
//! // Over the network, the same function, given a connected client:
//! # async fn remote() -> Result<(), ClientError> {
//! use pathmq_native::client::{Client, ClientConfig};
//! let client = Client::connect(ClientConfig::tcp("127.0.0.1:55001")).await?;
//! thermostat(&client).await?;
//! # Ok(())
//! # }
//! # Ok(())
//! # }
//! ```
//!
//! | module | job |
//! |---|---|
//! | `remote`, `config` | [`Client`] and its settings |
//! | `driver`, `link` | the remote client's connection task: heartbeats, answers by `eventId`, reconnects; its transports |
//! | `wire` | request frames out, responses and events in (no I/O) |
//! | `local` | [`LocalClient`]: requests to the core, events from its session |
//! | `listener` | [`Subscription`] streams and the routing of events to them |
//! | `options`, `item`, `event`, `error` | the values of the API |

mod config;
mod driver;
mod error;
mod event;
mod item;
mod link;
mod listener;
mod local;
mod options;
mod published;
mod remote;
mod wire;

use pathmq_core::async_trait;
use serde::Serialize;
use tokio::sync::broadcast;

pub use config::{ClientConfig, Credentials, Endpoint, ReconnectPolicy};
pub use error::{BoxError, ClientError};
pub use event::{Event, EventMeta, SessionEvent};
pub use item::{Item, Meta};
pub use listener::{ListenerId, Subscription};
pub use local::LocalClient;
pub use options::{GetOptions, OnOptions, QueryOptions, RemoveOptions, SetOptions};
pub use pathmq_core::{Consistency, EventFilter, EventKind};
pub use published::{PublicationResults, Published};
pub use remote::Client;

/// The client API, the same for a remote [`Client`] and an in-process [`LocalClient`]
/// (`reference/happn-3.md` SET through SESSION AND CONNECTION EVENTS).
///
/// Paths are `/`-separated (`/a/b`; DESIGN.md §3). In `get_many`, `get_paths`, `count`,
/// `remove` and `remove_many`, `*` is a glob over the rest of the path (`/a/*` is every
/// descendant of `/a`); in `on`, `*` is exactly one segment and a trailing `/**` every
/// descendant (up to [`OnOptions::depth`]).
///
/// Errors common to every call: [`ClientError::Server`] when the broker refuses (nothing
/// changed), [`ClientError::Timeout`] and [`ClientError::ConnectionLost`] (retry after
/// [`SessionEvent::ReconnectSuccessful`]) for a remote client, and
/// [`ClientError::Closed`] once the client is closed.
///
/// The trait has generic methods, so it is used as a bound (`impl DataApi`, `C:
/// DataApi`), not as `dyn DataApi`.
#[async_trait]
pub trait DataApi: Send + Sync {
    /// Stores `data` at `path` (no `*`) and publishes a set event (reference: SET). A
    /// JSON object is stored as itself; any other value is read back wrapped as
    /// `{"value": …}`; a `_meta` key in an object is dropped.
    ///
    /// Answers the stored record (merged, with [`SetOptions::merge`]) and its meta, with
    /// [`Meta::published`].
    ///
    /// # Errors
    /// [`ClientError::Encode`] when `data` is not JSON-encodable; 400 for a path with
    /// `*`; 413 for data over the broker's payload limit.
    async fn set<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        options: SetOptions,
    ) -> Result<Item, ClientError>;

    /// [`DataApi::set`] with consistency DEFERRED or ACKNOWLEDGED
    /// ([`SetOptions::consistency`]; reference: CONSISTENCY, `onPublished`): answers the
    /// stored record at once, and a [`Published`] whose
    /// [`results`](Published::results) come once the event is queued for its recipients
    /// (DEFERRED) or once every recipient acknowledged it or the broker's acknowledgement
    /// timeout passed (ACKNOWLEDGED).
    ///
    /// # Errors
    /// [`ClientError::InvalidArgument`] for another consistency (nothing is sent); as
    /// [`DataApi::set`].
    async fn set_published<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        options: SetOptions,
    ) -> Result<(Item, Published), ClientError>;

    /// Publishes `data` on `path` without storing it (reference: PUBLISH): subscribers
    /// get a set event; nothing is stored and nothing is answered but success.
    ///
    /// # Errors
    /// As [`DataApi::set`].
    async fn publish<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        options: SetOptions,
    ) -> Result<(), ClientError>;

    /// Stores `data` at a new unique child of `path`, `<path>/<short id>` (reference:
    /// SET SIBLING); the answer's meta says where.
    ///
    /// # Errors
    /// As [`DataApi::set`].
    async fn set_sibling<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        options: SetOptions,
    ) -> Result<Item, ClientError> {
        let mut options = options;
        options.sibling = true;
        self.set(path, data, options).await
    }

    /// Adds `by` (negative to decrement) to the gauge `gauge` stored at `path`
    /// (reference: INCREMENT; happn-3's default gauge is `"counter"`). Subscribers get
    /// `{gauge, value}`; the answer's data is `{gauge, value}` too.
    ///
    /// # Errors
    /// [`ClientError::InvalidArgument`] for a `by` that is not finite or an empty
    /// `gauge`; 400 when the stored value is not an object of gauges; as
    /// [`DataApi::set`].
    async fn increment(&self, path: &str, gauge: &str, by: f64) -> Result<Item, ClientError> {
        if !by.is_finite() {
            return Err(ClientError::InvalidArgument(format!(
                "an increment must be a finite number, not {by}"
            )));
        }
        if gauge.is_empty() {
            return Err(ClientError::InvalidArgument(
                "an increment needs a gauge name".into(),
            ));
        }
        let mut options = SetOptions::new();
        options.increment = Some(by);
        self.set(path, gauge.to_owned(), options).await
    }

    /// The record at `path`, an exact path (reference: GET); `None` when there is none.
    ///
    /// # Errors
    /// [`ClientError::InvalidArgument`] for a path with `*` (use [`DataApi::get_many`]).
    async fn get(&self, path: &str) -> Result<Option<Item>, ClientError>;

    /// Every record `glob` matches, ordered by path, optionally searched (reference: GET,
    /// SEARCH). An exact path gives its record or none.
    ///
    /// # Errors
    /// 400 for an empty path or criteria the query engine refuses (an unknown operator
    /// is named).
    async fn get_many(&self, glob: &str, options: GetOptions) -> Result<Vec<Item>, ClientError>;

    /// The paths of every record `glob` matches, ordered (reference: `getPaths`).
    ///
    /// # Errors
    /// 400 for an empty path.
    async fn get_paths(&self, glob: &str) -> Result<Vec<String>, ClientError>;

    /// How many records `glob` matches, optionally searched.
    ///
    /// # Errors
    /// As [`DataApi::get_many`].
    async fn count(&self, glob: &str, options: GetOptions) -> Result<u64, ClientError>;

    /// Removes the record at `path`, or every record a glob matches, publishing a remove
    /// event for each (reference: DELETE / REMOVE). Answers how many were removed.
    ///
    /// # Errors
    /// 400 for an empty path; 500 when the store failed (nothing was removed).
    async fn remove(&self, path: &str) -> Result<u64, ClientError> {
        self.remove_many(path, RemoveOptions::new()).await
    }

    /// [`DataApi::remove`] with options: only the records `glob` matches that meet
    /// [`RemoveOptions::criteria`] (mongo-style, as in a search), with
    /// [`RemoveOptions::meta`] in the `_meta` of each remove event (reference: DELETE /
    /// REMOVE with `options.criteria`, EVENTS WITH CUSTOM META). Answers how many were
    /// removed.
    ///
    /// The search and the removals are not one transaction: a record changed in between
    /// is removed as it was found.
    ///
    /// # Errors
    /// 400 for an empty path or criteria the query engine refuses (an unknown operator is
    /// named; nothing was removed); 500 when the store failed (records removed before
    /// the failure stay removed, and their events were published).
    async fn remove_many(&self, glob: &str, options: RemoveOptions) -> Result<u64, ClientError>;

    /// Listens on `path` (reference: EVENTS). The [`Subscription`] is a stream of the
    /// events from the moment this returns (and, with [`OnOptions::initial_emit`], the
    /// matching records first); it ends after [`OnOptions::count`] events, on `off`, or
    /// when the client closes; dropping it unsubscribes.
    ///
    /// # Errors
    /// 400 for an invalid pattern (`**` not last). No listener is left behind.
    async fn on(&self, path: &str, options: OnOptions) -> Result<Subscription, ClientError>;

    /// [`DataApi::on`] for one event: the stream ends after it.
    ///
    /// # Errors
    /// As [`DataApi::on`].
    async fn once(&self, path: &str, options: OnOptions) -> Result<Subscription, ClientError> {
        self.on(path, options.count(1)).await
    }

    /// [`DataApi::on`] for every path (`*`, the channel `/ALL@*` with the default event
    /// type).
    ///
    /// # Errors
    /// As [`DataApi::on`].
    async fn on_all(&self, options: OnOptions) -> Result<Subscription, ClientError> {
        self.on("*", options).await
    }

    /// Removes listener `id` (its stream ends). Removing a listener that is already gone
    /// does nothing.
    ///
    /// # Errors
    /// Those of the request to the broker; the listener is removed on the client
    /// whatever happens.
    async fn off(&self, id: ListenerId) -> Result<(), ClientError>;

    /// Removes every listener whose path matches `path`, where `*` matches anything
    /// (reference: UNSUBSCRIBING FROM EVENTS, `offPath`).
    ///
    /// # Errors
    /// As [`DataApi::off`].
    async fn off_path(&self, path: &str) -> Result<(), ClientError>;

    /// Removes every listener.
    ///
    /// # Errors
    /// As [`DataApi::off`].
    async fn off_all(&self) -> Result<(), ClientError>;

    /// The connection and session events from now on: [`SessionEvent::SessionEnded`],
    /// [`SessionEvent::ReconnectScheduled`], [`SessionEvent::ReconnectSuccessful`]. A
    /// receiver that falls behind loses the oldest (`RecvError::Lagged`).
    fn session_events(&self) -> broadcast::Receiver<SessionEvent>;

    /// Closes the client: the connection (or in-process session) ends, listener streams
    /// end, and later calls fail with [`ClientError::Closed`]. Closing twice does
    /// nothing.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for transports that report a failed close.
    async fn disconnect(&self) -> Result<(), ClientError>;
}
