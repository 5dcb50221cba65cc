//! The worker side of the plugin host: what runs inside a plugin's own
//! process. It confines itself (rlimits, privileges, Landlock, seccomp — see
//! [`super::confine`]), starts CPython, then serves the server's requests one
//! at a time over the channel: load a version, deliver events, run a
//! command, commit or roll back a reload. Every entry into plugin code goes
//! through `guarded`, the one wrapper: it marks the callback as running
//! (so `game` functions work), arms the CPU budget, and turns an exception
//! into an error message for the server, formatted here, in the worker.

mod game;
mod watchdog;

use std::cell::Cell;
use std::ffi::CString;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet, PyModule};
use shard_protocol::limits::{MAX_PLUGIN_NAME, MAX_PLUGIN_VERSION};

pub(crate) use self::game::{GameError, PluginTimeout, game_err, json_to_py, make_module};
use super::channel::{
    BUILD_ID, Channel, FromWorker, ToWorker, WORKER_ARG, WORKER_FD, WorkerInit, WorldCall,
    WorldValue,
};
use super::comfort::{IMPORT_ALLOWLIST, REFUSED_MODULES, STUBBED_BUILTINS, WORKER_PY};
use super::confine;
use super::events::{EventKind, GameEvent};
use crate::tuning::{MAX_ERROR_TEXT, MAX_LOG_ENTRY};

/// The server end of this worker's channel (one plugin per process).
static CHANNEL: Mutex<Option<Channel>> = Mutex::new(None);

/// Listeners and commands, tagged with the load generation that registered them.
static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

thread_local! {
    /// The generation whose callback runs on this thread right now; `game`
    /// functions work only while it is set (never from a plugin's threads).
    static IN_CALLBACK: Cell<Option<u64>> = const { Cell::new(None) };
}

/// What a plugin registered.
pub(crate) enum Registration {
    /// `game.on(kind)`.
    Listener(EventKind),
    /// `game.register_command(name, ...)`.
    Command(String),
    /// `game.on_rpc(name)`.
    Rpc(String),
}

