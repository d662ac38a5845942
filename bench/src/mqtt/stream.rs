//! The byte stream under every MQTT connection of the load generator: plain TCP, or TLS
//! over TCP when `--tls-ca` is given. [`Broker::connect`] is the one place a TCP
//! connection becomes a [`Stream`], so every scenario runs over TLS without knowing it.
//!
//! TLS is rustls with the aws-lc-rs provider and its default protocol versions, cipher
//! suites and key-exchange groups, and no session resumption (every connection does a
//! full handshake); the client trusts exactly the certificates in the `--tls-ca` file (a
//! CA, or the broker's self-signed certificate) and checks that the broker's certificate
//! is valid for `--tls-server-name`.

use std::future::poll_fn;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use anyhow::{Context as _, bail, ensure};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::Common;

/// What the first TLS handshake of this process negotiated (protocol version, cipher
/// suite, key-exchange group), for the report: every connection uses the same settings.
static NEGOTIATED: OnceLock<String> = OnceLock::new();

/// The TLS parameters of this process's first handshake, if it made one.
pub(crate) fn negotiated() -> Option<&'static str> {
    NEGOTIATED.get().map(String::as_str)
}

/// Where the scenarios connect: a loopback address and, with `--tls-ca`, the TLS client
/// settings. Cheap to clone (the TLS settings are shared).
#[derive(Clone)]
pub(crate) struct Broker {
    addr: String,
    tls: Option<Tls>,
}

#[derive(Clone)]
struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl Broker {
    /// The broker of `--host`/`--port`, resolved; only loopback addresses are accepted
    /// (this is a load generator: it must never be pointed at someone else's machine).
    /// With `--tls-ca`, reads the trusted certificates.
    pub(crate) async fn resolve(common: &Common) -> anyhow::Result<Self> {
        let addr = format!("{}:{}", common.host, common.port);
        let resolved: Vec<_> = tokio::net::lookup_host(&addr)
            .await
            .with_context(|| format!("resolving {addr}"))?
            .collect();
        ensure!(!resolved.is_empty(), "{addr} resolves to no address");
        if let Some(other) = resolved.iter().find(|a| !a.ip().is_loopback()) {
            bail!(
                "{addr} resolves to {other}, which is not a loopback address: pathmq-bench only targets this machine"
            );
        }
        let tls = match &common.tls_ca {
            None => None,
            Some(ca) => Some(Tls {
                connector: TlsConnector::from(client_config(ca)?),
                server_name: ServerName::try_from(common.tls_server_name.clone())
                    .with_context(|| format!("--tls-server-name {}", common.tls_server_name))?,
            }),
        };
        Ok(Self {
            addr: resolved[0].to_string(),
            tls,
        })
    }

    /// `ip:port`, for messages.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Opens a TCP connection (Nagle off, like the brokers) and, with TLS, completes the
    /// TLS handshake on it.
    ///
    /// # Errors
    /// Connecting failed, or the TLS handshake did (e.g. a certificate the `--tls-ca` file
    /// does not vouch for: `invalid peer certificate`).
    pub(crate) async fn connect(&self) -> io::Result<Stream> {
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return Ok(Stream::Tcp(tcp));
        };
        let stream = tls.connector.connect(tls.server_name.clone(), tcp).await?;
        NEGOTIATED.get_or_init(|| describe(stream.get_ref().1));
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// A client config trusting the certificates in the PEM file `ca`.
fn client_config(ca: &Path) -> anyhow::Result<Arc<ClientConfig>> {
    let context = || format!("--tls-ca {}", ca.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).with_context(context)? {
        roots
            .add(cert.with_context(context)?)
            .with_context(context)?;
    }
    ensure!(
        !roots.is_empty(),
        "--tls-ca {}: no certificate",
        ca.display()
    );
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every connection stands for a different client, and different clients share no
    // session tickets: each does a full handshake (certificate and all), not a resumption.
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// `TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519`.
fn describe(tls: &rustls::ClientConnection) -> String {
    let version = tls.protocol_version().map(|v| format!("{v:?}"));
    let suite = tls
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    let group = tls
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()));
    [version, suite, group]
        .map(|part| part.unwrap_or_else(|| "?".into()))
        .join(" ")
}

/// A connection's byte stream. The TLS state is boxed: it is large, and idle connections
/// in `connections` are kept by the thousand.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Self::Tcp(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Writes `last` (a DISCONNECT) if the socket takes it right now and, with TLS, the
    /// close_notify alert after it (a TLS peer that reads end-of-stream without one logs
    /// an error); never waits.
    pub(crate) async fn write_last(&mut self, last: &[u8]) {
        unbudgeted(poll_fn(|cx| {
            let _ = Pin::new(&mut *self).poll_write(cx, last);
            if let Self::Tls(tls) = &mut *self {
                tls.get_mut().1.send_close_notify();
            }
            let _ = Pin::new(&mut *self).poll_flush(cx);
            Poll::Ready(())
        }))
        .await
    }

    /// Whether the broker closed the connection: it reads end-of-stream, or fails, now.
    /// Never waits.
    pub(crate) async fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        unbudgeted(poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut byte);
            Poll::Ready(match Pin::new(&mut *self).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => buf.filled().is_empty(),
                Poll::Ready(Err(_)) => true,
                Poll::Pending => false,
            })
        }))
        .await
    }
}

/// Runs `poll` (which never returns `Pending`) outside tokio's cooperative budget. Within
/// the budget a task makes about 128 I/O operations per wake-up, after which every socket
/// reports "not ready" until it yields. The callers above run on a thousand streams in a
/// row, and a "not ready" there would mean a DISCONNECT not sent or a closed connection
/// not seen.
async fn unbudgeted<T>(poll: impl Future<Output = T>) -> T {
    tokio::task::unconstrained(poll).await
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls).poll_shutdown(cx),
        }
    }
}
