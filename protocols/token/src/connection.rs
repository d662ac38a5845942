//! One token connection: a struct with one `run` loop (STYLE 12) that `select!`s over
//! inbound tokens, the session's outbound queue and shutdown.
//!
//! Tokens are read one at a time: each becomes a `set` on the inbound path, and the next
//! is read once the core has taken it (a publisher waits while a subscriber's queue is
//! full: the core's backpressure). Events are written in batches: whatever wakes the
//! loop, it then takes every event already queued, up to [`WRITE_BATCH`], and writes them
//! with one flush, within the write timeout. A client that stops reading is dropped after
//! that timeout; meanwhile its events wait in its session's bounded queue (the core's
//! overflow policy applies), so it never stalls anyone else.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt as _, SinkExt, StreamExt as _};
use pathmq_core::{
    BoxIo, CloseReason, EventKind, Outbound, Path, Payload, Request, Session, SetOptions, now_ms,
};
use tokio_util::codec::{Framed, LengthDelimitedCodec, LengthDelimitedCodecError};
use tokio_util::sync::CancellationToken;

use crate::config::Mode;

/// Whether a read error is the codec's refusal of a length prefix above the limit.
fn is_oversized(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
}

/// Events gathered for one write.
const WRITE_BATCH: usize = 256;

/// Why the loop ended, and so how the connection is closed.
#[derive(Debug)]
enum End {
    /// The server ends the connection (shutdown, session ended, queue full): the stream
    /// is closed.
    Server(String),
    /// The client broke the protocol (an oversized or truncated token) or may no longer
    /// write to its inbound path (401, 403): the stream is closed.
    Client(String),
    /// The client closed its side.
    PeerClosed,
    /// The stream failed; nothing more can be written.
    Broken,
}

/// A client connection after its handshake.
pub(crate) struct Connection {
    framed: Framed<BoxIo, LengthDelimitedCodec>,
    session: Session,
    shutdown: CancellationToken,
    inbound: Path,
    mode: Mode,
    max_token: usize,
    write_timeout: Duration,
    /// Tokens for the next write, in order.
    out: Vec<Bytes>,
}

