//! The push benchmark keeps working: `bundle_push` with a few clients and a
//! small bundle runs the QUIC push, the wire alone and the install alone
//! against a real server process and ends with its JSON line. Figures are
//! not judged here (speed is measured by running the benchmark, not by
//! tests); only that each was measured over the whole payload.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::process::Command;

/// Runs `bundle_push` with three clients, a 300 KiB bundle and `extra`
/// arguments; returns what it printed, its last line, and that line parsed
/// as the JSON object it must be.
fn bundle_push(extra: &str) -> (String, String, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_bundle_push"))
        .args([
            "--clients",
            "3",
            "--size-kib",
            "300",
            "--rounds",
            "1",
            extra,
        ])
        .output()
        .expect("run bundle_push");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bundle_push failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("bundle_push printed nothing");
    let line = serde_json::from_str(last).expect("the last line is JSON");
    let last = last.to_string();
    (stdout, last, line)
}

#[test]
fn bundle_push_measures_the_push_the_wire_and_the_install_alone() {
    let (stdout, last, line) = bundle_push("--no-nginx");
    assert_eq!(line["clients"], 3);
    assert!(line["bundle_bytes"].as_u64().unwrap() > 300 * 1024);
    for figure in [
        "quic_mb_per_s",
        "quic_wire_mb_per_s",
        "install_alone_mb_per_s",
    ] {
        let v = line[figure].as_f64().unwrap_or(0.0);
        assert!(v > 0.0, "{figure} is {v} in {last}");
    }
    assert!(line["nginx_mb_per_s"].is_null(), "--no-nginx: {last}");
    // Where the clients' caches went decides what the install costs: said.
    assert!(stdout.contains("clients' homes in "), "{stdout}");
    assert!(
        stdout.contains("install alone (no network: 3 downloads"),
        "{stdout}"
    );
}

#[test]
fn bundle_push_with_mirror_measures_nginx_and_the_mirror_path_in_the_same_run() {
    assert!(
        shard_e2e::nginx::Nginx::installed(),
        "nginx is not installed; .ci/run installs it"
    );
    let (_, last, line) = bundle_push("--mirror");
    for figure in ["quic_mb_per_s", "mirror_mb_per_s", "nginx_mb_per_s"] {
        let v = line[figure].as_f64().unwrap_or(0.0);
        assert!(v > 0.0, "{figure} is {v} in {last}");
    }
    // Every byte of the mirror path came from nginx, none over QUIC.
    let bundle = line["bundle_bytes"].as_u64().unwrap();
    assert_eq!(
        line["mirror_bytes_from_mirror"].as_u64(),
        Some(3 * bundle),
        "{last}"
    );
    // Both sides' CPU is measured (it may round to 0 for so small a push).
    for cpu in [
        "server_cpu_seconds",
        "nginx_cpu_seconds",
        "h2load_cpu_seconds",
    ] {
        assert!(
            line[cpu].as_f64().is_some_and(|v| v >= 0.0),
            "{cpu} in {last}"
        );
    }
    assert!(
        line["quic_over_nginx"].as_f64().is_some_and(|v| v > 0.0),
        "{last}"
    );
}
