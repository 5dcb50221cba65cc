//! `shard-server`: runs a shard dedicated server with the plugins in `./plugins`.
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool: stdout is its output"
)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use shard_server::Server;

/// Command line of the dedicated server; every option overrides server.toml.
#[derive(Debug, Parser)]
#[command(
    name = "shard-server",
    version,
    about = "shard dedicated server: Python plugins, zero-install clients"
)]
struct Cli {
    /// Configuration file (see server/server.example.toml); defaults apply without one.
    #[arg(long)]
    config: Option<PathBuf>,
    /// UDP address to listen on [default: 0.0.0.0:7777].
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Folder of Python plugins [default: ./plugins].
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// Folder for the server key and logs [default: ./server-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the admin web console [default: 127.0.0.1:7780]; "" turns it off.
    #[arg(long)]
    admin_http: Option<String>,
    /// Without a subcommand the server runs.
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// Tools for plugin authors and operators that do not start the server.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the admin console's login URL, or replace its token with
    /// `--rotate` (a running server accepts the new token at once).
    AdminToken {
        /// Replace the token with a new random one.
        #[arg(long)]
        rotate: bool,
    },
    /// Check a plugin's bundle as the server would at load: packs
    /// `<stem>/assets`, `<stem>/tweaks` and `<stem>/client`, checks archives,
    /// ArchiveXL `.xl` and TweakXL tweaks, runs the REDscript sandbox policy
    /// on the client scripts, prints diagnostics (file:line [rule]) or a
    /// summary of archives, `.xl`, data files, tweaks and RPCs; exits 1 on a
    /// violation.
    CheckPlugin {
        /// The plugin's `.py` file, or its bundle folder.
        path: PathBuf,
    },
    /// Write every current plugin bundle as `DIR/<sha256>.bundle`, ready to
    /// upload to the static host or CDN listed in `asset_mirrors` (rsync,
    /// `aws s3 sync`). Atomic, idempotent, deterministic; never deletes.
    PublishBundles {
        /// The folder to fill (created if missing).
        dir: PathBuf,
        /// Folder of Python plugins [default: `--plugins`, server.toml, ./plugins].
        #[arg(long = "plugins", id = "publish_plugins", value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
    /// Check that every asset mirror serves every current plugin bundle as
    /// players will ask for it (after `publish-bundles` and the upload, or
    /// in a deploy script): one line per mirror, each file it does not serve
    /// and why; exits 1 unless every mirror serves every bundle.
    CheckMirrors {
        /// Mirrors to check [default: `asset_mirrors` of server.toml].
        mirrors: Vec<String>,
        /// Folder of Python plugins [default: `--plugins`, server.toml, ./plugins].
        #[arg(long = "plugins", id = "check_plugins", value_name = "DIR")]
        plugins: Option<PathBuf>,
        /// An extra CA certificate (PEM) to trust, for a mirror behind a
        /// private CA [default: `mirror_ca` of server.toml].
        #[arg(long, value_name = "PEM")]
        mirror_ca: Option<PathBuf>,
    },
    /// Write the plugin API reference and the `game` type stubs by running
    /// tools/gen_plugin_docs.py inside the embedded interpreter.
    Docs {
        /// The reference to write.
        #[arg(long, default_value = "DOCS.md")]
        out: PathBuf,
        /// The type stubs to write (editors complete `game.` from them).
        #[arg(long, default_value = "plugins/game.pyi")]
        stubs: PathBuf,
        /// Plugins shown as examples (read, never run).
        #[arg(long, default_value = "plugins")]
        plugins: PathBuf,
        /// The generator script.
        #[arg(long, default_value = "tools/gen_plugin_docs.py")]
        tool: PathBuf,
    },
}

/// `check-plugin`: the same bundle build and policy check a load runs.
fn check_plugin(path: &std::path::Path) -> anyhow::Result<()> {
    let (name, bundle_dir) = if path.extension().is_some_and(|e| e == "py") {
        let stem = path.file_stem().context("the plugin file has no name")?;
        (
            stem.to_string_lossy().into_owned(),
            path.with_file_name(stem),
        )
    } else if path.is_dir() {
        let name = path.file_name().context("the folder has no name")?;
        (name.to_string_lossy().into_owned(), path.to_path_buf())
    } else {
        bail!(
            "{} is neither a plugin .py file nor its bundle folder",
            path.display()
        );
    };
    match shard_server::bundles::build_bundle_from_dir(&name, "check", &bundle_dir) {
        Ok(b) => {
            let sha = hex::encode(b.sha256);
            println!(
                "{name}: ok — bundle {} bytes, sha256 {sha}, RPCs {:?}",
                b.bytes.len(),
                b.rpc_names
            );
            for a in &b.content.archives {
                let xl = a.xl.as_deref().unwrap_or("no .xl");
                println!("  archive {} ({} files) with {xl}", a.path, a.files);
            }
            for d in &b.content.data_files {
                println!("  data {d}");
            }
            for t in &b.content.tweaks {
                println!(
                    "  tweak {}: adds records {:?}, flats {:?}",
                    t.path, t.adds.records, t.adds.flats
                );
            }
            if let Some(d) = shard_reds::needed_dialect(&b.dialect) {
                println!(
                    "  note: these client scripts need {d}; players whose game runs the other REDscript compiler cannot load them:"
                );
                for u in &b.dialect {
                    println!("    {u}");
                }
            }
            Ok(())
        }
        Err(e) => {
            println!("{e}");
            bail!("plugin {name} would not load")
        }
    }
}

/// Runs the command; an error is printed as one line with each cause once
/// (not anyhow's report, which repeats a cause its message already names
/// and adds a backtrace when `RUST_BACKTRACE` is set), and exits 1.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", shard_protocol::error_chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    // A plugin worker: confine, run one plugin, never return to the server's main.
    if let Some(code) = shard_server::plugin::worker::main_if_worker() {
        std::process::exit(code);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,quinn=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match &cli.cmd {
        Some(Cmd::CheckPlugin { path }) => return check_plugin(path),
        Some(Cmd::Docs {
            out,
            stubs,
            plugins,
            tool,
        }) => {
            shard_server::docs::generate(tool, out, stubs, plugins)?;
            println!("wrote {} and {}", out.display(), stubs.display());
            return Ok(());
        }
        Some(Cmd::AdminToken { .. } | Cmd::PublishBundles { .. } | Cmd::CheckMirrors { .. })
        | None => {}
    }
    let mut cfg = shard_server::load_config(cli.config.as_deref())?;
    if let Some(b) = cli.bind {
        cfg.bind = b;
    }
    if let Some(p) = cli.plugins {
        cfg.plugin_dir = p;
    }
    if let Some(d) = cli.data_dir {
        cfg.data_dir = d;
    }
    if let Some(a) = cli.admin_http {
        cfg.admin_http = a;
    }
    if let Some(Cmd::AdminToken { rotate }) = cli.cmd {
        return admin_token(&cfg, rotate);
    }
    if let Some(Cmd::PublishBundles { dir, plugins }) = &cli.cmd {
        return publish_bundles(plugins.as_deref().unwrap_or(&cfg.plugin_dir), dir);
    }
    if let Some(Cmd::CheckMirrors {
        mirrors,
        plugins,
        mirror_ca,
    }) = &cli.cmd
    {
        if let Some(p) = plugins {
            cfg.plugin_dir = p.clone();
        }
        if !mirrors.is_empty() {
            cfg.asset_mirrors = shard_server::config::normalise_mirrors(mirrors)?;
        }
        if let Some(ca) = mirror_ca {
            cfg.mirror_ca = Some(ca.clone());
        }
        return check_mirrors(&cfg);
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let signal = stop_signal()?;
        let server = Server::start(cfg)?;
        println!(
            "shard-server listening on {} with key {}",
            server.local_addr()?,
            server.fingerprint()
        );
        if let Some(url) = server.admin_login_url() {
            println!(
                "admin console: open {url} to log in (shown once; the token is in the data dir)"
            );
        } else if let Some(addr) = server.admin_addr() {
            println!("admin console on {addr} (`shard-server admin-token` prints the login URL)");
        }
        operator_console(&server, signal).await;
        tracing::info!("stopping: telling clients");
        server.shutdown().await;
        anyhow::Ok(())
    })
}

