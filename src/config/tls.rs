//! The `[tls]` table: the certificate every TLS listener serves (MQTT over TLS, HTTPS and
//! WSS on the HTTP listener, the native protocol's TCP listener, protocol plugins such as
//! the token protocol), client certificates (mTLS), and the `[mqtt_tls]` listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pathmq_core::transport::{PemSource, TlsSettings};
use serde::Deserialize;

/// The certificate, key and client CA of the TLS listeners (reference: HTTPS SERVER).
///
/// The certificate comes from, in order: `cert` and `key` (PEM text in the config), or
/// `cert_path` and `key_path`; when neither is set, `<data dir>/tls/cert.pem` and
/// `key.pem` beside the store. Files that do not exist are created, both, as a
/// self-signed certificate for `self_signed_names` at first start (logged); when only one
/// of the two exists the broker refuses to start. On SIGHUP the files are read again.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The certificate chain as PEM text (leaf first). With `key`.
    pub cert: Option<String>,
    /// The private key as PEM text. With `cert`. Never logged.
    pub key: Option<String>,
    /// The certificate chain file (PEM). Default `<data dir>/tls/cert.pem`.
    pub cert_path: Option<PathBuf>,
    /// The private key file (PEM: PKCS#8, PKCS#1 or SEC1). Default
    /// `<data dir>/tls/key.pem`.
    pub key_path: Option<PathBuf>,
    /// The names a generated self-signed certificate is for (DNS names or IP addresses).
    /// Default `["localhost", "127.0.0.1", "::1"]`.
    pub self_signed_names: Vec<String>,
    /// CA certificates (PEM file) client certificates must chain to; unset: clients are
    /// not asked for one.
    pub client_ca_path: Option<PathBuf>,
    /// Refuse clients without a certificate (needs `client_ca_path`). Default false: a
    /// certificate is optional, but one that is sent must verify.
    pub require_client_certificate: bool,
    /// Log a client with a verified certificate in as the user named by its subject CN;
    /// an MQTT CONNECT's username and password are then ignored (Mosquitto's
    /// `use_identity_as_username`). Needs `client_ca_path`. Default false.
    pub use_identity_as_username: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            cert_path: None,
            key_path: None,
            self_signed_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            client_ca_path: None,
            require_client_certificate: false,
            use_identity_as_username: false,
        }
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert", &self.cert.as_ref().map(|_| "<PEM>"))
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("self_signed_names", &self.self_signed_names)
            .field("client_ca_path", &self.client_ca_path)
            .field(
                "require_client_certificate",
                &self.require_client_certificate,
            )
            .field("use_identity_as_username", &self.use_identity_as_username)
            .finish()
    }
}

/// Where the certificate and key files are when the config names none: `tls/` in the
/// store's folder.
fn default_paths(store: &Path) -> (PathBuf, PathBuf) {
    let dir = store
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

impl TlsConfig {
    /// The files the certificate and key are read from (and created in, self-signed,
    /// when neither exists), with the store at `store`; `None` when they are given as PEM
    /// text.
    pub fn files(&self, store: &Path) -> Option<(PathBuf, PathBuf)> {
        if self.cert.is_some() {
            return None;
        }
        let (cert, key) = default_paths(store);
        Some((
            self.cert_path.clone().unwrap_or(cert),
            self.key_path.clone().unwrap_or(key),
        ))
    }

    /// The transport's settings, with the store at `store`.
    pub fn settings(&self, store: &Path) -> TlsSettings {
        let (certificate, private_key) = match (&self.cert, &self.key, self.files(store)) {
            (Some(cert), Some(key), _) => (
                PemSource::Inline(cert.clone()),
                PemSource::Inline(key.clone()),
            ),
            (_, _, Some((cert, key))) => (PemSource::File(cert), PemSource::File(key)),
            // `validate` refuses `cert` without `key`.
            _ => (
                PemSource::Inline(String::new()),
                PemSource::Inline(String::new()),
            ),
        };
        let mut settings = TlsSettings::new(certificate, private_key);
        settings.client_ca = self.client_ca_path.clone().map(PemSource::File);
        settings.require_client_certificate = self.require_client_certificate;
        settings.use_identity_as_username = self.use_identity_as_username;
        settings
    }
}

/// The MQTT over TLS listener (the same MQTT as `[mqtt]`, on its own port).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MqttTlsListener {
    /// Whether the listener runs. Default false.
    pub enabled: bool,
    /// The address to bind. Default `127.0.0.1:8883` (the IANA port for MQTT over TLS).
    pub listen: SocketAddr,
}

impl Default for MqttTlsListener {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8883)),
        }
    }
}
