//! `bundle_push`: measures zero-install push at scale, on lossy links, and
//! what hostile clients can make the server do with it.
//!
//! Push (the default): one ~5 MB plugin bundle sent to `--clients` clients
//! that all join at once on loopback. The real `shard-server` binary runs as
//! its own process; the clients run in this process. Prints the time until
//! every client has verified and installed it, and the aggregate MB/s; the
//! wire alone (raw clients that read and discard, as `h2load` does); and the
//! install work alone (as many downloads written, verified and installed
//! at once without a network: the ceiling the install puts on any
//! transport). In the same run, nginx (HTTPS + HTTP/2) serves the same
//! bundle file to as many concurrent `h2load` downloads, and its figure is
//! printed beside QUIC's, with the CPU each side spent: the game server
//! against nginx's workers, the clients against `h2load`. Each server
//! starts its clock once it has logged its bundle as announced.
//!
//! Every client stays connected until the last has installed, as players
//! stay in the game. The push, the wire alone, the install alone and nginx
//! alone run in turn, `--rounds N` times in one run (5 by default, since
//! one round on a shared machine moves by ±20%); the last line carries the
//! medians, and the QUIC installed / nginx ratio of every round.
//!
//! Mirror (`--mirror`, with the push): nginx serves the `publish-bundles`
//! output over HTTPS + HTTP/2, a server lists it in `asset_mirrors`, and as
//! many real clients join at once and install from the mirror (the server
//! sends them no bundle bytes). The nginx-alone figure then uses that same
//! nginx and file.
//!
//! Lossy (`--lossy`): one client fetches the bundle through a loss and delay
//! relay (`shard_e2e::relay`, RTT 80 ms by default) for each congestion
//! controller and loss rate (`--loss 0,1,3`); prints the time from connect
//! to installed.
//!
//! Attacks (`--attack amplification|non-reading`) run the server as a child
//! process too, so its memory is its own:
//! - `amplification`: each attacker asks for the same bundle `--requests`
//!   times (two or more `NeedBundles` frames) and reads everything; prints
//!   the bytes the server sent per byte the attackers sent, and per client
//!   against the bundle size (the target is at most 2×).
//! - `non-reading`: `--attackers` clients ask for the bundle `--requests`
//!   times and never read a byte; prints the peak server RSS (the target is
//!   at most 100 MB for six) and how each attacker was disconnected.
//!
//! After an attack a real client joins and installs the bundle, to show the
//! service still works. `--server-bin PATH` runs another build of the server
//! (with `--legacy-config` for one that predates the hostile-client settings).
//! The last line of every mode is one JSON object with its figures.
//!
//! ```text
//! cargo run --release -p shard-e2e --bin bundle_push -- --clients 64
//! cargo run --release -p shard-e2e --bin bundle_push -- --clients 64 --mirror
//! cargo run --release -p shard-e2e --bin bundle_push -- --clients 64 --mirror --rounds 1
//! cargo run --release -p shard-e2e --bin bundle_push -- --lossy --loss 0,1,3
//! cargo run --release -p shard-e2e --bin bundle_push -- --attack amplification
//! cargo run --release -p shard-e2e --bin bundle_push -- --attack non-reading --attackers 6
//! ```
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool: stdout is its output"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use shard_client::{ClientEvent, ConnectOptions, Dispatcher, Session};
use shard_e2e::attack::Raw;
use shard_e2e::nginx::{Nginx, NginxOptions};
use shard_e2e::relay::{Relay, RelayOptions};
use shard_e2e::{ServerProcess, noise, rss_of};
use shard_protocol::ClientMsg;
use shard_protocol::limits::{self, MAX_BUNDLE_REQUESTS};

/// Longest a benchmark server may take to load its plugin and pack its bundle.
const SERVER_READY: Duration = Duration::from_secs(60);

/// Zero-install bundle push: throughput against nginx, lossy links, hostile clients.
#[derive(Debug, Parser)]
#[command(name = "bundle_push")]
struct Args {
    /// Clients joining at once (push) or real clients per attack.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Size of the bundle's (incompressible) payload, KiB.
    #[arg(long, default_value_t = 4900)]
    size_kib: usize,
    /// Folder for the clients' homes (keys and caches). By default /dev/shm
    /// when it has room for them, since 64 players have 64 disks, not one
    /// shared disk as 64 clients on one machine would; else the temp folder.
    #[arg(long)]
    client_dir: Option<PathBuf>,
    /// Rounds of the push (QUIC push, wire alone, install alone, nginx
    /// alone, in turn): each is printed, and the last line carries the
    /// medians and the QUIC installed / nginx ratio of each round. Five by
    /// default: one round on a shared machine moves by ±20%.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Skip the nginx + h2load figure (it is skipped anyway when nginx or h2load is missing).
    #[arg(long)]
    no_nginx: bool,
    /// Also measure the mirror path: nginx (HTTPS + HTTP/2) serves the
    /// `publish-bundles` output, the server lists it in `asset_mirrors`, and
    /// the same number of real clients join and install from it.
    #[arg(long)]
    mirror: bool,
    /// Measure one client through a loss and delay relay instead of the push.
    #[arg(long)]
    lossy: bool,
    /// Loss rates to measure with `--lossy`, percent, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,3")]
    loss: Vec<f64>,
    /// Round-trip time the relay adds with `--lossy`, milliseconds.
    #[arg(long, default_value_t = 80)]
    rtt_ms: u64,
    /// Downloads per controller and loss rate with `--lossy` (the median is reported).
    #[arg(long, default_value_t = 1)]
    trials: usize,
    /// Congestion controllers to compare with `--lossy` (the first is "before").
    #[arg(long, value_delimiter = ',', default_value = "cubic,bbr")]
    controllers: Vec<String>,
    /// Congestion controller the push server uses (the server's default when unset).
    #[arg(long)]
    congestion: Option<String>,
    /// An extra `server.toml` line for the push server (repeatable), e.g.
    /// `--server-toml 'bundle_bytes_in_flight = 134217728'`.
    #[arg(long)]
    server_toml: Vec<String>,
    /// Run an attack instead of the push.
    #[arg(long, value_enum)]
    attack: Option<AttackMode>,
    /// Attacking connections (default: 1 for amplification, 6 for non-reading).
    #[arg(long)]
    attackers: Option<usize>,
    /// Requests for the bundle per attacker.
    #[arg(long, default_value_t = 2 * MAX_BUNDLE_REQUESTS)]
    requests: usize,
    /// Another server binary to run (default: this workspace's `shard-server`).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The server predates the hostile-client settings: write only `max_players`.
    #[arg(long)]
    legacy_config: bool,
    /// Longest an attack runs, seconds.
    #[arg(long, default_value_t = 30)]
    wait_secs: u64,
}

