//! The simulation thread: the one owner of the world and the supervisor of
//! the plugin workers. It runs fixed ticks: drain the inbound queue, apply,
//! run the plugins' part of the tick (each worker waited for at most its
//! deadline), flush disconnections, wait for the next tick. While it waits,
//! it applies the messages that run no plugin code as network tasks wake it
//! for them ([`Inbound::between_ticks`]), so a joining player's Welcome and
//! bundles do not wait one or two ticks.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shard_protocol::identity::Fingerprint;
use shard_protocol::{BundleRequest, ClientMsg, PROTOCOL_VERSION, ServerMsg, Vec3};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::admin::snapshot::{ChatKind, Publisher, Snapshot};
use crate::admin::{AdminCmd, AdminRefused, AdminReply, metrics};
use crate::bundles::{BundleHook, Catalog};
use crate::client_rpc::{ClientRpcCounters, ClientRpcGate, DropCause};
use crate::commands::{self, CommandContext, CommandInfo};
use crate::config::ServerConfig;
use crate::plugin::events::{self, GameEvent};
use crate::plugin::{CommandOutcome, PluginHost, RpcOutcome};
use crate::ratelog::WarnLimiter;
use crate::transfers::Lookup;
use crate::world::{Outbound, World};
use shard_protocol::limits::MAX_CHAT_CHARS;
use shard_protocol::text::clean_text;

/// Why the simulation refused a join; the text is the reason the player sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefusal {
    /// The server admits listed keys only, and this key is not listed.
    #[error(
        "this server admits listed keys only; give the operator your key {fingerprint} (shard-client whoami)"
    )]
    NotListed {
        /// The player's key.
        fingerprint: Fingerprint,
    },
    /// Another player holds the name (compared ignoring case and look-alikes).
    #[error(
        "the name `{name}` is taken (names are compared ignoring case and look-alike forms); choose another"
    )]
    NameTaken {
        /// The name asked for.
        name: String,
    },
    /// Every slot open to this player is taken; the rest are kept for admins.
    #[error("the server is full ({limit} players; {reserve} more slots are kept for admins)")]
    FullButAdminSlots {
        /// Slots open to players who are not admins.
        limit: usize,
        /// Slots kept for admins.
        reserve: usize,
    },
    /// Every slot is taken.
    #[error("the server is full ({max} players)")]
    Full {
        /// `max_players`.
        max: usize,
    },
}

/// What network tasks (and the operator's console) send to the simulation.
#[derive(Debug)]
pub enum Inbound {
    /// A client finished its handshake and wants in.
    Join {
        /// Display name from `Hello`.
        name: String,
        /// Key fingerprint from its certificate.
        fingerprint: Fingerprint,
        /// Its reliable outbound queue.
        out: mpsc::Sender<Outbound>,
        /// The connection, for datagrams.
        conn: Option<quinn::Connection>,
        /// The peer id, or why it was refused.
        reply: oneshot::Sender<Result<u32, JoinRefusal>>,
    },
    /// A control-stream message from a peer.
    Msg {
        /// Sender.
        peer: u32,
        /// The message.
        msg: ClientMsg,
    },
    /// A position datagram from a peer.
    Moved {
        /// Sender.
        peer: u32,
        /// Position.
        pos: Vec3,
        /// Yaw.
        rot: f32,
    },
    /// A bundle transfer to a peer ended (sent and acknowledged, or cut).
    BundleSent {
        /// The peer.
        peer: u32,
        /// The plugin it was sent on behalf of.
        plugin_id: u16,
        /// The bundle's hash.
        sha256: [u8; 32],
    },
    /// A peer's connection ended.
    Left {
        /// Who.
        peer: u32,
    },
    /// Operator console code (`py CODE` on the server's stdin).
    Console {
        /// The code.
        code: String,
        /// What it printed, or its traceback.
        reply: oneshot::Sender<String>,
    },
    /// A command from the admin web console.
    Admin {
        /// What to do.
        cmd: AdminCmd,
        /// The outcome, for the operator.
        reply: oneshot::Sender<AdminReply>,
    },
    /// Stop: tell clients, then end the thread.
    Shutdown,
}

