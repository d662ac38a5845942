//! The event examples: EVENTS through MERGING.

use super::*;

// ---------------------------------------------------------------------------- EVENTS

/// EVENTS, "NB about wildcards": "the wildcard is a whole word, and the / is used to
/// denote path segments - ie: to get all events for a set or remove with path
/// /my/test/event you need to subscribe to /my/\*/\*, /my/\* and /my\* or
/// /my/te\*/event will no longer work."
#[tokio::test]
async fn events_wildcards_are_whole_segments() -> Result<()> {
    let (broker, listener) = start().await?;
    let writer = connect(&broker).await?;
    let mut whole = listener.on("/my/*/*", OnOptions::new()).await?;
    let mut one_level = listener.on("/my/*", OnOptions::new()).await?;
    let mut partial = listener.on("/my*", OnOptions::new()).await?;
    let mut inside = listener.on("/my/te*/event", OnOptions::new()).await?;
    let mut done = listener.on("/done", OnOptions::new()).await?;

    writer
        .set("/my/test/event", json!({"x": 1}), SetOptions::new())
        .await?;
    writer.set("/done", json!({}), SetOptions::new()).await?;
    assert_eq!(next_event(&mut whole).await?.meta.path, "/my/test/event");
    // The connection delivers in order: with `/done` in, nothing else is on its way.
    next_event(&mut done).await?;
    for subscription in [&mut one_level, &mut partial, &mut inside] {
        nothing_pending(subscription)?;
    }
    Ok(())
}

/// EVENTS, specific listener: `on('/e2e_test1/testsubscribe/data/delete_me',
/// {event_type:'remove', count:0}, handler)` "… //event happened", then
/// `await my_client_instance.off(handle); //unsubscribe`.
#[tokio::test]
async fn events_specific_listener() -> Result<()> {
    let (broker, my_client_instance) = start().await?;
    let writer = connect(&broker).await?;
    let path = "/e2e_test1/testsubscribe/data/delete_me";
    let mut handle = my_client_instance
        .on(
            path,
            OnOptions::new().event_type(EventFilter::Remove).count(0),
        )
        .await?;

    writer.set(path, properties(), SetOptions::new()).await?;
    writer.remove(path).await?;
    // The set was not for this listener: its first event is the remove.
    let message = next_event(&mut handle).await?;
    assert_eq!(message.meta.kind, EventKind::Remove);
    assert_eq!(message.meta.path, path);
    assert_eq!(message.meta.channel, format!("/REMOVE@{path}"));
    // "the actual object data being set or removed": for a remove, pathmq sends
    // `{removed: N}`, as happn-3 does on the wire, not the removed object.
    assert_eq!(message.data, json!({"removed": 1}));

    // count 0: it goes on.
    writer.set(path, properties(), SetOptions::new()).await?;
    writer.remove(path).await?;
    assert_eq!(next_event(&mut handle).await?.meta.kind, EventKind::Remove);

    my_client_instance.off(handle.id()).await?;
    ended(&mut handle).await?;
    Ok(())
}

/// EVENTS, catch-all listener: `onAll(handler)` gets every set and remove; "the meta
/// data - path, modified,created _id, also tells you what type of operation happened -
/// ie. GET, SET etc."
#[tokio::test]
async fn events_catch_all_listener() -> Result<()> {
    let (broker, my_client_instance) = start().await?;
    let writer = connect(&broker).await?;
    let mut handle = my_client_instance.on_all(OnOptions::new()).await?;

    writer
        .set("/one/path", json!({"a": 1}), SetOptions::new())
        .await?;
    // Reads are not events (the reference's "GET" is loose): only sets and removes.
    writer.get("/one/path").await?;
    writer.remove("/one/path").await?;
    writer
        .set("/another/deeper/path", json!({"b": 2}), SetOptions::new())
        .await?;

    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut handle).await?;
        assert_eq!(event.meta.channel, "/ALL@*");
        seen.push((event.meta.kind, event.meta.path));
    }
    assert_eq!(
        seen,
        [
            (EventKind::Set, "/one/path".to_owned()),
            (EventKind::Remove, "/one/path".to_owned()),
            (EventKind::Set, "/another/deeper/path".to_owned()),
        ]
    );
    my_client_instance.off(handle.id()).await?;
    ended(&mut handle).await?;
    Ok(())
}