/// What a hostile client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AttackMode {
    /// Asks for the same bundle many times and reads everything.
    Amplification,
    /// Asks for the bundle and never reads.
    NonReading,
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let size = args.size_kib * 1024;
    match args.attack {
        None if args.lossy => rt.block_on(lossy(&args, size)),
        None => {
            // Each client's cache holds the stored bundle and its install.
            let need = (args.clients as u64)
                .saturating_mul(size as u64)
                .saturating_mul(2)
                .saturating_add(256 << 20);
            choose_client_dir(&mut args, need);
            rt.block_on(push(&args, size))
        }
        Some(mode) => {
            let reading = mode == AttackMode::Amplification;
            let opts = AttackOpts {
                reading,
                attackers: args.attackers.unwrap_or(if reading { 1 } else { 6 }),
                requests: args.requests,
                size,
                server_bin: args.server_bin.clone(),
                legacy: args.legacy_config,
                wait: Duration::from_secs(args.wait_secs),
            };
            let name = if reading {
                "amplification"
            } else {
                "non-reading"
            };
            rt.block_on(attack(name, opts))
        }
    }
}

/// The test plugin: `big.py` and `size` bytes of noise in its bundle; returns the packed bundle.
fn write_plugin(plugins: &Path, size: usize) -> anyhow::Result<shard_cache::PackedBundle> {
    std::fs::create_dir_all(plugins.join("big/assets/world"))?;
    std::fs::write(
        plugins.join("big.py"),
        "__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n",
    )?;
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file(
            "base\\big\\interior.streamingsector",
            noise(size, 0x1234_5678_9abc_def1),
        )
        .build();
    std::fs::write(plugins.join("big/assets/big.archive"), archive)?;
    shard_cache::pack_plugin_dir(&plugins.join("big")).context("packing the test bundle")
}

/// The server binary to run: `--server-bin`, else this workspace's (built fresh).
fn server_bin(given: Option<&Path>) -> PathBuf {
    match given {
        Some(b) => b.to_path_buf(),
        None => shard_e2e::workspace_bin("shard-server"),
    }
}

/// `server.toml` for a benchmark server: room for `players` from 127.0.0.1,
/// no admin console (its fixed port would clash with other runs).
fn bench_config(players: usize, legacy: bool, congestion: Option<&str>) -> String {
    // `max_players` must leave room beyond the admin slots.
    let players = players + limits::DEFAULT_ADMIN_SLOTS;
    let mut cfg = format!("max_players = {players}\n");
    if !legacy {
        cfg.push_str(&format!("max_per_address = {players}\nadmin_http = \"\"\n"));
    }
    if let Some(cc) = congestion {
        cfg.push_str(&format!("congestion = \"{cc}\"\n"));
    }
    cfg
}

/// Figures of one push run, for the summary line.
struct PushFigure {
    seconds: f64,
    mb_per_s: f64,
    /// Of the bytes, how many came from asset mirrors (the rest over QUIC).
    from_mirror: u64,
}

/// The figures of one round of the push: the same payload and clients over
/// QUIC (installed and wire alone), the install work alone and nginx alone.
struct Round {
    arrived: PushFigure,
    quic: PushFigure,
    wire: PushFigure,
    alone: PushFigure,
    server_cpu: f64,
    clients_cpu: f64,
    nginx: Option<PushFigure>,
    /// CPU of nginx (master and workers) and of h2load while nginx served.
    nginx_cpu: Option<(f64, f64)>,
}

