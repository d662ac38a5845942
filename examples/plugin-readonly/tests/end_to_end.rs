//! The example plugin in a real broker, with real clients: the native protocol's Rust
//! client and rumqttc (MQTT 5).

use std::time::Duration;

use pathmq::native::client::{Client, ClientConfig, DataApi, SetOptions};
use pathmq_example_readonly::{ReadOnlyConfig, ReadOnlyLayer};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// A broker on loopback ports chosen by the system, in memory, with the layer.
async fn broker() -> pathmq::RunningBroker {
    let mut config = pathmq::config::Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.engine = pathmq::config::Engine::Memory;
    let layer = ReadOnlyLayer::new(&ReadOnlyConfig {
        paths: vec!["/config/*".into()],
        writers: vec!["admins".into()],
    })
    .unwrap();
    pathmq::Broker::builder()
        .config(config)
        .layer(layer)
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn native_writes_to_read_only_paths_get_403_and_reads_work() {
    let broker = broker().await;
    let url = format!("ws://{}/", broker.http_addr().unwrap());
    let client = Client::connect(ClientConfig::websocket(&url))
        .await
        .unwrap();
    let refused = client
        .set("/config/mode", json!({"m": 1}), SetOptions::new())
        .await;
    assert_eq!(refused.err().and_then(|e| e.code()), Some(403));
    client
        .set("/data/mode", json!({"m": 1}), SetOptions::new())
        .await
        .expect("other paths are writable");
    assert!(
        client.get("/config/mode").await.unwrap().is_none(),
        "nothing stored"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn an_mqtt5_publish_to_a_read_only_path_gets_puback_0x87() {
    let broker = broker().await;
    let addr = broker.mqtt_addr().unwrap();
    let options = MqttOptions::new("readonly-test", addr.ip().to_string(), addr.port());
    let (client, mut events) = AsyncClient::new(options, 16);
    client
        .publish("config/mode", QoS::AtLeastOnce, false, "on")
        .await
        .unwrap();
    let reason = tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::PubAck(ack)) = events.poll().await.unwrap() {
                return ack.reason;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        reason,
        rumqttc::v5::mqttbytes::v5::PubAckReason::NotAuthorized
    );
    broker.shutdown().await;
}
