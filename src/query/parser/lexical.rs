//! Where strings and comments begin and end, byte by byte: `"…"` with `\`
//! escapes, `--` to the end of the line. The one scanner behind the
//! parser's nesting limit, the script reader's statement boundaries and the
//! shell's "is this statement complete"; the token lexer follows the same
//! rules.

/// The lexical state before a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lexical {
    /// Outside strings and comments.
    #[default]
    Code,
    /// Just after a `-` in code: a second one starts a comment.
    Dash,
    Comment,
    Str,
    /// Just after a `\` in a string.
    Escape,
}

impl Lexical {
    /// The state after byte `b`.
    pub fn next(self, b: u8) -> Lexical {
        use Lexical::*;
        match (self, b) {
            (Dash, b'-') => Comment,
            (Code, b'-') => Dash,
            (Code | Dash, b'"') => Str,
            (Code | Dash, _) => Code,
            (Comment, b'\n') => Code,
            (Comment, _) => Comment,
            (Str, b'\\') => Escape,
            (Str, b'"') => Code,
            (Str | Escape, _) => Str,
        }
    }

    /// Whether a byte read in this state is code: not inside a string (its
    /// opening quote is code) or a comment. The two dashes that open a
    /// comment count as code; no caller acts on a `-`.
    pub fn is_code(self) -> bool {
        matches!(self, Lexical::Code | Lexical::Dash)
    }

    /// Whether the text so far ends inside a string.
    pub fn in_string(self) -> bool {
        matches!(self, Lexical::Str | Lexical::Escape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each byte's class: c(ode), s(tring), m (comment).
    fn classes(text: &str) -> String {
        let mut state = Lexical::default();
        let mut out = String::new();
        for b in text.bytes() {
            out.push(if state.is_code() {
                'c'
            } else if state.in_string() {
                's'
            } else {
                'm'
            });
            state = state.next(b);
        }
        out
    }

    #[test]
    fn strings_escapes_and_comments() {
        assert_eq!(classes(r#"a"b\"c"d"#), "ccsssssc");
        assert_eq!(classes("a--b\nc"), "cccmmc");
        assert_eq!(classes("a-b"), "ccc");
        assert_eq!(classes(r#""--"x"#), "csssc");
        assert_eq!(classes("--\"\nx"), "ccmmc");
    }
}
