//! SKIP: drops the first rows.

use super::*;

pub(super) struct Skip<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) left: usize,
}

impl Operator for Skip<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        while self.left > 0 {
            if self.input.next()?.is_none() {
                return Ok(None);
            }
            self.left -= 1;
        }
        self.input.next()
    }
}
