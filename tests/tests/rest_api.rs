//! The REST data API on the HTTP listener (docs/REST.md) end to end with `reqwest`:
//! records read, written, merged, searched and removed with the native protocol's JSON
//! shapes; the same permissions on a secure broker (401 without a token, 403 without the
//! right); events of REST writes reaching native subscribers (one pipeline); and the
//! listener's `/health`, `/metrics` (per-protocol counters, store latency) and
//! `/api/openapi.json`.

mod support;

use pathmq::core::security::{Group, PermissionEntry, Permissions, Right, UserInput};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::*;

/// A REST client of one broker, with a token or without.
struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// An answer: its status, headers and JSON body (`Value::Null` when it is not JSON).
struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Value,
}

impl Answer {
    /// The `error` of a refusal, checked to be `{name, code, message}` with the status's
    /// code.
    #[track_caller]
    fn error(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        let error = &self.body["error"];
        assert_eq!(error["code"], status, "{}", self.body);
        assert!(error["name"].is_string(), "{}", self.body);
        assert!(error["message"].is_string(), "{}", self.body);
        error
    }

    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        &self.body
    }
}

impl Api {
    fn new(broker: &TestBroker) -> Self {
        let client = reqwest::Client::builder().timeout(WAIT).build().unwrap();
        Self {
            client,
            base: format!("http://{}", broker.http),
            token: None,
        }
    }

    fn with_token(&self, token: &str) -> Self {
        Self {
            client: self.client.clone(),
            base: self.base.clone(),
            token: Some(token.to_owned()),
        }
    }

    /// `method` on `target` (path and query, as sent), with `body` as the raw body.
    async fn send(&self, method: Method, target: &str, body: Option<String>) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{target}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await.expect("the broker answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, target: &str) -> Answer {
        self.send(Method::GET, target, None).await
    }

    async fn put(&self, target: &str, data: Value) -> Answer {
        self.send(Method::PUT, target, Some(data.to_string())).await
    }

    async fn patch(&self, target: &str, data: Value) -> Answer {
        self.send(Method::PATCH, target, Some(data.to_string()))
            .await
    }

    async fn delete(&self, target: &str) -> Answer {
        self.send(Method::DELETE, target, None).await
    }

    /// The token of `POST /auth/login` for `username`.
    async fn login(&self, username: &str, password: &str) -> String {
        let body = json!({"username": username, "password": password});
        let answer = self
            .send(Method::POST, "/auth/login", Some(body.to_string()))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["data"].as_str().expect("a token").to_owned()
    }
}

/// `value` without its `_meta`, which the checks look at apart.
fn data(value: &Value) -> Value {
    let mut value = value.clone();
    value.as_object_mut().expect("an object").remove("_meta");
    value
}

/// The paths of an array answer, in order.
fn paths(answer: &Value) -> Vec<&str> {
    let items = answer.as_array().expect("an array");
    items
        .iter()
        .map(|item| item["_meta"]["path"].as_str().expect("a path"))
        .collect()
}

