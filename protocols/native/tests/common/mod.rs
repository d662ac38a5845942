//! The shared test helper (STYLE 28): a broker on `127.0.0.1:0` serving the native
//! protocol over WebSocket (`/`, `/primus`) and length-prefixed TCP, and a raw client
//! that speaks it over either transport.
//!
//! No sleeps: every wait is for a frame, under [`WAIT`].

#![allow(dead_code)] // Each test file uses a different part of the helper.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use pathmq_core::transport::{self, Limits, WebSocketRoute};
use pathmq_core::{Core, Protocol, Store};
use pathmq_native::{Native, NativeConfig, WEBSOCKET_PATHS};
use pathmq_storage::MemoryStore;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// How long any single wait may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// A running broker. Dropping it shuts the core down.
pub(crate) struct Broker {
    pub(crate) core: Core,
    /// The HTTP/WebSocket listener.
    pub(crate) http: SocketAddr,
    /// The length-prefixed TCP listener.
    pub(crate) tcp: SocketAddr,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.core.begin_shutdown();
    }
}

/// Starts a broker with the default native settings.
pub(crate) async fn start() -> Result<Broker> {
    start_with(NativeConfig::default()).await
}

/// Starts a broker with `config`.
pub(crate) async fn start_with(config: NativeConfig) -> Result<Broker> {
    start_on(Arc::new(MemoryStore::new()), config).await
}

/// Starts a broker over `store` with `config`.
pub(crate) async fn start_on(store: Arc<dyn Store>, config: NativeConfig) -> Result<Broker> {
    start_core(store, pathmq_core::CoreConfig::default(), config).await
}

/// Starts a broker over `store` with the core's `core_config` and `config`.
pub(crate) async fn start_core(
    store: Arc<dyn Store>,
    core_config: pathmq_core::CoreConfig,
    config: NativeConfig,
) -> Result<Broker> {
    let core = Core::builder_arc(store).config(core_config).build();
    let native: Arc<dyn Protocol> = Arc::new(Native::new(config));
    let routes = WEBSOCKET_PATHS
        .iter()
        .map(|path| WebSocketRoute {
            path: (*path).to_owned(),
            subprotocol: None,
            protocol: native.clone(),
        })
        .collect();
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let (http_addr, tcp_addr) = (http.local_addr()?, tcp.local_addr()?);
    tokio::spawn(transport::run_http(
        http,
        routes,
        core.clone(),
        Limits::default(),
    ));
    tokio::spawn(transport::run_tcp(
        tcp,
        native,
        core.clone(),
        Limits::default(),
    ));
    Ok(Broker {
        core,
        http: http_addr,
        tcp: tcp_addr,
    })
}

enum Conn {
    Ws(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
    Tcp(Framed<TcpStream, LengthDelimitedCodec>),
}

/// A raw native client. Frames that arrive while it waits for a response (events,
/// heartbeats) are kept, in order, for [`Client::next`].
pub(crate) struct Client {
    conn: Conn,
    next_id: u64,
    pending: VecDeque<Value>,
}

impl Client {
    /// Connects over WebSocket to `path` (e.g. `/primus?_primuscb=x`).
    pub(crate) async fn ws(broker: &Broker, path: &str) -> Result<Self> {
        let url = format!("ws://{}{path}", broker.http);
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .context("websocket connect timed out")??;
        Ok(Self::over(Conn::Ws(Box::new(ws))))
    }

    /// Connects over length-prefixed TCP.
    pub(crate) async fn tcp(broker: &Broker) -> Result<Self> {
        let stream = TcpStream::connect(broker.tcp).await?;
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .big_endian()
            .new_codec();
        Ok(Self::over(Conn::Tcp(Framed::new(stream, codec))))
    }

    fn over(conn: Conn) -> Self {
        Self {
            conn,
            next_id: 0,
            pending: VecDeque::new(),
        }
    }

    /// Sends one frame as it is.
    pub(crate) async fn send_raw(&mut self, text: &str) -> Result<()> {
        match &mut self.conn {
            Conn::Ws(ws) => ws.send(Message::text(text)).await?,
            Conn::Tcp(framed) => framed.send(Bytes::copy_from_slice(text.as_bytes())).await?,
        }
        Ok(())
    }

