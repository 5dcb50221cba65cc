//! The game state the simulation thread owns: peers, entities and weather,
//! with the replication that every change implies.
//!
//! Nothing here is shared: the simulation thread holds the only `World`, so no
//! locks. Messages to a client go into that client's bounded queue; a client
//! whose queue is full is marked for disconnection instead of stalling a tick.

use std::collections::{BTreeMap, HashMap};

use shard_protocol::identity::Fingerprint;
use shard_protocol::{EntityKind, ServerMsg, Vec3};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::admin::metrics::DatagramDrop;
use crate::plugin::events::{Despawned, GameEvent, Spawned};
use crate::tuning::PEER_QUEUE_PLUGIN_SHARE;

/// What the simulation sends to a connection task.
#[derive(Debug)]
pub enum Outbound {
    /// A message on the reliable control stream.
    Msg(ServerMsg),
    /// Send `Kick` with this reason, then close the connection.
    Close(String),
    /// Stream a packed bundle on its own QUIC stream, from `offset` (rounded down to a chunk).
    Bundle {
        /// Plugin the bundle belongs to.
        plugin_id: u16,
        /// The shared packed bytes.
        bytes: bytes::Bytes,
        /// Bytes the client already holds.
        offset: u64,
    },
}

/// Who owns an entity: the server itself or a plugin (removed with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Spawned by the server or an admin command.
    Server,
    /// Spawned by the named plugin.
    Plugin(String),
}

/// A connected player.
#[derive(Debug)]
pub struct Peer {
    /// Session id.
    pub id: u32,
    /// Display name.
    pub name: String,
    /// Player id: the client's key fingerprint.
    pub fingerprint: Fingerprint,
    /// May run admin commands.
    pub admin: bool,
    /// Last known position.
    pub pos: Vec3,
    /// Last known yaw.
    pub rot: f32,
    /// Instance the player is in; only same-phase peers and entities are visible.
    pub phase: u32,
    out: mpsc::Sender<Outbound>,
    datagrams: Option<quinn::Connection>,
    /// Already listed in `World::moved` this tick.
    moved: bool,
}

impl Peer {
    /// The connection's round-trip time estimate (none for peers without a connection).
    pub fn rtt(&self) -> Option<std::time::Duration> {
        self.datagrams.as_ref().map(quinn::Connection::rtt)
    }
}

/// A spawned NPC or vehicle.
#[derive(Debug, Clone)]
pub struct Entity {
    /// Entity id.
    pub id: u32,
    /// Npc or vehicle.
    pub kind: EntityKind,
    /// Template name.
    pub template: String,
    /// Position.
    pub pos: Vec3,
    /// Yaw.
    pub rot: f32,
    /// Phase it lives in.
    pub phase: u32,
    /// Who spawned it.
    pub owner: Owner,
}

impl Entity {
    fn spawned_msg(&self) -> ServerMsg {
        ServerMsg::EntitySpawned {
            entity_id: self.id,
            kind: self.kind,
            template: self.template.clone(),
            pos: self.pos,
            rot: self.rot,
            phase: self.phase,
        }
    }
}

/// All game state.
#[derive(Debug, Default)]
pub struct World {
    peers: BTreeMap<u32, Peer>,
    entities: BTreeMap<u32, Entity>,
    weather: u32,
    next_peer: u32,
    next_entity: u32,
    /// Peers to disconnect at the end of the tick, with the reason.
    doomed: HashMap<u32, String>,
    /// Events for plugins, fired by the simulation after the current call.
    events: Vec<GameEvent>,
    /// Peers whose position changed this tick, in arrival order.
    moved: Vec<u32>,
}

impl World {
    /// An empty world.
    pub fn new() -> Self {
        Self {
            next_peer: 1,
            next_entity: 1,
            ..Default::default()
        }
    }

    /// Number of peers online.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// A peer by id.
    pub fn peer(&self, id: u32) -> Option<&Peer> {
        self.peers.get(&id)
    }

    /// All peers, in id order.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// Sets who is an admin from the admin list (after an operator changes it).
    pub fn set_admins(&mut self, admins: &std::collections::HashSet<Fingerprint>) {
        for p in self.peers.values_mut() {
            p.admin = admins.contains(&p.fingerprint);
        }
    }

    /// A peer by display name (first match), for `/kick NAME`.
    pub fn peer_by_name(&self, name: &str) -> Option<u32> {
        self.peers.values().find(|p| p.name == name).map(|p| p.id)
    }

    /// An entity by id.
    pub fn entity(&self, id: u32) -> Option<&Entity> {
        self.entities.get(&id)
    }

