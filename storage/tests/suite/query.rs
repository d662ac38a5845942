//! The query behaviours of the store suite (`Store::query`, `Store::count_matching`),
//! including the reference's SEARCH examples. Instantiated per store by `cases!` in
//! `suite.rs`.

use std::sync::Arc;

use bytes::Bytes;
use pathmq_core::{Payload, Query, Record, Store};
use serde_json::{Value, json};

use super::{glob, path, set_all, write};

fn query(criteria: Value, options: Value) -> Query {
    Query::parse(Some(&criteria), Some(&options)).expect("valid query")
}

fn paths(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.path.as_str()).collect()
}

async fn set_people<S: Store>(store: &S) {
    let people = [
        (
            "/users/simon",
            json!({"name": "simon", "surname": "Bishop", "region": "North", "age": 30}),
        ),
        (
            "/users/mary",
            json!({"name": "Mary Simonsen", "surname": "Emslie", "town": "South.East London", "age": 25}),
        ),
        (
            "/users/bob",
            json!({"name": "bob", "surname": "Smith", "region": "South", "age": 40}),
        ),
        (
            "/users/ann",
            json!({"name": "ann", "surname": "Bishop", "region": "East", "age": 35}),
        ),
        (
            "/users/old/zed",
            json!({"name": "zed", "surname": "Emslie", "region": "West", "age": 90}),
        ),
        // Matches the criteria, outside the glob.
        (
            "/people/simon",
            json!({"name": "simon", "surname": "Bishop", "region": "North"}),
        ),
    ];
    for (p, value) in people {
        store.set(write(p, value), None).await.unwrap();
    }
}

