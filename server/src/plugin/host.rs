//! The server side of the plugin host: one [`PluginHost`] on the simulation
//! thread supervises one worker process per plugin. It loads and hot-reloads
//! versions (staged: the old one keeps running until the new one passed),
//! runs the plugins' part of each tick in a fixed order with a deadline per
//! worker, serves their world calls (validated and budgeted here), counts
//! errors, kills and restarts workers with backoff, and disables a plugin
//! after `max_errors`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shard_protocol::limits::{
    MAX_ACTION, MAX_CHAT_CHARS, MAX_PLUGINS, MAX_POPUP_CHARS, MAX_RPC_JSON, MAX_RPC_WHITELIST,
    MAX_TEMPLATE,
};
use shard_protocol::{BUILTIN_PLUGIN_ID, POPUP_RPC, Vec3, fn_hash};

use super::channel::{
    BUILD_ID, ChannelError, FromWorker, ToWorker, WorkerInit, WorldCall, WorldValue,
};
use super::events::{EventKind, GameEvent};
use super::loader::{PluginSnapshot, Watcher, discover};
use super::logs::PluginLog;
use super::process::{StartingWorker, WorkerProcess, worker_exe};
use super::world::{GameWorld, PluginOwner};
use super::{
    CommandOutcome, HostConfig, HostError, PluginInfo, PluginLoadHook, PluginState, RpcOutcome,
};
use crate::commands::builtin;
use crate::tuning::{
    BUDGET_CHAT_PER_TICK, BUDGET_MSGS_PER_PEER_PER_TICK, BUDGET_POPUPS_PER_TICK,
    BUDGET_RPC_BYTES_PER_TICK, BUDGET_RPCS_PER_TICK, BUDGET_SPAWNS_PER_TICK, DIED_WORKER_GRACE,
    MAX_COMMAND_NAME, MAX_ERROR_TEXT, MAX_POPUP_SECS, MAX_QUOTED_VALUE, RESTART_BACKOFF_MAX,
    WORKER_START_TIMEOUT,
};

/// A chat command a plugin registered.
#[derive(Debug, Clone)]
struct CommandSpec {
    generation: u64,
    name: String,
    help: String,
    admin: bool,
}

/// What one plugin may still do this tick.
#[derive(Debug, Default)]
struct TickBudget {
    chat: u32,
    popups: u32,
    rpcs: u32,
    rpc_bytes: usize,
    spawns: u32,
    per_peer: HashMap<u32, u32>,
}

/// Why the server refused a plugin's game call; sent to the worker as the
/// text of the `GameError` the plugin sees, so it names what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum GameCallError {
    /// The call needs a plugin and came from the operator's console.
    #[error("this game function needs a calling plugin (not available in the console)")]
    NeedsPlugin,
    /// The calling plugin is not (or no longer) known.
    #[error("unknown plugin")]
    UnknownPlugin,
    /// A per-tick budget of this plugin is spent.
    #[error("budget spent: at most {limit} {what} per tick per plugin; try again next tick")]
    Budget {
        /// What was counted (`spawns`, `chat lines` …).
        what: &'static str,
        /// The budget.
        limit: u32,
    },
    /// The per-tick budget of RPC JSON bytes is spent.
    #[error(
        "budget spent: at most {BUDGET_RPC_BYTES_PER_TICK} bytes of RPC JSON per tick per plugin"
    )]
    RpcBytesBudget,
    /// Too many messages to one player this tick.
    #[error(
        "budget spent: at most {BUDGET_MSGS_PER_PEER_PER_TICK} messages per tick to one player (peer {peer})"
    )]
    PeerBudget {
        /// The player.
        peer: u32,
    },
    /// The player's queue is too full for plugin messages.
    #[error("peer {peer} is not keeping up with its messages; this one was dropped")]
    PeerBehind {
        /// The player.
        peer: u32,
    },
    /// No such player.
    #[error("unknown peer {peer}")]
    UnknownPeer {
        /// The player id given.
        peer: u32,
    },
    /// No such entity.
    #[error("no entity with id {id}")]
    UnknownEntity {
        /// The entity id given.
        id: u32,
    },
    /// A coordinate that is not a finite `f32`.
    #[error("{what}: coordinate {axis} = {value} is not a finite number")]
    BadCoordinate {
        /// The argument.
        what: &'static str,
        /// `x`, `y` or `z`.
        axis: &'static str,
        /// The value given.
        value: f64,
    },
    /// A rotation that is not a finite `f32`.
    #[error("rot = {0} is not a finite number")]
    BadRotation(f64),
    /// A popup duration outside (0, [`MAX_POPUP_SECS`]].
    #[error("dur = {0} must be a number of seconds in (0, {MAX_POPUP_SECS}]")]
    BadDuration(f64),
    /// A text longer than its limit.
    #[error("{what} is {len} characters long; the limit is {max}")]
    TextTooLong {
        /// Which text.
        what: &'static str,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A popup whose JSON payload is over the RPC limit.
    #[error("popup payload is {0} bytes; the limit is {MAX_RPC_JSON}")]
    PopupTooLarge(usize),
    /// An RPC name with no characters.
    #[error("RPC name is empty")]
    EmptyRpcName,
    /// An RPC name that is not 1 to [`MAX_ACTION`] ASCII letters, digits or `_`.
    #[error("invalid RPC name '{0}': use 1-{MAX_ACTION} ASCII letters, digits or '_'")]
    BadRpcName(String),
    /// An RPC payload over [`MAX_RPC_JSON`].
    #[error("payload is {0} bytes of JSON; the limit is {MAX_RPC_JSON}")]
    RpcTooLarge(usize),
    /// An RPC payload that is not a JSON object.
    #[error("payload is not a JSON object")]
    NotJsonObject,
    /// A second handler for the same RPC in one plugin.
    #[error("RPC '{0}' has a handler already in this plugin")]
    DuplicateRpcHandler(String),
    /// More RPC handlers than a plugin may whitelist.
    #[error("at most {MAX_RPC_WHITELIST} RPC handlers per plugin")]
    TooManyRpcHandlers,
    /// An entity template with no name.
    #[error("template name is empty")]
    EmptyTemplate,
    /// An entity template name over [`MAX_TEMPLATE`] bytes.
    #[error("template name is {0} bytes long; the limit is {MAX_TEMPLATE}")]
    TemplateTooLong(usize),
    /// A command name that is not 1 to [`MAX_COMMAND_NAME`] letters, digits, `_` or `-`.
    #[error(
        "invalid command name '{0}': use 1-{MAX_COMMAND_NAME} ASCII letters, digits, '_' or '-'"
    )]
    BadCommandName(String),
    /// A command name the server's built-ins use.
    #[error("command '{0}' is a built-in command of the server")]
    BuiltinCommand(String),
    /// A command name another loaded plugin registered.
    #[error("command '{name}' is already registered by plugin '{other}'")]
    CommandTaken {
        /// The command.
        name: String,
        /// The plugin that has it.
        other: String,
    },
    /// A command this plugin registered already.
    #[error("command '{0}' is registered twice by this plugin")]
    CommandTwice(String),
}

