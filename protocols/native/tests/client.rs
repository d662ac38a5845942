//! The Rust client (`pathmq_native::client`) against a real broker on `127.0.0.1:0`: the
//! same generic functions run over WebSocket, TCP and in process; listeners; heartbeats;
//! reconnects; errors; and the frames the client sends.
//!
//! No sleeps: every wait is for an answer, an event, a session event or a frame, under
//! [`common::WAIT`].

mod common;
#[path = "common/fake_broker.rs"]
mod fake_broker;
#[path = "common/listen.rs"]
mod listen;
#[path = "common/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use fake_broker::fake_broker;
use listen::{ended, next_event, within};
use pathmq_core::Core;
use pathmq_native::NativeConfig;
use pathmq_native::client::{
    Client, ClientConfig, ClientError, DataApi, EventFilter, EventKind, GetOptions, Item,
    LocalClient, OnOptions, ReconnectPolicy, RemoveOptions, SessionEvent, SetOptions,
};
use pathmq_storage::MemoryStore;
use proxy::Proxy;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// The two remote transports.
#[derive(Debug, Clone, Copy)]
enum Transport {
    Ws,
    Tcp,
}

/// Settings for `addr` over `transport`.
fn config(transport: Transport, addr: SocketAddr) -> ClientConfig {
    let mut config = match transport {
        Transport::Ws => ClientConfig::websocket(format!("ws://{addr}/")),
        Transport::Tcp => ClientConfig::tcp(addr.to_string()),
    };
    config.request_timeout = common::WAIT;
    config.connect_timeout = common::WAIT;
    config
}

/// A client of `broker` over `transport`.
async fn connect(broker: &common::Broker, transport: Transport) -> Result<Client> {
    let addr = match transport {
        Transport::Ws => broker.http,
        Transport::Tcp => broker.tcp,
    };
    Ok(Client::connect(config(transport, addr)).await?)
}

async fn session_event(events: &mut broadcast::Receiver<SessionEvent>) -> Result<SessionEvent> {
    Ok(within(events.recv()).await??)
}

fn paths(items: &[Item]) -> Vec<&str> {
    items.iter().map(Item::path).collect()
}

