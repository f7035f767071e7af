//! Results as people read them: aligned tables measured in terminal
//! columns (CJK and emoji take two), nested maps and lists written as OQL
//! literals, the widest cells cut with an ellipsis so a table fits the
//! terminal (never when there is no terminal: piped output is whole);
//! expanded rows (`\x`) that show every value whole; CSV; and the JSON of
//! `--format json`.

use std::fmt::Write as _;

use serde_json::Value as Json;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::query::format::json_result;
use crate::query::outcome::Outcome;

/// Columns a cut column keeps at least.
const MIN_COLUMN: usize = 8;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text.to_ascii_lowercase().as_str() {
            "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

/// `\x on|off|auto`: expanded rows always, never, or for tables wider
/// than the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expanded {
    #[default]
    Off,
    On,
    Auto,
}

/// How the shell prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub format: Format,
    /// `\x`: one line per column (tables only).
    pub expanded: Expanded,
    /// The terminal's width, which tables are cut to fit; None (not a
    /// terminal): never cut.
    pub width: Option<usize>,
}

/// One statement's outcome in `style`.
pub fn render(outcome: &Outcome, style: &Style) -> String {
    match style.format {
        Format::Json => format!("{}\n", json_result(outcome)),
        Format::Csv => csv(outcome),
        Format::Table => {
            let whole = table(outcome, None);
            let too_wide = |terminal: usize| whole.lines().any(|l| width(l) > terminal);
            match style.expanded {
                Expanded::On => expanded_rows(outcome),
                Expanded::Auto if style.width.is_some_and(too_wide) => expanded_rows(outcome),
                _ if style.width.is_some_and(too_wide) => table(outcome, style.width),
                _ => whole,
            }
        }
    }
}

/// A value in a cell: strings bare, nested values as OQL literals.
pub fn cell(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => literal(other),
    }
}

/// A value as an OQL literal: `{name: "Rust", tags: ["a", "b"]}`.
fn literal(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(_) | Json::Number(_) | Json::String(_) => v.to_string(),
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(literal).collect();
            format!("[{}]", items.join(", "))
        }
        Json::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| {
                    let plain = !k.is_empty()
                        && k.chars().all(|c| c.is_alphanumeric() || c == '_')
                        && !k.starts_with(|c: char| c.is_ascii_digit());
                    let key = if plain {
                        k.clone()
                    } else {
                        Json::String(k.clone()).to_string()
                    };
                    format!("{key}: {}", literal(v))
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// One line of a table cell: control characters would break the
/// alignment, so line breaks show as `↵` and the rest as `\u{…}`.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push('↵'),
            '\t' => out.push(' '),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Display width in terminal columns.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` cut to at most `max` columns, ending in `…` when cut.
fn fit(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > max.saturating_sub(1) {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` padded with spaces to `columns` display columns.
fn pad(text: &str, columns: usize) -> String {
    let mut out = text.to_string();
    out.push_str(&" ".repeat(columns.saturating_sub(width(text))));
    out
}

/// `N rows (T µs)` under a table.
fn footer(outcome: &Outcome) -> String {
    let n = outcome.rows.len();
    format!(
        "{n} row{} ({} µs)\n",
        if n == 1 { "" } else { "s" },
        outcome.stats.micros
    )
}

/// Columns and rows as an aligned text table, with a row count line; with
/// a `terminal` width, the widest columns are cut until the table fits.
pub fn table(outcome: &Outcome, terminal: Option<usize>) -> String {
    if outcome.columns.is_empty() {
        return format!("ok ({} µs)\n", outcome.stats.micros);
    }
    let header: Vec<String> = outcome.columns.iter().map(|c| one_line(c)).collect();
    let cells: Vec<Vec<String>> = outcome
        .rows
        .iter()
        .map(|r| r.iter().map(|v| one_line(&cell(v))).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|c| width(c)).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(c));
        }
    }
    if let Some(terminal) = terminal {
        shrink(&mut widths, terminal);
    }
    let line = |values: &[String]| -> String {
        let padded: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| pad(&fit(values.get(i).map_or("", String::as_str), *w), *w))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let rule = format!(
        "+{}+\n",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let mut out = String::new();
    out.push_str(&rule);
    out.push_str(&line(&header));
    out.push_str(&rule);
    for row in &cells {
        out.push_str(&line(row));
    }
    out.push_str(&rule);
    out.push_str(&footer(outcome));
    out
}

