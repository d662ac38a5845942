//! Certificates reloaded without dropping connections (the binary does it on SIGHUP).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::pki::Ca;
use crate::support::*;

/// An MQTT 3.1.1 CONNECT for client id `c1`.
const CONNECT: [u8; 16] = [
    0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 2, b'c', b'1',
];

#[tokio::test]
async fn a_reload_serves_new_certificates_and_keeps_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let first = Ca::new("first CA");
    let (cert, key, _) = first.write(dir.path(), &first.server());
    let mut config = loopback_config();
    config.mqtt_tls.enabled = true;
    config.mqtt_tls.listen = "127.0.0.1:0".parse().unwrap();
    config.tls.cert_path = Some(cert.clone());
    config.tls.key_path = Some(key.clone());
    let broker = start_with(config).await;
    let addr = broker.broker.mqtt_tls_addr().unwrap();

    let mut open = pki::connect(addr, first.client_config(None)).await.unwrap();
    open.write_all(&CONNECT).await.unwrap();
    let mut connack = [0u8; 4];
    tokio::time::timeout(WAIT, open.read_exact(&mut connack))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);

    // New files from another CA; until the reload the old certificate is served.
    let second = Ca::new("second CA");
    second.write(dir.path(), &second.server());
    assert!(
        pki::connect(addr, second.client_config(None))
            .await
            .is_err()
    );
    assert!(broker.broker.reload_tls().unwrap());
    let mut fresh = pki::connect(addr, second.client_config(None))
        .await
        .unwrap();
    assert!(
        pki::connect(addr, first.client_config(None)).await.is_err(),
        "the old certificate is no longer served"
    );
    fresh.write_all(&CONNECT[..14]).await.unwrap();
    fresh.write_all(b"c2").await.unwrap();
    tokio::time::timeout(WAIT, fresh.read_exact(&mut connack))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);

    // The connection opened before the reload still works: PINGREQ → PINGRESP.
    open.write_all(&[0xC0, 0]).await.unwrap();
    let mut pingresp = [0u8; 2];
    tokio::time::timeout(WAIT, open.read_exact(&mut pingresp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pingresp, [0xD0, 0]);

    // A broken file is refused and the certificate in use is kept.
    std::fs::write(&key, "not a key").unwrap();
    assert!(broker.broker.reload_tls().is_err());
    let _still = tokio::time::timeout(
        Duration::from_secs(5),
        pki::connect(addr, second.client_config(None)),
    )
    .await
    .unwrap()
    .unwrap();
    broker.broker.shutdown().await;
}
