//! Planning a SEARCH: its index step is the leaf operator `Op::Search` of
//! the same plan trees MATCH has, so EXPLAIN and PROFILE cover it. Without
//! `THEN` its hits are projected (RETURN over the hit's fields and
//! `score`); with `THEN MATCH` they bind the pattern's first node.
//!
//! Inside a search, bare words name the hit's fields: `type`, `status`,
//! `name`, `properties.x` for things; `kind`, `text`, `labels`, `source`
//! for knowledge; `score` is the hit's score. The WHERE conjuncts the index
//! answers become its filter (their values are read when the plan runs, so
//! they may be parameters), the rest a residual check on each hit.

use std::sync::Arc;

use super::{Op, Optimize, Plan, bind_far_ends_by_id, column_name, conjuncts, plan_query};
use crate::error::{Result, Span};
use crate::ontology::Vocabulary;
use crate::query::analyze::analyze_search;
use crate::query::ast::{BinaryOp, Expr, ExprKind, Ident, Search, SearchTarget};
use crate::query::expr::{CExpr, compile};

/// Hits returned when a SEARCH THINGS has no LIMIT.
pub const DEFAULT_LIMIT: usize = 10;

/// The row slots of a SEARCH without THEN: the hit and its score.
const HIT_SLOT: usize = 0;
const SCORE_SLOT: usize = 1;
const HIT: &str = "hit";
const SCORE: &str = "score";

/// A hit field the index filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexField {
    /// A thing's type (`type = …`, `type IN […]`).
    Type,
    /// A thing's status.
    Status,
    /// A knowledge item's kind (only chunks have embeddings).
    Kind,
    /// The type of the thing a chunk is about (`source.type`).
    SourceType,
    /// The thing a chunk is about, by id.
    Source,
    /// `"label" IN labels`.
    Label,
}

/// A WHERE conjunct the index answers: `field = value`, `field IN list`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexCondition {
    pub field: IndexField,
    pub value: Expr,
    /// `IN`: the value is a list.
    pub list: bool,
    /// The whole conjunct (errors point here).
    pub span: Span,
}

/// The index step of a SEARCH.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchStep {
    pub target: SearchTarget,
    pub limit: Option<Expr>,
    pub conditions: Vec<IndexCondition>,
    /// The other conjuncts, checked on each hit (slot 0 the hit, slot 1
    /// its score) before it counts toward the limit.
    pub residual: Vec<CExpr>,
    /// The WHERE as written (EXPLAIN).
    pub filter: Option<Expr>,
}

impl SearchStep {
    /// One line for EXPLAIN, without the variable the hits bind.
    pub fn describe(&self) -> String {
        let filter = self
            .filter
            .as_ref()
            .map_or(String::new(), |f| format!(" WHERE {f}"));
        match &self.target {
            SearchTarget::Things(text) => format!("NameSearch {text}{filter}"),
            SearchTarget::Knowledge { k, .. } => format!("NearestKnowledge K {k}{filter}"),
        }
    }
}

