//! The Python plugin host: discovers `plugins/*.py`, runs each in its own
//! module namespace inside the one embedded CPython, dispatches events and
//! chat commands to them through a single guarded wrapper (current plugin,
//! CPU budget, exception capture, per-plugin log, error count → disable), and
//! hot-reloads them when their hash (source + bundle folder) changes.
//!
//! Decisions (see also DESIGN.md "Python plugin host"):
//! - A plugin's identity is its file stem; `__plugin__["name"]` must equal it,
//!   so the log file, bundle folder and name always agree.
//! - A reload runs the new version first with its registrations staged; only
//!   when it loaded cleanly are the old version's listeners, commands and
//!   entities removed (before the new version receives any event). A failing
//!   new version is rolled back and the old one keeps running.
//! - The error count resets when a new version loads; the `max_errors`-th
//!   error disables the plugin until its file changes or `enable` is called.
//! - `OnUnload` (dict arg, empty) runs when a plugin is unloaded (file deleted,
//!   operator `disable`) and for every plugin at `shutdown`.
//! - CPython is never finalized (pyo3 cannot re-initialize it); `shutdown`
//!   drops every plugin object instead.
//! - Sandboxing: see [`sandbox`] and docs/SECURITY.md.

mod game;
pub mod sandbox;
mod watchdog;
pub mod world;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use sha2::{Digest, Sha256};
use shard_protocol::limits::{MAX_PLUGIN_NAME, MAX_PLUGIN_VERSION, MAX_PLUGINS};

use self::game::{CtxGuard, Current, Registry, lock};
pub use self::game::{GameError, PluginTimeout};
pub use self::world::{GameWorld, PluginOwner};

/// Quiet time after the last file event before changes are applied, so an
/// editor's burst of writes causes one reload.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(100);

/// Full rescan interval, the fallback when file events are lost.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(60);

/// Default CPU budget of one plugin callback.
pub const DEFAULT_CPU_BUDGET: Duration = Duration::from_millis(50);

/// Default number of errors after which a plugin is disabled.
pub const DEFAULT_MAX_ERRORS: u32 = 5;

/// Where plugins live and how strictly they are policed.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Folder holding `*.py` plugins and their `<stem>/assets`, `<stem>/client` bundles.
    pub plugins_dir: PathBuf,
    /// Folder for `<name>.log` (tracebacks, `game.log`), usually `logs/plugins`.
    pub logs_dir: PathBuf,
    /// Wall-clock budget of one callback before `PluginTimeout` is raised in it.
    pub cpu_budget: Duration,
    /// Errors after which a plugin is disabled.
    pub max_errors: u32,
}

impl HostConfig {
    /// A config with the default budget and error limit.
    pub fn new(plugins_dir: impl Into<PathBuf>, logs_dir: impl Into<PathBuf>) -> Self {
        Self {
            plugins_dir: plugins_dir.into(),
            logs_dir: logs_dir.into(),
            cpu_budget: DEFAULT_CPU_BUDGET,
            max_errors: DEFAULT_MAX_ERRORS,
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
    /// The interpreter could not set up the host's helpers.
    #[error("python: {0}")]
    Python(String),
    /// The watchdog thread could not start.
    #[error("cannot start the plugin watchdog thread: {0}")]
    Watchdog(std::io::Error),
}

/// Every event a plugin can listen to (`game.on(name)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Every simulation tick; the listener gets `dt` (seconds, float).
    Tick,
    /// A peer joined.
    PeerJoin,
    /// A peer left.
    PeerLeave,
    /// A peer sent a chat line that is not a command.
    ChatMsg,
    /// An NPC was spawned.
    NpcSpawn,
    /// A vehicle was spawned.
    VehicleSpawn,
    /// An entity went away (dict key `entity_id` untracks it from its owner).
    EntityDespawn,
    /// A peer interacted with an entity.
    Interact,
    /// A client installed (or failed to install) a plugin bundle.
    BundleInstalled,
    /// The plugin is being unloaded (deleted, disabled by the operator, shutdown).
    Unload,
}

impl EventKind {
    /// Every event, in the order listed to plugin authors.
    pub const ALL: [EventKind; 10] = [
        Self::Tick,
        Self::PeerJoin,
        Self::PeerLeave,
        Self::ChatMsg,
        Self::NpcSpawn,
        Self::VehicleSpawn,
        Self::EntityDespawn,
        Self::Interact,
        Self::BundleInstalled,
        Self::Unload,
    ];

