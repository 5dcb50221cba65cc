//! `shard-client`: the headless client. `join` plays a scripted player and
//! prints every event as one JSON line on stdout (human logs go to stderr);
//! `whoami` prints the player's key fingerprint; `cache` serves modders.
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool: stdout is its output"
)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use shard_client::game::{QueuedGame, ReloadTracker, route_with_reloads};
use shard_client::{ClientEvent, ConnectOptions, ContentSettings, Dispatcher, OfferMode, Session};
use shard_protocol::Vec3;
use shard_protocol::identity::{Fingerprint, Identity};
use shard_protocol::limits::{
    DEFAULT_CACHE_CAP, DEFAULT_RELOAD_INTERVAL_MS, DEFAULT_SERVER_QUOTA, MAX_MIRROR_CONCURRENCY,
    MAX_MIRROR_MIN_KIB_PER_SEC, MAX_MIRROR_TIMEOUT_SECS,
};

/// Bytes in one MB as the flags count them (MiB).
const MB: u64 = 1024 * 1024;

/// Exit status of `join` when the server refused to admit the player
/// (full, name, allowlist, address cap, protocol version); the reason is on stderr.
const EXIT_REFUSED: u8 = 3;

/// Exit status of `join` when the session ended with an error after the
/// player joined (kicked, disconnected, connection lost, server stopped).
const EXIT_DISCONNECTED: u8 = 4;

/// The headless shard client.
#[derive(Debug, Parser)]
#[command(
    name = "shard-client",
    version,
    about = "headless shard client: join a server as a scripted player",
    after_help = "Exit status: 0 done, 1 error before joining (arguments, key, connection), \
                  3 refused by the server, 4 disconnected with an error after joining."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Join a server, run the actions in order, print events as JSON lines.
    Join {
        /// Server address: IP:PORT or HOST:PORT, e.g. 127.0.0.1:7777 or play.example.net:7777.
        addr: shard_client::ServerAddress,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Player key file [default: <user data dir>/shard/identity.pem].
        #[arg(long)]
        identity: Option<PathBuf>,
        /// Runtime cache folder [default: ./runtime_cache].
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Expected server key fingerprint (64 hex digits); skips known_servers.
        #[arg(long)]
        server_key: Option<String>,
        /// Actions, in order: move:X,Y,Z  say:TEXT  use:ENTITY_ID:ACTION
        /// rpc:PLUGIN:NAME:JSON  wait:SECONDS
        #[arg(long = "do", value_name = "ACTION")]
        actions: Vec<String>,
        /// Stay connected this many seconds after the last action.
        #[arg(long = "for", value_name = "SECONDS", default_value_t = 2.0)]
        stay: f64,
        /// Answer to content offers: accept, decline, or ask (prompts on the
        /// terminal, where "always"/"never" remember the answer). The offer
        /// is printed as JSON either way.
        #[arg(long, value_name = "MODE", default_value = "accept")]
        content: OfferMode,
        /// Most unpacked MB one server may make this player hold [default: 256].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        server_quota_mb: Option<u64>,
        /// Most MB the whole runtime cache may hold; other servers' least
        /// recently used bundles are evicted [default: 2048].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        cache_cap_mb: Option<u64>,
        /// Least seconds between two script reload requests [default: 5].
        #[arg(long, value_name = "SECONDS")]
        reload_interval: Option<f64>,
        #[command(flatten)]
        mirrors: Box<MirrorFlags>,
    },
    /// Inspect the runtime cache: what is installed, re-verify it, or clear it.
    Cache {
        #[command(subcommand)]
        op: CacheOp,
        /// Runtime cache folder [default: ./runtime_cache].
        #[arg(long, global = true)]
        cache: Option<PathBuf>,
    },
    /// Print this player's key fingerprint (the player id admins list).
    Whoami {
        /// Player key file [default: <user data dir>/shard/identity.pem].
        #[arg(long)]
        identity: Option<PathBuf>,
    },
}

/// What `shard-client cache` does.
#[derive(Debug, Subcommand)]
enum CacheOp {
    /// List installed plugins: name, version, hash, size, server (one JSON line each).
    Ls,
    /// Re-check every installed file against its stored bundle; exits 1 on any problem.
    Verify,
    /// Remove installed plugins, stored bundles and partial downloads (pins are kept).
    Clear,
    /// Evict least recently used bundles until the cache holds at most the target.
    Gc {
        /// Target size in MB [default: the default cache cap, 2048].
        #[arg(long, value_name = "N")]
        target_mb: Option<u64>,
    },
}

