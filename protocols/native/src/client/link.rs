//! The remote client's transports (DESIGN.md §5): a WebSocket carrying one JSON text
//! message per frame, or a TCP stream with a 4-byte big-endian length before each frame.
//!
//! A connection is split in two: the [`Reader`] stays with the connection task, the
//! [`Writer`] goes to a writer task fed through a bounded queue ([`spawn_writer`]), so
//! that reading never waits for a slow write and a burst of requests is written with one
//! flush.

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use super::config::Endpoint;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Frames written with one flush, at most, when they are already queued.
const WRITE_BATCH: usize = 256;

/// Why the transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum LinkError {
    /// A socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A WebSocket error (handshake refused, protocol violation, message over the limit).
    #[error(transparent)]
    WebSocket(#[from] tungstenite::Error),
}

/// The reading half of a connection.
pub(crate) enum Reader {
    /// WebSocket messages.
    Ws(SplitStream<Ws>),
    /// Length-prefixed frames.
    Tcp(FramedRead<OwnedReadHalf, LengthDelimitedCodec>),
}

/// The writing half of a connection.
pub(crate) enum Writer {
    /// WebSocket messages.
    Ws(SplitSink<Ws, Message>),
    /// Length-prefixed frames.
    Tcp(FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>),
}

/// Opens a connection to `endpoint`, accepting frames of at most `max_frame` bytes.
///
/// # Errors
/// [`LinkError`]: the connection or the WebSocket upgrade failed.
pub(crate) async fn open(
    endpoint: &Endpoint,
    max_frame: usize,
) -> Result<(Reader, Writer), LinkError> {
    match endpoint {
        Endpoint::WebSocket(url) => {
            let config = WebSocketConfig::default()
                .max_message_size(Some(max_frame))
                .max_frame_size(Some(max_frame));
            // Nagle off: requests are small and answered one by one.
            let (ws, _) =
                tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                    .await?;
            let (sink, stream) = ws.split();
            Ok((Reader::Ws(stream), Writer::Ws(sink)))
        }
        Endpoint::Tcp(address) => {
            let stream = TcpStream::connect(address.as_str()).await?;
            stream.set_nodelay(true)?;
            let (read, write) = stream.into_split();
            let codec = || {
                LengthDelimitedCodec::builder()
                    .length_field_length(4)
                    .big_endian()
                    .max_frame_length(max_frame)
                    .new_codec()
            };
            Ok((
                Reader::Tcp(FramedRead::new(read, codec())),
                Writer::Tcp(FramedWrite::new(write, codec())),
            ))
        }
    }
}

impl Reader {
    /// The next frame; `None` once the broker closed the connection. Cancel-safe.
    ///
    /// # Errors
    /// [`LinkError`]: the connection is broken.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, LinkError>> {
        match self {
            Self::Ws(stream) => loop {
                match stream.next().await? {
                    Ok(Message::Text(text)) => return Some(Ok(text.into())),
                    Ok(Message::Binary(bytes)) => return Some(Ok(bytes)),
                    Ok(Message::Close(_)) => return None,
                    // WebSocket pings are answered by tungstenite.
                    Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                    Err(error) => return Some(Err(error.into())),
                }
            },
            Self::Tcp(framed) => Some(
                framed
                    .next()
                    .await?
                    .map(BytesMut::freeze)
                    .map_err(LinkError::from),
            ),
        }
    }
}

impl Writer {
    async fn feed(&mut self, frame: Bytes) -> Result<(), LinkError> {
        match self {
            Self::Ws(sink) => {
                let text = Utf8Bytes::try_from(frame)
                    .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?;
                sink.feed(Message::Text(text)).await?;
            }
            Self::Tcp(framed) => framed.feed(frame).await?,
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), LinkError> {
        match self {
            Self::Ws(sink) => sink.flush().await?,
            Self::Tcp(framed) => SinkExt::<Bytes>::flush(framed).await?,
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), LinkError> {
        match self {
            Self::Ws(sink) => sink.close().await?,
            Self::Tcp(framed) => SinkExt::<Bytes>::close(framed).await?,
        }
        Ok(())
    }
}

/// The writer task of a connection: writes the frames of `frames` in order, a batch per
/// flush; when `frames` is closed, closes the connection (a WebSocket close frame, or a
/// TCP shutdown). Ends at the first write error, which the connection task sees as a
/// closed queue.
pub(crate) fn spawn_writer(
    mut writer: Writer,
    mut frames: mpsc::Receiver<Bytes>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(frame) = frames.recv().await {
            let mut result = writer.feed(frame).await;
            let mut batch = 1;
            while result.is_ok() && batch < WRITE_BATCH {
                let Ok(frame) = frames.try_recv() else { break };
                result = writer.feed(frame).await;
                batch += 1;
            }
            let result = match result {
                Ok(()) => writer.flush().await,
                failed => failed,
            };
            if let Err(error) = result {
                tracing::debug!(%error, "write failed");
                return;
            }
        }
        if let Err(error) = writer.close().await {
            tracing::debug!(%error, "closing the connection failed");
        }
    })
}
