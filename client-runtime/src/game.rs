//! The game boundary: everything the runtime asks the game to do, as one
//! trait, so the session logic is the same whether the "game" is the real one
//! (through the C ABI's event queue) or the headless client / a test.
//!
//! Two implementations live here: [`HeadlessGame`] records (and optionally
//! prints) each call, and [`QueuedGame`] turns each call into one JSON event
//! the game polls through `shard_client_poll_event`. [`ReloadTracker`] holds
//! the reload policy: reload a plugin folder's scripts only when its
//! installed hash changed, and ask the game to (re)load or unload archives,
//! `.xl` and tweaks once per batch of installs, only when they changed.
//! Script reloads are paced (at most one burst per interval, latest state
//! wins) so a server re-announcing in a loop cannot make the game recompile
//! its scripts in a loop.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use shard_protocol::limits::{DEFAULT_RELOAD_INTERVAL_MS, MAX_GAME_STRING};

use crate::events::ClientEvent;

/// What the runtime can ask of the game; one method per game-side effect so
/// the headless client, tests and the DLL share the routing in [`route`].
pub trait Game {
    /// Reloads pushed scripts from `dir` (`runtime_cache/plugins/<plugin>/`),
    /// because a new bundle for `plugin` was just installed there.
    fn reload_scripts(&mut self, plugin: &str, dir: &Path);
    /// (Re)loads and unloads game content (archives with their `.xl`,
    /// TweakXL tweaks), once per batch of installs in which some changed.
    fn load_resources(&mut self, request: &LoadResources);
    /// Invokes the handler a script registered for RPC `name` of `plugin`,
    /// because the server sent it and the dispatcher let it through.
    fn rpc(&mut self, plugin_id: u16, plugin: &str, name: &str, json: &str);
    /// Shows a popup (the builtin plugin's only RPC).
    fn popup(&mut self, text: &str, duration: f64);
    /// Moves the local player, because the server said so.
    fn teleport(&mut self, pos: [f32; 3], rot: f32, phase: u32);
    /// Switches the weather preset.
    fn weather(&mut self, id: u32);
    /// Spawns a server-owned entity.
    fn spawn_entity(&mut self, spawn: &EntitySpawn);
    /// Removes a server-owned entity.
    fn despawn_entity(&mut self, entity_id: u32);
    /// Any other session event (welcome, chat, peers, errors), which the game
    /// shows but which needs no world change.
    fn notify(&mut self, event: &ClientEvent);
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

impl LoadResources {
    /// The request as the one JSON event the game polls.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.insert("event".into(), "load_resources".into());
        }
        v.to_string()
    }
}

/// An entity the server asks the game to spawn (bundled so the trait method
/// stays readable).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntitySpawn {
    /// Server entity id (used again by despawn).
    pub entity_id: u32,
    /// "npc" or "vehicle".
    pub kind: &'static str,
    /// Game template record.
    pub template: String,
    /// Position.
    pub pos: [f32; 3],
    /// Yaw.
    pub rot: f32,
    /// Phase the entity lives in.
    pub phase: u32,
}

/// Sends one session event to the matching [`Game`] method, so every
/// implementation sees events the same way.
pub fn route(event: ClientEvent, game: &mut dyn Game) {
    match event {
        ClientEvent::Rpc {
            plugin_id,
            plugin,
            name,
            json,
        } => game.rpc(plugin_id, &plugin, &name, &json),
        ClientEvent::Popup { text, duration } => game.popup(&text, duration),
        ClientEvent::Teleport { pos, rot, phase } => game.teleport(pos, rot, phase),
        ClientEvent::Weather { id } => game.weather(id),
        ClientEvent::EntitySpawned {
            entity_id,
            kind,
            template,
            pos,
            rot,
            phase,
        } => game.spawn_entity(&EntitySpawn {
            entity_id,
            kind,
            template,
            pos,
            rot,
            phase,
        }),
        ClientEvent::EntityDespawned { entity_id } => game.despawn_entity(entity_id),
        other => game.notify(&other),
    }
}

