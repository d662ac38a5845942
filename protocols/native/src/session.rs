//! The native session state machine: one per connection, the same for every transport.
//!
//! [`NativeSession`] turns a parsed request into answer frames: session actions
//! (`configure-session`, `describe`, `login`, `ack`; `reference/happn-3-wire.md` §2 and
//! §4) are answered on the spot, from the session's own state; data actions and
//! subscriptions become a [`Call`] against the core, which the connection runs among its
//! requests in flight ([`crate::inflight`]). It does no I/O of its own: the connection
//! ([`crate::connection`]) reads frames, hands them here and writes what comes back.
//!
//! The data actions are in [`crate::data`], `on`/`off` in [`crate::subscribe`]: functions
//! of the core [`Session`] alone (shared, `&self`), so that many can run at once while the
//! connection keeps the session's own state.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use pathmq_core::security::{Credentials, Password, Security};
use pathmq_core::{Action, Error, Response, Session, SessionId};
use serde_json::{Map, Value, json};

use crate::envelope::{Envelope, Rejected, flag, is_set};
use crate::error::FrameError;
use crate::frame::PROTOCOL;
use crate::inflight::{Call, Effect};
use crate::response::Reply;
use crate::{data, subscribe};

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

/// What became of one request.
pub(crate) enum Handled {
    /// Answered without the core: a session action, or a request refused as it stands.
    Answered(Vec<Bytes>),
    /// To run against the core: when it acts (for the connection's ordering), and the
    /// call, which does nothing until first polled.
    Run(Effect, Call),
}

/// One client's session over the native protocol.
#[derive(Debug)]
pub(crate) struct NativeSession {
    /// The core session, shared with the requests in flight; the last one dropped ends
    /// the session.
    pub(crate) session: Arc<Session>,
    /// The broker's name (`describe`).
    name: String,
    peer: SocketAddr,
    client: ClientInfo,
    /// Whether `login` succeeded (the connection ends sockets that never log in).
    pub(crate) logged_in: bool,
    /// The token cookie's name (`cookieName` of a secure broker's answers).
    cookie_name: String,
}

impl NativeSession {
    /// A native session over an open core session.
    pub(crate) fn new(session: Session, peer: SocketAddr, cookie_name: String) -> Self {
        let name = session.core().config().name.clone();
        Self {
            session: Arc::new(session),
            name,
            peer,
            client: ClientInfo::default(),
            logged_in: false,
            cookie_name,
        }
    }