async fn push(args: &Args, size: usize) -> anyhow::Result<()> {
    let clients = args.clients;
    let dir = tempfile::tempdir()?;
    let bundle = write_plugin(&dir.path().join("plugins"), size)?;
    let packed = bundle.bytes.len();
    let bin = server_bin(args.server_bin.as_deref());
    let mut cfg = bench_config(
        2 * clients + 1,
        args.legacy_config,
        args.congestion.as_deref(),
    );
    for line in &args.server_toml {
        cfg.push_str(line);
        cfg.push('\n');
    }
    // nginx serves the `publish-bundles` output from the start (idle until asked).
    let served = if args.mirror || !args.no_nginx {
        serve_bundle(dir.path(), args.mirror)?
    } else {
        None
    };
    let rounds = args.rounds.max(1);
    let mut done = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        if rounds > 1 {
            println!("round {round} of {rounds}:");
        }
        let nginx = match (&served, args.no_nginx) {
            (Some((nginx, file)), false) => Some((nginx, file.as_str())),
            _ => None,
        };
        done.push(push_round(args, dir.path(), &bin, &cfg, &bundle, nginx).await?);
    }

    // The mirror path, on the same nginx and file.
    let mut mirror = None;
    if let (true, Some((nginx, file))) = (args.mirror, &served) {
        let mut cfg = cfg.clone();
        cfg.push_str(&format!("asset_mirrors = [\"{}\"]\n", nginx.url()));
        let mut srv = ServerProcess::start(&bin, dir.path(), &cfg)?;
        srv.wait_for_bundles(1, SERVER_READY)?;
        let homes = client_homes(args)?;
        let content = shard_client::ContentSettings {
            mirrors: shard_client::mirror::MirrorSettings {
                extra_ca_pem: nginx.cert_pem.clone().map(String::into_bytes),
                ..Default::default()
            },
            ..Default::default()
        };
        let (me0, server0) = (cpu_secs(std::process::id()), cpu_secs(srv.child.id()));
        let (_, fig) = quic_push(srv.addr, homes.path(), clients, packed, &content).await?;
        println!(
            "mirror path (nginx HTTPS + HTTP/2 serving {file}, listed in asset_mirrors): all {clients} clients installed it in {:.2} s, {:.1} MB/s aggregate, {:.1} MB of it from the mirror (CPU: server {:.2} s, clients {:.2} s)",
            fig.seconds,
            fig.mb_per_s,
            fig.from_mirror as f64 / 1e6,
            cpu_secs(srv.child.id()) - server0,
            cpu_secs(std::process::id()) - me0
        );
        mirror = Some(fig);
    }

    // One figure per measure: the round itself, or the median over the rounds.
    let med = |f: &dyn Fn(&Round) -> Option<f64>| median(done.iter().filter_map(f).collect());
    let ratios: Vec<f64> = done
        .iter()
        .filter_map(|r| r.nginx.as_ref().map(|n| r.quic.mb_per_s / n.mb_per_s))
        .collect();
    if rounds > 1 {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "over {rounds} rounds (medians): QUIC installed {:.1} MB/s, wire alone {:.1} MB/s, install alone {:.1} MB/s, nginx {}; QUIC installed / nginx per round: {}",
            med(&|r| Some(r.quic.mb_per_s)).unwrap_or(f64::NAN),
            med(&|r| Some(r.wire.mb_per_s)).unwrap_or(f64::NAN),
            med(&|r| Some(r.alone.mb_per_s)).unwrap_or(f64::NAN),
            med(&|r| r.nginx.as_ref().map(|n| n.mb_per_s))
                .map_or("skipped".to_string(), |v| format!("{v:.1} MB/s")),
            if ratios.is_empty() {
                "none".to_string()
            } else {
                list(&ratios)
            }
        );
    }
    // Rounded figures: the line is for people and scripts, not for digits of noise.
    let r = |v: Option<f64>, places: i32| {
        v.map(|v| (v * 10f64.powi(places)).round() / 10f64.powi(places))
    };
    let line = serde_json::json!({
        "clients": clients,
        "bundle_bytes": packed,
        "rounds": rounds,
        "quic_seconds": r(med(&|x| Some(x.quic.seconds)), 3),
        "quic_mb_per_s": r(med(&|x| Some(x.quic.mb_per_s)), 1),
        "quic_arrived_seconds": r(med(&|x| Some(x.arrived.seconds)), 3),
        "quic_arrived_mb_per_s": r(med(&|x| Some(x.arrived.mb_per_s)), 1),
        "quic_wire_seconds": r(med(&|x| Some(x.wire.seconds)), 3),
        "quic_wire_mb_per_s": r(med(&|x| Some(x.wire.mb_per_s)), 1),
        "install_alone_seconds": r(med(&|x| Some(x.alone.seconds)), 3),
        "install_alone_mb_per_s": r(med(&|x| Some(x.alone.mb_per_s)), 1),
        "server_cpu_seconds": r(med(&|x| Some(x.server_cpu)), 2),
        "clients_cpu_seconds": r(med(&|x| Some(x.clients_cpu)), 2),
        "nginx_cpu_seconds": r(med(&|x| x.nginx_cpu.map(|c| c.0)), 2),
        "h2load_cpu_seconds": r(med(&|x| x.nginx_cpu.map(|c| c.1)), 2),
        "mirror_seconds": r(mirror.as_ref().map(|m| m.seconds), 3),
        "mirror_mb_per_s": r(mirror.as_ref().map(|m| m.mb_per_s), 1),
        "mirror_bytes_from_mirror": mirror.as_ref().map(|m| m.from_mirror),
        "nginx_seconds": r(med(&|x| x.nginx.as_ref().map(|n| n.seconds)), 3),
        "nginx_mb_per_s": r(med(&|x| x.nginx.as_ref().map(|n| n.mb_per_s)), 1),
        "quic_over_nginx": r(median(ratios.clone()), 2),
        "quic_over_nginx_rounds": ratios.iter().map(|v| r(Some(*v), 2)).collect::<Vec<_>>(),
    });
    println!("{line}");
    Ok(())
}

/// The median of `v` (the mean of the middle two for an even count); `None` when empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => Some((v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0),
    }
}

