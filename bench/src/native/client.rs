//! A native-protocol client built for load: one WebSocket per connection, the happn-3
//! handshake (`configure-session`, `login`), and [`drive`], which keeps up to
//! `--pipeline` requests in flight and matches answers by `eventId`.
//!
//! One task per connection: a writer and a reader future joined in that task, sharing
//! the in-flight window (a semaphore: the reader returns a permit per answer) and the
//! send times (a ring of atomics indexed by request number). The writer waits for an
//! eighth of the window to be free, takes every permit available then, writes that many
//! requests and flushes once: a burst of answers becomes one batch of requests and one
//! write, while the server always has most of the window queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::wire::{Inbound, Template, classify, now_ns, pong};
use crate::Common;

/// A client WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The `eventId` of the first request after the handshake (which uses 1 and 2).
pub(crate) const FIRST_ID: u64 = 3;

/// Bytes read from the socket at most per read (tungstenite's `read_buffer_size`).
const READ_BUFFER: usize = 16 * 1024;

/// The deepest pipeline taken; deeper asks are cut to it.
const MAX_PIPELINE: usize = 1 << 20;

/// How much of an error answer a report keeps.
const ERROR_SAMPLE: usize = 300;

/// A latency histogram in microseconds, 1 µs to 60 s, three significant figures.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds are valid")
}

/// Opens a WebSocket to the broker's native endpoint and logs in (no credentials: the
/// broker's security is off). Not bounded here: callers put the whole setup phase under
/// `--timeout`.
///
/// # Errors
/// The connection or the upgrade failed, or the handshake was answered with an error.
pub(crate) async fn connect(common: &Common) -> anyhow::Result<Ws> {
    let url = format!("ws://{}:{}/", common.host, common.port);
    // tungstenite zeroes the free part of its read buffer, up to `read_buffer_size`,
    // before every read: the default 128 KiB costs more than the answers it reads.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(256 << 20));
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&url, Some(config), true)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    call(
        &mut ws,
        r#"{"action":"configure-session","eventId":1,"data":{"protocol":"happn_4","version":"pathmq-bench","browser":false}}"#,
        1,
    )
    .await?;
    call(
        &mut ws,
        r#"{"action":"login","eventId":2,"data":{"info":{"_local":false,"client":"pathmq-bench"}}}"#,
        2,
    )
    .await?;
    Ok(ws)
}

/// Sends `request` (whose `eventId` is `event_id`) and waits for its answer, answering
/// heartbeats and skipping other frames. Unbounded: callers bound the phase.
///
/// # Errors
/// The connection broke, or the answer has `status: "error"` (the answer is in the
/// message).
pub(crate) async fn call(ws: &mut Ws, request: &str, event_id: u64) -> anyhow::Result<()> {
    ws.send(Message::text(request)).await?;
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        match classify(&text) {
            Inbound::Answer { event_id: id, ok } if id == event_id => {
                if !ok {
                    bail!("{request} was refused: {text}");
                }
                return Ok(());
            }
            Inbound::Ping(stamp) => ws.send(Message::text(pong(stamp))).await?,
            Inbound::Answer { .. } | Inbound::Other => {}
        }
    }
    bail!("the server closed the connection while answering {request}")
}

/// What one connection should send: `count` requests from `template`, request `i`
/// (from 0) with `eventId` `FIRST_ID + i`, path index `(offset + i) % modulo` and
/// sequence number `i`, at most `pipeline` unanswered, until `deadline`.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) template: Arc<Template>,
    pub(crate) count: u64,
    pub(crate) pipeline: usize,
    pub(crate) offset: u64,
    pub(crate) modulo: u64,
    pub(crate) deadline: Instant,
    /// Count answers whose `data` is `null` (a `get` of a path that holds nothing).
    pub(crate) count_empty: bool,
}

