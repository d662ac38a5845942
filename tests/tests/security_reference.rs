//! Every example of the reference's security sections (`reference/happn-3.md` SECURITY
//! SERVER through UNCONFIGURED SESSION CLEANUP; DESIGN.md §7; docs/SECURITY.md) as a test,
//! named after the example, doing what it does with pathmq's equivalents: the directory
//! API (`core().security().directory()`) for the reference's `services.security` calls,
//! the Rust native client for `happn.client.create`, `[security]` config keys for the
//! service options.
//!
//! Where pathmq deliberately differs, the test asserts pathmq's behaviour and says so,
//! citing docs/SECURITY.md (or the module that documents it). WEB PATH LEVEL SECURITY and
//! the bearer token are tested in `security_http.rs`, the auth providers in
//! `security_providers.rs`.
//!
//! | module | sections |
//! |---|---|
//! | `server` | SECURITY SERVER, SECURITY CLIENT, SECURITY OPTIONS, UNCONFIGURED SESSION CLEANUP |
//! | `users_groups` | SECURITY USERS AND GROUPS (add a group … remove a permission by upserting a group) |
//! | `permissions` | ANONYMOUS USER, USER PERMISSIONS, VOLATILE PERMISSIONS |
//! | `nested` | NESTED PERMISSIONS FOR GET AND SET |
//! | `templated` | TEMPLATED PERMISSIONS |
//! | `profiles` | SECURITY PROFILES |

mod support;

#[path = "security_reference/nested.rs"]
mod nested;
#[path = "security_reference/permissions.rs"]
mod permissions;
#[path = "security_reference/profiles.rs"]
mod profiles;
#[path = "security_reference/server.rs"]
mod server;
#[path = "security_reference/templated.rs"]
mod templated;
#[path = "security_reference/users_groups.rs"]
mod users_groups;

use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use pathmq::config::Config;
use pathmq::core::security::{Directory, PermissionEntry, Right, UserInput};
use pathmq::native::client::{Client, ClientConfig, ClientError, ReconnectPolicy};
use serde_json::{Map, Value, json};
use support::{TestBroker, WAIT, start_with};
use tokio_tungstenite::tungstenite::Message;

/// `_ADMIN`'s password, as in the reference's examples (`adminUser:{password:'testPWD'}`).
const ADMIN_PASSWORD: &str = "testPWD";

/// A secure broker's config on loopback: memory store, bcrypt cost 4, no lockout (tests
/// try wrong passwords; lockout has its own tests).
fn secure_config() -> Config {
    support::secure_config(ADMIN_PASSWORD)
}

/// `happn.service.create({secure:true, adminUser:{password:'testPWD'}})`.
async fn secure_broker() -> TestBroker {
    start_with(secure_config()).await
}

/// The broker's security directory (the reference's `services.security`).
fn directory(broker: &TestBroker) -> &Directory {
    broker
        .broker
        .core()
        .security()
        .expect("a secure broker")
        .directory()
}

/// `{actions: rights}`.
fn allow(rights: &[Right]) -> PermissionEntry {
    PermissionEntry {
        actions: rights.iter().copied().collect(),
        ..PermissionEntry::default()
    }
}

/// A JSON object literal as a `custom_data` map.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Creates (or updates) a user with a password and custom data.
async fn add_user(broker: &TestBroker, username: &str, password: &str, custom_data: Value) {
    directory(broker)
        .upsert_user(UserInput {
            username: username.into(),
            password: Some(password.into()),
            custom_data: object(custom_data),
            ..UserInput::default()
        })
        .await
        .unwrap_or_else(|e| panic!("upsert user {username}: {e}"));
}

/// The WebSocket URL of the broker's native protocol.
fn url(broker: &TestBroker) -> String {
    format!("ws://{}/", broker.http)
}

/// `happn.client.create({username, password, secure:true})`: a logged-in Rust client that
/// does not reconnect (a session a policy ends stays ended).
async fn login(broker: &TestBroker, username: &str, password: &str) -> Client {
    let mut config = ClientConfig::websocket(url(broker)).credentials(username, password);
    config.reconnect = ReconnectPolicy::disabled();
    config.connect_timeout = WAIT;
    config.request_timeout = WAIT;
    Client::connect(config)
        .await
        .unwrap_or_else(|e| panic!("{username} logs in: {e:?}"))
}

