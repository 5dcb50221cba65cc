//! The plugin host. Plugin code never runs in the server process: each
//! plugin lives in its own worker process (the `shard-server` binary in
//! worker mode, CPython embedded through pyo3), confined by the kernel
//! before any plugin code runs, and talks to the server only through typed,
//! data-only messages. The server keeps the authority: it validates and
//! budgets every world call, owns the files and the logs, and kills a worker
//! that does not answer by its deadline.
//!
//! Parts, one file each:
//! - [`channel`]: the messages and their framing;
//! - [`events`]: the typed events plugins listen to;
//! - `host`: the server side — loading, supervision, deadlines, restarts,
//!   the tick's plugin phase, serving world calls;
//! - [`process`]: spawning and killing worker processes;
//! - [`confine`]: the kernel confinement a worker applies to itself;
//! - [`worker`]: the worker side — interpreter, the one wrapper, `game`;
//! - [`comfort`]: the curated builtins and import allowlist (clear errors
//!   for authors, not the security boundary);
//! - [`loader`]: finding plugin files, reading each version once (source,
//!   bundle folder, hash), the file watcher;
//! - [`logs`]: the per-plugin log files;
//! - [`world`]: the [`GameWorld`] seam the simulation implements.

pub mod channel;
pub mod comfort;
pub mod confine;
pub mod events;
mod host;
pub mod loader;
pub mod logs;
pub mod process;
pub mod worker;
pub mod world;

use std::path::PathBuf;
use std::time::Duration;

pub use self::events::{EventKind, GameEvent};
pub use self::host::PluginHost;
pub use self::loader::PluginSnapshot;
pub use self::world::{GameWorld, PluginOwner};
use crate::tuning;

/// How the host runs plugins; the operator sets these in `server.toml`.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Folder holding `*.py` plugins and their `<stem>/assets`, `<stem>/client` bundles.
    pub plugins_dir: PathBuf,
    /// Folder for `<name>.log` (tracebacks, `game.log`), usually `logs/plugins`.
    pub logs_dir: PathBuf,
    /// Wall-clock budget of one callback before `PluginTimeout` is raised in it.
    pub cpu_budget: Duration,
    /// Grace after the budget before a silent worker is killed.
    pub kill_after: Duration,
    /// Errors after which a plugin is disabled.
    pub max_errors: u32,
    /// First restart delay after a worker was killed (doubles each time).
    pub restart_backoff: Duration,
    /// Address-space cap of each worker, MiB.
    pub memory_mb: u64,
    /// Run plugins even where the kernel cannot confine them (operator opt-out).
    pub allow_unconfined: bool,
    /// The binary that runs workers (default: this `shard-server`, or one beside the executable).
    pub worker_exe: Option<PathBuf>,
    /// Test builds only: plugins that run without the Python comfort layer,
    /// so tests can show the kernel confinement holds on its own.
    #[cfg(debug_assertions)]
    pub test_without_python_layers: Vec<String>,
}

impl HostConfig {
    /// A config with the default budgets and limits.
    pub fn new(plugins_dir: impl Into<PathBuf>, logs_dir: impl Into<PathBuf>) -> Self {
        Self {
            plugins_dir: plugins_dir.into(),
            logs_dir: logs_dir.into(),
            cpu_budget: tuning::DEFAULT_CPU_BUDGET,
            kill_after: tuning::DEFAULT_KILL_AFTER,
            max_errors: tuning::DEFAULT_MAX_ERRORS,
            restart_backoff: tuning::RESTART_BACKOFF_MIN,
            memory_mb: tuning::DEFAULT_PLUGIN_MEMORY_MB,
            allow_unconfined: false,
            worker_exe: None,
            #[cfg(debug_assertions)]
            test_without_python_layers: Vec::new(),
        }
    }
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A folder could not be created or read.
    #[error("{path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No binary to run workers with.
    #[error("cannot run plugin workers: {0}")]
    WorkerExe(std::io::Error),
}

