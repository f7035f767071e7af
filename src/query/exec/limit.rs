//! LIMIT: stops after enough rows.

use super::*;

pub(super) struct Limit<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) left: usize,
}

impl Operator for Limit<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.input.next()
    }
}