/// Like [`route`], and bundle events also go through `tracker`: a
/// `BundleInstalled` reloads that plugin's scripts only when the installed
/// hash changed, `PluginRemoved` marks its content for unloading, and
/// `BundlesSettled` ends the batch with at most one `load_resources` request,
/// made just before the event itself is passed on. Script reloads are paced by
/// the tracker: call [`ReloadTracker::flush`] regularly too, so a reload held
/// back goes out once it is due.
pub fn route_with_reloads(
    event: ClientEvent,
    cache_root: &Path,
    tracker: &mut ReloadTracker,
    game: &mut dyn Game,
) {
    let installed = match &event {
        ClientEvent::BundleInstalled { name, sha256, .. } => {
            shard_cache::parse_sha256_hex(sha256).map(|h| (name.clone(), h))
        }
        _ => None,
    };
    let removed = match &event {
        ClientEvent::PluginRemoved { name, .. } => Some(name.clone()),
        _ => None,
    };
    // The load request goes before `bundles_settled`, so the game can apply
    // the batch's content first and its script reloads after it.
    if matches!(event, ClientEvent::BundlesSettled) {
        tracker.settled(cache_root, game);
    }
    route(event, game);
    if let Some((name, hash)) = installed {
        tracker.installed(cache_root, &name, hash, game);
    }
    if let Some(name) = removed {
        tracker.removed(&name);
    }
}

/// Decides when the game must reload a plugin's scripts: only when the hash
/// installed for that plugin differs from the last one reloaded, so a
/// reinstall of the same bundle, a rejoin, or a burst of announcements never
/// reloads twice.
///
/// It also keeps what game content each plugin has loaded: installs mark a
/// plugin to look at, and at the end of the batch (`BundlesSettled`) one
/// `load_resources` request lists every plugin whose archives, `.xl` or
/// tweaks differ from what the game has, and those of removed plugins.
///
/// Script reloads are paced: after one request the next waits at least
/// `interval`; what changed meanwhile is coalesced and the latest installed
/// hash wins ([`ReloadTracker::flush`] sends what is due).
#[derive(Debug, Clone)]
pub struct ReloadTracker {
    last: HashMap<String, [u8; 32]>,
    pending: BTreeMap<String, [u8; 32]>,
    interval: Duration,
    last_request: Option<Instant>,
    /// Bundle hash whose content was last looked at, per plugin.
    seen: HashMap<String, [u8; 32]>,
    /// What the game was asked to load, with the digest of those files.
    loaded: HashMap<String, ([u8; 32], PluginResources)>,
    /// Plugins to look at when the batch ends.
    changed: BTreeSet<String>,
    /// Plugins removed in this batch.
    gone: BTreeSet<String>,
}

impl Default for ReloadTracker {
    fn default() -> Self {
        Self::with_interval(Duration::from_millis(DEFAULT_RELOAD_INTERVAL_MS))
    }
}

impl ReloadTracker {
    /// A tracker that has reloaded nothing yet, paced at the default interval.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker whose script reloads are at least `interval` apart (zero: no pacing).
    pub fn with_interval(interval: Duration) -> Self {
        Self {
            last: HashMap::new(),
            pending: BTreeMap::new(),
            interval,
            last_request: None,
            seen: HashMap::new(),
            loaded: HashMap::new(),
            changed: BTreeSet::new(),
            gone: BTreeSet::new(),
        }
    }

    /// Records that `hash` is now installed for `plugin` under `cache_root`
    /// (its game content is looked at when the batch ends); if it is not the
    /// hash last reloaded, a script reload is due, asked of `game` now unless
    /// the pacing holds it back. Returns whether the game was asked now.
    pub fn installed(
        &mut self,
        cache_root: &Path,
        plugin: &str,
        hash: [u8; 32],
        game: &mut dyn Game,
    ) -> bool {
        self.installed_at(Instant::now(), cache_root, plugin, hash, game)
    }

