//! The `game` module plugins see: its functions (each validating every
//! argument and raising `game.GameError`), the per-call context that tells
//! them which world and which plugin they act for, and the shared registry of
//! listeners, commands and owned entities.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyException};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use shard_protocol::limits::{MAX_CHAT_CHARS, MAX_POPUP_CHARS, MAX_RPC_JSON, MAX_TEMPLATE};
use shard_protocol::{BUILTIN_PLUGIN_ID, EntityKind, POPUP_RPC, Vec3, fn_hash};

use super::EventKind;
use super::world::{GameWorld, PluginOwner};

create_exception!(
    game,
    GameError,
    PyException,
    "Raised by every game function when an argument is invalid or the action is impossible."
);
create_exception!(
    game,
    PluginTimeout,
    PyBaseException,
    "Raised inside plugin code that overran its CPU budget for one callback."
);

/// One registered event listener.
pub(crate) struct Listener {
    pub plugin: String,
    pub generation: u64,
    pub kind: EventKind,
    pub func: Py<PyAny>,
}

/// One registered chat command.
pub(crate) struct Command {
    pub name: String,
    pub plugin: String,
    pub generation: u64,
    pub help: String,
    pub admin: bool,
    pub func: Py<PyAny>,
}

/// Listeners, commands and owned entities of one host, tagged by plugin and
/// load generation so a staged reload can be committed or rolled back.
#[derive(Default)]
pub(crate) struct Registry {
    pub listeners: Vec<Listener>,
    pub commands: Vec<Command>,
    pub entities: Vec<(String, u64, u32)>,
}

impl Registry {
    /// Removes everything `plugin` registered, or only one generation of it.
    /// Returns the entity ids it owned.
    pub fn remove(&mut self, plugin: &str, generation: Option<u64>) -> Vec<u32> {
        let hit = |p: &str, g: u64| p == plugin && generation.is_none_or(|x| x == g);
        self.listeners.retain(|l| !hit(&l.plugin, l.generation));
        self.commands.retain(|c| !hit(&c.plugin, c.generation));
        let mut ids = Vec::new();
        self.entities.retain(|(p, g, id)| {
            if hit(p, *g) {
                ids.push(*id);
                false
            } else {
                true
            }
        });
        ids
    }
}

/// Locks the registry; a poisoned lock is still usable (no invariant spans a panic).
pub(crate) fn lock(reg: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    reg.lock().unwrap_or_else(|e| e.into_inner())
}

/// The plugin on whose behalf game functions currently act.
#[derive(Clone)]
pub(crate) struct Current {
    pub name: String,
    pub id: u16,
    pub generation: u64,
    pub log: PathBuf,
}

