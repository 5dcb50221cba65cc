//! Recursive-descent parser for REDscript producing [`crate::ast::Module`].
//!
//! The grammar is the union of the two released compilers' grammars (the
//! 0.5.x PEG grammar and the 1.0 `redscript-syntax` grammar): a script either
//! compiler accepts parses, anything neither accepts is an error, and every
//! construct only one of them accepts is recorded in
//! [`Module::dialect`](crate::ast::Module::dialect).
//!
//! Real nesting (blocks, parentheses, arguments, unary operators, ternaries,
//! right-associative assignments, generic arguments, interpolations) is
//! bounded by [`MAX_SCRIPT_DEPTH`], so hostile input yields an error, never a
//! stack overflow. Flat chains (`a + b + …`, `else if` arms, `a.b().c[0]…`, `as`
//! casts) are parsed by loops and add no depth, so they may be any length.

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{Tok, Token, tokenize};
use shard_protocol::limits::MAX_SCRIPT_DEPTH;

/// Parses on the current thread's stack; callers use [`crate::parse`], which
/// runs this on a thread with a stack large enough for [`MAX_SCRIPT_DEPTH`].
pub(crate) fn parse_here(file: &str, source: &str) -> Result<Module, ParseError> {
    let toks = tokenize(file, source)?;
    let mut p = Parser::new(file, toks, 0);
    let m = p.module()?;
    one_dialect(file, &m.dialect)?;
    Ok(m)
}

/// Refuses a file that mixes 0.5.x-only and 1.0-only constructs: each
/// compiler rejects it, whatever the union grammar says.
fn one_dialect(file: &str, notes: &[DialectNote]) -> Result<(), ParseError> {
    let first = |d: Dialect| notes.iter().find(|n| n.construct.only_in() == d);
    let (Some(old), Some(new)) = (first(Dialect::V05), first(Dialect::V1)) else {
        return Ok(());
    };
    let (a, b) = if old.span > new.span {
        (new, old)
    } else {
        (old, new)
    };
    Err(ParseError::new(
        file,
        b.span,
        format!(
            "syntax of one REDscript version: {} needs {}, but {} at {}:{} needs {}",
            b.construct.describe(),
            b.construct.only_in(),
            a.construct.describe(),
            a.span.line,
            a.span.col,
            a.construct.only_in()
        ),
    ))
}

struct Parser<'a> {
    file: &'a str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    notes: Vec<DialectNote>,
}

type PResult<T> = Result<T, ParseError>;

/// Position to return to when a speculative parse fails.
#[derive(Clone, Copy)]
struct Mark {
    pos: usize,
    depth: usize,
    notes: usize,
}

/// Words that are tokens, not identifiers, in 1.0 (0.5.x lets them be
/// declared names).
const V1_RESERVED: &[&str] = &["true", "false", "null", "this", "super", "case", "default"];

/// Declaration qualifiers (both compilers; 1.0 wants the visibility first).
const VISIBILITIES: &[&str] = &["public", "protected", "private"];

/// Parameter qualifiers, consumed greedily as both compilers do (so a
/// parameter cannot be named `out`, `opt` or `const`).
const PARAM_QUALIFIERS: &[&str] = &["out", "opt", "const"];

/// Annotations the 0.5.x compiler knows; 1.0 accepts any name.
const V05_ANNOTATIONS: &[&str] = &[
    "replaceMethod",
    "wrapMethod",
    "replaceGlobal",
    "addMethod",
    "addField",
    "if",
    "runtimeProperty",
];

/// Words that start a statement other than an expression statement.
const STMT_WORDS: &[&str] = &[
    "let", "if", "while", "for", "switch", "return", "break", "continue",
];

/// Binary operators with their precedence (higher binds tighter), as both
/// compilers define them.
fn binop_of(t: &Tok) -> Option<(BinOp, u8)> {
    let Tok::Punct(p) = t else {
        return None;
    };
    Some(match *p {
        "||" => (BinOp::Or, 1),
        "&&" => (BinOp::And, 2),
        "|" => (BinOp::BitOr, 3),
        "^" => (BinOp::BitXor, 4),
        "&" => (BinOp::BitAnd, 5),
        "==" => (BinOp::Eq, 6),
        "!=" => (BinOp::Ne, 6),
        "<" => (BinOp::Lt, 7),
        "<=" => (BinOp::Le, 7),
        ">" => (BinOp::Gt, 7),
        ">=" => (BinOp::Ge, 7),
        "+" => (BinOp::Add, 8),
        "-" => (BinOp::Sub, 8),
        "*" => (BinOp::Mul, 9),
        "/" => (BinOp::Div, 9),
        "%" => (BinOp::Rem, 9),
        _ => return None,
    })
}

fn return_block(e: Expr, span: Span) -> Block {
    Block {
        stmts: vec![Stmt {
            kind: StmtKind::Return(Some(e)),
            span,
        }],
        span,
    }
}

impl<'a> Parser<'a> {
    fn new(file: &'a str, toks: Vec<Token>, depth: usize) -> Self {
        Self {
            file,
            toks,
            pos: 0,
            depth,
            notes: Vec::new(),
        }
    }

