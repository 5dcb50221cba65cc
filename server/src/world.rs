//! The game state the simulation thread owns: peers, entities and weather,
//! with the replication that every change implies.
//!
//! Nothing here is shared: the simulation thread holds the only `World`, so no
//! locks. Messages to a client go into that client's bounded queue; a client
//! whose queue is full is marked for disconnection instead of stalling a tick.

use std::collections::{BTreeMap, HashMap};

use shard_protocol::close_code;
use shard_protocol::identity::Fingerprint;
use shard_protocol::limits::{
    MAX_CHAT_CHARS, MAX_FINGERPRINT, MAX_POPUP_CHARS, MIN_FINGERPRINT_PREFIX,
};
use shard_protocol::text::{clean_text, name_key};
use shard_protocol::{BUILTIN_PLUGIN_ID, EntityKind, POPUP_RPC, ServerMsg, Vec3, fn_hash};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::ratelog::WarnLimiter;
use crate::transfers::{Lookup, PeerBundles, Transfer};

use crate::admin::metrics::DatagramDrop;
use crate::plugin::events::{Despawned, GameEvent, Spawned};
use crate::tuning::PEER_QUEUE_PLUGIN_SHARE_PERCENT;

/// Vehicle names from before vehicles were TweakDB records, each with the
/// record id it now means; `spawn_vehicle("veh_commandcenter", …)` still
/// spawns mobile_cc's command centre, so older plugins and docs keep working.
pub const VEHICLE_ALIASES: &[(&str, &str)] =
    &[("veh_commandcenter", "Vehicle.shard_mobile_cc_commandcenter")];

/// The TweakDB record id a vehicle template names: its alias target, or the
/// template itself.
pub fn vehicle_record(template: &str) -> &str {
    VEHICLE_ALIASES
        .iter()
        .find(|(alias, _)| *alias == template)
        .map_or(template, |(_, record)| record)
}

/// What the simulation sends to a connection task.
#[derive(Debug)]
pub enum Outbound {
    /// A message on the reliable control stream.
    Msg(ServerMsg),
    /// Send `Kick` with this reason, then close the connection with this code.
    Close {
        /// A [`close_code`].
        code: u32,
        /// Why, for the player.
        reason: String,
    },
    /// Stream a packed bundle on its own QUIC stream (the simulation already
    /// applied the per-connection rules).
    Bundle(Transfer),
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
    /// Display name (NFKC-normalised and checked at join).
    pub name: String,
    /// The name's comparison key: unique among connected players.
    pub key: String,
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
    /// What this connection asked for of the bundle service.
    bundles: PeerBundles,
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

/// Why a command's player argument named no single player; the text is
/// what the admin reads in chat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindPeerError {
    /// The argument was empty.
    #[error("name a player: NAME, #PEER_ID or a key prefix; /who lists them")]
    NoTarget,
    /// Nobody matches.
    #[error("no player matches `{target}`; /who lists them")]
    NoMatch {
        /// What was asked for.
        target: String,
    },
    /// Several players match.
    #[error(
        "`{target}` is ambiguous: it matches {}; name the player by #PEER_ID",
        matches.join(", ")
    )]
    Ambiguous {
        /// What was asked for.
        target: String,
        /// Each match as `#ID name (key prefix)`.
        matches: Vec<String>,
    },
}

/// All game state.
#[derive(Debug, Default)]
pub struct World {
    peers: BTreeMap<u32, Peer>,
    entities: BTreeMap<u32, Entity>,
    weather: u32,
    next_peer: u32,
    next_entity: u32,
    /// Peers to disconnect at the end of the tick, with the close code and reason.
    doomed: HashMap<u32, (u32, String)>,
    /// Folds the warnings a peer can cause, so none can flood the log.
    warns: WarnLimiter<u32>,
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

    /// Whether a connected player other than `except` has a name that
    /// compares equal to `name` (case-insensitively, after normalisation).
    pub fn name_taken(&self, name: &str, except: Option<u32>) -> bool {
        let key = name_key(name);
        self.peers
            .values()
            .any(|p| p.key == key && Some(p.id) != except)
    }