struct Entry {
    generation: u64,
    reg: Registration,
    func: Py<PyAny>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the worker if this process was started as one (`shard-server
/// __plugin-worker`); returns its exit code, or None for a normal start.
pub fn main_if_worker() -> Option<i32> {
    let mut args = std::env::args_os();
    args.next();
    if args.next()? != WORKER_ARG {
        return None;
    }
    Some(run())
}

fn run() -> i32 {
    confine::close_inherited_fds(WORKER_FD);
    // SAFETY: the server handed us this descriptor as our end of the channel;
    // nothing else in this process owns it.
    let stream = unsafe { UnixStream::from_raw_fd(WORKER_FD) };
    let mut ch = Channel::new(stream);
    let init = match ch.recv(None) {
        Ok(ToWorker::Init(init)) => init,
        _ => return 2,
    };
    *lock(&CHANNEL) = Some(ch);
    let mut worker = match Worker::start(&init) {
        Ok(w) => w,
        Err(reason) => {
            send(&FromWorker::SetupFailed { reason });
            return 3;
        }
    };
    send(&FromWorker::Ready {
        build_id: BUILD_ID.to_string(),
        confinement: worker.confinement.clone(),
    });
    loop {
        let msg = {
            let mut guard = lock(&CHANNEL);
            let Some(ch) = guard.as_mut() else { return 4 };
            match ch.recv::<ToWorker>(None) {
                Ok(m) => m,
                Err(_) => return 0,
            }
        };
        let reply = Python::with_gil(|py| worker.handle(py, msg));
        match reply {
            Some(r) => send(&r),
            None => return 5,
        }
    }
}

/// Sends one message to the server; a dead channel ends the worker.
fn send(msg: &FromWorker) {
    let mut guard = lock(&CHANNEL);
    let ok = guard.as_mut().is_some_and(|ch| ch.send(msg, None).is_ok());
    if !ok {
        std::process::exit(0);
    }
}

/// A world call from plugin code: sent to the server, answered by it.
pub(crate) fn call_world(call: WorldCall) -> Result<WorldValue, String> {
    if IN_CALLBACK.with(Cell::get).is_none() {
        return Err(
            "game functions work only inside this plugin's callbacks (not from other threads or after a callback returned)"
                .into(),
        );
    }
    let mut guard = lock(&CHANNEL);
    let Some(ch) = guard.as_mut() else {
        return Err("this game module is not running in a plugin worker".into());
    };
    let answer = Python::with_gil(|py| {
        py.allow_threads(|| {
            ch.send(&FromWorker::Call(call), None)?;
            ch.recv::<ToWorker>(None)
        })
    });
    match answer {
        Ok(ToWorker::Reply(r)) => r,
        Ok(_) => Err("protocol error: the server did not answer the call".into()),
        Err(e) => {
            drop(guard);
            // The server is gone or the channel is broken: nothing can work.
            eprintln!("plugin worker: {e}");
            std::process::exit(0);
        }
    }
}

/// `game.log` and captured output: one entry in the plugin's log.
pub(crate) fn emit_log(text: &str) -> Result<(), String> {
    if IN_CALLBACK.with(Cell::get).is_none() {
        return Err("game.log works only inside this plugin's callbacks".into());
    }
    let mut text = text.to_string();
    if text.len() > MAX_LOG_ENTRY {
        let mut cut = MAX_LOG_ENTRY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    send(&FromWorker::Log { text });
    Ok(())
}

/// Records a registration for the generation whose code is running.
pub(crate) fn register(reg: Registration, func: Py<PyAny>) {
    if let Some(generation) = IN_CALLBACK.with(Cell::get) {
        lock(&REGISTRY).push(Entry {
            generation,
            reg,
            func,
        });
    }
}

/// Where captured `print` output goes.
#[pyfunction]
fn emit(text: &str) {
    let _ = emit_log(text);
}

/// THE wrapper every entry into plugin code goes through: marks `generation`
/// as running, arms the CPU budget, and reports an exception to the server
/// (formatted here, under the budget as well) as one error of `what`.
fn guarded<T>(
    py: Python<'_>,
    helpers: &Bound<'_, PyModule>,
    generation: u64,
    what: &str,
    callbacks: u32,
    f: impl FnOnce(u64) -> PyResult<T>,
) -> Result<T, (String, String)> {
    let previous = IN_CALLBACK.with(|c| c.replace(Some(generation)));
    let ticket = watchdog::arm(callbacks);
    let result = f(ticket);
    watchdog::disarm(ticket);
    let out = result.map_err(|e| {
        // Formatting may run plugin code (`__str__`): budgeted too.
        let ticket = watchdog::arm(1);
        let described = describe(py, helpers, &e);
        watchdog::disarm(ticket);
        described
    });
    IN_CALLBACK.with(|c| c.set(previous));
    if let Err((short, traceback)) = &out {
        send(&FromWorker::Error {
            what: what.to_string(),
            short: short.clone(),
            traceback: traceback.clone(),
        });
    }
    out
}

/// The worker's Python helpers, for [`report`].
static HELPERS: pyo3::sync::GILOnceCell<Py<PyModule>> = pyo3::sync::GILOnceCell::new();

/// Reports a listener's exception from inside a delivery (formatted under
/// the delivery's remaining budget); true when that budget is spent, so the
/// remaining listeners are skipped.
#[pyfunction]
fn report(py: Python<'_>, what: &str, exc: Bound<'_, pyo3::exceptions::PyBaseException>) -> bool {
    let e = PyErr::from_value(exc.into_any());
    let (short, traceback) = match HELPERS.get(py) {
        Some(h) => describe(py, h.bind(py), &e),
        None => (e.to_string(), String::new()),
    };
    send(&FromWorker::Error {
        what: what.to_string(),
        short,
        traceback,
    });
    e.is_instance_of::<PluginTimeout>(py) || DELIVERY.with(|d| d.get().is_some_and(watchdog::fired))
}

thread_local! {
    /// The watchdog ticket of the delivery running on this thread.
    static DELIVERY: Cell<Option<u64>> = const { Cell::new(None) };
}

/// (short message, traceback) of an exception, both bounded.
fn describe(py: Python<'_>, helpers: &Bound<'_, PyModule>, e: &PyErr) -> (String, String) {
    if let Some(tb) = e.traceback(py) {
        let _ = e.value(py).setattr("__traceback__", tb);
    }
    if e.is_instance_of::<PluginTimeout>(py) {
        let short = "PluginTimeout: the callback overran its CPU budget".to_string();
        let tb = helpers
            .call_method1("format_exc", (e.value(py), MAX_LOG_ENTRY))
            .and_then(|s| s.extract::<String>())
            .unwrap_or_default();
        return (short, tb);
    }
    let short = helpers
        .call_method1("short_exc", (e.value(py), MAX_ERROR_TEXT))
        .and_then(|s| s.extract::<String>())
        .unwrap_or_else(|_| "exception (message unavailable)".into());
    let tb = helpers
        .call_method1("format_exc", (e.value(py), MAX_LOG_ENTRY))
        .and_then(|s| s.extract::<String>())
        .unwrap_or_else(|_| short.clone());
    (short, tb)
}

/// One plugin's interpreter state inside its worker.
struct Worker {
    name: String,
    confinement: String,
    helpers: Py<PyModule>,
    game: Py<PyModule>,
    builtins: Py<PyAny>,
    /// The module of each loaded generation (old ones go at commit).
    modules: Vec<(u64, Py<PyModule>)>,
    live: Option<u64>,
    console_ns: Option<Py<PyDict>>,
}

impl Worker {
    /// Sets limits, starts CPython, confines the process; no plugin code has run yet.
    fn start(init: &WorkerInit) -> Result<Self, String> {
        // One malloc arena: per-thread arenas would spend the address-space cap.
        // SAFETY: mallopt with integer arguments before any thread exists.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        confine::set_rlimits(init.memory_mb).map_err(|e| e.to_string())?;
        confine::drop_privileges().map_err(|e| e.to_string())?;
        // The worker starts with an empty environment; point CPython at the
        // installation it was built against, then forget the variable.
        let home = env!("SHARD_PYTHON_HOME");
        if !home.is_empty() {
            // SAFETY: single-threaded here (no thread has been started yet).
            unsafe { std::env::set_var("PYTHONHOME", home) };
        }
        pyo3::prepare_freethreaded_python();
        // SAFETY: as above; CPython copied what it needed at initialisation.
        unsafe { std::env::remove_var("PYTHONHOME") };
        let (worker, prefixes) = Python::with_gil(|py| {
            Self::setup_python(py, init).map_err(|e| {
                let path = py
                    .import("sys")
                    .and_then(|s| s.getattr("path"))
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                format!("the plugin interpreter did not start: {e} (sys.path = {path})")
            })
        })?;
        let mut read_only = prefixes;
        read_only.extend(init.read_only.iter().cloned());
        let landlock =
            confine::landlock(&read_only, init.require_confinement).map_err(|e| e.to_string())?;
        let seccomp = match confine::seccomp() {
            Ok(()) => "seccomp".to_string(),
            Err(e) if init.require_confinement => return Err(e.to_string()),
            Err(e) => format!("NO seccomp ({e})"),
        };
        Python::with_gil(|py| {
            watchdog::start(py, std::time::Duration::from_millis(init.cpu_budget_ms))
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            confinement: format!(
                "{landlock}, {seccomp}, rlimits (address space {} MiB), no capabilities",
                init.memory_mb
            ),
            ..worker
        })
    }

    fn setup_python(py: Python<'_>, init: &WorkerInit) -> PyResult<(Self, Vec<PathBuf>)> {
        let code = CString::new(WORKER_PY).map_err(|e| GameError::new_err(e.to_string()))?;
        let helpers = PyModule::from_code(py, &code, c"<shard-worker>", c"_shard_worker")?;
        let _ = HELPERS.set(py, helpers.clone().unbind());
        let sys = py.import("sys")?;
        let state = PyDict::new(py);
        let game_mod = make_module(py, &state)?;
        sys.getattr("modules")?.set_item("game", &game_mod)?;
        let out = helpers
            .getattr("Output")?
            .call1((wrap_pyfunction!(emit, py)?,))?;
        sys.setattr("stdout", &out)?;
        sys.setattr("stderr", &out)?;
        // Native parts must load before the file system closes.
        for m in IMPORT_ALLOWLIST {
            py.import(*m)?;
        }
        py.import("linecache")?;
        py.import("os")?.getattr("environ")?.call_method0("clear")?;
        let builtins = if init.python_layers {
            let allow = PyFrozenSet::new(py, IMPORT_ALLOWLIST)?;
            let reasons = PyDict::new(py);
            for (m, why) in REFUSED_MODULES {
                reasons.set_item(m, why)?;
            }
            let stubs = PyDict::new(py);
            for (b, why) in STUBBED_BUILTINS {
                stubs.set_item(b, why)?;
            }
            helpers.call_method1("make_builtins", (&game_mod, allow, reasons, stubs))?
        } else {
            py.import("builtins")?.into_any()
        };
        let mut prefixes = Vec::new();
        for attr in ["base_prefix", "base_exec_prefix", "prefix", "exec_prefix"] {
            let p: String = sys.getattr(attr)?.extract()?;
            prefixes.push(PathBuf::from(p));
        }
        Ok((
            Self {
                name: init.name.clone(),
                confinement: String::new(),
                helpers: helpers.unbind(),
                game: game_mod.unbind(),
                builtins: builtins.unbind(),
                modules: Vec::new(),
                live: None,
                console_ns: None,
            },
            prefixes,
        ))
    }

    /// Handles one request; None means a protocol error (the worker exits).
    fn handle(&mut self, py: Python<'_>, msg: ToWorker) -> Option<FromWorker> {
        Some(match msg {
            ToWorker::Load {
                generation,
                file,
                source,
            } => self.load(py, generation, &file, &source),
            ToWorker::Commit { generation } => {
                lock(&REGISTRY).retain(|e| e.generation == generation);
                self.modules.retain(|(g, _)| *g == generation);
                self.live = Some(generation);
                FromWorker::Done { failed: None }
            }
            ToWorker::Rollback { generation } => {
                self.drop_generation(generation);
                FromWorker::Done { failed: None }
            }
            ToWorker::Deliver { events } => {
                self.deliver(py, &events);
                FromWorker::Done { failed: None }
            }
            ToWorker::Command { name, peer, args } => FromWorker::Done {
                failed: self.command(py, &name, peer, &args),
            },
            ToWorker::Rpc { name, peer, json } => FromWorker::Done {
                failed: self.rpc(py, &name, peer, &json),
            },
            ToWorker::Console { code } => FromWorker::ConsoleOutput {
                text: self.console(py, &code),
            },
            ToWorker::Init(_) | ToWorker::Reply(_) => return None,
        })
    }

    fn drop_generation(&mut self, generation: u64) {
        lock(&REGISTRY).retain(|e| e.generation != generation);
        self.modules.retain(|(g, _)| *g != generation);
    }

    /// Runs one version of the plugin in a fresh module namespace.
    fn load(&mut self, py: Python<'_>, generation: u64, file: &str, source: &str) -> FromWorker {
        let helpers = self.helpers.bind(py).clone();
        let prepared = (|| -> PyResult<Bound<'_, PyModule>> {
            let module = PyModule::new(py, &self.name)?;
            module.setattr("__file__", file)?;
            module.setattr("__builtins__", self.builtins.bind(py))?;
            module.setattr("game", self.game.bind(py))?;
            helpers.call_method1("remember_source", (file, source))?;
            Ok(module)
        })();
        let module = match prepared {
            Ok(m) => m,
            Err(e) => {
                let (short, traceback) = describe(py, &helpers, &e);
                return FromWorker::LoadFailed { short, traceback };
            }
        };
        let dict = module.dict();
        let ran = guarded(py, &helpers, generation, "load", 1, |_| {
            let builtins = py.import("builtins")?;
            let code = builtins.getattr("compile")?.call1((source, file, "exec"))?;
            builtins.getattr("exec")?.call1((code, &dict))?;
            let version: String = helpers
                .call_method1(
                    "read_metadata",
                    (&dict, &self.name, file, MAX_PLUGIN_NAME, MAX_PLUGIN_VERSION),
                )?
                .extract()?;
            Ok(version)
        });
        match ran {
            Ok(version) => {
                self.modules.push((generation, module.unbind()));
                FromWorker::Loaded { version }
            }
            Err((short, traceback)) => {
                self.drop_generation(generation);
                let short = short
                    .strip_prefix("MetadataError: ")
                    .map(str::to_string)
                    .unwrap_or(short);
                FromWorker::LoadFailed { short, traceback }
            }
        }
    }

    /// Calls the live listeners of each event in one guarded delivery: the
    /// loop runs in Python (so each listener costs about a plain Python
    /// call), with a budget of one callback budget per listener; each
    /// listener gets its own copy of a dict argument.
    fn deliver(&mut self, py: Python<'_>, events: &[GameEvent]) {
        let Some(live) = self.live else { return };
        let helpers = self.helpers.bind(py).clone();
        let mut batch = Vec::new();
        let mut callbacks = 0u32;
        {
            let registry = lock(&REGISTRY);
            for ev in events {
                let kind = ev.kind();
                let funcs: Vec<Py<PyAny>> = registry
                    .iter()
                    .filter(|e| {
                        e.generation == live
                            && matches!(e.reg, Registration::Listener(k) if k == kind)
                    })
                    .map(|e| e.func.clone_ref(py))
                    .collect();
                if funcs.is_empty() {
                    continue;
                }
                callbacks =
                    callbacks.saturating_add(u32::try_from(funcs.len()).unwrap_or(u32::MAX));
                batch.push((kind.name(), funcs, ev.clone()));
            }
        }
        if batch.is_empty() {
            return;
        }
        let _ = guarded(py, &helpers, live, "events", callbacks, |ticket| {
            let mut items = Vec::with_capacity(batch.len());
            for (what, funcs, ev) in &batch {
                // A float is immutable: one object serves every listener.
                let (arg, fresh) = match ev {
                    GameEvent::Tick { dt } => {
                        (pyo3::types::PyFloat::new(py, *dt).into_any(), false)
                    }
                    other => (json_to_py(py, &other.argument())?, true),
                };
                let funcs = pyo3::types::PyList::new(py, funcs.iter().map(|f| f.bind(py)))?;
                items.push((*what, funcs, arg, fresh));
            }
            DELIVERY.with(|d| d.set(Some(ticket)));
            let r = helpers.call_method1("deliver", (items, wrap_pyfunction!(report, py)?));
            DELIVERY.with(|d| d.set(None));
            r.map(drop)
        });
    }

    fn command(&mut self, py: Python<'_>, name: &str, peer: u32, args: &str) -> Option<String> {
        let live = self.live?;
        let func = lock(&REGISTRY)
            .iter()
            .rev()
            .find(|e| {
                e.generation == live && matches!(&e.reg, Registration::Command(n) if n == name)
            })
            .map(|e| e.func.clone_ref(py));
        let Some(func) = func else {
            return Some(format!("/{name} is not registered by this plugin"));
        };
        let helpers = self.helpers.bind(py).clone();
        guarded(py, &helpers, live, &format!("command /{name}"), 1, |_| {
            func.call1(py, (peer, args)).map(drop)
        })
        .err()
        .map(|(short, _)| short)
    }

    /// Calls the live handler of upstream RPC `name` with `(peer, payload)`;
    /// the payload dict is built from the JSON inside the guard, so a
    /// conversion error counts like any other error of the plugin.
    fn rpc(&mut self, py: Python<'_>, name: &str, peer: u32, json: &str) -> Option<String> {
        let live = self.live?;
        let func = lock(&REGISTRY)
            .iter()
            .rev()
            .find(|e| e.generation == live && matches!(&e.reg, Registration::Rpc(n) if n == name))
            .map(|e| e.func.clone_ref(py));
        let Some(func) = func else {
            return Some(format!("RPC {name} has no handler in this plugin"));
        };
        let helpers = self.helpers.bind(py).clone();
        guarded(py, &helpers, live, &format!("rpc {name}"), 1, |_| {
            let value: serde_json::Value = serde_json::from_str(json)
                .map_err(|e| game_err(format!("RPC payload is not JSON: {e}")))?;
            let payload = json_to_py(py, &value)?;
            func.call1(py, (peer, payload)).map(drop)
        })
        .err()
        .map(|(short, _)| short)
    }

    fn console(&mut self, py: Python<'_>, code: &str) -> String {
        let helpers = self.helpers.bind(py).clone();
        let ns = match &self.console_ns {
            Some(ns) => ns.bind(py).clone(),
            None => {
                let ns = PyDict::new(py);
                let _ = ns.set_item("__builtins__", self.builtins.bind(py));
                let _ = ns.set_item("game", self.game.bind(py));
                self.console_ns = Some(ns.clone().unbind());
                ns
            }
        };
        let ran = guarded(py, &helpers, 0, "console", 1, |_| {
            helpers
                .call_method1("console", (code, &ns))?
                .extract::<String>()
        });
        ran.unwrap_or_else(|(_, tb)| tb)
    }
}

/// Benchmark support, in this process: the per-listener cost of a guarded
/// delivery (one `OnTick` event to `n` listeners, as a worker delivers
/// it), the fixed cost of one delivery, and a bare CPython loop calling the
/// same function; each the best of five alternating rounds, per call.
#[doc(hidden)]
pub fn measure_guarded_call(
    n: u32,
) -> Result<
    (
        std::time::Duration,
        std::time::Duration,
        std::time::Duration,
    ),
    String,
> {
    use std::time::{Duration, Instant};
    Python::with_gil(|py| -> PyResult<_> {
        let code = CString::new(WORKER_PY).map_err(|e| GameError::new_err(e.to_string()))?;
        let helpers = PyModule::from_code(py, &code, c"<shard-worker>", c"_shard_worker_bench")?;
        let _ = HELPERS.set(py, helpers.clone().unbind());
        let ns = PyDict::new(py);
        py.run(
            c"def f(dt):\n    pass\n\ndef bare(n, dt):\n    import time\n    t = time.perf_counter_ns()\n    for _ in range(n):\n        f(dt)\n    return time.perf_counter_ns() - t\n",
            Some(&ns),
            None,
        )?;
        let f = ns.get_item("f")?.ok_or_else(|| GameError::new_err("no f"))?;
        let bare = ns.get_item("bare")?.ok_or_else(|| GameError::new_err("no bare"))?;
        let many: Vec<Py<PyAny>> = (0..n).map(|_| f.clone().unbind()).collect();
        let one: Vec<Py<PyAny>> = vec![f.clone().unbind()];
        let tick = [GameEvent::Tick { dt: 1.0 / 30.0 }];
        let mut worker = Worker {
            name: "bench".into(),
            confinement: String::new(),
            helpers: helpers.clone().unbind(),
            game: PyModule::new(py, "game")?.unbind(),
            builtins: py.import("builtins")?.into_any().unbind(),
            modules: Vec::new(),
            live: Some(1),
            console_ns: None,
        };
        let per = |total: Duration, k: u32| total / k.max(1);
        let (mut best_listener, mut best_delivery, mut best_bare) = (Duration::MAX, Duration::MAX, Duration::MAX);
        let deliveries = (n / 20).max(1);
        for _ in 0..5 {
            let bare_ns: u64 = bare.call1((n, 1.0 / 30.0))?.extract()?;
            best_bare = best_bare.min(per(Duration::from_nanos(bare_ns), n));
            set_listeners(py, &many);
            let t = Instant::now();
            worker.deliver(py, &tick);
            best_listener = best_listener.min(per(t.elapsed(), n));
            set_listeners(py, &one);
            let t = Instant::now();
            for _ in 0..deliveries {
                worker.deliver(py, &tick);
            }
            best_delivery = best_delivery.min(per(t.elapsed(), deliveries));
        }
        lock(&REGISTRY).clear();
        Ok((best_listener, best_delivery, best_bare))
    })
    .map_err(|e| e.to_string())
}

fn set_listeners(py: Python<'_>, funcs: &[Py<PyAny>]) {
    let mut reg = lock(&REGISTRY);
    reg.clear();
    reg.extend(funcs.iter().map(|f| Entry {
        generation: 1,
        reg: Registration::Listener(EventKind::Tick),
        func: f.clone_ref(py),
    }));
}

/// Makes `sys.modules["game"]` (with no server behind it) for tools that
/// introspect the API, such as the docs generator.
pub(crate) fn register_global(py: Python<'_>) -> PyResult<()> {
    let modules = py.import("sys")?.getattr("modules")?;
    if !modules.contains("game")? {
        let m = make_module(py, &PyDict::new(py))?;
        modules.set_item("game", m)?;
    }
    Ok(())
}
