//! `MATCH` queries: graph patterns and the clauses after them, and
//! `SEARCH`, which shares `RETURN`, `LIMIT` and `THEN MATCH`.

use nom::Parser;
use nom::combinator::{cut, opt};
use nom::multi::{many0, separated_list1};
use nom::sequence::terminated;

use crate::error::ErrorCode;
use crate::query::ast::{
    Expr, Hops, Ident, NodePattern, Pattern, Query, RelDirection, RelPattern, Return, Search,
    SearchTarget,
};

use super::expr::{expr, map_entries};
use super::input::{Expect, In, PError, PResult, commit};
use super::lexer::{
    clause, comma_list, identifier, integer, keyword, kw, peek_word, punct, punctuation, skip,
};

/// `query ::= "MATCH" pattern ("," pattern)* where_clause? return_clause
///            order_clause? ("SKIP" expr)? limit_clause?`
#[inline(never)]
pub(crate) fn query(i: In) -> PResult<Box<Query>> {
    let (i, start) = keyword(i, "MATCH")?;
    commit((|| {
        let (i, patterns) = comma_list(i, pattern)?;
        let (i, filter) = where_clause(i)?;
        let (i, ret) = return_clause(i)?;
        let (i, order) = order_clause(i)?;
        let (i, skip) = clause(i, "SKIP", expr)?;
        let (i, limit) = limit_clause(i)?;
        let query = Box::new(Query {
            patterns,
            filter,
            ret,
            order,
            skip,
            limit,
            span: i.span_from(start.start),
        });
        Ok((i, query))
    })())
}

/// `where_clause ::= "WHERE" expr`
pub(crate) fn where_clause(i: In) -> PResult<Option<Expr>> {
    clause(i, "WHERE", expr)
}

/// `limit_clause ::= "LIMIT" expr`
pub(crate) fn limit_clause(i: In) -> PResult<Option<Expr>> {
    clause(i, "LIMIT", expr)
}

/// `pattern ::= (identifier "=")? "SHORTEST"? node_pattern (rel_pattern node_pattern)*`
pub(crate) fn pattern(i: In) -> PResult<Pattern> {
    let start = skip(i).offset();
    let (i, path_var) = opt(terminated(identifier, punct("="))).parse(i)?;
    let (i, shortest) = opt(kw("SHORTEST")).parse(i)?;
    let (i, first) = if path_var.is_some() || shortest.is_some() {
        commit(node_pattern(i))?
    } else {
        node_pattern(i)?
    };
    let (i, steps) = many0((rel_pattern, cut(node_pattern))).parse(i)?;
    let pattern = Pattern {
        path_var,
        shortest: shortest.is_some(),
        start: first,
        steps,
        span: i.span_from(start),
    };
    Ok((i, pattern))
}

/// `node_pattern ::= "(" identifier? (":" identifier)? map? ")"`
pub(crate) fn node_pattern(i: In) -> PResult<NodePattern> {
    let (i, open) = punctuation(i, "(")?;
    commit((|| {
        let (i, var) = opt(identifier).parse(i)?;
        let (i, label) = opt((punct(":"), cut(identifier)).map(|(_, l)| l)).parse(i)?;
        let (i, props) = if skip(i).rest.starts_with('{') {
            map_entries(i)?
        } else {
            (i, Vec::new())
        };
        let (i, _) = punctuation(i, ")")?;
        i.count_node()?;
        let node = NodePattern {
            var,
            label,
            props,
            span: i.span_from(open.start),
        };
        Ok((i, node))
    })())
}

/// `rel_pattern ::= "<-" rel_detail "-" | "-" rel_detail ("->" | "-")`
///
/// There is no bracket-less `-->` form: `--` starts a comment.
pub(crate) fn rel_pattern(i: In) -> PResult<RelPattern> {
    let i = skip(i);
    let start = i.offset();
    let (i, incoming) = match punctuation(i, "<-") {
        Ok((j, _)) => (j, true),
        Err(_) => (punctuation(i, "-")?.0, false),
    };
    commit((|| {
        let (i, (var, types, hops, at)) = rel_detail(i)?;
        let (i, dir) = if incoming {
            (punctuation(i, "-")?.0, RelDirection::In)
        } else {
            match punctuation(i, "->") {
                Ok((j, _)) => (j, RelDirection::Out),
                Err(_) => match punctuation(i, "-") {
                    Ok((j, _)) => (j, RelDirection::Both),
                    Err(_) => {
                        let expected = [Expect::Token("->"), Expect::Token("-")];
                        return Err(PError::expected_any(skip(i), &expected));
                    }
                },
            }
        };
        i.count_node()?;
        let rel = RelPattern {
            var,
            types,
            dir,
            hops,
            at,
            span: i.span_from(start),
        };
        Ok((i, rel))
    })())
}

type RelDetail = (Option<Ident>, Vec<Ident>, Option<Hops>, Option<Expr>);

