//! Failed-login counts in the store, for servers that share one: the
//! server's lockout (`server/lockout.rs`) keeps them here instead of in
//! its own memory, so a guesser gains nothing by spreading attempts over
//! servers. The bytes are the lockout's; this module only reads them and
//! changes them atomically.

use crate::error::{ErrorCode, Result};
use crate::keys::{self, Tenant};
use crate::storage::{PlatformTables, Scope, Storage};

/// Attempts at a read-modify-write that raced another server's.
const RETRIES: usize = 16;

/// The counts stored under `name`.
pub(crate) fn read(storage: &Storage, name: &str) -> Result<Option<Vec<u8>>> {
    storage
        .read(Scope::platform(Tenant::PLATFORM))
        .get(&keys::login_failures(name))
}

/// Replaces the counts under `name` with `change(current)` (None deletes),
/// as one transaction, retried when another server changed them meanwhile.
pub(crate) fn update(
    storage: &Storage,
    name: &str,
    change: impl Fn(Option<&[u8]>) -> Option<Vec<u8>>,
) -> Result<()> {
    let key = keys::login_failures(name);
    let mut attempt = 0;
    loop {
        let mut txn = storage.write(Scope::platform(Tenant::PLATFORM));
        let current = txn.get_for_update(&key)?;
        let next = change(current.as_deref());
        if next == current {
            return Ok(());
        }
        txn.put_platform(&PlatformTables::grant(), key.clone(), next)?;
        match txn.commit() {
            Err(e) if e.code == ErrorCode::Conflict && attempt < RETRIES => attempt += 1,
            other => return other.map(|_| ()),
        }
    }
}
