//! Dispatch cost of the plugin host: time per listener call for `OnTick` and
//! for a dict event through `PluginHost`, against a bare CPython loop calling
//! an identical function, measured in the same run. Prints figures and ratios.

use std::time::Instant;

use shard_protocol::{EntityKind, Vec3};
use shard_server::plugin::{Event, EventKind, GameWorld, HostConfig, PluginHost, PluginOwner};

/// A world that does nothing, so only dispatch is measured.
struct NullWorld;

impl GameWorld for NullWorld {
    fn peer_exists(&self, _: u32) -> bool {
        true
    }
    fn peer_name(&self, _: u32) -> Option<String> {
        None
    }
    fn peer_is_admin(&self, _: u32) -> bool {
        false
    }
    fn peer_positions(&self) -> Vec<(u32, Vec3)> {
        Vec::new()
    }
    fn spawn_entity(
        &mut self,
        _: EntityKind,
        _: &str,
        _: Vec3,
        _: f32,
        _: u32,
        _: PluginOwner,
    ) -> u32 {
        0
    }
    fn entity_position(&self, _: u32) -> Option<(Vec3, u32)> {
        None
    }
    fn despawn(&mut self, _: u32) -> bool {
        false
    }
    fn teleport_peer(&mut self, _: u32, _: Vec3, _: f32, _: Option<u32>) {}
    fn set_weather(&mut self, _: u32) {}
    fn send_chat(&mut self, _: u32, _: &str) {}
    fn broadcast(&mut self, _: &str) {}
    fn send_rpc(&mut self, _: u32, _: u16, _: u32, _: String) {}
    fn notify_admins(&mut self, _: &str) {}
}

const N: u32 = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::write(
        plugins.join("bench.py"),
        "__plugin__ = {'name': 'bench', 'version': '1'}\n\
@game.on('OnTick')\ndef t(dt):\n    pass\n\
@game.on('OnPeerJoin')\ndef j(ev):\n    pass\n",
    )?;
    let mut host = PluginHost::new(HostConfig::new(&plugins, tmp.path().join("logs")))?;
    let mut world = NullWorld;
    host.load_all(&mut world);

    let start = Instant::now();
    for _ in 0..N {
        host.fire_tick(&mut world, 1.0 / 30.0);
    }
    let tick_ns = start.elapsed().as_nanos() as f64 / f64::from(N);

    let data = serde_json::json!({"peer": 1, "name": "bench"});
    let start = Instant::now();
    for _ in 0..N {
        host.fire_event(
            &mut world,
            Event {
                kind: EventKind::PeerJoin,
                data: data.clone(),
            },
        );
    }
    let event_ns = start.elapsed().as_nanos() as f64 / f64::from(N);

    let code = format!(
        "import time\n\
def t(dt):\n    pass\n\
def j(ev):\n    pass\n\
s = time.perf_counter_ns()\n\
for _ in range({N}):\n    t(1.0 / 30.0)\n\
a = (time.perf_counter_ns() - s) / {N}\n\
s = time.perf_counter_ns()\n\
for _ in range({N}):\n    j({{'peer': 1, 'name': 'bench'}})\n\
b = (time.perf_counter_ns() - s) / {N}\n\
print(a, b)\n"
    );
    let out = host.console(&mut world, &code);
    let mut it = out.split_whitespace().map(str::parse::<f64>);
    let (Some(Ok(py_tick)), Some(Ok(py_event))) = (it.next(), it.next()) else {
        return Err(format!("unexpected console output: {out}").into());
    };
    println!("calls per case: {N}");
    println!(
        "OnTick     host dispatch {tick_ns:9.0} ns/call | bare CPython {py_tick:7.0} ns/call | ratio {:6.1}x",
        tick_ns / py_tick
    );
    println!(
        "OnPeerJoin host dispatch {event_ns:9.0} ns/call | bare CPython {py_event:7.0} ns/call | ratio {:6.1}x",
        event_ns / py_event
    );
    host.shutdown(&mut world);
    Ok(())
}
