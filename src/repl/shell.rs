//! One shell session's state — output format, `\x`, `\timing`, `\o`, the
//! completion words — and running statements on its backend. Both the
//! line editor and piped input feed it.

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use crate::error::{Error, ErrorCode, Result};
use crate::query::format::error_text;
use crate::query::script::ScriptReader;
use crate::repl::Backend;
use crate::repl::complete::Words;
use crate::repl::table::{Style, render};

/// What running input printed, in order: results (which `\o` sends to its
/// file) and messages (errors, timings: always to the terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Result(String),
    Message(String),
}

/// How a statement ended, for the statements after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Done,
    Cancelled,
}

/// Whether the shell goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Go,
    Quit,
}

/// A shell session on a backend.
pub struct Shell<'b, B: Backend> {
    pub(crate) backend: &'b mut B,
    pub(crate) style: Style,
    pub(crate) timing: bool,
    /// `\o FILE`: where results go instead of the terminal.
    pub(crate) output: Option<(PathBuf, File)>,
    pub(crate) words: Words,
}

impl<'b, B: Backend> Shell<'b, B> {
    pub fn new(backend: &'b mut B) -> Self {
        Shell {
            backend,
            style: Style::default(),
            timing: false,
            output: None,
            words: Words::default(),
        }
    }

    /// Fills the completion words (types, orgs) from the backend.
    pub fn refresh_words(&mut self) {
        self.words.refresh(self.backend);
    }

    /// Runs every statement of `input` as it streams in, handing what each
    /// printed to `sink`.
    pub fn run_script(
        &mut self,
        input: impl BufRead,
        sink: &mut dyn FnMut(Piece) -> Result<()>,
    ) -> Result<()> {
        for statement in ScriptReader::new(input) {
            match statement {
                Ok(s) => {
                    if self.run_statement(&s.text, sink)? == Ran::Cancelled {
                        // Ctrl-C stops the input, not only its statement.
                        return Ok(());
                    }
                }
                Err(e) => sink(Piece::Message(error_text(&e, None)))?,
            }
        }
        Ok(())
    }

    /// Runs one statement (its text without the `;`).
    fn run_statement(
        &mut self,
        text: &str,
        sink: &mut dyn FnMut(Piece) -> Result<()>,
    ) -> Result<Ran> {
        let mut ran = Ran::Done;
        let started = Instant::now();
        let result = self.backend.execute(text);
        let elapsed = started.elapsed();
        match result {
            Ok(outcome) => {
                sink(Piece::Result(render(&outcome, &self.style)))?;
                self.words.learn(text);
                if changes_words(text) {
                    self.refresh_words();
                }
            }
            Err(e) => {
                if e.code == ErrorCode::Cancelled {
                    ran = Ran::Cancelled;
                }
                let snippet = e.position.map(|p| p.snippet(text));
                sink(Piece::Message(error_text(&e, snippet.as_deref())))?;
            }
        }
        if self.timing {
            sink(Piece::Message(format!(
                "time: {:.3} ms\n",
                elapsed.as_secs_f64() * 1000.0
            )))?;
        }
        Ok(ran)
    }

    /// Runs the statements of `input` and writes what each printed as
    /// soon as it finished (results to `\o`'s file when one is open).
    pub fn run_to(&mut self, input: impl BufRead, out: &mut dyn Write) -> Result<()> {
        let mut output = self.output.take();
        let done = self.run_script(input, &mut |piece| deliver(piece, &mut output, out));
        self.output = output;
        done
    }

    /// Writes one piece where it belongs (see `deliver`).
    pub fn deliver(&mut self, piece: Piece, out: &mut dyn Write) -> Result<()> {
        deliver(piece, &mut self.output, out)
    }
}

/// Writes one piece where it belongs: a result to `\o`'s file when one is
/// open, everything else to `out`.
pub fn deliver(
    piece: Piece,
    output: &mut Option<(PathBuf, File)>,
    out: &mut dyn Write,
) -> Result<()> {
    match (piece, output) {
        (Piece::Result(text), Some((path, file))) => file
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("{}: {e}", path.display()))),
        (Piece::Result(text) | Piece::Message(text), _) => {
            out.write_all(text.as_bytes())?;
            Ok(out.flush()?)
        }
    }
}

/// Whether a statement may change the types or orgs completion offers.
fn changes_words(statement: &str) -> bool {
    let first = statement.split_whitespace().next().unwrap_or_default();
    ["CREATE", "USE", "DROP", "ALTER", "COMMIT", "LET"]
        .iter()
        .any(|w| first.eq_ignore_ascii_case(w))
}

/// Whether a statement carries a secret (a password, or makes a token
/// whose secret it prints): such statements never reach the history.
pub fn carries_secret(statement: &str) -> bool {
    let words: Vec<String> = statement
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    words.iter().any(|w| w == "PASSWORD")
        || words
            .windows(2)
            .any(|w| w[0] == "CREATE" && w[1] == "TOKEN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_with_secrets_are_recognized() {
        assert!(carries_secret(
            "CREATE PERSON \"a@b.io\" NAME \"A\" ROLE org_user PASSWORD \"s3cret\""
        ));
        assert!(carries_secret("create\n  token \"ci\""));
        assert!(carries_secret("ALTER PERSON x SET password = \"p\""));
        assert!(!carries_secret("MATCH (c:course) RETURN c"));
        assert!(!carries_secret("SHOW TOKENS"));
    }
}
