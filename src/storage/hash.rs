//! The hasher of the engine's hot internal maps (read sets, the leader's
//! counters, the record cache, a transaction's created ids, the indexer's
//! pending changes): keys are short byte strings or ids hashed several
//! times per commit, where SipHash cost more than the lookups it serves.
//! Word-at-a-time multiply-rotate (the rustc / Firefox "Fx" hash). Not
//! resistant to chosen collisions: a transaction's own read set is the only
//! map a client shapes, and colliding keys would slow that transaction only.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0xf135_7aea_2e62_a9c5;

#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(26) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = HashMap<K, V, FxBuild>;
pub(crate) type FxHashSet<K> = HashSet<K, FxBuild>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn similar_keys_hash_apart() {
        let h = |b: &[u8]| FxBuild::default().hash_one(b);
        let keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"a\0".to_vec(),
            b"ab".to_vec(),
            b"ba".to_vec(),
            vec![0; 8],
            vec![0; 9],
            vec![0; 16],
        ];
        let hashes: HashSet<u64> = keys.iter().map(|k| h(k)).collect();
        assert_eq!(hashes.len(), keys.len());
        let mut map: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
        for (i, k) in keys.iter().enumerate() {
            map.insert(k.clone(), i);
        }
        assert!(keys.iter().enumerate().all(|(i, k)| map[k] == i));
    }
}
