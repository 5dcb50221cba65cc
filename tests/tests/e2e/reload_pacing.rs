//! Reload pacing with the real headless client: a server that rewrites a
//! plugin's client script every 0.5 s for 10 s (the server hot-reloads it and
//! re-announces the bundle each time) makes the game reload scripts at most
//! 3 times, and the last reload carries the latest version.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use shard_e2e::{TestServer, save_file, workspace_bin};

const STORM_PY: &str = "__plugin__ = {\"name\": \"storm\", \"version\": \"1\"}\n";

fn script(n: u32) -> String {
    format!(
        "// revision {n}\npublic class StormHandler extends ShardRpcHandler {{\n  \
         public func OnRpc(json: String) -> Void {{}}\n}}\n\n\
         public func StormInit() -> Void {{\n  RegisterRpc(n\"Storm\", new StormHandler());\n}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_rewritten_every_half_second_causes_at_most_three_reloads() {
    let exe = workspace_bin("shard-client");
    let first = script(0);
    let srv = TestServer::start_with_files(
        &[],
        &[
            ("storm.py", STORM_PY.as_bytes()),
            ("storm/client/storm.reds", first.as_bytes()),
        ],
    );
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(exe)
        .args(["join", &srv.addr.to_string(), "--name", "vee", "--identity"])
        .arg(home.path().join("id.pem"))
        .arg("--cache")
        .arg(home.path().join("cache"))
        // The default pacing (5 s); the storm lasts 10 s, then the last
        // reload may take up to 5 s more.
        .args(["--for", "19"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Wait for the first install and its reload.
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !lines
        .iter()
        .any(|l: &String| l.contains("\"event\":\"reload_scripts\""))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = tokio::task::block_in_place(|| rx.recv_timeout(left))
            .unwrap_or_else(|_| panic!("no first reload: {lines:?}"));
        lines.push(line);
    }
    let path = srv.plugin_dir().join("storm/client/storm.reds");
    for n in 1..=20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        save_file(&path, &script(n));
    }
    let last = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("storm"))
        .unwrap()
        .sha256_hex();
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert!(status.success());
    let _ = reader.join();
    lines.extend(rx.try_iter());
    let storm = &lines[lines
        .iter()
        .position(|l| l.contains("\"event\":\"reload_scripts\""))
        .unwrap_or(0)
        + 1..];
    let installs = storm
        .iter()
        .filter(|l| l.contains("\"event\":\"bundle_installed\""))
        .count();
    let reloads: Vec<usize> = storm
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"event\":\"reload_scripts\""))
        .map(|(i, _)| i)
        .collect();
    eprintln!(
        "storm: 20 rewrites, {installs} installs, {} reload requests",
        reloads.len()
    );
    assert!(
        installs >= 5,
        "the storm barely reached the client: {storm:?}"
    );
    assert!(
        (1..=3).contains(&reloads.len()),
        "{} reloads: {storm:?}",
        reloads.len()
    );
    // Latest state wins: the final version was installed, and a reload came after it.
    let final_install = storm
        .iter()
        .rposition(|l| l.contains("\"event\":\"bundle_installed\"") && l.contains(&last))
        .unwrap_or_else(|| panic!("the last version {last} was never installed: {storm:?}"));
    assert!(
        reloads.last().is_some_and(|r| *r > final_install),
        "{storm:?}"
    );
    srv.server.shutdown().await;
}
