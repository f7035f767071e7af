//! Staging a bulk load (`onedb load`): entries are gathered in memory,
//! sorted in runs and written as table files beside the database, which
//! `Storage::ingest` then makes part of it in one atomic step. Until then
//! the database holds nothing of the load, so a failed or killed load
//! leaves it exactly as it was (the staging directory is thrown away).

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::storage::engines::rocks::write_sst;

/// Bytes of keys and values (plus bookkeeping) a run gathers before it is
/// sorted and written; two runs at most are in memory (one being written),
/// which bounds a load's memory whatever its size.
const RUN_BYTES: usize = 48 << 20;

/// One run: its keys and values end to end in one buffer. Two allocations
/// per entry, freed on the writing thread, cost a load about a tenth of
/// its time in glibc's cross-thread free and consolidation.
#[derive(Default)]
struct Run {
    bytes: Vec<u8>,
    /// Each entry's start in `bytes` and its key's and value's lengths.
    spans: Vec<(usize, u32, u32)>,
}

impl Run {
    fn with_capacity(bytes: usize) -> Run {
        Run {
            bytes: Vec::with_capacity(bytes),
            spans: Vec::new(),
        }
    }

    fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let too_long = |_| Error::invalid("a staged key or value is over 4 GiB");
        let span = (
            self.bytes.len(),
            u32::try_from(key.len()).map_err(too_long)?,
            u32::try_from(value.len()).map_err(too_long)?,
        );
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value);
        self.spans.push(span);
        Ok(())
    }

    /// What the run holds, for `RUN_BYTES`.
    fn size(&self) -> usize {
        self.bytes.len() + self.spans.len() * std::mem::size_of::<(usize, u32, u32)>()
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn key(&self, i: usize) -> &[u8] {
        let (start, key, _) = self.spans[i];
        &self.bytes[start..start + key as usize]
    }

    fn value(&self, i: usize) -> &[u8] {
        let (start, key, value) = self.spans[i];
        let start = start + key as usize;
        &self.bytes[start..start + value as usize]
    }
}

pub(crate) struct Stage {
    dir: PathBuf,
    run: Run,
    files: Vec<PathBuf>,
    /// The run being sorted and written on another thread.
    writing: Option<JoinHandle<Result<()>>>,
}

impl Stage {
    /// A new, empty staging directory at `dir` (a leftover of a killed load
    /// is removed first).
    pub(super) fn new(dir: PathBuf) -> Result<Stage> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Stage {
            dir,
            run: Run::default(),
            files: Vec::new(),
            writing: None,
        })
    }

    /// Adds one entry. Every key must be staged once.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        if self.run.bytes.capacity() == 0 {
            self.run = Run::with_capacity(RUN_BYTES);
        }
        self.run.push(key.as_ref(), value.as_ref())?;
        if self.run.size() >= RUN_BYTES {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the current run and writes it on another thread, after the
    /// previous one finished.
    fn spill(&mut self) -> Result<()> {
        self.wait()?;
        if self.run.is_empty() {
            return Ok(());
        }
        let run = std::mem::take(&mut self.run);
        let path = self.dir.join(format!("run-{:06}.sst", self.files.len()));
        self.files.push(path.clone());
        let handle = std::thread::Builder::new()
            .name("onedb-stage".into())
            .spawn(move || write_run(&path, run))
            .map_err(|e| Error::io(format!("cannot start a staging thread: {e}")))?;
        self.writing = Some(handle);
        Ok(())
    }

    fn wait(&mut self) -> Result<()> {
        match self.writing.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| Error::io("a staging thread failed"))?,
            None => Ok(()),
        }
    }

    /// Writes what is left; the files to ingest.
    pub(super) fn finish(&mut self) -> Result<Vec<PathBuf>> {
        self.spill()?;
        self.wait()?;
        Ok(self.files.clone())
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = self.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first 32 bytes of a key as four numbers (zero-padded): comparing
/// them orders keys as their bytes do, except for ties, which the full
/// keys then break.
fn head(key: &[u8]) -> [u64; 4] {
    let mut bytes = [0u8; 32];
    let n = key.len().min(32);
    bytes[..n].copy_from_slice(&key[..n]);
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_be_bytes(w)
    };
    [word(0), word(1), word(2), word(3)]
}

fn write_run(path: &Path, run: Run) -> Result<()> {
    // Sorting small inline heads (32 bytes: a tenant's keys share their
    // first 17) instead of the keys themselves spares most comparisons a
    // trip into the run's buffer.
    let mut order: Vec<([u64; 4], usize)> = (0..run.len()).map(|i| (head(run.key(i)), i)).collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| run.key(a.1).cmp(run.key(b.1))));
    if let Some(pair) = order
        .windows(2)
        .find(|w| w[0].0 == w[1].0 && run.key(w[0].1) == run.key(w[1].1))
    {
        return Err(Error::invalid(format!(
            "a bulk load staged the key {:02x?} twice",
            run.key(pair[0].1)
        )));
    }
    write_sst(
        path,
        order.iter().map(|(_, i)| (run.key(*i), run.value(*i))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Durability, Scope, Storage};

    #[test]
    fn heads_order_keys_as_their_bytes_do() {
        let mut keys: Vec<Vec<u8>> = vec![
            vec![2; 40],
            vec![2; 33],
            vec![2; 32],
            vec![2; 31],
            [vec![2; 31], vec![0]].concat(),
            [vec![2; 31], vec![0, 0]].concat(),
            vec![1],
            vec![],
            [vec![2; 32], vec![1]].concat(),
            [vec![2; 17], vec![0xFF]].concat(),
        ];
        let mut by_head = keys.clone();
        by_head.sort_by(|a, b| head(a).cmp(&head(b)).then_with(|| a.cmp(b)));
        keys.sort();
        assert_eq!(by_head, keys);
    }

    #[test]
    fn a_stage_is_ingested_at_once_and_sorted_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), Durability::Relaxed).unwrap();
        let mut stage = storage.stage().unwrap();
        let key = |n: u32| [vec![2u8; 17], n.to_be_bytes().to_vec()].concat();
        for n in (0..1000u32).rev() {
            stage.put(key(n), n.to_le_bytes()).unwrap();
            if n == 500 {
                stage.spill().unwrap(); // a second, overlapping run
            }
        }
        let txn = storage.read(Scope::platform(crate::keys::Tenant::PLATFORM));
        assert_eq!(txn.get(&key(7)).unwrap(), None, "visible before the ingest");
        drop(txn);
        storage.ingest(stage).unwrap();
        let txn = storage.read(Scope::platform(crate::keys::Tenant::PLATFORM));
        for n in [0, 7, 500, 999] {
            assert_eq!(txn.get(&key(n)).unwrap(), Some(n.to_le_bytes().to_vec()));
        }
        assert!(!dir.path().join(crate::storage::STAGING_DIR).exists());
    }

    #[test]
    fn a_key_staged_twice_fails_and_a_dropped_stage_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), Durability::Relaxed).unwrap();
        let mut stage = storage.stage().unwrap();
        stage.put(vec![2, 1], vec![]).unwrap();
        stage.put(vec![2, 1], vec![1]).unwrap();
        assert!(storage.ingest(stage).is_err());
        let mut stage = storage.stage().unwrap();
        stage.put(vec![2, 3], vec![]).unwrap();
        stage.spill().unwrap();
        drop(stage);
        assert!(!dir.path().join(crate::storage::STAGING_DIR).exists());
        let txn = storage.read(Scope::platform(crate::keys::Tenant::PLATFORM));
        assert_eq!(txn.get(&[2, 3]).unwrap(), None);
    }
}
