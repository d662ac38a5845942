//! A will on a secure broker is authorized like a PUBLISH from its session (DESIGN.md §7):
//! one its user may not `set` is neither published nor stored (and is logged); one it may
//! is published.

use pathmq::core::security::{Group, PermissionEntry, Permissions, Right, UserInput};
use pathmq::native::client::DataApi as _;
use rumqttc::{LastWill, MqttOptions, QoS};

use super::{connected_v4, options_v4, sessions, sessions_below};
use crate::support::{
    expect_v4, poll_v4, secure_config, spawn_v4, start_with, v4_publish, v4_suback,
};

const ADMIN_PASSWORD: &str = "admin-secret-will";

#[tokio::test]
async fn will_refused_by_permissions_is_not_published() {
    let broker = start_with(secure_config(ADMIN_PASSWORD)).await;
    let directory = broker.broker.core().security().expect("secure").directory();
    let entry = PermissionEntry {
        actions: [Right::Set, Right::On].into_iter().collect(),
        ..PermissionEntry::default()
    };
    directory
        .upsert_group(Group {
            name: "devices".into(),
            permissions: Permissions::from([("/status/allowed".into(), entry)]),
            ..Group::default()
        })
        .await
        .unwrap();
    directory
        .upsert_user(UserInput {
            username: "dev".into(),
            password: Some("pw-dev".to_owned().into()),
            ..UserInput::default()
        })
        .await
        .unwrap();
    directory.link_group("dev", "devices").await.unwrap();

    // The watcher: `_ADMIN` over MQTT, subscribed to everything under `status`.
    let mut options = MqttOptions::new("watcher", "127.0.0.1", broker.mqtt.port());
    options.set_credentials("_ADMIN", ADMIN_PASSWORD);
    let (watcher, mut watcher_loop) = connected_v4(options).await;
    watcher
        .subscribe("status/#", QoS::AtMostOnce)
        .await
        .unwrap();
    poll_v4(&mut watcher_loop, v4_suback).await;
    let mut events = spawn_v4(watcher_loop);

    // `dev` may not set `status/forbidden`: its retained will there goes nowhere.
    let before = sessions(&broker);
    let will = LastWill::new("status/forbidden", "x", QoS::AtLeastOnce, true);
    let mut options = options_v4(&broker, "dev-1", will);
    options.set_credentials("dev", "pw-dev");
    let (_dev, dev_loop) = connected_v4(options).await;
    drop(dev_loop);
    sessions_below(&broker, before + 1).await;
    // It may set `status/allowed`: that will is the first message the watcher gets.
    let will = LastWill::new("status/allowed", "y", QoS::AtLeastOnce, false);
    let mut options = options_v4(&broker, "dev-2", will);
    options.set_credentials("dev", "pw-dev");
    let (_dev, dev_loop) = connected_v4(options).await;
    drop(dev_loop);
    let first = expect_v4(&mut events, v4_publish).await;
    assert_eq!(first.topic, "status/allowed");
    let admin = broker.broker.local_admin_client();
    let stored = admin
        .get("/status/forbidden")
        .await
        .expect("the admin reads");
    assert!(stored.is_none(), "the refused will was stored: {stored:?}");
    broker.broker.shutdown().await;
}