/// EVENTS, once listener: `once('/e2e_test1/testsubscribe/data/delete_me', {event_type:
/// '*'}, handler)`; "these will auto-expire after they have received a single message",
/// and `off(handle)` still works.
#[tokio::test]
async fn events_once_listener() -> Result<()> {
    let (broker, my_client_instance) = start().await?;
    let writer = connect(&broker).await?;
    let path = "/e2e_test1/testsubscribe/data/delete_me";
    // `event_type: '*'` is the typed `EventFilter::All` (the broker reads `*` as all).
    let mut handle = my_client_instance
        .once(path, OnOptions::new().event_type(EventFilter::All))
        .await?;
    writer
        .set(path, json!({"first": 1}), SetOptions::new())
        .await?;
    writer
        .set(path, json!({"second": 2}), SetOptions::new())
        .await?;
    assert_eq!(next_event(&mut handle).await?.data, json!({"first": 1}));
    ended(&mut handle).await?;
    my_client_instance.off(handle.id()).await?;
    Ok(())
}

// ---------------------------------------------------------------------------- EVENT DATA

/// EVENT DATA, initialCallback: "the response is your data, ordered by modified - will
/// always be in an array even if only one or none is found": `response.length` 2,
/// `response[0].test` 'data', `response[1].test` 'data1'; then a set reaches the handler
/// with `message.updated` true.
#[tokio::test]
async fn event_data_initial_callback() -> Result<()> {
    let (_broker, listenerclient) = start().await?;
    let base = "/e2e_test1/testsubscribe/data/values_on_callback_test";
    let pattern = format!("{base}/*");

    // Nothing stored yet: still an array, empty.
    let empty = listenerclient
        .on(&pattern, OnOptions::new().initial_callback(true))
        .await?;
    assert!(empty.initial().is_empty());
    drop(empty);

    // Written so that modified order differs from path order: `/2` first, then `/1`
    // (written again until the millisecond clock has moved past `/2`'s).
    let first = listenerclient
        .set(
            &format!("{base}/2"),
            json!({"test": "data"}),
            SetOptions::new(),
        )
        .await?;
    within(async {
        loop {
            let second = listenerclient
                .set(
                    &format!("{base}/1"),
                    json!({"test": "data1"}),
                    SetOptions::new(),
                )
                .await?;
            if second.meta.modified > first.meta.modified {
                return anyhow::Ok(());
            }
        }
    })
    .await??;

    let mut handle = listenerclient
        .on(
            &pattern,
            OnOptions::new()
                .event_type(EventFilter::Set)
                .initial_callback(true),
        )
        .await?;
    let response = handle.initial();
    assert_eq!(response.len(), 2);
    assert_eq!(response[0].data["test"], "data");
    assert_eq!(response[1].data["test"], "data1");
    assert_eq!(paths(response), [format!("{base}/2"), format!("{base}/1")]);

    listenerclient
        .set(
            &format!("{base}/1"),
            json!({"test": "data", "updated": true}),
            SetOptions::new(),
        )
        .await?;
    let message = next_event(&mut handle).await?;
    assert_eq!(message.data["updated"], true);
    assert!(!message.meta.initial);
    Ok(())
}

