//! `bundle_push`: measures zero-install push at scale, and what hostile
//! clients can make the server do with it.
//!
//! Push: one ~5 MB plugin bundle sent to N clients that all join at once on
//! loopback; prints the time until every client has verified and installed
//! it, and MB/s.
//!
//! Attacks (`--attack amplification|non-reading`) run the real `shard-server`
//! binary as a child process, so its memory is its own:
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
//!
//! ```text
//! cargo run --release -p shard-e2e --bin bundle_push -- --clients 64
//! cargo run --release -p shard-e2e --bin bundle_push -- --attack amplification
//! cargo run --release -p shard-e2e --bin bundle_push -- --attack non-reading --attackers 6
//! ```
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool: stdout is its output"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shard_client::{ClientEvent, ConnectOptions, Dispatcher, Session};
use shard_e2e::attack::Raw;
use shard_e2e::{ServerProcess, noise, rss_of};
use shard_protocol::ClientMsg;
use shard_protocol::limits::MAX_BUNDLE_REQUESTS;
use shard_server::Server;
use shard_server::config::ServerConfig;

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    match text_arg(name)? {
        Some(v) => v
            .parse()
            .with_context(|| format!("{name} takes a whole number")),
        None => Ok(default),
    }
}

fn text_arg(name: &str) -> anyhow::Result<Option<String>> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(Some(
            args.get(i + 1)
                .context(format!("{name} needs a value"))?
                .clone(),
        )),
        None => Ok(None),
    }
}

fn main() -> anyhow::Result<()> {
    let clients = arg("--clients", 64)?;
    let size_kib = arg("--size-kib", 4900)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match text_arg("--attack")?.as_deref() {
        None => rt.block_on(run(clients, size_kib * 1024)),
        Some(mode @ ("amplification" | "non-reading")) => {
            let opts = AttackOpts {
                reading: mode == "amplification",
                attackers: arg("--attackers", if mode == "amplification" { 1 } else { 6 })?,
                requests: arg("--requests", 2 * MAX_BUNDLE_REQUESTS)?,
                size: size_kib * 1024,
                server_bin: text_arg("--server-bin")?.map(PathBuf::from),
                legacy: std::env::args().any(|a| a == "--legacy-config"),
                wait: Duration::from_secs(arg("--wait-secs", 30)? as u64),
            };
            rt.block_on(attack(mode, opts))
        }
        Some(other) => bail!("unknown attack `{other}`: use amplification or non-reading"),
    }
}

/// The test plugin: `big.py` and `size` bytes of noise in its bundle; returns the packed length.
fn write_plugin(plugins: &Path, size: usize) -> anyhow::Result<usize> {
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
    let packed =
        shard_cache::pack_plugin_dir(&plugins.join("big")).context("packing the test bundle")?;
    Ok(packed.bytes.len())
}

async fn run(clients: usize, size: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins");
    let packed = write_plugin(&plugins, size)?;
    let cfg = ServerConfig {
        bind: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        plugin_dir: plugins,
        max_players: clients + 1,
        // Every client comes from 127.0.0.1.
        max_per_address: clients + 1,
        admin_http: String::new(),
        ..ServerConfig::default()
    };
    let server = Server::start(cfg)?;
    let addr = server.local_addr()?;
    println!(
        "bundle: {:.2} MB packed ({} clients joining at once on {addr})",
        packed as f64 / 1e6,
        clients
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let home = dir.path().join(format!("client{i}"));
        tasks.push(tokio::spawn(async move {
            let (got, done) = install_once(addr, &home, &format!("c{i}")).await?;
            Ok::<_, String>((got, done))
        }));
    }
    let mut total = 0u64;
    let mut last = started;
    for t in tasks {
        let (bytes, done) = t.await?.map_err(anyhow::Error::msg)?;
        total += bytes;
        last = last.max(done);
    }
    let secs = (last - started).as_secs_f64();
    if total != packed as u64 * clients as u64 {
        bail!(
            "expected {} bytes in all, received {total}",
            packed as u64 * clients as u64
        );
    }
    println!(
        "all {clients} clients installed it in {secs:.2} s: {:.1} MB pushed, {:.1} MB/s aggregate",
        total as f64 / 1e6,
        total as f64 / 1e6 / secs
    );
    println!(
        "{{\"clients\":{clients},\"bundle_bytes\":{packed},\"seconds\":{secs:.3},\"mb_per_s\":{:.1}}}",
        total as f64 / 1e6 / secs
    );
    server.shutdown().await;
    Ok(())
}

/// A real client joins from `home`, waits until the bundle is installed;
/// returns the bundle bytes it received and when it was done.
async fn install_once(
    addr: std::net::SocketAddr,
    home: &Path,
    name: &str,
) -> Result<(u64, Instant), String> {
    let opts = ConnectOptions {
        addr,
        name: name.to_string(),
        identity: home.join("id.pem"),
        cache_dir: home.join("cache"),
        server_key: None,
        content: shard_client::ContentSettings::default(),
    };
    let mut s = Session::connect(opts, Dispatcher::new())
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match tokio::time::timeout(Duration::from_secs(120), s.next_event()).await {
            Ok(Some(ClientEvent::BundleInstalled { .. })) => break,
            Ok(Some(ClientEvent::BundleFailed { error, .. })) => return Err(error),
            Ok(Some(ClientEvent::Disconnected { reason })) => return Err(reason),
            Ok(Some(_)) => {}
            Ok(None) => return Err("session ended".to_string()),
            Err(_) => return Err("timed out".to_string()),
        }
    }
    let got = s.bundle_bytes_received();
    let done = Instant::now();
    s.close().await;
    Ok((got, done))
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

fn start_server_process(
    bin: &Path,
    dir: &Path,
    players: usize,
    legacy: bool,
) -> anyhow::Result<ServerProcess> {
    let mut cfg = format!("max_players = {players}\n");
    if !legacy {
        cfg.push_str(&format!("max_per_address = {players}\n"));
    }
    ServerProcess::start(bin, dir, &cfg)
}

async fn attack(mode: &str, o: AttackOpts) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let packed = write_plugin(&dir.path().join("plugins"), o.size)? as u64;
    let bin = match &o.server_bin {
        Some(b) => b.clone(),
        None => shard_e2e::workspace_bin("shard-server", "shard-server"),
    };
    let srv = start_server_process(&bin, dir.path(), o.attackers + 8, o.legacy)?;
    let pid = srv.child.id();
    let probe = RssProbe::start(pid);
    tokio::time::sleep(Duration::from_millis(500)).await;
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
    match install_once(srv.addr, &home, "real").await {
        Ok((got, _)) => println!(
            "a real client then joined and installed the bundle ({got} B) in {:.2} s",
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
