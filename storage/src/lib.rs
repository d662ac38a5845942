//! pathmq storage: [`Store`](pathmq_core::Store) implementations (DESIGN.md §1).
//!
//! - [`RedbStore`]: the default. Records in one embedded redb file; writes go through a
//!   single writer thread that commits many operations per durable transaction (group
//!   commit); reads run on the blocking pool in read transactions. Open it with
//!   [`RedbStore::open`], or [`RedbStore::builder`] for the batch limit
//!   ([`RedbStoreBuilder::max_batch`]) and queue size; [`OpenError`] says why it failed.
//! - [`MemoryStore`]: records in memory, for tests and ephemeral brokers; the reference
//!   twin of the redb store (the shared suite in `tests/suite.rs` runs against both).
//!
//! Both order results by path, and read only the key range starting with a glob's
//! [`literal_prefix`](pathmq_core::Glob::literal_prefix).

mod memory;
mod redb_store;

pub use memory::MemoryStore;
pub use redb_store::{CommitStats, OpenError, RedbStore, RedbStoreBuilder};