/// EVENT DATA, initialEmit: "causes emit to happen on successful subscription … this emit
/// handler runs immediately": on the second emitted message `message.test` is 'data1'.
#[tokio::test]
async fn event_data_initial_emit() -> Result<()> {
    let (_broker, listenerclient) = start().await?;
    let base = "/e2e_test1/testsubscribe/data/values_emitted_test";
    listenerclient
        .set(
            &format!("{base}/1"),
            json!({"test": "data"}),
            SetOptions::new(),
        )
        .await?;
    listenerclient
        .set(
            &format!("{base}/2"),
            json!({"test": "data1"}),
            SetOptions::new(),
        )
        .await?;
    let mut handle = listenerclient
        .on(
            &format!("{base}/*"),
            OnOptions::new()
                .event_type(EventFilter::Set)
                .initial_emit(true),
        )
        .await?;
    let mut caught_emitted = Vec::new();
    for _ in 0..2 {
        let message = next_event(&mut handle).await?;
        assert!(message.meta.initial, "{message:?}");
        caught_emitted.push(message);
    }
    assert_eq!(caught_emitted[0].data, json!({"test": "data"}));
    assert_eq!(caught_emitted[1].data, json!({"test": "data1"}));
    assert_eq!(caught_emitted[1].meta.path, format!("{base}/2"));

    // Then the changes.
    listenerclient
        .set(
            &format!("{base}/3"),
            json!({"test": "data2"}),
            SetOptions::new(),
        )
        .await?;
    let change = next_event(&mut handle).await?;
    assert!(!change.meta.initial && change.data["test"] == "data2");
    Ok(())
}

// ---------------------------------------------------------------------------- UNSUBSCRIBING

/// UNSUBSCRIBING FROM EVENTS: "use the .off method to unsubscribe from a specific event
/// (the handle is returned by the .on callback) or the .offPath method to unsubscribe
/// from all listeners on a path": a listener removed by `offPath`, then one removed by
/// `off(listenerId)`, neither handles the next set.
#[tokio::test]
async fn unsubscribing_from_events() -> Result<()> {
    let (broker, listenerclient) = start().await?;
    let publisherclient = connect(&broker).await?;
    let path = "/e2e_test1/testsubscribe/data/on_off_test";
    let options = || OnOptions::new().event_type(EventFilter::Set).count(0);

    let mut by_path = listenerclient.on(path, options()).await?;
    let mut also_on_path = listenerclient.on(path, OnOptions::new()).await?;
    publisherclient
        .set(path, json!({"test": "data"}), SetOptions::new())
        .await?;
    assert_eq!(
        next_event(&mut by_path).await?.data,
        json!({"test": "data"})
    );
    next_event(&mut also_on_path).await?;
    listenerclient.off_path(path).await?;
    ended(&mut by_path).await?;
    ended(&mut also_on_path).await?;

    let mut by_handle = listenerclient.on(path, options()).await?;
    publisherclient
        .set(path, json!({"test": "data"}), SetOptions::new())
        .await?;
    next_event(&mut by_handle).await?;
    let current_listener_id = by_handle.id();
    listenerclient.off(current_listener_id).await?;
    ended(&mut by_handle).await?;

    // The reference waits 2 s for nothing; here a listener left on the same
    // connection shows the set after `off` reached it and nothing else did.
    let mut witness = listenerclient.on(path, OnOptions::new()).await?;
    publisherclient
        .set(path, json!({"test": "after off"}), SetOptions::new())
        .await?;
    assert_eq!(
        next_event(&mut witness).await?.data,
        json!({"test": "after off"})
    );
    Ok(())
}

// ---------------------------------------------------------------------------- TARGETING EVENTS

/// TARGETING EVENTS: "sets and removes can be targeted for a specific client session …
/// add the session id's you want your event data to go to to the targetClients option":
/// `set('for/my/eyes/only', {property1:'property1'}, {targetClients:[mySessionId]})`;
/// the other client "should NOT receive this".
#[tokio::test]
async fn targeting_events() -> Result<()> {
    let (broker, my_client_instance) = start().await?;
    let other_client_instance = connect(&broker).await?;
    let my_session_id = my_client_instance.session_id().context("logged in")?;

    let mut theirs = other_client_instance
        .on("for/my/eyes/only", OnOptions::new())
        .await?;
    let mut mine = my_client_instance
        .on("for/my/eyes/only", OnOptions::new())
        .await?;

    let result = my_client_instance
        .set(
            "for/my/eyes/only",
            json!({"property1": "property1"}),
            SetOptions::new().target_clients([my_session_id.as_str()]),
        )
        .await?;
    assert!(result.meta.published);
    let data = next_event(&mut mine).await?;
    assert_eq!(data.data, json!({"property1": "property1"}));

    // The other session did not get it: its next event is this untargeted set.
    my_client_instance
        .set(
            "for/my/eyes/only",
            json!({"for": "everyone"}),
            SetOptions::new(),
        )
        .await?;
    assert_eq!(
        next_event(&mut theirs).await?.data,
        json!({"for": "everyone"})
    );
    assert_eq!(
        next_event(&mut mine).await?.data,
        json!({"for": "everyone"})
    );
    Ok(())
}

