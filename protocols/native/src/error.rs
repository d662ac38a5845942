//! Why a frame was refused, and why a connection's transport failed.
//!
//! A refused frame is answered with an error response (`reference/happn-3-wire.md` §5,
//! DESIGN.md §5) and the connection stays open; every [`FrameError`] becomes a
//! [`pathmq_core::Error`] in one place ([`From`] below), so the wire `code` and `name` come
//! from [`pathmq_core::Error::code`] and [`pathmq_core::Error::name`] like every other error.

use pathmq_core::Error;

/// A frame could not be turned into a request. Nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FrameError {
    /// The frame is not JSON (400).
    #[error("frame is not valid JSON: {0}")]
    BadJson(#[source] serde_json::Error),
    /// The frame is JSON but not an object (400).
    #[error("frame is a JSON {found}; a request is an object with an `action`")]
    NotAnObject {
        /// What was found: "array", "string", …
        found: &'static str,
    },
    /// The request has no `action` string (400).
    #[error("request has no `action`")]
    MissingAction,
    /// The `action` is not one of the protocol's (400; wire doc §4).
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    /// A field the action needs is absent (400).
    #[error("`{action}` needs `{field}`")]
    MissingField {
        /// The action.
        action: &'static str,
        /// The absent field, e.g. "path".
        field: &'static str,
    },
    /// A field has the wrong JSON type or an out-of-range value (400).
    #[error("`{field}` must be {expected}")]
    BadField {
        /// The field, e.g. "options.consistency".
        field: &'static str,
        /// What it must be, e.g. "an integer from 0 to 3".
        expected: &'static str,
    },
    /// The frame is larger than `NativeConfig::max_frame` (413).
    #[error("frame is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// The frame's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The request asks for something pathmq does not do yet, or does not do with
    /// security off (400). Answered rather than ignored so the client is not left waiting.
    #[error("{what} is not supported: {why}")]
    Unsupported {
        /// What was asked, e.g. "`change-password`" or "get option `criteria`".
        what: String,
        /// Why, e.g. "security is off on this server".
        why: &'static str,
    },
}

impl From<FrameError> for Error {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::TooLarge { size, limit } => Error::TooLarge {
                what: "frame",
                size,
                limit,
            },
            other => Error::BadRequest(other.to_string()),
        }
    }
}

/// The connection's transport failed; the connection ends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum TransportError {
    /// The WebSocket failed (protocol violation, I/O error, message over the transport's
    /// limit).
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The byte stream failed.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_errors_map_to_wire_codes() {
        let too_large: Error = FrameError::TooLarge { size: 9, limit: 8 }.into();
        assert_eq!(
            (too_large.code(), too_large.name()),
            (413, "PayloadTooLarge")
        );
        let unknown: Error = FrameError::UnknownAction("bogus".into()).into();
        assert_eq!((unknown.code(), unknown.name()), (400, "BadRequest"));
        assert_eq!(unknown.to_string(), "unknown action `bogus`");
    }
}