    /// The name plugins use (`"OnTick"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tick => "OnTick",
            Self::PeerJoin => "OnPeerJoin",
            Self::PeerLeave => "OnPeerLeave",
            Self::ChatMsg => "OnChatMsg",
            Self::NpcSpawn => "OnNpcSpawn",
            Self::VehicleSpawn => "OnVehicleSpawn",
            Self::EntityDespawn => "OnEntityDespawn",
            Self::Interact => "OnInteract",
            Self::BundleInstalled => "OnBundleInstalled",
            Self::Unload => "OnUnload",
        }
    }

    /// Parses a plugin-facing event name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One event for `fire_event`: its kind and the dict plugins receive.
#[derive(Debug, Clone)]
pub struct Event {
    /// Which event.
    pub kind: EventKind,
    /// The listener's argument (for `Tick`, a number or `{"dt": ..}` gives dt).
    pub data: serde_json::Value,
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
    /// The handler raised; the message is the exception (traceback went to the log).
    Failed(String),
}

/// Lifecycle state of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginState {
    /// Running: receives events and commands.
    Loaded,
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
    /// SHA-256 (hex) over source and bundle folder of the running (or last tried) version.
    pub hash: String,
    /// The plugin's bundle folder (`plugins/<stem>`), which may not exist.
    pub bundle_dir: PathBuf,
    /// Why the last load or the disabling happened, if it did.
    pub last_error: Option<String>,
}

/// Extra checks the server runs when a plugin loads (bundle packing, REDscript
/// policy); an `Err` rejects that version like a Python load error would.
pub trait PluginLoadHook {
    /// Called after the new version ran and its metadata is valid, before it goes live.
    fn check(
        &mut self,
        name: &str,
        version: &str,
        hash: &str,
        bundle_dir: &Path,
    ) -> Result<(), String>;
    /// Called when a plugin is unloaded or disabled, so its announcement can go.
    fn unloaded(&mut self, _name: &str) {}
}

/// One plugin known to the host.
struct Plugin {
    id: u16,
    path: PathBuf,
    version: String,
    state: PluginState,
    errors: u32,
    /// Hash of the running version.
    hash: String,
    /// Hash of the last version tried (equal to `hash` unless a reload failed).
    seen_hash: String,
    generation: u64,
    module: Option<Py<PyModule>>,
    last_error: Option<String>,
}

const HELPERS: &std::ffi::CStr = c"
import traceback, io, contextlib, builtins

def format_exc(t, v, tb):
    return ''.join(traceback.format_exception(t, v, tb))

def console(code, ns):
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            try:
                c = compile(code, '<console>', 'eval')
            except SyntaxError:
                c = None
            if c is not None:
                r = eval(c, ns)
                if r is not None:
                    print(repr(r))
            else:
                exec(compile(code, '<console>', 'exec'), ns)
    except BaseException as e:
        buf.write(''.join(traceback.format_exception(e)))
    return buf.getvalue()
";

/// The embedded-Python plugin host; lives on the simulation thread.
pub struct PluginHost {
    cfg: HostConfig,
    registry: Arc<Mutex<Registry>>,
    plugins: BTreeMap<String, Plugin>,
    ids: HashMap<String, u16>,
    next_generation: u64,
    states: HashMap<String, Py<PyDict>>,
    helpers: Py<PyModule>,
    console_ns: Py<PyDict>,
    watchdog: watchdog::Watchdog,
    _watcher: Option<notify::RecommendedWatcher>,
    fs_events: Receiver<notify::Result<notify::Event>>,
    last_fs_event: Option<Instant>,
    last_rescan: Instant,
    hook: Option<Box<dyn PluginLoadHook>>,
}

fn py_err(e: PyErr) -> HostError {
    HostError::Python(e.to_string())
}