/// A fresh folder for the clients' homes (under `--client-dir` when given).
fn client_homes(args: &Args) -> anyhow::Result<tempfile::TempDir> {
    Ok(match &args.client_dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    })
}

/// Memory-backed folder the clients' homes go in by default, when it has room.
const SHM: &str = "/dev/shm";

/// Fills in the default clients' folder: [`SHM`] when it is there with
/// room for `need` bytes (a container's is often only 64 MB), else the temp
/// folder; says which, and why, either way.
fn choose_client_dir(args: &mut Args, need: u64) {
    if let Some(d) = &args.client_dir {
        println!("clients' homes in {} (--client-dir)", d.display());
        return;
    }
    let free = rustix::fs::statvfs(SHM)
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    if free >= need {
        println!(
            "clients' homes in {SHM} (memory-backed: players do not share one disk); --client-dir DIR to choose"
        );
        args.client_dir = Some(PathBuf::from(SHM));
    } else {
        println!(
            "clients' homes in {} (the temp folder): {SHM} has {:.0} MB free, {:.0} MB needed; figures include this machine's one disk shared by every client",
            std::env::temp_dir().display(),
            free as f64 / 1e6,
            need as f64 / 1e6
        );
    }
}

/// One round: a fresh server process, the QUIC push to fresh clients and
/// the wire alone, then (server stopped) the install work alone and nginx
/// alone, each printed as it is measured.
async fn push_round(
    args: &Args,
    dir: &Path,
    bin: &Path,
    cfg: &str,
    bundle: &shard_cache::PackedBundle,
    nginx: Option<(&Nginx, &str)>,
) -> anyhow::Result<Round> {
    let clients = args.clients;
    let packed = bundle.bytes.len();
    let mut srv = ServerProcess::start(bin, dir, cfg)?;
    println!(
        "bundle: {:.2} MB packed; {clients} clients joining at once; server {} (pid {}) on {}",
        packed as f64 / 1e6,
        bin.display(),
        srv.child.id(),
        srv.addr
    );
    // The clock starts once the server has loaded its plugin and packed the bundle.
    srv.wait_for_bundles(1, SERVER_READY)?;
    let homes = client_homes(args)?;
    let cpu_before = cpu_secs(srv.child.id());
    let clients_before = cpu_secs(std::process::id());
    let quic_only = shard_client::ContentSettings::default();
    let (arrived, quic) = quic_push(srv.addr, homes.path(), clients, packed, &quic_only).await?;
    let server_cpu = cpu_secs(srv.child.id()) - cpu_before;
    let clients_cpu = cpu_secs(std::process::id()) - clients_before;
    println!(
        "QUIC push: all {clients} clients had the bundle in {:.2} s ({:.1} MB/s) and installed it in {:.2} s: {:.1} MB pushed, {:.1} MB/s aggregate (CPU: server {server_cpu:.2} s, clients {clients_cpu:.2} s; client caches in {})",
        arrived.seconds,
        arrived.mb_per_s,
        quic.seconds,
        (packed * clients) as f64 / 1e6,
        quic.mb_per_s,
        homes.path().display()
    );
    drop(homes);
    let (me, server) = (std::process::id(), srv.child.id());
    let (me0, server0) = (cpu_secs(me), cpu_secs(server));
    let wire = quic_wire(&srv, clients, packed).await?;
    println!(
        "QUIC wire alone (raw clients read the stream and discard it, as h2load does): {:.2} s, {:.1} MB/s aggregate (CPU: server {:.2} s, clients {:.2} s)",
        wire.seconds,
        wire.mb_per_s,
        cpu_secs(server) - server0,
        cpu_secs(me) - me0
    );
    drop(srv);
    let homes_alone = client_homes(args)?;
    let (alone, alone_cpu) = install_alone(bundle, homes_alone.path(), clients)?;
    println!(
        "install alone (no network: {clients} downloads written chunk by chunk, verified and installed at once on {clients} threads, as the clients' bundle threads do): {:.2} s, {:.1} MB/s aggregate, {:.1} ms CPU per bundle",
        alone.seconds,
        alone.mb_per_s,
        alone_cpu * 1e3 / clients as f64
    );
    drop(homes_alone);
    let (nginx, nginx_cpu) = match nginx {
        Some((nginx, file)) => {
            let (n0, h0) = (tree_cpu_secs(nginx.pid()), reaped_children_cpu_secs());
            let fig = nginx_push(nginx, file, packed, clients)?;
            let cpu = (
                tree_cpu_secs(nginx.pid()) - n0,
                reaped_children_cpu_secs() - h0,
            );
            (fig, Some(cpu))
        }
        None => (None, None),
    };
    match (&nginx, nginx_cpu) {
        (Some(n), Some((ncpu, hcpu))) => println!(
            "nginx alone (HTTPS + HTTP/2, h2load -c {clients}): {:.3} s, {:.1} MB/s aggregate (CPU: nginx {ncpu:.2} s, h2load {hcpu:.2} s); QUIC installed is {:.2}x nginx, QUIC wire alone {:.2}x, install alone {:.2}x; server CPU for the same bytes: shard {server_cpu:.2} s, nginx {ncpu:.2} s",
            n.seconds,
            n.mb_per_s,
            quic.mb_per_s / n.mb_per_s,
            wire.mb_per_s / n.mb_per_s,
            alone.mb_per_s / n.mb_per_s
        ),
        _ => println!("nginx alone: skipped"),
    }
    if let Some((ncpu, hcpu)) = nginx_cpu {
        // Both paths run on the same cores; when they are the limit, the
        // throughputs follow the CPU each path spends per bundle.
        let per = |secs: f64| secs * 1e3 / clients as f64;
        let (quic_ms, nginx_ms) = (per(server_cpu + clients_cpu), per(ncpu + hcpu));
        println!(
            "CPU per bundle: QUIC push {quic_ms:.1} ms (server {:.1}, clients {:.1}: wire, hash, store and install), nginx path {nginx_ms:.1} ms (nginx {:.1}, h2load {:.1}: wire only); nginx path / QUIC push = {:.2}",
            per(server_cpu),
            per(clients_cpu),
            per(ncpu),
            per(hcpu),
            nginx_ms / quic_ms
        );
    }
    Ok(Round {
        arrived,
        quic,
        wire,
        alone,
        server_cpu,
        clients_cpu,
        nginx,
        nginx_cpu,
    })
}