    /// [`ReloadTracker::installed`] at a given time (tests drive the clock).
    pub fn installed_at(
        &mut self,
        now: Instant,
        cache_root: &Path,
        plugin: &str,
        hash: [u8; 32],
        game: &mut dyn Game,
    ) -> bool {
        if self.seen.get(plugin) != Some(&hash) {
            self.seen.insert(plugin.to_string(), hash);
            self.changed.insert(plugin.to_string());
            self.gone.remove(plugin);
        }
        if self.last.get(plugin) == Some(&hash) {
            // Back to what the game already has: nothing to reload.
            self.pending.remove(plugin);
            return false;
        }
        self.pending.insert(plugin.to_string(), hash);
        self.flush_at(now, cache_root, game)
    }

    /// Asks `game` for the script reloads held back by the pacing, if they
    /// are due; returns whether it did.
    pub fn flush(&mut self, cache_root: &Path, game: &mut dyn Game) -> bool {
        self.flush_at(Instant::now(), cache_root, game)
    }

    /// [`ReloadTracker::flush`] at a given time.
    pub fn flush_at(&mut self, now: Instant, cache_root: &Path, game: &mut dyn Game) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        if let Some(t) = self.last_request
            && now < t + self.interval
        {
            return false;
        }
        for (plugin, hash) in std::mem::take(&mut self.pending) {
            game.reload_scripts(&plugin, &plugin_dir(cache_root, &plugin));
            self.last.insert(plugin, hash);
        }
        self.last_request = Some(now);
        true
    }

    /// Whether script reloads are held back, waiting for the pacing.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Forgets a removed plugin, so installing it again later reloads it,
    /// and marks its game content for unloading at the end of the batch.
    pub fn removed(&mut self, plugin: &str) {
        self.last.remove(plugin);
        self.pending.remove(plugin);
        self.seen.remove(plugin);
        self.changed.remove(plugin);
        self.gone.insert(plugin.to_string());
    }

    /// Ends a batch: asks `game` once to load what changed and unload what
    /// went, if anything did; returns whether it asked.
    pub fn settled(&mut self, cache_root: &Path, game: &mut dyn Game) -> bool {
        let mut request = LoadResources::default();
        for plugin in std::mem::take(&mut self.changed) {
            let dir = plugin_dir(cache_root, &plugin);
            let found = match shard_cache::game_resources(&dir) {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(plugin = %plugin, error = %e, "cannot list the plugin's game content");
                    continue;
                }
            };
            if found.is_empty() {
                if let Some((_, was)) = self.loaded.remove(&plugin) {
                    request.unload.push(was);
                }
                continue;
            }
            if self
                .loaded
                .get(&plugin)
                .is_some_and(|(d, _)| *d == found.digest)
            {
                continue;
            }
            let res = PluginResources {
                plugin: plugin.clone(),
                dir,
                archives: found.archives,
                tweaks: found.tweaks,
            };
            self.loaded.insert(plugin, (found.digest, res.clone()));
            request.load.push(res);
        }
        for plugin in std::mem::take(&mut self.gone) {
            if let Some((_, was)) = self.loaded.remove(&plugin) {
                request.unload.push(was);
            }
        }
        if request.load.is_empty() && request.unload.is_empty() {
            return false;
        }
        game.load_resources(&request);
        true
    }
}

/// Where an installed plugin's scripts live: `<cache_root>/plugins/<name>/`.
pub fn plugin_dir(cache_root: &Path, plugin: &str) -> PathBuf {
    cache_root.join(shard_cache::PLUGINS_DIR).join(plugin)
}

/// One call the game received, as recorded by [`HeadlessGame`] (tests assert
/// on these; the headless client prints them).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum GameCall {
    /// `reload_scripts`.
    ReloadScripts {
        /// Plugin name.
        plugin: String,
        /// Folder reloaded.
        dir: PathBuf,
    },
    /// `load_resources`.
    LoadResources(LoadResources),
    /// `rpc`.
    Rpc {
        /// Plugin id.
        plugin_id: u16,
        /// Plugin name.
        plugin: String,
        /// RPC name.
        name: String,
        /// Payload.
        json: String,
    },
    /// `popup`.
    Popup {
        /// Text.
        text: String,
        /// Seconds.
        duration: f64,
    },
    /// `teleport`.
    Teleport {
        /// Position.
        pos: [f32; 3],
        /// Yaw.
        rot: f32,
        /// Phase.
        phase: u32,
    },
    /// `weather`.
    Weather {
        /// Preset id.
        id: u32,
    },
    /// `spawn_entity`.
    Spawn(EntitySpawn),
    /// `despawn_entity`.
    Despawn {
        /// Entity id.
        entity_id: u32,
    },
    /// `notify`.
    Notify(ClientEvent),
}