impl PluginHost {
    /// Prepares the interpreter, the log folder, the watchdog and the file watcher.
    pub fn new(cfg: HostConfig) -> Result<Self, HostError> {
        for dir in [&cfg.plugins_dir, &cfg.logs_dir] {
            std::fs::create_dir_all(dir).map_err(|source| HostError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let (helpers, console_ns) = Python::with_gil(|py| -> PyResult<_> {
            game::register_global(py)?;
            sandbox::install(py)?;
            let helpers = PyModule::from_code(py, HELPERS, c"<shard-host>", c"_shard_host")?;
            let sandbox_py = PyModule::from_code(
                py,
                sandbox::SANDBOX_PY,
                c"<shard-sandbox>",
                c"_shard_sandbox",
            )?;
            helpers.setattr("sandbox", sandbox_py)?;
            let ns = PyDict::new(py);
            ns.set_item("__builtins__", py.import("builtins")?)?;
            ns.set_item(
                "game",
                py.import("sys")?.getattr("modules")?.get_item("game")?,
            )?;
            Ok((helpers.unbind(), ns.unbind()))
        })
        .map_err(py_err)?;
        let watchdog = watchdog::Watchdog::start(cfg.cpu_budget).map_err(HostError::Watchdog)?;
        let (tx, fs_events) = std::sync::mpsc::channel();
        let watcher = match notify::recommended_watcher(move |ev| {
            let _ = tx.send(ev);
        }) {
            Ok(mut w) => {
                use notify::Watcher;
                match w.watch(&cfg.plugins_dir, notify::RecursiveMode::Recursive) {
                    Ok(()) => Some(w),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch the plugins folder; relying on the 60 s rescan");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no file watcher; relying on the 60 s rescan");
                None
            }
        };
        Ok(Self {
            cfg,
            registry: Arc::default(),
            plugins: BTreeMap::new(),
            ids: HashMap::new(),
            next_generation: 1,
            states: HashMap::new(),
            helpers,
            console_ns,
            watchdog,
            _watcher: watcher,
            fs_events,
            last_fs_event: None,
            last_rescan: Instant::now(),
            hook: None,
        })
    }

    /// Installs the server's extra load checks (bundle packing, REDscript policy).
    pub fn set_load_hook(&mut self, hook: Box<dyn PluginLoadHook>) {
        self.hook = Some(hook);
    }

    /// The bundle folder of plugin `name` (`plugins/<name>`).
    pub fn bundle_dir(&self, name: &str) -> PathBuf {
        self.cfg.plugins_dir.join(name)
    }

    /// Loads every `plugins/*.py` (used at start; later changes come via `poll_changes`).
    pub fn load_all(&mut self, world: &mut dyn GameWorld) {
        let _ctx = CtxGuard::enter(world, self.registry.clone());
        Python::with_gil(|py| self.rescan(py));
    }

    /// Applies file changes: after the debounce for watcher events, or the periodic rescan.
    pub fn poll_changes(&mut self, world: &mut dyn GameWorld) {
        loop {
            match self.fs_events.try_recv() {
                Ok(Ok(ev)) => {
                    if !matches!(ev.kind, notify::EventKind::Access(_)) {
                        self.last_fs_event = Some(Instant::now());
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "plugin file watcher error"),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let due_event = self
            .last_fs_event
            .is_some_and(|t| t.elapsed() >= RELOAD_DEBOUNCE);
        let due_rescan = self.last_rescan.elapsed() >= RESCAN_INTERVAL;
        if due_event || due_rescan {
            self.last_fs_event = None;
            let _ctx = CtxGuard::enter(world, self.registry.clone());
            Python::with_gil(|py| self.rescan(py));
        }
    }

    /// Calls every `OnTick` listener with `dt` seconds.
    pub fn fire_tick(&mut self, world: &mut dyn GameWorld, dt: f64) {
        let _ctx = CtxGuard::enter(world, self.registry.clone());
        Python::with_gil(|py| {
            let arg = pyo3::types::PyFloat::new(py, dt).into_any();
            self.dispatch(py, EventKind::Tick, &arg, None);
        });
    }

    /// Calls every listener of `event.kind` with its data as a dict.
    pub fn fire_event(&mut self, world: &mut dyn GameWorld, event: Event) {
        if event.kind == EventKind::Tick {
            let dt = event
                .data
                .as_f64()
                .or_else(|| event.data.get("dt").and_then(|v| v.as_f64()));
            return self.fire_tick(world, dt.unwrap_or(0.0));
        }
        if event.kind == EventKind::EntityDespawn
            && let Some(id) = event.data.get("entity_id").and_then(|v| v.as_u64())
        {
            lock(&self.registry)
                .entities
                .retain(|(_, _, e)| u64::from(*e) != id);
        }
        let _ctx = CtxGuard::enter(world, self.registry.clone());
        Python::with_gil(|py| match game::json_to_py(py, &event.data) {
            Ok(arg) => self.dispatch(py, event.kind, &arg, None),
            Err(e) => {
                tracing::error!(error = %e, event = event.kind.name(), "cannot convert event data")
            }
        });
    }

    /// Runs chat command `/name args` for `peer`; admin-only commands refuse non-admins.
    pub fn run_command(
        &mut self,
        world: &mut dyn GameWorld,
        peer: u32,
        is_admin: bool,
        name: &str,
        args: &str,
    ) -> CommandOutcome {
        let name = name.trim_start_matches('/');
        let found = {
            let reg = lock(&self.registry);
            reg.commands
                .iter()
                .filter(|c| c.name == name && self.is_live(&c.plugin, c.generation))
                .max_by_key(|c| c.generation)
                .map(|c| {
                    (
                        c.plugin.clone(),
                        c.admin,
                        Python::with_gil(|py| c.func.clone_ref(py)),
                    )
                })
        };
        let Some((plugin, admin, func)) = found else {
            return CommandOutcome::NotFound;
        };
        if admin && !is_admin {
            return CommandOutcome::Refused;
        }
        let _ctx = CtxGuard::enter(world, self.registry.clone());
        Python::with_gil(|py| {
            let Some(cur) = self.current(&plugin) else {
                return CommandOutcome::NotFound;
            };
            match self.guarded(py, &cur, || func.call1(py, (peer, args)).map(drop)) {
                Ok(()) => CommandOutcome::Ran,
                Err((short, tb)) => {
                    self.record_error(py, &plugin, &format!("command /{name}"), &tb);
                    CommandOutcome::Failed(short)
                }
            }
        })
    }

    /// Commands a peer may see in `/help`: (name, help, admin-only), sorted by name.
    pub fn command_list(&self, is_admin: bool) -> Vec<(String, String, bool)> {
        let reg = lock(&self.registry);
        let mut out: BTreeMap<String, (String, bool)> = BTreeMap::new();
        for c in reg
            .commands
            .iter()
            .filter(|c| self.is_live(&c.plugin, c.generation))
        {
            if is_admin || !c.admin {
                out.insert(c.name.clone(), (c.help.clone(), c.admin));
            }
        }
        out.into_iter().map(|(n, (h, a))| (n, h, a)).collect()
    }

    /// Every known plugin, sorted by name.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.plugins
            .iter()
            .map(|(name, p)| PluginInfo {
                name: name.clone(),
                id: p.id,
                version: p.version.clone(),
                state: p.state,
                errors: p.errors,
                hash: p.hash.clone(),
                bundle_dir: self.bundle_dir(name),
                last_error: p.last_error.clone(),
            })
            .collect()
    }

    /// Reloads plugin `name` from disk even if unchanged; false if there is no such file.
    pub fn reload(&mut self, world: &mut dyn GameWorld, name: &str) -> bool {
        let path = self.cfg.plugins_dir.join(format!("{name}.py"));
        if !path.is_file() {
            return false;
        }
        let _ctx = CtxGuard::enter(world, self.registry.clone());
        Python::with_gil(|py| self.load(py, name, &path));
        true
    }

    /// Re-enables a disabled plugin by reloading it; false if unknown or not disabled.
    pub fn enable(&mut self, world: &mut dyn GameWorld, name: &str) -> bool {
        if self.plugins.get(name).map(|p| p.state) != Some(PluginState::Disabled) {
            return false;
        }
        self.reload(world, name)
    }

    /// Disables plugin `name` at the operator's request (its unload listeners run first).
    pub fn disable(&mut self, world: &mut dyn GameWorld, name: &str) -> bool {
        if self.plugins.get(name).map(|p| p.state) != Some(PluginState::Loaded) {
            return false;
        }
        let _ctx = CtxGuard::enter(world, self.registry.clone());
        Python::with_gil(|py| {
            self.fire_unload(py, Some(name));
            self.take_down(
                py,
                name,
                PluginState::Disabled,
                "disabled by the operator".into(),
            );
        });
        true
    }

    /// Runs operator console code (`py CODE`) in a persistent admin namespace;
    /// returns what it printed, the repr of an expression, or the traceback.
    pub fn console(&mut self, world: &mut dyn GameWorld, code: &str) -> String {
        let _ctx = CtxGuard::enter(world, self.registry.clone());
        Python::with_gil(|py| {
            let ns = self.console_ns.bind(py);
            self.helpers
                .bind(py)
                .getattr("console")
                .and_then(|f| f.call1((code, ns)))
                .and_then(|s| s.extract::<String>())
                .unwrap_or_else(|e| format!("console error: {e}"))
        })
    }

    /// Runs every plugin's unload listeners, then drops all plugins.
    pub fn shutdown(&mut self, world: &mut dyn GameWorld) {
        let _ctx = CtxGuard::enter(world, self.registry.clone());
        Python::with_gil(|py| {
            self.fire_unload(py, None);
            let names: Vec<String> = self.plugins.keys().cloned().collect();
            for name in names {
                let ids = lock(&self.registry).remove(&name, None);
                despawn_all(&ids);
                if let Some(p) = self.plugins.get_mut(&name) {
                    p.module = None;
                    p.state = PluginState::Disabled;
                }
            }
            self.plugins.clear();
            self.states.clear();
        });
    }

    // ---- internals ----

    fn is_live(&self, plugin: &str, generation: u64) -> bool {
        self.plugins
            .get(plugin)
            .is_some_and(|p| p.state == PluginState::Loaded && p.generation == generation)
    }

    fn current(&self, name: &str) -> Option<Current> {
        let p = self.plugins.get(name)?;
        Some(Current {
            name: name.to_owned(),
            id: p.id,
            generation: p.generation,
            log: self.log_path(name),
        })
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.cfg.logs_dir.join(format!("{name}.log"))
    }

    /// THE wrapper every entry into plugin code goes through: sets the current
    /// plugin, arms the CPU budget, and turns an exception into (message, traceback).
    fn guarded<T>(
        &self,
        py: Python<'_>,
        cur: &Current,
        f: impl FnOnce() -> PyResult<T>,
    ) -> Result<T, (String, String)> {
        let previous = game::set_current(Some(cur.clone()));
        let ticket = self.watchdog.arm(py);
        let scope = sandbox::PluginScope::enter(&cur.name);
        let result = f();
        drop(scope);
        self.watchdog.disarm(py, ticket);
        game::set_current(previous);
        result.map_err(|e| {
            let short = if e.is_instance_of::<PluginTimeout>(py) {
                format!(
                    "PluginTimeout: callback exceeded the CPU budget of {:?}",
                    self.cfg.cpu_budget
                )
            } else {
                e.to_string()
            };
            let tb = self.format_traceback(py, &e);
            (short.clone(), format!("{short}\n{tb}"))
        })
    }

    /// The full Python traceback of `e` (falls back to its message).
    fn format_traceback(&self, py: Python<'_>, e: &PyErr) -> String {
        self.helpers
            .bind(py)
            .getattr("format_exc")
            .and_then(|f| f.call1((e.get_type(py), e.value(py), e.traceback(py))))
            .and_then(|s| s.extract::<String>())
            .unwrap_or_else(|_| e.to_string())
    }

    /// Logs and counts one error of `name`; the `max_errors`-th disables it.
    fn record_error(&mut self, py: Python<'_>, name: &str, what: &str, tb: &str) {
        append_log(&self.log_path(name), &format!("error in {what}"), tb);
        let Some(p) = self.plugins.get_mut(name) else {
            return;
        };
        p.errors += 1;
        p.last_error = Some(tb.lines().last().unwrap_or_default().to_owned());
        tracing::warn!(plugin = name, errors = p.errors, "plugin error in {what}");
        if p.errors >= self.cfg.max_errors && p.state == PluginState::Loaded {
            let why = format!("{} errors", p.errors);
            self.take_down(py, name, PluginState::Disabled, why);
            notify_admins(&format!("[Plugin {name} disabled – error]"));
        }
    }

    /// Removes a plugin's listeners, commands and entities and sets its state.
    fn take_down(&mut self, _py: Python<'_>, name: &str, state: PluginState, why: String) {
        let ids = lock(&self.registry).remove(name, None);
        despawn_all(&ids);
        if let Some(p) = self.plugins.get_mut(name) {
            p.state = state;
            p.module = None;
            p.last_error = Some(why.clone());
        }
        if let Some(hook) = self.hook.as_mut() {
            hook.unloaded(name);
        }
        append_log(&self.log_path(name), "unloaded", &why);
        tracing::warn!(plugin = name, "plugin {state:?}: {why}");
    }

    fn fire_unload(&mut self, py: Python<'_>, only: Option<&str>) {
        let arg = PyDict::new(py).into_any();
        self.dispatch(py, EventKind::Unload, &arg, only);
    }

    fn dispatch(
        &mut self,
        py: Python<'_>,
        kind: EventKind,
        arg: &Bound<'_, PyAny>,
        only: Option<&str>,
    ) {
        let targets: Vec<(String, u64, Py<PyAny>)> = lock(&self.registry)
            .listeners
            .iter()
            .filter(|l| l.kind == kind && only.is_none_or(|o| o == l.plugin))
            .map(|l| (l.plugin.clone(), l.generation, l.func.clone_ref(py)))
            .collect();
        for (plugin, generation, func) in targets {
            if !self.is_live(&plugin, generation) {
                continue;
            }
            let Some(cur) = self.current(&plugin) else {
                continue;
            };
            if let Err((_, tb)) = self.guarded(py, &cur, || func.call1(py, (arg,)).map(drop)) {
                self.record_error(py, &plugin, kind.name(), &tb);
            }
        }
    }

    /// Compares the plugins folder with what is loaded: loads new and changed
    /// files, unloads deleted ones.
    fn rescan(&mut self, py: Python<'_>) {
        self.last_rescan = Instant::now();
        let found = match discover(&self.cfg.plugins_dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.cfg.plugins_dir.display(), error = %e, "cannot list plugins");
                return;
            }
        };
        let gone: Vec<String> = self
            .plugins
            .keys()
            .filter(|n| !found.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            self.fire_unload(py, Some(&name));
            self.take_down(
                py,
                &name,
                PluginState::Disabled,
                "plugin file deleted".into(),
            );
            self.plugins.remove(&name);
        }
        for (name, path) in found {
            let hash = match plugin_hash(&path, &self.bundle_dir(&name)) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(plugin = %name, error = %e, "cannot hash plugin");
                    continue;
                }
            };
            if self.plugins.get(&name).is_none_or(|p| p.seen_hash != hash) {
                self.load(py, &name, &path);
            }
        }
    }

