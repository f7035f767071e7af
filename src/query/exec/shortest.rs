//! SHORTEST: the reachable subgraph, breadth-first, then petgraph's shortest path.

use super::*;

/// Shortest path between two bound nodes: breadth-first collection of the
/// reachable subgraph (bounded by `max` hops), then petgraph's search.
pub(super) struct ShortestOp<'c> {
    pub(super) input: BoxOp<'c>,
    pub(super) s: &'c Shortest,
    pub(super) ctx: &'c Context<'c, 'c>,
}

impl ShortestOp<'_> {
    fn find(&self, from: &Arc<Node>, to: &Arc<Node>) -> Result<Option<Path>> {
        use petgraph::graph::{DiGraph, NodeIndex};
        let txn = self.ctx.env.txn;
        let at = match &self.s.at {
            Some(e) => e.eval(&[], &self.ctx.env)?.as_millis()?,
            None => self.ctx.env.now,
        };
        let mut graph: DiGraph<Id, Edge> = DiGraph::new();
        let mut index: HashMap<Id, NodeIndex> = HashMap::new();
        let start = graph.add_node(from.id());
        index.insert(from.id(), start);
        // An edge's ends are live and visible (`ReadTxn::edges`); only
        // the knowledge junction's far ends need a look.
        let junction = self.s.types.first().is_some_and(|t| t == "about");
        let mut frontier = vec![from.id()];
        for _ in 0..self.s.max {
            let mut next = Vec::new();
            for id in frontier {
                self.ctx.check_deadline()?;
                for edge in neighbours(self.ctx, id, self.s.way, &self.s.types, at)? {
                    let far = far_end(&edge, id);
                    if junction && load_node(txn, far)?.is_none() {
                        continue;
                    }
                    if graph.edge_count() >= self.ctx.buffer_cap() {
                        return Err(Error::too_large(
                            "SHORTEST explored too large a part of the graph; lower the hops",
                        ));
                    }
                    let far_index = *index.entry(far).or_insert_with(|| {
                        next.push(far);
                        graph.add_node(far)
                    });
                    graph.add_edge(index[&id], far_index, edge);
                }
            }
            if index.contains_key(&to.id()) || next.is_empty() {
                break;
            }
            frontier = next;
        }
        let Some(&goal) = index.get(&to.id()) else {
            return Ok(None);
        };
        let Some((_, route)) = petgraph::algo::astar(&graph, start, |n| n == goal, |_| 1u32, |_| 0)
        else {
            return Ok(None);
        };
        let mut nodes = Vec::new();
        let mut rels = Vec::new();
        for (i, n) in route.iter().enumerate() {
            let id = graph[*n];
            nodes.push(Arc::new(
                load_node(txn, id)?.ok_or_else(|| Error::not_found(format!("{id} vanished")))?,
            ));
            if i > 0
                && let Some(e) = graph.find_edge(route[i - 1], *n)
            {
                rels.push(Arc::new(graph[e].clone()));
            }
        }
        Ok(Some(Path { nodes, rels }))
    }
}

impl Operator for ShortestOp<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        while let Some(mut row) = self.input.next()? {
            let (Val::Node(a), Val::Node(b)) = (&row[self.s.from], &row[self.s.to]) else {
                continue;
            };
            if let Some(path) = self.find(a, b)? {
                row[self.s.path] = Val::Path(Arc::new(path));
                return Ok(Some(row));
            }
        }
        Ok(None)
    }
}
