//! The storage engine contract: what `Txn` and the group commit need of
//! the ordered key-value store underneath, and nothing more.
//!
//! - `Engine`: snapshots, the newest committed value (for the commit
//!   leader), and an atomic write of a write set — optionally checking, in
//!   the same step, that nothing a transaction read for update changed
//!   after its snapshot (`ReadSet`).
//! - `EngineSnapshot`: point reads and bounded range scans in key order,
//!   all at one sequence number.
//! - `EngineCursor`: a scan, one entry at a time.
//!
//! Dispatch goes through the enums `AnyEngine`, `AnySnapshot` and
//! `AnyCursor`, not `dyn`: a `match` on a small enum costs RocksDB
//! nothing measurable, and the generic associated types stay zero-cost.

use std::path::Path;

use crate::error::Result;
use crate::storage::engines::cluster::ClusterConfig;
use crate::storage::engines::etcd::{Etcd, EtcdCursor, EtcdSnapshot};
use crate::storage::engines::memory::{Memory, MemoryCursor, MemorySnapshot};
use crate::storage::engines::rocks::{Rocks, RocksCursor, RocksSnapshot};
#[cfg(feature = "tikv")]
use crate::storage::engines::tikv::{Tikv, TikvCursor, TikvSnapshot};
use crate::storage::hash::FxHashSet as HashSet;

/// How conflicts between transactions are found (docs/ARCHITECTURE.md,
/// "Storage engines").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConflictMode {
    /// The group commit's tracker remembers recent writes by sequence
    /// number; exact because this process is the store's only writer.
    InProcess,
    /// The read set goes to `Engine::write`, which refuses it if any key
    /// in it has a version newer than the transaction's snapshot: the path
    /// of engines several processes write (etcd, TiKV).
    InEngine,
}

/// What a transaction read for update, for an in-engine conflict check.
#[derive(Clone)]
pub(crate) struct ReadSet {
    /// The sequence number of the transaction's snapshot.
    pub snapshot: u64,
    pub keys: HashSet<Vec<u8>>,
    /// Ranges `[lower, upper)` scanned for update: any insert, change or
    /// deletion inside one after the snapshot is a conflict.
    pub ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ReadSet {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ranges.is_empty()
    }

    pub fn as_reads(&self) -> Reads<'_> {
        Reads {
            snapshot: self.snapshot,
            keys: &self.keys,
            ranges: &self.ranges,
        }
    }
}

/// A read set by reference (see `ReadSet`).
#[derive(Clone, Copy)]
pub(crate) struct Reads<'a> {
    pub snapshot: u64,
    pub keys: &'a HashSet<Vec<u8>>,
    pub ranges: &'a [(Vec<u8>, Vec<u8>)],
}

/// An ordered, transactional key-value store.
pub(crate) trait Engine: Send + Sync {
    type Snapshot<'a>: EngineSnapshot
    where
        Self: 'a;

    /// A consistent view of everything committed so far.
    fn snapshot(&self) -> Self::Snapshot<'_>;