    /// Loads (or reloads) one plugin; on failure the previous version keeps running.
    fn load(&mut self, py: Python<'_>, name: &str, path: &Path) {
        let started = Instant::now();
        let hash = plugin_hash(path, &self.bundle_dir(name)).unwrap_or_default();
        let Some(id) = self.plugin_id(name) else {
            tracing::error!(plugin = name, "too many plugins (limit {MAX_PLUGINS})");
            return;
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        let cur = Current {
            name: name.to_owned(),
            id,
            generation,
            log: self.log_path(name),
        };
        let result = self.try_load(py, &cur, path, &hash);
        let entry = self
            .plugins
            .entry(name.to_owned())
            .or_insert_with(|| Plugin {
                id,
                path: path.to_owned(),
                version: String::new(),
                state: PluginState::Failed,
                errors: 0,
                hash: hash.clone(),
                seen_hash: String::new(),
                generation: 0,
                module: None,
                last_error: None,
            });
        entry.seen_hash = hash.clone();
        match result {
            Ok((module, version)) => {
                let old_generation = entry.generation;
                entry.version = version.clone();
                entry.state = PluginState::Loaded;
                entry.errors = 0;
                entry.hash = hash;
                entry.path = path.to_owned();
                entry.generation = generation;
                entry.module = Some(module);
                entry.last_error = None;
                let ids = lock(&self.registry).remove(name, Some(old_generation));
                despawn_all(&ids);
                tracing::info!(plugin = name, version = %version, ms = started.elapsed().as_millis() as u64, "plugin loaded");
                append_log(
                    &self.log_path(name),
                    "loaded",
                    &format!("version {version}"),
                );
            }
            Err((short, tb)) => {
                let ids = lock(&self.registry).remove(name, Some(generation));
                despawn_all(&ids);
                let keeps = entry.state == PluginState::Loaded;
                entry.last_error = Some(short.clone());
                append_log(&self.log_path(name), "load failed", &tb);
                let tail = if keeps {
                    "; the previous version keeps running"
                } else {
                    ""
                };
                let msg = format!("[Plugin {name} failed to load: {short}{tail}]");
                tracing::warn!(plugin = name, "{msg}");
                notify_admins(&msg);
                // A rejected reload is not counted against the running version:
                // five bad saves in a row must not disable a healthy plugin.
                if !keeps && let Some(p) = self.plugins.get_mut(name) {
                    p.errors += 1;
                }
            }
        }
    }

    /// Compiles and runs a plugin file in a fresh module, then validates it.
    fn try_load(
        &mut self,
        py: Python<'_>,
        cur: &Current,
        path: &Path,
        hash: &str,
    ) -> Result<(Py<PyModule>, String), (String, String)> {
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| {
            let m = format!("{file}: cannot read: {e}");
            (m.clone(), m)
        })?;
        let state = self
            .states
            .entry(cur.name.clone())
            .or_insert_with(|| PyDict::new(py).unbind())
            .clone_ref(py);
        let setup = || -> PyResult<(Bound<'_, PyModule>, Py<PyAny>)> {
            let game_mod = game::make_module(py, state.bind(py))?;
            let module = PyModule::new(py, &cur.name)?;
            module.setattr("__file__", &file)?;
            module.setattr(
                "__builtins__",
                curated_builtins(py, self.helpers.bind(py), &game_mod)?,
            )?;
            module.setattr("game", &game_mod)?;
            self.helpers.bind(py).getattr("sandbox")?.call_method1(
                "check_source",
                (
                    &source,
                    &file,
                    sandbox::FORBIDDEN_ATTRS.to_vec(),
                    sandbox::ALLOWED_DUNDERS.to_vec(),
                    sandbox::FORBIDDEN_NAMES.to_vec(),
                ),
            )?;
            let code = py
                .import("builtins")?
                .getattr("compile")?
                .call1((&source, &file, "exec"))?;
            Ok((module, code.unbind()))
        };
        let (module, code) = setup().map_err(|e| {
            let tb = self.format_traceback(py, &e);
            (format!("{file}: {e}"), tb)
        })?;
        let exec = py
            .import("builtins")
            .and_then(|b| b.getattr("exec"))
            .map_err(|e| (e.to_string(), e.to_string()))?;
        let dict = module.dict();
        self.guarded(py, cur, || exec.call1((code.bind(py), &dict)).map(drop))?;
        let version = read_metadata(&module, &cur.name, &file).map_err(|m| (m.clone(), m))?;
        if let Some(hook) = self.hook.as_mut() {
            hook.check(
                &cur.name,
                &version,
                hash,
                &self.cfg.plugins_dir.join(&cur.name),
            )
            .map_err(|m| (format!("{file}: {m}"), m))?;
        }
        Ok((module.unbind(), version))
    }