/// URL-encodes `text` for a query string (every byte but unreserved characters).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn records_are_written_read_merged_searched_and_removed() {
    let broker = start().await;
    let api = Api::new(&broker);

    let stored = api
        .put("/api/data/people/ann", json!({"name": "Ann", "age": 30}))
        .await;
    let stored = stored.ok();
    assert_eq!(data(stored), json!({"name": "Ann", "age": 30}));
    assert_eq!(stored["_meta"]["path"], "/people/ann");
    assert!(stored["_meta"]["created"].is_u64() && stored["_meta"]["modified"].is_u64());

    let read = api.get("/api/data/people/ann").await;
    assert_eq!(data(read.ok()), json!({"name": "Ann", "age": 30}));
    assert_eq!(read.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(read.headers[header::CONTENT_TYPE], "application/json");

    // PATCH merges, PUT replaces; a `_meta` key in a body is not stored.
    let merged = api.patch("/api/data/people/ann", json!({"age": 31})).await;
    assert_eq!(data(merged.ok()), json!({"name": "Ann", "age": 31}));
    api.put(
        "/api/data/people/bob",
        json!({"name": "Bob", "age": 25, "_meta": {"x": 1}}),
    )
    .await
    .ok();
    api.put("/api/data/people/cy", json!({"name": "Cy", "age": 40}))
        .await
        .ok();
    let bob = api.get("/api/data/people/bob").await;
    assert_eq!(data(bob.ok()), json!({"name": "Bob", "age": 25}));

    // A non-object value reads back as `{"value": …}`, as in the native protocol.
    api.put("/api/data/counter", json!(5)).await.ok();
    let counter = api.get("/api/data/counter").await;
    assert_eq!(data(counter.ok()), json!({"value": 5}));

    // `%2F` is a `/`; a glob answers an array in path order.
    let encoded = api.get("/api/data/people%2Fcy").await;
    assert_eq!(encoded.ok()["name"], "Cy");
    let all = api.get("/api/data/people/*").await;
    assert_eq!(
        paths(all.ok()),
        ["/people/ann", "/people/bob", "/people/cy"]
    );

    // A search: criteria, sort, fields, skip, limit.
    let criteria = encode(r#"{"age":{"$gte":30}}"#);
    let older = api
        .get(&format!(
            "/api/data/people/*?criteria={criteria}&sort=-age&fields=name"
        ))
        .await;
    let older = older.ok();
    assert_eq!(paths(older), ["/people/cy", "/people/ann"]);
    assert_eq!(
        data(&older[0]),
        json!({"name": "Cy"}),
        "fields keeps `name`"
    );
    let page = api
        .get("/api/data/people/*?sort=%7B%22age%22%3A1%7D&skip=1&limit=1")
        .await;
    assert_eq!(paths(page.ok()), ["/people/ann"]);
    let none = api.get("/api/data/nobody/*").await;
    assert_eq!(none.ok(), &json!([]));
    // Search parameters on an exact path answer an array too (zero or one item).
    let exact = api.get("/api/data/people/bob?fields=age").await;
    assert_eq!(
        exact.ok(),
        &json!([{"age": 25, "_meta": bob.body["_meta"]}])
    );

    // Removal: one record, then by criteria; a missing record is a 404.
    let removed = api.delete("/api/data/people/bob").await;
    assert_eq!(removed.ok(), &json!({"removed": 1}));
    let gone = api.get("/api/data/people/bob").await;
    let error = gone.error(404);
    assert_eq!(error["name"], "NotFound");
    assert!(
        error["message"].as_str().unwrap().contains("/people/bob"),
        "{error}"
    );
    let criteria = encode(r#"{"name":"Cy"}"#);
    let removed = api
        .delete(&format!("/api/data/people/*?criteria={criteria}"))
        .await;
    assert_eq!(removed.ok(), &json!({"removed": 1}));
    let left = api.get("/api/data/people/*").await;
    assert_eq!(paths(left.ok()), ["/people/ann"]);
    broker.broker.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_json_error() {
    let mut config = loopback_config();
    config.limits.max_payload = 1024;
    let broker = start_with(config).await;
    let api = Api::new(&broker);

    let not_json = api
        .send(Method::PUT, "/api/data/a", Some("{nope".into()))
        .await;
    assert_eq!(not_json.error(400)["name"], "BadRequest");
    api.send(Method::PUT, "/api/data/a", Some(String::new()))
        .await
        .error(400);
    let big = json!({"blob": "x".repeat(2048)});
    let too_large = api.put("/api/data/a", big).await;
    assert_eq!(too_large.error(413)["name"], "PayloadTooLarge");

    let post = api.send(Method::POST, "/api/data/a", None).await;
    post.error(405);
    assert_eq!(post.headers[header::ALLOW], "GET, PUT, PATCH, DELETE");

    for target in [
        "/api/data/a?nope=1",        // unknown parameter
        "/api/data/a?limit=ten",     // not a number
        "/api/data/a?limit=-1",      // negative
        "/api/data/a?criteria=%7Bx", // not JSON
        "/api/data/a%zz",            // malformed escape
        "/api/data/",                // no path
    ] {
        api.get(target).await.error(400);
    }
    api.put("/api/data/a/*", json!({})).await.error(400);
    api.put("/api/data/a?limit=1", json!({})).await.error(400);
    api.delete("/api/data/a/*?limit=1").await.error(400);
    // `/_SYSTEM` is the broker's, as over the native protocol.
    api.get("/api/data/_SYSTEM/users/_ADMIN").await.error(403);
    api.put("/api/data/_SYSTEM/x", json!({})).await.error(403);
    // Nothing else lives under /api.
    let missing = api.get("/api/nothing").await;
    assert_eq!(missing.error(404)["name"], "NotFound");
    // Nothing was stored by any of these.
    assert_eq!(api.get("/api/data/*").await.ok(), &json!([]));
    broker.broker.shutdown().await;
}

/// A REST write goes through the same pipeline as a native one: a native WebSocket
/// subscriber gets its events.
#[tokio::test]
async fn a_native_subscriber_sees_rest_writes() {
    let broker = start().await;
    let api = Api::new(&broker);
    let mut native = broker.native().await;
    native.on("/events/*").await;

    api.put("/api/data/events/one", json!({"n": 1})).await.ok();
    let event = native.next_event().await;
    assert_eq!(event["data"]["n"], 1, "{event}");
    assert_eq!(event["_meta"]["path"], "/events/one", "{event}");

    api.patch("/api/data/events/one", json!({"m": 2}))
        .await
        .ok();
    let event = native.next_event().await;
    assert_eq!(
        (event["data"]["n"].clone(), event["data"]["m"].clone()),
        (json!(1), json!(2)),
        "{event}"
    );

    api.delete("/api/data/events/one").await.ok();
    let event = native.next_event().await;
    assert_eq!(event["_meta"]["path"], "/events/one", "{event}");
    assert_eq!(event["data"]["removed"], 1, "{event}");
    broker.broker.shutdown().await;
}

/// A secure broker with `ann` (get, set, remove on `/shared/*`) and `bob` (get on
/// `/shared/*`); passwords `pw-<name>`.
async fn secure_broker() -> TestBroker {
    secure_broker_with(secure_config("admin-secret-rest")).await
}

/// [`secure_broker`] from `config`.
async fn secure_broker_with(config: pathmq::config::Config) -> TestBroker {
    let broker = start_with(config).await;
    let directory = broker.broker.core().security().expect("secure").directory();
    let group = |name: &str, rights: &[Right]| Group {
        name: name.into(),
        permissions: Permissions::from([(
            "/shared/*".into(),
            PermissionEntry {
                actions: rights.iter().copied().collect(),
                ..PermissionEntry::default()
            },
        )]),
        ..Group::default()
    };
    let writers = group(
        "writers",
        &[Right::Get, Right::Set, Right::Remove, Right::On],
    );
    directory.upsert_group(writers).await.unwrap();
    directory
        .upsert_group(group("readers", &[Right::Get]))
        .await
        .unwrap();
    for name in ["ann", "bob"] {
        let input = UserInput {
            username: name.into(),
            password: Some(format!("pw-{name}").into()),
            ..UserInput::default()
        };
        directory.upsert_user(input).await.unwrap();
    }
    directory.link_group("ann", "writers").await.unwrap();
    directory.link_group("bob", "readers").await.unwrap();
    broker
}

#[tokio::test]
async fn a_secure_broker_needs_a_token_and_the_native_permissions() {
    let broker = secure_broker().await;
    let anonymous = Api::new(&broker);

    let refused = anonymous.get("/api/data/shared/x").await;
    assert_eq!(refused.error(401)["name"], "AccessDenied");
    assert!(
        (refused.headers[header::WWW_AUTHENTICATE].to_str().unwrap()).starts_with("Bearer"),
        "{:?}",
        refused.headers
    );
    (anonymous.with_token("not-a-token"))
        .put("/api/data/shared/x", json!({}))
        .await
        .error(401);

    let ann = anonymous.with_token(&anonymous.login("ann", "pw-ann").await);
    let bob_token = anonymous.login("bob", "pw-bob").await;
    let bob = anonymous.with_token(&bob_token);

    // ann may write and read `/shared/*`; bob only read.
    ann.put("/api/data/shared/x", json!({"v": 1})).await.ok();
    ann.patch("/api/data/shared/x", json!({"w": 2})).await.ok();
    let read = bob.get("/api/data/shared/x").await;
    assert_eq!(data(read.ok()), json!({"v": 1, "w": 2}));
    assert_eq!(
        paths(bob.get("/api/data/shared/*").await.ok()),
        ["/shared/x"]
    );
    let forbidden = bob.put("/api/data/shared/x", json!({"v": 9})).await;
    assert_eq!(forbidden.error(403)["name"], "AccessDenied");
    bob.patch("/api/data/shared/x", json!({"v": 9}))
        .await
        .error(403);
    bob.delete("/api/data/shared/x").await.error(403);
    ann.get("/api/data/private/x").await.error(403);
    ann.put("/api/data/private/x", json!({})).await.error(403);

    // The token may also come as `?token=` or as the cookie.
    let query = anonymous
        .get(&format!("/api/data/shared/x?token={bob_token}"))
        .await;
    assert_eq!(data(query.ok()), json!({"v": 1, "w": 2}));
    let cookie = anonymous
        .client
        .get(format!("{}/api/data/shared/x", anonymous.base))
        .header(header::COOKIE, format!("pathmq_token={bob_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), StatusCode::OK);

    assert_eq!(
        ann.delete("/api/data/shared/x").await.ok(),
        &json!({"removed": 1})
    );
    broker.broker.shutdown().await;
}

/// Guards the count of a REST request against its token's policy: once (the pipeline
/// counts it; the listener only checks the token), so `usage_limit: 3` allows exactly three
/// requests, whatever they are.
#[tokio::test]
async fn a_rest_request_counts_once_against_the_token_policy() {
    let mut config = secure_config("admin-secret-rest");
    let profile = json!({
        "name": "http-thrice",
        "session": {"type": 0},
        "policy": {"usage_limit": 3}
    });
    config.security.profiles = vec![serde_json::from_value(profile).unwrap()];
    let broker = secure_broker_with(config).await;
    let api = Api::new(&broker);
    let ann = api.with_token(&api.login("ann", "pw-ann").await);
    ann.put("/api/data/shared/x", json!({"v": 1})).await.ok();
    ann.get("/api/data/shared/x").await.ok();
    ann.get("/api/data/shared/*").await.ok();
    let spent = ann.get("/api/data/shared/x").await;
    let error = spent.error(401);
    assert!(
        error["message"].as_str().unwrap().contains("usage limit"),
        "{error}"
    );
    broker.broker.shutdown().await;
}

/// The value of the sample `name` (with its labels) in Prometheus text.
fn sample(metrics: &str, name: &str) -> u64 {
    let prefix = format!("{name} ");
    let line = (metrics.lines())
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{metrics}"));
    line[prefix.len()..].parse().expect("an integer sample")
}

#[tokio::test]
async fn health_metrics_and_the_openapi_document() {
    let broker = start().await;
    let api = Api::new(&broker);

    let health = api.get("/health").await;
    let health = health.ok();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"], "ok");

    // Traffic from every protocol: MQTT subscribes and publishes, native and REST write.
    let (mqtt, eventloop) = broker.mqtt_v4("metrics-sub");
    let mut events = spawn_v4(eventloop);
    mqtt.subscribe("m/#", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    expect_v4(&mut events, v4_suback).await;
    mqtt.publish("m/a", rumqttc::QoS::AtLeastOnce, false, "1")
        .await
        .unwrap();
    let mut native = broker.native().await;
    native.set("/m/b", json!({"n": 2})).await;
    api.put("/api/data/m/c", json!({"n": 3})).await.ok();
    let mut topics = Vec::new();
    while topics.len() < 3 {
        topics.push(expect_v4(&mut events, v4_publish).await.topic);
    }
    topics.sort();
    assert_eq!(topics, ["m/a", "m/b", "m/c"]);

    let metrics = reqwest::get(format!("{}/metrics", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let of = |name: &str, protocol: &str| {
        sample(&metrics, &format!("{name}{{protocol=\"{protocol}\"}}"))
    };
    assert_eq!(of("pathmq_protocol_sessions", "mqtt"), 1);
    assert_eq!(of("pathmq_protocol_sessions", "native"), 1);
    assert_eq!(
        of("pathmq_protocol_sessions", "http"),
        0,
        "REST sessions end with their request"
    );
    assert!(
        of("pathmq_requests_total", "mqtt") >= 2,
        "SUBSCRIBE and PUBLISH"
    );
    assert_eq!(of("pathmq_messages_received_total", "mqtt"), 1);
    assert_eq!(of("pathmq_messages_received_total", "native"), 1);
    assert_eq!(of("pathmq_messages_received_total", "http"), 1);
    assert_eq!(of("pathmq_requests_total", "http"), 1);
    assert_eq!(of("pathmq_messages_delivered_total", "mqtt"), 3);
    assert_eq!(of("pathmq_messages_delivered_total", "native"), 0);
    for protocol in ["local", "other"] {
        assert_eq!(of("pathmq_requests_total", protocol), 0);
    }
    assert!(sample(&metrics, "pathmq_connections_accepted_total") >= 3);
    assert!(sample(&metrics, "pathmq_received_bytes_total") > 0);
    assert!(sample(&metrics, "pathmq_sent_bytes_total") > 0);
    assert_eq!(sample(&metrics, "pathmq_dropped_total"), 0);
    // The native set and the REST PUT were stored (the MQTT publish was not retained).
    assert!(
        metrics.contains("# TYPE pathmq_store_write_seconds histogram\n"),
        "{metrics}"
    );
    let writes = sample(&metrics, "pathmq_store_write_seconds_count");
    assert!(writes >= 2, "{metrics}");
    assert_eq!(
        sample(&metrics, "pathmq_store_write_seconds_bucket{le=\"+Inf\"}"),
        writes
    );
    assert!(
        metrics.contains("\npathmq_store_write_seconds_sum "),
        "{metrics}"
    );

    let document = api.get("/api/openapi.json").await;
    let document = document.ok();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/data/{path}", "get"),
        ("/api/data/{path}", "put"),
        ("/api/data/{path}", "patch"),
        ("/api/data/{path}", "delete"),
        ("/api/openapi.json", "get"),
        ("/health", "get"),
        ("/version", "get"),
        ("/metrics", "get"),
        ("/auth/login", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    mqtt.disconnect().await.ok();
    broker.broker.shutdown().await;
}
