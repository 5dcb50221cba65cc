//! The `shard-client join` command a modder or the README runs: scripted
//! actions, one JSON line per event, and RPC drop counters at the end.

use shard_e2e::{TestServer, example_plugin, headless_join, headless_join_at};

const NOISY: &str = r#"
__plugin__ = {"name": "noisy", "version": "1"}

@game.register_command("noise", "sends an RPC no client script registered")
def noise(peer, args):
    game.send_rpc(peer, "NobodyListens", {"n": 1})
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_walks_into_the_zone_prints_json_and_counts_dropped_rpcs() {
    let popup = example_plugin("popup_zone.py");
    let srv = TestServer::start_with_files(
        &[],
        &[("popup_zone.py", &popup), ("noisy.py", NOISY.as_bytes())],
    );
    let home = tempfile::tempdir().unwrap();
    let out = headless_join(
        srv.addr,
        home.path(),
        &[
            "--do",
            "move:123,456,0",
            "--do",
            "wait:1",
            "--do",
            "say:/noise",
            "--for",
            "1",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every stdout line is one JSON object.
    for line in stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v.get("event").is_some(), "{line}");
    }
    assert!(
        stdout.contains(r#""event":"popup","text":"Welcome to HexBar!""#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""event":"bundle_installed""#), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["event"], "rpc_drops", "{last}");
    assert_eq!(v["counters"]["not_whitelisted"], 1, "{last}");
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_action_sends_only_names_the_plugins_scripts_declare() {
    let home = tempfile::tempdir().unwrap();
    let (me, _) = shard_protocol::identity::Identity::load_or_create(
        &home.path().join("id.pem"),
        "shard-player",
    )
    .unwrap();
    let srv = TestServer::start_with_example(&[me.fingerprint], "vote");
    let out = headless_join(
        srv.addr,
        home.path(),
        &[
            "--do",
            "wait:2",
            "--do",
            "say:/poll Best bar? | Afterlife | Lizzie's",
            "--do",
            "wait:1",
            "--do",
            r#"rpc:vote:Vote:{"option": 1}"#,
            "--do",
            "rpc:vote:Rig:{}",
            "--do",
            "rpc:nosuch:Vote:{}",
            "--for",
            "1",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(r#"{"event":"rpc_sent","name":"Vote","plugin":"vote"}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("rpc vote:Rig not sent: plugin `vote` does not declare upstream RPC `Rig`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rpc nosuch:Vote not sent: plugin `nosuch` is not announced"),
        "{stdout}"
    );
    // The vote reached the plugin, whose new state came back.
    let voted = stdout.lines().any(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
        v["event"] == "rpc"
            && v["name"] == "PollState"
            && serde_json::from_str::<serde_json::Value>(v["json"].as_str().unwrap_or("{}"))
                .is_ok_and(|p| p["counts"] == serde_json::json!([0, 1]))
    });
    assert!(voted, "{stdout}");
    assert_eq!(srv.server.stats().client_rpc.snapshot().delivered, 1);
    srv.server.shutdown().await;
}

/// Players type a server's name, not its IP: `join localhost:PORT` resolves
/// it, installs, and pins the server's key under the name as typed (so the
/// pin holds when the name moves to another IP, and meets a name pointed at
/// another machine). A typo gets a clear refusal before any connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_by_host_name_pins_the_key_under_the_name() {
    let popup = example_plugin("popup_zone.py");
    let srv = TestServer::start_with_files(&[], &[("popup_zone.py", &popup)]);
    let home = tempfile::tempdir().unwrap();
    let by_name = format!("localhost:{}", srv.addr.port());
    let out = headless_join_at(&by_name, home.path(), &["--do", "wait:1"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""event":"bundle_installed""#), "{stdout}");
    let pins = std::fs::read_to_string(home.path().join("cache").join("known_servers")).unwrap();
    assert!(
        pins.lines()
            .any(|l| l.starts_with(&format!("{by_name} {}", srv.server.fingerprint().to_hex()))),
        "{pins}"
    );

    let typo = headless_join_at("localhost:77x", home.path(), &[]).await;
    assert!(!typo.status.success());
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(err.contains("HOST:PORT"), "{err}");
    srv.server.shutdown().await;
}

/// A mistyped port or a server that is down: the player hears within the
/// connect timeout (not the 30 s idle timeout) that nothing answered, and
/// what to check; the exit code is a local error's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_answer_is_reported_unreachable_with_what_to_check() {
    // Bound and never read: datagrams to it vanish, as to a server that is down.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let home = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = headless_join_at(&addr.to_string(), home.path(), &[]).await;
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot connect to {addr}: no answer within 10 s; is the server running, and is UDP port {} open to you?",
            addr.port()
        )),
        "{err}"
    );
    assert!(
        took < std::time::Duration::from_secs(20),
        "waited {took:?} for a server that never answers"
    );
    // Nothing was pinned for a server that never showed a key.
    let pins = std::fs::read_to_string(home.path().join("cache").join("known_servers"))
        .unwrap_or_default();
    assert!(!pins.contains(&addr.to_string()), "{pins}");
}
