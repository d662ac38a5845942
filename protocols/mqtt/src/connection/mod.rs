//! One MQTT connection: a struct with named fields and one `run` loop (STYLE 12).
//!
//! [`serve`] does the CONNECT handshake ([`handshake`]), opens the core session and runs
//! the [`Connection`]. The loop `select!`s over the client's bytes, the session's outbound
//! queue (only while the in-flight window has room), the keepalive timer and shutdown.
//! Inbound packets are handled in order, one at a time ([`inbound`]); outbound messages
//! are encoded in batches ([`outbound`]). Replies and messages accumulate in one write
//! buffer that is written once per wake-up (or when it passes [`FLUSH_AT`]).
//!
//! The connection is generic over its [`Transport`]: TCP and WebSocket share every line.
//! When it ends without a normal DISCONNECT, its will message is published ([`will`]).

mod handshake;
mod inbound;
mod outbound;
mod will;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::time::Duration;

use bytes::BytesMut;
use pathmq_core::{CloseReason, Session};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::codec;
use crate::error::{ProtocolError, ReasonCode, close_reason_code};
use crate::inflight::Inflight;
use crate::packet::{Reply, Version, Will};
use crate::transport::Transport;

pub(crate) use handshake::serve;
use outbound::{Kept, Pending};

/// When the write buffer holds this many bytes, it is written before more is added.
const FLUSH_AT: usize = 64 * 1024;

/// How long the final writes (DISCONNECT, CONNACK refusal) and the close may take before
/// the connection is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a connection ends.
#[derive(Debug)]
enum Ending {
    /// The client sent DISCONNECT, with this reason code (`0x00` for 3.1.x).
    ClientDisconnect {
        /// `0x00` discards the will; any other (`0x04`) has it published.
        reason: ReasonCode,
    },
    /// The client closed the connection, or it failed.
    Closed(Option<io::Error>),
    /// The client broke the protocol.
    Violation(ProtocolError),
    /// The core ended the session (taken over, queue full, shutdown).
    Core(CloseReason),
    /// The broker is shutting down.
    Shutdown,
}

impl From<ProtocolError> for Ending {
    fn from(error: ProtocolError) -> Self {
        Self::Violation(error)
    }
}

/// What woke the loop.
enum Wake {
    Shutdown,
    Read(io::Result<usize>),
    Outbound(Option<pathmq_core::Outbound>),
    KeepAlive,
}

/// An established connection (after CONNACK).
struct Connection<T> {
    transport: T,
    version: Version,
    session: Session,
    shutdown: CancellationToken,
    /// Bytes from the client not yet decoded.
    read_buf: BytesMut,
    /// Encoded packets not yet written.
    write_buf: BytesMut,
    /// The largest packet accepted from the client (remaining length), in bytes.
    max_packet_size: usize,
    /// MQTT 5: the client's Maximum Packet Size, in bytes.
    client_max_packet_size: Option<u32>,
    /// The announced Receive Maximum (bound on `awaiting_pubrel` for MQTT 5).
    receive_maximum: u16,
    /// The keep alive, in seconds; 0: off.
    keep_alive: u16,
    /// When the keepalive expires unless a packet arrives (`None`: keep alive 0). A write
    /// the client does not drain by then is abandoned too.
    deadline: Option<Instant>,
    /// This connection's subscriptions: pattern text (`/a/+`) → granted QoS.
    subscriptions: HashMap<Box<str>, u8>,
    /// Outbound QoS 1/2 messages awaiting acknowledgement, with the message itself where
    /// it is still needed ([`Kept`]).
    inflight: Inflight<Kept>,
    /// A session-log write (a durable QoS 2 message's packet id or stage) that must be
    /// durable before the write buffer goes out; 0: none.
    log_ticket: u64,
    /// The longest session expiry a DISCONNECT may set, in seconds.
    max_session_expiry: u32,
    /// The Session Expiry Interval of the CONNECT (0 when absent), in seconds: a
    /// DISCONNECT may not raise it from 0 [MQTT-3.14.2-2].
    connect_session_expiry: u32,
    /// MQTT 5 topic aliases, both directions.
    aliases: crate::alias::Aliases,
    /// MQTT 5 Request Problem Information: reason strings on acknowledgements.
    problem_information: bool,
    /// Messages waiting for room in the window, in order (retained messages of a
    /// SUBSCRIBE; live events are not taken from the session queue while this is
    /// non-empty). Bounded by the records one SUBSCRIBE matched.
    pending: VecDeque<(Pending, u8)>,
    /// The will message, published when the connection ends without a normal DISCONNECT.
    /// Boxed: a connection without a will pays one word for it.
    will: Option<Box<Will>>,
    /// Packet ids of the client's QoS 2 PUBLISHes awaiting PUBREL (MQTT §4.3.3): a PUBLISH
    /// with one of these ids is a duplicate and is not processed again. At most 65,535.
    awaiting_pubrel: HashSet<u16>,
}

