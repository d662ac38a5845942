//! One native connection: a struct with one `run` loop (STYLE 12) that `select!`s over
//! inbound frames, the answers of requests in flight, the session's outbound queue, the
//! heartbeat timer and shutdown.
//!
//! Requests are pipelined: up to `NativeConfig::max_in_flight` of a connection run at
//! once, started in the order they arrive and answered in that order; [`crate::inflight`]
//! holds the rule that keeps their effects in the client's order. At the limit no frame
//! is read: the client's own socket buffer fills and it waits (backpressure).
//!
//! Writes are batched: whatever wakes the loop (a frame, an answer, an event, a tick), it
//! then takes every other answer and event that is ready without waiting, up to
//! [`WRITE_BATCH`] frames, and writes them all with one flush. Events wait in the
//! session's bounded queue meanwhile (the core's overflow policy applies).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use pathmq_core::{Core, Outbound};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::NativeConfig;
use crate::envelope::{self, Inbound};
use crate::error::TransportError;
use crate::frame;
use crate::heartbeat::{Beat, Heartbeat};
use crate::inflight::InFlight;
use crate::session::{Handled, NativeSession};
use crate::transport::{Incoming, Transport};

/// Frames read in one go when they are already here (in the read buffer or the socket),
/// before the loop looks at anything else.
const READ_BATCH: usize = 64;

/// Frames gathered for one write: a burst of events or answers is written and flushed at
/// once, and a long one is still interleaved with reading.
const WRITE_BATCH: usize = 512;

/// An outbound frame list that grew beyond this many entries is freed after its write, so
/// a burst does not leave its memory with an idle connection.
const KEEP_OUT: usize = 64;

/// Why the loop ended, and so what the client is told.
#[derive(Debug)]
enum End {
    /// The server ends the session on purpose: tell the client why, then close.
    Server(String),
    /// The client stopped answering heartbeats: close without a word (it is not there to
    /// read one), so that it reconnects if it comes back.
    Unresponsive,
    /// The client closed the connection.
    PeerClosed,
    /// The transport failed; nothing more can be sent.
    Broken,
}

/// One client connection over either transport.
pub(crate) struct Connection {
    native: NativeSession,
    transport: Transport,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
    max_frame: usize,
    /// When a connection that has not logged in by then is closed (`None`: no limit).
    login_deadline: Option<Instant>,
    write_timeout: Duration,
    /// Requests read and not answered yet.
    in_flight: InFlight,
    /// Frames for the next write, in order.
    out: Vec<Bytes>,
    /// `publication-ack` frames held until every request read so far is answered: the
    /// answer to a `set` must reach the client before its publication results, which can
    /// be ready sooner (fast acknowledgements).
    held: Vec<Bytes>,
}

/// Held `publication-ack` frames beyond this are written anyway (a client that never
/// stops pipelining must not grow them without end).
const MAX_HELD: usize = 1024;

impl Connection {
    /// Serves a connection to its end: opens a session, runs the loop in a span carrying
    /// the session id, peer and transport (STYLE 17), and tells the client why when the
    /// server ends it.
    pub(crate) async fn serve(
        core: Core,
        transport: Transport,
        peer: SocketAddr,
        config: &NativeConfig,
    ) {
        let session = core.open_session("native", Some(peer), None);
        let span = tracing::info_span!(
            "native",
            session = %session.id(),
            %peer,
            transport = transport.name(),
        );
        let connection = Self {
            native: NativeSession::new(session, peer, config.cookie_name.clone()),
            transport,
            heartbeat: Heartbeat::new(config.heartbeat_interval, config.allowed_skipped_heartbeats),
            shutdown: core.shutdown_token().clone(),
            max_frame: config.max_frame,
            login_deadline: (!config.login_timeout.is_zero())
                .then(|| Instant::now() + config.login_timeout),
            write_timeout: config.write_timeout,
            in_flight: InFlight::new(config.max_in_flight),
            out: Vec::new(),
            held: Vec::new(),
        };
        connection.run().instrument(span).await;
    }

    async fn run(mut self) {
        tracing::debug!("native connection open");
        let end = loop {
            let woke = tokio::select! {
                () = self.shutdown.cancelled() => {
                    Err(End::Server(pathmq_core::CloseReason::Shutdown.to_string()))
                }
                frames = self.in_flight.next() => {
                    self.out.extend(frames);
                    Ok(())
                }
                outbound = self.native.session.recv() => self.outbound(outbound),
                incoming = self.transport.read(), if self.in_flight.accepts() => {
                    self.inbound(incoming)
                }
                beat = self.heartbeat.tick() => match beat {
                    Beat::Ping(now) => {
                        self.out.push(frame::ping(now));
                        Ok(())
                    }
                    Beat::Skip => Ok(()),
                    Beat::Dead => Err(End::Unresponsive),
                },
                () = login_deadline(self.login_deadline) => {
                    // A login answered by `gather` in an earlier turn counts too.
                    match self.native.logged_in() {
                        true => Ok(()),
                        false => Err(End::Server("no login within the login timeout".into())),
                    }
                }
            };
            let woke = woke.and_then(|()| self.gather());
            // After `gather`: a secure login's answer may have been collected there.
            if self.native.logged_in() {
                self.login_deadline = None;
            }
            if let Err(end) = woke {
                break end;
            }
            if !self.flush().await {
                break End::Broken;
            }
        };
        match &end {
            End::Server(reason) => {
                tracing::info!(%reason, "server ends the connection");
                if self.finish().await {
                    self.out.push(frame::server_side_disconnect(reason));
                    if self.flush().await {
                        self.close().await;
                    }
                }
            }
            End::Unresponsive => {
                tracing::info!("client missed its heartbeats; closing");
                self.close().await;
            }
            End::PeerClosed => {
                self.finish().await;
                self.close().await;
            }
            End::Broken => {}
        }
        tracing::debug!(?end, "native connection closed");
    }

