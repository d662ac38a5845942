//! One MQTT connection of the load generator: a socket, a read buffer and a write buffer,
//! and no task of its own. The scenario loop that owns it queues packets into the write
//! buffer, calls [`Conn::io`] (which waits until the socket can make progress, then does
//! at most one large read and one large write) and drains the decoded packets with
//! [`Conn::drain`]. So hundreds of publishes or acks go out per syscall, and reading never
//! waits for writing or the other way round.

use std::io;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::packet::{self, Packet};

/// Free space the read buffer starts with: small, so thousands of idle connections cost
/// little here.
const READ_MIN: usize = 4 * 1024;
/// Free space it grows to once a read fills it: large, so a busy subscriber drains the
/// socket in few calls.
const READ_MAX: usize = 256 * 1024;

/// An open MQTT connection (CONNACK received).
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    /// Free space to make before each read ([`READ_MIN`] to [`READ_MAX`]).
    read_chunk: usize,
    /// Encoded packets not yet written.
    pub(crate) wbuf: BytesMut,
}

impl Conn {
    /// Connects to `addr` and completes the CONNECT/CONNACK handshake before `deadline`
    /// (clean session).
    pub(crate) async fn open(
        addr: &str,
        client_id: &str,
        keep_alive: u16,
        deadline: Instant,
    ) -> anyhow::Result<Self> {
        Self::open_session(addr, client_id, keep_alive, true, deadline).await
    }

    /// [`Conn::open`] with clean session `clean` (false: a persistent session).
    pub(crate) async fn open_session(
        addr: &str,
        client_id: &str,
        keep_alive: u16,
        clean: bool,
        deadline: Instant,
    ) -> anyhow::Result<Self> {
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut conn = Self {
            stream,
            rbuf: BytesMut::new(),
            read_chunk: READ_MIN,
            wbuf: BytesMut::with_capacity(256),
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

    /// The bare socket, for connections that stay idle (the buffers are dropped).
    pub(crate) fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Sends DISCONNECT if the socket takes it right away, then closes. Never waits.
    pub(crate) fn close(mut self) {
        self.wbuf.clear();
        packet::disconnect(&mut self.wbuf);
        let _ = self.stream.try_write(&self.wbuf);
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

    /// Waits until the socket is readable, or writable while the write buffer holds
    /// something, then reads what is there (into the read buffer) and writes what it can.
    /// Returns the number of bytes read. Cancel-safe: the only await is the readiness.
    ///
    /// # Errors
    /// The socket failed, or the broker closed it (`UnexpectedEof`).
    pub(crate) async fn io(&mut self) -> io::Result<usize> {
        let interest = if self.wbuf.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        let ready = self.stream.ready(interest).await?;
        if ready.is_writable() && !self.wbuf.is_empty() {
            match self.stream.try_write(&self.wbuf) {
                Ok(n) => self.wbuf.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if ready.is_readable() {
            if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 4 {
                self.rbuf.reserve(self.read_chunk);
            }
            let spare = self.rbuf.capacity() - self.rbuf.len();
            match self.stream.try_read_buf(&mut self.rbuf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    if n == spare {
                        self.read_chunk = (self.read_chunk * 2).min(READ_MAX);
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(0)
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
