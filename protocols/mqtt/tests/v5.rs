//! Round trips through a real MQTT 5 client (rumqttc v5): QoS, retained messages and
//! retain handling, user properties, content type, assigned client ids, takeover.

mod common;

use bytes::Bytes;
use common::{Incoming, start, v5_client, v5_client_with};
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    Filter, Packet, Publish, PublishProperties, RetainForwardRule, SubscribeReasonCode,
};

async fn publish_acked(
    client: &AsyncClient,
    incoming: &mut Incoming<Packet>,
    topic: &str,
    qos: QoS,
    retain: bool,
    payload: impl Into<Bytes>,
) {
    client.publish(topic, qos, retain, payload).await.unwrap();
    wait_ack(incoming, qos).await;
}

async fn wait_ack(incoming: &mut Incoming<Packet>, qos: QoS) {
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => {
            incoming
                .until(|p| matches!(p, Packet::PubAck(_)).then_some(()))
                .await
        }
        QoS::ExactlyOnce => {
            incoming
                .until(|p| matches!(p, Packet::PubComp(_)).then_some(()))
                .await
        }
    }
}

async fn subscribed(
    client: &AsyncClient,
    incoming: &mut Incoming<Packet>,
    filter: Filter,
) -> Vec<SubscribeReasonCode> {
    client.subscribe_many([filter]).await.unwrap();
    incoming
        .until(|p| match p {
            Packet::SubAck(s) => Some(s.return_codes.clone()),
            _ => None,
        })
        .await
}

async fn next_publish(incoming: &mut Incoming<Packet>) -> Publish {
    incoming
        .until(|p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
}

#[tokio::test]
async fn connack_announces_limits_and_assigns_an_empty_client_id() {
    let broker = start().await;
    let (_client, _incoming, connack) = v5_client_with(&broker, "", |_| {}).await;
    let props = connack.properties.expect("CONNACK properties");
    let assigned = props
        .assigned_client_identifier
        .expect("assigned client id");
    assert!(assigned.starts_with("pathmq-"), "{assigned}");
    assert_eq!(props.receive_max, Some(128));
    assert_eq!(props.max_packet_size, Some(1024 * 1024 + 1024));
    // Shared subscriptions and subscription identifiers are available: the default,
    // so not announced; topic aliases up to the configured maximum.
    assert_eq!(props.shared_subscription_available, None);
    assert_eq!(props.subscription_identifiers_available, None);
    assert_eq!(props.topic_alias_max, Some(10));
    assert!(!connack.session_present);
}

#[tokio::test]
async fn publish_subscribe_round_trip_at_each_qos() {
    let broker = start().await;
    let (sub, mut sub_in) = v5_client(&broker, "sub").await;
    let (publisher, mut pub_in) = v5_client(&broker, "pub").await;
    let codes = subscribed(&sub, &mut sub_in, Filter::new("rt/#", QoS::ExactlyOnce)).await;
    assert_eq!(codes, [SubscribeReasonCode::Success(QoS::ExactlyOnce)]);
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let topic = format!("rt/{i}");
        let payload = vec![i as u8, 0xFF, 0x00];
        publish_acked(&publisher, &mut pub_in, &topic, qos, false, payload.clone()).await;
        let got = next_publish(&mut sub_in).await;
        assert_eq!(&got.topic[..], topic.as_bytes());
        assert_eq!(got.qos, qos);
        assert_eq!(&got.payload[..], &payload[..], "byte-exact");
        // Binary payloads carry no content type.
        assert!(got.properties.and_then(|p| p.content_type).is_none());
    }
}

