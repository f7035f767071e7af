//! The engines behind `storage::engine::Engine`: RocksDB (durable, the
//! default), a versioned in-memory map (fast tests, the conformance
//! suite's reference), and etcd and TiKV (one store several servers
//! share; TiKV behind the cargo feature `tikv`).

pub(crate) mod cluster;
pub(crate) mod etcd;
pub(crate) mod memory;
pub(crate) mod rocks;
#[cfg(feature = "tikv")]
pub(crate) mod tikv;
