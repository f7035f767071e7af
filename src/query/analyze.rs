//! Analysis, between the parser and the planner: a query (a MATCH, or the
//! SEARCH in front of a `THEN MATCH`) is checked as a whole before any plan
//! is made, each error at its place in the text:
//! - node labels and relationship types against the live vocabulary, and a
//!   SEARCH's literal `type` / `source.type` conditions;
//! - every variable has one kind — node, relationship or path — and a
//!   relationship or path variable is bound once;
//! - every variable an expression reads is bound by a pattern (ORDER BY may
//!   also name a RETURN column);
//! - literal SKIP, LIMIT and K are whole numbers ≥ 0.
//!
//! The planner takes an `Analyzed` query and does not check these again;
//! what only the values of parameters decide is checked when the plan runs.

use std::collections::HashMap;

use crate::error::{Error, Result, Span};
use crate::model::names::hint;
use crate::ontology::{TypeKind, Vocabulary};
use crate::query::ast::{
    BinaryOp, Expr, ExprKind, NodePattern, Query, Search, SearchTarget, UnaryOp,
};

/// What a variable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    Node,
    Relationship,
    Path,
}

impl VarKind {
    fn noun(self) -> &'static str {
        match self {
            VarKind::Node => "node",
            VarKind::Relationship => "relationship",
            VarKind::Path => "path",
        }
    }
}

/// A query that passed analysis, with the kind of each of its variables.
pub struct Analyzed<'q> {
    pub query: &'q Query,
    pub vars: HashMap<String, VarKind>,
}

/// Analyzes a MATCH.
pub fn analyze_query<'q>(query: &'q Query, vocabulary: &Vocabulary) -> Result<Analyzed<'q>> {
    let mut vars: HashMap<String, VarKind> = HashMap::new();
    let mut bind = |name: &str, kind: VarKind, span: Span| -> Result<()> {
        match vars.get(name) {
            None => {
                vars.insert(name.to_string(), kind);
                Ok(())
            }
            // A node variable may be met again: the patterns join there.
            Some(VarKind::Node) if kind == VarKind::Node => Ok(()),
            Some(old) if *old == kind => Err(Error::invalid(format!(
                "{name} is bound twice: a {0} variable names one {0} per row",
                kind.noun()
            ))
            .at_span(span)),
            Some(old) => Err(Error::invalid(format!(
                "{name} is a {} variable and cannot also name a {}",
                old.noun(),
                kind.noun()
            ))
            .at_span(span)),
        }
    };
    for pattern in &query.patterns {
        if let Some(p) = &pattern.path_var {
            bind(&p.name, VarKind::Path, p.span)?;
        }
        let nodes = std::iter::once(&pattern.start).chain(pattern.steps.iter().map(|(_, n)| n));
        for node in nodes {
            check_label(node, vocabulary)?;
            if let Some(v) = &node.var {
                bind(&v.name, VarKind::Node, v.span)?;
            }
        }
        for (rel, _) in &pattern.steps {
            for t in &rel.types {
                if t.name != "about" {
                    vocabulary
                        .check(TypeKind::Connection, &t.name)
                        .map_err(|e| e.at_span(t.span))?;
                }
            }
            if let Some(v) = &rel.var {
                bind(&v.name, VarKind::Relationship, v.span)?;
            }
        }
    }
    let reads = Reads { vars: &vars };
    for pattern in &query.patterns {
        let nodes = std::iter::once(&pattern.start).chain(pattern.steps.iter().map(|(_, n)| n));
        for node in nodes {
            for (_, value) in &node.props {
                reads.check(value)?;
            }
        }
        for (rel, _) in &pattern.steps {
            if let Some(at) = &rel.at {
                reads.check(at)?;
            }
        }
    }
    if let Some(w) = &query.filter {
        reads.check(w)?;
    }
    for (item, _) in &query.ret.items {
        reads.check(item)?;
    }
    for (key, _) in &query.order {
        let text = key.to_string();
        let names_a_column = query.ret.items.iter().any(|(e, alias)| {
            alias.as_ref().is_some_and(|a| a.name == text) || e.to_string() == text
        });
        if !names_a_column {
            reads.check(key)?;
        }
    }
    for count in query.skip.iter().chain(&query.limit) {
        whole_number(count, "SKIP and LIMIT take")?;
    }
    Ok(Analyzed { query, vars })
}

