//! What the runtime reports to its user (the game, or the headless client's
//! stdout): one enum, serialised as one JSON object per event, from the
//! server's messages and from the runtime's own requests to the game
//! (`load_resources`, `reload_scripts`).

use std::path::PathBuf;

use serde::Serialize;
use shard_protocol::limits::{MAX_GAME_STRING, MAX_REASON};
use shard_protocol::{EntityKind, Vec3, clip_utf8};

use crate::offer::{Decided, OfferedPlugin};

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
        /// Where the bytes came from: `"mirror"`, `"server"` (the QUIC
        /// stream) or `"cache"` (already held, nothing downloaded).
        source: &'static str,
        /// The bundle URL when `source` is `"mirror"`.
        #[serde(skip_serializing_if = "Option::is_none")]
        mirror: Option<String>,
    },
    /// Every asset mirror failed for a bundle, so it is fetched from the
    /// game server's QUIC stream instead; `reason` lists each mirror's failure.
    MirrorFallback {
        /// Plugin id.
        plugin_id: u16,
        /// Plugin name.
        name: String,
        /// Why each mirror failed, in the order tried.
        reason: String,
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
    /// the end of a batch, where one `load_resources` and one
    /// `reload_scripts` request are made before it if anything changed.
    BundlesSettled,
    /// Load and unload game content (archives with their `.xl`, tweaks),
    /// once per batch of installs in which some changed.
    LoadResources(LoadResources),
    /// Recompile the game's scripts, once per batch of installs in which
    /// some plugin's client scripts changed.
    ReloadScripts(ReloadScripts),
    /// What the server wants to install that the cache lacks, before any
    /// download. When `needs_answer` is true the game must answer with
    /// `shard_client_answer_offer`; otherwise `decided` says what answered.
    ContentOffer {
        /// Id of this offer in the session.
        offer_id: u64,
        /// Server name.
        server: String,
        /// Server key fingerprint (answers are remembered per key).
        server_key: String,
        /// The plugins to download (at most `MAX_OFFER_PLUGINS_LISTED`).
        plugins: Vec<OfferedPlugin>,
        /// Plugins not listed one by one (the totals include them).
        more_plugins: usize,
        /// Bytes to download.
        packed: u64,
        /// Bytes once installed.
        unpacked: u64,
        /// Client scripts among them (code that runs in the game).
        scripts: u32,
        /// Whether declining means leaving the server.
        required: bool,
        /// Unpacked size of everything this server asks us to hold.
        server_total: u64,
        /// The per-server quota.
        server_quota: u64,
        /// How far `server_total` is over the quota (0: within it).
        over_quota_by: u64,
        /// Whether the game must answer.
        needs_answer: bool,
        /// What answered, when the player is not asked.
        decided: Option<Decided>,
    },
    /// An offer was refused before any byte was fetched (over the quota, or
    /// the cache cap cannot hold it); `reason` is for the player.
    ContentRefused {
        /// Why, with sizes.
        reason: String,
        /// Bytes over the limit.
        over_by: u64,
        /// The limit that was hit, in bytes.
        limit: u64,
    },
    /// A bundle of another server (or an old version) was evicted from the
    /// cache to stay under the cache cap.
    CacheEvicted {
        /// Bundle hash (hex).
        sha256: String,
        /// Plugin names it was installed as.
        plugins: Vec<String>,
        /// Bytes freed.
        freed: u64,
    },
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

/// One plugin's game content in a [`LoadResources`] request; paths are
/// absolute (inside `runtime_cache/plugins/<plugin>/`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginResources {
    /// Plugin name.
    pub plugin: String,
    /// Its installed folder.
    pub dir: PathBuf,
    /// Archives (from `assets/`) with their `.xl`.
    pub archives: Vec<shard_cache::ArchiveFiles>,
    /// TweakXL files (from `tweaks/`).
    pub tweaks: Vec<PathBuf>,
}

/// What the game must change after a batch of installs: plugins whose
/// content to load (replacing whatever it loaded for them before) and
/// plugins whose content to unload. See `client-runtime/README.md`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadResources {
    /// Content to (re)load, by plugin name.
    pub load: Vec<PluginResources>,
    /// Content to unload (as it was loaded), by plugin name.
    pub unload: Vec<PluginResources>,
}

/// One plugin folder whose client scripts changed, in a [`ReloadScripts`] request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptFolder {
    /// Plugin name.
    pub plugin: String,
    /// Its installed folder (`runtime_cache/plugins/<plugin>/`; scripts in `client/`).
    pub dir: PathBuf,
}

/// The one script reload a batch of installs asks of the game (a reload is
/// a recompile of every script in the game, so a batch makes at most one):
/// which plugins' scripts changed or appeared, and which went away. The
/// game recompiles with every installed plugin's `client/` and the
/// runtime's glue, then runs `ShardRunEntryPoints()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadScripts {
    /// Plugins whose scripts are new or changed.
    pub plugins: Vec<ScriptFolder>,
    /// Plugins whose scripts are gone (plugin removed, or its new bundle has none).
    pub removed: Vec<String>,
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
    /// The event with every free-form string cut to its cap from
    /// `limits.rs` (reasons to `MAX_REASON`, other text to
    /// `MAX_GAME_STRING`); names, versions and templates are already bounded
    /// by the protocol's validation.
    pub fn capped(mut self) -> Self {
        match &mut self {
            ClientEvent::Kick { reason }
            | ClientEvent::Disconnected { reason }
            | ClientEvent::ContentRefused { reason, .. } => clip_utf8(reason, MAX_REASON),
            ClientEvent::Error { message } => clip_utf8(message, MAX_REASON),
            ClientEvent::BundleFailed { error, .. } => clip_utf8(error, MAX_REASON),
            ClientEvent::MirrorFallback { reason, .. } => clip_utf8(reason, MAX_REASON),
            ClientEvent::Rpc { json, .. } => clip_utf8(json, MAX_GAME_STRING),
            ClientEvent::Chat { text, .. } | ClientEvent::Popup { text, .. } => {
                clip_utf8(text, MAX_GAME_STRING)
            }
            ClientEvent::BundleInstalled { path, mirror, .. } => {
                clip_utf8(path, MAX_GAME_STRING);
                if let Some(m) = mirror {
                    clip_utf8(m, MAX_GAME_STRING);
                }
            }
            _ => {}
        }
        self
    }

    /// The event as one JSON line (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::json!({"event": "error", "message": format!("unprintable event: {e}")})
                .to_string()
        })
    }
}