impl<T: Transport> Connection<T> {
    /// Runs the connection until it ends, tells the client why (MQTT 5) and closes; then
    /// publishes the will when the ending calls for it ([`will`]). Takes the connection
    /// boxed: an `async fn` keeps its by-value arguments apart from its locals, so a
    /// `Connection` by value would sit in the future twice.
    async fn run(mut self: Box<Self>) {
        let ending = self.run_loop().await;
        let will = self.will.take().and_then(|will| will::keep(will, &ending));
        let taken_over = matches!(ending, Ending::Core(CloseReason::TakenOver));
        self.finish(ending).await;
        self.redeliver_shared();
        if self.session.is_durable() {
            // Boxed: only durable sessions build this future.
            return Box::pin(self.park(will)).await;
        }
        if let Some(will) = will {
            // The socket and buffers go now; the session stays until the will is out.
            let Connection {
                session, shutdown, ..
            } = *self;
            // Boxed: only connections with a will ever build this future.
            Box::pin(will::publish(session, *will, taken_over, shutdown)).await;
        }
    }

    async fn run_loop(&mut self) -> Ending {
        // Packets the client sent right behind its CONNECT.
        if let Err(ending) = Box::pin(self.on_input()).await {
            return ending;
        }
        if let Err(ending) = self.flush().await {
            return ending;
        }
        // 1.5 × the keep alive [MQTT-3.1.2-24].
        let keep_alive =
            (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500));
        self.deadline = keep_alive.map(|k| Instant::now() + k);
        let idle = tokio::time::sleep_until(self.deadline.unwrap_or_else(Instant::now));
        tokio::pin!(idle);
        // Made once: a cancellation future registers its waker when first polled.
        let shutdown = self.shutdown.clone().cancelled_owned();
        tokio::pin!(shutdown);
        loop {
            let pull = self.can_pull();
            // Unbiased: a client flooding one direction does not starve the other.
            let wake = tokio::select! {
                () = &mut shutdown => Wake::Shutdown,
                read = self.transport.read(&mut self.read_buf) => Wake::Read(read),
                message = self.session.recv(), if pull => Wake::Outbound(message),
                // Boxed, and made only while the window is full: a takeover or shutdown
                // must get through then too.
                reason = Box::pin(self.session.closing()), if !pull => {
                    Wake::Outbound(Some(pathmq_core::Outbound::Close(reason)))
                }
                () = &mut idle, if keep_alive.is_some() => Wake::KeepAlive,
            };
            let step = match wake {
                Wake::Shutdown => Err(Ending::Shutdown),
                Wake::Read(Ok(0)) => Err(Ending::Closed(None)),
                Wake::Read(Err(error)) => Err(Ending::Closed(Some(error))),
                // Boxed (one allocation per read wake-up, not per packet): the loop's own
                // future, which every idle connection keeps, stays the size of its select.
                Wake::Read(Ok(_)) => match Box::pin(self.on_input()).await {
                    Ok(true) => {
                        if let Some(keep_alive) = keep_alive {
                            let deadline = Instant::now() + keep_alive;
                            self.deadline = Some(deadline);
                            idle.as_mut().reset(deadline);
                        }
                        Ok(())
                    }
                    other => other.map(drop),
                },
                Wake::Outbound(Some(message)) => self.on_outbound_batch(message),
                Wake::Outbound(None) => Err(Ending::Shutdown),
                Wake::KeepAlive => Err(Ending::Violation(ProtocolError::KeepAliveTimeout {
                    keep_alive_secs: self.keep_alive,
                })),
            };
            if let Err(ending) = step {
                return ending;
            }
            if let Err(ending) = self.flush().await {
                return ending;
            }
        }
    }

    /// Decodes and handles every complete packet in the read buffer, in order. `Ok(true)`
    /// when at least one packet arrived (it resets the keepalive).
    async fn on_input(&mut self) -> Result<bool, Ending> {
        let mut any = false;
        while let Some(packet) =
            codec::decode(self.version, &mut self.read_buf, self.max_packet_size)?
        {
            any = true;
            // Boxed: handling a packet (SUBSCRIBE with retained delivery, a PUBLISH through
            // the core) needs a large future that idle connections should not carry.
            Box::pin(self.on_packet(packet)).await?;
            if self.write_buf.len() >= FLUSH_AT {
                self.flush().await?;
            }
        }
        Ok(any)
    }

    /// Appends a control packet to the write buffer.
    fn reply(&mut self, reply: &Reply<'_>) {
        codec::encode(self.version, &mut self.write_buf, reply);
    }

    /// Writes the write buffer. A client that does not read blocks this, and with it the
    /// connection; shutdown or the keepalive deadline then abandons the write and the
    /// connection (a partial packet may be on the wire, so nothing more is written).
    async fn flush(&mut self) -> Result<(), Ending> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        if self.log_ticket != 0 {
            let ticket = std::mem::take(&mut self.log_ticket);
            // Boxed: rare (durable QoS 2), and kept out of every connection's loop future.
            Box::pin(self.session.written(ticket)).await;
        }
        let abandoned = |what: &str| {
            Err(Ending::Closed(Some(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} while the client was not reading"),
            ))))
        };
        tokio::select! {
            biased;
            written = self.transport.write(&mut self.write_buf) => {
                written.map_err(|error| Ending::Closed(Some(error)))
            }
            () = self.shutdown.cancelled() => abandoned("shutdown"),
            () = tokio::time::sleep_until(self.deadline.unwrap_or_else(Instant::now)),
                if self.deadline.is_some() => abandoned("keepalive expired"),
        }
    }

    /// Appends the MQTT 5 DISCONNECT for `ending`, with its reason string when the
    /// client's Maximum Packet Size leaves room for it [MQTT-3.14.2-3].
    fn disconnect(&mut self, reason: ReasonCode, ending: &Ending) {
        let why = match ending {
            Ending::Violation(error) => error.to_string(),
            Ending::Core(reason) => reason.to_string(),
            _ => CloseReason::Shutdown.to_string(),
        };
        let fits = self
            .client_max_packet_size
            .is_none_or(|max| why.len().min(1024) + 8 <= max as usize);
        self.reply(&Reply::Disconnect {
            reason,
            reason_string: fits.then_some(why.as_str()),
        });
    }

    /// Ends a durable session's connection: the session is parked with what this
    /// connection did not finish, and the will (if any) waits on it ([`will`]).
    async fn park(mut self: Box<Self>, will: Option<Box<Will>>) {
        let (unacked, awaiting_pubrel) = self.hand_back();
        let Connection {
            session, shutdown, ..
        } = *self;
        let detached = session.detached();
        let identity = session.identity();
        let core = session.core().clone();
        let peer = session.info().peer;
        session.park(unacked, awaiting_pubrel);
        if let (Some(will), Some(detached)) = (will, detached) {
            let parked = will::Parked {
                core,
                identity,
                peer,
                detached,
            };
            will::publish_parked(parked, *will, shutdown).await;
        }
    }

    /// Hands the QoS 1 messages of shared subscriptions this connection did not get
    /// acknowledged (in flight, or waiting for the window) to another member of their
    /// group (MQTT 5 §4.8.2); one no other member takes stays with this session (a
    /// durable one resends it). QoS 2 messages stay [MQTT-4.8.2-4/-5].
    fn redeliver_shared(&mut self) {
        let core = self.session.core().clone();
        let handed = |message: &Pending, qos: u8| -> bool {
            let (event, via) = match message {
                Pending::Event {
                    event,
                    shared_via: Some(via),
                    ..
                } => (event, via),
                Pending::Durable(m) => match &m.shared_via {
                    Some(via) => (&m.event, via),
                    None => return false,
                },
                _ => return false,
            };
            qos == 1 && core.redeliver_shared(event.clone(), via)
        };
        for (pkid, stage, kept) in self.inflight.drain() {
            let qos = match stage {
                crate::inflight::Awaiting::Ack => 1,
                _ => 2,
            };
            match kept {
                Some(message) if handed(&message, qos) => self.done_with(*message),
                kept => self.inflight.put(pkid, stage, kept),
            }
        }
        let pending = std::mem::take(&mut self.pending);
        for (message, qos) in pending {
            if handed(&message, qos) {
                self.done_with(message);
            } else {
                self.pending.push_back((message, qos));
            }
        }
    }

    /// What a durable session keeps of this connection: the messages in flight (in the
    /// order they were sent, with their packet ids) and those waiting for the window,
    /// as durable messages, and the QoS 2 packet ids awaiting PUBREL.
    fn hand_back(&mut self) -> (Vec<pathmq_core::durable::DurableMessage>, Vec<u16>) {
        let mut unacked: Vec<_> = self
            .inflight
            .drain()
            .into_iter()
            .filter_map(|(pkid, stage, kept)| {
                let qos = match stage {
                    crate::inflight::Awaiting::Ack => 1,
                    _ => 2,
                };
                kept?.into_durable(qos, Some((pkid, stage)))
            })
            .collect();
        unacked.extend(
            self.pending
                .drain(..)
                .filter_map(|(message, qos)| message.into_durable(qos, None)),
        );
        (unacked, self.awaiting_pubrel.drain().collect())
    }

    /// Ends the connection: an MQTT 5 DISCONNECT with the reason code when the server ends
    /// it (3.1.1 has none), then close. Dropping the connection afterwards (end of
    /// [`Connection::run`]) drops the session, which removes its subscriptions.
    async fn finish(&mut self, ending: Ending) {
        let reason = match &ending {
            Ending::ClientDisconnect { .. } | Ending::Closed(None) => {
                tracing::debug!(?ending, "connection closed by the client");
                None
            }
            Ending::Closed(Some(error)) => {
                tracing::debug!(%error, "connection failed");
                None
            }
            Ending::Violation(error) => {
                tracing::debug!(%error, reason_code = error.reason_code(), "protocol error");
                Some(error.reason_code())
            }
            Ending::Core(reason) => {
                tracing::debug!(%reason, "session ended by the broker");
                Some(close_reason_code(reason))
            }
            Ending::Shutdown => {
                tracing::debug!("broker shutting down");
                Some(close_reason_code(&CloseReason::Shutdown))
            }
        };
        let writable = !matches!(ending, Ending::Closed(_));
        // A durable QoS 2 message's packet id or stage goes to disk before the bytes that
        // announce it (as in `flush`).
        if writable && self.log_ticket != 0 {
            let ticket = std::mem::take(&mut self.log_ticket);
            Box::pin(self.session.written(ticket)).await;
        }
        if let (Some(reason), Version::V5, true) = (reason, self.version, writable) {
            self.disconnect(reason, &ending);
        }
        if writable && !self.write_buf.is_empty() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.transport.write(&mut self.write_buf))
                .await;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.transport.close()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression guard for memory per idle connection (issue 3: ≤ 4 KiB at 10,000
    /// connections): an idle connection keeps its task's future and the boxed `run`
    /// future allocated, so both must stay small. Packet handling and the core pipeline
    /// are boxed per use for this reason.
    #[test]
    fn idle_connection_futures_stay_small() {
        let core = pathmq_core::Core::builder(pathmq_storage::MemoryStore::new()).build();
        let config = crate::MqttConfig::default();
        let peer = pathmq_core::Peer::new("127.0.0.1:1".parse().unwrap());
        let (io, _peer_end) = tokio::io::duplex(64);
        let serve = handshake::serve(
            crate::transport::StreamTransport::new(Box::new(io)),
            core.clone(),
            &config,
            peer,
        );
        let serve_size = std::mem::size_of_val(&serve);
        let (io, _peer_end) = tokio::io::duplex(64);
        let mut connection = Connection {
            transport: crate::transport::StreamTransport::new(Box::new(io)),
            version: Version::V4,
            session: core.open_session("mqtt", None, None),
            shutdown: core.shutdown_token().clone(),
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            max_packet_size: 1024,
            client_max_packet_size: None,
            receive_maximum: 1,
            keep_alive: 0,
            deadline: None,
            subscriptions: HashMap::new(),
            inflight: Inflight::new(1),
            log_ticket: 0,
            max_session_expiry: 0,
            connect_session_expiry: 0,
            aliases: crate::alias::Aliases::default(),
            problem_information: true,
            pending: VecDeque::new(),
            awaiting_pubrel: HashSet::new(),
            will: None,
        };
        let run_loop_size = std::mem::size_of_val(&connection.run_loop());
        let run_size = std::mem::size_of_val(&Box::new(connection).run());
        assert!(
            serve_size <= 1_024,
            "the connection task's future is {serve_size} bytes"
        );
        assert!(
            run_loop_size <= 768,
            "run_loop's future is {run_loop_size} bytes"
        );
        // 784: the flush's wait for a durable QoS 2 message's log write costs 16 bytes.
        assert!(run_size <= 784, "run's future is {run_size} bytes");
    }
}