/// Analyzes a SEARCH's own parts (its THEN MATCH is a query of its own).
pub fn analyze_search(search: &Search, vocabulary: &Vocabulary) -> Result<()> {
    match &search.target {
        SearchTarget::Things(text) => {
            if is_literal(text) && !matches!(text.kind, ExprKind::Str(_)) {
                return Err(
                    Error::invalid(format!("SEARCH THINGS takes a string, not {text}"))
                        .at_span(text.span),
                );
            }
        }
        SearchTarget::Knowledge { k, .. } => whole_number(k, "K takes")?,
    }
    if let Some(limit) = &search.limit {
        whole_number(limit, "LIMIT takes")?;
    }
    let mut conjuncts = Vec::new();
    if let Some(w) = &search.filter {
        crate::query::plan::conjuncts(w, &mut conjuncts);
    }
    for c in conjuncts {
        check_search_type(search, &c, vocabulary)?;
    }
    Ok(())
}

/// `type = "x"` of SEARCH THINGS, `source.type = "x"` of SEARCH KNOWLEDGE
/// (or `IN` a list): each literal name is a known thing type.
fn check_search_type(search: &Search, conjunct: &Expr, vocabulary: &Vocabulary) -> Result<()> {
    let ExprKind::Binary(BinaryOp::Eq | BinaryOp::In, field, value) = &conjunct.kind else {
        return Ok(());
    };
    let names_type = match (&search.target, &field.kind) {
        (SearchTarget::Things(_), ExprKind::Var(v)) => v == "type",
        (SearchTarget::Knowledge { .. }, ExprKind::Var(v)) => v == "source_type",
        (SearchTarget::Knowledge { .. }, ExprKind::Prop(base, f)) => {
            matches!(&base.kind, ExprKind::Var(v) if v == "source") && f.name == "type"
        }
        _ => false,
    };
    if !names_type {
        return Ok(());
    }
    let literals: Vec<&Expr> = match &value.kind {
        ExprKind::List(items) => items.iter().collect(),
        _ => vec![value],
    };
    for l in literals {
        if let ExprKind::Str(name) = &l.kind
            && name != "person"
        {
            vocabulary
                .check(TypeKind::Thing, name)
                .map_err(|e| e.at_span(l.span))?;
        }
    }
    Ok(())
}

fn check_label(node: &NodePattern, vocabulary: &Vocabulary) -> Result<()> {
    match &node.label {
        Some(l) if l.name == "person" || l.name == "knowledge" => Ok(()),
        Some(l) => vocabulary
            .check(TypeKind::Thing, &l.name)
            .map_err(|e| e.at_span(l.span)),
        None => Ok(()),
    }
}

/// A literal count is a whole number ≥ 0 (other expressions are checked
/// when the plan runs, once their values are known).
fn whole_number(expr: &Expr, what: &str) -> Result<()> {
    let negative = matches!(&expr.kind, ExprKind::Unary(UnaryOp::Neg, e) if is_literal(e));
    if negative || (is_literal(expr) && !matches!(expr.kind, ExprKind::Int(n) if n >= 0)) {
        return Err(
            Error::invalid(format!("{what} a whole number ≥ 0, not {expr}")).at_span(expr.span),
        );
    }
    Ok(())
}

/// A literal value: its type is known before the plan runs.
fn is_literal(expr: &Expr) -> bool {
    matches!(
        expr.kind,
        ExprKind::Null
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_)
            | ExprKind::List(_)
            | ExprKind::Map(_)
    )
}

/// The variables expressions may read.
struct Reads<'a> {
    vars: &'a HashMap<String, VarKind>,
}

impl Reads<'_> {
    fn check(&self, expr: &Expr) -> Result<()> {
        match &expr.kind {
            ExprKind::Var(name) if !self.vars.contains_key(name) => {
                let mut known: Vec<&String> = self.vars.keys().collect();
                known.sort();
                Err(
                    Error::invalid(format!("unknown variable {name}{}", hint(name, &known)))
                        .at_span(expr.span),
                )
            }
            ExprKind::Prop(base, _) => self.check(base),
            ExprKind::List(items) => items.iter().try_for_each(|i| self.check(i)),
            ExprKind::Map(entries) => entries.iter().try_for_each(|(_, v)| self.check(v)),
            ExprKind::Unary(_, e) => self.check(e),
            ExprKind::Binary(_, l, r) => {
                self.check(l)?;
                self.check(r)
            }
            ExprKind::Call { args, .. } => args.iter().try_for_each(|a| self.check(a)),
            ExprKind::IsNull { expr, .. } => self.check(expr),
            _ => Ok(()),
        }
    }
}
