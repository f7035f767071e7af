//! Expression productions. Operators, loosest first (the grammar's
//! precedence table):
//!
//! | level | operators |
//! |---|---|
//! | 1 | `OR` |
//! | 2 | `AND` |
//! | 3 | `NOT` (prefix) |
//! | 4 | `=` `<>` `!=` `<` `<=` `>` `>=` `IN` `CONTAINS` `STARTS WITH` `ENDS WITH`, `IS [NOT] NULL` (postfix) |
//! | 5 | `+` `-` |
//! | 6 | `*` `/` `%` |
//! | 7 | `-` (prefix) |
//! | 8 | `.name` (postfix) |
//!
//! Binary operators are left-associative. `binary_expr` reads operands and
//! operators in a loop with an explicit operator stack, so operator and
//! prefix chains never recurse: only brackets do, and their depth is checked
//! before parsing starts (`check_nesting`).
//!
//! Stack use per bracket level is kept small so that the deepest accepted
//! statement parses on a 256 KiB stack: on the recursive path every function
//! holds a single callee result, handing it to a small non-inlined "close"
//! function (`close_list(expr_list(i), …)`) instead of unpacking it in place.

use nom::Parser;

use crate::error::ErrorCode;
use crate::query::ast::{BinaryOp, Expr, ExprKind, Ident, Span, UnaryOp};

use super::input::{Expect, In, PError, PResult, commit};
use super::lexer::{
    comma_list_into, identifier, is_ident_start, is_reserved, keyword, kw, name, next_word_is,
    number, parameter, peek_word, punct, punctuation, skip, string_literal, word_len,
};

/// Precedence levels that the grammar refers to (see the table above).
const NOT_PREC: u8 = 3;
const COMPARISON_PREC: u8 = 4;

type Built<T> = Result<T, nom::Err<PError>>;

/// Builds an expression node: counts it against `max_nodes` and rejects it
/// if it would nest deeper than `max_depth`. All `Expr`s are made here.
#[inline(never)]
pub(crate) fn new_expr(i: In, kind: ExprKind, span: Span) -> Built<Expr> {
    i.count_node()?;
    let expr = Expr { kind, span };
    let max = i.cx.limits.max_depth;
    if depth(&expr) > max {
        let message = format!(
            "expression nests deeper than {max} levels (operator chains count too: \
             use IN [...] for many alternatives)"
        );
        return Err(PError::fatal(i, ErrorCode::TooLarge, message));
    }
    Ok(expr)
}

/// Nesting depth of an expression: 0 for a leaf, else 1 + the deepest child.
/// Children were checked when they were built, so this recursion is bounded
/// by `max_depth`.
pub(crate) fn depth(e: &Expr) -> usize {
    let deepest = |es: &mut dyn Iterator<Item = &Expr>| es.map(depth).max().unwrap_or(0);
    match &e.kind {
        ExprKind::Null
        | ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Param(_)
        | ExprKind::Var(_) => 0,
        ExprKind::Prop(inner, _) | ExprKind::Unary(_, inner) => 1 + depth(inner),
        ExprKind::IsNull { expr, .. } => 1 + depth(expr),
        ExprKind::Binary(_, l, r) => 1 + depth(l).max(depth(r)),
        ExprKind::List(items) | ExprKind::Call { args: items, .. } => {
            1 + deepest(&mut items.iter())
        }
        ExprKind::Map(entries) => 1 + deepest(&mut entries.iter().map(|(_, v)| v)),
    }
}

/// `expr ::= binary_expr`
pub(crate) fn expr(i: In) -> PResult<Expr> {
    binary_expr(i)
}

/// An operator waiting on the stack of `binary_expr`.
#[derive(Clone, Copy)]
enum Pending {
    /// `NOT`, with the offset where it starts.
    Not(usize),
    Binary(BinaryOp),
}

impl Pending {
    fn precedence(self) -> u8 {
        match self {
            Pending::Not(_) => NOT_PREC,
            Pending::Binary(op) => op.precedence(),
        }
    }
}

