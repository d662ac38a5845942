//! Why a client call failed: [`ClientError`], the one error type of [`Client`](super::Client)
//! and [`LocalClient`](super::LocalClient), so that code written against
//! [`DataApi`](super::DataApi) handles both alike.

use std::time::Duration;

/// Any error, boxed: the cause of a failed connection (I/O, WebSocket, handshake).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a call failed. Each variant says what state is left behind.
///
/// A refusal by the broker is [`ClientError::Server`] with the wire error's `code` and
/// `name` (`reference/happn-3-wire.md` §5; DESIGN.md §5 lists the codes), over the network
/// and in process alike.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection could not be opened, or its handshake (`configure-session`,
    /// `login`) failed or timed out. No client was made.
    #[error("could not connect to {endpoint}")]
    Connect {
        /// The URL or address tried.
        endpoint: String,
        /// Why: an I/O or WebSocket error, a timeout, or the broker's refusal of the login.
        #[source]
        source: BoxError,
    },
    /// No answer came within the request timeout. The request may still take effect on
    /// the broker; its late answer is dropped.
    #[error("no answer to `{action}` within {} ms", timeout.as_millis())]
    Timeout {
        /// The action asked for (`"set"`, `"get"`, …).
        action: &'static str,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The broker refused the request; nothing was changed.
    #[error("`{action}` was refused: {name} ({code}): {message}")]
    Server {
        /// The action asked for.
        action: &'static str,
        /// The wire error code: 400 bad request, 401 unauthenticated, 403 forbidden,
        /// 404 not found, 413 too large, 429 rate limited, 500 broker failure.
        code: u16,
        /// The wire error name (`"BadRequest"`, `"AccessDenied"`, …).
        name: String,
        /// What the broker said.
        message: String,
        /// The core's own error, for an in-process client (`None` over the network,
        /// where only its text travels).
        #[source]
        source: Option<pathmq_core::Error>,
    },
    /// The connection dropped before the answer came, or the client is reconnecting. The
    /// request may or may not have taken effect; retry after
    /// [`SessionEvent::ReconnectSuccessful`](super::SessionEvent::ReconnectSuccessful).
    #[error("the connection was lost before `{action}` was answered")]
    ConnectionLost {
        /// The action asked for.
        action: &'static str,
    },
    /// The client was disconnected (by `disconnect`, by dropping it, because reconnecting
    /// was given up, or because the broker ended an in-process session). Nothing was sent.
    #[error("the client is closed")]
    Closed,
    /// The data to send could not be encoded as JSON. Nothing was sent.
    #[error("the data of `{action}` could not be encoded as JSON")]
    Encode {
        /// The action asked for.
        action: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// An answer or event did not have the shape the protocol describes, or stored data
    /// could not be decoded into the type asked for. The request itself was carried out.
    #[error("could not decode {what}")]
    Decode {
        /// What was being decoded, with the offending text when short.
        what: String,
        /// serde_json's error, when it was a JSON error.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// The request asks for something this client cannot carry yet. Nothing was
    /// changed. (Both clients carry every call of [`DataApi`](super::DataApi) today;
    /// the variant is for features the broker or core gains before a client does.)
    #[error("{what} is not supported: {why}")]
    Unsupported {
        /// What was asked, e.g. "`increment`".
        what: String,
        /// Why, e.g. "the core has no request for it yet".
        why: &'static str,
    },
    /// An argument was refused before anything was sent (e.g. a wildcard given to `get`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// The wire error code of a [`ClientError::Server`] refusal, `None` otherwise.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The refusal an in-process request got from the core, with the core's error kept as
    /// the source.
    pub(crate) fn from_core(action: &'static str, error: pathmq_core::Error) -> Self {
        Self::Server {
            action,
            code: error.code(),
            name: error.name().to_owned(),
            message: error.to_string(),
            source: Some(error),
        }
    }

    /// A [`ClientError::Decode`] without a JSON error.
    pub(crate) fn shape(what: impl Into<String>) -> Self {
        Self::Decode {
            what: what.into(),
            source: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_core_refusal_keeps_its_code_and_source() {
        let error = ClientError::from_core("get", pathmq_core::Error::Forbidden("no".into()));
        assert_eq!(error.code(), Some(403));
        assert!(
            error.to_string().contains("AccessDenied (403): no"),
            "{error}"
        );
        assert!(error.source().is_some());
        assert_eq!(ClientError::Closed.code(), None);
    }
}
