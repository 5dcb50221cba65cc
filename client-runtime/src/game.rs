//! The game boundary: the runtime hands the game one stream of
//! [`ClientEvent`]s, whether the "game" is the real one (through the C ABI's
//! event queue), the headless client or a test.
//!
//! [`Game`] takes each event; [`QueuedGame`] (the DLL's and the headless
//! client's) turns it into the JSON object the game polls through
//! `shard_client_poll_event`, and a `Vec<ClientEvent>` records them for
//! tests. [`ReloadTracker`] holds the reload policy: once per batch of
//! installs (a join, a server-side reload), at most one `load_resources`
//! request for archives, `.xl` and tweaks and at most one `reload_scripts`
//! request, each only when those files changed. Script reloads are paced (at
//! most one per interval, latest state wins) so a server re-announcing in a
//! loop cannot make the game recompile its scripts in a loop.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shard_protocol::limits::DEFAULT_RELOAD_INTERVAL_MS;

use crate::events::{ClientEvent, LoadResources, PluginResources, ReloadScripts, ScriptFolder};

/// Where the runtime's events go: the game (or what stands in for it) takes
/// each one in order, session events and the runtime's own requests
/// (`load_resources`, `reload_scripts`) alike.
pub trait Game {
    /// Takes the next event.
    fn handle(&mut self, event: ClientEvent);
}

/// Tests record the events as they are.
impl Game for Vec<ClientEvent> {
    fn handle(&mut self, event: ClientEvent) {
        self.push(event);
    }
}

/// Passes `event` to `game`, and bundle events also go through `tracker`: a
/// `BundleInstalled` with a new hash marks that plugin to look at,
/// `PluginRemoved` marks its scripts and content for unloading, and
/// `BundlesSettled` ends the batch with at most one `load_resources` request
/// and at most one `reload_scripts` request (in that order), made just before
/// the event itself is passed on. Script reloads are paced by the tracker:
/// call [`ReloadTracker::flush`] regularly too, so a reload held back goes
/// out once it is due.
pub fn route_with_reloads(
    event: ClientEvent,
    cache_root: &Path,
    tracker: &mut ReloadTracker,
    game: &mut dyn Game,
) {
    match &event {
        ClientEvent::BundleInstalled { name, sha256, .. } => {
            if let Some(hash) = shard_cache::parse_sha256_hex(sha256) {
                tracker.installed(name, hash);
            }
        }
        ClientEvent::PluginRemoved { name, .. } => tracker.removed(name),
        ClientEvent::Welcome { .. } => tracker.session_started(),
        // The requests go before `bundles_settled`, so the game can apply
        // the batch's content first and reload its scripts after it.
        ClientEvent::BundlesSettled => {
            tracker.settled(cache_root, game);
        }
        _ => {}
    }
    game.handle(event);
}

