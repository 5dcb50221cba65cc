//! Zero-install push: plugin bundles reach clients verified, cached and
//! installed; warm rejoins transfer nothing; changes reach connected clients;
//! cut transfers resume from their offset.

use std::time::Duration;

use shard_cache::RuntimeCache;
use shard_client::ClientEvent;
use shard_e2e::{HUD_REDS, TestPlayer, TestServer, chat_contains, noise};

const HUD_PY: &str = r#"
__plugin__ = {"name": "hud", "version": "1.0"}

@game.register_command("hud", "push a HUD update")
def hud(peer, args):
    game.send_rpc(peer, "HudUpdate", {"text": args})
"#;

/// How long the tests with many players at once wait for each of them:
/// the machine (2 cores in CI) is loaded on purpose.
const LOADED: Duration = Duration::from_secs(60);

const HUD_XL: &str = "localization:\n  onscreens:\n    en-us: ui\\hud.json\n";

fn hud_server(admins: &[shard_protocol::identity::Fingerprint]) -> (TestServer, Vec<u8>) {
    hud_server_with(admins, |_| {})
}

/// The HUD plugin's server, after `tweak` adjusts its configuration.
fn hud_server_with(
    admins: &[shard_protocol::identity::Fingerprint],
    tweak: impl FnOnce(&mut shard_server::config::ServerConfig),
) -> (TestServer, Vec<u8>) {
    // An archive of incompressible bytes, so the bundle spans several chunks.
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file(
            "base\\hud\\hud_bg.xbm",
            noise(100 * 1024, 0x9e37_79b9_7f4a_7c15),
        )
        .build();
    let srv = TestServer::start_with(|cfg| {
        cfg.admins = admins.iter().map(|a| a.to_hex()).collect();
        shard_e2e::write_plugin_files(
            &cfg.plugin_dir,
            &[
                ("hud.py", HUD_PY.as_bytes()),
                ("hud/assets/ui/hud.json", br#"{"layout": "top-right"}"#),
                ("hud/assets/hud.archive", &archive),
                ("hud/assets/hud.archive.xl", HUD_XL.as_bytes()),
                ("hud/client/hud.reds", HUD_REDS.as_bytes()),
            ],
        );
        tweak(cfg);
    });
    (srv, archive)
}

fn installed(e: &ClientEvent, name: &str) -> bool {
    matches!(e, ClientEvent::BundleInstalled { name: n, .. } if n == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_join_installs_the_bundle_and_a_warm_rejoin_transfers_nothing() {
    let (srv, archive) = hud_server(&[]);
    let expected = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("hud")).unwrap();
    let player = TestPlayer::new("vee");

    let mut c = player.join(srv.addr).await;
    let ev = c.expect("installed", |e| installed(e, "hud")).await;
    let ClientEvent::BundleInstalled {
        sha256,
        changed,
        rpcs,
        path,
        ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(sha256, expected.sha256_hex());
    assert!(changed);
    assert_eq!(rpcs, vec!["HudUpdate".to_string()]);
    let dir = std::path::PathBuf::from(path);
    assert_eq!(
        std::fs::read(dir.join("assets/hud.archive")).unwrap(),
        archive
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("client/hud.reds")).unwrap(),
        HUD_REDS
    );
    let perms = std::fs::metadata(dir.join("assets/ui/hud.json"))
        .unwrap()
        .permissions();
    assert!(perms.readonly(), "installed files are read-only");
    assert_eq!(
        c.session.bundle_bytes_received(),
        expected.bytes.len() as u64
    );

    // The plugin's RPC reaches the callback its script registered.
    c.session.say("/hud hello").await;
    let rpc = c
        .expect("rpc", |e| matches!(e, ClientEvent::Rpc { .. }))
        .await;
    assert!(matches!(rpc, ClientEvent::Rpc { plugin, name, json, .. }
        if plugin == "hud" && name == "HudUpdate" && json.contains("hello")));
    c.session.close().await;

    // Warm rejoin: the store has it, nothing is transferred, nothing reinstalled.
    let mut again = player.join(srv.addr).await;
    let ev = again
        .expect("installed again", |e| installed(e, "hud"))
        .await;
    assert!(
        matches!(ev, ClientEvent::BundleInstalled { changed: false, .. }),
        "{ev:?}"
    );
    assert_eq!(again.session.bundle_bytes_received(), 0);
    srv.server.shutdown().await;
}

/// A joining player's Welcome, announcement and bundle do not wait for the
/// simulation's ticks: on a server ticking once a second, the bundle is
/// installed well within one tick. (Applied at ticks, the bundle request
/// alone would wait for the tick after the Welcome: a second or more.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_player_gets_its_bundle_without_waiting_for_ticks() {
    let (srv, _) = hud_server_with(&[], |cfg| cfg.tick_hz = 1);
    let player = TestPlayer::new("vee");
    let started = std::time::Instant::now();
    let mut c = player.join(srv.addr).await;
    c.expect("installed", |e| installed(e, "hud")).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(900),
        "installed after {took:?}"
    );
    // Plugin code still runs at ticks: the command is answered at the next one.
    c.session.say("/hud hello").await;
    c.expect("rpc", |e| matches!(e, ClientEvent::Rpc { .. }))
        .await;
    c.session.close().await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_an_asset_on_the_server_reaches_connected_clients() {
    let (srv, _) = hud_server(&[]);
    let player = TestPlayer::new("vee");
    let mut c = player.join(srv.addr).await;
    let first = c.expect("installed", |e| installed(e, "hud")).await;
    let ClientEvent::BundleInstalled { sha256: old, .. } = first else {
        unreachable!()
    };
    c.forget();

    std::fs::write(
        srv.plugin_dir().join("hud/assets/ui/hud.json"),
        br#"{"layout": "bottom-left"}"#,
    )
    .unwrap();
    let ev = c
        .expect("new version installed", |e| {
            matches!(e, ClientEvent::BundleInstalled { name, sha256, .. } if name == "hud" && *sha256 != old)
        })
        .await;
    let ClientEvent::BundleInstalled { path, changed, .. } = ev else {
        unreachable!()
    };
    assert!(changed);
    let json =
        std::fs::read_to_string(std::path::Path::new(&path).join("assets/ui/hud.json")).unwrap();
    assert!(json.contains("bottom-left"), "{json}");
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_transfer_resumes_from_its_offset() {
    let (srv, _) = hud_server(&[]);
    let packed = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("hud")).unwrap();
    assert!(
        packed.bytes.len() > 2 * 32 * 1024,
        "bundle spans several chunks"
    );
    let player = TestPlayer::new("vee");
    // A previous session got 40,000 bytes into `partial/` before the link died.
    let cache = RuntimeCache::open(player.dir.path().join("runtime_cache")).unwrap();
    cache
        .append_partial(&packed.sha256, 0, &packed.bytes[..40_000])
        .unwrap();
    drop(cache);

    let mut c = player.join(srv.addr).await;
    let ev = c.expect("installed", |e| installed(e, "hud")).await;
    assert!(
        matches!(&ev, ClientEvent::BundleInstalled { sha256, .. } if *sha256 == packed.sha256_hex())
    );
    // The server restarts at the chunk holding byte 40,000: chunk 1 (offset 32,768).
    let expected = packed.bytes.len() as u64 - 32 * 1024;
    assert_eq!(c.session.bundle_bytes_received(), expected);
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_file_longer_than_the_bundle_is_discarded_and_it_downloads_whole() {
    let (srv, _) = hud_server(&[]);
    let packed = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("hud")).unwrap();
    let player = TestPlayer::new("vee");
    // Something left more bytes under this hash than the bundle has: it
    // cannot be a prefix of it, so nothing of it may be kept.
    let cache = RuntimeCache::open(player.dir.path().join("runtime_cache")).unwrap();
    let mut junk = packed.bytes.clone();
    junk.extend_from_slice(&[0x5a; 1000]);
    cache.append_partial(&packed.sha256, 0, &junk).unwrap();
    drop(cache);

    let mut c = player.join(srv.addr).await;
    let ev = c
        .expect("installed or failed", |e| {
            matches!(
                e,
                ClientEvent::BundleInstalled { .. } | ClientEvent::BundleFailed { .. }
            )
        })
        .await;
    assert!(
        matches!(&ev, ClientEvent::BundleInstalled { sha256, .. } if *sha256 == packed.sha256_hex()),
        "{ev:?}"
    );
    assert_eq!(
        c.session.bundle_bytes_received(),
        packed.bytes.len() as u64,
        "downloaded from the start"
    );
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_whose_client_script_breaks_the_policy_does_not_load() {
    let admin = TestPlayer::new("admin");
    let evil = "@wrapMethod(PlayerPuppet)\nprotected cb func OnGameAttached() -> Bool {\n  return wrappedMethod();\n}\n";
    let srv = TestServer::start_with_files(
        &[admin.fingerprint],
        &[
            (
                "evil.py",
                b"__plugin__ = {\"name\": \"evil\", \"version\": \"1\"}\n",
            ),
            ("evil/client/hook.reds", evil.as_bytes()),
        ],
    );
    let mut boss = admin.join(srv.addr).await;
    let got = boss.collect_for(Duration::from_millis(500)).await;
    assert!(
        !got.iter()
            .any(|e| matches!(e, ClientEvent::PluginAnnounced { name, .. } if name == "evil")),
        "{got:?}"
    );
    boss.session.say("/plugins").await;
    let list = boss.expect("list", |e| chat_contains(e, "plugins:")).await;
    assert!(
        chat_contains(&list, "evil") && chat_contains(&list, "Failed"),
        "{list:?}"
    );
    srv.server.shutdown().await;
}

/// Two players on one machine share one `runtime_cache/` (two game
/// instances, or a game and a headless client) and join the same server at
/// the same moment: both download the bundle at once, and both get it
/// installed; the two downloads and installs do not mix, and the cache ends
/// verified with nothing left in `partial/`.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_sharing_a_cache_join_at_once_and_both_install() {
    let (srv, archive) = hud_server(&[]);
    let (a, b) = (TestPlayer::new("vee"), TestPlayer::new("jackie"));
    let shared = a.dir.path().join("runtime_cache");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&shared, b.dir.path().join("runtime_cache")).unwrap();

    let (mut ca, mut cb) = tokio::join!(a.join(srv.addr), b.join(srv.addr));
    let (ea, eb) = tokio::join!(
        ca.expect("installed for vee", |e| installed(e, "hud")),
        cb.expect("installed for jackie", |e| installed(e, "hud")),
    );
    for ev in [&ea, &eb] {
        let ClientEvent::BundleInstalled { path, .. } = ev else {
            unreachable!()
        };
        let dir = std::path::PathBuf::from(path);
        assert_eq!(
            std::fs::read(dir.join("assets/hud.archive")).unwrap(),
            archive
        );
    }
    for c in [&ca, &cb] {
        c.assert_never(|e| matches!(e, ClientEvent::BundleFailed { .. }));
    }
    ca.session.close().await;
    cb.session.close().await;
    let cache = RuntimeCache::open(&shared).unwrap();
    assert_eq!(
        cache.verify().unwrap()[0].status,
        shard_cache::VerifyStatus::Ok
    );
    let partial: Vec<_> = std::fs::read_dir(shared.join("partial"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
    srv.server.shutdown().await;
}

/// A server with two plugins, `twin_a` and `twin_b`, that carry the same
/// archive: one bundle under two names.
fn twins_server(archive: &[u8]) -> TestServer {
    TestServer::start_with(|cfg| {
        for name in ["twin_a", "twin_b"] {
            let py = format!("__plugin__ = {{\"name\": \"{name}\", \"version\": \"1\"}}\n");
            shard_e2e::write_plugin_files(
                &cfg.plugin_dir,
                &[
                    (format!("{name}.py").as_str(), py.as_bytes()),
                    (format!("{name}/assets/twin.archive").as_str(), archive),
                ],
            );
        }
    })
}

/// Two plugins whose bundles are byte for byte the same (the same assets
/// under two names: a plugin copied to run twice) announce one SHA-256. Both
/// install, from one stored bundle, and the cache verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_plugins_with_the_same_bundle_both_install() {
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\twin\\twin.xbm", noise(300 * 1024, 0x7e1e_55ed))
        .build();
    let srv = twins_server(&archive);
    let a = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("twin_a")).unwrap();
    let b = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("twin_b")).unwrap();
    assert_eq!(
        a.sha256, b.sha256,
        "the twins' bundles differ; the case does not arise"
    );

    let player = TestPlayer::new("vee");
    let mut c = player.join(srv.addr).await;
    // The offer counts the one download once, each install apiece.
    let offer = c
        .expect("offer", |e| matches!(e, ClientEvent::ContentOffer { .. }))
        .await;
    let ClientEvent::ContentOffer {
        packed, unpacked, ..
    } = offer
    else {
        unreachable!()
    };
    assert_eq!(packed, a.bytes.len() as u64);
    assert_eq!(unpacked, 2 * a.unpacked_len);
    for name in ["twin_a", "twin_b"] {
        let ev = c.expect(name, |e| installed(e, name)).await;
        let ClientEvent::BundleInstalled { path, .. } = ev else {
            unreachable!()
        };
        assert_eq!(
            std::fs::read(std::path::Path::new(&path).join("assets/twin.archive")).unwrap(),
            archive
        );
    }
    c.assert_never(|e| matches!(e, ClientEvent::BundleFailed { .. }));
    c.session.close().await;
    let cache_dir = player.options(srv.addr).cache_dir;
    assert_eq!(shard_e2e::assert_cache_verifies(&cache_dir), 2);
    srv.server.shutdown().await;
}