/// The data calls, written once against the trait.
async fn data_calls(client: &impl DataApi) -> Result<()> {
    let set = client
        .set(
            "/d/a",
            json!({"n": 1, "_meta": {"x": 1}}),
            SetOptions::new(),
        )
        .await?;
    assert_eq!(set.path(), "/d/a");
    assert_eq!(set.data, json!({"n": 1}), "`_meta` is the protocol's");
    assert!(set.meta.created > 0 && set.meta.modified >= set.meta.created);
    assert!(set.meta.published);
    let merged = client
        .set("/d/a", json!({"m": 2}), SetOptions::new().merge(true))
        .await?;
    assert_eq!(merged.data, json!({"n": 1, "m": 2}));
    assert_eq!(merged.meta.created, set.meta.created);

    client.set("/d/b", 5, SetOptions::new()).await?;
    client.set("/d/b/c", "text", SetOptions::new()).await?;
    let quiet = client
        .set("/d/q", json!({}), SetOptions::new().no_publish(true))
        .await?;
    assert!(!quiet.meta.published);
    let got = client.get("/d/b").await?.context("stored")?;
    assert_eq!(got.data, json!({"value": 5}));
    #[derive(serde::Deserialize)]
    struct Wrapped {
        value: u32,
    }
    assert_eq!(got.data_as::<Wrapped>()?.value, 5);
    assert_eq!(client.get("/d/none").await?, None);

    let many = client.get_many("/d/*", GetOptions::new()).await?;
    assert_eq!(paths(&many), ["/d/a", "/d/b", "/d/b/c", "/d/q"]);
    assert_eq!(many[0].data, json!({"n": 1, "m": 2}));
    assert_eq!(many[2].data, json!({"value": "text"}));
    assert_eq!(
        paths(&client.get_many("/d/a", GetOptions::new()).await?),
        ["/d/a"]
    );
    assert!(
        client
            .get_many("/nothing/*", GetOptions::new())
            .await?
            .is_empty()
    );
    assert_eq!(
        client.get_paths("/d/b*").await?,
        ["/d/b", "/d/b/c"].map(String::from)
    );
    assert_eq!(client.count("/d/*", GetOptions::new()).await?, 4);

    client
        .publish("/d/published", json!({"x": 1}), SetOptions::new())
        .await?;
    assert_eq!(
        client.get("/d/published").await?,
        None,
        "published, not stored"
    );

    // Search (reference: SEARCH).
    for (path, genre, episode) in [
        ("/s/1", "horror", 1),
        ("/s/2", "comedy", 2),
        ("/s/3", "horror", 3),
    ] {
        client
            .set(
                path,
                json!({"genre": genre, "episode": episode}),
                SetOptions::new(),
            )
            .await?;
    }
    let horror = GetOptions::new()
        .criteria(json!({"genre": "horror"}))
        .sort(json!({"episode": -1}));
    assert_eq!(
        paths(&client.get_many("/s/*", horror.clone()).await?),
        ["/s/3", "/s/1"]
    );
    assert_eq!(
        paths(&client.get_many("/s/*", horror.clone().limit(1)).await?),
        ["/s/3"]
    );
    assert_eq!(client.count("/s/*", horror).await?, 2);
    let bad = GetOptions::new().criteria(json!({"episode": {"$nope": 1}}));
    let refused = client.get_many("/s/*", bad).await.unwrap_err();
    assert_eq!(refused.code(), Some(400), "{refused}");

    // Remove with criteria (reference: DELETE / REMOVE, `options.criteria`).
    let bad = RemoveOptions::new().criteria(json!({"episode": {"$nope": 1}}));
    let refused = client.remove_many("/s/*", bad).await.unwrap_err();
    assert_eq!(refused.code(), Some(400), "{refused}");
    assert_eq!(
        client.count("/s/*", GetOptions::new()).await?,
        3,
        "none removed"
    );
    let horror = RemoveOptions::new().criteria(json!({"genre": "horror"}));
    assert_eq!(client.remove_many("/s/*", horror).await?, 2);
    assert_eq!(
        paths(&client.get_many("/s/*", GetOptions::new()).await?),
        ["/s/2"]
    );
    let none = RemoveOptions::new().criteria(json!({"genre": "horror"}));
    assert_eq!(client.remove_many("/s/*", none).await?, 0);

    // Tags and siblings (reference: TAGGING, SET SIBLING).
    client
        .set("/tagged", json!({"v": 1}), SetOptions::new().tag("v1"))
        .await?;
    client
        .set("/tagged", json!({"v": 2}), SetOptions::new())
        .await?;
    let snapshot = client.get("/tagged/v1").await?.context("the snapshot")?;
    assert_eq!(snapshot.data, json!({"v": 1}));
    let sibling = client
        .set_sibling("/sib", json!({"s": 1}), SetOptions::new())
        .await?;
    let id = sibling
        .path()
        .strip_prefix("/sib/")
        .context("a child of /sib")?;
    assert_eq!(id.len(), 12, "{}", sibling.path());
    assert_eq!(
        client.get(sibling.path()).await?.context("stored")?.data,
        json!({"s": 1})
    );

    // Gauges (reference: INCREMENT).
    let first = client.increment("/gauges", "hits", 2.0).await?;
    assert_eq!(first.data, json!({"gauge": "hits", "value": 2}));
    assert_eq!(first.path(), "/gauges");
    let second = client.increment("/gauges", "hits", -0.5).await?;
    assert_eq!(second.data, json!({"gauge": "hits", "value": 1.5}));
    client.increment("/gauges", "other", 1.0).await?;
    let gauges = client.get("/gauges").await?.context("stored")?;
    assert_eq!(
        gauges.data,
        json!({"hits": {"value": 1.5}, "other": {"value": 1}})
    );
    let empty = client.increment("/gauges", "", 1.0).await.unwrap_err();
    assert!(matches!(empty, ClientError::InvalidArgument(_)), "{empty}");

    assert_eq!(client.remove("/d/b/c").await?, 1);
    assert_eq!(client.remove("/d/*").await?, 3);
    assert_eq!(client.count("/d/*", GetOptions::new()).await?, 0);

    let wildcard = client.get("/d/*").await.unwrap_err();
    assert!(
        matches!(wildcard, ClientError::InvalidArgument(_)),
        "{wildcard}"
    );
    let refused = client
        .set("/d/*", json!({}), SetOptions::new())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(400), "{refused}");
    let reserved = client
        .set("/_SYSTEM/x", json!({}), SetOptions::new())
        .await
        .unwrap_err();
    assert_eq!(reserved.code(), Some(403), "{reserved}");
    Ok(())
}

