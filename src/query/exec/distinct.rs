//! DISTINCT: rows not seen before, bounded.

use super::*;

pub(super) struct Distinct<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) ctx: &'c Context<'c, 'c>,
    pub(super) seen: HashSet<Vec<Key>>,
}

impl Operator for Distinct<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        while let Some(row) = self.input.next()? {
            self.ctx.check_deadline()?;
            if self.seen.insert(Key::of_all(&row)) {
                // SKIP may pull far more distinct rows than the result keeps.
                if self.seen.len() > self.ctx.buffer_cap() {
                    return Err(Error::too_large(format!(
                        "DISTINCT may hold at most {} rows; narrow the pattern",
                        self.ctx.buffer_cap()
                    )));
                }
                return Ok(Some(row));
            }
        }
        Ok(None)
    }
}