    fn plugin_id(&mut self, name: &str) -> Option<u16> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        let next = self.ids.len() + 1;
        if next > MAX_PLUGINS {
            return None;
        }
        let id = u16::try_from(next).ok()?;
        self.ids.insert(name.to_owned(), id);
        Some(id)
    }
}

/// The builtins every plugin namespace gets (sandbox layers 1 and 2): the
/// standard ones minus [`sandbox::DENIED_BUILTINS`], with an `__import__` that
/// resolves `game` to the plugin's own module and refuses modules outside
/// [`sandbox::IMPORT_ALLOWLIST`].
pub fn curated_builtins<'py>(
    py: Python<'py>,
    helpers: &Bound<'py, PyModule>,
    game_mod: &Bound<'py, PyModule>,
) -> PyResult<Bound<'py, PyAny>> {
    let allow = pyo3::types::PyFrozenSet::new(py, sandbox::IMPORT_ALLOWLIST)?;
    helpers
        .getattr("sandbox")?
        .getattr("make_builtins")?
        .call1((game_mod, sandbox::DENIED_BUILTINS.to_vec(), allow))
}

fn despawn_all(ids: &[u32]) {
    if ids.is_empty() {
        return;
    }
    game::with_world(|w| {
        for id in ids {
            w.despawn(*id);
        }
    });
}

