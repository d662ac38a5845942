//! The data examples: SET through DELETE / REMOVE.

use super::*;

// ---------------------------------------------------------------------------- SET

/// SET: "the noPublish parameter means this data change wont be published to other
/// subscribers" and "your result object has a special _meta property that contains its
/// actual _id, path, created and modified dates … so you get back
/// {property1:'property1',property2:'property2',property3:'property3',
/// _meta:{path:'e2e_test1/testsubscribe/data/', created:20151011893020}}".
#[tokio::test]
async fn set() -> Result<()> {
    let (broker, client) = start().await?;
    let listener = connect(&broker).await?;
    let mut events = listener
        .on("/e2e_test1/testsubscribe/data/", OnOptions::new())
        .await?;

    let result = client
        .set(
            "e2e_test1/testsubscribe/data/",
            properties(),
            SetOptions::new().no_publish(true),
        )
        .await?;
    assert_eq!(result.data, properties());
    // pathmq: a path always starts with one `/` (DESIGN.md §3), so `e2e_test1/…` and
    // `/e2e_test1/…` are one record and the answer names it with the `/`; the
    // reference echoes the path as written. The trailing `/` is kept.
    assert_eq!(result.path(), "/e2e_test1/testsubscribe/data/");
    // `created` and `modified` are ms since the Unix epoch. There is no `_id`: the
    // path is the record's id (happn-3 strips `_id` from its answers too).
    assert!(result.meta.created > 0);
    assert_eq!(result.meta.modified, result.meta.created);
    assert!(!result.meta.published, "noPublish: no event was published");

    // No event for the noPublish set: the next one is this published set's.
    client
        .set(
            "e2e_test1/testsubscribe/data/",
            json!({"property1": "published"}),
            SetOptions::new(),
        )
        .await?;
    let event = next_event(&mut events).await?;
    assert_eq!(event.data, json!({"property1": "published"}));
    assert_eq!(event.meta.path, "/e2e_test1/testsubscribe/data/");
    Ok(())
}

/// SET, the note on merge: "by setting the option merge:true, the data at the end of the
/// path is not overwritten by your json, it is rather merged with the data in your json,
/// overwriting the fields you specify in your set data, but leaving the fields that are
/// already at that branch."
#[tokio::test]
async fn set_merge_note() -> Result<()> {
    let (_broker, client) = start().await?;
    let path = "e2e_test1/testsubscribe/data/";
    client
        .set(
            path,
            json!({"property1": "old", "property4": "already there"}),
            SetOptions::new(),
        )
        .await?;
    let result = client
        .set(path, properties(), SetOptions::new().merge(true))
        .await?;
    let expected = json!({"property1": "property1", "property2": "property2",
        "property3": "property3", "property4": "already there"});
    assert_eq!(result.data, expected);
    assert_eq!(client.get(path).await?.context("stored")?.data, expected);
    Ok(())
}

// ---------------------------------------------------------------------------- PUBLISH

/// PUBLISH: "publishes the json to all topic subscribers that match
/// e2e_test1/testsubscribe/data, the data is not stored or returned in the response,
/// only the _meta is returned": `{_meta: {published: true, type: 'response', status:
/// 'ok', eventId: 4, sessionId: …}}`.
#[tokio::test]
async fn publish() -> Result<()> {
    let (broker, client) = start().await?;
    let listener = connect(&broker).await?;
    let mut events = listener
        .on("/e2e_test1/testsubscribe/data/", OnOptions::new())
        .await?;

    // The Rust client's `publish` answers `()`: its answer has no data, and its meta
    // says only that it was published, which `Ok` already says.
    client
        .publish(
            "e2e_test1/testsubscribe/data/",
            properties(),
            SetOptions::new(),
        )
        .await?;
    let event = next_event(&mut events).await?;
    assert_eq!(
        (event.meta.kind, &event.data),
        (EventKind::Set, &properties())
    );
    assert_eq!(
        client.get("e2e_test1/testsubscribe/data/").await?,
        None,
        "published, not stored"
    );

    // The answer on the wire, as the reference shows it (the frame `publish` sends).
    let mut raw = common::Client::ws(&broker, "/primus").await?;
    let session = raw.handshake().await?["id"].clone();
    let id = raw
        .send(
            "set",
            Some("e2e_test1/testsubscribe/data/"),
            properties(),
            json!({"noStore": true, "noDataResponse": true}),
        )
        .await?;
    let answer = raw.response(id).await?;
    assert_eq!(answer["data"], Value::Null, "{answer}");
    let meta = &answer["_meta"];
    assert_eq!(
        (&meta["published"], &meta["type"], &meta["status"]),
        (&json!(true), &json!("response"), &json!("ok")),
        "{answer}"
    );
    assert_eq!(
        (&meta["eventId"], &meta["sessionId"]),
        (&json!(id), &session)
    );
    Ok(())
}