    fn tok(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn tok_at(&self, off: usize) -> &Tok {
        self.toks.get(self.pos + off).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn span(&self) -> Span {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map_or(Span::default(), |t| t.span)
    }

    fn advance(&mut self) {
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            depth: self.depth,
            notes: self.notes.len(),
        }
    }

    fn reset(&mut self, m: Mark) {
        self.pos = m.pos;
        self.depth = m.depth;
        self.notes.truncate(m.notes);
    }

    fn note(&mut self, construct: Construct, span: Span) {
        self.notes.push(DialectNote { construct, span });
    }

    fn describe(&self) -> String {
        match self.tok() {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(s) | Tok::Float(s) => format!("number `{s}`"),
            Tok::Str { .. } => "a string literal".to_string(),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Eof => "end of input".to_string(),
        }
    }

    fn err<T>(&self, expected: &str) -> PResult<T> {
        Err(ParseError::new(
            self.file,
            self.span(),
            format!("{expected}, found {}", self.describe()),
        ))
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.tok(), Tok::Punct(q) if *q == p)
    }

    fn is_kw(&self, k: &str) -> bool {
        matches!(self.tok(), Tok::Ident(s) if s == k)
    }

    fn is_word(&self) -> bool {
        matches!(self.tok(), Tok::Ident(_))
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn eat_kw(&mut self, k: &str) -> bool {
        if self.is_kw(k) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> PResult<()> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            self.err(&format!("`{p}`"))
        }
    }

    /// Any word, as 0.5.x allows for names; the words 1.0 lexes as tokens
    /// are noted.
    fn name(&mut self, what: &str) -> PResult<String> {
        match self.tok() {
            Tok::Ident(s) => {
                let s = s.clone();
                if V1_RESERVED.contains(&s.as_str()) {
                    self.note(Construct::ReservedWordAsName, self.span());
                }
                self.advance();
                Ok(s)
            }
            _ => self.err(what),
        }
    }

