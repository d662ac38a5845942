//! The native session state machine: one per connection, the same for every transport.
//!
//! [`NativeSession`] turns a parsed request into core calls and answer frames, and core
//! events into event frames. It does no I/O of its own: the connection
//! ([`crate::connection`]) reads frames, hands them here and writes what comes back.
//!
//! This file holds the dispatch and the session actions (`configure-session`, `describe`,
//! `login`, `ack`; `reference/happn-3-wire.md` §2 and §4); the data actions are in
//! [`crate::data`], `on`/`off` in [`crate::subscribe`].

use std::net::SocketAddr;

use bytes::Bytes;
use pathmq_core::{Action, Error, Response, Session};
use serde_json::{Map, Value, json};

use crate::envelope::{Envelope, Rejected};
use crate::error::FrameError;
use crate::frame::{PROTOCOL, Reply};

/// What the client said about itself (`configure-session`, `login`).
#[derive(Debug, Default)]
struct ClientInfo {
    /// The protocol it speaks (`"happn_4"`).
    protocol: Option<String>,
    /// Its package version.
    version: Option<String>,
    /// The `info` it logged in with.
    info: Option<Value>,
}

/// One client's session over the native protocol.
#[derive(Debug)]
pub(crate) struct NativeSession {
    /// The core session; dropping it ends the session.
    pub(crate) session: Session,
    /// The broker's name (`describe`).
    name: String,
    peer: SocketAddr,
    client: ClientInfo,
    /// Whether `login` succeeded (the connection ends sockets that never log in).
    pub(crate) logged_in: bool,
}

impl NativeSession {
    /// A native session over an open core session.
    pub(crate) fn new(session: Session, peer: SocketAddr) -> Self {
        let name = session.core().config().name.clone();
        Self {
            session,
            name,
            peer,
            client: ClientInfo::default(),
            logged_in: false,
        }
    }

    /// The envelope for answering `envelope`.
    pub(crate) fn reply<'a>(&self, envelope: &'a Envelope) -> Reply<'a> {
        Reply {
            event_id: envelope.event_id.as_ref(),
            action: Some(envelope.action.as_str()),
            session: self.session.id(),
        }
    }

    /// Carries out one request; returns the frames that answer it (usually one). A
    /// failure is answered with an error response (wire doc §5), never by closing.
    pub(crate) async fn handle(&mut self, envelope: Envelope) -> Vec<Bytes> {
        let reply = self.reply(&envelope);
        let result = match envelope.action {
            Action::ConfigureSession => Ok(self.configure_session(&envelope, reply)),
            Action::Describe => Ok(vec![reply.ok(
                json!({ "name": self.name, "secure": false }),
                Map::new(),
                false,
            )]),
            Action::Login => Ok(self.login(&envelope, reply)),
            Action::Set => self.set(&envelope, reply).await,
            Action::Get => self.get(&envelope, reply).await,
            Action::Count => self.count(&envelope, reply).await,
            Action::Remove => self.remove(&envelope, reply).await,
            Action::On => self.on(&envelope, reply).await,
            Action::Off => self.off(&envelope, reply).await,
            // Acknowledged delivery is not carried yet: the ack is answered so the
            // subscriber's client does not wait, and echoes the publication id.
            Action::Ack => Ok(vec![reply.ok(envelope.data.clone(), Map::new(), false)]),
            Action::ChangePassword | Action::RevokeToken => Err(FrameError::Unsupported {
                what: format!("`{}`", envelope.action.as_str()),
                why: "security is off on this server",
            }
            .into()),
            other => Err(FrameError::Unsupported {
                what: format!("`{}`", other.as_str()),
                why: "not implemented yet",
            }
            .into()),
        };
        result.unwrap_or_else(|error| {
            tracing::debug!(action = envelope.action.as_str(), %error, "request failed");
            vec![reply.error(&error)]
        })
    }

    /// The error response to a frame that was not a usable request.
    pub(crate) fn reject(&self, rejected: Rejected) -> Bytes {
        tracing::debug!(error = %rejected.error, "frame refused");
        Reply {
            event_id: rejected.event_id.as_ref(),
            action: rejected.action.as_deref(),
            session: self.session.id(),
        }
        .error(&rejected.error.into())
    }

    /// The error response to a frame of `size` bytes over the `limit`.
    pub(crate) fn too_large(&self, size: usize, limit: usize) -> Bytes {
        self.reject(Rejected {
            event_id: None,
            action: None,
            error: FrameError::TooLarge { size, limit },
        })
    }

    /// `configure-session` (wire doc §2.1): remembers the client's protocol and version.
    fn configure_session(&mut self, envelope: &Envelope, reply: Reply<'_>) -> Vec<Bytes> {
        let text = |key| {
            envelope
                .data
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        self.client.protocol = text("protocol");
        self.client.version = text("version");
        vec![reply.ok(Value::Null, Map::new(), false)]
    }

    /// `login` (wire doc §2.4). Security is off, so anyone is accepted and answered with
    /// the connection's session data: `{id, protocol, happn:{name, secure}, info, address,
    /// encrypted, version?}`, with no user and no token.
    fn login(&mut self, envelope: &Envelope, reply: Reply<'_>) -> Vec<Bytes> {
        self.logged_in = true;
        if let Some(info) = envelope.data.get("info") {
            self.client.info = Some(info.clone());
        }
        let mut session = Map::new();
        session.insert("id".into(), self.session.id().to_string().into());
        session.insert(
            "protocol".into(),
            self.client.protocol.as_deref().unwrap_or(PROTOCOL).into(),
        );
        session.insert(
            "happn".into(),
            json!({ "name": self.name, "secure": false }),
        );
        session.insert(
            "info".into(),
            self.client.info.clone().unwrap_or_else(|| json!({})),
        );
        session.insert(
            "address".into(),
            json!({ "ip": self.peer.ip().to_string(), "port": self.peer.port() }),
        );
        session.insert("encrypted".into(), false.into());
        if let Some(version) = &self.client.version {
            session.insert("version".into(), version.as_str().into());
        }
        vec![reply.ok(Value::Object(session), Map::new(), false)]
    }
}

/// The error for a response of the wrong kind from the core (a layer answered with one).
pub(crate) fn unexpected(action: Action, response: &Response) -> Error {
    Error::Internal(format!(
        "unexpected answer to `{}`: {response:?}",
        action.as_str()
    ))
}
