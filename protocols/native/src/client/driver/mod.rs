//! The connection task of a remote [`Client`](super::Client) (STYLE 12: one struct, one
//! `run` loop). It owns the socket's reading half (the writing half is with a writer task,
//! [`spawn_writer`](super::link::spawn_writer)); answers the broker's heartbeats (`"primus::ping::<ms>"` →
//! `"primus::pong::<ms>"`, wire doc §1); hands each response to the call waiting for its
//! `eventId`; routes events to listeners; and reports `server-side-disconnect`.
//!
//! A lost connection is re-established as the happn-3 client does it
//! (`reference/happn-3.md` SESSION AND CONNECTION EVENTS): after a backoff, a new socket,
//! `configure-session`, `login`, then `on` again for every live listener (their broker ids
//! change, their [`ListenerId`](super::ListenerId)s do not), then `ReconnectSuccessful`.
//! Calls made meanwhile fail at once with [`ClientError::ConnectionLost`].
//!
//! The task ends when every [`Client`](super::Client) handle is dropped, on `disconnect`,
//! or when reconnecting is off or given up: then listener streams end and calls fail with
//! [`ClientError::Closed`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use pathmq_core::Consistency;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::ClientConfig;
use super::link::Reader;
use super::listener::Hub;
use super::wire::{self, Inbound};
use super::{ClientError, SessionEvent};

mod handshake;

/// Frames queued for the writer task, at most; beyond, the connection task waits.
const OUT_QUEUE: usize = 256;
/// How long closing a connection may take (flushing, the close frame).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Session events kept for a receiver of `session_events` that has not read them yet; a
/// receiver further behind loses the oldest (broadcast semantics).
const SESSION_EVENTS: usize = 64;

/// The client is connected and logged in.
const CONNECTED: u8 = 0;
/// The connection was lost; a new one is being made.
const RECONNECTING: u8 = 1;
/// The client is closed for good.
const CLOSED: u8 = 2;

/// What a [`Client`](super::Client) handle asks of the connection task.
pub(crate) enum Command {
    /// Send a request and hand its response to `reply`.
    Request {
        /// The request's `eventId`.
        id: u64,
        /// Its action, for errors.
        action: &'static str,
        /// Its JSON text.
        frame: Bytes,
        /// Where the response goes.
        reply: oneshot::Sender<Result<Value, ClientError>>,
    },
    /// Signal `done` once the client is closed (after cancelling [`Shared::closing`]).
    Disconnect(oneshot::Sender<()>),
}

/// A request encoded with its `eventId`.
pub(crate) struct Encoded {
    pub(crate) id: u64,
    pub(crate) action: &'static str,
    pub(crate) frame: Bytes,
}

/// What the client handles and the connection task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ClientConfig,
    pub(crate) hub: Arc<Hub>,
    pub(crate) events: broadcast::Sender<SessionEvent>,
    /// Cancelled when the client is to close (`disconnect`, or the last handle dropped):
    /// the task stops whatever it is doing, even mid-reconnect.
    pub(crate) closing: CancellationToken,
    state: AtomicU8,
    next_id: AtomicU64,
    session_id: Mutex<Option<String>>,
    /// The token of the last login, if the broker answered one.
    token: Mutex<Option<String>>,
    /// Set by a logout: the configured token is revoked too.
    token_revoked: std::sync::atomic::AtomicBool,
    /// Writes waiting for their publication results.
    pub(crate) publications: super::published::Publications,
}

impl Shared {
    pub(crate) fn new(config: ClientConfig) -> Self {
        Self {
            hub: Hub::new(config.listener_buffer),
            events: broadcast::channel(SESSION_EVENTS).0,
            closing: CancellationToken::new(),
            config,
            state: AtomicU8::new(CONNECTED),
            next_id: AtomicU64::new(1),
            session_id: Mutex::new(None),
            token: Mutex::new(None),
            token_revoked: std::sync::atomic::AtomicBool::new(false),
            publications: Default::default(),
        }
    }

