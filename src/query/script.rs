//! Splits a script into statements as it streams in.
//!
//! `ScriptReader` reads from any `BufRead` and yields one statement at a
//! time, holding only the current statement in memory: a script of a
//! million statements runs in flat memory. It splits on `;` outside strings
//! and comments (the same lexical rules as the parser: `"…"` with `\`
//! escapes, `--` to the end of the line), skips blank and comment-only
//! statements, and knows where each statement starts so errors can point
//! into the script.

use std::io::BufRead;

use crate::error::{Error, ErrorCode, Position, Result};
use crate::query::parser::MAX_STATEMENT_BYTES;
use crate::query::parser::lexical::Lexical;
use crate::query::run::{Outcome, Runner};

/// One statement of a script: its text (from its first token to before its
/// `;`) and where it starts in the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStatement {
    pub text: String,
    /// 1-based line and column (in characters) of the first token.
    pub line: u32,
    pub col: u32,
    /// Byte offset of the first token in the script.
    pub offset: u64,
}

impl ScriptStatement {
    /// `error` re-pointed from a position in `text` to the same place in
    /// the script (errors without a position are returned unchanged).
    pub fn locate(&self, mut error: Error) -> Error {
        if let Some(p) = error.position {
            error.position = Some(Position {
                line: self.line + p.line - 1,
                col: if p.line == 1 {
                    self.col + p.col - 1
                } else {
                    p.col
                },
                offset: usize::try_from(self.offset)
                    .unwrap_or(usize::MAX)
                    .saturating_add(p.offset),
            });
        }
        error
    }
}

/// Where the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between statements: whitespace and comments are not kept.
    Between,
    /// A comment before a statement's first token (not kept).
    LeadingComment,
    /// In a statement (its comments are kept: the parser skips them).
    In(Lexical),
}

/// A line/column/offset cursor over the script.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    line: u32,
    col: u32,
    offset: u64,
}

impl Cursor {
    fn step(&mut self, b: u8) {
        self.offset += 1;
        if b == b'\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            // Count characters, not UTF-8 continuation bytes.
            self.col = self.col.saturating_add(1);
        }
    }
}

/// Yields the statements of a script one by one (see the module docs).
///
/// After a statement longer than the limit it yields one `TOO_LARGE` error
/// and skips to the statement's end without buffering it, then goes on.
/// An unterminated string is a `PARSE_ERROR` at its opening quote; the
/// script ends there.
pub struct ScriptReader<R: BufRead> {
    reader: R,
    scanner: Scanner,
    done: bool,
}

impl<R: BufRead> ScriptReader<R> {
    pub fn new(reader: R) -> Self {
        Self::with_limit(reader, MAX_STATEMENT_BYTES)
    }

    /// A reader whose statements may be at most `max_statement_bytes` long.
    pub fn with_limit(reader: R, max_statement_bytes: usize) -> Self {
        ScriptReader {
            reader,
            scanner: Scanner::new(max_statement_bytes),
            done: false,
        }
    }

    /// Scans bytes until a statement (or an error) is complete.
    fn next_statement(&mut self) -> Option<Result<ScriptStatement>> {
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(Error::from(e)));
                }
            };
            if chunk.is_empty() {
                self.done = true;
                return self.scanner.finish();
            }
            let mut used = 0;
            let mut found = None;
            for &b in chunk {
                used += 1;
                if let Some(result) = self.scanner.scan(b) {
                    found = Some(result);
                    break;
                }
            }
            self.reader.consume(used);
            if found.is_some() {
                return found;
            }
        }
    }
}

/// Runs the statements of `text` in order on `runner`: the last one's
/// outcome, or the first error (pointing into `text`) with its statement's
/// index. A server request and a Python `query` take several statements
/// this way.
pub fn run_text(
    runner: &mut Runner<'_>,
    text: &str,
) -> std::result::Result<Outcome, (Error, Option<usize>)> {
    // One statement (no `;` and no comment anywhere) runs as it is:
    // splitting it cost a fifth of a point query, for the same answer.
    if !text.contains(';') && !text.contains("--") && !text.trim().is_empty() {
        return runner.execute(text).map_err(|e| (e, Some(0)));
    }
    run_split(runner, text)
}

