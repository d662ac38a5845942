//! Every code example of `reference/happn-3.md` from SET through MERGING, run with the
//! Rust client ([`Client`] over WebSocket) against a broker on `127.0.0.1:0`, asserting
//! what the reference says it returns. One test per example, named after its section.
//!
//! Where pathmq answers otherwise on purpose, the test asserts pathmq's answer and a
//! comment says why; where the reference's example itself has a slip (a typo in a key
//! or a path), the comment says so and the test asserts what the example means.
//!
//! The examples follow the reference's order, so that they read beside it: `data.rs`
//! from SET through DELETE / REMOVE, `events.rs` from EVENTS through MERGING.
//!
//! "No event" is shown without sleeping: after the write that must not be delivered, a
//! write that must be is made, and the next event has to be that one. Every wait is
//! bounded by [`common::WAIT`].

#[path = "../common/mod.rs"]
mod common;
mod data;
mod events;
#[path = "../common/listen.rs"]
mod listen;

use anyhow::{Context as _, Result, bail};
use futures_util::FutureExt as _;
use listen::{ended, next_event, within};
use pathmq_native::client::{
    Client, ClientConfig, DataApi, EventFilter, EventKind, GetOptions, Item, OnOptions,
    RemoveOptions, SetOptions, Subscription,
};
use serde_json::{Map, Value, json};

/// A client of `broker` over WebSocket, with the test's bounded waits.
async fn connect(broker: &common::Broker) -> Result<Client> {
    let mut config = ClientConfig::websocket(format!("ws://{}/", broker.http));
    config.request_timeout = common::WAIT;
    config.connect_timeout = common::WAIT;
    Ok(Client::connect(config).await?)
}

/// A broker and one client of it.
async fn start() -> Result<(common::Broker, Client)> {
    let broker = common::start().await?;
    let client = connect(&broker).await?;
    Ok((broker, client))
}

/// Nothing is waiting on `subscription`. Meaningful only once a later event on the same
/// connection has been received: a connection delivers its events in order.
fn nothing_pending(subscription: &mut Subscription) -> Result<()> {
    if let Some(event) = subscription.recv().now_or_never() {
        bail!("{} got {event:?}", subscription.channel());
    }
    Ok(())
}

fn paths(items: &[Item]) -> Vec<&str> {
    items.iter().map(Item::path).collect()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn properties() -> Value {
    json!({"property1": "property1", "property2": "property2", "property3": "property3"})
}
