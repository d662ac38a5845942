//! pathmq storage: [`Store`](pathmq_core::Store) implementations (DESIGN.md §1).
//!
//! - [`RedbStore`]: the default. Records in one embedded redb file; writes go through a
//!   single writer thread that commits many operations per durable transaction (group
//!   commit); point reads and queries run on reader threads, plain range reads on the
//!   blocking pool, each in a read transaction. Open it with
//!   [`RedbStore::open`], or [`RedbStore::builder`] for the batch limit
//!   ([`RedbStoreBuilder::max_batch`]) and queue size; [`OpenError`] says why it failed.
//! - [`MemoryStore`]: records in memory, for tests and ephemeral brokers; the reference
//!   twin of the redb store (the shared suite in `tests/suite.rs` runs against both).
//!
//! Both order results by path, and read only the key range starting with a glob's
//! [`literal_prefix`](pathmq_core::Glob::literal_prefix). Queries (criteria, sort, skip,
//! limit, fields) are evaluated by [`pathmq_core::query`]; the stores decide where: the
//! redb store on its reader threads, as it reads, never on a runtime worker.

mod memory;
mod redb_store;

pub use memory::MemoryStore;
pub use redb_store::{CommitStats, OpenError, RedbStore, RedbStoreBuilder};
