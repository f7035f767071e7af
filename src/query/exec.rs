//! Executing a plan: pull operators over one tenant snapshot. Every loop
//! checks the deadline; results without LIMIT are capped.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::error::{Error, ErrorCode, Result};
use crate::graph::{Edge, ReadTxn};
use crate::keys::Direction;
use crate::model::{Dim, Id, Millis};
use crate::query::expr::{AggFunc, CExpr, Env};
use crate::query::plan::{Access, AggOut, Aggregate, Expand, Op, Plan, Shortest, Way};
use crate::query::value::{Key, NULL, Node, Path, Val, compare, equal};
use crate::search::Indexes;

pub type Row = Vec<Val>;

/// Limits and inputs of one execution.
/// Per-operator (rows, time) of a PROFILE, in plan pre-order.
pub type ProfileStats = Rc<RefCell<Vec<(u64, Duration)>>>;

pub struct Context<'e, 't> {
    pub env: Env<'e, 't>,
    /// The database's search indexes (SEARCH adds the tenant itself).
    pub indexes: &'e Indexes,
    pub deadline: Instant,
    /// Most rows a result may have without LIMIT.
    pub max_rows: usize,
    /// Per-operator (rows, time), in plan pre-order, when profiling.
    pub profile: Option<ProfileStats>,
    /// The hits a `SEARCH … THEN MATCH` feeds into its pattern.
    pub seeds: Vec<Arc<Node>>,
}

/// An operator that holds rows or values in memory (ORDER BY, DISTINCT,
/// grouping and its `collect` / `count(DISTINCT …)`, an expansion's
/// pending rows, the subgraph SHORTEST explores) holds at most this many
/// times the row cap; a result with LIMIT may have as many rows. So memory
/// stays bounded by the limits, not by how long the deadline lets a query
/// run.
pub const BUFFER_FACTOR: usize = 10;

impl Context<'_, '_> {
    /// Most rows or values one operator may hold (and a LIMITed result may
    /// have): `BUFFER_FACTOR` × the row cap.
    pub fn buffer_cap(&self) -> usize {
        self.max_rows.saturating_mul(BUFFER_FACTOR)
    }

    fn check_deadline(&self) -> Result<()> {
        if Instant::now() > self.deadline {
            return Err(Error::new(
                ErrorCode::Timeout,
                "the query ran past its time limit",
            ));
        }
        Ok(())
    }
}

/// Runs a plan to completion; returns its rows.
pub fn run(plan: &Plan, ctx: &Context<'_, '_>) -> Result<Vec<Row>> {
    let mut next_id = 0;
    let mut root = build(&plan.root, plan.width, ctx, &mut next_id)?;
    let mut rows = Vec::new();
    while let Some(row) = root.next()? {
        if !plan.limited && rows.len() >= ctx.max_rows {
            return Err(Error::too_large(format!(
                "the result has more than {} rows; add LIMIT (up to {})",
                ctx.max_rows,
                ctx.buffer_cap()
            )));
        }
        if rows.len() >= ctx.buffer_cap() {
            return Err(Error::too_large(format!(
                "the result has more than {} rows, the most a LIMIT allows",
                ctx.buffer_cap()
            )));
        }
        rows.push(row);
    }
    Ok(rows)
}

trait Operator {
    fn next(&mut self) -> Result<Option<Row>>;
}

type BoxOp<'c> = Box<dyn Operator + 'c>;