/// One scripted step of `join`.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Move(Vec3),
    Say(String),
    Use(u32, String),
    Rpc {
        plugin: String,
        name: String,
        json: String,
    },
    Wait(f64),
}

fn parse_action(s: &str) -> anyhow::Result<Action> {
    let (verb, arg) = s
        .split_once(':')
        .with_context(|| format!("action `{s}` needs the form VERB:ARG"))?;
    Ok(match verb {
        "move" => {
            let v: Vec<f32> = arg
                .split(',')
                .map(|p| p.trim().parse::<f32>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("move:{arg}: expected three numbers X,Y,Z"))?;
            let [x, y, z] = v[..] else {
                bail!("move:{arg}: expected three numbers X,Y,Z")
            };
            let p = Vec3::new(x, y, z);
            if !p.is_finite() {
                bail!("move:{arg}: coordinates must be finite");
            }
            Action::Move(p)
        }
        "say" => Action::Say(arg.to_string()),
        "use" => {
            let (id, action) = arg
                .split_once(':')
                .with_context(|| format!("use:{arg}: expected ENTITY_ID:ACTION"))?;
            Action::Use(
                id.parse()
                    .with_context(|| format!("use:{arg}: `{id}` is not an entity id"))?,
                action.to_string(),
            )
        }
        "rpc" => {
            let mut parts = arg.splitn(3, ':');
            let (Some(plugin), Some(name), Some(json)) = (parts.next(), parts.next(), parts.next())
            else {
                bail!("rpc:{arg}: expected PLUGIN:NAME:JSON");
            };
            if plugin.is_empty() || name.is_empty() {
                bail!("rpc:{arg}: PLUGIN and NAME must not be empty");
            }
            Action::Rpc {
                plugin: plugin.to_string(),
                name: name.to_string(),
                json: json.to_string(),
            }
        }
        "wait" => {
            let secs: f64 = arg
                .parse()
                .with_context(|| format!("wait:{arg}: expected seconds"))?;
            if !(0.0..=3600.0).contains(&secs) {
                bail!("wait:{arg}: seconds must be between 0 and 3600");
            }
            Action::Wait(secs)
        }
        other => bail!(
            "unknown action `{other}`: use move:X,Y,Z, say:TEXT, use:ENTITY_ID:ACTION, rpc:PLUGIN:NAME:JSON or wait:SECONDS"
        ),
    })
}

/// Runs the command; an error is printed as one line with each cause once
/// (not anyhow's report, which repeats a cause its message already names
/// and adds a backtrace when `RUST_BACKTRACE` is set), and exits 1.
fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", shard_protocol::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,quinn=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().cmd {
        Cmd::Whoami { identity } => {
            let path = identity.unwrap_or_else(shard_client::default_identity_path);
            let (id, _) = Identity::load_or_create(&path, "shard-player")?;
            println!("{}", id.fingerprint);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Cache { op, cache } => {
            cache_cmd(op, cache.unwrap_or_else(shard_client::default_cache_dir))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Join {
            addr,
            name,
            identity,
            cache,
            server_key,
            actions,
            stay,
            content,
            server_quota_mb,
            cache_cap_mb,
            reload_interval,
            mirrors,
        } => {
            if content == OfferMode::Ask && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                bail!(
                    "--content ask prompts on a terminal, but stdin is not one; use accept or decline"
                );
            }
            let reload_interval = match reload_interval {
                Some(s) if !(0.0..=3600.0).contains(&s) => {
                    bail!("--reload-interval {s}: seconds must be between 0 and 3600")
                }
                Some(s) => Duration::from_secs_f64(s),
                None => Duration::from_millis(DEFAULT_RELOAD_INTERVAL_MS),
            };
            let mb = |v: Option<u64>, default: u64| {
                v.map_or(Ok(default), |n| {
                    n.checked_mul(MB).context("the size is too large")
                })
            };
            let content = ContentSettings {
                mode: content,
                server_quota: mb(server_quota_mb, DEFAULT_SERVER_QUOTA)?,
                cache_cap: mb(cache_cap_mb, DEFAULT_CACHE_CAP)?,
                mirrors: mirrors.settings()?,
            };
            let actions = actions
                .iter()
                .map(|a| parse_action(a))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let server_key = server_key.as_deref().map(Fingerprint::parse).transpose()?;
            let opts = ConnectOptions {
                addr,
                name,
                identity: identity.unwrap_or_else(shard_client::default_identity_path),
                cache_dir: cache.unwrap_or_else(shard_client::default_cache_dir),
                server_key,
                content,
            };
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(join(opts, actions, stay, reload_interval))
        }
    }
}

