//! ORDER BY: a full sort, or the top SKIP + LIMIT rows.

use super::*;

pub(super) struct Sort<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) keys: &'c [(usize, bool)],
    /// Rows wanted at most (SKIP + LIMIT); None: all.
    pub(super) keep: Option<usize>,
    pub(super) ctx: &'c Context<'c, 'c>,
    pub(super) sorted: Option<std::vec::IntoIter<Row>>,
}

impl Sort<'_> {
    /// Stable, so rows with equal keys keep their input order.
    fn sort(&self, rows: &mut [Row]) {
        rows.sort_by(|a, b| {
            for (col, desc) in self.keys {
                let o = compare(&a[*col], &b[*col]);
                let o = if *desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
}

impl Operator for Sort<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        if self.sorted.is_none() {
            let cap = self.ctx.buffer_cap();
            // With a top-k, the buffer is cut back to the best `keep` rows
            // whenever it holds twice that: the kept rows came first, so a
            // stable sort of the buffer still orders ties by input order.
            let compact = self
                .keep
                .filter(|k| *k < cap)
                .map(|k| (k, k.saturating_mul(2).clamp(1, cap)));
            let mut rows = Vec::new();
            while let Some(row) = self.input.next()? {
                self.ctx.check_deadline()?;
                if let Some((keep, at)) = compact
                    && rows.len() >= at
                {
                    self.sort(&mut rows);
                    rows.truncate(keep);
                }
                if rows.len() >= cap {
                    return Err(Error::too_large(
                        "too many rows to sort; narrow the pattern",
                    ));
                }
                rows.push(row);
            }
            self.sort(&mut rows);
            if let Some(k) = self.keep {
                rows.truncate(k);
            }
            self.sorted = Some(rows.into_iter());
        }
        Ok(self.sorted.as_mut().and_then(|s| s.next()))
    }
}
