//! Middleware: the `Layer` trait (DESIGN.md §8).
//!
//! Layers form two ordered queues configured per broker. Each inbound request of a
//! session passes every layer in order before the core runs it; each outbound message
//! passes every layer in order before the protocol encodes it. A layer may pass, change,
//! answer or reject a request, and pass, change or drop an outbound message.
//!
//! Inbound layers run before security: a layer sees requests the session may not be
//! allowed to make (security refuses them after), and a request a layer rejects is never
//! authorized or run. docs/PLUGINS.md is the guide.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Error;
use crate::event::Outbound;
use crate::request::{Request, Response};
use crate::security::Identity;
use crate::session::SessionInfo;

/// A layer's decision on an inbound request.
#[derive(Debug)]
#[non_exhaustive]
pub enum InboundVerdict {
    /// Pass the (possibly changed) request to the next layer.
    Continue,
    /// Answer the request with this response; later layers and the core do not see it.
    Respond(Response),
    /// Refuse the request with this error; nothing is changed. The client gets the
    /// error's code: a native error answer, an MQTT 5 failure reason code (MQTT 5 client
    /// over a rate limit, [`Error::RateLimited`]: DISCONNECT `0x96`); an MQTT 3.1.1
    /// PUBLISH is dropped (counted in `pathmq_rejected_total`).
    Reject(Error),
}

/// A layer's decision on an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboundVerdict {
    /// Pass the (possibly changed) message on.
    Continue,
    /// Do not send it to this session.
    Drop,
}

/// What a layer knows of the session whose traffic it sees: the session
/// ([`SessionInfo`]: id, protocol, peer, client id) and, on a secure broker once it has
/// logged in, who it is ([`Identity`]: username, groups, grants).
///
/// ```
/// use pathmq_core::{LayerContext, SessionId, SessionInfo};
///
/// let info = SessionInfo {
///     id: SessionId::new(),
///     protocol: "native",
///     peer: None,
///     client_id: None,
/// };
/// let cx = LayerContext::new(&info, None);
/// assert_eq!(cx.username(), None);
/// assert!(!cx.in_group("admins"));
/// ```
#[derive(Debug, Clone)]
pub struct LayerContext<'a> {
    session: &'a SessionInfo,
    identity: Option<Arc<Identity>>,
}

impl<'a> LayerContext<'a> {
    /// The context of `session`, logged in as `identity` (`None`: not logged in, or the
    /// broker is not secure). Layers are handed one; tests of a layer build their own.
    pub fn new(session: &'a SessionInfo, identity: Option<Arc<Identity>>) -> Self {
        Self { session, identity }
    }

    /// The session.
    pub fn session(&self) -> &'a SessionInfo {
        self.session
    }

    /// Who the session is logged in as, on a secure broker.
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        self.identity.as_ref()
    }

    /// The logged-in user's name, on a secure broker.
    pub fn username(&self) -> Option<&str> {
        self.identity.as_deref().map(|i| i.username.as_str())
    }

    /// The logged-in user's groups (empty when not logged in or not secure).
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        static NONE: BTreeSet<String> = BTreeSet::new();
        let groups = self.identity.as_deref().map_or(&NONE, |i| &i.groups);
        groups.iter().map(String::as_str)
    }

    /// Whether the logged-in user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.identity
            .as_deref()
            .is_some_and(|i| i.groups.contains(group))
    }
}

/// Middleware over a session's traffic. Both methods default to passing everything.
///
/// A layer is shared by every session (`&self`): keep per-session state in a concurrent
/// map keyed by [`SessionInfo::id`], and bound it. Both methods run on the session's own
/// task, so a slow layer slows that session only; never block in them.
#[async_trait]
pub trait Layer: Send + Sync + 'static {
    /// The layer's name, for logs.
    fn name(&self) -> &str;

    /// Sees each inbound request of a session before security and the core run it.
    async fn inbound(&self, cx: &LayerContext<'_>, request: &mut Request) -> InboundVerdict {
        let _ = (cx, request);
        InboundVerdict::Continue
    }

    /// Sees each message bound for a session before its protocol encodes it.
    async fn outbound(&self, cx: &LayerContext<'_>, message: &mut Outbound) -> OutboundVerdict {
        let _ = (cx, message);
        OutboundVerdict::Continue
    }

    /// Called once when a session's connection ends, to free per-session state (a
    /// durable MQTT session that resumes later comes back with the same
    /// [`SessionInfo::id`]). Default: nothing.
    fn session_ended(&self, session: &SessionInfo) {
        let _ = session;
    }
}