    /// Current weather preset.
    pub fn weather(&self) -> u32 {
        self.weather
    }

    /// Adds a player, tells them what exists, and tells everyone they joined.
    pub fn add_peer(
        &mut self,
        name: String,
        fingerprint: Fingerprint,
        admin: bool,
        out: mpsc::Sender<Outbound>,
        datagrams: Option<quinn::Connection>,
        welcome: impl FnOnce(u32) -> ServerMsg,
    ) -> u32 {
        let id = self.next_peer;
        self.next_peer = self.next_peer.wrapping_add(1).max(1);
        let peer = Peer {
            id,
            name: name.clone(),
            fingerprint,
            admin,
            pos: Vec3::default(),
            rot: 0.0,
            phase: 0,
            out,
            datagrams,
            moved: false,
        };
        self.peers.insert(id, peer);
        self.send(id, welcome(id));
        let others: Vec<ServerMsg> = self
            .peers
            .values()
            .filter(|p| p.id != id)
            .map(|p| ServerMsg::PeerJoined {
                peer_id: p.id,
                name: p.name.clone(),
            })
            .collect();
        for m in others {
            self.send(id, m);
        }
        self.send(id, ServerMsg::Weather { id: self.weather });
        let visible: Vec<ServerMsg> = self
            .entities
            .values()
            .filter(|e| e.phase == 0)
            .map(Entity::spawned_msg)
            .collect();
        for m in visible {
            self.send(id, m);
        }
        self.broadcast_except(id, ServerMsg::PeerJoined { peer_id: id, name });
        id
    }

    /// Removes a player and tells everyone; returns them if they were online.
    pub fn remove_peer(&mut self, id: u32) -> Option<Peer> {
        let peer = self.peers.remove(&id)?;
        self.doomed.remove(&id);
        self.broadcast(ServerMsg::PeerLeft {
            peer_id: id,
            name: peer.name.clone(),
        });
        Some(peer)
    }

