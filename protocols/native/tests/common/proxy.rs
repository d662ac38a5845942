//! A TCP proxy on `127.0.0.1:0` between a client and the broker, for tests that cut a
//! client's connection from outside (the network failing, not the client or the broker
//! deciding) or watch the frames a client sends.
//!
//! Cutting ends the connections open now; the proxy keeps accepting, so a client that
//! reconnects gets through. Tapping reads the client's length-prefixed TCP frames as JSON
//! on their way to the broker.

#![allow(dead_code)] // Each test file uses a different part of the helper.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::common::WAIT;

/// A running proxy. Dropping it stops accepting; connections end with their sockets.
pub(crate) struct Proxy {
    /// Where clients connect.
    pub(crate) addr: SocketAddr,
    cut: Arc<Mutex<CancellationToken>>,
    frames: mpsc::UnboundedReceiver<Value>,
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

impl Proxy {
    /// A proxy to `upstream` that forwards bytes as they are.
    pub(crate) async fn start(upstream: SocketAddr) -> Result<Self> {
        Self::spawn(upstream, false).await
    }

    /// A proxy to a length-prefixed TCP `upstream` that also reports each frame the
    /// client sends ([`Proxy::sent`]).
    pub(crate) async fn tapped(upstream: SocketAddr) -> Result<Self> {
        Self::spawn(upstream, true).await
    }

    async fn spawn(upstream: SocketAddr, tap: bool) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let (sent, frames) = mpsc::unbounded_channel();
        let tokens = cut.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let token = tokens.lock().unwrap().clone();
                let sent = tap.then(|| sent.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = token.cancelled() => {}
                        () = forward(client, server, sent) => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            cut,
            frames,
            accept,
        })
    }

    /// Ends every connection open now, from outside: both sockets close at once.
    pub(crate) fn cut(&self) {
        let mut token = self.cut.lock().unwrap();
        token.cancel();
        *token = CancellationToken::new();
    }

    /// The next frame a client sent through a tapped proxy. Fails after [`WAIT`].
    pub(crate) async fn sent(&mut self) -> Result<Value> {
        tokio::time::timeout(WAIT, self.frames.recv())
            .await
            .context("no frame from the client in time")?
            .context("the proxy stopped")
    }

    /// The next frame a client sent with this `action`, skipping others.
    pub(crate) async fn sent_action(&mut self, action: &str) -> Result<Value> {
        loop {
            let frame = self.sent().await?;
            if frame["action"] == action {
                return Ok(frame);
            }
        }
    }
}

/// Forwards both ways until either side closes; with `sent`, reads the client's frames.
async fn forward(
    mut client: TcpStream,
    mut server: TcpStream,
    sent: Option<mpsc::UnboundedSender<Value>>,
) {
    let Some(sent) = sent else {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    };
    let (client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async move {
        let mut frames = FramedRead::new(client_read, LengthDelimitedCodec::new());
        while let Some(Ok(frame)) = frames.next().await {
            if let Ok(value) = serde_json::from_slice(&frame) {
                let _ = sent.send(value);
            }
            let len = (frame.len() as u32).to_be_bytes();
            if server_write.write_all(&len).await.is_err()
                || server_write.write_all(&frame).await.is_err()
            {
                return;
            }
        }
    };
    let down = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        () = up => {}
        _ = down => {}
    }
}
