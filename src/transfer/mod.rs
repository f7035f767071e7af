//! Moving data out and in: `onedb dump` writes a database (or one org) as
//! JSON lines, `onedb load` reads such a dump into a database that does
//! not hold its orgs (docs/dump-format.md). Both work on the data
//! directory directly, below sessions: dumping is the platform owner's
//! whole view, and loading stages records beside the store and ingests
//! them in one atomic step (storage's `Stage`). `onedb load --from convex`
//! imports the original Convex backend's export through the same loader.

pub mod convex;
mod dump;
pub mod line;
mod load;

use std::io::{BufRead, Write};
use std::path::Path;

use crate::error::Result;
use crate::storage::{Durability, Storage};

pub use dump::{DumpOptions, DumpReport};
pub use load::LoadReport;

/// Dumps the data directory `dir` (which no other process may hold open)
/// to `out`, from one snapshot. `progress` hears the record count now and
/// then.
pub fn dump(
    dir: &Path,
    options: &DumpOptions,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<DumpReport> {
    if !dir.exists() {
        return Err(crate::error::Error::not_found(format!(
            "{}: no data directory",
            dir.display()
        )));
    }
    let storage = Storage::open(dir, Durability::Sync)?;
    dump::dump(&storage, options, out, progress)
}

/// Loads a dump into the data directory `dir` (created if new; no other
/// process may hold it open). All or nothing: the first bad line stops the
/// load with its number, and nothing of it is written. The search indexes
/// are rebuilt when the directory is next opened.
pub fn load(dir: &Path, input: impl BufRead, progress: &mut dyn FnMut(u64)) -> Result<LoadReport> {
    let storage = Storage::open(dir, Durability::Sync)?;
    load::load(&storage, input, progress)
}