/// Per-thread context installed by the host for the duration of one host call.
pub(crate) struct Ctx {
    /// The world borrowed by the host call; only dereferenced while that call runs.
    pub world: *mut (dyn GameWorld + 'static),
    pub registry: Arc<Mutex<Registry>>,
    pub current: Option<Current>,
}

thread_local! {
    static CTX: RefCell<Option<Ctx>> = const { RefCell::new(None) };
}

/// Installs the context for one host call and removes it when dropped.
pub(crate) struct CtxGuard {
    previous: Option<Ctx>,
}

impl CtxGuard {
    /// Lends `world` to game functions until the guard drops.
    pub fn enter(world: &mut dyn GameWorld, registry: Arc<Mutex<Registry>>) -> Self {
        let ptr: *mut (dyn GameWorld + '_) = world;
        // SAFETY: only the lifetime bound is erased. The pointer is stored in a
        // thread-local that this guard clears on drop, and the guard never
        // outlives the `&mut` borrow it was made from (it is a local of the
        // host method that received `world`).
        let ptr: *mut (dyn GameWorld + 'static) = unsafe { std::mem::transmute(ptr) };
        let previous = CTX.with(|c| {
            c.borrow_mut().replace(Ctx {
                world: ptr,
                registry,
                current: None,
            })
        });
        Self { previous }
    }
}

impl Drop for CtxGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CTX.with(|c| *c.borrow_mut() = previous);
    }
}

/// Sets the current plugin, returning the previous one.
pub(crate) fn set_current(current: Option<Current>) -> Option<Current> {
    CTX.with(|c| match c.borrow_mut().as_mut() {
        Some(ctx) => std::mem::replace(&mut ctx.current, current),
        None => None,
    })
}

fn game_err(msg: impl Into<String>) -> PyErr {
    GameError::new_err(msg.into())
}

/// Runs `f` with the world, the registry and the current plugin.
fn with_ctx<R>(
    f: impl FnOnce(&mut dyn GameWorld, &Arc<Mutex<Registry>>, Option<&Current>) -> PyResult<R>,
) -> PyResult<R> {
    CTX.with(|c| {
        let Ok(guard) = c.try_borrow() else {
            return Err(game_err("game functions cannot be called re-entrantly"));
        };
        let Some(ctx) = guard.as_ref() else {
            return Err(game_err(
                "game functions can only be called from plugin code run by the server",
            ));
        };
        // SAFETY: see `CtxGuard::enter`: the pointer is valid while the context is installed,
        // and the shared borrow of CTX prevents another user of it during `f`.
        let world = unsafe { &mut *ctx.world };
        f(world, &ctx.registry, ctx.current.as_ref())
    })
}

fn need_plugin(cur: Option<&Current>) -> PyResult<&Current> {
    cur.ok_or_else(|| {
        game_err("this game function needs a calling plugin (not available in the console)")
    })
}

fn check_pos(what: &str, pos: (f64, f64, f64)) -> PyResult<Vec3> {
    let (x, y, z) = pos;
    for (axis, v) in [("x", x), ("y", y), ("z", z)] {
        if !v.is_finite() || v.abs() > f32::MAX as f64 {
            return Err(game_err(format!(
                "{what}: coordinate {axis} = {v} is not a finite number"
            )));
        }
    }
    Ok(Vec3 {
        x: x as f32,
        y: y as f32,
        z: z as f32,
    })
}

fn check_rot(rot: f64) -> PyResult<f32> {
    if !rot.is_finite() {
        return Err(game_err(format!("rot = {rot} is not a finite number")));
    }
    Ok(rot as f32)
}

fn check_peer(world: &dyn GameWorld, peer: u32) -> PyResult<()> {
    if world.peer_exists(peer) {
        Ok(())
    } else {
        Err(game_err(format!("unknown peer {peer}")))
    }
}

fn check_text(what: &str, text: &str, max_chars: usize) -> PyResult<()> {
    let n = text.chars().count();
    if n > max_chars {
        return Err(game_err(format!(
            "{what} is {n} characters long; the limit is {max_chars}"
        )));
    }
    Ok(())
}

fn check_template(tpl: &str) -> PyResult<()> {
    if tpl.is_empty() {
        return Err(game_err("template name is empty"));
    }
    if tpl.len() > MAX_TEMPLATE {
        return Err(game_err(format!(
            "template name is {} bytes long; the limit is {MAX_TEMPLATE}",
            tpl.len()
        )));
    }
    Ok(())
}

/// The decorator object `game.on(...)` and `game.register_command(...)` return.
#[pyclass(module = "game", frozen)]
pub struct Registrar {
    event: Option<EventKind>,
    command: Option<(String, String, bool)>,
}

#[pymethods]
impl Registrar {
    /// Registers `func` for the current plugin and returns it unchanged.
    fn __call__<'py>(&self, func: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if !func.is_callable() {
            return Err(game_err("the decorated object is not callable"));
        }
        with_ctx(|_, registry, cur| {
            let cur = need_plugin(cur)?;
            let mut reg = lock(registry);
            if let Some(kind) = self.event {
                reg.listeners.push(Listener {
                    plugin: cur.name.clone(),
                    generation: cur.generation,
                    kind,
                    func: func.clone().unbind(),
                });
            }
            if let Some((name, help, admin)) = &self.command {
                if let Some(other) = reg.commands.iter().find(|c| &c.name == name) {
                    if other.plugin != cur.name {
                        return Err(game_err(format!(
                            "command '{name}' is already registered by plugin '{}'",
                            other.plugin
                        )));
                    }
                    if other.generation == cur.generation {
                        return Err(game_err(format!(
                            "command '{name}' is registered twice by this plugin"
                        )));
                    }
                }
                reg.commands.push(Command {
                    name: name.clone(),
                    plugin: cur.name.clone(),
                    generation: cur.generation,
                    help: help.clone(),
                    admin: *admin,
                    func: func.clone().unbind(),
                });
            }
            Ok(())
        })?;
        Ok(func)
    }
}

