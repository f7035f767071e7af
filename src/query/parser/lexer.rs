//! Lexical productions of `grammar/oql.ebnf`: trivia, keywords,
//! punctuation, identifiers, parameters, strings and numbers.
//!
//! Every token parser skips leading trivia itself and never trailing
//! trivia, so a node's span ends right after its last token.

use crate::error::ErrorCode;
use crate::query::ast::{ExprKind, Ident, Span};

use super::input::{Expect, In, PError, PResult, commit};

/// Words that cannot name a variable or a function in an expression: the
/// literals and operators, `DISTINCT` (`RETURN DISTINCT x`), the clause
/// words that follow an expression (so `WHERE RETURN` is an error, not a
/// variable named RETURN), and every word that starts a statement
/// (`LET $x = <statement or expression>`). They may still be property
/// names and map keys (`c.match`, `{set: 1}`), parameter names, and any
/// other name (types, aliases, node variables).
pub(crate) const RESERVED: &[&str] = &[
    "NULL", "TRUE", "FALSE", "NOT", "AND", "OR", "IN", "IS", "CONTAINS", "STARTS", "ENDS",
    "DISTINCT", "WHERE", "RETURN", "ORDER", "SKIP", "LIMIT", "THEN", "SINCE", "UNTIL", "LET",
    "EXPLAIN", "PROFILE",
];

/// Words that start a `simple_statement`: after `LET $x =` they mean a
/// statement, not an expression (so they are reserved in expressions too).
pub(crate) const STATEMENT_WORDS: &[&str] = &[
    "CREATE",
    "ALTER",
    "SET",
    "REMOVE",
    "REVOKE",
    "USE",
    "UPDATE",
    "PUBLISH",
    "ARCHIVE",
    "ACTIVATE",
    "DEACTIVATE",
    "DELETE",
    "CONNECT",
    "DISCONNECT",
    "EMIT",
    "DROP",
    "DEFINE",
    "MATCH",
    "EVENTS",
    "SEARCH",
    "SHOW",
    "WHOAMI",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
];

pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED
        .iter()
        .chain(STATEMENT_WORDS)
        .any(|r| r.eq_ignore_ascii_case(word))
}

pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

pub(crate) fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Length in bytes of the identifier-shaped word at the start of `s` (0 if
/// none).
pub(crate) fn word_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(&b) if is_ident_start(b) => bytes.iter().take_while(|&&b| is_ident_char(b)).count(),
        _ => 0,
    }
}

/// `trivia ::= (whitespace | comment)*`, `comment ::= "--" [^#xA]*`.
pub(crate) fn trivia(i: In) -> PResult<()> {
    let bytes = i.rest.as_bytes();
    let mut pos = 0;
    loop {
        match bytes.get(pos) {
            Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0C) => pos += 1,
            Some(b'-') if bytes.get(pos + 1) == Some(&b'-') => {
                let line = bytes.get(pos..).unwrap_or_default();
                pos += line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
            }
            _ => return Ok((i.advance(pos), ())),
        }
    }
}

/// The input after trivia (trivia never fails).
pub(crate) fn skip(i: In) -> In {
    match trivia(i) {
        Ok((i, ())) => i,
        Err(_) => i,
    }
}

/// The word at the next token, uppercased, or "" (for dispatching on
/// keywords without consuming them).
pub(crate) fn peek_word(i: In) -> String {
    let i = skip(i);
    let n = word_len(i.rest);
    i.rest.get(..n).unwrap_or_default().to_ascii_uppercase()
}

/// Whether the next token is the keyword `word` (without allocating).
pub(crate) fn next_word_is(i: In, word: &str) -> bool {
    let i = skip(i);
    let n = word_len(i.rest);
    n == word.len()
        && i.rest
            .get(..n)
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
}

