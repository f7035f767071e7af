//! A SEARCH's index step: asks the name index or the vector index of the
//! transaction's tenant once, with the conditions it answers, and yields
//! each hit that passes the residual checks (and has the label).

use super::*;
use crate::model::Id;
use crate::ontology::{Status, TypeKind};
use crate::query::ast::{Expr, ExprKind, SearchTarget};
use crate::query::bind::floats;
use crate::query::expr::compile;
use crate::query::plan::{DEFAULT_LIMIT, IndexField, SearchStep};
use crate::search::{Found, KnowledgeSearch, NameSearch};
use crate::vector::{Method, VectorFilter};

pub(super) struct SearchOp<'c> {
    pub(super) slot: usize,
    pub(super) score: Option<usize>,
    pub(super) label: &'c Option<String>,
    pub(super) step: &'c SearchStep,
    /// False: nearest-knowledge hits are bound by id (`Node::Bare`).
    pub(super) load: bool,
    pub(super) width: usize,
    pub(super) ctx: &'c Context<'c, 'c>,
    /// The hits, once asked for.
    pub(super) hits: Option<Hits>,
}

impl Operator for SearchOp<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        let hits = match &mut self.hits {
            Some(hits) => hits,
            None => self.hits.insert(hits(self.step, self.load, self.ctx)?),
        };
        // No deadline check per hit: the search checked it, and its hits
        // are a list in memory of at most the rows a result may have.
        for (node, score) in hits.by_ref() {
            if !label_ok(&node, self.label) {
                continue;
            }
            let mut row = vec![NULL; self.width];
            row[self.slot] = Val::Node(Arc::new(node));
            if let Some(slot) = self.score {
                row[slot] = Val::Data(score_json(score));
            }
            return Ok(Some(row));
        }
        Ok(None)
    }
}

/// What EXPLAIN adds to a SEARCH KNOWLEDGE: the method the vector index
/// chooses for this filter, and the candidate count it chose by.
pub fn explain_note(step: &SearchStep, ctx: &Context<'_, '_>) -> Result<String> {
    if !matches!(step.target, SearchTarget::Knowledge { .. }) {
        return Ok(String::new());
    }
    let filters = Filters::of(step, &ctx.env)?;
    let (method, candidates) = if filters.possible {
        ctx.indexes
            .plan_knowledge_search(ctx.env.txn, &filters.vector)
    } else {
        (Method::Exact, 0)
    };
    Ok(format!(
        " method={} candidates={candidates}",
        method.as_str()
    ))
}

/// A score as output: six decimals are all an f32 score means.
fn score_json(score: f32) -> Json {
    json!((score as f64 * 1e6).round() / 1e6)
}

/// A search's hits, best first: records, or the vector index's bare ids
/// (a `Node` is large: a list of them would be a kilobyte-sized
/// allocation per statement, which costs glibc a consolidation).
pub(super) enum Hits {
    Nodes(std::vec::IntoIter<(Node, f32)>),
    Ids(std::vec::IntoIter<(Id, f32)>),
}

impl Iterator for Hits {
    type Item = (Node, f32);

    fn next(&mut self) -> Option<(Node, f32)> {
        match self {
            Hits::Nodes(hits) => hits.next(),
            Hits::Ids(hits) => hits.next().map(|(id, score)| (Node::Bare(id), score)),
        }
    }
}

fn nodes(hits: Vec<(Node, f32)>) -> Result<Hits> {
    Ok(Hits::Nodes(hits.into_iter()))
}

