//! One native connection: a struct with one `run` loop (STYLE 12) that `select!`s over
//! inbound frames, the session's outbound queue, the heartbeat timer and shutdown.
//!
//! Requests are carried out one at a time, in order, and answered before the next frame
//! is read: a client's responses come back in the order it asked. While a request runs,
//! events wait in the session's bounded queue (the core's overflow policy applies).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use pathmq_core::{Core, Outbound, now_ms};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::NativeConfig;
use crate::envelope::{self, Inbound};
use crate::frame;
use crate::session::NativeSession;
use crate::transport::{Incoming, Transport};

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

/// The Primus heartbeat (`reference/happn-3-wire.md` §1): every interval the server
/// sends `"primus::ping::<ms>"`. Any frame from the client — the pong, or anything else —
/// shows it is alive. A tick that finds no sign of life since the last ping is a skipped
/// beat and sends no new ping (as Primus); more than `allowed` skipped beats in a row end
/// the connection.
#[derive(Debug)]
struct Heartbeat {
    interval: Option<Interval>,
    alive: bool,
    skipped: u32,
    allowed: u32,
}

/// What a heartbeat tick asks the connection to do.
#[derive(Debug, PartialEq, Eq)]
enum Beat {
    /// Send a ping stamped with this time (ms since the epoch).
    Ping(u64),
    /// A beat was skipped; wait for the next tick.
    Skip,
    /// Too many beats skipped: end the connection.
    Dead,
}

impl Heartbeat {
    /// A heartbeat every `every` (none when zero), tolerating `allowed` skipped beats.
    fn new(every: Duration, allowed: u32) -> Self {
        let interval = (!every.is_zero()).then(|| {
            let mut interval = tokio::time::interval_at(Instant::now() + every, every);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self {
            interval,
            alive: true,
            skipped: 0,
            allowed,
        }
    }

    /// Waits for the next tick; never completes when heartbeats are off. Cancel-safe.
    async fn tick(&mut self) -> Beat {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending::<()>().await,
        }
        self.beat()
    }

    fn beat(&mut self) -> Beat {
        if !self.alive {
            self.skipped += 1;
            return if self.skipped > self.allowed {
                Beat::Dead
            } else {
                Beat::Skip
            };
        }
        self.alive = false;
        self.skipped = 0;
        Beat::Ping(now_ms())
    }

    /// The client sent something.
    fn alive(&mut self) {
        self.alive = true;
        self.skipped = 0;
    }
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
}

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
            native: NativeSession::new(session, peer),
            transport,
            heartbeat: Heartbeat::new(config.heartbeat_interval, config.allowed_skipped_heartbeats),
            shutdown: core.shutdown_token().clone(),
            max_frame: config.max_frame,
            login_deadline: (!config.login_timeout.is_zero())
                .then(|| Instant::now() + config.login_timeout),
            write_timeout: config.write_timeout,
        };
        connection.run().instrument(span).await;
    }

    async fn run(mut self) {
        tracing::debug!("native connection open");
        let end = loop {
            let step = tokio::select! {
                () = self.shutdown.cancelled() => {
                    Err(End::Server(pathmq_core::CloseReason::Shutdown.to_string()))
                }
                outbound = self.native.session.recv() => self.outbound(outbound),
                incoming = self.transport.read() => self.inbound(incoming).await,
                beat = self.heartbeat.tick() => match beat {
                    Beat::Ping(now) => Ok(vec![frame::ping(now)]),
                    Beat::Skip => Ok(Vec::new()),
                    Beat::Dead => Err(End::Unresponsive),
                },
                () = login_deadline(self.login_deadline) => {
                    Err(End::Server("no login within the login timeout".into()))
                }
            };
            if self.native.logged_in {
                self.login_deadline = None;
            }
            match step {
                Ok(frames) if frames.is_empty() => {}
                Ok(frames) => {
                    if !self.write(frames).await {
                        break End::Broken;
                    }
                }
                Err(end) => break end,
            }
        };
        match &end {
            End::Server(reason) => {
                tracing::info!(%reason, "server ends the connection");
                let notice = frame::server_side_disconnect(reason);
                if self.write(vec![notice]).await {
                    self.close().await;
                }
            }
            End::Unresponsive => {
                tracing::info!("client missed its heartbeats; closing");
                self.close().await;
            }
            End::PeerClosed => self.close().await,
            End::Broken => {}
        }
        tracing::debug!(?end, "native connection closed");
    }

    /// Writes frames within the write timeout; `false` when the connection is broken (the
    /// write failed, or the client did not read in time).
    async fn write(&mut self, frames: Vec<Bytes>) -> bool {
        match tokio::time::timeout(self.write_timeout, self.transport.write(frames)).await {
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

    /// Frames for a message from the session's outbound queue.
    fn outbound(&mut self, outbound: Option<Outbound>) -> Result<Vec<Bytes>, End> {
        match outbound {
            Some(Outbound::Event {
                event,
                subscriptions,
            }) => Ok(frame::event_frames(&event, &subscriptions)),
            Some(Outbound::Close(reason)) => Err(End::Server(reason.to_string())),
            Some(other) => {
                tracing::debug!(?other, "ignoring an outbound message native does not carry");
                Ok(Vec::new())
            }
            None => Err(End::Server("server shutting down".into())),
        }
    }

    /// Frames answering one inbound item.
    async fn inbound(
        &mut self,
        incoming: Option<Result<Incoming, crate::error::TransportError>>,
    ) -> Result<Vec<Bytes>, End> {
        let frame = match incoming {
            None => return Err(End::PeerClosed),
            Some(Err(error)) => {
                tracing::debug!(%error, "read failed");
                return Err(End::Broken);
            }
            Some(Ok(Incoming::Nothing)) => {
                self.heartbeat.alive();
                return Ok(Vec::new());
            }
            Some(Ok(Incoming::TooLarge(size))) => {
                self.heartbeat.alive();
                return Ok(vec![self.native.too_large(size, self.max_frame)]);
            }
            Some(Ok(Incoming::Frame(frame))) => frame,
        };
        self.heartbeat.alive();
        Ok(match envelope::parse(&frame) {
            Ok(Inbound::Pong) => Vec::new(),
            Ok(Inbound::Ping(stamp)) => vec![frame::pong(&stamp)],
            Ok(Inbound::Request(envelope)) => self.native.handle(envelope).await,
            Err(rejected) => vec![self.native.reject(rejected)],
        })
    }
}

/// Completes at `deadline`; never when there is none. Cancel-safe.
async fn login_deadline(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_skips_then_dies_like_primus() {
        let mut hb = Heartbeat::new(Duration::ZERO, 1);
        assert!(matches!(hb.beat(), Beat::Ping(_)));
        assert_eq!(hb.beat(), Beat::Skip);
        assert_eq!(hb.beat(), Beat::Dead);

        let mut hb = Heartbeat::new(Duration::ZERO, 1);
        assert!(matches!(hb.beat(), Beat::Ping(_)));
        assert_eq!(hb.beat(), Beat::Skip);
        hb.alive();
        assert!(matches!(hb.beat(), Beat::Ping(_)));
        assert_eq!(hb.beat(), Beat::Skip);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_ticks_at_the_interval() {
        let mut hb = Heartbeat::new(Duration::from_secs(30), 0);
        let start = Instant::now();
        assert!(matches!(hb.tick().await, Beat::Ping(_)));
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(hb.tick().await, Beat::Dead);
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }
}
