//! Usage accounting and LRU eviction: per-server use, the current session's
//! bundles are never evicted, crash recovery at every eviction step, gc,
//! and remembered content answers.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::sample_plugin;
use shard_cache::{
    BundleUse, CacheError, ContentAnswer, EvictStep, InstallRequest, PackedBundle, RuntimeCache,
    VerifyStatus, pack_plugin_dir,
};

fn packed(root: &Path, name: &str) -> PackedBundle {
    pack_plugin_dir(&sample_plugin(&root.join(name), name, name)).unwrap()
}

/// Installs `b` as plugin `name` from server `key` and records the use.
fn install(cache: &RuntimeCache, key: &str, name: &str, b: &PackedBundle) {
    let req = InstallRequest {
        plugin: name,
        version: "1",
        server: &format!("{key}.example:7777"),
        sha256: b.sha256,
    };
    cache.install(&req, &b.bytes).unwrap();
    let u = BundleUse {
        sha256: b.sha256,
        plugin: name,
        unpacked: b.unpacked_len,
    };
    cache
        .record_use(key, &format!("{key}.example:7777"), &[u])
        .unwrap();
}

fn cost(b: &PackedBundle) -> u64 {
    b.bytes.len() as u64 + b.unpacked_len
}

#[test]
fn usage_is_counted_per_server_and_on_disk() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (packed(t.path(), "alpha"), packed(t.path(), "beta"));
    let cache = RuntimeCache::open(t.path().join("c")).unwrap();
    install(&cache, "ka", "alpha", &a);
    install(&cache, "kb", "beta", &b);
    assert_eq!(cache.total_use().unwrap(), cost(&a) + cost(&b));
    let per = cache.server_usage().unwrap();
    assert_eq!(per.len(), 2);
    let ka = per.iter().find(|u| u.server_key == "ka").unwrap();
    assert_eq!((ka.unpacked, ka.bundles), (a.unpacked_len, 1));
    assert_eq!(ka.address, "ka.example:7777");
    assert!(ka.last_used > 0);
}

#[test]
fn make_room_evicts_least_recently_used_and_never_the_kept() {
    let t = tempfile::tempdir().unwrap();
    let bs: Vec<_> = ["c1", "a1", "b1"]
        .iter()
        .map(|n| packed(t.path(), n))
        .collect();
    let cache = RuntimeCache::open(t.path().join("c")).unwrap();
    // c1 is the oldest, but the current session (server C) uses it.
    install(&cache, "kc", "c1", &bs[0]);
    install(&cache, "ka", "a1", &bs[1]);
    install(&cache, "kb", "b1", &bs[2]);
    let total = cache.total_use().unwrap();
    let keep: HashSet<[u8; 32]> = [bs[0].sha256].into();
    let evicted = cache.make_room(cost(&bs[0]), total, &keep).unwrap();
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].plugins, vec!["a1".to_string()]);
    assert_eq!(evicted[0].freed, cost(&bs[1]));
    assert!(cache.has_bundle(&bs[0].sha256) && cache.has_bundle(&bs[2].sha256));
    assert!(!cache.has_bundle(&bs[1].sha256));
    assert_eq!(cache.installed_hash("a1"), None);
    // Asking for more than the kept content allows fails and evicts nothing.
    let err = cache
        .make_room(total * 10, total, &keep)
        .expect_err("cannot fit");
    assert!(matches!(err, CacheError::CapTooSmall { .. }), "{err}");
    assert!(cache.has_bundle(&bs[2].sha256));
    assert_eq!(cache.server_usage().unwrap().len(), 2);
}

#[test]
fn crash_at_each_eviction_step_leaves_the_install_whole_or_gone() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (packed(t.path(), "alpha"), packed(t.path(), "beta"));
    for step in EvictStep::ALL {
        let root = t.path().join(format!("c-{step:?}"));
        let cache = RuntimeCache::open(&root).unwrap();
        install(&cache, "ka", "alpha", &a);
        install(&cache, "kb", "beta", &b);
        let err = cache.evict_with_crash_at(&a.sha256, step).unwrap_err();
        assert!(matches!(err, CacheError::SimulatedEvictCrash(s) if s == step));
        // The hook gave up the handle's lock, as the crashed process would.
        let reopened = RuntimeCache::open(&root).unwrap();
        // Whatever is installed verifies; the evicted plugin is gone from view.
        assert!(
            reopened
                .verify()
                .unwrap()
                .iter()
                .all(|r| r.status == VerifyStatus::Ok),
            "{step:?}"
        );
        assert_eq!(reopened.installed_hash("alpha"), None, "{step:?}");
        assert_eq!(reopened.installed_hash("beta"), Some(b.sha256));
        let hidden: Vec<_> = std::fs::read_dir(root.join("plugins"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "{step:?}: {hidden:?}");
        // Accounting matches the disk again, and the eviction can finish.
        let per = reopened.server_usage().unwrap();
        let ka = per.iter().find(|u| u.server_key == "ka");
        if step == EvictStep::AfterUninstalled {
            assert!(reopened.has_bundle(&a.sha256));
            assert!(ka.is_some());
            reopened.evict_bundle(&a.sha256).unwrap();
        }
        assert!(!reopened.has_bundle(&a.sha256));
        assert!(
            reopened
                .server_usage()
                .unwrap()
                .iter()
                .all(|u| u.server_key != "ka")
        );
        assert_eq!(reopened.total_use().unwrap(), cost(&b));
        // And the plugin can be installed again.
        install(&reopened, "ka", "alpha", &a);
        assert_eq!(reopened.installed_hash("alpha"), Some(a.sha256));
    }
}

#[test]
fn gc_evicts_down_to_the_target_oldest_first() {
    let t = tempfile::tempdir().unwrap();
    let bs: Vec<_> = ["p1", "p2", "p3"]
        .iter()
        .map(|n| packed(t.path(), n))
        .collect();
    let cache = RuntimeCache::open(t.path().join("c")).unwrap();
    for (i, b) in bs.iter().enumerate() {
        install(&cache, &format!("k{i}"), &format!("p{}", i + 1), b);
    }
    cache.append_partial(&[9; 32], 0, b"half a bundle").unwrap();
    let target = cost(&bs[2]);
    let evicted = cache.gc(target).unwrap();
    assert_eq!(evicted.len(), 2);
    assert_eq!(cache.total_use().unwrap(), cost(&bs[2]));
    assert_eq!(cache.installed_hash("p3"), Some(bs[2].sha256));
    assert_eq!(cache.partial_offset(&[9; 32]).unwrap(), 0);
    assert!(cache.gc(0).unwrap().len() == 1 && cache.total_use().unwrap() == 0);
}

#[test]
fn answers_are_remembered_per_server_and_survive_clear() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    assert_eq!(cache.content_answer("k"), None);
    let a = ContentAnswer {
        accept: true,
        content: "ab".repeat(32),
        script_plugins: ["hud".to_string()].into(),
        unpacked: 1000,
        answered_at: 0,
    };
    cache.remember_answer("k", a.clone()).unwrap();
    cache.clear().unwrap();
    let got = RuntimeCache::open(t.path())
        .unwrap()
        .content_answer("k")
        .unwrap();
    assert_eq!(
        (got.accept, &got.content, got.unpacked),
        (true, &a.content, 1000)
    );
    assert!(got.answered_at > 0);
    // A damaged file only means being asked again.
    std::fs::write(t.path().join(shard_cache::ANSWERS_FILE), b"{not json").unwrap();
    assert_eq!(cache.content_answer("k"), None);
}
