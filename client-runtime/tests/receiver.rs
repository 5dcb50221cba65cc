//! The bundle receiver refuses a bundle whose client scripts break the
//! sandbox policy (a server cannot push around the check): nothing is
//! installed, the user and the server are told. It offers before fetching,
//! refuses an offer over the quota without asking for a byte, takes no
//! chunk it did not ask for, refuses a bundle larger than announced, follows a
//! server that sends a chunk again (the download rewinds) and fails one that
//! skips a chunk.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]

use std::sync::{Arc, Mutex};

use shard_client::bundles::{BundleReceiver, BundleWork, Origin, StreamStop, TransferStats};
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

/// The error of the first `bundle_failed` event (the test fails without one).
fn failure(events: &[ClientEvent]) -> String {
    events
        .iter()
        .find_map(|e| match e {
            ClientEvent::BundleFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no bundle_failed event in {events:?}"))
}

/// Whether the last message to the server reported an install with this outcome.
fn reported_install(sent: &[ClientMsg], ok: bool) -> bool {
    matches!(sent.last(), Some(ClientMsg::BundleInstalled { ok: got, .. }) if *got == ok)
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
    let error = failure(&events);
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

/// Twins whose shared bundle breaks the sandbox policy: the download that
/// brought it is refused, and so is the other twin, with the same reason
/// and without fetching the bundle again for it.
#[test]
fn twins_whose_bundle_breaks_the_policy_are_both_refused_from_one_download() {
    let evil = bundle_with_script(
        "@wrapMethod(PlayerPuppet)\nprotected cb func OnGameAttached() -> Bool {\n  return wrappedMethod();\n}\n",
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut work = vec![
        announce(&evil, 1, "evil_a", evil.unpacked_len),
        announce(&evil, 2, "evil_b", evil.unpacked_len),
        BundleWork::AnnouncementsDone,
    ];
    work.extend(chunks(1, &evil));
    let (events, sent) = run_receiver(&tmp.path().join("c"), work);
    assert_eq!(requests_for(&sent, &evil.sha256), vec![(1, 0)], "{sent:?}");
    for name in ["evil_a", "evil_b"] {
        assert!(
            events.iter().any(
                |e| matches!(e, ClientEvent::BundleFailed { name: n, error, .. }
                if n == name && error.contains("hook-annotation"))
            ),
            "{name} not refused: {events:?}"
        );
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleInstalled { .. }))
    );
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
    let chunk = |data: &Vec<u8>| chunk_work(1, good.sha256, len, 0, data);
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
    assert!(reported_install(&sent, false), "{sent:?}");
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

/// Every file under `root` with its contents (folders as `None`).
fn snapshot(root: &std::path::Path) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// A tweak that rebalances a vanilla weapon: what the content policy refuses.
const VANILLA_REBALANCE: &str = "Items.Preset_Katana_Default:\n  quality: Quality.Legendary\n";

/// A plugin bundle with an archive, its `.xl` and a tweak (`tweak` is its text).
fn content_bundle(name: &str, tweak: &str) -> shard_cache::PackedBundle {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::create_dir_all(dir.join("tweaks")).unwrap();
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\shard\\room.streamingsector", format!("{name} room"))
        .build();
    std::fs::write(dir.join(format!("assets/{name}.archive")), archive).unwrap();
    std::fs::write(
        dir.join(format!("assets/{name}.archive.xl")),
        "streaming:\n  sectors:\n    - path: base\\shard\\room.streamingsector\n",
    )
    .unwrap();
    std::fs::write(dir.join("tweaks/add.yaml"), tweak).unwrap();
    shard_cache::pack_plugin_dir(&dir).unwrap()
}

fn announce_content(plugin_id: u16, name: &str, b: &shard_cache::PackedBundle) -> BundleWork {
    announce(b, plugin_id, name, b.unpacked_len)
}

fn chunks(plugin_id: u16, b: &shard_cache::PackedBundle) -> Vec<BundleWork> {
    b.bytes
        .chunks(shard_protocol::limits::CHUNK_SIZE)
        .enumerate()
        .map(|(i, data)| chunk_work(plugin_id, b.sha256, b.bytes.len() as u64, i as u32, data))
        .collect()
}

thread_local! {
    /// The stream each download's chunks arrive on unless a test puts them
    /// on another ([`on_stream`]): one per plugin and bundle, as the server
    /// sends one transfer on one stream.
    static STREAMS: std::cell::RefCell<std::collections::HashMap<(u16, [u8; 32]), StreamStop>> =
        std::cell::RefCell::default();
}

/// The stream chunks of `sha256` for `plugin_id` arrive on by default.
fn stream_of(plugin_id: u16, sha256: [u8; 32]) -> StreamStop {
    STREAMS.with(|s| {
        s.borrow_mut()
            .entry((plugin_id, sha256))
            .or_default()
            .clone()
    })
}

/// A chunk as the session hands it to the receiver: framed as the server
/// sends it, then read in place.
fn chunk_work(
    plugin_id: u16,
    sha256: [u8; 32],
    len: u64,
    chunk_id: u32,
    data: &[u8],
) -> BundleWork {
    let body = shard_protocol::frame::encode_body(&shard_protocol::ServerMsg::AssetBundle {
        plugin_id,
        sha256,
        len,
        chunk_id,
        data: data.to_vec(),
    })
    .unwrap();
    BundleWork::Chunk(
        shard_protocol::frame::decode_asset_chunk(body)
            .unwrap()
            .unwrap(),
        stream_of(plugin_id, sha256),
    )
}

/// Whether `events` report an install of the bundle `sha`.
fn installed_sha(events: &[ClientEvent], sha: &[u8; 32]) -> bool {
    events.iter().any(
        |e| matches!(e, ClientEvent::BundleInstalled { sha256, .. } if *sha256 == hex::encode(sha)),
    )
}

/// The same chunk on the stream whose stop switch is `stop`.
fn on_stream(work: BundleWork, stop: &StreamStop) -> BundleWork {
    match work {
        BundleWork::Chunk(c, _) => BundleWork::Chunk(c, stop.clone()),
        other => other,
    }
}

/// Twins share one download; when a reload replaces the fetched twin's
/// content mid-download, the other takes the download over from where it
/// stopped: its request resumes at the bytes already written, and the
/// bundle completes and installs from there.
#[test]
fn a_handed_over_download_resumes_where_it_stopped() {
    let shared = multi_chunk_bundle("big", 120);
    let other = multi_chunk_bundle("big", 90);
    let size = shard_protocol::limits::CHUNK_SIZE;
    let n = shared.bytes.len().div_ceil(size);
    assert!(n >= 3, "{n} chunks");
    let tmp = tempfile::tempdir().unwrap();
    let mut work = vec![
        announce(&shared, 1, "first", shared.unpacked_len),
        announce(&shared, 2, "second", shared.unpacked_len),
        BundleWork::AnnouncementsDone,
        nth_chunk(1, &shared, 0),
        nth_chunk(1, &shared, 1),
        announce(&other, 1, "first", other.unpacked_len),
        BundleWork::AnnouncementsDone,
    ];
    work.extend((2..n).map(|i| nth_chunk(2, &shared, i)));
    let (events, sent) = run_receiver(&tmp.path().join("c"), work);
    assert_eq!(
        requests_for(&sent, &shared.sha256),
        vec![(1, 0), (2, 2 * size as u64)],
        "{sent:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, ClientEvent::BundleInstalled { name, sha256, .. }
            if name == "second" && *sha256 == hex::encode(shared.sha256))
        ),
        "{events:?}"
    );
}

/// A replaced version's chunks are told from the new one's by their hash,
/// even when both bundles have the same length: the stale stream is
/// stopped and none of its bytes reach the new download.
#[test]
fn a_stale_version_of_the_same_length_is_told_apart_by_its_hash() {
    let old = multi_chunk_bundle("biga", 120);
    let new = multi_chunk_bundle("bigb", 120);
    assert_eq!(
        old.bytes.len(),
        new.bytes.len(),
        "the case needs equal lengths"
    );
    assert_ne!(old.sha256, new.sha256);
    let tmp = tempfile::tempdir().unwrap();
    let (stale, current) = (StreamStop::default(), StreamStop::default());
    let mut work = vec![
        announce(&old, 1, "big", old.unpacked_len),
        BundleWork::AnnouncementsDone,
        on_stream(nth_chunk(1, &old, 0), &stale),
        announce(&new, 1, "big", new.unpacked_len),
        BundleWork::AnnouncementsDone,
        on_stream(nth_chunk(1, &new, 0), &current),
        on_stream(nth_chunk(1, &old, 1), &stale),
    ];
    work.extend(chunks_from(1, &new, 1, &current));
    let (events, _) = run_receiver(&tmp.path().join("c"), work);
    assert!(stale.stopped(), "the stale version's stream goes on");
    assert!(!current.stopped());
    assert!(installed_sha(&events, &new.sha256), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleFailed { .. })),
        "{events:?}"
    );
}

