//! The one error type that crosses module boundaries and the wire.
//!
//! Every error has a stable [`ErrorCode`]; tests and clients match on codes,
//! never on message text.

use std::fmt;

/// Stable error codes (DESIGN.md "Results and errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ParseError,
    UnknownType,
    NotAuthenticated,
    Forbidden,
    LimitReached,
    InvalidTransition,
    NotFound,
    Conflict,
    Timeout,
    /// A running query stopped by the client's `cancel`.
    Cancelled,
    TooLarge,
    InvalidArgument,
    /// Stored bytes that do not decode: never expected, always reported.
    Corruption,
    /// The storage engine or the file system failed.
    Io,
    /// A commit's write failed in a way that leaves unknown whether it
    /// happened (a distributed store lost its connection mid-commit): read
    /// back before retrying.
    OutcomeUnknown,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::ParseError,
        ErrorCode::UnknownType,
        ErrorCode::NotAuthenticated,
        ErrorCode::Forbidden,
        ErrorCode::LimitReached,
        ErrorCode::InvalidTransition,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::Timeout,
        ErrorCode::Cancelled,
        ErrorCode::TooLarge,
        ErrorCode::InvalidArgument,
        ErrorCode::Corruption,
        ErrorCode::Io,
        ErrorCode::OutcomeUnknown,
    ];

    /// The code a string names (as a server sends it).
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::UnknownType => "UNKNOWN_TYPE",
            ErrorCode::NotAuthenticated => "NOT_AUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::LimitReached => "LIMIT_REACHED",
            ErrorCode::InvalidTransition => "INVALID_TRANSITION",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::TooLarge => "TOO_LARGE",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::Corruption => "CORRUPTION",
            ErrorCode::Io => "IO_ERROR",
            ErrorCode::OutcomeUnknown => "OUTCOME_UNKNOWN",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// Where in the statement text, for errors that point at it.
    pub position: Option<Position>,
}

/// A place in source text: 1-based line and column (in characters), and the
/// byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub col: u32,
    pub offset: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to its length).
    pub fn of(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = text[line_start..offset].chars().count() as u32 + 1;
        Position { line, col, offset }
    }

    /// The line of `text` holding this position and a caret under it.
    pub fn snippet(&self, text: &str) -> String {
        let line = text
            .lines()
            .nth(self.line.saturating_sub(1) as usize)
            .unwrap_or("");
        let caret = " ".repeat(self.col.saturating_sub(1) as usize);
        format!("{line}\n{caret}^")
    }
}

/// Byte offsets into the statement's source text, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            position: None,
        }
    }

    /// Marks the byte offset in the statement this error is about; the
    /// runner turns it into a line and column (see `Error::at`).
    pub fn at_span(mut self, span: Span) -> Self {
        if self.position.is_none() {
            self.position = Some(Position {
                line: 0,
                col: 0,
                offset: span.start,
            });
        }
        self
    }

    /// The same error, pointing at byte `offset` of `text`.
    pub fn at(mut self, text: &str, offset: usize) -> Self {
        self.position = Some(Position::of(text, offset));
        self
    }
    pub fn code(&self) -> ErrorCode {
        self.code
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooLarge, message)
    }
    pub fn corruption(family: &str, message: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::Corruption,
            format!("corrupt {family} record: {message}"),
        )
    }
    pub fn io(message: impl fmt::Display) -> Self {
        Self::new(ErrorCode::Io, message.to_string())
    }
    pub fn outcome_unknown(message: impl fmt::Display) -> Self {
        Self::new(ErrorCode::OutcomeUnknown, message.to_string())
    }
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::io(format!("storage: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "MATCH (a)\nRETURN é, x";
        let p = Position::of(text, text.find('x').unwrap());
        assert_eq!((p.line, p.col), (2, 11));
        assert_eq!(p.snippet(text), "RETURN é, x\n          ^");
        assert_eq!(Position::of(text, 999).line, 2);
    }
}
