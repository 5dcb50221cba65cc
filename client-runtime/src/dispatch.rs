//! RPC dispatch: a `PluginRpc` reaches a callback only when its plugin was
//! announced, its `fn_hash` is on that plugin's whitelist and a callback is
//! registered for it. Everything else is dropped, logged once per cause and
//! counted. Plugin 0 is builtin and carries the default popup handler.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use shard_protocol::{BUILTIN_PLUGIN_ID, POPUP_RPC, ServerMsg, fn_hash};
use tracing::warn;

use crate::events::ClientEvent;

/// Why an RPC was dropped; each is logged once and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropCause {
    /// No `PluginAnnounce` for that plugin id.
    UnknownPlugin,
    /// The hash is not on the plugin's whitelist.
    NotWhitelisted,
    /// Whitelisted, but no callback registered for it.
    NoCallback,
    /// The payload is not valid JSON.
    BadJson,
}

/// Counts of dropped RPCs by cause (shown by the headless client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DropCounters {
    /// Plugin never announced.
    pub unknown_plugin: u64,
    /// Hash not whitelisted.
    pub not_whitelisted: u64,
    /// No callback registered.
    pub no_callback: u64,
    /// Payload not JSON.
    pub bad_json: u64,
}

#[derive(Debug, Clone)]
struct Announced {
    name: String,
    whitelist: HashSet<u32>,
}

/// The callback table and whitelist state of one session.
#[derive(Debug, Default)]
pub struct Dispatcher {
    plugins: HashMap<u16, Announced>,
    /// (plugin name, fn hash) → RPC name.
    callbacks: HashMap<(String, u32), String>,
    counters: DropCounters,
    logged: HashSet<DropCause>,
}

impl Dispatcher {
    /// A dispatcher with no plugins and no callbacks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a callback for RPC `name` of plugin `plugin` (by name, so it
    /// survives the plugin's id changing across sessions). An empty `plugin`
    /// means whichever announced plugin whitelists `name`: the game's proxy
    /// registers that way, since a pushed script does not know its plugin.
    pub fn register(&mut self, plugin: &str, name: &str) {
        self.callbacks
            .insert((plugin.to_string(), fn_hash(name)), name.to_string());
    }

    /// Records a plugin's announcement (replacing an earlier one).
    pub fn announce(&mut self, plugin_id: u16, name: &str, whitelist: &[u32]) {
        self.plugins.insert(
            plugin_id,
            Announced {
                name: name.to_string(),
                whitelist: whitelist.iter().copied().collect(),
            },
        );
    }

    /// Forgets a removed plugin.
    pub fn remove(&mut self, plugin_id: u16) {
        self.plugins.remove(&plugin_id);
    }

    /// Drop counters so far.
    pub fn counters(&self) -> DropCounters {
        self.counters
    }

    fn drop_rpc(&mut self, cause: DropCause, plugin_id: u16, hash: u32) -> Vec<ClientEvent> {
        match cause {
            DropCause::UnknownPlugin => self.counters.unknown_plugin += 1,
            DropCause::NotWhitelisted => self.counters.not_whitelisted += 1,
            DropCause::NoCallback => self.counters.no_callback += 1,
            DropCause::BadJson => self.counters.bad_json += 1,
        }
        if self.logged.insert(cause) {
            warn!(
                plugin_id,
                fn_hash = format!("{hash:#010x}"),
                ?cause,
                "dropping RPC (logged once per cause)"
            );
        }
        if cause == DropCause::BadJson {
            return vec![ClientEvent::Error {
                message: format!("plugin {plugin_id} sent an RPC whose payload is not JSON"),
            }];
        }
        Vec::new()
    }

