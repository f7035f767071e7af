//! Grouping and aggregates (count, sum, avg, min, max, collect), bounded.

use super::*;

/// Groups by the key columns; one output row per group (one row for no
/// keys, even over no input).
pub(super) struct AggregateOp<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) keys: &'c [CExpr],
    pub(super) aggs: &'c [Aggregate],
    pub(super) out: &'c [AggOut],
    pub(super) ctx: &'c Context<'c, 'c>,
    pub(super) output: Option<std::vec::IntoIter<Row>>,
}

#[derive(Default, Clone)]
struct Acc {
    count: i64,
    sum: f64,
    all_int: bool,
    int_sum: i64,
    best: Option<Val>,
    items: Vec<Json>,
    seen: HashSet<Key>,
}

impl AggregateOp<'_> {
    fn compute(&mut self) -> Result<Vec<Row>> {
        let mut groups: Vec<(Vec<Val>, Vec<Acc>)> = Vec::new();
        let mut index: HashMap<Vec<Key>, usize> = HashMap::new();
        // Values the accumulators hold (collected items, distinct keys).
        let mut held = 0usize;
        while let Some(row) = self.input.next()? {
            self.ctx.check_deadline()?;
            let key: Vec<Val> = self
                .keys
                .iter()
                .map(|k| k.eval(&row, &self.ctx.env))
                .collect::<Result<_>>()?;
            let g = *index.entry(Key::of_all(&key)).or_insert_with(|| {
                groups.push((
                    key,
                    vec![
                        Acc {
                            all_int: true,
                            ..Default::default()
                        };
                        self.aggs.len()
                    ],
                ));
                groups.len() - 1
            });
            if groups.len() > self.ctx.max_rows {
                return Err(Error::too_large(
                    "too many groups; add LIMIT or narrow the pattern",
                ));
            }
            for (agg, acc) in self.aggs.iter().zip(groups[g].1.iter_mut()) {
                let value = match &agg.arg {
                    Some(e) => e.eval(&row, &self.ctx.env)?,
                    None => Val::Data(json!(true)),
                };
                held += accumulate(agg, acc, value);
            }
            if held > self.ctx.buffer_cap() {
                return Err(Error::too_large(format!(
                    "collect() and count(DISTINCT …) may hold at most {} values; narrow the pattern",
                    self.ctx.buffer_cap()
                )));
            }
        }
        if groups.is_empty() && self.keys.is_empty() {
            groups.push((
                vec![],
                vec![
                    Acc {
                        all_int: true,
                        ..Default::default()
                    };
                    self.aggs.len()
                ],
            ));
        }
        Ok(groups
            .into_iter()
            .map(|(key, accs)| {
                self.out
                    .iter()
                    .map(|o| match o {
                        AggOut::Key(i) => key[*i].clone(),
                        AggOut::Agg(i) => finish_agg(&self.aggs[*i], &accs[*i]),
                    })
                    .collect()
            })
            .collect())
    }
}

/// Adds one value to an accumulator; returns how many values it now holds
/// more than before (a distinct key, a collected item).
fn accumulate(agg: &Aggregate, acc: &mut Acc, value: Val) -> usize {
    if value.is_null() {
        return 0;
    }
    let mut held = 0;
    if agg.distinct {
        if !acc.seen.insert(Key::of(&value)) {
            return 0;
        }
        held += 1;
    }
    acc.count += 1;
    match agg.func {
        AggFunc::Sum | AggFunc::Avg => {
            if let Some(i) = value.as_i64() {
                acc.int_sum = acc.int_sum.saturating_add(i);
            } else {
                acc.all_int = false;
            }
            acc.sum += value.as_f64().unwrap_or(0.0);
        }
        AggFunc::Min | AggFunc::Max => {
            let better = match &acc.best {
                None => true,
                Some(b) => {
                    let o = compare(&value, b);
                    if agg.func == AggFunc::Min {
                        o.is_lt()
                    } else {
                        o.is_gt()
                    }
                }
            };
            if better {
                acc.best = Some(value);
            }
        }
        AggFunc::Collect => {
            acc.items.push(value.to_json());
            held += 1;
        }
        AggFunc::Count => {}
    }
    held
}

fn finish_agg(agg: &Aggregate, acc: &Acc) -> Val {
    match agg.func {
        AggFunc::Count => Val::Data(json!(acc.count)),
        AggFunc::Sum if acc.all_int => Val::Data(json!(acc.int_sum)),
        AggFunc::Sum => Val::Data(json!(acc.sum)),
        AggFunc::Avg if acc.count == 0 => NULL,
        AggFunc::Avg => Val::Data(json!(acc.sum / acc.count as f64)),
        AggFunc::Min | AggFunc::Max => acc.best.clone().unwrap_or(NULL),
        AggFunc::Collect => Val::Data(Json::Array(acc.items.clone())),
    }
}

impl Operator for AggregateOp<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        if self.output.is_none() {
            self.output = Some(self.compute()?.into_iter());
        }
        Ok(self.output.as_mut().and_then(|o| o.next()))
    }
}
