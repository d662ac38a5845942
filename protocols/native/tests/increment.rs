//! Gauges (`reference/happn-3.md` INCREMENT): `set(path, gauge, {increment})`.

mod common;

use anyhow::{Result, ensure};
use common::Client;
use serde_json::{Value, json};

async fn client(broker: &common::Broker) -> Result<Client> {
    let mut client = Client::ws(broker, "/primus").await?;
    client.handshake().await?;
    Ok(client)
}

async fn increment(c: &mut Client, path: &str, gauge: &str, by: Value) -> Result<Value> {
    c.ok("set", Some(path), json!(gauge), json!({ "increment": by }))
        .await
}

#[tokio::test]
async fn a_gauge_counts_and_its_event_carries_gauge_and_value() -> Result<()> {
    let broker = common::start().await?;
    let mut listener = client(&broker).await?;
    let mut c = client(&broker).await?;
    listener.on("/ALL@/my/increment/guage", json!({})).await?;

    let answer = increment(&mut c, "/my/increment/guage", "counter", json!(1)).await?;
    assert_eq!(answer["data"], json!({"gauge": "counter", "value": 1}));
    assert_eq!(answer["_meta"]["path"], "/my/increment/guage");
    let event = listener.event().await?;
    assert_eq!(event["data"], json!({"gauge": "counter", "value": 1}));

    let got = c
        .ok("get", Some("/my/increment/guage"), Value::Null, Value::Null)
        .await?;
    assert_eq!(got["data"]["counter"]["value"], 1);
    Ok(())
}

#[tokio::test]
async fn several_gauges_on_one_path_and_decrements() -> Result<()> {
    let broker = common::start().await?;
    let mut c = client(&broker).await?;
    for time in 0..10 {
        increment(
            &mut c,
            "/my/dashboard",
            &format!("counter-{time}"),
            json!(1),
        )
        .await?;
    }
    for _ in 0..10 {
        increment(&mut c, "/my/guage", "counter-0", json!(1)).await?;
    }
    let dashboard = c
        .ok("get", Some("/my/dashboard"), Value::Null, Value::Null)
        .await?;
    for time in 0..10 {
        assert_eq!(dashboard["data"][format!("counter-{time}")]["value"], 1);
    }
    let gauge = c
        .ok("get", Some("/my/guage"), Value::Null, Value::Null)
        .await?;
    assert_eq!(gauge["data"]["counter-0"]["value"], 10);

    increment(&mut c, "/my/test/guage", "custom", json!(3)).await?;
    let after = increment(&mut c, "/my/test/guage", "custom", json!(-2)).await?;
    assert_eq!(after["data"], json!({"gauge": "custom", "value": 1}));
    let half = increment(&mut c, "/my/test/guage", "custom", json!(0.5)).await?;
    assert_eq!(half["data"]["value"], 1.5);

    for (data, options) in [
        (json!({"not": "a name"}), json!({"increment": 1})),
        (json!("g"), json!({"increment": "one"})),
        (json!("g"), json!({"increment": 1, "noStore": true})),
    ] {
        let answer = c
            .call("set", Some("/bad/guage"), data, options.clone())
            .await?;
        assert_eq!(answer["_meta"]["error"]["code"], 400, "{options}");
    }
    Ok(())
}

/// 16 clients incrementing one gauge 1,000 times each, all pipelined at once, end at
/// exactly 16,000: increments are atomic in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_lose_nothing() -> Result<()> {
    const CLIENTS: usize = 16;
    const EACH: usize = 1_000;
    let broker = common::start().await?;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = client(&broker).await?;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(EACH);
            for _ in 0..EACH {
                ids.push(
                    c.send(
                        "set",
                        Some("/shared/gauge"),
                        json!("hits"),
                        json!({"increment": 1}),
                    )
                    .await?,
                );
            }
            for id in ids {
                let answer = c.response(id).await?;
                ensure!(answer["_meta"]["status"] == "ok", "{answer}");
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let mut c = client(&broker).await?;
    let got = c
        .ok("get", Some("/shared/gauge"), Value::Null, Value::Null)
        .await?;
    assert_eq!(got["data"]["hits"]["value"], (CLIENTS * EACH) as u64);
    Ok(())
}
