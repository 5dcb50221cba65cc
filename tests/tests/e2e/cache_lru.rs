//! LRU eviction across three servers under a small cache cap, with the real
//! headless client: the current server's bundles are kept even when they are
//! the oldest, other servers' least recently used bundles go, and a
//! `kill -9` at every step of an eviction leaves a cache that verifies and a
//! rejoin that completes.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shard_cache::{EvictStep, RuntimeCache, TEST_PAUSE_ENV, VerifyStatus};
use shard_e2e::{TestServer, noise, workspace_bin};

/// Size of each plugin's one incompressible asset (so each bundle costs
/// about 1.2 MB in the cache: packed plus installed).
const ASSET: usize = 600 * 1024;

fn plugin(name: &str, seed: u64) -> (String, Vec<u8>) {
    (
        format!("{name}/assets/blob.archive"),
        shard_e2e::blob_archive(&noise(ASSET, seed)),
    )
}

fn server(plugins: &[(&str, u64)]) -> TestServer {
    TestServer::start_with(|cfg| {
        for (name, seed) in plugins {
            let py = format!("__plugin__ = {{\"name\": \"{name}\", \"version\": \"1\"}}\n");
            std::fs::write(cfg.plugin_dir.join(format!("{name}.py")), py).unwrap();
            let (rel, data) = plugin(name, *seed);
            let path = cfg.plugin_dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        }
    })
}

/// `shard-client join` for `srv` with `cache` and an optional cap, as player
/// `who`. Each run gets its own player key and name: a killed client's
/// session lingers on the server until its idle timeout, and names are unique.
fn join_cmd(exe: &Path, who: &str, cache: &Path, srv: &TestServer, cap_mb: Option<u32>) -> Command {
    let home = cache.parent().unwrap_or(Path::new("."));
    let mut cmd = Command::new(exe);
    cmd.args(["join", &srv.addr.to_string(), "--name", who, "--identity"])
        .arg(home.join(format!("id-{who}.pem")))
        .arg("--cache")
        .arg(cache)
        .args(["--do", "wait:1", "--for", "1"])
        .env_remove(TEST_PAUSE_ENV);
    if let Some(mb) = cap_mb {
        cmd.args(["--cache-cap-mb", &mb.to_string()]);
    }
    cmd
}

fn join(exe: &Path, who: &str, cache: &Path, srv: &TestServer, cap_mb: Option<u32>) -> String {
    let out = join_cmd(exe, who, cache, srv, cap_mb).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn installed(cache: &Path) -> Vec<String> {
    let c = RuntimeCache::open(cache).unwrap();
    let mut names: Vec<String> = c.list().unwrap().into_iter().map(|p| p.plugin).collect();
    names.sort();
    names
}

fn verifies(cache: &Path) {
    let c = RuntimeCache::open(cache).unwrap();
    for r in c.verify().unwrap() {
        assert_eq!(r.status, VerifyStatus::Ok, "{}", r.plugin);
    }
}

/// Starts the join paused at `step`, waits until it stops there and kills it
/// with SIGKILL.
fn kill_at(cmd: &mut Command, step: EvictStep) {
    let mut child = cmd
        .env(TEST_PAUSE_ENV, step.name())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("paused at") {
                let _ = tx.send(());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let paused = rx.recv_timeout(deadline - Instant::now()).is_ok();
    child.kill().unwrap(); // SIGKILL: no destructor, no cleanup runs.
    let _ = child.wait();
    assert!(paused, "the client never reached {}", step.name());
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lru_eviction_keeps_the_current_server_and_survives_kill_9_at_every_step() {
    let exe = workspace_bin("shard-client");
    let home = tempfile::tempdir().unwrap();
    let (c_srv, a_srv, b_srv) = (
        server(&[("c1", 1), ("c2", 2)]),
        server(&[("a1", 3)]),
        server(&[("b1", 4)]),
    );
    let base = home.path().join("base");
    // C first (its c1 is the oldest bundle of all), then A, then B.
    for srv in [&c_srv, &a_srv, &b_srv] {
        tokio::task::block_in_place(|| join(&exe, "base", &base, srv, None));
    }
    assert_eq!(installed(&base), ["a1", "b1", "c1", "c2"]);
    let before = RuntimeCache::open(&base).unwrap().total_use().unwrap();
    assert!(before > 4 * 1024 * 1024, "{before}");

    // C's operator changes c2: rejoining C under a 4 MB cap must evict. Of
    // the others' bundles, the old c2 and then a1 (least recently used) go;
    // c1 is older still but the session uses it.
    let (rel, data) = plugin("c2", 99);
    std::fs::write(c_srv.plugin_dir().join(rel), data).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut runs: Vec<(String, PathBuf)> = Vec::new();
    for step in EvictStep::ALL {
        let cache = home.path().join(format!("cache-{}", step.name()));
        copy_tree(&base, &cache);
        let mut cmd = join_cmd(&exe, step.name(), &cache, &c_srv, Some(4));
        tokio::task::block_in_place(|| kill_at(&mut cmd, step));
        // After the crash the cache opens, repairs itself and verifies; the
        // current server's c1 and the recent b1 were never touched.
        verifies(&cache);
        let now = installed(&cache);
        assert!(
            now.contains(&"c1".to_string()) && now.contains(&"b1".to_string()),
            "{}: {now:?}",
            step.name()
        );
        runs.push((step.name().to_string(), cache));
    }
    let clean = home.path().join("cache-clean");
    copy_tree(&base, &clean);
    runs.push(("no crash".into(), clean));

    for (i, (what, cache)) in runs.iter().enumerate() {
        let who = format!("rejoin-{i}");
        let out = tokio::task::block_in_place(|| join(&exe, &who, cache, &c_srv, Some(4)));
        assert_eq!(installed(cache), ["b1", "c1", "c2"], "{what}\n{out}");
        verifies(cache);
        let c = RuntimeCache::open(cache).unwrap();
        assert!(c.total_use().unwrap() <= 4 * 1024 * 1024, "{what}");
        let usage = c.server_usage().unwrap();
        assert_eq!(usage.len(), 2, "{what}: {usage:?}"); // C (c1, c2) and B; A is gone
        if what == "no crash" {
            assert_eq!(
                out.matches("\"event\":\"cache_evicted\"").count(),
                2,
                "{out}"
            );
            assert!(out.contains("\"plugins\":[\"a1\"]"), "{out}");
        }
    }
    // `cache ls` shows per-server use and last-used times.
    let out = Command::new(&exe)
        .args(["cache", "ls", "--cache"])
        .arg(&runs[runs.len() - 1].1)
        .output()
        .unwrap();
    let ls = String::from_utf8_lossy(&out.stdout);
    assert_eq!(ls.matches("\"server_key\"").count(), 2, "{ls}");
    assert!(ls.contains("\"last_used\""), "{ls}");
    for srv in [c_srv, a_srv, b_srv] {
        srv.server.shutdown().await;
    }
}
