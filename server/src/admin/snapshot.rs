//! What the simulation publishes for the admin console: a plain, immutable
//! [`Snapshot`] of players, plugins, tick times and the chat log, sent through
//! a `watch` channel every [`ADMIN_PUBLISH_EVERY`]. The web side only ever reads
//! these; it never touches the world.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use shard_protocol::identity::Fingerprint;
use tokio::sync::watch;

use crate::bundles::CatalogState;
use crate::plugin::{PluginInfo, PluginState};
use crate::tuning::{ADMIN_CHART_POINTS, ADMIN_CHART_STEP, ADMIN_CHAT_LINES, ADMIN_PUBLISH_EVERY};
use crate::world::World;

/// One player as the Players page shows them.
#[derive(Debug, Clone, Serialize)]
pub struct PlayerRow {
    /// Session id (the `{peer_id}` of `/players/{peer_id}/kick`).
    pub peer_id: u32,
    /// Display name.
    pub name: String,
    /// Key fingerprint (hex): the player id.
    pub fingerprint: String,
    /// Listed in `admins`.
    pub admin: bool,
    /// Phase (instance) the player is in.
    pub phase: u32,
    /// Last known position.
    pub pos: [f32; 3],
    /// QUIC round-trip time estimate, milliseconds.
    pub rtt_ms: Option<f64>,
}

/// One plugin as the Plugins page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRow {
    /// Name (file stem).
    pub name: String,
    /// `starting`, `loaded`, `restarting`, `disabled` or `failed`.
    pub state: &'static str,
    /// Running version.
    pub version: String,
    /// SHA-256 over source and bundle (hex).
    pub hash: String,
    /// Errors since the running version loaded.
    pub errors: u32,
    /// Times its worker was killed or crashed and restarted.
    pub restarts: u32,
    /// The worker's process id while it runs.
    pub worker_pid: Option<u32>,
    /// Last load error or traceback.
    pub last_error: Option<String>,
    /// Packed bundle size, if the plugin has a bundle.
    pub bundle_bytes: Option<u64>,
    /// Its file name on an asset mirror, `<sha256 hex>.bundle`.
    pub bundle_file: Option<String>,
    /// RPC names the client scripts register.
    pub rpc_names: Vec<String>,
}

/// Who wrote a chat-log line.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    /// A player's chat line.
    Chat,
    /// A player's `/command`.
    Command,
    /// A server or operator message.
    Server,
}

/// One line of the chat and command log.
#[derive(Debug, Clone, Serialize)]
pub struct ChatLine {
    /// Seconds since the server started.
    pub at_secs: u64,
    /// Chat, command or server line.
    pub kind: ChatKind,
    /// Who said it.
    pub from: String,
    /// What was said.
    pub text: String,
}

/// One point of the tick-time chart.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TickPoint {
    /// Seconds since the server started.
    pub at_secs: u64,
    /// Median tick over the step, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile tick over the step, milliseconds.
    pub p99_ms: f64,
}

/// Everything the console shows, as of one moment of the simulation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Configured ticks per second.
    pub tick_hz: u16,
    /// Ticks measured per second over the last step.
    pub tick_rate: f64,
    /// Ticks run since start.
    pub ticks: u64,
    /// Median tick over the last step, milliseconds.
    pub tick_p50_ms: f64,
    /// 99th percentile tick over the last step, milliseconds.
    pub tick_p99_ms: f64,
    /// Tick-time chart, oldest first.
    pub history: Vec<TickPoint>,
    /// Players online, by peer id.
    pub players: Vec<PlayerRow>,
    /// Plugins, by name.
    pub plugins: Vec<PluginRow>,
    /// Chat and command log, oldest first.
    pub chat: Vec<ChatLine>,
    /// Admin fingerprints in effect (hex).
    pub admins: Vec<String>,
}

/// Creates the channel the simulation publishes on; the web side keeps the receiver.
pub fn channel() -> (watch::Sender<Arc<Snapshot>>, watch::Receiver<Arc<Snapshot>>) {
    watch::channel(Arc::new(Snapshot::default()))
}

/// What the publisher remembers of a plugin, to turn changes into counters.
#[derive(Debug, Clone, PartialEq)]
struct PluginSeen {
    errors: u32,
    restarts: u32,
    state: PluginState,
}

/// The simulation's side: records tick times and chat lines as they happen
/// and builds a snapshot when one is due. Owned by the simulation thread.
#[derive(Debug)]
pub struct Publisher {
    tx: watch::Sender<Arc<Snapshot>>,
    started: Instant,
    ticks: u64,
    /// Tick durations since the last chart point.
    step: Vec<Duration>,
    step_started: Instant,
    last_rate: f64,
    last_p50: f64,
    last_p99: f64,
    history: VecDeque<TickPoint>,
    chat: VecDeque<ChatLine>,
    last_publish: Option<Instant>,
    seen: BTreeMap<String, PluginSeen>,
}

impl Publisher {
    /// A publisher sending on `tx`.
    pub fn new(tx: watch::Sender<Arc<Snapshot>>) -> Self {
        let now = Instant::now();
        Self {
            tx,
            started: now,
            ticks: 0,
            step: Vec::new(),
            step_started: now,
            last_rate: 0.0,
            last_p50: 0.0,
            last_p99: 0.0,
            history: VecDeque::with_capacity(ADMIN_CHART_POINTS),
            chat: VecDeque::with_capacity(ADMIN_CHAT_LINES),
            last_publish: None,
            seen: BTreeMap::new(),
        }
    }