/// `binary_expr ::= operand (binary_op operand | is_null)*`, resolved by
/// the precedence table (shunting-yard: operands and pending operators on
/// two stacks; an operator first applies the pending ones that bind at
/// least as tightly).
#[inline(never)]
pub(crate) fn binary_expr(i: In) -> PResult<Expr> {
    let mut operands: Vec<Expr> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    // After a NOT the operand is required; a missing first operand is a
    // recoverable "no expression here".
    let first = operand(i, &mut pending);
    let mut i = push_operand(first, &mut operands, !pending.is_empty())?;
    loop {
        match tail(i)? {
            Tail::IsNull(j, negated) => {
                reduce(j, &mut operands, &mut pending, COMPARISON_PREC)?;
                is_null_node(j, &mut operands, negated)?;
                i = j;
            }
            Tail::Operator(j, op) => {
                reduce(j, &mut operands, &mut pending, op.precedence())?;
                pending.push(Pending::Binary(op));
                i = push_operand(operand(j, &mut pending), &mut operands, true)?;
            }
            Tail::End => return finish(i, operands, pending),
        }
    }
}

#[inline(never)]
fn push_operand<'a>(
    result: PResult<'a, Expr>,
    operands: &mut Vec<Expr>,
    required: bool,
) -> Built<In<'a>> {
    let (i, e) = if required { commit(result) } else { result }?;
    operands.push(e);
    Ok(i)
}

/// Applies what is still pending; the one operand left is the expression.
#[inline(never)]
fn finish(i: In, mut operands: Vec<Expr>, mut pending: Vec<Pending>) -> PResult<Expr> {
    reduce(i, &mut operands, &mut pending, 0)?;
    match operands.pop() {
        Some(e) => Ok((i, e)),
        None => Err(PError::expected(i, Expect::What("an expression"))),
    }
}

/// `operand ::= "NOT"* unary` — NOT only where the precedence table allows
/// it: at the start, or after OR, AND or NOT (`a = NOT b` is an error,
/// `a = (NOT b)` is not). The NOTs go on the operator stack.
#[inline(never)]
fn operand<'a>(i: In<'a>, pending: &mut Vec<Pending>) -> PResult<'a, Expr> {
    let not_allowed = match pending.last() {
        None | Some(Pending::Not(_)) => true,
        Some(Pending::Binary(op)) => op.precedence() < NOT_PREC,
    };
    if not_allowed && next_word_is(i, "NOT") {
        return match push_nots(i, pending) {
            Ok(i) => unary(i),
            Err(e) => Err(e),
        };
    }
    unary(i)
}

/// A run of NOTs onto the operator stack; a run longer than `max_depth`
/// fails here, before anything recurses.
#[inline(never)]
fn push_nots<'a>(i: In<'a>, pending: &mut Vec<Pending>) -> Built<In<'a>> {
    let max = i.cx.limits.max_depth;
    let mut i = skip(i);
    let mut run = 0;
    while next_word_is(i, "NOT") {
        run += 1;
        if run > max {
            let message = format!("more than {max} NOT in a row");
            return Err(PError::fatal(i, ErrorCode::TooLarge, message));
        }
        let (j, span) = keyword(i, "NOT")?;
        pending.push(Pending::Not(span.start));
        i = skip(j);
    }
    Ok(i)
}

/// Applies the pending operators that bind at least as tightly as `min`.
#[inline(never)]
fn reduce(i: In, operands: &mut Vec<Expr>, pending: &mut Vec<Pending>, min: u8) -> Built<()> {
    while let Some(&op) = pending.last() {
        if op.precedence() < min {
            break;
        }
        pending.pop();
        let Some(right) = operands.pop() else {
            break;
        };
        let e = match op {
            Pending::Not(start) => {
                let span = Span::new(start, right.span.end);
                new_expr(i, ExprKind::Unary(UnaryOp::Not, Box::new(right)), span)?
            }
            Pending::Binary(op) => {
                let Some(left) = operands.pop() else {
                    break;
                };
                let span = Span::new(left.span.start, right.span.end);
                new_expr(
                    i,
                    ExprKind::Binary(op, Box::new(left), Box::new(right)),
                    span,
                )?
            }
        };
        operands.push(e);
    }
    Ok(())
}

