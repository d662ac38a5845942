//! What a connection reads MQTT bytes from and writes them to: a byte stream (TCP, TLS)
//! or WebSocket binary messages (MQTT over WebSocket, MQTT 5 §6). The connection state
//! machine is generic over this trait, so it exists once for both.

use std::future::Future;
use std::io;

use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use pathmq_core::{BoxIo, WebSocket};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;

/// The smallest free space a read asks for, in bytes: what an idle connection holds.
const MIN_READ: usize = 128;

/// The largest free space a read asks for, in bytes, while data keeps coming.
const MAX_READ: usize = 64 * 1024;

/// A write buffer above this capacity, in bytes, is released once written, so a burst
/// does not leave its buffer behind on an idle connection.
const KEEP_WRITE_CAPACITY: usize = 16 * 1024;

/// A bidirectional MQTT byte stream.
pub(crate) trait Transport: Send {
    /// Appends the next bytes from the client to `buf` and returns how many; `Ok(0)` when
    /// the client closed the connection. Cancel-safe: nothing is lost when the future is
    /// dropped before it completes.
    fn read(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send;

    /// Writes and flushes all of `buf`, leaving it empty (its capacity is reused for TCP).
    /// Not cancel-safe: a cancelled write leaves a partial packet on the wire, so the
    /// connection must then close without writing more.
    fn write(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<()>> + Send;

    /// Closes the connection (TCP shutdown, WebSocket close frame), ignoring errors.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// A byte stream: every byte read is MQTT.
///
/// Reads ask for as much free space as the traffic needs: [`MIN_READ`] on an idle
/// connection (a pending read holds its buffer, so this is most of an idle connection's
/// memory), doubling up to [`MAX_READ`] while reads fill the space, halving back as
/// traffic drops. A drained read buffer much larger than needed is released.
pub(crate) struct StreamTransport {
    io: BoxIo,
    /// Free space the next read asks for, in bytes.
    read_size: usize,
}

impl StreamTransport {
    /// Wraps a byte stream.
    pub(crate) fn new(io: BoxIo) -> Self {
        Self {
            io,
            read_size: MIN_READ,
        }
    }
}

impl Transport for StreamTransport {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.is_empty() && buf.capacity() > 4 * self.read_size {
            *buf = BytesMut::new();
        }
        buf.reserve(self.read_size);
        let asked = buf.capacity() - buf.len();
        let n = self.io.read_buf(buf).await?;
        self.read_size = if n >= asked {
            (self.read_size * 2).min(MAX_READ)
        } else if n < asked / 4 {
            (self.read_size / 2).max(MIN_READ)
        } else {
            self.read_size
        };
        Ok(n)
    }

    async fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        self.io.write_all(buf).await?;
        if buf.capacity() > KEEP_WRITE_CAPACITY {
            *buf = BytesMut::new();
        } else {
            buf.clear();
        }
        self.io.flush().await
    }

    async fn close(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

/// MQTT over WebSocket: binary messages carry the byte stream, and a message may hold part
/// of a packet or several packets [MQTT-6.0.0-2]. Each write is one binary message.
pub(crate) struct WebSocketTransport {
    ws: WebSocket,
}

impl WebSocketTransport {
    /// Wraps an upgraded WebSocket.
    pub(crate) fn new(ws: WebSocket) -> Self {
        Self { ws }
    }
}

impl Transport for WebSocketTransport {
    /// # Errors
    /// `InvalidData` for a text message, which ends the connection [MQTT-6.0.0-1].
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(0),
                Some(Ok(Message::Binary(bytes))) if !bytes.is_empty() => {
                    buf.extend_from_slice(&bytes);
                    return Ok(bytes.len());
                }
                Some(Ok(Message::Text(_))) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text WebSocket message: MQTT needs binary messages [MQTT-6.0.0-1]",
                    ));
                }
                // Empty binary messages carry nothing; pings are answered by tungstenite.
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(io::Error::other(error)),
            }
        }
    }

    async fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        let message = Message::Binary(buf.split().freeze());
        self.ws.send(message).await.map_err(io::Error::other)
    }

    async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }
}