/// The bundle requests `sent` holds for `sha`, as (plugin, offset).
fn requests_for(sent: &[ClientMsg], sha: &[u8; 32]) -> Vec<(u16, u64)> {
    sent.iter()
        .filter_map(|m| match m {
            ClientMsg::NeedBundles { requests } => Some(requests.clone()),
            _ => None,
        })
        .flatten()
        .filter(|r| r.sha256 == *sha)
        .map(|r| (r.plugin_id, r.offset))
        .collect()
}

/// A plugin edited and reverted mid-download (S, then S2, then S again):
/// the old transfer's stream is stopped when S2 is announced, so what it
/// still has in flight is never written, and S resumes on the new request's
/// stream from the bytes kept. Written in turn, the two streams would rewind
/// the file and leave a gap, and the install would fail.
#[test]
fn a_version_reverted_mid_download_resumes_on_one_stream() {
    let s1 = multi_chunk_bundle("big", 200);
    let s2 = multi_chunk_bundle("big", 90);
    let size = shard_protocol::limits::CHUNK_SIZE;
    let n = s1.bytes.len().div_ceil(size);
    assert!(n >= 6, "{n} chunks");
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (StreamStop::default(), StreamStop::default());
    let mut work = vec![
        announce(&s1, 1, "big", s1.unpacked_len),
        BundleWork::AnnouncementsDone,
        on_stream(nth_chunk(1, &s1, 0), &old),
        on_stream(nth_chunk(1, &s1, 1), &old),
        announce(&s2, 1, "big", s2.unpacked_len),
        BundleWork::AnnouncementsDone,
        announce(&s1, 1, "big", s1.unpacked_len),
        BundleWork::AnnouncementsDone,
        // The old transfer's chunks in flight, ahead of the new stream's.
        on_stream(nth_chunk(1, &s1, 2), &old),
        on_stream(nth_chunk(1, &s1, 3), &old),
        on_stream(nth_chunk(1, &s1, 2), &new),
        on_stream(nth_chunk(1, &s1, 4), &old),
    ];
    work.extend(chunks_from(1, &s1, 3, &new));
    let (events, sent) = run_receiver(&tmp.path().join("c"), work);
    assert!(old.stopped(), "the old transfer's stream goes on");
    assert!(!new.stopped(), "the new request's stream was stopped");
    assert_eq!(
        requests_for(&sent, &s1.sha256),
        vec![(1, 0), (1, 2 * size as u64)],
        "{sent:?}"
    );
    assert!(installed_sha(&events, &s1.sha256), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleFailed { .. })),
        "{events:?}"
    );
}