fn notify_admins(text: &str) {
    game::with_world(|w| w.notify_admins(text));
}

/// Validates `__plugin__` and returns the version.
fn read_metadata(module: &Bound<'_, PyModule>, stem: &str, file: &str) -> Result<String, String> {
    let meta = module
        .dict()
        .get_item("__plugin__")
        .ok()
        .flatten()
        .ok_or_else(|| format!("{file}: __plugin__ is missing; define __plugin__ = {{\"name\": \"{stem}\", \"version\": \"1.0.0\"}}"))?;
    let meta = meta
        .downcast::<PyDict>()
        .map_err(|_| format!("{file}: __plugin__ must be a dict"))?;
    let field = |key: &str, max: usize| -> Result<String, String> {
        let v = meta
            .get_item(key)
            .ok()
            .flatten()
            .ok_or_else(|| format!("{file}: __plugin__[\"{key}\"] is missing"))?;
        let s: String = v
            .extract()
            .map_err(|_| format!("{file}: __plugin__[\"{key}\"] must be a string"))?;
        if s.is_empty() || s.len() > max {
            return Err(format!(
                "{file}: __plugin__[\"{key}\"] must be 1 to {max} bytes long"
            ));
        }
        Ok(s)
    };
    let name = field("name", MAX_PLUGIN_NAME)?;
    if name != stem {
        return Err(format!(
            "{file}: __plugin__[\"name\"] is \"{name}\" but must equal the file name \"{stem}\""
        ));
    }
    field("version", MAX_PLUGIN_VERSION)
}