/// Decorator registering a listener for event `name` (OnTick gets dt, others a dict).
#[pyfunction]
#[pyo3(signature = (name, /))]
fn on(name: &str) -> PyResult<Registrar> {
    match EventKind::from_name(name) {
        Some(kind) => Ok(Registrar {
            event: Some(kind),
            command: None,
        }),
        None => {
            let valid: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
            Err(game_err(format!(
                "unknown event '{name}'; valid events: {}",
                valid.join(", ")
            )))
        }
    }
}

/// Decorator registering a chat command `/name` handled by fn(peer_id, args).
#[pyfunction]
#[pyo3(signature = (name, help, admin = false))]
fn register_command(name: &str, help: &str, admin: bool) -> PyResult<Registrar> {
    let name = name.trim_start_matches('/');
    if name.is_empty()
        || name.len() > 32
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(game_err(format!(
            "invalid command name '{name}': use 1-32 ASCII letters, digits, '_' or '-'"
        )));
    }
    check_text("help", help, MAX_CHAT_CHARS)?;
    Ok(Registrar {
        event: None,
        command: Some((name.to_owned(), help.to_owned(), admin)),
    })
}

fn spawn(kind: EntityKind, tpl: &str, pos: (f64, f64, f64), phase: u32, rot: f64) -> PyResult<u32> {
    check_template(tpl)?;
    let pos = check_pos("pos", pos)?;
    let rot = check_rot(rot)?;
    with_ctx(|world, registry, cur| {
        let cur = need_plugin(cur)?;
        let owner = PluginOwner {
            plugin_id: cur.id,
            name: cur.name.clone(),
        };
        let id = world.spawn_entity(kind, tpl, pos, rot, phase, owner);
        lock(registry)
            .entities
            .push((cur.name.clone(), cur.generation, id));
        Ok(id)
    })
}

/// Spawns an NPC from template `tpl` at `pos` (x, y, z) in `phase`; returns its entity id.
#[pyfunction]
#[pyo3(signature = (tpl, pos, phase = 0))]
fn spawn_npc(tpl: &str, pos: (f64, f64, f64), phase: u32) -> PyResult<u32> {
    spawn(EntityKind::Npc, tpl, pos, phase, 0.0)
}

/// Spawns a vehicle from template `tpl` at `pos` with yaw `rot`; returns its entity id.
#[pyfunction]
#[pyo3(signature = (tpl, pos, phase = 0, rot = 0.0))]
fn spawn_vehicle(tpl: &str, pos: (f64, f64, f64), phase: u32, rot: f64) -> PyResult<u32> {
    spawn(EntityKind::Vehicle, tpl, pos, phase, rot)
}

/// Removes entity `id`; raises GameError if it does not exist.
#[pyfunction]
#[pyo3(signature = (id, /))]
fn despawn(id: u32) -> PyResult<()> {
    with_ctx(|world, registry, _| {
        if !world.despawn(id) {
            return Err(game_err(format!("no entity with id {id}")));
        }
        lock(registry).entities.retain(|(_, _, e)| *e != id);
        Ok(())
    })
}

/// Moves `peer` to `pos` with yaw `rot`, optionally into another `phase`.
#[pyfunction]
#[pyo3(signature = (peer, pos, rot = 0.0, phase = None))]
fn teleport_peer(peer: u32, pos: (f64, f64, f64), rot: f64, phase: Option<u32>) -> PyResult<()> {
    let pos = check_pos("pos", pos)?;
    let rot = check_rot(rot)?;
    with_ctx(|world, _, _| {
        check_peer(world, peer)?;
        world.teleport_peer(peer, pos, rot, phase);
        Ok(())
    })
}

