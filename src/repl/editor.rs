//! The shell on a terminal: rustyline's line editor (emacs keys, history
//! with Ctrl-R, Tab completion), statements across lines until their `;`,
//! Ctrl-C to cancel, a pager for tall results.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use crate::error::{Error, Result};
use crate::query::format::error_text;
use crate::query::script::ends_at_boundary;
use crate::repl::complete::Words;
use crate::repl::shell::{Flow, Piece, Shell, carries_secret, deliver};
use crate::repl::{Backend, UNFINISHED_BLOCK, banner, is_command, prompt};

/// Statements the history file keeps.
const HISTORY_SIZE: usize = 5_000;

/// The history file: `$ONEDB_HISTORY` (empty: none), else
/// `~/.onedb_history`.
pub fn history_path() -> Option<PathBuf> {
    match std::env::var_os("ONEDB_HISTORY") {
        Some(path) if path.is_empty() => None,
        Some(path) => Some(PathBuf::from(path)),
        None => std::env::var_os("HOME").map(|home| Path::new(&home).join(".onedb_history")),
    }
}

/// Tab completion for the editor: the session's words, and file names
/// after `\i` and `\o`.
struct Completion {
    words: Words,
    files: FilenameCompleter,
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = line.trim_start();
        if head.starts_with("\\i ") || head.starts_with("\\o ") {
            return self.files.complete_path(line, pos);
        }
        let (start, words) = self.words.complete(line, pos);
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// The flag Ctrl-C sets while a statement runs. One per process: the
/// signal handler can be installed only once.
fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler = Arc::clone(&flag);
        // Without the handler Ctrl-C would end the process; the shell then
        // simply cannot cancel a statement, which is not worth failing for.
        let _ = ctrlc::set_handler(move || handler.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}

/// Runs the shell on the terminal until `\q` or Ctrl-D. History is read
/// from and appended to `history` (statements that carry a secret never).
pub fn interactive(backend: &mut impl Backend, history: Option<&Path>) -> Result<()> {
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_SIZE)
        .map_err(editor_error)?
        .history_ignore_dups(true)
        .map_err(editor_error)?
        .build();
    let mut editor: Editor<Completion, DefaultHistory> =
        Editor::with_config(config).map_err(editor_error)?;
    if let Some(path) = history
        && path.exists()
    {
        editor.load_history(path).map_err(editor_error)?;
    }
    let cancel = interrupt_flag();
    backend.set_cancel(Arc::clone(&cancel));
    let mut out = std::io::stdout();
    writeln!(out, "{}", banner(backend))?;
    let mut shell = Shell::new(backend);
    shell.refresh_words();
    editor.set_helper(Some(Completion {
        words: shell.words.clone(),
        files: FilenameCompleter::new(),
    }));
    let mut buffer = String::new();
    loop {
        let line = match editor.readline(&prompt(&*shell.backend, &buffer)) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(editor_error(e)),
        };
        // A Ctrl-C that came after the last statement ended cancels nothing.
        cancel.store(false, Ordering::SeqCst);
        if buffer.trim().is_empty() && is_command(&line) {
            remember(&mut editor, history, line.trim())?;
            match shell.command(&line, &mut out) {
                Ok(Flow::Quit) => break,
                Ok(Flow::Go) => {}
                Err(e) => write!(out, "{}", error_text(&e, None))?,
            }
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !ends_at_boundary(&buffer) {
            continue;
        }
        let text = std::mem::take(&mut buffer);
        remember(&mut editor, history, text.trim())?;
        // Measured for each statement: the terminal may have been resized.
        let size = editor.dimensions();
        shell.style.width = size.map(|(columns, _)| usize::from(columns));
        let mut pieces = Vec::new();
        shell.run_script(text.as_bytes(), &mut |p| {
            pieces.push(p);
            Ok(())
        })?;
        show(
            &mut shell,
            pieces,
            &mut out,
            size.map(|(_, rows)| usize::from(rows)),
        )?;
        if let Some(helper) = editor.helper_mut() {
            helper.words.clone_from(&shell.words);
        }
    }
    if shell.backend.in_block() {
        writeln!(out, "warning: {UNFINISHED_BLOCK}")?;
    }
    Ok(())
}

/// Adds a statement to the history and appends it to the file at once
/// (so a shell that is killed keeps it), unless it carries a secret.
fn remember(
    editor: &mut Editor<Completion, DefaultHistory>,
    history: Option<&Path>,
    entry: &str,
) -> Result<()> {
    if entry.is_empty() || carries_secret(entry) {
        return Ok(());
    }
    editor.add_history_entry(entry).map_err(editor_error)?;
    if let Some(path) = history {
        // rustyline makes the file readable by its owner only.
        editor.append_history(path).map_err(editor_error)?;
    }
    Ok(())
}

/// Shows what the statements printed: through `$PAGER` when it is taller
/// than the terminal (and not going to `\o`'s file), else directly.
fn show<B: Backend>(
    shell: &mut Shell<'_, B>,
    pieces: Vec<Piece>,
    out: &mut dyn Write,
    rows: Option<usize>,
) -> Result<()> {
    let text: String = pieces
        .iter()
        .map(|(Piece::Result(t) | Piece::Message(t))| t.as_str())
        .collect();
    let tall = rows.is_some_and(|rows| text.lines().count() >= rows.saturating_sub(1));
    if tall && shell.output.is_none() && page(&text).unwrap_or(false) {
        return Ok(());
    }
    for piece in pieces {
        deliver(piece, &mut shell.output, out)?;
    }
    Ok(())
}

/// Hands `text` to `$PAGER` (default `less -FRSX`) and waits for it;
/// false when there is no such pager (the shell prints the text itself).
fn page(text: &str) -> Result<bool> {
    let pager = std::env::var("PAGER")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "less -FRSX".into());
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(&pager)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("pager {pager}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A pager that quits early closes the pipe: not an error.
        let _ = stdin.write_all(text.as_bytes());
    }
    // 127: the shell found no such command.
    Ok(child.wait()?.code() != Some(127))
}

fn editor_error(e: ReadlineError) -> Error {
    Error::io(format!("line editor: {e}"))
}
