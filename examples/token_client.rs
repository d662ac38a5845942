//! The token-server example (`reference/token-server.md`) on pathmq: a broker with the
//! token protocol over TLS with client certificates, a TokenClient that sends `Hello!`,
//! and an in-process replier that answers `I am happy to see you!`.
//!
//! ```text
//! cargo run --example token_client
//! ```
//!
//! It generates a CA, a server certificate and a client certificate (CN `client`) into a
//! temporary folder, starts a broker in this process with a token listener on
//! `127.0.0.1:<free port>` and a replier subscribed to `/tokens/*/in`, connects, sends one
//! token and prints the answer. To talk to a broker elsewhere instead (something must
//! answer on `/tokens/<your CN>/out` there):
//!
//! ```text
//! cargo run --example token_client -- --connect 127.0.0.1:8090 \
//!     --ca ca.pem --cert client.pem --key client.key [--server-name localhost]
//! ```
//!
//! The wire format is all in `TokenClient`: a 4-byte big-endian length, then the bytes.
//! `cargo test` runs this example too, and it stops within 20 seconds either way.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pathmq::core::{OnOptions, Outbound, Pattern, Payload, Request, SetOptions};
use pathmq_token::{Token, TokenConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The largest token this client accepts (the server's default `max_token`).
const MAX_TOKEN: usize = 1024 * 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // cargo-nextest lists a test binary's tests first: answer as a test harness would
    // (this example is one test), then it runs us again to run it.
    if std::env::args().any(|arg| arg == "--list") {
        println!("token_client: test");
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    tokio::time::timeout(Duration::from_secs(20), run())
        .await
        .context("the example did not finish within 20 s")?
}

async fn run() -> anyhow::Result<()> {
    if let Some(remote) = Remote::from_args()? {
        let mut client = TokenClient::connect(&remote).await?;
        return hello(&mut client).await;
    }
    let dir = tempfile::tempdir()?;
    let files = Pki::generate(dir.path())?;
    let broker = start_broker(&files).await?;
    let addr = broker
        .listener_addr("token")
        .context("the token listener is not running")?;
    replier(&broker).await?;
    let remote = Remote {
        addr: addr.to_string(),
        server_name: "localhost".into(),
        ca: files.ca,
        cert: files.client_cert,
        key: files.client_key,
    };
    let mut client = TokenClient::connect(&remote).await?;
    let result = hello(&mut client).await;
    client.close().await;
    broker.shutdown().await;
    result
}

/// Sends `Hello!` and prints the answer (reference: the client's `token` event).
async fn hello(client: &mut TokenClient) -> anyhow::Result<()> {
    client.send(b"Hello!").await?;
    let answer = tokio::time::timeout(Duration::from_secs(10), client.recv())
        .await
        .context("no answer within 10 s")??
        .context("the server closed the connection")?;
    println!("The server responds: {}", String::from_utf8_lossy(&answer));
    Ok(())
}

/// A broker with only a token listener (TLS, client certificates required), in memory.
async fn start_broker(files: &Pki) -> anyhow::Result<pathmq::RunningBroker> {
    // Single-quoted TOML strings: a Windows path's backslashes stay as they are.
    let config = pathmq::config::Config::from_toml(&format!(
        "[http]\nenabled = false\n[mqtt]\nenabled = false\n[storage]\nengine = 'memory'\n\
         [tls]\ncert_path = '{}'\nkey_path = '{}'\nclient_ca_path = '{}'\n\
         require_client_certificate = true\n",
        files.server_cert.display(),
        files.server_key.display(),
        files.ca.display(),
    ))?;
    let mut token = TokenConfig::default();
    token.listen = "127.0.0.1:0".parse()?;
    let listen = token.listen;
    let protocol = Arc::new(Token::new(token)?);
    let listener = pathmq::ProtocolListener::new("token", listen, protocol).tls(true);
    let broker = pathmq::Broker::builder()
        .config(config)
        .listener(listener)
        .start()
        .await?;
    Ok(broker)
}

/// The server side of the reference example, in process: every token on
/// `/tokens/<CN>/in` is printed and answered on `/tokens/<CN>/out`.
async fn replier(broker: &pathmq::RunningBroker) -> anyhow::Result<()> {
    let session = broker.core().open_session("example", None, None);
    let on = Request::On {
        pattern: Pattern::native("/tokens/*/in")?,
        options: OnOptions::default(),
    };
    session.request(on).await?;
    tokio::spawn(async move {
        while let Some(message) = session.recv().await {
            let event = match message {
                Outbound::Event { event, .. } => event,
                // The broker is shutting down: this session's last message.
                Outbound::Close(_) => break,
                _ => continue,
            };
            println!(
                "The client says: {}",
                String::from_utf8_lossy(&event.payload.bytes)
            );
            let Some(out) = event
                .path
                .as_str()
                .strip_suffix("/in")
                .map(|p| format!("{p}/out"))
            else {
                continue;
            };
            let answer = Request::Set {
                path: pathmq::core::Path::parse(&out).expect("a path with /out"),
                payload: Payload::detect("I am happy to see you!".into()),
                options: SetOptions {
                    no_store: true,
                    ..SetOptions::default()
                },
            };
            if let Err(error) = session.request(answer).await {
                eprintln!("answering failed: {error}");
            }
        }
    });
    Ok(())
}

/// The certificate files: a CA, the server's (for `localhost`) and the client's
/// (CN `client`).
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn generate(dir: &Path) -> anyhow::Result<Self> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "token example CA");
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |cn: &str, names: Vec<String>| -> anyhow::Result<(String, String)> {
            let mut params = CertificateParams::new(names)?;
            params.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &issuer)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let (server_cert, server_key) = leaf("localhost", names)?;
        let (client_cert, client_key) = leaf("client", Vec::new())?;
        let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        Ok(Self {
            ca: write("ca.pem", &ca_cert.pem())?,
            server_cert: write("server.pem", &server_cert)?,
            server_key: write("server.key", &server_key)?,
            client_cert: write("client.pem", &client_cert)?,
            client_key: write("client.key", &client_key)?,
        })
    }
}