// ---------------------------------------------------------------------------- SET SIBLING

/// SET SIBLING: "sets your data to a unique path starting with the path you passed in as
/// a parameter, suffixed with a random short id … you get back
/// {property1:'sib_post_property1',property2:'sib_post_property2',
/// _meta:{path:'e2e_test1/siblings/yCZ678__'}} … you would get all siblings by querying
/// the path e2e_test1/siblings*".
#[tokio::test]
async fn set_sibling() -> Result<()> {
    let (_broker, client) = start().await?;
    let data = json!({"property1": "sib_post_property1", "property2": "sib_post_property2"});
    let mut siblings = Vec::new();
    for _ in 0..2 {
        let result = client
            .set_sibling("e2e_test1/siblings", &data, SetOptions::new())
            .await?;
        assert_eq!(result.data, data);
        // pathmq: the short id is 12 letters and digits (the reference's shortid is
        // 7 to 14 characters that may include `_` and `-`), and the path has its `/`.
        let id = result
            .path()
            .strip_prefix("/e2e_test1/siblings/")
            .with_context(|| format!("{} is not a child", result.path()))?;
        assert_eq!(id.len(), 12, "{}", result.path());
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        siblings.push(result.path().to_owned());
    }
    assert_ne!(siblings[0], siblings[1], "each sibling has its own path");
    siblings.sort();

    for glob in ["e2e_test1/siblings*", "e2e_test1/siblings/*"] {
        let found = client.get_many(glob, GetOptions::new()).await?;
        assert_eq!(paths(&found), siblings, "{glob}");
        assert!(found.iter().all(|item| item.data == data));
    }
    Ok(())
}

// ---------------------------------------------------------------------------- INCREMENT

/// INCREMENT, single gauge: "the data on the event will look like this
/// {guage:'counter', value:1}" and `expect(gotIncrementedData[data.value].value).to.be(1)`.
#[tokio::test]
async fn increment_single_gauge() -> Result<()> {
    let (_broker, client) = start().await?;
    let mut events = client.on("my/increment/guage", OnOptions::new()).await?;
    // `myclient.increment(path, 1)`: the Rust client names the gauge; happn-3's
    // default is `counter`.
    let answer = client
        .increment("my/increment/guage", "counter", 1.0)
        .await?;
    assert_eq!(answer.data, json!({"gauge": "counter", "value": 1}));

    let event = next_event(&mut events).await?;
    // The key is `gauge`, as happn-3 itself sends it: the reference's `guage` is a typo.
    assert_eq!(event.data, json!({"gauge": "counter", "value": 1}));
    let got = client.get("my/increment/guage").await?.context("stored")?;
    // The reference indexes by `data.value` (1): a slip for `data.gauge`.
    let gauge = event.data["gauge"].as_str().context("a gauge name")?;
    assert_eq!(got.data[gauge]["value"], 1);
    // "causing one event": the next one is the next increment's.
    client
        .increment("my/increment/guage", "counter", 1.0)
        .await?;
    assert_eq!(next_event(&mut events).await?.data["value"], 2);
    Ok(())
}

/// INCREMENT, "increment multiple times, guage defaults to counter and increment value is
/// 1": ten `myclient.increment('my/guage')`, then `expect(result['counter-0'].value)
/// .to.be(10)`.
#[tokio::test]
async fn increment_multiple_times_default_gauge() -> Result<()> {
    let (_broker, client) = start().await?;
    for _ in 0..10 {
        client.increment("my/guage", "counter", 1.0).await?;
    }
    let result = client.get("my/guage").await?.context("stored")?;
    // The reference's `'counter-0'` is a typo (copied from the next example): the
    // default gauge, as its own text says, is `counter`, and that is where the ten
    // increments are. There is no `counter-0`.
    assert_eq!(result.data, json!({"counter": {"value": 10}}));
    assert_eq!(result.data.get("counter-0"), None);
    Ok(())
}