/// Result of `run_command`, for the chat command layer to answer the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// No plugin registered this command.
    NotFound,
    /// Admin-only command asked for by a non-admin.
    Refused,
    /// The handler ran without error.
    Ran,
    /// The handler raised (or its worker was killed); the message says why.
    Failed(String),
}

/// Result of `run_rpc`, so the RPC gate counts what did not reach a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcOutcome {
    /// The plugin is not loaded (starting, restarting, disabled, failed or gone).
    NotLoaded,
    /// The plugin registered no `game.on_rpc` handler for that name.
    NoHandler,
    /// The handler ran without error.
    Ran,
    /// The handler raised (or its worker was killed); the message says why.
    Failed(String),
}

/// Lifecycle state of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginState {
    /// Its worker is starting; it loads once the interpreter is up.
    Starting,
    /// Running: receives events and commands.
    Loaded,
    /// Its worker was killed or crashed; it starts again after a backoff.
    Restarting,
    /// Turned off (too many errors or by the operator) until changed or enabled.
    Disabled,
    /// Never loaded successfully (bad metadata, syntax error, exception at import).
    Failed,
}

/// What `plugins()` reports about one plugin (for the console and announcements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Name (= file stem).
    pub name: String,
    /// Plugin id announced to clients (stable for the process lifetime).
    pub id: u16,
    /// `__plugin__["version"]` of the running version ("" if never loaded).
    pub version: String,
    /// State.
    pub state: PluginState,
    /// Errors since the running version loaded.
    pub errors: u32,
    /// Times its worker was killed or crashed and restarted.
    pub restarts: u32,
    /// SHA-256 (hex) over source and bundle folder of the running (or last tried) version.
    pub hash: String,
    /// The plugin's bundle folder (`plugins/<stem>`), which may not exist.
    pub bundle_dir: PathBuf,
    /// Why the last load or the disabling happened, if it did.
    pub last_error: Option<String>,
    /// The worker's process id while it runs.
    pub worker_pid: Option<u32>,
}

/// Extra checks the server runs when a plugin loads (bundle packing, REDscript
/// policy); an `Err` rejects that version like a Python load error would.
pub trait PluginLoadHook {
    /// Called after the new version ran and its metadata is valid, before it
    /// goes live, with the files that version was read from (no second read).
    fn check(
        &mut self,
        name: &str,
        version: &str,
        snap: &PluginSnapshot,
    ) -> Result<(), crate::bundles::BundleBuildError>;
    /// Called when a plugin is unloaded or disabled, so its announcement can go.
    fn unloaded(&mut self, _name: &str) {}
}

/// A Python tool script raised: its path, the formatted traceback and the exception.
#[derive(Debug, thiserror::Error)]
#[error("{}: {traceback}{exception}", script.display())]
pub struct ToolError {
    /// The script that failed.
    pub script: std::path::PathBuf,
    /// The Python traceback, formatted ("" if none).
    pub traceback: String,
    /// The exception, as Python prints it.
    pub exception: String,
}

/// Runs a Python tool script (the docs generator) in an interpreter in this
/// process with `game` importable and `sys.argv` set, so tools introspect the
/// very API plugins get; `facts` (events, limits) is visible to it as
/// `SHARD`. Tools are the operator's own code, never plugins.
pub fn run_tool(
    script: &std::path::Path,
    argv: &[String],
    facts: &serde_json::Value,
) -> Result<(), ToolError> {
    use pyo3::prelude::*;
    use pyo3::types::PyDict;
    Python::with_gil(|py| {
        let run = || -> PyResult<()> {
            worker::register_global(py)?;
            let mut full = vec![script.display().to_string()];
            full.extend(argv.iter().cloned());
            py.import("sys")?.setattr("argv", full)?;
            let init = PyDict::new(py);
            init.set_item("SHARD", worker::json_to_py(py, facts)?)?;
            py.import("runpy")?
                .call_method1("run_path", (script.display().to_string(), init, "__main__"))?;
            Ok(())
        };
        run().map_err(|e| ToolError {
            script: script.to_path_buf(),
            traceback: e
                .traceback(py)
                .and_then(|t| t.format().ok())
                .unwrap_or_default(),
            exception: e.to_string(),
        })
    })
}
