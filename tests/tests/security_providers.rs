//! Auth providers end to end (DESIGN.md §7 "pluggable auth providers"; reference:
//! AUTHENTICATION PROVIDER(S)): the `auth-file` plugin's users log in over MQTT and the
//! native protocol, with the permissions of their directory groups; the directory is
//! asked first; `authType` picks a provider.

mod support;

use pathmq::core::security::{Group, PasswordHasher, PermissionEntry, Permissions, Right};
use pathmq::native::client::{Client, ClientConfig, DataApi, SetOptions};
use rumqttc::{ConnectReturnCode, ConnectionError, MqttOptions, QoS};
use serde_json::json;
use support::*;

async fn broker_with_file(dir: &tempfile::TempDir) -> TestBroker {
    let hasher = PasswordHasher::new(4).await.unwrap();
    let hash = |pw: &'static str| {
        let hasher = hasher.clone();
        async move { hasher.hash(pw.into()).await.unwrap() }
    };
    let file = dir.path().join("users.toml");
    let text = format!(
        "[[users]]\nusername = \"sensor-1\"\npassword_hash = \"{}\"\ngroups = [\"devices\"]\n\n\
         [[users]]\nusername = \"ann\"\npassword_hash = \"{}\"\n",
        hash("file-pw").await,
        hash("file-pw-ann").await,
    );
    std::fs::write(&file, text).unwrap();
    let mut config = secure_config("admin-secret");
    config.security.auth_file = Some(file);
    let broker = start_with(config).await;
    let directory = broker.broker.core().security().unwrap().directory();
    let entry = PermissionEntry {
        actions: [Right::Set, Right::Get].into(),
        ..PermissionEntry::default()
    };
    directory
        .upsert_group(Group {
            name: "devices".into(),
            permissions: Permissions::from([("/sensors/{{user.username}}/*".into(), entry)]),
            ..Group::default()
        })
        .await
        .unwrap();
    // `ann` is in the directory too (with another password): the directory's wins.
    directory
        .upsert_user(pathmq::core::security::UserInput {
            username: "ann".into(),
            password: Some("dir-pw-ann".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    broker
}

async fn mqtt_login(
    broker: &TestBroker,
    user: &str,
    password: &str,
) -> Result<(), ConnectReturnCode> {
    let mut options = MqttOptions::new(format!("c-{user}"), "127.0.0.1", broker.mqtt.port());
    options.set_credentials(user, password);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 8);
    let first = tokio::time::timeout(WAIT, eventloop.poll())
        .await
        .expect("CONNACK in time");
    let result = match first {
        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => Ok(()),
        Err(ConnectionError::ConnectionRefused(code)) => Err(code),
        other => panic!("unexpected first event {other:?}"),
    };
    if result.is_ok() {
        client
            .publish(
                format!("sensors/{user}/t"),
                QoS::AtLeastOnce,
                true,
                b"{\"t\":1}".to_vec(),
            )
            .await
            .unwrap();
        // Drive the eventloop until the PUBACK.
        tokio::time::timeout(WAIT, async {
            loop {
                if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) =
                    eventloop.poll().await
                {
                    break;
                }
            }
        })
        .await
        .expect("PUBACK in time");
    }
    result
}

#[tokio::test]
async fn file_users_log_in_over_mqtt_with_their_groups_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_file(&dir).await;
    assert_eq!(mqtt_login(&broker, "sensor-1", "file-pw").await, Ok(()));
    let admin = broker.broker.local_admin_client();
    assert!(
        admin.get("/sensors/sensor-1/t").await.unwrap().is_some(),
        "the file user's group permission applies"
    );
    for (user, password) in [
        ("sensor-1", "wrong"),
        ("sensor-2", "file-pw"),
        ("ann", "file-pw-ann"),
    ] {
        assert_eq!(
            mqtt_login(&broker, user, password).await,
            Err(ConnectReturnCode::BadUserNamePassword),
            "{user}: a wrong password, an unknown user, or a name the directory owns"
        );
    }
    assert_eq!(mqtt_login(&broker, "ann", "dir-pw-ann").await, Ok(()));
}

#[tokio::test]
async fn native_logins_reach_file_users_and_auth_type_picks_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_file(&dir).await;
    let url = format!("ws://{}/", broker.http);
    let sensor = Client::connect(ClientConfig::websocket(&url).credentials("sensor-1", "file-pw"))
        .await
        .expect("the file user logs in");
    sensor
        .set("/sensors/sensor-1/x", json!({"v": 1}), SetOptions::new())
        .await
        .unwrap();
    let forbidden = sensor
        .set("/sensors/sensor-2/x", json!({}), SetOptions::new())
        .await;
    assert_eq!(forbidden.err().and_then(|e| e.code()), Some(403));

    // `authType` over the raw protocol: `file` checks the file, `pathmq` the directory.
    let login = |auth_type: &'static str, user: &'static str, password: &'static str| {
        let url = url.clone();
        async move {
            raw_login(
                &url,
                json!({"username": user, "password": password, "authType": auth_type}),
            )
            .await
        }
    };
    assert_eq!(login("file", "sensor-1", "file-pw").await, 200);
    // A name the directory has is the directory's, even when a provider is named: its
    // tokens and refreshes would otherwise mix the two users.
    assert_eq!(login("file", "ann", "file-pw-ann").await, 401);
    assert_eq!(login("pathmq", "ann", "file-pw-ann").await, 401);
    assert_eq!(login("pathmq", "sensor-1", "file-pw").await, 401);
    assert_eq!(login("nosuch", "sensor-1", "file-pw").await, 401);
}

/// Sends one native `login` with `data` on a new connection and answers its status.
async fn raw_login(url: &str, data: serde_json::Value) -> u16 {
    let mut native = Native::open(url).await;
    match native.request("login", None, data, None).await {
        Ok(_) => 200,
        Err(meta) => meta["error"]["code"].as_u64().unwrap_or(0) as u16,
    }
}