/// `publish-bundles DIR [--plugins DIR]`: prints one line per bundle written
/// or skipped, and fails if any plugin's bundle could not be published.
fn publish_bundles(plugins: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<()> {
    use shard_server::publish::Published;
    let report = shard_server::publish::publish_bundles(plugins, dir)?;
    for p in &report.published {
        match p {
            Published::Wrote {
                plugin,
                path,
                bytes,
            } => println!("wrote   {} ({plugin}, {bytes} bytes)", path.display()),
            Published::Skipped { plugin, path } => {
                println!("skipped {} ({plugin}, already there)", path.display())
            }
        }
    }
    for e in &report.failed {
        eprintln!("error: {e}");
    }
    if !report.failed.is_empty() {
        bail!("{} plugin bundle(s) not published", report.failed.len());
    }
    println!(
        "{} bundle(s) in {}; upload the folder to every asset mirror, then `shard-server check-mirrors` confirms they serve it",
        report.published.len(),
        dir.display()
    );
    Ok(())
}

/// `check-mirrors [MIRROR...] [--plugins DIR] [--mirror-ca PEM]`: the
/// start-up check of `cfg`'s mirrors on demand, every problem listed.
fn check_mirrors(cfg: &shard_server::config::ServerConfig) -> anyhow::Result<()> {
    use shard_server::mirror_check;
    let target = mirror_check::Target::of(cfg).context("mirror_ca")?;
    if target.mirrors.is_empty() {
        bail!(
            "no asset mirror to check: list them in server.toml's `asset_mirrors` or on the command line"
        );
    }
    let plugins = cfg.plugin_dir.as_path();
    let (expected, failed) = mirror_check::expected_in(plugins)?;
    for e in &failed {
        eprintln!("error: {e}");
    }
    if expected.is_empty() {
        bail!("no plugin bundle to look for in {}", plugins.display());
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let reports = rt.block_on(mirror_check::check(&target, &expected));
    let of = expected.len();
    let mut short = 0;
    for r in &reports {
        let missing = r.missing(of);
        if missing > 0 {
            short += 1;
        }
        if r.unreachable.is_some() || missing == 0 {
            let label = if missing == 0 { "ok" } else { "down" };
            println!("{label:<8} {}: {}", r.mirror, r.summary(of));
            continue;
        }
        // Every file, one per line (the one-line summary names five).
        println!(
            "missing  {}: does not serve {missing} of {of} bundle(s):",
            r.mirror
        );
        for p in &r.problems {
            println!("           {p}");
        }
    }
    if short > 0 {
        bail!(
            "{short} of {} mirror(s) do not serve every bundle; players fetch those from the game server: run `shard-server publish-bundles` and upload the folder",
            reports.len()
        );
    }
    if !failed.is_empty() {
        bail!("{} plugin bundle(s) could not be built", failed.len());
    }
    Ok(())
}

/// `admin-token [--rotate]`: prints the login URL, replacing the token first with `--rotate`.
fn admin_token(cfg: &shard_server::config::ServerConfig, rotate: bool) -> anyhow::Result<()> {
    use shard_server::admin::auth;
    let path = cfg.data_dir.join(auth::TOKEN_FILE);
    let token = if rotate {
        auth::rotate_token(&path)?
    } else {
        auth::load_or_create_token(&path)?.0
    };
    let tls = cfg.admin_tls_cert.is_some();
    match cfg.admin_addr()? {
        Some(addr) => println!("{}", auth::login_url(addr, tls, &token)),
        None => println!("the admin console is off (admin_http = \"\"); token: {token}"),
    }
    if rotate {
        println!("the old token no longer logs in");
    }
    Ok(())
}

/// Reads operator commands on stdin (`py CODE`) until SIGINT/SIGTERM.
async fn operator_console(server: &Server, signal: impl std::future::Future<Output = ()>) {
    tokio::pin!(signal);
    // A plain thread reads stdin: tokio's stdin would keep the runtime from
    // shutting down while a read is pending. The thread dies with the process.
    let (tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    let _ = std::thread::Builder::new()
        .name("shard-console".into())
        .spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
    let mut stdin_open = true;
    loop {
        tokio::select! {
            _ = &mut signal => return,
            line = lines.recv(), if stdin_open => match line {
                Some(line) => {
                    let line = line.trim();
                    if let Some(code) = line.strip_prefix("py ") {
                        println!("{}", server.console(code).await.trim_end());
                    } else if !line.is_empty() {
                        println!("unknown console command `{line}`; type `py CODE` to run Python in the admin namespace");
                    }
                }
                // No console (stdin closed or unreadable): keep serving until a signal.
                None => stdin_open = false,
            },
        }
    }
}

/// Installs the SIGINT/SIGTERM handlers now (so a signal that arrives early
/// is not missed) and returns a future that completes on the first of them.
#[cfg(unix)]
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Ctrl-C on platforms without Unix signals.
#[cfg(not(unix))]
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