/// The edit the reload tests make: plugin `name` gains a small archive
/// (written whole, then moved in), so its bundle changes; returns the new
/// file's path, whose removal undoes the edit.
#[allow(
    clippy::unwrap_used,
    reason = "test code: a plugin folder that cannot be written is a failed test"
)]
fn add_a_file(plugins: &std::path::Path, name: &str) -> std::path::PathBuf {
    let extra = plugins.join(name).join("assets/extra.archive");
    let staged = plugins.join("extra.archive.tmp");
    std::fs::write(&staged, shard_e2e::blob_archive(&noise(1024, 0xe7a))).unwrap();
    std::fs::rename(&staged, &extra).unwrap();
    extra
}

/// A player joining `srv` through a relay with a 300 ms round trip, so a
/// 4 MB download is still running when a reload lands; keep the relay.
#[allow(
    clippy::unwrap_used,
    reason = "test code: a relay that cannot start is a failed test"
)]
async fn join_far(srv: &TestServer) -> (shard_e2e::relay::Relay, TestPlayer, shard_e2e::Client) {
    let relay = shard_e2e::relay::Relay::start(
        srv.addr,
        shard_e2e::relay::RelayOptions {
            one_way_delay: Duration::from_millis(150),
            ..shard_e2e::relay::RelayOptions::default()
        },
    )
    .await
    .unwrap();
    let player = TestPlayer::new("vee");
    let c = player.join(relay.addr).await;
    (relay, player, c)
}

