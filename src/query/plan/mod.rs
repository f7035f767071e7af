//! Planning a MATCH: patterns and WHERE → a tree of physical operators
//! (a SEARCH's plan, `search.rs`, shares the tree and these passes).
//!
//! Passes, in order, each a function of the one before, starting from the
//! analyzed query (`analyze.rs`; `plan_query` chains them; `passes` shows
//! what each hands the next, which the golden tests in tests/planner/ pin):
//! 1. `bind`: every node, relationship and path variable gets a row slot;
//!    node property maps become WHERE conjuncts.
//! 2. `access`: per pattern, the node with the best access path — id >
//!    type+status > type > people > all things — starts the scan
//!    (`access_for`), expansions go outward, and each conjunct runs right
//!    after the operator that binds the last slot it reads
//!    (`place_filters`).
//! 3. `finish`: projection or aggregation, DISTINCT, ORDER BY, SKIP, LIMIT.
//! 4. `bind_far_ends_by_id`: an expansion whose far end no expression
//!    reads beyond its id binds it by id, without reading it.
//!
//! The status index (in `access`) and pass 4 are optimizations that
//! `Optimize` can switch off; the results must not change.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ontology::{Status, Vocabulary};
use crate::query::analyze::{Analyzed, analyze_query};
use crate::query::ast::{
    BinaryOp, Expr, ExprKind, NodePattern, Pattern, Query, RelDirection, SearchTarget,
};
use crate::query::expr::{AggFunc, CExpr, compile};
use crate::query::value::Val;
use serde_json::Value as Json;

mod search;

pub use search::{DEFAULT_LIMIT, IndexCondition, IndexField, SearchStep, plan_search};

/// Longest variable-length traversal (RELIABILITY.md: traversal depth 10).
pub const MAX_HOPS: u32 = 10;

/// Where a scan starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// The node with this id, if it has the label. `load` false: bound by
    /// its id alone (`Node::Bare`), set by `skip_loads` when nothing reads
    /// its record and every row leaves it over an edge (which it has only
    /// when it is live and visible).
    ById {
        id: CExpr,
        label: Option<String>,
        load: bool,
    },
    /// Things of a type in one status: a literal status, or a parameter
    /// read when the plan runs (a value that names no status finds
    /// nothing, as `t.status = value` would).
    ByStatus(String, CExpr),
    ByType(String),
    People,
    AllThings,
}

/// Which way an expansion follows edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Out,
    In,
    Both,
}

