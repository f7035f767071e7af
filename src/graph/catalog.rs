//! The catalog: what every transaction of one database shares from the
//! engine — the vocabulary in force (built-ins plus the platform owner's
//! additions, reloaded after a commit that extends it), the clock that
//! stamps records and events, and the access epoch that tells sessions to
//! check their credentials again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::keys::{self, Key, Tenant};
use crate::model::Clock;
use crate::ontology::Vocabulary;
use crate::storage::{Scope, Storage, Txn};

pub(crate) struct Catalog {
    vocabulary: RwLock<Arc<Vocabulary>>,
    clock: Clock,
    /// Grows after every commit that revokes a token or removes a person:
    /// a session verified at the current epoch needs no read to go on.
    access: AtomicU64,
}

impl Catalog {
    /// The catalog as stored.
    pub fn load(storage: &Storage, clock: Clock) -> Result<Catalog> {
        let catalog = Catalog {
            vocabulary: RwLock::new(Arc::new(Vocabulary::builtin())),
            clock,
            access: AtomicU64::new(0),
        };
        catalog.reload(storage)?;
        Ok(catalog)
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn access_epoch(&self) -> u64 {
        self.access.load(Ordering::SeqCst)
    }

    /// A commit took someone's access away (after it is durable, so a
    /// session that verifies at the new epoch sees it).
    pub fn access_changed(&self) {
        self.access.fetch_add(1, Ordering::SeqCst);
    }

    pub fn vocabulary(&self) -> Arc<Vocabulary> {
        self.vocabulary.read().clone()
    }

    /// Rereads the platform owner's vocabulary additions.
    pub fn reload(&self, storage: &Storage) -> Result<()> {
        let txn = storage.read(Scope::platform(Tenant::PLATFORM));
        *self.vocabulary.write() = Arc::new(stored_vocabulary(&txn)?);
        Ok(())
    }

    /// The vocabulary as `txn`'s snapshot holds it, for when the copy this
    /// process keeps may lag: on a shared store another server may have
    /// added a type since. Types are only ever added, so a reread that
    /// knows more replaces the copy.
    pub fn reread(&self, txn: &Txn<'_>) -> Result<Arc<Vocabulary>> {
        let stored = Arc::new(stored_vocabulary(txn)?);
        let mut kept = self.vocabulary.write();
        if stored.additions() > kept.additions() {
            *kept = stored.clone();
        }
        Ok(stored)
    }
}

/// The built-in vocabulary with the additions `txn` sees.
fn stored_vocabulary(txn: &Txn<'_>) -> Result<Vocabulary> {
    let mut additions = Vec::new();
    for entry in txn.scan_prefix(&keys::vocab_prefix(), false)? {
        let (key, value) = entry?;
        if let Key::Vocab(kind, name) = keys::decode(&key)? {
            let category = String::from_utf8(value)
                .map_err(|_| Error::corruption("vocabulary", "category is not UTF-8"))?;
            additions.push((kind, name, category));
        }
    }
    Ok(Vocabulary::with_extensions(additions))
}
