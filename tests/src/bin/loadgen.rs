//! `loadgen`: the load generator behind the dedicated server's tick-time
//! benchmark (issue 3).
//!
//! By default it starts a `shard-server` in this process on `127.0.0.1:0`,
//! connects `--peers` headless clients (real QUIC sessions, one key each) from
//! the same process, has each of them send its position as a datagram at
//! `--send-hz` while walking a small circle, and drains every event they
//! receive (counting `PeerMoved`). After `--warmup` seconds it resets the
//! server's tick statistics, measures for `--secs` seconds and prints the tick
//! time percentiles, the CPU used by the whole process and by the simulation
//! thread (`shard-sim`), and the datagram rates — as human-readable lines and
//! as one JSON line starting with `{`.
//!
//! With `--server ADDR [--server-key FP]` it drives an external server instead
//! and prints only the figures a client can see.
//!
//! Caveat: in-process, the clients share the CPU with the server, so the
//! process CPU figure covers both; the `shard-sim` figure is the server's
//! simulation thread alone.
//!
//! ```text
//! cargo run --release -p shard-e2e --bin loadgen -- --peers 64 --hz 30 --secs 20
//! ```
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool: stdout is its output"
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use shard_client::{ClientEvent, ConnectOptions, Dispatcher, Session};
use shard_protocol::Vec3;
use shard_protocol::identity::Fingerprint;
use shard_server::Server;
use shard_server::config::{RateLimits, ServerConfig};
use shard_server::tuning::{DEFAULT_TICK_HZ, MAX_MAX_PLAYERS, MAX_TICK_HZ};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How long one client may take to connect and receive `Welcome`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/*/stat`
/// (100 on every mainstream architecture).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// Radius of the circle each client walks, metres.
const CIRCLE_RADIUS: f32 = 5.0;

/// Turns per second on that circle.
const CIRCLE_TURNS_PER_SEC: f32 = 0.25;

/// Command-line settings.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    about = "Drives a shard server with headless clients and prints tick times, CPU and datagram rates."
)]
struct Args {
    /// Headless clients to connect (1 to the server's `MAX_MAX_PLAYERS`).
    #[arg(long, default_value_t = 64, value_parser = peers_in_range)]
    peers: usize,
    /// Server tick rate, in-process only (1 to the server's `MAX_TICK_HZ`).
    #[arg(long, default_value_t = DEFAULT_TICK_HZ, value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_TICK_HZ)))]
    hz: u16,
    /// Measured window in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    secs: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Position datagrams per second per client.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    send_hz: u32,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 16, value_parser = at_least_one)]
    connect_parallel: usize,
    /// Drive an external server at this address instead of starting one.
    #[arg(long)]
    server: Option<SocketAddr>,
    /// The external server's key fingerprint (64 hex digits); without it
    /// each client pins on first contact.
    #[arg(long, requires = "server", value_parser = parse_key)]
    server_key: Option<Fingerprint>,
}

/// `--peers`: how many clients one process can drive.
fn peers_in_range(v: &str) -> Result<usize, String> {
    let n: usize = v.parse().map_err(|e| format!("{e}"))?;
    if (1..=MAX_MAX_PLAYERS).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is outside 1..={MAX_MAX_PLAYERS}"))
    }
}

/// A count that must be at least one.
fn at_least_one(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `--server-key`: a server key fingerprint.
fn parse_key(v: &str) -> Result<Fingerprint, String> {
    Fingerprint::parse(v).map_err(|e| e.to_string())
}

/// Counters shared by every client task.
#[derive(Debug, Default)]
struct Counters {
    /// Position datagrams handed to QUIC.
    sent: AtomicU64,
    /// Position datagrams QUIC refused (e.g. too large, connection gone).
    send_errors: AtomicU64,
    /// `PeerMoved` events received.
    moved: AtomicU64,
    /// Any other event received.
    other_events: AtomicU64,
    /// Sessions that ended (kick, disconnect) before the run did.
    ended_early: AtomicU64,
}

/// A point-in-time copy of [`Counters`] plus the process CPU clocks.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    /// When it was taken.
    at: Instant,
    /// Datagrams sent so far.
    sent: u64,
    /// Send errors so far.
    send_errors: u64,
    /// `PeerMoved` received so far.
    moved: u64,
    /// Other events so far.
    other_events: u64,
    /// Whole-process CPU time, clock ticks (utime + stime), if readable.
    process_cpu: Option<u64>,
    /// `shard-sim` thread CPU time, clock ticks, if that thread exists here.
    sim_cpu: Option<u64>,
    /// QUIC DATAGRAM frames the clients received (each may batch several moves).
    quic_datagrams_rx: u64,
    /// UDP packets the clients received.
    udp_rx: u64,
}

impl Snapshot {
    /// Reads the counters, the clients' QUIC statistics and the CPU clocks now.
    fn take(c: &Counters, conns: &[quinn::Connection]) -> Self {
        let (mut quic_datagrams_rx, mut udp_rx) = (0, 0);
        for conn in conns {
            let st = conn.stats();
            quic_datagrams_rx += st.frame_rx.datagram;
            udp_rx += st.udp_rx.datagrams;
        }
        Self {
            quic_datagrams_rx,
            udp_rx,
            at: Instant::now(),
            sent: c.sent.load(Ordering::Relaxed),
            send_errors: c.send_errors.load(Ordering::Relaxed),
            moved: c.moved.load(Ordering::Relaxed),
            other_events: c.other_events.load(Ordering::Relaxed),
            process_cpu: read_cpu_ticks(Path::new("/proc/self/stat")),
            sim_cpu: sim_thread_cpu_ticks(),
        }
    }
}

/// utime + stime (clock ticks) from a `/proc/.../stat` file, or `None` if it
/// cannot be read or parsed (e.g. not on Linux).
fn read_cpu_ticks(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces;
    // fields after it start at field 3 (state). utime and stime are 14 and 15.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time (clock ticks) of the thread named `shard-sim` in this process.
fn sim_thread_cpu_ticks() -> Option<u64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    for task in tasks.flatten() {
        let dir = task.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if comm.trim_end() == "shard-sim" {
            return read_cpu_ticks(&dir.join("stat"));
        }
    }
    None
}

/// CPU use between two clock readings as a percentage of one core.
fn cpu_percent(before: Option<u64>, after: Option<u64>, wall: Duration) -> Option<f64> {
    let (b, a) = (before?, after?);
    let secs = wall.as_secs_f64();
    (secs > 0.0).then(|| a.saturating_sub(b) as f64 / CLOCK_TICKS_PER_SEC / secs * 100.0)
}

/// Formats an optional number for humans.
fn show(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1}"))
}

/// Rounds `v` to `digits` decimals, so the JSON line shows what the
/// measurement can resolve and no float noise.
fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

/// The in-process server and the folder it lives in.
struct LocalServer {
    /// The running server.
    server: Server,
    /// Its data and plugin folders, removed on drop.
    _dir: tempfile::TempDir,
}

/// Starts a server on `127.0.0.1:0` sized for `args`.
fn start_server(args: &Args) -> Result<LocalServer> {
    let dir = tempfile::tempdir().context("creating the server's temporary folder")?;
    let cfg = ServerConfig {
        name: "loadgen".into(),
        bind: "127.0.0.1:0".parse().context("bind address")?,
        data_dir: dir.path().join("data"),
        plugin_dir: dir.path().join("plugins"),
        tick_hz: args.hz,
        max_players: args.peers + 8,
        // Every peer comes from 127.0.0.1.
        max_per_address: args.peers + 8,
        rate_limits: RateLimits {
            // Well above what the clients send, so nothing is dropped by policy.
            datagrams_per_sec: args.send_hz.saturating_mul(4).max(240),
            ..RateLimits::default()
        },
        admin_http: String::new(),
        ..ServerConfig::default()
    };
    std::fs::create_dir_all(&cfg.plugin_dir).context("creating the plugin folder")?;
    let server = Server::start(cfg).context("starting the in-process server")?;
    Ok(LocalServer { server, _dir: dir })
}

/// Connects client `i` (fresh key in `root/peer-i`) and waits for `Welcome`.
async fn join(
    i: usize,
    root: &Path,
    addr: SocketAddr,
    server_key: Option<Fingerprint>,
) -> Result<Session> {
    let dir = root.join(format!("peer-{i}"));
    let opts = ConnectOptions {
        addr: addr.into(),
        name: format!("load-{i}"),
        identity: dir.join("identity.pem"),
        cache_dir: dir.join("runtime_cache"),
        server_key,
        content: shard_client::ContentSettings::default(),
    };
    let mut session = Session::connect(opts, Dispatcher::new())
        .await
        .with_context(|| format!("client {i} cannot connect"))?;
    loop {
        match session.next_event().await {
            Some(ClientEvent::Welcome { .. }) => return Ok(session),
            Some(ClientEvent::Kick { reason, .. }) => bail!("client {i} was refused: {reason}"),
            Some(_) => {}
            None => bail!("client {i}: the session ended before Welcome"),
        }
    }
}

/// Connects every client, at most `args.connect_parallel` handshakes at once.
async fn join_all(
    args: &Args,
    root: &Path,
    addr: SocketAddr,
    server_key: Option<Fingerprint>,
) -> Result<Vec<(usize, Session)>> {
    let gate = Arc::new(Semaphore::new(args.connect_parallel));
    let mut set = JoinSet::new();
    for i in 0..args.peers {
        let gate = gate.clone();
        let root = root.to_path_buf();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let r = tokio::time::timeout(JOIN_TIMEOUT, join(i, &root, addr, server_key)).await;
            (i, r)
        });
    }
    let mut sessions = Vec::with_capacity(args.peers);
    let mut first_error = None;
    while let Some(done) = set.join_next().await {
        let (i, r) = done.context("a connecting task failed")?;
        match r {
            Ok(Ok(s)) => sessions.push((i, s)),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert(anyhow!("client {i} timed out joining"));
            }
        }
    }
    if let Some(e) = first_error {
        for (_, s) in sessions {
            s.close().await;
        }
        return Err(e.context(format!(
            "not every one of the {} clients could join",
            args.peers
        )));
    }
    sessions.sort_by_key(|(i, _)| *i);
    Ok(sessions)
}

/// One client's life after joining: send positions on a circle at `send_hz`,
/// drain events, until `stop` flips. Returns the session for a clean close.
async fn drive(
    i: usize,
    mut session: Session,
    send_hz: u32,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> Session {
    let center = Vec3 {
        x: (i % 16) as f32 * 20.0,
        y: (i / 16) as f32 * 20.0,
        z: 0.0,
    };
    let phase = i as f32 * 0.37;
    let started = Instant::now();
    let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(send_hz)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut open = true;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = every.tick(), if open => {
                let a = phase
                    + std::f32::consts::TAU * CIRCLE_TURNS_PER_SEC * started.elapsed().as_secs_f32();
                let pos = Vec3 {
                    x: center.x + CIRCLE_RADIUS * a.cos(),
                    y: center.y + CIRCLE_RADIUS * a.sin(),
                    z: center.z,
                };
                let rot = a + std::f32::consts::FRAC_PI_2;
                match session.send_position(pos, rot) {
                    Ok(()) => counters.sent.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counters.send_errors.fetch_add(1, Ordering::Relaxed),
                };
            }
            ev = session.next_event(), if open => match ev {
                Some(ClientEvent::PeerMoved { .. }) => {
                    counters.moved.fetch_add(1, Ordering::Relaxed);
                }
                Some(ClientEvent::Kick { .. } | ClientEvent::Disconnected { .. }) | None => {
                    counters.ended_early.fetch_add(1, Ordering::Relaxed);
                    open = false;
                }
                Some(_) => {
                    counters.other_events.fetch_add(1, Ordering::Relaxed);
                }
            },
        }
    }
    session
}

/// Everything measured over the window, ready to print.
struct Report {
    /// "in-process" or "external".
    mode: &'static str,
    /// Clients connected.
    peers: usize,
    /// Server tick rate (in-process only).
    tick_hz: Option<u16>,
    /// Position datagrams per second per client.
    send_hz: u32,
    /// Seconds spent connecting everyone.
    connect_secs: f64,
    /// The measured window's length.
    window: Duration,
    /// Tick statistics (in-process only).
    ticks: Option<shard_server::sim::TickSummary>,
    /// Whole-process CPU, % of one core (in-process: server + clients).
    process_cpu: Option<f64>,
    /// Simulation thread CPU, % of one core.
    sim_cpu: Option<f64>,
    /// Datagrams the clients sent per second.
    sent_per_sec: f64,
    /// `PeerMoved` events (one per peer move) the clients received per second.
    received_per_sec: f64,
    /// QUIC DATAGRAM frames the clients received per second.
    quic_datagrams_rx_per_sec: f64,
    /// UDP packets the clients received per second.
    udp_rx_per_sec: f64,
    /// Moves full replication would deliver per second: sent × (peers − 1).
    expected_per_sec: f64,
    /// Send errors over the window.
    send_errors: u64,
    /// Non-`PeerMoved` events over the window.
    other_events: u64,
    /// Sessions that ended early (whole run).
    ended_early: u64,
    /// Cores this process may use.
    cores: usize,
}

impl Report {
    /// Prints the human-readable lines, then the JSON line.
    fn print(&self) {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!("loadgen ({})", self.mode);
        println!("  peers                 {}", self.peers);
        if let Some(hz) = self.tick_hz {
            println!("  tick rate             {hz} Hz");
        }
        println!("  position send rate    {} Hz per peer", self.send_hz);
        println!("  connect time          {:.2} s", self.connect_secs);
        println!("  window                {:.2} s", self.window.as_secs_f64());
        if let Some(t) = &self.ticks {
            println!("  ticks measured        {}", t.ticks);
            println!(
                "  tick time             p50 {:.0} us, p99 {:.0} us, max {:.0} us",
                us(t.p50),
                us(t.p99),
                us(t.max)
            );
        }
        if self.mode == "in-process" {
            println!(
                "  CPU, whole process    {}% of one core (server + all clients; {} cores available)",
                show(self.process_cpu),
                self.cores
            );
            println!(
                "  CPU, shard-sim thread {}% of one core",
                show(self.sim_cpu)
            );
        } else {
            println!(
                "  CPU, loadgen process  {}% of one core ({} cores available)",
                show(self.process_cpu),
                self.cores
            );
        }
        println!(
            "  datagrams sent        {:.0}/s (clients -> server)",
            self.sent_per_sec
        );
        let ratio = if self.expected_per_sec > 0.0 {
            self.received_per_sec / self.expected_per_sec * 100.0
        } else {
            0.0
        };
        println!(
            "  datagrams received    {:.0}/s QUIC datagrams in {:.0}/s UDP packets (server -> clients)",
            self.quic_datagrams_rx_per_sec, self.udp_rx_per_sec
        );
        println!(
            "  moves received        {:.0}/s PeerMoved events; {:.1}% of the {:.0}/s full replication would give",
            self.received_per_sec, ratio, self.expected_per_sec
        );
        println!(
            "  send errors {}, other events {}, sessions ended early {}",
            self.send_errors, self.other_events, self.ended_early
        );
        let ticks = self.ticks;
        let line = serde_json::json!({
            "mode": self.mode,
            "peers": self.peers,
            "tick_hz": self.tick_hz,
            "send_hz": self.send_hz,
            "connect_secs": round(self.connect_secs, 2),
            "window_secs": round(self.window.as_secs_f64(), 2),
            "ticks": ticks.map(|t| t.ticks),
            "tick_p50_us": ticks.map(|t| round(us(t.p50), 1)),
            "tick_p99_us": ticks.map(|t| round(us(t.p99), 1)),
            "tick_max_us": ticks.map(|t| round(us(t.max), 1)),
            "process_cpu_pct": self.process_cpu.map(|v| round(v, 1)),
            "sim_cpu_pct": self.sim_cpu.map(|v| round(v, 1)),
            "datagrams_sent_per_sec": round(self.sent_per_sec, 1),
            "datagrams_received_per_sec": round(self.quic_datagrams_rx_per_sec, 1),
            "udp_packets_received_per_sec": round(self.udp_rx_per_sec, 1),
            "moves_received_per_sec": round(self.received_per_sec, 1),
            "moves_expected_per_sec": round(self.expected_per_sec, 1),
            "send_errors": self.send_errors,
            "other_events": self.other_events,
            "ended_early": self.ended_early,
            "cores": self.cores,
        });
        println!("{line}");
    }
}

/// The whole run: server (unless external), clients, warm-up, window, report.
async fn run(args: Args) -> Result<()> {
    let local = match args.server {
        Some(_) => None,
        None => Some(start_server(&args)?),
    };
    let (addr, server_key) = match (&local, args.server) {
        (Some(l), _) => (
            l.server
                .local_addr()
                .context("the server's bound address")?,
            Some(l.server.fingerprint()),
        ),
        (None, Some(addr)) => (addr, args.server_key),
        (None, None) => bail!("no server to drive"),
    };
    eprintln!(
        "loadgen: connecting {} peers to {addr} ({} handshakes at a time)...",
        args.peers, args.connect_parallel
    );
    let peers_dir = tempfile::tempdir().context("creating the clients' temporary folder")?;
    let t0 = Instant::now();
    let joined = join_all(&args, peers_dir.path(), addr, server_key).await;
    let sessions = match joined {
        Ok(s) => s,
        Err(e) => {
            if let Some(l) = local {
                l.server.shutdown().await;
            }
            return Err(e);
        }
    };
    let connect_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "loadgen: {} peers joined in {connect_secs:.2} s; warming up {} s, then measuring {} s",
        sessions.len(),
        args.warmup,
        args.secs
    );

    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let conns: Vec<quinn::Connection> = sessions
        .iter()
        .map(|(_, s)| s.connection().clone())
        .collect();
    let mut drivers = JoinSet::new();
    for (i, s) in sessions {
        drivers.spawn(drive(i, s, args.send_hz, counters.clone(), stop_rx.clone()));
    }

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let stats = local.as_ref().map(|l| l.server.stats());
    if let Some(s) = &stats {
        s.reset();
    }
    let before = Snapshot::take(&counters, &conns);
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    let after = Snapshot::take(&counters, &conns);
    let ticks = stats.as_ref().map(|s| s.summary());
    let _ = stop_tx.send(true);

    let window = after.at.duration_since(before.at);
    let per_sec = |a: u64, b: u64| a.saturating_sub(b) as f64 / window.as_secs_f64().max(1e-9);
    let sent_per_sec = per_sec(after.sent, before.sent);
    let report = Report {
        mode: if local.is_some() {
            "in-process"
        } else {
            "external"
        },
        peers: args.peers,
        tick_hz: local.as_ref().map(|_| args.hz),
        send_hz: args.send_hz,
        connect_secs,
        window,
        ticks,
        process_cpu: cpu_percent(before.process_cpu, after.process_cpu, window),
        sim_cpu: cpu_percent(before.sim_cpu, after.sim_cpu, window),
        sent_per_sec,
        received_per_sec: per_sec(after.moved, before.moved),
        quic_datagrams_rx_per_sec: per_sec(after.quic_datagrams_rx, before.quic_datagrams_rx),
        udp_rx_per_sec: per_sec(after.udp_rx, before.udp_rx),
        expected_per_sec: sent_per_sec * args.peers.saturating_sub(1) as f64,
        send_errors: after.send_errors.saturating_sub(before.send_errors),
        other_events: after.other_events.saturating_sub(before.other_events),
        ended_early: counters.ended_early.load(Ordering::Relaxed),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    report.print();

    // Close everyone (bounded), then the server.
    let mut closing = JoinSet::new();
    while let Some(done) = drivers.join_next().await {
        if let Ok(session) = done {
            closing.spawn(session.close());
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while closing.join_next().await.is_some() {}
    })
    .await;
    closing.abort_all();
    if let Some(l) = local
        && tokio::time::timeout(Duration::from_secs(10), l.server.shutdown())
            .await
            .is_err()
    {
        eprintln!("loadgen: the server did not stop within 10 s; exiting anyway");
    }
    Ok(())
}

/// Parses the arguments, runs on a multi-thread runtime, and bounds the whole
/// run so it always terminates.
fn main() -> Result<()> {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    // Joining (bounded per client), warm-up, window, and closing, with slack.
    let connect_budget = JOIN_TIMEOUT.as_secs()
        * (args.peers as u64)
            .div_ceil(args.connect_parallel as u64)
            .max(1);
    let limit = Duration::from_secs(connect_budget + args.warmup + args.secs + 60);
    let outcome = rt.block_on(async { tokio::time::timeout(limit, run(args)).await });
    rt.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(r) => r,
        Err(_) => Err(anyhow!(
            "loadgen did not finish within {} s; stopped",
            limit.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn arguments_parse_and_out_of_range_values_are_refused() {
        Args::command().debug_assert();
        let a = Args::try_parse_from(["loadgen", "--peers", "8", "--hz", "60"]).unwrap();
        assert_eq!((a.peers, a.hz, a.secs, a.send_hz), (8, 60, 20, 20));
        for bad in [
            &["loadgen", "--peers", "0"][..],
            &["loadgen", "--hz", "241"],
            &["loadgen", "--secs", "0"],
            &["loadgen", "--connect-parallel", "0"],
            &["loadgen", "--server-key", &"a".repeat(64)],
            &["loadgen", "--bogus"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
