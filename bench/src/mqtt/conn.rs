//! One MQTT connection of the load generator: a stream (TCP or TLS, see `stream.rs`), a
//! read buffer and a write buffer, and no task of its own. The scenario loop that owns it
//! queues packets into the write buffer, calls [`Conn::io`] (which waits until the stream
//! can make progress, then does at most one large read and one large write) and drains the
//! decoded packets with [`Conn::drain`]. So hundreds of publishes or acks go out per
//! syscall, and reading never waits for writing or the other way round.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use tokio::io::AsyncWrite;
use tokio::time::Instant;

use super::packet::{self, Packet};
use super::stream::{Broker, Stream};

/// Free space the read buffer starts with: small, so thousands of idle connections cost
/// little here.
const READ_MIN: usize = 4 * 1024;
/// Free space it grows to once a read fills it: large, so a busy subscriber drains the
/// socket in few calls.
const READ_MAX: usize = 256 * 1024;

/// An open MQTT connection (CONNACK received).
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Stream,
    rbuf: BytesMut,
    /// Free space to make before each read ([`READ_MIN`] to [`READ_MAX`]).
    read_chunk: usize,
    /// Encoded packets not yet written.
    pub(crate) wbuf: BytesMut,
    /// The last flush completed: with TLS, no encrypted record written from `wbuf` waits in
    /// rustls's buffer for room in the socket (always true for plain TCP).
    flushed: bool,
}

impl Conn {
    /// Connects to `broker` (TCP, and TLS if so configured) and completes the
    /// CONNECT/CONNACK handshake before `deadline` (clean session).
    pub(crate) async fn open(
        broker: &Broker,
        client_id: &str,
        keep_alive: u16,
        deadline: Instant,
    ) -> anyhow::Result<Self> {
        Self::open_session(broker, client_id, keep_alive, true, deadline).await
    }

    /// [`Conn::open`] with clean session `clean` (false: a persistent session).
    pub(crate) async fn open_session(
        broker: &Broker,
        client_id: &str,
        keep_alive: u16,
        clean: bool,
        deadline: Instant,
    ) -> anyhow::Result<Self> {
        let addr = broker.addr();
        let stream = tokio::time::timeout_at(deadline, broker.connect())
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        let mut conn = Self {
            stream,
            rbuf: BytesMut::new(),
            read_chunk: READ_MIN,
            wbuf: BytesMut::with_capacity(256),
            flushed: true,
        };
        packet::connect(&mut conn.wbuf, client_id, keep_alive, clean);
        let code = conn
            .until(deadline, |p| match p {
                Packet::ConnAck { code } => Some(code),
                _ => None,
            })
            .await
            .with_context(|| format!("CONNECT as {client_id}"))?;
        if code != 0 {
            bail!("CONNECT as {client_id}: refused with return code {code}");
        }
        Ok(conn)
    }

    /// Subscribes to `filter` at `qos` and waits for the SUBACK.
    pub(crate) async fn subscribe(
        &mut self,
        filter: &str,
        qos: u8,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        packet::subscribe(&mut self.wbuf, 1, filter, qos);
        let codes = self
            .until(deadline, |p| match p {
                Packet::SubAck { pkid: 1, codes } => Some(codes.to_vec()),
                _ => None,
            })
            .await
            .with_context(|| format!("SUBSCRIBE {filter}"))?;
        match codes.as_slice() {
            [granted] if *granted < 0x80 => Ok(()),
            other => bail!("SUBSCRIBE {filter}: refused ({other:?})"),
        }
    }

    /// Everything queued went to the socket: the write buffer is empty and, with TLS, the
    /// last records left rustls's buffer. (A TLS publisher that stopped at an empty write
    /// buffer would leave its last messages unsent until the connection closes.)
    pub(crate) fn is_written(&self) -> bool {
        self.wbuf.is_empty() && self.flushed
    }

    /// The bare stream, for connections that stay idle (the buffers are dropped).
    pub(crate) fn into_stream(self) -> Stream {
        self.stream
    }

    /// Sends DISCONNECT if the socket takes it right away, then closes. Never waits.
    pub(crate) async fn close(mut self) {
        self.wbuf.clear();
        packet::disconnect(&mut self.wbuf);
        self.stream.write_last(&self.wbuf).await;
    }

    /// Writes and reads until `pick` accepts a packet (other packets are dropped: this is
    /// for handshakes, before any message flows).
    async fn until<T>(
        &mut self,
        deadline: Instant,
        mut pick: impl FnMut(Packet<'_>) -> Option<T>,
    ) -> anyhow::Result<T> {
        loop {
            let mut found = None;
            self.drain(|p, _| {
                if found.is_none() {
                    found = pick(p);
                }
            })?;
            if let Some(found) = found {
                return Ok(found);
            }
            match tokio::time::timeout_at(deadline, self.io()).await {
                Ok(result) => result?,
                Err(_) => bail!("no answer before the deadline"),
            };
        }
    }

    /// Waits until the stream can read, or write while the write buffer holds something,
    /// then reads what is there (into the read buffer) and writes what it can. Returns the
    /// number of bytes read. Cancel-safe: nothing is read or written in a poll that
    /// returns `Pending`.
    ///
    /// Each poll tries a write (if there is something to write) and a read; tokio skips
    /// the syscall of a direction the socket is not ready for. With TLS a write may leave
    /// encrypted records in rustls's buffer when the socket is full: the flush sends them
    /// and, if it cannot, waits for the socket too; finishing such a flush counts as
    /// progress (the call returns), like a write.
    ///
    /// # Errors
    /// The stream failed, or the broker closed it (`UnexpectedEof`).
    pub(crate) async fn io(&mut self) -> io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 4 {
            self.rbuf.reserve(self.read_chunk);
        }
        let spare = self.rbuf.capacity() - self.rbuf.len();
        let Self {
            stream,
            rbuf,
            wbuf,
            flushed,
            ..
        } = self;
        let read = poll_fn(|cx| {
            let mut progress = false;
            if !wbuf.is_empty() {
                match Pin::new(&mut *stream).poll_write(cx, wbuf) {
                    Poll::Ready(Ok(n)) => {
                        wbuf.advance(n);
                        progress = n > 0;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            match Pin::new(&mut *stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    progress |= !*flushed;
                    *flushed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => *flushed = false,
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut *stream), cx, rbuf) {
                Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Poll::Ready(result) => Poll::Ready(result),
                Poll::Pending if progress => Poll::Ready(Ok(0)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        if read == spare {
            self.read_chunk = (self.read_chunk * 2).min(READ_MAX);
        }
        Ok(read)
    }

    /// Like [`Conn::io`], but gives up quietly after `wait` (returns `Ok(0)`).
    pub(crate) async fn io_for(&mut self, wait: Duration) -> io::Result<usize> {
        tokio::time::timeout(wait, self.io()).await.unwrap_or(Ok(0))
    }

    /// Hands every complete packet in the read buffer to `f`, with the write buffer for
    /// replies, and drops the bytes it consumed.
    ///
    /// # Errors
    /// The broker sent bytes that are not MQTT; the buffer is left as it was.
    pub(crate) fn drain(
        &mut self,
        mut f: impl FnMut(Packet<'_>, &mut BytesMut),
    ) -> anyhow::Result<()> {
        let mut at = 0;
        while let Some((packet, used)) =
            packet::decode(&self.rbuf[at..]).context("decoding the broker's packets")?
        {
            f(packet, &mut self.wbuf);
            at += used;
        }
        self.rbuf.advance(at);
        Ok(())
    }
}
