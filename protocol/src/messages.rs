//! The messages of DESIGN.md in both directions, and their field validation.
//!
//! A message is valid only if it decodes *and* [`Validate::validate`] accepts
//! it; [`crate::frame`] runs both, so code above never sees an oversize field.

use serde::{Deserialize, Serialize};

use crate::ProtocolError;
use crate::limits::*;

/// A position in world space, metres.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Vec3 {
    /// East.
    pub x: f32,
    /// North.
    pub y: f32,
    /// Up.
    pub z: f32,
}

impl Vec3 {
    /// Builds a vector, for brevity at call sites.
    pub const fn new(x: f32, y: f32, z: f32) -> Self {
        Self { x, y, z }
    }

    /// True when every coordinate is finite, the one property the world needs.
    pub fn is_finite(&self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.z.is_finite()
    }

    /// Euclidean distance, used for zones and proximity checks.
    pub fn distance(&self, other: &Vec3) -> f32 {
        let (dx, dy, dz) = (self.x - other.x, self.y - other.y, self.z - other.z);
        (dx * dx + dy * dy + dz * dz).sqrt()
    }
}

/// One player's new position, inside a batched `PeerMoved`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeerMove {
    /// Their peer id.
    pub peer_id: u32,
    /// Position.
    pub pos: Vec3,
    /// Yaw.
    pub rot: f32,
}

/// Which kind of entity a spawned id stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityKind {
    /// A non-player character.
    Npc,
    /// A vehicle.
    Vehicle,
}

/// One bundle a client asks for, with the offset to resume from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRequest {
    /// The announced plugin.
    pub plugin_id: u16,
    /// The hash the client expects, so a stale request is not served a new bundle.
    pub sha256: [u8; 32],
    /// Bytes the client already holds in `partial/`; the server starts there.
    pub offset: u64,
}