impl Inbound {
    /// Whether the simulation may apply this while it waits for the next
    /// tick: messages that run no plugin code (plugin events they cause are
    /// still delivered at the tick). Chat, RPCs, interactions and operator
    /// commands wait for the tick, and so does everything queued behind them.
    pub fn between_ticks(&self) -> bool {
        match self {
            Inbound::Join { .. }
            | Inbound::Left { .. }
            | Inbound::Moved { .. }
            | Inbound::BundleSent { .. } => true,
            Inbound::Msg { msg, .. } => matches!(
                msg,
                ClientMsg::NeedBundles { .. }
                    | ClientMsg::BundleInstalled { .. }
                    | ClientMsg::PeerState { .. }
                    | ClientMsg::KeepAlive
            ),
            Inbound::Console { .. } | Inbound::Admin { .. } | Inbound::Shutdown => false,
        }
    }

    /// Whether a player is waiting on this (its Welcome, its next bundle), so
    /// the network task that queued it wakes the simulation ([`SimWaker`]).
    pub fn urgent(&self) -> bool {
        matches!(
            self,
            Inbound::Join { .. }
                | Inbound::BundleSent { .. }
                | Inbound::Msg {
                    msg: ClientMsg::NeedBundles { .. },
                    ..
                }
        )
    }
}

/// Wakes the simulation thread from its wait for the next tick, so it applies
/// an urgent message ([`Inbound::urgent`]) now instead of up to a tick later.
#[derive(Clone, Debug)]
pub struct SimWaker(std::thread::Thread);

impl SimWaker {
    /// The waker of the simulation running on `thread`.
    pub fn new(thread: std::thread::Thread) -> Self {
        Self(thread)
    }

    /// Wakes the simulation (after an urgent message was queued).
    pub fn wake(&self) {
        self.0.unpark();
    }
}

/// Tick durations, for the load generator and the operator, and the
/// simulation's other counters.
#[derive(Debug, Default)]
pub struct TickStats {
    samples: Mutex<Vec<Duration>>,
    /// Client RPCs delivered and dropped, by cause.
    pub client_rpc: ClientRpcCounters,
}

/// Percentiles of recorded tick durations.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickSummary {
    /// Ticks measured.
    pub ticks: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Worst.
    pub max: Duration,
}

impl TickStats {
    fn record(&self, d: Duration) {
        if let Ok(mut s) = self.samples.lock() {
            if s.len() >= crate::tuning::TICK_SAMPLES_KEPT {
                s.clear();
            }
            s.push(d);
        }
    }

    /// Forgets what was recorded (e.g. after warm-up).
    pub fn reset(&self) {
        if let Ok(mut s) = self.samples.lock() {
            s.clear();
        }
    }

    /// p50/p99/max of the ticks recorded since the last reset.
    pub fn summary(&self) -> TickSummary {
        let Ok(s) = self.samples.lock() else {
            return TickSummary::default();
        };
        let mut v = s.clone();
        drop(s);
        if v.is_empty() {
            return TickSummary::default();
        }
        v.sort();
        let at = |percent: usize| v[quantile_index(v.len(), percent)];
        TickSummary {
            ticks: v.len(),
            p50: at(50),
            p99: at(99),
            max: at(100),
        }
    }
}

/// Index of the `percent` quantile in a sorted sample of `len` (> 0) values,
/// rounded to the nearest rank, in whole numbers so no float is cast to an index.
pub fn quantile_index(len: usize, percent: usize) -> usize {
    let last = len.saturating_sub(1);
    (last.saturating_mul(percent.min(100)) + 50) / 100
}

/// What clients were last told about one plugin's bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Announced {
    id: u16,
    sha256: [u8; 32],
    version: String,
}