/// Twins, the fetching one edited and the edit undone before its first
/// chunk arrived: the other twin fetched the bundle meanwhile, and the
/// reverted one now waits for that download. The old stream of the
/// reverted twin is stopped (it is not the one asked for), the other's is
/// written, and both twins install. Once, the old stream took the download
/// and the other's was stopped; the old stream was then cut, and neither
/// twin ever installed.
#[test]
fn a_twin_reverted_mid_download_waits_for_the_other_twins_stream() {
    let shared = multi_chunk_bundle("twin", 200);
    let edited = multi_chunk_bundle("twin", 90);
    let tmp = tempfile::tempdir().unwrap();
    let (old, other) = (StreamStop::default(), StreamStop::default());
    let mut work = vec![
        announce(&shared, 1, "twin_a", shared.unpacked_len),
        announce(&shared, 2, "twin_b", shared.unpacked_len),
        BundleWork::AnnouncementsDone,
        announce(&edited, 1, "twin_a", edited.unpacked_len),
        BundleWork::AnnouncementsDone,
        announce(&shared, 1, "twin_a", shared.unpacked_len),
        BundleWork::AnnouncementsDone,
        // twin_a's first request, still on its way when it was reverted.
        on_stream(nth_chunk(1, &shared, 0), &old),
        on_stream(nth_chunk(1, &shared, 1), &old),
    ];
    work.extend(chunks_from(2, &shared, 0, &other));
    let (events, sent) = run_receiver(&tmp.path().join("c"), work);
    assert_eq!(
        requests_for(&sent, &shared.sha256),
        vec![(1, 0), (2, 0)],
        "{sent:?}"
    );
    assert!(old.stopped(), "the reverted twin's old stream goes on");
    assert!(!other.stopped(), "the stream asked for was stopped");
    for name in ["twin_a", "twin_b"] {
        assert!(
            events.iter().any(
                |e| matches!(e, ClientEvent::BundleInstalled { name: n, sha256, .. }
                if n == name && *sha256 == hex::encode(shared.sha256))
            ),
            "{name} not installed: {events:?}"
        );
    }
}