    /// Records a position update; it is replicated at the end of the tick by
    /// [`World::flush_moves`], batched, so the cost grows with peers, not peers².
    pub fn move_peer(&mut self, id: u32, pos: Vec3, rot: f32) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        p.pos = pos;
        p.rot = rot;
        if !p.moved {
            p.moved = true;
            self.moved.push(id);
        }
    }

    /// Sends this tick's position updates as datagrams to the peers of each
    /// phase: each batch is encoded once and shared by every recipient
    /// (clients skip their own entry). Datagrams are lossy by design: a slow
    /// client loses these first.
    pub fn flush_moves(&mut self) {
        if self.moved.is_empty() {
            return;
        }
        let mut by_phase: BTreeMap<u32, Vec<shard_protocol::PeerMove>> = BTreeMap::new();
        for id in std::mem::take(&mut self.moved) {
            if let Some(p) = self.peers.get_mut(&id) {
                p.moved = false;
                let m = shard_protocol::PeerMove {
                    peer_id: id,
                    pos: p.pos,
                    rot: p.rot,
                };
                by_phase.entry(p.phase).or_default().push(m);
            }
        }
        let max = shard_protocol::limits::MAX_MOVES_PER_DATAGRAM;
        for (phase, moves) in by_phase {
            let datagrams: Vec<bytes::Bytes> = moves
                .chunks(max)
                .filter_map(|c| {
                    let msg = ServerMsg::PeerMoved { moves: c.to_vec() };
                    shard_protocol::frame::encode_datagram(&msg)
                        .ok()
                        .map(bytes::Bytes::from)
                })
                .collect();
            for peer in self.peers.values().filter(|p| p.phase == phase) {
                if let Some(conn) = &peer.datagrams {
                    for d in &datagrams {
                        if conn.send_datagram(d.clone()).is_err() {
                            crate::admin::metrics::datagram_dropped(DatagramDrop::SendFailed);
                        }
                    }
                    crate::admin::metrics::datagrams_out(datagrams.len() as u64);
                }
            }
        }
    }

    /// Moves a player (and possibly into another phase), re-sending the entities they now see.
    pub fn teleport_peer(&mut self, id: u32, pos: Vec3, rot: f32, phase: Option<u32>) -> bool {
        let Some(p) = self.peers.get_mut(&id) else {
            return false;
        };
        let old_phase = p.phase;
        let new_phase = phase.unwrap_or(old_phase);
        p.pos = pos;
        p.rot = rot;
        p.phase = new_phase;
        self.send(
            id,
            ServerMsg::Teleport {
                pos,
                rot,
                phase: new_phase,
            },
        );
        if new_phase != old_phase {
            let gone: Vec<ServerMsg> = self
                .entities
                .values()
                .filter(|e| e.phase == old_phase)
                .map(|e| ServerMsg::EntityDespawned { entity_id: e.id })
                .collect();
            let seen: Vec<ServerMsg> = self
                .entities
                .values()
                .filter(|e| e.phase == new_phase)
                .map(Entity::spawned_msg)
                .collect();
            for m in gone.into_iter().chain(seen) {
                self.send(id, m);
            }
        }
        true
    }

    /// Spawns an entity and shows it to the peers in its phase.
    pub fn spawn(
        &mut self,
        kind: EntityKind,
        template: &str,
        pos: Vec3,
        rot: f32,
        phase: u32,
        owner: Owner,
    ) -> u32 {
        let id = self.next_entity;
        self.next_entity = self.next_entity.wrapping_add(1).max(1);
        let e = Entity {
            id,
            kind,
            template: template.to_string(),
            pos,
            rot,
            phase,
            owner,
        };
        let msg = e.spawned_msg();
        self.entities.insert(id, e);
        self.broadcast_phase(phase, msg);
        let spawned = Spawned {
            entity_id: id,
            template: template.to_string(),
            pos: [pos.x, pos.y, pos.z],
            rot,
            phase,
        };
        self.push_event(match kind {
            EntityKind::Npc => GameEvent::NpcSpawn(spawned),
            EntityKind::Vehicle => GameEvent::VehicleSpawn(spawned),
        });
        id
    }

    /// Queues an event for plugins (delivered in the next plugin phase, so a
    /// listener that spawns never re-enters plugin code).
    pub fn push_event(&mut self, event: GameEvent) {
        self.events.push(event);
    }

    /// Takes the queued plugin events.
    pub fn take_events(&mut self) -> Vec<GameEvent> {
        std::mem::take(&mut self.events)
    }

    /// Queues any outbound item (e.g. a bundle transfer) for one peer.
    pub fn queue(&mut self, id: u32, item: Outbound) {
        let Some(p) = self.peers.get(&id) else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = p.out.try_send(item) {
            self.doomed
                .entry(id)
                .or_insert_with(|| "your connection is too slow: reliable queue overflowed".into());
        }
    }

    /// Removes an entity; false when there was none.
    pub fn despawn(&mut self, id: u32) -> bool {
        let Some(e) = self.entities.remove(&id) else {
            return false;
        };
        self.broadcast_phase(e.phase, ServerMsg::EntityDespawned { entity_id: id });
        self.push_event(GameEvent::EntityDespawn(Despawned {
            entity_id: id,
            template: e.template,
        }));
        true
    }

    /// Removes every entity a plugin owns (on unload, reload or disable).
    pub fn despawn_owned_by(&mut self, plugin: &str) -> Vec<u32> {
        let ids: Vec<u32> = self
            .entities
            .values()
            .filter(|e| e.owner == Owner::Plugin(plugin.to_string()))
            .map(|e| e.id)
            .collect();
        for id in &ids {
            self.despawn(*id);
        }
        ids
    }

    /// Sets the weather for everyone.
    pub fn set_weather(&mut self, id: u32) {
        self.weather = id;
        self.broadcast(ServerMsg::Weather { id });
    }

    /// Queues a message for one peer; a full queue dooms the peer (it is too slow).
    pub fn send(&mut self, id: u32, msg: ServerMsg) {
        let Some(p) = self.peers.get(&id) else { return };
        match p.out.try_send(Outbound::Msg(msg)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(peer = id, "reliable queue overflowed; disconnecting");
                self.doomed.entry(id).or_insert_with(|| {
                    "your connection is too slow: reliable queue overflowed".into()
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                debug!(peer = id, "queue closed; peer is leaving");
            }
        }
    }

    /// Queues a message for every peer `to` selects (the one fan-out path).
    pub fn broadcast_to(&mut self, to: impl Fn(&Peer) -> bool, msg: ServerMsg) {
        let ids: Vec<u32> = self
            .peers
            .values()
            .filter(|p| to(p))
            .map(|p| p.id)
            .collect();
        for id in ids {
            self.send(id, msg.clone());
        }
    }

    /// Queues a message for every peer.
    pub fn broadcast(&mut self, msg: ServerMsg) {
        self.broadcast_to(|_| true, msg);
    }

    /// Queues a message for every peer but one.
    pub fn broadcast_except(&mut self, except: u32, msg: ServerMsg) {
        self.broadcast_to(|p| p.id != except, msg);
    }

    /// Queues a message for every peer in a phase.
    pub fn broadcast_phase(&mut self, phase: u32, msg: ServerMsg) {
        self.broadcast_to(|p| p.phase == phase, msg);
    }

    /// A chat line from the server to one peer.
    pub fn server_chat(&mut self, id: u32, text: &str) {
        self.send(id, server_line(text));
    }

    /// A chat line from the server to everyone.
    pub fn server_broadcast(&mut self, text: &str) {
        self.broadcast(server_line(text));
    }

    /// A chat line from the server to every admin online.
    pub fn notify_admins(&mut self, text: &str) {
        self.broadcast_to(|p| p.admin, server_line(text));
    }

    /// Marks a peer for disconnection at the end of the tick.
    pub fn kick(&mut self, id: u32, reason: &str) {
        if self.peers.contains_key(&id) {
            self.doomed.insert(id, reason.to_string());
        }
    }

    /// Closes the connections of doomed peers; they leave when their task ends.
    pub fn flush_kicks(&mut self) {
        for (id, reason) in std::mem::take(&mut self.doomed) {
            if let Some(p) = self.peers.get(&id) {
                // The Close must get through even when the queue is full.
                if p.out.try_send(Outbound::Close(reason.clone())).is_err()
                    && let Some(c) = &p.datagrams
                {
                    c.close(quinn::VarInt::from_u32(1), reason.as_bytes());
                }
            }
        }
    }

    /// Tells every peer the server is stopping and closes their connections.
    pub fn close_all(&mut self, reason: &str) {
        let ids: Vec<u32> = self.peers.keys().copied().collect();
        for id in ids {
            self.doomed.insert(id, reason.to_string());
        }
        self.flush_kicks();
    }
}