/// A keyword (case-insensitive, not followed by an identifier character, so
/// `ORDERS` is not `ORDER`). Returns its span.
pub(crate) fn kw<'a>(word: &'static str) -> impl Fn(In<'a>) -> PResult<'a, Span> {
    move |i| keyword(i, word)
}

pub(crate) fn keyword<'a>(i: In<'a>, word: &'static str) -> PResult<'a, Span> {
    let i = skip(i);
    let n = word_len(i.rest);
    match i.rest.get(..n) {
        Some(w) if n == word.len() && w.eq_ignore_ascii_case(word) => {
            let start = i.offset();
            let j = i.advance(n);
            Ok((j, j.span_from(start)))
        }
        _ => Err(PError::expected(i, Expect::Token(word))),
    }
}

/// `keyword p` as an optional clause: absent is `None`; once the keyword is
/// there, `p` must follow (a mistake after `WHERE` is reported there, not as
/// "unexpected WHERE").
pub(crate) fn clause<'a, T>(
    i: In<'a>,
    word: &'static str,
    mut p: impl FnMut(In<'a>) -> PResult<'a, T>,
) -> PResult<'a, Option<T>> {
    match keyword(i, word) {
        Ok((j, _)) => {
            let (j, value) = commit(p(j))?;
            Ok((j, Some(value)))
        }
        Err(nom::Err::Error(_)) => Ok((i, None)),
        Err(e) => Err(e),
    }
}

/// `item ("," item)*`; an item is required after each comma. (A loop
/// rather than `separated_list1`: lists nest, and this keeps the frames per
/// nesting level few.)
pub(crate) fn comma_list<'a, T>(
    mut i: In<'a>,
    mut item: impl FnMut(In<'a>) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let mut items = Vec::new();
    loop {
        // One call site: one result slot in this frame.
        let result = item(i);
        let (j, value) = if items.is_empty() {
            result
        } else {
            commit(result)
        }?;
        items.push(value);
        match punctuation(j, ",") {
            Ok((k, _)) => i = k,
            Err(_) => return Ok((j, items)),
        }
    }
}

/// `comma_list` for items that add themselves to the list: used on the
/// recursive path (lists, maps, arguments), where a returned item would
/// cost a large slot in this frame.
pub(crate) fn comma_list_into<'a, T>(
    mut i: In<'a>,
    mut push: impl FnMut(In<'a>, &mut Vec<T>) -> PResult<'a, ()>,
) -> PResult<'a, Vec<T>> {
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let result = push(i, &mut items);
        let (j, ()) = if first { result } else { commit(result) }?;
        first = false;
        match punctuation(j, ",") {
            Ok((k, _)) => i = k,
            Err(_) => return Ok((j, items)),
        }
    }
}

