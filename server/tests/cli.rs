//! The `shard-server` binary as an operator runs it: defaults, bad config,
//! and a clean stop on SIGTERM.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shard-server"))
}

#[test]
fn a_bad_config_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.toml");
    std::fs::write(&cfg, "name = \"x\"\n\ntick_hz = \"fast\"\n").unwrap();
    let out = server().arg("--config").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tick_hz") && err.contains("line 3"), "{err}");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let mut child = server()
        .args([
            "--bind",
            "127.0.0.1:0",
            "--admin-http",
            "127.0.0.1:0",
            "--plugins",
        ])
        .arg(&plugins)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.contains("listening on 127.0.0.1:") && first.contains("with key"),
        "{first}"
    );
    assert!(
        dir.path().join("data/server-key.pem").exists(),
        "the key is created on first start"
    );
    // The admin console's token is created on first start, private, and its
    // login URL printed once.
    let login = lines.next().unwrap().unwrap();
    let token = std::fs::read_to_string(dir.path().join("data/admin-token")).unwrap();
    assert!(
        login.contains("http://127.0.0.1:")
            && login.contains(&format!("/login?token={}", token.trim())),
        "{login}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn check_plugin_prints_diagnostics_for_authors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ui/client")).unwrap();
    std::fs::write(
        dir.path().join("ui.py"),
        "__plugin__ = {\"name\": \"ui\", \"version\": \"1\"}\n",
    )
    .unwrap();
    let good = "public class H extends ShardRpcHandler {\n  public func OnRpc(json: String) -> Void {}\n}\npublic func Init() -> Void { RegisterRpc(n\"Ping\", new H()); }\n";
    std::fs::write(dir.path().join("ui/client/ui.reds"), good).unwrap();
    let out = server()
        .arg("check-plugin")
        .arg(dir.path().join("ui.py"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ui: ok") && stdout.contains("Ping"),
        "{stdout}"
    );

    std::fs::write(
        dir.path().join("ui/client/evil.reds"),
        "public native func Steal() -> Void\n",
    )
    .unwrap();
    let out = server()
        .arg("check-plugin")
        .arg(dir.path().join("ui"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("evil.reds:1:") && stdout.contains("[native-decl]"),
        "{stdout}"
    );
}

/// Runs `shard-server check-plugin PATH`; returns success and stdout.
fn check_plugin(path: &std::path::Path) -> (bool, String) {
    let out = server().arg("check-plugin").arg(path).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_plugin_reports_archives_xl_and_tweaks_and_refuses_vanilla_changes() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (ok, stdout) = check_plugin(&repo.join("plugins/mobile_cc.py"));
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains(
            "archive assets/mobile_cc.archive (2 files) with assets/mobile_cc.archive.xl"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "tweak tweaks/commandcenter.yaml: adds records [\"Vehicle.shard_mobile_cc_commandcenter\"]"
        ),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("op/tweaks")).unwrap();
    std::fs::write(
        dir.path().join("op/tweaks/katana.yaml"),
        "# make every katana legendary\nItems.Preset_Katana_Default:\n  quality: Quality.Legendary\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("op/tweaks/old.tweak"), "x").unwrap();
    let (ok, stdout) = check_plugin(&dir.path().join("op"));
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains(".tweak format is not accepted yet"),
        "{stdout}"
    );
    std::fs::remove_file(dir.path().join("op/tweaks/old.tweak")).unwrap();
    let (ok, stdout) = check_plugin(&dir.path().join("op"));
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("op/tweaks/katana.yaml:2: [tweak-record]"),
        "{stdout}"
    );
}

#[test]
fn admin_token_rotate_replaces_the_token_and_prints_the_login_url() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |extra: &[&str]| {
        let out = server()
            .arg("--data-dir")
            .arg(&data)
            .args(["--admin-http", "127.0.0.1:7799", "admin-token"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run(&[]);
    let t1 = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert!(
        first.contains(&format!("http://127.0.0.1:7799/login?token={}", t1.trim())),
        "{first}"
    );
    let second = run(&["--rotate"]);
    let t2 = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert_ne!(t1, t2);
    assert!(second.contains(t2.trim()), "{second}");
}

#[test]
fn check_plugin_notes_scripts_that_need_one_redscript_version() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("odd/client")).unwrap();
    std::fs::write(
        dir.path().join("odd.py"),
        "__plugin__ = {\"name\": \"odd\", \"version\": \"1\"}\n",
    )
    .unwrap();
    // `continue` exists only in REDscript 1.0.
    let script = "public class Counter {\n  public func Odd(xs: array<Int32>) -> Int32 {\n    let n = 0;\n    for x in xs {\n      if x % 2 == 0 {\n        continue;\n      }\n      n += 1;\n    }\n    return n;\n  }\n}\n";
    std::fs::write(dir.path().join("odd/client/odd.reds"), script).unwrap();
    let out = server()
        .arg("check-plugin")
        .arg(dir.path().join("odd.py"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("need REDscript 1.0") && stdout.contains("odd.reds:6:"),
        "{stdout}"
    );
}