    /// Takes one request: answers a session action (or a request pathmq refuses) now,
    /// and turns a data action or subscription into a [`Call`] with its [`Effect`]. A
    /// failure is answered with an error response (wire doc §5), never by closing.
    pub(crate) fn handle(&mut self, envelope: Envelope) -> Handled {
        let reply = reply_to(self.session.id(), &envelope);
        let result = match envelope.action {
            Action::Set
            | Action::Get
            | Action::Count
            | Action::Remove
            | Action::On
            | Action::Off => {
                let effect = effect_of(&envelope);
                // Unconstrained: a call that found tokio's cooperative budget spent would
                // yield before reaching the store and start after later calls (see
                // `crate::inflight`).
                let call = tokio::task::unconstrained(run(self.session.clone(), envelope));
                return Handled::Run(effect, Box::pin(call));
            }
            Action::ConfigureSession => Ok(self.configure_session(&envelope, reply)),
            Action::Describe => {
                let secure = self.session.core().security().is_some();
                let mut data = json!({ "name": self.name, "secure": secure });
                if secure {
                    data["cookieName"] = self.cookie_name.as_str().into();
                }
                Ok(vec![reply.ok(data, Map::new(), false)])
            }
            Action::Login => match self.session.core().security().cloned() {
                None => Ok(self.login(&envelope, reply)),
                // A secure login checks a password (bcrypt, off the runtime): it runs as a
                // call, alone, so nothing after it starts before the session is known.
                Some(security) => {
                    let data = self.session_data(&envelope, true);
                    let cookie_name = self.cookie_name.clone();
                    let call =
                        secure_login(security, self.session.clone(), envelope, data, cookie_name);
                    return Handled::Run(Effect::Exclusive, Box::pin(call));
                }
            },
            // A recipient acknowledges a publication of consistency ACKNOWLEDGED by its id
            // (`data`), matched on this session, never on a client-supplied session id.
            // Answered with the id in any case (an unknown or repeated ack is not an error).
            Action::Ack => {
                if let Some(id) = envelope.data.as_str() {
                    let counted = self.session.core().acknowledge(self.session.id(), id);
                    tracing::trace!(publication = id, counted, "ack");
                }
                Ok(vec![reply.ok(envelope.data.clone(), Map::new(), false)])
            }
            Action::RevokeToken if self.session.core().security().is_some() => {
                let security = self.session.core().security().cloned();
                let call = revoke_token(security.expect("checked"), self.session.clone(), envelope);
                return Handled::Run(Effect::Exclusive, Box::pin(call));
            }
            Action::ChangePassword if self.session.core().security().is_some() => {
                Err(FrameError::Unsupported {
                    what: "`change-password`".into(),
                    why: "passwords are changed from the broker's process \
                          (`pathmq user passwd`, `Directory::set_password`)",
                }
                .into())
            }
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
        Handled::Answered(answer(&envelope, reply, result))
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
        let session = self.session_data(envelope, false);
        vec![reply.ok(Value::Object(session), Map::new(), false)]
    }

    /// Whether the client has logged in (the connection ends sockets that never do).
    pub(crate) fn logged_in(&self) -> bool {
        self.logged_in || self.session.identity().is_some()
    }

    /// The session data a login answers: `{id, protocol, happn:{name, secure}, info,
    /// address, encrypted, version?}` (wire doc §2.4).
    fn session_data(&mut self, envelope: &Envelope, secure: bool) -> Map<String, Value> {
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
            json!({ "name": self.name, "secure": secure }),
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
        session
    }
}

/// The envelope for answering `envelope` on session `session`.
pub(crate) fn reply_to(session: SessionId, envelope: &Envelope) -> Reply<'_> {
    Reply {
        event_id: envelope.event_id.as_ref(),
        action: Some(envelope.action.as_str()),
        session,
    }
}

/// `login` on a secure broker (reference: SECURITY CLIENT, ANONYMOUS USER): checks
/// `data.token`, or `data.username` and `data.password` (`_ANONYMOUS` needs none), records
/// the session's identity, and answers the session data with `user: {username,
/// custom_data}`, `token` and `policy: {profile, ttl, inactivity_threshold}`. A refused
/// login is a 401 (bad credentials, bad token, locked out) or a 403 (address not allowed,
/// connection limit, `_ADMIN` over the network) and leaves the session anonymous (the
/// connection's login timeout still runs).
async fn secure_login(
    security: Arc<Security>,
    session: Arc<Session>,
    envelope: Envelope,
    mut data: Map<String, Value>,
    cookie_name: String,
) -> Vec<Bytes> {
    let reply = reply_to(session.id(), &envelope);
    let text = |key| envelope.data.get(key).and_then(Value::as_str);
    let owned = |key| text(key).map(str::to_owned);
    let credentials = Credentials::from_fields(
        owned("username"),
        text("password").map(Password::from),
        owned("token"),
        owned("authType"),
    );
    let username = credentials
        .as_ref()
        .and_then(|c| c.username())
        .map(str::to_owned);
    let Some(credentials) = credentials else {
        let error = Error::Unauthenticated(
            "no credentials: give `username` and `password`, or `token`".into(),
        );
        tracing::info!(
            username = username.as_deref().unwrap_or_default(),
            "login refused: no credentials"
        );
        return answer(&envelope, reply, Err(error));
    };
    let result = match security.login(credentials, &session.facts()).await {
        Ok(identity) => {
            let user = security.directory().get_user(&identity.username);
            data.insert(
                "user".into(),
                json!({
                    "username": identity.username,
                    "custom_data": user.map(|u| u.custom_data).unwrap_or_default(),
                }),
            );
            if let Some(login) = &identity.login {
                data.insert("token".into(), login.token.clone().into());
                data.insert("cookieName".into(), cookie_name.into());
                let policy = &login.profile.policy;
                let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
                data.insert(
                    "policy".into(),
                    json!({
                        "profile": login.profile.name,
                        "ttl": ms(policy.ttl),
                        "inactivity_threshold": ms(policy.inactivity_threshold),
                    }),
                );
            }
            tracing::info!(username = %identity.username, "session logged in");
            session.set_identity(identity);
            Ok(vec![reply.ok(Value::Object(data), Map::new(), false)])
        }
        Err(error) => {
            // The username is logged, never the password or token.
            tracing::info!(username = username.as_deref().unwrap_or_default(), %error, "login refused");
            Err(Error::from(error))
        }
    };
    answer(&envelope, reply, result)
}