/// User + system CPU time a process has used so far, seconds (0 when unknown).
fn cpu_secs(pid: u32) -> f64 {
    // utime and stime are fields 14 and 15 of stat.
    stat_secs(pid, 14)
}

/// User + system CPU time of the children this process has waited for
/// (`h2load`), seconds (0 when unknown).
fn reaped_children_cpu_secs() -> f64 {
    // cutime and cstime are fields 16 and 17 of stat.
    stat_secs(std::process::id(), 16)
}

/// CPU time of `pid` and its children (nginx's master and workers), seconds.
fn tree_cpu_secs(pid: u32) -> f64 {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    cpu_secs(pid)
        + children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
            .map(cpu_secs)
            .sum::<f64>()
}

/// The sum of two adjacent clock-tick fields of `/proc/PID/stat`, starting
/// at 1-based field `first`, in seconds (0 when unknown).
fn stat_secs(pid: u32, first: usize) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at ")",
    // whose first is field 3.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(first - 3) + ticks(first - 2)) / 100.0
}

/// `clients` real clients (homes under `dir`) join `addr` at once; returns
/// when all had received and installed it. Every client stays connected
/// until the last has installed, as players stay in the game (and as the
/// raw clients of [`quic_wire`] do), so no client's leaving is timed.
async fn quic_push(
    addr: SocketAddr,
    dir: &Path,
    clients: usize,
    packed: usize,
    content: &shard_client::ContentSettings,
) -> anyhow::Result<(PushFigure, PushFigure)> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let home = dir.join(format!("client{i}"));
        let content = content.clone();
        tasks.push(tokio::spawn(async move {
            join_and_install(addr, &home, &format!("c{i}"), content).await
        }));
    }
    let (mut total, mut from_mirror) = (0u64, 0u64);
    let (mut received, mut installed) = (started, started);
    let mut sessions = Vec::with_capacity(clients);
    for t in tasks {
        let (a, session) = t.await?.map_err(anyhow::Error::msg)?;
        total += a.bytes + a.mirror_bytes;
        from_mirror += a.mirror_bytes;
        received = received.max(a.received);
        installed = installed.max(a.installed);
        sessions.push(session);
    }
    let leaving: Vec<_> = sessions
        .into_iter()
        .map(|s| tokio::spawn(s.close()))
        .collect();
    for l in leaving {
        let _ = l.await;
    }
    let expected = packed as u64 * clients as u64;
    if total != expected {
        bail!("expected {expected} bytes in all, received {total}");
    }
    let figure = |at: Instant| {
        let seconds = (at - started).as_secs_f64();
        PushFigure {
            seconds,
            mb_per_s: total as f64 / 1e6 / seconds,
            from_mirror,
        }
    };
    Ok((figure(received), figure(installed)))
}

/// The install work alone, the ceiling it puts on a push whatever the
/// transport: `n` downloads of `bundle`, each into its own cache under
/// `dir`, written chunk by chunk ([`shard_cache::PartialFile`]), verified,
/// staged and installed exactly as a client's bundle thread does, on `n`
/// threads at once. Returns the figure and the CPU seconds it took.
fn install_alone(
    bundle: &shard_cache::PackedBundle,
    dir: &Path,
    n: usize,
) -> anyhow::Result<(PushFigure, f64)> {
    let cpu0 = cpu_secs(std::process::id());
    let started = Instant::now();
    std::thread::scope(|s| {
        let installs: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || -> anyhow::Result<()> {
                    let cache = shard_cache::RuntimeCache::open(dir.join(format!("alone{i}")))?;
                    let mut partial = cache.open_partial(&bundle.sha256)?;
                    for (c, chunk) in bundle.bytes.chunks(limits::CHUNK_SIZE).enumerate() {
                        partial.write_at((c * limits::CHUNK_SIZE) as u64, chunk)?;
                    }
                    let verified = partial.finish(&cache)?;
                    let req = shard_cache::InstallRequest {
                        plugin: "big",
                        version: "1",
                        server: "127.0.0.1:7777",
                        sha256: bundle.sha256,
                    };
                    let staged = cache.stage_verified(&req, verified, bundle.unpacked_len)?;
                    cache.install_staged(staged)?;
                    Ok(())
                })
            })
            .collect();
        for install in installs {
            install
                .join()
                .map_err(|_| anyhow::anyhow!("an install thread panicked"))??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let figure = PushFigure {
        seconds,
        mb_per_s: (bundle.bytes.len() * n) as f64 / 1e6 / seconds,
        from_mirror: 0,
    };
    Ok((figure, cpu_secs(std::process::id()) - cpu0))
}

