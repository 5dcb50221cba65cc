//! The client-script sandbox policy: the ONE place holding the allowlist and
//! the rules that refuse everything else.
//!
//! Pushed scripts may register RPC handlers (via [`REGISTER_FN`]) and build
//! basic ink UI. Checks are syntactic (REDscript has no type inference here):
//! types, `new`, `extends`, global calls and static receivers are checked by
//! name against the tables below; method calls are checked by method name
//! against [`ALLOWED_METHODS`] plus methods the script defines itself.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::ast::*;
use crate::lexer::StrKind;

/// Global function pushed scripts call to bind an RPC name to a handler:
/// `RegisterRpc(n"Name", new MyHandler());` — the name must be a literal.
pub const REGISTER_FN: &str = "RegisterRpc";

/// Global function pushed scripts call to send an upstream RPC to their
/// plugin: `SendServerRpc(n"Vote", json);` — the name must be a literal; the
/// names found this way are the plugin's upstream whitelist.
pub const SEND_FN: &str = "SendServerRpc";

/// Suffix naming a pushed script's entry points: every top-level
/// `func XxxInit() -> Void` is called by the runtime's generated glue after
/// each install or reload (REDscript has no reflection to find them).
pub const ENTRY_SUFFIX: &str = "Init";

/// Base class defined by the proxy that every pushed RPC handler extends.
pub const HANDLER_BASE: &str = "ShardRpcHandler";

/// Longest `extends` chain followed when looking up inherited methods and
/// fields; a cycle (which the compiler refuses anyway) stops here.
const MAX_CLASS_HOPS: usize = 64;

/// Primitive and generic type constructors every script may name.
pub const PRIMITIVE_TYPES: &[&str] = &[
    "Void",
    "Bool",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Uint8",
    "Uint16",
    "Uint32",
    "Uint64",
    "Float",
    "Double",
    "String",
    "CName",
    "ref",
    "wref",
    "script_ref",
    "array",
];

/// Engine classes pushed scripts may name, construct with `new` and use.
pub const ALLOWED_CLASSES: &[&str] = &[
    "IScriptable",
    "inkWidget",
    "inkCompoundWidget",
    "inkCanvas",
    "inkHorizontalPanel",
    "inkVerticalPanel",
    "inkText",
    "inkImage",
    "inkRectangle",
    "inkFlex",
    "inkPointerEvent",
    HANDLER_BASE,
];

/// Ink widget classes: the only receivers of [`INPUT_CALLBACK_FN`].
pub const INK_WIDGET_CLASSES: &[&str] = &[
    "inkWidget",
    "inkCompoundWidget",
    "inkCanvas",
    "inkHorizontalPanel",
    "inkVerticalPanel",
    "inkFlex",
    "inkText",
    "inkImage",
    "inkRectangle",
];

/// Widget method that binds an input event to a callback:
/// `w.RegisterToCallback(n"OnRelease", this, n"OnClick")`, allowed only in
/// that exact form (see [`INPUT_EVENTS`]).
pub const INPUT_CALLBACK_FN: &str = "RegisterToCallback";

/// Input events a pushed widget may listen to.
pub const INPUT_EVENTS: &[&str] = &["OnRelease", "OnPress", "OnHoverOver", "OnHoverOut"];

/// Declared signatures (parameter types; `opt ` marks optional ones) of the
/// ink methods added for interactive UI, as the game's public script
/// declarations state them; the checker counts arguments against them and
/// refuses a literal of the wrong kind.
pub const METHOD_SIGNATURES: &[(&str, &[&str])] = &[
    // inkWidget
    ("SetFitToContent", &["Bool"]),
    ("SetInteractive", &["Bool"]),
    ("SetVisible", &["Bool"]),
    ("SetSizeRule", &["inkESizeRule"]),
    ("SetSizeCoefficient", &["Float"]),
    ("SetWidth", &["Float"]),
    ("SetHeight", &["Float"]),
    ("SetHAlign", &["inkEHorizontalAlign"]),
    ("SetVAlign", &["inkEVerticalAlign"]),
    ("SetAffectsLayoutWhenHidden", &["Bool"]),
    (INPUT_CALLBACK_FN, &["CName", "IScriptable", "CName"]),
    // inkCompoundWidget
    ("SetChildMargin", &["inkMargin"]),
    ("SetChildOrder", &["inkEChildOrder"]),
    // inkText
    ("SetFontStyle", &["CName"]),
    ("SetLetterCase", &["textLetterCase"]),
    ("SetHorizontalAlignment", &["textHorizontalAlignment"]),
    ("SetVerticalAlignment", &["textVerticalAlignment"]),
    ("SetContentHAlign", &["inkEHorizontalAlign"]),
    ("SetContentVAlign", &["inkEVerticalAlign"]),
    (
        "SetWrapping",
        &["Bool", "opt Float", "opt textWrappingPolicy"],
    ),
    ("SetOverflowPolicy", &["textOverflowPolicy"]),
    // inkPointerEvent (read-only accessors)
    ("GetActionName", &[]),
    ("IsAction", &["CName"]),
    ("GetTarget", &[]),
    ("GetCurrentTarget", &[]),
    ("GetScreenSpacePosition", &[]),
    ("GetWindowSpacePosition", &[]),
    ("IsHandled", &[]),
];

