//! Pipelining (issue 3): a client sends many requests without waiting for answers. They
//! must take effect in the order sent and be answered in that order (`src/inflight.rs`).
//!
//! These run over redb with small batches, so that pipelined sets span several group
//! commits and reads run on other threads: the cases where an ordering mistake shows.

mod common;

use std::sync::Arc;

use anyhow::{Context as _, Result, ensure};
use common::{Broker, Client, meta_of};
use pathmq_native::NativeConfig;
use pathmq_storage::RedbStore;
use serde_json::{Value, json};

/// A broker over redb in a temporary folder (kept alive by the returned guard), with
/// batches of at most 16 operations and room for 4,096 in the writer's queue.
async fn redb_broker(config: NativeConfig) -> Result<(tempfile::TempDir, Broker)> {
    redb_broker_with(config, 4096).await
}

/// A broker over redb with room for `queue` operations in the writer's queue.
async fn redb_broker_with(
    config: NativeConfig,
    queue: usize,
) -> Result<(tempfile::TempDir, Broker)> {
    let dir = tempfile::tempdir()?;
    let store = RedbStore::builder(dir.path().join("pathmq.redb"))
        .queue_capacity(queue)
        .max_batch(16)
        .open()?;
    let broker = common::start_on(Arc::new(store), config).await?;
    Ok((dir, broker))
}

async fn connect(broker: &Broker, tcp: bool) -> Result<Client> {
    let mut client = match tcp {
        true => Client::tcp(broker).await?,
        false => Client::ws(broker, "/primus").await?,
    };
    client.handshake().await?;
    Ok(client)
}

/// The next frame that is not a heartbeat.
async fn frame(client: &mut Client) -> Result<Value> {
    loop {
        let frame = client.next().await?;
        if !frame.is_string() {
            return Ok(frame);
        }
    }
}

/// Reads the answers to `ids`, which must come in that order; returns them.
async fn answers(client: &mut Client, ids: &[u64]) -> Result<Vec<Value>> {
    let mut answers = Vec::with_capacity(ids.len());
    for &id in ids {
        let answer = frame(client).await?;
        let meta = meta_of(&answer);
        ensure!(
            meta["eventId"] == id,
            "expected the answer to {id}, got {answer}"
        );
        ensure!(meta["status"] == "ok", "request {id} failed: {answer}");
        answers.push(answer);
    }
    Ok(answers)
}

/// Guards the write order: many sets of one path from one connection, sent in one burst,
/// are applied, answered and published in the order sent; the last one wins. Hundreds of
/// them reach the store in one poll of the connection, past tokio's cooperative budget:
/// a set that found the budget spent used to yield and start after later ones.
#[tokio::test]
async fn pipelined_sets_of_one_path_apply_in_order() -> Result<()> {
    let (_dir, broker) = redb_broker(NativeConfig::default()).await?;
    sets_apply_in_order(&broker).await
}

/// The same while the writer's queue (4 operations) is full most of the time, so that
/// sets wait for room.
#[tokio::test]
async fn pipelined_sets_apply_in_order_while_the_writer_queue_is_full() -> Result<()> {
    let (_dir, broker) = redb_broker_with(NativeConfig::default(), 4).await?;
    sets_apply_in_order(&broker).await
}

async fn sets_apply_in_order(broker: &Broker) -> Result<()> {
    for tcp in [false, true] {
        let path = format!("/pipe/order/{tcp}");
        let mut listener = connect(broker, false).await?;
        listener.on(&format!("/SET@{path}"), Value::Null).await?;
        let mut writer = connect(broker, tcp).await?;
        const SETS: u64 = 2000;
        let sets = (0..SETS).map(|n| ("set", Some(path.clone()), json!({ "n": n })));
        let ids = writer.send_burst(sets).await?;
        for (n, answer) in answers(&mut writer, &ids).await?.iter().enumerate() {
            ensure!(answer["data"]["n"] == n, "answer {n} is {answer}");
        }
        let got = writer
            .ok("get", Some(&path), Value::Null, Value::Null)
            .await?;
        assert_eq!(got["data"]["n"], SETS - 1, "the last set wins ({tcp})");
        for n in 0..SETS {
            let event = listener.event().await?;
            ensure!(event["data"]["n"] == n, "event {n} is {event}");
        }
    }
    Ok(())
}

