//! The parser's input type and its error type.
//!
//! `In` is the rest of the statement text plus a reference to the shared
//! parse state (limits and the node counter), so every production is a plain
//! nom function `fn(In) -> PResult<T>` and can still count nodes and compute
//! byte offsets for spans (`offset = text length - rest length`).

use std::cell::Cell;
use std::str::{CharIndices, Chars};

use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Input, Needed};

use crate::error::ErrorCode;
use crate::query::ast::Span;

use super::Limits;

/// Shared state of one `parse_statement` call.
#[derive(Debug)]
pub(crate) struct Cx {
    /// Length of the whole statement text, to turn `rest` into offsets.
    pub len: usize,
    pub limits: Limits,
    /// Syntax nodes built so far (see `MAX_NODES`).
    pub nodes: Cell<usize>,
}

impl Cx {
    pub fn new(len: usize, limits: Limits) -> Cx {
        Cx {
            len,
            limits,
            nodes: Cell::new(0),
        }
    }
}

/// The unparsed rest of the statement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct In<'a> {
    pub rest: &'a str,
    pub cx: &'a Cx,
}

impl<'a> In<'a> {
    pub fn new(text: &'a str, cx: &'a Cx) -> In<'a> {
        In { rest: text, cx }
    }

    /// Byte offset of the next unparsed character in the statement text.
    pub fn offset(&self) -> usize {
        self.cx.len.saturating_sub(self.rest.len())
    }

    /// The span from `start` to here.
    pub fn span_from(&self, start: usize) -> Span {
        Span::new(start, self.offset())
    }

    /// Skips `n` bytes. Callers only pass lengths of ASCII tokens or of
    /// whole characters, so this never splits a character; if it would, the
    /// input ends instead of panicking.
    pub fn advance(&self, n: usize) -> In<'a> {
        In {
            rest: self.rest.get(n..).unwrap_or(""),
            cx: self.cx,
        }
    }

    /// Counts one syntax node; fails once the statement has too many.
    pub fn count_node(&self) -> Result<(), nom::Err<PError>> {
        let n = self.cx.nodes.get() + 1;
        self.cx.nodes.set(n);
        if n > self.cx.limits.max_nodes {
            return Err(PError::fatal(
                *self,
                ErrorCode::TooLarge,
                format!(
                    "statement has more than {} syntax nodes",
                    self.cx.limits.max_nodes
                ),
            ));
        }
        Ok(())
    }
}

/// nom needs these to run its generic combinators (`many0`,
/// `separated_list1`, `opt`, …) over `In`. Out-of-range indexes clamp instead of
/// panicking.
impl<'a> Input for In<'a> {
    type Item = char;
    type Iter = Chars<'a>;
    type IterIndices = CharIndices<'a>;

    fn input_len(&self) -> usize {
        self.rest.len()
    }

    fn take(&self, index: usize) -> Self {
        In {
            rest: self.rest.get(..index).unwrap_or(self.rest),
            cx: self.cx,
        }
    }

    fn take_from(&self, index: usize) -> Self {
        self.advance(index)
    }

    fn take_split(&self, index: usize) -> (Self, Self) {
        (self.take_from(index), self.take(index))
    }

    fn position<P>(&self, predicate: P) -> Option<usize>
    where
        P: Fn(Self::Item) -> bool,
    {
        self.rest.find(predicate)
    }

    fn iter_elements(&self) -> Self::Iter {
        self.rest.chars()
    }

    fn iter_indices(&self) -> Self::IterIndices {
        self.rest.char_indices()
    }

    fn slice_index(&self, count: usize) -> Result<usize, Needed> {
        match self.rest.char_indices().nth(count) {
            Some((index, _)) => Ok(index),
            None if self.rest.chars().count() == count => Ok(self.rest.len()),
            None => Err(Needed::Unknown),
        }
    }
}

/// One thing the parser would have accepted at the error position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A keyword or punctuation, printed in quotes: `")"`, `"RETURN"`.
    Token(&'static str),
    /// A description: `an expression`.
    What(&'static str),
}

/// The parser's error. Positions are kept as "bytes left" (`rem`) because
/// that is what a suffix of the text knows; `to_error` turns them into
/// offsets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PError {
    /// Nothing here matched; these would have.
    Expected { rem: usize, expected: Vec<Expect> },
    /// A definite error with its own code and message (limits, bad
    /// literals). Always raised as `nom::Err::Failure`.
    Fatal {
        rem: usize,
        code: ErrorCode,
        message: String,
    },
}

pub(crate) type PResult<'a, T> = IResult<In<'a>, T, PError>;

impl PError {
    /// A recoverable "expected …" error at `i` (alternatives may still match).
    pub fn expected(i: In, what: Expect) -> nom::Err<PError> {
        nom::Err::Error(PError::Expected {
            rem: i.rest.len(),
            expected: vec![what],
        })
    }

    /// Like `expected`, listing several alternatives.
    pub fn expected_any(i: In, what: &[Expect]) -> nom::Err<PError> {
        nom::Err::Error(PError::Expected {
            rem: i.rest.len(),
            expected: what.to_vec(),
        })
    }

    /// An unrecoverable error at `i`.
    pub fn fatal(i: In, code: ErrorCode, message: impl Into<String>) -> nom::Err<PError> {
        nom::Err::Failure(PError::Fatal {
            rem: i.rest.len(),
            code,
            message: message.into(),
        })
    }

    pub fn rem(&self) -> usize {
        match self {
            PError::Expected { rem, .. } | PError::Fatal { rem, .. } => *rem,
        }
    }
}

impl<'a> ParseError<In<'a>> for PError {
    /// Only nom's own combinators call this (never in practice: all our
    /// productions consume input or fail with their own error).
    fn from_error_kind(input: In<'a>, _kind: ErrorKind) -> Self {
        PError::Expected {
            rem: input.rest.len(),
            expected: vec![Expect::What("valid syntax")],
        }
    }

    fn append(_input: In<'a>, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    /// Of two failed alternatives, report the one that got further; at the
    /// same place, report everything either would have accepted.
    fn or(self, other: Self) -> Self {
        match (self, other) {
            (
                PError::Expected {
                    rem: a,
                    expected: mut left,
                },
                PError::Expected {
                    rem: b,
                    expected: right,
                },
            ) => {
                if a < b {
                    return PError::Expected {
                        rem: a,
                        expected: left,
                    };
                }
                if b < a {
                    return PError::Expected {
                        rem: b,
                        expected: right,
                    };
                }
                for e in right {
                    if !left.contains(&e) {
                        left.push(e);
                    }
                }
                PError::Expected {
                    rem: a,
                    expected: left,
                }
            }
            (fatal @ PError::Fatal { .. }, _) | (_, fatal @ PError::Fatal { .. }) => fatal,
        }
    }
}

/// Turns a recoverable error into a committed one: used after a token that
/// decides which production this is, so a later mistake is reported where
/// it is instead of backtracking to a vaguer error.
pub(crate) fn commit<T>(result: PResult<'_, T>) -> PResult<'_, T> {
    match result {
        Err(nom::Err::Error(e)) => Err(nom::Err::Failure(e)),
        other => other,
    }
}
