//! The two ways native frames travel (DESIGN.md §5): WebSocket messages, or
//! length-prefixed frames on a byte stream (TCP, later TLS). One connection loop drives
//! either through [`Transport`], so both speak exactly the same protocol.

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use pathmq_core::{BoxIo, WebSocket};
use tokio::io::AsyncWriteExt as _;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::codec::Framed;

use crate::codec::{FrameCodec, StreamFrame};
use crate::error::TransportError;

/// What a read produced.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// One frame's JSON text.
    Frame(Bytes),
    /// A frame over the limit, of this many bytes; it was not kept.
    TooLarge(usize),
    /// Nothing for the protocol (a WebSocket ping or pong, which tungstenite answers).
    Nothing,
}

/// A connection's transport.
pub(crate) enum Transport {
    /// An upgraded WebSocket: one JSON text message per frame.
    WebSocket {
        /// The socket.
        ws: Box<WebSocket>,
        /// The largest message accepted, in bytes.
        max: usize,
    },
    /// A byte stream with 4-byte big-endian length prefixes.
    Stream(Box<Framed<BoxIo, FrameCodec>>),
}

impl Transport {
    /// A length-prefixed transport over `io`, accepting frames of at most `max` bytes.
    pub(crate) fn stream(io: BoxIo, max: usize) -> Self {
        Self::Stream(Box::new(Framed::new(io, FrameCodec::new(max))))
    }

    /// `"ws"` or `"tcp"`, for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::WebSocket { .. } => "ws",
            Self::Stream(_) => "tcp",
        }
    }

    /// The next inbound item; `None` once the peer closed. Cancel-safe: a cancelled read
    /// loses nothing.
    ///
    /// # Errors
    /// [`TransportError`]: the connection is broken and must end.
    pub(crate) async fn read(&mut self) -> Option<Result<Incoming, TransportError>> {
        match self {
            Self::WebSocket { ws, max } => {
                let message = match ws.next().await? {
                    Ok(message) => message,
                    Err(error) => return Some(Err(error.into())),
                };
                let frame: Bytes = match message {
                    Message::Text(text) => text.into(),
                    Message::Binary(bytes) => bytes,
                    Message::Close(_) => return None,
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                        return Some(Ok(Incoming::Nothing));
                    }
                };
                Some(Ok(if frame.len() > *max {
                    Incoming::TooLarge(frame.len())
                } else {
                    Incoming::Frame(frame)
                }))
            }
            Self::Stream(framed) => Some(match framed.next().await? {
                Ok(StreamFrame::Frame(frame)) => Ok(Incoming::Frame(frame.freeze())),
                Ok(StreamFrame::TooLarge(size)) => Ok(Incoming::TooLarge(size)),
                Err(error) => Err(error.into()),
            }),
        }
    }

    /// Writes frames in order and flushes once.
    ///
    /// # Errors
    /// [`TransportError`]: the connection is broken and must end; some frames may have
    /// been sent.
    pub(crate) async fn write(
        &mut self,
        frames: impl IntoIterator<Item = Bytes>,
    ) -> Result<(), TransportError> {
        match self {
            Self::WebSocket { ws, .. } => {
                for frame in frames {
                    match Utf8Bytes::try_from(frame) {
                        Ok(text) => ws.feed(Message::Text(text)).await?,
                        // Frames are serde_json output and UTF-8-checked JSON payloads
                        // (`Payload::detect`, `Payload::native_json`): not expected.
                        Err(error) => tracing::error!(%error, "dropping a non-UTF-8 frame"),
                    }
                }
                ws.flush().await?;
            }
            Self::Stream(framed) => {
                for frame in frames {
                    framed.feed(frame).await?;
                }
                framed.flush().await?;
            }
        }
        Ok(())
    }

    /// Closes the connection: a WebSocket close frame, or a stream shutdown. Errors are
    /// only logged: the connection is ending either way.
    pub(crate) async fn close(&mut self) {
        let result = match self {
            // The inherent close (sends a Close frame), not `SinkExt::close` on the box.
            Self::WebSocket { ws, .. } => tokio_tungstenite::WebSocketStream::close(ws, None)
                .await
                .map_err(TransportError::from),
            Self::Stream(framed) => framed
                .get_mut()
                .shutdown()
                .await
                .map_err(TransportError::from),
        };
        if let Err(error) = result {
            tracing::debug!(%error, "closing the transport failed");
        }
    }
}