/// Narrows the widest column, one column of text at a time, until a table
/// of `widths` fits `terminal` columns (or every column is down to
/// `MIN_COLUMN`).
fn shrink(widths: &mut [usize], terminal: usize) {
    // `| a | b |`: three columns of border per column, one more at the end.
    let total = |widths: &[usize]| widths.iter().map(|w| w + 3).sum::<usize>() + 1;
    while total(widths) > terminal {
        let Some(widest) = widths.iter_mut().filter(|w| **w > MIN_COLUMN).max() else {
            return;
        };
        *widest -= 1;
    }
}

/// `\x`: one block per row, a column name and its whole value per line
/// (a value's own line breaks continue under the value).
pub fn expanded_rows(outcome: &Outcome) -> String {
    if outcome.columns.is_empty() {
        return table(outcome, None);
    }
    let names: Vec<String> = outcome.columns.iter().map(|c| one_line(c)).collect();
    let name_width = names.iter().map(|n| width(n)).max().unwrap_or(0);
    let mut out = String::new();
    for (i, row) in outcome.rows.iter().enumerate() {
        let _ = writeln!(out, "-[ row {} ]{}", i + 1, "-".repeat(name_width + 4));
        for (name, value) in names.iter().zip(row) {
            let text = cell(value);
            let mut lines = text.split('\n');
            let first = lines.next().unwrap_or("");
            let _ = writeln!(out, "{} | {first}", pad(name, name_width));
            for more in lines {
                let _ = writeln!(out, "{} | {more}", " ".repeat(name_width));
            }
        }
    }
    out.push_str(&footer(outcome));
    out
}

/// RFC 4180 CSV: a header line, then one line per row.
pub fn csv(outcome: &Outcome) -> String {
    let field = |text: &str| -> String {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    if outcome.columns.is_empty() {
        return out;
    }
    let line = |values: Vec<String>| values.join(",") + "\r\n";
    out.push_str(&line(outcome.columns.iter().map(|c| field(c)).collect()));
    for row in &outcome.rows {
        out.push_str(&line(
            row.iter()
                .map(|v| match v {
                    Json::String(s) => field(s),
                    Json::Null => String::new(),
                    other => field(&other.to_string()),
                })
                .collect(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(columns: &[&str], rows: Vec<Vec<Json>>) -> Outcome {
        Outcome {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            ..Default::default()
        }
    }

    #[test]
    fn tables_align_and_count_rows() {
        let o = outcome(
            &["c.name", "n"],
            vec![vec![json!("Rust"), json!(2)], vec![json!("Go"), json!(10)]],
        );
        let t = table(&o, None);
        assert!(t.contains("| c.name | n  |"), "{t}");
        assert!(t.contains("| Rust   | 2  |"), "{t}");
        assert!(t.contains("2 rows"), "{t}");
    }

    #[test]
    fn wide_characters_count_two_columns_and_cuts_keep_within_the_width() {
        assert_eq!(width("東京"), 4);
        assert_eq!(width("🦀"), 2);
        let cut = fit(&"東".repeat(30), 9);
        assert_eq!(cut, "東東東東…");
        assert!(width(&cut) <= 9);
        assert_eq!(fit("short", 9), "short");
    }

    #[test]
    fn tables_are_cut_to_the_terminal_only_when_there_is_one() {
        let long = "x".repeat(100);
        let o = outcome(&["a", "b"], vec![vec![json!(long), json!("short")]]);
        assert!(table(&o, None).contains(&long));
        let cut = table(&o, Some(40));
        assert!(cut.lines().all(|l| width(l) <= 40), "{cut}");
        assert!(cut.contains("x… | short |"), "{cut}");
    }

    #[test]
    fn nested_values_read_as_literals() {
        let v = json!({"price": 39, "tags": ["a", "b"], "odd key": null});
        assert_eq!(
            cell(&v),
            r#"{price: 39, tags: ["a", "b"], "odd key": null}"#
        );
        assert_eq!(one_line("a\nb\u{1b}"), "a↵b\\u{1b}");
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let o = outcome(&["a", "b"], vec![vec![json!("x,\"y\""), json!({"k": 1})]]);
        assert_eq!(csv(&o), "a,b\r\n\"x,\"\"y\"\"\",\"{\"\"k\"\":1}\"\r\n");
    }
}