impl Way {
    fn of(dir: RelDirection, reversed: bool) -> Way {
        match (dir, reversed) {
            (RelDirection::Out, false) | (RelDirection::In, true) => Way::Out,
            (RelDirection::In, false) | (RelDirection::Out, true) => Way::In,
            (RelDirection::Both, _) => Way::Both,
        }
    }
    fn arrow(self) -> (&'static str, &'static str) {
        match self {
            Way::Out => ("-", "->"),
            Way::In => ("<-", "-"),
            Way::Both => ("-", "-"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    pub from: usize,
    pub to: usize,
    pub to_name: String,
    pub rel: Option<usize>,
    pub way: Way,
    /// Empty: any type. `about` follows the knowledge–thing junction.
    pub types: Vec<String>,
    /// (min, max) for variable length; None is exactly one hop.
    pub hops: Option<(u32, u32)>,
    pub at: Option<CExpr>,
    pub label: Option<String>,
    /// The far end is already bound: keep rows where it matches.
    pub to_bound: bool,
    /// Whether the far end's record is read (by a label check or an
    /// expression). When not, the node is bound by its id alone
    /// (`Node::Bare`): the edge index holds only edges whose both ends are
    /// live and visible, so the record adds nothing. Set by `record_slots`.
    pub load: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shortest {
    pub from: usize,
    pub to: usize,
    pub path: usize,
    pub way: Way,
    pub types: Vec<String>,
    pub max: u32,
    pub at: Option<CExpr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub func: AggFunc,
    pub distinct: bool,
    /// None for `count(*)`.
    pub arg: Option<CExpr>,
}

/// An output column of an aggregation: a group key or an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOut {
    Key(usize),
    Agg(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Once,
    Scan {
        slot: usize,
        name: String,
        access: Access,
    },
    /// A SEARCH's index step: each hit with the label binds `slot` (and
    /// its score `score`, when a RETURN over the hits reads it). `load`
    /// false: a nearest-knowledge hit is bound by its id alone
    /// (`Node::Bare`), set by `skip_loads` when nothing reads its record.
    Search {
        slot: usize,
        name: String,
        label: Option<String>,
        score: Option<usize>,
        step: Arc<SearchStep>,
        load: bool,
    },
    Expand {
        input: Box<Op>,
        expand: Expand,
    },
    Shortest {
        input: Box<Op>,
        shortest: Shortest,
    },
    Filter {
        input: Box<Op>,
        pred: CExpr,
    },
    Product {
        left: Box<Op>,
        right: Box<Op>,
    },
    /// Output rows: the items (then hidden sort keys).
    Project {
        input: Box<Op>,
        items: Vec<CExpr>,
    },
    Aggregate {
        input: Box<Op>,
        keys: Vec<CExpr>,
        aggs: Vec<Aggregate>,
        out: Vec<AggOut>,
    },
    Distinct {
        input: Box<Op>,
    },
    Sort {
        input: Box<Op>,
        keys: Vec<(usize, bool)>,
        /// Under `[SKIP s] LIMIT l`: only the first s + l rows are wanted,
        /// so the sort keeps no more than that (a top-k).
        top: Option<(Option<CExpr>, CExpr)>,
    },
    Skip {
        input: Box<Op>,
        count: CExpr,
    },
    Limit {
        input: Box<Op>,
        count: CExpr,
    },
    /// Drops hidden sort columns.
    Trim {
        input: Box<Op>,
        width: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub root: Op,
    pub columns: Vec<String>,
    /// Row slots the pattern part uses.
    pub width: usize,
    /// Whether LIMIT bounds the result (else the row cap applies).
    pub limited: bool,
}

/// Variables and their slots.
#[derive(Default)]
struct Slots {
    names: Vec<String>,
    index: HashMap<String, usize>,
    anonymous: usize,
}

impl Slots {
    fn slot(&mut self, name: Option<&str>) -> (usize, String) {
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                self.anonymous += 1;
                format!("_{}", self.anonymous)
            }
        };
        if let Some(s) = self.index.get(&name) {
            return (*s, name);
        }
        let s = self.names.len();
        self.names.push(name.clone());
        self.index.insert(name.clone(), s);
        (s, name)
    }
    fn resolve(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// Splits `a AND b AND c` into its conjuncts.
pub(crate) fn conjuncts(expr: &Expr, out: &mut Vec<Expr>) {
    match &expr.kind {
        ExprKind::Binary(BinaryOp::And, l, r) => {
            conjuncts(l, out);
            conjuncts(r, out);
        }
        _ => out.push(expr.clone()),
    }
}

/// `var.field = <no variables>` (either side): the value expression.
fn equality_on<'e>(conjunct: &'e Expr, var: &str, field: &str) -> Option<&'e Expr> {
    let ExprKind::Binary(BinaryOp::Eq, l, r) = &conjunct.kind else {
        return None;
    };
    let is_field = |e: &Expr| matches!(&e.kind, ExprKind::Prop(b, f) if f.name == field && matches!(&b.kind, ExprKind::Var(v) if v == var));
    let constant = |e: &Expr| !mentions_var(e);
    if is_field(l) && constant(r) {
        Some(r)
    } else if is_field(r) && constant(l) {
        Some(l)
    } else {
        None
    }
}

fn mentions_var(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Var(_) => true,
        ExprKind::Prop(b, _) => mentions_var(b),
        ExprKind::List(items) => items.iter().any(mentions_var),
        ExprKind::Map(entries) => entries.iter().any(|(_, v)| mentions_var(v)),
        ExprKind::Unary(_, e) => mentions_var(e),
        ExprKind::Binary(_, l, r) => mentions_var(l) || mentions_var(r),
        ExprKind::Call { args, .. } => args.iter().any(mentions_var),
        ExprKind::IsNull { expr, .. } => mentions_var(expr),
        _ => false,
    }
}

fn no_vars(_: &str) -> Option<usize> {
    None
}

/// Which optional passes the planner runs. The plan means the same either
/// way; the differential test (tests/golden.rs) runs every golden query
/// both ways and compares the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Optimize {
    /// Anchor a labelled node on the type+status index when WHERE fixes
    /// its status (and drop that conjunct); otherwise scan the type and
    /// filter.
    pub status_index: bool,
    /// Bind an expansion's far end by id where nothing reads its record
    /// (pass 5); otherwise every node is read.
    pub skip_loads: bool,
}

impl Optimize {
    pub const ALL: Optimize = Optimize {
        status_index: true,
        skip_loads: true,
    };
    pub const NONE: Optimize = Optimize {
        status_index: false,
        skip_loads: false,
    };
}

impl Default for Optimize {
    fn default() -> Self {
        Optimize::ALL
    }
}

pub fn plan_match(query: &Query, vocabulary: &Vocabulary) -> Result<Plan> {
    plan_query(query, vocabulary, None, Optimize::ALL)
}

/// `plan_match` with a choice of the optional passes.
pub fn plan_with(query: &Query, vocabulary: &Vocabulary, optimize: Optimize) -> Result<Plan> {
    plan_query(query, vocabulary, None, optimize)
}

/// The passes in order. `seed`: the SEARCH whose hits bind the first node
/// of the first pattern (`SEARCH … THEN MATCH query`).
fn plan_query(
    query: &Query,
    vocabulary: &Vocabulary,
    seed: Option<Arc<SearchStep>>,
    optimize: Optimize,
) -> Result<Plan> {
    let bound = bind(&analyze_query(query, vocabulary)?);
    let root = access(&bound, seed, optimize.status_index)?;
    let plan = finish(root, query, &bound.slots)?;
    Ok(if optimize.skip_loads {
        bind_far_ends_by_id(plan)
    } else {
        plan
    })
}

/// What each pass of `plan_match` hands the next, rendered as text, pass by
/// pass (the planner's golden tests, tests/planner.rs).
pub fn passes(query: &Query, vocabulary: &Vocabulary) -> Result<Vec<(&'static str, String)>> {
    let bound = bind(&analyze_query(query, vocabulary)?);
    let rendered = bound.render();
    let root = access(&bound, None, true)?;
    let anchored = root.tree(&|_| String::new());
    let plan = finish(root, query, &bound.slots)?;
    let finished = plan.root.tree(&|_| String::new());
    let plan = bind_far_ends_by_id(plan);
    let mut loads = Vec::new();
    plan.root.each(&mut |op| loads.push(op.reads_records()));
    let by_id = plan.root.tree(&|i| match loads.get(i).copied().flatten() {
        Some(false) => " [by id]".to_string(),
        _ => String::new(),
    });
    Ok(vec![
        ("bind", rendered),
        ("access", anchored),
        ("finish", finished),
        ("bind_far_ends_by_id", by_id),
    ])
}

/// Pass 1's result: every variable's slot, every conjunct (WHERE's and the
/// nodes' property maps), and each pattern with the slots of its nodes,
/// relationships and path.
struct Bound<'q> {
    slots: Slots,
    filters: Vec<Expr>,
    patterns: Vec<BoundPattern<'q>>,
}

