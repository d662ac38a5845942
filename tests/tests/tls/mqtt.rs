//! MQTT over TLS with rumqttc (3.1.1 and 5), and client certificates.

use std::time::Duration;

use pathmq::core::security::{Group, PermissionEntry, Permissions, Right, UserInput};
use rumqttc::{Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};

use crate::support::pki::{Ca, Identity};
use crate::support::*;

/// A broker with MQTT over TLS on a free port, serving `server` signed by `ca` (the files
/// in `dir`); `client_ca` asks clients for certificates; `secure` switches security on.
async fn tls_broker(
    dir: &std::path::Path,
    ca: &Ca,
    client_ca: bool,
    secure: bool,
) -> (TestBroker, std::net::SocketAddr) {
    let (cert, key, ca_path) = ca.write(dir, &ca.server());
    let mut config = match secure {
        true => secure_config("admin-pw"),
        false => loopback_config(),
    };
    config.mqtt_tls.enabled = true;
    config.mqtt_tls.listen = "127.0.0.1:0".parse().unwrap();
    config.tls.cert_path = Some(cert);
    config.tls.key_path = Some(key);
    if client_ca {
        config.tls.client_ca_path = Some(ca_path);
        config.tls.require_client_certificate = true;
        config.tls.use_identity_as_username = true;
    }
    let broker = start_with(config).await;
    let addr = broker.broker.mqtt_tls_addr().expect("mqtt_tls listener");
    (broker, addr)
}

fn tls_options(
    client_id: &str,
    addr: std::net::SocketAddr,
    ca: &Ca,
    identity: Option<&Identity>,
) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, "localhost", addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: ca.pem.clone().into_bytes(),
        alpn: None,
        client_auth: identity.map(|i| (i.cert.clone().into_bytes(), i.key.clone().into_bytes())),
    }));
    options
}

/// The first ConnAck, or the connection error.
async fn connack(events: &mut rumqttc::EventLoop) -> Result<rumqttc::ConnectReturnCode, String> {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack.code),
                Ok(_) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
    })
    .await
    .expect("connect timed out")
}