/// Listeners, written once against the trait: events and their meta, event types, one
/// channel shared by several listeners, `once`, `off`, `off_path`, `off_all`, initial
/// values, depth, `on_all`.
async fn listeners(client: &impl DataApi) -> Result<()> {
    let mut all = client.on("/l/*", OnOptions::new()).await?;
    let mut also = client.on("/l/*", OnOptions::new()).await?;
    let mut sets = client
        .on("/l/*", OnOptions::new().event_type(EventFilter::Set))
        .await?;
    let mut once = client.once("/l/*", OnOptions::new()).await?;
    assert_eq!((all.channel(), sets.channel()), ("/ALL@/l/*", "/SET@/l/*"));
    assert_ne!(all.id(), also.id());

    let mut meta = serde_json::Map::new();
    meta.insert("tag".into(), json!("t1"));
    client
        .set("/l/a", json!({"v": 1}), SetOptions::new().meta(meta))
        .await?;
    for subscription in [&mut all, &mut also, &mut sets, &mut once] {
        let event = next_event(subscription).await?;
        assert_eq!(event.data, json!({"v": 1}));
        assert_eq!(
            (event.meta.kind, event.meta.path.as_str()),
            (EventKind::Set, "/l/a")
        );
        assert_eq!(event.meta.channel, subscription.channel());
        assert_eq!(event.meta.custom.get("tag"), Some(&json!("t1")));
        assert!(event.meta.created.is_some() && !event.meta.initial);
        assert!(event.meta.publication_id.is_some());
    }
    ended(&mut once).await?;

    client.remove("/l/a").await?;
    for subscription in [&mut all, &mut also] {
        let event = next_event(subscription).await?;
        assert_eq!(
            (event.meta.kind, event.data.clone()),
            (EventKind::Remove, json!({"removed": 1}))
        );
        assert_eq!(event.meta.created, None);
    }
    client
        .set("/l/b", json!({"v": 2}), SetOptions::new())
        .await?;
    // The set-only listener saw no remove: its next event is this set.
    assert_eq!(next_event(&mut sets).await?.meta.path, "/l/b");
    assert_eq!(next_event(&mut all).await?.meta.path, "/l/b");
    assert_eq!(next_event(&mut also).await?.meta.path, "/l/b");

    client.off(also.id()).await?;
    ended(&mut also).await?;
    client.off(also.id()).await?;
    client
        .set("/l/c", json!({"v": 3}), SetOptions::new())
        .await?;
    assert_eq!(
        next_event(&mut all).await?.meta.path,
        "/l/c",
        "the other listener stays"
    );
    assert_eq!(next_event(&mut sets).await?.meta.path, "/l/c");
    client.off_path("/l/*").await?;
    ended(&mut all).await?;
    ended(&mut sets).await?;

    client
        .set("/i/1", json!({"k": 1}), SetOptions::new())
        .await?;
    client
        .set("/i/2", json!({"k": 2}), SetOptions::new())
        .await?;
    let callback = client
        .on("/i/*", OnOptions::new().initial_callback(true))
        .await?;
    assert_eq!(paths(callback.initial()), ["/i/1", "/i/2"]);
    assert_eq!(callback.initial()[1].data, json!({"k": 2}));
    let mut emit = client
        .on("/i/*", OnOptions::new().initial_emit(true))
        .await?;
    for path in ["/i/1", "/i/2"] {
        let event = next_event(&mut emit).await?;
        assert!(event.meta.initial && event.meta.path == path, "{event:?}");
    }
    client
        .set("/i/3", json!({"k": 3}), SetOptions::new())
        .await?;
    let change = next_event(&mut emit).await?;
    assert!(!change.meta.initial && change.meta.path == "/i/3");

    // Two depths on one channel: each listener keeps to its own.
    let mut shallow = client.on("/deep/**", OnOptions::new().depth(1)).await?;
    let mut deep = client.on("/deep/**", OnOptions::new().depth(3)).await?;
    client
        .set("/deep/x/y", json!({}), SetOptions::new())
        .await?;
    client.set("/deep/z", json!({}), SetOptions::new()).await?;
    assert_eq!(next_event(&mut shallow).await?.meta.path, "/deep/z");
    assert_eq!(next_event(&mut deep).await?.meta.path, "/deep/x/y");
    assert_eq!(next_event(&mut deep).await?.meta.path, "/deep/z");

    // A merge subscription gets what a merge set sent; others, the merged record.
    // (On a channel of its own: listeners on one channel share its events.)
    let set_only = OnOptions::new().event_type(EventFilter::Set);
    let mut merged = client.on("/mg", set_only.merge(true)).await?;
    let mut whole = client.on("/mg", OnOptions::new()).await?;
    client
        .set("/mg", json!({"a": 1, "b": 2}), SetOptions::new())
        .await?;
    client
        .set("/mg", json!({"b": 3}), SetOptions::new().merge(true))
        .await?;
    assert_eq!(next_event(&mut merged).await?.data, json!({"a": 1, "b": 2}));
    assert_eq!(next_event(&mut merged).await?.data, json!({"b": 3}));
    assert_eq!(next_event(&mut whole).await?.data, json!({"a": 1, "b": 2}));
    assert_eq!(next_event(&mut whole).await?.data, json!({"a": 1, "b": 3}));

    // An increment's event carries the gauge.
    let mut gauge = client.on("/g", OnOptions::new()).await?;
    client.increment("/g", "counter", 1.0).await?;
    assert_eq!(
        next_event(&mut gauge).await?.data,
        json!({"gauge": "counter", "value": 1})
    );

    let mut everything = client.on_all(OnOptions::new()).await?;
    client
        .set("/anywhere/at/all", json!({}), SetOptions::new())
        .await?;
    let event = next_event(&mut everything).await?;
    assert_eq!(
        (event.meta.path.as_str(), event.meta.channel.as_str()),
        ("/anywhere/at/all", "/ALL@*")
    );

    client.off_all().await?;
    for subscription in [
        &mut emit,
        &mut shallow,
        &mut deep,
        &mut merged,
        &mut gauge,
        &mut everything,
    ] {
        ended(subscription).await?;
    }
    client.set("/l/after", json!({}), SetOptions::new()).await?;
    client.disconnect().await?;
    let closed = client.get("/l/after").await.unwrap_err();
    assert!(matches!(closed, ClientError::Closed), "{closed}");
    client.disconnect().await?;
    Ok(())
}