struct BoundPattern<'q> {
    pattern: &'q Pattern,
    nodes: Vec<(usize, String)>,
    rels: Vec<Option<usize>>,
    path: Option<usize>,
}

impl Bound<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "slots {}", self.slots.names.join(" "));
        for f in &self.filters {
            let _ = writeln!(out, "conjunct {f}");
        }
        for p in &self.patterns {
            let nodes: Vec<String> = p.nodes.iter().map(|(s, n)| format!("{n}#{s}")).collect();
            let _ = writeln!(out, "pattern {}", nodes.join(" "));
        }
        out
    }
}

/// Pass 1: gives every variable of the analyzed query a row slot, and
/// turns node property maps into conjuncts.
fn bind<'q>(analyzed: &Analyzed<'q>) -> Bound<'q> {
    let query = analyzed.query;
    let mut slots = Slots::default();
    let mut filters: Vec<Expr> = Vec::new();
    if let Some(w) = &query.filter {
        conjuncts(w, &mut filters);
    }
    let mut named_patterns = Vec::new();
    for pattern in &query.patterns {
        let mut nodes = Vec::new();
        for node in std::iter::once(&pattern.start).chain(pattern.steps.iter().map(|(_, n)| n)) {
            let (slot, name) = slots.slot(node.var.as_ref().map(|v| v.name.as_str()));
            for (key, value) in &node.props {
                let var = Expr {
                    kind: ExprKind::Var(name.clone()),
                    span: node.span,
                };
                let field = Expr {
                    kind: ExprKind::Prop(Box::new(var), key.clone()),
                    span: key.span,
                };
                filters.push(Expr {
                    kind: ExprKind::Binary(BinaryOp::Eq, Box::new(field), Box::new(value.clone())),
                    span: value.span,
                });
            }
            nodes.push((slot, name));
        }
        let mut rels = Vec::new();
        for (rel, _) in &pattern.steps {
            rels.push(rel.var.as_ref().map(|v| slots.slot(Some(&v.name)).0));
        }
        let path = pattern
            .path_var
            .as_ref()
            .map(|v| slots.slot(Some(&v.name)).0);
        named_patterns.push(BoundPattern {
            pattern,
            nodes,
            rels,
            path,
        });
    }

    Bound {
        slots,
        filters,
        patterns: named_patterns,
    }
}

/// Passes 2 and 3: each pattern is scanned from its best anchor (or the
/// search hits, `seed`) and expanded outward, and every conjunct runs as
/// soon as the slots it reads are bound (conjuncts an index answers are
/// dropped).
fn access(bound: &Bound<'_>, seed: Option<Arc<SearchStep>>, status_index: bool) -> Result<Op> {
    let filters = &bound.filters;
    let slots = &bound.slots;
    let mut placed: Vec<bool> = vec![false; slots.names.len()];
    // Indexed like `filters`; None once placed or answered by an index.
    let mut pending: Pending = Vec::new();
    for f in filters {
        let c = compile(f, &|n| slots.resolve(n))?;
        let mut used = Vec::new();
        c.slots(&mut used);
        pending.push(Some((c, used)));
    }
    let mut root: Option<Op> = None;
    let seed = seed.and_then(|step| Some((bound.patterns.first()?.nodes[0].0, step)));
    for p in &bound.patterns {
        let mut planner = PatternPlanner {
            filters,
            pending: &mut pending,
            bound: &mut placed,
            seed: seed.clone(),
            status_index,
        };
        root = Some(planner.plan(p.pattern, &p.nodes, &p.rels, p.path, root.take())?);
    }
    let root = root.unwrap_or(Op::Once);
    Ok(place_filters(root, &mut pending, &vec![true; placed.len()]))
}

