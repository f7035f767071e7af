//! The RocksDB engine behind the `Engine` trait. The only file that
//! touches `rocksdb` directly. Conflicts are found in process (the group
//! commit's tracker): this process is the store's only writer.
#![allow(
    clippy::disallowed_types,
    reason = "the one place raw RocksDB is allowed (clippy.toml)"
)]

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, DBRawIterator, Options, ReadOptions, WriteBatch, WriteOptions,
};

use crate::error::{Error, Result};
use crate::storage::engine::{Engine, EngineCursor, EngineSnapshot, ReadSet, Reads};

/// Tuning that bounds memory: a shared block cache and small memtables.
const BLOCK_CACHE_BYTES: usize = 64 << 20;
const WRITE_BUFFER_BYTES: usize = 32 << 20;

/// The RocksDB options onedb opens its data directory with. Public so that
/// benchmarks can measure raw RocksDB with exactly the same settings.
pub fn options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.increase_parallelism(2);
    opts.set_write_buffer_size(WRITE_BUFFER_BYTES);
    opts.set_max_write_buffer_number(3);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    // The WAL is never disabled; relaxed durability only skips the sync.
    opts.set_manual_wal_flush(false);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(BLOCK_CACHE_BYTES));
    table.set_bloom_filter(10.0, false);
    // Partitioned index and filters: a large SST's index is many small
    // blocks, each fitting a cache shard. With one monolithic index block
    // bigger than a shard (1 MiB of a 64 MiB cache), every point lookup
    // re-read and decompressed the whole index (~300× slower gets on a
    // 100k-thing database; docs/performance.md). Memory stays bounded by
    // the cache; the top level stays pinned.
    table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_cache_index_and_filter_blocks(true);
    table.set_cache_index_and_filter_blocks_with_high_priority(true);
    table.set_pin_top_level_index_and_filter(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    opts.set_block_based_table_factory(&table);
    opts
}

pub(crate) struct Rocks {
    db: rocksdb::DB,
    /// Tests make the next write fail, to check what survives a failed
    /// commit: 1 before writing, 2 after (outcome unknown).
    #[cfg(test)]
    fail_next_write: std::sync::atomic::AtomicU8,
}

impl Engine for Rocks {
    type Snapshot<'a> = RocksSnapshot<'a>;

    #[inline]
    fn snapshot(&self) -> RocksSnapshot<'_> {
        RocksSnapshot {
            snap: self.db.snapshot(),
        }
    }

    #[inline]
    fn get_latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?)
    }

    #[inline]
    fn latest_sequence(&self) -> u64 {
        self.db.latest_sequence_number()
    }

    fn write<'k>(
        &self,
        entries: impl Iterator<Item = (&'k [u8], Option<&'k [u8]>)>,
        bytes: usize,
        sync: bool,
        guards: &[ReadSet],
    ) -> Result<u64> {
        if guards.iter().any(|g| !g.is_empty()) {
            return Err(Error::invalid(
                "RocksDB finds conflicts in process; it takes no read sets",
            ));
        }
        #[cfg(test)]
        let fault = self
            .fail_next_write
            .swap(0, std::sync::atomic::Ordering::SeqCst);
        #[cfg(test)]
        if fault == 1 {
            return Err(Error::io("injected write failure"));
        }
        let mut batch = WriteBatch::with_capacity_bytes(bytes);
        for (key, value) in entries {
            match value {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            }
        }
        self.db.write_opt(batch, &write_options(sync))?;
        #[cfg(test)]
        if fault == 2 {
            return Err(Error::outcome_unknown(
                "injected: written, reported unknown",
            ));
        }
        Ok(self.db.latest_sequence_number())
    }

    fn conflicts(&self, _: &[Reads<'_>]) -> Result<bool> {
        // The group commit's tracker decides (ConflictMode::InProcess).
        Ok(false)
    }
}

impl Rocks {
    pub fn open(dir: &Path) -> Result<Rocks> {
        let db = rocksdb::DB::open(&options(), dir)?;
        Ok(Rocks {
            db,
            #[cfg(test)]
            fail_next_write: Default::default(),
        })
    }

