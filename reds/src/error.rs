//! Typed parse error carrying file, line, column and what was expected.

use crate::ast::Span;

/// A lexing or parsing failure, so authors see `file:line:col` and what the
/// parser wanted instead of a vague "syntax error".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: expected {expected}", line = span.line, col = span.col)]
pub struct ParseError {
    /// File name given by the caller.
    pub file: String,
    /// Position of the offending token.
    pub span: Span,
    /// Human description of what was expected there.
    pub expected: String,
}

impl ParseError {
    /// Builds an error; kept crate-internal-friendly so callers never format by hand.
    pub fn new(file: &str, span: Span, expected: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            span,
            expected: expected.into(),
        }
    }
}