/// Pass 5: an expansion whose far end no expression reads beyond its id
/// binds it by id, without reading its record.
fn bind_far_ends_by_id(mut plan: Plan) -> Plan {
    let mut needed = vec![false; plan.width];
    record_slots(&plan.root, &mut needed);
    skip_loads(&mut plan.root, &needed);
    plan
}

/// Marks in `needed` every slot whose node record some expression of the
/// plan reads: everything but reading its id (`n.id`, `id(n)`), comparing
/// it with `=` / `<>` (nodes compare by id), `connections(n)`, `n IS
/// NULL`, and `count(n)` / `count(DISTINCT n)` (counted by id). A slot
/// used any other way — returned, grouped by, sorted, collected, a field
/// read — needs its record.
pub fn record_slots(op: &Op, needed: &mut Vec<bool>) {
    let mut exprs: Vec<&CExpr> = Vec::new();
    match op {
        Op::Filter { pred, .. } => exprs.push(pred),
        Op::Project { items, .. } => exprs.extend(items),
        Op::Aggregate { keys, aggs, .. } => {
            exprs.extend(keys);
            for a in aggs {
                match (&a.arg, a.func) {
                    (Some(CExpr::Slot(..)), AggFunc::Count) | (None, _) => {}
                    (Some(e), _) => exprs.push(e),
                }
            }
        }
        _ => {}
    }
    for e in exprs {
        record_uses(e, needed);
    }
    for child in op.children() {
        record_slots(child, needed);
    }
}

fn record_uses(e: &CExpr, needed: &mut Vec<bool>) {
    use crate::query::ast::BinaryOp as B;
    use crate::query::expr::Func;
    let mut mark = |s: usize| {
        if needed.len() <= s {
            needed.resize(s + 1, false);
        }
        needed[s] = true;
    };
    match e {
        CExpr::Slot(s, _) => mark(*s),
        CExpr::Field(base, name) if name == "id" && matches!(**base, CExpr::Slot(..)) => {}
        CExpr::Func(Func::Id | Func::Connections, args)
            if matches!(args.as_slice(), [CExpr::Slot(..)]) => {}
        CExpr::IsNull(inner, _) if matches!(**inner, CExpr::Slot(..)) => {}
        CExpr::Binary(B::Eq | B::Ne, l, r) => {
            for side in [l, r] {
                if !matches!(**side, CExpr::Slot(..)) {
                    record_uses(side, needed);
                }
            }
        }
        CExpr::Field(base, _) | CExpr::Not(base) | CExpr::Neg(base) | CExpr::IsNull(base, _) => {
            record_uses(base, needed)
        }
        CExpr::List(items) | CExpr::Func(_, items) => {
            items.iter().for_each(|i| record_uses(i, needed))
        }
        CExpr::Map(entries) => entries.iter().for_each(|(_, v)| record_uses(v, needed)),
        CExpr::Binary(_, l, r) => {
            record_uses(l, needed);
            record_uses(r, needed);
        }
        CExpr::Const(_) | CExpr::Param(_) => {}
    }
}

/// Clears `load` on every expansion whose far end needs no record and no
/// label check, and is not reached over the knowledge junction (whose
/// entries do not promise a live far end); on a nearest-knowledge search
/// whose hits need no record, label or residual check; and on a by-id scan whose node
/// needs no record, no label check, and is the start of an expansion every
/// row goes through that needs at least one edge (a missing, deleted or
/// invisible node has none, so it yields no rows either way).
fn skip_loads(op: &mut Op, needed: &[bool]) {
    skip_loads_under(op, needed, &mut Vec::new());
}

