//! Establishing a connection ([`Driver::establish`]): the socket, the happn-3 handshake
//! (`configure-session`, `login`; `reference/happn-3-wire.md` §2), then `on` again for
//! every live listener, as the happn-3 client re-attaches its listeners after a
//! reconnect. Requests are pipelined and their answers collected while heartbeats,
//! events and system frames are handled as usual.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Conn, Driver, Encoded, End, OUT_QUEUE, Pending, WriterTask};
use crate::client::ClientError;
use crate::client::error::BoxError;
use crate::client::link;
use crate::client::options::channel;
use crate::client::wire::{self, PROTOCOL};

impl Driver {
    /// Opens a connection and logs in (`configure-session`, `login`), then subscribes
    /// every live listener again.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the connection cannot be opened in time; the
    /// handshake's own error ([`ClientError::Server`], [`ClientError::Timeout`], …)
    /// otherwise. Nothing is left open.
    pub(crate) async fn establish(&mut self) -> Result<Conn, ClientError> {
        let shared = self.shared.clone();
        let config = &shared.config;
        let connect_error = |source: BoxError| ClientError::Connect {
            endpoint: config.endpoint.to_string(),
            source,
        };
        let deadline = Instant::now() + config.connect_timeout;
        let opened =
            tokio::time::timeout_at(deadline, link::open(&config.endpoint, config.max_frame))
                .await
                .map_err(|_| {
                    connect_error(
                        format!(
                            "no connection within {} ms",
                            config.connect_timeout.as_millis()
                        )
                        .into(),
                    )
                })?;
        let (reader, writer) = opened.map_err(|error| connect_error(error.into()))?;
        let (out, frames) = mpsc::channel(OUT_QUEUE);
        let mut conn = Conn {
            reader,
            out,
            writer: WriterTask(link::spawn_writer(writer, frames)),
            last_heard: Instant::now(),
        };

        let configure =
            json!({ "protocol": PROTOCOL, "version": env!("CARGO_PKG_VERSION"), "browser": false });
        let mut login = Map::new();
        // A token, when there is one: the configured one, or after a token login the one
        // the broker answered last (a rolling token replaces the one used).
        let token = match &config.token {
            Some(_) if shared.token_usable() => shared.token().or_else(|| config.token.clone()),
            _ => None,
        };
        if let Some(token) = token {
            login.insert("token".into(), token.into());
        } else if let Some(credentials) = &config.credentials {
            login.insert("username".into(), credentials.username.as_str().into());
            login.insert("password".into(), credentials.password.as_str().into());
        }
        login.insert("info".into(), Value::Object(config.info.clone()));
        login.insert("protocol".into(), PROTOCOL.into());
        let none = Map::new();
        let requests = vec![
            shared.encode("configure-session", None, Some(&configure), &none)?,
            shared.encode("login", None, Some(&login), &none)?,
        ];
        let mut answers = self
            .exchange(&mut conn, requests, deadline, config.connect_timeout)
            .await?
            .into_iter();
        wire::check("configure-session", answers.next().unwrap_or_default())?;
        let login = wire::check("login", answers.next().unwrap_or_default())?;
        let token = (login.pointer("/data/token").and_then(Value::as_str)).map(str::to_owned);
        let session_id = wire::session_id(login)?;
        shared.set_token(token);
        self.resubscribe(&mut conn).await?;
        *shared
            .session_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(session_id);
        Ok(conn)
    }

    /// Subscribes every live listener again (after a reconnect: the broker forgot them
    /// with the old session), pipelined. A listener the broker refuses now ends, logged.
    async fn resubscribe(&mut self, conn: &mut Conn) -> Result<(), ClientError> {
        let listeners = self.shared.hub.snapshot();
        if listeners.is_empty() {
            return Ok(());
        }
        let mut requests = Vec::with_capacity(listeners.len());
        for (_, path, options) in &listeners {
            let channel = channel(path, options.event_type);
            let options = wire::on_options(options, false);
            requests.push(
                self.shared
                    .encode::<Value>("on", Some(&channel), None, &options)?,
            );
        }
        let timeout = self.shared.config.request_timeout;
        let answers = self
            .exchange(conn, requests, Instant::now() + timeout, timeout)
            .await?;
        for ((id, path, options), answer) in listeners.into_iter().zip(answers) {
            let channel = channel(&path, options.event_type);
            match wire::check("on", answer).and_then(wire::subscribed) {
                Ok((server_id, _)) => self.shared.hub.set_server_id(id, &channel, server_id),
                Err(error) => {
                    tracing::warn!(listener = %id, %channel, %error, "could not subscribe a listener again; it ends");
                    self.shared.hub.remove(id);
                }
            }
        }
        Ok(())
    }

    /// Sends `requests` and reads until each is answered (handling heartbeats, events and
    /// system frames meanwhile), by `deadline`. The answers come in request order.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] at the deadline (`limit` is what it reports);
    /// [`ClientError::ConnectionLost`] when the connection drops.
    async fn exchange(
        &mut self,
        conn: &mut Conn,
        requests: Vec<Encoded>,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Vec<Value>, ClientError> {
        let Some(action) = requests.first().map(|r| r.action) else {
            return Ok(Vec::new());
        };
        let ids: Vec<u64> = requests.iter().map(|r| r.id).collect();
        let mut answers = HashMap::with_capacity(ids.len());
        let result = self
            .collect(conn, requests, deadline, &mut answers)
            .await
            .map_err(|end| match end {
                Some(_) => ClientError::ConnectionLost { action },
                None => ClientError::Timeout {
                    action,
                    timeout: limit,
                },
            });
        for id in &ids {
            self.pending.remove(id);
        }
        result?;
        Ok(ids
            .iter()
            .map(|id| answers.remove(id).unwrap_or_default())
            .collect())
    }

    /// The loop of [`Driver::exchange`]: `Err(None)` at the deadline, `Err(Some(end))`
    /// when the connection is gone.
    async fn collect(
        &mut self,
        conn: &mut Conn,
        requests: Vec<Encoded>,
        deadline: Instant,
        answers: &mut HashMap<u64, Value>,
    ) -> Result<(), Option<End>> {
        let expected = requests.len();
        for request in requests {
            self.pending.insert(request.id, Pending::Collect);
            conn.send(request.frame).await.map_err(Some)?;
        }
        while answers.len() < expected {
            let frame = tokio::select! {
                frame = conn.reader.next() => frame,
                () = tokio::time::sleep_until(deadline) => return Err(None),
            };
            let bytes = match frame {
                None => return Err(Some(End::Lost("closed by the broker".into()))),
                Some(Err(error)) => return Err(Some(End::Lost(error.to_string()))),
                Some(Ok(bytes)) => bytes,
            };
            if let Some((id, answer)) = self.dispatch(conn, &bytes).await.map_err(Some)? {
                answers.insert(id, answer);
            }
        }
        Ok(())
    }
}