/// Two live streams of one download (a request that crossed a transfer the
/// server still ran): the one already being written goes on, the other is
/// stopped and none of its chunks are written, so the file never rewinds.
#[test]
fn a_second_live_stream_of_a_download_is_stopped() {
    let b = multi_chunk_bundle("big", 200);
    let n = b.bytes.len().div_ceil(shard_protocol::limits::CHUNK_SIZE);
    assert!(n >= 6, "{n} chunks");
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (StreamStop::default(), StreamStop::default());
    let mut work = vec![
        announce(&b, 1, "big", b.unpacked_len),
        BundleWork::AnnouncementsDone,
        on_stream(nth_chunk(1, &b, 0), &first),
        on_stream(nth_chunk(1, &b, 1), &first),
        on_stream(nth_chunk(1, &b, 2), &first),
        // Behind the first: written, it would cut the file back to one chunk.
        on_stream(nth_chunk(1, &b, 0), &second),
        on_stream(nth_chunk(1, &b, 3), &first),
        on_stream(nth_chunk(1, &b, 1), &second),
    ];
    work.extend(chunks_from(1, &b, 4, &first));
    let (events, _) = run_receiver(&tmp.path().join("c"), work);
    assert!(second.stopped(), "the second stream goes on");
    assert!(!first.stopped(), "the stream being written was stopped");
    assert!(installed_sha(&events, &b.sha256), "{events:?}");
}

/// A stream carrying what is no longer wanted is stopped, so the server
/// sends no more of it: a version announced anew mid-download, or a plugin
/// never announced. The stream of the current download is left alone.
#[test]
fn a_stream_of_a_stale_version_or_an_unknown_plugin_is_stopped() {
    let old = multi_chunk_bundle("big", 120);
    let new = multi_chunk_bundle("big", 90);
    assert_ne!(old.bytes.len(), new.bytes.len());
    let tmp = tempfile::tempdir().unwrap();
    let (stale, current, unknown) = (
        StreamStop::default(),
        StreamStop::default(),
        StreamStop::default(),
    );
    let mut work = vec![
        announce(&old, 1, "big", old.unpacked_len),
        BundleWork::AnnouncementsDone,
        on_stream(nth_chunk(1, &old, 0), &stale),
        announce(&new, 1, "big", new.unpacked_len),
        BundleWork::AnnouncementsDone,
        on_stream(nth_chunk(1, &old, 1), &stale),
        on_stream(nth_chunk(9, &old, 0), &unknown),
    ];
    work.extend(chunks_from(1, &new, 0, &current));
    let (events, _) = run_receiver(&tmp.path().join("c"), work);
    assert!(stale.stopped(), "the stale version's stream goes on");
    assert!(unknown.stopped(), "an unknown plugin's stream goes on");
    assert!(
        !current.stopped(),
        "the current download's stream was stopped"
    );
    assert!(installed_sha(&events, &new.sha256), "{events:?}");
}

#[test]
fn a_tweak_that_changes_vanilla_is_refused_after_download_and_the_cache_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let good = content_bundle("cc", "Vehicle.shard_cc_van:\n  $base: Vehicle.v_van\n");
    let (events, _) = run_receiver(
        &cache_dir,
        [
            vec![
                announce_content(1, "cc", &good),
                BundleWork::AnnouncementsDone,
            ],
            chunks(1, &good),
        ]
        .into_iter()
        .flatten()
        .collect(),
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleInstalled { .. })),
        "{events:?}"
    );
    let before = snapshot(&cache_dir);
    // A server pushes a new version that rebalances a vanilla weapon.
    let evil = content_bundle("cc", VANILLA_REBALANCE);
    let (events, sent) = run_receiver(
        &cache_dir,
        [
            vec![
                announce_content(1, "cc", &evil),
                BundleWork::AnnouncementsDone,
            ],
            chunks(1, &evil),
        ]
        .into_iter()
        .flatten()
        .collect(),
    );
    let error = failure(&events);
    assert!(
        error.contains("tweaks/add.yaml:1: [tweak-record]"),
        "{error}"
    );
    assert!(reported_install(&sent, false), "{sent:?}");
    assert_eq!(
        snapshot(&cache_dir),
        before,
        "the refusal changed the cache"
    );
    assert!(matches!(events.last(), Some(ClientEvent::BundlesSettled)));
}

