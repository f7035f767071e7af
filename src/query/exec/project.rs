//! Projection: RETURN's expressions.

use super::*;

pub(super) struct Project<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) items: &'c [CExpr],
    pub(super) ctx: &'c Context<'c, 'c>,
    /// The previous input row, emptied: the next output is built in it,
    /// so a projected row costs no allocation of its own.
    pub(super) spare: Row,
}

impl Operator for Project<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        match self.input.next()? {
            Some(mut row) => {
                let mut out = std::mem::take(&mut self.spare);
                out.reserve(self.items.len());
                for e in self.items {
                    out.push(e.eval(&row, &self.ctx.env)?);
                }
                row.clear();
                self.spare = row;
                Ok(Some(out))
            }
            None => Ok(None),
        }
    }
}
