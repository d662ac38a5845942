//! [`Client`]: the native protocol over the network, WebSocket or length-prefixed TCP
//! (DESIGN.md §5), with the API of the happn-3 client (`reference/happn-3.md` SET
//! through SESSION AND CONNECTION EVENTS) as [`DataApi`].
//!
//! A `Client` is a cheap handle (clone it freely) onto one connection task
//! ([`super::driver`]), which owns the socket. Each call encodes its request in the
//! caller's task, with a fresh `eventId`, queues it for the connection (a bounded queue:
//! callers wait when it is full) and waits for the answer under the request timeout.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::config::{ClientConfig, Endpoint};
use super::driver::{Command, Driver, Encoded, Shared};
use super::listener::wildcard_match;
use super::published::{Published, published_consistency};
use super::{
    ClientError, DataApi, GetOptions, Item, ListenerId, OnOptions, RemoveOptions, SessionEvent,
    SetOptions, Subscription, wire,
};

/// Requests queued for the connection task, at most; beyond, callers wait (backpressure).
const COMMAND_QUEUE: usize = 1024;

/// A client of a remote broker over the native protocol.
///
/// Cheap to clone: clones share one connection. Dropping the last clone closes the
/// connection (its task ends; listener streams end). See [`DataApi`] for the calls.
///
/// ```no_run
/// use pathmq_native::client::{Client, ClientConfig, DataApi, SetOptions};
/// use serde_json::json;
///
/// # async fn run() -> Result<(), pathmq_native::client::ClientError> {
/// let client = Client::connect(ClientConfig::websocket("ws://127.0.0.1:55000/")).await?;
/// let item = client.set("/sensors/kitchen", json!({"temp": 21.5}), SetOptions::new()).await?;
/// assert_eq!(item.meta.path, "/sensors/kitchen");
/// client.disconnect().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    _guard: Arc<CloseOnDrop>,
}

/// Closes the client when the last [`Client`] clone is dropped, even while its task is
/// busy reconnecting (STYLE 16).
#[derive(Debug)]
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.closing.cancel();
    }
}

impl Client {
    /// Connects, and logs in (`configure-session`, then `login` with the configured
    /// credentials, or none), within `config.connect_timeout`. Must be called within a
    /// Tokio runtime: the connection task is spawned on it.
    ///
    /// # Errors
    /// [`ClientError::Connect`], whose source says why: the socket or WebSocket upgrade
    /// failed or timed out, or the broker refused the login ([`ClientError::Server`],
    /// e.g. 401). Nothing is left open.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let endpoint = config.endpoint.to_string();
        let shared = Arc::new(Shared::new(config));
        let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
        let mut driver = Driver::new(shared.clone(), queue);
        let conn = driver.establish().await.map_err(|error| match error {
            connect @ ClientError::Connect { .. } => connect,
            other => ClientError::Connect {
                endpoint,
                source: Box::new(other),
            },
        })?;
        tokio::spawn(driver.run(conn));
        Ok(Self {
            _guard: Arc::new(CloseOnDrop(shared.clone())),
            shared,
            commands,
        })
    }

    /// Where the client connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared.config.endpoint
    }

    /// The id of the current session (it changes with each reconnect).
    pub fn session_id(&self) -> Option<String> {
        self.shared.session_id()
    }

    /// The token the broker answered at the last login (`None` on a broker with security
    /// off): for HTTP requests (`Authorization: Bearer`), MQTT (as the password) or
    /// another client ([`ClientConfig::token`]). Never logged.
    pub fn token(&self) -> Option<String> {
        self.shared.token()
    }

    /// Logs out for good (`revoke-token`, what the happn-3 client's `logout()` sends):
    /// the session's token is revoked, and the broker ends every session using it, this
    /// one included (the client then reconnects only if it has a password to log in
    /// with).
    ///
    /// # Errors
    /// [`ClientError::Server`] 400 on a broker with security off, 401 without a token
    /// login; as any call.
    pub async fn logout(&self) -> Result<(), ClientError> {
        let request = self
            .shared
            .encode::<Value>("revoke-token", None, None, &Map::new())?;
        self.call(request).await?;
        // Revoked: a reconnect must not offer it again (it logs in with `credentials`,
        // if any).
        self.shared.set_token(None);
        self.shared.forget_configured_token();
        Ok(())
    }

    /// Sends a request and waits for its answer, which must say `status: 'ok'`.
    async fn call(&self, request: Encoded) -> Result<Value, ClientError> {
        let Encoded { id, action, frame } = request;
        self.shared.ready(action)?;
        let timeout = self.shared.config.request_timeout;
        let (reply, answer) = oneshot::channel();
        let exchange = async {
            let command = Command::Request {
                id,
                action,
                frame,
                reply,
            };
            self.commands
                .send(command)
                .await
                .map_err(|_| ClientError::Closed)?;
            answer.await.map_err(|_| ClientError::Closed)?
        };
        let frame = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout { action, timeout })??;
        wire::check(action, frame)
    }

    /// Encodes and sends a request without data.
    async fn ask(
        &self,
        action: &'static str,
        path: &str,
        options: &Map<String, Value>,
    ) -> Result<Value, ClientError> {
        self.call(
            self.shared
                .encode::<Value>(action, Some(path), None, options)?,
        )
        .await
    }
}