fn hits(step: &SearchStep, load: bool, ctx: &Context<'_, '_>) -> Result<Hits> {
    let env = &ctx.env;
    let limit = match &step.limit {
        Some(l) => Some(count(l, env, "LIMIT")?),
        None => None,
    };
    let filters = Filters::of(step, env)?;
    let keep = |node: Node| -> Result<bool> {
        let row = [Val::Node(Arc::new(node)), Val::Data(Json::Null)];
        for check in &step.residual {
            if !check.eval(&row, env)?.truthy() {
                return Ok(false);
            }
        }
        Ok(true)
    };
    match &step.target {
        SearchTarget::Things(text) => {
            let text = match constant(text, env)?.to_json() {
                Json::String(s) => s,
                other => {
                    return Err(Error::invalid(format!(
                        "SEARCH THINGS takes a string, not {other}"
                    ))
                    .at_span(text.span));
                }
            };
            let q = NameSearch {
                text: &text,
                kinds: filters.kinds,
                statuses: filters.statuses,
                limit: limit.unwrap_or(DEFAULT_LIMIT).min(ctx.max_rows),
                deadline: ctx.deadline,
            };
            let hits = ctx
                .indexes
                .search_names(env.txn, &q, &mut |found| keep(found_node(found.clone())))?;
            nodes(
                hits.into_iter()
                    .map(|h| (found_node(h.found), h.score))
                    .collect(),
            )
        }
        SearchTarget::Knowledge { vector, k } => {
            let k = count(k, env, "K")?.min(limit.unwrap_or(usize::MAX));
            // A `$param` embedding is converted once per binding.
            let v = match &vector.kind {
                ExprKind::Param(name) => env.params.floats(name),
                _ => None,
            }
            .unwrap_or_else(|| Ok(floats(&constant(vector, env)?)?.into()))
            .map_err(|e| e.at_span(vector.span))?;
            if !filters.possible || k == 0 {
                return nodes(Vec::new());
            }
            let q = KnowledgeSearch {
                vector: &v,
                k: k.min(ctx.max_rows),
                filter: filters.vector,
                deadline: ctx.deadline,
            };
            if !load {
                return Ok(Hits::Ids(ctx.indexes.nearest_ids(env.txn, &q)?.into_iter()));
            }
            let (hits, _) = ctx
                .indexes
                .search_knowledge(env.txn, &q, &mut |k| keep(Node::Knowledge(k.clone())))?;
            nodes(
                hits.into_iter()
                    .map(|h| (Node::Knowledge(h.knowledge), h.score))
                    .collect(),
            )
        }
    }
}

fn found_node(found: Found) -> Node {
    match found {
        Found::Thing(t) => Node::Thing(t),
        Found::Person(p) => Node::Person(p),
    }
}

/// The index conditions with their values: the name index's type and
/// status filters, the vector index's filter.
struct Filters {
    kinds: Option<Vec<String>>,
    statuses: Option<Vec<String>>,
    vector: VectorFilter,
    /// False when no chunk can match (e.g. `kind = "label"`).
    possible: bool,
}

impl Filters {
    fn of(step: &SearchStep, env: &Env<'_, '_>) -> Result<Filters> {
        let mut f = Filters {
            kinds: None,
            statuses: None,
            vector: VectorFilter::default(),
            possible: true,
        };
        for c in &step.conditions {
            let value = constant(&c.value, env)?;
            let names = |what| strings(&value, c.list, what).map_err(|e| e.at_span(c.span));
            let at_value = |e: Error| e.at_span(c.value.span);
            match c.field {
                IndexField::Type => {
                    let names = names("type")?;
                    for n in names.iter().filter(|n| *n != "person") {
                        env.txn.check_type(TypeKind::Thing, n).map_err(at_value)?;
                    }
                    f.kinds = Some(intersect(f.kinds, names));
                }
                IndexField::Status => {
                    let names = names("status")?;
                    for n in &names {
                        Status::parse(n).map_err(at_value)?;
                    }
                    f.statuses = Some(intersect(f.statuses, names));
                }
                // Only chunks carry embeddings.
                IndexField::Kind => f.possible &= names("kind")?.iter().any(|k| k == "chunk"),
                IndexField::SourceType => {
                    let types = names("a source type")?;
                    for t in &types {
                        env.txn.check_type(TypeKind::Thing, t).map_err(at_value)?;
                    }
                    f.vector.source_types = Some(intersect(f.vector.source_types, types));
                }
                IndexField::Source => {
                    let ids: Vec<Id> = if c.list {
                        match value.to_json() {
                            Json::Array(items) => items
                                .into_iter()
                                .map(|i| Val::Data(i).as_id())
                                .collect::<Result<_>>()
                                .map_err(at_value)?,
                            _ => {
                                return Err(at_value(Error::invalid(
                                    "source IN takes a list of ids",
                                )));
                            }
                        }
                    } else {
                        vec![value.as_id().map_err(at_value)?]
                    };
                    f.vector.sources = Some(match f.vector.sources {
                        None => ids,
                        Some(old) => old.into_iter().filter(|x| ids.contains(x)).collect(),
                    });
                }
                IndexField::Label => f.vector.labels.extend(names("a label")?),
            }
        }
        Ok(f)
    }
}

/// Two conditions on the same field both hold.
fn intersect(current: Option<Vec<String>>, new: Vec<String>) -> Vec<String> {
    match current {
        None => new,
        Some(old) => old.into_iter().filter(|x| new.contains(x)).collect(),
    }
}

/// The strings a condition's value names (one, or a list).
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

/// A value the search reads from the statement (a literal or parameter).
fn constant(expr: &Expr, env: &Env<'_, '_>) -> Result<Val> {
    compile(expr, &|_| None)
        .and_then(|c| c.eval(&[], env))
        .map_err(|e| e.at_span(expr.span))
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