/// The reference's first SEARCH example: `$or` of `$in`s, `$in` on another field, with
/// `fields`, `sort`, `skip` and `limit`.
pub(crate) async fn query_search_example<S: Store>(store: Arc<S>) {
    set_people(&*store).await;
    let criteria = json!({
        "$or": [{"region": {"$in": ["North", "South", "East", "West"]}},
                {"town": {"$in": ["North.Cape Town", "South.East London"]}}],
        "surname": {"$in": ["Bishop", "Emslie"]}
    });
    let all = store
        .query(
            &glob("/users/*"),
            &query(criteria.clone(), json!({"sort": {"name": 1}})),
        )
        .await
        .unwrap();
    // Bytewise: upper case first.
    assert_eq!(
        paths(&all),
        [
            "/users/mary",
            "/users/ann",
            "/users/simon",
            "/users/old/zed"
        ]
    );
    let page = store
        .query(
            &glob("/users/*"),
            &query(
                criteria,
                json!({"fields": {"name": 1}, "sort": {"name": 1}, "limit": 2, "skip": 1}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(paths(&page), ["/users/ann", "/users/simon"]);
    assert_eq!(page[0].payload.as_json(), Some(json!({"name": "ann"})));
    let stored = store.get(&path("/users/ann")).await.unwrap().unwrap();
    assert_eq!(
        (page[0].created, page[0].modified),
        (stored.created, stored.modified)
    );
}

/// `$regex` as a string (case-sensitive) and as `[pattern, "i"]` (reference).
pub(crate) async fn query_regex_forms<S: Store>(store: Arc<S>) {
    set_people(&*store).await;
    let found = |criteria| {
        let store = Arc::clone(&store);
        async move {
            let records = store
                .query(
                    &glob("/users/*"),
                    &query(criteria, json!({"fields": {"name": 1}})),
                )
                .await
                .unwrap();
            records
                .iter()
                .map(|r| {
                    r.payload.as_json().unwrap()["name"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found(json!({"name": {"$regex": ".*simon.*"}})).await,
        ["simon"]
    );
    assert_eq!(
        found(json!({"name": {"$regex": [".*simon.*", "i"]}})).await,
        ["Mary Simonsen", "simon"]
    );
}

/// The reference's paging example ("series/horror"): 100 records, pages of 10 sorted on
/// `_meta.created` descending, concatenated, equal the unpaged sorted result.
pub(crate) async fn query_pages_equal_the_unpaged_result<S: Store>(store: Arc<S>) {
    for index in 0..100 {
        for (genre, name) in [
            ("horror", "nightmare on elm street"),
            ("fantasy", "game of thrones"),
        ] {
            let value = json!({"name": name, "genre": genre, "episode": index});
            store
                .set(write(&format!("/series/{genre}/{index}"), value), None)
                .await
                .unwrap();
        }
    }
    let criteria = json!({"genre": "horror"});
    let mut pages = Vec::new();
    for _ in 0..10 {
        let options = json!({"sort": {"_meta.created": -1}, "limit": 10, "skip": pages.len()});
        let page = store
            .query(&glob("series/*"), &query(criteria.clone(), options))
            .await
            .unwrap();
        assert_eq!(page.len(), 10);
        pages.extend(page);
    }
    let all = store
        .query(
            &glob("series/*"),
            &query(criteria, json!({"sort": {"_meta.created": -1}})),
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(all, pages);
    assert!(all.windows(2).all(|w| w[0].created >= w[1].created));
    assert!(
        all.iter()
            .all(|r| r.path.as_str().starts_with("/series/horror/"))
    );
}

/// Without a sort, results are in path order, and skip/limit page through them.
pub(crate) async fn query_without_sort_is_in_path_order<S: Store>(store: Arc<S>) {
    set_all(&*store, &["/q/c", "/q/a", "/q/b/x", "/q/d", "/qq", "/q"]).await;
    let run = |options| {
        let store = Arc::clone(&store);
        async move {
            let records = store
                .query(&glob("/q/*"), &query(json!({}), options))
                .await
                .unwrap();
            paths(&records)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(run(json!({})).await, ["/q/a", "/q/b/x", "/q/c", "/q/d"]);
    assert_eq!(
        run(json!({"skip": 1, "limit": 2})).await,
        ["/q/b/x", "/q/c"]
    );
    assert_eq!(run(json!({"skip": 3, "limit": 5})).await, ["/q/d"]);
    assert!(run(json!({"skip": 10})).await.is_empty());
    assert_eq!(
        run(json!({"limit": 0})).await.len(),
        4,
        "limit 0 is no limit"
    );
    let exact = store.query(&glob("/q/c"), &Query::default()).await.unwrap();
    assert_eq!(paths(&exact), ["/q/c"]);
}

/// Criteria see `_meta` and the native view of text and non-object payloads; projections
/// turn payloads into the JSON of the projected view.
pub(crate) async fn query_sees_meta_and_native_views<S: Store>(store: Arc<S>) {
    store
        .set(write("/m/number", json!(21.5)), None)
        .await
        .unwrap();
    let text = Payload::detect(Bytes::from_static(b"hello world"));
    let mut w = write("/m/text", json!(null));
    w.payload = text;
    store.set(w, None).await.unwrap();
    store
        .set(write("/m/object", json!({"value": 3, "secret": "s"})), None)
        .await
        .unwrap();

    let found = store
        .query(
            &glob("/m/*"),
            &query(json!({"value": {"$gt": 20}}), json!({})),
        )
        .await
        .unwrap();
    assert_eq!(paths(&found), ["/m/number"]);
    assert_eq!(
        found[0].payload.as_json(),
        Some(json!(21.5)),
        "unprojected: as stored"
    );
    let found = store
        .query(
            &glob("/m/*"),
            &query(json!({"value": {"$regex": "^hello"}}), json!({})),
        )
        .await
        .unwrap();
    assert_eq!(paths(&found), ["/m/text"]);
    let found = store
        .query(
            &glob("/m/*"),
            &query(
                json!({"_meta.path": {"$in": ["/m/object", "/m/text"]}}),
                json!({"fields": {"secret": 0}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(paths(&found), ["/m/object", "/m/text"]);
    assert_eq!(found[0].payload.as_json(), Some(json!({"value": 3})));
    assert_eq!(
        found[1].payload.as_json(),
        Some(json!({"value": "hello world"}))
    );
}

/// `count_matching` counts what `query` returns without paging; without criteria it is
/// `count`.
pub(crate) async fn count_matching_agrees_with_query<S: Store>(store: Arc<S>) {
    set_people(&*store).await;
    for criteria in [
        json!({"surname": "Bishop"}),
        json!({"age": {"$gte": 30}}),
        json!({"region": {"$exists": false}}),
        json!({"nope": 1}),
        json!({"name": {"$regex": ["^[a-m]", "i"]}}),
    ] {
        for g in ["/users/*", "*", "/users/simon"] {
            let q = query(criteria.clone(), json!({"limit": 1}));
            let unpaged = query(criteria.clone(), json!({}));
            let n = store
                .count_matching(&glob(g), q.criteria.as_ref())
                .await
                .unwrap();
            let listed = store.query(&glob(g), &unpaged).await.unwrap().len() as u64;
            assert_eq!(n, listed, "{criteria} in {g}");
        }
    }
    assert_eq!(
        store.count_matching(&glob("/users/*"), None).await.unwrap(),
        5
    );
    assert_eq!(store.count_matching(&glob("*"), None).await.unwrap(), 6);
}