/// `rel_detail ::= "[" rel_variable? (":" identifier ("|" identifier)*)? hops? ("AT" expr)? "]"`
pub(crate) fn rel_detail(i: In) -> PResult<RelDetail> {
    let (i, _) = punctuation(i, "[")?;
    let (i, var) = opt(rel_variable).parse(i)?;
    let (i, types) = match punctuation(i, ":") {
        Ok((j, _)) => commit(separated_list1(punct("|"), cut(identifier)).parse(j))?,
        Err(_) => (i, Vec::new()),
    };
    let (i, hops) = opt(hops).parse(i)?;
    let (i, at) = clause(i, "AT", expr)?;
    let (i, _) = punctuation(i, "]")?;
    Ok((i, (var, types, hops, at)))
}

/// `rel_variable ::= identifier - "AT"`
pub(crate) fn rel_variable(i: In) -> PResult<Ident> {
    if peek_word(i) == "AT" {
        return Err(PError::expected(skip(i), Expect::What("a name")));
    }
    identifier(i)
}

/// `hops ::= "*" integer? (".." integer?)?` — `*` is 1 or more, `*n` exactly
/// n, `*n..` at least n, `*..m` at most m.
pub(crate) fn hops(i: In) -> PResult<Hops> {
    let star = skip(i);
    let (i, _) = punctuation(star, "*")?;
    let (i, min) = opt(integer).parse(i)?;
    let (i, dots) = opt(punct("..")).parse(i)?;
    let (i, max) = match dots {
        Some(_) => opt(integer).parse(i)?,
        None => (i, min),
    };
    let (min, max) = (min.map(|(n, _)| n), max.map(|(n, _)| n));
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        let message = format!("empty hop range *{lo}..{hi}");
        return Err(PError::fatal(star, ErrorCode::ParseError, message));
    }
    Ok((i, Hops { min, max }))
}

/// `return_clause ::= "RETURN" "DISTINCT"? return_item ("," return_item)*`
pub(crate) fn return_clause(i: In) -> PResult<Return> {
    let (i, _) = keyword(i, "RETURN")?;
    let (i, distinct) = opt(kw("DISTINCT")).parse(i)?;
    let (i, items) = commit(comma_list(i, return_item))?;
    let ret = Return {
        distinct: distinct.is_some(),
        items,
    };
    Ok((i, ret))
}

/// `return_item ::= expr ("AS" identifier)?`
pub(crate) fn return_item(i: In) -> PResult<(Expr, Option<Ident>)> {
    let (i, e) = expr(i)?;
    let (i, alias) = clause(i, "AS", identifier)?;
    Ok((i, (e, alias)))
}

/// `order_clause ::= "ORDER" "BY" order_item ("," order_item)*`; absent is
/// an empty list.
pub(crate) fn order_clause(i: In) -> PResult<Vec<(Expr, bool)>> {
    let Ok((i, _)) = keyword(i, "ORDER") else {
        return Ok((i, Vec::new()));
    };
    let (i, _) = commit(keyword(i, "BY"))?;
    commit(comma_list(i, order_item))
}

/// `order_item ::= expr ("ASC" | "DESC")?` — the flag is true for DESC.
pub(crate) fn order_item(i: In) -> PResult<(Expr, bool)> {
    let (i, e) = expr(i)?;
    match peek_word(i).as_str() {
        "DESC" => Ok((keyword(i, "DESC")?.0, (e, true))),
        "ASC" => Ok((keyword(i, "ASC")?.0, (e, false))),
        _ => Ok((i, (e, false))),
    }
}

/// `search ::= "SEARCH" search_target where_clause? return_clause?
///             limit_clause? ("THEN" query)?`
#[inline(never)]
pub(crate) fn search(i: In) -> PResult<Box<Search>> {
    let (i, start) = keyword(i, "SEARCH")?;
    commit((|| {
        let (i, target) = search_target(i)?;
        let (i, filter) = where_clause(i)?;
        let (i, ret) = if peek_word(i) == "RETURN" {
            let (i, r) = return_clause(i)?;
            (i, Some(r))
        } else {
            (i, None)
        };
        let (i, limit) = limit_clause(i)?;
        let (i, then) = clause(i, "THEN", query)?;
        let search = Box::new(Search {
            target,
            filter,
            ret,
            limit,
            then,
            span: i.span_from(start.start),
        });
        Ok((i, search))
    })())
}

/// `search_target ::= "THINGS" expr | "KNOWLEDGE" "NEAREST" expr "K" expr`
pub(crate) fn search_target(i: In) -> PResult<SearchTarget> {
    match peek_word(i).as_str() {
        "THINGS" => {
            let (i, _) = keyword(i, "THINGS")?;
            let (i, text) = expr(i)?;
            Ok((i, SearchTarget::Things(text)))
        }
        "KNOWLEDGE" => {
            let (i, _) = (kw("KNOWLEDGE"), kw("NEAREST")).parse(i)?;
            let (i, vector) = expr(i)?;
            let (i, _) = keyword(i, "K")?;
            let (i, k) = expr(i)?;
            Ok((i, SearchTarget::Knowledge { vector, k }))
        }
        _ => {
            let expected = [Expect::Token("THINGS"), Expect::Token("KNOWLEDGE")];
            Err(PError::expected_any(skip(i), &expected))
        }
    }
}
