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
    /// Constructs that only one of the released compilers (0.5.x or 1.0)
    /// accepts, in source order, so tools can warn that a player's install
    /// may refuse the script.
    pub dialect: Vec<DialectNote>,
}

/// A released REDscript compiler generation, so notes can say which one a
/// construct needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// The 0.5.x compiler (PEG grammar in jac3km4/redscript up to 0.5.19).
    V05,
    /// The 1.0 compiler (jac3km4/redscript-syntax grammar).
    V1,
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V05 => "REDscript 0.5.x",
            Self::V1 => "REDscript 1.0",
        })
    }
}

/// A construct accepted by only one compiler generation; the parser accepts
/// the union of both grammars and records each use of one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Construct {
    /// `continue;` (0.5.x has no `continue`).
    Continue,
    /// Type parameters on a declaration: `class A<T>`, `func F<T>()`.
    GenericDeclaration,
    /// Array type `[T]`.
    ArrayType,
    /// Fixed-size array type `[T; N]`.
    StaticArrayType,
    /// Closure `(a, b: T) -> expr` or `(a) -> { … }`.
    Closure,
    /// A trailing comma in arguments, parameters, array literals or imports.
    TrailingComma,
    /// `import` followed by `;`.
    ImportSemicolon,
    /// `import` after a declaration.
    ImportAfterDeclaration,
    /// `;` after a class, struct or enum body.
    DeclarationSemicolon,
    /// Enum variant without `= value`.
    EnumVariantWithoutValue,
    /// Generic arguments in `extends` or `new` (`new Box<Int32>()`).
    GenericTypeInExtendsOrNew,
    /// A call on something other than a name or a method: `f()()`, `a[0](x)`.
    CallOnExpression,
    /// Explicit type arguments on a method call: `x.Get<Int32>()`.
    MethodTypeArguments,
    /// An annotation 0.5.x does not know (it knows `@replaceMethod`,
    /// `@wrapMethod`, `@replaceGlobal`, `@addMethod`, `@addField`, `@if`,
    /// `@runtimeProperty`).
    UnknownAnnotation,
    /// A float written without a leading digit: `.5`.
    LeadingDotFloat,
    /// Chained assignment `a = b = c`.
    ChainedAssignment,
    /// `true false null this super case default` used as a declared name.
    ReservedWordAsName,
    /// A negative enum value `A = -1`.
    NegativeEnumValue,
    /// A visibility after another qualifier or visibility: `static public
    /// func`, `public public let`.
    QualifierBeforeVisibility,
    /// A postfix operation after a cast: `x as T.Method()`, `x as T[0]`.
    PostfixAfterCast,
    /// A number with a leading zero: `007`.
    LeadingZero,
    /// An enum value with the `l` suffix: `A = 5000000000l`.
    LongEnumValue,
    /// The smallest integer as one literal: `-2147483648`.
    MinIntLiteral,
    /// `module` or `import` with no path (`import .*`).
    EmptyModulePath,
    /// `return`, `break`, `continue` or `let` (before a name) used as a
    /// name: `return(a, b);` calls a function named `return` in 0.5.x.
    StatementWordAsName,
    /// `opt`/`out` on a declaration, or a declaration qualifier on a
    /// parameter (`public x: Int32`).
    LegacyQualifierPlace,
    /// A qualifier word as a parameter name: `func F(static: Int32)`.
    QualifierWordAsName,
    /// Space between a type's name and its `<`: `array <Int32>`.
    SpacedTypeArguments,
    /// A space where 0.5.x allows none: before `,` in a list (`F(a , b)`),
    /// after `@`, before `.` in a module path (`import A .B`).
    SpacedPunctuation,
    /// A member right after a float literal: `1.0.x`.
    MemberOfNumber,
}

impl Construct {
    /// The only compiler generation that accepts this construct.
    pub fn only_in(self) -> Dialect {
        match self {
            Self::LeadingDotFloat
            | Self::ChainedAssignment
            | Self::ReservedWordAsName
            | Self::NegativeEnumValue
            | Self::QualifierBeforeVisibility
            | Self::PostfixAfterCast
            | Self::LeadingZero
            | Self::LongEnumValue
            | Self::MinIntLiteral
            | Self::EmptyModulePath
            | Self::StatementWordAsName
            | Self::LegacyQualifierPlace => Dialect::V05,
            _ => Dialect::V1,
        }
    }

