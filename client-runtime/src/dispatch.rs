//! RPC dispatch: a `PluginRpc` reaches a callback only when its plugin was
//! announced, its `fn_hash` is on that plugin's whitelist and a callback is
//! registered for it. Everything else is dropped, logged once per cause and
//! counted. Plugin 0 is builtin and carries the default popup handler.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;
use shard_protocol::rpc_json::{RpcJsonError, parse_rpc_payload};
use shard_protocol::{BUILTIN_PLUGIN_ID, ClientMsg, POPUP_RPC, ServerMsg, fn_hash};
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

/// Why an upstream RPC was not sent; the message says what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendRpcError {
    /// The plugin is not announced in this session (or was removed).
    #[error("plugin `{plugin}` is not announced by this server")]
    NotAnnounced {
        /// The plugin asked for.
        plugin: String,
    },
    /// The plugin's installed, checked scripts never send that name.
    #[error(
        "plugin `{plugin}` does not declare upstream RPC `{name}`: its checked client scripts send only [{declared}] (a literal SendServerRpc(n\"Name\", json) declares one)"
    )]
    NotDeclared {
        /// Plugin.
        plugin: String,
        /// Name asked for.
        name: String,
        /// Names its scripts declare, comma-separated.
        declared: String,
    },
    /// No plugin given and no installed plugin declares the name.
    #[error("no installed plugin declares upstream RPC `{name}`")]
    Undeclared {
        /// Name asked for.
        name: String,
    },
    /// No plugin given and several installed plugins declare the name.
    #[error("upstream RPC `{name}` is declared by several plugins ({plugins}); name the plugin")]
    Ambiguous {
        /// Name asked for.
        name: String,
        /// The plugins, comma-separated.
        plugins: String,
    },
    /// The payload breaks the RPC limits or is not a JSON object.
    #[error(transparent)]
    Payload(#[from] RpcJsonError),
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
    /// Plugin name → upstream RPC names its installed, checked scripts send.
    upstream: HashMap<String, BTreeSet<String>>,
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

    /// Records the upstream RPC names plugin `plugin`'s installed,
    /// policy-checked scripts send (replacing what an earlier bundle declared).
    pub fn declare_upstream(&mut self, plugin: &str, names: &[String]) {
        self.upstream
            .insert(plugin.to_string(), names.iter().cloned().collect());
    }

    /// Builds the `ClientRpc` for upstream RPC `name` of `plugin` ("" = the
    /// one installed plugin declaring `name`), refusing names the plugin's
    /// checked scripts do not send and payloads the server would drop.
    pub fn client_rpc(
        &self,
        plugin: &str,
        name: &str,
        json: &str,
    ) -> Result<ClientMsg, SendRpcError> {
        let plugin = if plugin.is_empty() {
            let mut having = self
                .upstream
                .iter()
                .filter(|(_, names)| names.contains(name))
                .map(|(p, _)| p.as_str())
                .filter(|p| self.plugins.values().any(|a| a.name == *p));
            match (having.next(), having.next()) {
                (Some(p), None) => p,
                (None, _) => {
                    return Err(SendRpcError::Undeclared {
                        name: name.to_string(),
                    });
                }
                (Some(a), Some(b)) => {
                    let mut all = vec![a, b];
                    all.extend(having);
                    all.sort_unstable();
                    return Err(SendRpcError::Ambiguous {
                        name: name.to_string(),
                        plugins: all.join(", "),
                    });
                }
            }
        } else {
            plugin
        };
        let Some((&plugin_id, _)) = self.plugins.iter().find(|(_, a)| a.name == plugin) else {
            return Err(SendRpcError::NotAnnounced {
                plugin: plugin.to_string(),
            });
        };
        let declared = self.upstream.get(plugin);
        if !declared.is_some_and(|d| d.contains(name)) {
            return Err(SendRpcError::NotDeclared {
                plugin: plugin.to_string(),
                name: name.to_string(),
                declared: declared
                    .map(|d| d.iter().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
            });
        }
        parse_rpc_payload(json)?;
        Ok(ClientMsg::ClientRpc {
            plugin_id,
            fn_hash: fn_hash(name),
            json: json.to_string(),
        })
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

    #[test]
    fn upstream_rpcs_need_a_declaring_announced_plugin_and_a_good_payload() {
        let mut d = Dispatcher::new();
        d.declare_upstream("vote", &["Vote".to_string()]);
        // Declared, but not announced in this session.
        assert!(matches!(
            d.client_rpc("vote", "Vote", "{}"),
            Err(SendRpcError::NotAnnounced { .. })
        ));
        d.announce(5, "vote", &[]);
        let msg = d.client_rpc("vote", "Vote", r#"{"option":1}"#).unwrap();
        assert_eq!(
            msg,
            ClientMsg::ClientRpc {
                plugin_id: 5,
                fn_hash: fn_hash("Vote"),
                json: r#"{"option":1}"#.into()
            }
        );
        // "" finds the one declaring plugin.
        assert!(d.client_rpc("", "Vote", "{}").is_ok());
        let err = d.client_rpc("vote", "Cheat", "{}").unwrap_err();
        assert!(err.to_string().contains("send only [Vote]"), "{err}");
        assert!(matches!(
            d.client_rpc("", "Cheat", "{}"),
            Err(SendRpcError::Undeclared { .. })
        ));
        assert!(matches!(
            d.client_rpc("vote", "Vote", "[1]"),
            Err(SendRpcError::Payload(RpcJsonError::Malformed(_)))
        ));
        d.declare_upstream("other", &["Vote".to_string()]);
        d.announce(6, "other", &[]);
        assert!(matches!(
            d.client_rpc("", "Vote", "{}"),
            Err(SendRpcError::Ambiguous { .. })
        ));
        // A removed plugin can no longer be called.
        d.remove(5);
        assert!(matches!(
            d.client_rpc("vote", "Vote", "{}"),
            Err(SendRpcError::NotAnnounced { .. })
        ));
    }
}
