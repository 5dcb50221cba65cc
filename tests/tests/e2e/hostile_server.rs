//! A server that speaks the protocol but sends a bundle stream in
//! pathological pieces, against the real client: the stream's frames are cut
//! from whatever quinn hands over (`shard_protocol::frame::FramePieces`), so
//! a bundle dribbled one byte per write, every frame split at every byte,
//! still arrives whole, verifies and installs; and a stream cut inside a
//! frame installs nothing. It also floods streams, and has a mirror serve a
//! script the sandbox policy refuses.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::net::SocketAddr;
use std::time::Duration;

use shard_cache::{PackedBundle, RuntimeCache};
use shard_client::{ClientEvent, ConnectOptions, Dispatcher, Session};
use shard_e2e::nginx::{Nginx, NginxOptions};
use shard_protocol::frame::{encode_frame, read_frame, write_frame};
use shard_protocol::identity::Identity;
use shard_protocol::limits::CHUNK_SIZE;
use shard_protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg};

/// How the hostile server writes the bundle's frames onto its stream.
#[derive(Clone, Copy)]
enum Dribble {
    /// Every byte of every frame in its own write, each let out before the next.
    ByteByByte,
    /// Byte by byte, and the stream ends halfway through the last frame.
    CutInsideTheLastFrame,
    /// No stream: the request is refused (`BundleRefused`).
    Refuse,
}

/// The plugin's one game archive: 40 KiB of noise.
fn drip_archive() -> Vec<u8> {
    shard_e2e::blob_archive(&shard_e2e::noise(40 * 1024, 0xD1B))
}

/// A plugin bundle holding [`drip_archive`].
fn bundle(dir: &std::path::Path) -> PackedBundle {
    bundle_of(dir, &drip_archive())
}

/// A plugin bundle holding `archive` as `assets/drip.archive`.
fn bundle_of(dir: &std::path::Path, archive: &[u8]) -> PackedBundle {
    let plugin = dir.join("plugins/drip");
    std::fs::create_dir_all(plugin.join("assets")).unwrap();
    std::fs::write(plugin.join("assets/drip.archive"), archive).unwrap();
    shard_cache::pack_plugin_dir(&plugin).unwrap()
}

/// The announcement of the one plugin, `drip`, at `version`.
fn announcement(packed: &PackedBundle, version: &str) -> ServerMsg {
    ServerMsg::PluginAnnounce {
        plugin_id: 7,
        name: "drip".into(),
        version: version.into(),
        bundle_sha256: packed.sha256,
        bundle_len: packed.bytes.len() as u64,
        unpacked_len: packed.unpacked_len,
        client_scripts: 0,
        rpc_whitelist: Vec::new(),
    }
}

/// The server's `Welcome`, listing `asset_mirrors`.
fn welcome(asset_mirrors: Vec<String>) -> ServerMsg {
    ServerMsg::Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_name: "drip".into(),
        peer_id: 1,
        player_id: "00".repeat(32),
        admin: false,
        tick_hz: 20,
        content_required: false,
        asset_mirrors,
    }
}

/// Accepts one client and plays the real handshake: its `Hello`, our
/// `Welcome`, one announced plugin, until the client asks for its bundle
/// from offset 0. Returns the connection and its control stream.
async fn handshake(
    endpoint: &quinn::Endpoint,
    packed: &PackedBundle,
) -> (quinn::Connection, quinn::SendStream, quinn::RecvStream) {
    let conn = endpoint.accept().await.unwrap().await.unwrap();
    let (mut send, mut recv) = conn.accept_bi().await.unwrap();
    let hello: ClientMsg = read_frame(&mut recv).await.unwrap().unwrap();
    assert!(matches!(hello, ClientMsg::Hello { .. }), "{hello:?}");
    write_frame(&mut send, &welcome(Vec::new())).await.unwrap();
    write_frame(&mut send, &announcement(packed, "1"))
        .await
        .unwrap();
    write_frame(&mut send, &ServerMsg::AnnouncementsDone)
        .await
        .unwrap();
    loop {
        let msg: ClientMsg = read_frame(&mut recv).await.unwrap().unwrap();
        if let ClientMsg::NeedBundles { requests } = msg {
            assert_eq!(requests.len(), 1);
            assert_eq!(requests[0].offset, 0);
            break;
        }
    }
    (conn, send, recv)
}

