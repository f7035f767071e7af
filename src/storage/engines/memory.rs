//! The in-memory engine: a versioned ordered map. Fast tests run on it,
//! and it is the reference of the conformance suite.
//!
//! Each key keeps its versions, each dated with the sequence number of
//! the write that made it; a deletion is a dated tombstone. A snapshot is a
//! sequence number, so its reads are exact: the newest version at or before
//! it. Versions no open snapshot can see are dropped as keys are written.
//!
//! Conflicts are found either by the group commit's tracker (in process,
//! as on RocksDB) or here (in engine): `write` refuses a read set one of
//! whose keys, or any key inside one of whose ranges, has a version newer
//! than the transaction's snapshot — a tombstone included, so a deletion
//! inside a range scanned for update is caught too.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::storage::engine::{ConflictMode, Engine, EngineCursor, EngineSnapshot, ReadSet, Reads};
use crate::storage::hash::FxHashSet as HashSet;

/// A key's versions, oldest first: (sequence, value or tombstone).
type Versions = Vec<(u64, Option<Vec<u8>>)>;

/// Entries a cursor copies per visit of the map: the lock is never held
/// between two calls, so a scan left open blocks no writer.
const CHUNK: usize = 64;

pub(crate) struct Memory {
    keys: RwLock<BTreeMap<Vec<u8>, Versions>>,
    /// The sequence number of the last write (published after it).
    seq: AtomicU64,
    /// Open snapshots by sequence number, with how many share it.
    open: Mutex<BTreeMap<u64, usize>>,
    mode: ConflictMode,
    /// False only for the conformance suite's faulty engine, which checks
    /// no read set: proof that the suite can fail.
    checks: bool,
    /// Tests: 1 fails the next write before it happens, 2 after.
    #[cfg(test)]
    fail_next_write: std::sync::atomic::AtomicU8,
}

impl Memory {
    pub fn new(mode: ConflictMode, checks: bool) -> Memory {
        Memory {
            keys: RwLock::new(BTreeMap::new()),
            seq: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            mode,
            checks,
            #[cfg(test)]
            fail_next_write: Default::default(),
        }
    }

    pub fn mode(&self) -> ConflictMode {
        self.mode
    }

    #[cfg(test)]
    pub fn fail_next_write(&self, unknown: bool) {
        self.fail_next_write
            .store(1 + u8::from(unknown), Ordering::SeqCst);
    }

    /// The oldest sequence a snapshot may still read at: `before` (the
    /// sequence before the write under way, which a snapshot taken now may
    /// still get) or an older open one.
    fn oldest_readable(&self, before: u64) -> u64 {
        self.open
            .lock()
            .keys()
            .next()
            .map_or(before, |s| (*s).min(before))
    }

    fn unregister(&self, seq: u64) {
        let mut open = self.open.lock();
        if let Some(n) = open.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                open.remove(&seq);
            }
        }
    }
}

/// The value `versions` hold at `seq` (None: absent or deleted).
fn visible(versions: &Versions, seq: u64) -> Option<&[u8]> {
    let at = versions.partition_point(|(s, _)| *s <= seq);
    versions
        .get(at.checked_sub(1)?)
        .and_then(|(_, v)| v.as_deref())
}

/// Whether `versions` changed after `seq`.
fn newer(versions: &Versions, seq: u64) -> bool {
    versions.last().is_some_and(|(s, _)| *s > seq)
}

/// Whether a key of `read`, or any key inside one of `ranges`, has a
/// version newer than `snapshot`.
fn conflicts_in(
    keys: &BTreeMap<Vec<u8>, Versions>,
    snapshot: u64,
    read: &HashSet<Vec<u8>>,
    ranges: &[(Vec<u8>, Vec<u8>)],
) -> bool {
    read.iter()
        .any(|k| keys.get(k).is_some_and(|v| newer(v, snapshot)))
        || ranges.iter().any(|(lower, upper)| {
            lower < upper
                && keys
                    .range::<[u8], _>((
                        Bound::Included(lower.as_slice()),
                        Bound::Excluded(upper.as_slice()),
                    ))
                    .any(|(_, v)| newer(v, snapshot))
        })
}

/// Drops the versions of `versions` no snapshot at or after `oldest` can
/// see; true if nothing is left worth keeping (a tombstone nobody sees
/// past).
fn prune(versions: &mut Versions, oldest: u64) -> bool {
    let at = versions.partition_point(|(s, _)| *s <= oldest);
    if at > 1 {
        versions.drain(..at - 1);
    }
    matches!(versions.as_slice(), [(seq, None)] if *seq <= oldest)
}

