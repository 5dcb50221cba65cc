//! The simulation thread: the one owner of the world (and, later, of the
//! Python interpreter). It runs fixed ticks: drain the inbound queue, apply,
//! tick the plugins, flush disconnections, sleep until the next tick.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shard_protocol::identity::Fingerprint;
use shard_protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg, Vec3};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::commands::{self, CommandInfo};
use crate::config::ServerConfig;
use crate::world::{Outbound, World};

/// Capacity of the queue from network tasks to the simulation.
pub const INBOUND_QUEUE: usize = 8192;

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
        reply: oneshot::Sender<Result<u32, String>>,
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
    /// A peer's connection ended.
    Left {
        /// Who.
        peer: u32,
    },
    /// Stop: tell clients, then end the thread.
    Shutdown,
}

/// Tick durations, for the load generator and the operator.
#[derive(Debug, Default)]
pub struct TickStats {
    samples: Mutex<Vec<Duration>>,
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
    const KEEP: usize = 100_000;

    fn record(&self, d: Duration) {
        if let Ok(mut s) = self.samples.lock() {
            if s.len() >= Self::KEEP {
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
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        TickSummary {
            ticks: v.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The simulation: world plus configuration; runs on its own thread.
pub struct Sim {
    world: World,
    cfg: Arc<ServerConfig>,
    admins: HashSet<Fingerprint>,
    inbound: mpsc::Receiver<Inbound>,
    stats: Arc<TickStats>,
}

impl Sim {
    /// A simulation reading from `inbound`.
    pub fn new(
        cfg: Arc<ServerConfig>,
        inbound: mpsc::Receiver<Inbound>,
        stats: Arc<TickStats>,
    ) -> Self {
        let admins = cfg.admin_keys().into_iter().collect();
        Self {
            world: World::new(),
            cfg,
            admins,
            inbound,
            stats,
        }
    }

    /// Runs ticks until `Shutdown` arrives or every sender is gone.
    pub fn run(mut self) {
        let tick = self.cfg.tick();
        let mut next = Instant::now() + tick;
        info!(hz = self.cfg.tick_hz, "simulation running");
        loop {
            let started = Instant::now();
            if !self.drain() {
                break;
            }
            self.world.flush_kicks();
            self.stats.record(started.elapsed());
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
                next += tick;
            } else {
                // Behind schedule: do not try to catch up with a burst of ticks.
                next = now + tick;
            }
        }
        self.world.close_all("the server is stopping");
        info!("simulation stopped");
    }

    /// Applies everything queued; false when the simulation must stop.
    fn drain(&mut self) -> bool {
        loop {
            match self.inbound.try_recv() {
                Ok(Inbound::Shutdown) => return false,
                Ok(m) => self.apply(m),
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
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
                if self.world.peer_count() >= self.cfg.max_players {
                    let _ = reply.send(Err(format!(
                        "the server is full ({} players)",
                        self.cfg.max_players
                    )));
                    return;
                }
                if self.world.peers().any(|p| p.fingerprint == fingerprint) {
                    let _ = reply.send(Err("this key is already connected".into()));
                    return;
                }
                let admin = self.admins.contains(&fingerprint);
                let server_name = self.cfg.name.clone();
                let tick_hz = self.cfg.tick_hz;
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
                            }
                        });
                info!(peer = id, %name, %fingerprint, admin, "joined");
                if reply.send(Ok(id)).is_err() {
                    self.world.remove_peer(id);
                }
            }
            Inbound::Msg { peer, msg } => self.client_msg(peer, msg),
            Inbound::Moved { peer, pos, rot } => self.world.move_peer(peer, pos, rot),
            Inbound::Left { peer } => {
                if let Some(p) = self.world.remove_peer(peer) {
                    info!(peer, name = %p.name, "left");
                }
            }
            Inbound::Shutdown => {}
        }
    }

    fn client_msg(&mut self, peer: u32, msg: ClientMsg) {
        match msg {
            ClientMsg::Chat { text } => self.chat(peer, &text),
            ClientMsg::PeerState { pos, rot } => self.world.move_peer(peer, pos, rot),
            ClientMsg::Interact { .. }
            | ClientMsg::NeedBundles { .. }
            | ClientMsg::BundleInstalled { .. } => {}
            ClientMsg::Hello { .. } => self.world.kick(peer, "protocol violation: a second Hello"),
        }
    }

    fn chat(&mut self, peer: u32, text: &str) {
        if let Some((name, args)) = commands::split_command(text) {
            let extra: Vec<CommandInfo> = Vec::new();
            if commands::run_builtin(&mut self.world, peer, name, args, &extra).is_none() {
                self.world.server_chat(
                    peer,
                    &format!("unknown command /{name}; /help lists the commands"),
                );
            }
            return;
        }
        let Some(p) = self.world.peer(peer) else {
            return;
        };
        let msg = ServerMsg::Chat {
            from: Some(peer),
            name: p.name.clone(),
            text: text.to_string(),
        };
        self.world.broadcast(msg);
    }
}

/// Logs, rather than panics, when the simulation thread cannot start.
pub fn spawn(sim: Sim) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("shard-sim".into())
        .spawn(move || {
            sim.run();
        })
}

/// Warns when the inbound queue is close to full, a sign of an overloaded tick.
pub fn warn_if_backlogged(tx: &mpsc::Sender<Inbound>) {
    if tx.capacity() < INBOUND_QUEUE / 10 {
        warn!(
            free = tx.capacity(),
            "inbound queue nearly full: the simulation is falling behind"
        );
    }
}