    #[cfg(test)]
    pub fn fail_next_write(&self, unknown: bool) {
        self.fail_next_write
            .store(1 + u8::from(unknown), std::sync::atomic::Ordering::SeqCst);
    }

    /// A consistent copy of the database in `dir` (hard links where possible).
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    /// Makes the sorted files `paths` (written by `write_sst`) part of the
    /// database in one step: RocksDB adds all of them in one manifest
    /// write, so a crash leaves either all or none. They may overlap one
    /// another (they then go to level 0); they are moved, not copied.
    pub fn ingest(&self, paths: &[std::path::PathBuf]) -> Result<()> {
        let mut opts = rocksdb::IngestExternalFileOptions::default();
        opts.set_move_files(true);
        opts.set_allow_global_seqno(true);
        opts.set_allow_blocking_flush(true);
        self.db.ingest_external_file_opts(&opts, paths.to_vec())?;
        Ok(())
    }
}

/// Writes `entries` (ascending keys, each once) to a new sorted table
/// file at `path`, outside the database, for `Rocks::ingest`.
pub(crate) fn write_sst<'k>(
    path: &Path,
    entries: impl Iterator<Item = (&'k [u8], &'k [u8])>,
) -> Result<()> {
    let opts = options();
    let mut writer = rocksdb::SstFileWriter::create(&opts);
    writer.open(path)?;
    for (key, value) in entries {
        writer.put(key, value)?;
    }
    writer.finish()?;
    Ok(())
}

/// The write options of a commit: `sync` makes the acknowledgment wait for
/// the WAL to reach the disk.
pub fn write_options(sync: bool) -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(sync);
    w.disable_wal(false);
    w
}

pub(crate) struct RocksSnapshot<'a> {
    snap: rocksdb::Snapshot<'a>,
}

impl EngineSnapshot for RocksSnapshot<'_> {
    type Cursor<'c>
        = RocksCursor<'c>
    where
        Self: 'c;

    #[inline]
    fn sequence(&self) -> u64 {
        self.snap.sequence_number()
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.snap.get(key)?)
    }

    /// Several point reads in one call (RocksDB's MultiGet shares the
    /// lookup work between them).
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        self.snap
            .multi_get(keys)
            .into_iter()
            .map(|r| r.map_err(Into::into))
            .collect()
    }

    fn cursor(&self, lower: &[u8], upper: &[u8], reverse: bool) -> RocksCursor<'_> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(lower.to_vec());
        opts.set_iterate_upper_bound(upper.to_vec());
        let mut it = self.snap.raw_iterator_opt(opts);
        if reverse {
            it.seek_to_last();
        } else {
            it.seek_to_first();
        }
        RocksCursor {
            it,
            reverse,
            failed: false,
        }
    }
}

/// A bounded scan over a snapshot.
pub(crate) struct RocksCursor<'a> {
    it: DBRawIterator<'a>,
    reverse: bool,
    failed: bool,
}

impl EngineCursor for RocksCursor<'_> {
    #[inline]
    fn peek(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        if self.failed {
            return None;
        }
        match self.it.item() {
            Some(item) => Some(Ok(item)),
            None => match self.it.status() {
                Ok(()) => None,
                Err(e) => {
                    self.failed = true;
                    Some(Err(e.into()))
                }
            },
        }
    }

    #[inline]
    fn advance(&mut self) {
        if self.reverse {
            self.it.prev();
        } else {
            self.it.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_returns_the_sequence_it_ends_at() {
        let dir = tempfile::tempdir().unwrap();
        let rocks = Rocks::open(dir.path()).unwrap();
        let entries: [(&[u8], Option<&[u8]>); 2] = [(b"a", Some(b"1")), (b"b", Some(b"2"))];
        let seq = rocks.write(entries.into_iter(), 0, true, &[]).unwrap();
        assert_eq!(seq, rocks.latest_sequence());
        let snap = rocks.snapshot();
        assert_eq!(snap.sequence(), seq);
        assert_eq!(snap.get(b"b").unwrap(), Some(b"2".to_vec()));
    }
}