/// `leaves`: the slots an expansion above `op` leaves over at least one
/// (non-junction) edge.
fn skip_loads_under(op: &mut Op, needed: &[bool], leaves: &mut Vec<usize>) {
    let needs = |slot: usize| needed.get(slot).copied().unwrap_or(true);
    let pushed = match op {
        Op::Expand { expand, .. } => {
            let junction = expand.types.first().is_some_and(|t| t == "about");
            expand.load = junction || expand.label.is_some() || needs(expand.to);
            let one_edge = expand.hops.is_none_or(|(min, _)| min >= 1);
            if !junction && one_edge {
                leaves.push(expand.from);
                true
            } else {
                false
            }
        }
        Op::Scan {
            slot,
            access: Access::ById { label, load, .. },
            ..
        } => {
            *load = label.is_some() || needs(*slot) || !leaves.contains(slot);
            false
        }
        // The vector index answers with ids of live chunks the reader may
        // see; a label, a residual check or a name search needs the record.
        Op::Search {
            slot,
            label,
            step,
            load,
            ..
        } => {
            let nearest = matches!(step.target, SearchTarget::Knowledge { .. });
            *load = !nearest || label.is_some() || !step.residual.is_empty() || needs(*slot);
            false
        }
        _ => false,
    };
    for child in op.children_mut() {
        skip_loads_under(child, needed, leaves);
    }
    if pushed {
        leaves.pop();
    }
}

type Pending = Vec<Option<(CExpr, Vec<usize>)>>;

/// The access path for a node: (score, access, the conjunct it answers).
/// A lower score is a better index.
fn access_for(
    node: &NodePattern,
    name: &str,
    filters: &[Expr],
    status_index: bool,
) -> Result<(u8, Access, Option<usize>)> {
    for (i, f) in filters.iter().enumerate() {
        if let Some(value) = equality_on(f, name, "id") {
            let access = Access::ById {
                id: compile(value, &no_vars)?,
                label: node.label.as_ref().map(|l| l.name.clone()),
                load: true,
            };
            return Ok((0, access, Some(i)));
        }
    }
    match node.label.as_ref().map(|l| l.name.as_str()) {
        Some("person") => Ok((3, Access::People, None)),
        Some("knowledge") => Err(Error::invalid(
            "knowledge nodes are reached from SEARCH KNOWLEDGE or -[:about]-",
        )),
        Some(kind) => {
            for (i, f) in filters.iter().enumerate().filter(|_| status_index) {
                // A parameter keeps the index: its value is known when the
                // plan runs, and a cached plan stays parametric.
                let Some(value) = equality_on(f, name, "status") else {
                    continue;
                };
                let indexable = match &value.kind {
                    ExprKind::Str(s) => Status::parse(s).is_ok(),
                    ExprKind::Param(_) => true,
                    _ => false,
                };
                if indexable {
                    let status = compile(value, &no_vars)?;
                    return Ok((1, Access::ByStatus(kind.to_string(), status), Some(i)));
                }
            }
            Ok((2, Access::ByType(kind.to_string()), None))
        }
        None => Ok((4, Access::AllThings, None)),
    }
}

/// Plans one pattern into the operators so far, placing filters as soon as
/// their variables are bound.
struct PatternPlanner<'p> {
    filters: &'p [Expr],
    pending: &'p mut Pending,
    bound: &'p mut Vec<bool>,
    /// The slot the search hits bind, and the search (SEARCH … THEN MATCH).
    seed: Option<(usize, Arc<SearchStep>)>,
    status_index: bool,
}

