//! Tokeniser for REDscript source: identifiers, decimal numbers with the
//! `u`/`l`/`ul`/`d` suffixes, string literals with `n`/`r`/`t`/`s` prefixes
//! (interpolations are tokenised recursively), punctuation, nesting block
//! comments. Forms neither released compiler lexes (hex, exponents, `f`
//! suffixes, `%=`, `^=`, shifts, `\0`) are errors that say so.

use crate::ast::Span;
use crate::error::ParseError;
use shard_protocol::limits::MAX_SCRIPT_DEPTH;

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
    /// Identifier or keyword (keywords are recognised by the parser, since
    /// REDscript lets most of them be names).
    Ident(String),
    /// Integer literal text including any suffix (`5`, `5u`, `5l`, `5ul`).
    Int(String),
    /// Float literal text including any suffix (`1.0`, `1.`, `.5`, `2.5d`, `5d`).
    Float(String),
    /// String literal with its decoded value.
    Str {
        /// Prefix kind.
        kind: StrKind,
        /// Decoded text; interpolations appear as `\(…)`.
        value: String,
        /// Tokens of each `\(…)` interpolation, in order (`s"…"` only).
        parts: Vec<Vec<Token>>,
    },
    /// Punctuation or operator.
    Punct(&'static str),
    /// End of input (also ends each interpolation's token list).
    Eof,
}

/// A token with the position where it starts, so every error can point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What was read.
    pub tok: Tok,
    /// Where it starts.
    pub span: Span,
    /// Just past its last character, so the parser can tell where 0.5.x
    /// (which allows no space in a few places) would refuse a space.
    pub end: Span,
}

/// Operators and punctuation of REDscript, longest first.
const PUNCTS: &[&str] = &[
    "->", "==", "!=", "<=", ">=", "&&", "||", "+=", "-=", "*=", "/=", "&=", "|=", "+", "-", "*",
    "/", "%", "=", "<", ">", "!", "&", "|", "^", "~", "?", ":", ";", ",", ".", "(", ")", "{", "}",
    "[", "]", "@",
];

/// Operators programmers expect from C-like languages that REDscript lacks,
/// refused with a message naming them.
const MISSING_OPERATORS: &[(&str, &str)] = &[
    ("%=", "`%=` is not a REDscript operator; write `x = x % y`"),
    ("^=", "`^=` is not a REDscript operator; write `x = x ^ y`"),
    ("<<", "REDscript has no shift operator `<<`"),
];

