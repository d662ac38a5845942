//! What happens before the first token: who the client is, its login on a secure broker,
//! its session and its replies subscription. All of it runs inside the connection's task
//! (the TLS handshake already ran there too, in the transport), under
//! [`HANDSHAKE_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use pathmq_core::security::{Credentials, Identity, LoginError, Security, SessionFacts};
use pathmq_core::{Core, EventFilter, OnOptions, Path, Pattern, Peer, Request, Session};

use crate::PROTOCOL;
use crate::config::{Settings, check_username};

/// How long the login and the replies subscription may take together.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who the client is and where its tokens go: the outcome of [`identify`].
#[derive(Debug)]
pub(crate) struct Client {
    /// What `{{username}}` stands for: the certificate's CN, or the peer address.
    pub(crate) username: String,
    /// Whether a verified client certificate vouches for `username`.
    pub(crate) certified: bool,
    /// Where its tokens go.
    pub(crate) inbound: Path,
    /// What comes back to it, if anything.
    pub(crate) replies: Option<Pattern>,
}

/// Why a client was sent away before its first token. Logged, then the connection is
/// closed: the token protocol has no frame to say why.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("no verified client certificate (token.require_certificate is true)")]
    NoCertificate,
    #[error("the identity {username:?} cannot name a path: {reason}")]
    BadUsername {
        username: String,
        reason: &'static str,
    },
    #[error("the identity {username:?} makes an invalid path: {source}")]
    BadPath {
        username: String,
        #[source]
        source: pathmq_core::PathError,
    },
    #[error("login refused: {0}")]
    Login(#[source] LoginError),
    #[error("subscribing to the replies pattern {pattern} failed: {source}")]
    Subscribe {
        pattern: String,
        #[source]
        source: pathmq_core::Error,
    },
    #[error("the handshake took longer than {} s", HANDSHAKE_TIMEOUT.as_secs())]
    TimedOut,
}

/// Works out who `peer` is and fills the templates with it.
///
/// The identity is the verified client certificate's CN (the username the listener
/// vouches for when it uses the identity as the username, else the CN itself); without a
/// certificate, the peer address when `require_certificate` is off.
pub(crate) fn identify(settings: &Settings, peer: &Peer) -> Result<Client, Refusal> {
    let cn =
        (peer.certificate_username()).or_else(|| peer.tls.as_deref()?.certificate_cn.as_deref());
    let (username, certified) = match cn {
        Some(cn) => (cn.to_owned(), true),
        None if settings.config.require_certificate => return Err(Refusal::NoCertificate),
        None => (peer.addr.to_string(), false),
    };
    if let Err(reason) = check_username(&username) {
        return Err(Refusal::BadUsername { username, reason });
    }
    let bad_path = |source| Refusal::BadPath {
        username: username.clone(),
        source,
    };
    let inbound = Path::parse(&settings.inbound.render(&username)).map_err(bad_path)?;
    let replies = match &settings.replies {
        None => None,
        Some(template) => Some(Pattern::native(&template.render(&username)).map_err(bad_path)?),
    };
    Ok(Client {
        username,
        certified,
        inbound,
        replies,
    })
}

/// Logs `client` in (on a secure broker), opens its session and subscribes it to its
/// replies, within [`HANDSHAKE_TIMEOUT`]. A refused client leaves no session behind.
pub(crate) async fn open(core: &Core, client: &Client, peer: &Peer) -> Result<Session, Refusal> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, open_now(core, client, peer))
        .await
        .map_err(|_| Refusal::TimedOut)?
}

async fn open_now(core: &Core, client: &Client, peer: &Peer) -> Result<Session, Refusal> {
    // Logged in before the session opens, as MQTT does: a refused client never holds one.
    let identity = match core.security() {
        None => None,
        Some(security) => Some(login(security, client, peer).await?),
    };
    let session = core.open_session(PROTOCOL, Some(peer.addr), None);
    if let Some(identity) = identity {
        session.set_identity(identity);
    }
    if let Some(pattern) = &client.replies {
        let request = Request::On {
            pattern: pattern.clone(),
            options: OnOptions {
                // A remove has no bytes to send back.
                filter: EventFilter::Set,
                ..OnOptions::default()
            },
        };
        if let Err(source) = session.request(request).await {
            return Err(Refusal::Subscribe {
                pattern: pattern.as_str().to_owned(),
                source,
            });
        }
    }
    Ok(session)
}

/// The certificate's CN logs in with no password (the user must exist); a client without
/// a certificate (allowed by config) logs in as the anonymous user.
async fn login(
    security: &Security,
    client: &Client,
    peer: &Peer,
) -> Result<Arc<Identity>, Refusal> {
    let credentials = match client.certified {
        true => Credentials::Certificate {
            username: client.username.clone(),
        },
        false => Credentials::Anonymous,
    };
    let facts = SessionFacts {
        protocol: PROTOCOL,
        peer: Some(peer.addr),
        ..SessionFacts::default()
    };
    // Boxed: the login's future would otherwise widen the connection task's for good.
    let identity = Box::pin(security.login(credentials, &facts))
        .await
        .map_err(Refusal::Login)?;
    tracing::info!(username = %identity.username, "token client logged in");
    Ok(identity)
}