/// Plain-data structs pushed scripts may construct.
pub const ALLOWED_STRUCTS: &[&str] = &["HDRColor", "Vector2", "inkMargin"];

/// Enums pushed scripts may read variants of (`inkEAnchor.Centered`).
pub const ALLOWED_ENUMS: &[&str] = &[
    "inkEAnchor",
    "inkEHorizontalAlign",
    "inkEVerticalAlign",
    "inkESizeRule",
    "inkEChildOrder",
    "textLetterCase",
    "textHorizontalAlignment",
    "textVerticalAlignment",
    "textWrappingPolicy",
    "textOverflowPolicy",
];

/// Classes a pushed script class may extend (besides its own classes).
pub const ALLOWED_EXTENDS: &[&str] = &["IScriptable", HANDLER_BASE];

/// Methods callable on any receiver: the basic ink widget API, the handler
/// entry point and array methods.
pub const ALLOWED_METHODS: &[&str] = &[
    // inkWidget
    "SetText",
    "GetText",
    "SetVisible",
    "IsVisible",
    "SetOpacity",
    "GetOpacity",
    "SetMargin",
    "SetPadding",
    "SetFontSize",
    "SetTintColor",
    "SetAnchor",
    "SetAnchorPoint",
    "SetSize",
    "GetSize",
    "SetHAlign",
    "SetVAlign",
    "SetName",
    "GetName",
    "SetRotation",
    "SetTranslation",
    "SetScale",
    "SetFitToContent",
    "SetInteractive",
    "SetSizeRule",
    "SetSizeCoefficient",
    "SetWidth",
    "SetHeight",
    "SetAffectsLayoutWhenHidden",
    "SetChildMargin",
    "SetChildOrder",
    "SetFontStyle",
    "SetLetterCase",
    "SetHorizontalAlignment",
    "SetVerticalAlignment",
    "SetContentHAlign",
    "SetContentVAlign",
    "SetWrapping",
    "SetOverflowPolicy",
    // inkPointerEvent (read-only)
    "GetActionName",
    "IsAction",
    "GetTarget",
    "GetCurrentTarget",
    "GetScreenSpacePosition",
    "GetWindowSpacePosition",
    "IsHandled",
    // inkCompoundWidget
    "AddChildWidget",
    "RemoveChild",
    "RemoveAllChildren",
    "GetNumChildren",
    "GetWidgetByIndex",
    "GetRootWidget",
    "Reparent",
    // ShardRpcHandler
    "OnRpc",
    // array<T>
    "PushBack",
    "PopBack",
    "Size",
    "Clear",
    "Contains",
    "Remove",
];

/// Methods a subclass inherits from an allowed base and may call unqualified.
pub const INHERITED_METHODS: &[(&str, &[&str])] =
    &[(HANDLER_BASE, &["OnRpc"]), ("IScriptable", &[])];

/// Global functions pushed scripts may call: registration, proxy helpers and
/// pure string/number/array builtins. No logging (it writes files), no
/// game-instance, system, file, network or spawn access.
pub const ALLOWED_FUNCTIONS: &[&str] = &[
    REGISTER_FN,
    SEND_FN,
    // Proxy helpers (ClientPluginProxy.reds).
    "ShardHudRoot",
    "ShardJsonGetString",
    "ShardJsonGetNumber",
    "ShardJsonGetBool",
    "ShardJsonGetSize",
    "ShardJsonSetString",
    "ShardJsonSetNumber",
    "ShardJsonSetBool",
    // Builtins.
    "ToString",
    "StrLen",
    "StrLeft",
    "StrRight",
    "StrMid",
    "StrFindFirst",
    "StrContains",
    "StrBeginsWith",
    "StrReplace",
    "StrUpper",
    "StrLower",
    "IntToString",
    "FloatToString",
    "StringToInt",
    "StringToFloat",
    "NameToString",
    "StringToName",
    "Cast",
    "IsDefined",
    "Min",
    "Max",
    "Clamp",
    "MinF",
    "MaxF",
    "ClampF",
    "Abs",
    "AbsF",
    "RoundF",
    "FloorF",
    "CeilF",
    "RandRange",
    "RandRangeF",
    "ArraySize",
    "ArrayPush",
    "ArrayPop",
    "ArrayClear",
    "ArrayContains",
    "ArrayRemove",
    "ArrayErase",
    "ArrayLast",
    "ArrayResize",
];