/// INCREMENT, "multiple guages on the same path": `increment('my/dashboard', 'counter-'
/// + time, 1)` ten times, then `expect(result['counter-0'].value).to.be(1)` … through
/// `counter-9`.
#[tokio::test]
async fn increment_multiple_gauges_on_one_path() -> Result<()> {
    let (_broker, client) = start().await?;
    for time in 0..10 {
        client
            .increment("my/dashboard", &format!("counter-{time}"), 1.0)
            .await?;
    }
    let result = client.get("my/dashboard").await?.context("stored")?;
    for time in 0..10 {
        assert_eq!(result.data[format!("counter-{time}")]["value"], 1, "{time}");
    }
    assert_eq!(result.data.as_object().map(Map::len), Some(10));
    Ok(())
}

/// INCREMENT, "decrement a guage with a minus value": `increment('my/test/guage',
/// 'custom', 3)` then `-2`; the events carry `value` 3 then 1 with `guage` `custom`, and
/// `result['custom'].value` is 1.
#[tokio::test]
async fn increment_decrement_with_a_minus_value() -> Result<()> {
    let (_broker, client) = start().await?;
    let mut events = client.on("my/test/guage", OnOptions::new()).await?;

    client.increment("my/test/guage", "custom", 3.0).await?;
    let first = next_event(&mut events).await?;
    assert_eq!(first.data, json!({"gauge": "custom", "value": 3}));
    // The reference expects 1 here, before the decrement: a slip (its own event
    // handler expects 3 at this point).
    let result = client.get("my/test/guage").await?.context("stored")?;
    assert_eq!(result.data["custom"]["value"], 3);

    client.increment("my/test/guage", "custom", -2.0).await?;
    let second = next_event(&mut events).await?;
    assert_eq!(second.data, json!({"gauge": "custom", "value": 1}));
    // The reference reads `my/dashboard` here: a typo for `my/test/guage`.
    let result = client.get("my/test/guage").await?.context("stored")?;
    assert_eq!(result.data["custom"]["value"], 1);
    Ok(())
}

// ---------------------------------------------------------------------------- GET

/// GET: "if you used an explicit path, you get back your data as the object on that
/// path".
#[tokio::test]
async fn get_exact_path() -> Result<()> {
    let (_broker, client) = start().await?;
    client
        .set(
            "e2e_test1/testsubscribe/data",
            properties(),
            SetOptions::new(),
        )
        .await?;
    client
        .set(
            "e2e_test1/testsubscribe/data/child",
            json!({"child": true}),
            SetOptions::new(),
        )
        .await?;
    let results = client
        .get("e2e_test1/testsubscribe/data")
        .await?
        .context("the object on that path")?;
    assert_eq!(results.data, properties());
    assert_eq!(results.path(), "/e2e_test1/testsubscribe/data");
    // Nothing at a path: `null` on the wire, `None` here.
    assert_eq!(client.get("e2e_test1/testsubscribe/nothing").await?, None);
    Ok(())
}