/// The headless game: records every call (and prints it as a JSON line when
/// asked), standing in for the real game in `shard-client join` and tests.
#[derive(Debug, Default)]
pub struct HeadlessGame {
    /// Calls received, oldest first.
    pub calls: Vec<GameCall>,
    /// Print each call to stdout as it arrives.
    pub print: bool,
}

impl HeadlessGame {
    /// A recorder that does not print (tests).
    pub fn new() -> Self {
        Self::default()
    }

    #[allow(
        clippy::print_stdout,
        reason = "the headless client's printing mode writes one JSON line per call to stdout, its output by design"
    )]
    fn record(&mut self, call: GameCall) {
        if self.print {
            println!(
                "{}",
                serde_json::to_string(&call).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
            );
        }
        self.calls.push(call);
    }
}

impl Game for HeadlessGame {
    fn reload_scripts(&mut self, plugin: &str, dir: &Path) {
        self.record(GameCall::ReloadScripts {
            plugin: plugin.to_string(),
            dir: dir.to_path_buf(),
        });
    }
    fn load_resources(&mut self, request: &LoadResources) {
        self.record(GameCall::LoadResources(request.clone()));
    }
    fn rpc(&mut self, plugin_id: u16, plugin: &str, name: &str, json: &str) {
        self.record(GameCall::Rpc {
            plugin_id,
            plugin: plugin.to_string(),
            name: name.to_string(),
            json: json.to_string(),
        });
    }
    fn popup(&mut self, text: &str, duration: f64) {
        self.record(GameCall::Popup {
            text: text.to_string(),
            duration,
        });
    }
    fn teleport(&mut self, pos: [f32; 3], rot: f32, phase: u32) {
        self.record(GameCall::Teleport { pos, rot, phase });
    }
    fn weather(&mut self, id: u32) {
        self.record(GameCall::Weather { id });
    }
    fn spawn_entity(&mut self, spawn: &EntitySpawn) {
        self.record(GameCall::Spawn(spawn.clone()));
    }
    fn despawn_entity(&mut self, entity_id: u32) {
        self.record(GameCall::Despawn { entity_id });
    }
    fn notify(&mut self, event: &ClientEvent) {
        self.record(GameCall::Notify(event.clone()));
    }
}

/// The DLL's game: each call becomes one JSON object (`{"event": ...}`) in a
/// queue the game drains with `shard_client_poll_event` on its main thread,
/// because the C side cannot be called back from the network threads.
#[derive(Debug, Default)]
pub struct QueuedGame {
    queue: VecDeque<String>,
}

