//! Abstract syntax tree of a REDscript file; every node carries a [`Span`] so
//! policy diagnostics can point at the exact line and column.

/// 1-based line and column of a token, used by every error and diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Span {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub col: u32,
}

/// A whole parsed file: the unit the policy checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// `module a.b.c` declaration, if any.
    pub module: Option<Vec<String>>,
    /// `import` declarations, in order.
    pub imports: Vec<Import>,
    /// Top-level declarations, in order.
    pub items: Vec<Decl>,
}

/// An `import` line, kept so tools can see which modules a script pulls in.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// Dotted path before any `.*` or `.{…}`.
    pub path: Vec<String>,
    /// Names in `import a.{B, C}`; empty otherwise.
    pub names: Vec<String>,
    /// Whether the import ends in `.*`.
    pub wildcard: bool,
    /// Position of the `import` keyword.
    pub span: Span,
}

/// An annotation such as `@wrapMethod(Foo)`, kept so hooks can be refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// Name without the `@`.
    pub name: String,
    /// Arguments as expressions.
    pub args: Vec<Expr>,
    /// Position of the `@`.
    pub span: Span,
}

/// Declaration qualifiers, kept as data so the policy can refuse some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// `public`
    Public,
    /// `private`
    Private,
    /// `protected`
    Protected,
    /// `static`
    Static,
    /// `final`
    Final,
    /// `native` (implemented by the engine or a DLL)
    Native,
    /// `cb` (callback)
    Cb,
    /// `const`
    Const,
    /// `persistent` (saved into the savegame)
    Persistent,
    /// `abstract`
    Abstract,
    /// `importonly`
    ImportOnly,
    /// `exec` (console command)
    Exec,
    /// `quest`
    Quest,
    /// `inline`
    Inline,
}

impl Modifier {
    /// Maps a keyword to a modifier, so the parser has one table to consult.
    pub fn from_keyword(s: &str) -> Option<Self> {
        Some(match s {
            "public" => Self::Public,
            "private" => Self::Private,
            "protected" => Self::Protected,
            "static" => Self::Static,
            "final" => Self::Final,
            "native" => Self::Native,
            "cb" => Self::Cb,
            "const" => Self::Const,
            "persistent" => Self::Persistent,
            "abstract" => Self::Abstract,
            "importonly" => Self::ImportOnly,
            "exec" => Self::Exec,
            "quest" => Self::Quest,
            "inline" => Self::Inline,
            _ => return None,
        })
    }
}

/// A declaration with its annotations and qualifiers: top-level or a member.
#[derive(Debug, Clone, PartialEq)]
pub struct Decl {
    /// Annotations before the declaration.
    pub annotations: Vec<Annotation>,
    /// Qualifiers with their positions.
    pub modifiers: Vec<(Modifier, Span)>,
    /// What is declared.
    pub kind: DeclKind,
    /// Position of the declaring keyword (`class`, `func`, `let`, …).
    pub span: Span,
}

/// The different declarations REDscript knows.
#[derive(Debug, Clone, PartialEq)]
pub enum DeclKind {
    /// `class Name extends Base { members }`
    Class {
        /// Class name.
        name: String,
        /// Base class, if any.
        extends: Option<TypeRef>,
        /// Fields and methods.
        members: Vec<Decl>,
    },
    /// `struct Name { members }`
    Struct {
        /// Struct name.
        name: String,
        /// Fields and methods.
        members: Vec<Decl>,
    },
    /// `enum Name { A = 1, B }`
    Enum {
        /// Enum name.
        name: String,
        /// Variants with optional explicit value.
        variants: Vec<(String, Option<Expr>, Span)>,
    },
    /// `func name(params) -> Ret { body }` (body absent for natives).
    Function(Function),
    /// `let name: Type;` field.
    Field {
        /// Field name.
        name: String,
        /// Field type.
        ty: TypeRef,
    },
}

/// A function or method declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Function name.
    pub name: String,
    /// Parameters.
    pub params: Vec<Param>,
    /// Return type (`None` = Void).
    pub ret: Option<TypeRef>,
    /// Body, `None` for `native`/`importonly` declarations ending in `;`.
    pub body: Option<Block>,
}

/// One function parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Qualifiers such as `out`, `opt`, `const`.
    pub qualifiers: Vec<String>,
    /// Name.
    pub name: String,
    /// Type.
    pub ty: TypeRef,
    /// Position of the name.
    pub span: Span,
}