// ---------------------------------------------------------------------------- CUSTOM META

/// EVENTS WITH CUSTOM META: "sets and removes can declare custom metadata that will be
/// sent to subscribers": `set('/some/topic', {DATA: 1}, {meta: {custom: 1}})` gives
/// `meta.custom == 1`; "Reserved meta key names will have no effect.
/// ('created','modified','path','action','type','published','status','eventId',
/// 'sessionId')".
#[tokio::test]
async fn events_with_custom_meta() -> Result<()> {
    let (_broker, client) = start().await?;
    let mut events = client.on("/some/topic", OnOptions::new()).await?;

    let meta = object(json!({"custom": 1}));
    client
        .set(
            "/some/topic",
            json!({"DATA": 1}),
            SetOptions::new().meta(meta),
        )
        .await?;
    let event = next_event(&mut events).await?;
    assert_eq!(event.data, json!({"DATA": 1}));
    assert_eq!(event.meta.custom.get("custom"), Some(&json!(1)));

    // Every reserved key given: none has an effect.
    let spoofed = object(json!({
        "custom": 2, "created": 1, "modified": 1, "path": "/elsewhere",
        "action": "/REMOVE@/elsewhere", "type": "response", "published": false,
        "status": "error", "eventId": 99, "sessionId": "someone-else"
    }));
    let answer = client
        .set(
            "/some/topic",
            json!({"DATA": 2}),
            SetOptions::new().meta(spoofed.clone()),
        )
        .await?;
    let event = next_event(&mut events).await?;
    assert_eq!(event.data, json!({"DATA": 2}));
    assert_eq!(
        (event.meta.kind, event.meta.path.as_str()),
        (EventKind::Set, "/some/topic")
    );
    assert_eq!(event.meta.created, Some(answer.meta.created));
    assert_eq!(event.meta.modified, Some(answer.meta.modified));
    assert_eq!(event.meta.session_id, client.session_id());
    assert_eq!(event.meta.custom, object(json!({"custom": 2})));

    // And removes (`remove_many` with `RemoveOptions::meta`).
    let removed = client
        .remove_many(
            "/some/topic",
            RemoveOptions::new().meta(object(json!({"custom": 3, "path": "/elsewhere"}))),
        )
        .await?;
    assert_eq!(removed, 1);
    let event = next_event(&mut events).await?;
    assert_eq!(
        (event.meta.kind, event.meta.path.as_str()),
        (EventKind::Remove, "/some/topic")
    );
    assert_eq!(event.meta.custom, object(json!({"custom": 3})));
    Ok(())
}

// ---------------------------------------------------------------------------- MERGE SUBSCRIPTIONS

/// MERGE SUBSCRIPTIONS: "specify only to recieve the merge data as posted in the set
/// operation with the merge:true option": `on('/merge/only/path', {event_type: 'set',
/// merge: true})`, then `set('/merge/only/path', {some:"data"}, {merge:true})`: "emit
/// happened - message is {some:"data"}".
#[tokio::test]
async fn merge_subscriptions() -> Result<()> {
    let (_broker, my_client_instance) = start().await?;
    my_client_instance
        .set(
            "/merge/only/path",
            json!({"already": "there"}),
            SetOptions::new(),
        )
        .await?;
    let mut handle = my_client_instance
        .on(
            "/merge/only/path",
            OnOptions::new().event_type(EventFilter::Set).merge(true),
        )
        .await?;
    let result = my_client_instance
        .set(
            "/merge/only/path",
            json!({"some": "data"}),
            SetOptions::new().merge(true),
        )
        .await?;
    assert_eq!(result.data, json!({"already": "there", "some": "data"}));
    let message = next_event(&mut handle).await?;
    assert_eq!(message.data, json!({"some": "data"}));
    Ok(())
}

