//! Security end to end over MQTT with clients we did not write (DESIGN.md §7, issue 5):
//! rumqttc's MQTT 5 client ([`v5`]) and the Debian `mosquitto_pub`/`mosquitto_sub`
//! command-line clients, 3.1.1 and 5 ([`mosquitto`]). Refused logins, SUBACK failure codes
//! (0x80 / 0x87), refused PUBLISHes (dropped on 3.1.1, PUBACK/PUBREC 0x87 on 5) that are
//! neither stored nor routed, and templated permissions voided by a wildcard in the user's
//! data or in the client id.
//!
//! Python paho-mqtt (Debian `python3-paho-mqtt`) is driven in
//! `tests/tests/mqtt5_features/clients.rs`, not here. That passwords never reach the logs is checked on the real binary, in
//! `tests/cli/logs.rs`.

mod support;

#[path = "security_mqtt/mosquitto.rs"]
mod mosquitto;
#[path = "security_mqtt/v5.rs"]
mod v5;

use pathmq::config::Config;
use pathmq::core::security::{Group, PermissionEntry, Permissions, Right, UserInput};
use pathmq::native::client::DataApi as _;
use serde_json::{Value, json};
use support::{TestBroker, start_with};

/// `_ADMIN`'s password in these tests.
const ADMIN_PASSWORD: &str = "admin-secret-mqtt";

/// The password of each test user: `pw-<name>`.
fn password(user: &str) -> String {
    format!("pw-{user}")
}

/// The config of a secure broker on loopback, with account lockout off (the tests try
/// wrong passwords many times; lockout has its own tests).
fn secure_config() -> Config {
    support::secure_config(ADMIN_PASSWORD)
}

/// A broker from [`secure_config`] with its users: see [`secure_broker_with`].
async fn secure_broker() -> TestBroker {
    secure_broker_with(secure_config()).await
}

/// A secure broker from `config` with these users (passwords `pw-<name>`):
///
/// * `ann`, `eve`, `mal` in `devices`: `set`, `on` and `get` on `sensors/<username>` and
///   below; `set` and `on` on `rooms/<custom_data.room>` and below; `set` and `on` on
///   `clients/<client id>` and below. `ann`'s room is `kitchen`, `eve`'s is `*` and
///   `mal`'s is `+`: their room permission is voided.
/// * `dash` in `dashboards`: `on` and `get` on `sensors` and everything below.
async fn secure_broker_with(config: Config) -> TestBroker {
    let broker = start_with(config).await;
    let directory = broker.broker.core().security().expect("secure").directory();
    let entry = |rights: &[Right]| PermissionEntry {
        actions: rights.iter().copied().collect(),
        ..PermissionEntry::default()
    };
    let own = [Right::Set, Right::On, Right::Get];
    let write_watch = [Right::Set, Right::On];
    // An MQTT filter `a/#` also matches `a`: each subtree is granted with its root.
    directory
        .upsert_group(Group {
            name: "devices".into(),
            permissions: Permissions::from([
                ("/sensors/{{user.username}}".into(), entry(&own)),
                ("/sensors/{{user.username}}/*".into(), entry(&own)),
                (
                    "/rooms/{{user.custom_data.room}}".into(),
                    entry(&write_watch),
                ),
                (
                    "/rooms/{{user.custom_data.room}}/*".into(),
                    entry(&write_watch),
                ),
                ("/clients/{{session.client_id}}".into(), entry(&write_watch)),
                (
                    "/clients/{{session.client_id}}/*".into(),
                    entry(&write_watch),
                ),
            ]),
            ..Group::default()
        })
        .await
        .unwrap();
    directory
        .upsert_group(Group {
            name: "dashboards".into(),
            permissions: Permissions::from([
                ("/sensors".into(), entry(&[Right::On, Right::Get])),
                ("/sensors/*".into(), entry(&[Right::On, Right::Get])),
            ]),
            ..Group::default()
        })
        .await
        .unwrap();
    for (name, group, room) in [
        ("ann", "devices", json!("kitchen")),
        ("eve", "devices", json!("*")),
        ("mal", "devices", json!("+")),
        ("dash", "dashboards", Value::Null),
    ] {
        let mut input = UserInput {
            username: name.into(),
            password: Some(password(name).into()),
            ..UserInput::default()
        };
        if !room.is_null() {
            input.custom_data.insert("room".into(), room);
        }
        directory.upsert_user(input).await.unwrap();
        directory.link_group(name, group).await.unwrap();
    }
    broker
}

/// The record stored at `path`, read by the broker's own `_ADMIN` client.
async fn stored(broker: &TestBroker, path: &str) -> Option<Value> {
    let admin = broker.broker.local_admin_client();
    admin
        .get(path)
        .await
        .expect("the admin reads")
        .map(|item| item.data)
}