    /// A consistent view of everything committed when it is first read
    /// (at least what was committed before this call): for a transaction
    /// that may never read the store, where a snapshot costs a request.
    fn snapshot_at_first_use(&self) -> Self::Snapshot<'_> {
        self.snapshot()
    }

    /// The newest committed value (only the commit leader, the sole writer
    /// of this process, may rely on it being current).
    fn get_latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The sequence number of the last write.
    fn latest_sequence(&self) -> u64;

    /// The newest values of `keys` and the sequence number they are as
    /// of, in one step where the engine can (the commit leader's reads on a
    /// shared store: one round trip for the group's counters).
    fn get_latest_many(&self, keys: &[Vec<u8>]) -> Result<(u64, Vec<Option<Vec<u8>>>)> {
        let seq = self.latest_sequence();
        let values = keys
            .iter()
            .map(|k| self.get_latest(k))
            .collect::<Result<_>>()?;
        Ok((seq, values))
    }

    /// Writes `entries` (None: delete) as one atomic step, `bytes` being
    /// their total size (a buffer hint). With `guards`, first checks that
    /// no key of any read set changed after its snapshot, in the same
    /// atomic step (`CONFLICT` otherwise, and nothing is written). Returns
    /// the sequence number the write ends at. `OUTCOME_UNKNOWN`: the write
    /// may or may not have happened.
    fn write<'k>(
        &self,
        entries: impl Iterator<Item = (&'k [u8], Option<&'k [u8]>)>,
        bytes: usize,
        sync: bool,
        guards: &[ReadSet],
    ) -> Result<u64>;

    /// Whether any of `sets` already conflicts with a committed write
    /// (the leader's check of each request before it joins a batch): on a
    /// remote store one request for them all.
    fn conflicts(&self, sets: &[Reads<'_>]) -> Result<bool>;
}

/// A consistent, read-only view at one sequence number.
pub(crate) trait EngineSnapshot {
    type Cursor<'c>: EngineCursor
    where
        Self: 'c;

    /// The sequence number this snapshot sees up to.
    fn sequence(&self) -> u64;

    /// `sequence`, if the snapshot has one yet: an engine may take it at
    /// first use (etcd, where it costs a request).
    fn sequence_if_taken(&self) -> Option<u64> {
        Some(self.sequence())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Several point reads at once, in the order asked.
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Keys in `[lower, upper)`, ascending or descending.
    fn cursor(&self, lower: &[u8], upper: &[u8], reverse: bool) -> Self::Cursor<'_>;
}

/// A bounded scan over a snapshot.
pub(crate) trait EngineCursor {
    /// The current entry without advancing.
    fn peek(&mut self) -> Option<Result<(&[u8], &[u8])>>;

    fn advance(&mut self);
}

/// Which engine a database runs on (`Options::store`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Store {
    /// RocksDB in the data directory: durable, the default.
    #[default]
    Rocks,
    /// In memory, gone when the database closes: fast tests, and the
    /// reference engine of the conformance suite. The derived search
    /// indexes still live in the data directory.
    Memory,
    /// An etcd v3 cluster several onedb servers share
    /// (`etcd://HOST:PORT,…/NAMESPACE`); each server keeps its derived
    /// indexes in its own data directory.
    Etcd(ClusterConfig),
    /// A TiKV cluster several onedb servers share
    /// (`tikv://PD_HOST:PORT,…/NAMESPACE`; needs the cargo feature `tikv`).
    Tikv(ClusterConfig),
}

impl Store {
    pub fn parse(text: &str) -> Result<Store> {
        match text {
            "rocks" | "rocksdb" => Ok(Store::Rocks),
            "memory" => Ok(Store::Memory),
            _ if text.starts_with("etcd://") => {
                Ok(Store::Etcd(ClusterConfig::parse(text, "etcd")?))
            }
            _ if text.starts_with("tikv://") => {
                Ok(Store::Tikv(ClusterConfig::parse(text, "tikv")?))
            }
            _ => Err(crate::error::Error::invalid(format!(
                "store must be rocks, memory, etcd://HOST:PORT,…/NAMESPACE or tikv://PD_HOST:PORT,…/NAMESPACE, not {text:?}"
            ))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Store::Rocks => "rocks",
            Store::Memory => "memory",
            Store::Etcd(_) => "etcd",
            Store::Tikv(_) => "tikv",
        }
    }
}

/// The engines onedb runs on, dispatched without `dyn`.
pub(crate) enum AnyEngine {
    Rocks(Rocks),
    Memory(Memory),
    Etcd(Etcd),
    #[cfg(feature = "tikv")]
    Tikv(Tikv),
}

impl AnyEngine {
    /// Opens `store`; RocksDB keeps its files in `dir`.
    pub fn open(store: &Store, dir: &Path, mode: Option<ConflictMode>) -> Result<AnyEngine> {
        Ok(match store {
            Store::Rocks => AnyEngine::Rocks(Rocks::open(dir)?),
            Store::Memory => {
                AnyEngine::Memory(Memory::new(mode.unwrap_or(ConflictMode::InEngine), true))
            }
            Store::Etcd(config) => AnyEngine::Etcd(Etcd::open(config)?),
            #[cfg(feature = "tikv")]
            Store::Tikv(config) => AnyEngine::Tikv(Tikv::open(config)?),
            #[cfg(not(feature = "tikv"))]
            Store::Tikv(_) => {
                return Err(crate::error::Error::invalid(
                    "this onedb was built without TiKV support; build it with `cargo build --release --features tikv`",
                ));
            }
        })
    }

    /// How this engine's conflicts are found.
    pub fn conflict_mode(&self) -> ConflictMode {
        match self {
            AnyEngine::Rocks(_) => ConflictMode::InProcess,
            AnyEngine::Memory(m) => m.mode(),
            AnyEngine::Etcd(_) => ConflictMode::InEngine,
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(_) => ConflictMode::InEngine,
        }
    }

    /// Whether other processes may write this store too: then nothing
    /// read from it may be kept across transactions unchecked, and the
    /// commit number and counters are guarded at write time.
    pub fn shared(&self) -> bool {
        match self {
            AnyEngine::Rocks(_) | AnyEngine::Memory(_) => false,
            AnyEngine::Etcd(_) => true,
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(_) => true,
        }
    }

    /// The store's name, for messages.
    pub fn store_name(&self) -> &'static str {
        match self {
            AnyEngine::Rocks(_) => "rocks",
            AnyEngine::Memory(_) => "memory",
            AnyEngine::Etcd(_) => "etcd",
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(_) => "tikv",
        }
    }

    pub fn as_rocks(&self) -> Option<&Rocks> {
        match self {
            AnyEngine::Rocks(r) => Some(r),
            _ => None,
        }
    }

    /// Tests: requests sent to a remote store (None: a local one).
    #[cfg(test)]
    pub fn remote_requests(&self) -> Option<u64> {
        match self {
            AnyEngine::Etcd(e) => Some(e.requests()),
            _ => None,
        }
    }

    /// Tests: the next write fails before it happens (`unknown`: after it
    /// happened, reported as `OUTCOME_UNKNOWN`).
    #[cfg(test)]
    pub fn fail_next_write(&self, unknown: bool) {
        match self {
            AnyEngine::Rocks(r) => r.fail_next_write(unknown),
            AnyEngine::Memory(m) => m.fail_next_write(unknown),
            AnyEngine::Etcd(e) => e.fail_next_write(unknown),
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(e) => e.fail_next_write(unknown),
        }
    }
}

impl Engine for AnyEngine {
    type Snapshot<'a> = AnySnapshot<'a>;

    fn snapshot_at_first_use(&self) -> AnySnapshot<'_> {
        match self {
            AnyEngine::Etcd(e) => AnySnapshot::Etcd(e.snapshot_at_first_use()),
            other => other.snapshot(),
        }
    }

    #[inline]
    fn snapshot(&self) -> AnySnapshot<'_> {
        match self {
            AnyEngine::Rocks(r) => AnySnapshot::Rocks(r.snapshot()),
            AnyEngine::Memory(m) => AnySnapshot::Memory(m.snapshot()),
            AnyEngine::Etcd(e) => AnySnapshot::Etcd(e.snapshot()),
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(e) => AnySnapshot::Tikv(e.snapshot()),
        }
    }

    #[inline]
    fn get_latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            AnyEngine::Rocks(r) => r.get_latest(key),
            AnyEngine::Memory(m) => m.get_latest(key),
            AnyEngine::Etcd(e) => e.get_latest(key),
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(e) => e.get_latest(key),
        }
    }

    #[inline]
    fn latest_sequence(&self) -> u64 {
        match self {
            AnyEngine::Rocks(r) => r.latest_sequence(),
            AnyEngine::Memory(m) => m.latest_sequence(),
            AnyEngine::Etcd(e) => e.latest_sequence(),
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(e) => e.latest_sequence(),
        }
    }

    fn get_latest_many(&self, keys: &[Vec<u8>]) -> Result<(u64, Vec<Option<Vec<u8>>>)> {
        match self {
            AnyEngine::Rocks(r) => r.get_latest_many(keys),
            AnyEngine::Memory(m) => m.get_latest_many(keys),
            AnyEngine::Etcd(e) => e.get_latest_many(keys),
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(e) => e.get_latest_many(keys),
        }
    }

    #[inline]
    fn write<'k>(
        &self,
        entries: impl Iterator<Item = (&'k [u8], Option<&'k [u8]>)>,
        bytes: usize,
        sync: bool,
        guards: &[ReadSet],
    ) -> Result<u64> {
        match self {
            AnyEngine::Rocks(r) => r.write(entries, bytes, sync, guards),
            AnyEngine::Memory(m) => m.write(entries, bytes, sync, guards),
            AnyEngine::Etcd(e) => e.write(entries, bytes, sync, guards),
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(e) => e.write(entries, bytes, sync, guards),
        }
    }

    #[inline]
    fn conflicts(&self, sets: &[Reads<'_>]) -> Result<bool> {
        if sets
            .iter()
            .all(|s| s.keys.is_empty() && s.ranges.is_empty())
        {
            return Ok(false);
        }
        match self {
            AnyEngine::Rocks(r) => r.conflicts(sets),
            AnyEngine::Memory(m) => m.conflicts(sets),
            AnyEngine::Etcd(e) => e.conflicts(sets),
            #[cfg(feature = "tikv")]
            AnyEngine::Tikv(e) => e.conflicts(sets),
        }
    }
}

