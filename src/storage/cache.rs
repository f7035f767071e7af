//! Decoded copies of the few records every write transaction reads and
//! almost nothing writes — its org, the org's triggers, the acting person,
//! the property schemas of the types it writes (compiled) —
//! kept across transactions, so a write does not read and decode them again.
//!
//! A copy read at snapshot `S0` is the value for a snapshot `S1` if no commit
//! wrote the key after `min(S0, S1)`. The commit leader records, per hash
//! slot of such keys, the sequence of the latest write to any key of the
//! slot; before writing it marks the slots `WRITING`, so a copy is never
//! served while a write that a new snapshot may already see is under way.
//! A hash collision only costs a read. Which keys qualify is
//! `keys::is_cached_record`; the leader marks exactly those.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::keys;
use crate::storage::hash::FxHashMap as HashMap;

/// A decoded record, of whatever type its reader decodes it to.
pub(crate) type Decoded = Arc<dyn Any + Send + Sync>;

const SLOTS: usize = 1024;
/// Copies kept at most (then all are dropped and read again as needed).
const ENTRIES: usize = 4096;
/// A write of the slot is under way.
const WRITING: u64 = u64::MAX;

pub(crate) struct RecordCache {
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
    /// Per slot: the sequence of the latest write, by this process, to a
    /// cached key hashing there (0: none since open; earlier writes are
    /// older than every snapshot this process takes).
    written: Box<[AtomicU64]>,
}

#[derive(Clone)]
struct Entry {
    /// None: the key was absent.
    value: Option<Decoded>,
    /// Size of the stored value in bytes.
    len: usize,
    read_at: u64,
}

impl Default for RecordCache {
    fn default() -> Self {
        RecordCache {
            entries: Mutex::new(HashMap::default()),
            written: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// A copy found: the decoded value (None: absent) and its stored size.
pub(crate) type Copy = (Option<Decoded>, usize);

impl RecordCache {
    /// The copy of `key` valid at snapshot `snapshot`, if one is known.
    pub fn get(&self, key: &[u8], snapshot: u64) -> Option<Copy> {
        let entry = self.entries.lock().get(key).cloned()?;
        let since = entry.read_at.min(snapshot);
        // Loaded after the snapshot was taken: a write the snapshot sees
        // had marked its slot before it started.
        (self.written[slot(key)].load(Ordering::SeqCst) <= since)
            .then_some((entry.value, entry.len))
    }

    /// Keeps `value`, read from snapshot `read_at`.
    pub fn insert(&self, key: &[u8], value: Option<Decoded>, len: usize, read_at: u64) {
        let mut entries = self.entries.lock();
        if entries.len() >= ENTRIES && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(
            key.to_vec(),
            Entry {
                value,
                len,
                read_at,
            },
        );
    }

    /// The leader, before writing a batch: the slots of its cached keys
    /// stop serving copies until `written`.
    pub fn writing<'k>(&self, batch: impl Iterator<Item = &'k [u8]>) -> Vec<usize> {
        let mut slots = Vec::new();
        for key in batch.filter(|k| keys::is_cached_record(k)) {
            let s = slot(key);
            self.written[s].store(WRITING, Ordering::SeqCst);
            slots.push(s);
        }
        slots
    }

    /// Drops every copy: after a write whose outcome is unknown, what the
    /// store holds is read again. (The write's slots stay marked by
    /// `written`, so no copy read before it is inserted and served.)
    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// The leader, after the write (or its failure): the slots' keys last
    /// changed at `seq`, which is at least the write's sequence.
    pub fn written(&self, slots: &[usize], seq: u64) {
        for s in slots {
            self.written[*s].store(seq, Ordering::SeqCst);
        }
    }
}

/// On a shared store, the same kinds of records kept across the write
/// transactions that may run again on `CONFLICT` (`Storage::write_guessing`). Another
/// server may change such a record at any time and nothing here hears of
/// it, so a copy is only a guess: the transaction that uses one has its
/// commit check that the key did not change after the copy's revision
/// (one more comparison in the commit's own request), and drops the copy
/// when that check fails.
#[derive(Default)]
pub(crate) struct Guesses {
    entries: Mutex<HashMap<Vec<u8>, (Copy, u64)>>,
}

impl Guesses {
    /// The copy of `key` and the revision it was read at.
    pub fn get(&self, key: &[u8]) -> Option<(Copy, u64)> {
        self.entries.lock().get(key).cloned()
    }

    /// Keeps `copy`, read at `read_at`, unless a later one is kept.
    pub fn insert(&self, key: &[u8], copy: Copy, read_at: u64) {
        let mut entries = self.entries.lock();
        if entries.get(key).is_some_and(|(_, at)| *at >= read_at) {
            return;
        }
        if entries.len() >= ENTRIES && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_vec(), (copy, read_at));
    }

    /// Drops the copies of `keys`: they changed, or may have.
    pub fn forget<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        let mut entries = self.entries.lock();
        for key in keys {
            entries.remove(key);
        }
    }
}

/// FNV-1a: keys are short and this is not exposed to untrusted timing.
fn slot(key: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h as usize) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Vec<u8> {
        keys::org(crate::model::Id::from_raw(
            crate::model::Dim::Org,
            u128::from(n),
        ))
    }

    #[test]
    fn a_copy_serves_only_snapshots_no_later_write_separates_from_it() {
        let cache = RecordCache::default();
        let k = key(1);
        assert!(keys::is_cached_record(&k));
        cache.insert(&k, Some(Arc::new(7u32)), 4, 10);
        assert!(cache.get(&k, 10).is_some());
        assert!(cache.get(&k, 5).is_some(), "nothing written since open");
        let slots = cache.writing([k.as_slice()].into_iter());
        assert!(cache.get(&k, 10).is_none(), "a write is under way");
        cache.written(&slots, 12);
        assert!(cache.get(&k, 11).is_none());
        assert!(cache.get(&k, 20).is_none(), "read before the write at 12");
        cache.insert(&k, None, 0, 12);
        assert!(
            cache.get(&k, 11).is_none(),
            "older snapshots see the old value"
        );
        let (value, _) = cache.get(&k, 15).unwrap();
        assert!(value.is_none());
    }

    #[test]
    fn only_cached_records_mark_their_slot() {
        let cache = RecordCache::default();
        let other = crate::keys::Tenant::PLATFORM.counter("things");
        assert!(!keys::is_cached_record(&other));
        assert!(cache.writing([other.as_slice()].into_iter()).is_empty());
    }
}
