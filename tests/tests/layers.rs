//! The middleware queue (DESIGN.md §8): a test layer that rejects, rewrites and drops.

mod support;

use pathmq::core::{
    Error, InboundVerdict, Layer, LayerContext, Outbound, OutboundVerdict, Payload, Request,
    async_trait,
};
use serde_json::json;
use support::*;

/// Rejects sets under `/forbidden`, stamps `{"stamped": true}` onto sets under
/// `/stamp`, and drops outbound events under `/secret`.
struct TestLayer;

#[async_trait]
impl Layer for TestLayer {
    fn name(&self) -> &str {
        "test"
    }

    async fn inbound(&self, _cx: &LayerContext<'_>, request: &mut Request) -> InboundVerdict {
        if let Request::Set { path, payload, .. } = request {
            if path.as_str().starts_with("/forbidden/") {
                return InboundVerdict::Reject(Error::Forbidden(format!("no writes under {path}")));
            }
            if path.as_str().starts_with("/stamp/") {
                *payload = Payload::json(&json!({"stamped": true}));
            }
        }
        InboundVerdict::Continue
    }

    async fn outbound(&self, _cx: &LayerContext<'_>, message: &mut Outbound) -> OutboundVerdict {
        match message {
            Outbound::Event { event, .. } if event.path.as_str().starts_with("/secret/") => {
                OutboundVerdict::Drop
            }
            _ => OutboundVerdict::Continue,
        }
    }
}

#[tokio::test]
async fn a_layer_can_reject_change_and_drop() {
    let mut config = pathmq::config::Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.engine = pathmq::config::Engine::Memory;
    let broker = start_builder(pathmq::Broker::builder().config(config).layer(TestLayer)).await;
    let mut native = broker.native().await;

    let error = native
        .request("set", Some("/forbidden/x"), json!({"a": 1}), None)
        .await
        .unwrap_err();
    assert_eq!(error["error"]["code"], 403, "{error}");
    assert!(
        native.get("/forbidden/x").await["data"].is_null(),
        "a rejected set stores nothing"
    );

    native.set("/stamp/x", json!({"a": 1})).await;
    assert_eq!(
        native.get("/stamp/x").await["data"],
        json!({"stamped": true})
    );

    // Events arrive in order, so if the /secret event were delivered it would come first.
    native.on("/secret/**").await;
    native.on("/open/**").await;
    native.set("/secret/a", json!({"s": 1})).await;
    native.set("/open/a", json!({"o": 1})).await;
    let event = native.next_event().await;
    assert_eq!(
        event["_meta"]["path"], "/open/a",
        "the /secret event must be dropped: {event}"
    );
    broker.broker.shutdown().await;
}
