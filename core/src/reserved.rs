//! What a read may return beyond the session's permissions: the reserved paths under
//! `/_SYSTEM` (the broker's own records, DESIGN.md §3, §7) are refused or left out of
//! results, and a read nested permissions allow only in part is cut to what the session
//! may `get`.

use crate::error::Error;
use crate::pattern::Glob;
use crate::pipeline::Core;
use crate::request::{Request, Response};
use crate::security::{Access, Identity, Right};
use crate::sys::{SYS_PREFIX, is_sys};

/// Paths under `/_SYSTEM` belong to the broker (DESIGN.md §3, §7): no session reads,
/// writes or subscribes to them.
pub(crate) const RESERVED_PREFIX: &str = "/_SYSTEM";

/// Whether a glob could match a path under [`RESERVED_PREFIX`] (`/*`, `/_S*`): its
/// results must then leave those out (an exact reserved target is refused before).
pub(crate) fn reaches_reserved(glob: &Glob) -> bool {
    glob.has_wildcard() && RESERVED_PREFIX.starts_with(glob.literal_prefix())
}

/// Whether `path` is under [`RESERVED_PREFIX`].
pub(crate) fn is_reserved(path: &str) -> bool {
    path.strip_prefix(RESERVED_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Leaves the reserved records out of a glob's results.
pub(crate) fn drop_reserved(glob: &Glob, records: &mut Vec<crate::payload::Record>) {
    if reaches_reserved(glob) {
        records.retain(|r| !is_reserved(r.path.as_str()));
    }
}

impl Core {
    /// A read the session may make only in part (nested permissions, [`Access::Filtered`]):
    /// run whole, then cut to the records its grants allow `get` on, counted after.
    pub(crate) async fn filtered_read(
        &self,
        identity: &Identity,
        request: Request,
    ) -> Result<Response, Error> {
        let allowed =
            |record: &crate::Record| identity.grants.allows_record(Right::Get, &record.path);
        let (target, query, count) = match request {
            Request::Get { target } => (target, None, false),
            Request::Count { target } => (target, None, true),
            Request::Search { target, query } => (target, Some(query), false),
            Request::CountMatching { target, criteria } => {
                let records = self.inner.store.scan(&target).await?;
                let n = (records.iter())
                    .filter(|r| !is_reserved(r.path.as_str()) && allowed(r))
                    .filter(|r| criteria.matches_record(r))
                    .count();
                return Ok(Response::Count(n as u64));
            }
            other => return Err(Error::Internal(format!("not a filtered read: {other:?}"))),
        };
        let mut records = match &query {
            // Paging applies to what the session may see: the filter runs first.
            Some(query) => {
                let all = self.inner.store.scan(&target).await?;
                let kept: Vec<_> = all
                    .into_iter()
                    .filter(|r| !is_reserved(r.path.as_str()) && allowed(r))
                    .collect();
                query.run(kept)
            }
            None => self.inner.store.scan(&target).await?,
        };
        drop_reserved(&target, &mut records);
        records.retain(|r| allowed(r));
        Ok(match count {
            true => Response::Count(records.len() as u64),
            false => Response::Records(records),
        })
    }

    /// How many reserved records `glob` (and `criteria`) match: what a count must not
    /// include.
    pub(crate) async fn reserved_matches(
        &self,
        glob: &Glob,
        criteria: Option<&crate::query::Criteria>,
    ) -> Result<u64, Error> {
        if !reaches_reserved(glob) {
            return Ok(0);
        }
        let reserved = Glob::parse(&format!("{RESERVED_PREFIX}/*"))?;
        let records = self.inner.store.scan(&reserved).await?;
        Ok(records
            .iter()
            .filter(|r| glob.matches(r.path.as_str()))
            .filter(|r| criteria.is_none_or(|c| c.matches_record(r)))
            .count() as u64)
    }
}

pub(crate) fn refuse_reserved(request: &Request) -> Result<(), Error> {
    // `$SYS` belongs to the broker's statistics (MQTT 4.7.2: a `$` topic is the server's;
    // Mosquitto refuses client publishes there too). Reading and subscribing are allowed.
    let write = match request {
        Request::Set { path, .. } => Some(path.as_str()),
        Request::Remove { target, .. } | Request::RemoveMatching { target, .. } => {
            Some(target.literal_prefix())
        }
        _ => None,
    };
    if let Some(target) = write.filter(|t| is_sys(t)) {
        return Err(Error::Forbidden(format!(
            "`{target}` is under {SYS_PREFIX}, where the broker publishes its statistics: \
             clients cannot write there"
        )));
    }
    let target = match request {
        Request::Set { path, .. } => path.as_str(),
        Request::Get { target }
        | Request::Count { target }
        | Request::Remove { target, .. }
        | Request::Search { target, .. }
        | Request::CountMatching { target, .. }
        | Request::RemoveMatching { target, .. } => target.literal_prefix(),
        Request::On { pattern, .. } => pattern.as_str(),
        Request::Off(_) => return Ok(()),
    };
    if is_reserved(target) {
        return Err(Error::Forbidden(format!(
            "`{target}` is under {RESERVED_PREFIX}, which is reserved for the broker"
        )));
    }
    Ok(())
}

/// Whether `identity` may make the read `request` only in part (nested permissions on
/// and a wildcard read some of whose paths it may not `get`).
pub(crate) fn nested_read(identity: &Identity, request: &Request) -> bool {
    if !identity.grants.nested() {
        return false;
    }
    let target = match request {
        Request::Get { target }
        | Request::Count { target }
        | Request::Search { target, .. }
        | Request::CountMatching { target, .. } => target,
        _ => return false,
    };
    identity.grants.glob_access(Right::Get, target) == Access::Filtered
}
