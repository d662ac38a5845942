//! TLS acceptor tests over in-memory pipes: client certificates verified against the CA
//! (good, from another CA, expired, missing), the CN handed to the protocol, reload, and
//! the self-signed files.

use std::sync::Arc;
use std::time::Duration;

use pathmq_test_pki::{Ca, Identity};
use rcgen::KeyPair;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

/// A certificate for `cn` (and `localhost`) signed by `ca`: (cert PEM, key PEM).
fn leaf(ca: &Ca, cn: &str, expired: bool) -> (String, String) {
    let identity = ca.issue(cn, &["localhost"], expired);
    (identity.cert, identity.key)
}

fn settings(ca: &Ca, client_ca: Option<&Ca>) -> TlsSettings {
    let server = ca.server();
    let mut settings = TlsSettings::new(
        PemSource::Inline(server.cert),
        PemSource::Inline(server.key),
    );
    settings.client_ca = client_ca.map(|ca| PemSource::Inline(ca.pem.clone()));
    settings
}

/// A client trusting `server_ca`, presenting `identity` (cert PEM, key PEM) if given.
fn client(server_ca: &Ca, identity: Option<&(String, String)>) -> Arc<rustls::ClientConfig> {
    let identity = identity.map(|(cert, key)| Identity {
        cert: cert.clone(),
        key: key.clone(),
    });
    server_ca.client_config(identity.as_ref())
}

/// Runs a handshake between `acceptor` and `connector` over a pipe and one echoed byte:
/// what the server learnt, or its handshake error; and the server certificate the client
/// saw.
async fn handshake(
    acceptor: &TlsAcceptor,
    connector: Arc<rustls::ClientConfig>,
) -> (std::io::Result<TlsPeer>, Option<CertificateDer<'static>>) {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = acceptor.clone();
    let server = tokio::spawn(async move {
        let (mut stream, peer) = acceptor.accept(server_io, Duration::from_secs(5)).await?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        stream.write_all(&byte).await?;
        stream.flush().await?;
        Ok::<_, std::io::Error>(peer)
    });
    let seen = match pathmq_test_pki::handshake(client_io, connector).await {
        Ok(mut stream) => {
            let seen = (stream.get_ref().1.peer_certificates())
                .and_then(|c| c.first().cloned())
                .map(|c| c.into_owned());
            // TLS 1.3 reports a refused client certificate after the handshake: on use.
            let _ = stream.write_all(b"x").await;
            let _ = stream.flush().await;
            let mut byte = [0u8; 1];
            let _ = stream.read_exact(&mut byte).await;
            seen
        }
        Err(_) => None,
    };
    (server.await.unwrap(), seen)
}

#[tokio::test]
async fn a_client_certificate_of_the_ca_is_accepted_and_its_cn_handed_on() {
    let ca = Ca::new("test CA");
    let mut settings = settings(&ca, Some(&ca));
    settings.require_client_certificate = true;
    settings.use_identity_as_username = true;
    let acceptor = TlsAcceptor::new(settings).unwrap();
    let identity = leaf(&ca, "device-7", false);
    let (peer, _) = handshake(&acceptor, client(&ca, Some(&identity))).await;
    let peer = peer.unwrap();
    assert_eq!(peer.certificate_cn.as_deref(), Some("device-7"));
    assert_eq!(peer.username.as_deref(), Some("device-7"));
    assert_eq!(peer.server_name.as_deref(), Some("localhost"));
}

#[tokio::test]
async fn certificates_of_another_ca_expired_ones_and_none_are_refused() {
    let ca = Ca::new("test CA");
    let other = Ca::new("other CA");
    let mut settings = settings(&ca, Some(&ca));
    settings.require_client_certificate = true;
    let acceptor = TlsAcceptor::new(settings).unwrap();
    for (what, identity) in [
        ("another CA", Some(leaf(&other, "mallory", false))),
        ("expired", Some(leaf(&ca, "old-device", true))),
        ("none", None),
    ] {
        let (peer, _) = handshake(&acceptor, client(&ca, identity.as_ref())).await;
        assert!(peer.is_err(), "{what}: {peer:?}");
    }
}