/// Decides when the game must reload scripts and load game content, once
/// per batch of installs (a join, a server-side reload), when the batch
/// ends (`BundlesSettled`).
///
/// Scripts: an install whose bundle hash is the one already seen for that
/// plugin is ignored (a reinstall, a rejoin, an announcement burst). For the
/// others, at the end of the batch the digest of the installed
/// `client/*.reds` is compared with the one the game last reloaded; one
/// `reload_scripts` request lists every plugin whose scripts differ, and
/// those whose scripts went away. A bundle without scripts, or whose scripts
/// did not change (a new asset, a Python-only change), asks for nothing.
///
/// Content: likewise one `load_resources` request lists every plugin whose
/// archives, `.xl` or tweaks differ from what the game has, and those of
/// removed plugins.
///
/// Script reloads are paced: after one request the next waits at least
/// `interval`; what changed meanwhile is coalesced and the latest state
/// wins ([`ReloadTracker::flush`] sends what is due, but never while a batch
/// is open: mid-batch the installed folders and the runtime's glue may be
/// half updated).
#[derive(Debug, Clone)]
pub struct ReloadTracker {
    /// Bundle hash last looked at, per plugin.
    seen: HashMap<String, [u8; 32]>,
    /// Plugins installed with a new hash in this batch.
    changed: BTreeSet<String>,
    /// Plugins removed in this batch.
    gone: BTreeSet<String>,
    /// Scripts digest the game last reloaded, per plugin that has scripts.
    reloaded: HashMap<String, [u8; 32]>,
    /// Script changes held back by the pacing: the digest to reload, or
    /// `None` for scripts to drop.
    pending: BTreeMap<String, Option<[u8; 32]>>,
    interval: Duration,
    last_request: Option<Instant>,
    /// An install or removal came since the last `BundlesSettled`.
    open: bool,
    /// Plugins the game had from an earlier session, until the first batch
    /// of this one ends: those this session did not install went away.
    carried: Option<BTreeSet<String>>,
    /// What the game was asked to load, with the digest of those files.
    loaded: HashMap<String, ([u8; 32], PluginResources)>,
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
            seen: HashMap::new(),
            changed: BTreeSet::new(),
            gone: BTreeSet::new(),
            reloaded: HashMap::new(),
            pending: BTreeMap::new(),
            carried: None,
            interval,
            last_request: None,
            open: false,
            loaded: HashMap::new(),
        }
    }

    /// Records that `hash` is now installed for `plugin`; if it is not the
    /// hash last seen, the plugin's scripts and content are looked at when
    /// the batch ends ([`ReloadTracker::settled`]).
    pub fn installed(&mut self, plugin: &str, hash: [u8; 32]) {
        self.open = true;
        if self.seen.get(plugin) != Some(&hash) {
            self.seen.insert(plugin.to_string(), hash);
            self.changed.insert(plugin.to_string());
            self.gone.remove(plugin);
        }
    }

    /// Forgets a removed plugin, so installing it again later is looked at,
    /// and marks its scripts and content for unloading at the end of the batch.
    pub fn removed(&mut self, plugin: &str) {
        self.open = true;
        self.seen.remove(plugin);
        self.changed.remove(plugin);
        self.gone.insert(plugin.to_string());
    }

    /// A new session began (`Welcome`): what the game has from the last
    /// one stays until this session's first batch ends, and then whatever
    /// this session did not install is unloaded as if removed (a plugin the
    /// server dropped while the player was away, or one refused this time).
    pub fn session_started(&mut self) {
        let mut carried: BTreeSet<String> = self.reloaded.keys().cloned().collect();
        carried.extend(self.loaded.keys().cloned());
        carried.extend(self.pending.keys().cloned());
        // Installs from the cache are looked at again; unchanged ones ask for nothing.
        self.seen.clear();
        self.carried = Some(carried);
    }

    /// Ends a batch: asks `game` once to load what content changed and
    /// unload what went, then once to reload scripts if any changed (unless
    /// the pacing holds it back); returns whether it asked anything now.
    pub fn settled(&mut self, cache_root: &Path, game: &mut dyn Game) -> bool {
        self.settled_at(Instant::now(), cache_root, game)
    }

    /// [`ReloadTracker::settled`] at a given time (tests drive the clock).
    pub fn settled_at(&mut self, now: Instant, cache_root: &Path, game: &mut dyn Game) -> bool {
        self.open = false;
        if let Some(carried) = self.carried.take() {
            for plugin in carried {
                if !self.seen.contains_key(&plugin) {
                    self.changed.remove(&plugin);
                    self.gone.insert(plugin);
                }
            }
        }
        let changed = std::mem::take(&mut self.changed);
        let gone = std::mem::take(&mut self.gone);
        for plugin in &changed {
            let dir = plugin_dir(cache_root, plugin);
            match shard_cache::client_scripts_digest(&dir) {
                Ok(digest) => self.scripts_now(plugin, digest),
                Err(e) => {
                    tracing::warn!(plugin = %plugin, error = %e, "cannot read the plugin's client scripts");
                }
            }
        }
        for plugin in &gone {
            self.scripts_now(plugin, None);
        }
        let loaded = self.load_resources(cache_root, &changed, &gone, game);
        let reloaded = self.flush_at(now, cache_root, game);
        loaded || reloaded
    }

    /// Notes the scripts `plugin` has now (`None`: none): a reload is due
    /// unless that is what the game has.
    fn scripts_now(&mut self, plugin: &str, digest: Option<[u8; 32]>) {
        if self.reloaded.get(plugin).copied() == digest {
            // Back to (or still) what the game has: nothing to reload.
            self.pending.remove(plugin);
        } else {
            self.pending.insert(plugin.to_string(), digest);
        }
    }

    /// One `load_resources` request for the batch, if any content changed.
    fn load_resources(
        &mut self,
        cache_root: &Path,
        changed: &BTreeSet<String>,
        gone: &BTreeSet<String>,
        game: &mut dyn Game,
    ) -> bool {
        let mut request = LoadResources::default();
        for plugin in changed {
            let dir = plugin_dir(cache_root, plugin);
            let found = match shard_cache::game_resources(&dir) {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(plugin = %plugin, error = %e, "cannot list the plugin's game content");
                    continue;
                }
            };
            if found.is_empty() {
                if let Some((_, was)) = self.loaded.remove(plugin) {
                    request.unload.push(was);
                }
                continue;
            }
            if self
                .loaded
                .get(plugin)
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
            self.loaded
                .insert(plugin.clone(), (found.digest, res.clone()));
            request.load.push(res);
        }
        for plugin in gone {
            if let Some((_, was)) = self.loaded.remove(plugin) {
                request.unload.push(was);
            }
        }
        if request.load.is_empty() && request.unload.is_empty() {
            return false;
        }
        game.handle(ClientEvent::LoadResources(request));
        true
    }

    /// Asks `game` for the script reload held back by the pacing, if it is
    /// due and no batch is open; returns whether it did.
    pub fn flush(&mut self, cache_root: &Path, game: &mut dyn Game) -> bool {
        self.flush_at(Instant::now(), cache_root, game)
    }

    /// [`ReloadTracker::flush`] at a given time.
    pub fn flush_at(&mut self, now: Instant, cache_root: &Path, game: &mut dyn Game) -> bool {
        if self.pending.is_empty() || self.open {
            return false;
        }
        if let Some(t) = self.last_request
            && now < t + self.interval
        {
            return false;
        }
        let mut request = ReloadScripts::default();
        for (plugin, digest) in std::mem::take(&mut self.pending) {
            match digest {
                Some(d) => {
                    request.plugins.push(ScriptFolder {
                        dir: plugin_dir(cache_root, &plugin),
                        plugin: plugin.clone(),
                    });
                    self.reloaded.insert(plugin, d);
                }
                None => {
                    self.reloaded.remove(&plugin);
                    request.removed.push(plugin);
                }
            }
        }
        game.handle(ClientEvent::ReloadScripts(request));
        self.last_request = Some(now);
        true
    }

    /// Whether a script reload is held back, waiting for the pacing.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// Where an installed plugin's scripts live: `<cache_root>/plugins/<name>/`.