struct Lexer<'a> {
    file: &'a str,
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: u32,
    col: u32,
    /// Nesting of `s"…\(…)…"` interpolations being lexed.
    depth: usize,
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
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

    /// Reads `\u{h…}` after the backslash and `u`.
    fn unicode_escape(&mut self, here: Span) -> Result<char, ParseError> {
        if self.bump() != Some('{') {
            return Err(self.err(here, "`{` after `\\u` in string escape"));
        }
        let mut code: u32 = 0;
        let mut digits = 0;
        loop {
            match self.bump() {
                Some('}') if digits > 0 => break,
                Some(c) if digits < 6 => match c.to_digit(16) {
                    Some(d) => {
                        code = code * 16 + d;
                        digits += 1;
                    }
                    None => return Err(self.err(here, "1 to 6 hex digits and `}` in `\\u{…}`")),
                },
                _ => return Err(self.err(here, "1 to 6 hex digits and `}` in `\\u{…}`")),
            }
        }
        char::from_u32(code).ok_or_else(|| self.err(here, "a valid unicode scalar value"))
    }

    fn string(&mut self, kind: StrKind, start: Span) -> Result<Tok, ParseError> {
        // Opening quote.
        self.bump();
        let mut value = String::new();
        let mut parts = Vec::new();
        loop {
            let here = self.span();
            match self.bump() {
                None => return Err(self.err(start, "closing `\"` of string literal")),
                Some('"') => break,
                Some('\\') => match self.bump() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('\'') => value.push('\''),
                    Some('u') => value.push(self.unicode_escape(here)?),
                    Some('(') if kind == StrKind::Interpolated => {
                        value.push_str("\\(…)");
                        parts.push(self.interpolation(here)?);
                    }
                    _ => {
                        return Err(self.err(
                            here,
                            "a valid escape (\\n \\t \\r \\\\ \\\" \\' \\u{…}, and \\(…) in s\"…\")",
                        ));
                    }
                },
                Some(c) => value.push(c),
            }
        }
        Ok(Tok::Str { kind, value, parts })
    }

    /// Tokens of one `\(…)` up to its matching `)`, ending with [`Tok::Eof`].
    fn interpolation(&mut self, start: Span) -> Result<Vec<Token>, ParseError> {
        if self.depth >= MAX_SCRIPT_DEPTH {
            return Err(self.err(
                start,
                format!("interpolations nested at most {MAX_SCRIPT_DEPTH} deep"),
            ));
        }
        self.depth += 1;
        let mut toks = Vec::new();
        let mut parens: usize = 0;
        let mut prev: Option<Token> = None;
        loop {
            let t = self.next(prev.as_ref())?;
            match t.tok {
                Tok::Eof => return Err(self.err(start, "`)` closing the interpolation `\\(`")),
                Tok::Punct("(") => parens += 1,
                Tok::Punct(")") if parens == 0 => {
                    toks.push(Token {
                        tok: Tok::Eof,
                        span: t.span,
                        end: t.span,
                    });
                    break;
                }
                Tok::Punct(")") => parens -= 1,
                _ => {}
            }
            prev = Some(t.clone());
            toks.push(t);
        }
        self.depth -= 1;
        Ok(toks)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        self.pos - start
    }

    /// Decimal number: `5`, `5.`, `5.25`, `.5`, suffixes `u l ul d`.
    fn number(&mut self, start: Span, negated: bool) -> Result<Tok, ParseError> {
        let begin = self.pos;
        let mut float = false;
        if self.peek(0) == Some(b'.') {
            float = true;
            self.bump();
            self.digits();
        } else {
            self.digits();
            if self.peek(0) == Some(b'.') {
                float = true;
                self.bump();
                self.digits();
            }
        }
        let digits_end = self.pos;
        let suffix_start = self.pos;
        while self.peek(0).is_some_and(is_word_byte) {
            self.bump();
        }
        let digits = self.text.get(begin..digits_end).unwrap_or("");
        let suffix = self.text.get(suffix_start..self.pos).unwrap_or("");
        let bad = |why: &str| Err(self.err(start, why.to_string()));
        if self.peek(0) == Some(b'.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            return bad("one decimal point in a number");
        }
        let ok = match suffix {
            "" if float => digits.parse::<f32>().is_ok(),
            "" => fits(digits, i32::MAX as u64, negated),
            "d" => digits.parse::<f64>().is_ok(),
            "u" if !float => digits.parse::<u32>().is_ok(),
            "l" if !float => fits(digits, i64::MAX as u64, negated),
            "ul" if !float => digits.parse::<u64>().is_ok(),
            s if digits == "0" && s.starts_with(['x', 'X']) => {
                return bad("a decimal number (REDscript has no hex literals like `0x1F`)");
            }
            s if s.starts_with(['e', 'E']) => {
                return bad("a number without exponent (REDscript has no `1e3` floats)");
            }
            "f" | "F" => {
                return bad("a float without `f` suffix (write `1.5`, or `1.5d` for Double)");
            }
            _ => return bad("a numeric suffix `u`, `l`, `ul` (integers) or `d` (Double)"),
        };
        if !ok {
            return bad("a number within the range of its type");
        }
        let text = self.text.get(begin..self.pos).unwrap_or("").to_string();
        Ok(if float || suffix == "d" {
            Tok::Float(text)
        } else {
            Tok::Int(text)
        })
    }

    fn next(&mut self, prev: Option<&Token>) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let span = self.span();
        let Some(c) = self.peek(0) else {
            return Ok(Token {
                tok: Tok::Eof,
                span,
                end: span,
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
        } else if c.is_ascii_digit()
            || (c == b'.' && self.peek(1).is_some_and(|d| d.is_ascii_digit()))
        {
            // `.5` is a (0.5.x) float: a member name never starts with a digit.
            // 0.5.x lexes `-2147483648` (no space) as one literal.
            let negated = prev.is_some_and(|p| {
                p.tok == Tok::Punct("-") && p.span.line == span.line && p.span.col + 1 == span.col
            });
            self.number(span, negated)?
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let begin = self.pos;
            while self.peek(0).is_some_and(is_word_byte) {
                self.bump();
            }
            Tok::Ident(self.text.get(begin..self.pos).unwrap_or("").to_string())
        } else {
            let rest = self.src.get(self.pos..).unwrap_or(&[]);
            if let Some((_, why)) = MISSING_OPERATORS
                .iter()
                .find(|(op, _)| rest.starts_with(op.as_bytes()))
            {
                return Err(self.err(span, format!("an operator, found {why}")));
            }
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
        Ok(Token {
            tok,
            span,
            end: self.span(),
        })
    }
}

/// Whether decimal `digits` fit below `max` (one more when negated, since
/// 0.5.x lexes `-2147483648` as one literal).
fn fits(digits: &str, max: u64, negated: bool) -> bool {
    digits
        .parse::<u64>()
        .is_ok_and(|v| v <= max || (negated && v == max + 1))
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
        depth: 0,
    };
    let mut out: Vec<Token> = Vec::new();
    loop {
        let t = lx.next(out.last())?;
        let eof = t.tok == Tok::Eof;
        out.push(t);
        if eof {
            return Ok(out);
        }
    }
}