impl TickBudget {
    fn take(used: &mut u32, limit: u32, what: &'static str) -> Result<(), GameCallError> {
        if *used >= limit {
            return Err(GameCallError::Budget { what, limit });
        }
        *used += 1;
        Ok(())
    }

    /// One message to `peer`, if this plugin has not sent it too many this
    /// tick and the peer's queue has room for plugin messages.
    fn take_peer(&mut self, world: &dyn GameWorld, peer: u32) -> Result<(), GameCallError> {
        let n = self.per_peer.entry(peer).or_default();
        if *n >= BUDGET_MSGS_PER_PEER_PER_TICK {
            return Err(GameCallError::PeerBudget { peer });
        }
        if !world.peer_accepts_plugin_message(peer) {
            return Err(GameCallError::PeerBehind { peer });
        }
        *n += 1;
        Ok(())
    }
}

/// Why a worker stopped answering.
#[derive(Debug)]
enum Fault {
    /// No answer by the deadline.
    Hung(Duration),
    /// The channel closed: it crashed, aborted or was killed.
    Died,
    /// It sent something it must not (a malformed or oversized message).
    Protocol(String),
}

/// One plugin known to the host.
struct Plugin {
    id: u16,
    path: PathBuf,
    version: String,
    state: PluginState,
    errors: u32,
    restarts: u32,
    hash: String,
    seen_hash: String,
    /// The live generation (0 = none).
    generation: u64,
    last_error: Option<String>,
    worker: Option<WorkerProcess>,
    /// A worker finishing its handshake, and the version to load once it has.
    starting: Option<(StartingWorker, PluginSnapshot)>,
    restart_at: Option<Instant>,
    backoff: Duration,
    log: PluginLog,
    listeners: BTreeMap<(u64, EventKind), u32>,
    commands: Vec<CommandSpec>,
    /// Upstream RPC handlers: (generation, RPC name).
    rpcs: Vec<(u64, String)>,
    entities: Vec<(u64, u32)>,
    budget: TickBudget,
}

impl Plugin {
    fn listener_count(&self, kind: EventKind) -> u32 {
        self.listeners
            .get(&(self.generation, kind))
            .copied()
            .unwrap_or(0)
    }

    /// Forgets one generation's registrations (or all of them) and returns
    /// the entities it owned.
    fn forget(&mut self, generation: Option<u64>) -> Vec<u32> {
        let hit = |g: u64| generation.is_none_or(|x| x == g);
        self.listeners.retain(|(g, _), _| !hit(*g));
        self.commands.retain(|c| !hit(c.generation));
        self.rpcs.retain(|(g, _)| !hit(*g));
        let mut ids = Vec::new();
        self.entities.retain(|(g, id)| {
            if hit(*g) {
                ids.push(*id);
                false
            } else {
                true
            }
        });
        ids
    }

    /// Keeps only generation `keep`; returns the entities of the others.
    fn keep_only(&mut self, keep: u64) -> Vec<u32> {
        self.listeners.retain(|(g, _), _| *g == keep);
        self.commands.retain(|c| c.generation == keep);
        self.rpcs.retain(|(g, _)| *g == keep);
        let mut ids = Vec::new();
        self.entities.retain(|(g, id)| {
            if *g == keep {
                true
            } else {
                ids.push(*id);
                false
            }
        });
        ids
    }
}

/// Who a worker acts for while the host serves its calls.
#[derive(Debug, Clone)]
enum Caller {
    /// Plugin `name`, code of load generation `generation`.
    Plugin { name: String, generation: u64 },
    /// The operator's console.
    Console,
}

/// The plugin host; lives on the simulation thread.
pub struct PluginHost {
    cfg: HostConfig,
    exe: PathBuf,
    plugins: BTreeMap<String, Plugin>,
    ids: HashMap<String, u16>,
    next_generation: u64,
    watcher: Watcher,
    hook: Option<Box<dyn PluginLoadHook>>,
    console: Option<WorkerProcess>,
}

