//! Tokeniser for REDscript source: identifiers, literals (with `n`/`r`/`t`/`s`
//! prefixes and numeric suffixes), punctuation, nested block comments.

use crate::ast::Span;
use crate::error::ParseError;

/// Kind of string literal, chosen by its prefix, because names, resources and
/// interpolated strings mean different things to the game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrKind {
    /// Plain `"…"` string.
    Plain,
    /// `n"…"` CName literal.
    Name,
    /// `r"…"` resource path literal.
    Resource,
    /// `t"…"` TweakDB id literal.
    TweakDbId,
    /// `s"…"` interpolated string (may contain `\(expr)`).
    Interpolated,
}

/// One lexical token kind, kept small so the parser can match on it cheaply.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Identifier or keyword (keywords are recognised by the parser).
    Ident(String),
    /// Integer literal text including any suffix (`5`, `5u`, `0x1F`, `5l`).
    Int(String),
    /// Float literal text including any suffix (`1.0`, `1.0f`, `2.5d`).
    Float(String),
    /// String literal with its decoded value; `interpolated` is true when an
    /// `s"…"` string contains `\(`.
    Str {
        /// Prefix kind.
        kind: StrKind,
        /// Decoded text.
        value: String,
        /// Whether the string contains an interpolation `\(…)`.
        interpolated: bool,
    },
    /// Punctuation or operator.
    Punct(&'static str),
    /// End of input.
    Eof,
}

/// A token with the position where it starts, so every error can point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What was read.
    pub tok: Tok,
    /// Where it starts.
    pub span: Span,
}

const PUNCTS: &[&str] = &[
    "->", "==", "!=", "<=", ">=", "&&", "||", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "+",
    "-", "*", "/", "%", "=", "<", ">", "!", "&", "|", "^", "~", "?", ":", ";", ",", ".", "(", ")",
    "{", "}", "[", "]", "@",
];

struct Lexer<'a> {
    file: &'a str,
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: u32,
    col: u32,
}

impl<'a> Lexer<'a> {
    fn span(&self) -> Span {
        Span {
            line: self.line,
            col: self.col,
        }
    }

    fn err(&self, span: Span, expected: impl Into<String>) -> ParseError {
        ParseError::new(self.file, span, expected)
    }

    fn peek(&self, off: usize) -> Option<u8> {
        self.src.get(self.pos + off).copied()
    }

