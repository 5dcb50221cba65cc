//! The `game` module as plugin code sees it inside its worker. Every world
//! function turns its Python arguments into a typed [`WorldCall`], sends it
//! over the channel and waits for the server's answer; the server validates
//! and budgets it and the answer's error becomes `game.GameError`. Nothing
//! here trusts plugin code: it only converts.

use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyException};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use shard_protocol::EntityKind;

use super::super::channel::{WorldCall, WorldValue};
use super::super::events::EventKind;
use super::{Registration, call_world, emit_log, register};

create_exception!(
    game,
    GameError,
    PyException,
    "Raised by every game function when an argument is invalid, a budget is spent or the action is impossible."
);
create_exception!(
    game,
    PluginTimeout,
    PyBaseException,
    "Raised inside plugin code that overran its CPU budget for one callback."
);

/// Turns the server's refusal into `game.GameError`.
pub(crate) fn game_err(msg: impl Into<String>) -> PyErr {
    GameError::new_err(msg.into())
}

fn world(call: WorldCall) -> PyResult<WorldValue> {
    call_world(call).map_err(game_err)
}

fn unit(call: WorldCall) -> PyResult<()> {
    world(call).map(drop)
}

fn xyz(p: (f64, f64, f64)) -> [f64; 3] {
    [p.0, p.1, p.2]
}

/// The decorator object `game.on(...)`, `game.register_command(...)` and
/// `game.on_rpc(...)` return.
#[pyclass(module = "game", frozen)]
pub struct Registrar {
    event: Option<EventKind>,
    command: Option<(String, String, bool)>,
    rpc: Option<String>,
}

#[pymethods]
impl Registrar {
    /// Registers `func` for this plugin and returns it unchanged.
    fn __call__<'py>(&self, func: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if !func.is_callable() {
            return Err(game_err("the decorated object is not callable"));
        }
        let reg = match (&self.event, &self.command, &self.rpc) {
            (Some(kind), _, _) => {
                unit(WorldCall::Listen { kind: *kind })?;
                Registration::Listener(*kind)
            }
            (None, None, Some(name)) => {
                unit(WorldCall::OnRpc { name: name.clone() })?;
                Registration::Rpc(name.clone())
            }
            (None, Some((name, help, admin)), _) => {
                unit(WorldCall::RegisterCommand {
                    name: name.clone(),
                    help: help.clone(),
                    admin: *admin,
                })?;
                Registration::Command(name.clone())
            }
            (None, None, None) => return Err(game_err("nothing to register")),
        };
        register(reg, func.clone().unbind());
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
            rpc: None,
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
fn register_command(name: &str, help: &str, admin: bool) -> Registrar {
    Registrar {
        event: None,
        command: Some((
            name.trim_start_matches('/').to_owned(),
            help.to_owned(),
            admin,
        )),
        rpc: None,
    }
}

/// Decorator registering the handler fn(peer_id, payload: dict) of upstream
/// RPC `name`, which this plugin's client scripts send with `SendServerRpc(n"name", json)`.
#[pyfunction]
#[pyo3(signature = (name, /))]
fn on_rpc(name: &str) -> Registrar {
    Registrar {
        event: None,
        command: None,
        rpc: Some(name.to_owned()),
    }
}

fn spawn(kind: EntityKind, tpl: &str, pos: (f64, f64, f64), phase: u32, rot: f64) -> PyResult<u32> {
    match world(WorldCall::Spawn {
        kind,
        template: tpl.to_owned(),
        pos: xyz(pos),
        rot,
        phase,
    })? {
        WorldValue::Id(id) => Ok(id),
        other => Err(game_err(format!("unexpected answer {other:?}"))),
    }
}

/// Spawns an NPC from template `tpl` at `pos` (x, y, z) in `phase`; returns its entity id.
#[pyfunction]
#[pyo3(signature = (tpl, pos, phase = 0))]
fn spawn_npc(tpl: &str, pos: (f64, f64, f64), phase: u32) -> PyResult<u32> {
    spawn(EntityKind::Npc, tpl, pos, phase, 0.0)
}

/// Spawns a vehicle from TweakDB record (or template) `tpl` at `pos` with yaw `rot`; returns its entity id.
#[pyfunction]
#[pyo3(signature = (tpl, pos, phase = 0, rot = 0.0))]
fn spawn_vehicle(tpl: &str, pos: (f64, f64, f64), phase: u32, rot: f64) -> PyResult<u32> {
    spawn(EntityKind::Vehicle, tpl, pos, phase, rot)
}