/// What one or more connections measured.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Requests written.
    pub(crate) sent: u64,
    /// Answers with `status: "ok"`.
    pub(crate) answered: u64,
    /// Answers with `status: "error"`.
    pub(crate) errors: u64,
    /// Ok answers with `"data":null` (only with [`Plan::count_empty`]).
    pub(crate) empty: u64,
    /// Frames that were neither an answer to one of ours nor a heartbeat.
    pub(crate) other: u64,
    /// The first error answer, cut short.
    pub(crate) first_error: Option<String>,
    /// Request → answer, µs.
    pub(crate) latency: Histogram<u64>,
    /// When the last answer arrived ([`now_ns`]); 0 if none did.
    pub(crate) last_answer_ns: u64,
    /// Connections that stopped at the deadline with requests unanswered.
    pub(crate) timed_out: u64,
    /// Connections the server closed or broke early, and the first reason.
    pub(crate) closed: u64,
    pub(crate) closed_reason: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            sent: 0,
            answered: 0,
            errors: 0,
            empty: 0,
            other: 0,
            first_error: None,
            latency: latency_histogram(),
            last_answer_ns: 0,
            timed_out: 0,
            closed: 0,
            closed_reason: None,
        }
    }

    /// Adds another connection's tally to this one.
    pub(crate) fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.answered += other.answered;
        self.errors += other.errors;
        self.empty += other.empty;
        self.other += other.other;
        self.first_error = self.first_error.take().or(other.first_error);
        // Same bounds on both sides: cannot fail.
        let _ = self.latency.add(&other.latency);
        self.last_answer_ns = self.last_answer_ns.max(other.last_answer_ns);
        self.timed_out += other.timed_out;
        self.closed += other.closed;
        self.closed_reason = self.closed_reason.take().or(other.closed_reason);
    }

    /// Merges the tallies of finished connection tasks; a task that panicked counts as a
    /// closed connection.
    pub(crate) async fn join(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
        let mut all = Tally::new();
        for task in tasks {
            match task.await {
                Ok(tally) => all.merge(tally),
                Err(error) => {
                    all.closed += 1;
                    all.closed_reason.get_or_insert(error.to_string());
                }
            }
        }
        all
    }

    fn closed_because(&mut self, reason: String) {
        self.closed += 1;
        self.closed_reason.get_or_insert(reason);
    }
}