    /// The one player `target` names, for commands: a peer id (`7` or `#7`),
    /// a name (case-insensitive) or a key fingerprint prefix of at least
    /// [`MIN_FINGERPRINT_PREFIX`] hex digits. An unknown or ambiguous target
    /// is an error that says which players matched.
    pub fn find_peer(&self, target: &str) -> Result<u32, FindPeerError> {
        let target = target.trim();
        if target.is_empty() {
            return Err(FindPeerError::NoTarget);
        }
        let id = target
            .strip_prefix('#')
            .unwrap_or(target)
            .parse::<u32>()
            .ok();
        let key = name_key(target);
        let hex = target.to_ascii_lowercase();
        let prefix = hex.len() >= MIN_FINGERPRINT_PREFIX
            && hex.len() <= MAX_FINGERPRINT
            && hex.chars().all(|c| c.is_ascii_hexdigit());
        let hits: Vec<&Peer> = self
            .peers
            .values()
            .filter(|p| {
                Some(p.id) == id
                    || p.key == key
                    || (prefix && p.fingerprint.to_hex().starts_with(&hex))
            })
            .collect();
        match hits[..] {
            [one] => Ok(one.id),
            [] => Err(FindPeerError::NoMatch {
                target: target.to_owned(),
            }),
            _ => Err(FindPeerError::Ambiguous {
                target: target.to_owned(),
                matches: hits
                    .iter()
                    .map(|p| format!("#{} {} ({})", p.id, p.name, short_key(&p.fingerprint)))
                    .collect(),
            }),
        }
    }

    /// Sets who is an admin from the admin list (after an operator changes it).
    pub fn set_admins(&mut self, admins: &std::collections::HashSet<Fingerprint>) {
        for p in self.peers.values_mut() {
            p.admin = admins.contains(&p.fingerprint);
        }
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
            key: name_key(&name),
            name: name.clone(),
            fingerprint,
            admin,
            pos: Vec3::default(),
            rot: 0.0,
            phase: 0,
            out,
            datagrams,
            moved: false,
            bundles: PeerBundles::default(),
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

    /// Spawns an entity and shows it to the peers in its phase. A vehicle's
    /// template is its TweakDB record id; an old template name listed in
    /// [`VEHICLE_ALIASES`] is replaced by its record id first.
    pub fn spawn(
        &mut self,
        kind: EntityKind,
        template: &str,
        pos: Vec3,
        rot: f32,
        phase: u32,
        owner: Owner,
    ) -> u32 {
        let template = match kind {
            EntityKind::Vehicle => vehicle_record(template),
            EntityKind::Npc => template,
        };
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

    /// Queues any outbound item for one peer; a full queue dooms the peer (it is too slow).
    pub fn queue(&mut self, id: u32, item: Outbound) {
        let Some(p) = self.peers.get(&id) else { return };
        match p.out.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if let std::collections::hash_map::Entry::Vacant(e) = self.doomed.entry(id) {
                    warn!(peer = id, "reliable queue overflowed; disconnecting");
                    e.insert((
                        close_code::FLOOD,
                        "your connection is too slow: reliable queue overflowed".into(),
                    ));
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                debug!(peer = id, "queue closed; peer is leaving");
            }
        }
    }

    /// A bundle request from a peer, after the simulation looked it up:
    /// starts it, lets it wait in line, or refuses it with a reason (and
    /// disconnects a peer that keeps asking for what it may not have).
    /// Returns whether the request was taken (started or waiting).
    pub fn request_bundle(
        &mut self,
        id: u32,
        plugin_id: u16,
        sha256: [u8; 32],
        offset: u64,
        lookup: Lookup,
    ) -> bool {
        if self.doomed.contains_key(&id) {
            return false;
        }
        let Some(p) = self.peers.get_mut(&id) else {
            return false;
        };
        match p.bundles.request(plugin_id, sha256, offset, lookup) {
            Ok(start) => {
                for t in start {
                    self.queue(id, Outbound::Bundle(t));
                }
                true
            }
            Err(refusal) => {
                if let Some(folded) = self.warns.allow(id, "bundle request refused") {
                    warn!(peer = id, plugin_id, reason = %refusal.reason, folded, "bundle request refused");
                }
                let reason = refusal.reason.clone();
                self.send(
                    id,
                    ServerMsg::BundleRefused {
                        plugin_id,
                        sha256,
                        reason,
                    },
                );
                if refusal.disconnect {
                    self.kick_with(id, close_code::FLOOD, "too many refused bundle requests");
                }
                false
            }
        }
    }

    /// Plugin `plugin_id` no longer announces `sha256`: every peer's
    /// transfer of it still waiting in line is dropped (see
    /// [`PeerBundles::superseded`]).
    pub fn bundle_superseded(&mut self, plugin_id: u16, sha256: &[u8; 32]) {
        for p in self.peers.values_mut() {
            p.bundles.superseded(plugin_id, sha256);
        }
    }

    /// A bundle transfer to a peer ended; the next ones in its line start.
    pub fn bundle_sent(&mut self, id: u32, plugin_id: u16, sha256: &[u8; 32]) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        for t in p.bundles.finished(plugin_id, sha256) {
            self.queue(id, Outbound::Bundle(t));
        }
    }

