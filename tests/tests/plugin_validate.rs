//! The `validate` plugin end to end: JSON Schema rules refuse bad sets from native and
//! MQTT 5 clients, and per-group field lists restrict what logged-in users may set.

mod support;

use std::collections::BTreeMap;

use pathmq::core::security::{Group, PermissionEntry, Permissions, Right, UserInput};
use pathmq_plugin_validate::{RuleConfig, ValidateConfig, ValidateLayer};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet as V5Packet, PubAckReason};
use serde_json::{Value, json};
use support::*;

/// `/sensors/*` records are objects whose `temp` is a number.
fn sensors_schema() -> ValidateLayer {
    let rule = RuleConfig {
        path: "/sensors/*".into(),
        schema: Some(json!({
            "type": "object",
            "properties": {"temp": {"type": "number"}},
        })),
        ..RuleConfig::default()
    };
    ValidateLayer::new(ValidateConfig { rules: vec![rule] }).expect("a valid rule")
}

async fn broker_with(config: pathmq::config::Config, layer: ValidateLayer) -> TestBroker {
    start_builder(pathmq::Broker::builder().config(config).layer(layer)).await
}

/// The error meta's code and message.
fn refusal(error: &Value) -> (u64, &str) {
    let code = error["error"]["code"].as_u64().unwrap_or_default();
    (code, error["error"]["message"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn a_native_set_breaking_the_schema_gets_400_naming_the_field() {
    let broker = broker_with(loopback_config(), sensors_schema()).await;
    let mut native = broker.native().await;
    let error = native
        .request("set", Some("/sensors/a/temp"), json!({"temp": "hot"}), None)
        .await
        .expect_err("the schema refuses it");
    assert_eq!(
        refusal(&error),
        (
            400,
            r#"/sensors/a/temp: at /temp: "hot" is not of type "number""#
        ),
        "{error}"
    );
    assert!(
        native.get("/sensors/a/temp").await["data"].is_null(),
        "nothing is stored"
    );
    native.set("/sensors/a/temp", json!({"temp": 21.5})).await;
    assert_eq!(native.get("/sensors/a/temp").await["data"]["temp"], 21.5);
    // Other paths are not checked.
    native.set("/other", json!({"temp": "hot"})).await;
    broker.broker.shutdown().await;
}

/// Publishes `payload` at QoS 1 and answers the PUBACK's reason and reason string.
async fn publish_v5(
    client: &rumqttc::v5::AsyncClient,
    eventloop: &mut rumqttc::v5::EventLoop,
    payload: &'static str,
) -> (PubAckReason, Option<String>) {
    client
        .publish("sensors/a", QoS::AtLeastOnce, false, payload)
        .await
        .unwrap();
    poll_v5(eventloop, |e| match e {
        rumqttc::v5::Event::Incoming(V5Packet::PubAck(ack)) => Some((
            ack.reason,
            ack.properties
                .as_ref()
                .and_then(|p| p.reason_string.clone()),
        )),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn an_mqtt5_publish_breaking_the_schema_gets_puback_0x99_and_is_not_delivered() {
    let broker = broker_with(loopback_config(), sensors_schema()).await;
    let (subscriber, mut sub_loop) = broker.mqtt_v5("sub-v5");
    subscriber
        .subscribe("sensors/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    poll_v5(&mut sub_loop, v5_suback).await;

    let (publisher, mut pub_loop) = broker.mqtt_v5("dev-v5");
    let (reason, why) = publish_v5(&publisher, &mut pub_loop, r#"{"temp": "hot"}"#).await;
    assert_eq!(reason, PubAckReason::PayloadFormatInvalid);
    let why = why.unwrap_or_default();
    assert!(
        why.contains(r#"at /temp: "hot" is not of type "number""#),
        "{why}"
    );
    let (reason, why) = publish_v5(&publisher, &mut pub_loop, "hot").await;
    assert_eq!(reason, PubAckReason::PayloadFormatInvalid);
    assert_eq!(why.as_deref(), Some("/sensors/a: payload is not JSON"));
    let (reason, _) = publish_v5(&publisher, &mut pub_loop, r#"{"temp": 21.5}"#).await;
    assert_eq!(reason, PubAckReason::Success);

    // Delivery is in order: had a refused message been routed, it would come first.
    let publish = poll_v5(&mut sub_loop, v5_publish).await;
    assert_eq!(&publish.payload[..], br#"{"temp": 21.5}"#);
    assert_eq!(broker.broker.core().stats().rejected, 2);
    broker.broker.shutdown().await;
}

/// A secure broker where `ann` (group `devices`) may set `temp` and `unit` under
/// `/sensors/*`, and `bob` (group `others`) may write there too but has no field list.
async fn secure_broker_with_field_lists() -> TestBroker {
    let rule = RuleConfig {
        path: "/sensors/*".into(),
        fields: Some(BTreeMap::from([(
            "devices".to_owned(),
            vec!["temp".to_owned(), "unit".to_owned()],
        )])),
        ..RuleConfig::default()
    };
    let layer = ValidateLayer::new(ValidateConfig { rules: vec![rule] }).expect("a valid rule");
    let broker = broker_with(secure_config("pw"), layer).await;
    let directory = broker.broker.core().security().expect("secure").directory();
    let write = PermissionEntry {
        actions: [Right::Set, Right::Get].into_iter().collect(),
        ..PermissionEntry::default()
    };
    for (user, group) in [("ann", "devices"), ("bob", "others")] {
        directory
            .upsert_group(Group {
                name: group.into(),
                permissions: Permissions::from([("/sensors/*".into(), write.clone())]),
                ..Group::default()
            })
            .await
            .unwrap();
        directory
            .upsert_user(UserInput {
                username: user.into(),
                password: Some(format!("pw-{user}").into()),
                ..UserInput::default()
            })
            .await
            .unwrap();
        directory.link_group(user, group).await.unwrap();
    }
    broker
}

async fn native_login(broker: &TestBroker, user: &str) -> Native {
    let mut native = Native::open(&format!("ws://{}/", broker.http)).await;
    let login = json!({"username": user, "password": format!("pw-{user}")});
    native
        .request("login", None, login, None)
        .await
        .expect("login");
    native
}

#[tokio::test]
async fn field_lists_restrict_what_each_group_may_set() {
    let broker = secure_broker_with_field_lists().await;
    let mut ann = native_login(&broker, "ann").await;
    ann.set("/sensors/a", json!({"temp": 21.5, "unit": "C"}))
        .await;
    let error = ann
        .request(
            "set",
            Some("/sensors/b"),
            json!({"temp": 1, "secret": 2}),
            None,
        )
        .await
        .expect_err("secret is not on the devices list");
    assert_eq!(
        refusal(&error),
        (
            400,
            r#"/sensors/b: field "secret" is not allowed for your groups"#
        ),
        "{error}"
    );
    assert!(
        ann.get("/sensors/b").await["data"].is_null(),
        "nothing is stored"
    );

    // bob may write under /sensors (permissions), but no list is his: he may set nothing.
    let mut bob = native_login(&broker, "bob").await;
    let error = bob
        .request("set", Some("/sensors/c"), json!({"temp": 1}), None)
        .await
        .expect_err("no list applies to bob");
    assert_eq!(
        refusal(&error),
        (400, "/sensors/c: no field is allowed for your groups"),
        "{error}"
    );
    assert_eq!(bob.get("/sensors/a").await["data"]["unit"], "C");
    broker.broker.shutdown().await;
}
