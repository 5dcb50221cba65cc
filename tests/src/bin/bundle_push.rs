//! `bundle_push`: measures zero-install push at scale — one ~5 MB plugin
//! bundle sent to N clients that all join at once on loopback. Prints the
//! total time until every client has verified and installed it, and MB/s.
//!
//! `cargo run --release -p shard-e2e --bin bundle_push -- --clients 64`

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shard_client::{ClientEvent, ConnectOptions, Dispatcher, Session};
use shard_e2e::noise;
use shard_server::Server;
use shard_server::config::ServerConfig;

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context(format!("{name} needs a value"))?
            .parse()
            .with_context(|| format!("{name} takes a whole number")),
        None => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let clients = arg("--clients", 64)?;
    let size_kib = arg("--size-kib", 4900)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(clients, size_kib * 1024))
}

async fn run(clients: usize, size: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(plugins.join("big/assets/world"))?;
    std::fs::write(
        plugins.join("big.py"),
        "__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n",
    )?;
    std::fs::write(
        plugins.join("big/assets/world/interior.streamingsector"),
        noise(size, 0x1234_5678_9abc_def1),
    )?;
    let packed =
        shard_cache::pack_plugin_dir(&plugins.join("big")).context("packing the test bundle")?;
    let cfg = ServerConfig {
        bind: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        plugin_dir: plugins,
        max_players: clients + 1,
        admin_http: String::new(),
        ..ServerConfig::default()
    };
    let server = Server::start(cfg)?;
    let addr = server.local_addr()?;
    println!(
        "bundle: {:.2} MB packed ({} clients joining at once on {addr})",
        packed.bytes.len() as f64 / 1e6,
        clients
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let home = dir.path().join(format!("client{i}"));
        tasks.push(tokio::spawn(async move {
            let opts = ConnectOptions {
                addr,
                name: format!("c{i}"),
                identity: home.join("id.pem"),
                cache_dir: home.join("cache"),
                server_key: None,
            };
            let mut s = Session::connect(opts, Dispatcher::new())
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match tokio::time::timeout(Duration::from_secs(120), s.next_event()).await {
                    Ok(Some(ClientEvent::BundleInstalled { .. })) => break,
                    Ok(Some(ClientEvent::BundleFailed { error, .. })) => return Err(error),
                    Ok(Some(_)) => {}
                    Ok(None) => return Err("session ended".to_string()),
                    Err(_) => return Err("timed out".to_string()),
                }
            }
            let got = s.bundle_bytes_received();
            let done = Instant::now();
            s.close().await;
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
    if total != packed.bytes.len() as u64 * clients as u64 {
        bail!(
            "expected {} bytes in all, received {total}",
            packed.bytes.len() as u64 * clients as u64
        );
    }
    println!(
        "all {clients} clients installed it in {secs:.2} s: {:.1} MB pushed, {:.1} MB/s aggregate",
        total as f64 / 1e6,
        total as f64 / 1e6 / secs
    );
    println!(
        "{{\"clients\":{clients},\"bundle_bytes\":{},\"seconds\":{secs:.3},\"mb_per_s\":{:.1}}}",
        packed.bytes.len(),
        total as f64 / 1e6 / secs
    );
    server.shutdown().await;
    Ok(())
}
