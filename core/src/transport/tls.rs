//! TLS for every listener (DESIGN.md §2: `transport (TCP | TLS | WS | WSS)`): rustls
//! through tokio-rustls. One [`TlsAcceptor`] holds the server certificate and, for mutual
//! TLS, the CA that client certificates must chain to; every listener configured for TLS
//! shares it, so [`TlsAcceptor::reload`] (SIGHUP in the binary) swaps the certificate for
//! all of them at once. Connections already open keep the session they negotiated; new
//! handshakes use the new certificate.
//!
//! The handshake runs inside the connection's task under the handshake timeout (STYLE 10),
//! never in the accept loop. A client certificate is verified against the CA (chain,
//! validity period, key usage); one that is expired, or signed by another CA, fails the
//! handshake with a TLS alert and the connection is closed (logged at debug). The
//! verified certificate's subject common name (CN) is handed to the protocol in
//! [`TlsPeer`], which may log the client in as that user (`use_identity_as_username`,
//! as Mosquitto calls it).
//!
//! [`self_signed`] creates a certificate and key at first start when none are configured
//! (reference: HTTPS SERVER, "if both of these files don't exist, they are automatically
//! created as self signed").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};

/// Where PEM text comes from: a file (read again on [`TlsAcceptor::reload`]) or the text
/// itself (reference: `cert`/`key` given in the config).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemSource {
    /// A PEM file.
    File(PathBuf),
    /// PEM text.
    Inline(String),
}

impl std::fmt::Debug for PemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            // Inline text may be a private key: never printed.
            Self::Inline(_) => f.write_str("Inline(..)"),
        }
    }
}

impl PemSource {
    fn read(&self, what: &'static str) -> Result<Vec<u8>, TlsError> {
        match self {
            Self::Inline(text) => Ok(text.as_bytes().to_vec()),
            Self::File(path) => std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.clone(),
                source,
            }),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Inline(_) => "inline PEM".into(),
        }
    }
}

/// What a [`TlsAcceptor`] serves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsSettings {
    /// The server certificate chain (PEM, leaf first).
    pub certificate: PemSource,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub private_key: PemSource,
    /// The CA certificates (PEM) client certificates must chain to; `None`: clients are
    /// not asked for a certificate.
    pub client_ca: Option<PemSource>,
    /// With `client_ca`: a client without a certificate is refused in the handshake.
    /// Otherwise a certificate is optional, but one that is sent must verify.
    pub require_client_certificate: bool,
    /// A verified client certificate's subject CN is the username the client logs in as
    /// (Mosquitto's `use_identity_as_username`): an MQTT CONNECT's username and password
    /// are then ignored. Needs `client_ca`.
    pub use_identity_as_username: bool,
}

impl TlsSettings {
    /// Serves `certificate` with `private_key`, without client certificates.
    pub fn new(certificate: PemSource, private_key: PemSource) -> Self {
        Self {
            certificate,
            private_key,
            client_ca: None,
            require_client_certificate: false,
            use_identity_as_username: false,
        }
    }
}