fn cache_cmd(op: CacheOp, dir: PathBuf) -> anyhow::Result<()> {
    // Removing what a running client may be using waits for it to close.
    let cache = match op {
        CacheOp::Clear | CacheOp::Gc { .. } => shard_cache::RuntimeCache::open_exclusive(&dir),
        CacheOp::Ls | CacheOp::Verify => shard_cache::RuntimeCache::open(&dir),
    }
    .with_context(|| format!("cannot open the runtime cache at {}", dir.display()))?;
    match op {
        CacheOp::Ls => {
            let last_used = cache.last_used();
            for p in cache.list()? {
                let sha = shard_client::offer::hex(&p.hash);
                let line = serde_json::json!({
                    "plugin": p.plugin,
                    "version": p.version,
                    "size": p.size,
                    "server": p.server,
                    "installed_at": p.installed_at,
                    "last_used": last_used.get(&sha),
                    "sha256": sha,
                });
                println!("{line}");
            }
            for u in cache.server_usage()? {
                let line = serde_json::json!({
                    "server_key": u.server_key,
                    "address": u.address,
                    "unpacked": u.unpacked,
                    "bundles": u.bundles,
                    "last_used": u.last_used,
                });
                println!("{line}");
            }
            println!("{}", serde_json::json!({"total": cache.total_use()?}));
        }
        CacheOp::Gc { target_mb } => {
            let target = match target_mb {
                Some(n) => n.checked_mul(MB).context("--target-mb is too large")?,
                None => DEFAULT_CACHE_CAP,
            };
            for e in cache.gc(target)? {
                println!("{}", serde_json::json!({"evicted": e}));
            }
            println!("{}", serde_json::json!({"total": cache.total_use()?}));
        }
        CacheOp::Verify => {
            let mut bad = 0;
            for r in cache.verify()? {
                let ok = matches!(r.status, shard_cache::VerifyStatus::Ok);
                if !ok {
                    bad += 1;
                }
                let line = serde_json::json!({"plugin": r.plugin, "ok": ok, "status": format!("{:?}", r.status)});
                println!("{line}");
            }
            if bad > 0 {
                bail!(
                    "{bad} installed plugin(s) do not match their bundles; `shard-client cache clear` and rejoin to repair"
                );
            }
        }
        CacheOp::Clear => {
            cache.clear()?;
            eprintln!("cleared {}", dir.display());
        }
    }
    Ok(())
}

/// Shows bundle downloads as progress bars on stderr (stdout stays JSON only).
#[derive(Default)]
struct Progress {
    bars: std::collections::HashMap<u16, indicatif::ProgressBar>,
}

impl Progress {
    fn update(&mut self, ev: &ClientEvent) {
        match ev {
            ClientEvent::BundleProgress {
                plugin_id,
                name,
                received,
                total,
            } => {
                let bar = self.bars.entry(*plugin_id).or_insert_with(|| {
                    let b = indicatif::ProgressBar::with_draw_target(
                        Some(*total),
                        indicatif::ProgressDrawTarget::stderr(),
                    );
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "{msg:>16} [{bar:30}] {bytes}/{total_bytes}",
                    ) {
                        b.set_style(style.progress_chars("=> "));
                    }
                    b.set_message(name.clone());
                    b
                });
                bar.set_position(*received);
            }
            ClientEvent::BundleInstalled { plugin_id, .. }
            | ClientEvent::BundleFailed { plugin_id, .. } => {
                if let Some(b) = self.bars.remove(plugin_id) {
                    b.finish();
                }
            }
            _ => {}
        }
    }
}

fn print(ev: &ClientEvent) {
    println!("{}", ev.to_json());
}

/// Asks the player on the terminal about a content offer; returns (accept, remember).
fn prompt_offer(ev: &ClientEvent) -> (bool, bool) {
    use std::io::Write;
    if let ClientEvent::ContentOffer {
        server,
        plugins,
        more_plugins,
        packed,
        unpacked,
        scripts,
        required,
        ..
    } = ev
    {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{server} wants to install {} plugin(s): {} MB to download, {} MB on disk, {scripts} client script(s).",
            plugins.len() + more_plugins,
            shard_cache::mb(*packed),
            shard_cache::mb(*unpacked)
        );
        for p in plugins {
            let _ = writeln!(err, "  {} {} ({} script(s))", p.name, p.version, p.scripts);
        }
        if *required {
            let _ = writeln!(err, "The server requires it: declining leaves the server.");
        }
        let _ = write!(err, "Accept? [y]es, [n]o, [a]lways, ne[v]er: ");
        let _ = err.flush();
    }
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return (false, false);
    }
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => (true, false),
        "a" | "always" => (true, true),
        "v" | "never" => (false, true),
        _ => (false, false),
    }
}

