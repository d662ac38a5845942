//! Finding the records a glob matches, for reads and for removals alike.
//!
//! Every match of a glob starts with its [`Glob::literal_prefix`], and keys are ordered
//! bytewise, so the matches lie in one contiguous key range: the scan starts at the prefix
//! and stops at the first key that does not start with it. A glob without `*` is a point
//! lookup.

use pathmq_core::Glob;
use redb::{ReadableTable, StorageError, TableDefinition};

/// The one table: path → encoded record ([`super::codec`]).
pub(super) const RECORDS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("records");

/// Calls `visit(key, value)` for each record matching `glob`, in key order, until it
/// returns `false`.
///
/// # Errors
/// The engine's [`StorageError`]; `visit` may have been called for some records.
pub(super) fn for_each_match<T>(
    table: &T,
    glob: &Glob,
    mut visit: impl FnMut(&str, &[u8]) -> bool,
) -> Result<(), StorageError>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    if !glob.has_wildcard() {
        if let Some(value) = table.get(glob.as_str())? {
            visit(glob.as_str(), value.value());
        }
        return Ok(());
    }
    let prefix = glob.literal_prefix();
    for entry in table.range::<&str>(prefix..)? {
        let (key, value) = entry?;
        let key = key.value();
        if !key.starts_with(prefix) {
            break;
        }
        if glob.matches(key) && !visit(key, value.value()) {
            break;
        }
    }
    Ok(())
}