// ---------------------------------------------------------------------------- VARIABLE DEPTH

/// The paths 1 to `levels` levels below `/test/path`: `/test/path/1`, `/test/path/1/2`, …
fn levels(levels: usize) -> Vec<String> {
    (1..=levels)
        .map(|n| {
            let tail: Vec<String> = (1..=n).map(|l| l.to_string()).collect();
            format!("/test/path/{}", tail.join("/"))
        })
        .collect()
}

/// VARIABLE DEPTH SUBSCRIPTIONS: `on('/test/path/**', {depth:4}, handler)` "is the same
/// as" `/test/path/*` through `/test/path/*/*/*/*`; "up to a depth of 4, so the event will
/// not fire for a larger depth, ie: /test/path/1/2/3/4/5"; "you can unsubscribe as per
/// normal".
#[tokio::test]
async fn variable_depth_subscriptions() -> Result<()> {
    let (broker, myclient) = start().await?;
    let writer = connect(&broker).await?;
    let equivalent = connect(&broker).await?;
    let mut variable_depth_handle = myclient
        .on("/test/path/**", OnOptions::new().depth(4))
        .await?;
    let mut stars = Vec::new();
    for pattern in [
        "/test/path/*",
        "/test/path/*/*",
        "/test/path/*/*/*",
        "/test/path/*/*/*/*",
    ] {
        stars.push(equivalent.on(pattern, OnOptions::new()).await?);
    }

    // Not delivered: five levels down, and the prefix itself.
    let tree = levels(5);
    writer
        .set(&tree[4], json!({"level": 5}), SetOptions::new())
        .await?;
    writer
        .set("/test/path", json!({"level": 0}), SetOptions::new())
        .await?;
    for (level, path) in tree[..4].iter().enumerate() {
        writer
            .set(path, json!({ "level": level + 1 }), SetOptions::new())
            .await?;
    }
    for (level, path) in tree[..4].iter().enumerate() {
        let event = next_event(&mut variable_depth_handle).await?;
        assert_eq!(&event.meta.path, path);
        assert_eq!(event.meta.depth, Some(4));
        assert_eq!(event.meta.channel, "/ALL@/test/path/**");
        // The same event, on the one `*` pattern of its level.
        assert_eq!(&next_event(&mut stars[level]).await?.meta.path, path);
    }

    myclient.off(variable_depth_handle.id()).await?;
    ended(&mut variable_depth_handle).await?;
    Ok(())
}

/// VARIABLE DEPTH SUBSCRIPTIONS: "this functionality also works with initialCallback and
/// initialEmit": `on('/test/path/**', {event_type: 'set', initialEmit: true})` — "items
/// will be immediately emitted up to the depth specified".
#[tokio::test]
async fn variable_depth_initial_emit() -> Result<()> {
    let (_broker, myclient) = start().await?;
    let tree = levels(6);
    for path in &tree {
        myclient
            .set(path, json!({"at": path}), SetOptions::new())
            .await?;
    }
    // No depth given: 5, the reference's default variable depth. pathmq has no
    // client-wide `defaultVariableDepth`: a listener that wants another depth says so
    // (`OnOptions::depth`), as `shallow` does.
    let emit = || {
        OnOptions::new()
            .event_type(EventFilter::Set)
            .initial_emit(true)
    };
    let mut handle = myclient.on("/test/path/**", emit()).await?;
    let mut shallow = myclient.on("/test/path/**", emit().depth(2)).await?;
    for (subscription, depth) in [(&mut handle, 5), (&mut shallow, 2)] {
        for path in &tree[..depth] {
            let message = next_event(subscription).await?;
            assert!(message.meta.initial, "{message:?}");
            assert_eq!(&message.meta.path, path);
        }
    }
    // Nothing deeper was emitted: the next event of each is this change.
    myclient
        .set(&tree[1], json!({"updated": true}), SetOptions::new())
        .await?;
    for subscription in [&mut handle, &mut shallow] {
        let change = next_event(subscription).await?;
        assert!(!change.meta.initial, "{change:?}");
        assert_eq!(change.data, json!({"updated": true}));
    }
    Ok(())
}