pub(crate) enum AnySnapshot<'a> {
    Rocks(RocksSnapshot<'a>),
    Memory(MemorySnapshot<'a>),
    Etcd(EtcdSnapshot<'a>),
    #[cfg(feature = "tikv")]
    Tikv(TikvSnapshot<'a>),
}

impl EngineSnapshot for AnySnapshot<'_> {
    type Cursor<'c>
        = AnyCursor<'c>
    where
        Self: 'c;

    #[inline]
    fn sequence(&self) -> u64 {
        match self {
            AnySnapshot::Rocks(s) => s.sequence(),
            AnySnapshot::Memory(s) => s.sequence(),
            AnySnapshot::Etcd(s) => s.sequence(),
            #[cfg(feature = "tikv")]
            AnySnapshot::Tikv(s) => s.sequence(),
        }
    }

    #[inline]
    fn sequence_if_taken(&self) -> Option<u64> {
        match self {
            AnySnapshot::Etcd(s) => s.sequence_if_taken(),
            other => Some(other.sequence()),
        }
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            AnySnapshot::Rocks(s) => s.get(key),
            AnySnapshot::Memory(s) => s.get(key),
            AnySnapshot::Etcd(s) => s.get(key),
            #[cfg(feature = "tikv")]
            AnySnapshot::Tikv(s) => s.get(key),
        }
    }

    #[inline]
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        match self {
            AnySnapshot::Rocks(s) => s.get_many(keys),
            AnySnapshot::Memory(s) => s.get_many(keys),
            AnySnapshot::Etcd(s) => s.get_many(keys),
            #[cfg(feature = "tikv")]
            AnySnapshot::Tikv(s) => s.get_many(keys),
        }
    }

    #[inline]
    fn cursor(&self, lower: &[u8], upper: &[u8], reverse: bool) -> AnyCursor<'_> {
        match self {
            AnySnapshot::Rocks(s) => AnyCursor::Rocks(s.cursor(lower, upper, reverse)),
            AnySnapshot::Memory(s) => AnyCursor::Memory(s.cursor(lower, upper, reverse)),
            AnySnapshot::Etcd(s) => AnyCursor::Etcd(s.cursor(lower, upper, reverse)),
            #[cfg(feature = "tikv")]
            AnySnapshot::Tikv(s) => AnyCursor::Tikv(s.cursor(lower, upper, reverse)),
        }
    }
}

pub(crate) enum AnyCursor<'a> {
    Rocks(RocksCursor<'a>),
    Memory(MemoryCursor<'a>),
    Etcd(EtcdCursor<'a>),
    #[cfg(feature = "tikv")]
    Tikv(TikvCursor<'a>),
}

impl EngineCursor for AnyCursor<'_> {
    #[inline]
    fn peek(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        match self {
            AnyCursor::Rocks(c) => c.peek(),
            AnyCursor::Memory(c) => c.peek(),
            AnyCursor::Etcd(c) => c.peek(),
            #[cfg(feature = "tikv")]
            AnyCursor::Tikv(c) => c.peek(),
        }
    }

    #[inline]
    fn advance(&mut self) {
        match self {
            AnyCursor::Rocks(c) => c.advance(),
            AnyCursor::Memory(c) => c.advance(),
            AnyCursor::Etcd(c) => c.advance(),
            #[cfg(feature = "tikv")]
            AnyCursor::Tikv(c) => c.advance(),
        }
    }
}