/// A chat line from the server itself (clipped to the chat limit).
fn server_line(text: &str) -> ServerMsg {
    ServerMsg::Chat {
        from: None,
        name: "server".into(),
        text: clip_chat(text),
    }
}

/// Cuts server text to the chat limit so a long listing never fails to send.
pub fn clip_chat(text: &str) -> String {
    let max = shard_protocol::limits::MAX_CHAT_CHARS;
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

impl crate::plugin::GameWorld for World {
    fn peer_exists(&self, peer: u32) -> bool {
        self.peers.contains_key(&peer)
    }

    fn peer_name(&self, peer: u32) -> Option<String> {
        self.peers.get(&peer).map(|p| p.name.clone())
    }

    fn peer_is_admin(&self, peer: u32) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.admin)
    }

    fn peer_positions(&self) -> Vec<(u32, Vec3)> {
        self.peers.values().map(|p| (p.id, p.pos)).collect()
    }

    fn spawn_entity(
        &mut self,
        kind: EntityKind,
        template: &str,
        pos: Vec3,
        rot: f32,
        phase: u32,
        owner: crate::plugin::PluginOwner,
    ) -> u32 {
        self.spawn(kind, template, pos, rot, phase, Owner::Plugin(owner.name))
    }

    fn entity_position(&self, id: u32) -> Option<(Vec3, u32)> {
        self.entities.get(&id).map(|e| (e.pos, e.phase))
    }

    fn despawn(&mut self, id: u32) -> bool {
        World::despawn(self, id)
    }

    fn teleport_peer(&mut self, peer: u32, pos: Vec3, rot: f32, phase: Option<u32>) {
        World::teleport_peer(self, peer, pos, rot, phase);
    }

    fn set_weather(&mut self, id: u32) {
        World::set_weather(self, id);
    }

    fn send_chat(&mut self, peer: u32, text: &str) {
        self.server_chat(peer, text);
    }

    fn broadcast(&mut self, text: &str) {
        self.server_broadcast(text);
    }

    fn send_rpc(&mut self, peer: u32, plugin_id: u16, fn_hash: u32, json: String) {
        if !self.peers.contains_key(&peer) {
            crate::admin::metrics::rpc_dropped("no_peer");
            return;
        }
        self.send(
            peer,
            ServerMsg::PluginRpc {
                plugin_id,
                fn_hash,
                json,
            },
        );
    }

    fn notify_admins(&mut self, text: &str) {
        warn!("{text}");
        World::notify_admins(self, text);
    }

    fn peer_accepts_plugin_message(&self, peer: u32) -> bool {
        let reserve = (crate::net::OUTBOUND_QUEUE as f64 * PEER_QUEUE_PLUGIN_SHARE) as usize;
        self.peers
            .get(&peer)
            .is_some_and(|p| p.out.capacity() > reserve)
    }
}