fn build<'c>(
    op: &'c Op,
    width: usize,
    ctx: &'c Context<'c, 'c>,
    next_id: &mut usize,
) -> Result<BoxOp<'c>> {
    let id = *next_id;
    *next_id += 1;
    let mut child = |o: &'c Op| build(o, width, ctx, next_id);
    let built: BoxOp<'c> = match op {
        Op::Once => Box::new(Once { done: false, width }),
        Op::Scan { slot, access, .. } => Box::new(Scan::new(*slot, access, width, ctx)?),
        Op::Expand { input, expand } => Box::new(ExpandOp {
            input: child(input)?,
            e: expand,
            ctx,
            queue: VecDeque::new(),
        }),
        Op::Shortest { input, shortest } => Box::new(ShortestOp {
            input: child(input)?,
            s: shortest,
            ctx,
        }),
        Op::Filter { input, pred } => Box::new(Filter {
            input: child(input)?,
            pred,
            ctx,
        }),
        Op::Product { left, right } => Box::new(Product {
            left: child(left)?,
            right: Some(right),
            width,
            ctx,
            rights: None,
            current: None,
            index: 0,
        }),
        Op::Project { input, items } => Box::new(Project {
            input: child(input)?,
            items,
            ctx,
        }),
        Op::Aggregate {
            input,
            keys,
            aggs,
            out,
        } => Box::new(AggregateOp {
            input: child(input)?,
            keys,
            aggs,
            out,
            ctx,
            output: None,
        }),
        Op::Distinct { input } => Box::new(Distinct {
            input: child(input)?,
            ctx,
            seen: HashSet::new(),
        }),
        Op::Sort { input, keys, top } => Box::new(Sort {
            input: child(input)?,
            keys,
            keep: match top {
                None => None,
                Some((skip, limit)) => {
                    let skip = skip.as_ref().map_or(Ok(0), |s| count_of(s, ctx))?;
                    Some(skip.saturating_add(count_of(limit, ctx)?))
                }
            },
            ctx,
            sorted: None,
        }),
        Op::Skip { input, count } => Box::new(Skip {
            input: child(input)?,
            left: count_of(count, ctx)?,
        }),
        Op::Limit { input, count } => Box::new(Limit {
            input: child(input)?,
            left: count_of(count, ctx)?,
        }),
        Op::Trim { input, width } => Box::new(Trim {
            input: child(input)?,
            width: *width,
        }),
    };
    Ok(match &ctx.profile {
        Some(stats) => Box::new(Profiled {
            inner: built,
            id,
            stats: stats.clone(),
        }),
        None => built,
    })
}

fn count_of(expr: &CExpr, ctx: &Context<'_, '_>) -> Result<usize> {
    let v = expr.eval(&[], &ctx.env)?;
    match v.as_i64() {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(Error::invalid(format!(
            "SKIP and LIMIT take a whole number ≥ 0, not {}",
            v.to_json()
        ))),
    }
}

struct Profiled<'c> {
    inner: BoxOp<'c>,
    id: usize,
    stats: Rc<RefCell<Vec<(u64, Duration)>>>,
}

impl Operator for Profiled<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        let started = Instant::now();
        let row = self.inner.next()?;
        let mut stats = self.stats.borrow_mut();
        if stats.len() <= self.id {
            stats.resize(self.id + 1, (0, Duration::ZERO));
        }
        // Time includes the children's: PROFILE shows inclusive time.
        stats[self.id].1 += started.elapsed();
        if row.is_some() {
            stats[self.id].0 += 1;
        }
        Ok(row)
    }
}

struct Once {
    done: bool,
    width: usize,
}

impl Operator for Once {
    fn next(&mut self) -> Result<Option<Row>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(vec![NULL; self.width]))
    }
}

/// A node scan through an index.
struct Scan<'c> {
    slot: usize,
    width: usize,
    ctx: &'c Context<'c, 'c>,
    nodes: Box<dyn Iterator<Item = Result<Node>> + 'c>,
}

impl<'c> Scan<'c> {
    fn new(
        slot: usize,
        access: &'c Access,
        width: usize,
        ctx: &'c Context<'c, 'c>,
    ) -> Result<Scan<'c>> {
        let txn = ctx.env.txn;
        let nodes: Box<dyn Iterator<Item = Result<Node>> + 'c> = match access {
            Access::ById { id, label, load } => {
                let value = id.eval(&[], &ctx.env)?;
                let node = match value.as_id() {
                    Ok(id) if *load => load_node(txn, id)?.filter(|n| label_ok(n, label)),
                    Ok(id) if matches!(id.dim(), Dim::Thing | Dim::Person | Dim::Knowledge) => {
                        Some(Node::Bare(id))
                    }
                    _ => None,
                };
                Box::new(node.into_iter().map(Ok))
            }
            Access::ByStatus(kind, status) => Box::new(
                txn.things_of_type(kind, Some(*status))?
                    .map(|t| t.map(Node::Thing)),
            ),
            Access::ByType(kind) => {
                Box::new(txn.things_of_type(kind, None)?.map(|t| t.map(Node::Thing)))
            }
            Access::People => Box::new(txn.people()?.into_iter().map(|p| Ok(Node::Person(p)))),
            Access::AllThings => Box::new(txn.all_things()?.map(|t| t.map(Node::Thing))),
            Access::Seeds(label) => Box::new(
                ctx.seeds
                    .iter()
                    .filter(move |n| label_ok(n, label))
                    .map(|n| Ok(Node::clone(n))),
            ),
        };
        Ok(Scan {
            slot,
            width,
            ctx,
            nodes,
        })
    }
}