    /// Records one tick's duration (chart and metrics).
    pub fn record_tick(&mut self, d: Duration) {
        super::metrics::tick(d);
        self.ticks += 1;
        self.step.push(d);
        let elapsed = self.step_started.elapsed();
        if elapsed >= ADMIN_CHART_STEP {
            self.step.sort_unstable();
            let at = |percent: usize| {
                let i = crate::sim::quantile_index(self.step.len(), percent);
                self.step[i].as_secs_f64() * 1000.0
            };
            self.last_p50 = at(50);
            self.last_p99 = at(99);
            self.last_rate = self.step.len() as f64 / elapsed.as_secs_f64();
            if self.history.len() >= ADMIN_CHART_POINTS {
                self.history.pop_front();
            }
            self.history.push_back(TickPoint {
                at_secs: self.started.elapsed().as_secs(),
                p50_ms: self.last_p50,
                p99_ms: self.last_p99,
            });
            self.step.clear();
            self.step_started = Instant::now();
        }
    }

    /// Adds a line to the chat and command log.
    pub fn chat(&mut self, kind: ChatKind, from: &str, text: &str) {
        if self.chat.len() >= ADMIN_CHAT_LINES {
            self.chat.pop_front();
        }
        self.chat.push_back(ChatLine {
            at_secs: self.started.elapsed().as_secs(),
            kind,
            from: from.to_string(),
            text: text.to_string(),
        });
    }

    /// Whether a snapshot is due (and anyone could be watching).
    pub fn due(&self) -> bool {
        self.last_publish
            .is_none_or(|t| t.elapsed() >= ADMIN_PUBLISH_EVERY)
    }

    /// Builds and publishes a snapshot now; also turns plugin changes into metrics.
    pub fn publish(
        &mut self,
        world: &World,
        plugins: Vec<PluginInfo>,
        catalog: &CatalogState,
        admins: &HashSet<Fingerprint>,
        tick_hz: u16,
    ) {
        self.last_publish = Some(Instant::now());
        super::metrics::players(world.peer_count());
        let players = world
            .peers()
            .map(|p| PlayerRow {
                peer_id: p.id,
                name: p.name.clone(),
                fingerprint: p.fingerprint.to_hex(),
                admin: p.admin,
                phase: p.phase,
                pos: [p.pos.x, p.pos.y, p.pos.z],
                rtt_ms: p.rtt().map(|d| d.as_secs_f64() * 1000.0),
            })
            .collect();
        let plugins: Vec<PluginRow> = plugins
            .into_iter()
            .map(|p| {
                self.count_changes(&p);
                let bundle = catalog.get(&p.name);
                PluginRow {
                    state: state_name(p.state),
                    bundle_bytes: bundle.map(|b| b.bytes.len() as u64),
                    bundle_file: bundle.map(|b| shard_protocol::bundle_file_name(&b.sha256)),
                    rpc_names: bundle.map(|b| b.rpc_names.clone()).unwrap_or_default(),
                    name: p.name,
                    version: p.version,
                    hash: p.hash,
                    errors: p.errors,
                    restarts: p.restarts,
                    worker_pid: p.worker_pid,
                    last_error: p.last_error,
                }
            })
            .collect();
        let mut admins: Vec<String> = admins.iter().map(Fingerprint::to_hex).collect();
        admins.sort();
        let snap = Snapshot {
            uptime_secs: self.started.elapsed().as_secs(),
            tick_hz,
            tick_rate: self.last_rate,
            ticks: self.ticks,
            tick_p50_ms: self.last_p50,
            tick_p99_ms: self.last_p99,
            history: self.history.iter().copied().collect(),
            players,
            plugins,
            chat: self.chat.iter().cloned().collect(),
            admins,
        };
        self.tx.send_replace(Arc::new(snap));
    }

    /// Errors, worker restarts and disables since the last snapshot, as counters.
    fn count_changes(&mut self, p: &PluginInfo) {
        let now = PluginSeen {
            errors: p.errors,
            restarts: p.restarts,
            state: p.state,
        };
        let before = self.seen.get(&p.name).cloned().unwrap_or(PluginSeen {
            errors: 0,
            restarts: 0,
            state: PluginState::Starting,
        });
        // Errors restart from 0 with a new version: count only increases.
        if now.errors > before.errors {
            super::metrics::plugin_errors(&p.name, u64::from(now.errors - before.errors));
        }
        if now.restarts > before.restarts {
            super::metrics::plugin_restarts(&p.name, u64::from(now.restarts - before.restarts));
        }
        if now.state == PluginState::Disabled && before.state != PluginState::Disabled {
            super::metrics::plugin_disabled(&p.name);
        }
        self.seen.insert(p.name.clone(), now);
    }
}

/// The state as the console writes it.
pub fn state_name(s: PluginState) -> &'static str {
    match s {
        PluginState::Starting => "starting",
        PluginState::Restarting => "restarting",
        PluginState::Loaded => "loaded",
        PluginState::Disabled => "disabled",
        PluginState::Failed => "failed",
    }
}
