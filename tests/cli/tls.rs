//! The binary's TLS: a self-signed certificate created in the data directory at first
//! start (reference: HTTPS SERVER), and certificates reloaded on SIGHUP without dropping
//! open connections.

use std::io::{BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{BIN, wait_for_line};

/// A TLS client that trusts exactly the certificate in `cert` (a self-signed one).
fn client(cert: &Path) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(der.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects over TLS to `port` as `localhost` and completes the handshake.
fn connect(port: u16, config: Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Sends an MQTT 3.1.1 CONNECT for a two-letter client id and checks the CONNACK.
fn mqtt_connect(tls: &mut Tls, id: &[u8; 2]) {
    let mut connect = vec![0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 2];
    connect.extend_from_slice(id);
    tls.write_all(&connect).unwrap();
    let mut connack = [0u8; 4];
    tls.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);
}

#[test]
fn a_self_signed_certificate_is_created_and_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
        ])
        .args(["--mqtt-tls-listen", "127.0.0.1:0", "--log-format", "text"])
        .arg("--storage-path")
        .arg(data.join("pathmq.redb"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let watchdog = pid.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        let _ = Command::new("kill").args(["-KILL", &watchdog]).status();
    });
    let mut log = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    wait_for_line(
        &mut stderr,
        "created a self-signed TLS certificate",
        &mut log,
    );
    let line = wait_for_line(&mut stderr, "MQTT over TLS listening", &mut log);
    let port: u16 = (line.split("127.0.0.1:").nth(1).expect("an address"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    let (cert, key) = (data.join("tls/cert.pem"), data.join("tls/key.pem"));
    assert!(cert.exists() && key.exists(), "created beside the store");

    let mut open = connect(port, client(&cert)).unwrap();
    mqtt_connect(&mut open, b"c1");

    // New files (another self-signed certificate), then SIGHUP.
    let staging = dir.path().join("staging");
    let names = ["localhost".to_owned()];
    let (new_cert, new_key) = (staging.join("cert.pem"), staging.join("key.pem"));
    pathmq::core::transport::self_signed(&new_cert, &new_key, &names).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    std::fs::copy(&new_cert, &cert).unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for_line(&mut stderr, "TLS certificates reloaded", &mut log);

    let mut fresh = connect(port, client(&new_cert)).unwrap();
    mqtt_connect(&mut fresh, b"c2");
    // The connection opened before the reload goes on: PINGREQ → PINGRESP.
    open.write_all(&[0xC0, 0]).unwrap();
    let mut pingresp = [0u8; 2];
    open.read_exact(&mut pingresp).unwrap();
    assert_eq!(pingresp, [0xD0, 0]);

    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for_line(&mut stderr, "stopped", &mut log);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}:\n{log}");
}