/// Punctuation, matched exactly (`"->"`, `"("`, `".."`).
pub(crate) fn punct<'a>(token: &'static str) -> impl Fn(In<'a>) -> PResult<'a, Span> {
    move |i| punctuation(i, token)
}

pub(crate) fn punctuation<'a>(i: In<'a>, token: &'static str) -> PResult<'a, Span> {
    let i = skip(i);
    if i.rest.starts_with(token) {
        let start = i.offset();
        let j = i.advance(token.len());
        Ok((j, j.span_from(start)))
    } else {
        Err(PError::expected(i, Expect::Token(token)))
    }
}

/// `identifier ::= [A-Za-z_] [A-Za-z0-9_]*` — any word, keywords included
/// (used where a keyword cannot be meant: types, aliases, keys, …).
pub(crate) fn identifier(i: In) -> PResult<Ident> {
    let i = skip(i);
    let n = word_len(i.rest);
    match i.rest.get(..n) {
        Some(w) if n > 0 => {
            let start = i.offset();
            let j = i.advance(n);
            Ok((
                j,
                Ident {
                    name: w.to_string(),
                    span: j.span_from(start),
                },
            ))
        }
        _ => Err(PError::expected(i, Expect::What("a name"))),
    }
}

/// `name ::= identifier - reserved_word` — a variable or function name.
pub(crate) fn name(i: In) -> PResult<Ident> {
    let i = skip(i);
    if is_reserved(i.rest.get(..word_len(i.rest)).unwrap_or_default()) {
        return Err(PError::expected(i, Expect::What("a name")));
    }
    identifier(i)
}

/// `parameter ::= "$" identifier` (no space after `$`). The name excludes
/// the `$`; the span includes it.
pub(crate) fn parameter(i: In) -> PResult<Ident> {
    let i = skip(i);
    let Some(after) = i.rest.strip_prefix('$') else {
        return Err(PError::expected(i, Expect::What("a $parameter")));
    };
    let n = word_len(after);
    if n == 0 {
        return Err(PError::expected(i, Expect::What("a $parameter")));
    }
    let start = i.offset();
    let j = i.advance(1 + n);
    let name = after.get(..n).unwrap_or_default().to_string();
    Ok((
        j,
        Ident {
            name,
            span: j.span_from(start),
        },
    ))
}

/// `string ::= '"' (char - ('"' | '\') | escape)* '"'` with
/// `escape ::= '\' ('"' | '\' | 'n' | 't' | 'r' | 'u{' hex+ '}')`.
/// Raw newlines, NUL and `--` inside are part of the string.
pub(crate) fn string_literal(i: In) -> PResult<(String, Span)> {
    let i = skip(i);
    let Some(body) = i.rest.strip_prefix('"') else {
        return Err(PError::expected(i, Expect::What("a string")));
    };
    let max = i.cx.limits.max_literal_bytes;
    let mut out = String::new();
    let mut chars = body.char_indices();
    loop {
        let Some((k, c)) = chars.next() else {
            return Err(PError::fatal(
                i,
                ErrorCode::ParseError,
                "unterminated string",
            ));
        };
        match c {
            '"' => {
                let start = i.offset();
                let j = i.advance(1 + k + 1);
                return Ok((j, (out, j.span_from(start))));
            }
            '\\' => {
                let at = i.advance(1 + k);
                out.push(escape(at, &mut chars)?);
            }
            c => out.push(c),
        }
        if out.len() > max {
            return Err(PError::fatal(
                i,
                ErrorCode::TooLarge,
                format!("string literal is longer than {max} bytes"),
            ));
        }
    }
}

/// The character an escape stands for; `at` is the backslash.
fn escape(at: In, chars: &mut std::str::CharIndices) -> Result<char, nom::Err<PError>> {
    let bad = |what: &str| PError::fatal(at, ErrorCode::ParseError, what.to_string());
    match chars.next().map(|(_, c)| c) {
        Some('"') => Ok('"'),
        Some('\\') => Ok('\\'),
        Some('n') => Ok('\n'),
        Some('t') => Ok('\t'),
        Some('r') => Ok('\r'),
        Some('u') => {
            if chars.next().map(|(_, c)| c) != Some('{') {
                return Err(bad("invalid unicode escape: expected \\u{hex}"));
            }
            let mut value: u32 = 0;
            let mut digits = 0;
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('}') if digits > 0 => break,
                    Some(c) if digits < 6 && c.is_ascii_hexdigit() => {
                        value = value * 16 + c.to_digit(16).unwrap_or(0);
                        digits += 1;
                    }
                    _ => {
                        return Err(bad(
                            "invalid unicode escape: expected 1 to 6 hex digits in \\u{…}",
                        ));
                    }
                }
            }
            char::from_u32(value)
                .ok_or_else(|| bad("invalid unicode escape: not a Unicode scalar value"))
        }
        Some(c) => Err(bad(&format!(
            "invalid escape \"\\{c}\" (use \\\" \\\\ \\n \\t \\r or \\u{{hex}})"
        ))),
        None => Err(PError::fatal(
            at,
            ErrorCode::ParseError,
            "unterminated string",
        )),
    }
}