impl Engine for Memory {
    type Snapshot<'a> = MemorySnapshot<'a>;

    fn snapshot(&self) -> MemorySnapshot<'_> {
        // Registered under the lock that writers prune by, so no version
        // this snapshot needs is dropped between reading and registering.
        let mut open = self.open.lock();
        let seq = self.seq.load(Ordering::SeqCst);
        *open.entry(seq).or_default() += 1;
        MemorySnapshot { engine: self, seq }
    }

    fn get_latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let keys = self.keys.read();
        Ok(keys
            .get(key)
            .and_then(|v| v.last())
            .and_then(|(_, v)| v.clone()))
    }

    fn latest_sequence(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    fn write<'k>(
        &self,
        entries: impl Iterator<Item = (&'k [u8], Option<&'k [u8]>)>,
        _bytes: usize,
        _sync: bool,
        guards: &[ReadSet],
    ) -> Result<u64> {
        let mut keys = self.keys.write();
        #[cfg(test)]
        let fault = self.fail_next_write.swap(0, Ordering::SeqCst);
        #[cfg(test)]
        if fault == 1 {
            return Err(Error::io("injected write failure"));
        }
        if self.checks
            && guards
                .iter()
                .any(|g| conflicts_in(&keys, g.snapshot, &g.keys, &g.ranges))
        {
            return Err(Error::conflict(
                "a concurrent transaction changed the same data; retry",
            ));
        }
        let before = self.seq.load(Ordering::SeqCst);
        let seq = before + 1;
        let oldest = self.oldest_readable(before);
        for (key, value) in entries {
            let versions = keys.entry(key.to_vec()).or_default();
            versions.push((seq, value.map(<[u8]>::to_vec)));
            if prune(versions, oldest) {
                keys.remove(key);
            }
        }
        self.seq.store(seq, Ordering::SeqCst);
        #[cfg(test)]
        if fault == 2 {
            return Err(Error::outcome_unknown(
                "injected: written, reported unknown",
            ));
        }
        Ok(seq)
    }

    fn conflicts(&self, sets: &[Reads<'_>]) -> Result<bool> {
        let keys = self.keys.read();
        Ok(self.checks
            && sets
                .iter()
                .any(|s| conflicts_in(&keys, s.snapshot, s.keys, s.ranges)))
    }
}

pub(crate) struct MemorySnapshot<'a> {
    engine: &'a Memory,
    seq: u64,
}

impl Drop for MemorySnapshot<'_> {
    fn drop(&mut self) {
        self.engine.unregister(self.seq);
    }
}

impl EngineSnapshot for MemorySnapshot<'_> {
    type Cursor<'c>
        = MemoryCursor<'c>
    where
        Self: 'c;

    fn sequence(&self) -> u64 {
        self.seq
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let keys = self.engine.keys.read();
        Ok(keys
            .get(key)
            .and_then(|v| visible(v, self.seq))
            .map(<[u8]>::to_vec))
    }

    fn get_many(&self, wanted: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let keys = self.engine.keys.read();
        Ok(wanted
            .iter()
            .map(|k| {
                keys.get(*k)
                    .and_then(|v| visible(v, self.seq))
                    .map(<[u8]>::to_vec)
            })
            .collect())
    }

    fn cursor(&self, lower: &[u8], upper: &[u8], reverse: bool) -> MemoryCursor<'_> {
        MemoryCursor {
            engine: self.engine,
            seq: self.seq,
            lower: Bound::Included(lower.to_vec()),
            upper: Bound::Excluded(upper.to_vec()),
            reverse,
            buf: VecDeque::new(),
            done: lower >= upper,
        }
    }
}

/// A scan: copies the next `CHUNK` visible entries at a time.
pub(crate) struct MemoryCursor<'a> {
    engine: &'a Memory,
    seq: u64,
    /// What is left to visit: narrowed past each chunk.
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
    done: bool,
}