impl Operator for Scan<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        self.ctx.check_deadline()?;
        match self.nodes.next().transpose()? {
            Some(node) => {
                let mut row = vec![NULL; self.width];
                row[self.slot] = Val::Node(Arc::new(node));
                Ok(Some(row))
            }
            None => Ok(None),
        }
    }
}

/// A visible, live node by id (thing, person or knowledge).
pub fn load_node(txn: &ReadTxn<'_>, id: Id) -> Result<Option<Node>> {
    Ok(match id.dim() {
        Dim::Thing => txn.thing(id)?.map(Node::Thing),
        Dim::Person => txn.person(id)?.map(Node::Person),
        Dim::Knowledge => txn.knowledge(id)?.map(Node::Knowledge),
        _ => None,
    })
}

fn label_ok(node: &Node, label: &Option<String>) -> bool {
    label.as_deref().is_none_or(|l| node.label() == l)
}

/// Edges of a node one hop away, in the requested way and types. A node
/// can have millions: the deadline is checked while they are read, not
/// only once they all are.
fn neighbours(
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

fn far_end(edge: &Edge, near: Id) -> Id {
    if edge.from == near {
        edge.to
    } else {
        edge.from
    }
}

struct ExpandOp<'c> {
    input: BoxOp<'c>,
    e: &'c Expand,
    ctx: &'c Context<'c, 'c>,
    queue: VecDeque<Row>,
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
            for edge in neighbours(self.ctx, start.id(), self.e.way, &self.e.types, at)? {
                self.ctx.check_deadline()?;
                let next = far_end(&edge, start.id());
                if let Some(found) = self.reach(next)? {
                    self.emit(&row, &found, Some(edge))?;
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

/// Shortest path between two bound nodes: breadth-first collection of the
/// reachable subgraph (bounded by `max` hops), then petgraph's search.
struct ShortestOp<'c> {
    input: BoxOp<'c>,
    s: &'c Shortest,
    ctx: &'c Context<'c, 'c>,
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

struct Filter<'c> {
    input: BoxOp<'c>,
    pred: &'c CExpr,
    ctx: &'c Context<'c, 'c>,
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

/// Every left row with every right row (the right side is run once).
struct Product<'c> {
    left: BoxOp<'c>,
    right: Option<&'c Op>,
    width: usize,
    ctx: &'c Context<'c, 'c>,
    rights: Option<Vec<Row>>,
    current: Option<Row>,
    index: usize,
}

impl Operator for Product<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        if self.rights.is_none() {
            let mut id = 0;
            let mut right = match self.right {
                Some(op) => build(op, self.width, self.ctx, &mut id)?,
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

struct Project<'c> {
    input: BoxOp<'c>,
    items: &'c [CExpr],
    ctx: &'c Context<'c, 'c>,
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

/// Groups by the key columns; one output row per group (one row for no
/// keys, even over no input).
struct AggregateOp<'c> {
    input: BoxOp<'c>,
    keys: &'c [CExpr],
    aggs: &'c [Aggregate],
    out: &'c [AggOut],
    ctx: &'c Context<'c, 'c>,
    output: Option<std::vec::IntoIter<Row>>,
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

struct Distinct<'c> {
    input: BoxOp<'c>,
    ctx: &'c Context<'c, 'c>,
    seen: HashSet<Vec<Key>>,
}

impl Operator for Distinct<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        while let Some(row) = self.input.next()? {
            self.ctx.check_deadline()?;
            if self.seen.insert(Key::of_all(&row)) {
                // SKIP may pull far more distinct rows than the result keeps.
                if self.seen.len() > self.ctx.buffer_cap() {
                    return Err(Error::too_large(format!(
                        "DISTINCT may hold at most {} rows; narrow the pattern",
                        self.ctx.buffer_cap()
                    )));
                }
                return Ok(Some(row));
            }
        }
        Ok(None)
    }
}

struct Sort<'c> {
    input: BoxOp<'c>,
    keys: &'c [(usize, bool)],
    /// Rows wanted at most (SKIP + LIMIT); None: all.
    keep: Option<usize>,
    ctx: &'c Context<'c, 'c>,
    sorted: Option<std::vec::IntoIter<Row>>,
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

struct Skip<'c> {
    input: BoxOp<'c>,
    left: usize,
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

struct Limit<'c> {
    input: BoxOp<'c>,
    left: usize,
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

struct Trim<'c> {
    input: BoxOp<'c>,
    width: usize,
}

