//! `SEARCH THINGS` and `SEARCH KNOWLEDGE`: the WHERE conjuncts the index
//! answers become its filter, the rest a residual check on each hit; the
//! hits become rows (RETURN over the hit's fields and `score`) or seed the
//! pattern of `THEN MATCH`.
//!
//! Inside a search, bare words name the hit's fields: `type`, `status`,
//! `name`, `properties.x` for things; `kind`, `text`, `labels`, `source`
//! for knowledge; `score` is the hit's score.

use std::sync::Arc;

use serde_json::{Value as Json, json};

use crate::error::{Error, Result};
use crate::model::Id;
use crate::ontology::{Status, TypeKind};
use crate::query::ast::{BinaryOp, Expr, ExprKind, Ident, Search, SearchTarget};
use crate::query::exec::{self, Context};
use crate::query::expr::{CExpr, Env, compile};
use crate::query::plan::{Plan, column_name, conjuncts};
use crate::query::value::{Node, Val};
use crate::search::{Indexes, KnowledgeSearch, NameSearch};
use crate::vector::{Method, VectorFilter};

/// Hits returned when a SEARCH THINGS has no LIMIT.
pub const DEFAULT_LIMIT: usize = 10;

const HIT: &str = "_hit";
const SCORE: &str = "_score";

/// What a search statement produced.
pub struct SearchResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Json>>,
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

/// Compiles an expression over the hit: slot 0 is the hit, slot 1 its score.
fn compile_on_hit(expr: &Expr) -> Result<CExpr> {
    compile(&bind_hit(expr), &|name| match name {
        HIT => Some(0),
        SCORE => Some(1),
        _ => None,
    })
    .map_err(|e| e.at_span(expr.span))
}

fn constant(expr: &Expr, env: &Env<'_, '_>) -> Result<Val> {
    compile(expr, &|_| None)
        .and_then(|c| c.eval(&[], env))
        .map_err(|e| e.at_span(expr.span))
}

/// `field = value` or `field IN [values]` on a bare word (or `source.type`):
/// the field and the constant side.
fn field_condition(conjunct: &Expr) -> Option<(String, &Expr, bool)> {
    let ExprKind::Binary(op @ (BinaryOp::Eq | BinaryOp::In), l, r) = &conjunct.kind else {
        return None;
    };
    let name = match &l.kind {
        ExprKind::Var(v) => v.clone(),
        ExprKind::Prop(base, f) if matches!(&base.kind, ExprKind::Var(v) if v == "source") => {
            format!("source.{}", f.name)
        }
        _ => return None,
    };
    Some((name, r.as_ref(), *op == BinaryOp::In))
}

