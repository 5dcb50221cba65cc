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
use shard_client::{ClientEvent, ConnectOptions, Dispatcher, Session};
use shard_protocol::Vec3;
use shard_protocol::identity::Fingerprint;
use shard_server::Server;
use shard_server::config::{RateLimits, ServerConfig};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Usage text printed by `--help` and after a bad argument.
const USAGE: &str = "\
usage: loadgen [--peers N] [--hz N] [--secs N] [--warmup N] [--send-hz N]
               [--connect-parallel N] [--server ADDR [--server-key FP]]

  --peers N             headless clients to connect (default 64)
  --hz N                server tick rate, in-process only (default 30)
  --secs N              measured window in seconds (default 20)
  --warmup N            seconds of load before measuring (default 3)
  --send-hz N           position datagrams per second per client (default 20)
  --connect-parallel N  handshakes in flight at once (default 16)
  --server ADDR         drive an external server instead of starting one
  --server-key FP       the external server's key fingerprint (64 hex digits);
                        without it each client pins on first contact";

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
#[derive(Debug, Clone)]
struct Args {
    /// Number of clients.
    peers: usize,
    /// Server tick rate (in-process only).
    hz: u16,
    /// Measured window.
    secs: u64,
    /// Load before measuring.
    warmup: u64,
    /// Position datagrams per second per client.
    send_hz: u32,
    /// Handshakes in flight at once.
    connect_parallel: usize,
    /// External server, if any.
    server: Option<SocketAddr>,
    /// The external server's key, if given.
    server_key: Option<Fingerprint>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            peers: 64,
            hz: 30,
            secs: 20,
            warmup: 3,
            send_hz: 20,
            connect_parallel: 16,
            server: None,
            server_key: None,
        }
    }
}

/// What `parse_args` found: settings to run with, or a request for help.
enum Parsed {
    /// Run with these settings.
    Run(Args),
    /// Print the usage and stop.
    Help,
}

/// Parses `argv` (without the program name).
fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Parsed> {
    /// Parses one flag's value, naming the flag on error.
    fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let v = v.ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))?;
        v.parse().map_err(|e| anyhow!("{flag} {v}: {e}\n{USAGE}"))
    }
    let mut a = Args::default();
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--peers" => a.peers = num(&flag, it.next())?,
            "--hz" => a.hz = num(&flag, it.next())?,
            "--secs" => a.secs = num(&flag, it.next())?,
            "--warmup" => a.warmup = num(&flag, it.next())?,
            "--send-hz" => a.send_hz = num(&flag, it.next())?,
            "--connect-parallel" => a.connect_parallel = num(&flag, it.next())?,
            "--server" => a.server = Some(num(&flag, it.next())?),
            "--server-key" => {
                let v: String = num(&flag, it.next())?;
                a.server_key =
                    Some(Fingerprint::parse(&v).map_err(|e| anyhow!("--server-key {v}: {e}"))?);
            }
            "-h" | "--help" => return Ok(Parsed::Help),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if a.peers == 0 || a.peers > 4096 {
        bail!("--peers {} is outside 1..=4096", a.peers);
    }
    if !(1..=240).contains(&a.hz) {
        bail!("--hz {} is outside 1..=240", a.hz);
    }
    if a.secs == 0 {
        bail!("--secs must be at least 1");
    }
    if a.send_hz == 0 || a.send_hz > 1000 {
        bail!("--send-hz {} is outside 1..=1000", a.send_hz);
    }
    if a.connect_parallel == 0 {
        bail!("--connect-parallel must be at least 1");
    }
    if a.server_key.is_some() && a.server.is_none() {
        bail!("--server-key only makes sense with --server");
    }
    Ok(Parsed::Run(a))
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

/// Formats an optional number for JSON (`null` when absent).
fn json_num(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_string(), |v| format!("{v:.1}"))
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
        addr,
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
        let t = self.ticks.unwrap_or_default();
        println!(
            "{{\"mode\":\"{}\",\"peers\":{},\"tick_hz\":{},\"send_hz\":{},\"connect_secs\":{:.2},\"window_secs\":{:.2},\
\"ticks\":{},\"tick_p50_us\":{},\"tick_p99_us\":{},\"tick_max_us\":{},\"process_cpu_pct\":{},\"sim_cpu_pct\":{},\
\"datagrams_sent_per_sec\":{:.1},\"datagrams_received_per_sec\":{:.1},\"udp_packets_received_per_sec\":{:.1},\
\"moves_received_per_sec\":{:.1},\"moves_expected_per_sec\":{:.1},\
\"send_errors\":{},\"other_events\":{},\"ended_early\":{},\"cores\":{}}}",
            self.mode,
            self.peers,
            self.tick_hz
                .map_or_else(|| "null".into(), |h| h.to_string()),
            self.send_hz,
            self.connect_secs,
            self.window.as_secs_f64(),
            self.ticks
                .map_or_else(|| "null".into(), |t| t.ticks.to_string()),
            json_num(self.ticks.map(|_| us(t.p50))),
            json_num(self.ticks.map(|_| us(t.p99))),
            json_num(self.ticks.map(|_| us(t.max))),
            json_num(self.process_cpu),
            json_num(self.sim_cpu),
            self.sent_per_sec,
            self.quic_datagrams_rx_per_sec,
            self.udp_rx_per_sec,
            self.received_per_sec,
            self.expected_per_sec,
            self.send_errors,
            self.other_events,
            self.ended_early,
            self.cores,
        );
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
    let args = match parse_args(std::env::args().skip(1))? {
        Parsed::Run(a) => a,
        Parsed::Help => {
            println!("{USAGE}");
            return Ok(());
        }
    };
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