/// Sends `plan`'s requests on `ws`, pipelined, and reads their answers; returns what was
/// measured. Never fails and never outlives `plan.deadline` by more than a second (the
/// closing handshake): a broken connection or a deadline ends the run, and the tally
/// says so.
pub(crate) async fn drive(ws: Ws, plan: Plan) -> Tally {
    let (mut sink, mut stream) = ws.split();
    let pipeline = plan.pipeline.clamp(1, MAX_PIPELINE);
    let window = Semaphore::new(pipeline);
    let mask = (pipeline * 2).next_power_of_two() - 1;
    let sent_at: Vec<AtomicU64> = (0..=mask).map(|_| AtomicU64::new(0)).collect();
    let sent = AtomicU64::new(0);
    // Pongs the reader asks the writer to send; at most one per server heartbeat.
    let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<String>();

    // The writer waits until this many requests can go at once (an eighth of the
    // window): fewer, larger writes, while the server still has 7/8 of the window queued.
    let refill = (pipeline as u64 / 8).max(1);
    let writer = {
        let (sink, window, sent_at, sent, plan) = (&mut sink, &window, &sent_at, &sent, &plan);
        async move {
            let mut buf = BytesMut::new();
            let mut next = 0u64;
            loop {
                let permits = tokio::select! {
                    biased;
                    pong = pong_rx.recv() => match pong {
                        Some(pong) => {
                            sink.send(Message::text(pong)).await?;
                            continue;
                        }
                        // The reader is done.
                        None => return Ok(()),
                    },
                    permit = window.acquire_many(refill.min(plan.count - next) as u32),
                        if next < plan.count => match permit {
                        Ok(permit) => {
                            let taken = permit.num_permits() as u64;
                            permit.forget();
                            taken + take_available(window, plan.count - next - taken)
                        }
                        // Closed by the reader: it is done.
                        Err(_) => return Ok(()),
                    },
                };
                buf.reserve(permits as usize * plan.template.max_len());
                for _ in 0..permits {
                    let i = next;
                    next += 1;
                    let t = now_ns();
                    let index = plan.offset.wrapping_add(i) % plan.modulo;
                    plan.template.write(&mut buf, FIRST_ID + i, index, i, t);
                    sent_at[i as usize & mask].store(t, Relaxed);
                    let text = Utf8Bytes::try_from(buf.split().freeze())?;
                    sink.feed(Message::Text(text)).await?;
                }
                sink.flush().await?;
                sent.store(next, Relaxed);
            }
        }
    };

    let reader = {
        let (stream, window, sent_at, plan) = (&mut stream, &window, &sent_at, &plan);
        async move {
            let mut tally = Tally::new();
            let ours = FIRST_ID..FIRST_ID + plan.count;
            // One timer for the whole run, not one per read.
            let expiry = sleep_until(plan.deadline);
            tokio::pin!(expiry);
            while tally.answered + tally.errors < plan.count {
                let next = tokio::select! {
                    biased;
                    () = &mut expiry => {
                        tally.timed_out += 1;
                        break;
                    }
                    next = stream.next() => next,
                };
                let message = match next {
                    None => {
                        tally.closed_because("the server closed the connection".into());
                        break;
                    }
                    Some(Err(error)) => {
                        tally.closed_because(format!("connection broken: {error}"));
                        break;
                    }
                    Some(Ok(message)) => message,
                };
                let text = match &message {
                    Message::Text(text) => text.as_str(),
                    Message::Close(frame) => {
                        tally
                            .closed_because(format!("the server closed the connection: {frame:?}"));
                        break;
                    }
                    _ => continue,
                };
                match classify(text) {
                    Inbound::Answer { event_id, ok } if ours.contains(&event_id) => {
                        let now = now_ns();
                        let i = (event_id - FIRST_ID) as usize;
                        let took = now.saturating_sub(sent_at[i & mask].load(Relaxed));
                        tally.latency.saturating_record(took / 1_000);
                        tally.last_answer_ns = now;
                        if ok {
                            tally.answered += 1;
                            if plan.count_empty && text.contains(r#""data":null"#) {
                                tally.empty += 1;
                            }
                        } else {
                            tally.errors += 1;
                            tally
                                .first_error
                                .get_or_insert_with(|| text.chars().take(ERROR_SAMPLE).collect());
                        }
                        window.add_permits(1);
                    }
                    Inbound::Ping(stamp) => {
                        let _ = pong_tx.send(pong(stamp));
                    }
                    Inbound::Answer { .. } | Inbound::Other => {
                        tally.other += 1;
                        if text.contains("server-side-disconnect") {
                            tally.closed_because(format!("the server ended the session: {text}"));
                            break;
                        }
                    }
                }
            }
            // Wake the writer: no more permits, no more pongs.
            window.close();
            drop(pong_tx);
            tally
        }
    };

    let deadline = plan.deadline;
    let writer = async move {
        match timeout_at(deadline, writer).await {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    };
    let (written, mut tally): (anyhow::Result<()>, Tally) = tokio::join!(writer, reader);
    tally.sent = sent.load(Relaxed);
    if let Err(error) = written
        && tally.closed == 0
    {
        tally.closed_because(format!("write failed: {error}"));
    }
    if let Ok(mut ws) = sink.reunite(stream) {
        let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    tally
}

/// Takes up to `most` more permits that are free right now; returns how many.
fn take_available(window: &Semaphore, most: u64) -> u64 {
    let more = (window.available_permits() as u64).min(most);
    if more == 0 {
        return 0;
    }
    match window.try_acquire_many(more as u32) {
        Ok(permits) => {
            permits.forget();
            more
        }
        Err(_) => 0,
    }
}

/// The tally's extra figures for a report: errors, empty answers, unanswered requests,
/// timeouts and early closes, and the first error.
pub(crate) fn extras(tally: &Tally, extra: &mut serde_json::Map<String, serde_json::Value>) {
    extra.insert("errors".into(), tally.errors.into());
    extra.insert(
        "unanswered".into(),
        tally
            .sent
            .saturating_sub(tally.answered + tally.errors)
            .into(),
    );
    if tally.timed_out > 0 {
        extra.insert("connections_timed_out".into(), tally.timed_out.into());
    }
    if tally.closed > 0 {
        extra.insert("connections_closed".into(), tally.closed.into());
    }
    if let Some(reason) = &tally.closed_reason {
        extra.insert("closed_reason".into(), reason.as_str().into());
    }
    if tally.other > 0 {
        extra.insert("other_frames".into(), tally.other.into());
    }
    if let Some(error) = &tally.first_error {
        extra.insert("first_error".into(), error.as_str().into());
    }
}
