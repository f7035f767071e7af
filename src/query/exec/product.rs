//! Cartesian product of two inputs (the right side buffered, bounded).

use super::*;

/// Every left row with every right row (the right side is run once).
pub(super) struct Product<'c> {
    pub(super) left: BoxOp<'c>,
    pub(super) right: Option<&'c Op>,
    pub(super) width: usize,
    pub(super) ctx: &'c Context<'c, 'c>,
    pub(super) rights: Option<Vec<Row>>,
    pub(super) current: Option<Row>,
    pub(super) index: usize,
}

impl Operator for Product<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        if self.rights.is_none() {
            let mut id = 0;
            let mut right = match self.right {
                Some(op) => build(op, self.width, self.ctx, &mut id, None)?,
                None => return Ok(None),
            };
            let mut rows = Vec::new();
            while let Some(r) = right.next()? {
                if rows.len() >= self.ctx.max_rows {
                    return Err(Error::too_large(
                        "a cartesian product side has too many rows; connect the patterns",
                    ));
                }
                rows.push(r);
            }
            self.rights = Some(rows);
        }
        let rights = self.rights.as_deref().unwrap_or(&[]);
        loop {
            self.ctx.check_deadline()?;
            if let Some(left) = &self.current
                && let Some(right) = rights.get(self.index)
            {
                self.index += 1;
                let merged = left
                    .iter()
                    .zip(right)
                    .map(|(l, r)| if r.is_null() { l.clone() } else { r.clone() })
                    .collect();
                return Ok(Some(merged));
            }
            match self.left.next()? {
                Some(l) => {
                    self.current = Some(l);
                    self.index = 0;
                }
                None => return Ok(None),
            }
        }
    }
}