/// The wire alone, as `h2load` measures nginx: `clients` raw QUIC clients
/// join `srv` at once, ask for the bundle and read its stream to the end
/// without storing it; returns when every stream was read.
async fn quic_wire(
    srv: &ServerProcess,
    clients: usize,
    packed: usize,
) -> anyhow::Result<PushFigure> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (addr, key) = (srv.addr, srv.key);
        tasks.push(tokio::spawn(async move {
            let mut r = Raw::connect(addr, key, "127.0.0.1:0", &format!("w{i}"))
                .await
                .map_err(anyhow::Error::msg)?;
            r.welcomed()
                .await
                .map_err(|(c, why)| anyhow::anyhow!("refused ({c}): {why}"))?;
            let (req, _) = r.announcement().await.context("no bundle announced")?;
            let done = r.drain_bundles();
            r.send(&ClientMsg::NeedBundles {
                requests: vec![req],
            })
            .await;
            while done.load(Ordering::Relaxed) == 0 {
                if r.conn.close_reason().is_some() {
                    bail!("the server closed the connection");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok::<_, anyhow::Error>((Instant::now(), r))
        }));
    }
    let mut last = started;
    let mut keep = Vec::new();
    for t in tasks {
        let (at, r) = t.await??;
        last = last.max(at);
        keep.push(r);
    }
    let seconds = (last - started).as_secs_f64();
    let (datagrams, wire_bytes) = keep.iter().fold((0, 0), |(d, b), r| {
        let rx = r.conn.stats().udp_rx;
        (d + rx.datagrams, b + rx.bytes)
    });
    let payload = (packed * clients) as u64;
    println!(
        "QUIC wire packets: {datagrams} datagrams of {:.0} bytes on average; {:.1} MB received for {:.1} MB of bundle ({:.1}% headers and padding)",
        wire_bytes as f64 / datagrams.max(1) as f64,
        wire_bytes as f64 / 1e6,
        payload as f64 / 1e6,
        (wire_bytes as f64 / payload as f64 - 1.0) * 100.0
    );
    Ok(PushFigure {
        seconds,
        mb_per_s: (packed * clients) as f64 / 1e6 / seconds,
        from_mirror: 0,
    })
}

/// nginx (HTTPS + HTTP/2) serving the `publish-bundles` output of the
/// plugins in `dir/plugins`, and the bundle's file name. `None` when nginx is
/// missing. With `required` (the mirror figure was asked for) that is an error.
fn serve_bundle(dir: &Path, required: bool) -> anyhow::Result<Option<(Nginx, String)>> {
    if !Nginx::installed() {
        if required {
            bail!("--mirror needs nginx (`apt-get install nginx`; `.ci/run` installs it)");
        }
        println!("nginx is not installed (`.ci/run` installs it)");
        return Ok(None);
    }
    let root = dir.join("mirror");
    let report = shard_server::publish::publish_bundles(&dir.join("plugins"), &root)
        .context("publish-bundles")?;
    let Some(published) = report.published.first() else {
        bail!("publish-bundles wrote nothing: {:?}", report.failed);
    };
    let (shard_server::publish::Published::Wrote { path, .. }
    | shard_server::publish::Published::Skipped { path, .. }) = published;
    let file = path
        .file_name()
        .context("a published bundle has a file name")?
        .to_string_lossy()
        .into_owned();
    let opts = NginxOptions {
        tls: true,
        ..NginxOptions::default()
    };
    Ok(Some((Nginx::start(&root, &opts)?, file)))
}

/// `h2load` fetches `file` from `nginx` `clients` times over as many
/// connections at once. `None` when h2load is missing.
fn nginx_push(
    nginx: &Nginx,
    file: &str,
    packed: usize,
    clients: usize,
) -> anyhow::Result<Option<PushFigure>> {
    let n = clients.to_string();
    let out = match std::process::Command::new("h2load")
        .args(["-n", &n, "-c", &n, "-m", "1"])
        .arg(format!("{}{file}", nginx.url()))
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!("h2load could not run ({e}; `.ci/run` installs nghttp2-client)");
            return Ok(None);
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let fig = parse_h2load(&text, packed as u64 * clients as u64)
        .with_context(|| format!("unexpected h2load output:\n{text}"))?;
    Ok(Some(fig))
}

/// Reads `finished in 301.23ms` and `N succeeded` from h2load's summary;
/// all `clients` downloads must have succeeded.
fn parse_h2load(text: &str, expected_bytes: u64) -> anyhow::Result<PushFigure> {
    let line = text
        .lines()
        .find(|l| l.starts_with("finished in "))
        .context("no `finished in` line")?;
    let took = line
        .trim_start_matches("finished in ")
        .split(',')
        .next()
        .context("no duration")?
        .trim();
    let seconds = if let Some(ms) = took.strip_suffix("ms") {
        ms.parse::<f64>()? / 1e3
    } else if let Some(us) = took.strip_suffix("us") {
        us.parse::<f64>()? / 1e6
    } else if let Some(s) = took.strip_suffix('s') {
        s.parse::<f64>()?
    } else {
        bail!("unknown duration `{took}`");
    };
    let requests = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .context("no `requests:` line")?;
    let failed = requests
        .split(',')
        .find_map(|p| p.trim().strip_suffix(" failed"))
        .context("no failed count")?;
    if failed.trim() != "0" {
        bail!("h2load: {requests}");
    }
    Ok(PushFigure {
        seconds,
        mb_per_s: expected_bytes as f64 / 1e6 / seconds,
        from_mirror: 0,
    })
}