/// Annotations that hook game methods; never allowed in pushed scripts.
pub const HOOK_ANNOTATIONS: &[&str] = &["wrapMethod", "replaceMethod", "addMethod", "addField"];

/// Annotations pushed scripts may use (conditional compilation only).
pub const ALLOWED_ANNOTATIONS: &[&str] = &["if"];

/// Which set of rules to apply, because the shipped proxy needs `native`
/// and engine access that pushed scripts must never have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Scripts pushed by a server: the full allowlist applies.
    Client,
    /// The audited proxy shipped with the client: only parse errors and
    /// `persistent` fields are refused.
    Proxy,
}

/// Stable identifier of each refusal, so tools and tests can match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// The file does not parse.
    ParseError,
    /// `@wrapMethod`, `@replaceMethod`, `@addMethod`, `@addField`.
    HookAnnotation,
    /// Any other annotation outside [`ALLOWED_ANNOTATIONS`].
    ForbiddenAnnotation,
    /// A `native` declaration.
    NativeDecl,
    /// A `persistent` field (save-game persistence).
    PersistentField,
    /// `exec`, `importonly` or `quest` qualifiers.
    ForbiddenModifier,
    /// A type, `new` or static receiver outside the allowlist.
    ForbiddenClass,
    /// A call to a global function outside the allowlist.
    ForbiddenFunction,
    /// A call to a method outside the allowlist.
    ForbiddenMethod,
    /// `extends` of a class outside [`ALLOWED_EXTENDS`].
    ForbiddenExtends,
    /// `RegisterRpc` or `SendServerRpc` with a name that is not a string/name literal.
    RpcNameNotLiteral,
    /// `s"…\(expr)…"` interpolation (would hide calls from the checker).
    StringInterpolation,
    /// A script declaration shadowing an allowlisted or `Shard*` name.
    ReservedName,
    /// `RegisterToCallback` in any form but `widget.RegisterToCallback(n"OnRelease"|…, this, n"CbMethod")`.
    InputCallback,
    /// An allowlisted method called with arguments its declared signature refuses.
    BadArguments,
    /// A top-level `…Init` function that takes parameters or returns a value.
    EntryPoint,
}

impl Rule {
    /// The kebab-case id shown in diagnostics and used in the malicious corpus.
    pub fn id(self) -> &'static str {
        match self {
            Rule::ParseError => "parse-error",
            Rule::HookAnnotation => "hook-annotation",
            Rule::ForbiddenAnnotation => "forbidden-annotation",
            Rule::NativeDecl => "native-decl",
            Rule::PersistentField => "persistent-field",
            Rule::ForbiddenModifier => "forbidden-modifier",
            Rule::ForbiddenClass => "forbidden-class",
            Rule::ForbiddenFunction => "forbidden-function",
            Rule::ForbiddenMethod => "forbidden-method",
            Rule::ForbiddenExtends => "forbidden-extends",
            Rule::RpcNameNotLiteral => "rpc-name-not-literal",
            Rule::StringInterpolation => "string-interpolation",
            Rule::ReservedName => "reserved-name",
            Rule::InputCallback => "input-callback",
            Rule::BadArguments => "bad-arguments",
            Rule::EntryPoint => "entry-point",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One refusal with its location, so the plugin author can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name as given to the checker.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// Which rule refused it.
    pub rule: Rule,
    /// Human explanation.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: [{}] {}",
            self.file, self.line, self.col, self.rule, self.message
        )
    }
}

/// Class named by a type, looking through `ref`/`wref`/`script_ref`.
fn inner_type(t: &TypeRef) -> &str {
    let mut cur = t;
    let mut hops = 0;
    while matches!(cur.name.as_str(), "ref" | "wref" | "script_ref") && hops < 8 {
        match cur.args.first() {
            Some(a) => cur = a,
            None => break,
        }
        hops += 1;
    }
    &cur.name
}

/// Names a set of scripts declares, gathered before checking so scripts may
/// use their own (and their sibling files') classes and functions.
#[derive(Debug, Default, Clone)]
pub(crate) struct Definitions {
    types: HashSet<String>,
    newable: HashSet<String>,
    functions: HashSet<String>,
    methods: HashSet<String>,
    classes: HashMap<String, ClassInfo>,
}

#[derive(Debug, Default, Clone)]
struct ClassInfo {
    extends: Option<String>,
    methods: HashSet<String>,
    /// Methods declared `cb func` (the only input-callback targets).
    cb_methods: HashSet<String>,
    /// Field name -> declared class (ref/wref unwrapped).
    fields: HashMap<String, String>,
}

