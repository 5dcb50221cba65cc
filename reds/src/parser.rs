//! Recursive-descent parser for REDscript producing [`crate::ast::Module`].
//!
//! Nesting (blocks, parentheses, operator chains, generic arguments) is
//! bounded by [`MAX_DEPTH`] so hostile input yields an error, never a stack
//! overflow, and every AST the parser returns is shallow enough to walk and
//! drop recursively.

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{Tok, Token, tokenize};

/// Maximum nesting depth accepted, so deep input is an error, not a crash.
pub const MAX_DEPTH: usize = 128;

/// Parses on the current thread's stack; callers use [`crate::parse`], which
/// runs this on a thread with a stack large enough for [`MAX_DEPTH`].
pub(crate) fn parse_here(file: &str, source: &str) -> Result<Module, ParseError> {
    let toks = tokenize(file, source)?;
    let mut p = Parser {
        file,
        toks,
        pos: 0,
        depth: 0,
    };
    p.module()
}

struct Parser<'a> {
    file: &'a str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

type PResult<T> = Result<T, ParseError>;

const STMT_KEYWORDS: &[&str] = &[
    "let", "if", "else", "while", "for", "in", "switch", "case", "default", "return", "break",
    "continue", "func", "class", "struct", "enum", "new", "as", "this", "super", "null", "true",
    "false", "module", "import", "extends",
];

