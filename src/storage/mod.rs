//! The storage facade: an ordered, transactional key-value interface —
//! snapshots, point gets, bounded range scans, atomic commits with conflict
//! detection and bounded counters — over a storage engine (`engine.rs`:
//! RocksDB or in memory, `engines/`).
//!
//! `Txn` and the group commit are engine-independent; an engine gives
//! snapshots, ordered reads and atomic writes, and finds conflicts either
//! through the group commit's tracker or itself. See docs/ARCHITECTURE.md,
//! "Storage engines".

mod cache;
mod commit;
#[cfg(test)]
mod conformance;
mod engine;
mod engines;
pub(crate) mod hash;
mod stage;
mod txn;

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::keys::{self, FORMAT_VERSION};

pub(crate) use commit::{CommitQueue, Committed, CommittedEvents, EventHook};
pub use engine::Store;
pub(crate) use engine::{AnyEngine, Engine};
pub use engines::cluster::ClusterConfig;
pub use engines::rocks::{options as rocksdb_options, write_options as rocksdb_write_options};
pub(crate) use stage::Stage;
pub(crate) use txn::PlatformTables;
pub(crate) use txn::out_of_date;
pub use txn::{Scan, Scope, Txn};

/// When a commit is acknowledged (DESIGN.md "Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After the write-ahead log is synced to disk: survives power loss.
    #[default]
    Sync,
    /// After the write-ahead log reached the operating system: survives a
    /// crash of onedb, not of the machine.
    Relaxed,
}

impl Durability {
    /// Whether a commit's WAL write must be synced before it is acknowledged.
    pub fn syncs_wal(self) -> bool {
        matches!(self, Durability::Sync)
    }

    pub fn parse(text: &str) -> Result<Durability> {
        match text {
            "sync" => Ok(Durability::Sync),
            "relaxed" => Ok(Durability::Relaxed),
            _ => Err(Error::invalid(format!(
                "durability must be sync or relaxed, not {text:?}"
            ))),
        }
    }
}

/// Where `onedb load` stages its table files, inside the data directory.
pub(crate) const STAGING_DIR: &str = "load-staging";

pub(crate) struct Storage {
    engine: Arc<AnyEngine>,
    dir: std::path::PathBuf,
    durability: Durability,
    commits: Arc<CommitQueue>,
    /// Serializes the process-wide checks of `open` with nothing else; kept
    /// so a second `open` of the same directory fails cleanly (RocksDB's LOCK).
    _open: Mutex<()>,
}