    /// Whether calls may be sent now.
    ///
    /// # Errors
    /// [`ClientError::Closed`], or [`ClientError::ConnectionLost`] while reconnecting.
    pub(crate) fn ready(&self, action: &'static str) -> Result<(), ClientError> {
        match self.state.load(Ordering::Acquire) {
            CONNECTED => Ok(()),
            RECONNECTING => Err(ClientError::ConnectionLost { action }),
            _ => Err(ClientError::Closed),
        }
    }

    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }

    /// The current session's id.
    pub(crate) fn session_id(&self) -> Option<String> {
        self.session_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The token of the last login (secure brokers answer one).
    pub(crate) fn token(&self) -> Option<String> {
        self.token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// After a logout: reconnects no longer log in with the configured token.
    pub(crate) fn forget_configured_token(&self) {
        self.token_revoked.store(true, Ordering::Release);
    }

    /// Whether a reconnect may log in with a token (none was revoked by a logout).
    pub(crate) fn token_usable(&self) -> bool {
        !self.token_revoked.load(Ordering::Acquire)
    }

    /// Records the token a login answered (none on an insecure broker).
    pub(crate) fn set_token(&self, token: Option<String>) {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = token;
    }

    /// Encodes a request under a fresh `eventId`.
    ///
    /// # Errors
    /// [`ClientError::Encode`] when `data` cannot be encoded.
    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        action: &'static str,
        path: Option<&str>,
        data: Option<&T>,
        options: &Map<String, Value>,
    ) -> Result<Encoded, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::request(id, action, path, data, options)
            .map_err(|source| ClientError::Encode { action, source })?;
        Ok(Encoded { id, action, frame })
    }
}

/// Who waits for a response.
enum Pending {
    /// A call.
    Caller {
        action: &'static str,
        reply: oneshot::Sender<Result<Value, ClientError>>,
    },
    /// The task itself, while establishing a connection ([`Driver::exchange`]).
    Collect,
    /// Nobody: an `off` for a finished listener; a failure is only logged.
    Off,
    /// Nobody: the `ack` of an event of consistency ACKNOWLEDGED.
    Ack,
}

/// Why serving a connection stopped.
enum End {
    /// The connection is gone; reconnect if allowed.
    Lost(String),
    /// The client is to close (`disconnect`, or every handle dropped).
    Closed,
}

/// The writer task of a connection; dropping this stops it.
struct WriterTask(JoinHandle<()>);

impl Drop for WriterTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One open connection.
pub(crate) struct Conn {
    reader: Reader,
    out: mpsc::Sender<Bytes>,
    writer: WriterTask,
    /// When the broker last sent anything.
    last_heard: Instant,
}

impl Conn {
    async fn send(&self, frame: Bytes) -> Result<(), End> {
        self.out
            .send(frame)
            .await
            .map_err(|_| End::Lost("the connection could not be written to".into()))
    }

    /// Closes the connection: the writer flushes what is queued, then closes the socket.
    async fn close(self) {
        let Self {
            out, mut writer, ..
        } = self;
        drop(out);
        if tokio::time::timeout(CLOSE_TIMEOUT, &mut writer.0)
            .await
            .is_err()
        {
            tracing::debug!("closing the connection timed out");
        }
    }
}

