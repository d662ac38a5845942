//! A throwaway public-key infrastructure for TLS tests: a CA (rcgen), server and client
//! certificates it signs (valid, or expired), files for the broker's `[tls]` settings,
//! and rustls client configurations that trust the CA.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A certificate and its key, as PEM text.
#[derive(Clone)]
pub struct Identity {
    pub cert: String,
    pub key: String,
}

/// A CA that signs certificates.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self) -> Identity {
        self.sign("localhost", &["localhost", "127.0.0.1"], false)
    }

    /// A client certificate whose subject CN is `cn`.
    pub fn client(&self, cn: &str) -> Identity {
        self.sign(cn, &[], false)
    }

    /// A client certificate for `cn` that expired in 2021.
    pub fn expired_client(&self, cn: &str) -> Identity {
        self.sign(cn, &[], true)
    }

    fn sign(&self, cn: &str, names: &[&str], expired: bool) -> Identity {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// Writes the CA to `dir/ca.pem` and `server` to `dir/cert.pem` and `dir/key.pem`:
    /// (cert, key, ca) paths.
    pub fn write(&self, dir: &Path, server: &Identity) -> (PathBuf, PathBuf, PathBuf) {
        let paths = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("ca.pem"),
        );
        std::fs::write(&paths.0, &server.cert).unwrap();
        std::fs::write(&paths.1, &server.key).unwrap();
        std::fs::write(&paths.2, &self.pem).unwrap();
        paths
    }

    /// A rustls client configuration that trusts this CA and presents `identity`.
    pub fn client_config(&self, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
        client_config(&self.pem, identity)
    }
}

/// A rustls client configuration that trusts the certificates in `ca_pem` and presents
/// `identity`.
pub fn client_config(ca_pem: &str, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(identity.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(identity.key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    })
}

/// Opens a TLS connection to `addr` as `localhost` with `config`.
pub async fn connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}