impl PatternPlanner<'_> {
    /// A scan of node `name` (slot `slot`), after `input` if any.
    fn scan(
        &mut self,
        node: &NodePattern,
        slot: usize,
        name: &str,
        input: Option<Op>,
    ) -> Result<Op> {
        let scan = match &self.seed {
            Some((seed, step)) if *seed == slot => Op::Search {
                slot,
                name: name.to_string(),
                label: node.label.as_ref().map(|l| l.name.clone()),
                score: None,
                step: step.clone(),
                load: true,
            },
            _ => {
                let (_, access, answered) =
                    access_for(node, name, self.filters, self.status_index)?;
                if let Some(i) = answered {
                    // The index returns exactly the rows the conjunct would keep.
                    self.pending[i] = None;
                }
                Op::Scan {
                    slot,
                    name: name.to_string(),
                    access,
                }
            }
        };
        self.bound[slot] = true;
        let op = match input {
            Some(left) => Op::Product {
                left: Box::new(left),
                right: Box::new(scan),
            },
            None => scan,
        };
        Ok(place_filters(op, self.pending, self.bound))
    }

    fn plan(
        &mut self,
        pattern: &Pattern,
        nodes: &[(usize, String)],
        rels: &[Option<usize>],
        path: Option<usize>,
        input: Option<Op>,
    ) -> Result<Op> {
        let all_nodes: Vec<&NodePattern> = std::iter::once(&pattern.start)
            .chain(pattern.steps.iter().map(|(_, n)| n))
            .collect();
        if pattern.shortest {
            return self.plan_shortest(pattern, nodes, path, input);
        }
        if path.is_some() {
            return Err(Error::invalid(
                "a path variable needs SHORTEST (p = SHORTEST (a)-[…]-(b))",
            )
            .at_span(pattern.span));
        }
        // The anchor: an already bound node, else the best access path.
        let seeded = nodes.iter().position(|(s, _)| {
            self.seed.as_ref().is_some_and(|(seed, _)| seed == s) && !self.bound[*s]
        });
        let anchor = match nodes.iter().position(|(s, _)| self.bound[*s]).or(seeded) {
            Some(i) => i,
            None => {
                let mut best = (u8::MAX, 0);
                for (i, (node, (_, name))) in all_nodes.iter().zip(nodes).enumerate() {
                    let (score, _, _) = access_for(node, name, self.filters, self.status_index)?;
                    if score < best.0 {
                        best = (score, i);
                    }
                }
                best.1
            }
        };
        let mut op = match input {
            Some(op) if self.bound[nodes[anchor].0] => op,
            other => self.scan(all_nodes[anchor], nodes[anchor].0, &nodes[anchor].1, other)?,
        };
        // Forward from the anchor, then backward.
        let order: Vec<(usize, usize, bool)> = (anchor..pattern.steps.len())
            .map(|i| (i, i + 1, false))
            .chain((0..anchor).rev().map(|i| (i + 1, i, true)))
            .collect();
        for (from, to, reversed) in order {
            let step = if reversed { from - 1 } else { from };
            let (rel, _) = &pattern.steps[step];
            let (to_slot, to_name) = &nodes[to];
            let hops = rel
                .hops
                .map(|h| (h.min.unwrap_or(1), h.max.unwrap_or(MAX_HOPS)));
            if let Some((min, max)) = hops
                && (max > MAX_HOPS || min > max)
            {
                return Err(Error::too_large(format!(
                    "variable-length patterns go at most {MAX_HOPS} hops (*{min}..{max})"
                ))
                .at_span(rel.span));
            }
            let expand = Expand {
                from: nodes[from].0,
                to: *to_slot,
                to_name: to_name.clone(),
                rel: rels[step],
                way: Way::of(rel.dir, reversed),
                types: rel.types.iter().map(|t| t.name.clone()).collect(),
                hops,
                at: rel.at.as_ref().map(|e| compile(e, &no_vars)).transpose()?,
                label: all_nodes[to].label.as_ref().map(|l| l.name.clone()),
                to_bound: self.bound[*to_slot],
                load: true,
            };
            self.bound[*to_slot] = true;
            if let Some(r) = rels[step] {
                self.bound[r] = true;
            }
            op = place_filters(
                Op::Expand {
                    input: Box::new(op),
                    expand,
                },
                self.pending,
                self.bound,
            );
        }
        Ok(op)
    }

    fn plan_shortest(
        &mut self,
        pattern: &Pattern,
        nodes: &[(usize, String)],
        path: Option<usize>,
        input: Option<Op>,
    ) -> Result<Op> {
        let [(rel, end)] = pattern.steps.as_slice() else {
            return Err(Error::invalid(
                "SHORTEST takes one relationship pattern: (a)-[:type*..n]-(b)",
            )
            .at_span(pattern.span));
        };
        let path = path.ok_or_else(|| {
            Error::invalid("SHORTEST needs a path variable: p = SHORTEST …").at_span(pattern.span)
        })?;
        let mut op = input;
        for (node, (slot, name)) in [&pattern.start, end].into_iter().zip(nodes) {
            if !self.bound[*slot] {
                op = Some(self.scan(node, *slot, name, op)?);
            }
        }
        let max = rel.hops.and_then(|h| h.max).unwrap_or(MAX_HOPS);
        if max > MAX_HOPS {
            return Err(
                Error::too_large(format!("SHORTEST searches at most {MAX_HOPS} hops"))
                    .at_span(rel.span),
            );
        }
        self.bound[path] = true;
        let shortest = Shortest {
            from: nodes[0].0,
            to: nodes[1].0,
            path,
            way: Way::of(rel.dir, false),
            types: rel.types.iter().map(|t| t.name.clone()).collect(),
            max,
            at: rel.at.as_ref().map(|e| compile(e, &no_vars)).transpose()?,
        };
        let op = Op::Shortest {
            input: Box::new(op.unwrap_or(Op::Once)),
            shortest,
        };
        Ok(place_filters(op, self.pending, self.bound))
    }
}

/// Wraps `op` in every pending filter whose slots are all bound.
fn place_filters(mut op: Op, pending: &mut Pending, bound: &[bool]) -> Op {
    for entry in pending.iter_mut() {
        let ready = entry
            .as_ref()
            .is_some_and(|(_, used)| used.iter().all(|s| bound.get(*s).copied().unwrap_or(false)));
        if ready && let Some((pred, _)) = entry.take() {
            op = Op::Filter {
                input: Box::new(op),
                pred,
            };
        }
    }
    op
}

