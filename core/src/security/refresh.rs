//! Keeping logged-in sessions' grants current (DESIGN.md §7): when a user or one of their
//! groups changes in the directory, every live session of that user gets grants compiled
//! anew; a deleted user's sessions lose their identity (their requests are then refused
//! with 401 until they log in again). It also ends the sessions of a revoked token, and,
//! when a profile has a `ttl` or `inactivity_threshold`, sweeps every second for sessions
//! past them (a subscriber that never sends a request ends on time too).

use std::collections::HashSet;

use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use super::directory::DirectoryChange;
use super::login::{LoginSession, SessionEnd};
use crate::pipeline::Core;

/// Follows the directory's changes until the core shuts down. Spawned by the core when
/// it is built with security inside a runtime.
pub(crate) async fn follow_changes(core: Core) {
    let Some(security) = core.security().cloned() else {
        return;
    };
    let mut changes = security.directory().subscribe_changes();
    let mut revocations = security.subscribe_revocations();
    let sweeps = security.profiles().has_timeouts();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = core.shutdown_token().clone();
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => change,
            revoked = revocations.recv() => {
                match revoked {
                    Ok(jti) => end_sessions(&core, |login| (login.claims.jti == jti).then_some(SessionEnd::TokenRevoked)),
                    // Missed some: every session checks its token again.
                    Err(RecvError::Lagged(_)) => end_sessions(&core, |login| {
                        security.tokens().is_revoked(&login.claims.jti).then_some(SessionEnd::TokenRevoked)
                    }),
                    Err(RecvError::Closed) => return,
                }
                continue;
            }
            _ = sweep.tick(), if sweeps => {
                let now = Instant::now();
                end_sessions(&core, |login| login.lapsed(now));
                continue;
            }
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
        let renewed = security.renew(&identity, &entry.facts());
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

/// Ends every logged-in session whose login `ends` gives a reason for.
fn end_sessions(core: &Core, ends: impl Fn(&LoginSession) -> Option<SessionEnd>) {
    for entry in core.session_entries() {
        let end = (entry.identity.read().as_ref())
            .and_then(|identity| identity.login.as_ref())
            .and_then(|login| ends(login));
        if let Some(end) = end {
            entry.end(end);
        }
    }
}