/// The simulation: world, plugin host and configuration; runs on its own thread.
pub struct Sim {
    world: World,
    host: PluginHost,
    catalog: Catalog,
    announced: BTreeMap<String, Announced>,
    cfg: Arc<ServerConfig>,
    admins: HashSet<Fingerprint>,
    inbound: mpsc::Receiver<Inbound>,
    /// The first message that had to wait for the tick, taken off the queue
    /// while waiting; the tick applies it before anything queued after it.
    held: Option<Inbound>,
    stats: Arc<TickStats>,
    /// Events for plugins gathered since the last plugin phase.
    pending: Vec<GameEvent>,
    publisher: Publisher,
    /// Rate and whitelist checks of client RPCs.
    rpc_gate: ClientRpcGate,
    /// Folds the warning about bundles asked of this server although
    /// `asset_mirrors` are set: one line per plugin and window.
    mirror_warns: WarnLimiter<u16>,
}

/// The builtin chat commands work on the simulation's world and plugin host.
impl CommandContext for Sim {
    fn world(&mut self) -> &mut World {
        &mut self.world
    }

    fn plugin_commands(&self, is_admin: bool) -> Vec<CommandInfo> {
        self.host
            .command_list(is_admin)
            .into_iter()
            .map(|(name, help, admin)| CommandInfo { name, help, admin })
            .collect()
    }

    fn plugin_list(&self) -> String {
        let list: Vec<String> = self
            .host
            .plugins()
            .iter()
            .map(|p| {
                format!(
                    "{} {} [{:?}, {} errors, {} restarts]",
                    p.name, p.version, p.state, p.errors, p.restarts
                )
            })
            .collect();
        if list.is_empty() {
            return "no plugins".into();
        }
        format!("plugins: {}", list.join("; "))
    }

    fn plugin_action(&mut self, action: crate::admin::PluginAction, target: &str) -> String {
        Sim::plugin_action(self, action, target).unwrap_or_else(|e| e.0)
    }
}

impl Sim {
    /// A simulation reading from `inbound`, with the plugin host started (the
    /// interpreter lives on the thread that calls this) and every plugin loaded.
    pub fn new(
        cfg: Arc<ServerConfig>,
        inbound: mpsc::Receiver<Inbound>,
        stats: Arc<TickStats>,
        snapshots: tokio::sync::watch::Sender<Arc<Snapshot>>,
    ) -> Result<Self, crate::plugin::HostError> {
        let admins = cfg.admin_keys().into_iter().collect();
        let mut host = PluginHost::new(cfg.host_config())?;
        let catalog: Catalog = Rc::default();
        host.set_load_hook(Box::new(BundleHook {
            catalog: catalog.clone(),
        }));
        let mut world = World::new();
        host.load_all(&mut world);
        for p in host.plugins() {
            info!(plugin = %p.name, version = %p.version, state = ?p.state, "plugin");
        }
        let rpc_gate = ClientRpcGate::new(cfg.rate_limits.client_rpc_per_sec);
        let mut sim = Self {
            world,
            host,
            catalog,
            announced: BTreeMap::new(),
            cfg,
            admins,
            inbound,
            held: None,
            rpc_gate,
            mirror_warns: WarnLimiter::default(),
            stats,
            pending: Vec::new(),
            publisher: Publisher::new(snapshots),
        };
        sim.sync_announcements();
        Ok(sim)
    }