/// Why a login was refused: the broker's `(code, name, message)`.
async fn refused_login(
    broker: &TestBroker,
    username: &str,
    password: &str,
) -> (u16, String, String) {
    let mut config = ClientConfig::websocket(url(broker)).credentials(username, password);
    config.reconnect = ReconnectPolicy::disabled();
    config.connect_timeout = WAIT;
    let error = match Client::connect(config).await {
        Ok(_) => panic!("{username} logged in"),
        Err(error) => error,
    };
    let ClientError::Connect { source, .. } = &error else {
        panic!("not a refused login: {error:?}");
    };
    match source.downcast_ref::<ClientError>() {
        Some(ClientError::Server {
            code,
            name,
            message,
            ..
        }) => (*code, name.clone(), message.clone()),
        _ => panic!("not a refusal by the broker: {error:?}"),
    }
}

/// The wire code of a refused call, `None` when it succeeded (or failed otherwise).
fn code<T>(result: Result<T, ClientError>) -> Option<u16> {
    result.err().and_then(|e| e.code())
}

/// Runs `attempt` until it answers true, pausing between tries, bounded by [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let tried = tokio::time::timeout(WAIT, async {
        while !attempt().await {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    assert!(tried.is_ok(), "timed out waiting until {what}");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The native protocol by hand, for what the Rust client does not send: a login without a
/// password (`_ANONYMOUS`), a login with a token, the login answer (`token`, `policy`),
/// and a socket that never logs in.
struct Wire {
    ws: Socket,
    next_id: u64,
}

/// What one frame says, or how the connection ended.
#[derive(Debug)]
enum Heard {
    Frame(Value),
    Closed,
}

impl Wire {
    /// Opens a WebSocket to the broker; nothing is sent.
    async fn open(broker: &TestBroker) -> Wire {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url(broker)))
            .await
            .expect("websocket connect in time")
            .expect("websocket connects");
        Wire { ws, next_id: 0 }
    }

    /// Opens a WebSocket and sends `configure-session`.
    async fn configured(broker: &TestBroker) -> Wire {
        let mut wire = Wire::open(broker).await;
        wire.request("configure-session", None, json!({"protocol": "happn_4"}))
            .await
            .expect("configure-session");
        wire
    }

    /// Opens, configures and logs in with `login` (`{username, password}`, `{token}`…):
    /// the wire and the login answer's data, or the error.
    async fn login(broker: &TestBroker, login: Value) -> (Wire, Result<Value, Value>) {
        let mut wire = Wire::configured(broker).await;
        let answer = wire.request("login", None, login).await;
        (wire, answer)
    }

    /// Sends a request: its answer's `data`, or its `_meta.error`.
    async fn request(
        &mut self,
        action: &str,
        path: Option<&str>,
        data: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut frame = json!({"action": action, "eventId": id, "data": data});
        if let Some(path) = path {
            frame["path"] = json!(path);
        }
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("send");
        loop {
            let Heard::Frame(frame) = self.hear().await else {
                return Err(json!({"closed": true}));
            };
            let meta = match &frame {
                Value::Array(items) => items.last().cloned().unwrap_or_default(),
                other => other["_meta"].clone(),
            };
            if meta["type"] == "response" && meta["eventId"] == json!(id) {
                return match meta["status"] == "error" {
                    true => Err(meta["error"].clone()),
                    false => Ok(match frame {
                        Value::Array(mut items) => {
                            items.pop();
                            Value::Array(items)
                        }
                        other => other["data"].clone(),
                    }),
                };
            }
        }
    }

    /// The next frame (answering heartbeats), or the end of the connection; bounded by
    /// [`WAIT`].
    async fn hear(&mut self) -> Heard {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            let text = match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Heard::Closed,
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
            };
            let value: Value = serde_json::from_str(&text).expect("frames are JSON");
            if let Some(ping) = value
                .as_str()
                .and_then(|s| s.strip_prefix("primus::ping::"))
            {
                let pong = json!(format!("primus::pong::{ping}")).to_string();
                let _ = self.ws.send(Message::text(pong)).await;
                continue;
            }
            return Heard::Frame(value);
        }
    }

    /// Waits (bounded by [`WAIT`]) for the broker to end the connection: the
    /// `server-side-disconnect` reason it gave, if any, then the close.
    async fn ended(&mut self) -> Option<String> {
        let mut reason = None;
        loop {
            match self.hear().await {
                Heard::Closed => return reason,
                Heard::Frame(frame) if frame["eventKey"] == "server-side-disconnect" => {
                    reason = frame["data"]["reason"].as_str().map(str::to_owned);
                }
                Heard::Frame(_) => {}
            }
        }
    }
}
