//! What the runtime reports to its user (the game, or the headless client's
//! stdout): one enum, serialised as one JSON object per event.

use serde::Serialize;
use shard_protocol::{EntityKind, Vec3};

/// One thing that happened in the session, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClientEvent {
    /// The server accepted us.
    Welcome {
        /// Server name.
        server: String,
        /// Our peer id.
        peer_id: u32,
        /// Our player id (key fingerprint).
        player_id: String,
        /// Whether we are admin there.
        admin: bool,
    },
    /// A chat line (`from` is absent for the server).
    Chat {
        /// Sender peer id.
        from: Option<u32>,
        /// Sender name.
        name: String,
        /// Text.
        text: String,
    },
    /// Another player joined.
    PeerJoined {
        /// Peer id.
        peer_id: u32,
        /// Name.
        name: String,
    },
    /// Another player left.
    PeerLeft {
        /// Peer id.
        peer_id: u32,
        /// Name.
        name: String,
    },
    /// Another player moved.
    PeerMoved {
        /// Peer id.
        peer_id: u32,
        /// Position.
        pos: [f32; 3],
        /// Yaw.
        rot: f32,
    },
    /// The server moved us.
    Teleport {
        /// Position.
        pos: [f32; 3],
        /// Yaw.
        rot: f32,
        /// Phase.
        phase: u32,
    },
    /// Weather changed.
    Weather {
        /// Preset id.
        id: u32,
    },
    /// An entity appeared.
    EntitySpawned {
        /// Entity id.
        entity_id: u32,
        /// "npc" or "vehicle".
        kind: &'static str,
        /// Template.
        template: String,
        /// Position.
        pos: [f32; 3],
        /// Yaw.
        rot: f32,
        /// Phase.
        phase: u32,
    },
    /// An entity went away.
    EntityDespawned {
        /// Entity id.
        entity_id: u32,
    },
    /// The builtin popup handler fired.
    Popup {
        /// Text.
        text: String,
        /// Seconds on screen.
        duration: f64,
    },
    /// A plugin RPC reached a registered callback.
    Rpc {
        /// Plugin id.
        plugin_id: u16,
        /// Plugin name, when known.
        plugin: String,
        /// RPC name, when registered.
        name: String,
        /// Payload JSON.
        json: String,
    },
    /// The server announced a plugin bundle.
    PluginAnnounced {
        /// Session plugin id.
        plugin_id: u16,
        /// Plugin name.
        name: String,
        /// Version.
        version: String,
        /// Bundle hash (hex).
        sha256: String,
        /// Packed length.
        len: u64,
    },
    /// Download progress of a bundle.
    BundleProgress {
        /// Plugin id.
        plugin_id: u16,
        /// Plugin name.
        name: String,
        /// Bytes held.
        received: u64,
        /// Bytes in all.
        total: u64,
    },
    /// A bundle is verified and installed (or was already).
    BundleInstalled {
        /// Plugin id.
        plugin_id: u16,
        /// Plugin name.
        name: String,
        /// Version.
        version: String,
        /// Bundle hash (hex).
        sha256: String,
        /// Installed folder.
        path: String,
        /// False when this exact bundle was already installed.
        changed: bool,
        /// RPC names its scripts register.
        rpcs: Vec<String>,
    },
    /// A bundle was refused or could not be installed; the cache is unchanged.
    BundleFailed {
        /// Plugin id.
        plugin_id: u16,
        /// Plugin name.
        name: String,
        /// Why.
        error: String,
    },
    /// The server removed a plugin; its resources are unloaded at the end of the batch.
    PluginRemoved {
        /// Session plugin id.
        plugin_id: u16,
        /// Plugin name.
        name: String,
    },
    /// Every announced bundle is installed or refused and no work is queued:
    /// the end of a batch, where one `load_resources` request is made if
    /// anything changed.
    BundlesSettled,
    /// The server closed the session with a reason.
    Kick {
        /// Why.
        reason: String,
    },
    /// The connection ended.
    Disconnected {
        /// Why, as far as we know.
        reason: String,
    },
    /// Something went wrong that the user should see.
    Error {
        /// What.
        message: String,
    },
}

/// Converts the wire vector to the JSON-friendly array.
pub fn arr(v: Vec3) -> [f32; 3] {
    [v.x, v.y, v.z]
}

/// Names an entity kind for JSON.
pub fn kind_name(k: EntityKind) -> &'static str {
    match k {
        EntityKind::Npc => "npc",
        EntityKind::Vehicle => "vehicle",
    }
}

impl ClientEvent {
    /// The event as one JSON line (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"event":"error","message":"unprintable event: {e}"}}"#)
        })
    }
}
