//! `shard-client cache ls|verify|clear` on a real cache folder.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shard-client"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Opens the cache at `cache_dir` and installs the plugin folder `plugin`
/// as `hud` 1.0 from 127.0.0.1:7777; returns the open handle and the bundle.
fn install_hud(
    cache_dir: &std::path::Path,
    plugin: &std::path::Path,
) -> (shard_cache::RuntimeCache, shard_cache::PackedBundle) {
    let packed = shard_cache::pack_plugin_dir(plugin).expect("the test plugin packs");
    let cache = shard_cache::RuntimeCache::open(cache_dir).expect("the cache opens");
    let req = shard_cache::InstallRequest {
        plugin: "hud",
        version: "1.0",
        server: "127.0.0.1:7777",
        sha256: packed.sha256,
    };
    cache
        .install(&req, &packed.bytes)
        .expect("the test plugin installs");
    (cache, packed)
}

#[test]
fn cache_ls_verify_and_clear_serve_modders() {
    let tmp = tempfile::tempdir().unwrap();
    let plugin = tmp.path().join("hud");
    std::fs::create_dir_all(plugin.join("assets/ui")).unwrap();
    std::fs::write(plugin.join("assets/ui/hud.json"), b"{\"a\":1}").unwrap();
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\hud\\hud.inkwidget", b"widget".to_vec())
        .build();
    std::fs::write(plugin.join("assets/hud.archive"), archive).unwrap();
    std::fs::write(
        plugin.join("assets/hud.archive.xl"),
        "localization:\n  onscreens:\n    en-us: ui\\hud.json\n",
    )
    .unwrap();
    let cache_dir = tmp.path().join("cache");
    let (cache, packed) = install_hud(&cache_dir, &plugin);
    let dir = cache_dir.to_str().unwrap();

    let (ok, out, _) = run(&["cache", "ls", "--cache", dir]);
    assert!(ok);
    assert!(
        out.contains("\"plugin\":\"hud\"") && out.contains(&packed.sha256_hex()),
        "{out}"
    );
    assert!(out.contains("127.0.0.1:7777"), "{out}");

    let (ok, out, _) = run(&["cache", "verify", "--cache", dir]);
    assert!(ok, "{out}");

    // Tamper with an installed file: verify must say so and fail.
    let f = cache_dir.join("plugins/hud/assets/ui/hud.json");
    let mut perms = std::fs::metadata(&f).unwrap().permissions();
    #[allow(
        clippy::permissions_set_readonly_false,
        reason = "the test makes a file writable again to tamper with it"
    )]
    perms.set_readonly(false);
    std::fs::set_permissions(&f, perms).unwrap();
    std::fs::write(&f, b"tampered").unwrap();
    let (ok, out, err) = run(&["cache", "verify", "--cache", dir]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("\"ok\":false") && err.contains("cache clear"),
        "{out} {err}"
    );

    // Clearing waits for every other client to close the cache.
    drop(cache);
    let (ok, _, err) = run(&["cache", "clear", "--cache", dir]);
    assert!(ok, "{err}");
    let (ok, out, _) = run(&["cache", "ls", "--cache", dir]);
    assert!(ok && out.trim() == r#"{"total":0}"#, "{out}");
}