    /// Takes every answer and event that is ready now, up to [`WRITE_BATCH`] frames, so
    /// that one write carries them all. Polling the requests in flight also gives those
    /// read since the last poll their first poll, which is when they reach the store.
    fn gather(&mut self) -> Result<(), End> {
        while self.out.len() < WRITE_BATCH {
            let mut more = false;
            if let Some(frames) = self.in_flight.next_ready() {
                self.out.extend(frames);
                more = true;
            }
            // `recv` is cancel-safe: a message not ready now stays queued.
            if let Some(outbound) = self.native.session.recv().now_or_never() {
                self.outbound(outbound)?;
                more = true;
            }
            if !more {
                break;
            }
        }
        if !self.held.is_empty() && (self.in_flight.is_empty() || self.held.len() > MAX_HELD) {
            self.out.append(&mut self.held);
        }
        Ok(())
    }

    /// Answers the requests already read, within the write timeout: they take effect
    /// whether or not the client is still there to read the answers. `false` when the
    /// connection can no longer be written to.
    async fn finish(&mut self) -> bool {
        let deadline = Instant::now() + self.write_timeout;
        let mut writable = self.flush().await;
        while !self.in_flight.is_empty() {
            let Ok(frames) = tokio::time::timeout_at(deadline, self.in_flight.next()).await else {
                tracing::debug!("requests still in flight at the write timeout; dropped");
                return false;
            };
            if writable {
                self.out.extend(frames);
                while let Some(frames) = self.in_flight.next_ready() {
                    self.out.extend(frames);
                }
                writable = self.flush().await;
            }
        }
        writable
    }

    /// Writes the gathered frames with one flush, within the write timeout; `false` when
    /// the connection is broken (the write failed, or the client did not read in time).
    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let frames = self.out.drain(..);
        let written = tokio::time::timeout(self.write_timeout, self.transport.write(frames)).await;
        if self.out.capacity() > KEEP_OUT {
            self.out = Vec::new();
        }
        match written {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::debug!(%error, "write failed");
                false
            }
            Err(_) => {
                tracing::info!(
                    timeout_ms = self.write_timeout.as_millis() as u64,
                    "client stopped reading; dropping the connection"
                );
                false
            }
        }
    }

    /// Closes the transport, giving up after the write timeout.
    async fn close(&mut self) {
        let _ = tokio::time::timeout(self.write_timeout, self.transport.close()).await;
    }

    /// Takes a message from the session's outbound queue.
    fn outbound(&mut self, outbound: Option<Outbound>) -> Result<(), End> {
        match outbound {
            Some(Outbound::Event {
                event,
                subscriptions,
            }) => {
                self.out.extend(frame::event_frames(&event, &subscriptions));
                Ok(())
            }
            Some(Outbound::Close(reason)) => Err(End::Server(reason.to_string())),
            Some(Outbound::Published(publication)) => {
                self.held
                    .push(crate::response::publication_frame(&publication));
                Ok(())
            }
            Some(other) => {
                tracing::debug!(?other, "ignoring an outbound message native does not carry");
                Ok(())
            }
            None => Err(End::Server("server shutting down".into())),
        }
    }

    /// Takes one inbound item, then the frames already here behind it, while the
    /// requests in flight have room (up to [`READ_BATCH`]).
    fn inbound(&mut self, incoming: Option<Result<Incoming, TransportError>>) -> Result<(), End> {
        self.take(incoming)?;
        for _ in 1..READ_BATCH {
            if !self.in_flight.accepts() {
                break;
            }
            // `read` is cancel-safe: a frame not here yet is not lost.
            match self.transport.read().now_or_never() {
                Some(incoming) => self.take(incoming)?,
                None => break,
            }
        }
        Ok(())
    }

    /// Takes one inbound item: a heartbeat is answered now, a request joins the
    /// requests in flight.
    fn take(&mut self, incoming: Option<Result<Incoming, TransportError>>) -> Result<(), End> {
        let frame = match incoming {
            None => return Err(End::PeerClosed),
            Some(Err(error)) => {
                tracing::debug!(%error, "read failed");
                return Err(End::Broken);
            }
            Some(Ok(Incoming::Nothing)) => {
                self.heartbeat.alive();
                return Ok(());
            }
            Some(Ok(Incoming::TooLarge(size))) => {
                self.heartbeat.alive();
                let answer = self.native.too_large(size, self.max_frame);
                self.in_flight.answered(vec![answer]);
                return Ok(());
            }
            Some(Ok(Incoming::Frame(frame))) => frame,
        };
        self.heartbeat.alive();
        match envelope::parse(&frame) {
            Ok(Inbound::Pong) => {}
            Ok(Inbound::Ping(stamp)) => self.out.push(frame::pong(&stamp)),
            Ok(Inbound::Request(envelope)) => match self.native.handle(envelope) {
                Handled::Answered(frames) => self.in_flight.answered(frames),
                Handled::Run(effect, call) => self.in_flight.submit(effect, call),
            },
            Err(rejected) => {
                let answer = self.native.reject(rejected);
                self.in_flight.answered(vec![answer]);
            }
        }
        Ok(())
    }
}

/// Completes at `deadline`; never when there is none. Cancel-safe.
async fn login_deadline(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
