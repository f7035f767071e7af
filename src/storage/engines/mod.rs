//! The engines behind `storage::engine::Engine`: RocksDB (durable, the
//! default), a versioned in-memory map (fast tests, the conformance
//! suite's reference) and etcd (one store several servers share).

pub(crate) mod etcd;
pub(crate) mod memory;
pub(crate) mod rocks;
