//! Printing results for programs: one JSON object per statement (the same
//! object the TCP protocol sends), and errors as text with their caret.
//! Tables for people are the shell's (`repl::table`).

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