/// Sets the weather preset `id` for every player.
#[pyfunction]
#[pyo3(signature = (id, /))]
fn set_weather(id: u32) -> PyResult<()> {
    with_ctx(|world, _, _| {
        world.set_weather(id);
        Ok(())
    })
}

/// Shows `text` in a popup on `peer`'s screen for `dur` seconds (builtin client handler).
#[pyfunction]
#[pyo3(signature = (peer, text, dur))]
fn show_popup(peer: u32, text: &str, dur: f64) -> PyResult<()> {
    check_text("popup text", text, MAX_POPUP_CHARS)?;
    if !dur.is_finite() || dur <= 0.0 || dur > 3600.0 {
        return Err(game_err(format!(
            "dur = {dur} must be a number of seconds in (0, 3600]"
        )));
    }
    let json = serde_json::json!({ "text": text, "duration": dur }).to_string();
    if json.len() > MAX_RPC_JSON {
        return Err(game_err(format!(
            "popup payload is {} bytes; the limit is {MAX_RPC_JSON}",
            json.len()
        )));
    }
    with_ctx(|world, _, _| {
        check_peer(world, peer)?;
        world.send_rpc(peer, BUILTIN_PLUGIN_ID, fn_hash(POPUP_RPC), json);
        Ok(())
    })
}

/// One `(peer, (x, y, z))` entry of `get_peer_positions`.
type PeerPosition = (u32, (f32, f32, f32));

/// Every connected peer and its position: [(peer, (x, y, z)), ...].
#[pyfunction]
#[pyo3(signature = ())]
fn get_peer_positions() -> PyResult<Vec<PeerPosition>> {
    with_ctx(|world, _, _| {
        Ok(world
            .peer_positions()
            .into_iter()
            .map(|(p, v)| (p, (v.x, v.y, v.z)))
            .collect())
    })
}

/// Position (x, y, z) of entity `id`, or None if it does not exist.
#[pyfunction]
#[pyo3(signature = (id, /))]
fn get_entity_position(id: u32) -> PyResult<Option<(f32, f32, f32)>> {
    with_ctx(|world, _, _| Ok(world.entity_position(id).map(|(v, _)| (v.x, v.y, v.z))))
}

/// Euclidean distance between two points (x, y, z).
#[pyfunction]
#[pyo3(signature = (a, b, /))]
fn dist(a: (f64, f64, f64), b: (f64, f64, f64)) -> PyResult<f64> {
    check_pos("a", a)?;
    check_pos("b", b)?;
    let (dx, dy, dz) = (a.0 - b.0, a.1 - b.1, a.2 - b.2);
    Ok((dx * dx + dy * dy + dz * dz).sqrt())
}

/// Sends one chat line to `peer`.
#[pyfunction]
#[pyo3(signature = (peer, text))]
fn send_chat(peer: u32, text: &str) -> PyResult<()> {
    check_text("chat text", text, MAX_CHAT_CHARS)?;
    with_ctx(|world, _, _| {
        check_peer(world, peer)?;
        world.send_chat(peer, text);
        Ok(())
    })
}

/// Sends one chat line to every player.
#[pyfunction]
#[pyo3(signature = (text, /))]
fn broadcast(text: &str) -> PyResult<()> {
    check_text("chat text", text, MAX_CHAT_CHARS)?;
    with_ctx(|world, _, _| {
        world.broadcast(text);
        Ok(())
    })
}