    /// A peer reported an install: a success is never sent again on this
    /// connection; a failure is logged, folded per peer.
    pub fn bundle_installed(
        &mut self,
        id: u32,
        plugin_id: u16,
        sha256: [u8; 32],
        ok: bool,
        why: &str,
    ) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.bundles.installed(sha256, ok);
        }
        if !ok && let Some(folded) = self.warns.allow(id, "bundle install failed") {
            let why = clean_text(why, MAX_CHAT_CHARS);
            warn!(
                peer = id,
                plugin_id, why, folded, "a client failed to install a bundle"
            );
        }
    }

    /// Logs once per window a warning a peer caused; repeats are folded into a count.
    pub fn warn_peer(&self, id: u32, cause: &'static str) -> Option<u64> {
        self.warns.allow(id, cause)
    }

    /// Logs the folded warnings whose window ended (once per tick).
    pub fn flush_warnings(&self) {
        self.warns.flush();
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
        self.queue(id, Outbound::Msg(msg));
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

    /// Marks a peer for disconnection at the end of the tick (an orderly kick).
    pub fn kick(&mut self, id: u32, reason: &str) {
        self.kick_with(id, close_code::KICKED, reason);
    }

    /// Marks a peer for disconnection at the end of the tick with a close code.
    pub fn kick_with(&mut self, id: u32, code: u32, reason: &str) {
        if self.peers.contains_key(&id) {
            let reason = clean_text(reason, shard_protocol::limits::MAX_REASON / 4);
            self.doomed.insert(id, (code, reason));
        }
    }

    /// Closes a peer's connection now and removes it (a newer session of the
    /// same key replaces it); returns it if it was online.
    pub fn evict(&mut self, id: u32, reason: &str) -> Option<Peer> {
        let reason = clean_text(reason, shard_protocol::limits::MAX_REASON / 4);
        if let Some(p) = self.peers.get(&id) {
            close_peer(p, close_code::KICKED, reason);
        }
        self.remove_peer(id)
    }

    /// Closes the connections of doomed peers; they leave when their task ends.
    pub fn flush_kicks(&mut self) {
        for (id, (code, reason)) in std::mem::take(&mut self.doomed) {
            if let Some(p) = self.peers.get(&id) {
                info!(peer = id, code, reason, "disconnecting");
                close_peer(p, code, reason);
            }
        }
    }

    /// Tells every peer the server is stopping and closes their connections.
    pub fn close_all(&mut self, reason: &str) {
        let ids: Vec<u32> = self.peers.keys().copied().collect();
        for id in ids {
            self.doomed
                .insert(id, (close_code::KICKED, reason.to_string()));
        }
        self.flush_kicks();
    }
}

/// Queues the Kick and close; when the queue is full the connection is closed
/// at once, so the close always gets through.
fn close_peer(p: &Peer, code: u32, reason: String) {
    if let Err(e) = p.out.try_send(Outbound::Close { code, reason })
        && let Some(c) = &p.datagrams
    {
        let reason = match e.into_inner() {
            Outbound::Close { reason, .. } => reason,
            _ => String::new(),
        };
        c.close(quinn::VarInt::from_u32(code), reason.as_bytes());
    }
}

/// The short form of a key fingerprint that `/who` shows and commands accept.
pub fn short_key(fp: &Fingerprint) -> String {
    fp.to_hex()
        .chars()
        .take(MIN_FINGERPRINT_PREFIX + 2)
        .collect()
}

/// A chat line from the server itself, through the one sanitiser.
fn server_line(text: &str) -> ServerMsg {
    ServerMsg::Chat {
        from: None,
        name: "server".into(),
        text: clean_text(text, MAX_CHAT_CHARS),
    }
}

