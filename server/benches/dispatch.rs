//! Costs of the plugin worker boundary, each printed beside its reference
//! from issue #12 in one run (figures, not assertions):
//!
//! - the guarded call inside the worker vs a bare CPython call loop (≤ 1.5×);
//! - the channel's cost per plugin per tick with one `OnTick` listener (≤ 20 µs);
//! - a `spawn_npc` round trip (≤ 20 µs);
//! - `popup_zone` with 256 peers: the server-side cost per tick;
//! - idle worker RSS (≤ 30 MB);
//! - save to live, p50 (≤ 250 ms);
//! - from a hung plugin to the tick running again (≤ budget plus grace).
//!
//! Run: `cargo bench -p shard-server --bench dispatch`.
#![allow(clippy::print_stdout, reason = "a benchmark: it prints its figures")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shard_protocol::{EntityKind, Vec3};
use shard_server::plugin::{GameWorld, HostConfig, PluginHost, PluginOwner};

/// A world with `peers` peers standing still, recording only counts.
#[derive(Default)]
struct BenchWorld {
    peers: Vec<(u32, Vec3)>,
    next: u32,
    broadcasts: Vec<String>,
    rpcs: usize,
}

impl GameWorld for BenchWorld {
    fn peer_exists(&self, p: u32) -> bool {
        self.peers.iter().any(|(id, _)| *id == p)
    }
    fn peer_name(&self, _: u32) -> Option<String> {
        None
    }
    fn peer_is_admin(&self, _: u32) -> bool {
        false
    }
    fn peer_positions(&self) -> Vec<(u32, Vec3)> {
        self.peers.clone()
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
        self.next += 1;
        self.next
    }
    fn entity_position(&self, _: u32) -> Option<(Vec3, u32)> {
        None
    }
    fn despawn(&mut self, _: u32) -> bool {
        true
    }
    fn teleport_peer(&mut self, _: u32, _: Vec3, _: f32, _: Option<u32>) {}
    fn set_weather(&mut self, _: u32) {}
    fn send_chat(&mut self, _: u32, _: &str) {}
    fn broadcast(&mut self, text: &str) {
        self.broadcasts.push(text.to_string());
    }
    fn send_rpc(&mut self, _: u32, _: u16, _: u32, _: String) {
        self.rpcs += 1;
    }
    fn notify_admins(&mut self, _: &str) {}
}

struct Bench {
    _tmp: tempfile::TempDir,
    plugins: PathBuf,
    host: PluginHost,
    world: BenchWorld,
}

fn bench(
    files: &[(&str, &str)],
    tune: impl FnOnce(&mut HostConfig),
) -> Result<Bench, Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    for (name, src) in files {
        std::fs::write(plugins.join(name), src)?;
    }
    let mut cfg = HostConfig::new(&plugins, tmp.path().join("logs"));
    cfg.worker_exe = Some(PathBuf::from(env!("CARGO_BIN_EXE_shard-server")));
    tune(&mut cfg);
    let mut host = PluginHost::new(cfg)?;
    let mut world = BenchWorld::default();
    host.load_all(&mut world);
    Ok(Bench {
        _tmp: tmp,
        plugins,
        host,
        world,
    })
}