    /// Short human description with the construct's spelling, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Continue => "`continue;`",
            Self::GenericDeclaration => "type parameters `class A<T>` / `func F<T>()`",
            Self::ArrayType => "array type `[T]`",
            Self::StaticArrayType => "fixed-size array type `[T; N]`",
            Self::Closure => "closure `(x) -> …`",
            Self::TrailingComma => "trailing comma",
            Self::ImportSemicolon => "`;` after `import`",
            Self::ImportAfterDeclaration => "`import` after a declaration",
            Self::DeclarationSemicolon => "`;` after a class, struct or enum",
            Self::EnumVariantWithoutValue => "enum variant without `= value`",
            Self::GenericTypeInExtendsOrNew => "generic type after `extends` or `new`",
            Self::CallOnExpression => "call of an expression other than a name or method",
            Self::MethodTypeArguments => "type arguments on a method call `x.F<T>()`",
            Self::UnknownAnnotation => "annotation unknown to 0.5.x",
            Self::LeadingDotFloat => "float without leading digit `.5`",
            Self::ChainedAssignment => "chained assignment `a = b = c`",
            Self::ReservedWordAsName => "`true false null this super case default` as a name",
            Self::NegativeEnumValue => "negative enum value `A = -1`",
            Self::QualifierBeforeVisibility => {
                "visibility after another qualifier `static public`, `public public`"
            }
            Self::PostfixAfterCast => "member, call or index after `as T`",
            Self::LeadingZero => "number with a leading zero `007`",
            Self::LongEnumValue => "enum value with `l` suffix",
            Self::MinIntLiteral => "`-2147483648` as one literal",
            Self::EmptyModulePath => "`module` or `import` without a path",
            Self::StatementWordAsName => "`return`, `break`, `continue` or `let` as a name",
            Self::LegacyQualifierPlace => {
                "`opt`/`out` on a declaration or a declaration qualifier on a parameter"
            }
            Self::QualifierWordAsName => "qualifier word as a parameter name",
            Self::SpacedTypeArguments => "space before a type's `<` (`array <T>`)",
            Self::SpacedPunctuation => {
                "space before `,` in a list, after `@`, or before `.` in a module path"
            }
            Self::MemberOfNumber => "member right after a float literal `1.0.x`",
        }
    }
}

/// One use of a single-dialect [`Construct`], with where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialectNote {
    /// What was used.
    pub construct: Construct,
    /// Where it starts.
    pub span: Span,
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
    /// Annotations before `import` (`@if(ModuleExists("X"))`).
    pub annotations: Vec<Annotation>,
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
    /// `out` on a declaration (0.5.x reads parameter qualifiers anywhere)
    Out,
    /// `opt` on a declaration (0.5.x)
    Opt,
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
            "out" => Self::Out,
            "opt" => Self::Opt,
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
    /// `class Name<T> extends Base { members }`
    Class {
        /// Class name.
        name: String,
        /// Type parameters (1.0).
        type_params: Vec<TypeParam>,
        /// Base class, if any.
        extends: Option<TypeRef>,
        /// Fields and methods.
        members: Vec<Decl>,
    },
    /// `struct Name<T> { members }`
    Struct {
        /// Struct name.
        name: String,
        /// Type parameters (1.0).
        type_params: Vec<TypeParam>,
        /// Fields and methods.
        members: Vec<Decl>,
    },
    /// `enum Name { A = 1, B = -2, C }`
    Enum {
        /// Enum name.
        name: String,
        /// Variants with optional explicit value (an integer literal,
        /// possibly negated).
        variants: Vec<(String, Option<Expr>, Span)>,
    },
    /// `func name(params) -> Ret { body }` (body absent for natives).
    Function(Function),
    /// `let name: Type = init;` field (or global).
    Field {
        /// Field name.
        name: String,
        /// Field type.
        ty: TypeRef,
        /// Default value.
        init: Option<Expr>,
    },
}

/// A type parameter `T`, `+T`, `-T` or `T extends Base` (1.0).
#[derive(Debug, Clone, PartialEq)]
pub struct TypeParam {
    /// Variance marker `+` or `-`, if any.
    pub variance: Option<char>,
    /// Parameter name.
    pub name: String,
    /// Upper bound.
    pub extends: Option<TypeRef>,
    /// Position of the name.
    pub span: Span,
}

