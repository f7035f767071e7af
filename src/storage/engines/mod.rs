//! The engines behind `storage::engine::Engine`: RocksDB (durable, the
//! default) and a versioned in-memory map (fast tests, the conformance
//! suite's reference).

pub(crate) mod memory;
pub(crate) mod rocks;