/// What follows an operand in a `binary_expr`.
enum Tail<'a> {
    IsNull(In<'a>, bool),
    Operator(In<'a>, BinaryOp),
    End,
}

/// Looks at the next token: `IS [NOT] NULL`, a binary operator, or neither.
#[inline(never)]
fn tail(i: In) -> Built<Tail> {
    let next = skip(i);
    match is_null(next) {
        Ok((j, negated)) => return Ok(Tail::IsNull(j, negated)),
        Err(nom::Err::Error(_)) => {}
        Err(e) => return Err(e),
    }
    match binary_op(next) {
        Ok((j, op)) => Ok(Tail::Operator(j, op)),
        Err(nom::Err::Error(_)) => Ok(Tail::End),
        Err(e) => Err(e),
    }
}

/// Wraps the last operand in `IS [NOT] NULL` (ending at `i`).
#[inline(never)]
fn is_null_node(i: In, operands: &mut Vec<Expr>, negated: bool) -> Built<()> {
    if let Some(left) = operands.pop() {
        let span = Span::new(left.span.start, i.offset());
        let kind = ExprKind::IsNull {
            expr: Box::new(left),
            negated,
        };
        operands.push(new_expr(i, kind, span)?);
    }
    Ok(())
}

/// `is_null ::= "IS" "NOT"? "NULL"`; returns whether it was `IS NOT NULL`.
#[inline(never)]
fn is_null(i: In) -> PResult<bool> {
    let (i, _) = keyword(i, "IS")?;
    let (i, not) = nom::combinator::opt(kw("NOT")).parse(i)?;
    let (i, _) = commit(keyword(i, "NULL"))?;
    Ok((i, not.is_some()))
}

/// `binary_op ::= "OR" | "AND" | comparison_op | "+" | "-" | "*" | "/" | "%"`
#[inline(never)]
pub(crate) fn binary_op(i: In) -> PResult<BinaryOp> {
    const SYMBOLS: &[(&str, BinaryOp)] = &[
        ("+", BinaryOp::Add),
        ("*", BinaryOp::Mul),
        ("/", BinaryOp::Div),
        ("%", BinaryOp::Mod),
    ];
    let i = skip(i);
    // "->" belongs to patterns; never read it as minus.
    if i.rest.starts_with('-') && !i.rest.starts_with("->") {
        return Ok((i.advance(1), BinaryOp::Sub));
    }
    for &(symbol, op) in SYMBOLS {
        if i.rest.starts_with(symbol) {
            return Ok((i.advance(1), op));
        }
    }
    if next_word_is(i, "OR") {
        return Ok((keyword(i, "OR")?.0, BinaryOp::Or));
    }
    if next_word_is(i, "AND") {
        return Ok((keyword(i, "AND")?.0, BinaryOp::And));
    }
    comparison_op(i)
}

/// `comparison_op ::= "=" | "<>" | "!=" | "<=" | ">=" | "<" | ">" | "IN"
///                  | "CONTAINS" | "STARTS" "WITH" | "ENDS" "WITH"`
#[inline(never)]
pub(crate) fn comparison_op(i: In) -> PResult<BinaryOp> {
    const SYMBOLS: &[(&str, BinaryOp)] = &[
        ("=", BinaryOp::Eq),
        ("<>", BinaryOp::Ne),
        ("!=", BinaryOp::Ne),
        ("<=", BinaryOp::Le),
        (">=", BinaryOp::Ge),
        ("<", BinaryOp::Lt),
        (">", BinaryOp::Gt),
    ];
    let i = skip(i);
    for &(symbol, op) in SYMBOLS {
        if let Ok((j, _)) = punctuation(i, symbol) {
            return Ok((j, op));
        }
    }
    match peek_word(i).as_str() {
        "IN" => keyword(i, "IN").map(|(j, _)| (j, BinaryOp::In)),
        "CONTAINS" => keyword(i, "CONTAINS").map(|(j, _)| (j, BinaryOp::Contains)),
        "STARTS" => {
            let (j, _) = keyword(i, "STARTS")?;
            commit(keyword(j, "WITH")).map(|(j, _)| (j, BinaryOp::StartsWith))
        }
        "ENDS" => {
            let (j, _) = keyword(i, "ENDS")?;
            commit(keyword(j, "WITH")).map(|(j, _)| (j, BinaryOp::EndsWith))
        }
        _ => Err(PError::expected(i, Expect::What("an operator"))),
    }
}

/// `unary ::= "-"* postfix`
#[inline(never)]
pub(crate) fn unary(i: In) -> PResult<Expr> {
    if !skip(i).rest.starts_with('-') {
        return postfix(i);
    }
    negated(i)
}

/// A run of `-` and its operand.
#[inline(never)]
fn negated(i: In) -> PResult<Expr> {
    let (i, starts) = prefix_tokens(i, |i| punctuation(i, "-"))?;
    wrap_prefixes(postfix(i), UnaryOp::Neg, starts)
}

/// `postfix ::= primary ("." property_name)*`
#[inline(never)]
pub(crate) fn postfix(i: In) -> PResult<Expr> {
    properties(primary(i))
}

/// The `.name` chain after a primary.
#[inline(never)]
fn properties(primary: PResult<Expr>) -> PResult<Expr> {
    let (mut i, mut e) = primary?;
    loop {
        let Ok((j, _)) = punctuation(i, ".") else {
            return Ok((i, e));
        };
        let (j, prop) = commit(property_name(j))?;
        let span = Span::new(e.span.start, j.offset());
        e = new_expr(j, ExprKind::Prop(Box::new(e), prop), span)?;
        i = j;
    }
}

/// `property_name ::= identifier` (any word, keywords included: `c.status`)
pub(crate) fn property_name(i: In) -> PResult<Ident> {
    identifier(i)
}

/// `primary ::= literal | parameter | list | map | call | variable | "(" expr ")"`
#[inline(never)]
pub(crate) fn primary(i: In) -> PResult<Expr> {
    let i = skip(i);
    match i.rest.as_bytes().first() {
        Some(b'"' | b'0'..=b'9') => literal(i),
        Some(b'$') => parameter_expr(i),
        Some(b'[') => list(i),
        Some(b'{') => map(i),
        Some(b'(') => parenthesized(i),
        Some(&b) if is_ident_start(b) => {
            let n = word_len(i.rest);
            let word = i.rest.get(..n).unwrap_or_default();
            if ["NULL", "TRUE", "FALSE"]
                .iter()
                .any(|w| w.eq_ignore_ascii_case(word))
            {
                literal(i)
            } else if is_reserved(word) {
                Err(PError::expected(i, Expect::What("an expression")))
            } else if skip(i.advance(n)).rest.starts_with('(') {
                call(i)
            } else {
                variable(i)
            }
        }
        _ => Err(PError::expected(i, Expect::What("an expression"))),
    }
}

/// `literal ::= "NULL" | "TRUE" | "FALSE" | number | string_literal`
#[inline(never)]
pub(crate) fn literal(i: In) -> PResult<Expr> {
    let i = skip(i);
    let (j, (kind, span)) = match i.rest.as_bytes().first() {
        Some(b'"') => {
            let (j, (s, span)) = string_literal(i)?;
            (j, (ExprKind::Str(s), span))
        }
        Some(b'0'..=b'9') => number(i)?,
        _ => {
            let (kind, word) = match peek_word(i).as_str() {
                "NULL" => (ExprKind::Null, "NULL"),
                "TRUE" => (ExprKind::Bool(true), "TRUE"),
                "FALSE" => (ExprKind::Bool(false), "FALSE"),
                _ => return Err(PError::expected(i, Expect::What("a literal"))),
            };
            let (j, span) = keyword(i, word)?;
            (j, (kind, span))
        }
    };
    let e = new_expr(j, kind, span)?;
    Ok((j, e))
}

/// `parameter` as an expression.
#[inline(never)]
fn parameter_expr(i: In) -> PResult<Expr> {
    let (j, p) = parameter(i)?;
    let e = new_expr(j, ExprKind::Param(p.name), p.span)?;
    Ok((j, e))
}

/// `variable ::= name`
#[inline(never)]
pub(crate) fn variable(i: In) -> PResult<Expr> {
    let (j, v) = name(i)?;
    let e = new_expr(j, ExprKind::Var(v.name), v.span)?;
    Ok((j, e))
}

/// `call ::= name "(" ("*" | "DISTINCT"? (expr ("," expr)*)?) ")"`
#[inline(never)]
pub(crate) fn call(i: In) -> PResult<Expr> {
    let (i, head) = call_head(i)?;
    if head.star || (!head.distinct && skip(i).rest.starts_with(')')) {
        return close_call(Ok((i, Vec::new())), head);
    }
    close_call(expr_list(i), head)
}

/// What comes before a call's arguments.
struct CallHead {
    name: Ident,
    distinct: bool,
    star: bool,
}

/// `name "(" ("*" | "DISTINCT"?)`
#[inline(never)]
fn call_head(i: In) -> PResult<CallHead> {
    let (i, name) = name(i)?;
    let (i, _) = punctuation(i, "(")?;
    let (i, star) = nom::combinator::opt(punct("*")).parse(i)?;
    let (i, distinct) = match star {
        Some(_) => (i, None),
        None => nom::combinator::opt(kw("DISTINCT")).parse(i)?,
    };
    let head = CallHead {
        name,
        distinct: distinct.is_some(),
        star: star.is_some(),
    };
    Ok((i, head))
}

#[inline(never)]
fn close_call(args: PResult<Vec<Expr>>, head: CallHead) -> PResult<Expr> {
    let (i, args) = commit(args)?;
    let (i, _) = commit(punctuation(i, ")"))?;
    let span = i.span_from(head.name.span.start);
    let kind = ExprKind::Call {
        name: head.name,
        distinct: head.distinct,
        star: head.star,
        args,
    };
    let e = new_expr(i, kind, span)?;
    Ok((i, e))
}

/// `expr ("," expr)*`; an expression is required after each comma.
pub(crate) fn expr_list(i: In) -> PResult<Vec<Expr>> {
    comma_list_into(i, push_expr)
}

#[inline(never)]
fn push_expr<'a>(i: In<'a>, items: &mut Vec<Expr>) -> PResult<'a, ()> {
    add_item(expr(i), items)
}

