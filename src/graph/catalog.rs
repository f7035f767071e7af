//! The catalog: what every transaction of one database shares from the
//! engine — the vocabulary in force (built-ins plus the platform owner's
//! additions, reloaded after a commit that extends it) and the clock that
//! stamps records and events.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::keys::{self, Key, Tenant};
use crate::model::Clock;
use crate::ontology::Vocabulary;
use crate::storage::{Scope, Storage};

pub(crate) struct Catalog {
    vocabulary: RwLock<Arc<Vocabulary>>,
    clock: Clock,
}

impl Catalog {
    /// The catalog as stored.
    pub fn load(storage: &Storage, clock: Clock) -> Result<Catalog> {
        let catalog = Catalog {
            vocabulary: RwLock::new(Arc::new(Vocabulary::builtin())),
            clock,
        };
        catalog.reload(storage)?;
        Ok(catalog)
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn vocabulary(&self) -> Arc<Vocabulary> {
        self.vocabulary.read().clone()
    }

    /// Rereads the platform owner's vocabulary additions.
    pub fn reload(&self, storage: &Storage) -> Result<()> {
        let txn = storage.read(Scope::platform(Tenant::PLATFORM));
        let mut additions = Vec::new();
        for entry in txn.scan_prefix(&keys::vocab_prefix(), false)? {
            let (key, value) = entry?;
            if let Key::Vocab(kind, name) = keys::decode(&key)? {
                let category = String::from_utf8(value)
                    .map_err(|_| Error::corruption("vocabulary", "category is not UTF-8"))?;
                additions.push((kind, name, category));
            }
        }
        *self.vocabulary.write() = Arc::new(Vocabulary::with_extensions(additions));
        Ok(())
    }
}
