//! The OQL parser (nom): statement text → spanned AST (`query::ast`).
//!
//! One function per production of `grammar/oql.ebnf`, with the same names:
//! lexical ones in `lexer.rs`, expressions in `expr.rs`, `MATCH`/`SEARCH` in
//! `pattern.rs`, statements in `statement.rs`. The top rule,
//! `statement_text`, must consume the whole input.
//!
//! Untrusted text is the normal case, so every input ends in a `Statement`
//! or an `Error` — never a panic or a stack overflow:
//! - the text, every string literal, the number of syntax nodes and the
//!   nesting depth are bounded (`Limits`), each failing with `TOO_LARGE`;
//! - bracket depth is checked by a cheap scan *before* parsing, so the
//!   recursive descent never goes deeper than `max_depth` brackets;
//!   operator and prefix chains are loops, and every built expression is
//!   checked against `max_depth`, so dropping or printing the largest
//!   accepted tree recurses at most `max_depth` levels.

mod expr;
mod input;
mod lexer;
pub(crate) mod lexical;
mod pattern;
mod statement;

use crate::error::{Error, ErrorCode, Result};
use crate::query::ast::Statement;

use input::{Cx, Expect, In, PError, PResult};
use lexer::{describe_token, punctuation, skip};
use lexical::Lexical;

/// Longest statement text, in bytes.
pub const MAX_STATEMENT_BYTES: usize = 1024 * 1024;
/// Deepest nesting: brackets (`(`, `[`, `{`), prefix operators (`NOT`, `-`)
/// and the expression tree itself (an operator chain `a OR b OR …` nests
/// one level per operator).
pub const MAX_DEPTH: usize = 128;
/// Most syntax nodes (expressions and pattern elements) in one statement.
pub const MAX_NODES: usize = 10_000;
/// Longest string literal, in bytes after unescaping.
pub const MAX_LITERAL_BYTES: usize = 1024 * 1024;

/// The parser's limits; `Limits::default()` is the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_statement_bytes: usize,
    pub max_depth: usize,
    pub max_nodes: usize,
    pub max_literal_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_statement_bytes: MAX_STATEMENT_BYTES,
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_literal_bytes: MAX_LITERAL_BYTES,
        }
    }
}

/// Parses exactly one statement; a trailing `;`, whitespace and comments
/// are allowed. Errors are `PARSE_ERROR` (with the position and what was
/// expected) or `TOO_LARGE`.
pub fn parse_statement(text: &str) -> Result<Statement> {
    parse_statement_with(text, &Limits::default())
}

/// `parse_statement` with other limits.
pub fn parse_statement_with(text: &str, limits: &Limits) -> Result<Statement> {
    if text.len() > limits.max_statement_bytes {
        return Err(Error::too_large(format!(
            "statement is {} bytes; the limit is {}",
            text.len(),
            limits.max_statement_bytes
        ))
        .at(text, limits.max_statement_bytes));
    }
    check_nesting(text, limits.max_depth)?;
    let cx = Cx::new(text.len(), *limits);
    match statement_text(In::new(text, &cx)) {
        Ok((_, statement)) => Ok(*statement),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(to_error(e, text)),
        Err(nom::Err::Incomplete(_)) => {
            Err(Error::new(ErrorCode::ParseError, "incomplete statement").at(text, text.len()))
        }
    }
}

/// `statement_text ::= statement ";"? EOF`
fn statement_text(i: In) -> PResult<Box<Statement>> {
    let (i, statement) = statement::statement(i)?;
    let i = match punctuation(i, ";") {
        Ok((j, _)) => j,
        Err(_) => i,
    };
    let i = skip(i);
    if !i.rest.is_empty() {
        return Err(PError::expected(i, Expect::What("end of statement")));
    }
    Ok((i, statement))
}

/// Fails with `TOO_LARGE` if brackets nest deeper than `max_depth`, looking
/// at the text only (strings and comments skipped, see `lexical`).
/// Runs before parsing so the recursive descent never needs more stack
/// than `max_depth` levels.
fn check_nesting(text: &str, max_depth: usize) -> Result<()> {
    let mut depth = 0usize;
    let mut state = Lexical::default();
    for (pos, b) in text.bytes().enumerate() {
        if state.is_code() {
            match b {
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    if depth > max_depth {
                        return Err(Error::too_large(format!(
                            "brackets nest deeper than {max_depth} levels"
                        ))
                        .at(text, pos));
                    }
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        state = state.next(b);
    }
    Ok(())
}

/// The public error for a parser error: `expected X but found Y` at the
/// position where the parser stopped.
fn to_error(e: PError, text: &str) -> Error {
    let offset = text.len().saturating_sub(e.rem());
    match e {
        PError::Fatal { code, message, .. } => Error::new(code, message).at(text, offset),
        PError::Expected { expected, .. } => {
            let found = describe_token(text.get(offset..).unwrap_or_default());
            let message = format!("expected {} but found {found}", one_of(&expected));
            Error::new(ErrorCode::ParseError, message).at(text, offset)
        }
    }
}

/// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
fn one_of(expected: &[Expect]) -> String {
    let items: Vec<String> = expected
        .iter()
        .map(|e| match e {
            Expect::Token(t) => format!("\"{t}\""),
            Expect::What(w) => (*w).to_string(),
        })
        .collect();
    match items.split_last() {
        None => "something else".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> Error {
        parse_statement(text).unwrap_err()
    }

    #[test]
    fn keywords_need_a_word_boundary() {
        let s = parse_statement("match (orders) return orders").unwrap();
        assert_eq!(s.to_string(), "MATCH (orders) RETURN orders");
    }

    #[test]
    fn errors_say_what_was_expected_and_found() {
        let e = err("MATCH (c:course RETURN c");
        assert_eq!(e.code, ErrorCode::ParseError);
        assert_eq!(e.message, "expected \")\" but found \"RETURN\"");
        assert_eq!(e.position.map(|p| p.col), Some(17));
    }

    #[test]
    fn nesting_scan_skips_strings_and_comments() {
        let deep = "(".repeat(200);
        assert!(check_nesting(&format!("\"{deep}\""), 128).is_ok());
        assert!(check_nesting(&format!("-- {deep}\n"), 128).is_ok());
        assert!(check_nesting(&format!("\"\\\"{deep}\""), 128).is_ok());
        assert_eq!(
            check_nesting(&deep, 128).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn integer_overflow_is_a_parse_error() {
        let e = err("LET $x = 9223372036854775808");
        assert_eq!(e.code, ErrorCode::ParseError);
        assert!(e.message.contains("out of range"), "{}", e.message);
        assert!(parse_statement("LET $x = 9223372036854775807").is_ok());
    }
}