impl Definitions {
    pub(crate) fn collect(&mut self, module: &Module) {
        for d in &module.items {
            match &d.kind {
                DeclKind::Class {
                    name,
                    extends,
                    members,
                    ..
                } => {
                    self.types.insert(name.clone());
                    self.newable.insert(name.clone());
                    let info = self.classes.entry(name.clone()).or_default();
                    info.extends = extends.as_ref().map(|t| t.name.clone());
                    for m in members {
                        match &m.kind {
                            DeclKind::Function(f) => {
                                info.methods.insert(f.name.clone());
                                self.methods.insert(f.name.clone());
                                if m.modifiers.iter().any(|(x, _)| matches!(x, Modifier::Cb)) {
                                    info.cb_methods.insert(f.name.clone());
                                }
                            }
                            DeclKind::Field { name, ty, .. } => {
                                info.fields.insert(name.clone(), inner_type(ty).to_string());
                            }
                            _ => {}
                        }
                    }
                }
                DeclKind::Struct { name, members, .. } => {
                    self.types.insert(name.clone());
                    self.newable.insert(name.clone());
                    let info = self.classes.entry(name.clone()).or_default();
                    for m in members {
                        match &m.kind {
                            DeclKind::Function(f) => {
                                info.methods.insert(f.name.clone());
                                self.methods.insert(f.name.clone());
                            }
                            DeclKind::Field { name, ty, .. } => {
                                info.fields.insert(name.clone(), inner_type(ty).to_string());
                            }
                            _ => {}
                        }
                    }
                }
                DeclKind::Enum { name, .. } => {
                    self.types.insert(name.clone());
                }
                DeclKind::Function(f) => {
                    self.functions.insert(f.name.clone());
                }
                DeclKind::Field { .. } => {}
            }
        }
    }
}

/// Locals in scope with O(1) lookup (hostile scripts may declare many):
/// a name -> shadowing stack map plus an undo log for block exits.
#[derive(Debug, Default)]
struct Scope {
    by_name: HashMap<String, Vec<Option<String>>>,
    log: Vec<String>,
}

impl Scope {
    fn push(&mut self, (name, ty): (String, Option<String>)) {
        self.by_name.entry(name.clone()).or_default().push(ty);
        self.log.push(name);
    }

    fn len(&self) -> usize {
        self.log.len()
    }

    fn truncate(&mut self, mark: usize) {
        while self.log.len() > mark {
            let Some(name) = self.log.pop() else {
                break;
            };
            if let Some(stack) = self.by_name.get_mut(&name) {
                stack.pop();
                if stack.is_empty() {
                    self.by_name.remove(&name);
                }
            }
        }
    }

    fn clear(&mut self) {
        self.by_name.clear();
        self.log.clear();
    }

    /// `Some(known class)` if `name` is a local in scope.
    fn get(&self, name: &str) -> Option<Option<&str>> {
        self.by_name
            .get(name)
            .and_then(|s| s.last())
            .map(|t| t.as_deref())
    }
}