/// Whether an expression is an aggregate call.
fn aggregate_of(expr: &Expr, slots: &Slots) -> Result<Option<Aggregate>> {
    if let ExprKind::Call {
        name,
        distinct,
        star,
        args,
    } = &expr.kind
        && let Some(func) = AggFunc::parse(&name.name)
    {
        let arg = match (star, args.as_slice()) {
            (true, []) if func == AggFunc::Count => None,
            (false, [a]) => Some(compile(a, &|n| slots.resolve(n))?),
            _ => {
                return Err(
                    Error::invalid(format!("{}() takes one argument", name.name))
                        .at_span(expr.span),
                );
            }
        };
        return Ok(Some(Aggregate {
            func,
            distinct: *distinct,
            arg,
        }));
    }
    Ok(None)
}

/// The column name of a RETURN item: its alias, or its text.
pub fn column_name(expr: &Expr, alias: Option<&str>) -> String {
    alias
        .map(str::to_string)
        .unwrap_or_else(|| expr.to_string())
}

fn finish(input: Op, query: &Query, slots: &Slots) -> Result<Plan> {
    let (ret, order) = (&query.ret, &query.order);
    let (skip, limit) = (query.skip.as_ref(), query.limit.as_ref());
    let columns: Vec<String> = ret
        .items
        .iter()
        .map(|(e, a)| column_name(e, a.as_ref().map(|a| a.name.as_str())))
        .collect();
    let resolve = |n: &str| slots.resolve(n);
    let mut aggs = Vec::new();
    let mut out = Vec::new();
    let mut keys = Vec::new();
    for (expr, _) in &ret.items {
        match aggregate_of(expr, slots)? {
            Some(a) => {
                out.push(AggOut::Agg(aggs.len()));
                aggs.push(a);
            }
            None => {
                out.push(AggOut::Key(keys.len()));
                keys.push(compile(expr, &resolve)?);
            }
        }
    }
    // ORDER BY: a RETURN column (by alias or text), else an expression over
    // the pattern's variables (not allowed with aggregation or DISTINCT).
    let mut sort_keys = Vec::new();
    let mut hidden = Vec::new();
    for (expr, desc) in order {
        let text = expr.to_string();
        let by_column = columns
            .iter()
            .position(|c| *c == text || matches!(&expr.kind, ExprKind::Var(v) if v == c));
        match by_column {
            Some(i) => sort_keys.push((i, *desc)),
            None if aggs.is_empty() && !ret.distinct => {
                sort_keys.push((columns.len() + hidden.len(), *desc));
                hidden.push(compile(expr, &resolve)?);
            }
            None => {
                return Err(Error::invalid(format!(
                    "ORDER BY {text} must name a RETURN column here"
                ))
                .at_span(expr.span));
            }
        }
    }
    let mut op = if aggs.is_empty() {
        let mut items = keys;
        items.extend(hidden.iter().cloned());
        Op::Project {
            input: Box::new(input),
            items,
        }
    } else {
        Op::Aggregate {
            input: Box::new(input),
            keys,
            aggs,
            out,
        }
    };
    if ret.distinct {
        op = Op::Distinct {
            input: Box::new(op),
        };
    }
    if !sort_keys.is_empty() {
        let top = match limit {
            Some(l) => Some((
                skip.map(|s| compile(s, &no_vars)).transpose()?,
                compile(l, &no_vars)?,
            )),
            None => None,
        };
        op = Op::Sort {
            input: Box::new(op),
            keys: sort_keys,
            top,
        };
    }
    if let Some(s) = skip {
        op = Op::Skip {
            input: Box::new(op),
            count: compile(s, &no_vars)?,
        };
    }
    if let Some(l) = limit {
        op = Op::Limit {
            input: Box::new(op),
            count: compile(l, &no_vars)?,
        };
    }
    if !hidden.is_empty() {
        op = Op::Trim {
            input: Box::new(op),
            width: columns.len(),
        };
    }
    Ok(Plan {
        root: op,
        columns,
        width: slots.names.len(),
        limited: limit.is_some(),
    })
}