impl PluginHost {
    /// Prepares the folders, finds the worker binary and starts the file watcher.
    pub fn new(cfg: HostConfig) -> Result<Self, HostError> {
        for dir in [&cfg.plugins_dir, &cfg.logs_dir] {
            std::fs::create_dir_all(dir).map_err(|source| HostError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let exe = worker_exe(cfg.worker_exe.as_deref()).map_err(HostError::WorkerExe)?;
        let watcher = Watcher::new(&cfg.plugins_dir);
        Ok(Self {
            cfg,
            exe,
            plugins: BTreeMap::new(),
            ids: HashMap::new(),
            next_generation: 1,
            watcher,
            hook: None,
            console: None,
        })
    }

    /// Installs the server's extra load checks (bundle packing, REDscript policy).
    pub fn set_load_hook(&mut self, hook: Box<dyn PluginLoadHook>) {
        self.hook = Some(hook);
    }

    /// The bundle folder of plugin `name` (`plugins/<name>`).
    pub fn bundle_dir(&self, name: &str) -> PathBuf {
        self.cfg.plugins_dir.join(name)
    }

    /// Loads every `plugins/*.py` (used at start; later changes come via `poll_changes`).
    pub fn load_all(&mut self, world: &mut dyn GameWorld) {
        self.rescan(world);
        // At start nothing else runs yet: wait for every worker to start and load.
        let until = Instant::now() + WORKER_START_TIMEOUT;
        while self.plugins.values().any(|p| p.starting.is_some()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
            self.poll_starts(world);
        }
    }

    /// Loads plugins whose new worker finished starting, in name order (a
    /// later plugin waits for an earlier one, so loads are reproducible).
    fn poll_starts(&mut self, world: &mut dyn GameWorld) {
        let names: Vec<String> = self
            .plugins
            .iter()
            .filter(|(_, p)| p.starting.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(p) = self.plugins.get_mut(&name) else {
                continue;
            };
            let Some((starting, _)) = p.starting.as_mut() else {
                continue;
            };
            let Some(done) = starting.poll() else { break };
            let Some((_, snap)) = p.starting.take() else {
                continue;
            };
            match done {
                Ok(w) => {
                    tracing::info!(plugin = %name, pid = w.pid(), confinement = %w.confinement, "plugin worker started");
                    p.worker = Some(w);
                    p.generation = 0;
                    self.load(world, &name, snap);
                }
                Err(e) => {
                    let m = format!("worker did not start: {e}");
                    self.load_failed(world, &name, &m, &m, false);
                    if let Some(p) = self.plugins.get_mut(&name) {
                        p.state = PluginState::Failed;
                    }
                }
            }
        }
    }

    /// Applies file changes after the debounce or the periodic rescan, and
    /// restarts workers whose backoff has passed.
    pub fn poll_changes(&mut self, world: &mut dyn GameWorld) {
        self.poll_starts(world);
        if self.watcher.due() {
            self.rescan(world);
        }
        let due: Vec<String> = self
            .plugins
            .iter()
            .filter(|(_, p)| {
                p.state == PluginState::Restarting
                    && p.restart_at.is_some_and(|t| t <= Instant::now())
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            if let Some(p) = self.plugins.get_mut(&name) {
                p.restart_at = None;
                p.restarts += 1;
            }
            let path = self.cfg.plugins_dir.join(format!("{name}.py"));
            tracing::info!(plugin = %name, "restarting plugin worker");
            self.read_and_load(world, &name, &path);
        }
    }

    /// Runs the plugins' part of a tick: every plugin with listeners for
    /// `OnTick` or for one of `events` gets them, in plugin-name order; each
    /// worker is waited for at most its deadline.
    pub fn tick(&mut self, world: &mut dyn GameWorld, dt: f64, events: &[GameEvent]) {
        for p in self.plugins.values_mut() {
            p.budget = TickBudget::default();
        }
        for ev in events {
            if let GameEvent::EntityDespawn(d) = ev {
                for p in self.plugins.values_mut() {
                    p.entities.retain(|(_, id)| *id != d.entity_id);
                }
            }
        }
        let mut batches: Vec<(String, Vec<GameEvent>, u32)> = Vec::new();
        for (name, p) in &self.plugins {
            if p.state != PluginState::Loaded || p.worker.is_none() {
                continue;
            }
            let mut mine = Vec::new();
            let mut calls = 0;
            let ticks = p.listener_count(EventKind::Tick);
            if ticks > 0 {
                mine.push(GameEvent::Tick { dt });
                calls += ticks;
            }
            for ev in events {
                let n = p.listener_count(ev.kind());
                if n > 0 {
                    mine.push(ev.clone());
                    calls += n;
                }
            }
            if !mine.is_empty() {
                batches.push((name.clone(), mine, calls));
            }
        }
        // Every worker starts at once; their world calls are served in name
        // order, so the world sees the same sequence on every run.
        let mut started = Vec::new();
        for (name, events, calls) in batches {
            let allowance = self.allowance(calls);
            let sent = self.with_worker(&name, |w| {
                w.channel.send(
                    &ToWorker::Deliver { events },
                    Some(Instant::now() + allowance),
                )
            });
            match sent {
                Some(Ok(())) => started.push((name, allowance)),
                Some(Err(e)) => self.fault(world, &name, channel_fault(e, allowance)),
                None => {}
            }
        }
        for (name, allowance) in started {
            let generation = self.plugins.get(&name).map_or(0, |p| p.generation);
            let caller = Caller::Plugin {
                name: name.clone(),
                generation,
            };
            if let Err(f) = self.finish(world, &caller, Instant::now() + allowance) {
                self.fault(world, &name, f);
            }
        }
        self.disable_over_limit(world);
    }

    /// Calls every listener of one event (outside a tick: tests, tools).
    pub fn fire_event(&mut self, world: &mut dyn GameWorld, event: GameEvent) {
        let only: Vec<GameEvent> = vec![event];
        for p in self.plugins.values_mut() {
            p.budget = TickBudget::default();
        }
        let names: Vec<String> = self.plugins.keys().cloned().collect();
        for name in names {
            self.deliver_to(world, &name, only.clone());
        }
        self.disable_over_limit(world);
    }

    /// Runs chat command `/name args` for `peer`; admin-only commands refuse non-admins.
    pub fn run_command(
        &mut self,
        world: &mut dyn GameWorld,
        peer: u32,
        is_admin: bool,
        name: &str,
        args: &str,
    ) -> CommandOutcome {
        let name = name.trim_start_matches('/');
        let found = self.plugins.iter().find_map(|(pname, p)| {
            if p.state != PluginState::Loaded {
                return None;
            }
            p.commands
                .iter()
                .find(|c| c.name == name && c.generation == p.generation)
                .map(|c| (pname.clone(), c.admin, p.generation))
        });
        let Some((plugin, admin, generation)) = found else {
            return CommandOutcome::NotFound;
        };
        if admin && !is_admin {
            return CommandOutcome::Refused;
        }
        let req = ToWorker::Command {
            name: name.to_string(),
            peer,
            args: args.to_string(),
        };
        match self.run_handler(world, &plugin, generation, &req, "a command") {
            Ok(()) => CommandOutcome::Ran,
            Err(e) => CommandOutcome::Failed(e),
        }
    }

    /// Runs one handler call (`req`: a command or an RPC) in `plugin`'s
    /// worker within one tick allowance; a worker that misbehaves or misses
    /// the deadline is faulted. `Err` is what to tell the peer.
    fn run_handler(
        &mut self,
        world: &mut dyn GameWorld,
        plugin: &str,
        generation: u64,
        req: &ToWorker,
        what: &str,
    ) -> Result<(), String> {
        let allowance = self.allowance(1);
        let deadline = Instant::now() + allowance;
        let caller = Caller::Plugin {
            name: plugin.to_string(),
            generation,
        };
        let outcome = match self.exchange(world, &caller, req, deadline) {
            Ok(FromWorker::Done { failed: None }) => Ok(()),
            Ok(FromWorker::Done { failed: Some(e) }) => Err(e),
            Ok(_) => {
                self.fault(
                    world,
                    plugin,
                    Fault::Protocol(format!("unexpected answer to {what}")),
                );
                Err("the plugin's worker misbehaved and was stopped".into())
            }
            Err(f) => {
                let why = fault_text(&f, allowance);
                self.fault(world, plugin, f);
                Err(why)
            }
        };
        self.disable_over_limit(world);
        outcome
    }

    /// Delivers upstream RPC `fn_hash` from `peer` to the live handler that
    /// plugin `plugin` registered with `game.on_rpc`, with the same deadline
    /// and fault handling as a command. The caller has already checked the
    /// plugin's upstream whitelist, the sender's rate and the payload.
    pub fn run_rpc(
        &mut self,
        world: &mut dyn GameWorld,
        peer: u32,
        plugin: &str,
        fn_hash: u32,
        json: &str,
    ) -> RpcOutcome {
        let Some(p) = self.plugins.get(plugin) else {
            return RpcOutcome::NotLoaded;
        };
        if p.state != PluginState::Loaded || p.worker.is_none() {
            return RpcOutcome::NotLoaded;
        }
        let generation = p.generation;
        let Some(name) = p
            .rpcs
            .iter()
            .find(|(g, n)| *g == generation && shard_protocol::fn_hash(n) == fn_hash)
            .map(|(_, n)| n.clone())
        else {
            return RpcOutcome::NoHandler;
        };
        let req = ToWorker::Rpc {
            name,
            peer,
            json: json.to_string(),
        };
        match self.run_handler(world, plugin, generation, &req, "an RPC") {
            Ok(()) => RpcOutcome::Ran,
            Err(e) => RpcOutcome::Failed(e),
        }
    }

    /// Commands a peer may see in `/help`: (name, help, admin-only), sorted by name.
    pub fn command_list(&self, is_admin: bool) -> Vec<(String, String, bool)> {
        let mut out: BTreeMap<String, (String, bool)> = BTreeMap::new();
        for p in self
            .plugins
            .values()
            .filter(|p| p.state == PluginState::Loaded)
        {
            for c in p.commands.iter().filter(|c| c.generation == p.generation) {
                if is_admin || !c.admin {
                    out.insert(c.name.clone(), (c.help.clone(), c.admin));
                }
            }
        }
        out.into_iter().map(|(n, (h, a))| (n, h, a)).collect()
    }

    /// Every known plugin, sorted by name.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.plugins
            .iter()
            .map(|(name, p)| PluginInfo {
                name: name.clone(),
                id: p.id,
                version: p.version.clone(),
                state: p.state,
                errors: p.errors,
                restarts: p.restarts,
                hash: p.hash.clone(),
                bundle_dir: self.bundle_dir(name),
                last_error: p.last_error.clone(),
                worker_pid: p.worker.as_ref().map(WorkerProcess::pid),
            })
            .collect()
    }

    /// The log file of plugin `name`.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.cfg.logs_dir.join(format!("{name}.log"))
    }

    /// Reloads plugin `name` from disk even if unchanged; false if there is no such file.
    pub fn reload(&mut self, world: &mut dyn GameWorld, name: &str) -> bool {
        let path = self.cfg.plugins_dir.join(format!("{name}.py"));
        if !super::loader::valid_name(name) || !path.is_file() {
            return false;
        }
        self.read_and_load(world, name, &path);
        true
    }

    /// Re-enables a disabled plugin by reloading it; false if unknown or not disabled.
    pub fn enable(&mut self, world: &mut dyn GameWorld, name: &str) -> bool {
        if self.plugins.get(name).map(|p| p.state) != Some(PluginState::Disabled) {
            return false;
        }
        if let Some(p) = self.plugins.get_mut(name) {
            p.errors = 0;
            p.backoff = Duration::ZERO;
        }
        self.reload(world, name)
    }

    /// Disables plugin `name` at the operator's request (its unload listeners
    /// run first, then its worker stops).
    pub fn disable(&mut self, world: &mut dyn GameWorld, name: &str) -> bool {
        let state = self.plugins.get(name).map(|p| p.state);
        if !matches!(state, Some(PluginState::Loaded | PluginState::Restarting)) {
            return false;
        }
        self.deliver_to(world, name, vec![GameEvent::Unload]);
        self.take_down(
            world,
            name,
            PluginState::Disabled,
            "disabled by the operator".into(),
        );
        true
    }

    /// Runs operator console code (`py CODE`) in a console worker of its own
    /// (confined like a plugin's, without the comfort layer); returns what it
    /// printed, the repr of an expression, or the traceback.
    pub fn console(&mut self, world: &mut dyn GameWorld, code: &str) -> String {
        if self.console.is_none() {
            let init = self.init_for("console", Vec::new(), false);
            match WorkerProcess::spawn(&self.exe, &init, Instant::now() + WORKER_START_TIMEOUT) {
                Ok(w) => self.console = Some(w),
                Err(e) => return format!("console worker did not start: {e}"),
            }
        }
        let req = ToWorker::Console {
            code: code.to_string(),
        };
        let deadline = Instant::now() + self.allowance(1);
        match self.exchange(world, &Caller::Console, &req, deadline) {
            Ok(FromWorker::ConsoleOutput { text }) => text,
            Ok(_) => {
                self.console = None;
                "console worker misbehaved and was stopped".into()
            }
            Err(f) => {
                self.console = None;
                format!(
                    "console worker stopped: {}",
                    fault_text(&f, self.allowance(1))
                )
            }
        }
    }

    /// Runs every plugin's unload listeners, then stops every worker.
    pub fn shutdown(&mut self, world: &mut dyn GameWorld) {
        let names: Vec<String> = self.plugins.keys().cloned().collect();
        for name in &names {
            self.deliver_to(world, name, vec![GameEvent::Unload]);
        }
        for name in names {
            if let Some(p) = self.plugins.get_mut(&name) {
                let ids = p.forget(None);
                p.worker = None;
                p.state = PluginState::Disabled;
                for id in ids {
                    world.despawn(id);
                }
            }
        }
        self.plugins.clear();
        self.console = None;
    }

    // ---- internals ----

    /// The most a worker may take for `callbacks` callbacks before it is killed.
    fn allowance(&self, callbacks: u32) -> Duration {
        self.cfg.cpu_budget * callbacks.max(1) + self.cfg.kill_after
    }

    fn init_for(&self, name: &str, read_only: Vec<PathBuf>, layers: bool) -> WorkerInit {
        WorkerInit {
            build_id: BUILD_ID.to_string(),
            name: name.to_string(),
            cpu_budget_ms: u64::try_from(self.cfg.cpu_budget.as_millis()).unwrap_or(u64::MAX),
            memory_mb: self.cfg.memory_mb,
            read_only,
            require_confinement: !self.cfg.allow_unconfined,
            python_layers: layers,
        }
    }

    fn python_layers(&self, _name: &str) -> bool {
        #[cfg(debug_assertions)]
        if self
            .cfg
            .test_without_python_layers
            .iter()
            .any(|n| n == _name)
        {
            return false;
        }
        true
    }

    /// Runs `f` with plugin `name`'s worker, if it has one.
    fn with_worker<R>(&mut self, name: &str, f: impl FnOnce(&mut WorkerProcess) -> R) -> Option<R> {
        self.plugins.get_mut(name)?.worker.as_mut().map(f)
    }

    /// Delivers `events` to plugin `name` if it listens to any of them.
    fn deliver_to(&mut self, world: &mut dyn GameWorld, name: &str, events: Vec<GameEvent>) {
        let Some(p) = self.plugins.get(name) else {
            return;
        };
        if p.worker.is_none() || p.state != PluginState::Loaded {
            return;
        }
        let calls: u32 = events.iter().map(|e| p.listener_count(e.kind())).sum();
        if calls == 0 {
            return;
        }
        let caller = Caller::Plugin {
            name: name.to_string(),
            generation: p.generation,
        };
        let deadline = Instant::now() + self.allowance(calls);
        match self.exchange(world, &caller, &ToWorker::Deliver { events }, deadline) {
            Ok(FromWorker::Done { .. }) => {}
            Ok(_) => self.fault(
                world,
                name,
                Fault::Protocol("unexpected answer to events".into()),
            ),
            Err(f) => self.fault(world, name, f),
        }
    }

    /// Sends `req` to the caller's worker and serves it until its final answer.
    fn exchange(
        &mut self,
        world: &mut dyn GameWorld,
        caller: &Caller,
        req: &ToWorker,
        deadline: Instant,
    ) -> Result<FromWorker, Fault> {
        let sent = match caller {
            Caller::Plugin { name, .. } => self
                .with_worker(name, |w| w.channel.send(req, Some(deadline)))
                .ok_or(Fault::Died)?,
            Caller::Console => self
                .console
                .as_mut()
                .map(|w| w.channel.send(req, Some(deadline)))
                .ok_or(Fault::Died)?,
        };
        sent.map_err(|e| channel_fault(e, Duration::ZERO))?;
        self.finish(world, caller, deadline)
    }

    /// Serves the caller's worker (world calls, logs, errors) until it sends
    /// a final answer or the deadline passes.
    fn finish(
        &mut self,
        world: &mut dyn GameWorld,
        caller: &Caller,
        deadline: Instant,
    ) -> Result<FromWorker, Fault> {
        let started = Instant::now();
        loop {
            let got = match caller {
                Caller::Plugin { name, .. } => self
                    .with_worker(name, |w| w.channel.recv::<FromWorker>(Some(deadline)))
                    .ok_or(Fault::Died)?,
                Caller::Console => self
                    .console
                    .as_mut()
                    .map(|w| w.channel.recv::<FromWorker>(Some(deadline)))
                    .ok_or(Fault::Died)?,
            };
            let msg = got.map_err(|e| channel_fault(e, started.elapsed()))?;
            match msg {
                FromWorker::Call(call) => {
                    let answer = self.serve(world, caller, call).map_err(|e| e.to_string());
                    let reply = ToWorker::Reply(answer);
                    let sent = match caller {
                        Caller::Plugin { name, .. } => self
                            .with_worker(name, |w| w.channel.send(&reply, Some(deadline)))
                            .ok_or(Fault::Died)?,
                        Caller::Console => self
                            .console
                            .as_mut()
                            .map(|w| w.channel.send(&reply, Some(deadline)))
                            .ok_or(Fault::Died)?,
                    };
                    sent.map_err(|e| channel_fault(e, started.elapsed()))?;
                }
                FromWorker::Log { text } => {
                    if let Caller::Plugin { name, .. } = caller
                        && let Some(p) = self.plugins.get_mut(name)
                    {
                        p.log.write("log", &text, false);
                    }
                }
                FromWorker::Error {
                    what,
                    short,
                    traceback,
                } => {
                    if let Caller::Plugin { name, .. } = caller {
                        self.record_error(name, &what, &short, &traceback);
                    }
                }
                FromWorker::Ready { .. } | FromWorker::SetupFailed { .. } => {
                    return Err(Fault::Protocol(
                        "a handshake message after the handshake".into(),
                    ));
                }
                done => return Ok(done),
            }
        }
    }

    /// Counts one error of `name` and logs its traceback.
    fn record_error(&mut self, name: &str, what: &str, short: &str, traceback: &str) {
        let Some(p) = self.plugins.get_mut(name) else {
            return;
        };
        p.errors += 1;
        p.last_error = Some(clip(short, MAX_ERROR_TEXT));
        p.log.write(&format!("error in {what}"), traceback, true);
        tracing::warn!(plugin = name, errors = p.errors, callback = what, error = %clip(short, MAX_ERROR_TEXT), "plugin error");
    }

    /// Disables every loaded plugin that reached `max_errors`.
    fn disable_over_limit(&mut self, world: &mut dyn GameWorld) {
        let over: Vec<String> = self
            .plugins
            .iter()
            .filter(|(_, p)| {
                p.errors >= self.cfg.max_errors
                    && matches!(p.state, PluginState::Loaded | PluginState::Restarting)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in over {
            let errors = self.plugins.get(&name).map_or(0, |p| p.errors);
            self.take_down(
                world,
                &name,
                PluginState::Disabled,
                format!("{errors} errors"),
            );
            world.notify_admins(&format!("[Plugin {name} disabled – error]"));
        }
    }

    /// A worker hung, crashed or broke the protocol: kill it, count one
    /// error, tell admins, and schedule a restart with backoff.
    fn fault(&mut self, world: &mut dyn GameWorld, name: &str, fault: Fault) {
        let allowance = self.allowance(1);
        let Some(p) = self.plugins.get_mut(name) else {
            return;
        };
        // A worker that died gets a moment to finish exiting (its status
        // says why); a hung one is killed at once.
        let grace = match fault {
            Fault::Died => DIED_WORKER_GRACE,
            Fault::Hung(_) | Fault::Protocol(_) => Duration::ZERO,
        };
        let ended = p
            .worker
            .take()
            .map(|mut w| w.stop(grace))
            .unwrap_or_default();
        let why = format!("{}; worker {ended}", fault_text(&fault, allowance));
        p.errors += 1;
        p.last_error = Some(clip(&why, MAX_ERROR_TEXT));
        p.log.write("worker stopped", &why, true);
        let ids = p.forget(None);
        for id in ids {
            world.despawn(id);
        }
        p.backoff = if p.backoff.is_zero() {
            self.cfg.restart_backoff
        } else {
            (p.backoff * 2).min(RESTART_BACKOFF_MAX)
        };
        let backoff = p.backoff;
        let errors = p.errors;
        if p.state == PluginState::Loaded {
            p.state = PluginState::Restarting;
        }
        if p.state == PluginState::Restarting {
            p.restart_at = Some(Instant::now() + backoff);
        }
        tracing::warn!(plugin = name, errors, restart_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX), reason = %why, "plugin worker stopped");
        if errors < self.cfg.max_errors {
            world.notify_admins(&clip(
                &format!(
                    "[Plugin {name} stopped: {why}; restarting in {:.1} s]",
                    backoff.as_secs_f32()
                ),
                MAX_CHAT_CHARS,
            ));
        }
    }

    /// Removes a plugin's registrations, entities and worker and sets its state.
    fn take_down(
        &mut self,
        world: &mut dyn GameWorld,
        name: &str,
        state: PluginState,
        why: String,
    ) {
        let Some(p) = self.plugins.get_mut(name) else {
            return;
        };
        let ids = p.forget(None);
        for id in ids {
            world.despawn(id);
        }
        p.worker = None;
        p.starting = None;
        p.state = state;
        p.restart_at = None;
        p.generation = 0;
        p.last_error = Some(why.clone());
        p.log.write("unloaded", &why, true);
        if let Some(hook) = self.hook.as_mut() {
            hook.unloaded(name);
        }
        tracing::warn!(plugin = name, state = ?state, reason = %why, "plugin taken down");
    }

    /// Compares the plugins folder with what is loaded: loads new and changed
    /// files, unloads deleted ones.
    fn rescan(&mut self, world: &mut dyn GameWorld) {
        let found = match discover(&self.cfg.plugins_dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.cfg.plugins_dir.display(), error = %e, "cannot list plugins");
                return;
            }
        };
        let gone: Vec<String> = self
            .plugins
            .keys()
            .filter(|n| !found.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            self.deliver_to(world, &name, vec![GameEvent::Unload]);
            self.take_down(
                world,
                &name,
                PluginState::Disabled,
                "plugin file deleted".into(),
            );
            self.plugins.remove(&name);
        }
        for (name, path) in found {
            let snap = match PluginSnapshot::read(&path, &self.bundle_dir(&name)) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(plugin = %name, error = %e, "cannot read plugin");
                    continue;
                }
            };
            if self
                .plugins
                .get(&name)
                .is_none_or(|p| p.seen_hash != snap.hash)
            {
                self.load(world, &name, snap);
            }
        }
    }

    fn plugin_id(&mut self, name: &str) -> Option<u16> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        let next = self.ids.len() + 1;
        if next > MAX_PLUGINS {
            return None;
        }
        let id = u16::try_from(next).ok()?;
        self.ids.insert(name.to_owned(), id);
        Some(id)
    }

    /// Reads plugin `name` from disk once and loads that version; a file that
    /// cannot be read fails the load (a running previous version keeps running).
    fn read_and_load(&mut self, world: &mut dyn GameWorld, name: &str, path: &Path) {
        match PluginSnapshot::read(path, &self.bundle_dir(name)) {
            Ok(snap) => self.load(world, name, snap),
            Err(e) => {
                let m = format!("{}: cannot read: {e}", path.display());
                let was_live = self
                    .plugins
                    .get(name)
                    .is_some_and(|p| p.state == PluginState::Loaded && p.worker.is_some());
                self.load_failed(world, name, &m, &m, was_live);
            }
        }
    }

    /// Loads (or reloads) one plugin version, read once into `snap`, in its
    /// worker (starting one if needed); on failure a running previous version
    /// keeps running.
    fn load(&mut self, world: &mut dyn GameWorld, name: &str, snap: PluginSnapshot) {
        let started = Instant::now();
        let hash = snap.hash.clone();
        let path = snap.path.clone();
        let path = path.as_path();
        let Some(id) = self.plugin_id(name) else {
            tracing::error!(plugin = name, limit = MAX_PLUGINS, "too many plugins");
            return;
        };
        let log = PluginLog::new(self.log_path(name));
        let entry = self
            .plugins
            .entry(name.to_owned())
            .or_insert_with(|| Plugin {
                id,
                path: path.to_owned(),
                version: String::new(),
                state: PluginState::Failed,
                errors: 0,
                restarts: 0,
                hash: hash.clone(),
                seen_hash: String::new(),
                generation: 0,
                last_error: None,
                worker: None,
                starting: None,
                restart_at: None,
                backoff: Duration::ZERO,
                log,
                listeners: BTreeMap::new(),
                commands: Vec::new(),
                rpcs: Vec::new(),
                entities: Vec::new(),
                budget: TickBudget::default(),
            });
        entry.seen_hash = hash.clone();
        entry.restart_at = None;
        let was_live = entry.state == PluginState::Loaded && entry.worker.is_some();
        let file = path.display().to_string();
        let source = match snap.source_text() {
            Ok(s) => s.to_owned(),
            Err(e) => {
                let m = e.to_string();
                return self.load_failed(world, name, &m, &m, was_live);
            }
        };
        if self.plugins.get(name).is_some_and(|p| p.worker.is_none()) {
            // A new worker starts off the tick; the load follows in `poll_starts`.
            if self.plugins.get(name).is_some_and(|p| p.starting.is_some()) {
                if let Some(p) = self.plugins.get_mut(name)
                    && let Some((_, pending)) = p.starting.as_mut()
                {
                    *pending = snap;
                }
                return;
            }
            let read_only = vec![path.to_path_buf(), self.bundle_dir(name)];
            let init = self.init_for(name, read_only, self.python_layers(name));
            match WorkerProcess::launch(&self.exe, &init, Instant::now() + WORKER_START_TIMEOUT) {
                Ok(starting) => {
                    if let Some(p) = self.plugins.get_mut(name) {
                        p.starting = Some((starting, snap));
                        if p.state != PluginState::Restarting {
                            p.state = PluginState::Starting;
                        }
                    }
                }
                Err(e) => {
                    let m = format!("worker did not start: {e}");
                    self.load_failed(world, name, &m, &m, false);
                }
            }
            return;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let caller = Caller::Plugin {
            name: name.to_string(),
            generation,
        };
        let req = ToWorker::Load {
            generation,
            file: file.clone(),
            source,
        };
        let answer = self.exchange(world, &caller, &req, Instant::now() + self.allowance(1));
        let version = match answer {
            Ok(FromWorker::Loaded { version }) => version,
            Ok(FromWorker::LoadFailed { short, traceback }) => {
                self.drop_generation(world, name, generation);
                return self.load_failed(world, name, &short, &traceback, was_live);
            }
            Ok(_) => {
                self.fault(
                    world,
                    name,
                    Fault::Protocol("unexpected answer to a load".into()),
                );
                return;
            }
            Err(f) => {
                let m = format!("{file}: {}", fault_text(&f, self.allowance(1)));
                self.fault(world, name, f);
                if let Some(p) = self.plugins.get_mut(name) {
                    p.log.write("load failed", &m, true);
                }
                return;
            }
        };
        if let Some(hook) = self.hook.as_mut()
            && let Err(m) = hook.check(name, &version, &snap)
        {
            let _ = self.exchange(
                world,
                &caller,
                &ToWorker::Rollback { generation },
                Instant::now() + self.allowance(1),
            );
            self.drop_generation(world, name, generation);
            let m = format!("{file}: {m}");
            return self.load_failed(world, name, &m, &m, was_live);
        }
        let committed = self.exchange(
            world,
            &caller,
            &ToWorker::Commit { generation },
            Instant::now() + self.allowance(1),
        );
        if let Err(f) = committed {
            self.fault(world, name, f);
            return;
        }
        let Some(p) = self.plugins.get_mut(name) else {
            return;
        };
        let old = p.keep_only(generation);
        // A new version starts with a clean record; a restart of the same
        // one keeps its errors and its backoff, so a crash loop ends disabled.
        if p.hash != hash || p.version != version {
            p.errors = 0;
            p.backoff = Duration::ZERO;
        }
        p.version = version.clone();
        p.state = PluginState::Loaded;
        p.hash = hash;
        p.path = path.to_owned();
        p.generation = generation;
        p.last_error = None;
        p.log.write("loaded", &format!("version {version}"), true);
        for id in old {
            world.despawn(id);
        }
        tracing::info!(plugin = name, version = %version, ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX), "plugin loaded");
    }

    fn drop_generation(&mut self, world: &mut dyn GameWorld, name: &str, generation: u64) {
        if let Some(p) = self.plugins.get_mut(name) {
            for id in p.forget(Some(generation)) {
                world.despawn(id);
            }
        }
    }

    /// A version did not load: log it, tell admins, keep a running version.
    fn load_failed(
        &mut self,
        world: &mut dyn GameWorld,
        name: &str,
        short: &str,
        tb: &str,
        keeps: bool,
    ) {
        let Some(p) = self.plugins.get_mut(name) else {
            return;
        };
        p.last_error = Some(clip(short, MAX_ERROR_TEXT));
        p.log.write("load failed", tb, true);
        let tail = if keeps {
            "; the previous version keeps running"
        } else {
            ""
        };
        let msg = clip(
            &format!(
                "[Plugin {name} failed to load: {}{tail}]",
                clip(short, MAX_ERROR_TEXT)
            ),
            MAX_CHAT_CHARS,
        );
        tracing::warn!(plugin = name, reason = %msg, "plugin failed to load");
        // A rejected reload is not counted against the running version: five
        // bad saves in a row must not disable a healthy plugin.
        if !keeps {
            p.errors += 1;
            if p.state != PluginState::Disabled {
                p.state = PluginState::Failed;
            }
        }
        world.notify_admins(&msg);
    }

    /// Serves one world call of `caller`: validation, budgets, then the world.
    fn serve(
        &mut self,
        world: &mut dyn GameWorld,
        caller: &Caller,
        call: WorldCall,
    ) -> Result<WorldValue, GameCallError> {
        let (name, generation) = match caller {
            Caller::Plugin { name, generation } => (Some(name.as_str()), *generation),
            Caller::Console => (None, 0),
        };
        let need_plugin = || name.ok_or(GameCallError::NeedsPlugin);
        match call {
            WorldCall::Listen { kind } => {
                let name = need_plugin()?;
                let p = self
                    .plugins
                    .get_mut(name)
                    .ok_or(GameCallError::UnknownPlugin)?;
                *p.listeners.entry((generation, kind)).or_default() += 1;
                Ok(WorldValue::Unit)
            }
            WorldCall::RegisterCommand {
                name: cmd,
                help,
                admin,
            } => {
                let name = need_plugin()?;
                self.register_command(name, generation, cmd, help, admin)
            }
            WorldCall::OnRpc { name: rpc } => {
                let name = need_plugin()?;
                check_rpc_name(&rpc)?;
                let p = self
                    .plugins
                    .get_mut(name)
                    .ok_or(GameCallError::UnknownPlugin)?;
                if p.rpcs.iter().any(|(g, n)| *g == generation && *n == rpc) {
                    return Err(GameCallError::DuplicateRpcHandler(rpc));
                }
                if p.rpcs.iter().filter(|(g, _)| *g == generation).count() >= MAX_RPC_WHITELIST {
                    return Err(GameCallError::TooManyRpcHandlers);
                }
                p.rpcs.push((generation, rpc));
                Ok(WorldValue::Unit)
            }
            WorldCall::Spawn {
                kind,
                template,
                pos,
                rot,
                phase,
            } => {
                let name = need_plugin()?;
                check_template(&template)?;
                let pos = check_pos("pos", pos)?;
                let rot = check_rot(rot)?;
                let p = self
                    .plugins
                    .get_mut(name)
                    .ok_or(GameCallError::UnknownPlugin)?;
                TickBudget::take(&mut p.budget.spawns, BUDGET_SPAWNS_PER_TICK, "spawns")?;
                let owner = PluginOwner {
                    plugin_id: p.id,
                    name: name.to_string(),
                };
                let id = world.spawn_entity(kind, &template, pos, rot, phase, owner);
                p.entities.push((generation, id));
                Ok(WorldValue::Id(id))
            }
            WorldCall::Despawn { id } => {
                if !world.despawn(id) {
                    return Err(GameCallError::UnknownEntity { id });
                }
                for p in self.plugins.values_mut() {
                    p.entities.retain(|(_, e)| *e != id);
                }
                Ok(WorldValue::Unit)
            }
            WorldCall::Teleport {
                peer,
                pos,
                rot,
                phase,
            } => {
                let pos = check_pos("pos", pos)?;
                let rot = check_rot(rot)?;
                check_peer(world, peer)?;
                self.budget_peer(world, name, peer)?;
                world.teleport_peer(peer, pos, rot, phase);
                Ok(WorldValue::Unit)
            }
            WorldCall::SetWeather { id } => {
                world.set_weather(id);
                Ok(WorldValue::Unit)
            }
            WorldCall::Popup { peer, text, dur } => {
                check_text("popup text", &text, MAX_POPUP_CHARS)?;
                if !dur.is_finite() || dur <= 0.0 || dur > MAX_POPUP_SECS {
                    return Err(GameCallError::BadDuration(dur));
                }
                check_peer(world, peer)?;
                let json = serde_json::json!({ "text": text, "duration": dur }).to_string();
                if json.len() > MAX_RPC_JSON {
                    return Err(GameCallError::PopupTooLarge(json.len()));
                }
                if let Some(p) = name.and_then(|n| self.plugins.get_mut(n)) {
                    TickBudget::take(&mut p.budget.popups, BUDGET_POPUPS_PER_TICK, "popups")?;
                }
                self.budget_peer(world, name, peer)?;
                world.send_rpc(peer, BUILTIN_PLUGIN_ID, fn_hash(POPUP_RPC), json);
                Ok(WorldValue::Unit)
            }
            WorldCall::PeerPositions => Ok(WorldValue::Positions(
                world
                    .peer_positions()
                    .into_iter()
                    .map(|(p, v)| (p, [v.x, v.y, v.z]))
                    .collect(),
            )),
            WorldCall::EntityPosition { id } => Ok(WorldValue::Position(
                world.entity_position(id).map(|(v, _)| [v.x, v.y, v.z]),
            )),
            WorldCall::SendChat { peer, text } => {
                check_text("chat text", &text, MAX_CHAT_CHARS)?;
                check_peer(world, peer)?;
                if let Some(p) = name.and_then(|n| self.plugins.get_mut(n)) {
                    TickBudget::take(&mut p.budget.chat, BUDGET_CHAT_PER_TICK, "chat lines")?;
                }
                self.budget_peer(world, name, peer)?;
                world.send_chat(peer, &text);
                Ok(WorldValue::Unit)
            }
            WorldCall::Broadcast { text } => {
                check_text("chat text", &text, MAX_CHAT_CHARS)?;
                if let Some(p) = name.and_then(|n| self.plugins.get_mut(n)) {
                    TickBudget::take(&mut p.budget.chat, BUDGET_CHAT_PER_TICK, "chat lines")?;
                }
                world.broadcast(&text);
                Ok(WorldValue::Unit)
            }
            WorldCall::SendRpc {
                peer,
                name: rpc,
                json,
            } => {
                let plugin = need_plugin()?;
                if rpc.is_empty() {
                    return Err(GameCallError::EmptyRpcName);
                }
                if json.len() > MAX_RPC_JSON {
                    return Err(GameCallError::RpcTooLarge(json.len()));
                }
                if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&json)
                    .is_err()
                {
                    return Err(GameCallError::NotJsonObject);
                }
                check_peer(world, peer)?;
                let p = self
                    .plugins
                    .get_mut(plugin)
                    .ok_or(GameCallError::UnknownPlugin)?;
                TickBudget::take(&mut p.budget.rpcs, BUDGET_RPCS_PER_TICK, "RPCs")?;
                if p.budget.rpc_bytes + json.len() > BUDGET_RPC_BYTES_PER_TICK {
                    return Err(GameCallError::RpcBytesBudget);
                }
                p.budget.rpc_bytes += json.len();
                let id = p.id;
                self.budget_peer(world, Some(plugin), peer)?;
                world.send_rpc(peer, id, fn_hash(&rpc), json);
                Ok(WorldValue::Unit)
            }
        }
    }

    fn budget_peer(
        &mut self,
        world: &dyn GameWorld,
        name: Option<&str>,
        peer: u32,
    ) -> Result<(), GameCallError> {
        match name.and_then(|n| self.plugins.get_mut(n)) {
            Some(p) => p.budget.take_peer(world, peer),
            None => Ok(()),
        }
    }

    fn register_command(
        &mut self,
        plugin: &str,
        generation: u64,
        name: String,
        help: String,
        admin: bool,
    ) -> Result<WorldValue, GameCallError> {
        if name.is_empty()
            || name.len() > MAX_COMMAND_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(GameCallError::BadCommandName(clip(&name, MAX_QUOTED_VALUE)));
        }
        check_text("help", &help, MAX_CHAT_CHARS)?;
        if builtin(&name).is_some() {
            return Err(GameCallError::BuiltinCommand(name));
        }
        for (other, p) in &self.plugins {
            if other != plugin
                && p.state == PluginState::Loaded
                && p.commands
                    .iter()
                    .any(|c| c.name == name && c.generation == p.generation)
            {
                return Err(GameCallError::CommandTaken {
                    name,
                    other: other.clone(),
                });
            }
        }
        let p = self
            .plugins
            .get_mut(plugin)
            .ok_or(GameCallError::UnknownPlugin)?;
        if p.commands
            .iter()
            .any(|c| c.name == name && c.generation == generation)
        {
            return Err(GameCallError::CommandTwice(name));
        }
        p.commands.push(CommandSpec {
            generation,
            name,
            help,
            admin,
        });
        Ok(WorldValue::Unit)
    }
}