impl Operator for Trim<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        Ok(self.input.next()?.map(|mut r| {
            r.truncate(self.width);
            r
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;
    use crate::graph::{NewConnection, NewPerson, NewThing};
    use crate::model::{Clock, Plan as OrgPlan};
    use crate::ontology::{Role, Status};
    use crate::query::ast::StatementKind;
    use crate::query::parser::parse_statement;
    use crate::query::plan::plan_match;
    use crate::{Database, Session};

    fn force_loads(op: &mut Op) {
        if let Op::Expand { expand, .. } = op {
            expand.load = true;
        }
        if let Op::Scan {
            access: Access::ById { load, .. },
            ..
        } = op
        {
            *load = true;
        }
        for child in op.children_mut() {
            force_loads(child);
        }
    }

    fn run_text(
        session: &Session,
        text: &str,
        params: &HashMap<String, Val>,
        loads: bool,
    ) -> (Result<Vec<Vec<Json>>>, bool) {
        let statement = parse_statement(text).unwrap();
        let StatementKind::Match(query) = &statement.kind else {
            panic!("{text} is not a MATCH");
        };
        let mut plan = plan_match(query, &session.vocabulary()).unwrap();
        let before = plan.clone();
        if loads {
            force_loads(&mut plan.root);
        }
        let txn = session.read().unwrap();
        let ctx = Context {
            env: Env {
                params,
                txn: &txn,
                now: txn.now(),
            },
            indexes: session.indexes(),
            deadline: Instant::now() + Duration::from_secs(30),
            max_rows: 10_000,
            profile: None,
            seeds: Vec::new(),
        };
        let rows = run(&plan, &ctx).map(|rows| {
            rows.into_iter()
                .map(|r| r.into_iter().map(|v| v.to_json()).collect())
                .collect()
        });
        (rows, before != plan)
    }

    /// root on a new database with an enterprise org `acme`.
    fn root_with_acme(clock: Clock) -> (tempfile::TempDir, Database, Session) {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::Options {
            clock,
            ..Default::default()
        };
        let db = Database::open_with(dir.path(), options).unwrap();
        let root = db.local_session().unwrap();
        root.run(|t| {
            t.create_org("acme", "Acme", OrgPlan::Enterprise)
                .map(|_| ())
        })
        .unwrap();
        (dir, db, root)
    }

    /// A sort under SKIP/LIMIT keeps only the first SKIP + LIMIT rows
    /// (cutting its buffer back as it goes); its rows are exactly the
    /// slice of the full sort, ties in input order included.
    #[test]
    fn a_top_k_sort_gives_the_slice_of_the_full_sort() {
        let (_dir, _db, mut root) = root_with_acme(Clock::system());
        root.use_org("acme").unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        root.run(|t| {
            for n in 0..300 {
                // Few distinct values: many ties.
                let v: u32 = rng.gen_range(0..12);
                t.create_thing(NewThing {
                    kind: "task".into(),
                    name: format!("t{n}"),
                    properties: json!({ "v": v, "n": n }).as_object().cloned().unwrap(),
                })?;
            }
            Ok(())
        })
        .unwrap();
        let params = HashMap::new();
        let base = "MATCH (t:task) RETURN t.properties.v, t.name ORDER BY t.properties.v DESC";
        let (all, _) = run_text(&root, base, &params, false);
        let all = all.unwrap();
        assert_eq!(all.len(), 300);
        for (skip, limit) in [
            (0, 0),
            (0, 1),
            (0, 7),
            (3, 5),
            (10, 40),
            (0, 299),
            (250, 100),
            (400, 5),
        ] {
            let text = format!("{base} SKIP {skip} LIMIT {limit}");
            let (got, _) = run_text(&root, &text, &params, false);
            let want: Vec<_> = all.iter().skip(skip).take(limit).cloned().collect();
            assert_eq!(got.unwrap(), want, "{text}");
        }
    }

    /// Binding nodes by id where no expression reads their record changes
    /// no result: the same queries with every expansion loading its far end
    /// give the same rows, as an org owner and as a customer, over a graph
    /// with deleted things, a removed person, ended connections, a deleted
    /// global thing and unpublished things.
    #[test]
    fn nodes_bound_by_id_give_the_results_of_loaded_nodes() {
        let clock = Clock::manual(1_700_000_000_000);
        let (_dir, db, mut root) = root_with_acme(clock.clone());
        root.use_platform().unwrap();
        let global = root
            .run(|t| {
                t.create_thing(NewThing {
                    kind: "creator".into(),
                    name: "global".into(),
                    ..Default::default()
                })
            })
            .unwrap()
            .id;
        root.use_org("acme").unwrap();
        let mut people = Vec::new();
        for (email, role) in [
            ("cust@acme.io", Role::Customer),
            ("ann@acme.io", Role::OrgUser),
            ("bob@acme.io", Role::OrgUser),
        ] {
            let p = root
                .run(|t| {
                    t.create_person(NewPerson {
                        email: email.into(),
                        name: email.into(),
                        role,
                        password: None,
                    })
                })
                .unwrap();
            people.push(p.id);
        }
        let mut rng = StdRng::seed_from_u64(7);
        let mut things = Vec::new();
        for i in 0..40 {
            let status = [Status::Draft, Status::Active, Status::Published][i % 3];
            let id = root
                .run(|t| {
                    let id = t
                        .create_thing(NewThing {
                            kind: if i % 2 == 0 { "creator" } else { "blog_post" }.into(),
                            name: format!("t{i}"),
                            properties: json!({"n": i}).as_object().cloned().unwrap(),
                        })?
                        .id;
                    if status != Status::Draft {
                        t.set_status(id, Status::Active)?;
                    }
                    if status == Status::Published {
                        t.set_status(id, Status::Published)?;
                    }
                    Ok(id)
                })
                .unwrap();
            things.push(id);
        }
        let connect = |from, kind: &str, to| {
            // Random pairs repeat: a duplicate is CONFLICT, and skipped.
            let _ = root.run(|t| {
                t.connect(NewConnection {
                    from: Some(from),
                    to: Some(to),
                    kind: kind.into(),
                    ..Default::default()
                })
                .map(|_| ())
            });
        };
        for _ in 0..160 {
            let a = things[rng.gen_range(0..things.len())];
            let b = things[rng.gen_range(0..things.len())];
            if a != b {
                connect(a, "following", b);
            }
        }
        for &p in &people {
            for _ in 0..6 {
                connect(p, "owns", things[rng.gen_range(0..things.len())]);
            }
        }
        for &t in things.iter().take(5) {
            connect(t, "following", global);
        }
        clock.advance(5);
        let past = clock.now();
        clock.advance(5);
        root.run(|t| {
            for &id in &things[30..33] {
                t.delete_thing(id)?;
            }
            t.remove_person(people[2])?;
            Ok(())
        })
        .unwrap();
        for i in 0..6 {
            let _ = root.run(|t| {
                t.disconnect(things[i], "following", things[i + 1])
                    .map(|_| ())
            });
        }
        root.use_platform().unwrap();
        root.run(|t| t.delete_thing(global)).unwrap();
        root.use_org("acme").unwrap();
        let customer = db.session_as("cust@acme.io").unwrap();

        let mut params = HashMap::new();
        params.insert("past".to_string(), Val::Data(json!(past)));
        params.insert("x".to_string(), Val::Data(json!(things[7].to_string())));
        params.insert("p".to_string(), Val::Data(json!(people[0].to_string())));
        params.insert("dead".to_string(), Val::Data(json!(things[31].to_string())));
        // A draft creator and an active blog post: hidden from the customer.
        params.insert("draft".to_string(), Val::Data(json!(things[0].to_string())));
        params.insert("post".to_string(), Val::Data(json!(things[1].to_string())));
        params.insert(
            "removed".to_string(),
            Val::Data(json!(people[2].to_string())),
        );
        params.insert("global".to_string(), Val::Data(json!(global.to_string())));
        let queries = [
            "MATCH (a)-[:following]->(b) RETURN count(b), count(DISTINCT b)",
            "MATCH (a)-[:following]->(b) RETURN a.id, b.id",
            "MATCH (a)-[:following AT $past]->(b) RETURN a.id, b.id, id(b)",
            "MATCH (a)-[:following*1..3]->(b) RETURN DISTINCT b.id",
            "MATCH (a)-[:following*0..2 AT $past]-(b) RETURN count(DISTINCT b)",
            "MATCH (a)-[*1..2]-(b) WHERE a.id = $x RETURN count(DISTINCT b), count(*)",
            "MATCH (a)-[:following]->(b) WHERE b.id = $x RETURN a.name",
            "MATCH (a)-[:following]->(b) WHERE b = $x RETURN a.name ORDER BY a.name",
            "MATCH (p:person)-[:owns]->(t) RETURN p.email, count(t), collect(t.id)",
            "MATCH (t)<-[:owns]-(p) RETURN t.name, p.id ORDER BY t.name",
            "MATCH (t)<-[:owns AT $past]-(p) RETURN count(DISTINCT p)",
            "MATCH (a)-[r:following]->(b) RETURN r.type, b.id, r.from",
            "MATCH (a)-[:following]->(b)-[:following]->(c) WHERE a <> c RETURN count(*)",
            "MATCH (a)-[:following]->(b)-[:following]->(c) RETURN DISTINCT a.id, c.id",
            "MATCH (a)-[:following]->(b), (b)-[:following]->(a) RETURN a.id, b.id",
            "MATCH (a)-[:following]->(b) WHERE b IS NOT NULL RETURN count(b), size(connections(b))",
            "MATCH (a)-[:following]->(b) RETURN b",
            "MATCH (a)-[:following]->(b:creator) RETURN b.id",
            "MATCH (p)-[:owns]->(t) WHERE p.id = $p RETURN t.name, t.status",
            "MATCH (p)-[:owns]->(t) WHERE p.id = $p RETURN count(DISTINCT t)",
            "MATCH (p)-[:owns AT $past]->(t) WHERE p.id = $removed RETURN count(t)",
            "MATCH (a)-[:following]->(b) WHERE a.id = $dead RETURN count(b)",
            "MATCH (a)-[:following AT $past]-(b) WHERE a.id = $dead RETURN count(b)",
            "MATCH (a)-[:following]-(b) WHERE a.id = $draft RETURN count(b)",
            "MATCH (a)-[:following*1..2]-(b) WHERE a.id = $post RETURN count(DISTINCT b)",
            "MATCH (a)-[:following*0..2]-(b) WHERE a.id = $dead RETURN count(DISTINCT b)",
            "MATCH (a)<-[:following AT $past]-(b) WHERE a.id = $global RETURN count(b)",
            "MATCH (a)-[:following]->(b) WHERE a.id = $p RETURN count(b)",
            "MATCH (a:creator)-[:following]->(b) WHERE a.id = $post RETURN count(b)",
            "MATCH (a:blog_post)-[:following]->(b) WHERE a.id = $post RETURN count(b)",
            "MATCH (t:creator) WHERE t.id = $post RETURN t.name",
            "MATCH (t) WHERE t.id = $dead RETURN count(t)",
        ];
        let mut skipped_some = false;
        for session in [&root, &customer] {
            for q in queries {
                let (fast, _) = run_text(session, q, &params, false);
                let (slow, forced) = run_text(session, q, &params, true);
                skipped_some |= forced;
                match (fast, slow) {
                    (Ok(f), Ok(s)) => assert_eq!(f, s, "{q} as {}", session.actor().email),
                    (f, s) => assert_eq!(
                        f.map_err(|e| e.code),
                        s.map_err(|e| e.code),
                        "{q} as {}",
                        session.actor().email
                    ),
                }
            }
        }
        assert!(skipped_some, "some query binds nodes by id");
    }
}