/// VARIABLE DEPTH SUBSCRIPTIONS: `on('/test/path/**', {event_type: 'set',
/// initialCallback: true})` — "response will be an array of items that exist to the
/// specified depth", and then `expect(message.updated).to.be(true)`.
#[tokio::test]
async fn variable_depth_initial_callback() -> Result<()> {
    let (_broker, myclient) = start().await?;
    let tree = levels(6);
    for path in &tree {
        myclient
            .set(path, json!({"at": path}), SetOptions::new())
            .await?;
    }
    let mut handle = myclient
        .on(
            "/test/path/**",
            OnOptions::new()
                .event_type(EventFilter::Set)
                .initial_callback(true),
        )
        .await?;
    // The default depth, 5 (as in `variable_depth_initial_emit`).
    assert_eq!(paths(handle.initial()), tree[..5]);
    let with_depth = myclient
        .on(
            "/test/path/**",
            OnOptions::new()
                .event_type(EventFilter::Set)
                .depth(3)
                .initial_callback(true),
        )
        .await?;
    assert_eq!(paths(with_depth.initial()), tree[..3]);

    myclient
        .set(&tree[2], json!({"updated": true}), SetOptions::new())
        .await?;
    let message = next_event(&mut handle).await?;
    assert_eq!(message.data["updated"], true);
    Ok(())
}

// ---------------------------------------------------------------------------- TAGGING

/// TAGGING: "tagging will take a snapshot of the data as it currently stands, and will
/// save the snapshot to a path that starts with the path you specify, and a '/' with the
/// tag you specify at the end": `set('e2e_test1/test/tag', {…}, {tag:randomTag})`.
#[tokio::test]
async fn tagging() -> Result<()> {
    let (_broker, my_client_instance) = start().await?;
    // Stands for the reference's `shortid.generate()`.
    let random_tag = "Xk3_q9-Z";
    let result = my_client_instance
        .set(
            "e2e_test1/test/tag",
            properties(),
            SetOptions::new().tag(random_tag),
        )
        .await?;
    assert_eq!(result.path(), "/e2e_test1/test/tag");
    assert_eq!(result.data, properties());

    my_client_instance
        .set(
            "e2e_test1/test/tag",
            json!({"property1": "changed"}),
            SetOptions::new(),
        )
        .await?;
    let snapshot = my_client_instance
        .get(&format!("e2e_test1/test/tag/{random_tag}"))
        .await?
        .context("the snapshot")?;
    assert_eq!(snapshot.data, properties(), "as it stood when tagged");
    Ok(())
}

// ---------------------------------------------------------------------------- MERGING

/// MERGING: "merge the json you are pushing with the existing dataset, this means any
/// existing values that are not in the set json but exist in the database are
/// persisted": `set('e2e_test1/testsubscribe/data/', {…}, {merge:true})`.
#[tokio::test]
async fn merging() -> Result<()> {
    let (_broker, my_client_instance) = start().await?;
    let path = "e2e_test1/testsubscribe/data/";
    let before = my_client_instance
        .set(
            path,
            json!({"property2": "old", "existing": "kept", "nested": {"a": 1}}),
            SetOptions::new(),
        )
        .await?;
    let mut set = properties();
    set["nested"] = json!({"b": 2});
    let result = my_client_instance
        .set(path, set, SetOptions::new().merge(true))
        .await?;
    // The merge is shallow (as happn-3's): `nested` is replaced, not merged.
    let expected = json!({"property1": "property1", "property2": "property2",
        "property3": "property3", "existing": "kept", "nested": {"b": 2}});
    assert_eq!(result.data, expected);
    assert_eq!(result.meta.created, before.meta.created);
    let stored = my_client_instance.get(path).await?.context("stored")?;
    assert_eq!(stored.data, expected);
    Ok(())
}