/// Sanitises the text of a builtin popup (the one RPC whose payload the
/// server knows is shown as text); other RPC payloads are data for the
/// plugin's own checked client scripts and pass unchanged.
fn clean_popup(plugin_id: u16, fn_hash_: u32, json: String) -> String {
    if plugin_id != BUILTIN_PLUGIN_ID || fn_hash_ != fn_hash(POPUP_RPC) {
        return json;
    }
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&json) else {
        return json;
    };
    if let Some(t) = v.get_mut("text")
        && let Some(s) = t.as_str()
    {
        *t = serde_json::Value::String(clean_text(s, MAX_POPUP_CHARS));
    }
    v.to_string()
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
        let json = clean_popup(plugin_id, fn_hash, json);
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
        warn!(text, "admin notice");
        World::notify_admins(self, text);
    }

    fn peer_accepts_plugin_message(&self, peer: u32) -> bool {
        let reserve = crate::tuning::OUTBOUND_QUEUE * PEER_QUEUE_PLUGIN_SHARE_PERCENT / 100;
        self.peers
            .get(&peer)
            .is_some_and(|p| p.out.capacity() > reserve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_vehicle_name_spawns_the_tweakdb_record() {
        let mut w = World::new();
        let mut spawn = |kind, template: &str| {
            let id = w.spawn(
                kind,
                template,
                Vec3::new(0.0, 0.0, 0.0),
                0.0,
                0,
                Owner::Plugin("mobile_cc".into()),
            );
            w.entities[&id].template.clone()
        };
        assert_eq!(
            spawn(EntityKind::Vehicle, "veh_commandcenter"),
            "Vehicle.shard_mobile_cc_commandcenter"
        );
        assert_eq!(
            spawn(EntityKind::Vehicle, "Vehicle.v_standard2_thorton_colby"),
            "Vehicle.v_standard2_thorton_colby"
        );
        // Only vehicles have aliases: an NPC template is kept as given.
        assert_eq!(
            spawn(EntityKind::Npc, "veh_commandcenter"),
            "veh_commandcenter"
        );
        // Plugins see the record id in OnVehicleSpawn too.
        let events = w.take_events();
        assert!(
            matches!(&events[0], GameEvent::VehicleSpawn(s)
                if s.template == "Vehicle.shard_mobile_cc_commandcenter"),
            "{events:?}"
        );
    }

    fn join(w: &mut World, name: &str, key: [u8; 32]) -> (u32, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(64);
        let id = w.add_peer(name.into(), Fingerprint(key), false, tx, None, |_| {
            ServerMsg::Weather { id: 0 }
        });
        (id, rx)
    }

    #[test]
    fn find_peer_takes_ids_names_and_key_prefixes_and_refuses_ambiguity() {
        let mut w = World::new();
        let (alice, _a) = join(&mut w, "Alice", [0xab; 32]);
        let (bob, _b) = join(&mut w, "bob", [0xcd; 32]);
        assert_eq!(w.find_peer(&alice.to_string()), Ok(alice));
        assert_eq!(w.find_peer(&format!("#{bob}")), Ok(bob));
        assert_eq!(w.find_peer("ALICE"), Ok(alice));
        assert_eq!(w.find_peer("ｂｏｂ"), Ok(bob));
        assert_eq!(w.find_peer("cdcdcd"), Ok(bob));
        // Shorter than the minimum prefix: not a key prefix.
        assert!(w.find_peer("cdcd").is_err());
        assert!(w.find_peer("").is_err());
        assert!(
            w.find_peer("carol")
                .unwrap_err()
                .to_string()
                .contains("no player")
        );
        // A name that is another player's key prefix matches both.
        let (shadow, _s) = join(&mut w, "ababab", [0x11; 32]);
        let e = w.find_peer("ababab").unwrap_err().to_string();
        assert!(
            e.contains("ambiguous")
                && e.contains(&format!("#{alice}"))
                && e.contains(&format!("#{shadow}")),
            "{e}"
        );
        assert!(w.name_taken("ALICE", None));
        assert!(!w.name_taken("ALICE", Some(alice)));
    }

    #[test]
    fn server_lines_and_popups_go_through_the_sanitiser() {
        let mut w = World::new();
        let (id, mut rx) = join(&mut w, "vee", [1; 32]);
        while rx.try_recv().is_ok() {}
        w.server_chat(id, "a\u{1b}[2Jb\u{202e}c");
        let json = serde_json::json!({"text": "hi\nthere\u{200b}", "duration": 1.0}).to_string();
        crate::plugin::GameWorld::send_rpc(&mut w, id, BUILTIN_PLUGIN_ID, fn_hash(POPUP_RPC), json);
        let Ok(Outbound::Msg(ServerMsg::Chat { text, .. })) = rx.try_recv() else {
            panic!("a chat line")
        };
        assert_eq!(text, "a [2Jbc");
        let Ok(Outbound::Msg(ServerMsg::PluginRpc { json, .. })) = rx.try_recv() else {
            panic!("a popup")
        };
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["text"], "hi there");
    }
}