impl Op {
    /// One line describing this operator (EXPLAIN).
    pub fn describe(&self) -> String {
        match self {
            Op::Once => "Once".into(),
            Op::Scan { name, access, .. } => match access {
                Access::ById { id, .. } => format!("NodeById {name} id={id}"),
                Access::ByStatus(kind, s) => match s {
                    CExpr::Const(Val::Data(Json::String(s))) => {
                        format!("NodesByTypeStatus {name}:{kind} status={s}")
                    }
                    param => format!("NodesByTypeStatus {name}:{kind} status={param}"),
                },
                Access::ByType(kind) => format!("NodesByType {name}:{kind}"),
                Access::People => format!("People {name}:person"),
                Access::AllThings => format!("AllThings {name}"),
            },
            Op::Search {
                name, label, step, ..
            } => {
                if name.is_empty() {
                    return step.describe();
                }
                let label = label.as_ref().map_or(String::new(), |l| format!(":{l}"));
                format!("{} ({name}{label})", step.describe())
            }
            Op::Expand { expand: e, .. } => {
                let (l, r) = e.way.arrow();
                let types = if e.types.is_empty() {
                    String::new()
                } else {
                    format!(":{}", e.types.join("|"))
                };
                let hops = e.hops.map_or(String::new(), |(a, b)| format!("*{a}..{b}"));
                let at = e.at.as_ref().map_or(String::new(), |a| format!(" AT {a}"));
                let label = e.label.as_ref().map_or(String::new(), |l| format!(":{l}"));
                let into = if e.to_bound { " (bound)" } else { "" };
                let index = if e.types.first().is_some_and(|t| t == "about") {
                    "Junction"
                } else {
                    "Expand"
                };
                format!(
                    "{index} {l}[{types}{hops}{at}]{r} ({}{label}){into}",
                    e.to_name
                )
            }
            Op::Shortest { shortest: s, .. } => {
                let (l, r) = s.way.arrow();
                format!("ShortestPath {l}[:{}*..{}]{r}", s.types.join("|"), s.max)
            }
            Op::Filter { pred, .. } => format!("Filter {pred}"),
            Op::Product { .. } => "CartesianProduct".into(),
            Op::Project { items, .. } => {
                let mut s = "Project ".to_string();
                for (i, e) in items.iter().enumerate() {
                    let _ = write!(s, "{}{e}", if i > 0 { ", " } else { "" });
                }
                s
            }
            Op::Aggregate { keys, aggs, .. } => {
                format!("Aggregate keys={} aggregates={}", keys.len(), aggs.len())
            }
            Op::Distinct { .. } => "Distinct".into(),
            Op::Sort { keys, top, .. } => {
                let ks: Vec<String> = keys
                    .iter()
                    .map(|(c, d)| format!("#{c}{}", if *d { " DESC" } else { "" }))
                    .collect();
                match top {
                    None => format!("Sort {}", ks.join(", ")),
                    Some((None, limit)) => format!("Sort {} top {limit}", ks.join(", ")),
                    Some((Some(skip), limit)) => {
                        format!("Sort {} top {skip} + {limit}", ks.join(", "))
                    }
                }
            }
            Op::Skip { count, .. } => format!("Skip {count}"),
            Op::Limit { count, .. } => format!("Limit {count}"),
            Op::Trim { width, .. } => format!("Trim {width}"),
        }
    }

    pub fn children(&self) -> Vec<&Op> {
        match self {
            Op::Once | Op::Scan { .. } | Op::Search { .. } => vec![],
            Op::Product { left, right } => vec![left, right],
            Op::Expand { input, .. }
            | Op::Shortest { input, .. }
            | Op::Filter { input, .. }
            | Op::Project { input, .. }
            | Op::Aggregate { input, .. }
            | Op::Distinct { input }
            | Op::Sort { input, .. }
            | Op::Skip { input, .. }
            | Op::Limit { input, .. }
            | Op::Trim { input, .. } => vec![input],
        }
    }

    pub fn children_mut(&mut self) -> Vec<&mut Op> {
        match self {
            Op::Once | Op::Scan { .. } | Op::Search { .. } => vec![],
            Op::Product { left, right } => vec![left, right],
            Op::Expand { input, .. }
            | Op::Shortest { input, .. }
            | Op::Filter { input, .. }
            | Op::Project { input, .. }
            | Op::Aggregate { input, .. }
            | Op::Distinct { input }
            | Op::Sort { input, .. }
            | Op::Skip { input, .. }
            | Op::Limit { input, .. }
            | Op::Trim { input, .. } => vec![input],
        }
    }

    /// Visits the tree in pre-order, the order of `tree`'s annotations.
    pub fn each<'o>(&'o self, visit: &mut dyn FnMut(&'o Op)) {
        visit(self);
        for child in self.children() {
            child.each(visit);
        }
    }

    /// For a scan by id and an expansion: whether it reads the record of
    /// the node it binds (false: bound by id alone). None for the rest.
    fn reads_records(&self) -> Option<bool> {
        match self {
            Op::Scan {
                access: Access::ById { load, .. },
                ..
            } => Some(*load),
            Op::Expand { expand, .. } => Some(expand.load),
            Op::Search { load, .. } => Some(*load),
            _ => None,
        }
    }

    /// The plan tree, one operator per line, children indented (EXPLAIN).
    /// `annotate` adds text per operator in pre-order (PROFILE).
    pub fn tree(&self, annotate: &dyn Fn(usize) -> String) -> String {
        let mut out = String::new();
        let mut next = 0;
        self.write_tree(0, &mut next, annotate, &mut out);
        out
    }

    fn write_tree(
        &self,
        depth: usize,
        next: &mut usize,
        annotate: &dyn Fn(usize) -> String,
        out: &mut String,
    ) {
        let id = *next;
        *next += 1;
        let _ = writeln!(
            out,
            "{}{}{}",
            "  ".repeat(depth),
            self.describe(),
            annotate(id)
        );
        for child in self.children() {
            child.write_tree(depth + 1, next, annotate, out);
        }
    }
}