#[tokio::test]
async fn user_properties_become_meta_and_json_gets_a_content_type() {
    let broker = start().await;
    let (sub, mut sub_in) = v5_client(&broker, "sub").await;
    let (publisher, mut pub_in) = v5_client(&broker, "pub").await;
    subscribed(&sub, &mut sub_in, Filter::new("p/x", QoS::AtLeastOnce)).await;
    let properties = PublishProperties {
        user_properties: vec![("origin".into(), "sensor-1".into())],
        ..Default::default()
    };
    publisher
        .publish_with_properties("p/x", QoS::AtLeastOnce, false, r#"{"t":21.5}"#, properties)
        .await
        .unwrap();
    wait_ack(&mut pub_in, QoS::AtLeastOnce).await;
    let got = next_publish(&mut sub_in).await;
    assert_eq!(&got.payload[..], br#"{"t":21.5}"#);
    let props = got.properties.expect("properties");
    assert_eq!(
        props.user_properties,
        [("origin".to_owned(), "sensor-1".to_owned())]
    );
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn retain_handling_is_honoured() {
    let broker = start().await;
    let (publisher, mut pub_in) = v5_client(&broker, "pub").await;
    publish_acked(
        &publisher,
        &mut pub_in,
        "rh/a",
        QoS::AtLeastOnce,
        true,
        "kept",
    )
    .await;
    let (sub, mut sub_in) = v5_client(&broker, "sub").await;
    let with = |rule| {
        let mut f = Filter::new("rh/+", QoS::AtLeastOnce);
        f.retain_forward_rule = rule;
        f
    };
    // 1 (only for a new subscription): new → sent.
    subscribed(&sub, &mut sub_in, with(RetainForwardRule::OnNewSubscribe)).await;
    let first = next_publish(&mut sub_in).await;
    assert!(first.retain);
    assert_eq!(&first.payload[..], b"kept");
    // 1 again: the subscription exists → not sent.
    subscribed(&sub, &mut sub_in, with(RetainForwardRule::OnNewSubscribe)).await;
    // 2 (never) → not sent.
    subscribed(&sub, &mut sub_in, with(RetainForwardRule::Never)).await;
    // 0 (always) → sent again.
    subscribed(&sub, &mut sub_in, with(RetainForwardRule::OnEverySubscribe)).await;
    let again = next_publish(&mut sub_in).await;
    assert!(again.retain);
    assert_eq!(&again.topic[..], b"rh/a");
    // Replacing the subscription kept exactly one: one live message arrives once.
    publish_acked(
        &publisher,
        &mut pub_in,
        "rh/b",
        QoS::AtLeastOnce,
        false,
        "live",
    )
    .await;
    publish_acked(
        &publisher,
        &mut pub_in,
        "rh/c",
        QoS::AtLeastOnce,
        false,
        "marker",
    )
    .await;
    assert_eq!(&next_publish(&mut sub_in).await.topic[..], b"rh/b");
    assert_eq!(&next_publish(&mut sub_in).await.topic[..], b"rh/c");
}

/// Shared subscriptions are granted per filter like any other; a malformed one
/// (`$share/` without a group or filter) gets 0x8F [MQTT-4.8.2-1/-2].
#[tokio::test]
async fn shared_subscriptions_are_granted_per_filter() {
    let broker = start().await;
    let (sub, mut sub_in) = v5_client(&broker, "sub").await;
    sub.subscribe_many([
        Filter::new("ok/+", QoS::AtLeastOnce),
        Filter::new("$share/g/x", QoS::AtLeastOnce),
        Filter::new("$share/g", QoS::AtLeastOnce),
    ])
    .await
    .unwrap();
    let codes = sub_in
        .until(|p| match p {
            Packet::SubAck(s) => Some(s.return_codes.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        codes,
        [
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::TopicFilterInvalid,
        ]
    );
}

#[tokio::test]
async fn no_local_subscriptions_skip_own_messages() {
    let broker = start().await;
    let (client, mut incoming) = v5_client(&broker, "self").await;
    let mut own = Filter::new("nl/own", QoS::AtLeastOnce);
    own.nolocal = true;
    subscribed(&client, &mut incoming, own).await;
    subscribed(
        &client,
        &mut incoming,
        Filter::new("nl/marker", QoS::AtLeastOnce),
    )
    .await;
    publish_acked(
        &client,
        &mut incoming,
        "nl/own",
        QoS::AtLeastOnce,
        false,
        "x",
    )
    .await;
    publish_acked(
        &client,
        &mut incoming,
        "nl/marker",
        QoS::AtLeastOnce,
        false,
        "m",
    )
    .await;
    assert_eq!(&next_publish(&mut incoming).await.topic[..], b"nl/marker");
}

#[tokio::test]
async fn takeover_sends_session_taken_over_to_the_old_connection() {
    let broker = start().await;
    let (_old, mut old_in) = v5_client(&broker, "same").await;
    let (new, mut new_in) = v5_client(&broker, "same").await;
    let error = old_in.error().await;
    assert!(error.contains("SessionTakenOver"), "{error}");
    subscribed(&new, &mut new_in, Filter::new("to/x", QoS::AtLeastOnce)).await;
    publish_acked(&new, &mut new_in, "to/x", QoS::AtLeastOnce, false, "hi").await;
    assert_eq!(&next_publish(&mut new_in).await.payload[..], b"hi");
}

#[tokio::test]
async fn small_receive_maximum_still_delivers_everything_in_order() {
    let broker = start().await;
    let (sub, mut sub_in, _) = v5_client_with(&broker, "sub", |o| {
        o.set_receive_maximum(Some(2));
    })
    .await;
    let (publisher, mut pub_in) = v5_client(&broker, "pub").await;
    subscribed(&sub, &mut sub_in, Filter::new("win/+", QoS::AtLeastOnce)).await;
    for i in 0..20 {
        publish_acked(
            &publisher,
            &mut pub_in,
            &format!("win/{i}"),
            QoS::AtLeastOnce,
            false,
            "x",
        )
        .await;
    }
    for i in 0..20 {
        let got = next_publish(&mut sub_in).await;
        assert_eq!(got.topic, format!("win/{i}").into_bytes());
    }
}

#[tokio::test]
async fn retained_messages_respect_the_receive_maximum() {
    let broker = start().await;
    let (publisher, mut pub_in) = v5_client(&broker, "pub").await;
    for i in 0..10 {
        let topic = format!("rr/{i}");
        publish_acked(
            &publisher,
            &mut pub_in,
            &topic,
            QoS::AtLeastOnce,
            true,
            "kept",
        )
        .await;
    }
    let (sub, mut sub_in, _) = v5_client_with(&broker, "sub", |o| {
        o.set_receive_maximum(Some(1));
    })
    .await;
    subscribed(&sub, &mut sub_in, Filter::new("rr/+", QoS::AtLeastOnce)).await;
    let mut topics = Vec::new();
    for _ in 0..10 {
        let p = next_publish(&mut sub_in).await;
        assert!(p.retain);
        topics.push(String::from_utf8(p.topic.to_vec()).unwrap());
    }
    topics.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("rr/{i}")).collect();
    expected.sort();
    assert_eq!(topics, expected);
}