/// `run_text` through the splitter.
fn run_split(
    runner: &mut Runner<'_>,
    text: &str,
) -> std::result::Result<Outcome, (Error, Option<usize>)> {
    let statements: Vec<Result<ScriptStatement>> = ScriptReader::new(text.as_bytes()).collect();
    let mut last = Outcome::default();
    let mut index = 0;
    while index < statements.len() {
        if !runner.in_block()
            && let Some(block) = whole_block(&statements[index..])
        {
            last = runner
                .run_whole_block(&block)
                .map_err(|(e, i)| (e, Some(index + i)))?;
            index += block.len();
            continue;
        }
        let statement = statements[index]
            .as_ref()
            .map_err(|e| (e.clone(), Some(index)))?;
        last = runner
            .execute(&statement.text)
            .map_err(|e| (statement.locate(e), Some(index)))?;
        index += 1;
    }
    Ok(last)
}

/// Whether `text` is one block and nothing else (`BEGIN; …; COMMIT;`),
/// as `run_text` would recognise and run it whole.
pub fn is_one_block(text: &str) -> bool {
    let statements: Vec<Result<ScriptStatement>> = ScriptReader::new(text.as_bytes()).collect();
    whole_block(&statements).is_some_and(|block| block.len() == statements.len())
}

/// The block `statements` starts with — `BEGIN` to the first `COMMIT`,
/// each statement whole and none of them another `BEGIN` or a
/// `ROLLBACK` — if they start with one. Told by the statements' text
/// alone; a block not recognised runs statement by statement, as it
/// would anyway, only without being run again on a conflict.
fn whole_block(statements: &[Result<ScriptStatement>]) -> Option<Vec<&ScriptStatement>> {
    let is = |s: &ScriptStatement, word: &str| s.text.trim().eq_ignore_ascii_case(word);
    let mut block = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        let statement = statement.as_ref().ok()?;
        let begins = is(statement, "BEGIN");
        if (i == 0) != begins || is(statement, "ROLLBACK") {
            return None;
        }
        block.push(statement);
        if is(statement, "COMMIT") {
            return Some(block);
        }
    }
    None
}

/// Whether `text` ends at a statement boundary with something before it:
/// every statement in it closed by its `;`, no string or comment of a
/// statement open. The shell runs what it has read once this holds.
pub fn ends_at_boundary(text: &str) -> bool {
    let mut scanner = Scanner::new(usize::MAX);
    for b in text.bytes() {
        let _ = scanner.scan(b);
    }
    !text.trim().is_empty() && matches!(scanner.state, State::Between | State::LeadingComment)
}

/// The byte-at-a-time statement splitter behind `ScriptReader`.
struct Scanner {
    max_statement_bytes: usize,
    state: State,
    /// The statement being collected.
    buf: Vec<u8>,
    /// Where the current statement (or the pending `-` between statements)
    /// starts.
    start: Cursor,
    /// Where the open string starts (for "unterminated string").
    string_start: Cursor,
    cursor: Cursor,
    /// Skipping the rest of a statement that was too long.
    skipping: bool,
}

impl Scanner {
    fn new(max_statement_bytes: usize) -> Scanner {
        let origin = Cursor {
            line: 1,
            col: 1,
            offset: 0,
        };
        Scanner {
            max_statement_bytes,
            state: State::Between,
            buf: Vec::new(),
            start: origin,
            string_start: origin,
            cursor: origin,
            skipping: false,
        }
    }