#[inline(never)]
fn add_item<'a>(item: PResult<'a, Expr>, items: &mut Vec<Expr>) -> PResult<'a, ()> {
    let (i, e) = item?;
    items.push(e);
    Ok((i, ()))
}

/// `list ::= "[" (expr ("," expr)*)? "]"`
#[inline(never)]
pub(crate) fn list(i: In) -> PResult<Expr> {
    let (i, start) = opening(i, "[")?;
    if skip(i).rest.starts_with(']') {
        return close_list(Ok((i, Vec::new())), start);
    }
    close_list(expr_list(i), start)
}

#[inline(never)]
fn close_list(items: PResult<Vec<Expr>>, start: usize) -> PResult<Expr> {
    let (i, items) = commit(items)?;
    let (i, _) = commit(punctuation(i, "]"))?;
    let e = new_expr(i, ExprKind::List(items), i.span_from(start))?;
    Ok((i, e))
}

/// `map ::= map_entries`
#[inline(never)]
pub(crate) fn map(i: In) -> PResult<Expr> {
    let start = skip(i).offset();
    close_map(map_entries(i), start)
}

#[inline(never)]
fn close_map(entries: PResult<Vec<(Ident, Expr)>>, start: usize) -> PResult<Expr> {
    let (i, entries) = entries?;
    let e = new_expr(i, ExprKind::Map(entries), i.span_from(start))?;
    Ok((i, e))
}

