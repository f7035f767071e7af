//! Printing results: a text table for people, one JSON object per statement
//! for programs (the same object the TCP protocol sends).

use serde_json::{Value as Json, json};

use crate::error::Error;
use crate::query::outcome::Outcome;

/// `{"columns":[…],"rows":[…],"stats":{…}}`
pub fn json_result(outcome: &Outcome) -> Json {
    json!({"columns": outcome.columns, "rows": outcome.rows, "stats": outcome.stats})
}

/// `{"error":{"code":…,"message":…,"line":…,"col":…}}`
pub fn json_error(error: &Error) -> Json {
    let mut body = json!({"code": error.code.as_str(), "message": error.message});
    if let (Some(p), Json::Object(map)) = (error.position, &mut body) {
        map.insert("line".into(), json!(p.line));
        map.insert("col".into(), json!(p.col));
    }
    json!({ "error": body })
}

/// A cell as people read it: strings without quotes, the rest as JSON.
fn cell(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Columns and rows as an aligned text table, with a row count line.
pub fn table(outcome: &Outcome) -> String {
    if outcome.columns.is_empty() {
        return format!("ok ({} µs)\n", outcome.stats.micros);
    }
    let cells: Vec<Vec<String>> = outcome
        .rows
        .iter()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    let mut widths: Vec<usize> = outcome.columns.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count()).min(80);
            }
        }
    }
    let line = |values: &[String]| -> String {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| {
                let shown: String = if v.chars().count() > *w {
                    v.chars().take(w - 1).chain(['…']).collect()
                } else {
                    v.clone()
                };
                format!("{shown:<w$}", w = *w)
            })
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
    out.push_str(&line(&outcome.columns));
    out.push_str(&rule);
    for row in &cells {
        out.push_str(&line(row));
    }
    out.push_str(&rule);
    let n = outcome.rows.len();
    out.push_str(&format!(
        "{n} row{} ({} µs)\n",
        if n == 1 { "" } else { "s" },
        outcome.stats.micros
    ));
    out
}

/// An error for people: code, place, message, then `snippet` (the source
/// line with a caret, see `Position::snippet`) indented.
pub fn error_text(error: &Error, snippet: Option<&str>) -> String {
    let mut text = match error.position {
        Some(p) => format!(
            "error {} at line {}, column {}: {}\n",
            error.code, p.line, p.col, error.message
        ),
        None => format!("error {}: {}\n", error.code, error.message),
    };
    for l in snippet.unwrap_or("").lines() {
        text.push_str(&format!("  {l}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn tables_align_and_count_rows() {
        let o = Outcome {
            columns: vec!["c.name".into(), "n".into()],
            rows: vec![vec![json!("Rust"), json!(2)], vec![json!("Go"), json!(10)]],
            ..Default::default()
        };
        let t = table(&o);
        assert!(t.contains("| c.name | n  |"), "{t}");
        assert!(t.contains("| Rust   | 2  |"), "{t}");
        assert!(t.contains("2 rows"), "{t}");
    }

    #[test]
    fn errors_print_code_position_and_caret() {
        let e = Error::new(ErrorCode::ParseError, "expected )").at("MATCH (a RETURN a", 9);
        assert_eq!(
            json_error(&e),
            json!({"error": {"code": "PARSE_ERROR", "message": "expected )", "line": 1, "col": 10}})
        );
        let snippet = e.position.map(|p| p.snippet("MATCH (a RETURN a"));
        let text = error_text(&e, snippet.as_deref());
        assert!(
            text.contains("line 1, column 10") && text.ends_with("           ^\n"),
            "{text:?}"
        );
    }
}
