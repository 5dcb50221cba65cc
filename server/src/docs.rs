//! `shard-server docs`: writes the plugin API reference (`DOCS.md`) and the
//! editor stubs (`plugins/game.pyi`) by running `tools/gen_plugin_docs.py`
//! inside the embedded interpreter, so the docs describe the `game` module
//! plugins really get.

use std::path::Path;

use serde_json::json;
use shard_protocol::limits;

use crate::plugin::{self, EventKind};
use crate::tuning::{
    DEFAULT_CPU_BUDGET_MS, DEFAULT_KILL_AFTER_MS, DEFAULT_MAX_ERRORS, DEFAULT_PLUGIN_MEMORY_MB,
};

/// The argument each event's listeners receive, for the reference.
pub fn event_argument(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Tick => "`dt: float` — seconds since the previous tick",
        EventKind::PeerJoin => "`{peer: int, name: str, admin: bool}`",
        EventKind::PeerLeave => "`{peer: int, name: str}`",
        EventKind::ChatMsg => "`{peer: int, name: str, text: str}` (not for `/commands`)",
        EventKind::NpcSpawn | EventKind::VehicleSpawn => {
            "`{entity_id: int, template: str, pos: [x, y, z], rot: float, phase: int}`"
        }
        EventKind::EntityDespawn => "`{entity_id: int, template: str}`",
        EventKind::Interact => "`{peer: int, entity_id: int, action: str}`",
        EventKind::BundleInstalled => {
            "`{peer: int, plugin_id: int, plugin: str | None, sha256: str, ok: bool, error: str | None}`"
        }
        EventKind::Unload => "`{}` — the plugin is being unloaded (deleted, disabled, shutdown)",
    }
}

/// Facts the generator cannot introspect from Python: events and limits.
pub fn facts() -> serde_json::Value {
    let events: Vec<serde_json::Value> = EventKind::ALL
        .iter()
        .map(|k| json!({"name": k.name(), "argument": event_argument(*k)}))
        .collect();
    json!({
        "events": events,
        "limits": {
            "RPC payload (JSON bytes)": limits::MAX_RPC_JSON,
            "chat line (characters)": limits::MAX_CHAT_CHARS,
            "popup text (characters)": limits::MAX_POPUP_CHARS,
            "entity template (bytes)": limits::MAX_TEMPLATE,
            "plugin name (bytes)": limits::MAX_PLUGIN_NAME,
            "plugin version (bytes)": limits::MAX_PLUGIN_VERSION,
            "packed bundle (bytes)": limits::MAX_BUNDLE_PACKED,
            "unpacked bundle (bytes)": limits::MAX_BUNDLE_UNPACKED,
            "CPU budget per callback (ms, default)": DEFAULT_CPU_BUDGET_MS,
            "errors before a plugin is disabled": DEFAULT_MAX_ERRORS,
            "grace before a silent worker is killed (ms, default)": DEFAULT_KILL_AFTER_MS,
            "worker address space (MiB, default)": DEFAULT_PLUGIN_MEMORY_MB,
        },
    })
}

/// Runs the generator: `out` gets the reference, `stubs` the `.pyi`, and the
/// plugins in `plugins` (parsed, never run) become the examples.
pub fn generate(
    tool: &Path,
    out: &Path,
    stubs: &Path,
    plugins: &Path,
) -> Result<(), plugin::ToolError> {
    let argv = vec![
        "--out".to_string(),
        out.display().to_string(),
        "--stubs".to_string(),
        stubs.display().to_string(),
        "--plugins".to_string(),
        plugins.display().to_string(),
    ];
    plugin::run_tool(tool, &argv, &facts())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_a_documented_argument() {
        for k in EventKind::ALL {
            assert!(!event_argument(k).is_empty(), "{}", k.name());
        }
        assert_eq!(
            facts()["events"].as_array().map(Vec::len),
            Some(EventKind::ALL.len())
        );
    }
}