/// Where and how to connect.
struct Remote {
    addr: String,
    server_name: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Remote {
    /// `--connect ADDR --ca F --cert F --key F [--server-name N]`; `None` without
    /// `--connect`. Other arguments are ignored, and all of them under `cargo test`
    /// (which may pass its own, such as `--nocapture`).
    fn from_args() -> anyhow::Result<Option<Self>> {
        if cfg!(test) {
            return Ok(None);
        }
        let mut args = std::env::args().skip(1);
        let (mut addr, mut ca, mut cert, mut key) = (None, None, None, None);
        let mut server_name = "localhost".to_owned();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--connect" => addr = Some(value()?),
                "--ca" => ca = Some(PathBuf::from(value()?)),
                "--cert" => cert = Some(PathBuf::from(value()?)),
                "--key" => key = Some(PathBuf::from(value()?)),
                "--server-name" => server_name = value()?,
                _ => {}
            }
        }
        let Some(addr) = addr else {
            return Ok(None);
        };
        let need = |file: Option<PathBuf>, flag: &str| {
            file.with_context(|| format!("--connect needs {flag}"))
        };
        Ok(Some(Self {
            addr,
            server_name,
            ca: need(ca, "--ca")?,
            cert: need(cert, "--cert")?,
            key: need(key, "--key")?,
        }))
    }
}

/// The reference's TokenClient: TLS with a client certificate, then tokens, each a
/// 4-byte big-endian length followed by its bytes, both ways.
struct TokenClient {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
}

impl TokenClient {
    async fn connect(remote: &Remote) -> anyhow::Result<Self> {
        let read = |path: &Path| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(&read(&remote.ca)?) {
            roots.add(ca?)?;
        }
        let chain =
            CertificateDer::pem_slice_iter(&read(&remote.cert)?).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(&read(&remote.key)?)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(&remote.addr)
            .await
            .with_context(|| format!("connecting to {}", remote.addr))?;
        let name = ServerName::try_from(remote.server_name.clone())?;
        let stream = connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        Ok(Self { stream })
    }

    /// Sends one token (reference: `client.send(token)`).
    async fn send(&mut self, token: &[u8]) -> anyhow::Result<()> {
        let length = u32::try_from(token.len()).context("a token is at most 4 GiB - 1")?;
        self.stream.write_u32(length).await?;
        self.stream.write_all(token).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next token; `None` when the server closed the connection.
    async fn recv(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let length = match self.stream.read_u32().await {
            Ok(length) => length as usize,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        anyhow::ensure!(
            length <= MAX_TOKEN,
            "a {length}-byte token is above {MAX_TOKEN}"
        );
        let mut token = vec![0; length];
        self.stream.read_exact(&mut token).await?;
        Ok(Some(token))
    }

    /// Closes the connection (reference: `client.close()`).
    async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}