    /// The next frame off the wire; `None` once the server closed. Fails after [`WAIT`].
    pub(crate) async fn read(&mut self) -> Result<Option<Value>> {
        let read = async {
            loop {
                let bytes: Bytes = match &mut self.conn {
                    Conn::Ws(ws) => match ws.next().await {
                        None | Some(Ok(Message::Close(_))) => return Ok(None),
                        Some(Ok(Message::Text(text))) => text.into(),
                        Some(Ok(Message::Binary(bytes))) => bytes,
                        Some(Ok(_)) => continue,
                        // A reset after the server closed counts as closed.
                        Some(Err(_)) => return Ok(None),
                    },
                    Conn::Tcp(framed) => match framed.next().await {
                        None | Some(Err(_)) => return Ok(None),
                        Some(Ok(bytes)) => bytes.freeze(),
                    },
                };
                return Ok(Some(serde_json::from_slice(&bytes)?));
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .context("no frame from the server in time")?
    }

    /// The next frame that is not a response: a kept one first, then off the wire.
    pub(crate) async fn next(&mut self) -> Result<Value> {
        if let Some(frame) = self.pending.pop_front() {
            return Ok(frame);
        }
        self.read().await?.context("server closed the connection")
    }

    /// The next event frame (`_meta.type == "data"`), skipping heartbeats.
    pub(crate) async fn event(&mut self) -> Result<Value> {
        loop {
            let frame = self.next().await?;
            if frame["_meta"]["type"] == "data" {
                return Ok(frame);
            }
            if !frame.is_string() {
                bail!("expected an event, got {frame}");
            }
        }
    }

    /// Sends a request with a fresh `eventId`; returns the id.
    pub(crate) async fn send(
        &mut self,
        action: &str,
        path: Option<&str>,
        data: Value,
        options: Value,
    ) -> Result<u64> {
        self.next_id += 1;
        let mut request = json!({ "action": action, "eventId": self.next_id, "data": data });
        if let Some(path) = path {
            request["path"] = path.into();
        }
        if !options.is_null() {
            request["options"] = options;
        }
        self.send_raw(&request.to_string()).await?;
        Ok(self.next_id)
    }

    /// Sends requests `(action, path, data)` back to back with one flush, as a pipelining
    /// client does; returns their `eventId`s.
    pub(crate) async fn send_burst(
        &mut self,
        requests: impl IntoIterator<Item = (&str, Option<String>, Value)>,
    ) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for (action, path, data) in requests {
            self.next_id += 1;
            let mut request = json!({ "action": action, "eventId": self.next_id, "data": data });
            if let Some(path) = path {
                request["path"] = path.into();
            }
            let text = request.to_string();
            match &mut self.conn {
                Conn::Ws(ws) => ws.feed(Message::text(text)).await?,
                Conn::Tcp(framed) => framed.feed(Bytes::from(text)).await?,
            }
            ids.push(self.next_id);
        }
        match &mut self.conn {
            Conn::Ws(ws) => ws.flush().await?,
            Conn::Tcp(framed) => futures_util::SinkExt::<Bytes>::flush(framed).await?,
        }
        Ok(ids)
    }

    /// Waits for the response to `event_id` (object or array form), keeping other frames.
    pub(crate) async fn response(&mut self, event_id: u64) -> Result<Value> {
        loop {
            let frame = self.read().await?.context("server closed the connection")?;
            if response_id(&frame) == Some(event_id) {
                return Ok(frame);
            }
            self.pending.push_back(frame);
        }
    }

    /// Sends a request and waits for its response.
    pub(crate) async fn call(
        &mut self,
        action: &str,
        path: Option<&str>,
        data: Value,
        options: Value,
    ) -> Result<Value> {
        let id = self.send(action, path, data, options).await?;
        self.response(id).await
    }

    /// `call` that must succeed; returns the whole response.
    pub(crate) async fn ok(
        &mut self,
        action: &str,
        path: Option<&str>,
        data: Value,
        options: Value,
    ) -> Result<Value> {
        let response = self.call(action, path, data, options).await?;
        let meta = meta_of(&response);
        if meta["status"] != "ok" {
            bail!("{action} {path:?} failed: {response}");
        }
        Ok(response)
    }

    /// The usual happn-3 handshake; returns the login answer's session data.
    pub(crate) async fn handshake(&mut self) -> Result<Value> {
        self.ok(
            "configure-session",
            None,
            json!({"protocol": "happn_4", "version": "test", "browser": false}),
            Value::Null,
        )
        .await?;
        self.ok("describe", None, Value::Null, Value::Null).await?;
        let login = self
            .ok("login", None, json!({"info": {"test": true}}), Value::Null)
            .await?;
        Ok(login["data"].clone())
    }

    /// Subscribes; returns the subscription id.
    pub(crate) async fn on(&mut self, channel: &str, options: Value) -> Result<u64> {
        let response = self.ok("on", Some(channel), Value::Null, options).await?;
        response["data"]["id"]
            .as_u64()
            .with_context(|| format!("no id in {response}"))
    }

    /// Sets `data` at `path`; returns the response.
    pub(crate) async fn set(&mut self, path: &str, data: Value) -> Result<Value> {
        self.ok("set", Some(path), data, Value::Null).await
    }
}

/// The `_meta` of a response, in object or array form.
pub(crate) fn meta_of(response: &Value) -> &Value {
    match response {
        Value::Array(items) => items.last().unwrap_or(&Value::Null),
        other => &other["_meta"],
    }
}

fn response_id(frame: &Value) -> Option<u64> {
    let meta = meta_of(frame);
    let is_response = meta["type"] == "response";
    is_response.then(|| meta["eventId"].as_u64()).flatten()
}

/// A broker with two handshaken WebSocket clients: a listener and a writer, and the
/// writer's session id (events name it as their origin).
pub(crate) async fn pair() -> Result<(Broker, Client, Client, String)> {
    let broker = start().await?;
    let mut listener = Client::ws(&broker, "/primus").await?;
    let mut writer = Client::ws(&broker, "/primus").await?;
    listener.handshake().await?;
    let writer_session = writer.handshake().await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((broker, listener, writer, writer_session))
}
