//! `shard-reds`: REDscript parser and the client-script sandbox policy.
//!
//! Servers push REDscript to clients; this crate decides what may run. It
//! parses scripts with the grammar of the released compilers (the union of
//! REDscript 0.5.x and 1.0, [`parse`]; constructs only one of them accepts are
//! reported as [`DialectUse`]s) and checks them against
//! the allowlist in [`policy`] (RPC registration and basic ink UI only). The
//! server runs [`check_scripts`] when loading a plugin and the client runs it
//! again before installing, so a server cannot push around it.
//!
//! This crate must never depend on `shard-server` or `shard-client`: both
//! sides depend on it, so it sits next to `shard-protocol` at the bottom of
//! the graph. Nothing here panics on any input; real nesting is bounded by
//! [`limits::MAX_SCRIPT_DEPTH`](shard_protocol::limits::MAX_SCRIPT_DEPTH)
//! and flat chains of any length cost no stack.

#![forbid(unsafe_code)]

pub mod ast;
pub mod error;
pub mod lexer;
pub mod parser;
pub mod policy;

pub use ast::{Construct, Dialect, DialectNote};
pub use error::ParseError;
pub use policy::{Diagnostic, ENTRY_SUFFIX, Mode, REGISTER_FN, Rule, SEND_FN};

use policy::{Checker, Definitions};

/// Result of checking one file, so callers get both the refusals and the RPC
/// names the file registers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptCheck {
    /// Refusals, sorted by position; empty means the file is accepted.
    pub diagnostics: Vec<Diagnostic>,
    /// RPC names registered via [`REGISTER_FN`], in source order.
    pub rpc_names: Vec<String>,
    /// Constructs only one REDscript version accepts, so the report can say
    /// which compiler the script needs.
    pub dialect: Vec<DialectUse>,
    /// Upstream RPC names sent via [`SEND_FN`], in source order.
    pub upstream_names: Vec<String>,
    /// Entry points (top-level `…Init() -> Void`), in source order.
    pub entry_points: Vec<String>,
}

/// A use of a construct only one compiler generation accepts, located in a
/// file, so `check-plugin` can tell authors which REDscript install a script
/// needs (players' installs differ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialectUse {
    /// File name given by the caller.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// What was used; [`Construct::only_in`] says which version accepts it.
    pub construct: Construct,
}

impl std::fmt::Display for DialectUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: needs {}: {}",
            self.file,
            self.line,
            self.col,
            self.construct.only_in(),
            self.construct.describe()
        )
    }
}

fn dialect_uses(file: &str, m: &ast::Module) -> Vec<DialectUse> {
    m.dialect
        .iter()
        .map(|n| DialectUse {
            file: file.to_string(),
            line: n.span.line,
            col: n.span.col,
            construct: n.construct,
        })
        .collect()
}

/// The one compiler generation these uses need, if any (a parsed set never
/// needs both: such a file is a parse error).
pub fn needed_dialect(uses: &[DialectUse]) -> Option<Dialect> {
    uses.first().map(|u| u.construct.only_in())
}

/// A refusal when a plugin's files together need both versions: the game
/// compiles all scripts with one compiler, which then rejects some file.
fn mixed_dialects(uses: &[DialectUse]) -> Option<Diagnostic> {
    let old = uses
        .iter()
        .find(|u| u.construct.only_in() == Dialect::V05)?;
    let new = uses.iter().find(|u| u.construct.only_in() == Dialect::V1)?;
    Some(Diagnostic {
        file: new.file.clone(),
        line: new.line,
        col: new.col,
        rule: Rule::ParseError,
        message: format!(
            "expected syntax of one REDscript version: {} needs {}, but {}:{}:{} uses {} ({})",
            new.construct.describe(),
            Dialect::V1,
            old.file,
            old.line,
            old.col,
            old.construct.describe(),
            Dialect::V05
        ),
    })
}

impl ScriptCheck {
    /// Whether the file passed the sandbox, so callers need not inspect diagnostics.
    pub fn is_ok(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// Result of checking a plugin's whole set of client scripts, which is what
/// the server announces and the client installs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// All refusals across files, sorted by file then position.
    pub diagnostics: Vec<Diagnostic>,
    /// All registered RPC names, sorted and deduplicated.
    pub rpc_names: Vec<String>,
    /// Single-version constructs of all files, by file then position.
    pub dialect: Vec<DialectUse>,
    /// All upstream RPC names the scripts send (the plugin's upstream
    /// whitelist), sorted and deduplicated.
    pub upstream_names: Vec<String>,
    /// Entry points the runtime's glue calls, sorted.
    pub entry_points: Vec<String>,
}

impl CheckReport {
    /// Whether every file passed, so callers need not inspect diagnostics.
    pub fn is_ok(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

fn parse_diagnostic(e: ParseError) -> Diagnostic {
    Diagnostic {
        line: e.span.line,
        col: e.span.col,
        rule: Rule::ParseError,
        message: format!("expected {}", e.expected),
        file: e.file,
    }
}

/// Stack size of the worker thread that parses and checks: recursion is
/// bounded by [`limits::MAX_SCRIPT_DEPTH`](shard_protocol::limits::MAX_SCRIPT_DEPTH),
/// and this leaves a wide margin even for unoptimised builds, whatever stack the caller runs on.
const WORKER_STACK: usize = 16 * 1024 * 1024;

/// Runs `f` on a scoped thread with [`WORKER_STACK`] bytes of stack; `None`
/// if the thread could not be spawned.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("shard-reds".into())
            .stack_size(WORKER_STACK)
            .spawn_scoped(s, f)
            .ok()?
            .join()
            .ok()
    })
}