/// For each controller and loss rate, one real client fetches the bundle
/// through a relay that adds the round trip and the loss; prints the time
/// from connect to installed.
async fn lossy(args: &Args, size: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bundle = write_plugin(&dir.path().join("plugins"), size)?.bytes;
    let bin = server_bin(args.server_bin.as_deref());
    let delay = Duration::from_millis(args.rtt_ms / 2);
    println!(
        "lossy link: one client, {:.2} MB bundle, RTT {} ms through a relay; loss {:?} %",
        bundle.len() as f64 / 1e6,
        args.rtt_ms,
        args.loss
    );
    let mut rows = Vec::new();
    for cc in &args.controllers {
        let sdir = dir.path().join(format!("server-{cc}"));
        std::fs::create_dir_all(&sdir)?;
        copy_dir(&dir.path().join("plugins"), &sdir.join("plugins"))?;
        let cfg = bench_config(4, args.legacy_config, Some(cc));
        let mut srv = ServerProcess::start(&bin, &sdir, &cfg)?;
        srv.wait_for_bundles(1, SERVER_READY)?;
        for &loss in &args.loss {
            let mut times = Vec::new();
            for trial in 0..args.trials.max(1) {
                let opts = RelayOptions {
                    one_way_delay: delay,
                    loss_percent: loss,
                    seed: 0x5eed + trial as u64,
                    ..RelayOptions::default()
                };
                let relay = Relay::start(srv.addr, opts).await?;
                let home = sdir.join(format!("client-{loss}-{trial}"));
                let t = Instant::now();
                // One name per download: the server may still hold the last
                // one's connection while it times out.
                let name = format!("lossy{}t{trial}", (loss * 10.0).round());
                let a = install_once(relay.addr, &home, &name, Default::default())
                    .await
                    .map_err(anyhow::Error::msg)?;
                if a.bytes != bundle.len() as u64 {
                    bail!(
                        "received {} bundle bytes, expected {}",
                        a.bytes,
                        bundle.len()
                    );
                }
                let secs = (a.installed - t).as_secs_f64();
                let s = relay.stats();
                println!(
                    "  {cc:>7} loss {loss:>4.1}%: installed in {secs:.2} s ({} datagrams relayed, {} dropped as loss, {} overflowed, {} MTU probes over 1500 dropped)",
                    s.forwarded(),
                    s.lost(),
                    s.overflowed(),
                    s.too_big()
                );
                times.push(secs);
            }
            times.sort_by(f64::total_cmp);
            let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
            rows.push(serde_json::json!({
                "controller": cc,
                "loss_percent": loss,
                "seconds": (median * 1e3).round() / 1e3,
            }));
        }
        drop(srv);
    }
    let line = serde_json::json!({
        "rtt_ms": args.rtt_ms,
        "bundle_bytes": bundle.len(),
        "results": rows,
    });
    println!("{line}");
    Ok(())
}

/// Copies a folder tree (the plugin folder for a second server).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// When one client's bundle had fully arrived and when it was installed.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    /// Bundle bytes it received from the game server (QUIC).
    bytes: u64,
    /// Bundle bytes it received from asset mirrors.
    mirror_bytes: u64,
    /// The last byte arrived (before the client verified and installed it).
    received: Instant,
    /// The bundle was verified and installed.
    installed: Instant,
}

/// A real client joins from `home`, waits until the bundle is installed,
/// and leaves; returns the bundle bytes it received, and when they had
/// arrived and when it was installed.
async fn install_once(
    addr: SocketAddr,
    home: &Path,
    name: &str,
    content: shard_client::ContentSettings,
) -> Result<Arrival, String> {
    let (arrival, session) = join_and_install(addr, home, name, content).await?;
    session.close().await;
    Ok(arrival)
}

/// A real client joins from `home` and waits until the bundle is
/// installed; returns when it arrived and was installed, and the session,
/// still connected (a player stays in the game after its download).
async fn join_and_install(
    addr: SocketAddr,
    home: &Path,
    name: &str,
    content: shard_client::ContentSettings,
) -> Result<(Arrival, Session), String> {
    let opts = ConnectOptions {
        addr: addr.into(),
        name: name.to_string(),
        identity: home.join("id.pem"),
        cache_dir: home.join("cache"),
        server_key: None,
        content,
    };
    let mut s = Session::connect(opts, Dispatcher::new())
        .await
        .map_err(|e| e.to_string())?;
    let mut received = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(120), s.next_event()).await {
            Ok(Some(ClientEvent::BundleProgress {
                received: got,
                total,
                ..
            })) if got >= total => {
                received.get_or_insert_with(Instant::now);
            }
            Ok(Some(ClientEvent::BundleInstalled { .. })) => break,
            Ok(Some(ClientEvent::BundleFailed { error, .. })) => return Err(error),
            Ok(Some(ClientEvent::Disconnected { reason })) => return Err(reason),
            Ok(Some(_)) => {}
            Ok(None) => return Err("session ended".to_string()),
            Err(_) => return Err("timed out".to_string()),
        }
    }
    let installed = Instant::now();
    let bytes = s.bundle_bytes_received();
    let mirror_bytes = s.mirror_bytes_received();
    let arrival = Arrival {
        bytes,
        mirror_bytes,
        received: received.unwrap_or(installed),
        installed,
    };
    Ok((arrival, s))
}

struct AttackOpts {
    reading: bool,
    attackers: usize,
    requests: usize,
    size: usize,
    server_bin: Option<PathBuf>,
    legacy: bool,
    wait: Duration,
}