    /// A word that is an identifier in 1.0 too (for 1.0-only constructs).
    fn v1_name(&mut self, what: &str) -> PResult<String> {
        match self.tok() {
            Tok::Ident(s) if !V1_RESERVED.contains(&s.as_str()) => {
                let s = s.clone();
                self.advance();
                Ok(s)
            }
            _ => self.err(what),
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_SCRIPT_DEPTH {
            return self.err(&format!("nesting no deeper than {MAX_SCRIPT_DEPTH} levels"));
        }
        Ok(())
    }

    fn leave(&mut self, n: usize) {
        self.depth = self.depth.saturating_sub(n);
    }

    /// After an item of a comma list: eats `,` and reports whether another
    /// item follows; a `,` right before `close` is a (1.0) trailing comma.
    fn list_sep(&mut self, close: &str) -> bool {
        if !self.is_punct(",") {
            return false;
        }
        let span = self.span();
        self.unspaced();
        self.advance();
        if self.is_punct(close) {
            self.note(Construct::TrailingComma, span);
            return false;
        }
        true
    }

    fn path(&mut self) -> PResult<Vec<String>> {
        let mut path = vec![self.name("a module name")?];
        while self.is_punct(".") && self.is_word_at(1) {
            self.unspaced();
            self.advance();
            path.push(self.name("a module name")?);
        }
        Ok(path)
    }

    fn is_word_at(&self, off: usize) -> bool {
        matches!(self.tok_at(off), Tok::Ident(_))
    }

    fn module(&mut self) -> PResult<Module> {
        let mut module = None;
        if self.is_kw("module") {
            let span = self.span();
            self.advance();
            module = Some(if self.is_word() {
                self.path()?
            } else {
                self.note(Construct::EmptyModulePath, span);
                Vec::new()
            });
        }
        let mut imports = Vec::new();
        let mut items: Vec<Decl> = Vec::new();
        while !matches!(self.tok(), Tok::Eof) {
            let annotations = self.annotations()?;
            if self.is_kw("import") {
                if !items.is_empty() {
                    self.note(Construct::ImportAfterDeclaration, self.span());
                }
                imports.push(self.import(annotations)?);
                continue;
            }
            items.push(self.decl(annotations, false)?);
        }
        Ok(Module {
            module,
            imports,
            items,
            dialect: std::mem::take(&mut self.notes),
        })
    }

    fn import(&mut self, annotations: Vec<Annotation>) -> PResult<Import> {
        let span = self.span();
        self.advance(); // `import`
        let path = if self.is_word() {
            self.path()?
        } else {
            self.note(Construct::EmptyModulePath, span);
            Vec::new()
        };
        let mut names = Vec::new();
        let mut wildcard = false;
        if self.eat_punct(".") {
            if self.eat_punct("*") {
                wildcard = true;
            } else {
                self.expect_punct("{")?;
                loop {
                    names.push(self.name("an imported name")?);
                    if !self.list_sep("}") {
                        break;
                    }
                }
                self.expect_punct("}")?;
            }
        }
        if self.is_punct(";") {
            self.note(Construct::ImportSemicolon, self.span());
            self.advance();
        }
        Ok(Import {
            path,
            names,
            wildcard,
            annotations,
            span,
        })
    }

    /// `@name(args)` annotations; both compilers require the parentheses.
    fn annotations(&mut self) -> PResult<Vec<Annotation>> {
        let mut annotations = Vec::new();
        while self.is_punct("@") {
            let span = self.span();
            self.advance();
            self.unspaced();
            let name = self.name("an annotation name")?;
            if !V05_ANNOTATIONS.contains(&name.as_str()) {
                self.note(Construct::UnknownAnnotation, span);
            }
            let args = self.args("`(` after the annotation name")?;
            annotations.push(Annotation { name, args, span });
        }
        Ok(annotations)
    }

    /// A declaration after its annotations; `member` restricts it to what a
    /// class or struct body may hold (methods and fields).
    fn decl(&mut self, annotations: Vec<Annotation>, member: bool) -> PResult<Decl> {
        let mut modifiers = Vec::new();
        while let Tok::Ident(s) = self.tok() {
            let Some(m) = Modifier::from_keyword(s) else {
                break;
            };
            // 1.0 takes one visibility, before any other qualifier.
            if VISIBILITIES.contains(&s.as_str()) && !modifiers.is_empty() {
                self.note(Construct::QualifierBeforeVisibility, self.span());
            }
            if matches!(m, Modifier::Out | Modifier::Opt) {
                self.note(Construct::LegacyQualifierPlace, self.span());
            }
            modifiers.push((m, self.span()));
            self.advance();
        }
        let span = self.span();
        let kind = if self.eat_kw("func") {
            DeclKind::Function(self.function()?)
        } else if self.eat_kw("let") {
            let name = self.name("a field name")?;
            self.expect_punct(":")?;
            let ty = self.type_ref()?;
            let init = if self.eat_punct("=") {
                Some(self.expr()?)
            } else {
                None
            };
            self.expect_punct(";")?;
            DeclKind::Field { name, ty, init }
        } else if member {
            return self.err("a method (`func`) or a field (`let`)");
        } else if self.eat_kw("class") {
            let name = self.name("a class name")?;
            let type_params = self.type_params()?;
            let extends = if self.eat_kw("extends") {
                // 0.5.x takes a plain name here.
                if self.is_punct("[") || (self.is_word() && self.tok_at(1) == &Tok::Punct("<")) {
                    self.note(Construct::GenericTypeInExtendsOrNew, self.span());
                }
                Some(self.type_ref()?)
            } else {
                None
            };
            let members = self.members()?;
            self.decl_semicolon();
            DeclKind::Class {
                name,
                type_params,
                extends,
                members,
            }
        } else if self.eat_kw("struct") {
            let name = self.name("a struct name")?;
            let type_params = self.type_params()?;
            let members = self.members()?;
            self.decl_semicolon();
            DeclKind::Struct {
                name,
                type_params,
                members,
            }
        } else if self.eat_kw("enum") {
            let name = self.name("an enum name")?;
            let variants = self.enum_body()?;
            self.decl_semicolon();
            DeclKind::Enum { name, variants }
        } else {
            return self
                .err("a declaration (`class`, `struct`, `enum`, `func`, `let` or `import`)");
        };
        Ok(Decl {
            annotations,
            modifiers,
            kind,
            span,
        })
    }

    fn decl_semicolon(&mut self) {
        if self.is_punct(";") {
            self.note(Construct::DeclarationSemicolon, self.span());
            self.advance();
        }
    }

    fn enum_body(&mut self) -> PResult<Vec<(String, Option<Expr>, Span)>> {
        self.expect_punct("{")?;
        let mut variants = Vec::new();
        while !self.is_punct("}") {
            let vspan = self.span();
            let v = self.name("an enum variant or `}`")?;
            let value = if self.eat_punct("=") {
                let span = self.span();
                let neg = self.eat_punct("-");
                if neg {
                    self.note(Construct::NegativeEnumValue, span);
                }
                let text = match self.tok() {
                    Tok::Int(t) if !t.contains('u') => t.clone(),
                    _ => return self.err("an integer enum value"),
                };
                // 0.5.x lexes `-1` as one literal: no space after `-`.
                let here = self.span();
                if neg && (here.line != span.line || here.col != span.col + 1) {
                    return self.err("a digit right after `-` in an enum value");
                }
                if text.ends_with('l') {
                    self.note(Construct::LongEnumValue, self.span());
                }
                self.number_notes(&text);
                self.advance();
                let lit = Expr {
                    kind: ExprKind::Int(text),
                    span,
                };
                Some(if neg {
                    Expr {
                        kind: ExprKind::Unary {
                            op: UnOp::Neg,
                            expr: Box::new(lit),
                        },
                        span,
                    }
                } else {
                    lit
                })
            } else {
                self.note(Construct::EnumVariantWithoutValue, vspan);
                None
            };
            variants.push((v, value, vspan));
            // 0.5.x allows a space before a trailing `,` only.
            if self.is_punct(",") && self.tok_at(1) == &Tok::Punct("}") {
                self.advance();
                break;
            }
            if !self.eat_comma() {
                break;
            }
        }
        self.expect_punct("}")?;
        Ok(variants)
    }

    fn members(&mut self) -> PResult<Vec<Decl>> {
        self.expect_punct("{")?;
        self.enter()?;
        let mut members = Vec::new();
        while !self.is_punct("}") {
            if matches!(self.tok(), Tok::Eof) {
                return self.err("`}` closing the declaration body");
            }
            let annotations = self.annotations()?;
            members.push(self.decl(annotations, true)?);
        }
        self.advance();
        self.leave(1);
        Ok(members)
    }

    /// `<T, +U, -V extends Base>` after a declared name (1.0).
    fn type_params(&mut self) -> PResult<Vec<TypeParam>> {
        if !self.is_punct("<") {
            return Ok(Vec::new());
        }
        self.note(Construct::GenericDeclaration, self.span());
        self.advance();
        let mut params = Vec::new();
        while !self.is_punct(">") {
            let variance = if self.eat_punct("+") {
                Some('+')
            } else if self.eat_punct("-") {
                Some('-')
            } else {
                None
            };
            let span = self.span();
            let name = self.v1_name("a type parameter name")?;
            let extends = if self.eat_kw("extends") {
                Some(self.type_ref()?)
            } else {
                None
            };
            params.push(TypeParam {
                variance,
                name,
                extends,
                span,
            });
            if !self.eat_comma() {
                break;
            }
        }
        self.expect_punct(">")?;
        Ok(params)
    }

    fn function(&mut self) -> PResult<Function> {
        let name = self.name("a function name")?;
        let type_params = self.type_params()?;
        self.expect_punct("(")?;
        let mut params = Vec::new();
        while !self.is_punct(")") {
            let mut qualifiers = Vec::new();
            while let Tok::Ident(s) = self.tok() {
                if PARAM_QUALIFIERS.contains(&s.as_str()) {
                    qualifiers.push(s.clone());
                    self.advance();
                } else if Modifier::from_keyword(s).is_some() {
                    // 0.5.x reads every declaration qualifier here too; 1.0
                    // reads the word as the parameter's name.
                    let s = s.clone();
                    if self.is_word_at(1) {
                        self.note(Construct::LegacyQualifierPlace, self.span());
                        qualifiers.push(s);
                        self.advance();
                    } else {
                        self.note(Construct::QualifierWordAsName, self.span());
                        break;
                    }
                } else {
                    break;
                }
            }
            let span = self.span();
            let name = self.name("a parameter name")?;
            self.expect_punct(":")?;
            let ty = self.type_ref()?;
            params.push(Param {
                qualifiers,
                name,
                ty,
                span,
            });
            if !self.list_sep(")") {
                break;
            }
        }
        self.expect_punct(")")?;
        let ret = if self.eat_punct("->") {
            Some(self.type_ref()?)
        } else {
            None
        };
        let body = if self.is_punct("{") {
            Some(self.block()?)
        } else if self.is_punct("=") {
            let span = self.span();
            self.advance();
            Some(return_block(self.expr()?, span))
        } else {
            None
        };
        // Both compilers allow a `;` after any function declaration; 0.5.x
        // only right after a `}` body.
        if self.is_punct(";") {
            if self.toks.get(self.pos.wrapping_sub(1)).map(|t| &t.tok) == Some(&Tok::Punct("}")) {
                self.unspaced();
            }
            self.advance();
        }
        Ok(Function {
            name,
            type_params,
            params,
            ret,
            body,
        })
    }

    /// A type: `Name`, `Name<T, …>`, `[T]` or `[T; N]`.
    fn type_ref(&mut self) -> PResult<TypeRef> {
        self.enter()?;
        let span = self.span();
        let t = if self.eat_punct("[") {
            let inner = self.type_ref()?;
            let static_len = if self.eat_punct(";") {
                let n = match self.tok() {
                    Tok::Int(t) => t.parse::<u32>().ok(),
                    _ => None,
                };
                let Some(n) = n else {
                    return self.err("an array length");
                };
                self.advance();
                self.note(Construct::StaticArrayType, span);
                Some(n)
            } else {
                self.note(Construct::ArrayType, span);
                None
            };
            self.expect_punct("]")?;
            TypeRef {
                name: "array".to_string(),
                args: vec![inner],
                static_len,
                span,
            }
        } else {
            let name = self.name("a type name")?;
            self.spaced_angle();
            let mut args = Vec::new();
            // Both compilers accept an empty `<>`.
            if self.eat_punct("<") && !self.eat_punct(">") {
                loop {
                    args.push(self.type_ref()?);
                    if !self.eat_comma() {
                        break;
                    }
                }
                self.expect_punct(">")?;
            }
            TypeRef {
                name,
                args,
                static_len: None,
                span,
            }
        };
        self.leave(1);
        Ok(t)
    }

    /// 0.5.x reads a type's `<` only right after its name (`array<T>`,
    /// not `array <T>`).
    fn spaced_angle(&mut self) {
        if self.is_punct("<") && !self.touches_prev() {
            self.note(Construct::SpacedTypeArguments, self.span());
        }
    }

    /// Whether the current token starts right where the previous one ends
    /// (0.5.x is scannerless and allows no space in a few places).
    fn touches_prev(&self) -> bool {
        let prev = self.pos.checked_sub(1).and_then(|i| self.toks.get(i));
        prev.is_some_and(|p| p.end == self.span())
    }

    /// Notes a space before the current token where 0.5.x allows none
    /// (before `,` in lists, after `@`, before `.` in module paths).
    fn unspaced(&mut self) {
        if !self.touches_prev() {
            self.note(Construct::SpacedPunctuation, self.span());
        }
    }

    /// A `,` between two items of a non-trailing list (type arguments,
    /// type parameters, enum variants).
    fn eat_comma(&mut self) -> bool {
        if self.is_punct(",") {
            self.unspaced();
            self.advance();
            true
        } else {
            false
        }
    }

    fn block(&mut self) -> PResult<Block> {
        let span = self.span();
        self.expect_punct("{")?;
        self.enter()?;
        let mut stmts = Vec::new();
        while !self.is_punct("}") {
            if matches!(self.tok(), Tok::Eof) {
                return self.err("`}` closing the block");
            }
            stmts.push(self.stmt()?);
        }
        self.advance();
        self.leave(1);
        Ok(Block { stmts, span })
    }

    /// A statement. A statement word (`if`, `let`, …) that does not start
    /// its statement is retried as a name in an expression statement, as
    /// both compilers do (`switch.x = 1;` is an assignment).
    fn stmt(&mut self) -> PResult<Stmt> {
        let span = self.span();
        let keyword = matches!(self.tok(), Tok::Ident(s) if STMT_WORDS.contains(&s.as_str()));
        if !keyword {
            return Ok(Stmt {
                kind: self.expr_stmt()?,
                span,
            });
        }
        let start = self.mark();
        let first = match self.keyword_stmt() {
            Ok(kind) => return Ok(Stmt { kind, span }),
            Err(e) => e,
        };
        // Only a failure before any block is retried: statements nest only
        // through blocks, so this keeps retries from compounding (no
        // exponential re-parsing of nested closures).
        let reached = self.toks.get(start.pos..self.pos).unwrap_or_default();
        if reached.iter().any(|t| t.tok == Tok::Punct("{")) {
            return Err(first);
        }
        self.reset(start);
        // 1.0 commits to these statements (`let` once a name follows).
        let word = match self.tok() {
            Tok::Ident(w) if w == "let" => self.is_word_at(1),
            Tok::Ident(w) => matches!(w.as_str(), "return" | "break" | "continue"),
            _ => false,
        };
        match self.expr_stmt() {
            Ok(kind) => {
                // 1.0 always reads these words as statements.
                if word {
                    self.note(Construct::StatementWordAsName, span);
                }
                Ok(Stmt { kind, span })
            }
            Err(second) => {
                let key = |e: &ParseError| (e.span.line, e.span.col);
                Err(if key(&second) > key(&first) {
                    second
                } else {
                    first
                })
            }
        }
    }

    fn expr_stmt(&mut self) -> PResult<StmtKind> {
        let e = self.expr()?;
        self.expect_punct(";")?;
        Ok(StmtKind::Expr(e))
    }

    /// Optional `;` after a statement ending in a block (both compilers).
    fn block_stmt_end(&mut self) {
        self.eat_punct(";");
    }

    fn keyword_stmt(&mut self) -> PResult<StmtKind> {
        let kw = match self.tok() {
            Tok::Ident(s) => s.clone(),
            _ => return self.err("a statement"),
        };
        let kw_span = self.span();
        self.advance();
        Ok(match kw.as_str() {
            "let" => {
                let name = self.name("a variable name")?;
                let ty = if self.eat_punct(":") {
                    Some(self.type_ref()?)
                } else {
                    None
                };
                let init = if self.eat_punct("=") {
                    Some(self.expr()?)
                } else {
                    None
                };
                self.expect_punct(";")?;
                StmtKind::Let { name, ty, init }
            }
            "if" => {
                let mut branches = vec![(self.expr()?, self.block()?)];
                let mut otherwise = None;
                while self.eat_kw("else") {
                    if self.eat_kw("if") {
                        branches.push((self.expr()?, self.block()?));
                    } else {
                        otherwise = Some(self.block()?);
                        break;
                    }
                }
                self.block_stmt_end();
                StmtKind::If {
                    branches,
                    otherwise,
                }
            }
            "while" => {
                let cond = self.expr()?;
                let body = self.block()?;
                self.block_stmt_end();
                StmtKind::While { cond, body }
            }
            "for" => {
                let var = self.name("a loop variable")?;
                if !self.eat_kw("in") {
                    return self.err("`in`");
                }
                let iter = self.expr()?;
                let body = self.block()?;
                self.block_stmt_end();
                StmtKind::ForIn { var, iter, body }
            }
            "switch" => self.switch()?,
            "return" => {
                let value = if self.is_punct(";") {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect_punct(";")?;
                StmtKind::Return(value)
            }
            "break" => {
                self.expect_punct(";")?;
                StmtKind::Break
            }
            _ => {
                self.expect_punct(";")?;
                self.note(Construct::Continue, kw_span);
                StmtKind::Continue
            }
        })
    }

    fn switch(&mut self) -> PResult<StmtKind> {
        let scrutinee = self.expr()?;
        self.expect_punct("{")?;
        let mut cases = Vec::new();
        let mut seen_default = false;
        while !self.is_punct("}") {
            let cspan = self.span();
            let label = if seen_default {
                return self.err("`}` (`default` must be the last arm)");
            } else if self.eat_kw("case") {
                Some(self.expr()?)
            } else if self.eat_kw("default") {
                seen_default = true;
                None
            } else {
                return self.err("`case`, `default` or `}`");
            };
            self.expect_punct(":")?;
            let mut body = Vec::new();
            while !(self.is_kw("case") || self.is_kw("default") || self.is_punct("}")) {
                if matches!(self.tok(), Tok::Eof) {
                    return self.err("`}` closing the switch");
                }
                body.push(self.stmt()?);
            }
            cases.push(Case {
                label,
                body,
                span: cspan,
            });
        }
        self.advance();
        self.block_stmt_end();
        Ok(StmtKind::Switch { scrutinee, cases })
    }

    /// Full expression; each call is one level of real nesting.
    fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let e = self.assign()?;
        self.leave(1);
        Ok(e)
    }

    /// Assignment (`=`, `+=`, `-=`, `*=`, `/=`, `|=`, `&=`), right-assoc.
    fn assign(&mut self) -> PResult<Expr> {
        let lhs = self.ternary()?;
        let op = match self.tok() {
            Tok::Punct("=") => None,
            Tok::Punct("+=") => Some(BinOp::Add),
            Tok::Punct("-=") => Some(BinOp::Sub),
            Tok::Punct("*=") => Some(BinOp::Mul),
            Tok::Punct("/=") => Some(BinOp::Div),
            Tok::Punct("|=") => Some(BinOp::BitOr),
            Tok::Punct("&=") => Some(BinOp::BitAnd),
            _ => return Ok(lhs),
        };
        self.advance();
        let rhs = self.expr()?;
        if op.is_none() && matches!(rhs.kind, ExprKind::Assign { op: None, .. }) {
            self.note(Construct::ChainedAssignment, rhs.span);
        }
        Ok(Expr {
            span: lhs.span,
            kind: ExprKind::Assign {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
        })
    }

    fn ternary(&mut self) -> PResult<Expr> {
        let cond = self.binary()?;
        if !self.eat_punct("?") {
            return Ok(cond);
        }
        let then = self.expr()?;
        self.expect_punct(":")?;
        let otherwise = self.expr()?;
        Ok(Expr {
            span: cond.span,
            kind: ExprKind::Ternary {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            },
        })
    }

    /// Binary operators by operator precedence with explicit stacks, so a
    /// chain of any length uses no recursion (all are left-associative).
    fn binary(&mut self) -> PResult<Expr> {
        let mut operands = vec![self.unary()?];
        let mut ops: Vec<(BinOp, u8)> = Vec::new();
        while let Some((op, prec)) = binop_of(self.tok()) {
            self.advance();
            while ops.last().is_some_and(|&(_, p)| p >= prec) {
                reduce(&mut operands, &mut ops);
            }
            ops.push((op, prec));
            operands.push(self.unary()?);
        }
        while !ops.is_empty() {
            reduce(&mut operands, &mut ops);
        }
        match operands.pop() {
            Some(e) => Ok(e),
            None => self.err("an expression"),
        }
    }

    /// Prefix `-`, `!`, `~`: each one is a level of nesting.
    fn unary(&mut self) -> PResult<Expr> {
        let mut prefix = Vec::new();
        loop {
            let op = match self.tok() {
                Tok::Punct("-") => UnOp::Neg,
                Tok::Punct("!") => UnOp::Not,
                Tok::Punct("~") => UnOp::BitNot,
                _ => break,
            };
            prefix.push((op, self.span()));
            self.advance();
            self.enter()?;
        }
        let mut e = self.postfix()?;
        self.leave(prefix.len());
        while let Some((op, span)) = prefix.pop() {
            e = Expr {
                span,
                kind: ExprKind::Unary {
                    op,
                    expr: Box::new(e),
                },
            };
        }
        Ok(e)
    }

    /// `(args)` with the opening parenthesis; `what` names it for errors.
    fn args(&mut self, what: &str) -> PResult<Vec<Expr>> {
        if !self.eat_punct("(") {
            return self.err(what);
        }
        let mut args = Vec::new();
        while !self.is_punct(")") {
            args.push(self.expr()?);
            if !self.list_sep(")") {
                break;
            }
        }
        self.expect_punct(")")?;
        Ok(args)
    }

    /// Tries `<T, …>` (followed by `(` when `call`); restores the position
    /// and returns `None` if it is not there (then `<` is a comparison).
    fn try_type_args(&mut self, call: bool) -> Option<Vec<TypeRef>> {
        if !self.is_punct("<") {
            return None;
        }
        let start = self.mark();
        self.advance();
        let mut args = Vec::new();
        let ok = loop {
            if args.is_empty() && self.eat_punct(">") {
                // Both compilers accept an empty `<>`.
                break !call || self.is_punct("(");
            }
            match self.type_ref() {
                Ok(t) => args.push(t),
                Err(_) => break false,
            }
            if !self.list_sep(">") {
                break self.eat_punct(">") && (!call || self.is_punct("("));
            }
        };
        if ok {
            Some(args)
        } else {
            self.reset(start);
            None
        }
    }

    /// A type inside an expression (`as T`, `new T`): `Name<…>` only if the
    /// angle brackets hold types, else `<` is left for a comparison.
    fn expr_type(&mut self) -> PResult<TypeRef> {
        if self.is_punct("[") {
            return self.type_ref();
        }
        let span = self.span();
        let name = self.name("a type name")?;
        let mark = self.notes.len();
        self.spaced_angle();
        let args = match self.try_type_args(false) {
            Some(args) => args,
            None => {
                self.notes.truncate(mark);
                Vec::new()
            }
        };
        Ok(TypeRef {
            name,
            args,
            static_len: None,
            span,
        })
    }

    /// Member access, calls, indexing and casts after an atom, in a loop.
    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        let mut after_cast = false;
        loop {
            let span = e.span;
            let here = self.span();
            if self.is_punct("(") || self.is_punct("<") {
                let type_args = self.try_type_args(true);
                if !self.is_punct("(") {
                    break;
                }
                match &e.kind {
                    ExprKind::Ident(_) => {}
                    ExprKind::Member { .. } if type_args.is_some() => {
                        self.note(Construct::MethodTypeArguments, here)
                    }
                    ExprKind::Member { .. } => {}
                    _ => self.note(Construct::CallOnExpression, here),
                }
                let args = self.args("`(`")?;
                e = Expr {
                    span,
                    kind: ExprKind::Call {
                        callee: Box::new(e),
                        type_args: type_args.unwrap_or_default(),
                        args,
                    },
                };
            } else if self.eat_punct(".") {
                let name_span = self.span();
                let name = match self.tok() {
                    Tok::Ident(s) => s.clone(),
                    _ => return self.err("a member name after `.`"),
                };
                if V1_RESERVED.contains(&name.as_str()) {
                    self.note(Construct::ReservedWordAsName, name_span);
                }
                self.advance();
                e = Expr {
                    span,
                    kind: ExprKind::Member {
                        object: Box::new(e),
                        name,
                        name_span,
                    },
                };
            } else if self.eat_punct("[") {
                let index = self.expr()?;
                self.expect_punct("]")?;
                e = Expr {
                    span,
                    kind: ExprKind::Index {
                        object: Box::new(e),
                        index: Box::new(index),
                    },
                };
            } else if self.eat_kw("as") {
                let ty = self.expr_type()?;
                e = Expr {
                    span,
                    kind: ExprKind::Cast {
                        expr: Box::new(e),
                        ty,
                    },
                };
                after_cast = true;
                continue;
            } else {
                break;
            }
            if after_cast {
                // 1.0 casts bind looser than postfix operators.
                self.note(Construct::PostfixAfterCast, here);
                after_cast = false;
            }
        }
        Ok(e)
    }

    /// `(a, b: T) ->` ahead? Parses the parameters if so, else restores.
    fn try_closure_params(&mut self) -> PResult<Option<Vec<ClosureParam>>> {
        let start = self.mark();
        self.advance(); // `(`
        let mut params = Vec::new();
        let ok = loop {
            if self.is_punct(")") {
                break true;
            }
            let span = self.span();
            let Ok(name) = self.v1_name("a closure parameter") else {
                break false;
            };
            let ty = if self.eat_punct(":") {
                match self.type_ref() {
                    Ok(t) => Some(t),
                    Err(_) => break false,
                }
            } else {
                None
            };
            params.push(ClosureParam { name, ty, span });
            if !self.list_sep(")") {
                break self.is_punct(")");
            }
        };
        if ok && self.is_punct(")") && matches!(self.tok_at(1), Tok::Punct("->")) {
            self.advance();
            self.advance();
            Ok(Some(params))
        } else {
            self.reset(start);
            Ok(None)
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let span = self.span();
        let kind = match self.tok().clone() {
            Tok::Int(s) => {
                self.number_notes(&s);
                self.advance();
                ExprKind::Int(s)
            }
            Tok::Float(s) => {
                if s.starts_with('.') {
                    self.note(Construct::LeadingDotFloat, span);
                }
                self.number_notes(&s);
                self.advance();
                // 0.5.x reads `1.0.x` as one malformed number.
                if self.is_punct(".") && self.touches_prev() && !s.ends_with('d') {
                    self.note(Construct::MemberOfNumber, self.span());
                }
                ExprKind::Float(s)
            }
            Tok::Str { kind, value, parts } => {
                self.advance();
                let mut interpolations = Vec::new();
                for toks in parts {
                    interpolations.push(self.interpolation(toks)?);
                }
                ExprKind::Str {
                    kind,
                    value,
                    interpolated: !interpolations.is_empty(),
                    interpolations,
                }
            }
            Tok::Punct("(") => {
                if let Some(params) = self.try_closure_params()? {
                    self.note(Construct::Closure, span);
                    self.enter()?;
                    let body = if self.is_punct("{") {
                        self.block()?
                    } else {
                        let bspan = self.span();
                        return_block(self.expr()?, bspan)
                    };
                    self.leave(1);
                    ExprKind::Closure { params, body }
                } else {
                    self.advance();
                    let e = self.expr()?;
                    self.expect_punct(")")?;
                    return Ok(e);
                }
            }
            Tok::Punct("[") => {
                self.advance();
                self.enter()?;
                let mut items = Vec::new();
                while !self.is_punct("]") {
                    items.push(self.expr()?);
                    if !self.list_sep("]") {
                        break;
                    }
                }
                self.expect_punct("]")?;
                self.leave(1);
                ExprKind::Array(items)
            }
            Tok::Ident(s) => {
                self.advance();
                match s.as_str() {
                    "this" => ExprKind::This,
                    "super" => ExprKind::Super,
                    "null" => ExprKind::Null,
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    "new" if self.is_word() || self.is_punct("[") => {
                        // 0.5.x takes a plain name here.
                        if self.is_punct("[") || self.tok_at(1) == &Tok::Punct("<") {
                            self.note(Construct::GenericTypeInExtendsOrNew, self.span());
                        }
                        let ty = self.expr_type()?;
                        let args = self.args("`(` and the arguments of `new`")?;
                        ExprKind::New { ty, args }
                    }
                    _ => {
                        if V1_RESERVED.contains(&s.as_str()) {
                            self.note(Construct::ReservedWordAsName, span);
                        }
                        ExprKind::Ident(s)
                    }
                }
            }
            _ => return self.err("an expression"),
        };
        Ok(Expr { kind, span })
    }

    /// Notes the number spellings only 0.5.x lexes (at the current token).
    fn number_notes(&mut self, text: &str) {
        let span = self.span();
        let b = text.as_bytes();
        if b.first() == Some(&b'0') && b.get(1).is_some_and(u8::is_ascii_digit) {
            self.note(Construct::LeadingZero, span);
        }
        let (digits, max) =
            if text.ends_with("ul") || text.ends_with(['u', 'd']) || text.contains('.') {
                return;
            } else if let Some(d) = text.strip_suffix('l') {
                (d, i64::MAX as u64)
            } else {
                (text, i32::MAX as u64)
            };
        if digits.parse::<u64>().is_ok_and(|v| v > max) {
            self.note(Construct::MinIntLiteral, span);
        }
    }

    /// Parses the tokens of one `\(…)` as a whole expression.
    fn interpolation(&mut self, toks: Vec<Token>) -> PResult<Expr> {
        let mut sub = Parser::new(self.file, toks, self.depth);
        sub.enter()?;
        let e = sub.assign()?;
        if !matches!(sub.tok(), Tok::Eof) {
            return sub.err("`)` closing the interpolation");
        }
        self.notes.append(&mut sub.notes);
        Ok(e)
    }
}

/// Pops the top operator and its two operands and pushes the combined node.
fn reduce(operands: &mut Vec<Expr>, ops: &mut Vec<(BinOp, u8)>) {
    let (Some((op, _)), Some(rhs), Some(lhs)) = (ops.pop(), operands.pop(), operands.pop()) else {
        return;
    };
    operands.push(Expr {
        span: lhs.span,
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(src: &str) -> Expr {
        let m = parse_here("t.reds", &format!("func F() {{ {src}; }}")).expect("parses");
        let Some(Decl {
            kind: DeclKind::Function(f),
            ..
        }) = m.items.into_iter().next()
        else {
            panic!("no function");
        };
        let stmt = f
            .body
            .expect("body")
            .stmts
            .into_iter()
            .next()
            .expect("stmt");
        match stmt.kind {
            StmtKind::Expr(e) => e,
            other => panic!("not an expression: {other:?}"),
        }
    }

    fn bin(e: &Expr) -> (BinOp, &Expr, &Expr) {
        match &e.kind {
            ExprKind::Binary { op, lhs, rhs } => (*op, lhs, rhs),
            other => panic!("not binary: {other:?}"),
        }
    }

    #[test]
    fn multiplication_binds_tighter_than_addition() {
        let e = expr("a + b * c");
        let (op, _, rhs) = bin(&e);
        assert_eq!(op, BinOp::Add);
        assert_eq!(bin(rhs).0, BinOp::Mul);
    }

    #[test]
    fn and_binds_tighter_than_or_and_comparison_tighter_than_and() {
        let e = expr("a || b && c < d");
        let (op, _, rhs) = bin(&e);
        assert_eq!(op, BinOp::Or);
        let (op, _, rhs) = bin(rhs);
        assert_eq!(op, BinOp::And);
        assert_eq!(bin(rhs).0, BinOp::Lt);
    }

    #[test]
    fn subtraction_is_left_associative() {
        let e = expr("a - b - c");
        let (op, lhs, _) = bin(&e);
        assert_eq!(op, BinOp::Sub);
        assert_eq!(bin(lhs).0, BinOp::Sub);
    }

    #[test]
    fn assignment_is_right_associative_and_lowest() {
        let e = expr("a = b += c ? 1 : 2");
        let ExprKind::Assign { op: None, rhs, .. } = &e.kind else {
            panic!("{e:?}");
        };
        let ExprKind::Assign {
            op: Some(BinOp::Add),
            rhs,
            ..
        } = &rhs.kind
        else {
            panic!("{rhs:?}");
        };
        assert!(matches!(rhs.kind, ExprKind::Ternary { .. }));
    }

    #[test]
    fn generic_call_versus_comparison() {
        let e = expr("Cast<Float>(x)");
        let ExprKind::Call { type_args, .. } = &e.kind else {
            panic!("{e:?}");
        };
        assert_eq!(type_args.len(), 1);
        assert_eq!(bin(&expr("a < b")).0, BinOp::Lt);
    }

    #[test]
    fn cast_binds_tighter_than_binary() {
        let e = expr("x as Float + 1.0");
        let (op, lhs, _) = bin(&e);
        assert_eq!(op, BinOp::Add);
        assert!(matches!(lhs.kind, ExprKind::Cast { .. }));
    }

    #[test]
    fn spans_are_line_and_column() {
        let m = parse_here("t.reds", "\n\n   class A {}").expect("parses");
        assert_eq!(m.items[0].span, Span { line: 3, col: 4 });
    }

    #[test]
    fn block_comments_nest() {
        assert!(parse_here("t.reds", "/* a /* b */ c */ class A {}").is_ok());
        assert!(parse_here("t.reds", "/* a /* b */ c class A {}").is_err());
    }
}