/// Twins share one download. When a reload gives the twin being fetched
/// other content mid-download, the other twin takes the download over: the
/// server sends it the bundle although the first transfer (now stale) is
/// still running out, and both twins end installed, each with its content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_mid_download_hands_a_shared_bundle_to_its_twin() {
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\twin\\twin.xbm", noise(4 * 1024 * 1024, 0x7e1e_5eed))
        .build();
    let srv = twins_server(&archive);
    let shared = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("twin_a")).unwrap();
    let (_relay, player, mut c) = join_far(&srv).await;
    let progress = c
        .expect("the download starts", |e| {
            matches!(e, ClientEvent::BundleProgress { .. })
        })
        .await;
    let ClientEvent::BundleProgress { name: fetcher, .. } = progress else {
        unreachable!()
    };
    let twin = if fetcher == "twin_a" {
        "twin_b"
    } else {
        "twin_a"
    };

    // The fetcher gains a file: a new bundle, announced mid-download.
    add_a_file(&srv.plugin_dir(), &fetcher);

    let new_sha = |e: &ClientEvent| {
        matches!(e, ClientEvent::BundleInstalled { name, sha256, .. }
            if *name == fetcher && *sha256 != hex::encode(shared.sha256))
    };
    c.expect("the edited twin's new content", new_sha).await;
    let ev = c.expect(twin, |e| installed(e, twin)).await;
    let ClientEvent::BundleInstalled { path, sha256, .. } = ev else {
        unreachable!()
    };
    assert_eq!(sha256, hex::encode(shared.sha256));
    assert_eq!(
        std::fs::read(std::path::Path::new(&path).join("assets/twin.archive")).unwrap(),
        archive
    );
    assert!(
        !c.seen.iter().any(
            |e| matches!(e, ClientEvent::BundleInstalled { name, sha256, .. }
            if *name == fetcher && *sha256 == hex::encode(shared.sha256))
        ),
        "the first download ended before the reload; the case did not arise: {:?}",
        c.seen
    );
    c.assert_clean();
    // The stale transfer was stopped by the client, not sent to its end:
    // the shared bundle went out in full once (to the twin), plus the part
    // of the stale one sent before the stop, plus the new version.
    let sent = srv.server.bundle_flight().bytes_sent;
    let full = shared.bytes.len() as u64;
    assert!(
        sent < 3 * full,
        "{sent} bytes sent ({:.2} bundles): the stale transfer ran to its end",
        sent as f64 / full as f64
    );
    c.session.close().await;
    let cache_dir = player.options(srv.addr).cache_dir;
    assert_eq!(shard_e2e::assert_cache_verifies(&cache_dir), 2);
    srv.server.shutdown().await;
}

