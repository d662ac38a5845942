//! What the token tests share: a test PKI made with rcgen (a CA, server and client
//! certificates, expired ones), a core serving the token protocol on `127.0.0.1:0` through
//! the core's own TLS accept loop, a token client over tokio-rustls, and in-process
//! sessions that watch or write paths. Every wait is bounded.
#![allow(dead_code, unreachable_pub)] // each test file uses part of it

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use pathmq_core::transport::{Limits, PemSource, TlsAcceptor, TlsSettings, run_tcp, run_tls};
use pathmq_core::{BoxIo, Core, Event, OnOptions, Outbound, Path, Pattern, Payload, Request};
use pathmq_core::{Session, SetOptions};
use pathmq_token::{Token, TokenConfig};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// The longest any single step of a test may wait.
pub const WAIT: Duration = Duration::from_secs(10);

pub use pathmq_test_pki::{Ca, Identity};

/// How the listener treats client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain TCP.
    Off,
    /// TLS; a client certificate is optional but must verify when sent.
    Optional,
    /// TLS; a client without a verified certificate fails the handshake.
    Required,
}

/// A core serving the token protocol on `127.0.0.1:0`.
pub struct Server {
    pub core: Core,
    pub addr: SocketAddr,
    pub ca: Ca,
}

impl Server {
    /// A core without security, TLS required, with `config`.
    pub async fn start(config: TokenConfig) -> Self {
        let core = Core::builder(pathmq_storage::MemoryStore::new()).build();
        Self::start_on(core, config, Tls::Required).await
    }

    /// `core` serving `config` with `tls`.
    pub async fn start_on(core: Core, config: TokenConfig, tls: Tls) -> Self {
        let ca = Ca::new("token test CA");
        let protocol = Arc::new(Token::new(config).expect("valid token config"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (core2, limits) = (core.clone(), Limits::default());
        let server = ca.server();
        let mut settings = TlsSettings::new(
            PemSource::Inline(server.cert),
            PemSource::Inline(server.key),
        );
        settings.client_ca = Some(PemSource::Inline(ca.pem.clone()));
        settings.require_client_certificate = tls == Tls::Required;
        match tls {
            Tls::Off => tokio::spawn(run_tcp(listener, protocol, core2, limits)),
            Tls::Optional | Tls::Required => {
                let acceptor = TlsAcceptor::new(settings).unwrap();
                tokio::spawn(run_tls(listener, acceptor, protocol, core2, limits))
            }
        };
        Self { core, addr, ca }
    }

    /// Connects over TLS trusting the test CA, presenting `identity` if given.
    pub async fn connect(&self, identity: Option<&Identity>) -> anyhow::Result<Client> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let config = self.ca.client_config(identity);
        let tls = tokio::time::timeout(WAIT, pathmq_test_pki::handshake(tcp, config))
            .await
            .context("TLS handshake timed out")??;
        Ok(Client::new(Box::new(tls)))
    }

    /// Connects with a certificate of the test CA for `cn`.
    pub async fn connect_as(&self, cn: &str) -> Client {
        let identity = self.ca.client(cn);
        self.connect(Some(&identity)).await.expect("TLS connect")
    }

    /// Connects over plain TCP.
    pub async fn connect_plain(&self) -> Client {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        Client::new(Box::new(tcp))
    }

    /// An in-process session subscribed to `pattern`.
    pub async fn watch(&self, pattern: &str) -> Session {
        let session = self.core.open_session("test", None, None);
        subscribe(&session, pattern).await;
        session
    }

    /// An in-process session to write with.
    pub fn writer(&self) -> Session {
        self.core.open_session("test", None, None)
    }
}

/// Subscribes `session` to the native pattern `pattern`.
pub async fn subscribe(session: &Session, pattern: &str) {
    let request = Request::On {
        pattern: Pattern::native(pattern).unwrap(),
        options: OnOptions::default(),
    };
    session.request(request).await.expect("subscribe");
}

/// Publishes (`store`: sets) `payload` at `path` from `session`.
pub async fn write(session: &Session, path: &str, payload: Payload, store: bool) {
    let request = Request::Set {
        path: Path::parse(path).unwrap(),
        payload,
        options: SetOptions {
            no_store: !store,
            ..SetOptions::default()
        },
    };
    session.request(request).await.expect("set");
}

/// The next event `session` receives.
pub async fn next_event(session: &Session) -> Arc<Event> {
    loop {
        let outbound = tokio::time::timeout(WAIT, session.recv())
            .await
            .expect("an event in time")
            .expect("the core is there");
        match outbound {
            Outbound::Event { event, .. } => return event,
            Outbound::Close(reason) => panic!("the session was closed: {reason}"),
            _ => {}
        }
    }
}

/// A token client: length-prefixed frames over any stream.
pub struct Client {
    framed: Framed<BoxIo, LengthDelimitedCodec>,
}

impl Client {
    pub fn new(io: BoxIo) -> Self {
        Self {
            framed: Framed::new(io, LengthDelimitedCodec::new()),
        }
    }

    /// Sends one token.
    pub async fn send(&mut self, token: &[u8]) -> std::io::Result<()> {
        self.framed.send(Bytes::copy_from_slice(token)).await
    }

    /// Writes raw bytes, bypassing the framing (a hand-made length prefix).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let io = self.framed.get_mut();
        io.write_all(bytes).await?;
        io.flush().await
    }

    /// The next token; `None` when the server closed the stream. Fails on a read error
    /// or after [`WAIT`].
    pub async fn next(&mut self) -> anyhow::Result<Option<BytesMut>> {
        let next = tokio::time::timeout(WAIT, self.framed.next())
            .await
            .context("no token or close in time")?;
        Ok(next.transpose()?)
    }

    /// The next token, which must come.
    pub async fn recv(&mut self) -> Bytes {
        match self.next().await {
            Ok(Some(token)) => token.freeze(),
            other => panic!("expected a token, got {other:?}"),
        }
    }

    /// Waits until the server ends the connection: a close, or a read error (a TLS alert,
    /// a reset). Fails when a token comes instead, or nothing within [`WAIT`].
    pub async fn closed(&mut self) -> anyhow::Result<()> {
        match tokio::time::timeout(WAIT, self.framed.next()).await {
            Err(_) => anyhow::bail!("the connection is still open"),
            Ok(None | Some(Err(_))) => Ok(()),
            Ok(Some(Ok(token))) => anyhow::bail!("got a token instead of a close: {token:?}"),
        }
    }

    /// The stream, to split it.
    pub fn into_inner(self) -> BoxIo {
        self.framed.into_inner()
    }
}
