//! The pure rules of the directory: merging permissions, normalising globs, checking
//! names.

use super::super::model::{Permissions, Right};
use super::types::{DirectoryError, MAX_NAME_LEN};
use crate::Glob;
use crate::security::Template;

/// Merges `update` into `permissions` (reference: upsertGroup, "merged with the existing
/// ones, down to action level"; "remove a permission by upserting a group"):
///
/// * an action in `actions` is added to that glob's actions, and removed from its
///   prohibits where it covers them (`*` covers every action);
/// * an action in `prohibit` removes every action it covers from that glob's actions
///   (the reference: "permissions that have prohibit actions are removed"), and is kept
///   as a prohibit, which wins over any allow (issue 5);
/// * within one entry, an action both allowed and prohibited is prohibited;
/// * globs not in `update` are kept; an entry left empty is removed.
pub fn merge_permissions(permissions: &mut Permissions, update: Permissions) {
    for (glob, entry) in update {
        let target = permissions.entry(glob.clone()).or_default();
        for action in &entry.actions {
            if entry.prohibit.iter().any(|p| p.covers(*action)) {
                continue;
            }
            target.prohibit.retain(|p| !action.covers(*p));
            target.actions.insert(*action);
        }
        for prohibit in &entry.prohibit {
            target.actions.retain(|a| !prohibit.covers(*a));
            target.prohibit.insert(*prohibit);
        }
        if target.actions.is_empty() && target.prohibit.is_empty() {
            permissions.remove(&glob);
        }
    }
}

/// Removes `action` (exactly that action, allowed or prohibited) from `glob`'s entry, or
/// the whole entry for `None` (reference: removePermission). Answers whether anything
/// was removed.
pub(super) fn remove_permission(
    permissions: &mut Permissions,
    glob: &str,
    action: Option<Right>,
) -> bool {
    let Some(action) = action else {
        return permissions.remove(glob).is_some();
    };
    let Some(entry) = permissions.get_mut(glob) else {
        return false;
    };
    let removed = entry.actions.remove(&action) | entry.prohibit.remove(&action);
    if entry.actions.is_empty() && entry.prohibit.is_empty() {
        permissions.remove(glob);
    }
    removed
}

/// A permission's glob in its stored form (`a/*` → `/a/*`, `*` → `/*`), its templates
/// checked (a typo is refused here, not at every login).
pub(super) fn normalize_glob(glob: &str) -> Result<String, DirectoryError> {
    let normalized = Glob::parse(glob).map_err(|source| DirectoryError::InvalidPermissionPath {
        path: glob.to_owned(),
        source,
    })?;
    Template::parse(glob).map_err(|source| DirectoryError::InvalidTemplate {
        path: glob.to_owned(),
        source,
    })?;
    Ok(normalized.as_str().to_owned())
}

/// `permissions` with normalised globs; entries whose globs normalise alike are merged.
pub(super) fn normalize_permissions(
    permissions: Permissions,
) -> Result<Permissions, DirectoryError> {
    let mut normalized = Permissions::new();
    for (glob, entry) in permissions {
        let update = Permissions::from([(normalize_glob(&glob)?, entry)]);
        merge_permissions(&mut normalized, update);
    }
    Ok(normalized)
}

/// Checks a username or group name: non-empty, at most [`MAX_NAME_LEN`] bytes, no `/`,
/// no wildcard (`*`, `+`, `#`, `?`), no template braces, no control character. Names are
/// path segments of their records and are substituted into templated permissions, where
/// any of these would widen or void the permission.
pub(super) fn check_name(kind: &'static str, name: &str) -> Result<(), DirectoryError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 128 bytes")
    } else if name.contains('/') {
        Some("it contains `/`")
    } else if name.contains(['*', '+', '#', '?']) {
        Some("it contains a wildcard (`*`, `+`, `#` or `?`)")
    } else if name.contains(['{', '}']) {
        Some("it contains a template brace (`{` or `}`)")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(DirectoryError::InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Whether `name` matches a listing pattern, where `*` matches any run of characters.
pub(super) fn name_matches(pattern: Option<&str>, name: &str) -> bool {
    match pattern {
        None => true,
        Some(pattern) => {
            Glob::parse(&format!("/{pattern}")).is_ok_and(|glob| glob.matches(&format!("/{name}")))
        }
    }
}