/// Calls client RPC `fn` of this plugin on `peer` with the JSON-serialisable dict `payload`.
#[pyfunction]
#[pyo3(signature = (peer, r#fn, payload))]
fn send_rpc(py: Python<'_>, peer: u32, r#fn: &str, payload: Bound<'_, PyAny>) -> PyResult<()> {
    if r#fn.is_empty() {
        return Err(game_err("RPC name is empty"));
    }
    if !payload.is_instance_of::<PyDict>() {
        return Err(game_err(format!(
            "payload must be a dict, not {}",
            payload.get_type().name()?
        )));
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    kwargs.set_item("separators", (",", ":"))?;
    let json: String = py
        .import("json")?
        .getattr("dumps")?
        .call((&payload,), Some(&kwargs))
        .and_then(|s| s.extract())
        .map_err(|e| game_err(format!("payload is not JSON-serialisable: {e}")))?;
    if json.len() > MAX_RPC_JSON {
        return Err(game_err(format!(
            "payload is {} bytes of JSON; the limit is {MAX_RPC_JSON}",
            json.len()
        )));
    }
    let hash = fn_hash(r#fn);
    with_ctx(|world, _, cur| {
        let cur = need_plugin(cur)?;
        check_peer(world, peer)?;
        world.send_rpc(peer, cur.id, hash, json);
        Ok(())
    })
}

/// Appends `msg` to this plugin's log file (logs/plugins/<name>.log).
#[pyfunction]
#[pyo3(signature = (msg, /))]
fn log(msg: &str) -> PyResult<()> {
    with_ctx(|_, _, cur| {
        let cur = need_plugin(cur)?;
        tracing::info!(plugin = %cur.name, "{msg}");
        super::append_log(&cur.log, "log", msg);
        Ok(())
    })
}

/// Builds one plugin's `game` module: the shared functions plus its own `state`.
pub(crate) fn make_module<'py>(
    py: Python<'py>,
    state: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyModule>> {
    let m = PyModule::new(py, "game")?;
    m.setattr(
        "__doc__",
        "shard's plugin API: events, commands and world actions.",
    )?;
    m.add_function(wrap_pyfunction!(on, &m)?)?;
    m.add_function(wrap_pyfunction!(register_command, &m)?)?;
    m.add_function(wrap_pyfunction!(spawn_npc, &m)?)?;
    m.add_function(wrap_pyfunction!(spawn_vehicle, &m)?)?;
    m.add_function(wrap_pyfunction!(despawn, &m)?)?;
    m.add_function(wrap_pyfunction!(teleport_peer, &m)?)?;
    m.add_function(wrap_pyfunction!(set_weather, &m)?)?;
    m.add_function(wrap_pyfunction!(show_popup, &m)?)?;
    m.add_function(wrap_pyfunction!(get_peer_positions, &m)?)?;
    m.add_function(wrap_pyfunction!(get_entity_position, &m)?)?;
    m.add_function(wrap_pyfunction!(dist, &m)?)?;
    m.add_function(wrap_pyfunction!(send_chat, &m)?)?;
    m.add_function(wrap_pyfunction!(broadcast, &m)?)?;
    m.add_function(wrap_pyfunction!(send_rpc, &m)?)?;
    m.add_function(wrap_pyfunction!(log, &m)?)?;
    m.add("GameError", py.get_type::<GameError>())?;
    m.add("PluginTimeout", py.get_type::<PluginTimeout>())?;
    m.add("state", state)?;
    Ok(m)
}

/// Ensures `sys.modules["game"]` exists (for tools that introspect the API).
pub(crate) fn register_global(py: Python<'_>) -> PyResult<()> {
    let modules = py.import("sys")?.getattr("modules")?;
    if !modules.contains("game")? {
        let m = make_module(py, &PyDict::new(py))?;
        modules.set_item("game", m)?;
    }
    Ok(())
}

/// Converts a JSON value into the Python object handed to listeners.
pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    v: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_bound_py_any(py)?,
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_bound_py_any(py)?,
            (None, Some(u)) => u.into_bound_py_any(py)?,
            _ => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?,
        },
        Value::String(s) => s.into_bound_py_any(py)?,
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| json_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            pyo3::types::PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// Runs `f` with the world of the current host call, if there is one.
pub(crate) fn with_world<R>(f: impl FnOnce(&mut dyn GameWorld) -> R) -> Option<R> {
    with_ctx(|w, _, _| Ok(f(w))).ok()
}
