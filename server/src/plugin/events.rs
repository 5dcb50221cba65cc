//! Events plugins listen to, as typed values end to end: the simulation
//! builds a [`GameEvent`], the channel carries it, and the worker turns it
//! into a fresh Python object for each listener (so no listener can change
//! what the next one sees).

use serde::{Deserialize, Serialize};

/// Every event a plugin can listen to (`game.on(name)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    /// Every simulation tick; the listener gets `dt` (seconds, float).
    Tick,
    /// A peer joined.
    PeerJoin,
    /// A peer left.
    PeerLeave,
    /// A peer sent a chat line that is not a command.
    ChatMsg,
    /// An NPC was spawned.
    NpcSpawn,
    /// A vehicle was spawned.
    VehicleSpawn,
    /// An entity went away.
    EntityDespawn,
    /// A peer interacted with an entity.
    Interact,
    /// A client installed (or failed to install) a plugin bundle.
    BundleInstalled,
    /// The plugin is being unloaded (deleted, disabled by the operator, shutdown).
    Unload,
}

impl EventKind {
    /// Every event, in the order listed to plugin authors.
    pub const ALL: [EventKind; 10] = [
        Self::Tick,
        Self::PeerJoin,
        Self::PeerLeave,
        Self::ChatMsg,
        Self::NpcSpawn,
        Self::VehicleSpawn,
        Self::EntityDespawn,
        Self::Interact,
        Self::BundleInstalled,
        Self::Unload,
    ];

    /// The name plugins use (`"OnTick"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tick => "OnTick",
            Self::PeerJoin => "OnPeerJoin",
            Self::PeerLeave => "OnPeerLeave",
            Self::ChatMsg => "OnChatMsg",
            Self::NpcSpawn => "OnNpcSpawn",
            Self::VehicleSpawn => "OnVehicleSpawn",
            Self::EntityDespawn => "OnEntityDespawn",
            Self::Interact => "OnInteract",
            Self::BundleInstalled => "OnBundleInstalled",
            Self::Unload => "OnUnload",
        }
    }

    /// Parses a plugin-facing event name (only at registration, in the worker).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A peer joined: who, and whether they are an admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerJoin {
    /// Peer id.
    pub peer: u32,
    /// Display name.
    pub name: String,
    /// Whether the peer is an admin.
    pub admin: bool,
}

/// A peer left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerLeave {
    /// Peer id.
    pub peer: u32,
    /// Display name.
    pub name: String,
}

/// A chat line that is not a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMsg {
    /// Sender.
    pub peer: u32,
    /// Sender's name.
    pub name: String,
    /// The line.
    pub text: String,
}

/// An NPC or vehicle appeared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spawned {
    /// Entity id.
    pub entity_id: u32,
    /// Template (or TweakDB record) it was made from.
    pub template: String,
    /// Position `[x, y, z]`.
    pub pos: [f32; 3],
    /// Yaw.
    pub rot: f32,
    /// Phase it lives in.
    pub phase: u32,
}

/// An entity went away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Despawned {
    /// Entity id.
    pub entity_id: u32,
    /// Template it was made from.
    pub template: String,
}

/// A peer used an entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interact {
    /// Who.
    pub peer: u32,
    /// Which entity.
    pub entity_id: u32,
    /// The action name the client sent.
    pub action: String,
}

/// A client reported the outcome of installing a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleInstalled {
    /// Who.
    pub peer: u32,
    /// Plugin id of the bundle.
    pub plugin_id: u16,
    /// The plugin's name, if it is still announced.
    pub plugin: Option<String>,
    /// SHA-256 the client installed (hex).
    pub sha256: String,
    /// Whether it worked.
    pub ok: bool,
    /// The client's error, if it failed.
    pub error: Option<String>,
}

/// One event with its data; each kind has its own struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GameEvent {
    /// A tick of `dt` seconds.
    Tick {
        /// Seconds since the previous tick.
        dt: f64,
    },
    /// See [`PeerJoin`].
    PeerJoin(PeerJoin),
    /// See [`PeerLeave`].
    PeerLeave(PeerLeave),
    /// See [`ChatMsg`].
    ChatMsg(ChatMsg),
    /// An NPC appeared.
    NpcSpawn(Spawned),
    /// A vehicle appeared.
    VehicleSpawn(Spawned),
    /// See [`Despawned`].
    EntityDespawn(Despawned),
    /// See [`Interact`].
    Interact(Interact),
    /// See [`BundleInstalled`].
    BundleInstalled(BundleInstalled),
    /// The plugin is being unloaded.
    Unload,
}

impl GameEvent {
    /// Which kind of event this is (listeners are registered by kind).
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Tick { .. } => EventKind::Tick,
            Self::PeerJoin(_) => EventKind::PeerJoin,
            Self::PeerLeave(_) => EventKind::PeerLeave,
            Self::ChatMsg(_) => EventKind::ChatMsg,
            Self::NpcSpawn(_) => EventKind::NpcSpawn,
            Self::VehicleSpawn(_) => EventKind::VehicleSpawn,
            Self::EntityDespawn(_) => EventKind::EntityDespawn,
            Self::Interact(_) => EventKind::Interact,
            Self::BundleInstalled(_) => EventKind::BundleInstalled,
            Self::Unload => EventKind::Unload,
        }
    }

    /// The listener's argument as JSON (a number for `Tick`, an object
    /// otherwise); the worker builds a new Python object from it per listener.
    pub fn argument(&self) -> serde_json::Value {
        fn obj<T: Serialize>(t: &T) -> serde_json::Value {
            serde_json::to_value(t).unwrap_or_default()
        }
        match self {
            Self::Tick { dt } => serde_json::json!(dt),
            Self::PeerJoin(e) => obj(e),
            Self::PeerLeave(e) => obj(e),
            Self::ChatMsg(e) => obj(e),
            Self::NpcSpawn(e) | Self::VehicleSpawn(e) => obj(e),
            Self::EntityDespawn(e) => obj(e),
            Self::Interact(e) => obj(e),
            Self::BundleInstalled(e) => obj(e),
            Self::Unload => serde_json::json!({}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
        assert_eq!(EventKind::from_name("OnNope"), None);
    }

    #[test]
    fn arguments_are_plain_objects() {
        let e = GameEvent::Interact(Interact {
            peer: 3,
            entity_id: 9,
            action: "open".into(),
        });
        assert_eq!(e.kind(), EventKind::Interact);
        assert_eq!(
            e.argument(),
            serde_json::json!({"peer": 3, "entity_id": 9, "action": "open"})
        );
        assert_eq!(
            GameEvent::Tick { dt: 0.5 }.argument(),
            serde_json::json!(0.5)
        );
    }
}
