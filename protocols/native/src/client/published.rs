//! Publication results for the writer (reference: CONSISTENCY, `onPublished`): how a
//! `set` with consistency DEFERRED or ACKNOWLEDGED went, delivered after its answer
//! ([`DataApi::set_published`](super::DataApi::set_published)).

use std::collections::HashMap;

use serde_json::Value;
use std::sync::{Mutex, PoisonError};
use tokio::sync::oneshot;

use super::ClientError;

/// How a publication went (reference: CONSISTENCY; wire doc §6 `publication-ack`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublicationResults {
    /// Recipients whose queue took the event.
    pub successful: u64,
    /// Recipients whose queue was full.
    pub failed: u64,
    /// Sessions whose subscriptions matched the path but not the event.
    pub skipped: u64,
    /// Recipients the event was queued for (as `successful`).
    pub queued: u64,
    /// ACKNOWLEDGED: how many recipients acknowledged.
    pub acknowledged: Option<u64>,
    /// ACKNOWLEDGED: why it is not a success (the recipients that did not acknowledge in
    /// time, [`pathmq_core::CoreConfig::ack_timeout`]).
    pub error: Option<String>,
}

impl PublicationResults {
    /// The results of a `publication-ack` frame (`{result: {successful, …}, status,
    /// error?}`).
    pub(crate) fn from_frame(frame: &Value) -> Self {
        let result = &frame["result"];
        let count = |key: &str| result.get(key).and_then(Value::as_u64);
        Self {
            successful: count("successful").unwrap_or(0),
            failed: count("failed").unwrap_or(0),
            skipped: count("skipped").unwrap_or(0),
            queued: count("queued").unwrap_or(0),
            acknowledged: count("acknowledged"),
            error: (frame["status"] == "error").then(|| {
                frame["error"]
                    .as_str()
                    .unwrap_or("publication failed")
                    .to_owned()
            }),
        }
    }

    /// The results the core reports for an in-process client.
    pub(crate) fn from_core(publication: &pathmq_core::Publication) -> Self {
        let results = &publication.results;
        Self {
            successful: results.successful,
            failed: results.failed,
            skipped: results.skipped,
            queued: results.successful,
            acknowledged: publication.acknowledged,
            error: publication.error.clone(),
        }
    }
}

/// The consistency of a `set_published`: DEFERRED or ACKNOWLEDGED.
///
/// # Errors
/// [`ClientError::InvalidArgument`] for any other (no results would come).
pub(crate) fn published_consistency(
    options: &super::SetOptions,
) -> Result<pathmq_core::Consistency, ClientError> {
    use pathmq_core::Consistency;
    if options.no_publish {
        return Err(ClientError::InvalidArgument(
            "`noPublish` publishes nothing, so no publication results would come".into(),
        ));
    }
    match options.consistency {
        Some(c @ (Consistency::Deferred | Consistency::Acknowledged)) => Ok(c),
        other => Err(ClientError::InvalidArgument(format!(
            "publication results come with consistency DEFERRED or ACKNOWLEDGED, not {other:?}"
        ))),
    }
}

/// The publication results of one write, once the broker sends them.
#[derive(Debug)]
pub struct Published {
    rx: oneshot::Receiver<PublicationResults>,
}

impl Published {
    /// Waits for the results. With ACKNOWLEDGED this takes until every recipient
    /// acknowledged, or the broker's acknowledgement timeout (then
    /// [`PublicationResults::error`] names the silent recipients).
    ///
    /// # Errors
    /// [`ClientError::ConnectionLost`] when the connection ended first.
    pub async fn results(self) -> Result<PublicationResults, ClientError> {
        self.rx.await.map_err(|_| ClientError::ConnectionLost {
            action: "publication-ack",
        })
    }
}

/// The writes waiting for their publication results, by request id.
#[derive(Debug, Default)]
pub(crate) struct Publications {
    waiting: Mutex<HashMap<u64, oneshot::Sender<PublicationResults>>>,
}

impl Publications {
    /// Registers request `id` (before it is sent).
    pub(crate) fn expect(&self, id: u64) -> Published {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        Published { rx }
    }

    /// The results of request `id` arrived.
    pub(crate) fn resolve(&self, id: u64, results: PublicationResults) {
        if let Some(tx) = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
        {
            let _ = tx.send(results);
        }
    }

    /// Request `id` failed: no results will come.
    pub(crate) fn forget(&self, id: u64) {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// The connection ended: every waiting write learns it.
    pub(crate) fn fail_all(&self) {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
