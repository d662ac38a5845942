//! Middleware: the `Layer` trait (DESIGN.md §8).
//!
//! Layers form two ordered queues configured per broker. Each inbound request of a
//! session passes every layer in order before the core runs it; each outbound message
//! passes every layer in order before the protocol encodes it. A layer may pass, change,
//! answer or reject a request, and pass, change or drop an outbound message.

use async_trait::async_trait;

use crate::error::Error;
use crate::event::Outbound;
use crate::request::{Request, Response};
use crate::session::SessionInfo;

/// A layer's decision on an inbound request.
#[derive(Debug)]
#[non_exhaustive]
pub enum InboundVerdict {
    /// Pass the (possibly changed) request to the next layer.
    Continue,
    /// Answer the request with this response; later layers and the core do not see it.
    Respond(Response),
    /// Refuse the request with this error; nothing is changed.
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

/// Middleware over a session's traffic. Both methods default to passing everything.
#[async_trait]
pub trait Layer: Send + Sync + 'static {
    /// The layer's name, for logs.
    fn name(&self) -> &str;

    /// Sees each inbound request of a session before the core runs it.
    async fn inbound(&self, session: &SessionInfo, request: &mut Request) -> InboundVerdict {
        let _ = (session, request);
        InboundVerdict::Continue
    }

    /// Sees each message bound for a session before its protocol encodes it.
    async fn outbound(&self, session: &SessionInfo, message: &mut Outbound) -> OutboundVerdict {
        let _ = (session, message);
        OutboundVerdict::Continue
    }
}
