//! The export zip `npx convex export` writes: one folder per table holding
//! `documents.jsonl`, one document per line. Read table by table, line by
//! line, so memory does not grow with a table; a damaged archive or line
//! stops with the table and line it is in.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use zip::ZipArchive;
use zip::result::ZipError;

use crate::error::{Error, Result};

/// The longest document line read (Convex documents are at most 1 MiB;
/// their JSON with escapes stays well below this).
const MAX_LINE_BYTES: u64 = 32 << 20;

pub struct Export {
    archive: ZipArchive<BufReader<File>>,
}

/// The file holding a table's documents.
fn documents(table: &str) -> String {
    format!("{table}/documents.jsonl")
}

impl Export {
    pub fn open(path: &Path) -> Result<Export> {
        let file = File::open(path).map_err(|e| Error::io(format!("{}: {e}", path.display())))?;
        let archive = ZipArchive::new(BufReader::with_capacity(1 << 20, file)).map_err(|e| {
            Error::invalid(format!(
                "{}: not a readable zip archive ({e}); expected the file `npx convex export --path FILE.zip` writes",
                path.display()
            ))
        })?;
        Ok(Export { archive })
    }

    /// Whether the export holds the table.
    pub fn has(&self, table: &str) -> bool {
        self.archive.index_for_name(&documents(table)).is_some()
    }

    /// Calls `each` with the 1-based number and bytes of every non-blank
    /// line of the table's documents; a table the export lacks has none.
    pub fn each_line(
        &mut self,
        table: &str,
        each: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let name = documents(table);
        let file = match self.archive.by_name(&name) {
            Ok(file) => file,
            Err(ZipError::FileNotFound) => return Ok(()),
            Err(e) => return Err(Error::invalid(format!("{name}: cannot be read: {e}"))),
        };
        let mut input = BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        let mut n = 0u64;
        loop {
            buf.clear();
            n += 1;
            let read = input
                .by_ref()
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| {
                    Error::invalid(format!(
                        "{name} line {n}: cannot be read, the archive is damaged ({e})"
                    ))
                })?;
            if read == 0 {
                return Ok(());
            }
            if buf.len() as u64 > MAX_LINE_BYTES {
                return Err(Error::too_large(format!(
                    "{name} line {n}: longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            each(n, &buf)?;
        }
    }
}
