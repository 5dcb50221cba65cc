//! The bundle receiver refuses a bundle whose client scripts break the
//! sandbox policy (a server cannot push around the check): nothing is
//! installed, the user and the server are told.

use std::sync::{Arc, Mutex};

use shard_client::ClientEvent;
use shard_client::bundles::{BundleReceiver, BundleWork, TransferStats};
use shard_client::dispatch::Dispatcher;
use shard_protocol::ClientMsg;
use tokio::sync::mpsc;

fn run_receiver(
    cache_dir: &std::path::Path,
    work: Vec<BundleWork>,
) -> (Vec<ClientEvent>, Vec<ClientMsg>) {
    let cache = shard_cache::RuntimeCache::open(cache_dir).unwrap();
    let (ev_tx, mut ev_rx) = mpsc::channel(64);
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let (work_tx, work_rx) = mpsc::channel(64);
    let receiver = BundleReceiver::new(
        cache,
        "test-server".into(),
        ev_tx,
        out_tx,
        Arc::new(Mutex::new(Dispatcher::new())),
        Arc::new(TransferStats::default()),
    );
    let t = std::thread::spawn(move || receiver.run(work_rx));
    for w in work {
        work_tx.blocking_send(w).unwrap();
    }
    drop(work_tx);
    t.join().unwrap();
    let mut events = Vec::new();
    while let Ok(e) = ev_rx.try_recv() {
        events.push(e);
    }
    let mut sent = Vec::new();
    while let Ok(m) = out_rx.try_recv() {
        sent.push(m);
    }
    (events, sent)
}

fn bundle_with_script(script: &str) -> shard_cache::PackedBundle {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("client")).unwrap();
    std::fs::write(dir.path().join("client/ui.reds"), script).unwrap();
    shard_cache::pack_plugin_dir(dir.path()).unwrap()
}

#[test]
fn a_bundle_with_a_hooking_script_is_refused_and_not_installed() {
    let evil = bundle_with_script(
        "@wrapMethod(PlayerPuppet)\nprotected cb func OnGameAttached() -> Bool {\n  return wrappedMethod();\n}\n",
    );
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    // Pretend the bytes already arrived and verified: the store has them.
    shard_cache::RuntimeCache::open(&cache_dir)
        .unwrap()
        .store_bundle(&evil.bytes, &evil.sha256)
        .unwrap();

    let announce = BundleWork::Announce {
        plugin_id: 3,
        name: "evil".into(),
        version: "1".into(),
        sha256: evil.sha256,
        len: evil.bytes.len() as u64,
    };
    let (events, sent) = run_receiver(&cache_dir, vec![announce]);
    let failed = events.iter().find_map(|e| match e {
        ClientEvent::BundleFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    let error = failed.expect("a bundle_failed event");
    assert!(
        error.contains("hook-annotation") && error.contains("ui.reds:1:1"),
        "{error}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleInstalled { .. }))
    );
    assert!(
        matches!(
            &sent[..],
            [ClientMsg::BundleInstalled {
                ok: false,
                error: Some(_),
                ..
            }]
        ),
        "{sent:?}"
    );
    let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    assert!(cache.installed_hash("evil").is_none());
    assert!(cache.list().unwrap().is_empty());
}

#[test]
fn a_bundle_that_arrives_corrupt_twice_is_reported_and_not_installed() {
    let good = bundle_with_script("public func Init() -> Void {}\n");
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let len = good.bytes.len() as u64;
    let mut bad = good.bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let announce = BundleWork::Announce {
        plugin_id: 1,
        name: "ui".into(),
        version: "1".into(),
        sha256: good.sha256,
        len,
    };
    let chunk = |data: &Vec<u8>| BundleWork::Chunk {
        plugin_id: 1,
        len,
        chunk_id: 0,
        data: data.clone(),
    };
    let (events, sent) = run_receiver(&cache_dir, vec![announce, chunk(&bad), chunk(&bad)]);
    // Asked once, asked again after the first mismatch, then gave up and said so.
    let asks = sent
        .iter()
        .filter(|m| matches!(m, ClientMsg::NeedBundles { .. }))
        .count();
    assert_eq!(asks, 2, "{sent:?}");
    assert!(
        matches!(
            sent.last(),
            Some(ClientMsg::BundleInstalled { ok: false, .. })
        ),
        "{sent:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, ClientEvent::BundleFailed { error, .. } if error.contains("twice"))
        )
    );
    assert!(
        shard_cache::RuntimeCache::open(&cache_dir)
            .unwrap()
            .installed_hash("ui")
            .is_none()
    );
}