/// The connection task.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    pending: HashMap<u64, Pending>,
    /// The size of `pending` at which answers nobody waits for any more are pruned.
    prune_at: usize,
    /// The broker said `primus::server::close`: do not reconnect.
    server_closed: bool,
    /// Who asked to disconnect, to be told when it is done.
    disconnecting: Vec<oneshot::Sender<()>>,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, commands: mpsc::Receiver<Command>) -> Self {
        Self {
            shared,
            commands,
            pending: HashMap::new(),
            prune_at: 1024,
            server_closed: false,
            disconnecting: Vec::new(),
        }
    }

    /// Runs the connection until the client closes, reconnecting when it is lost.
    pub(crate) async fn run(mut self, mut conn: Conn) {
        loop {
            match self.serve(&mut conn).await {
                End::Closed => {
                    conn.close().await;
                    break;
                }
                End::Lost(reason) => {
                    tracing::info!(%reason, endpoint = %self.shared.config.endpoint, "connection lost");
                    drop(conn);
                    self.shared.set_state(RECONNECTING);
                    self.fail_pending(|action| ClientError::ConnectionLost { action });
                    self.shared.hub.reset_server_ids();
                    if self.server_closed || !self.shared.config.reconnect.enabled {
                        break;
                    }
                    match self.reconnect().await {
                        Some(new) => conn = new,
                        None => break,
                    }
                    // Connected before the event: a call made on hearing it must work.
                    self.shared.set_state(CONNECTED);
                    let session_id = self.shared.session_id().unwrap_or_default();
                    tracing::info!(%session_id, "reconnected");
                    let _ = self
                        .shared
                        .events
                        .send(SessionEvent::ReconnectSuccessful { session_id });
                }
            }
        }
        self.finish();
    }

    /// Serves one connection until it is lost or the client closes.
    async fn serve(&mut self, conn: &mut Conn) -> End {
        let ping_timeout = self.shared.config.ping_timeout;
        loop {
            let silent_until = conn.last_heard + ping_timeout;
            let step = tokio::select! {
                () = self.shared.closing.cancelled() => Err(End::Closed),
                command = self.commands.recv() => self.command(conn, command).await,
                frame = conn.reader.next() => match frame {
                    None => Err(End::Lost("closed by the broker".into())),
                    Some(Err(error)) => Err(End::Lost(error.to_string())),
                    Some(Ok(bytes)) => self.dispatch(conn, &bytes).await.map(drop),
                },
                () = self.shared.hub.wake.notified() => self.send_doomed(conn).await,
                () = tokio::time::sleep_until(silent_until), if !ping_timeout.is_zero() => {
                    Err(End::Lost(format!(
                        "nothing from the broker for {} ms (ping timeout)",
                        ping_timeout.as_millis()
                    )))
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Takes a command from a client handle.
    async fn command(&mut self, conn: &Conn, command: Option<Command>) -> Result<(), End> {
        match command {
            None => Err(End::Closed),
            Some(Command::Disconnect(done)) => {
                self.disconnecting.push(done);
                Err(End::Closed)
            }
            Some(Command::Request {
                id,
                action,
                frame,
                reply,
            }) => {
                // The caller gave up (timed out) before the request left: do not send it.
                if reply.is_closed() {
                    return Ok(());
                }
                self.track(id, Pending::Caller { action, reply });
                conn.send(frame).await
            }
        }
    }

    /// Remembers who waits for the answer to `id`; now and then forgets callers that
    /// stopped waiting (timed out), whose answers never came.
    fn track(&mut self, id: u64, pending: Pending) {
        if self.pending.len() >= self.prune_at {
            self.pending.retain(|_, p| match p {
                Pending::Caller { reply, .. } => !reply.is_closed(),
                Pending::Collect | Pending::Off | Pending::Ack => true,
            });
            self.prune_at = (2 * self.pending.len()).max(1024);
        }
        self.pending.insert(id, pending);
    }

    /// Handles one inbound frame. A response the task itself waits for
    /// ([`Pending::Collect`]) is returned.
    async fn dispatch(
        &mut self,
        conn: &mut Conn,
        bytes: &[u8],
    ) -> Result<Option<(u64, Value)>, End> {
        conn.last_heard = Instant::now();
        let inbound = match wire::classify(bytes) {
            Ok(inbound) => inbound,
            Err(error) => {
                tracing::warn!(%error, "ignoring a frame that is not JSON");
                return Ok(None);
            }
        };
        match inbound {
            Inbound::Ping(stamp) => conn.send(wire::pong(&stamp)).await?,
            Inbound::ServerClose => {
                tracing::info!("the broker closed the session for good; not reconnecting");
                self.server_closed = true;
            }
            Inbound::Response(id, frame) => match self.pending.remove(&id) {
                Some(Pending::Caller { reply, .. }) => {
                    let _ = reply.send(Ok(frame));
                }
                Some(Pending::Collect) => return Ok(Some((id, frame))),
                Some(Pending::Off) => {
                    if let Err(error) = wire::check("off", frame) {
                        tracing::debug!(%error, "removing a finished listener's subscription failed");
                    }
                }
                Some(Pending::Ack) => {}
                None => tracing::debug!(id, "an answer nobody waits for (timed out?)"),
            },
            Inbound::Event(frame) => match wire::event(frame) {
                Some(event) => {
                    // Consistency ACKNOWLEDGED: the writer waits for every recipient's
                    // `ack` (reference: CONSISTENCY), sent as the event arrives.
                    let ack = (event.meta.consistency == Some(Consistency::Acknowledged))
                        .then(|| event.meta.publication_id.clone())
                        .flatten();
                    self.shared.hub.route_channel(event);
                    if let Some(id) = ack
                        && let Ok(request) =
                            self.shared
                                .encode("ack", None, Some(&Value::String(id)), &Map::new())
                    {
                        self.track(request.id, Pending::Ack);
                        conn.send(request.frame).await?;
                    }
                }
                None => tracing::warn!("ignoring an event frame without its meta"),
            },
            Inbound::Publication(id, frame) => {
                let results = super::published::PublicationResults::from_frame(&frame);
                self.shared.publications.resolve(id, results);
            }
            Inbound::Disconnect(reason) => {
                tracing::info!(%reason, "the broker ended the session");
                let _ = self
                    .shared
                    .events
                    .send(SessionEvent::SessionEnded { reason });
            }
            Inbound::Other(frame) => tracing::trace!(%frame, "ignoring a frame"),
        }
        Ok(None)
    }

    /// Removes the broker subscriptions of finished listeners.
    async fn send_doomed(&mut self, conn: &Conn) -> Result<(), End> {
        for doomed in self.shared.hub.take_doomed() {
            let options = wire::reference(doomed.server_id);
            let Ok(off) = self
                .shared
                .encode::<Value>("off", Some(&doomed.channel), None, &options)
            else {
                continue;
            };
            self.track(off.id, Pending::Off);
            conn.send(off.frame).await?;
        }
        Ok(())
    }

    /// Tries to connect again with backoff; `None` when the client is to close instead
    /// (disconnect, handles dropped, attempts exhausted, login refused).
    async fn reconnect(&mut self) -> Option<Conn> {
        let policy = self.shared.config.reconnect;
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            if policy.max_attempts.is_some_and(|max| attempt > max) {
                tracing::warn!(attempts = attempt - 1, "giving up reconnecting");
                return None;
            }
            let delay = policy.delay(attempt);
            let _ = self
                .shared
                .events
                .send(SessionEvent::ReconnectScheduled { attempt, delay });
            if !self.wait(delay).await {
                return None;
            }
            let closing = self.shared.closing.clone();
            let established = tokio::select! {
                () = closing.cancelled() => return None,
                established = self.establish() => established,
            };
            match established {
                Ok(conn) => return Some(conn),
                Err(error) if matches!(error.code(), Some(401 | 403)) => {
                    tracing::warn!(%error, "login refused; not reconnecting");
                    return None;
                }
                Err(error) => tracing::info!(attempt, %error, "reconnecting failed"),
            }
        }
    }

    /// Waits `delay`, failing the calls that come meanwhile; `false` when the client is
    /// to close instead.
    async fn wait(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = self.shared.closing.cancelled() => return false,
                () = &mut sleep => return true,
                command = self.commands.recv() => match command {
                    None => return false,
                    Some(Command::Disconnect(done)) => {
                        self.disconnecting.push(done);
                        return false;
                    }
                    Some(Command::Request { action, reply, .. }) => {
                        let _ = reply.send(Err(ClientError::ConnectionLost { action }));
                    }
                },
            }
        }
    }

    /// Fails every call waiting for an answer with `error`.
    fn fail_pending(&mut self, error: impl Fn(&'static str) -> ClientError) {
        self.shared.publications.fail_all();
        for (_, pending) in self.pending.drain() {
            if let Pending::Caller { action, reply } = pending {
                let _ = reply.send(Err(error(action)));
            }
        }
    }

    /// Closes the client for good: listener streams end, waiting and queued calls fail
    /// with [`ClientError::Closed`], later ones too.
    fn finish(&mut self) {
        self.shared.set_state(CLOSED);
        self.shared.hub.close();
        self.fail_pending(|_| ClientError::Closed);
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Request { reply, .. } => {
                    let _ = reply.send(Err(ClientError::Closed));
                }
                Command::Disconnect(done) => self.disconnecting.push(done),
            }
        }
        for done in self.disconnecting.drain(..) {
            let _ = done.send(());
        }
        tracing::debug!(endpoint = %self.shared.config.endpoint, "client closed");
    }
}