/// GET: "You can also use wildcards, gets all items with the path starting
/// e2e_test1/testsubscribe/data … if you used a wildcard in your path, you get back an
/// array".
#[tokio::test]
async fn get_wildcard() -> Result<()> {
    let (_broker, client) = start().await?;
    let starting = [
        "/e2e_test1/testsubscribe/data",
        "/e2e_test1/testsubscribe/data/1",
        "/e2e_test1/testsubscribe/data/1/2",
        "/e2e_test1/testsubscribe/database",
    ];
    for (n, path) in starting.iter().enumerate() {
        client
            .set(path, json!({ "n": n }), SetOptions::new())
            .await?;
    }
    client
        .set(
            "/e2e_test1/testsubscribe/other",
            json!({}),
            SetOptions::new(),
        )
        .await?;
    let results = client
        .get_many("e2e_test1/testsubscribe/data*", GetOptions::new())
        .await?;
    // In data calls `*` is a glob over the rest of the path, across segments and within
    // one (`data*` finds `database`), as in the reference; ordered by path.
    assert_eq!(paths(&results), starting);
    assert_eq!(
        results
            .iter()
            .map(|i| i.data["n"].clone())
            .collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    Ok(())
}

/// GET: "You can also just get paths, without data": `getPaths('e2e_test1/testwildcard/*')`.
#[tokio::test]
async fn get_paths() -> Result<()> {
    let (_broker, client) = start().await?;
    for path in [
        "e2e_test1/testwildcard/b",
        "e2e_test1/testwildcard/a",
        "e2e_test1/testwildcard/a/deeper",
        "e2e_test1/elsewhere",
    ] {
        client.set(path, json!({"x": 1}), SetOptions::new()).await?;
    }
    assert_eq!(
        client.get_paths("e2e_test1/testwildcard/*").await?,
        [
            "/e2e_test1/testwildcard/a",
            "/e2e_test1/testwildcard/a/deeper",
            "/e2e_test1/testwildcard/b",
        ]
    );
    Ok(())
}

// ---------------------------------------------------------------------------- SEARCH

/// SEARCH: "You can pass mongo style search parameters to look for data sets within
/// specific key ranges, using limit and skip": the `$or`/`$in` criteria with
/// `fields: {name: 1}, sort: {name: 1}, limit: 10, skip: 5`, on `/users/*`.
#[tokio::test]
async fn search_criteria_and_options() -> Result<()> {
    let (_broker, client) = start().await?;
    let regions = ["North", "South", "East", "West"];
    // 20 users who match: 16 by region, 4 only by town.
    for n in 0..20 {
        let (region, town) = match n % 5 {
            4 => ("Nowhere", "North.Cape Town"),
            r => (regions[r], "Somewhere"),
        };
        let surname = if n % 2 == 0 { "Bishop" } else { "Emslie" };
        client
            .set(
                &format!("/users/user-{n:02}"),
                json!({"name": format!("user-{n:02}"), "surname": surname,
                    "region": region, "town": town}),
                SetOptions::new(),
            )
            .await?;
    }
    // Users who do not: the dodgy chap (wrong surname), and one in neither region
    // nor town.
    for (name, surname, region, town) in [
        ("simon", "Dodgy", "North", "Somewhere"),
        ("aaron", "Bishop", "Nowhere", "Elsewhere"),
    ] {
        client
            .set(
                &format!("/users/{name}"),
                json!({"name": name, "surname": surname, "region": region, "town": town}),
                SetOptions::new(),
            )
            .await?;
    }

    let criteria = json!({
        "$or": [{"region": {"$in": ["North", "South", "East", "West"]}},
                {"town": {"$in": ["North.Cape Town", "South.East London"]}}],
        "surname": {"$in": ["Bishop", "Emslie"]}
    });
    let search = GetOptions::new()
        .criteria(criteria)
        .fields(json!({"name": 1}))
        .sort(json!({"name": 1}))
        .limit(10)
        .skip(5);
    let search_results = client.get_many("/users/*", search).await?;
    let names: Vec<String> = (5..15).map(|n| format!("user-{n:02}")).collect();
    assert_eq!(
        search_results
            .iter()
            .map(|user| user.data.clone())
            .collect::<Vec<_>>(),
        names
            .iter()
            .map(|name| json!({ "name": name }))
            .collect::<Vec<_>>(),
        "only `name`, sorted, 10 after the first 5"
    );
    assert!(
        search_results
            .iter()
            .all(|user| user.data["name"] != "simon")
    );
    // A projection keeps the path in the meta.
    assert_eq!(search_results[0].path(), "/users/user-05");
    Ok(())
}

/// SEARCH: "Using $regex is a bit different, you can pass in a regex string
/// representation or an array with regex string as the first element and modifiers such
/// as i as the second element": `{name: {$regex: ['.*simon.*', 'i']}}` and
/// `{name: {$regex: '.*simon.*'}}`, with `fields: {name: 1}, sort: {name: 1}, limit: 1`.
#[tokio::test]
async fn search_regex() -> Result<()> {
    let (_broker, client) = start().await?;
    for name in ["simon", "SIMON SAYS", "mr simon", "bob"] {
        client
            .set(
                &format!("/users/{name}"),
                json!({"name": name, "surname": "x"}),
                SetOptions::new(),
            )
            .await?;
    }
    let search = |criteria: Value| {
        GetOptions::new()
            .criteria(criteria)
            .fields(json!({"name": 1}))
            .sort(json!({"name": 1}))
    };
    let criteria = json!({"name": {"$regex": [".*simon.*", "i"]}});
    let criteria_simple = json!({"name": {"$regex": ".*simon.*"}});

    // Sorted by name, byte order: "SIMON SAYS" < "bob" < "mr simon" < "simon".
    let first = client
        .get_many("/users/*", search(criteria.clone()).limit(1))
        .await?;
    assert_eq!(paths(&first), ["/users/SIMON SAYS"]);
    assert_eq!(first[0].data, json!({"name": "SIMON SAYS"}));
    let first = client
        .get_many("/users/*", search(criteria_simple.clone()).limit(1))
        .await?;
    assert_eq!(paths(&first), ["/users/mr simon"]);

    let all = |items: Vec<Item>| -> Vec<Value> { items.into_iter().map(|i| i.data).collect() };
    assert_eq!(
        all(client.get_many("/users/*", search(criteria)).await?),
        [
            json!({"name": "SIMON SAYS"}),
            json!({"name": "mr simon"}),
            json!({"name": "simon"})
        ],
        "case insensitive"
    );
    assert_eq!(
        all(client.get_many("/users/*", search(criteria_simple)).await?),
        [json!({"name": "mr simon"}), json!({"name": "simon"})],
        "case sensitive"
    );
    Ok(())
}

/// SEARCH: "You can also use skip and limit for paging": 100 horror and 100 fantasy
/// series, pages of 10 of `{genre: 'horror'}` sorted by `_meta.created` -1, and
/// `expect(allResults).to.eql(foundPages)`.
#[tokio::test]
async fn search_paging() -> Result<()> {
    let (_broker, search_client) = start().await?;
    let total_records = 100;
    let page_size = 10;
    let expected_pages = total_records / page_size;
    for index in 0..total_records {
        search_client
            .set(
                &format!("series/horror/{index}"),
                json!({"name": "nightmare on elm street", "genre": "horror", "episode": index}),
                SetOptions::new(),
            )
            .await?;
        search_client
            .set(
                &format!("series/fantasy/{index}"),
                json!({"name": "game of thrones", "genre": "fantasy", "episode": index}),
                SetOptions::new(),
            )
            .await?;
    }
    let options = || {
        GetOptions::new()
            .criteria(json!({"genre": "horror"}))
            .sort(json!({"_meta.created": -1}))
    };

    let mut found_pages: Vec<Item> = Vec::new();
    for _ in 0..expected_pages {
        let page = options().limit(page_size).skip(found_pages.len() as u64);
        let results = search_client.get_many("series/*", page).await?;
        assert_eq!(results.len() as u64, page_size);
        found_pages.extend(results);
    }
    let all_results = search_client.get_many("series/*", options()).await?;

    assert_eq!(all_results.len(), found_pages.len());
    assert_eq!(all_results, found_pages);
    assert_eq!(all_results.len() as u64, total_records);
    assert!(
        all_results
            .iter()
            .all(|item| item.data["genre"] == "horror")
    );
    assert!(
        all_results
            .windows(2)
            .all(|w| w[0].meta.created >= w[1].meta.created),
        "newest first"
    );
    Ok(())
}

// ---------------------------------------------------------------------------- DELETE / REMOVE

/// DELETE / REMOVE: "deletes the data living at the specified branch … result.payload is
/// an object that lists the amount of objects deleted".
#[tokio::test]
async fn delete_remove() -> Result<()> {
    let (_broker, client) = start().await?;
    let path = "/e2e_test1/testsubscribe/data/delete_me";
    client.set(path, properties(), SetOptions::new()).await?;
    // pathmq (as happn-3 on the wire): the answer's data is `{removed: N}`, not a
    // `payload`; the Rust client answers N.
    assert_eq!(client.remove(path).await?, 1);
    assert_eq!(client.get(path).await?, None);
    assert_eq!(client.remove(path).await?, 0, "nothing left to delete");

    // With `options.criteria` (the wire's `remove` takes them): only what matches.
    for (n, kind) in ["keep", "drop", "drop"].iter().enumerate() {
        client
            .set(
                &format!("{path}/{n}"),
                json!({ "kind": kind }),
                SetOptions::new(),
            )
            .await?;
    }
    let only = RemoveOptions::new().criteria(json!({"kind": "drop"}));
    assert_eq!(client.remove_many(&format!("{path}/*"), only).await?, 2);
    assert_eq!(
        client.get_paths(&format!("{path}/*")).await?,
        [format!("{path}/0")]
    );
    Ok(())
}
