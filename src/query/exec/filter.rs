//! Filter: rows whose predicate is true.

use super::*;

pub(super) struct Filter<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) pred: &'c CExpr,
    pub(super) ctx: &'c Context<'c, 'c>,
}

impl Operator for Filter<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        while let Some(row) = self.input.next()? {
            self.ctx.check_deadline()?;
            if self.pred.eval(&row, &self.ctx.env)?.truthy() {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }
}