/// How a session ended, for the exit status.
fn ended(welcomed: bool, reason: &str) -> ExitCode {
    if welcomed {
        eprintln!("disconnected: {reason}");
        ExitCode::from(EXIT_DISCONNECTED)
    } else {
        eprintln!("refused: {reason}");
        ExitCode::from(EXIT_REFUSED)
    }
}

async fn join(
    opts: ConnectOptions,
    actions: Vec<Action>,
    stay: f64,
    reload_interval: Duration,
) -> anyhow::Result<ExitCode> {
    let cache_dir = opts.cache_dir.clone();
    let dispatcher = Arc::new(Mutex::new(Dispatcher::new()));
    let mut session = Session::connect_shared(opts, dispatcher.clone()).await?;
    let mut progress = Progress::default();
    // The same event stream the game's DLL sees, including one `reload_scripts`
    // per batch of installs in which scripts changed, paced like the DLL's.
    let mut game = QueuedGame::new();
    let mut reloads = ReloadTracker::with_interval(reload_interval);
    let mut pacing = tokio::time::interval(shard_client::tuning::FRAME_POLL);
    let (answer_tx, mut answer_rx) = tokio::sync::mpsc::channel::<(bool, bool)>(1);
    let mut pending = actions.into_iter();
    let mut wait_until = tokio::time::Instant::now();
    let mut end: Option<tokio::time::Instant> = None;
    let mut welcomed = false;
    loop {
        if end.is_none() && tokio::time::Instant::now() >= wait_until {
            match pending.next() {
                Some(Action::Move(p)) => {
                    if let Err(e) = session.send_position(p, 0.0) {
                        print(&ClientEvent::Error {
                            message: format!("cannot send position: {e}"),
                        });
                    }
                }
                Some(Action::Say(t)) => {
                    session.say(&t).await;
                }
                Some(Action::Use(id, a)) => {
                    session.interact(id, &a).await;
                }
                Some(Action::Rpc { plugin, name, json }) => {
                    // Exactly what the pushed script's SendServerRpc would do:
                    // only names the plugin's installed, checked scripts send.
                    let built = dispatcher
                        .lock()
                        .map_err(|_| anyhow::anyhow!("dispatcher poisoned"))?
                        .client_rpc(&plugin, &name, &json);
                    match built {
                        Ok(msg) => {
                            session.send(msg).await;
                            let line = serde_json::json!({"event": "rpc_sent", "plugin": plugin, "name": name});
                            println!("{line}");
                        }
                        Err(e) => print(&ClientEvent::Error {
                            message: format!("rpc {plugin}:{name} not sent: {e}"),
                        }),
                    }
                }
                Some(Action::Wait(s)) => {
                    wait_until = tokio::time::Instant::now() + Duration::from_secs_f64(s)
                }
                None => {
                    end = Some(tokio::time::Instant::now() + Duration::from_secs_f64(stay.max(0.0)))
                }
            }
            continue;
        }
        let deadline = end.unwrap_or(wait_until);
        tokio::select! {
            _ = pacing.tick() => {
                reloads.flush(&cache_dir, &mut game);
                while let Some(line) = game.pop() {
                    println!("{line}");
                }
            }
            Some((accept, remember)) = answer_rx.recv() => {
                if let Err(e) = session.answer_offer(accept, remember) {
                    print(&ClientEvent::Error { message: format!("cannot answer the offer: {e}") });
                }
            }
            ev = session.next_event() => match ev {
                Some(ev) => {
                    progress.update(&ev);
                    if matches!(ev, ClientEvent::ContentOffer { needs_answer: true, .. }) {
                        let (tx, shown) = (answer_tx.clone(), ev.clone());
                        tokio::task::spawn_blocking(move || {
                            let _ = tx.blocking_send(prompt_offer(&shown));
                        });
                    }
                    welcomed |= matches!(ev, ClientEvent::Welcome { .. });
                    let over = match &ev {
                        ClientEvent::Kick { reason } | ClientEvent::Disconnected { reason } => {
                            Some(reason.clone())
                        }
                        _ => None,
                    };
                    route_with_reloads(ev, &cache_dir, &mut reloads, &mut game);
                    while let Some(line) = game.pop() {
                        println!("{line}");
                    }
                    if let Some(reason) = over {
                        print_drops(&dispatcher);
                        return Ok(ended(welcomed, &reason));
                    }
                }
                None => {
                    print_drops(&dispatcher);
                    let reason = session
                        .connection()
                        .close_reason()
                        .map_or_else(|| "the session ended".to_string(), |e| e.to_string());
                    return Ok(ended(welcomed, &reason));
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                if end.is_some() {
                    break;
                }
            }
        }
    }
    print_drops(&dispatcher);
    session.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Prints how many RPCs were dropped and why, as the session's last line.
fn print_drops(dispatcher: &Mutex<Dispatcher>) {
    let counters = dispatcher.lock().map(|d| d.counters()).unwrap_or_default();
    let line = serde_json::json!({"event": "rpc_drops", "counters": counters});
    println!("{line}");
}

/// `join`'s mirror flags: whether to use mirrors, an extra CA, and the
/// timeouts, pace and concurrency (absent: the defaults).
#[derive(clap::Args, Debug)]
struct MirrorFlags {
    /// Also trust this CA certificate (PEM) for HTTPS asset mirrors, for
    /// a private mirror or a test certificate.
    #[arg(long, value_name = "PEM")]
    mirror_ca: Option<PathBuf>,
    /// Never fetch bundles from the server's asset mirrors (QUIC only).
    #[arg(long)]
    no_mirrors: bool,
    /// Seconds to wait for a mirror's connection before trying the next
    /// one [default: 5].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=MAX_MIRROR_TIMEOUT_SECS))]
    mirror_connect_timeout: Option<u64>,
    /// Seconds a mirror may send nothing before the next one is tried
    /// [default: 10].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=MAX_MIRROR_TIMEOUT_SECS))]
    mirror_read_timeout: Option<u64>,
    /// Slowest average a mirror download may keep, KiB/s, before the
    /// next mirror (or the server) is tried [default: 32].
    #[arg(long, value_name = "KIB_PER_SEC", value_parser = clap::value_parser!(u64).range(1..=MAX_MIRROR_MIN_KIB_PER_SEC))]
    mirror_min_rate: Option<u64>,
    /// Bundles downloaded from mirrors at once [default: 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_MIRROR_CONCURRENCY as u64))]
    mirror_concurrency: Option<u64>,
}
impl MirrorFlags {
    /// The settings these flags ask for (clap has checked their ranges),
    /// the defaults where a flag is absent; fails if the CA file cannot be read.
    fn settings(&self) -> anyhow::Result<shard_client::MirrorSettings> {
        let defaults = shard_client::MirrorSettings::default();
        let extra_ca_pem = self
            .mirror_ca
            .as_ref()
            .map(|p| {
                shard_client::mirror::read_mirror_ca(p)
                    .map_err(|e| anyhow::anyhow!("--mirror-ca {e}"))
            })
            .transpose()?;
        let tuning = shard_client::MirrorTuning {
            connect_timeout_secs: self.mirror_connect_timeout,
            read_timeout_secs: self.mirror_read_timeout,
            min_kib_per_sec: self.mirror_min_rate,
            concurrency: self.mirror_concurrency,
        };
        Ok(tuning.apply(shard_client::MirrorSettings {
            enabled: !self.no_mirrors,
            extra_ca_pem,
            ..defaults
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_action("move:123,456,0").unwrap(),
            Action::Move(Vec3::new(123.0, 456.0, 0.0))
        );
        assert_eq!(
            parse_action("say:/help").unwrap(),
            Action::Say("/help".into())
        );
        assert_eq!(
            parse_action("use:7:use_door").unwrap(),
            Action::Use(7, "use_door".into())
        );
        assert_eq!(parse_action("wait:1.5").unwrap(), Action::Wait(1.5));
        assert_eq!(
            parse_action(r#"rpc:vote:Vote:{"option":1}"#).unwrap(),
            Action::Rpc {
                plugin: "vote".into(),
                name: "Vote".into(),
                json: r#"{"option":1}"#.into()
            }
        );
        assert!(parse_action("rpc:vote:Vote").is_err());
        assert!(parse_action("rpc::Vote:{}").is_err());
        assert!(
            parse_action("move:1,2")
                .unwrap_err()
                .to_string()
                .contains("three numbers")
        );
        assert!(
            parse_action("fly:1")
                .unwrap_err()
                .to_string()
                .contains("unknown action")
        );
        assert!(parse_action("move:nan,1,1").is_err());
    }
}