fn worker_failure(file: &str) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: 1,
        col: 1,
        rule: Rule::ParseError,
        message: "could not start the script checker thread".to_string(),
    }
}

/// Parses one REDscript file into an AST, so the policy (and tools) work on
/// a real syntax tree; runs on a large private stack so nesting up to
/// [`limits::MAX_SCRIPT_DEPTH`](shard_protocol::limits::MAX_SCRIPT_DEPTH)
/// is safe from any caller thread.
pub fn parse(file: &str, source: &str) -> Result<ast::Module, ParseError> {
    on_big_stack(|| parser::parse_here(file, source)).unwrap_or_else(|| {
        Err(ParseError::new(
            file,
            ast::Span { line: 1, col: 1 },
            "a checker thread (could not spawn one)",
        ))
    })
}

fn check_many(files: &[(String, String)], mode: Mode) -> CheckReport {
    on_big_stack(|| check_many_here(files, mode)).unwrap_or_else(|| CheckReport {
        diagnostics: vec![worker_failure(files.first().map_or("", |f| f.0.as_str()))],
        ..CheckReport::default()
    })
}

fn check_many_here(files: &[(String, String)], mode: Mode) -> CheckReport {
    let mut parsed = Vec::new();
    let mut report = CheckReport::default();
    let mut defs = Definitions::default();
    for (name, src) in files {
        match parser::parse_here(name, src) {
            Ok(m) => {
                report.dialect.extend(dialect_uses(name, &m));
                defs.collect(&m);
                parsed.push((name.as_str(), m));
            }
            Err(e) => report.diagnostics.push(parse_diagnostic(e)),
        }
    }
    for (name, m) in &parsed {
        let mut c = Checker::new(name, mode, &defs);
        c.module(m);
        report.diagnostics.append(&mut c.diagnostics);
        report.rpc_names.append(&mut c.rpc_names);
        report.upstream_names.append(&mut c.upstream_names);
        report.entry_points.append(&mut c.entry_points);
    }
    if let Some(d) = mixed_dialects(&report.dialect) {
        report.diagnostics.push(d);
    }
    report
        .diagnostics
        .sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    report.rpc_names.sort();
    report.rpc_names.dedup();
    report.upstream_names.sort();
    report.upstream_names.dedup();
    report.entry_points.sort();
    report.entry_points.dedup();
    report
}

/// Checks one pushed client script against the sandbox, so a single file can
/// be validated (and its RPC names extracted) without the rest of the plugin.
pub fn check_script(file: &str, source: &str) -> ScriptCheck {
    on_big_stack(|| check_script_here(file, source)).unwrap_or_else(|| ScriptCheck {
        diagnostics: vec![worker_failure(file)],
        ..ScriptCheck::default()
    })
}

fn check_script_here(file: &str, source: &str) -> ScriptCheck {
    let mut defs = Definitions::default();
    let module = match parser::parse_here(file, source) {
        Ok(m) => m,
        Err(e) => {
            return ScriptCheck {
                diagnostics: vec![parse_diagnostic(e)],
                ..ScriptCheck::default()
            };
        }
    };
    defs.collect(&module);
    let mut c = Checker::new(file, Mode::Client, &defs);
    c.module(&module);
    let mut diagnostics = c.diagnostics;
    diagnostics.sort_by_key(|d| (d.line, d.col));
    ScriptCheck {
        diagnostics,
        rpc_names: c.rpc_names,
        dialect: dialect_uses(file, &module),
        upstream_names: c.upstream_names,
        entry_points: c.entry_points,
    }
}

/// Checks all client scripts of one plugin together (`(file name, source)`
/// pairs), so files may use each other's classes; this is what the server
/// runs at plugin load and the client runs before installing.
pub fn check_scripts(files: &[(String, String)]) -> CheckReport {
    check_many(files, Mode::Client)
}

/// Checks the shipped proxy scripts, which alone may declare `native`
/// functions and touch engine classes; only parse errors and `persistent`
/// fields are refused.
pub fn check_proxy_scripts(files: &[(String, String)]) -> CheckReport {
    check_many(files, Mode::Proxy)
}

/// Hashes RPC names with [`shard_protocol::fn_hash`], giving the sorted,
/// deduplicated `rpc_whitelist` a plugin announces, so names never cross the wire.
pub fn rpc_whitelist<S: AsRef<str>>(names: &[S]) -> Vec<u32> {
    let mut v: Vec<u32> = names
        .iter()
        .map(|n| shard_protocol::fn_hash(n.as_ref()))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Proxy script source shipped with the client, embedded so installers and
/// tests use exactly the audited text.
pub const CLIENT_PLUGIN_PROXY: &str = include_str!("../scripts/ClientPluginProxy.reds");