/// Guards the read barrier: a `get` or `count` sent right after sets on the same
/// connection sees them (it waits for their commit), and not the sets sent after it.
#[tokio::test]
async fn a_read_after_sets_on_one_connection_sees_them() -> Result<()> {
    let (_dir, broker) = redb_broker(NativeConfig::default()).await?;
    let mut client = connect(&broker, false).await?;
    const ROUNDS: u64 = 100;
    let mut ids = Vec::new();
    for n in 0..ROUNDS {
        ids.push(
            client
                .send("set", Some("/pipe/rw/last"), json!({ "n": n }), Value::Null)
                .await?,
        );
        ids.push(
            client
                .send("set", Some(&format!("/pipe/rw/{n}")), json!(n), Value::Null)
                .await?,
        );
        ids.push(
            client
                .send("get", Some("/pipe/rw/last"), Value::Null, Value::Null)
                .await?,
        );
        ids.push(
            client
                .send("count", Some("/pipe/rw/*"), Value::Null, Value::Null)
                .await?,
        );
    }
    let answers = answers(&mut client, &ids).await?;
    for (n, round) in answers.chunks(4).enumerate() {
        let (get, count) = (&round[2], &round[3]);
        assert_eq!(get["data"]["n"], n, "get of round {n}: {get}");
        // `/pipe/rw/last` and the `n + 1` numbered records.
        assert_eq!(count["data"]["value"], n + 2, "count of round {n}: {count}");
    }
    Ok(())
}

/// Guards `on`/`off` against sets of the same connection: a subscription made before a
/// set gets its event, an `off` after a set does not lose it, and a subscription made
/// after a set does not get it, even when nothing waits for the answers in between.
#[tokio::test]
async fn subscribe_then_set_on_one_connection_gets_the_event() -> Result<()> {
    let (_dir, broker) = redb_broker(NativeConfig::default()).await?;
    let mut client = connect(&broker, false).await?;
    let (first, second) = ("/ALL@/pipe/s/*", "/SET@/pipe/s/*");
    let set = |v| (Some("/pipe/s/x"), json!({ "v": v }));
    let mut ids = Vec::new();
    ids.push(
        client
            .send("on", Some(first), Value::Null, Value::Null)
            .await?,
    );
    for (action, (path, data)) in [
        ("set", set(1)),
        ("set", set(2)),
        ("off", (Some(first), Value::Null)),
        ("set", set(3)),
        ("on", (Some(second), Value::Null)),
        ("set", set(4)),
    ] {
        ids.push(client.send(action, path, data, Value::Null).await?);
    }

    let (mut answered, mut events) = (Vec::new(), Vec::new());
    while answered.len() < ids.len() || events.last().map(|(_, v)| *v) != Some(4) {
        let frame = frame(&mut client).await?;
        let meta = meta_of(&frame);
        match meta["type"].as_str() {
            Some("response") => answered.push(meta["eventId"].as_u64().context("eventId")?),
            Some("data") => {
                let channel = meta["channel"].as_str().context("channel")?.to_owned();
                events.push((channel, frame["data"]["v"].as_u64().context("v")?));
            }
            _ => anyhow::bail!("unexpected frame {frame}"),
        }
    }
    assert_eq!(answered, ids, "answers in request order");
    let expected = [(first, 1), (first, 2), (second, 4)];
    let expected: Vec<_> = expected
        .iter()
        .map(|(c, v)| ((*c).to_owned(), *v))
        .collect();
    assert_eq!(events, expected);
    Ok(())
}

/// Guards the in-flight limit as backpressure, not loss: a client that sends far more
/// requests than the limit without reading any answer gets every answer, in order.
#[tokio::test]
async fn a_client_that_reads_nothing_past_the_limit_gets_every_answer() -> Result<()> {
    let mut config = NativeConfig::default();
    config.max_in_flight = 4;
    let (_dir, broker) = redb_broker(config).await?;
    for tcp in [false, true] {
        let mut client = connect(&broker, tcp).await?;
        let mut ids = Vec::new();
        for n in 0..300 {
            let path = format!("/pipe/limit/{tcp}/{n}");
            ids.push(
                client
                    .send("set", Some(&path), json!(n), Value::Null)
                    .await?,
            );
            if n % 50 == 0 {
                ids.push(
                    client
                        .send("describe", None, Value::Null, Value::Null)
                        .await?,
                );
            }
        }
        answers(&mut client, &ids).await?;
        let count = client
            .ok(
                "count",
                Some(&format!("/pipe/limit/{tcp}/*")),
                Value::Null,
                Value::Null,
            )
            .await?;
        assert_eq!(count["data"]["value"], 300);
    }
    Ok(())
}