impl Connection {
    pub(crate) fn new(
        io: BoxIo,
        session: Session,
        inbound: Path,
        settings: &crate::config::Settings,
    ) -> Self {
        let max_token = settings.config.max_token;
        // 4-byte big-endian length, then the payload (the default layout), both ways.
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .big_endian()
            .max_frame_length(max_token)
            .new_codec();
        Self {
            framed: Framed::new(io, codec),
            shutdown: session.core().shutdown_token().clone(),
            session,
            inbound,
            mode: settings.config.mode,
            max_token,
            write_timeout: settings.write_timeout,
            out: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        tracing::debug!("token connection open");
        let end = loop {
            let woke = tokio::select! {
                () = self.shutdown.cancelled() => Err(End::Server(CloseReason::Shutdown.to_string())),
                outbound = self.session.recv() => self.outbound(outbound),
                frame = self.framed.next() => self.inbound(frame).await,
            };
            let woke = woke.and_then(|()| self.gather());
            // Written even when the loop ends: the server's last tokens reach the client.
            if !self.flush().await {
                break End::Broken;
            }
            if let Err(end) = woke {
                break end;
            }
        };
        match &end {
            End::Server(reason) => tracing::info!(%reason, "server ends the token connection"),
            End::Client(reason) => tracing::info!(%reason, "closing the token connection"),
            End::PeerClosed | End::Broken => {}
        }
        if !matches!(end, End::Broken) {
            // TLS close_notify, then FIN; a client that does not read gets the timeout.
            let close = SinkExt::<Bytes>::close(&mut self.framed);
            let _ = tokio::time::timeout(self.write_timeout, close).await;
        }
        tracing::debug!(?end, "token connection closed");
    }

    /// Takes the events already queued, without waiting, up to [`WRITE_BATCH`].
    fn gather(&mut self) -> Result<(), End> {
        while self.out.len() < WRITE_BATCH {
            // `recv` is cancel-safe: a message not ready now stays queued.
            match self.session.recv().now_or_never() {
                Some(outbound) => self.outbound(outbound)?,
                None => break,
            }
        }
        Ok(())
    }

    /// Takes one message of the session's queue: a set event's payload bytes, exactly as
    /// published, become a token.
    fn outbound(&mut self, outbound: Option<Outbound>) -> Result<(), End> {
        match outbound {
            Some(Outbound::Event { event, .. }) => {
                if event.kind != EventKind::Set || event.expired(now_ms()) {
                    return Ok(());
                }
                let size = event.payload.bytes.len();
                if size > self.max_token {
                    tracing::warn!(
                        path = %event.path,
                        size,
                        max_token = self.max_token,
                        "event larger than token.max_token not sent"
                    );
                    return Ok(());
                }
                self.out.push(event.payload.bytes.clone());
                Ok(())
            }
            Some(Outbound::Close(reason)) => Err(End::Server(reason.to_string())),
            Some(other) => {
                tracing::debug!(?other, "ignoring an outbound message tokens do not carry");
                Ok(())
            }
            None => Err(End::Server(CloseReason::Shutdown.to_string())),
        }
    }

    /// Takes one inbound token: a `set` on the inbound path. An error the client can do
    /// nothing about per token (401, 403) ends the connection; any other drops the token.
    async fn inbound(&mut self, frame: Option<std::io::Result<BytesMut>>) -> Result<(), End> {
        let token = match frame {
            None => return Err(End::PeerClosed),
            Some(Ok(token)) => token,
            Some(Err(error)) if is_oversized(&error) => {
                return Err(End::Client(format!(
                    "token larger than token.max_token ({} bytes)",
                    self.max_token
                )));
            }
            Some(Err(error)) if error.kind() == std::io::ErrorKind::Other => {
                // The stream ended inside a token (`bytes remaining on stream`).
                return Err(End::Client(format!("truncated token: {error}")));
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "read failed");
                return Err(End::Broken);
            }
        };
        let (bytes, no_store) = match self.mode {
            // A live token shares the read buffer; a stored one is copied out of it, so
            // the record does not keep the whole chunk alive.
            Mode::Publish => (token.freeze(), true),
            Mode::Set => (Bytes::copy_from_slice(&token), false),
        };
        let size = bytes.len();
        let request = Request::Set {
            path: self.inbound.clone(),
            // The bytes as received (DESIGN.md §4): MQTT subscribers get them unchanged.
            payload: Payload::detect(bytes),
            options: SetOptions {
                no_store,
                // As for native writers: MQTT subscribers get it at up to QoS 1.
                qos: 1,
                ..SetOptions::default()
            },
        };
        match self.session.request(request).await {
            Ok(_) => Ok(()),
            Err(error) if matches!(error.code(), 401 | 403) => Err(End::Client(format!(
                "may not write to {}: {error} ({})",
                self.inbound,
                error.code()
            ))),
            Err(error) => {
                tracing::warn!(
                    %error,
                    code = error.code(),
                    size,
                    path = %self.inbound,
                    "token dropped"
                );
                Ok(())
            }
        }
    }

    /// Writes the gathered tokens with one flush, within the write timeout; `false` when
    /// the stream is broken or the client did not read in time.
    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let (framed, out) = (&mut self.framed, &mut self.out);
        let write = async move {
            for token in out.drain(..) {
                framed.feed(token).await?;
            }
            SinkExt::<Bytes>::flush(framed).await
        };
        let written = tokio::time::timeout(self.write_timeout, write).await;
        if self.out.capacity() > WRITE_BATCH {
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
                    "token client stopped reading; dropping the connection"
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::codec::Decoder as _;

    use super::*;

    /// Guards the log line that names the limit: the codec's refusal is told apart from
    /// other read errors.
    #[test]
    fn an_oversized_length_prefix_is_recognised() {
        let mut codec = LengthDelimitedCodec::builder()
            .max_frame_length(4)
            .new_codec();
        let mut buf = BytesMut::from(&[0u8, 0, 0, 5, 1][..]);
        let error = codec.decode(&mut buf).unwrap_err();
        assert!(is_oversized(&error));
        let other = std::io::Error::other("bytes remaining on stream");
        assert!(!is_oversized(&other));
    }
}