/// A modder saves a change and undoes it while players download the
/// plugin: the bundle goes S, S2, then S again mid-download. The client
/// stops the old transfer's stream when S2 is announced and resumes S on a
/// new request from what it kept; the old stream's bytes still in flight
/// are never written (once they were, interleaved with the new stream's,
/// and the install failed with a gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_undone_mid_download_resumes_and_installs() {
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\big\\big.xbm", noise(4 * 1024 * 1024, 0x0dd_5eed))
        .build();
    let srv = TestServer::start_with(|cfg| {
        shard_e2e::write_plugin_files(
            &cfg.plugin_dir,
            &[
                (
                    "big.py",
                    b"__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n",
                ),
                ("big/assets/big.archive", &archive),
            ],
        );
    });
    let first = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("big")).unwrap();
    let (_relay, player, mut c) = join_far(&srv).await;
    c.expect("the download starts", |e| {
        matches!(e, ClientEvent::BundleProgress { .. })
    })
    .await;

    // The edit: a new file, so a new bundle.
    let extra = add_a_file(&srv.plugin_dir(), "big");
    let s1 = hex::encode(first.sha256);
    c.expect(
        "the edit announced",
        |e| matches!(e, ClientEvent::PluginAnnounced { sha256, .. } if *sha256 != s1),
    )
    .await;
    // Undone as soon as the client has heard of it.
    std::fs::remove_file(&extra).unwrap();
    let ev = c
        .expect(
            "the first version installed",
            |e| matches!(e, ClientEvent::BundleInstalled { sha256, .. } if *sha256 == s1),
        )
        .await;
    let ClientEvent::BundleInstalled { path, .. } = ev else {
        unreachable!()
    };
    assert_eq!(
        std::fs::read(std::path::Path::new(&path).join("assets/big.archive")).unwrap(),
        archive
    );
    c.assert_clean();
    // The case arose: the first download had not finished when the edit came.
    let edit = c
        .seen
        .iter()
        .position(|e| matches!(e, ClientEvent::PluginAnnounced { sha256, .. } if *sha256 != s1));
    let finished = c.seen.iter().position(
        |e| matches!(e, ClientEvent::BundleProgress { received, total, .. } if received == total),
    );
    assert!(
        edit < finished,
        "the download ended before the edit; the case did not arise: {:?}",
        c.seen
    );
    c.session.close().await;
    let cache_dir = player.options(srv.addr).cache_dir;
    assert!(shard_e2e::assert_cache_verifies(&cache_dir) >= 1);
    srv.server.shutdown().await;
}

