//! The error a request is answered with (DESIGN.md §5: codes 400, 401, 403, 404, 413,
//! 429, 500). Protocols turn it into their own frame: a native `_meta.error`, an MQTT
//! reason code.

use crate::path::PathError;
use crate::store::StoreError;

/// Why a request failed. Nothing was changed unless the variant says otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed: bad JSON, an unknown action, a missing field (400).
    #[error("{0}")]
    BadRequest(String),
    /// A path, pattern or glob was refused (400).
    #[error(transparent)]
    Path(#[from] PathError),
    /// The session has not logged in, or its credentials are wrong (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The session may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The target does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request is larger than a configured limit (413).
    #[error("{what} is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// What was too large, e.g. "payload".
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The session is over a rate limit (429).
    #[error("{0}")]
    RateLimited(String),
    /// The store failed; the operation did not happen (500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that went wrong inside the broker (500).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The HTTP-style status code of the error (DESIGN.md §5).
    pub fn code(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::Path(_) => 400,
            Self::Unauthenticated(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::TooLarge { .. } => 413,
            Self::RateLimited(_) => 429,
            Self::Store(_) | Self::Internal(_) => 500,
        }
    }

    /// The error's name on the wire (`_meta.error.name`), as the reference names them.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BadRequest(_) | Self::Path(_) => "BadRequest",
            Self::Unauthenticated(_) | Self::Forbidden(_) => "AccessDenied",
            Self::NotFound(_) => "NotFound",
            Self::TooLarge { .. } => "PayloadTooLarge",
            Self::RateLimited(_) => "RateLimited",
            Self::Store(_) | Self::Internal(_) => "SystemError",
        }
    }
}