/// `revoke-token` (wire doc: "revoke current session's token"; what the happn-3 client's
/// `logout()` sends): the session's token is revoked for good, and every session using
/// it, this one included, ends once the answer is sent.
async fn revoke_token(
    security: Arc<Security>,
    session: Arc<Session>,
    envelope: Envelope,
) -> Vec<Bytes> {
    let reply = reply_to(session.id(), &envelope);
    let login = session
        .identity()
        .and_then(|identity| identity.login.clone());
    let result = match login {
        None => Err(Error::Unauthenticated("not logged in with a token".into())),
        Some(login) => match security.revoke_token(&login.claims).await {
            Ok(_) => Ok(vec![reply.ok(Value::Null, Map::new(), false)]),
            Err(error) => Err(Error::Internal(error.to_string())),
        },
    };
    answer(&envelope, reply, result)
}

/// The frames answering a request: its own, or the error response.
fn answer(envelope: &Envelope, reply: Reply<'_>, result: Result<Vec<Bytes>, Error>) -> Vec<Bytes> {
    result.unwrap_or_else(|error| {
        tracing::debug!(action = envelope.action.as_str(), %error, "request failed");
        vec![reply.error(&error)]
    })
}

/// When a data action or subscription acts (see [`crate::inflight`]). An option of the
/// wrong type is read as absent: such a request is refused before it reaches the core,
/// so it acts on nothing whatever its class.
fn effect_of(envelope: &Envelope) -> Effect {
    let option = |key, field| flag(&envelope.options, key, field).unwrap_or(false);
    match envelope.action {
        Action::Set if option("noStore", "options.noStore") => Effect::Now,
        Action::Set if is_set(&envelope.options, "tag") => Effect::Exclusive,
        Action::Remove if is_set(&envelope.options, "criteria") => Effect::Exclusive,
        Action::Set | Action::Remove => Effect::Write,
        Action::Get | Action::Count => Effect::Read,
        Action::On
            if option("initialCallback", "options.initialCallback")
                || option("initialEmit", "options.initialEmit") =>
        {
            Effect::Read
        }
        _ => Effect::Now,
    }
}

/// Runs a data action or subscription against the core: the body of a [`Call`].
async fn run(session: Arc<Session>, envelope: Envelope) -> Vec<Bytes> {
    let reply = reply_to(session.id(), &envelope);
    let result = match envelope.action {
        Action::Set => data::set(&session, &envelope, reply).await,
        Action::Get => data::get(&session, &envelope, reply).await,
        Action::Count => data::count(&session, &envelope, reply).await,
        Action::Remove => data::remove(&session, &envelope, reply).await,
        Action::On => subscribe::on(&session, &envelope, reply).await,
        Action::Off => subscribe::off(&session, &envelope, reply).await,
        other => Err(Error::Internal(format!(
            "`{}` is not a data action",
            other.as_str()
        ))),
    };
    answer(&envelope, reply, result)
}

/// The error for a response of the wrong kind from the core (a layer answered with one).
pub(crate) fn unexpected(action: Action, response: &Response) -> Error {
    Error::Internal(format!(
        "unexpected answer to `{}`: {response:?}",
        action.as_str()
    ))
}