fn channel_fault(e: ChannelError, waited: Duration) -> Fault {
    match e {
        ChannelError::Timeout => Fault::Hung(waited),
        ChannelError::Closed | ChannelError::Io(_) => Fault::Died,
        ChannelError::TooLarge(_) | ChannelError::Malformed(_) => Fault::Protocol(e.to_string()),
    }
}

fn fault_text(f: &Fault, allowance: Duration) -> String {
    match f {
        Fault::Hung(waited) => format!(
            "did not answer within {} ms (budget plus grace)",
            waited.max(&allowance).as_millis()
        ),
        Fault::Died => "its worker crashed or was killed".into(),
        Fault::Protocol(m) => format!("its worker broke the channel protocol ({m})"),
    }
}

/// Cuts `s` to `max` characters with an ellipsis.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn check_pos(what: &'static str, pos: [f64; 3]) -> Result<Vec3, GameCallError> {
    for (axis, value) in ["x", "y", "z"].into_iter().zip(pos) {
        if !value.is_finite() || value.abs() > f64::from(f32::MAX) {
            return Err(GameCallError::BadCoordinate { what, axis, value });
        }
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "checked finite and within f32's range above; rounding to f32 is the intent"
    )]
    Ok(Vec3 {
        x: pos[0] as f32,
        y: pos[1] as f32,
        z: pos[2] as f32,
    })
}

