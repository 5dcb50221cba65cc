//! `shard-client join`'s mirror flags: their ranges are checked before
//! anything connects, and a bad CA file is named in the error.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::process::Command;

/// Runs `shard-client join 127.0.0.1:9 --name vee --content accept ARGS`
/// (nothing listens there) and returns whether it succeeded and its stderr.
fn join(args: &[&str]) -> (bool, String) {
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_shard-client"))
        .args([
            "join",
            "127.0.0.1:9",
            "--name",
            "vee",
            "--content",
            "accept",
        ])
        .arg("--cache")
        .arg(home.path().join("runtime_cache"))
        .arg("--identity")
        .arg(home.path().join("identity.pem"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn mirror_flags_out_of_range_are_refused_with_their_range() {
    for (args, range) in [
        (["--mirror-concurrency", "0"], "1..=32"),
        (["--mirror-concurrency", "33"], "1..=32"),
        (["--mirror-read-timeout", "301"], "1..=300"),
        (["--mirror-connect-timeout", "0"], "1..=300"),
        (["--mirror-min-rate", "0"], "1..=1048576"),
    ] {
        let (ok, err) = join(&args);
        assert!(!ok, "{args:?} was accepted");
        assert!(err.contains(args[0]), "{args:?}: {err}");
        assert!(err.contains(range), "{args:?}: {err}");
    }
}

#[test]
fn a_mirror_ca_that_cannot_be_read_is_named_before_connecting() {
    let (ok, err) = join(&[
        "--mirror-ca",
        "/nonexistent/ca.pem",
        "--mirror-concurrency",
        "2",
    ]);
    assert!(!ok);
    assert!(err.contains("--mirror-ca /nonexistent/ca.pem"), "{err}");
}

/// A file that holds no certificate is refused by name before connecting,
/// not found out later as an untrusted mirror.
#[test]
fn a_mirror_ca_without_a_certificate_is_refused_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    let path = junk.display().to_string();
    let (ok, err) = join(&["--mirror-ca", &path]);
    assert!(!ok);
    assert!(
        err.contains(&format!("--mirror-ca {path}: no PEM certificate")),
        "{err}"
    );
}

#[test]
fn join_help_lists_the_mirror_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_shard-client"))
        .args(["join", "--help"])
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--mirror-ca",
        "--no-mirrors",
        "--mirror-connect-timeout",
        "--mirror-read-timeout",
        "--mirror-min-rate",
        "--mirror-concurrency",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