/// Samples a process's RSS every 20 ms; the peak since the last reset.
struct RssProbe {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssProbe {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(r) = rss_of(pid) {
                    p.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { peak, stop }
    }

    fn reset(&self) {
        self.peak.store(0, Ordering::Relaxed);
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn attack(mode: &str, o: AttackOpts) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let packed = write_plugin(&dir.path().join("plugins"), o.size)?
        .bytes
        .len() as u64;
    let bin = server_bin(o.server_bin.as_deref());
    let cfg = bench_config(o.attackers + 8, o.legacy, None);
    let mut srv = ServerProcess::start(&bin, dir.path(), &cfg)?;
    let pid = srv.child.id();
    let probe = RssProbe::start(pid);
    srv.wait_for_bundles(1, SERVER_READY)?;
    let baseline = rss_of(pid).context("reading the server's RSS")?;
    probe.reset();
    let log_before = std::fs::metadata(&srv.log).map(|m| m.len()).unwrap_or(0);
    println!(
        "attack {mode}: {} attacker(s) x {} requests for one {:.2} MB bundle; server {} (pid {pid}), RSS {:.1} MB at rest",
        o.attackers,
        o.requests,
        packed as f64 / 1e6,
        bin.display(),
        baseline as f64 / 1e6
    );

    let started = Instant::now();
    let mut raws = Vec::new();
    for i in 0..o.attackers {
        let mut r = Raw::connect(srv.addr, srv.key, "127.0.0.1:0", &format!("attacker{i}"))
            .await
            .map_err(anyhow::Error::msg)?;
        r.welcomed()
            .await
            .map_err(|(c, why)| anyhow::anyhow!("attacker refused ({c}): {why}"))?;
        let (req, _) = r.announcement().await.context("no bundle announced")?;
        if o.reading {
            r.drain_bundles();
        }
        let all = vec![req; o.requests];
        for part in all.chunks(MAX_BUNDLE_REQUESTS) {
            if !r
                .send(&ClientMsg::NeedBundles {
                    requests: part.to_vec(),
                })
                .await
            {
                break;
            }
        }
        raws.push(r);
    }
    // Until every attacker is closed or the wait is over (for readers: or
    // nothing moved for 3 s; non-readers wait for the server's stall deadline).
    let mut last = 0u64;
    let mut still = Instant::now();
    while started.elapsed() < o.wait {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let open = raws
            .iter()
            .filter(|r| r.conn.close_reason().is_none())
            .count();
        let got: u64 = raws.iter().map(Raw::bytes_in).sum();
        if got != last {
            last = got;
            still = Instant::now();
        }
        if open == 0 || (o.reading && still.elapsed() > Duration::from_secs(3)) {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let peak = probe.peak().max(baseline);
    let bytes_in: u64 = raws.iter().map(Raw::bytes_out).sum();
    let bytes_out: u64 = raws.iter().map(Raw::bytes_in).sum();
    let worst = raws.iter().map(Raw::bytes_in).max().unwrap_or(0);
    for (i, r) in raws.iter().enumerate() {
        let why = match r.conn.close_reason() {
            Some(quinn::ConnectionError::ApplicationClosed(c)) => format!(
                "closed ({}): {}",
                c.error_code,
                String::from_utf8_lossy(&c.reason)
            ),
            Some(other) => format!("closed: {other}"),
            None => "still connected".into(),
        };
        println!(
            "  attacker{i}: sent {} B, got {} B ({:.2}x the bundle); {why}",
            r.bytes_out(),
            r.bytes_in(),
            r.bytes_in() as f64 / packed as f64
        );
    }
    drop(raws);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_of(pid).unwrap_or(0);
    let logged = std::fs::metadata(&srv.log).map(|m| m.len()).unwrap_or(0) - log_before;
    println!(
        "over {secs:.1} s: {bytes_out} bytes out for {bytes_in} bytes in = {:.1} bytes out per byte in; \
         worst client got {:.2}x the bundle; peak server RSS {:.1} MB (at rest {:.1} MB, after {:.1} MB); {logged} bytes of log",
        bytes_out as f64 / bytes_in.max(1) as f64,
        worst as f64 / packed as f64,
        peak as f64 / 1e6,
        baseline as f64 / 1e6,
        after as f64 / 1e6,
    );
    // The service still works for a real player.
    let t = Instant::now();
    let home = dir.path().join("real");
    match install_once(srv.addr, &home, "real", Default::default()).await {
        Ok(a) => println!(
            "a real client then joined and installed the bundle ({} B) in {:.2} s",
            a.bytes,
            t.elapsed().as_secs_f64()
        ),
        Err(e) => println!("a real client could not install the bundle afterwards: {e}"),
    }
    println!(
        "{{\"attack\":\"{mode}\",\"attackers\":{},\"requests\":{},\"bundle_bytes\":{packed},\"bytes_in\":{bytes_in},\"bytes_out\":{bytes_out},\"out_per_in\":{:.2},\"worst_client_x_bundle\":{:.3},\"rss_rest_mb\":{:.1},\"rss_peak_mb\":{:.1},\"rss_after_mb\":{:.1},\"log_bytes\":{logged}}}",
        o.attackers,
        o.requests,
        bytes_out as f64 / bytes_in.max(1) as f64,
        worst as f64 / packed as f64,
        baseline as f64 / 1e6,
        peak as f64 / 1e6,
        after as f64 / 1e6,
    );
    Ok(())
}
