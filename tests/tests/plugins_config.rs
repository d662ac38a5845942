//! Plugins enabled from the config file (`[plugins.rate_limit]`, `[plugins.validate]`),
//! as the binary does: the same config text a user writes, then real clients.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn rate_limit_and_validate_from_the_config_file() {
    let mut config = pathmq::config::Config::from_toml(
        r#"
        [plugins.rate_limit]
        per = ["session"]
        actions.set = { limit = 3, every = 60000 }

        [[plugins.validate.rules]]
        path = "/sensors/*"
        schema = { type = "object", properties = { temp = { type = "number" } } }
        "#,
    )
    .unwrap();
    let loopback = loopback_config();
    config.http = loopback.http;
    config.mqtt = loopback.mqtt;
    config.storage = loopback.storage;
    let broker = start_with(config).await;
    let mut native = broker.native().await;

    // Validation runs after the rate limit: the refused set still spends a token.
    let bad = native
        .request("set", Some("/sensors/a"), json!({"temp": "hot"}), None)
        .await
        .unwrap_err();
    assert_eq!(bad["error"]["code"], 400, "{bad}");
    native.set("/sensors/a", json!({"temp": 21})).await;
    native.set("/other", json!({"x": 1})).await;
    let limited = native
        .request("set", Some("/other"), json!({"x": 2}), None)
        .await
        .unwrap_err();
    assert_eq!(limited["error"]["code"], 429, "{limited}");
    assert_eq!(broker.broker.core().stats().rate_limited, 1);
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn a_bad_plugin_setting_stops_the_broker_naming_the_key() {
    let mut config = pathmq::config::Config::from_toml(
        r#"
        [plugins.rate_limit]
        actions.sett = { limit = 3, every = 1000 }
        "#,
    )
    .unwrap();
    config.storage = loopback_config().storage;
    let error = match pathmq::Broker::builder().config(config).start().await {
        Ok(_) => panic!("started with an unknown action"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("sett"), "{error}");
}