    /// Advances the state machine by one byte; returns a statement or an
    /// error when one is complete.
    fn scan(&mut self, b: u8) -> Option<Result<ScriptStatement>> {
        let here = self.cursor;
        self.cursor.step(b);
        let lexical = match self.state {
            State::Between => match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0C | b';' => return None,
                _ => {
                    // A `-` may open a leading comment instead; then the
                    // statement starts later.
                    self.start = here;
                    Lexical::Code
                }
            },
            State::LeadingComment => {
                if b == b'\n' {
                    self.state = State::Between;
                }
                return None;
            }
            State::In(lexical) => lexical,
        };
        let next = lexical.next(b);
        if lexical == Lexical::Dash
            && next == Lexical::Comment
            && self.buf.len() == 1
            && !self.skipping
        {
            // The statement's "first byte" opened a comment instead.
            self.buf.clear();
            self.state = State::LeadingComment;
            return None;
        }
        if lexical.is_code() {
            match b {
                b';' => return self.end_statement(),
                b'"' => self.string_start = here,
                _ => {}
            }
        }
        self.state = State::In(next);
        self.keep(b)
    }

    /// Appends a byte of the current statement, or reports it too long.
    fn keep(&mut self, b: u8) -> Option<Result<ScriptStatement>> {
        if self.skipping {
            return None;
        }
        if self.buf.len() >= self.max_statement_bytes {
            self.buf = Vec::new();
            self.skipping = true;
            let error = Error::too_large(format!(
                "statement is longer than {} bytes",
                self.max_statement_bytes
            ));
            return Some(Err(self.at(error, self.start)));
        }
        self.buf.push(b);
        None
    }

    /// The `;` after a statement (or the end of the script).
    fn end_statement(&mut self) -> Option<Result<ScriptStatement>> {
        self.state = State::Between;
        if std::mem::take(&mut self.skipping) {
            self.buf = Vec::new();
            return None;
        }
        let bytes = std::mem::take(&mut self.buf);
        let bytes = trim_end(bytes);
        if bytes.is_empty() {
            return None;
        }
        let start = self.start;
        match String::from_utf8(bytes) {
            Ok(text) => Some(Ok(ScriptStatement {
                text,
                line: start.line,
                col: start.col,
                offset: start.offset,
            })),
            Err(e) => {
                let mut at = start;
                for &b in e
                    .as_bytes()
                    .get(..e.utf8_error().valid_up_to())
                    .unwrap_or_default()
                {
                    at.step(b);
                }
                let error = Error::new(ErrorCode::ParseError, "invalid UTF-8 in script");
                Some(Err(self.at(error, at)))
            }
        }
    }

    /// End of input: the last statement may lack its `;`.
    fn finish(&mut self) -> Option<Result<ScriptStatement>> {
        match self.state {
            State::In(lexical) if lexical.in_string() && !self.skipping => {
                self.buf = Vec::new();
                let error = Error::new(ErrorCode::ParseError, "unterminated string");
                Some(Err(self.at(error, self.string_start)))
            }
            State::Between | State::LeadingComment => None,
            State::In(_) => self.end_statement(),
        }
    }

    fn at(&self, mut error: Error, at: Cursor) -> Error {
        error.position = Some(Position {
            line: at.line,
            col: at.col,
            offset: usize::try_from(at.offset).unwrap_or(usize::MAX),
        });
        error
    }
}

/// Drops trailing whitespace (comments stay: the parser skips them).
fn trim_end(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    bytes
}

