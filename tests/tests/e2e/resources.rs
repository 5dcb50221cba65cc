//! Pushed game content end to end: a cold join installs mobile_cc's
//! archive, `.xl` and tweak and asks the game once to load them (one
//! `load_resources` event, in the DLL's queue and the headless client's
//! JSON lines); a warm rejoin by the same game asks for nothing.

use std::time::Duration;

use shard_client::ClientEvent;
use shard_client::events::LoadResources;
use shard_client::game::{ReloadTracker, route_with_reloads};
use shard_e2e::{Client, EVENT_TIMEOUT, TestPlayer, TestServer, headless_join};

/// Routes every event `c` receives through `tracker` into `game` (as the DLL
/// does) until the batch with mobile_cc's install has settled, then for a
/// little longer so a second request would be seen.
async fn play_until_settled(
    c: &mut Client,
    cache: &std::path::Path,
    tracker: &mut ReloadTracker,
    game: &mut Vec<ClientEvent>,
) {
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    let mut installed = false;
    let mut quiet_until = None;
    loop {
        let until = quiet_until.unwrap_or(deadline);
        match tokio::time::timeout_at(until, c.session.next_event()).await {
            Ok(Some(ev)) => {
                installed |=
                    matches!(&ev, ClientEvent::BundleInstalled { name, .. } if name == "mobile_cc");
                if installed && matches!(ev, ClientEvent::BundlesSettled) && quiet_until.is_none() {
                    quiet_until = Some(tokio::time::Instant::now() + Duration::from_millis(700));
                }
                route_with_reloads(ev, cache, tracker, game);
            }
            Ok(None) => panic!("session ended; game saw {:?}", game),
            Err(_) if quiet_until.is_some() => return,
            Err(_) => panic!("no settled batch with mobile_cc; game saw {:?}", game),
        }
    }
}

fn load_requests(game: &[ClientEvent]) -> Vec<LoadResources> {
    game.iter()
        .filter_map(|c| match c {
            ClientEvent::LoadResources(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_join_loads_mobile_cc_content_once_and_a_warm_rejoin_loads_nothing() {
    let srv = TestServer::start_with_example(&[], "mobile_cc");
    let player = TestPlayer::new("vee");
    let cache = player.options(srv.addr).cache_dir;
    let mut tracker = ReloadTracker::new();
    let mut game = Vec::new();

    let mut c = player.join(srv.addr).await;
    let early = std::mem::take(&mut c.seen);
    for ev in early {
        route_with_reloads(ev, &cache, &mut tracker, &mut game);
    }
    play_until_settled(&mut c, &cache, &mut tracker, &mut game).await;
    let requests = load_requests(&game);
    assert_eq!(requests.len(), 1, "{:?}", game);
    let req = &requests[0];
    assert!(req.unload.is_empty());
    assert_eq!(req.load.len(), 1);
    let cc = &req.load[0];
    assert_eq!(cc.plugin, "mobile_cc");
    let dir = cache.join("plugins/mobile_cc");
    assert_eq!(cc.dir, dir);
    assert_eq!(cc.archives.len(), 1);
    assert_eq!(cc.archives[0].archive, dir.join("assets/mobile_cc.archive"));
    assert_eq!(
        cc.archives[0].xl.as_deref(),
        Some(dir.join("assets/mobile_cc.archive.xl").as_path())
    );
    assert_eq!(cc.tweaks, vec![dir.join("tweaks/commandcenter.yaml")]);
    // Installed byte for byte as the plugin ships them.
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/mobile_cc");
    for rel in [
        "assets/mobile_cc.archive",
        "assets/mobile_cc.archive.xl",
        "tweaks/commandcenter.yaml",
    ] {
        assert_eq!(
            std::fs::read(dir.join(rel)).unwrap(),
            std::fs::read(shipped.join(rel)).unwrap(),
            "{rel}"
        );
    }
    c.session.close().await;

    // The same game rejoins: the cache has it all and nothing changed.
    game.clear();
    let mut again = player.join(srv.addr).await;
    for ev in std::mem::take(&mut again.seen) {
        route_with_reloads(ev, &cache, &mut tracker, &mut game);
    }
    play_until_settled(&mut again, &cache, &mut tracker, &mut game).await;
    assert_eq!(again.session.bundle_bytes_received(), 0);
    assert!(load_requests(&game).is_empty(), "{:?}", game);
    assert!(
        game.iter()
            .any(|c| matches!(c, ClientEvent::BundleInstalled { changed: false, .. })),
        "{:?}",
        game
    );
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_client_prints_one_load_resources_line_on_a_cold_join() {
    let srv = TestServer::start_with_example(&[], "mobile_cc");
    let home = tempfile::tempdir().unwrap();
    let out = headless_join(srv.addr, home.path(), &["--do", "wait:2", "--for", "0.5"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.contains("\"event\":\"load_resources\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let cc = &lines[0]["load"][0];
    assert_eq!(cc["plugin"], "mobile_cc");
    assert!(
        cc["archives"][0]["xl"]
            .as_str()
            .is_some_and(|x| x.ends_with("mobile_cc.archive.xl")),
        "{stdout}"
    );
    assert!(
        cc["tweaks"][0]
            .as_str()
            .is_some_and(|t| t.ends_with("tweaks/commandcenter.yaml")),
        "{stdout}"
    );
    srv.server.shutdown().await;
}