#[tokio::test]
async fn an_optional_client_certificate_may_be_left_out() {
    let ca = Ca::new("test CA");
    let acceptor = TlsAcceptor::new(settings(&ca, Some(&ca))).unwrap();
    let (peer, _) = handshake(&acceptor, client(&ca, None)).await;
    let peer = peer.unwrap();
    assert_eq!(peer.certificate_cn, None);
    assert_eq!(peer.username, None, "no identity-as-username configured");
}

#[test]
fn identity_as_username_needs_a_client_ca() {
    let ca = Ca::new("test CA");
    let mut settings = settings(&ca, None);
    settings.use_identity_as_username = true;
    assert!(matches!(
        TlsAcceptor::new(settings),
        Err(TlsError::NeedsClientCa("use_identity_as_username"))
    ));
}

#[test]
fn bad_pem_and_missing_files_name_what_is_wrong() {
    let ca = Ca::new("test CA");
    let (cert, _) = leaf(&ca, "localhost", false);
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    let mismatched = TlsSettings::new(
        PemSource::Inline(cert.clone()),
        PemSource::Inline(other_key),
    );
    assert!(matches!(
        TlsAcceptor::new(mismatched),
        Err(TlsError::Rustls(_))
    ));
    let no_key = TlsSettings::new(PemSource::Inline(cert), PemSource::Inline("nothing".into()));
    let error = TlsAcceptor::new(no_key).unwrap_err();
    assert!(error.to_string().contains("private key"), "{error}");
    let missing = TlsSettings::new(
        PemSource::File("/nonexistent/cert.pem".into()),
        PemSource::File("/nonexistent/key.pem".into()),
    );
    let error = TlsAcceptor::new(missing).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/cert.pem"),
        "{error}"
    );
}

#[tokio::test]
async fn reload_serves_the_new_certificate_and_keeps_the_old_one_on_error() {
    let dir = std::env::temp_dir().join(format!("pathmq-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ca = Ca::new("test CA");
    let write = |(cert, key): (String, String)| {
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
    };
    write(leaf(&ca, "first", false));
    let settings = TlsSettings::new(
        PemSource::File(cert_path.clone()),
        PemSource::File(key_path.clone()),
    );
    let acceptor = TlsAcceptor::new(settings).unwrap();
    let (_, first) = handshake(&acceptor, client(&ca, None)).await;
    write(leaf(&ca, "second", false));
    acceptor.reload().unwrap();
    let (_, second) = handshake(&acceptor, client(&ca, None)).await;
    assert_ne!(
        first.unwrap(),
        second.clone().unwrap(),
        "the new certificate"
    );
    std::fs::write(&key_path, "garbage").unwrap();
    assert!(acceptor.reload().is_err());
    let (peer, kept) = handshake(&acceptor, client(&ca, None)).await;
    peer.unwrap();
    assert_eq!(kept, second, "a failed reload keeps the certificate in use");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn self_signed_files_are_created_once_and_a_lone_file_is_refused() {
    let dir = std::env::temp_dir().join(format!("pathmq-tls-{}", uuid::Uuid::new_v4()));
    let (cert, key) = (dir.join("tls/cert.pem"), dir.join("tls/key.pem"));
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    assert!(self_signed(&cert, &key, &names).unwrap(), "created");
    let created = std::fs::read(&cert).unwrap();
    assert!(!self_signed(&cert, &key, &names).unwrap(), "kept");
    assert_eq!(std::fs::read(&cert).unwrap(), created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");
    }
    TlsAcceptor::new(TlsSettings::new(
        PemSource::File(cert.clone()),
        PemSource::File(key.clone()),
    ))
    .unwrap();
    std::fs::remove_file(&key).unwrap();
    assert!(self_signed(&cert, &key, &names).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