    /// Advances one full UTF-8 character.
    fn bump(&mut self) -> Option<char> {
        let c = self.text.get(self.pos..)?.chars().next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_ascii_whitespace() => {
                    self.bump();
                }
                (Some(b'/'), Some(b'/')) => {
                    while let Some(c) = self.peek(0) {
                        if c == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    let start = self.span();
                    self.bump();
                    self.bump();
                    let mut depth: usize = 1;
                    while depth > 0 {
                        match (self.peek(0), self.peek(1)) {
                            (None, _) => {
                                return Err(self.err(start, "`*/` to close block comment"));
                            }
                            (Some(b'/'), Some(b'*')) => {
                                self.bump();
                                self.bump();
                                depth += 1;
                            }
                            (Some(b'*'), Some(b'/')) => {
                                self.bump();
                                self.bump();
                                depth -= 1;
                            }
                            _ => {
                                self.bump();
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn string(&mut self, kind: StrKind, start: Span) -> Result<Tok, ParseError> {
        // Opening quote.
        self.bump();
        let mut value = String::new();
        let mut interpolated = false;
        loop {
            let here = self.span();
            match self.bump() {
                None => return Err(self.err(start, "closing `\"` of string literal")),
                Some('"') => break,
                Some('\\') => match self.bump() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some('0') => value.push('\0'),
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('\'') => value.push('\''),
                    Some('(') if kind == StrKind::Interpolated => {
                        interpolated = true;
                        value.push_str("\\(");
                    }
                    Some('u') => {
                        if self.bump() != Some('{') {
                            return Err(self.err(here, "`{` after `\\u` in string escape"));
                        }
                        let mut code: u32 = 0;
                        let mut digits = 0;
                        loop {
                            match self.bump() {
                                Some('}') if digits > 0 => break,
                                Some(c) if c.is_ascii_hexdigit() && digits < 6 => {
                                    code = code * 16 + c.to_digit(16).unwrap_or(0);
                                    digits += 1;
                                }
                                _ => {
                                    return Err(self.err(here, "hex digits and `}` in `\\u{…}`"));
                                }
                            }
                        }
                        match char::from_u32(code) {
                            Some(c) => value.push(c),
                            None => return Err(self.err(here, "a valid unicode scalar value")),
                        }
                    }
                    _ => {
                        return Err(self.err(
                            here,
                            "a valid escape (\\n \\t \\r \\0 \\\\ \\\" \\' \\u{…})",
                        ));
                    }
                },
                Some(c) => value.push(c),
            }
        }
        Ok(Tok::Str {
            kind,
            value,
            interpolated,
        })
    }

    fn number(&mut self, start: Span) -> Result<Tok, ParseError> {
        let begin = self.pos;
        let mut float = false;
        if self.peek(0) == Some(b'0') && matches!(self.peek(1), Some(b'x' | b'X')) {
            self.bump();
            self.bump();
            let digits_start = self.pos;
            while self.peek(0).is_some_and(|c| c.is_ascii_hexdigit()) {
                self.bump();
            }
            if self.pos == digits_start {
                return Err(self.err(start, "hex digits after `0x`"));
            }
        } else {
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
            if self.peek(0) == Some(b'.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                self.bump();
                while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
            if matches!(self.peek(0), Some(b'e' | b'E'))
                && (self.peek(1).is_some_and(|c| c.is_ascii_digit())
                    || (matches!(self.peek(1), Some(b'+' | b'-'))
                        && self.peek(2).is_some_and(|c| c.is_ascii_digit())))
            {
                float = true;
                self.bump();
                self.bump();
                while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
        }
        let suffix_start = self.pos;
        while self
            .peek(0)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.bump();
        }
        let suffix = self.text.get(suffix_start..self.pos).unwrap_or("");
        match suffix {
            "" => {}
            "f" | "d" => float = true,
            "u" | "l" | "ul" if !float => {}
            _ => {
                return Err(self.err(start, "a numeric suffix `f`, `d`, `u`, `l` or `ul`"));
            }
        }
        let text = self.text.get(begin..self.pos).unwrap_or("").to_string();
        Ok(if float {
            Tok::Float(text)
        } else {
            Tok::Int(text)
        })
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let span = self.span();
        let Some(c) = self.peek(0) else {
            return Ok(Token {
                tok: Tok::Eof,
                span,
            });
        };
        let tok = if c == b'"' {
            self.string(StrKind::Plain, span)?
        } else if matches!(c, b'n' | b'r' | b't' | b's') && self.peek(1) == Some(b'"') {
            let kind = match c {
                b'n' => StrKind::Name,
                b'r' => StrKind::Resource,
                b't' => StrKind::TweakDbId,
                _ => StrKind::Interpolated,
            };
            self.bump();
            self.string(kind, span)?
        } else if c.is_ascii_digit() {
            self.number(span)?
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let begin = self.pos;
            while self
                .peek(0)
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
            {
                self.bump();
            }
            Tok::Ident(self.text.get(begin..self.pos).unwrap_or("").to_string())
        } else {
            let rest = self.src.get(self.pos..).unwrap_or(&[]);
            match PUNCTS.iter().find(|p| rest.starts_with(p.as_bytes())) {
                Some(p) => {
                    for _ in 0..p.len() {
                        self.bump();
                    }
                    Tok::Punct(p)
                }
                None => {
                    let shown = self.text.get(self.pos..).and_then(|s| s.chars().next());
                    return Err(self.err(
                        span,
                        format!(
                            "a token, found unexpected character {:?}",
                            shown.unwrap_or('?')
                        ),
                    ));
                }
            }
        };
        Ok(Token { tok, span })
    }
}

/// Splits `source` into tokens ending with [`Tok::Eof`], so the parser never
/// has to look at raw bytes; fails on the first malformed token.
pub fn tokenize(file: &str, source: &str) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer {
        file,
        src: source.as_bytes(),
        text: source,
        pos: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    loop {
        let t = lx.next()?;
        let eof = t.tok == Tok::Eof;
        out.push(t);
        if eof {
            return Ok(out);
        }
    }
}
