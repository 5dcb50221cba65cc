//! `shard-client cache ls|verify|clear` on a real cache folder.

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
    let packed = shard_cache::pack_plugin_dir(&plugin).unwrap();
    let cache_dir = tmp.path().join("cache");
    let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    let req = shard_cache::InstallRequest {
        plugin: "hud",
        version: "1.0",
        server: "127.0.0.1:7777",
        sha256: packed.sha256,
    };
    cache.install(&req, &packed.bytes).unwrap();
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
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&f, perms).unwrap();
    std::fs::write(&f, b"tampered").unwrap();
    let (ok, out, err) = run(&["cache", "verify", "--cache", dir]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("\"ok\":false") && err.contains("cache clear"),
        "{out} {err}"
    );

    let (ok, _, _) = run(&["cache", "clear", "--cache", dir]);
    assert!(ok);
    let (ok, out, _) = run(&["cache", "ls", "--cache", dir]);
    assert!(ok && out.trim().is_empty(), "{out}");
}