impl Parser<'_> {
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

    fn describe(&self) -> String {
        match self.tok() {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(s) | Tok::Float(s) => format!("number `{s}`"),
            Tok::Str { .. } => "a string literal".to_string(),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Eof => "end of file".to_string(),
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

    fn ident(&mut self, what: &str) -> PResult<String> {
        match self.tok() {
            Tok::Ident(s) if !STMT_KEYWORDS.contains(&s.as_str()) => {
                let s = s.clone();
                self.advance();
                Ok(s)
            }
            _ => self.err(what),
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(&format!("nesting no deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn leave(&mut self, n: usize) {
        self.depth = self.depth.saturating_sub(n);
    }

    fn path(&mut self) -> PResult<Vec<String>> {
        let mut path = vec![self.ident("a module name")?];
        while self.is_punct(".") && matches!(self.tok_at(1), Tok::Ident(_)) {
            self.advance();
            path.push(self.ident("a module name")?);
        }
        Ok(path)
    }

    fn module(&mut self) -> PResult<Module> {
        let mut module = None;
        if self.eat_kw("module") {
            module = Some(self.path()?);
        }
        let mut imports = Vec::new();
        let mut items = Vec::new();
        loop {
            if matches!(self.tok(), Tok::Eof) {
                break;
            }
            if self.is_kw("import") {
                let span = self.span();
                self.advance();
                let path = self.path()?;
                let mut names = Vec::new();
                let mut wildcard = false;
                if self.eat_punct(".") {
                    if self.eat_punct("*") {
                        wildcard = true;
                    } else {
                        self.expect_punct("{")?;
                        loop {
                            names.push(self.ident("an imported name")?);
                            if !self.eat_punct(",") {
                                break;
                            }
                        }
                        self.expect_punct("}")?;
                    }
                }
                self.eat_punct(";");
                imports.push(Import {
                    path,
                    names,
                    wildcard,
                    span,
                });
                continue;
            }
            items.push(self.decl()?);
        }
        Ok(Module {
            module,
            imports,
            items,
        })
    }

    fn decl(&mut self) -> PResult<Decl> {
        let mut annotations = Vec::new();
        while self.is_punct("@") {
            let span = self.span();
            self.advance();
            // Annotation names may be keywords (`@if`).
            let name = match self.tok() {
                Tok::Ident(s) => s.clone(),
                _ => return self.err("an annotation name"),
            };
            self.advance();
            let args = if self.is_punct("(") {
                self.args()?
            } else {
                Vec::new()
            };
            annotations.push(Annotation { name, args, span });
        }
        let mut modifiers = Vec::new();
        while let Tok::Ident(s) = self.tok() {
            match Modifier::from_keyword(s) {
                Some(m) => {
                    modifiers.push((m, self.span()));
                    self.advance();
                }
                None => break,
            }
        }
        let span = self.span();
        let kind = if self.eat_kw("class") {
            let name = self.ident("a class name")?;
            let extends = if self.eat_kw("extends") {
                Some(self.type_ref()?)
            } else {
                None
            };
            let members = self.members()?;
            DeclKind::Class {
                name,
                extends,
                members,
            }
        } else if self.eat_kw("struct") {
            let name = self.ident("a struct name")?;
            let members = self.members()?;
            DeclKind::Struct { name, members }
        } else if self.eat_kw("enum") {
            let name = self.ident("an enum name")?;
            self.expect_punct("{")?;
            let mut variants = Vec::new();
            while !self.is_punct("}") {
                let vspan = self.span();
                let v = self.ident("an enum variant or `}`")?;
                let value = if self.eat_punct("=") {
                    Some(self.expr()?)
                } else {
                    None
                };
                variants.push((v, value, vspan));
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct("}")?;
            DeclKind::Enum { name, variants }
        } else if self.eat_kw("func") {
            DeclKind::Function(self.function()?)
        } else if self.eat_kw("let") {
            let name = self.ident("a field name")?;
            self.expect_punct(":")?;
            let ty = self.type_ref()?;
            self.expect_punct(";")?;
            DeclKind::Field { name, ty }
        } else {
            return self.err("a declaration (`class`, `struct`, `enum`, `func` or `let`)");
        };
        Ok(Decl {
            annotations,
            modifiers,
            kind,
            span,
        })
    }

    fn members(&mut self) -> PResult<Vec<Decl>> {
        self.expect_punct("{")?;
        self.enter()?;
        let mut members = Vec::new();
        while !self.is_punct("}") {
            if matches!(self.tok(), Tok::Eof) {
                return self.err("`}` closing the declaration body");
            }
            members.push(self.decl()?);
        }
        self.advance();
        self.leave(1);
        Ok(members)
    }

    fn function(&mut self) -> PResult<Function> {
        let name = self.ident("a function name")?;
        self.expect_punct("(")?;
        let mut params = Vec::new();
        while !self.is_punct(")") {
            let mut qualifiers = Vec::new();
            while let Tok::Ident(s) = self.tok() {
                if matches!(s.as_str(), "out" | "opt" | "const")
                    && matches!(self.tok_at(1), Tok::Ident(_))
                {
                    qualifiers.push(s.clone());
                    self.advance();
                } else {
                    break;
                }
            }
            let span = self.span();
            let name = self.ident("a parameter name")?;
            self.expect_punct(":")?;
            let ty = self.type_ref()?;
            params.push(Param {
                qualifiers,
                name,
                ty,
                span,
            });
            if !self.eat_punct(",") {
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
        } else {
            // Bodiless declarations (`native`, `importonly`) may end in `;`.
            self.eat_punct(";");
            None
        };
        Ok(Function {
            name,
            params,
            ret,
            body,
        })
    }

    fn type_ref(&mut self) -> PResult<TypeRef> {
        self.enter()?;
        let span = self.span();
        let name = self.ident("a type name")?;
        let mut args = Vec::new();
        if self.eat_punct("<") {
            loop {
                args.push(self.type_ref()?);
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(">")?;
        }
        self.leave(1);
        Ok(TypeRef { name, args, span })
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
            if self.eat_punct(";") {
                continue;
            }
            stmts.push(self.stmt()?);
        }
        self.advance();
        self.leave(1);
        Ok(Block { stmts, span })
    }

    fn stmt(&mut self) -> PResult<Stmt> {
        self.enter()?;
        let span = self.span();
        let kind = if self.is_punct("{") {
            StmtKind::Block(self.block()?)
        } else if self.eat_kw("let") {
            let name = self.ident("a variable name")?;
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
        } else if self.is_kw("if") {
            self.if_stmt()?
        } else if self.eat_kw("while") {
            let cond = self.expr()?;
            let body = self.block()?;
            StmtKind::While { cond, body }
        } else if self.eat_kw("for") {
            let var = self.ident("a loop variable")?;
            if !self.eat_kw("in") {
                return self.err("`in`");
            }
            let iter = self.expr()?;
            let body = self.block()?;
            StmtKind::ForIn { var, iter, body }
        } else if self.eat_kw("switch") {
            let scrutinee = self.expr()?;
            self.expect_punct("{")?;
            let mut cases = Vec::new();
            while !self.is_punct("}") {
                let cspan = self.span();
                let label = if self.eat_kw("case") {
                    Some(self.expr()?)
                } else if self.eat_kw("default") {
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
                    if self.eat_punct(";") {
                        continue;
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
            StmtKind::Switch { scrutinee, cases }
        } else if self.eat_kw("return") {
            let value = if self.is_punct(";") {
                None
            } else {
                Some(self.expr()?)
            };
            self.expect_punct(";")?;
            StmtKind::Return(value)
        } else if self.eat_kw("break") {
            self.expect_punct(";")?;
            StmtKind::Break
        } else if self.eat_kw("continue") {
            self.expect_punct(";")?;
            StmtKind::Continue
        } else {
            let e = self.expr()?;
            self.expect_punct(";")?;
            StmtKind::Expr(e)
        };
        self.leave(1);
        Ok(Stmt { kind, span })
    }

    fn if_stmt(&mut self) -> PResult<StmtKind> {
        self.advance(); // `if`
        let cond = self.expr()?;
        let then = self.block()?;
        let otherwise = if self.eat_kw("else") {
            let span = self.span();
            if self.is_kw("if") {
                self.enter()?;
                let kind = self.if_stmt()?;
                self.leave(1);
                Some(Box::new(Stmt { kind, span }))
            } else {
                let b = self.block()?;
                Some(Box::new(Stmt {
                    kind: StmtKind::Block(b),
                    span,
                }))
            }
        } else {
            None
        };
        Ok(StmtKind::If {
            cond,
            then,
            otherwise,
        })
    }

    /// Full expression including assignment (right-associative).
    fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let lhs = self.ternary()?;
        let op = match self.tok() {
            Tok::Punct("=") => Some(None),
            Tok::Punct("+=") => Some(Some(BinOp::Add)),
            Tok::Punct("-=") => Some(Some(BinOp::Sub)),
            Tok::Punct("*=") => Some(Some(BinOp::Mul)),
            Tok::Punct("/=") => Some(Some(BinOp::Div)),
            Tok::Punct("%=") => Some(Some(BinOp::Rem)),
            Tok::Punct("&=") => Some(Some(BinOp::BitAnd)),
            Tok::Punct("|=") => Some(Some(BinOp::BitOr)),
            Tok::Punct("^=") => Some(Some(BinOp::BitXor)),
            _ => None,
        };
        let result = match op {
            Some(op) => {
                self.advance();
                let rhs = self.expr()?;
                Expr {
                    span: lhs.span,
                    kind: ExprKind::Assign {
                        op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                }
            }
            None => lhs,
        };
        self.leave(1);
        Ok(result)
    }

    fn ternary(&mut self) -> PResult<Expr> {
        let cond = self.binary(1)?;
        if !self.eat_punct("?") {
            return Ok(cond);
        }
        self.enter()?;
        let then = self.expr()?;
        self.expect_punct(":")?;
        let otherwise = self.ternary()?;
        self.leave(1);
        Ok(Expr {
            span: cond.span,
            kind: ExprKind::Ternary {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            },
        })
    }

    fn binop(&self) -> Option<(BinOp, u8)> {
        let Tok::Punct(p) = self.tok() else {
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

    /// Precedence climbing; every node built adds one level of depth.
    fn binary(&mut self, min: u8) -> PResult<Expr> {
        let mut lhs = self.cast()?;
        let mut added = 0;
        while let Some((op, prec)) = self.binop() {
            if prec < min {
                break;
            }
            self.advance();
            self.enter()?;
            added += 1;
            let rhs = self.binary(prec + 1)?;
            lhs = Expr {
                span: lhs.span,
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
            };
        }
        self.leave(added);
        Ok(lhs)
    }

    fn cast(&mut self) -> PResult<Expr> {
        let mut e = self.unary()?;
        let mut added = 0;
        while self.eat_kw("as") {
            self.enter()?;
            added += 1;
            let ty = self.type_ref()?;
            e = Expr {
                span: e.span,
                kind: ExprKind::Cast {
                    expr: Box::new(e),
                    ty,
                },
            };
        }
        self.leave(added);
        Ok(e)
    }

    fn unary(&mut self) -> PResult<Expr> {
        let span = self.span();
        let op = match self.tok() {
            Tok::Punct("-") => UnOp::Neg,
            Tok::Punct("!") => UnOp::Not,
            Tok::Punct("~") => UnOp::BitNot,
            _ => return self.postfix(),
        };
        self.advance();
        self.enter()?;
        let expr = self.unary()?;
        self.leave(1);
        Ok(Expr {
            span,
            kind: ExprKind::Unary {
                op,
                expr: Box::new(expr),
            },
        })
    }

    fn args(&mut self) -> PResult<Vec<Expr>> {
        self.expect_punct("(")?;
        let mut args = Vec::new();
        while !self.is_punct(")") {
            args.push(self.expr()?);
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct(")")?;
        Ok(args)
    }

    /// Tries `<T, …>(` after an identifier; restores the position if it is
    /// not a generic call (then `<` is a comparison).
    fn try_type_args(&mut self) -> Vec<TypeRef> {
        if !self.is_punct("<") {
            return Vec::new();
        }
        let (pos, depth) = (self.pos, self.depth);
        self.advance();
        let mut args = Vec::new();
        let ok = loop {
            match self.type_ref() {
                Ok(t) => args.push(t),
                Err(_) => break false,
            }
            if !self.eat_punct(",") {
                break self.eat_punct(">") && self.is_punct("(");
            }
        };
        if ok {
            args
        } else {
            self.pos = pos;
            self.depth = depth;
            Vec::new()
        }
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        let mut added = 0;
        loop {
            let span = e.span;
            if self.is_punct("(") || (self.is_punct("<") && added == 0) {
                let type_args = if matches!(e.kind, ExprKind::Ident(_)) {
                    self.try_type_args()
                } else {
                    Vec::new()
                };
                if !self.is_punct("(") {
                    break;
                }
                self.enter()?;
                added += 1;
                let args = self.args()?;
                e = Expr {
                    span,
                    kind: ExprKind::Call {
                        callee: Box::new(e),
                        type_args,
                        args,
                    },
                };
            } else if self.eat_punct(".") {
                self.enter()?;
                added += 1;
                let name_span = self.span();
                let name = self.ident("a member name after `.`")?;
                e = Expr {
                    span,
                    kind: ExprKind::Member {
                        object: Box::new(e),
                        name,
                        name_span,
                    },
                };
            } else if self.eat_punct("[") {
                self.enter()?;
                added += 1;
                let index = self.expr()?;
                self.expect_punct("]")?;
                e = Expr {
                    span,
                    kind: ExprKind::Index {
                        object: Box::new(e),
                        index: Box::new(index),
                    },
                };
            } else {
                break;
            }
        }
        self.leave(added);
        Ok(e)
    }

    fn primary(&mut self) -> PResult<Expr> {
        let span = self.span();
        let kind = match self.tok().clone() {
            Tok::Int(s) => {
                self.advance();
                ExprKind::Int(s)
            }
            Tok::Float(s) => {
                self.advance();
                ExprKind::Float(s)
            }
            Tok::Str {
                kind,
                value,
                interpolated,
            } => {
                self.advance();
                ExprKind::Str {
                    kind,
                    value,
                    interpolated,
                }
            }
            Tok::Punct("(") => {
                self.advance();
                let e = self.expr()?;
                self.expect_punct(")")?;
                return Ok(e);
            }
            Tok::Punct("[") => {
                self.advance();
                self.enter()?;
                let mut items = Vec::new();
                while !self.is_punct("]") {
                    items.push(self.expr()?);
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                self.expect_punct("]")?;
                self.leave(1);
                ExprKind::Array(items)
            }
            Tok::Ident(s) => match s.as_str() {
                "this" => {
                    self.advance();
                    ExprKind::This
                }
                "super" => {
                    self.advance();
                    ExprKind::Super
                }
                "null" => {
                    self.advance();
                    ExprKind::Null
                }
                "true" => {
                    self.advance();
                    ExprKind::Bool(true)
                }
                "false" => {
                    self.advance();
                    ExprKind::Bool(false)
                }
                "new" => {
                    self.advance();
                    let ty = self.type_ref()?;
                    let args = if self.is_punct("(") {
                        self.args()?
                    } else {
                        Vec::new()
                    };
                    ExprKind::New { ty, args }
                }
                _ => ExprKind::Ident(self.ident("an expression")?),
            },
            _ => return self.err("an expression"),
        };
        Ok(Expr { kind, span })
    }
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