    /// Runs ticks until `Shutdown` arrives or every sender is gone.
    pub fn run(mut self) {
        let tick = self.cfg.tick();
        let mut next = Instant::now() + tick;
        info!(hz = self.cfg.tick_hz, "simulation running");
        if !self.cfg.asset_mirrors.is_empty() {
            info!(
                mirrors = ?self.cfg.asset_mirrors,
                "players fetch bundles from the asset mirrors first; each must serve the output of `shard-server publish-bundles`"
            );
            let local = crate::config::loopback_mirrors(&self.cfg.asset_mirrors);
            if !local.is_empty() && !self.cfg.bind.ip().is_loopback() {
                warn!(
                    mirrors = ?local,
                    bind = %self.cfg.bind,
                    "these asset mirrors are on this machine's loopback: players on other machines refuse them (a mirror may not be nearer the player than the game server) and fetch from this server; list an address they can reach"
                );
            }
        }
        let dt = tick.as_secs_f64();
        loop {
            let started = Instant::now();
            if !self.drain() {
                break;
            }
            self.host.poll_changes(&mut self.world);
            self.plugin_phase(dt);
            self.sync_announcements();
            self.world.flush_moves();
            self.world.flush_kicks();
            self.world.flush_warnings();
            let took = started.elapsed();
            self.stats.record(took);
            self.publisher.record_tick(took);
            if self.publisher.due() {
                self.publish_snapshot();
            }
            let now = Instant::now();
            if next > now {
                self.wait_for_tick(next);
                next += tick;
            } else {
                // Behind schedule: do not try to catch up with a burst of ticks.
                next = now + tick;
            }
        }
        self.host.shutdown(&mut self.world);
        self.world.close_all("the server is stopping");
        info!("simulation stopped");
    }

    /// The plugins' part of a tick: this tick's events (from clients, and
    /// the world's spawns and despawns, including those plugins caused last
    /// tick) and `OnTick`.
    fn plugin_phase(&mut self, dt: f64) {
        let mut events = std::mem::take(&mut self.pending);
        events.extend(self.world.take_events());
        self.host.tick(&mut self.world, dt, &events);
    }

    fn fire(&mut self, event: GameEvent) {
        self.pending.push(event);
    }

    /// Tells clients about plugins whose bundle appeared, changed or went
    /// away; does nothing unless the catalog changed.
    fn sync_announcements(&mut self) {
        if !self.catalog.borrow_mut().take_changed() {
            return;
        }
        let ids: BTreeMap<String, u16> = self
            .host
            .plugins()
            .into_iter()
            .map(|p| (p.name, p.id))
            .collect();
        let catalog = self.catalog.borrow();
        let mut announced_any = false;
        for (name, bundle) in catalog.bundles() {
            let Some(&id) = ids.get(name) else { continue };
            let now = Announced {
                id,
                sha256: bundle.sha256,
                version: bundle.version.clone(),
            };
            if self.announced.get(name) != Some(&now) {
                info!(plugin = %name, id, len = bundle.bytes.len(), sha256 = %hex::encode(bundle.sha256), "announcing bundle");
                self.world.broadcast(bundle.announce(id));
                if let Some(old) = self.announced.insert(name.clone(), now)
                    && (old.id, old.sha256) != (id, bundle.sha256)
                {
                    self.world.bundle_superseded(old.id, &old.sha256);
                    if old.sha256 != bundle.sha256 && !self.cfg.asset_mirrors.is_empty() {
                        warn!(
                            plugin = %name,
                            file = %shard_protocol::bundle_file_name(&bundle.sha256),
                            "the plugin's new bundle is on the asset mirrors only once published: run `shard-server publish-bundles` and upload; until then players fetch it from this server"
                        );
                    }
                }
                announced_any = true;
            }
        }
        if announced_any {
            self.world.broadcast(ServerMsg::AnnouncementsDone);
        }
        let gone: Vec<String> = self
            .announced
            .keys()
            .filter(|n| catalog.get(n).is_none())
            .cloned()
            .collect();
        for name in gone {
            if let Some(a) = self.announced.remove(&name) {
                self.world.bundle_superseded(a.id, &a.sha256);
                self.world
                    .broadcast(ServerMsg::PluginRemoved { plugin_id: a.id });
            }
        }
    }

    fn announce_all_to(&mut self, peer: u32) {
        let catalog = self.catalog.borrow();
        for (name, a) in &self.announced {
            if let Some(b) = catalog.get(name) {
                self.world.send(peer, b.announce(a.id));
            }
        }
        self.world.send(peer, ServerMsg::AnnouncementsDone);
    }

