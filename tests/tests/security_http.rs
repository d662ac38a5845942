//! Security over HTTP end to end (DESIGN.md §7; reference: WEB PATH LEVEL SECURITY, USING A
//! BEARER TOKEN AUTHORIZATION HEADER, BROWSER CLIENT AND COOKIES): `/auth/login` and
//! `/auth/logout` ([`login`]), routes the embedding program adds guarded by `@HTTP`
//! permissions ([`routes`]), and the tokens of every protocol: HTTP tokens log in over the
//! native protocol and MQTT, forged, expired and revoked ones are refused by all three
//! ([`tokens`]).
//!
//! Requests are raw HTTP/1.1 over a `TcpStream` (as `tests/http.rs`), so what is checked is
//! what is on the wire.

mod support;

#[path = "security_http/login.rs"]
mod login;
#[path = "security_http/routes.rs"]
mod routes;
#[path = "security_http/tokens.rs"]
mod tokens;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use pathmq::config::Config;
use pathmq::core::security::{Group, PermissionEntry, Permissions, Right, UserInput};
use pathmq::core::transport::HttpContext;
use serde_json::{Value, json};
use support::{TestBroker, WAIT, start_builder};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// `_ADMIN`'s password in these tests.
const ADMIN_PASSWORD: &str = "admin-secret-http";

/// The token signing secret of these brokers (so a test can sign an expired token).
const TOKEN_SECRET: &str = "a-token-secret-of-at-least-32-bytes!";

/// The config of a secure broker on loopback with a known token secret.
fn secure_config() -> Config {
    let mut config = support::secure_config(ADMIN_PASSWORD);
    config.security.lockout_attempts = 4; // the lockout tests here need it on
    config.security.token_secret = Some(TOKEN_SECRET.into());
    config
}

/// The handler of every test route: who asked for which path.
async fn whoami(_request: Request<Incoming>, context: HttpContext) -> Response<Full<Bytes>> {
    let user = context.identity.as_ref().map(|i| i.username.clone());
    let body = json!({"secure": "value", "user": user, "path": context.path});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

/// A secure broker from `config` with the routes `/secure/route` and
/// `/secure/another/route` and these users (passwords `pw-<name>`):
///
/// * `ann` in `TEST GROUP`, the reference's example: `get` on `/@HTTP/secure/route/*`,
///   `put` and `post` on `/@HTTP/secure/another/route/test`; and `get` on data `/data/*`.
/// * `bob`, in no group: no permission at all.
async fn secure_broker_with(config: Config) -> TestBroker {
    let builder = pathmq::Broker::builder()
        .config(config)
        .http_route("/secure/route", whoami)
        .http_route("/secure/another/route", whoami);
    let broker = start_builder(builder).await;
    let directory = broker.broker.core().security().expect("secure").directory();
    let entry = |rights: &[Right]| PermissionEntry {
        actions: rights.iter().copied().collect(),
        ..PermissionEntry::default()
    };
    directory
        .upsert_group(Group {
            name: "TEST GROUP".into(),
            permissions: Permissions::from([
                ("/@HTTP/secure/route/*".into(), entry(&[Right::Get])),
                (
                    "/@HTTP/secure/another/route/test".into(),
                    entry(&[Right::Put, Right::Post]),
                ),
                ("/data/*".into(), entry(&[Right::Get])),
            ]),
            ..Group::default()
        })
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
    directory.link_group("ann", "TEST GROUP").await.unwrap();
    broker
}

async fn secure_broker() -> TestBroker {
    secure_broker_with(secure_config()).await
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// The `error` of a JSON refusal, checked to carry `code` as the status does.
    fn error(&self, code: u16) -> Value {
        assert_eq!(self.status, code, "{self:?}");
        let body = self.json();
        assert_eq!(body["data"], Value::Null, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        body["error"].clone()
    }
}

/// One HTTP/1.1 request with `headers` and an optional body, bounded by [`WAIT`].
async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut text =
        format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut raw))
        .await
        .expect("the response comes")
        .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status: status.parse().unwrap(),
        headers,
        body: body.to_owned(),
    }
}

/// `POST /auth/login` with a JSON body.
async fn login_json(broker: &TestBroker, body: Value) -> Reply {
    let headers = [("Content-Type", "application/json")];
    request(
        broker.http,
        "POST",
        "/auth/login",
        &headers,
        &body.to_string(),
    )
    .await
}

/// The token of a successful login of `username` with `password`.
async fn token_of(broker: &TestBroker, username: &str, password: &str) -> String {
    let reply = login_json(broker, json!({"username": username, "password": password})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["data"].as_str().expect("a token").to_owned()
}

/// `GET` (or another method) of `target` with `Authorization: Bearer <token>`.
async fn with_bearer(broker: &TestBroker, method: &str, target: &str, token: &str) -> Reply {
    let bearer = format!("Bearer {token}");
    request(
        broker.http,
        method,
        target,
        &[("Authorization", &bearer)],
        "",
    )
    .await
}