/// Removes entity `id`; raises GameError if it does not exist.
#[pyfunction]
#[pyo3(signature = (id, /))]
fn despawn(id: u32) -> PyResult<()> {
    unit(WorldCall::Despawn { id })
}

/// Moves `peer` to `pos` with yaw `rot`, optionally into another `phase`.
#[pyfunction]
#[pyo3(signature = (peer, pos, rot = 0.0, phase = None))]
fn teleport_peer(peer: u32, pos: (f64, f64, f64), rot: f64, phase: Option<u32>) -> PyResult<()> {
    unit(WorldCall::Teleport {
        peer,
        pos: xyz(pos),
        rot,
        phase,
    })
}

/// Sets the weather preset `id` for every player.
#[pyfunction]
#[pyo3(signature = (id, /))]
fn set_weather(id: u32) -> PyResult<()> {
    unit(WorldCall::SetWeather { id })
}

/// Shows `text` in a popup on `peer`'s screen for `dur` seconds (builtin client handler).
#[pyfunction]
#[pyo3(signature = (peer, text, dur))]
fn show_popup(peer: u32, text: &str, dur: f64) -> PyResult<()> {
    unit(WorldCall::Popup {
        peer,
        text: text.to_owned(),
        dur,
    })
}

/// One `(peer, (x, y, z))` entry of `get_peer_positions`.
type PeerPosition = (u32, (f32, f32, f32));

/// Every connected peer and its position: [(peer, (x, y, z)), ...].
#[pyfunction]
#[pyo3(signature = ())]
fn get_peer_positions() -> PyResult<Vec<PeerPosition>> {
    match world(WorldCall::PeerPositions)? {
        WorldValue::Positions(v) => {
            Ok(v.into_iter().map(|(p, [x, y, z])| (p, (x, y, z))).collect())
        }
        other => Err(game_err(format!("unexpected answer {other:?}"))),
    }
}

/// Position (x, y, z) of entity `id`, or None if it does not exist.
#[pyfunction]
#[pyo3(signature = (id, /))]
fn get_entity_position(id: u32) -> PyResult<Option<(f32, f32, f32)>> {
    match world(WorldCall::EntityPosition { id })? {
        WorldValue::Position(p) => Ok(p.map(|[x, y, z]| (x, y, z))),
        other => Err(game_err(format!("unexpected answer {other:?}"))),
    }
}

/// Euclidean distance between two points (x, y, z).
#[pyfunction]
#[pyo3(signature = (a, b, /))]
fn dist(a: (f64, f64, f64), b: (f64, f64, f64)) -> PyResult<f64> {
    for (what, p) in [("a", a), ("b", b)] {
        if ![p.0, p.1, p.2].iter().all(|v| v.is_finite()) {
            return Err(game_err(format!(
                "{what}: coordinates must be finite numbers"
            )));
        }
    }
    let (dx, dy, dz) = (a.0 - b.0, a.1 - b.1, a.2 - b.2);
    Ok((dx * dx + dy * dy + dz * dz).sqrt())
}

/// Sends one chat line to `peer`.
#[pyfunction]
#[pyo3(signature = (peer, text))]
fn send_chat(peer: u32, text: &str) -> PyResult<()> {
    unit(WorldCall::SendChat {
        peer,
        text: text.to_owned(),
    })
}

/// Sends one chat line to every player.
#[pyfunction]
#[pyo3(signature = (text, /))]
fn broadcast(text: &str) -> PyResult<()> {
    unit(WorldCall::Broadcast {
        text: text.to_owned(),
    })
}

/// Calls client RPC `fn` of this plugin on `peer` with the JSON-serialisable dict `payload`.
#[pyfunction]
#[pyo3(signature = (peer, r#fn, payload))]
fn send_rpc(py: Python<'_>, peer: u32, r#fn: &str, payload: Bound<'_, PyAny>) -> PyResult<()> {
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
    unit(WorldCall::SendRpc {
        peer,
        name: r#fn.to_owned(),
        json,
    })
}

/// Appends `msg` to this plugin's log file (logs/plugins/<name>.log).
#[pyfunction]
#[pyo3(signature = (msg, /))]
fn log(msg: &str) -> PyResult<()> {
    emit_log(msg).map_err(game_err)
}

/// Builds the `game` module: the API functions plus the plugin's `state`.
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
    m.add_function(wrap_pyfunction!(on_rpc, &m)?)?;
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

/// Converts an event argument (plain JSON) into a fresh Python object.
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
