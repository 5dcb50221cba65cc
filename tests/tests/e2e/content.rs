//! Player safety against hostile servers, end to end: content is offered
//! before any download, an offer over the per-server quota is refused with
//! no byte fetched, declining joins without content or leaves (as the server
//! says), remembered answers, and a server flooding RPCs past the game's
//! event byte bound is left with a reason while the queue stays bounded.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::time::Duration;

use shard_cache::RuntimeCache;
use shard_client::offer::Decided;
use shard_client::{ClientEvent, ContentSettings, OfferMode};
use shard_e2e::{HUD_REDS, TestPlayer, TestServer, chat_contains, noise, save_file};
use shard_protocol::limits::MAX_EVENT_QUEUE_BYTES;

const BIG_PY: &str = "__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n";

const HUD_PY: &str = "__plugin__ = {\"name\": \"hud\", \"version\": \"1\"}\n";

fn ask() -> ContentSettings {
    ContentSettings {
        mode: OfferMode::Ask,
        ..ContentSettings::default()
    }
}

fn is_offer(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::ContentOffer { .. })
}

fn is_disconnect(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::Disconnected { .. })
}

fn installed(e: &ClientEvent, name: &str) -> bool {
    matches!(e, ClientEvent::BundleInstalled { name: n, .. } if n == name)
}

/// Nothing of the server's content reached the cache: no stored bundle, no
/// partial download, no install.
/// The HUD plugin's game asset: an archive holding its layout.
fn hud_archive(layout: &str) -> Vec<u8> {
    shard_e2e::blob_archive(format!("{{\"layout\": \"{layout}\"}}").as_bytes())
}