#[tokio::test]
async fn data_calls_work_alike_over_websocket_tcp_and_in_process() -> Result<()> {
    for transport in [Transport::Ws, Transport::Tcp] {
        let broker = common::start().await?;
        data_calls(&connect(&broker, transport).await?)
            .await
            .with_context(|| format!("over {transport:?}"))?;
    }
    let broker = common::start().await?;
    data_calls(&LocalClient::new(&broker.core))
        .await
        .context("in process")
}

#[tokio::test]
async fn listeners_work_alike_over_websocket_tcp_and_in_process() -> Result<()> {
    for transport in [Transport::Ws, Transport::Tcp] {
        let broker = common::start().await?;
        listeners(&connect(&broker, transport).await?)
            .await
            .with_context(|| format!("over {transport:?}"))?;
    }
    let broker = common::start().await?;
    listeners(&LocalClient::admin(&broker.core))
        .await
        .context("in process")
}

#[tokio::test]
async fn remote_and_local_clients_see_each_others_writes() -> Result<()> {
    let broker = common::start().await?;
    let remote = connect(&broker, Transport::Tcp).await?;
    let local = LocalClient::new(&broker.core);
    let mut from_local = remote.on("/x/*", OnOptions::new()).await?;
    let mut from_remote = local.on("/x/*", OnOptions::new()).await?;
    local
        .set("/x/l", json!({"by": "local"}), SetOptions::new())
        .await?;
    remote
        .set("/x/r", json!({"by": "remote"}), SetOptions::new())
        .await?;

    let seen = next_event(&mut from_local).await?;
    assert_eq!(seen.data, json!({"by": "local"}));
    let local_session = local.session_id().context("open")?.to_string();
    assert_eq!(
        seen.meta.session_id.as_deref(),
        Some(local_session.as_str())
    );
    // Its own write too (after the local one, in order).
    assert_eq!(next_event(&mut from_local).await?.meta.path, "/x/r");

    assert_eq!(next_event(&mut from_remote).await?.meta.path, "/x/l");
    let seen = next_event(&mut from_remote).await?;
    assert_eq!(seen.data, json!({"by": "remote"}));
    assert_eq!(seen.meta.session_id, remote.session_id());

    // Targeted events (reference: TARGETING EVENTS), both ways: only the target gets it.
    let to_local = SetOptions::new().target_clients([local_session.as_str()]);
    remote.set("/x/t1", json!({}), to_local).await?;
    let to_remote = SetOptions::new().target_clients(remote.session_id());
    local.set("/x/t2", json!({}), to_remote).await?;
    local.set("/x/all", json!({}), SetOptions::new()).await?;
    assert_eq!(next_event(&mut from_remote).await?.meta.path, "/x/t1");
    assert_eq!(next_event(&mut from_remote).await?.meta.path, "/x/all");
    assert_eq!(next_event(&mut from_local).await?.meta.path, "/x/t2");
    assert_eq!(next_event(&mut from_local).await?.meta.path, "/x/all");
    let bad = local
        .set(
            "/x/bad",
            json!({}),
            SetOptions::new().target_clients(["nope"]),
        )
        .await
        .unwrap_err();
    assert!(matches!(bad, ClientError::InvalidArgument(_)), "{bad}");
    Ok(())
}