    /// Applies everything queued; false when the simulation must stop.
    fn drain(&mut self) -> bool {
        if let Some(m) = self.held.take() {
            if matches!(m, Inbound::Shutdown) {
                return false;
            }
            self.apply(m);
        }
        loop {
            match self.inbound.try_recv() {
                Ok(Inbound::Shutdown) => return false,
                Ok(m) => self.apply(m),
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Waits until `deadline`, applying what may be applied between ticks
    /// ([`Inbound::between_ticks`]) whenever a [`SimWaker`] wakes this
    /// thread. The first message that must wait for the tick is held, and
    /// nothing behind it is taken, so messages keep their order. After each
    /// wake it lets [`crate::tuning::SIM_WAKE_GAP`] pass, so a flood of
    /// urgent messages wakes it at most once per gap.
    fn wait_for_tick(&mut self, deadline: Instant) {
        loop {
            while self.held.is_none() {
                match self.inbound.try_recv() {
                    Ok(m) if m.between_ticks() => self.apply(m),
                    Ok(m) => self.held = Some(m),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            std::thread::park_timeout(deadline - now);
            std::thread::sleep(
                crate::tuning::SIM_WAKE_GAP.min(deadline.saturating_duration_since(Instant::now())),
            );
        }
    }

    fn apply(&mut self, m: Inbound) {
        match m {
            Inbound::Join {
                name,
                fingerprint,
                out,
                conn,
                reply,
            } => {
                let admin = self.admins.contains(&fingerprint);
                if let Err(why) = self.admit(&name, &fingerprint, admin) {
                    let _ = reply.send(Err(why));
                    return;
                }
                let server_name = self.cfg.name.clone();
                let tick_hz = self.cfg.tick_hz;
                let content_required = self.cfg.content_required;
                let asset_mirrors = self.cfg.asset_mirrors.clone();
                let player_id = fingerprint.to_hex();
                let id =
                    self.world
                        .add_peer(name.clone(), fingerprint, admin, out, conn, |peer_id| {
                            ServerMsg::Welcome {
                                protocol_version: PROTOCOL_VERSION,
                                server_name,
                                peer_id,
                                player_id,
                                admin,
                                tick_hz,
                                content_required,
                                asset_mirrors,
                            }
                        });
                info!(peer = id, %name, %fingerprint, admin, "joined");
                if reply.send(Ok(id)).is_err() {
                    self.world.remove_peer(id);
                    return;
                }
                self.announce_all_to(id);
                self.fire(GameEvent::PeerJoin(events::PeerJoin {
                    peer: id,
                    name,
                    admin,
                }));
            }
            Inbound::Msg { peer, msg } => self.client_msg(peer, msg),
            Inbound::Moved { peer, pos, rot } => self.world.move_peer(peer, pos, rot),
            Inbound::BundleSent {
                peer,
                plugin_id,
                sha256,
            } => self.world.bundle_sent(peer, plugin_id, &sha256),
            Inbound::Left { peer } => {
                self.rpc_gate.forget(peer);
                if let Some(p) = self.world.remove_peer(peer) {
                    info!(peer, name = %p.name, "left");
                    self.fire(GameEvent::PeerLeave(events::PeerLeave {
                        peer,
                        name: p.name,
                    }));
                }
            }
            Inbound::Console { code, reply } => {
                let out = self.host.console(&mut self.world, &code);
                let _ = reply.send(out);
            }
            Inbound::Admin { cmd, reply } => {
                let out = self.admin_command(cmd);
                let _ = reply.send(out);
            }
            Inbound::Shutdown => {}
        }
    }

    fn client_msg(&mut self, peer: u32, msg: ClientMsg) {
        match msg {
            ClientMsg::Chat { text } => self.chat(peer, &text),
            ClientMsg::PeerState { pos, rot } => self.world.move_peer(peer, pos, rot),
            ClientMsg::Interact { entity_id, action } => {
                self.fire(GameEvent::Interact(events::Interact {
                    peer,
                    entity_id,
                    action,
                }));
            }
            ClientMsg::NeedBundles { requests } => {
                let catalog = self.catalog.borrow();
                for r in requests {
                    let mut mirrored = None;
                    let lookup = match self.announced.iter().find(|(_, a)| a.id == r.plugin_id) {
                        Some((name, a)) if a.sha256 == r.sha256 => {
                            catalog.get(name).map_or(Lookup::Unknown, |b| {
                                mirrored = Some(name);
                                Lookup::Announced(b.bytes.clone())
                            })
                        }
                        Some(_) => Lookup::Stale,
                        None => Lookup::Unknown,
                    };
                    let taken =
                        self.world
                            .request_bundle(peer, r.plugin_id, r.sha256, r.offset, lookup);
                    // Counted once taken: a refused request costs its sender
                    // a strike, not the operator a false alarm.
                    if let Some(name) = mirrored
                        && taken
                        && !self.cfg.asset_mirrors.is_empty()
                    {
                        mirror_fallback(&self.mirror_warns, peer, name, &r);
                    }
                }
            }
            ClientMsg::BundleInstalled {
                plugin_id,
                sha256,
                ok,
                error,
            } => {
                let plugin = self
                    .announced
                    .iter()
                    .find(|(_, a)| a.id == plugin_id)
                    .map(|(n, _)| n.clone());
                let why = error.as_deref().unwrap_or("");
                self.world
                    .bundle_installed(peer, plugin_id, sha256, ok, why);
                self.fire(GameEvent::BundleInstalled(events::BundleInstalled {
                    peer,
                    plugin_id,
                    plugin,
                    sha256: hex::encode(sha256),
                    ok,
                    error,
                }));
            }
            ClientMsg::ClientRpc {
                plugin_id,
                fn_hash,
                json,
            } => self.client_rpc(peer, plugin_id, fn_hash, &json),
            ClientMsg::Hello { .. } => self.world.kick(peer, "protocol violation: a second Hello"),
            ClientMsg::KeepAlive => {}
        }
    }

    /// Passes one client RPC through the gate, then to its plugin's handler.
    fn client_rpc(&mut self, peer: u32, plugin_id: u16, fn_hash: u32, json: &str) {
        let plugin = self
            .announced
            .iter()
            .find(|(_, a)| a.id == plugin_id)
            .map(|(n, _)| n.clone());
        let whitelist = plugin.as_deref().and_then(|n| {
            self.catalog
                .borrow()
                .get(n)
                .map(|b| b.upstream_whitelist.clone())
        });
        let admitted = self
            .rpc_gate
            .admit(peer, fn_hash, json, whitelist.as_deref());
        let outcome = match (admitted, plugin) {
            (Err(cause), _) => Err(cause),
            (Ok(()), None) => Err(DropCause::UnknownPlugin),
            (Ok(()), Some(name)) => {
                match self
                    .host
                    .run_rpc(&mut self.world, peer, &name, fn_hash, json)
                {
                    RpcOutcome::NotLoaded => Err(DropCause::UnknownPlugin),
                    RpcOutcome::NoHandler => Err(DropCause::NoHandler),
                    RpcOutcome::Ran | RpcOutcome::Failed(_) => Ok(()),
                }
            }
        };
        match outcome {
            Ok(()) => self.stats.client_rpc.delivered(),
            Err(cause) => {
                self.rpc_gate
                    .dropped(&self.stats.client_rpc, cause, peer, plugin_id, fn_hash)
            }
        }
    }

    fn chat(&mut self, peer: u32, text: &str) {
        // Relayed text goes through the one sanitiser; an empty line is dropped.
        let text = &clean_text(text, MAX_CHAT_CHARS);
        if text.is_empty() {
            return;
        }
        if let Some((name, args)) = commands::split_command(text) {
            return self.command(peer, name, args);
        }
        let Some(p) = self.world.peer(peer) else {
            return;
        };
        let pname = p.name.clone();
        self.publisher.chat(ChatKind::Chat, &pname, text);
        let msg = ServerMsg::Chat {
            from: Some(peer),
            name: pname.clone(),
            text: text.to_string(),
        };
        self.world.broadcast(msg);
        self.fire(GameEvent::ChatMsg(events::ChatMsg {
            peer,
            name: pname,
            text: text.to_string(),
        }));
    }

    /// Whether a player with this (normalised) name and key may join now:
    /// allowlist, name free, and a slot (keeping `admin_slots` for admins).
    /// A session of the same key is replaced: the old one is closed with a reason.
    fn admit(
        &mut self,
        name: &str,
        fingerprint: &Fingerprint,
        admin: bool,
    ) -> Result<(), JoinRefusal> {
        let allow = self.cfg.allowlist_keys();
        if !admin && !allow.is_empty() && !allow.contains(fingerprint) {
            return Err(JoinRefusal::NotListed {
                fingerprint: *fingerprint,
            });
        }
        let stale = self
            .world
            .peers()
            .find(|p| p.fingerprint == *fingerprint)
            .map(|p| p.id);
        if self.world.name_taken(name, stale) {
            return Err(JoinRefusal::NameTaken {
                name: name.to_owned(),
            });
        }
        let max = self.cfg.max_players;
        let reserve = if self.admins.is_empty() {
            0
        } else {
            self.cfg.admin_slots
        };
        let limit = if admin { max } else { max - reserve };
        // The stale session of this key gives its slot to the new one.
        if self.world.peer_count() - usize::from(stale.is_some()) >= limit {
            return Err(if reserve > 0 && !admin {
                JoinRefusal::FullButAdminSlots { limit, reserve }
            } else {
                JoinRefusal::Full { max }
            });
        }
        if let Some(old) = stale
            && let Some(p) = self
                .world
                .evict(old, "replaced: your key joined again from a new connection")
        {
            info!(peer = old, name = %p.name, "session replaced by a new connection of the same key");
            self.fire(GameEvent::PeerLeave(events::PeerLeave {
                peer: old,
                name: p.name,
            }));
        }
        Ok(())
    }

    fn command(&mut self, peer: u32, name: &str, args: &str) {
        let is_admin = self.world.peer(peer).is_some_and(|p| p.admin);
        if let Some(p) = self.world.peer(peer) {
            let (from, line) = (p.name.clone(), format!("/{name} {args}"));
            self.publisher
                .chat(ChatKind::Command, &from, line.trim_end());
        }
        if commands::run_builtin(self, peer, name, args).is_some() {
            return;
        }
        match self
            .host
            .run_command(&mut self.world, peer, is_admin, name, args)
        {
            CommandOutcome::Ran => {}
            CommandOutcome::NotFound => {
                let msg = format!("unknown command /{name}; /help lists the commands");
                self.world.server_chat(peer, &msg);
            }
            CommandOutcome::Refused => self.world.server_chat(peer, &commands::admin_refusal(name)),
            CommandOutcome::Failed(e) => {
                self.world
                    .server_chat(peer, &format!("/{name} failed: {e}"));
            }
        }
    }

    /// Reloads, enables or disables a plugin (chat command or admin console).
    fn plugin_action(&mut self, action: crate::admin::PluginAction, target: &str) -> AdminReply {
        use crate::admin::PluginAction;
        let verb = action.verb();
        let done = match action {
            PluginAction::Reload => self.host.reload(&mut self.world, target),
            PluginAction::Enable => self.host.enable(&mut self.world, target),
            PluginAction::Disable => self.host.disable(&mut self.world, target),
        };
        self.sync_announcements();
        if !done {
            return Err(AdminRefused(format!(
                "cannot {verb} `{target}`: no such plugin, or not in a state that allows it (see /plugins)"
            )));
        }
        // The console shows the new state at once, not half a second later.
        self.publish_snapshot();
        Ok(
            match self.host.plugins().into_iter().find(|p| p.name == target) {
                Some(p) => {
                    let why = p.last_error.map(|e| format!(" ({e})")).unwrap_or_default();
                    format!("{verb} {target}: now {:?}{why}", p.state)
                }
                None => format!("{verb} {target}: done"),
            },
        )
    }

    /// Applies a command from the admin web console.
    fn admin_command(&mut self, cmd: AdminCmd) -> AdminReply {
        match cmd {
            AdminCmd::Kick { peer, reason } => {
                let Some(p) = self.world.peer(peer) else {
                    return Err(AdminRefused(format!(
                        "no player with peer id {peer} is online"
                    )));
                };
                let name = p.name.clone();
                info!(peer, %name, %reason, "kicked from the admin console");
                self.world.kick(peer, &reason);
                Ok(format!("kicked {name} ({reason})"))
            }
            AdminCmd::Plugin { name, action } => self.plugin_action(action, &name),
            AdminCmd::Broadcast { text } => {
                self.world.server_broadcast(&text);
                self.publisher.chat(ChatKind::Server, "server", &text);
                Ok("message sent to every player".into())
            }
            AdminCmd::SetAdmins { admins } => {
                self.admins = admins.into_iter().collect();
                self.world.set_admins(&self.admins);
                self.publish_snapshot();
                Ok(format!("{} admins", self.admins.len()))
            }
        }
    }

    /// Publishes what the admin console shows (players, plugins, ticks, chat).
    fn publish_snapshot(&mut self) {
        let plugins = self.host.plugins();
        let catalog = self.catalog.borrow();
        self.publisher.publish(
            &self.world,
            plugins,
            &catalog,
            &self.admins,
            self.cfg.tick_hz,
        );
    }
}

/// Why the simulation could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimStartError {
    /// The thread could not be created.
    #[error("cannot start the simulation thread: {0}")]
    Thread(std::io::Error),
    /// The plugin host (embedded Python) could not start.
    #[error("cannot start the plugin host: {0}")]
    Host(#[from] crate::plugin::HostError),
    /// The thread died while starting.
    #[error("the simulation thread stopped while starting")]
    Died,
}

/// Starts the simulation thread: the plugin host is created and every plugin
/// loaded on that thread before this returns, so start-up errors reach the caller.
pub fn spawn(
    cfg: Arc<ServerConfig>,
    inbound: mpsc::Receiver<Inbound>,
    stats: Arc<TickStats>,
    snapshots: tokio::sync::watch::Sender<Arc<Snapshot>>,
) -> Result<std::thread::JoinHandle<()>, SimStartError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("shard-sim".into())
        .spawn(move || match Sim::new(cfg, inbound, stats, snapshots) {
            Ok(sim) => {
                let _ = ready_tx.send(Ok(()));
                sim.run();
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(SimStartError::Thread)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(SimStartError::Host(e)),
        Err(_) => Err(SimStartError::Died),
    }
}

/// Counts a bundle request taken although `asset_mirrors` are set, and
/// tells the operator (one line per plugin and window, folded): a player's
/// mirror download failed, which once is the player's network and on every
/// join is a mirror that lacks the file, is down or is too slow.
fn mirror_fallback(warns: &WarnLimiter<u16>, peer: u32, plugin: &str, r: &BundleRequest) {
    metrics::bundle_mirror_fallback();
    if let Some(folded) = warns.allow(r.plugin_id, "mirror fallback") {
        warn!(
            peer,
            plugin,
            file = %shard_protocol::bundle_file_name(&r.sha256),
            offset = r.offset,
            folded,
            "a player fetches this bundle from the game server although asset_mirrors are set: its mirror download failed (or it turned mirrors off); if this repeats, check that every mirror serves `file` (`shard-server publish-bundles`, then upload)"
        );
    }
}

/// Warns when the inbound queue is close to full, a sign of an overloaded
/// tick; folded by `warns`, since every frame of every client checks it.
pub fn warn_if_backlogged<K: std::hash::Hash + Eq + Clone + std::fmt::Debug>(
    tx: &mpsc::Sender<Inbound>,
    warns: &WarnLimiter<K>,
    key: K,
) {
    if tx.capacity() < crate::tuning::INBOUND_QUEUE * crate::tuning::BACKLOG_WARN_PERCENT / 100
        && let Some(folded) = warns.allow(key, "backlog")
    {
        warn!(
            free = tx.capacity(),
            folded, "inbound queue nearly full: the simulation is falling behind"
        );
    }
}