fn cache_is_empty(player: &TestPlayer) {
    let cache = RuntimeCache::open(player.dir.path().join("runtime_cache")).unwrap();
    assert!(cache.list().unwrap().is_empty());
    assert_eq!(cache.total_use().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_over_the_quota_is_refused_with_no_byte_fetched() {
    let texture = shard_e2e::blob_archive(&noise(300 * 1024, 7));
    let srv = TestServer::start_with_files(
        &[],
        &[
            ("big.py", BIG_PY.as_bytes()),
            ("big/assets/big.archive", &texture),
        ],
    );
    let unpacked = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("big"))
        .unwrap()
        .unpacked_len;
    let quota = 200 * 1024;
    let player = TestPlayer::new("vee");
    let settings = ContentSettings {
        server_quota: quota,
        ..ContentSettings::default()
    };
    let mut c = player.join_with(srv.addr, settings).await;
    let offer = c.expect("offer", is_offer).await;
    let ClientEvent::ContentOffer {
        over_quota_by,
        needs_answer,
        decided,
        server_total,
        plugins,
        ..
    } = offer
    else {
        unreachable!()
    };
    assert_eq!(server_total, unpacked);
    assert_eq!(over_quota_by, unpacked - quota);
    assert!(!needs_answer);
    assert_eq!(decided, Some(Decided::OverQuota));
    assert_eq!(plugins[0].name, "big");
    let refused = c
        .expect("refusal", |e| {
            matches!(e, ClientEvent::ContentRefused { .. })
        })
        .await;
    assert!(
        matches!(&refused, ClientEvent::ContentRefused { over_by, limit, reason }
            if *over_by == unpacked - quota && *limit == quota && reason.contains("quota")),
        "{refused:?}"
    );
    // The server requires its content (the default), so the player left, told why.
    let gone = c.expect("disconnect", is_disconnect).await;
    assert!(
        matches!(&gone, ClientEvent::Disconnected { reason }
            if reason.contains("quota") && reason.contains("requires its content")),
        "{gone:?}"
    );
    assert_eq!(c.session.bundle_bytes_received(), 0);
    cache_is_empty(&player);
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_joins_without_content_unless_the_server_requires_it() {
    let files: &[(&str, &[u8])] = &[
        ("hud.py", HUD_PY.as_bytes()),
        ("hud/assets/hud.archive", &hud_archive("top-right")),
        ("hud/client/hud.reds", HUD_REDS.as_bytes()),
    ];
    // Optional content: the player declines and plays on without it.
    let optional = TestServer::start_with(|cfg| {
        cfg.content_required = false;
        for (rel, data) in files {
            let path = cfg.plugin_dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        }
    });
    let player = TestPlayer::new("vee");
    let mut c = player.join_with(optional.addr, ask()).await;
    let offer = c.expect("offer", is_offer).await;
    assert!(
        matches!(
            &offer,
            ClientEvent::ContentOffer {
                needs_answer: true,
                required: false,
                scripts: 1,
                ..
            }
        ),
        "{offer:?}"
    );
    // Nothing is fetched while the player thinks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.session.bundle_bytes_received(), 0);
    c.session.answer_offer(false, false).unwrap();
    c.expect(
        "skipped",
        |e| matches!(e, ClientEvent::BundleFailed { error, .. } if error.contains("declined")),
    )
    .await;
    c.session.say("still here").await;
    c.expect("chat echo", |e| chat_contains(e, "still here"))
        .await;
    assert!(!c.seen.iter().any(is_disconnect));
    assert_eq!(c.session.bundle_bytes_received(), 0);
    cache_is_empty(&player);
    // No second answer is possible.
    assert!(c.session.answer_offer(true, false).is_err());
    c.session.close().await;
    optional.server.shutdown().await;

    // Required content (the default): declining leaves with a reason.
    let required = TestServer::start_with_files(&[], files);
    let player = TestPlayer::new("jackie");
    let mut c = player.join_with(required.addr, ask()).await;
    c.expect("offer", is_offer).await;
    c.session.answer_offer(false, false).unwrap();
    let gone = c.expect("disconnect", is_disconnect).await;
    assert!(
        matches!(&gone, ClientEvent::Disconnected { reason }
            if reason.contains("requires its content") && reason.contains("declined")),
        "{gone:?}"
    );
    assert_eq!(c.session.bundle_bytes_received(), 0);
    cache_is_empty(&player);
    required.server.shutdown().await;
}

/// Expects an offer that the remembered accept covers, then the install.
async fn remembered_install(c: &mut shard_e2e::Client) {
    let offer = c.expect("offer", is_offer).await;
    assert!(
        matches!(
            &offer,
            ClientEvent::ContentOffer {
                needs_answer: false,
                decided: Some(Decided::RememberedAccept),
                ..
            }
        ),
        "{offer:?}"
    );
    c.expect("installed", |e| installed(e, "hud")).await;
    c.forget();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_accept_is_not_asked_again_unless_scripts_are_added() {
    let srv = TestServer::start_with_files(
        &[],
        &[
            ("hud.py", HUD_PY.as_bytes()),
            ("hud/assets/hud.archive", &hud_archive("top-right")),
        ],
    );
    let player = TestPlayer::new("vee");
    let mut c = player.join_with(srv.addr, ask()).await;
    let offer = c.expect("offer", is_offer).await;
    assert!(matches!(
        offer,
        ClientEvent::ContentOffer {
            needs_answer: true,
            scripts: 0,
            ..
        }
    ));
    c.session.answer_offer(true, true).unwrap();
    c.expect("installed", |e| installed(e, "hud")).await;
    c.session.close().await;

    // The cache is emptied (evicted, or cleared by hand): the same content is
    // downloaded again without asking.
    RuntimeCache::open(player.dir.path().join("runtime_cache"))
        .unwrap()
        .clear()
        .unwrap();
    let mut c = player.join_with(srv.addr, ask()).await;
    remembered_install(&mut c).await;

    // A changed asset of about the same size: still covered, not asked.
    let path = srv.plugin_dir().join("hud/assets/hud.archive");
    std::fs::write(path.with_extension("tmp-save"), hud_archive("top-lefts")).unwrap();
    std::fs::rename(path.with_extension("tmp-save"), &path).unwrap();
    remembered_install(&mut c).await;

    // The plugin now brings client scripts: the player is asked again.
    std::fs::create_dir_all(srv.plugin_dir().join("hud/client")).unwrap();
    save_file(&srv.plugin_dir().join("hud/client/hud.reds"), HUD_REDS);
    let offer = c.expect("offer for new scripts", is_offer).await;
    assert!(
        matches!(
            &offer,
            ClientEvent::ContentOffer {
                needs_answer: true,
                scripts: 1,
                decided: None,
                ..
            }
        ),
        "{offer:?}"
    );
    assert!(c.session.pending_offer().is_some());
    c.session.answer_offer(true, false).unwrap();
    let ev = c.expect("installed", |e| installed(e, "hud")).await;
    assert!(
        matches!(ev, ClientEvent::BundleInstalled { rpcs, .. } if rpcs == vec!["HudUpdate".to_string()])
    );
    srv.server.shutdown().await;
}

const FLOOD_PY: &str = r#"
__plugin__ = {"name": "flood", "version": "1"}

@game.register_command("flood", "flood the caller with RPCs")
def flood(peer, args):
    game.state["target"] = peer

@game.on("OnTick")
def tick(dt):
    peer = game.state.get("target")
    if peer is None:
        return
    # As much as the server's per-plugin, per-peer budget allows each tick.
    for i in range(8):
        try:
            game.send_rpc(peer, "Flood", {"i": i, "pad": "x" * 15000})
        except Exception:
            return
"#;

const FLOOD_REDS: &str = r#"
public class FloodHandler extends ShardRpcHandler {
  public func OnRpc(json: String) -> Void {}
}

public func FloodInit() -> Void {
  RegisterRpc(n"Flood", new FloodHandler());
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_flood_past_the_byte_bound_disconnects_with_a_reason() {
    let srv = TestServer::start_with_files(
        &[],
        &[
            ("flood.py", FLOOD_PY.as_bytes()),
            ("flood/client/flood.reds", FLOOD_REDS.as_bytes()),
        ],
    );
    let player = TestPlayer::new("vee");
    let mut c = player.join(srv.addr).await;
    c.expect("installed", |e| installed(e, "flood")).await;
    c.session.say("/flood").await;
    // The game stops taking events (a loading screen, a hang): the server's
    // RPCs pile up until the byte bound, then the session leaves.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c.session.connection().close_reason().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still connected; {} bytes queued",
            c.session.queued_event_bytes()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = c.session.max_queued_event_bytes();
    assert!(peak <= MAX_EVENT_QUEUE_BYTES, "peak {peak}");
    assert!(
        peak > MAX_EVENT_QUEUE_BYTES / 2,
        "peak {peak}: the flood never got near the bound"
    );
    let gone = c.expect("disconnect", is_disconnect).await;
    assert!(
        matches!(&gone, ClientEvent::Disconnected { reason } if reason.contains("game's memory")),
        "{gone:?}"
    );
    let rpcs = c
        .seen
        .iter()
        .filter(|e| matches!(e, ClientEvent::Rpc { .. }))
        .count();
    assert!(rpcs > 100, "{rpcs} RPCs reached the game before the bound");
    assert!(c.session.queued_event_bytes() < 1024);
    eprintln!("flood: {rpcs} RPC events, peak queue {peak} bytes (bound {MAX_EVENT_QUEUE_BYTES})");
    srv.server.shutdown().await;
}