/// Messages a server sends to a client (control stream, bundle streams and datagrams).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
pub enum ServerMsg {
    /// Answer to `Hello`: the session is open.
    Welcome {
        /// The server's protocol version.
        protocol_version: u16,
        /// Name shown to players.
        server_name: String,
        /// This client's peer id for the session.
        peer_id: u32,
        /// This client's player id (hex SHA-256 of its key).
        player_id: String,
        /// Whether this player is an admin on this server.
        admin: bool,
        /// Simulation rate.
        tick_hz: u16,
        /// Whether a player who declines the server's content must leave
        /// (`content_required` in `server.toml`); otherwise they play without it.
        content_required: bool,
        /// HTTP(S) base URLs (each ending in `/`) that serve this server's
        /// bundles as `<mirror><sha256 hex>.bundle`, tried in order before the
        /// QUIC stream; untrusted, since every byte is checked against the
        /// announced SHA-256 (`asset_mirrors` in `server.toml`).
        asset_mirrors: Vec<String>,
    },
    /// A plugin exists (or changed) and this is its bundle.
    PluginAnnounce {
        /// Session-stable id of the plugin (0 is builtin).
        plugin_id: u16,
        /// Plugin name (its cache folder).
        name: String,
        /// Plugin version from `__plugin__`.
        version: String,
        /// SHA-256 of the packed bundle.
        bundle_sha256: [u8; 32],
        /// Length of the packed bundle in bytes.
        bundle_len: u64,
        /// Total unpacked size of the bundle's files, so the client can offer
        /// and check quotas before fetching; the client refuses a bundle that
        /// unpacks to more.
        unpacked_len: u64,
        /// Number of client scripts (`client/*.reds`) in the bundle, shown in
        /// the content offer.
        client_scripts: u16,
        /// `fn_hash` of every RPC the plugin's client scripts register.
        rpc_whitelist: Vec<u32>,
    },
    /// Ends a burst of `PluginAnnounce`s (after joining, or after plugins
    /// changed), so the client offers everything its cache lacks at once.
    AnnouncementsDone,
    /// A plugin was unloaded.
    PluginRemoved {
        /// Its id.
        plugin_id: u16,
    },
    /// A plugin calls a client-side callback.
    PluginRpc {
        /// Calling plugin.
        plugin_id: u16,
        /// `fn_hash` of the RPC name.
        fn_hash: u32,
        /// JSON payload.
        json: String,
    },
    /// One chunk of a packed bundle, on that bundle's own stream.
    AssetBundle {
        /// Plugin the bundle belongs to.
        plugin_id: u16,
        /// The bundle's SHA-256, as announced: a client tells a chunk of the
        /// version it asked for from one of a version a reload replaced.
        sha256: [u8; 32],
        /// Total packed length.
        len: u64,
        /// Index of this chunk (offset = `chunk_id * CHUNK_SIZE`).
        chunk_id: u32,
        /// Up to `CHUNK_SIZE` bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// A chat line; `from` is `None` for the server itself.
    Chat {
        /// Sending peer, if any.
        from: Option<u32>,
        /// Display name of the sender.
        name: String,
        /// The line.
        text: String,
    },
    /// Move the local player.
    Teleport {
        /// Destination.
        pos: Vec3,
        /// Yaw in degrees.
        rot: f32,
        /// Phase (instance) the player is now in.
        phase: u32,
    },
    /// Change the weather.
    Weather {
        /// Weather preset id.
        id: u32,
    },
    /// An entity appeared in the client's phase.
    EntitySpawned {
        /// Entity id.
        entity_id: u32,
        /// Npc or vehicle.
        kind: EntityKind,
        /// Template name.
        template: String,
        /// Where.
        pos: Vec3,
        /// Yaw.
        rot: f32,
        /// Phase.
        phase: u32,
    },
    /// An entity went away (or left the client's phase).
    EntityDespawned {
        /// Entity id.
        entity_id: u32,
    },
    /// Another player joined.
    PeerJoined {
        /// Their peer id.
        peer_id: u32,
        /// Their name.
        name: String,
    },
    /// Another player left.
    PeerLeft {
        /// Their peer id.
        peer_id: u32,
        /// Their name.
        name: String,
    },
    /// Players moved this tick (sent as a datagram, at most
    /// `MAX_MOVES_PER_DATAGRAM` per datagram; one encode serves a whole phase).
    PeerMoved {
        /// One entry per player that moved.
        moves: Vec<PeerMove>,
    },
    /// The server closes this session.
    Kick {
        /// Why, for the player.
        reason: String,
    },
    /// A bundle request the server will not serve (not announced, already
    /// held or sent, too many retries); repeated refusals disconnect.
    BundleRefused {
        /// The plugin asked for.
        plugin_id: u16,
        /// The hash asked for.
        sha256: [u8; 32],
        /// Why, for logs and modders.
        reason: String,
    },
}

/// Messages a client sends to a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
pub enum ClientMsg {
    /// First message on the control stream.
    Hello {
        /// Display name.
        name: String,
        /// Client's protocol version.
        protocol_version: u16,
    },
    /// A chat line or a `/command`.
    Chat {
        /// The line.
        text: String,
    },
    /// Bundles the client's store lacks.
    NeedBundles {
        /// One request per bundle.
        requests: Vec<BundleRequest>,
    },
    /// The outcome of installing a bundle.
    BundleInstalled {
        /// Plugin.
        plugin_id: u16,
        /// Hash that was (or failed to be) installed.
        sha256: [u8; 32],
        /// Success.
        ok: bool,
        /// Why it failed.
        error: Option<String>,
    },
    /// The player used an entity.
    Interact {
        /// Entity.
        entity_id: u32,
        /// Action name (e.g. `use_door`).
        action: String,
    },
    /// A pushed script calls its plugin (`SendServerRpc(n"Name", json)`); the
    /// server delivers it only if the name is on the plugin's upstream
    /// whitelist and a handler is registered.
    ClientRpc {
        /// Target plugin.
        plugin_id: u16,
        /// `fn_hash` of the RPC name.
        fn_hash: u32,
        /// JSON object payload, at most `MAX_RPC_JSON` bytes (checked by the
        /// server's RPC gate, which drops and counts an oversize one rather
        /// than closing the connection).
        json: String,
    },
    /// Position update (sent as a datagram).
    PeerState {
        /// Position.
        pos: Vec3,
        /// Yaw.
        rot: f32,
    },
    /// "Still here": sent on the control stream when the client has sent
    /// nothing else for [`KEEPALIVE_SECS`], so the server can close sessions
    /// that went silent (QUIC acknowledgements alone do not count).
    KeepAlive,
}

/// Field checks beyond what the encoding guarantees.
pub trait Validate {
    /// Name of the message family for error messages.
    const WHAT: &'static str;
    /// Checks every field against [`crate::limits`].
    fn validate(&self) -> Result<(), ProtocolError>;
}

fn bytes(field: &'static str, s: &str, max: usize) -> Result<(), ProtocolError> {
    if s.len() > max {
        return Err(ProtocolError::FieldTooLong {
            field,
            len: s.len(),
            max,
            unit: "bytes",
        });
    }
    Ok(())
}

fn chars(field: &'static str, s: &str, max: usize) -> Result<(), ProtocolError> {
    // Bytes bound chars, so only count when the byte length could exceed.
    if s.len() > max {
        let n = s.chars().count();
        if n > max {
            return Err(ProtocolError::FieldTooLong {
                field,
                len: n,
                max,
                unit: "characters",
            });
        }
    }
    Ok(())
}

fn entries(field: &'static str, n: usize, max: usize) -> Result<(), ProtocolError> {
    if n > max {
        return Err(ProtocolError::FieldTooLong {
            field,
            len: n,
            max,
            unit: "entries",
        });
    }
    Ok(())
}

/// Checks a declared size (in bytes) against its cap.
fn size(field: &'static str, n: u64, max: u64) -> Result<(), ProtocolError> {
    if n > max {
        return Err(ProtocolError::FieldTooLong {
            field,
            len: usize::try_from(n).unwrap_or(usize::MAX),
            max: usize::try_from(max).unwrap_or(usize::MAX),
            unit: "bytes",
        });
    }
    Ok(())
}

fn finite(field: &'static str, v: f32) -> Result<(), ProtocolError> {
    if !v.is_finite() {
        return Err(ProtocolError::InvalidField {
            field,
            reason: "not a finite number",
        });
    }
    Ok(())
}

fn finite3(field: &'static str, v: &Vec3) -> Result<(), ProtocolError> {
    if !v.is_finite() {
        return Err(ProtocolError::InvalidField {
            field,
            reason: "coordinate not a finite number",
        });
    }
    Ok(())
}

/// Checks a player name: length and no control characters (they would corrupt logs and chat).
pub fn validate_player_name(name: &str) -> Result<(), ProtocolError> {
    bytes("Hello.name", name, MAX_PLAYER_NAME)?;
    if name.trim().is_empty() {
        return Err(ProtocolError::InvalidField {
            field: "Hello.name",
            reason: "empty",
        });
    }
    if name.chars().any(char::is_control) {
        return Err(ProtocolError::InvalidField {
            field: "Hello.name",
            reason: "contains control characters",
        });
    }
    Ok(())
}

impl Validate for ServerMsg {
    const WHAT: &'static str = "server message";
    fn validate(&self) -> Result<(), ProtocolError> {
        match self {
            ServerMsg::Welcome {
                server_name,
                player_id,
                asset_mirrors,
                ..
            } => {
                bytes("Welcome.server_name", server_name, MAX_SERVER_NAME)?;
                bytes("Welcome.player_id", player_id, MAX_FINGERPRINT)?;
                entries(
                    "Welcome.asset_mirrors",
                    asset_mirrors.len(),
                    MAX_ASSET_MIRRORS,
                )?;
                for m in asset_mirrors {
                    bytes("Welcome.asset_mirrors", m, MAX_MIRROR_URL)?;
                    if m.chars().any(char::is_control) {
                        return Err(ProtocolError::InvalidField {
                            field: "Welcome.asset_mirrors",
                            reason: "contains control characters",
                        });
                    }
                }
                Ok(())
            }
            ServerMsg::PluginAnnounce {
                name,
                version,
                bundle_len,
                unpacked_len,
                client_scripts,
                rpc_whitelist,
                ..
            } => {
                bytes("PluginAnnounce.name", name, MAX_PLUGIN_NAME)?;
                bytes("PluginAnnounce.version", version, MAX_PLUGIN_VERSION)?;
                entries(
                    "PluginAnnounce.rpc_whitelist",
                    rpc_whitelist.len(),
                    MAX_RPC_WHITELIST,
                )?;
                size("PluginAnnounce.bundle_len", *bundle_len, MAX_BUNDLE_PACKED)?;
                size(
                    "PluginAnnounce.unpacked_len",
                    *unpacked_len,
                    MAX_BUNDLE_UNPACKED,
                )?;
                entries(
                    "PluginAnnounce.client_scripts",
                    usize::from(*client_scripts),
                    MAX_BUNDLE_ENTRIES,
                )
            }
            ServerMsg::PluginRemoved { .. }
            | ServerMsg::AnnouncementsDone
            | ServerMsg::Weather { .. }
            | ServerMsg::EntityDespawned { .. } => Ok(()),
            ServerMsg::PluginRpc { json, .. } => bytes("PluginRpc.json", json, MAX_RPC_JSON),
            ServerMsg::AssetBundle {
                len,
                chunk_id,
                data,
                ..
            } => {
                check_asset_chunk(*len, *chunk_id, data.len())?;
                Ok(())
            }
            ServerMsg::Chat { name, text, .. } => {
                bytes("Chat.name", name, MAX_PLAYER_NAME.max(MAX_PLUGIN_NAME))?;
                chars("Chat.text", text, MAX_CHAT_CHARS)
            }
            ServerMsg::Teleport { pos, rot, .. } => {
                finite3("Teleport.pos", pos)?;
                finite("Teleport.rot", *rot)
            }
            ServerMsg::EntitySpawned {
                template, pos, rot, ..
            } => {
                bytes("EntitySpawned.template", template, MAX_TEMPLATE)?;
                finite3("EntitySpawned.pos", pos)?;
                finite("EntitySpawned.rot", *rot)
            }
            ServerMsg::PeerJoined { name, .. } => bytes("PeerJoined.name", name, MAX_PLAYER_NAME),
            ServerMsg::PeerLeft { name, .. } => bytes("PeerLeft.name", name, MAX_PLAYER_NAME),
            ServerMsg::PeerMoved { moves } => {
                entries("PeerMoved.moves", moves.len(), MAX_MOVES_PER_DATAGRAM)?;
                for m in moves {
                    finite3("PeerMoved.pos", &m.pos)?;
                    finite("PeerMoved.rot", m.rot)?;
                }
                Ok(())
            }
            ServerMsg::Kick { reason } => bytes("Kick.reason", reason, MAX_REASON),
            ServerMsg::BundleRefused { reason, .. } => {
                bytes("BundleRefused.reason", reason, MAX_REASON)
            }
        }
    }
}

/// The checks every `AssetBundle` chunk passes, whether decoded whole, read
/// in place off a bundle stream or framed by a sender: its data fits in a
/// chunk, the bundle within the packed limit, and the chunk within the bundle.
pub(crate) fn check_asset_chunk(
    len: u64,
    chunk_id: u32,
    data_len: usize,
) -> Result<(), ProtocolError> {
    if data_len > CHUNK_SIZE {
        return Err(ProtocolError::FieldTooLong {
            field: "AssetBundle.data",
            len: data_len,
            max: CHUNK_SIZE,
            unit: "bytes",
        });
    }
    size("AssetBundle.len", len, MAX_BUNDLE_PACKED)?;
    let end = u64::from(chunk_id) * CHUNK_SIZE as u64 + data_len as u64;
    if end > len {
        return Err(ProtocolError::InvalidField {
            field: "AssetBundle.chunk_id",
            reason: "chunk lies beyond the announced bundle length",
        });
    }
    Ok(())
}

impl Validate for ClientMsg {
    const WHAT: &'static str = "client message";
    fn validate(&self) -> Result<(), ProtocolError> {
        match self {
            ClientMsg::Hello { name, .. } => validate_player_name(name),
            ClientMsg::Chat { text } => chars("Chat.text", text, MAX_CHAT_CHARS),
            ClientMsg::NeedBundles { requests } => {
                entries("NeedBundles.requests", requests.len(), MAX_BUNDLE_REQUESTS)?;
                for r in requests {
                    if r.offset > MAX_BUNDLE_PACKED {
                        return Err(ProtocolError::InvalidField {
                            field: "NeedBundles.requests.offset",
                            reason: "offset beyond the largest possible bundle",
                        });
                    }
                }
                Ok(())
            }
            ClientMsg::BundleInstalled { error, .. } => match error {
                Some(e) => bytes("BundleInstalled.error", e, MAX_REASON),
                None => Ok(()),
            },
            ClientMsg::Interact { action, .. } => bytes("Interact.action", action, MAX_ACTION),
            // The frame limit bounds `json`; its RPC limits (size, depth,
            // object) are applied by the receiver so a bad payload is dropped
            // and counted, not a reason to disconnect.
            ClientMsg::ClientRpc { .. } => Ok(()),
            ClientMsg::PeerState { pos, rot } => {
                finite3("PeerState.pos", pos)?;
                finite("PeerState.rot", *rot)
            }
            ClientMsg::KeepAlive => Ok(()),
        }
    }
}