/// The strings a condition's constant side names (one, or a list).
fn strings(value: &Val, list: bool, what: &str) -> Result<Vec<String>> {
    let bad = || {
        Error::invalid(format!(
            "{what} is compared with a string or a list of strings"
        ))
    };
    match (value.to_json(), list) {
        (Json::String(s), false) => Ok(vec![s]),
        (Json::Array(items), true) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// A score as output: six decimals are all an f32 score means.
fn score_json(score: f32) -> Json {
    json!((score as f64 * 1e6).round() / 1e6)
}

/// Residual conditions: every one must hold for a hit to be kept.
struct Residual {
    checks: Vec<CExpr>,
}

impl Residual {
    fn keep(&self, node: Node, env: &Env<'_, '_>) -> Result<bool> {
        if self.checks.is_empty() {
            return Ok(true);
        }
        let row = [Val::Node(Arc::new(node)), Val::Data(Json::Null)];
        for c in &self.checks {
            if !c.eval(&row, env)?.truthy() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn count(expr: &Expr, env: &Env<'_, '_>, what: &str) -> Result<usize> {
    let v = constant(expr, env)?;
    match v.as_i64() {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(Error::invalid(format!(
            "{what} takes a whole number ≥ 0, not {}",
            v.to_json()
        ))
        .at_span(expr.span)),
    }
}

/// Runs a SEARCH statement. `then` is the plan of its THEN MATCH.
pub fn run(search: &Search, then: Option<&Plan>, ctx: &Context<'_, '_>) -> Result<SearchResult> {
    let env = &ctx.env;
    let mut filters = Vec::new();
    if let Some(w) = &search.filter {
        conjuncts(w, &mut filters);
    }
    let limit = match &search.limit {
        Some(l) => Some(count(l, env, "LIMIT")?),
        None => None,
    };
    let hits = match &search.target {
        SearchTarget::Things(text) => search_things(text, &filters, limit, ctx, env)?,
        SearchTarget::Knowledge { vector, k } => {
            let k = count(k, env, "K")?.min(limit.unwrap_or(usize::MAX));
            search_knowledge(vector, k, &filters, ctx, env)?.0
        }
    };
    if let Some(plan) = then {
        let seeded = Context {
            env: Env {
                params: env.params,
                txn: env.txn,
                now: env.now,
            },
            indexes: ctx.indexes,
            deadline: ctx.deadline,
            cancel: ctx.cancel,
            max_rows: ctx.max_rows,
            profile: ctx.profile.clone(),
            seeds: hits.into_iter().map(|(node, _)| Arc::new(node)).collect(),
        };
        let rows = exec::run(plan, &seeded)?;
        return Ok(SearchResult {
            columns: plan.columns.clone(),
            rows: rows
                .into_iter()
                .map(|r| r.into_iter().map(|v| v.to_json()).collect())
                .collect(),
        });
    }
    let (columns, items) = match &search.ret {
        Some(ret) => {
            let mut items = Vec::new();
            for (e, _) in &ret.items {
                items.push(compile_on_hit(e)?);
            }
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
            let mut items = Vec::new();
            for n in names {
                let e = Expr {
                    kind: ExprKind::Var((*n).into()),
                    span: search.span,
                };
                items.push(compile_on_hit(&e)?);
            }
            (names.iter().map(|n| n.to_string()).collect(), items)
        }
    };
    let mut rows = Vec::with_capacity(hits.len());
    for (node, score) in hits {
        let row = [Val::Node(Arc::new(node)), Val::Data(score_json(score))];
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            out.push(item.eval(&row, env)?.to_json());
        }
        if search.ret.as_ref().is_some_and(|r| r.distinct) && rows.contains(&out) {
            continue;
        }
        rows.push(out);
    }
    Ok(SearchResult { columns, rows })
}

fn search_things(
    text: &Expr,
    filters: &[Expr],
    limit: Option<usize>,
    ctx: &Context<'_, '_>,
    env: &Env<'_, '_>,
) -> Result<Vec<(Node, f32)>> {
    let text = match constant(text, env)?.to_json() {
        Json::String(s) => s,
        other => {
            return Err(
                Error::invalid(format!("SEARCH THINGS takes a string, not {other}"))
                    .at_span(text.span),
            );
        }
    };
    let mut kinds: Option<Vec<String>> = None;
    let mut statuses: Option<Vec<String>> = None;
    let mut residual = Residual { checks: Vec::new() };
    for f in filters {
        match field_condition(f) {
            Some((field, value, list)) if field == "type" => {
                let names =
                    strings(&constant(value, env)?, list, "type").map_err(|e| e.at_span(f.span))?;
                for n in &names {
                    if n != "person" {
                        env.txn
                            .vocabulary()
                            .check(TypeKind::Thing, n)
                            .map_err(|e| e.at_span(value.span))?;
                    }
                }
                kinds = Some(intersect(kinds, names));
            }
            Some((field, value, list)) if field == "status" => {
                let names = strings(&constant(value, env)?, list, "status")
                    .map_err(|e| e.at_span(f.span))?;
                for n in &names {
                    Status::parse(n).map_err(|e| e.at_span(value.span))?;
                }
                statuses = Some(intersect(statuses, names));
            }
            _ => residual.checks.push(compile_on_hit(f)?),
        }
    }
    let q = NameSearch {
        text: &text,
        kinds,
        statuses,
        limit: limit.unwrap_or(DEFAULT_LIMIT).min(ctx.max_rows),
        deadline: ctx.deadline,
    };
    let hits = ctx.indexes.search_names(env.txn, &q, &mut |found| {
        let node = match found {
            crate::search::Found::Thing(t) => Node::Thing(t.clone()),
            crate::search::Found::Person(p) => Node::Person(p.clone()),
        };
        residual.keep(node, env)
    })?;
    Ok(hits
        .into_iter()
        .map(|h| {
            let node = match h.found {
                crate::search::Found::Thing(t) => Node::Thing(t),
                crate::search::Found::Person(p) => Node::Person(p),
            };
            (node, h.score)
        })
        .collect())
}

/// Two conditions on the same field both hold.
fn intersect(current: Option<Vec<String>>, new: Vec<String>) -> Vec<String> {
    match current {
        None => new,
        Some(old) => old.into_iter().filter(|x| new.contains(x)).collect(),
    }
}

/// The index filter and the residual checks of SEARCH KNOWLEDGE's WHERE;
/// `false` when no chunk can match (e.g. `kind = "label"`).
fn knowledge_filter(filters: &[Expr], env: &Env<'_, '_>) -> Result<(VectorFilter, Residual, bool)> {
    let mut filter = VectorFilter::default();
    let mut possible = true;
    let mut residual = Residual { checks: Vec::new() };
    for f in filters {
        // `"label" IN labels`
        if let ExprKind::Binary(BinaryOp::In, l, r) = &f.kind
            && matches!(&r.kind, ExprKind::Var(v) if v == "labels")
        {
            let label =
                strings(&constant(l, env)?, false, "a label").map_err(|e| e.at_span(f.span))?;
            filter.labels.extend(label);
            continue;
        }
        match field_condition(f) {
            Some((field, value, list)) if field == "kind" => {
                let kinds =
                    strings(&constant(value, env)?, list, "kind").map_err(|e| e.at_span(f.span))?;
                // Only chunks carry embeddings.
                possible &= kinds.iter().any(|k| k == "chunk");
            }
            Some((field, value, list)) if field == "source.type" || field == "source_type" => {
                let types = strings(&constant(value, env)?, list, "a source type")
                    .map_err(|e| e.at_span(f.span))?;
                for t in &types {
                    env.txn
                        .vocabulary()
                        .check(TypeKind::Thing, t)
                        .map_err(|e| e.at_span(value.span))?;
                }
                filter.source_types = Some(intersect(filter.source_types.take(), types));
            }
            Some((field, value, list)) if field == "source" => {
                let v = constant(value, env)?;
                let ids: Vec<Id> = if list {
                    match v.to_json() {
                        Json::Array(items) => items
                            .into_iter()
                            .map(|i| Val::Data(i).as_id())
                            .collect::<Result<_>>()
                            .map_err(|e| e.at_span(value.span))?,
                        _ => {
                            return Err(
                                Error::invalid("source IN takes a list of ids").at_span(value.span)
                            );
                        }
                    }
                } else {
                    vec![v.as_id().map_err(|e| e.at_span(value.span))?]
                };
                let kept = match filter.sources.take() {
                    None => ids,
                    Some(old) => old.into_iter().filter(|x| ids.contains(x)).collect(),
                };
                filter.sources = Some(kept);
            }
            _ => residual.checks.push(compile_on_hit(f)?),
        }
    }
    Ok((filter, residual, possible))
}

fn search_knowledge(
    vector: &Expr,
    k: usize,
    filters: &[Expr],
    ctx: &Context<'_, '_>,
    env: &Env<'_, '_>,
) -> Result<(Vec<(Node, f32)>, Method)> {
    let v =
        crate::query::bind::floats(&constant(vector, env)?).map_err(|e| e.at_span(vector.span))?;
    let (filter, residual, possible) = knowledge_filter(filters, env)?;
    if !possible || k == 0 {
        return Ok((Vec::new(), Method::Exact));
    }
    let q = KnowledgeSearch {
        vector: &v,
        k: k.min(ctx.max_rows),
        filter,
        deadline: ctx.deadline,
    };
    let (hits, method) = ctx.indexes.search_knowledge(env.txn, &q, &mut |k| {
        residual.keep(Node::Knowledge(k.clone()), env)
    })?;
    Ok((
        hits.into_iter()
            .map(|h| (Node::Knowledge(h.knowledge), h.score))
            .collect(),
        method,
    ))
}

/// EXPLAIN of a SEARCH: the index step, then the THEN MATCH plan under it.
pub fn explain(
    search: &Search,
    then: Option<&Plan>,
    env: &Env<'_, '_>,
    indexes: &Indexes,
) -> Result<Vec<String>> {
    let mut filters = Vec::new();
    if let Some(w) = &search.filter {
        conjuncts(w, &mut filters);
    }
    let first = match &search.target {
        SearchTarget::Things(text) => {
            let filter = search
                .filter
                .as_ref()
                .map_or(String::new(), |f| format!(" WHERE {f}"));
            format!("NameSearch {text}{filter}")
        }
        SearchTarget::Knowledge { k, .. } => {
            let (filter, _, possible) = knowledge_filter(&filters, env)?;
            let (method, candidates) = if possible {
                indexes.plan_knowledge_search(env.txn, &filter)
            } else {
                (Method::Exact, 0)
            };
            format!(
                "NearestKnowledge K {k} method={} candidates={candidates}",
                method.as_str()
            )
        }
    };
    let mut lines = vec![first];
    if let Some(plan) = then {
        for line in plan.root.tree(&|_| String::new()).lines() {
            lines.push(format!("  {line}"));
        }
    }
    Ok(lines)
}