/// 24 players join through a 120 ms relay while the operator edits one of
/// two twin plugins and undoes the edit 0.4 s later, mid-download: every
/// player ends with both twins installed at their first version, with no
/// error, failure or disconnect. (At this scale it found a player whose
/// reverted twin took over a stream and left the other twin waiting
/// forever; the receiver test of that interleaving is
/// `a_twin_reverted_mid_download_waits_for_the_other_twins_stream`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_joining_through_an_edit_and_its_undo_all_install() {
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\twin\\twin.xbm", noise(4 * 1024 * 1024, 0x7e1e_0024))
        .build();
    let srv = twins_server(&archive);
    let first = hex::encode(
        shard_cache::pack_plugin_dir(&srv.plugin_dir().join("twin_a"))
            .unwrap()
            .sha256,
    );
    let relay = shard_e2e::relay::Relay::start(
        srv.addr,
        shard_e2e::relay::RelayOptions {
            one_way_delay: Duration::from_millis(60),
            ..shard_e2e::relay::RelayOptions::default()
        },
    )
    .await
    .unwrap();
    let players: Vec<_> = (0..24)
        .map(|i| {
            let (addr, first) = (relay.addr, first.clone());
            tokio::spawn(async move {
                let player = TestPlayer::new(&format!("p{i}"));
                let mut c = player.join(addr).await;
                for name in ["twin_a", "twin_b"] {
                    c.expect_within(name, LOADED, |e| {
                        matches!(e, ClientEvent::BundleInstalled { name: n, sha256, .. } if n == name && *sha256 == first)
                    })
                    .await;
                }
                c.assert_clean();
                c.session.close().await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let extra = add_a_file(&srv.plugin_dir(), "twin_a");
    tokio::time::sleep(Duration::from_millis(400)).await;
    std::fs::remove_file(&extra).unwrap();
    for p in players {
        p.await.unwrap();
    }
    srv.server.shutdown().await;
}

/// What the issue behind mirrors starts from: a popular server restarts
/// while its players download. 16 players are part-way through a 4 MB
/// bundle (through a 200 ms relay) when the real server binary is stopped;
/// each is told at once, rejoins the restarted server (same key, same
/// port) and resumes from `partial/`: every one installs, with no error,
/// and all of them together fetch little more than one bundle each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_cut_by_a_server_restart_rejoin_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\big\\big.xbm", noise(4 * 1024 * 1024, 0x0e57_a127))
        .build();
    shard_e2e::write_plugin_files(
        &dir.path().join("plugins"),
        &[
            (
                "big.py",
                b"__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n",
            ),
            ("big/assets/big.archive", &archive),
        ],
    );
    let len = shard_cache::pack_plugin_dir(&dir.path().join("plugins/big"))
        .unwrap()
        .bytes
        .len() as u64;
    let bin = shard_e2e::workspace_bin("shard-server");
    // All players come through the relay's one address.
    let config = "admin_http = \"127.0.0.1:0\"\nmax_per_address = 64\n";
    let srv = shard_e2e::ServerProcess::start(&bin, dir.path(), config).unwrap();
    let relay = shard_e2e::relay::Relay::start(
        srv.addr,
        shard_e2e::relay::RelayOptions {
            one_way_delay: Duration::from_millis(100),
            ..shard_e2e::relay::RelayOptions::default()
        },
    )
    .await
    .unwrap();
    let players: Vec<TestPlayer> = (0..16).map(|i| TestPlayer::new(&format!("p{i}"))).collect();
    let mut first = Vec::new();
    for p in &players {
        first.push(p.join(relay.addr).await);
    }
    first[0]
        .expect(
            "the download under way",
            |e| matches!(e, ClientEvent::BundleProgress { received, .. } if *received > 0),
        )
        .await;
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let mut before = Vec::new();
    for c in &mut first {
        c.expect_within(
            "told the server stops",
            LOADED,
            |e| matches!(e, ClientEvent::Kick { reason } if reason.contains("stopping")),
        )
        .await;
        before.push(c.session.bundle_bytes_received());
    }
    assert!(
        before.iter().any(|b| *b > 0 && *b < len),
        "no download was cut; the case did not arise: {before:?}"
    );
    let port = srv.addr.to_string();
    drop(srv);
    // The same data folder (so the same key) on the same port.
    let again = shard_e2e::ServerProcess::start_as(
        std::process::Command::new(&bin),
        dir.path(),
        config,
        &port,
    )
    .unwrap();
    let rejoined: Vec<_> = players
        .into_iter()
        .map(|p| {
            let addr = relay.addr;
            tokio::spawn(async move {
                let mut c = p.join(addr).await;
                c.expect_within("installed", LOADED, |e| installed(e, "big"))
                    .await;
                c.assert_clean();
                c.session.bundle_bytes_received()
            })
        })
        .collect();
    let mut after = 0;
    for r in rejoined {
        after += r.await.unwrap();
    }
    let total = before.iter().sum::<u64>() + after;
    let per_player = total as f64 / len as f64 / 16.0;
    assert!(
        per_player < 1.25,
        "{per_player:.2} bundles per player: the rejoins did not resume"
    );
    drop(again);
}

/// The common case of one bundle under many names: plugins with no client
/// content at all (server-side Python only) all announce the empty bundle.
/// On a cold join it is downloaded once and every one of them installs;
/// more of them than the server's refusal limit once cost the player the
/// connection, each extra request for the same hash counting as abuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_plugins_without_client_content_all_install_on_a_cold_join() {
    let count = shard_protocol::limits::MAX_BUNDLE_REFUSALS as usize + 4;
    let names: Vec<String> = (0..count).map(|i| format!("script_{i:02}")).collect();
    let written = names.clone();
    let srv = TestServer::start_with(move |cfg| {
        for name in &written {
            let py = format!("__plugin__ = {{\"name\": \"{name}\", \"version\": \"1\"}}\n");
            shard_e2e::write_plugin_files(
                &cfg.plugin_dir,
                &[(format!("{name}.py").as_str(), py.as_bytes())],
            );
        }
    });
    let player = TestPlayer::new("vee");
    let mut c = player.join(srv.addr).await;
    let mut hashes = std::collections::BTreeSet::new();
    for name in &names {
        let ev = c.expect(name, |e| installed(e, name)).await;
        let ClientEvent::BundleInstalled { sha256, .. } = ev else {
            unreachable!()
        };
        hashes.insert(sha256);
    }
    assert_eq!(hashes.len(), 1, "they all carry the same (empty) bundle");
    c.settles_cleanly().await;
    c.session.close().await;
    srv.server.shutdown().await;
}

/// A player (or a tidy-up tool) deleted the stored copy of a bundle that is
/// still installed: the next join fetches it again and installs, instead of
/// failing the plugin for a cache file it can replace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stored_copy_is_fetched_again_on_the_next_join() {
    let (srv, archive) = hud_server(&[]);
    let player = TestPlayer::new("vee");
    let mut c = player.join(srv.addr).await;
    let ev = c.expect("hud installed", |e| installed(e, "hud")).await;
    let ClientEvent::BundleInstalled { sha256, .. } = ev else {
        unreachable!()
    };
    c.session.close().await;
    let cache_dir = player.options(srv.addr).cache_dir;
    std::fs::remove_file(cache_dir.join("store").join(format!("{sha256}.bundle"))).unwrap();

    let mut again = player.join(srv.addr).await;
    let ev = again
        .expect("hud installed again", |e| installed(e, "hud"))
        .await;
    again.assert_never(|e| matches!(e, ClientEvent::BundleFailed { .. }));
    let ClientEvent::BundleInstalled { path, .. } = ev else {
        unreachable!()
    };
    assert_eq!(
        std::fs::read(std::path::Path::new(&path).join("assets/hud.archive")).unwrap(),
        archive
    );
    again.session.close().await;
    assert_eq!(shard_e2e::assert_cache_verifies(&cache_dir), 1);
    srv.server.shutdown().await;
}

/// A server with many plugins, each with content of its own (more than one
/// offer lists by name): a cold join installs every one and settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_join_to_a_server_with_many_plugins_installs_them_all() {
    let count = shard_protocol::limits::MAX_OFFER_PLUGINS_LISTED + 16;
    let names: Vec<String> = (0..count).map(|i| format!("mod_{i:03}")).collect();
    let written = names.clone();
    let srv = TestServer::start_with(move |cfg| {
        for (i, name) in written.iter().enumerate() {
            let py = format!("__plugin__ = {{\"name\": \"{name}\", \"version\": \"1\"}}\n");
            let archive = shard_e2e::blob_archive(&noise(2048, i as u64 + 1));
            shard_e2e::write_plugin_files(
                &cfg.plugin_dir,
                &[
                    (format!("{name}.py").as_str(), py.as_bytes()),
                    (format!("{name}/assets/{name}.archive").as_str(), &archive),
                ],
            );
        }
    });
    let player = TestPlayer::new("vee");
    let mut c = player.join(srv.addr).await;
    for name in &names {
        c.expect(name, |e| installed(e, name)).await;
    }
    c.settles_cleanly().await;
    c.session.close().await;
    srv.server.shutdown().await;
}
