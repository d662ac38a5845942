//! A native-protocol client over a raw WebSocket (docs/PROTOCOL.md): the Rust client
//! neither shows the `login` answer (`token`, `user`, `policy`) nor logs in with a token.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::common::password;
use crate::support::{TestBroker, WAIT};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A native-protocol client over a raw WebSocket (docs/PROTOCOL.md), for the parts the
/// Rust client hides: the `login` answer (`token`, `user`, `policy`), token logins,
/// `revoke-token`, and the `server-side-disconnect` frame.
pub(crate) struct Ws {
    ws: Socket,
    next_id: u64,
    /// Frames that arrived while waiting for an answer (events, system frames).
    pending: VecDeque<Value>,
}

impl Ws {
    /// Connects and sends `configure-session` (no login yet).
    pub(crate) async fn open(broker: &TestBroker) -> Ws {
        let url = format!("ws://{}/", broker.http);
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket connect timed out")
            .expect("websocket connects");
        let mut ws = Ws {
            ws,
            next_id: 0,
            pending: VecDeque::new(),
        };
        ws.request("configure-session", None, json!({"protocol": "happn_4"}))
            .await
            .expect("configure-session");
        ws
    }

    /// `login` with `data`: the answer's `data` (session, `user`, `token`, `policy`), or
    /// the error (`{name, code, message}`).
    pub(crate) async fn login(&mut self, data: Value) -> Result<Value, Value> {
        self.request("login", None, data)
            .await
            .map(|frame| frame["data"].clone())
    }

    /// Sends a request and answers the whole response frame, or its `_meta.error`.
    pub(crate) async fn request(
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
        self.send(&frame.to_string()).await;
        loop {
            let frame = self
                .next_frame()
                .await
                .unwrap_or_else(|| panic!("the connection closed before the answer to {action}"));
            let meta = match &frame {
                Value::Array(items) => items.last().cloned().unwrap_or_default(),
                other => other["_meta"].clone(),
            };
            if meta["type"] == "response" && meta["eventId"] == json!(id) {
                return match meta["status"] == "error" {
                    true => Err(meta["error"].clone()),
                    false => Ok(frame),
                };
            }
            self.pending.push_back(frame);
        }
    }

    /// `set` `data` at `path`.
    pub(crate) async fn set(&mut self, path: &str, data: Value) -> Result<Value, Value> {
        self.request("set", Some(path), data).await
    }

    /// `get` `path`.
    pub(crate) async fn get(&mut self, path: &str) -> Result<Value, Value> {
        self.request("get", Some(path), Value::Null).await
    }

    /// Waits, at most `within`, for the `server-side-disconnect` frame; answers its
    /// reason, after checking that the server then closes the connection.
    pub(crate) async fn server_disconnect(&mut self, within: Duration) -> String {
        let reason = tokio::time::timeout(within, async {
            loop {
                let frame = match self.pending.pop_front() {
                    Some(frame) => frame,
                    None => self
                        .next_frame()
                        .await
                        .expect("closed without a server-side-disconnect"),
                };
                if frame["_meta"]["type"] == "system"
                    && frame["eventKey"] == "server-side-disconnect"
                {
                    return frame["data"]["reason"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no server-side-disconnect within {within:?}"));
        self.closed().await;
        reason
    }

    /// Waits (bounded by [`WAIT`]) until the server closes the connection.
    pub(crate) async fn closed(&mut self) {
        let closed =
            tokio::time::timeout(WAIT, async { while self.next_frame().await.is_some() {} }).await;
        assert!(closed.is_ok(), "the server did not close the connection");
    }

    async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next JSON frame (heartbeats answered), `None` once the connection is closed;
    /// bounded by [`WAIT`].
    async fn next_frame(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => continue,
            };
            let value: Value = serde_json::from_str(&text).expect("frames are JSON");
            if let Some(ping) = value
                .as_str()
                .and_then(|s| s.strip_prefix("primus::ping::"))
            {
                let pong = json!(format!("primus::pong::{ping}")).to_string();
                self.send(&pong).await;
                continue;
            }
            return Some(value);
        }
    }
}

/// A native connection logged in with `user`'s password, and the login answer.
pub(crate) async fn native_login(broker: &TestBroker, user: &str) -> (Ws, Value) {
    let mut ws = Ws::open(broker).await;
    let answer = ws
        .login(json!({"username": user, "password": password(user)}))
        .await
        .unwrap_or_else(|e| panic!("{user} is refused: {e}"));
    (ws, answer)
}

/// A native login with `data` on a new connection: the connection and the answer, or
/// the error.
pub(crate) async fn native_try(broker: &TestBroker, data: Value) -> Result<(Ws, Value), Value> {
    let mut ws = Ws::open(broker).await;
    ws.login(data).await.map(|answer| (ws, answer))
}

/// The token of a login answer.
pub(crate) fn token_of(answer: &Value) -> String {
    let token = answer["token"].as_str().expect("the login answers a token");
    assert!(
        token.starts_with("eyJ") && token.split('.').count() == 3,
        "not a JWT: {token}"
    );
    token.to_owned()
}

/// Asserts that a native error is `code` `AccessDenied` and its message holds `part`.
#[track_caller]
pub(crate) fn assert_denied(error: &Value, code: u16, part: &str) {
    assert_eq!(error["code"], code, "{error}");
    assert_eq!(error["name"], "AccessDenied", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains(&part.to_lowercase()),
        "`{message}` does not say `{part}`"
    );
}
