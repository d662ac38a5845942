//! A network stream that counts the bytes it reads and writes into the core's counters
//! (`/metrics`, `$SYS/broker/bytes/...`): every accepted connection is wrapped in one, so
//! every protocol and transport (MQTT, native, HTTP and its WebSockets) is counted at the
//! socket, as it crosses the wire.
//!
//! The cost is one uncontended atomic add per read or write call (a striped counter,
//! `crate::stats::Striped`), next to a system call; the connections already batch their
//! reads and writes, so nothing is added per message.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::pipeline::Core;

/// A stream counted into its core's byte counters.
pub(crate) struct Metered<T> {
    inner: T,
    core: Core,
}

impl<T> Metered<T> {
    /// Wraps a newly accepted connection, counting it as accepted.
    pub(crate) fn new(inner: T, core: &Core) -> Self {
        let counters = &core.inner.counters;
        counters
            .accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            inner,
            core: core.clone(),
        }
    }

    fn sent(&self, poll: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = poll
            && *n > 0
        {
            self.core.inner.counters.bytes_sent.add(*n as u64);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Metered<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let n = buf.filled().len().saturating_sub(before);
            if n > 0 {
                self.core.inner.counters.bytes_received.add(n as u64);
            }
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Metered<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.sent(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.sent(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn counts_bytes_both_ways_and_the_connection() {
        let core = Core::builder(crate::security::mem_store::MemStore::default()).build();
        let (near, mut far) = tokio::io::duplex(64);
        let mut metered = Metered::new(near, &core);
        metered.write_all(b"hello").await.unwrap();
        let mut got = [0; 5];
        far.read_exact(&mut got).await.unwrap();
        far.write_all(b"abc").await.unwrap();
        let mut back = [0; 3];
        metered.read_exact(&mut back).await.unwrap();
        let stats = core.stats();
        assert_eq!((stats.bytes_sent, stats.bytes_received), (5, 3));
        assert_eq!(stats.connections_accepted, 1);
    }
}