/// Spawns the hostile server: the real handshake with one client
/// ([`handshake`]), then `script` with the connection, its control stream
/// and the bundle; the handle yields what `script` returns.
fn after_handshake<T, F, Fut>(
    endpoint: quinn::Endpoint,
    packed: &PackedBundle,
    script: F,
) -> tokio::task::JoinHandle<T>
where
    F: FnOnce(quinn::Connection, quinn::SendStream, quinn::RecvStream, PackedBundle) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let packed = packed.clone();
    tokio::spawn(async move {
        let (conn, send, recv) = handshake(&endpoint, &packed).await;
        script(conn, send, recv, packed).await
    })
}

/// The bundle's chunk frames, as the real server writes them.
fn chunk_frames(packed: &PackedBundle) -> Vec<Vec<u8>> {
    packed
        .bytes
        .chunks(CHUNK_SIZE)
        .enumerate()
        .map(|(i, data)| {
            encode_frame(&ServerMsg::AssetBundle {
                plugin_id: 7,
                sha256: packed.sha256,
                len: packed.bytes.len() as u64,
                chunk_id: u32::try_from(i).unwrap(),
                data: data.to_vec(),
            })
            .unwrap()
        })
        .collect()
}

/// Runs the hostile server for one client: the real handshake messages, one
/// announced plugin, then the bundle's chunk frames written as `how` says.
/// Returns the number of packets the connection sent.
async fn serve(endpoint: quinn::Endpoint, packed: PackedBundle, how: Dribble) -> u64 {
    let (conn, mut send, mut recv) = handshake(&endpoint, &packed).await;
    if let Dribble::Refuse = how {
        let refused = ServerMsg::BundleRefused {
            plugin_id: 7,
            sha256: packed.sha256,
            reason: "not today".into(),
        };
        write_frame(&mut send, &refused).await.unwrap();
    }
    let mut stream = conn.open_uni().await.unwrap();
    let frames = chunk_frames(&packed);
    let mut wire: Vec<u8> = frames.concat();
    match how {
        Dribble::CutInsideTheLastFrame => {
            let last = frames.last().unwrap().len();
            wire.truncate(wire.len() - last / 2);
        }
        Dribble::Refuse => wire.clear(),
        Dribble::ByteByByte => {}
    }
    for byte in &wire {
        stream.write_all(std::slice::from_ref(byte)).await.unwrap();
        // Let the connection send this byte before the next is written.
        tokio::task::yield_now().await;
    }
    stream.finish().unwrap();
    // Stay up until the client says how its install went (or leaves).
    while let Ok(Some(msg)) = read_frame::<ClientMsg, _>(&mut recv).await {
        if matches!(msg, ClientMsg::BundleInstalled { .. }) {
            break;
        }
    }
    let sent = conn.stats().path.sent_packets;
    conn.close(0u32.into(), b"done");
    sent
}