/// `map_entries ::= "{" (map_entry ("," map_entry)*)? "}"` — also node
/// patterns' property maps.
#[inline(never)]
pub(crate) fn map_entries(i: In) -> PResult<Vec<(Ident, Expr)>> {
    let (i, _) = opening(i, "{")?;
    if skip(i).rest.starts_with('}') {
        return close_map_entries(Ok((i, Vec::new())));
    }
    close_map_entries(comma_list_into(i, map_entry))
}

#[inline(never)]
fn close_map_entries(entries: PResult<Vec<(Ident, Expr)>>) -> PResult<Vec<(Ident, Expr)>> {
    let (i, entries) = commit(entries)?;
    let (i, _) = commit(punctuation(i, "}"))?;
    Ok((i, entries))
}

/// `map_entry ::= property_name ":" expr` (added to `entries`)
#[inline(never)]
pub(crate) fn map_entry<'a>(i: In<'a>, entries: &mut Vec<(Ident, Expr)>) -> PResult<'a, ()> {
    let (i, key) = map_key(i)?;
    add_entry(expr(i), key, entries)
}

/// `property_name ":"`
#[inline(never)]
fn map_key(i: In) -> PResult<Ident> {
    let (i, key) = property_name(i)?;
    let (i, _) = commit(punctuation(i, ":"))?;
    Ok((i, key))
}