impl Storage {
    /// Opens the RocksDB store in `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<Storage> {
        Self::open_store(dir, durability, Store::Rocks)
    }

    /// Opens `store`; `dir` holds RocksDB's files (and, for every store,
    /// the derived indexes beside them).
    pub fn open_store(dir: &Path, durability: Durability, store: Store) -> Result<Storage> {
        std::fs::create_dir_all(dir)?;
        let engine = AnyEngine::open(&store, dir, None).map_err(|e| {
            if e.message.contains("lock") || e.message.contains("LOCK") {
                Error::new(
                    ErrorCode::Conflict,
                    format!(
                        "{}: the data directory is in use by another onedb process",
                        dir.display()
                    ),
                )
            } else {
                e
            }
        })?;
        Self::with_engine(dir, durability, engine)
    }

    /// A store over an engine already open (the conformance suite picks
    /// the engine and its conflict mode).
    pub(crate) fn with_engine(
        dir: &Path,
        durability: Durability,
        engine: AnyEngine,
    ) -> Result<Storage> {
        let storage = Storage {
            engine: Arc::new(engine),
            dir: dir.to_path_buf(),
            durability,
            commits: Arc::default(),
            _open: Mutex::new(()),
        };
        storage.check_format_version()?;
        // What a killed `onedb load` staged was never part of the database.
        let staged = storage.dir.join(STAGING_DIR);
        if staged.exists() {
            std::fs::remove_dir_all(&staged)?;
        }
        Ok(storage)
    }

    /// A new directory gets the current format; an existing one must match.
    fn check_format_version(&self) -> Result<()> {
        match self.engine.get_latest(&keys::format_version())? {
            None => {
                let version = FORMAT_VERSION.to_be_bytes();
                let entries: [(&[u8], Option<&[u8]>); 1] =
                    [(&keys::format_version(), Some(&version))];
                self.engine.write(entries.into_iter(), 0, true, &[])?;
                Ok(())
            }
            Some(bytes) => {
                let found = bytes
                    .as_slice()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::corruption("format version", "not 4 bytes"))?;
                if found == FORMAT_VERSION {
                    Ok(())
                } else {
                    Err(Error::new(
                        ErrorCode::InvalidArgument,
                        format!(
                            "data directory has format version {found}; this onedb reads version {FORMAT_VERSION}"
                        ),
                    ))
                }
            }
        }
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// A read-only transaction: a consistent snapshot, never committed.
    pub fn read(&self, scope: Scope) -> Txn<'_> {
        Txn::begin(self, scope, false)
    }

    /// A read-write transaction over a snapshot, committed atomically.
    pub fn write(&self, scope: Scope) -> Txn<'_> {
        Txn::begin(self, scope, true)
    }

    /// A write transaction that, on a shared store, may read the records
    /// every write reads (`keys::is_cached_record`) from copies kept by
    /// earlier transactions instead of asking the store each time. Its
    /// commit fails with `CONFLICT` if one of them changed since, and
    /// `Txn::guessed_wrong` tells whether an error may be one's doing: for
    /// callers that run the transaction again then (`Session::run_in`).
    pub(crate) fn write_guessing(&self, scope: Scope) -> Txn<'_> {
        Txn::begin_guessing(self, scope)
    }

    /// The newest committed values of `keys` (each in `scope`), outside
    /// any transaction: one request on a remote store, where a snapshot
    /// first costs a request for its revision. For checks that want the
    /// latest word, such as whether a session's token still holds. Also
    /// returns the sequence they were read at.
    pub fn read_latest(
        &self,
        scope: Scope,
        keys: &[Vec<u8>],
    ) -> Result<(u64, Vec<Option<Vec<u8>>>)> {
        for key in keys {
            scope.check(key, false)?;
        }
        self.engine.get_latest_many(keys)
    }

    pub(crate) fn engine(&self) -> &Arc<AnyEngine> {
        &self.engine
    }

    /// The sequence number of the store's last write.
    pub fn latest_sequence(&self) -> u64 {
        self.engine.latest_sequence()
    }

    /// RocksDB, or a clear error for what only it can do.
    fn rocks(&self, what: &str) -> Result<&engines::rocks::Rocks> {
        self.engine.as_rocks().ok_or_else(|| {
            Error::invalid(format!(
                "{what} needs the rocks store; this database runs on {}",
                self.engine.store_name()
            ))
        })
    }

    pub(crate) fn commits(&self) -> &Arc<CommitQueue> {
        &self.commits
    }

    /// How many commits the database has applied (stored under `keys::commit_seq`).
    pub fn last_commit(&self) -> Result<u64> {
        match self.engine.get_latest(&keys::commit_seq())? {
            Some(bytes) => keys::decode_u64(&bytes),
            None => Ok(0),
        }
    }

    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        self.rocks("a backup")?.checkpoint(dir)
    }

    /// Where a bulk load gathers its entries before `ingest` (beside the
    /// database, on the same file system, so ingesting moves files).
    pub fn stage(&self) -> Result<Stage> {
        self.rocks("a bulk load")?;
        Stage::new(self.dir.join(STAGING_DIR))
    }

    /// Makes everything `stage` gathered part of the database at once: a
    /// crash before leaves nothing of it, after leaves all of it. Nothing
    /// else may write meanwhile (`onedb load` holds the directory alone):
    /// the entries bypass the commit queue and its caches.
    pub fn ingest(&self, mut stage: Stage) -> Result<()> {
        let files = stage.finish()?;
        if !files.is_empty() {
            self.rocks("a bulk load")?.ingest(&files)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