/// A crash after a refused bundle reached `store/` but before the refusal
/// removed it: on the next join the stored copy is checked again from the
/// store, refused with the same reason, removed, and never installed.
#[test]
fn a_refused_bundle_a_crash_left_in_the_store_is_refused_again_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let evil = content_bundle("cc", VANILLA_REBALANCE);
    {
        let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
        cache.store_bundle(&evil.bytes, &evil.sha256).unwrap();
        assert!(cache.has_bundle(&evil.sha256));
    }
    let (events, sent) = run_receiver(
        &cache_dir,
        vec![
            announce_content(1, "cc", &evil),
            BundleWork::AnnouncementsDone,
        ],
    );
    let error = failure(&events);
    assert!(
        error.contains("tweaks/add.yaml:1: [tweak-record]"),
        "{error}"
    );
    assert!(reported_install(&sent, false), "{sent:?}");
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m, ClientMsg::NeedBundles { .. })),
        "the stored copy was used, nothing downloaded: {sent:?}"
    );
    let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    assert!(
        !cache.has_bundle(&evil.sha256),
        "the refused copy stayed in the store"
    );
    assert!(cache.installed_hash("cc").is_none());
    assert!(cache.list().unwrap().is_empty());
}

#[test]
fn one_load_request_per_batch_only_when_content_changed_and_unload_on_removal() {
    use shard_client::game::{ReloadTracker, route_with_reloads};
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let a = content_bundle(
        "alpha",
        "Vehicle.shard_alpha_van:\n  $base: Vehicle.v_van\n",
    );
    let b = content_bundle(
        "beta",
        "Items.shard_beta_blade:\n  $base: Items.Preset_Katana_Default\n",
    );
    let mut tracker = ReloadTracker::new();
    let mut game: Vec<ClientEvent> = Vec::new();
    let mut play = |work: Vec<BundleWork>, game: &mut Vec<ClientEvent>| {
        let (events, _) = run_receiver(&cache_dir, work);
        for ev in events {
            route_with_reloads(ev, &cache_dir, &mut tracker, game);
        }
    };
    let loads = |g: &[ClientEvent]| -> Vec<shard_client::events::LoadResources> {
        g.iter()
            .filter_map(|c| match c {
                ClientEvent::LoadResources(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    };
    // Cold: both announced, then both downloaded; one request lists both.
    let cold = [
        vec![
            announce_content(1, "alpha", &a),
            announce_content(2, "beta", &b),
            BundleWork::AnnouncementsDone,
        ],
        chunks(1, &a),
        chunks(2, &b),
    ]
    .into_iter()
    .flatten()
    .collect();
    play(cold, &mut game);
    let got = loads(&game);
    assert_eq!(got.len(), 1, "{:?}", game);
    let names: Vec<&str> = got[0].load.iter().map(|p| p.plugin.as_str()).collect();
    assert_eq!(names, vec!["alpha", "beta"]);
    let alpha = &got[0].load[0];
    assert!(
        alpha.archives[0]
            .archive
            .ends_with("plugins/alpha/assets/alpha.archive")
    );
    assert!(
        alpha.archives[0]
            .xl
            .as_ref()
            .is_some_and(|x| x.ends_with("plugins/alpha/assets/alpha.archive.xl"))
    );
    assert!(alpha.tweaks[0].ends_with("plugins/alpha/tweaks/add.yaml"));
    assert!(got[0].unload.is_empty());
    // Warm rejoin with the same game: nothing changed, no request.
    game.clear();
    play(
        vec![
            announce_content(1, "alpha", &a),
            announce_content(2, "beta", &b),
            BundleWork::AnnouncementsDone,
        ],
        &mut game,
    );
    assert!(loads(&game).is_empty(), "{:?}", game);
    // beta is removed: one request that unloads it.
    play(
        vec![
            announce_content(2, "beta", &b),
            BundleWork::AnnouncementsDone,
            BundleWork::Removed { plugin_id: 2 },
        ],
        &mut game,
    );
    let got = loads(&game);
    assert_eq!(got.len(), 1, "{:?}", game);
    assert!(got[0].load.is_empty());
    assert_eq!(got[0].unload[0].plugin, "beta");
    // The event JSON the DLL queues carries the same lists.
    let queued = ClientEvent::LoadResources(got[0].clone()).to_json();
    let json: serde_json::Value = serde_json::from_str(&queued).unwrap();
    assert_eq!(json["event"], "load_resources");
    assert_eq!(json["unload"][0]["plugin"], "beta");
    assert!(json["unload"][0]["archives"][0]["xl"].is_string());
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
            asset_mirrors: Vec::new(),
        },
        announce(&b, 1, "big", 1500),
        BundleWork::AnnouncementsDone,
        // Unrequested chunks are not taken.
        chunk_work(
            1,
            b.sha256,
            b.bytes.len() as u64,
            0,
            &b.bytes[..shard_protocol::limits::CHUNK_SIZE.min(b.bytes.len())],
        ),
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
        chunk_work(
            1,
            b.sha256,
            b.bytes.len() as u64,
            0,
            &b.bytes[..shard_protocol::limits::CHUNK_SIZE.min(b.bytes.len())],
        ),
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

/// A plugin bundle of several chunks: one archive of `kib` KiB of noise.
fn multi_chunk_bundle(name: &str, kib: usize) -> shard_cache::PackedBundle {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    // Incompressible, so the packed bundle spans several chunks.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..kib * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\shard\\noise.streamingsector", noise)
        .build();
    std::fs::write(dir.join(format!("assets/{name}.archive")), archive).unwrap();
    shard_cache::pack_plugin_dir(&dir).unwrap()
}

/// The chunks of `b` from the `first` on, for `plugin_id`, on `stream`.
fn chunks_from(
    plugin_id: u16,
    b: &shard_cache::PackedBundle,
    first: usize,
    stream: &StreamStop,
) -> Vec<BundleWork> {
    let n = b.bytes.len().div_ceil(shard_protocol::limits::CHUNK_SIZE);
    (first..n)
        .map(|i| on_stream(nth_chunk(plugin_id, b, i), stream))
        .collect()
}

/// The chunk `i` of `b`, as the server frames it.
fn nth_chunk(plugin_id: u16, b: &shard_cache::PackedBundle, i: usize) -> BundleWork {
    let size = shard_protocol::limits::CHUNK_SIZE;
    let data = &b.bytes[i * size..((i + 1) * size).min(b.bytes.len())];
    chunk_work(plugin_id, b.sha256, b.bytes.len() as u64, i as u32, data)
}

#[test]
fn a_chunk_sent_again_rewinds_the_download_and_a_chunk_past_a_gap_fails_it() {
    let b = multi_chunk_bundle("big", 120);
    let n = b.bytes.len().div_ceil(shard_protocol::limits::CHUNK_SIZE);
    assert!(n >= 4, "{n} chunks");
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("c");

    // 0, 1, then 0 again (the server went back): the file is cut to one
    // chunk and hashed afresh, and the rest completes a good bundle.
    let mut work = vec![
        announce(&b, 1, "big", b.unpacked_len),
        BundleWork::AnnouncementsDone,
    ];
    work.extend([
        nth_chunk(1, &b, 0),
        nth_chunk(1, &b, 1),
        nth_chunk(1, &b, 0),
    ]);
    work.extend((1..n).map(|i| nth_chunk(1, &b, i)));
    let (events, sent) = run_receiver(&cache_dir, work);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "big")),
        "{events:?}"
    );
    assert!(reported_install(&sent, true), "{sent:?}");
    let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    assert_eq!(cache.installed_hash("big"), Some(b.sha256));

    // A fresh cache, and chunk 2 right after chunk 0: bytes would be
    // missing, so the download fails with the offset to resume from.
    let cache_dir = tmp.path().join("gap");
    let work = vec![
        announce(&b, 1, "big", b.unpacked_len),
        BundleWork::AnnouncementsDone,
        nth_chunk(1, &b, 0),
        nth_chunk(1, &b, 2),
    ];
    let (events, sent) = run_receiver(&cache_dir, work);
    let error = failure(&events);
    assert!(error.contains("cannot store chunk 2"), "{error}");
    assert!(error.contains("resume from"), "{error}");
    assert!(reported_install(&sent, false), "{sent:?}");
    let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    assert!(cache.installed_hash("big").is_none());
    assert!(!cache.has_bundle(&b.sha256));
}
