//! Keeping logged-in sessions' grants current (DESIGN.md §7): when a user or one of their
//! groups changes in the directory, every live session of that user gets grants compiled
//! anew; a deleted user's sessions lose their identity (their requests are then refused
//! with 401 until they log in again). It also ends the sessions of a revoked token, and,
//! sweeps every second for sessions past their policy's `ttl` or `inactivity_threshold`,
//! or past the expiry of the token they logged in with (a subscriber that never sends a
//! request ends on time too); every minute it forgets revocations of expired tokens.

use std::sync::Arc;

use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use super::directory::DirectoryChange;
use super::login::{LoginSession, SessionEnd};
use super::service::Identity;
use crate::pipeline::Core;

/// Follows the directory's changes until the core shuts down. Spawned by the core when
/// it is built with security inside a runtime.
pub(crate) async fn follow_changes(core: Core) {
    let Some(security) = core.security().cloned() else {
        return;
    };
    let mut changes = security.directory().subscribe_changes();
    let mut revocations = security.subscribe_revocations();
    let mut ticks = 0u64;
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
            _ = sweep.tick() => {
                let now = Instant::now();
                end_sessions(&core, |login| login.lapsed(now));
                ticks += 1;
                if ticks.is_multiple_of(60) {
                    security.tokens().prune_expired();
                }
                continue;
            }
        };
        match change {
            Ok(
                DirectoryChange::UserChanged { username }
                | DirectoryChange::UserDeleted { username },
            ) => {
                refresh(&core, |identity| identity.username == username);
            }
            Ok(DirectoryChange::GroupChanged { name } | DirectoryChange::GroupDeleted { name }) => {
                // By the groups the sessions were compiled with: auth providers' users are
                // not in the directory's member lists.
                refresh(&core, |identity| identity.groups.contains(&name));
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

/// Recompiles the grants of every logged-in session `affected` picks.
fn refresh(core: &Core, affected: impl Fn(&Identity) -> bool) {
    let Some(security) = core.security() else {
        return;
    };
    for entry in core.session_entries() {
        let Some(identity) = entry.identity.read().clone() else {
            continue;
        };
        if !affected(&identity) {
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
        // Only if unchanged meanwhile: a new login or an ending must not be overwritten.
        let mut current = entry.identity.write();
        if current
            .as_ref()
            .is_some_and(|now| Arc::ptr_eq(now, &identity))
        {
            *current = renewed;
        }
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