/// Starts the hostile server on loopback; returns its address and key.
fn hostile_endpoint() -> (
    quinn::Endpoint,
    SocketAddr,
    shard_protocol::identity::Fingerprint,
) {
    let id = Identity::generate("drip").unwrap();
    let endpoint = quinn::Endpoint::server(
        id.quic_server_config().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    (endpoint, addr, id.fingerprint)
}

/// A fresh client joining the hostile server at `addr`, its key pinned.
async fn connect(
    dir: &std::path::Path,
    addr: SocketAddr,
    key: shard_protocol::identity::Fingerprint,
) -> Session {
    let opts = ConnectOptions {
        addr: addr.into(),
        name: "vee".into(),
        identity: dir.join("id.pem"),
        cache_dir: dir.join("runtime_cache"),
        server_key: Some(key),
        content: shard_client::ContentSettings::default(),
    };
    Session::connect(opts, Dispatcher::new()).await.unwrap()
}

/// Every event until the bundle was installed or failed, or the session ended.
async fn events_until_done(session: &mut Session) -> Vec<ClientEvent> {
    let mut events = Vec::new();
    while let Ok(Some(ev)) =
        tokio::time::timeout(Duration::from_secs(30), session.next_event()).await
    {
        let done = matches!(
            ev,
            ClientEvent::BundleInstalled { .. }
                | ClientEvent::BundleFailed { .. }
                | ClientEvent::Disconnected { .. }
        );
        events.push(ev);
        if done {
            break;
        }
    }
    events
}

/// A fresh client plays against the hostile server task `server` (at
/// `addr`, key `key`) until its bundle is installed or failed; returns the
/// client's events and what the server task returned.
async fn play<T>(
    dir: &std::path::Path,
    addr: SocketAddr,
    key: shard_protocol::identity::Fingerprint,
    server: tokio::task::JoinHandle<T>,
) -> (Vec<ClientEvent>, T) {
    let mut session = connect(dir, addr, key).await;
    let events = events_until_done(&mut session).await;
    let result = server.await.unwrap();
    session.close().await;
    (events, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_dribbled_one_byte_per_write_arrives_whole_and_installs() {
    let dir = tempfile::tempdir().unwrap();
    let packed = bundle(dir.path());
    let (endpoint, addr, key) = hostile_endpoint();
    let server = tokio::spawn(serve(endpoint, packed.clone(), Dribble::ByteByByte));
    let (events, sent) = play(dir.path(), addr, key, server).await;
    // The dribble is real: far more packets than a 40 KiB bundle needs.
    assert!(
        sent > packed.bytes.len() as u64 / 64,
        "only {sent} packets for {} bytes",
        packed.bytes.len()
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "drip")),
        "{events:?}"
    );
    let cache = RuntimeCache::open(dir.path().join("runtime_cache")).unwrap();
    assert_eq!(cache.installed_hash("drip"), Some(packed.sha256));
    let installed = cache.plugin_path("drip").unwrap();
    let archive = std::fs::read(installed.join("assets/drip.archive")).unwrap();
    assert_eq!(archive, drip_archive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_stream_cut_inside_a_frame_installs_nothing_and_keeps_what_came_for_resume() {
    let dir = tempfile::tempdir().unwrap();
    let packed = bundle(dir.path());
    let (endpoint, addr, key) = hostile_endpoint();
    let server = tokio::spawn(serve(
        endpoint,
        packed.clone(),
        Dribble::CutInsideTheLastFrame,
    ));
    let mut session = connect(dir.path(), addr, key).await;
    // Every whole chunk before the cut reaches `partial/` (kept for a resume);
    // the half frame after it never does. The cache is not opened a second
    // time while the client runs (opening it tidies staging folders).
    let whole = ((packed.bytes.len() - 1) / CHUNK_SIZE * CHUNK_SIZE) as u64;
    let part = dir
        .path()
        .join("runtime_cache")
        .join(shard_cache::PARTIAL_DIR)
        .join(format!("{}.part", packed.sha256_hex()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < whole {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chunk 0 never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut events = Vec::new();
    while let Some(ev) = session.try_next_event() {
        events.push(ev);
    }
    session.close().await;
    server.abort();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleInstalled { .. })),
        "{events:?}"
    );
    let cache = RuntimeCache::open(dir.path().join("runtime_cache")).unwrap();
    assert_eq!(cache.installed_hash("drip"), None);
    assert!(!cache.has_bundle(&packed.sha256));
    assert_eq!(cache.partial_offset(&packed.sha256).unwrap(), whole);
}

/// A request the server refuses fails that plugin with the server's reason
/// and the session settles: the client does not wait for it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bundle_request_fails_the_plugin_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let packed = bundle(dir.path());
    let (endpoint, addr, key) = hostile_endpoint();
    let server = tokio::spawn(serve(endpoint, packed.clone(), Dribble::Refuse));
    let mut session = connect(dir.path(), addr, key).await;
    let events = events_until_done(&mut session).await;
    let failed = events.iter().find_map(|e| match e {
        ClientEvent::BundleFailed { name, error, .. } if name == "drip" => Some(error.clone()),
        _ => None,
    });
    let failed = failed.unwrap_or_else(|| panic!("no bundle_failed for drip: {events:?}"));
    assert!(failed.contains("not today"), "{failed}");
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = session.next_event().await {
            if matches!(ev, ClientEvent::BundlesSettled) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(settled, Ok(true), "the session never settled");
    session.close().await;
    server.await.unwrap();
}

/// The plugin is announced again with the same bundle while that bundle is
/// on its way (its Python changed, nothing the client gets): the download
/// goes on and installs, and the client does not ask for it a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bundle_announced_again_mid_download_is_not_asked_for_twice() {
    let dir = tempfile::tempdir().unwrap();
    let packed = bundle(dir.path());
    let (endpoint, addr, key) = hostile_endpoint();
    let server = after_handshake(
        endpoint,
        &packed,
        move |conn, mut send, mut recv, packed| async move {
            let frames = chunk_frames(&packed);
            assert!(frames.len() > 1, "the bundle must take several chunks");
            let (first, rest) = frames.split_at(frames.len() / 2);
            let mut stream = conn.open_uni().await.unwrap();
            stream.write_all(&first.concat()).await.unwrap();
            write_frame(&mut send, &announcement(&packed, "2"))
                .await
                .unwrap();
            write_frame(&mut send, &ServerMsg::AnnouncementsDone)
                .await
                .unwrap();
            // Time for the client to act on the new announcement.
            tokio::time::sleep(Duration::from_millis(300)).await;
            stream.write_all(&rest.concat()).await.unwrap();
            stream.finish().unwrap();
            let mut asked_again = 0;
            let installed = loop {
                match read_frame::<ClientMsg, _>(&mut recv).await {
                    Ok(Some(ClientMsg::NeedBundles { .. })) => asked_again += 1,
                    Ok(Some(ClientMsg::BundleInstalled { ok, .. })) => break ok,
                    Ok(Some(_)) => {}
                    other => panic!("the client left before reporting: {other:?}"),
                }
            };
            conn.close(0u32.into(), b"done");
            (asked_again, installed)
        },
    );
    let (events, (asked_again, installed)) = play(dir.path(), addr, key, server).await;
    assert_eq!(
        asked_again, 0,
        "the client asked for the bundle again: {events:?}"
    );
    assert!(installed, "{events:?}");
    let done = events.iter().find_map(|e| match e {
        ClientEvent::BundleInstalled { version, .. } => Some(version.clone()),
        _ => None,
    });
    assert_eq!(done.as_deref(), Some("2"), "{events:?}");
}

/// A server that opens streams the client does not read, bidirectional ones
/// or more bundle streams than the client takes at once, each one stalled
/// inside its first frame, cannot park data in the player's memory: quinn
/// holds up to a stream window (1.25 MB) of each such stream, and its
/// default let a server open 100 of each kind (128 MB measured). The client
/// grants no bidirectional stream and `MAX_BUNDLE_STREAMS` bundle streams;
/// once the hostile streams are reset, the bundle still arrives and installs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cannot_park_data_in_the_client_on_streams_it_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let packed = bundle(dir.path());
    let (endpoint, addr, key) = hostile_endpoint();
    let server = after_handshake(
        endpoint,
        &packed,
        move |conn, _send, mut recv, packed| async move {
            let wait = Duration::from_millis(500);
            let bidi = tokio::time::timeout(wait, conn.open_bi()).await;
            assert!(bidi.is_err(), "the client granted a bidirectional stream");
            let mut stalled = Vec::new();
            while let Ok(opened) = tokio::time::timeout(wait, conn.open_uni()).await {
                let mut s = opened.unwrap();
                // Half of a frame's length prefix: the reader waits for the rest.
                s.write_all(&[0, 0]).await.unwrap();
                stalled.push(s);
                assert!(
                    stalled.len() <= 100,
                    "the client takes any number of streams"
                );
            }
            let opened = stalled.len();
            for mut s in stalled {
                s.reset(0u32.into()).unwrap();
            }
            let mut stream = tokio::time::timeout(Duration::from_secs(10), conn.open_uni())
                .await
                .expect("no stream credit came back after the stalled streams were reset")
                .unwrap();
            for frame in chunk_frames(&packed) {
                stream.write_all(&frame).await.unwrap();
            }
            stream.finish().unwrap();
            while let Ok(Some(msg)) = read_frame::<ClientMsg, _>(&mut recv).await {
                if matches!(msg, ClientMsg::BundleInstalled { .. }) {
                    break;
                }
            }
            conn.close(0u32.into(), b"done");
            opened
        },
    );
    let (events, opened) = play(dir.path(), addr, key, server).await;
    assert_eq!(
        opened,
        shard_client::tuning::MAX_BUNDLE_STREAMS as usize,
        "bundle streams the client took at once"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "drip")),
        "{events:?}"
    );
}

