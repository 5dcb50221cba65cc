//! The bundle receiver refuses a bundle whose client scripts break the
//! sandbox policy (a server cannot push around the check): nothing is
//! installed, the user and the server are told. It offers before fetching,
//! refuses an offer over the quota without asking for a byte, takes no
//! chunk it did not ask for, and refuses a bundle larger than announced.

use std::sync::{Arc, Mutex};

use shard_client::bundles::{BundleReceiver, BundleWork, Origin, TransferStats};
use shard_client::dispatch::Dispatcher;
use shard_client::queue::{SessionLink, event_queue};
use shard_client::{ClientEvent, ContentSettings};
use shard_protocol::ClientMsg;
use shard_protocol::limits::MAX_EVENT_QUEUE_BYTES;
use tokio::sync::mpsc;

fn run_receiver(
    cache_dir: &std::path::Path,
    work: Vec<BundleWork>,
) -> (Vec<ClientEvent>, Vec<ClientMsg>) {
    run_with(cache_dir, ContentSettings::default(), work).0
}

type Outcome = ((Vec<ClientEvent>, Vec<ClientMsg>), Option<String>);

/// Runs a receiver over `work`; returns its events, its messages to the
/// server, and why it left the server (if it did).
fn run_with(
    cache_dir: &std::path::Path,
    settings: ContentSettings,
    work: Vec<BundleWork>,
) -> Outcome {
    let cache = shard_cache::RuntimeCache::open(cache_dir).unwrap();
    let link = SessionLink::detached(MAX_EVENT_QUEUE_BYTES);
    let (ev_tx, mut ev_rx) = event_queue(link.clone());
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let (work_tx, work_rx) = mpsc::channel(64);
    let origin = Origin {
        address: "test-server".into(),
        server_key: "ab".repeat(32),
    };
    let receiver = BundleReceiver::new(
        cache,
        origin,
        settings,
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
    while let Some(e) = ev_rx.try_recv() {
        events.push(e);
    }
    let mut sent = Vec::new();
    while let Ok(m) = out_rx.try_recv() {
        sent.push(m);
    }
    ((events, sent), link.left_because())
}

fn announce(b: &shard_cache::PackedBundle, id: u16, name: &str, unpacked: u64) -> BundleWork {
    BundleWork::Announce {
        plugin_id: id,
        name: name.into(),
        version: "1".into(),
        sha256: b.sha256,
        len: b.bytes.len() as u64,
        unpacked_len: unpacked,
        client_scripts: 1,
    }
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

    let work = vec![announce(&evil, 3, "evil", evil.unpacked_len)];
    let (events, sent) = run_receiver(&cache_dir, work);
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
    let chunk = |data: &Vec<u8>| BundleWork::Chunk {
        plugin_id: 1,
        len,
        chunk_id: 0,
        data: data.clone(),
    };
    let work = vec![
        announce(&good, 1, "ui", good.unpacked_len),
        BundleWork::AnnouncementsDone,
        chunk(&bad),
        chunk(&bad),
    ];
    let (events, sent) = run_receiver(&cache_dir, work);
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

#[test]
fn an_offer_over_the_quota_is_refused_before_any_request() {
    let b = bundle_with_script("public func Init() -> Void {}\n");
    let tmp = tempfile::tempdir().unwrap();
    let settings = ContentSettings {
        server_quota: 1000,
        ..ContentSettings::default()
    };
    let work = vec![
        BundleWork::Welcome {
            server_name: "greedy".into(),
            content_required: true,
        },
        announce(&b, 1, "big", 1500),
        BundleWork::AnnouncementsDone,
        // Unrequested chunks are not taken.
        BundleWork::Chunk {
            plugin_id: 1,
            len: b.bytes.len() as u64,
            chunk_id: 0,
            data: b.bytes.clone(),
        },
    ];
    let ((events, sent), left) = run_with(&tmp.path().join("c"), settings, work);
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m, ClientMsg::NeedBundles { .. })),
        "{sent:?}"
    );
    let offer = events
        .iter()
        .find(|e| matches!(e, ClientEvent::ContentOffer { .. }))
        .expect("one offer");
    assert!(
        matches!(
            offer,
            ClientEvent::ContentOffer {
                over_quota_by: 500,
                needs_answer: false,
                ..
            }
        ),
        "{offer:?}"
    );
    assert!(events.iter().any(|e| matches!(e,
        ClientEvent::ContentRefused { over_by: 500, limit: 1000, reason } if reason.contains("quota"))));
    assert!(left.is_some_and(|r| r.contains("requires its content")));
    let cache = shard_cache::RuntimeCache::open(tmp.path().join("c")).unwrap();
    assert!(!cache.has_bundle(&b.sha256));
    assert_eq!(cache.partial_offset(&b.sha256).unwrap(), 0);
}

#[test]
fn a_bundle_larger_than_announced_is_refused() {
    let b = bundle_with_script("public func Init() -> Void {}\n");
    let tmp = tempfile::tempdir().unwrap();
    let work = vec![
        announce(&b, 1, "liar", b.unpacked_len - 1),
        BundleWork::AnnouncementsDone,
        BundleWork::Chunk {
            plugin_id: 1,
            len: b.bytes.len() as u64,
            chunk_id: 0,
            data: b.bytes.clone(),
        },
    ];
    let (events, _) = run_receiver(&tmp.path().join("c"), work);
    assert!(
        events.iter().any(|e| matches!(e,
            ClientEvent::BundleFailed { error, .. } if error.contains("server announced"))),
        "{events:?}"
    );
    let cache = shard_cache::RuntimeCache::open(tmp.path().join("c")).unwrap();
    assert!(cache.installed_hash("liar").is_none());
}
