//! A throwaway public-key infrastructure for TLS tests: a CA (rcgen), the server and
//! client certificates it signs (valid, or expired in 2021), files for the broker's
//! `[tls]` settings, and rustls client configurations that trust the CA. It panics on
//! any failure: it is for tests only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A certificate and its private key, as PEM text.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate (PEM).
    pub cert: String,
    /// Its private key (PEM, PKCS#8).
    pub key: String,
}

/// A CA that signs certificates.
pub struct Ca {
    /// The CA's own certificate (PEM): what clients and the broker trust.
    pub pem: String,
    /// The same, DER.
    pub der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new CA whose subject CN is `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1` (CN `localhost`).
    pub fn server(&self) -> Identity {
        self.issue("localhost", &["localhost", "127.0.0.1"], false)
    }

    /// A client certificate whose subject CN is `cn` (also valid for `localhost`).
    pub fn client(&self, cn: &str) -> Identity {
        self.issue(cn, &["localhost"], false)
    }

    /// A client certificate for `cn` that expired in 2021.
    pub fn expired_client(&self, cn: &str) -> Identity {
        self.issue(cn, &["localhost"], true)
    }

    /// A certificate for `cn` with the subject alternative names `names`.
    pub fn issue(&self, cn: &str, names: &[&str], expired: bool) -> Identity {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("certificate params");
        params.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        Identity {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// Writes this CA to `dir/ca.pem` and `server` to `dir/cert.pem` and `dir/key.pem`:
    /// the (cert, key, ca) paths.
    pub fn write(&self, dir: &Path, server: &Identity) -> (PathBuf, PathBuf, PathBuf) {
        let paths = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("ca.pem"),
        );
        std::fs::write(&paths.0, &server.cert).expect("write cert.pem");
        std::fs::write(&paths.1, &server.key).expect("write key.pem");
        std::fs::write(&paths.2, &self.pem).expect("write ca.pem");
        paths
    }

    /// A rustls client configuration that trusts this CA and presents `identity`.
    pub fn client_config(&self, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
        client_config(&self.pem, identity)
    }
}

/// A rustls client configuration that trusts the certificates in `ca_pem` and presents
/// `identity` (aws-lc-rs, as the broker).
pub fn client_config(ca_pem: &str, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(identity.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate PEM");
            let key = PrivateKeyDer::from_pem_slice(identity.key.as_bytes()).expect("key PEM");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate")
        }
    })
}

/// Opens a TLS connection over `io` to the server named `localhost`, with `config`.
///
/// # Errors
/// The handshake failed.
pub async fn handshake<IO>(
    io: IO,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<IO>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let name = ServerName::try_from("localhost").expect("a server name");
    tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await
}

/// Opens a TLS connection to `addr` (as `localhost`) with `config`.
///
/// # Errors
/// The connection or the handshake failed.
pub async fn connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    handshake(tcp, config).await
}