/// A server that sends a 2 MB bundle on many streams at once, all live,
/// their chunks interleaved as the packets fall: one stream writes the
/// download and every other is stopped (each would otherwise bring the
/// whole bundle again), so no interleaving can rewind or gap the partial
/// file, and the bundle installs byte for byte, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_sent_on_many_streams_at_once_installs_once_from_one() {
    let dir = tempfile::tempdir().unwrap();
    let archive = shard_e2e::blob_archive(&shard_e2e::noise(2 * 1024 * 1024, 0x5713));
    let packed = bundle_of(dir.path(), &archive);
    let (endpoint, addr, key) = hostile_endpoint();
    let streams = shard_client::tuning::MAX_BUNDLE_STREAMS as usize;
    let server = after_handshake(
        endpoint,
        &packed,
        move |conn, _send, mut recv, packed| async move {
            let frames = chunk_frames(&packed);
            let mut opened = Vec::new();
            for _ in 0..streams {
                opened.push(conn.open_uni().await.unwrap());
            }
            // Every stream's first chunk is out before any stream goes on.
            let mut sends = Vec::new();
            for mut s in opened {
                let frames = frames.clone();
                sends.push(tokio::spawn(async move {
                    for frame in &frames {
                        if s.write_all(frame).await.is_err() {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                    let _ = s.finish();
                    // `Some(code)`: the client stopped this stream.
                    s.stopped().await.ok().flatten().is_some()
                }));
            }
            let mut installs = 0;
            while let Ok(Ok(Some(msg))) = tokio::time::timeout(
                Duration::from_secs(2),
                read_frame::<ClientMsg, _>(&mut recv),
            )
            .await
            {
                if matches!(msg, ClientMsg::BundleInstalled { ok: true, .. }) {
                    installs += 1;
                }
            }
            let mut stopped = 0;
            for s in sends {
                if s.await.unwrap() {
                    stopped += 1;
                }
            }
            conn.close(0u32.into(), b"done");
            (installs, stopped)
        },
    );
    let (events, (installs, stopped)) = play(dir.path(), addr, key, server).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "drip")),
        "{events:?}"
    );
    assert_eq!(installs, 1, "installs reported to the server");
    assert!(
        stopped >= streams - 1,
        "only {stopped} of {streams} streams were stopped"
    );
    let cache = RuntimeCache::open(dir.path().join("runtime_cache")).unwrap();
    assert_eq!(cache.installed_hash("drip"), Some(packed.sha256));
    let installed = cache.plugin_path("drip").unwrap();
    assert_eq!(
        std::fs::read(installed.join("assets/drip.archive")).unwrap(),
        archive
    );
}