/// Why TLS could not be set up, or reloaded. On reload, the certificate in use is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read the {what} {path}: {source}")]
    Read {
        /// Which file (`"certificate"`, `"private key"`, `"client CA"`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The PEM text holds no usable item of the kind needed.
    #[error("the {what} ({source_name}) is not valid PEM or holds no {what}: {detail}")]
    Pem {
        /// What was expected (`"certificate"`, `"private key"`, `"client CA"`).
        what: &'static str,
        /// The file, or "inline PEM".
        source_name: String,
        /// What the parser said.
        detail: String,
    },
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("the TLS configuration is refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA cannot verify client certificates.
    #[error("the client CA cannot be used: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
    /// `use_identity_as_username` or `require_client_certificate` without a `client_ca`.
    #[error("{0} needs a client CA (tls.client_ca)")]
    NeedsClientCa(&'static str),
    /// A self-signed certificate could not be generated or written.
    #[error("cannot create a self-signed certificate: {0}")]
    SelfSigned(String),
}

/// What the TLS handshake told about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsPeer {
    /// The subject common name (CN) of the client's verified certificate, if it sent one.
    pub certificate_cn: Option<String>,
    /// The username to log the client in as: the CN, when the listener uses the
    /// certificate's identity as the username (`use_identity_as_username`).
    pub username: Option<String>,
    /// The negotiated server name (SNI) the client asked for.
    pub server_name: Option<String>,
}

/// Accepts TLS connections with the current certificate. Cheap to clone; clones share the
/// certificate, so one [`TlsAcceptor::reload`] serves every listener.
#[derive(Clone)]
pub struct TlsAcceptor {
    settings: Arc<TlsSettings>,
    config: Arc<ArcSwap<ServerConfig>>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Reads the certificate, key and client CA of `settings`.
    ///
    /// # Errors
    /// [`TlsError`]: a file that cannot be read, PEM without a certificate or key, a key
    /// that does not match, a client CA that cannot verify, or `use_identity_as_username`
    /// or `require_client_certificate` without a client CA.
    pub fn new(settings: TlsSettings) -> Result<Self, TlsError> {
        if settings.client_ca.is_none() {
            if settings.use_identity_as_username {
                return Err(TlsError::NeedsClientCa("use_identity_as_username"));
            }
            if settings.require_client_certificate {
                return Err(TlsError::NeedsClientCa("require_client_certificate"));
            }
        }
        let config = server_config(&settings)?;
        Ok(Self {
            settings: Arc::new(settings),
            config: Arc::new(ArcSwap::from_pointee(config)),
        })
    }

    /// Reads the certificate, key and client CA again (files only; inline PEM does not
    /// change) and uses them for new handshakes. Open connections are not touched.
    ///
    /// # Errors
    /// As [`TlsAcceptor::new`]; the certificate in use is kept.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.settings)?;
        self.config.store(Arc::new(config));
        Ok(())
    }

    /// What this acceptor serves.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Runs the server side of the handshake on `io` within `timeout`.
    ///
    /// # Errors
    /// The handshake failed (a bad or missing client certificate, not TLS at all, a
    /// client that left) or took longer than `timeout` (`TimedOut`).
    pub async fn accept<IO>(
        &self,
        io: IO,
        timeout: Duration,
    ) -> std::io::Result<(tokio_rustls::server::TlsStream<IO>, TlsPeer)>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.load_full());
        let stream = tokio::time::timeout(timeout, acceptor.accept(io))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
        let (_, connection) = stream.get_ref();
        let certificate_cn = (connection.peer_certificates())
            .and_then(|chain| chain.first())
            .and_then(|leaf| common_name(leaf));
        let username = certificate_cn
            .clone()
            .filter(|_| self.settings.use_identity_as_username);
        let peer = TlsPeer {
            certificate_cn,
            username,
            server_name: connection.server_name().map(str::to_owned),
        };
        Ok((stream, peer))
    }
}

/// The subject CN of a DER certificate (the first, when there are several).
fn common_name(der: &CertificateDer<'_>) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = certificate.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certificates = certificates_of(&settings.certificate, "certificate")?;
    let key_pem = settings.private_key.read("private key")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        what: "private key",
        source_name: settings.private_key.describe(),
        detail: e.to_string(),
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates_of(ca, "client CA")? {
                roots.add(certificate)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match settings.require_client_certificate {
                true => verifier.build()?,
                false => verifier.allow_unauthenticated().build()?,
            };
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(builder.with_single_cert(certificates, key)?)
}

fn certificates_of(
    source: &PemSource,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = source.read(what)?;
    let bad = |detail: String| TlsError::Pem {
        what,
        source_name: source.describe(),
        detail,
    };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certificates.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certificates)
}

/// Makes sure a certificate and key exist at `certificate` and `private_key`: when
/// neither file exists, creates a self-signed certificate for `names` (DNS names or IP
/// addresses, e.g. `localhost`, `127.0.0.1`), valid for about ten years, and its key
/// (file mode 0600 on Unix), creating their folders. Returns whether it created them.
/// When both exist, nothing is touched.
///
/// # Errors
/// [`TlsError::SelfSigned`] when only one of the two exists (the other was lost: refusing
/// is safer than replacing a certificate clients may pin), or when generating or writing
/// fails; nothing is left half-written under the final names.
pub fn self_signed(
    certificate: &Path,
    private_key: &Path,
    names: &[String],
) -> Result<bool, TlsError> {
    let fail = |why: String| TlsError::SelfSigned(why);
    match (certificate.exists(), private_key.exists()) {
        (true, true) => return Ok(false),
        (false, false) => {}
        (true, false) | (false, true) => {
            return Err(fail(format!(
                "only one of {} and {} exists; restore the other or remove both",
                certificate.display(),
                private_key.display()
            )));
        }
    }
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| fail(format!("generating: {e}")))?;
    let write = |path: &Path, text: String, private: bool| -> Result<(), TlsError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        }
        let temporary = path.with_extension("tmp");
        // A leftover from an interrupted start: a new file gets the private mode.
        let _ = std::fs::remove_file(&temporary);
        write_file(&temporary, text.as_bytes(), private)
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(|e| fail(format!("writing {}: {e}", path.display())))
    };
    write(private_key, generated.signing_key.serialize_pem(), true)?;
    write(certificate, generated.cert.pem(), false)?;
    Ok(true)
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests;
