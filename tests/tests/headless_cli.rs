//! The `shard-client join` command a modder or the README runs: scripted
//! actions, one JSON line per event, and RPC drop counters at the end.

use shard_e2e::{TestServer, example_plugin, headless_join};

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
