//! Projection: RETURN's expressions.

use super::*;

pub(super) struct Project<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) items: &'c [CExpr],
    pub(super) ctx: &'c Context<'c, 'c>,
}

impl Operator for Project<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        match self.input.next()? {
            Some(row) => Ok(Some(
                self.items
                    .iter()
                    .map(|e| e.eval(&row, &self.ctx.env))
                    .collect::<Result<_>>()?,
            )),
            None => Ok(None),
        }
    }
}
