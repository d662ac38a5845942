//! Bounded waits on the Rust client's listeners, shared by `client.rs` and `reference/`.

use std::future::Future;

use anyhow::{Context as _, Result, bail};
use pathmq_native::client::{Event, Subscription};

use crate::common::WAIT;

/// `future`'s output, or an error after [`WAIT`].
pub(crate) async fn within<F: Future>(future: F) -> Result<F::Output> {
    tokio::time::timeout(WAIT, future)
        .await
        .context("nothing in time")
}

/// The listener's next event.
pub(crate) async fn next_event(subscription: &mut Subscription) -> Result<Event> {
    within(subscription.recv())
        .await?
        .with_context(|| format!("listener {} ended", subscription.channel()))
}

/// The listener's stream has ended (its count was reached, or it was removed).
pub(crate) async fn ended(subscription: &mut Subscription) -> Result<()> {
    if let Some(event) = within(subscription.recv()).await? {
        bail!("expected {} to end, got {event:?}", subscription.channel());
    }
    Ok(())
}
