//! A player's disk fills up: the install fails with the system's reason,
//! the session goes on, the cache is left whole (no half install, the
//! verified bundle kept), and once there is room again the next join
//! installs from the cache without downloading. The disk is a small tmpfs
//! mounted for the test (root only: the test says NOT CHECKED and passes
//! elsewhere, except in CI, where it fails).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use shard_cache::RuntimeCache;
use shard_client::ClientEvent;
use shard_e2e::tmpfs::SmallDisk;
use shard_e2e::{TestPlayer, TestServer, blob_archive, noise, unless_refused, write_plugin_files};

/// Bytes of incompressible game content in the plugin's bundle.
const CONTENT: usize = 100 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_install_cleanly_and_the_next_join_installs_from_the_cache() {
    let srv = TestServer::start_with(|cfg| {
        write_plugin_files(
            &cfg.plugin_dir,
            &[
                (
                    "roomy.py",
                    b"__plugin__ = {\"name\": \"roomy\", \"version\": \"1\"}\n",
                ),
                (
                    "roomy/assets/roomy.archive",
                    &blob_archive(&noise(CONTENT, 0xd15c_f011)),
                ),
            ],
        );
    });
    let player = TestPlayer::new("vee");
    let cache_dir = player.options(srv.addr).cache_dir;
    // Room for the download, not for the download and its install.
    let kib = (CONTENT as u64 * 3 / 2) / 1024;
    let Some(disk) = unless_refused("mount a small tmpfs", SmallDisk::mount(&cache_dir, kib))
    else {
        return;
    };

    let mut c = player.join(srv.addr).await;
    let failed = c
        .expect(
            "roomy failed",
            |e| matches!(e, ClientEvent::BundleFailed { name, .. } if name == "roomy"),
        )
        .await;
    let ClientEvent::BundleFailed { error, .. } = failed else {
        unreachable!()
    };
    assert!(error.contains("No space left on device"), "{error}");
    c.assert_never(|e| matches!(e, ClientEvent::Disconnected { .. }));
    c.expect("settled", |e| matches!(e, ClientEvent::BundlesSettled))
        .await;
    c.session.close().await;
    {
        // No half install; the verified download is kept.
        let cache = RuntimeCache::open(&cache_dir).unwrap();
        let plugins: Vec<_> = std::fs::read_dir(cache_dir.join("plugins"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(plugins.is_empty(), "{plugins:?}");
        assert!(cache.list().unwrap().is_empty());
    }

    // The player frees space; the next join installs from the cache.
    disk.resize(kib * 4).unwrap();
    let mut again = player.join(srv.addr).await;
    let ev = again
        .expect(
            "roomy installed",
            |e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "roomy"),
        )
        .await;
    let ClientEvent::BundleInstalled { source, .. } = ev else {
        unreachable!()
    };
    assert_eq!(source, "cache", "the kept download was used");
    assert_eq!(again.session.bundle_bytes_received(), 0);
    again.session.close().await;
    assert_eq!(shard_e2e::assert_cache_verifies(&cache_dir), 1);
    srv.server.shutdown().await;
}