/// Guards the heartbeat: the broker pings every 50 ms and closes a client silent for two
/// intervals; both clients answer every ping and keep their sessions.
#[tokio::test]
async fn heartbeats_are_answered_over_both_transports() -> Result<()> {
    let mut native = NativeConfig::default();
    native.heartbeat_interval = Duration::from_millis(50);
    native.allowed_skipped_heartbeats = 1;
    let broker = common::start_with(native).await?;
    let ws = connect(&broker, Transport::Ws).await?;
    let ws_session = ws.session_id();
    let mut ws_events = ws.session_events();
    let mut proxy = Proxy::tapped(broker.tcp).await?;
    let tcp = Client::connect(config(Transport::Tcp, proxy.addr)).await?;
    let tcp_session = tcp.session_id();
    let mut tcp_events = tcp.session_events();

    // Well past the two intervals after which a silent client is closed.
    let mut pongs = 0;
    while pongs < 6 {
        let frame = proxy.sent().await?;
        if let Some(stamp) = frame
            .as_str()
            .and_then(|f| f.strip_prefix("primus::pong::"))
        {
            assert!(stamp.parse::<u64>().is_ok(), "{frame}");
            pongs += 1;
        }
    }
    for (client, session, events) in [
        (&ws, ws_session, &mut ws_events),
        (&tcp, tcp_session, &mut tcp_events),
    ] {
        assert_eq!(client.get("/hb").await?, None);
        assert_eq!(client.session_id(), session, "never reconnected");
        assert!(matches!(
            events.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ));
    }
    Ok(())
}

/// A connection cut from outside is re-established: `ReconnectScheduled`, then
/// `ReconnectSuccessful` with a new session, and the listener, subscribed again, gets
/// the events of the new session under its old id.
#[tokio::test]
async fn a_cut_connection_reconnects_and_resubscribes() -> Result<()> {
    for transport in [Transport::Ws, Transport::Tcp] {
        reconnect_over(transport)
            .await
            .with_context(|| format!("over {transport:?}"))?;
    }
    Ok(())
}

async fn reconnect_over(transport: Transport) -> Result<()> {
    let broker = common::start().await?;
    let proxy = Proxy::start(match transport {
        Transport::Ws => broker.http,
        Transport::Tcp => broker.tcp,
    })
    .await?;
    let mut config = config(transport, proxy.addr);
    config.reconnect =
        ReconnectPolicy::backoff(Duration::from_millis(10), Duration::from_millis(100));
    let client = Client::connect(config).await?;
    let writer = LocalClient::new(&broker.core);
    let mut events = client.session_events();
    let mut listener = client.on("/r/*", OnOptions::new()).await?;
    let mut counted = client.on("/r/*", OnOptions::new().count(2)).await?;
    writer
        .set("/r/before", json!({}), SetOptions::new())
        .await?;
    assert_eq!(next_event(&mut counted).await?.meta.path, "/r/before");
    next_event(&mut listener).await?;
    let id = listener.id();
    let before = client.session_id().context("logged in")?;

    proxy.cut();
    match session_event(&mut events).await? {
        SessionEvent::ReconnectScheduled { attempt: 1, delay } => {
            assert_eq!(delay, Duration::from_millis(10));
        }
        other => bail!("expected ReconnectScheduled, got {other:?}"),
    }
    let session_id = match session_event(&mut events).await? {
        SessionEvent::ReconnectSuccessful { session_id } => session_id,
        other => bail!("expected ReconnectSuccessful, got {other:?}"),
    };
    assert_ne!(session_id, before);
    assert_eq!(client.session_id().as_deref(), Some(session_id.as_str()));

    writer
        .set("/r/after", json!({"after": true}), SetOptions::new())
        .await?;
    let event = next_event(&mut listener).await?;
    assert_eq!(
        (event.data.clone(), listener.id()),
        (json!({"after": true}), id)
    );
    assert_eq!(event.meta.channel, "/ALL@/r/*");
    // The count carried over: one event left.
    assert_eq!(next_event(&mut counted).await?.meta.path, "/r/after");
    ended(&mut counted).await?;

    // `off` takes the new broker id: the listener ends, and its subscription is gone.
    client.off(id).await?;
    ended(&mut listener).await?;
    let mut check = client.on("/r/*", OnOptions::new()).await?;
    writer.set("/r/last", json!({}), SetOptions::new()).await?;
    assert_eq!(next_event(&mut check).await?.meta.path, "/r/last");
    Ok(())
}