/// A function or method declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Function name.
    pub name: String,
    /// Type parameters (1.0).
    pub type_params: Vec<TypeParam>,
    /// Parameters.
    pub params: Vec<Param>,
    /// Return type (`None` = Void).
    pub ret: Option<TypeRef>,
    /// Body, `None` for `native`/`importonly` declarations; an `= expr`
    /// body is stored as a block holding `return expr;`.
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

/// A type such as `array<ref<inkText>>`; `[T]` is stored as `array<T>` and
/// `[T; N]` as `array<T>` with `static_len` N.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeRef {
    /// Base name (`array`, `ref`, `Int32`, class name …).
    pub name: String,
    /// Generic arguments.
    pub args: Vec<TypeRef>,
    /// Length of a fixed-size array type `[T; N]`.
    pub static_len: Option<u32>,
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
    /// `if c { } else if d { } else { }`, kept flat so long `else if`
    /// chains add no nesting.
    If {
        /// `if` and `else if` arms in order: condition and body.
        branches: Vec<(Expr, Block)>,
        /// Final `else` block.
        otherwise: Option<Block>,
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
    /// `continue;` (1.0)
    Continue,
    /// `e;`
    Expr(Expr),
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
        /// Decoded text (interpolations shown as `\(…)`).
        value: String,
        /// Whether an `s"…"` string interpolates `\(…)`.
        interpolated: bool,
        /// The interpolated expressions, in order.
        interpolations: Vec<Expr>,
    },
    /// `(a, b: T) -> body` closure (1.0); an expression body is stored as a
    /// block holding `return expr;`.
    Closure {
        /// Parameters with optional types.
        params: Vec<ClosureParam>,
        /// Body.
        body: Block,
    },
    /// `[a, b, c]`
    Array(Vec<Expr>),
    /// `callee<T>(args)`: `callee` is a name, a member (method call) or,
    /// in 1.0, any expression.
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

/// A closure parameter: a name and an optional type.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosureParam {
    /// Name.
    pub name: String,
    /// Declared type, if any.
    pub ty: Option<TypeRef>,
    /// Position of the name.
    pub span: Span,
}

impl Expr {
    /// Whether the expression owns sub-expressions, so [`Drop`] can skip
    /// leaves without allocating.
    fn has_children(&self) -> bool {
        !matches!(
            self.kind,
            ExprKind::Ident(_)
                | ExprKind::This
                | ExprKind::Super
                | ExprKind::Null
                | ExprKind::Bool(_)
                | ExprKind::Int(_)
                | ExprKind::Float(_)
        )
    }

    /// Moves the direct sub-expressions out into `out`, leaving a leaf.
    fn take_children(&mut self, out: &mut Vec<Expr>) {
        match std::mem::replace(&mut self.kind, ExprKind::Null) {
            ExprKind::Str { interpolations, .. } => out.extend(interpolations),
            ExprKind::Array(items) => out.extend(items),
            ExprKind::Call { callee, args, .. } => {
                out.push(*callee);
                out.extend(args);
            }
            ExprKind::Member { object, .. } => out.push(*object),
            ExprKind::Index { object, index } => {
                out.push(*object);
                out.push(*index);
            }
            ExprKind::Cast { expr, .. } | ExprKind::Unary { expr, .. } => out.push(*expr),
            ExprKind::New { args, .. } => out.extend(args),
            ExprKind::Binary { lhs, rhs, .. } | ExprKind::Assign { lhs, rhs, .. } => {
                out.push(*lhs);
                out.push(*rhs);
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                out.push(*cond);
                out.push(*then);
                out.push(*otherwise);
            }
            // Closure bodies are blocks: their nesting is bounded by the
            // parser's depth limit, so they drop normally.
            _ => {}
        }
    }
}

impl Drop for Expr {
    /// Drops iteratively: flat chains (`a + b + …`, `a.b.c…`) build deep
    /// left spines, which a recursive drop would overflow the stack on.
    fn drop(&mut self) {
        if !self.has_children() {
            return;
        }
        let mut stack = Vec::new();
        self.take_children(&mut stack);
        while let Some(mut e) = stack.pop() {
            if e.has_children() {
                e.take_children(&mut stack);
            }
        }
    }
}
