//! Expansion: each row's node out over its edges (one hop or a variable-length walk over simple paths), binding the far end.

use super::*;

/// Edges of a node one hop away, in the requested way and types. A node
/// can have millions: the deadline is checked while they are read, not
/// only once they all are.
pub(super) fn neighbours(
    ctx: &Context<'_, '_>,
    node: Id,
    way: Way,
    types: &[String],
    at: Millis,
) -> Result<Vec<Edge>> {
    let txn = ctx.env.txn;
    let mut out = Vec::new();
    let dirs: &[Direction] = match way {
        Way::Out => &[Direction::Out],
        Way::In => &[Direction::In],
        Way::Both => &[Direction::Out, Direction::In],
    };
    if types.first().is_some_and(|t| t == "about") {
        // The knowledge–thing junction: not a connection type.
        if way != Way::In {
            for (thing, role) in txn.things_of_knowledge(node)? {
                out.push(junction_edge(node, thing, role.as_str()));
            }
        }
        if way != Way::Out {
            for (kno, role) in txn.knowledge_of_thing(node)? {
                out.push(junction_edge(kno, node, role.as_str()));
            }
        }
        return Ok(out);
    }
    let push = |out: &mut Vec<Edge>, e: Result<Edge>| {
        if out.len() % 4096 == 4095 {
            ctx.check_deadline()?;
        }
        out.push(e?);
        Ok::<(), Error>(())
    };
    for dir in dirs {
        if types.is_empty() {
            for e in txn.edges(node, *dir, None, at)? {
                push(&mut out, e)?;
            }
        } else {
            for t in types {
                for e in txn.edges(node, *dir, Some(t), at)? {
                    push(&mut out, e)?;
                }
            }
        }
    }
    Ok(out)
}

fn junction_edge(knowledge: Id, thing: Id, role: &str) -> Edge {
    Edge {
        con: knowledge,
        kind: format!("about:{role}"),
        from: knowledge,
        to: thing,
        valid_from: 0,
        valid_to: None,
    }
}

/// How many far ends of one hop are read together.
const REACH_BATCH: usize = 128;

pub(super) fn far_end(edge: &Edge, near: Id) -> Id {
    if edge.from == near {
        edge.to
    } else {
        edge.from
    }
}

pub(super) struct ExpandOp<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) e: &'c Expand,
    pub(super) ctx: &'c Context<'c, 'c>,
    pub(super) queue: VecDeque<Row>,
}

impl ExpandOp<'_> {
    fn at(&self) -> Result<Millis> {
        match &self.e.at {
            Some(expr) => expr.eval(&[], &self.ctx.env)?.as_millis(),
            None => Ok(self.ctx.env.now),
        }
    }

    /// Every row one input row expands to.
    fn expand(&mut self, row: Row) -> Result<()> {
        let Val::Node(start) = &row[self.e.from] else {
            return Ok(());
        };
        let start = start.clone();
        let at = self.at()?;
        let Some((min, max)) = self.e.hops else {
            let edges = neighbours(self.ctx, start.id(), self.e.way, &self.e.types, at)?;
            // The far ends are read a batch at a time (one multi-get each),
            // and each batch's rows are emitted before the next is read.
            for batch in edges.chunks(REACH_BATCH) {
                self.ctx.check_deadline()?;
                let ends: Vec<Id> = batch.iter().map(|e| far_end(e, start.id())).collect();
                for (edge, found) in batch.iter().zip(self.reach_all(&ends)?) {
                    if let Some(found) = found {
                        self.emit(&row, &found, Some(edge.clone()))?;
                    }
                }
            }
            return Ok(());
        };
        // Depth-first over simple paths (no node twice): cycle-safe, bounded.
        // On a dense graph the paths revisit the same nodes many times: each
        // is read once and its rows share it.
        let mut reached: HashMap<Id, Option<Arc<Node>>> = HashMap::new();
        let mut stack: Vec<(Arc<Node>, u32, Vec<Id>)> = vec![(start.clone(), 0, vec![start.id()])];
        while let Some((node, depth, path)) = stack.pop() {
            self.ctx.check_deadline()?;
            if depth >= min && (depth > 0 || min == 0) {
                self.emit(&row, &node, None)?;
            }
            if depth == max {
                continue;
            }
            for edge in neighbours(self.ctx, node.id(), self.e.way, &self.e.types, at)? {
                let next = far_end(&edge, node.id());
                if path.contains(&next) {
                    continue;
                }
                let found = match reached.get(&next) {
                    Some(known) => known.clone(),
                    None => {
                        let found = self.reach(next)?;
                        reached.insert(next, found.clone());
                        found
                    }
                };
                let Some(found) = found else {
                    continue;
                };
                let mut longer = path.clone();
                longer.push(next);
                stack.push((found, depth + 1, longer));
            }
        }
        Ok(())
    }

    /// The node at the far end of an edge: loaded when the plan reads its
    /// record (None when it is not visible), else bound by its id — an
    /// edge's ends are live and visible (`ReadTxn::edges`).
    fn reach(&self, id: Id) -> Result<Option<Arc<Node>>> {
        if self.e.load {
            Ok(load_node(self.ctx.env.txn, id)?.map(Arc::new))
        } else {
            Ok(Some(Arc::new(Node::Bare(id))))
        }
    }

    /// `reach` for several ids, read together.
    fn reach_all(&self, ids: &[Id]) -> Result<Vec<Option<Arc<Node>>>> {
        if self.e.load {
            let nodes = load_nodes(self.ctx.env.txn, ids)?;
            Ok(nodes.into_iter().map(|n| n.map(Arc::new)).collect())
        } else {
            Ok(ids
                .iter()
                .map(|id| Some(Arc::new(Node::Bare(*id))))
                .collect())
        }
    }

    fn emit(&mut self, row: &Row, node: &Arc<Node>, edge: Option<Edge>) -> Result<()> {
        if !label_ok(node, &self.e.label) {
            return Ok(());
        }
        if self.e.to_bound && !equal(&row[self.e.to], &Val::Node(node.clone())) {
            return Ok(());
        }
        let mut out = row.clone();
        out[self.e.to] = Val::Node(node.clone());
        if let (Some(slot), Some(edge)) = (self.e.rel, edge) {
            out[slot] = Val::Rel(Arc::new(edge));
        }
        self.queue.push_back(out);
        if self.queue.len() > self.ctx.buffer_cap() {
            return Err(Error::too_large(
                "an expansion produced too many rows; narrow the pattern",
            ));
        }
        Ok(())
    }
}

impl Operator for ExpandOp<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        loop {
            if let Some(row) = self.queue.pop_front() {
                return Ok(Some(row));
            }
            match self.input.next()? {
                Some(row) => self.expand(row)?,
                None => return Ok(None),
            }
        }
    }
}
