//! Keeping logged-in sessions' grants current (DESIGN.md §7): when a user or one of their
//! groups changes in the directory, every live session of that user gets grants compiled
//! anew; a deleted user's sessions lose their identity (their requests are then refused
//! with 401 until they log in again).

use std::collections::HashSet;

use tokio::sync::broadcast::error::RecvError;

use super::directory::DirectoryChange;
use crate::pipeline::Core;

/// Follows the directory's changes until the core shuts down. Spawned by the core when
/// it is built with security inside a runtime.
pub(crate) async fn follow_changes(core: Core) {
    let Some(security) = core.security().cloned() else {
        return;
    };
    let mut changes = security.directory().subscribe_changes();
    let shutdown = core.shutdown_token().clone();
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => change,
        };
        match change {
            Ok(
                DirectoryChange::UserChanged { username }
                | DirectoryChange::UserDeleted { username },
            ) => {
                refresh(&core, |name| name == username);
            }
            Ok(DirectoryChange::GroupChanged { name } | DirectoryChange::GroupDeleted { name }) => {
                let members: HashSet<String> = security
                    .directory()
                    .list_usernames_in_group(&name)
                    .into_iter()
                    .collect();
                refresh(&core, |user| members.contains(user));
            }
            // Changes were missed: recompute every session.
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "directory changes missed; recomputing every session's grants"
                );
                refresh(&core, |_| true);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Recompiles the grants of every logged-in session whose user `affected` names.
fn refresh(core: &Core, affected: impl Fn(&str) -> bool) {
    let Some(security) = core.security() else {
        return;
    };
    for entry in core.session_entries() {
        let Some(identity) = entry.identity.read().clone() else {
            continue;
        };
        if !affected(&identity.username) {
            continue;
        }
        let renewed = security
            .trusted_identity(&identity.username, &entry.facts())
            .ok();
        match &renewed {
            Some(_) => {
                tracing::debug!(username = %identity.username, session = %entry.info.id, "grants recomputed")
            }
            None => {
                tracing::info!(username = %identity.username, session = %entry.info.id, "user gone: session logged out")
            }
        }
        *entry.identity.write() = renewed;
    }
}