fn percentile(v: &mut [Duration], percent: usize) -> Duration {
    v.sort();
    v.get(shard_server::sim::quantile_index(v.len(), percent))
        .copied()
        .unwrap_or_default()
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn write(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("plugin worker boundary (issue #12 targets in brackets)");

    // 1. The guarded delivery inside a worker vs a bare CPython loop.
    let (listener, delivery, bare) = shard_server::plugin::worker::measure_guarded_call(200_000)?;
    println!(
        "guarded call: {:.0} ns per listener in a delivery vs bare CPython loop {:.0} ns/call = {:.2}x [<= 1.5x]; \
         one delivery of one OnTick listener {:.0} ns ({:.0} ns fixed per delivery)",
        listener.as_secs_f64() * 1e9,
        bare.as_secs_f64() * 1e9,
        listener.as_secs_f64() / bare.as_secs_f64().max(1e-12),
        delivery.as_secs_f64() * 1e9,
        (delivery.saturating_sub(bare)).as_secs_f64() * 1e9,
    );

    // 2. Channel cost per plugin per tick with one OnTick listener.
    let mut b = bench(
        &[(
            "tick.py",
            "__plugin__ = {'name': 'tick', 'version': '1'}\n@game.on('OnTick')\ndef t(dt):\n    pass\n",
        )],
        |_| {},
    )?;
    for _ in 0..1_000 {
        b.host.tick(&mut b.world, 1.0 / 30.0, &[]);
    }
    let mut samples = Vec::new();
    for _ in 0..20_000 {
        let t = Instant::now();
        b.host.tick(&mut b.world, 1.0 / 30.0, &[]);
        samples.push(t.elapsed());
    }
    let p50 = percentile(&mut samples, 50);
    let p99 = percentile(&mut samples, 99);
    println!(
        "one plugin, one OnTick listener: {:.1} us/tick p50, {:.1} us p99 (channel round trip + guarded call) [<= 20 us]",
        us(p50),
        us(p99)
    );
    let idle_pid = b.host.plugins()[0].worker_pid.unwrap_or(0);
    println!(
        "idle worker RSS: {:.1} MiB (server process {:.1} MiB) [<= 30 MB]",
        rss_mib(idle_pid),
        rss_mib(std::process::id())
    );
    drop(b);

    // 3. spawn_npc round trip, timed inside the plugin around 60 calls per tick.
    let mut b = bench(
        &[(
            "spawner.py",
            "__plugin__ = {'name': 'spawner', 'version': '1'}\nimport time\n\
@game.on('OnTick')\ndef t(dt):\n    t0 = time.perf_counter_ns()\n    for _ in range(60):\n        game.spawn_npc('npc', (1.0, 2.0, 3.0))\n    \
game.state['ns'] = game.state.get('ns', 0) + time.perf_counter_ns() - t0\n    game.state['n'] = game.state.get('n', 0) + 60\n\
@game.register_command('report', 'report')\ndef r(peer, args):\n    game.broadcast('%d %d' % (game.state['ns'], game.state['n']))\n",
        )],
        |_| {},
    )?;
    for _ in 0..300 {
        b.host.tick(&mut b.world, 1.0 / 30.0, &[]);
    }
    let _ = b.host.run_command(&mut b.world, 0, false, "report", "");
    if let Some(line) = b.world.broadcasts.last() {
        let mut it = line.split(' ').filter_map(|x| x.parse::<f64>().ok());
        if let (Some(ns), Some(n)) = (it.next(), it.next()) {
            println!("spawn_npc round trip: {:.1} us [<= 20 us]", ns / n / 1000.0);
        }
    }
    drop(b);

    // 4. popup_zone with 256 peers.
    let popup = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/popup_zone.py"
    ))?;
    let mut b = bench(&[("popup_zone.py", &popup)], |_| {})?;
    b.world.peers = (1..=256)
        .map(|i| {
            (
                i,
                Vec3 {
                    x: 100.0 + i as f32,
                    y: 456.0,
                    z: 0.0,
                },
            )
        })
        .collect();
    let mut samples = Vec::new();
    for i in 0..3_000 {
        // Every 30th tick one peer steps into the zone (one popup).
        if i % 30 == 0 {
            let k = (i / 30) % 256;
            for (n, (_, pos)) in b.world.peers.iter_mut().enumerate() {
                pos.x = if n == k { 123.0 } else { 100.0 + n as f32 };
            }
        }
        let t = Instant::now();
        b.host.tick(&mut b.world, 1.0 / 30.0, &[]);
        samples.push(t.elapsed());
    }
    println!(
        "popup_zone, 256 peers: {:.1} us/tick p50, {:.1} us p99 server-side ({} popups sent)",
        us(percentile(&mut samples, 50)),
        us(percentile(&mut samples, 99)),
        b.world.rpcs
    );
    drop(b);

    // 5. Save to live.
    let v = |n: u32| {
        format!(
            "__plugin__ = {{'name': 'live', 'version': '{n}'}}\n@game.on('OnTick')\ndef t(dt):\n    game.broadcast('v{n}')\n"
        )
    };
    let mut b = bench(&[("live.py", &v(0))], |_| {})?;
    let mut samples = Vec::new();
    for n in 1..=15 {
        std::thread::sleep(Duration::from_millis(150));
        let want = format!("v{n}");
        let t = Instant::now();
        write(&b.plugins.join("live.py"), &v(n));
        while t.elapsed() < Duration::from_secs(5) {
            b.host.poll_changes(&mut b.world);
            b.host.tick(&mut b.world, 1.0 / 30.0, &[]);
            if b.world.broadcasts.last() == Some(&want) {
                samples.push(t.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(1000 / 30));
        }
    }
    println!(
        "save to live: p50 {:.0} ms, max {:.0} ms over {} saves (30 Hz ticks, 100 ms debounce) [p50 <= 250 ms]",
        percentile(&mut samples, 50).as_secs_f64() * 1e3,
        percentile(&mut samples, 100).as_secs_f64() * 1e3,
        samples.len()
    );
    drop(b);

    // 6. A hung plugin: how long the tick waits before it runs again.
    let mut b = bench(
        &[(
            "hang.py",
            "__plugin__ = {'name': 'hang', 'version': '1'}\n@game.on('OnTick')\ndef t(dt):\n    while True:\n        try:\n            while True:\n                pass\n        except BaseException:\n            pass\n",
        )],
        |_| {},
    )?;
    let budget = Duration::from_millis(50);
    let grace = Duration::from_millis(200);
    let t = Instant::now();
    b.host.tick(&mut b.world, 1.0 / 30.0, &[]);
    let hung = t.elapsed();
    let t = Instant::now();
    b.host.tick(&mut b.world, 1.0 / 30.0, &[]);
    let after = t.elapsed();
    println!(
        "hung plugin: the tick ran again after {:.0} ms [<= budget {} ms + grace {} ms]; next tick {:.0} us (worker restarting)",
        hung.as_secs_f64() * 1e3,
        budget.as_millis(),
        grace.as_millis(),
        us(after)
    );
    Ok(())
}
