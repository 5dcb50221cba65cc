//! The seam between the plugin host and the simulation: the [`GameWorld`]
//! trait the simulation thread implements and passes into every host call,
//! so plugin code reaches game state only through these typed operations.

use shard_protocol::{EntityKind, Vec3};

/// Which plugin spawned an entity, so the world can attribute it (and the host
/// can despawn it when the plugin goes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginOwner {
    /// Plugin id as announced to clients (1..; 0 is builtin).
    pub plugin_id: u16,
    /// Plugin name (equals its file stem).
    pub name: String,
}

/// Everything plugin code may read or change in the game, implemented by the
/// simulation thread; the host calls it while serving a worker's world calls,
/// after validating and budgeting them.
pub trait GameWorld {
    /// Whether `peer` is connected, so the host can reject unknown peer ids.
    fn peer_exists(&self, peer: u32) -> bool;
    /// The peer's display name, for plugin convenience and logs.
    fn peer_name(&self, peer: u32) -> Option<String>;
    /// Whether the peer is an admin, for admin-only commands.
    fn peer_is_admin(&self, peer: u32) -> bool;
    /// Every connected peer with its position, for `get_peer_positions`.
    fn peer_positions(&self) -> Vec<(u32, Vec3)>;
    /// Spawns an entity and returns its id (the host already validated the args).
    fn spawn_entity(
        &mut self,
        kind: EntityKind,
        template: &str,
        pos: Vec3,
        rot: f32,
        phase: u32,
        owner: PluginOwner,
    ) -> u32;
    /// An entity's position and phase, if it exists.
    fn entity_position(&self, id: u32) -> Option<(Vec3, u32)>;
    /// Removes an entity; false if there was none with that id.
    fn despawn(&mut self, id: u32) -> bool;
    /// Moves a peer (and optionally changes its phase).
    fn teleport_peer(&mut self, peer: u32, pos: Vec3, rot: f32, phase: Option<u32>);
    /// Sets the weather preset for everyone.
    fn set_weather(&mut self, id: u32);
    /// Sends one chat line to one peer.
    fn send_chat(&mut self, peer: u32, text: &str);
    /// Sends one chat line to everyone.
    fn broadcast(&mut self, text: &str);
    /// Sends a `PluginRpc` to one peer (json already size-checked).
    fn send_rpc(&mut self, peer: u32, plugin_id: u16, fn_hash: u32, json: String);
    /// Tells every connected admin (and the operator log) something went wrong.
    fn notify_admins(&mut self, text: &str);
    /// Whether a plugin may queue one more message for `peer`: false when the
    /// peer's queue is so full that only the server's own messages may use
    /// the rest, so a noisy plugin never gets a player disconnected.
    fn peer_accepts_plugin_message(&self, _peer: u32) -> bool {
        true
    }
}