impl MemoryCursor<'_> {
    fn fill(&mut self) {
        let keys = self.engine.keys.read();
        let range = keys.range::<[u8], _>((bound(&self.lower), bound(&self.upper)));
        let seq = self.seq;
        let found =
            |(k, v): (&Vec<u8>, &Versions)| visible(v, seq).map(|v| (k.clone(), v.to_vec()));
        let taken: Vec<_> = if self.reverse {
            range.rev().filter_map(found).take(CHUNK).collect()
        } else {
            range.filter_map(found).take(CHUNK).collect()
        };
        if taken.len() < CHUNK {
            self.done = true;
        }
        if let Some((last, _)) = taken.last() {
            if self.reverse {
                self.upper = Bound::Excluded(last.clone());
            } else {
                self.lower = Bound::Excluded(last.clone());
            }
        }
        self.buf.extend(taken);
    }
}

fn bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl EngineCursor for MemoryCursor<'_> {
    fn peek(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        if self.buf.is_empty() && !self.done {
            self.fill();
        }
        self.buf
            .front()
            .map(|(k, v)| Ok((k.as_slice(), v.as_slice())))
    }

    fn advance(&mut self) {
        self.buf.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(m: &Memory, entries: &[(&[u8], Option<&[u8]>)]) -> u64 {
        m.write(entries.iter().copied(), 0, false, &[]).unwrap()
    }

    #[test]
    fn old_versions_live_while_a_snapshot_can_see_them() {
        let m = Memory::new(ConflictMode::InEngine, true);
        write(&m, &[(b"a", Some(b"1"))]);
        let old = m.snapshot();
        write(&m, &[(b"a", Some(b"2"))]);
        write(&m, &[(b"a", None)]);
        assert_eq!(old.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(m.snapshot().get(b"a").unwrap(), None);
        drop(old);
        write(&m, &[(b"a", Some(b"3"))]);
        let kept = m.keys.read().get(b"a".as_slice()).map_or(0, Vec::len);
        assert!(kept <= 2, "versions nobody sees are dropped: {kept} kept");
    }

    /// The write-time check on its own (another process's write between
    /// the leader's check and its write): a guard whose key or range
    /// changed after its snapshot — a deletion included — refuses the
    /// whole write, which leaves nothing behind.
    #[test]
    fn a_guarded_write_is_refused_whole_when_its_read_set_changed() {
        let m = Memory::new(ConflictMode::InEngine, true);
        write(&m, &[(b"k1", Some(b"1")), (b"r/1", Some(b"1"))]);
        let snapshot = m.latest_sequence();
        let guard = |keys: &[&[u8]], ranges: &[(&[u8], &[u8])]| ReadSet {
            snapshot,
            keys: keys.iter().map(|k| k.to_vec()).collect(),
            ranges: ranges
                .iter()
                .map(|(l, u)| (l.to_vec(), u.to_vec()))
                .collect(),
        };
        write(&m, &[(b"k1", Some(b"2"))]);
        write(&m, &[(b"r/1", None)]);
        let refused = [guard(&[b"k1"], &[]), guard(&[], &[(b"r/", b"r0")])];
        for g in refused {
            let err = m
                .write(
                    [(b"out".as_slice(), Some(b"x".as_slice()))].into_iter(),
                    0,
                    false,
                    &[g],
                )
                .unwrap_err();
            assert_eq!(err.code, crate::error::ErrorCode::Conflict);
            assert_eq!(m.get_latest(b"out").unwrap(), None, "nothing written");
        }
        let fine = guard(&[b"k2"], &[(b"s/", b"s0")]);
        m.write(
            [(b"out".as_slice(), Some(b"x".as_slice()))].into_iter(),
            0,
            false,
            &[fine],
        )
        .unwrap();
        assert_eq!(m.get_latest(b"out").unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn a_cursor_crosses_chunks_both_ways() {
        let m = Memory::new(ConflictMode::InEngine, true);
        let keys: Vec<Vec<u8>> = (0..200u16).map(|n| n.to_be_bytes().to_vec()).collect();
        let entries: Vec<(&[u8], Option<&[u8]>)> = keys
            .iter()
            .map(|k| (k.as_slice(), Some(k.as_slice())))
            .collect();
        write(&m, &entries);
        let snap = m.snapshot();
        for reverse in [false, true] {
            let mut c = snap.cursor(&keys[10], &keys[150], reverse);
            let mut seen = Vec::new();
            while let Some(entry) = c.peek() {
                seen.push(entry.unwrap().0.to_vec());
                c.advance();
            }
            let mut want = keys[10..150].to_vec();
            if reverse {
                want.reverse();
            }
            assert_eq!(seen, want);
        }
    }
}