fn check_rot(rot: f64) -> Result<f32, GameCallError> {
    if !rot.is_finite() || rot.abs() > f64::from(f32::MAX) {
        return Err(GameCallError::BadRotation(rot));
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "checked finite and within f32's range above; rounding to f32 is the intent"
    )]
    Ok(rot as f32)
}

fn check_peer(world: &dyn GameWorld, peer: u32) -> Result<(), GameCallError> {
    if world.peer_exists(peer) {
        Ok(())
    } else {
        Err(GameCallError::UnknownPeer { peer })
    }
}

fn check_text(what: &'static str, text: &str, max: usize) -> Result<(), GameCallError> {
    let len = text.chars().count();
    if len > max {
        return Err(GameCallError::TextTooLong { what, len, max });
    }
    Ok(())
}

/// An RPC name as scripts write it in `n"Name"`: 1-64 ASCII letters,
/// digits or `_`, so it can never be confused with anything else in logs.
fn check_rpc_name(name: &str) -> Result<(), GameCallError> {
    if name.is_empty()
        || name.len() > MAX_ACTION
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(GameCallError::BadRpcName(clip(name, MAX_QUOTED_VALUE)));
    }
    Ok(())
}

fn check_template(tpl: &str) -> Result<(), GameCallError> {
    if tpl.is_empty() {
        return Err(GameCallError::EmptyTemplate);
    }
    if tpl.len() > MAX_TEMPLATE {
        return Err(GameCallError::TemplateTooLong(tpl.len()));
    }
    Ok(())
}