pub fn plugin_dir(cache_root: &Path, plugin: &str) -> PathBuf {
    cache_root.join(shard_cache::PLUGINS_DIR).join(plugin)
}

/// The DLL's game: each event becomes one JSON object (`{"event": ...}`) in
/// a queue the game drains with `shard_client_poll_event` on its main
/// thread, because the C side cannot be called back from the network threads.
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
}

impl Game for QueuedGame {
    fn handle(&mut self, event: ClientEvent) {
        self.queue.push_back(event.to_json());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Recorded = Vec<ClientEvent>;

    fn reloads(g: &Recorded) -> Vec<ReloadScripts> {
        g.iter()
            .filter_map(|c| match c {
                ClientEvent::ReloadScripts(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// A cache root with plugin folders written by the tests.
    struct Root(tempfile::TempDir);

    impl Root {
        fn new() -> Self {
            Self(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")))
        }
        fn path(&self) -> &Path {
            self.0.path()
        }
        /// Writes `rel` of plugin `plugin` (creating folders).
        fn write(&self, plugin: &str, rel: &str, text: &str) {
            let path = plugin_dir(self.path(), plugin).join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    fn folder(root: &Root, plugin: &str) -> ScriptFolder {
        ScriptFolder {
            plugin: plugin.into(),
            dir: plugin_dir(root.path(), plugin),
        }
    }

    #[test]
    fn a_batch_of_installs_makes_one_reload_after_it_settles() {
        let root = Root::new();
        root.write("a", "client/a.reds", "func AInit() -> Void {}");
        root.write("b", "client/b.reds", "func BInit() -> Void {}");
        root.write("c", "assets/readme.json", "{}");
        let mut t = ReloadTracker::with_interval(Duration::ZERO);
        let mut g = Recorded::new();
        for (p, h) in [("a", 1), ("b", 2), ("c", 3)] {
            t.installed(p, [h; 32]);
            // Nothing before the batch ends.
            assert!(reloads(&g).is_empty());
        }
        assert!(t.settled(root.path(), &mut g));
        assert_eq!(
            reloads(&g),
            vec![ReloadScripts {
                plugins: vec![folder(&root, "a"), folder(&root, "b")],
                removed: vec![],
            }]
        );
        // The same hashes again (a rejoin, an announcement burst): nothing.
        for (p, h) in [("a", 1), ("b", 2), ("c", 3)] {
            t.installed(p, [h; 32]);
        }
        assert!(!t.settled(root.path(), &mut g));
        assert_eq!(reloads(&g).len(), 1);
    }

    #[test]
    fn a_rejoin_unloads_what_the_server_dropped_while_the_player_was_away() {
        let root = Root::new();
        root.write("a", "client/a.reds", "func AInit() -> Void {}");
        root.write("b", "client/b.reds", "func BInit() -> Void {}");
        let mut t = ReloadTracker::with_interval(Duration::ZERO);
        let mut g = Recorded::new();
        t.session_started();
        t.installed("a", [1; 32]);
        t.installed("b", [2; 32]);
        t.settled(root.path(), &mut g);
        assert_eq!(reloads(&g).len(), 1);
        // Next session: the server no longer has `b`, so it is never
        // announced or removed; `a` comes again from the cache, unchanged.
        t.session_started();
        t.installed("a", [1; 32]);
        assert!(t.settled(root.path(), &mut g));
        assert_eq!(
            reloads(&g)[1],
            ReloadScripts {
                plugins: vec![],
                removed: vec!["b".into()],
            }
        );
        // A third session with the same `a`: nothing to do.
        t.session_started();
        t.installed("a", [1; 32]);
        assert!(!t.settled(root.path(), &mut g));
        assert_eq!(reloads(&g).len(), 2, "{g:?}");
    }

    #[test]
    fn no_reload_for_a_bundle_without_scripts_or_with_the_same_scripts() {
        let root = Root::new();
        root.write("c", "assets/data.json", "{}");
        let mut t = ReloadTracker::with_interval(Duration::ZERO);
        let mut g = Recorded::new();
        t.installed("c", [3; 32]);
        t.settled(root.path(), &mut g);
        assert!(reloads(&g).is_empty(), "{g:?}");

        root.write("a", "client/a.reds", "func AInit() -> Void {}");
        t.installed("a", [1; 32]);
        t.settled(root.path(), &mut g);
        assert_eq!(reloads(&g).len(), 1);
        // A new bundle hash (an asset changed) with the same scripts: nothing.
        root.write("a", "assets/data.json", "{\"v\": 2}");
        t.installed("a", [2; 32]);
        t.settled(root.path(), &mut g);
        assert_eq!(reloads(&g).len(), 1, "{g:?}");
        // The scripts change: one reload.
        root.write("a", "client/a.reds", "func AInit() -> Void { }");
        t.installed("a", [4; 32]);
        t.settled(root.path(), &mut g);
        assert_eq!(reloads(&g).len(), 2);
        // A new version drops its scripts: one reload saying so.
        std::fs::remove_dir_all(plugin_dir(root.path(), "a").join("client"))
            .unwrap_or_else(|e| panic!("{e}"));
        t.installed("a", [5; 32]);
        t.settled(root.path(), &mut g);
        assert_eq!(
            reloads(&g)[2],
            ReloadScripts {
                plugins: vec![],
                removed: vec!["a".into()],
            }
        );
    }

    #[test]
    fn removal_drops_the_scripts_and_a_later_install_reloads_again() {
        let root = Root::new();
        root.write("p", "client/p.reds", "func PInit() -> Void {}");
        let mut t = ReloadTracker::with_interval(Duration::ZERO);
        let mut g = Recorded::new();
        t.installed("p", [7; 32]);
        t.settled(root.path(), &mut g);
        t.removed("p");
        t.settled(root.path(), &mut g);
        t.installed("p", [7; 32]);
        t.settled(root.path(), &mut g);
        let r = reloads(&g);
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].removed, ["p"]);
        assert_eq!(r[2].plugins, [folder(&root, "p")]);
        // Removed and installed again within one batch: the game has it already.
        t.removed("p");
        t.installed("p", [7; 32]);
        t.settled(root.path(), &mut g);
        assert_eq!(reloads(&g).len(), 3);
    }

    #[test]
    fn bundle_installed_events_reload_once_per_batch() {
        let root = Root::new();
        root.write("hexbar", "client/h.reds", "func HInit() -> Void {}");
        let mut t = ReloadTracker::with_interval(Duration::ZERO);
        let mut g = Recorded::new();
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
        route_with_reloads(installed(&a, true), root.path(), &mut t, &mut g);
        // A rejoin reports the same bundle as already installed.
        route_with_reloads(installed(&a, false), root.path(), &mut t, &mut g);
        assert!(reloads(&g).is_empty());
        route_with_reloads(ClientEvent::BundlesSettled, root.path(), &mut t, &mut g);
        assert_eq!(reloads(&g).len(), 1);
        route_with_reloads(installed(&a, false), root.path(), &mut t, &mut g);
        route_with_reloads(ClientEvent::BundlesSettled, root.path(), &mut t, &mut g);
        assert_eq!(reloads(&g).len(), 1);
        root.write("hexbar", "client/h.reds", "func HInit() -> Void { }");
        route_with_reloads(installed(&b, true), root.path(), &mut t, &mut g);
        route_with_reloads(ClientEvent::BundlesSettled, root.path(), &mut t, &mut g);
        assert_eq!(reloads(&g).len(), 2);
        // Every event still reaches the game: 7 events and 2 reloads.
        assert_eq!(g.len(), 9);
    }

    #[test]
    fn reloads_are_paced_and_the_latest_state_wins() {
        let root = Root::new();
        let mut t = ReloadTracker::with_interval(Duration::from_secs(5));
        let mut g = Recorded::new();
        let t0 = Instant::now();
        let batch = |t: &mut ReloadTracker, g: &mut Recorded, at: Instant, i: u8| {
            root.write(
                "p",
                "client/p.reds",
                &format!("// {i}\nfunc PInit() -> Void {{}}"),
            );
            t.installed("p", [i; 32]);
            t.settled_at(at, root.path(), g)
        };
        assert!(batch(&mut t, &mut g, t0, 1));
        // A storm of new versions inside the interval: held back.
        for i in 2..20u8 {
            let at = t0 + Duration::from_millis(250 * u64::from(i));
            assert!(!batch(&mut t, &mut g, at, i));
        }
        assert_eq!(reloads(&g).len(), 1);
        assert!(t.has_pending());
        assert!(!t.flush_at(t0 + Duration::from_millis(4999), root.path(), &mut g));
        assert!(t.flush_at(t0 + Duration::from_secs(5), root.path(), &mut g));
        assert_eq!(reloads(&g).len(), 2);
        assert!(!t.has_pending());
        // Going back to what the game has cancels a held-back reload.
        let t1 = t0 + Duration::from_secs(12);
        assert!(batch(&mut t, &mut g, t1, 40));
        assert!(!batch(&mut t, &mut g, t1, 41));
        assert!(t.has_pending());
        assert!(!batch(&mut t, &mut g, t1, 40));
        assert!(!t.has_pending());
        assert!(!t.flush_at(t1 + Duration::from_secs(60), root.path(), &mut g));
        assert_eq!(reloads(&g).len(), 3);
    }

    #[test]
    fn a_held_back_reload_waits_for_the_open_batch_to_settle() {
        let root = Root::new();
        root.write("p", "client/p.reds", "func PInit() -> Void {}");
        root.write("q", "client/q.reds", "func QInit() -> Void {}");
        let mut t = ReloadTracker::with_interval(Duration::from_secs(5));
        let mut g = Recorded::new();
        let t0 = Instant::now();
        t.installed("p", [1; 32]);
        assert!(t.settled_at(t0, root.path(), &mut g));
        root.write("p", "client/p.reds", "func PInit() -> Void { }");
        t.installed("p", [2; 32]);
        assert!(!t.settled_at(t0 + Duration::from_secs(1), root.path(), &mut g));
        assert!(t.has_pending());
        // Due, but a new batch (a rejoin rewriting the glue) is open: held.
        t.installed("p", [2; 32]);
        assert!(!t.flush_at(t0 + Duration::from_secs(6), root.path(), &mut g));
        t.installed("q", [3; 32]);
        // The batch settles: one reload with everything.
        assert!(t.settled_at(t0 + Duration::from_secs(7), root.path(), &mut g));
        let r = reloads(&g);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].plugins, [folder(&root, "p"), folder(&root, "q")]);
    }

    #[test]
    fn queued_game_keeps_event_json_and_adds_reloads() {
        let mut q = QueuedGame::new();
        q.handle(ClientEvent::Weather { id: 4 });
        q.handle(ClientEvent::ReloadScripts(ReloadScripts {
            plugins: vec![ScriptFolder {
                plugin: "hexbar".into(),
                dir: "rc/plugins/hexbar".into(),
            }],
            removed: vec!["old".into()],
        }));
        q.handle(ClientEvent::LoadResources(LoadResources::default()));
        assert_eq!(q.len(), 3);
        assert_eq!(q.peek(), Some(r#"{"event":"weather","id":4}"#));
        assert_eq!(q.pop().as_deref(), Some(r#"{"event":"weather","id":4}"#));
        assert_eq!(
            q.pop().as_deref(),
            Some(
                r#"{"event":"reload_scripts","plugins":[{"plugin":"hexbar","dir":"rc/plugins/hexbar"}],"removed":["old"]}"#
            )
        );
        assert_eq!(
            q.pop().as_deref(),
            Some(r#"{"event":"load_resources","load":[],"unload":[]}"#)
        );
        assert!(q.is_empty());
    }

    #[test]
    fn the_requests_come_before_bundles_settled_in_the_queue() {
        let root = Root::new();
        root.write("cc", "assets/cc.archive", "x");
        root.write("cc", "client/cc.reds", "func CcInit() -> Void {}");
        let dir = plugin_dir(root.path(), "cc");
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
                "load_resources",
                "reload_scripts",
                "bundles_settled"
            ]
        );
    }
}