#[test]
fn cache_ls_shows_per_server_use_and_gc_evicts_to_a_target() {
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    for (i, name) in ["old", "new"].iter().enumerate() {
        let plugin = tmp.path().join(name);
        std::fs::create_dir_all(plugin.join("assets")).unwrap();
        let archive = shard_cache::content::rdar::RdarBuilder::new()
            .file("base\\a.bin", vec![b'a' + i as u8; 4096])
            .build();
        std::fs::write(plugin.join("assets/a.archive"), archive).unwrap();
        let packed = shard_cache::pack_plugin_dir(&plugin).unwrap();
        let key = format!("{i}").repeat(64);
        let req = shard_cache::InstallRequest {
            plugin: name,
            version: "1",
            server: "127.0.0.1:7777",
            sha256: packed.sha256,
        };
        cache.install(&req, &packed.bytes).unwrap();
        let used = shard_cache::BundleUse {
            sha256: packed.sha256,
            plugin: name,
            unpacked: packed.unpacked_len,
        };
        cache.record_use(&key, "127.0.0.1:7777", &[used]).unwrap();
    }
    let archive_len = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\a.bin", vec![b'a'; 4096])
        .build()
        .len();
    let dir = cache_dir.to_str().unwrap();
    let (ok, out, _) = run(&["cache", "ls", "--cache", dir]);
    assert!(ok, "{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let servers: Vec<_> = lines
        .iter()
        .filter(|l| l["server_key"].is_string())
        .collect();
    assert_eq!(servers.len(), 2, "{out}");
    assert!(
        servers
            .iter()
            .all(|s| s["unpacked"] == archive_len as u64 && s["last_used"].as_u64().unwrap() > 0),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .filter(|l| l["plugin"].is_string())
            .all(|l| l["last_used"].is_u64())
    );
    // A 1 MB target keeps both (they are small); 0 evicts everything. (No
    // other client may have the cache open while gc removes plugins.)
    drop(cache);
    let (ok, out, _) = run(&["cache", "gc", "--target-mb", "1", "--cache", dir]);
    assert!(ok && !out.contains("\"evicted\""), "{out}");
    let (ok, out, _) = run(&["cache", "gc", "--target-mb", "0", "--cache", dir]);
    assert_eq!(out.matches("\"evicted\"").count(), 2, "{out}");
    assert!(ok && out.contains(r#"{"total":0}"#), "{out}");
    let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    assert!(cache.list().unwrap().is_empty());
}

/// `shard-client cache ls` run while another process (this test) has the
/// cache open with an install in progress: the command's open must not
/// remove that install's staging folder as a crash's leftover.
#[test]
fn a_cache_command_beside_a_running_client_leaves_its_install_in_progress_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let live = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    // What an install in progress looks like: a staging folder being filled.
    let staging = cache_dir.join("plugins/.staging-hud-1");
    std::fs::create_dir_all(staging.join("assets")).unwrap();
    std::fs::write(staging.join("assets/half.json"), b"{").unwrap();
    let dir = cache_dir.to_str().unwrap();

    let (ok, _, err) = run(&["cache", "ls", "--cache", dir]);
    assert!(ok, "{err}");
    assert!(
        staging.join("assets/half.json").exists(),
        "removed under a live client"
    );

    // Once the client is gone, the same command repairs the cache.
    drop(live);
    let (ok, _, err) = run(&["cache", "ls", "--cache", dir]);
    assert!(ok, "{err}");
    assert!(!staging.exists(), "a crash's leftover was kept");
}

/// `shard-client cache clear` (and `gc`) while another process (this test)
/// has the cache open is refused with a message saying why, and removes
/// nothing; once the client is gone it clears.
#[test]
fn clearing_a_cache_a_running_client_has_open_is_refused_until_it_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let plugin = tmp.path().join("hud");
    std::fs::create_dir_all(plugin.join("client")).unwrap();
    std::fs::write(plugin.join("client/hud.reds"), b"// hud\n").unwrap();
    let cache_dir = tmp.path().join("cache");
    let (live, packed) = install_hud(&cache_dir, &plugin);
    let dir = cache_dir.to_str().unwrap();

    for op in [["cache", "clear"], ["cache", "gc"]] {
        let (ok, _, err) = run(&[op[0], op[1], "--cache", dir]);
        assert!(!ok, "{op:?} ran beside a live client");
        assert!(err.contains("in use by a running client"), "{err}");
        assert_eq!(live.installed_hash("hud"), Some(packed.sha256), "{op:?}");
    }

    drop(live);
    let (ok, _, err) = run(&["cache", "clear", "--cache", dir]);
    assert!(ok, "{err}");
    let reopened = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    assert_eq!(reopened.installed_hash("hud"), None);
}