/// Walks one parsed file and records diagnostics and registered RPC names.
pub(crate) struct Checker<'a> {
    file: &'a str,
    mode: Mode,
    defs: &'a Definitions,
    class: Option<String>,
    /// Locals in scope with their statically known class, if any.
    locals: Scope,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) rpc_names: Vec<String>,
    pub(crate) upstream_names: Vec<String>,
    pub(crate) entry_points: Vec<String>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &'a str, mode: Mode, defs: &'a Definitions) -> Self {
        Self {
            file,
            mode,
            defs,
            class: None,
            locals: Scope::default(),
            diagnostics: Vec::new(),
            rpc_names: Vec::new(),
            upstream_names: Vec::new(),
            entry_points: Vec::new(),
        }
    }

    fn client(&self) -> bool {
        self.mode == Mode::Client
    }

    fn report(&mut self, span: Span, rule: Rule, message: String) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_string(),
            line: span.line,
            col: span.col,
            rule,
            message,
        });
    }

    pub(crate) fn module(&mut self, m: &Module) {
        for i in &m.imports {
            self.annotations(&i.annotations);
        }
        for d in &m.items {
            self.decl(d);
        }
    }

    fn reserved(&mut self, name: &str, span: Span) {
        if !self.client() {
            return;
        }
        let taken = name.starts_with("Shard")
            || ALLOWED_FUNCTIONS.contains(&name)
            || ALLOWED_CLASSES.contains(&name)
            || ALLOWED_STRUCTS.contains(&name)
            || ALLOWED_ENUMS.contains(&name)
            || PRIMITIVE_TYPES.contains(&name);
        if taken {
            self.report(
                span,
                Rule::ReservedName,
                format!("`{name}` is reserved by the sandbox and cannot be redeclared"),
            );
        }
    }

    fn annotations(&mut self, annotations: &[Annotation]) {
        for a in annotations {
            if !self.client() || ALLOWED_ANNOTATIONS.contains(&a.name.as_str()) {
                continue;
            }
            if HOOK_ANNOTATIONS.contains(&a.name.as_str()) {
                self.report(
                    a.span,
                    Rule::HookAnnotation,
                    format!(
                        "`@{}` hooks game code; pushed scripts may not hook methods",
                        a.name
                    ),
                );
            } else {
                self.report(
                    a.span,
                    Rule::ForbiddenAnnotation,
                    format!("annotation `@{}` is not allowed in pushed scripts", a.name),
                );
            }
        }
    }

    fn decl(&mut self, d: &Decl) {
        self.annotations(&d.annotations);
        for (m, span) in &d.modifiers {
            match m {
                Modifier::Persistent => self.report(
                    *span,
                    Rule::PersistentField,
                    "`persistent` writes into save games; not allowed".to_string(),
                ),
                Modifier::Native if self.client() => self.report(
                    *span,
                    Rule::NativeDecl,
                    "`native` declarations bind engine/DLL code; only the proxy may declare them"
                        .to_string(),
                ),
                Modifier::Exec | Modifier::ImportOnly | Modifier::Quest if self.client() => self
                    .report(
                        *span,
                        Rule::ForbiddenModifier,
                        format!("qualifier `{m:?}` is not allowed in pushed scripts")
                            .to_lowercase(),
                    ),
                _ => {}
            }
        }
        match &d.kind {
            DeclKind::Class {
                name,
                type_params,
                extends,
                members,
            } => {
                self.reserved(name, d.span);
                self.type_params(type_params);
                if let Some(base) = extends {
                    let ok = ALLOWED_EXTENDS.contains(&base.name.as_str())
                        || self.defs.classes.contains_key(&base.name);
                    if !ok && self.client() {
                        self.report(
                            base.span,
                            Rule::ForbiddenExtends,
                            format!(
                                "class `{name}` may not extend `{}`; allowed bases: {}",
                                base.name,
                                ALLOWED_EXTENDS.join(", ")
                            ),
                        );
                    } else {
                        self.type_ref(base);
                    }
                }
                let saved = self.class.replace(name.clone());
                for m in members {
                    self.decl(m);
                }
                self.class = saved;
            }
            DeclKind::Struct {
                name,
                type_params,
                members,
            } => {
                self.reserved(name, d.span);
                self.type_params(type_params);
                let saved = self.class.replace(name.clone());
                for m in members {
                    self.decl(m);
                }
                self.class = saved;
            }
            DeclKind::Enum { name, variants } => {
                self.reserved(name, d.span);
                for (_, v, _) in variants {
                    if let Some(v) = v {
                        self.expr(v);
                    }
                }
            }
            DeclKind::Function(f) => {
                if self.class.is_none() {
                    self.reserved(&f.name, d.span);
                    self.entry_point(f, d.span);
                }
                self.locals.clear();
                self.type_params(&f.type_params);
                for p in &f.params {
                    self.type_ref(&p.ty);
                    self.locals
                        .push((p.name.clone(), Some(inner_type(&p.ty).to_string())));
                }
                if let Some(r) = &f.ret {
                    self.type_ref(r);
                }
                if let Some(b) = &f.body {
                    self.block(b);
                }
                self.locals.clear();
            }
            DeclKind::Field { ty, init, .. } => {
                self.type_ref(ty);
                if let Some(e) = init {
                    self.expr(e);
                }
            }
        }
    }

    /// Bounds of type parameters are type uses like any other.
    fn type_params(&mut self, params: &[TypeParam]) {
        for p in params {
            if let Some(b) = &p.extends {
                self.type_ref(b);
            }
        }
    }

    fn type_allowed(&self, name: &str) -> bool {
        PRIMITIVE_TYPES.contains(&name)
            || ALLOWED_CLASSES.contains(&name)
            || ALLOWED_STRUCTS.contains(&name)
            || ALLOWED_ENUMS.contains(&name)
            || self.defs.types.contains(name)
    }

    fn type_ref(&mut self, t: &TypeRef) {
        if self.client() && !self.type_allowed(&t.name) {
            self.report(
                t.span,
                Rule::ForbiddenClass,
                format!("type `{}` is not on the sandbox allowlist", t.name),
            );
        }
        for a in &t.args {
            self.type_ref(a);
        }
    }

    fn block(&mut self, b: &Block) {
        let mark = self.locals.len();
        for s in &b.stmts {
            self.stmt(s);
        }
        self.locals.truncate(mark);
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Let { name, ty, init } => {
                if let Some(t) = ty {
                    self.type_ref(t);
                }
                if let Some(e) = init {
                    self.expr(e);
                }
                let known = ty.as_ref().map(|t| inner_type(t).to_string()).or_else(|| {
                    init.as_ref().and_then(|e| match &e.kind {
                        ExprKind::New { ty, .. } | ExprKind::Cast { ty, .. } => {
                            Some(inner_type(ty).to_string())
                        }
                        _ => None,
                    })
                });
                self.locals.push((name.clone(), known));
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    self.expr(cond);
                    self.block(body);
                }
                if let Some(o) = otherwise {
                    self.block(o);
                }
            }
            StmtKind::While { cond, body } => {
                self.expr(cond);
                self.block(body);
            }
            StmtKind::ForIn { var, iter, body } => {
                self.expr(iter);
                let mark = self.locals.len();
                self.locals.push((var.clone(), None));
                self.block(body);
                self.locals.truncate(mark);
            }
            StmtKind::Switch { scrutinee, cases } => {
                self.expr(scrutinee);
                let mark = self.locals.len();
                for c in cases {
                    if let Some(l) = &c.label {
                        self.expr(l);
                    }
                    for s in &c.body {
                        self.stmt(s);
                    }
                }
                self.locals.truncate(mark);
            }
            StmtKind::Return(e) => {
                if let Some(e) = e {
                    self.expr(e);
                }
            }
            StmtKind::Break | StmtKind::Continue => {}
            StmtKind::Expr(e) => self.expr(e),
        }
    }

    /// Whether `name` is a method of the enclosing class chain (own,
    /// script-defined ancestors, or allowed engine bases).
    fn own_method(&self, name: &str) -> bool {
        for (c, info) in self.class_chain() {
            match info {
                Some(info) if info.methods.contains(name) => return true,
                Some(_) => {}
                None => {
                    return INHERITED_METHODS
                        .iter()
                        .any(|(base, ms)| *base == c && ms.contains(&name));
                }
            }
        }
        false
    }

    /// The enclosing class and its ancestors, nearest first, each with its
    /// script definition (`None` for an engine class, which ends the chain);
    /// at most [`MAX_CLASS_HOPS`] long, so a cycle of `extends` cannot loop.
    fn class_chain(&self) -> impl Iterator<Item = (&str, Option<&ClassInfo>)> {
        let mut cur = self.class.as_deref();
        std::iter::from_fn(move || {
            let c = cur?;
            let info = self.defs.classes.get(c);
            cur = info.and_then(|i| i.extends.as_deref());
            Some((c, info))
        })
        .take(MAX_CLASS_HOPS)
    }

    fn own_field(&self, name: &str) -> bool {
        self.field_type(name).is_some()
    }

    /// Declared class of a field of the enclosing class chain.
    fn field_type(&self, name: &str) -> Option<&str> {
        self.class_chain()
            .find_map(|(_, info)| info?.fields.get(name))
            .map(String::as_str)
    }

    fn is_value(&self, name: &str) -> bool {
        // Capitalised names are always treated as types, so a local cannot
        // shadow an engine class to smuggle a static call past the checker.
        !name.starts_with(|c: char| c.is_ascii_uppercase())
            && (self.locals.get(name).is_some() || self.own_field(name))
    }

    /// Whether `e` statically denotes an instance (or type) of a class the
    /// scripts define, the only receivers on which script-defined method
    /// names may be called (elsewhere only [`ALLOWED_METHODS`]).
    fn script_receiver(&self, e: &Expr) -> bool {
        let known = match &e.kind {
            ExprKind::This | ExprKind::Super => return self.class.is_some(),
            ExprKind::Ident(n) if n.starts_with(|c: char| c.is_ascii_uppercase()) => {
                Some(n.as_str())
            }
            _ => self.static_class(e),
        };
        known.is_some_and(|t| self.defs.types.contains(t))
    }

    /// Checks an expression. The spines of flat chains (`a + b + …` on the
    /// left, `a.b().c[0] as T` on the object side) are followed in a loop,
    /// so their length costs no stack; other children recurse, and their
    /// nesting is bounded by the parser.
    fn expr(&mut self, e: &Expr) {
        let mut cur = Some(e);
        while let Some(e) = cur {
            cur = self.expr_step(e);
        }
    }

    /// Checks `e` and its children off the spine; returns the spine child
    /// still to check.
    fn expr_step<'e>(&mut self, e: &'e Expr) -> Option<&'e Expr> {
        match &e.kind {
            ExprKind::Ident(_)
            | ExprKind::This
            | ExprKind::Super
            | ExprKind::Null
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_) => None,
            ExprKind::Str {
                interpolated,
                interpolations,
                ..
            } => {
                if *interpolated && self.client() {
                    self.report(
                        e.span,
                        Rule::StringInterpolation,
                        "`\\(…)` interpolation is not allowed in pushed scripts; concatenate with `+`"
                            .to_string(),
                    );
                }
                for i in interpolations {
                    self.expr(i);
                }
                None
            }
            ExprKind::Array(items) => {
                for i in items {
                    self.expr(i);
                }
                None
            }
            ExprKind::Call {
                callee,
                type_args,
                args,
            } => {
                for t in type_args {
                    self.type_ref(t);
                }
                for a in args {
                    self.expr(a);
                }
                match &callee.kind {
                    ExprKind::Ident(name) => {
                        self.global_call(name, callee.span, args);
                        None
                    }
                    ExprKind::Member {
                        object,
                        name,
                        name_span,
                    } if name == INPUT_CALLBACK_FN && self.client() => {
                        self.input_callback(object, *name_span, args);
                        self.receiver(object)
                    }
                    ExprKind::Member {
                        object,
                        name,
                        name_span,
                    } => {
                        self.signature(name, *name_span, args);
                        let ok = ALLOWED_METHODS.contains(&name.as_str())
                            || match object.kind {
                                ExprKind::This | ExprKind::Super => self.own_method(name),
                                _ => {
                                    self.defs.methods.contains(name) && self.script_receiver(object)
                                }
                            };
                        if !ok && self.client() {
                            self.report(
                                *name_span,
                                Rule::ForbiddenMethod,
                                format!("method `{name}` is not on the sandbox allowlist"),
                            );
                        }
                        self.receiver(object)
                    }
                    _ => Some(callee),
                }
            }
            ExprKind::Member { object, .. } => self.receiver(object),
            ExprKind::Index { object, index } => {
                self.expr(index);
                Some(object)
            }
            ExprKind::Cast { expr, ty } => {
                self.type_ref(ty);
                Some(expr)
            }
            ExprKind::New { ty, args } => {
                let ok = ALLOWED_CLASSES.contains(&ty.name.as_str())
                    || ALLOWED_STRUCTS.contains(&ty.name.as_str())
                    || self.defs.newable.contains(&ty.name);
                if !ok && self.client() {
                    self.report(
                        ty.span,
                        Rule::ForbiddenClass,
                        format!(
                            "`new {}` is not allowed: class not on the allowlist",
                            ty.name
                        ),
                    );
                }
                for t in &ty.args {
                    self.type_ref(t);
                }
                for a in args {
                    self.expr(a);
                }
                None
            }
            ExprKind::Unary { expr, .. } => Some(expr),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(rhs);
                Some(lhs)
            }
            ExprKind::Assign { lhs, rhs, .. } => {
                self.expr(lhs);
                Some(rhs)
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.expr(then);
                Some(otherwise)
            }
            ExprKind::Closure { params, body } => {
                let mark = self.locals.len();
                for p in params {
                    if let Some(t) = &p.ty {
                        self.type_ref(t);
                    }
                    let known = p.ty.as_ref().map(|t| inner_type(t).to_string());
                    self.locals.push((p.name.clone(), known));
                }
                self.block(body);
                self.locals.truncate(mark);
                None
            }
        }
    }

    /// A top-level function named `…Init` is an entry point the runtime's
    /// generated glue calls after every install or reload, so it must take
    /// nothing and return nothing.
    fn entry_point(&mut self, f: &Function, span: Span) {
        if !self.client() || !f.name.ends_with(ENTRY_SUFFIX) || f.name == ENTRY_SUFFIX {
            return;
        }
        let void = f.ret.as_ref().is_none_or(|r| r.name == "Void");
        if f.params.is_empty() && void && f.body.is_some() {
            self.entry_points.push(f.name.clone());
        } else {
            self.report(
                span,
                Rule::EntryPoint,
                format!(
                    "`{}` is an entry point (top-level, named `…{ENTRY_SUFFIX}`): it must take no parameters and return Void",
                    f.name
                ),
            );
        }
    }

    /// Statically known class of an expression (locals, fields, `new`, casts).
    fn static_class<'e>(&'e self, e: &'e Expr) -> Option<&'e str> {
        match &e.kind {
            ExprKind::Ident(n) => match self.locals.get(n) {
                Some(t) => t,
                None => self.field_type(n),
            },
            ExprKind::Member { object, name, .. } if matches!(object.kind, ExprKind::This) => {
                self.field_type(name)
            }
            ExprKind::New { ty, .. } | ExprKind::Cast { ty, .. } => Some(inner_type(ty)),
            _ => None,
        }
    }

    /// Whether `name` is a `cb func` of the enclosing class chain.
    fn own_cb_method(&self, name: &str) -> bool {
        self.class_chain()
            .any(|(_, info)| info.is_some_and(|i| i.cb_methods.contains(name)))
    }

    /// `widget.RegisterToCallback(n"OnRelease", this, n"OnClick")`: the
    /// receiver a statically known ink widget, the event one of
    /// [`INPUT_EVENTS`], the target `this` of a script class, the method a
    /// literal naming a `cb func` of that class. Anything else is refused.
    fn input_callback(&mut self, object: &Expr, span: Span, args: &[Expr]) {
        let refuse = |c: &mut Self, at: Span, why: String| {
            c.report(at, Rule::InputCallback, why);
        };
        if !self
            .static_class(object)
            .is_some_and(|t| INK_WIDGET_CLASSES.contains(&t))
        {
            refuse(
                self,
                object.span,
                format!(
                    "`{INPUT_CALLBACK_FN}` only on a local or field declared as an ink widget ({})",
                    INK_WIDGET_CLASSES.join(", ")
                ),
            );
        }
        let [event, target, method] = args else {
            return refuse(
                self,
                span,
                format!("`{INPUT_CALLBACK_FN}` takes (n\"Event\", this, n\"Method\")"),
            );
        };
        let literal = |e: &Expr| match &e.kind {
            ExprKind::Str {
                kind: StrKind::Name,
                value,
                interpolated: false,
                ..
            } => Some(value.clone()),
            _ => None,
        };
        match literal(event) {
            Some(ev) if INPUT_EVENTS.contains(&ev.as_str()) => {}
            _ => refuse(
                self,
                event.span,
                format!(
                    "the input event must be a name literal, one of {}",
                    INPUT_EVENTS.join(", ")
                ),
            ),
        }
        let script_class = self
            .class
            .as_ref()
            .is_some_and(|c| self.defs.classes.contains_key(c));
        if !matches!(target.kind, ExprKind::This) || !script_class {
            refuse(
                self,
                target.span,
                "the callback target must be `this` inside a class of the script".to_string(),
            );
        }
        match literal(method) {
            Some(m) if self.own_cb_method(&m) => {}
            Some(m) => refuse(
                self,
                method.span,
                format!("`{m}` is not a `cb func` of this class"),
            ),
            None => refuse(
                self,
                method.span,
                "the callback method must be a name literal (n\"Method\")".to_string(),
            ),
        }
    }

    /// Checks a call of a method in [`METHOD_SIGNATURES`]: the argument
    /// count, and literals of the wrong kind for their parameter.
    fn signature(&mut self, name: &str, span: Span, args: &[Expr]) {
        if !self.client() {
            return;
        }
        let Some((_, params)) = METHOD_SIGNATURES.iter().find(|(m, _)| *m == name) else {
            return;
        };
        let required = params.iter().filter(|p| !p.starts_with("opt ")).count();
        if args.len() < required || args.len() > params.len() {
            self.report(
                span,
                Rule::BadArguments,
                format!(
                    "`{name}` takes {} argument(s) ({}), not {}",
                    if required == params.len() {
                        required.to_string()
                    } else {
                        format!("{required} to {}", params.len())
                    },
                    params.join(", "),
                    args.len()
                ),
            );
            return;
        }
        for (a, p) in args.iter().zip(params.iter()) {
            let ty = p.trim_start_matches("opt ");
            let fits = match &a.kind {
                ExprKind::Str { kind, .. } => match kind {
                    StrKind::Name => ty == "CName",
                    StrKind::Plain => ty == "String" || ty == "CName",
                    _ => false,
                },
                ExprKind::Bool(_) => ty == "Bool",
                ExprKind::Int(_) | ExprKind::Float(_) => {
                    matches!(ty, "Float" | "Int32" | "Uint32" | "Double")
                }
                _ => true,
            };
            if !fits {
                self.report(
                    a.span,
                    Rule::BadArguments,
                    format!("`{name}` expects {ty} here"),
                );
            }
        }
    }

    /// The object of `x.y`: a bare name that is not a local or field is a
    /// type (static call or enum variant) and must be allowed; any other
    /// object is returned to be checked as the next link of the chain.
    fn receiver<'e>(&mut self, object: &'e Expr) -> Option<&'e Expr> {
        if let ExprKind::Ident(n) = &object.kind {
            if self.client() && !self.is_value(n) && !self.type_allowed(n) {
                self.report(
                    object.span,
                    Rule::ForbiddenClass,
                    format!("`{n}` is not a local, field or allowlisted type"),
                );
            }
            None
        } else {
            Some(object)
        }
    }

    fn global_call(&mut self, name: &str, span: Span, args: &[Expr]) {
        if (name == REGISTER_FN || name == SEND_FN) && self.client() {
            match args.first().map(|a| &a.kind) {
                Some(ExprKind::Str {
                    kind: StrKind::Name | StrKind::Plain,
                    value,
                    interpolated: false,
                    ..
                }) => {
                    if name == REGISTER_FN {
                        self.rpc_names.push(value.clone());
                    } else {
                        self.upstream_names.push(value.clone());
                    }
                }
                _ => self.report(
                    args.first().map_or(span, |a| a.span),
                    Rule::RpcNameNotLiteral,
                    format!(
                        "`{name}` needs a literal RPC name (n\"Name\" or \"Name\") so the server can whitelist it"
                    ),
                ),
            }
            return;
        }
        let ok = ALLOWED_FUNCTIONS.contains(&name)
            || self.defs.functions.contains(name)
            || self.own_method(name);
        if !ok && self.client() {
            self.report(
                span,
                Rule::ForbiddenFunction,
                format!("function `{name}` is not on the sandbox allowlist"),
            );
        }
    }
}