/// Lists `dir/*.py` whose stem is a valid plugin name.
fn discover(dir: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("py") || !path.is_file() {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if stem.is_empty()
            || stem.starts_with('.')
            || stem.len() > MAX_PLUGIN_NAME
            || !stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            tracing::warn!(file = %path.display(), "ignoring plugin file: name must be ASCII letters, digits, '_' or '-'");
            continue;
        }
        out.insert(stem.to_owned(), path);
    }
    Ok(out)
}

/// SHA-256 (hex) over the plugin source and every file under `<bundle>/assets`
/// and `<bundle>/client` (relative path and contents, in sorted order).
pub fn plugin_hash(source: &Path, bundle_dir: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let src = std::fs::read(source)?;
    h.update(b"source\0");
    h.update((src.len() as u64).to_le_bytes());
    h.update(&src);
    for sub in ["assets", "client"] {
        let mut files = Vec::new();
        collect_files(&bundle_dir.join(sub), &mut files)?;
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(bundle_dir)
                .unwrap_or(&f)
                .to_string_lossy()
                .replace('\\', "/");
            let data = std::fs::read(&f)?;
            h.update(rel.as_bytes());
            h.update(b"\0");
            h.update((data.len() as u64).to_le_bytes());
            h.update(&data);
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let ty = entry.file_type()?;
        if ty.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if ty.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// Appends a timestamped entry to a plugin log; failures only go to tracing.
pub(crate) fn append_log(path: &Path, kind: &str, text: &str) {
    let line = format!(
        "[{}] {kind}\n{}\n",
        utc_timestamp(SystemTime::now()),
        text.trim_end()
    );
    let res = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = res {
        tracing::warn!(path = %path.display(), error = %e, "cannot write plugin log");
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a time (UTC, proleptic Gregorian).
fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Runs a Python tool script (the docs generator) in the embedded interpreter
/// with `game` importable and `sys.argv` set, so tools introspect the very
/// API plugins get; `facts` (events, limits) is visible to it as `SHARD`.
pub fn run_tool(script: &Path, argv: &[String], facts: &serde_json::Value) -> Result<(), String> {
    Python::with_gil(|py| {
        let run = || -> PyResult<()> {
            game::register_global(py)?;
            let mut full = vec![script.display().to_string()];
            full.extend(argv.iter().cloned());
            py.import("sys")?.setattr("argv", full)?;
            let init = PyDict::new(py);
            init.set_item("SHARD", game::json_to_py(py, facts)?)?;
            py.import("runpy")?
                .call_method1("run_path", (script.display().to_string(), init, "__main__"))?;
            Ok(())
        };
        run().map_err(|e| {
            let tb = e
                .traceback(py)
                .and_then(|t| t.format().ok())
                .unwrap_or_default();
            format!("{}: {tb}{e}", script.display())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_formats_known_instant() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(utc_timestamp(t), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn event_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
        assert_eq!(EventKind::from_name("OnNope"), None);
    }
}
