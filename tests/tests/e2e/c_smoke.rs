//! The game's view of the client: a C program built against
//! `include/shard_client.h` and the cdylib joins a real server, chats, and
//! shuts down cleanly — the C ABI contract, end to end.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use shard_e2e::{TestServer, profile_dir};

/// The cdylib: cargo builds it next to this binary (in `deps/`, as fresh as
/// the rlib we link) since `shard-client` is also a cdylib; otherwise the
/// uplifted copy, and as a last resort it is built with the same target dir.
fn cdylib(profile: &Path) -> PathBuf {
    let fresh = profile.join("deps").join("libshard_client.so");
    if fresh.exists() {
        return fresh;
    }
    let lib = profile.join("libshard_client.so");
    if !lib.exists() {
        let target = profile.parent().expect("profile dir has a parent");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-p", "shard-client", "--lib"])
            .env("CARGO_TARGET_DIR", target);
        if profile.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the cdylib failed");
    }
    assert!(lib.exists(), "{} missing after build", lib.display());
    lib
}

/// A plugin that answers every chat line with an RPC to its client script.
const HEXBAR_PY: &str = r#"
__plugin__ = {"name": "hexbar", "version": "1"}

@game.on("OnChatMsg")
def relay(ev):
    game.send_rpc(ev["peer"], "HexBarStatus", {"said": ev["text"]})

@game.on_rpc("HexBarPing")
def ping(peer, payload):
    game.send_rpc(peer, "HexBarStatus", {"said": "pong " + payload["x"]})
"#;

/// The plugin's client script: registers the `HexBarStatus` handler.
const HEXBAR_REDS: &str = r#"
public class HexBarStatusHandler extends ShardRpcHandler {
  public func OnRpc(json: String) -> Void {
    let t = new inkText();
    t.SetText(ShardJsonGetString(json, "/said"));
  }
}

public func HexBarInit() -> Void {
  RegisterRpc(n"HexBarStatus", new HexBarStatusHandler());
}

public func HexBarPing() -> Void {
  SendServerRpc(n"HexBarPing", "{\"x\":\"from C\"}");
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_program_joins_chats_and_destroys() {
    if Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("gcc not found; skipping the C smoke test");
        return;
    }
    let profile = profile_dir();
    let lib = cdylib(&profile);
    let lib_dir = lib.parent().expect("lib dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().expect("temp dir");
    let exe = work.path().join("smoke");
    let out = Command::new("gcc")
        .args([
            "-std=c99",
            "-D_POSIX_C_SOURCE=199309L",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
        ])
        .arg(&exe)
        .arg(root.join("c/smoke.c"))
        .arg("-I")
        .arg(root.join("../client-runtime/include"))
        .arg("-L")
        .arg(lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lshard_client")
        .output()
        .expect("run gcc");
    assert!(
        out.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let hexbar_archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\hexbar\\status.inkwidget", b"widget".to_vec())
        .build();
    let srv = TestServer::start_with_files(
        &[],
        &[
            ("hexbar.py", HEXBAR_PY.as_bytes()),
            ("hexbar/client/status.reds", HEXBAR_REDS.as_bytes()),
            ("hexbar/assets/ui/status.json", b"{\"rows\": 2}"),
            ("hexbar/assets/hexbar.archive", &hexbar_archive),
            (
                "hexbar/assets/hexbar.archive.xl",
                b"localization:\n  onscreens:\n    en-us: ui\\status.json\n",
            ),
        ],
    );
    let addr = srv.addr.to_string();
    let player = work.path().join("player");
    std::fs::create_dir_all(&player).expect("player dir");
    let run = tokio::task::spawn_blocking(move || {
        Command::new(&exe)
            // The runner's LD_LIBRARY_PATH may list an older uplifted copy of
            // the library first; the rpath baked in above names the fresh one.
            .env_remove("LD_LIBRARY_PATH")
            .arg(addr)
            .arg(&player)
            .arg("HexBarStatus")
            .output()
            .expect("run the C program")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "smoke exited with {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("\"event\":\"welcome\""), "{stdout}");
    assert!(stdout.contains("hello from C"), "{stdout}");
    assert!(stdout.contains("smoke: ok"), "{stdout}");
    // The player was offered the content (one plugin with one script)
    // before anything was fetched, and C accepted it.
    let offer = stdout
        .find("\"event\":\"content_offer\"")
        .expect("an offer");
    let installed = stdout
        .find("\"event\":\"bundle_installed\"")
        .expect("an install");
    assert!(offer < installed, "{stdout}");
    assert!(
        stdout.contains("\"name\":\"hexbar\"") && stdout.contains("\"scripts\":1"),
        "{stdout}"
    );
    // The bundle arrived and was installed, the game was asked to reload its
    // scripts once, and the plugin's RPC reached the callback C registered.
    assert!(
        stdout.contains("\"event\":\"bundle_installed\""),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("\"event\":\"reload_scripts\"").count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains("\"event\":\"rpc\"") && stdout.contains("hello from C"),
        "{stdout}"
    );
    // And to load the plugin's archive with its .xl, once.
    let loads: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("\"event\":\"load_resources\""))
        .collect();
    assert_eq!(loads.len(), 1, "{stdout}");
    assert!(
        loads[0].contains("hexbar.archive\"") && loads[0].contains("hexbar.archive.xl"),
        "{stdout}"
    );
    // An undeclared upstream name was refused locally; the declared one
    // reached the plugin's on_rpc handler, whose answer came back.
    assert!(
        stdout.contains("send_rpc refused: plugin `hexbar` does not declare upstream RPC `Cheat`"),
        "{stdout}"
    );
    assert!(stdout.contains("pong from C rpc"), "{stdout}");
    srv.server.shutdown().await;
}