/// A hostile server cannot slip a client script past the sandbox policy by
/// having a mirror serve its bundle instead of its own stream: the bundle
/// comes from a real nginx, hashes to what was announced, and meets the
/// same check as one over QUIC. It is refused with the rule and the line,
/// nothing is installed, the refusal goes back to the server, and the
/// server was never asked for the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_served_by_a_mirror_meets_the_same_policy_check() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("plugins/drip");
    std::fs::create_dir_all(plugin.join("client")).unwrap();
    let hook = "@wrapMethod(PlayerPuppet)\nprotected cb func OnGameAttached() -> Bool {\n  return wrappedMethod();\n}\n";
    std::fs::write(plugin.join("client/hook.reds"), hook).unwrap();
    let evil = shard_cache::pack_plugin_dir(&plugin).unwrap();
    let www = tempfile::tempdir().unwrap();
    let file = shard_protocol::bundle_file_name(&evil.sha256);
    std::fs::write(www.path().join(&file), &evil.bytes).unwrap();
    let mirror = Nginx::start(www.path(), &NginxOptions::default()).unwrap();
    let (endpoint, addr, key) = hostile_endpoint();
    let (url, packed) = (mirror.url(), evil.clone());
    let server = tokio::spawn(async move {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        let _hello: ClientMsg = read_frame(&mut recv).await.unwrap().unwrap();
        let mut announce = announcement(&packed, "1");
        if let ServerMsg::PluginAnnounce { client_scripts, .. } = &mut announce {
            *client_scripts = 1;
        }
        for msg in [welcome(vec![url]), announce, ServerMsg::AnnouncementsDone] {
            write_frame(&mut send, &msg).await.unwrap();
        }
        let mut heard = Vec::new();
        let wait = Duration::from_secs(20);
        while let Ok(Ok(Some(msg))) =
            tokio::time::timeout(wait, read_frame::<ClientMsg, _>(&mut recv)).await
        {
            let done = matches!(msg, ClientMsg::BundleInstalled { .. });
            heard.push(msg);
            if done {
                break;
            }
        }
        conn.close(0u32.into(), b"done");
        heard
    });
    let (events, heard) = play(dir.path(), addr, key, server).await;
    let failed = events.iter().find_map(|e| match e {
        ClientEvent::BundleFailed { error, .. } => Some(error.as_str()),
        _ => None,
    });
    let error = failed.unwrap_or_else(|| panic!("no refusal: {events:?}"));
    assert!(
        error.contains("hook-annotation") && error.contains("hook.reds:1:1"),
        "{error}"
    );
    assert!(
        matches!(
            heard.last(),
            Some(ClientMsg::BundleInstalled { ok: false, .. })
        ),
        "{heard:?}"
    );
    assert!(
        !heard
            .iter()
            .any(|m| matches!(m, ClientMsg::NeedBundles { .. })),
        "the bundle was asked of the server: {heard:?}"
    );
    let gets = mirror.requests();
    assert!(
        gets.iter()
            .any(|l| l.starts_with(&format!("GET /{file} 200"))),
        "{gets:?}"
    );
    let cache = RuntimeCache::open(dir.path().join("runtime_cache")).unwrap();
    assert!(cache.installed_hash("drip").is_none());
}