#[pathmq_core::async_trait]
impl DataApi for Client {
    async fn set<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        options: SetOptions,
    ) -> Result<Item, ClientError> {
        let request =
            self.shared
                .encode("set", Some(path), Some(&data), &wire::set_options(&options))?;
        let answer = self.call(request).await?;
        wire::item("set", answer)?.ok_or_else(|| ClientError::shape("the answer to `set`: no data"))
    }

    async fn set_published<T: Serialize + Send>(
        &self,
        path: &str,
        data: T,
        options: SetOptions,
    ) -> Result<(Item, Published), ClientError> {
        published_consistency(&options)?;
        let request =
            self.shared
                .encode("set", Some(path), Some(&data), &wire::set_options(&options))?;
        let id = request.id;
        // Registered first: the `publication-ack` follows the answer closely.
        let published = self.shared.publications.expect(id);
        let item = async {
            let answer = self.call(request).await?;
            wire::item("set", answer)?
                .ok_or_else(|| ClientError::shape("the answer to `set`: no data"))
        };
        match item.await {
            Ok(item) => Ok((item, published)),
            Err(error) => {
                self.shared.publications.forget(id);
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
        let request =
            self.shared
                .encode("set", Some(path), Some(&data), &wire::set_options(&options))?;
        self.call(request).await.map(drop)
    }

    async fn get(&self, path: &str) -> Result<Option<Item>, ClientError> {
        exact("get", path)?;
        wire::item("get", self.ask("get", path, &Map::new()).await?)
    }

    async fn get_many(&self, glob: &str, options: GetOptions) -> Result<Vec<Item>, ClientError> {
        let answer = self.ask("get", glob, &wire::get_options(&options)).await?;
        wire::items("get", answer)
    }

    async fn get_paths(&self, glob: &str) -> Result<Vec<String>, ClientError> {
        let answer = self.ask("get", glob, &wire::path_only()).await?;
        Ok(wire::items("get", answer)?
            .into_iter()
            .map(|item| item.meta.path)
            .collect())
    }

    async fn count(&self, glob: &str, options: GetOptions) -> Result<u64, ClientError> {
        let answer = self
            .ask("count", glob, &wire::get_options(&options))
            .await?;
        wire::count("count", answer, "value")
    }

    async fn remove_many(&self, glob: &str, options: RemoveOptions) -> Result<u64, ClientError> {
        let answer = self
            .ask("remove", glob, &wire::remove_options(&options))
            .await?;
        wire::count("remove", answer, "removed")
    }

    async fn on(&self, path: &str, options: OnOptions) -> Result<Subscription, ClientError> {
        // Registered first: an event may come before the answer (wire doc §6).
        let mut subscription = self.shared.hub.register(path, &options)?;
        let answer = self
            .ask(
                "on",
                subscription.channel(),
                &wire::on_options(&options, true),
            )
            .await?;
        let (server_id, initial) = wire::subscribed(answer)?;
        self.shared
            .hub
            .set_server_id(subscription.id(), subscription.channel(), server_id);
        subscription.set_initial(initial, options.initial_callback, options.initial_emit);
        Ok(subscription)
    }

    async fn off(&self, id: ListenerId) -> Result<(), ClientError> {
        let Some(listener) = self.shared.hub.remove(id) else {
            return Ok(());
        };
        match listener.server_id {
            Some(server_id) => self
                .ask("off", &listener.channel, &wire::reference(server_id))
                .await
                .map(drop),
            // Its `on` is in flight: that call removes the broker subscription it made.
            None => Ok(()),
        }
    }

    async fn off_path(&self, path: &str) -> Result<(), ClientError> {
        let removed = self
            .shared
            .hub
            .remove_where(|listener| wildcard_match(path, &listener.path));
        // Every listener of a channel has the channel's path: remove them all at once.
        let channels: BTreeSet<String> = removed.into_iter().map(|l| l.channel).collect();
        for channel in channels {
            self.ask("off", &channel, &Map::new()).await?;
        }
        Ok(())
    }

    async fn off_all(&self) -> Result<(), ClientError> {
        self.shared.hub.remove_where(|_| true);
        self.ask("off", "*", &Map::new()).await.map(drop)
    }

    fn session_events(&self) -> broadcast::Receiver<SessionEvent> {
        self.shared.events.subscribe()
    }

    async fn disconnect(&self) -> Result<(), ClientError> {
        self.shared.closing.cancel();
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Disconnect(done)).await.is_ok() {
            // The task answers once the connection is closed (or drops `done` as it ends).
            let _ = closed.await;
        }
        Ok(())
    }
}

/// Refuses a wildcard where an exact path is needed.
///
/// # Errors
/// [`ClientError::InvalidArgument`] for a path with `*`.
pub(crate) fn exact(action: &str, path: &str) -> Result<(), ClientError> {
    if path.contains('*') {
        return Err(ClientError::InvalidArgument(format!(
            "`{action}` takes an exact path, not `{path}`; use `get_many` for a wildcard"
        )));
    }
    Ok(())
}