/// The plan of a SEARCH statement.
pub fn plan_search(search: &Search, vocabulary: &Vocabulary, optimize: Optimize) -> Result<Plan> {
    analyze_search(search, vocabulary)?;
    let step = Arc::new(search_step(search)?);
    if let Some(query) = &search.then {
        return plan_query(query, vocabulary, Some(step), optimize);
    }
    let (columns, items) = match &search.ret {
        Some(ret) => {
            let items = ret
                .items
                .iter()
                .map(|(e, _)| compile_on_hit(e))
                .collect::<Result<Vec<_>>>()?;
            let columns = ret
                .items
                .iter()
                .map(|(e, a)| column_name(e, a.as_ref().map(|a| a.name.as_str())))
                .collect();
            (columns, items)
        }
        None => {
            let names: &[&str] = match search.target {
                SearchTarget::Things(_) => &["id", "type", "name", "status", "score"],
                SearchTarget::Knowledge { .. } => {
                    &["id", "kind", "text", "labels", "source", "score"]
                }
            };
            let items = names
                .iter()
                .map(|n| {
                    compile_on_hit(&Expr {
                        kind: ExprKind::Var((*n).into()),
                        span: search.span,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            (names.iter().map(|n| n.to_string()).collect(), items)
        }
    };
    // The score is made into a value only for a RETURN that reads it.
    let score = items.iter().any(|e| {
        let mut slots = Vec::new();
        e.slots(&mut slots);
        slots.contains(&SCORE_SLOT)
    });
    let mut root = Op::Project {
        input: Box::new(Op::Search {
            slot: HIT_SLOT,
            name: String::new(),
            label: None,
            score: score.then_some(SCORE_SLOT),
            step,
            load: true,
        }),
        items,
    };
    if search.ret.as_ref().is_some_and(|r| r.distinct) {
        root = Op::Distinct {
            input: Box::new(root),
        };
    }
    let plan = Plan {
        root,
        columns,
        width: 2,
        // The index returns at most LIMIT (or K) hits, capped by the rows a
        // result may have.
        limited: true,
    };
    Ok(if optimize.skip_loads {
        bind_far_ends_by_id(plan)
    } else {
        plan
    })
}

fn search_step(search: &Search) -> Result<SearchStep> {
    let things = matches!(search.target, SearchTarget::Things(_));
    let mut filters = Vec::new();
    if let Some(w) = &search.filter {
        conjuncts(w, &mut filters);
    }
    let mut conditions = Vec::new();
    let mut residual = Vec::new();
    for f in &filters {
        match index_condition(things, f) {
            Some(c) => conditions.push(c),
            None => residual.push(compile_on_hit(f)?),
        }
    }
    Ok(SearchStep {
        target: search.target.clone(),
        limit: search.limit.clone(),
        conditions,
        residual,
        filter: search.filter.clone(),
    })
}

/// The conjunct as a condition the index answers, if it is one.
fn index_condition(things: bool, conjunct: &Expr) -> Option<IndexCondition> {
    let ExprKind::Binary(op @ (BinaryOp::Eq | BinaryOp::In), l, r) = &conjunct.kind else {
        return None;
    };
    let condition = |field, value: &Expr, list| {
        Some(IndexCondition {
            field,
            value: value.clone(),
            list,
            span: conjunct.span,
        })
    };
    if !things && *op == BinaryOp::In && matches!(&r.kind, ExprKind::Var(v) if v == "labels") {
        return condition(IndexField::Label, l, false);
    }
    let name = match &l.kind {
        ExprKind::Var(v) => v.clone(),
        ExprKind::Prop(base, f) if matches!(&base.kind, ExprKind::Var(v) if v == "source") => {
            format!("source.{}", f.name)
        }
        _ => return None,
    };
    let field = match (things, name.as_str()) {
        (true, "type") => IndexField::Type,
        (true, "status") => IndexField::Status,
        (false, "kind") => IndexField::Kind,
        (false, "source.type" | "source_type") => IndexField::SourceType,
        (false, "source") => IndexField::Source,
        _ => return None,
    };
    condition(field, r, *op == BinaryOp::In)
}

/// Compiles an expression over the hit: slot 0 is the hit, slot 1 its score.
fn compile_on_hit(expr: &Expr) -> Result<CExpr> {
    compile(&bind_hit(expr), &|name| match name {
        HIT => Some(HIT_SLOT),
        SCORE => Some(SCORE_SLOT),
        _ => None,
    })
    .map_err(|e| e.at_span(expr.span))
}

/// Rewrites bare words into fields of the hit (`score` into the score).
fn bind_hit(expr: &Expr) -> Expr {
    let kind = match &expr.kind {
        ExprKind::Var(name) if name == "score" => ExprKind::Var(SCORE.into()),
        ExprKind::Var(name) => ExprKind::Prop(
            Box::new(Expr {
                kind: ExprKind::Var(HIT.into()),
                span: expr.span,
            }),
            Ident {
                name: name.clone(),
                span: expr.span,
            },
        ),
        ExprKind::Prop(base, field) => ExprKind::Prop(Box::new(bind_hit(base)), field.clone()),
        ExprKind::List(items) => ExprKind::List(items.iter().map(bind_hit).collect()),
        ExprKind::Map(entries) => ExprKind::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), bind_hit(v)))
                .collect(),
        ),
        ExprKind::Unary(op, e) => ExprKind::Unary(*op, Box::new(bind_hit(e))),
        ExprKind::Binary(op, l, r) => {
            ExprKind::Binary(*op, Box::new(bind_hit(l)), Box::new(bind_hit(r)))
        }
        ExprKind::Call {
            name,
            distinct,
            star,
            args,
        } => ExprKind::Call {
            name: name.clone(),
            distinct: *distinct,
            star: *star,
            args: args.iter().map(bind_hit).collect(),
        },
        ExprKind::IsNull { expr, negated } => ExprKind::IsNull {
            expr: Box::new(bind_hit(expr)),
            negated: *negated,
        },
        other => other.clone(),
    };
    Expr {
        kind,
        span: expr.span,
    }
}