/// A type such as `array<ref<inkText>>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeRef {
    /// Base name (`array`, `ref`, `Int32`, class name …).
    pub name: String,
    /// Generic arguments.
    pub args: Vec<TypeRef>,
    /// Position of the name.
    pub span: Span,
}

/// A `{ … }` block of statements.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// Position of `{`.
    pub span: Span,
}

/// A statement with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// What the statement is.
    pub kind: StmtKind,
    /// Where it starts.
    pub span: Span,
}

/// Statement forms.
#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// `let x: T = e;`
    Let {
        /// Variable name.
        name: String,
        /// Optional declared type.
        ty: Option<TypeRef>,
        /// Optional initialiser.
        init: Option<Expr>,
    },
    /// `if c { } else …`
    If {
        /// Condition.
        cond: Expr,
        /// Then branch.
        then: Block,
        /// Else branch: a block or another `if`.
        otherwise: Option<Box<Stmt>>,
    },
    /// `while c { }`
    While {
        /// Condition.
        cond: Expr,
        /// Body.
        body: Block,
    },
    /// `for x in arr { }`
    ForIn {
        /// Loop variable.
        var: String,
        /// Iterated array.
        iter: Expr,
        /// Body.
        body: Block,
    },
    /// `switch e { case A: … default: … }`
    Switch {
        /// Scrutinee.
        scrutinee: Expr,
        /// Cases in order; `label == None` is `default`.
        cases: Vec<Case>,
    },
    /// `return e;`
    Return(Option<Expr>),
    /// `break;`
    Break,
    /// `continue;`
    Continue,
    /// `e;`
    Expr(Expr),
    /// `{ … }`
    Block(Block),
}

/// One `case`/`default` arm of a switch.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Case label; `None` for `default`.
    pub label: Option<Expr>,
    /// Statements up to the next arm.
    pub body: Vec<Stmt>,
    /// Position of `case`/`default`.
    pub span: Span,
}

/// An expression with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the expression is.
    pub kind: ExprKind,
    /// Where it starts.
    pub span: Span,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    /// `-`
    Neg,
    /// `!`
    Not,
    /// `~`
    BitNot,
}

/// Binary operators, in no particular order (precedence lives in the parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
    /// `&`
    BitAnd,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
}

/// Expression forms.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Bare identifier: local, parameter, field, class or enum name.
    Ident(String),
    /// `this`
    This,
    /// `super`
    Super,
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// Integer literal text.
    Int(String),
    /// Float literal text.
    Float(String),
    /// String literal of any prefix.
    Str {
        /// Prefix kind.
        kind: crate::lexer::StrKind,
        /// Decoded text.
        value: String,
        /// Whether an `s"…"` string interpolates `\(…)`.
        interpolated: bool,
    },
    /// `[a, b, c]`
    Array(Vec<Expr>),
    /// `callee<T>(args)`
    Call {
        /// Called expression (identifier or member access).
        callee: Box<Expr>,
        /// Explicit generic arguments (`Cast<Float>(x)`).
        type_args: Vec<TypeRef>,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// `obj.name`
    Member {
        /// Object.
        object: Box<Expr>,
        /// Member name.
        name: String,
        /// Position of the member name (where method diagnostics point).
        name_span: Span,
    },
    /// `obj[index]`
    Index {
        /// Indexed expression.
        object: Box<Expr>,
        /// Index.
        index: Box<Expr>,
    },
    /// `e as T`
    Cast {
        /// Casted expression.
        expr: Box<Expr>,
        /// Target type.
        ty: TypeRef,
    },
    /// `new T(args)`
    New {
        /// Constructed type.
        ty: TypeRef,
        /// Constructor arguments (struct fields).
        args: Vec<Expr>,
    },
    /// `op e`
    Unary {
        /// Operator.
        op: UnOp,
        /// Operand.
        expr: Box<Expr>,
    },
    /// `a op b`
    Binary {
        /// Operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `a = b`, `a += b`, …; `op == None` is plain assignment.
    Assign {
        /// Compound operator, if any.
        op: Option<BinOp>,
        /// Target.
        lhs: Box<Expr>,
        /// Value.
        rhs: Box<Expr>,
    },
    /// `c ? a : b`
    Ternary {
        /// Condition.
        cond: Box<Expr>,
        /// Value when true.
        then: Box<Expr>,
        /// Value when false.
        otherwise: Box<Expr>,
    },
}