#[tokio::test]
async fn rumqttc_publishes_and_receives_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let (broker, addr) = tls_broker(dir.path(), &ca, false, false).await;

    let (sub, mut sub_events) =
        rumqttc::AsyncClient::new(tls_options("tls-sub", addr, &ca, None), 16);
    assert_eq!(
        connack(&mut sub_events).await,
        Ok(rumqttc::ConnectReturnCode::Success)
    );
    sub.subscribe("tls/#", QoS::AtLeastOnce).await.unwrap();
    poll_v4(&mut sub_events, v4_suback).await;

    // A plain-TCP publisher reaches the TLS subscriber: one broker, two transports.
    let (publisher, mut pub_events) = broker.mqtt_v4("plain-pub");
    tokio::spawn(async move { while pub_events.poll().await.is_ok() {} });
    publisher
        .publish("tls/a", QoS::AtLeastOnce, false, b"over tls".to_vec())
        .await
        .unwrap();
    let message = poll_v4(&mut sub_events, v4_publish).await;
    assert_eq!(message.topic, "tls/a");
    assert_eq!(&message.payload[..], b"over tls");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn rumqttc_v5_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let (broker, addr) = tls_broker(dir.path(), &ca, false, false).await;
    let mut options = rumqttc::v5::MqttOptions::new("tls-v5", "localhost", addr.port());
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: ca.pem.clone().into_bytes(),
        alpn: None,
        client_auth: None,
    }));
    let (client, mut events) = rumqttc::v5::AsyncClient::new(options, 16);
    client
        .subscribe("v5/tls", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await
        .unwrap();
    poll_v5(&mut events, v5_suback).await;
    client
        .publish(
            "v5/tls",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "hi",
        )
        .await
        .unwrap();
    let message = poll_v5(&mut events, v5_publish).await;
    assert_eq!(&message.payload[..], b"hi");
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn the_client_certificate_cn_is_the_username() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let (broker, addr) = tls_broker(dir.path(), &ca, true, true).await;
    let directory = broker.broker.security().unwrap().directory();
    let entry = PermissionEntry {
        actions: [Right::Set, Right::On].into_iter().collect(),
        ..PermissionEntry::default()
    };
    directory
        .upsert_group(Group {
            name: "devices".into(),
            // The subtree and its root (MQTT `devices/x/#` also matches `devices/x`).
            permissions: Permissions::from([
                ("/devices/{{user.username}}".into(), entry.clone()),
                ("/devices/{{user.username}}/*".into(), entry),
            ]),
            ..Group::default()
        })
        .await
        .unwrap();
    let input = UserInput {
        username: "device-7".into(),
        password: Some("unused-password".into()),
        ..UserInput::default()
    };
    directory.upsert_user(input).await.unwrap();
    directory.link_group("device-7", "devices").await.unwrap();

    // No username or password in the CONNECT: the certificate is the credential.
    let identity = ca.client("device-7");
    let (client, mut events) =
        rumqttc::AsyncClient::new(tls_options("dev7", addr, &ca, Some(&identity)), 16);
    assert_eq!(
        connack(&mut events).await,
        Ok(rumqttc::ConnectReturnCode::Success)
    );
    client
        .subscribe("devices/device-7/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    poll_v4(&mut events, v4_suback).await;
    client
        .publish(
            "devices/device-7/temp",
            QoS::AtLeastOnce,
            false,
            b"21".to_vec(),
        )
        .await
        .unwrap();
    let message = poll_v4(&mut events, v4_publish).await;
    assert_eq!(
        &message.payload[..],
        b"21",
        "allowed by the user's permissions"
    );

    // A CONNECT naming another user is still logged in as the certificate's CN.
    let mut options = tls_options("dev7-claims-admin", addr, &ca, Some(&identity));
    options.set_credentials("_ADMIN", "wrong");
    let (_other, mut other_events) = rumqttc::AsyncClient::new(options, 16);
    assert_eq!(
        connack(&mut other_events).await,
        Ok(rumqttc::ConnectReturnCode::Success)
    );
    let record = broker
        .broker
        .core()
        .security()
        .map(|s| s.connection_count("device-7"));
    assert_eq!(record, Some(2), "both connections are device-7's");

    // A certificate for a user the broker does not know: bad username or password.
    let stranger = ca.client("stranger");
    let (_s, mut stranger_events) =
        rumqttc::AsyncClient::new(tls_options("stranger", addr, &ca, Some(&stranger)), 16);
    let refused = connack(&mut stranger_events).await;
    assert!(
        matches!(refused, Ok(rumqttc::ConnectReturnCode::BadUserNamePassword))
            || matches!(&refused, Err(e) if e.contains("BadUserNamePassword")),
        "{refused:?}"
    );

    // A certificate the CA signed for a reserved user is no way in (review finding).
    let admin = ca.client("_ADMIN");
    let (_a, mut admin_events) =
        rumqttc::AsyncClient::new(tls_options("admin-cert", addr, &ca, Some(&admin)), 16);
    let refused = connack(&mut admin_events).await;
    assert!(
        matches!(refused, Ok(rumqttc::ConnectReturnCode::BadUserNamePassword))
            || matches!(&refused, Err(e) if e.contains("BadUserNamePassword")),
        "{refused:?}"
    );
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn wrong_expired_and_missing_client_certificates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let (broker, addr) = tls_broker(dir.path(), &ca, true, false).await;
    let other_ca = Ca::new("another CA");
    for (what, identity) in [
        ("signed by another CA", Some(other_ca.client("mallory"))),
        ("expired", Some(ca.expired_client("old-device"))),
        ("none", None),
    ] {
        let options = tls_options(what, addr, &ca, identity.as_ref());
        let (_client, mut events) = rumqttc::AsyncClient::new(options, 16);
        let result = connack(&mut events).await;
        assert!(result.is_err(), "{what}: {result:?}");
    }
    // A good certificate still connects (the listener survived the refusals).
    let good = ca.client("device-1");
    let (_client, mut events) =
        rumqttc::AsyncClient::new(tls_options("good", addr, &ca, Some(&good)), 16);
    assert_eq!(
        connack(&mut events).await,
        Ok(rumqttc::ConnectReturnCode::Success)
    );
    broker.broker.shutdown().await;
}