impl QueuedGame {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The oldest queued event, without removing it (so a caller whose buffer
    /// is too small does not lose it).
    pub fn peek(&self) -> Option<&str> {
        self.queue.front().map(String::as_str)
    }

    /// Removes and returns the oldest queued event.
    pub fn pop(&mut self) -> Option<String> {
        self.queue.pop_front()
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn push(&mut self, event: ClientEvent) {
        self.queue.push_back(event.to_json());
    }
}

impl Game for QueuedGame {
    fn reload_scripts(&mut self, plugin: &str, dir: &Path) {
        let mut dir = dir.to_string_lossy().into_owned();
        shard_protocol::clip_utf8(&mut dir, MAX_GAME_STRING);
        let json = serde_json::json!({
            "event": "reload_scripts",
            "plugin": plugin,
            "dir": dir,
        });
        self.queue.push_back(json.to_string());
    }
    fn load_resources(&mut self, request: &LoadResources) {
        self.queue.push_back(request.to_json());
    }
    fn rpc(&mut self, plugin_id: u16, plugin: &str, name: &str, json: &str) {
        self.push(ClientEvent::Rpc {
            plugin_id,
            plugin: plugin.to_string(),
            name: name.to_string(),
            json: json.to_string(),
        });
    }
    fn popup(&mut self, text: &str, duration: f64) {
        self.push(ClientEvent::Popup {
            text: text.to_string(),
            duration,
        });
    }
    fn teleport(&mut self, pos: [f32; 3], rot: f32, phase: u32) {
        self.push(ClientEvent::Teleport { pos, rot, phase });
    }
    fn weather(&mut self, id: u32) {
        self.push(ClientEvent::Weather { id });
    }
    fn spawn_entity(&mut self, s: &EntitySpawn) {
        self.push(ClientEvent::EntitySpawned {
            entity_id: s.entity_id,
            kind: s.kind,
            template: s.template.clone(),
            pos: s.pos,
            rot: s.rot,
            phase: s.phase,
        });
    }
    fn despawn_entity(&mut self, entity_id: u32) {
        self.push(ClientEvent::EntityDespawned { entity_id });
    }
    fn notify(&mut self, event: &ClientEvent) {
        self.push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reloads(g: &HeadlessGame) -> usize {
        g.calls
            .iter()
            .filter(|c| matches!(c, GameCall::ReloadScripts { .. }))
            .count()
    }

    #[test]
    fn reload_only_when_the_hash_changes() {
        let root = Path::new("runtime_cache");
        let mut t = ReloadTracker::with_interval(Duration::ZERO);
        let mut g = HeadlessGame::new();
        assert!(t.installed(root, "hexbar", [1; 32], &mut g));
        assert_eq!(
            g.calls[0],
            GameCall::ReloadScripts {
                plugin: "hexbar".into(),
                dir: root.join("plugins").join("hexbar"),
            }
        );
        // Same hash again: reinstall, rejoin, or an announcement burst.
        for _ in 0..10 {
            assert!(!t.installed(root, "hexbar", [1; 32], &mut g));
        }
        assert_eq!(reloads(&g), 1);
        // Another plugin is tracked separately.
        assert!(t.installed(root, "mobile_cc", [1; 32], &mut g));
        // A new hash reloads once; going back to the old one reloads again.
        assert!(t.installed(root, "hexbar", [2; 32], &mut g));
        assert!(!t.installed(root, "hexbar", [2; 32], &mut g));
        assert!(t.installed(root, "hexbar", [1; 32], &mut g));
        assert_eq!(reloads(&g), 4);
    }

    #[test]
    fn removal_forgets_the_hash() {
        let root = Path::new("rc");
        let mut t = ReloadTracker::with_interval(Duration::ZERO);
        let mut g = HeadlessGame::new();
        assert!(t.installed(root, "p", [7; 32], &mut g));
        t.removed("p");
        assert!(t.installed(root, "p", [7; 32], &mut g));
        assert_eq!(reloads(&g), 2);
    }

    #[test]
    fn bundle_installed_events_reload_once_per_hash() {
        let root = Path::new("rc");
        let mut t = ReloadTracker::with_interval(Duration::ZERO);
        let mut g = HeadlessGame::new();
        let installed = |sha: &str, changed: bool| ClientEvent::BundleInstalled {
            plugin_id: 3,
            name: "hexbar".into(),
            version: "1.0.0".into(),
            sha256: sha.into(),
            path: "rc/plugins/hexbar".into(),
            changed,
            rpcs: vec![],
            source: "server",
            mirror: None,
        };
        let a = "aa".repeat(32);
        let b = "bb".repeat(32);
        route_with_reloads(installed(&a, true), root, &mut t, &mut g);
        // A rejoin reports the same bundle as already installed: no reload.
        route_with_reloads(installed(&a, false), root, &mut t, &mut g);
        route_with_reloads(installed(&a, false), root, &mut t, &mut g);
        assert_eq!(reloads(&g), 1);
        route_with_reloads(installed(&b, true), root, &mut t, &mut g);
        assert_eq!(reloads(&g), 2);
        // Every event still reaches the game.
        assert_eq!(g.calls.len(), 6);
    }

    #[test]
    fn reloads_are_paced_and_the_latest_hash_wins() {
        let root = Path::new("rc");
        let mut t = ReloadTracker::with_interval(Duration::from_secs(5));
        let mut g = HeadlessGame::new();
        let t0 = Instant::now();
        assert!(t.installed_at(t0, root, "p", [1; 32], &mut g));
        // A storm of new hashes inside the interval: held back.
        for i in 2..20u8 {
            let at = t0 + Duration::from_millis(250 * u64::from(i));
            assert!(!t.installed_at(at, root, "p", [i; 32], &mut g));
        }
        assert_eq!(reloads(&g), 1);
        assert!(t.has_pending());
        assert!(!t.flush_at(t0 + Duration::from_millis(4999), root, &mut g));
        assert!(t.flush_at(t0 + Duration::from_secs(5), root, &mut g));
        assert_eq!(reloads(&g), 2);
        // The latest hash was the one reloaded: installing it again is a no-op.
        let later = t0 + Duration::from_secs(11);
        assert!(!t.installed_at(later, root, "p", [19; 32], &mut g));
        assert!(!t.has_pending());
        // Going back to what the game has cancels a held-back reload.
        let t1 = t0 + Duration::from_secs(12);
        assert!(t.installed_at(t1, root, "p", [40; 32], &mut g));
        assert!(!t.installed_at(t1, root, "p", [41; 32], &mut g));
        assert!(!t.installed_at(t1, root, "p", [40; 32], &mut g));
        assert!(!t.flush_at(t1 + Duration::from_secs(60), root, &mut g));
        assert_eq!(reloads(&g), 3);
    }

    #[test]
    fn route_maps_events_to_game_calls() {
        let mut g = HeadlessGame::new();
        route(ClientEvent::Weather { id: 4 }, &mut g);
        route(ClientEvent::EntityDespawned { entity_id: 9 }, &mut g);
        route(
            ClientEvent::Popup {
                text: "hi".into(),
                duration: 1.0,
            },
            &mut g,
        );
        route(
            ClientEvent::Kick {
                reason: "bye".into(),
            },
            &mut g,
        );
        assert_eq!(
            g.calls,
            vec![
                GameCall::Weather { id: 4 },
                GameCall::Despawn { entity_id: 9 },
                GameCall::Popup {
                    text: "hi".into(),
                    duration: 1.0
                },
                GameCall::Notify(ClientEvent::Kick {
                    reason: "bye".into()
                }),
            ]
        );
    }

    #[test]
    fn queued_game_keeps_event_json_and_adds_reloads() {
        let mut q = QueuedGame::new();
        route(ClientEvent::Weather { id: 4 }, &mut q);
        q.reload_scripts("hexbar", Path::new("rc/plugins/hexbar"));
        assert_eq!(q.len(), 2);
        assert_eq!(q.peek(), Some(r#"{"event":"weather","id":4}"#));
        assert_eq!(q.pop().as_deref(), Some(r#"{"event":"weather","id":4}"#));
        let v: serde_json::Value =
            serde_json::from_str(&q.pop().unwrap_or_default()).unwrap_or(serde_json::Value::Null);
        assert_eq!(v["event"], "reload_scripts");
        assert_eq!(v["plugin"], "hexbar");
        assert!(q.is_empty());
    }

    #[test]
    fn the_load_request_comes_before_bundles_settled_in_the_queue() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = plugin_dir(root.path(), "cc");
        std::fs::create_dir_all(dir.join("assets")).unwrap_or_default();
        std::fs::write(dir.join("assets/cc.archive"), b"x").unwrap_or_default();
        let mut t = ReloadTracker::new();
        let mut q = QueuedGame::new();
        let installed = ClientEvent::BundleInstalled {
            plugin_id: 1,
            name: "cc".into(),
            version: "1".into(),
            sha256: "aa".repeat(32),
            path: dir.display().to_string(),
            changed: true,
            rpcs: vec![],
            source: "server",
            mirror: None,
        };
        route_with_reloads(installed, root.path(), &mut t, &mut q);
        route_with_reloads(ClientEvent::BundlesSettled, root.path(), &mut t, &mut q);
        let kinds: Vec<String> = std::iter::from_fn(|| q.pop())
            .map(|j| {
                let v: serde_json::Value = serde_json::from_str(&j).unwrap_or_default();
                v["event"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                "bundle_installed",
                "reload_scripts",
                "load_resources",
                "bundles_settled"
            ]
        );
    }
}