/// Guards the session events of a server-side disconnect: `SessionEnded` with the
/// broker's reason, then reconnect attempts (calls fail at once meanwhile) until
/// `disconnect`, which ends the listeners and closes the client.
#[tokio::test]
async fn a_broker_shutdown_ends_the_session_until_disconnect() -> Result<()> {
    let broker = common::start().await?;
    let mut config = config(Transport::Ws, broker.http);
    config.reconnect =
        ReconnectPolicy::backoff(Duration::from_millis(10), Duration::from_millis(50));
    let client = Client::connect(config).await?;
    let mut events = client.session_events();
    let mut listener = client.on("/s", OnOptions::new()).await?;

    broker.core.begin_shutdown();
    assert_eq!(
        session_event(&mut events).await?,
        SessionEvent::SessionEnded {
            reason: "server shutting down".into()
        }
    );
    assert!(matches!(
        session_event(&mut events).await?,
        SessionEvent::ReconnectScheduled { attempt: 1, .. }
    ));
    let lost = client.get("/s").await.unwrap_err();
    assert!(
        matches!(lost, ClientError::ConnectionLost { action: "get" }),
        "{lost}"
    );

    within(client.disconnect()).await??;
    ended(&mut listener).await?;
    let closed = client.get("/s").await.unwrap_err();
    assert!(matches!(closed, ClientError::Closed), "{closed}");
    Ok(())
}

#[tokio::test]
async fn a_local_client_ends_with_its_session() -> Result<()> {
    let core = Core::builder(MemoryStore::new()).build();
    let client = LocalClient::new(&core);
    let mut listener = client.on("/x", OnOptions::new()).await?;
    assert_eq!((core.stats().sessions, core.stats().subscriptions), (1, 1));
    client.disconnect().await?;
    ended(&mut listener).await?;
    assert_eq!((core.stats().sessions, core.stats().subscriptions), (0, 0));
    assert!(matches!(client.get("/x").await, Err(ClientError::Closed)));

    let other = LocalClient::new(&core);
    let mut events = other.session_events();
    let mut listener = other.on("/y", OnOptions::new()).await?;
    // Dropping a subscription removes it from the core (before the next event).
    let dropped = other.on("/z", OnOptions::new()).await?;
    assert_eq!(core.stats().subscriptions, 2);
    drop(dropped);
    other.set("/y", json!({}), SetOptions::new()).await?;
    next_event(&mut listener).await?;
    assert_eq!(core.stats().subscriptions, 1);
    core.begin_shutdown();
    assert_eq!(
        session_event(&mut events).await?,
        SessionEvent::SessionEnded {
            reason: "server shutting down".into()
        }
    );
    ended(&mut listener).await?;
    Ok(())
}

#[tokio::test]
async fn a_call_without_an_answer_times_out() -> Result<()> {
    let addr = fake_broker(None).await?;
    let mut config = config(Transport::Tcp, addr);
    config.request_timeout = Duration::from_millis(100);
    let client = Client::connect(config).await?;
    assert_eq!(client.session_id().as_deref(), Some("fake"));
    let error = client.get("/never").await.unwrap_err();
    assert!(
        matches!(error, ClientError::Timeout { action: "get", timeout } if timeout == Duration::from_millis(100)),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_login_or_an_absent_broker_fails_the_connect() -> Result<()> {
    let addr = fake_broker(Some(401)).await?;
    let wrong = config(Transport::Tcp, addr).credentials("ann", "wrong");
    let error = Client::connect(wrong).await.unwrap_err();
    let ClientError::Connect { source, .. } = &error else {
        bail!("expected Connect, got {error}");
    };
    let refused = source
        .downcast_ref::<ClientError>()
        .context("the refusal")?;
    assert_eq!(refused.code(), Some(401), "{refused}");

    let closed = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    for transport in [Transport::Ws, Transport::Tcp] {
        let error = Client::connect(config(transport, closed))
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Connect { .. }), "{error}");
    }
    Ok(())
}

