//! Shared fixtures for the plugin host and confinement tests: a real host
//! running real worker processes (CPython inside), over an in-memory
//! `GameWorld` double that records calls.
#![allow(dead_code, reason = "each test crate uses only some of these helpers")]
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shard_protocol::{EntityKind, Vec3};
use shard_server::plugin::{GameWorld, HostConfig, PluginHost, PluginOwner, PluginState};

/// In-memory world recording every call plugins make.
#[derive(Default)]
pub(crate) struct TestWorld {
    pub peers: BTreeMap<u32, Vec3>,
    pub entities: BTreeMap<u32, (EntityKind, String, Vec3, u32, String)>,
    pub next_entity: u32,
    pub rpcs: Vec<(u32, u16, u32, String)>,
    pub chats: Vec<(u32, String)>,
    pub broadcasts: Vec<String>,
    pub admin_notes: Vec<String>,
    /// Peers whose queue is "full" (plugin messages refused).
    pub full_peers: Vec<u32>,
}

impl GameWorld for TestWorld {
    fn peer_exists(&self, peer: u32) -> bool {
        self.peers.contains_key(&peer)
    }
    fn peer_name(&self, peer: u32) -> Option<String> {
        self.peers
            .contains_key(&peer)
            .then(|| format!("peer{peer}"))
    }
    fn peer_is_admin(&self, _peer: u32) -> bool {
        false
    }
    fn peer_positions(&self) -> Vec<(u32, Vec3)> {
        self.peers.iter().map(|(p, v)| (*p, *v)).collect()
    }
    fn spawn_entity(
        &mut self,
        kind: EntityKind,
        template: &str,
        pos: Vec3,
        _rot: f32,
        phase: u32,
        owner: PluginOwner,
    ) -> u32 {
        self.next_entity += 1;
        self.entities.insert(
            self.next_entity,
            (kind, template.into(), pos, phase, owner.name),
        );
        self.next_entity
    }
    fn entity_position(&self, id: u32) -> Option<(Vec3, u32)> {
        self.entities.get(&id).map(|e| (e.2, e.3))
    }
    fn despawn(&mut self, id: u32) -> bool {
        self.entities.remove(&id).is_some()
    }
    fn teleport_peer(&mut self, peer: u32, pos: Vec3, _rot: f32, _phase: Option<u32>) {
        self.peers.insert(peer, pos);
    }
    fn set_weather(&mut self, _id: u32) {}
    fn send_chat(&mut self, peer: u32, text: &str) {
        self.chats.push((peer, text.into()));
    }
    fn broadcast(&mut self, text: &str) {
        self.broadcasts.push(text.into());
    }
    fn send_rpc(&mut self, peer: u32, plugin_id: u16, fn_hash: u32, json: String) {
        self.rpcs.push((peer, plugin_id, fn_hash, json));
    }
    fn notify_admins(&mut self, text: &str) {
        self.admin_notes.push(text.into());
    }
    fn peer_accepts_plugin_message(&self, peer: u32) -> bool {
        !self.full_peers.contains(&peer)
    }
}

pub(crate) struct Fixture {
    pub _tmp: tempfile::TempDir,
    pub plugins: PathBuf,
    pub logs: PathBuf,
    pub host: PluginHost,
    pub world: TestWorld,
}

pub(crate) fn v(x: f32, y: f32, z: f32) -> Vec3 {
    Vec3 { x, y, z }
}

/// A host config that runs workers from this package's `shard-server` binary.
pub(crate) fn host_config(plugins: &std::path::Path, logs: &std::path::Path) -> HostConfig {
    let mut cfg = HostConfig::new(plugins, logs);
    // Generous budgets: these tests check behaviour on a busy machine; the
    // tests about budgets and deadlines set their own.
    cfg.cpu_budget = Duration::from_millis(500);
    cfg.kill_after = Duration::from_secs(1);
    cfg.worker_exe = Some(PathBuf::from(env!("CARGO_BIN_EXE_shard-server")));
    cfg
}

pub(crate) fn fixture(files: &[(&str, &str)]) -> Fixture {
    fixture_with(files, |_| {})
}

/// A fixture whose host config `tune` may change first.
pub(crate) fn fixture_with(files: &[(&str, &str)], tune: impl FnOnce(&mut HostConfig)) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plugins = tmp.path().join("plugins");
    let logs = tmp.path().join("logs/plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    for (name, src) in files {
        std::fs::write(plugins.join(name), src).expect("write plugin");
    }
    let mut cfg = host_config(&plugins, &logs);
    tune(&mut cfg);
    let host = PluginHost::new(cfg).expect("host");
    let mut f = Fixture {
        _tmp: tmp,
        plugins,
        logs,
        host,
        world: TestWorld::default(),
    };
    f.host.load_all(&mut f.world);
    f
}

impl Fixture {
    pub(crate) fn tick(&mut self) {
        self.host.tick(&mut self.world, 1.0 / 30.0, &[]);
    }
    pub(crate) fn state(&self, name: &str) -> Option<PluginState> {
        self.host
            .plugins()
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.state)
    }
    /// Info about plugin `name`.
    pub(crate) fn info(&self, name: &str) -> shard_server::plugin::PluginInfo {
        self.host
            .plugins()
            .into_iter()
            .find(|p| p.name == name)
            .expect("plugin known")
    }
    /// The plugin's log text ("" if none yet).
    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }
    /// Polls for file changes and ticks until `done` holds or `limit` passes; returns the latency.
    pub(crate) fn poll_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&TestWorld) -> bool,
    ) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            self.host.poll_changes(&mut self.world);
            self.tick();
            if done(&self.world) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}