/// `number ::= digits ("." digits)? (("e" | "E") ("+" | "-")? digits)?` —
/// an `Int` (i64) without fraction or exponent, else a `Float`. A leading
/// `-` is the unary operator, not part of the number.
pub(crate) fn number(i: In) -> PResult<(ExprKind, Span)> {
    let i = skip(i);
    let bytes = i.rest.as_bytes();
    let digits_from = |from: usize| {
        bytes
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut len = digits_from(0);
    if len == 0 {
        return Err(PError::expected(i, Expect::What("a number")));
    }
    let mut float = false;
    if bytes.get(len) == Some(&b'.') && digits_from(len + 1) > 0 {
        len += 1 + digits_from(len + 1);
        float = true;
    }
    if matches!(bytes.get(len), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(len + 1), Some(b'+' | b'-')));
        let exp = digits_from(len + 1 + sign);
        if exp > 0 {
            len += 1 + sign + exp;
            float = true;
        }
    }
    let text = i.rest.get(..len).unwrap_or_default();
    if bytes.get(len).is_some_and(|&b| is_ident_char(b)) {
        return Err(PError::fatal(
            i,
            ErrorCode::ParseError,
            format!(
                "invalid number \"{}\"",
                shorten(i.rest, len + word_len_any(i.rest, len))
            ),
        ));
    }
    let kind = if float {
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => ExprKind::Float(f),
            _ => {
                return Err(PError::fatal(
                    i,
                    ErrorCode::ParseError,
                    format!(
                        "number {} is out of range for a 64-bit float",
                        shorten(text, len)
                    ),
                ));
            }
        }
    } else {
        match text.parse::<i64>() {
            Ok(n) => ExprKind::Int(n),
            Err(_) => {
                return Err(PError::fatal(
                    i,
                    ErrorCode::ParseError,
                    format!(
                        "integer {} is out of range (a 64-bit integer is at most {})",
                        shorten(text, len),
                        i64::MAX
                    ),
                ));
            }
        }
    };
    let start = i.offset();
    let j = i.advance(len);
    Ok((j, (kind, j.span_from(start))))
}

/// `integer ::= digits` as a u32 (variable-length hop counts).
pub(crate) fn integer(i: In) -> PResult<(u32, Span)> {
    let i = skip(i);
    let len = i.rest.bytes().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 {
        return Err(PError::expected(i, Expect::What("a number")));
    }
    let text = i.rest.get(..len).unwrap_or_default();
    let Ok(n) = text.parse::<u32>() else {
        return Err(PError::fatal(
            i,
            ErrorCode::ParseError,
            format!("hop count {} is out of range", shorten(text, len)),
        ));
    };
    let start = i.offset();
    let j = i.advance(len);
    Ok((j, (n, j.span_from(start))))
}

/// Identifier characters right after byte `from` (for error messages).
fn word_len_any(s: &str, from: usize) -> usize {
    s.as_bytes()
        .get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| is_ident_char(b))
        .count()
}

/// At most 40 characters of the first `len` bytes of `s`, for messages.
pub(crate) fn shorten(s: &str, len: usize) -> String {
    let mut taken: String = s
        .chars()
        .scan(0, |n, c| {
            *n += c.len_utf8();
            (*n <= len).then_some(c)
        })
        .take(41)
        .collect();
    if taken.chars().count() > 40 {
        taken = taken.chars().take(40).collect();
        taken.push('…');
    }
    taken
}

/// How the next token looks, for "… but found X" messages.
pub(crate) fn describe_token(rest: &str) -> String {
    let bytes = rest.as_bytes();
    let Some(&first) = bytes.first() else {
        return "end of input".to_string();
    };
    let len = if is_ident_start(first) {
        word_len(rest)
    } else if first.is_ascii_digit() {
        bytes
            .iter()
            .take_while(|&&b| is_ident_char(b) || b == b'.')
            .count()
    } else if first == b'"' {
        return "a string".to_string();
    } else {
        const TWO: &[&str] = &["->", "<-", "<>", "<=", ">=", "!=", ".."];
        if TWO.iter().any(|t| rest.starts_with(t)) {
            2
        } else {
            rest.chars().next().map_or(1, char::len_utf8)
        }
    };
    let token = shorten(rest, len);
    if token.chars().all(|c| c.is_control()) {
        return format!("{:?}", token);
    }
    format!("\"{token}\"")
}
