//! pathmq storage: [`Store`](pathmq_core::Store) implementations.
//!
//! - [`MemoryStore`]: records in memory, for tests and ephemeral brokers.

mod memory;

pub use memory::MemoryStore;