/// Calls go out as the frames of the wire doc (§3–§4) and the happn-3 client: the
/// handshake, `set` options (increment, sibling, tag, publish, targets), search options,
/// `on` options and `off` by `referenceId`.
#[tokio::test]
async fn calls_send_the_frames_of_the_wire_protocol() -> Result<()> {
    let broker = common::start().await?;
    let mut proxy = Proxy::tapped(broker.tcp).await?;
    let client = Client::connect(config(Transport::Tcp, proxy.addr)).await?;
    let configure = proxy.sent_action("configure-session").await?;
    assert_eq!(configure["data"]["protocol"], "happn_4");
    let login = proxy.sent_action("login").await?;
    assert_eq!(login["data"]["protocol"], "happn_4");
    assert_eq!(
        login["data"].get("username"),
        None,
        "no credentials configured"
    );

    let mut sets = vec![];
    client.increment("/g", "hits", 2.0).await?;
    sets.push(("/g", json!("hits"), json!({"increment": 2})));
    client
        .set_sibling("/sib", json!({"a": 1}), SetOptions::new())
        .await?;
    sets.push(("/sib", json!({"a": 1}), json!({"set_type": "sibling"})));
    let me = client.session_id().context("logged in")?;
    let options = SetOptions::new().tag("v1").target_clients([me.as_str()]);
    client.set("/t", json!({}), options).await?;
    sets.push(("/t", json!({}), json!({"tag": "v1", "targetClients": [me]})));
    client
        .publish("/p", json!({"x": 1}), SetOptions::new())
        .await?;
    sets.push((
        "/p",
        json!({"x": 1}),
        json!({"noStore": true, "noDataResponse": true}),
    ));
    for (path, data, options) in sets {
        let frame = proxy.sent_action("set").await?;
        assert_eq!((&frame["path"], &frame["data"]), (&json!(path), &data));
        assert_eq!(frame["options"], options, "{frame}");
        assert!(frame["eventId"].as_u64().is_some(), "{frame}");
    }

    let search = GetOptions::new()
        .criteria(json!({"genre": "horror"}))
        .sort(json!({"_meta.created": -1}))
        .limit(10);
    client.get_many("/q/*", search).await?;
    let frame = proxy.sent_action("get").await?;
    assert_eq!(
        frame["options"],
        json!({"criteria": {"genre": "horror"}, "options": {"sort": {"_meta.created": -1}, "limit": 10}})
    );
    client.get_paths("/q/*").await?;
    let frame = proxy.sent_action("get").await?;
    assert_eq!(frame["options"], json!({"options": {"path_only": true}}));
    let only = RemoveOptions::new().criteria(json!({"genre": "horror"}));
    client.remove_many("/q/*", only).await?;
    let frame = proxy.sent_action("remove").await?;
    assert_eq!(
        (&frame["path"], &frame["options"]),
        (&json!("/q/*"), &json!({"criteria": {"genre": "horror"}}))
    );
    client.remove("/q/x").await?;
    let frame = proxy.sent_action("remove").await?;
    assert_eq!(
        (&frame["path"], frame.get("options")),
        (&json!("/q/x"), None)
    );

    let listener = client
        .on("/m/**", OnOptions::new().merge(true).count(3).depth(2))
        .await?;
    let frame = proxy.sent_action("on").await?;
    assert_eq!(frame["path"], "/ALL@/m/**");
    assert_eq!(
        frame["options"],
        json!({"event_type": "all", "count": 3, "depth": 2, "merge": true})
    );
    client.off(listener.id()).await?;
    let off = proxy.sent_action("off").await?;
    assert_eq!(off["path"], "/ALL@/m/**");
    assert!(off["options"]["referenceId"].as_u64().is_some(), "{off}");
    client.off_all().await?;
    let off = proxy.sent_action("off").await?;
    assert_eq!((&off["path"], off.get("options")), (&json!("*"), None));
    Ok(())
}