impl<R: BufRead> Iterator for ScriptReader<R> {
    type Item = Result<ScriptStatement>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.next_statement()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text of one statement answers as through the splitter: the same
    /// rows, or the same error at the same place.
    #[test]
    fn one_statement_runs_as_it_would_split() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Database::open(dir.path()).unwrap();
        let session = db.local_session().unwrap();
        let mut runner = Runner::new(&session);
        for text in [
            "SHOW ORGS",
            "\n\n   SHOW ORGS  \n",
            "RETURN 1 + 2 AS n",
            "  RETURN \"a\\\"b\" AS s",
            "\n  MATCH (a RETURN a",
            "RETURN \"é\" +",
            "\n\n   USE ORG nowhere",
        ] {
            let answer = |r: std::result::Result<Outcome, (Error, Option<usize>)>| match r {
                Ok(outcome) => format!("{:?} {:?}", outcome.columns, outcome.rows),
                Err((e, statement)) => format!("{e:?} {statement:?}"),
            };
            let fast = answer(run_text(&mut runner, text));
            assert_eq!(fast, answer(run_split(&mut runner, text)), "{text:?}");
            assert!(!fast.is_empty());
        }
    }

    fn split(script: &str) -> Vec<Result<ScriptStatement>> {
        ScriptReader::new(script.as_bytes()).collect()
    }

    fn texts(script: &str) -> Vec<(String, u32, u32)> {
        split(script)
            .into_iter()
            .map(|s| {
                let s = s.unwrap();
                (s.text, s.line, s.col)
            })
            .collect()
    }

    #[test]
    fn splits_on_semicolons_outside_strings_and_comments() {
        let script =
            "SHOW USAGE; SHOW TYPES;WHOAMI;\n-- a; comment\nLET $x = \"a;b -- c\";  \n  ;;\n-- end";
        assert_eq!(
            texts(script),
            vec![
                ("SHOW USAGE".to_string(), 1, 1),
                ("SHOW TYPES".to_string(), 1, 13),
                ("WHOAMI".to_string(), 1, 24),
                ("LET $x = \"a;b -- c\"".to_string(), 3, 1),
            ]
        );
    }

    #[test]
    fn keeps_a_last_statement_without_semicolon_and_inner_comments() {
        assert_eq!(
            texts("MATCH (a) -- x;\nRETURN a"),
            vec![("MATCH (a) -- x;\nRETURN a".to_string(), 1, 1)]
        );
        assert_eq!(
            texts("LET $x = 1 - 2;"),
            vec![("LET $x = 1 - 2".to_string(), 1, 1)]
        );
    }

    #[test]
    fn escaped_quotes_stay_in_strings() {
        assert_eq!(
            texts(r#"LET $x = "a\";b\\"; WHOAMI"#),
            vec![
                (r#"LET $x = "a\";b\\""#.to_string(), 1, 1),
                ("WHOAMI".to_string(), 1, 21),
            ]
        );
    }

    #[test]
    fn unterminated_string_is_reported_at_its_quote() {
        let out = split("WHOAMI;\n  LET $x = \"abc;\n");
        assert_eq!(out.len(), 2);
        let e = out[1].as_ref().unwrap_err();
        assert_eq!(e.code, ErrorCode::ParseError);
        let p = e.position.unwrap();
        assert_eq!((p.line, p.col), (2, 12));
    }

    #[test]
    fn too_long_statement_is_one_error_then_reading_goes_on() {
        let script = format!("LET $x = \"{}\"; WHOAMI;", "y".repeat(100));
        let out: Vec<_> = ScriptReader::with_limit(script.as_bytes(), 50).collect();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap_err().code, ErrorCode::TooLarge);
        assert_eq!(out[1].as_ref().unwrap().text, "WHOAMI");
        // At the limit exactly: accepted.
        let ok: Vec<_> = ScriptReader::with_limit("WHOAMI;".as_bytes(), 6).collect();
        assert_eq!(ok[0].as_ref().unwrap().text, "WHOAMI");
    }

    #[test]
    fn locate_maps_statement_positions_into_the_script() {
        let s = &texts("\n\n   SHOW ORGS;")[0];
        assert_eq!((s.1, s.2), (3, 4));
        let st = ScriptStatement {
            text: "MATCH (a\nRETURN".into(),
            line: 3,
            col: 4,
            offset: 5,
        };
        let e = st.locate(Error::new(ErrorCode::ParseError, "x").at(&st.text, 6));
        let p = e.position.unwrap();
        assert_eq!((p.line, p.col, p.offset), (3, 10, 11));
        let e = st.locate(Error::new(ErrorCode::ParseError, "x").at(&st.text, 10));
        let p = e.position.unwrap();
        assert_eq!((p.line, p.col), (4, 2));
    }
}