    /// Routes one `PluginRpc`, returning the events it produces.
    pub fn rpc(&mut self, plugin_id: u16, hash: u32, json: &str) -> Vec<ClientEvent> {
        if plugin_id == BUILTIN_PLUGIN_ID {
            if hash != fn_hash(POPUP_RPC) {
                return self.drop_rpc(DropCause::NotWhitelisted, plugin_id, hash);
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
                return self.drop_rpc(DropCause::BadJson, plugin_id, hash);
            };
            let text = v
                .get("text")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_string();
            let duration = v.get("duration").and_then(|d| d.as_f64()).unwrap_or(3.0);
            return vec![ClientEvent::Popup { text, duration }];
        }
        let Some(p) = self.plugins.get(&plugin_id) else {
            return self.drop_rpc(DropCause::UnknownPlugin, plugin_id, hash);
        };
        if !p.whitelist.contains(&hash) {
            return self.drop_rpc(DropCause::NotWhitelisted, plugin_id, hash);
        }
        let plugin = p.name.clone();
        let registered = self
            .callbacks
            .get(&(plugin.clone(), hash))
            .or_else(|| self.callbacks.get(&(String::new(), hash)));
        let Some(name) = registered.cloned() else {
            return self.drop_rpc(DropCause::NoCallback, plugin_id, hash);
        };
        if serde_json::from_str::<serde_json::Value>(json).is_err() {
            return self.drop_rpc(DropCause::BadJson, plugin_id, hash);
        }
        vec![ClientEvent::Rpc {
            plugin_id,
            plugin,
            name,
            json: json.to_string(),
        }]
    }

    /// Handles plugin lifecycle messages (announce, removal).
    pub fn plugin_msg(&mut self, msg: ServerMsg) -> Vec<ClientEvent> {
        match msg {
            ServerMsg::PluginAnnounce {
                plugin_id,
                name,
                rpc_whitelist,
                ..
            } => {
                self.announce(plugin_id, &name, &rpc_whitelist);
            }
            ServerMsg::PluginRemoved { plugin_id } => self.remove(plugin_id),
            _ => {}
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_popup_becomes_a_popup_event() {
        let mut d = Dispatcher::new();
        let ev = d.rpc(
            0,
            fn_hash(POPUP_RPC),
            r#"{"text":"Welcome to HexBar!","duration":5.0}"#,
        );
        assert_eq!(
            ev,
            vec![ClientEvent::Popup {
                text: "Welcome to HexBar!".into(),
                duration: 5.0
            }]
        );
    }

    #[test]
    fn rpc_needs_announcement_whitelist_and_callback() {
        let mut d = Dispatcher::new();
        assert!(d.rpc(3, fn_hash("CcStatus"), "{}").is_empty());
        assert_eq!(d.counters().unknown_plugin, 1);
        d.announce(3, "mobile_cc", &[fn_hash("CcStatus")]);
        assert!(d.rpc(3, fn_hash("Other"), "{}").is_empty());
        assert_eq!(d.counters().not_whitelisted, 1);
        assert!(d.rpc(3, fn_hash("CcStatus"), "{}").is_empty());
        assert_eq!(d.counters().no_callback, 1);
        d.register("mobile_cc", "CcStatus");
        let ev = d.rpc(3, fn_hash("CcStatus"), r#"{"ok":true}"#);
        assert!(matches!(&ev[..], [ClientEvent::Rpc { name, .. }] if name == "CcStatus"));
        // A registration for any plugin ("" as the proxy does) also counts.
        let mut any = Dispatcher::new();
        any.announce(4, "hud", &[fn_hash("HudUpdate")]);
        any.register("", "HudUpdate");
        assert!(
            matches!(&any.rpc(4, fn_hash("HudUpdate"), "{}")[..], [ClientEvent::Rpc { plugin, .. }] if plugin == "hud")
        );
        assert!(any.rpc(4, fn_hash("Other"), "{}").is_empty());
        let ev = d.rpc(3, fn_hash("CcStatus"), "{not json");
        assert!(matches!(&ev[..], [ClientEvent::Error { .. }]));
        assert_eq!(d.counters().bad_json, 1);
    }
}
