//! Trim: drops the helper columns ORDER BY added.

use super::*;

pub(super) struct Trim<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) width: usize,
}

impl Operator for Trim<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        Ok(self.input.next()?.map(|mut r| {
            r.truncate(self.width);
            r
        }))
    }
}