#[inline(never)]
fn add_entry<'a>(
    value: PResult<'a, Expr>,
    key: Ident,
    entries: &mut Vec<(Ident, Expr)>,
) -> PResult<'a, ()> {
    let (i, value) = commit(value)?;
    entries.push((key, value));
    Ok((i, ()))
}

/// `"(" expr ")"`: the inner expression, its span widened to the parentheses.
#[inline(never)]
pub(crate) fn parenthesized(i: In) -> PResult<Expr> {
    let (i, start) = opening(i, "(")?;
    close_parenthesis(expr(i), start)
}

#[inline(never)]
fn close_parenthesis(inner: PResult<Expr>, start: usize) -> PResult<Expr> {
    let (i, mut e) = commit(inner)?;
    let (i, _) = commit(punctuation(i, ")"))?;
    e.span = i.span_from(start);
    Ok((i, e))
}

/// An opening bracket and its offset.
#[inline(never)]
fn opening<'a>(i: In<'a>, bracket: &'static str) -> PResult<'a, usize> {
    let (i, span) = punctuation(i, bracket)?;
    Ok((i, span.start))
}

/// `map_or_parameter ::= map | parameter` (properties and metadata).
pub(crate) fn map_or_parameter(i: In) -> PResult<Expr> {
    let i = skip(i);
    if i.rest.starts_with('$') {
        return parameter_expr(i);
    }
    if !i.rest.starts_with('{') {
        return Err(PError::expected(
            i,
            Expect::What("a map {…} or a $parameter"),
        ));
    }
    map(i)
}

/// `endpoint ::= postfix` — the two ends of CONNECT/DISCONNECT, where a
/// binary `-` would swallow the arrow. Parenthesize anything bigger.
pub(crate) fn endpoint(i: In) -> PResult<Expr> {
    postfix(i)
}

/// The start offsets of a run of prefix tokens (at least one). A loop, so
/// a long run fails fast at `max_depth` instead of recursing.
#[inline(never)]
fn prefix_tokens<'a>(
    mut i: In<'a>,
    mut token: impl FnMut(In<'a>) -> PResult<'a, Span>,
) -> PResult<'a, Vec<usize>> {
    let max = i.cx.limits.max_depth;
    let mut starts = Vec::new();
    loop {
        match token(i) {
            Ok((j, span)) => {
                if starts.len() >= max {
                    let message = format!("more than {max} prefix operators in a row");
                    return Err(PError::fatal(i, ErrorCode::TooLarge, message));
                }
                starts.push(span.start);
                i = j;
            }
            Err(nom::Err::Error(e)) if starts.is_empty() => return Err(nom::Err::Error(e)),
            Err(nom::Err::Error(_)) => return Ok((i, starts)),
            Err(e) => return Err(e),
        }
    }
}

/// Applies the prefix operators that started at `starts` to the operand
/// (which must be there), innermost last.
#[inline(never)]
fn wrap_prefixes(operand: PResult<Expr>, op: UnaryOp, starts: Vec<usize>) -> PResult<Expr> {
    let (i, mut e) = commit(operand)?;
    for start in starts.into_iter().rev() {
        let span = Span::new(start, e.span.end);
        e = new_expr(i, ExprKind::Unary(op, Box::new(e)), span)?;
    }
    Ok((i, e))
}
