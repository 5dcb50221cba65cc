//! One script reload per batch, with a real server and real clients: a cold
//! join with three plugins (two with client scripts, one without) asks the
//! game once, after the last install; a bundle without scripts, a new asset
//! or a Python-only change asks for nothing; a script change asks once; the
//! runtime's entry glue calls exactly the installed plugins' checked entry
//! points, and a plugin the server removes loses its call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shard_client::ClientEvent;
use shard_client::events::{ReloadScripts, ScriptFolder};
use shard_client::game::{ReloadTracker, route_with_reloads};
use shard_client::glue::{GLUE_DIR, GLUE_FILE};
use shard_e2e::{
    Client, EVENT_TIMEOUT, TestPlayer, TestServer, blob_archive, headless_join, save_file,
};

/// How long the game is watched after a batch settles, so a second request
/// from the same batch would be seen.
const QUIET: Duration = Duration::from_millis(700);

fn py(name: &str, version: &str) -> String {
    format!("__plugin__ = {{\"name\": \"{name}\", \"version\": \"{version}\"}}\n")
}

/// A client script with entry point `<Stem>Init` (and `rev` in a comment,
/// so a test can change the script without changing what it does).
fn reds(stem: &str, rev: u32) -> String {
    format!(
        "// revision {rev}\npublic class {stem}Handler extends ShardRpcHandler {{\n  \
         public func OnRpc(json: String) -> Void {{}}\n}}\n\n\
         public func {stem}Init() -> Void {{\n  RegisterRpc(n\"{stem}\", new {stem}Handler());\n}}\n"
    )
}

/// The server's plugin folder at the start: alpha and beta have client
/// scripts (beta an archive too), gamma only an archive.
fn plugin_files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("alpha.py".into(), py("alpha", "1").into_bytes()),
        (
            "alpha/client/alpha.reds".into(),
            reds("Alpha", 0).into_bytes(),
        ),
        ("beta.py".into(), py("beta", "1").into_bytes()),
        ("beta/client/beta.reds".into(), reds("Beta", 0).into_bytes()),
        ("beta/assets/beta.archive".into(), blob_archive(b"beta 0")),
        ("gamma.py".into(), py("gamma", "1").into_bytes()),
        (
            "gamma/assets/gamma.archive".into(),
            blob_archive(b"gamma 0"),
        ),
    ]
}

fn start_server() -> TestServer {
    let files = plugin_files();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    TestServer::start_with_files(&[], &refs)
}

/// The game side of one client, as the DLL runs it: every event goes
/// through the reload tracker (no pacing, so a second request in a batch
/// would show at once) and is recorded.
struct Game {
    cache: PathBuf,
    tracker: ReloadTracker,
    game: Vec<ClientEvent>,
}

impl Game {
    fn new(cache: PathBuf) -> Self {
        Self {
            cache,
            tracker: ReloadTracker::with_interval(Duration::ZERO),
            game: Vec::new(),
        }
    }

    /// Routes `c`'s events until `done` holds for the events of this call
    /// and a `BundlesSettled` came after that, then for [`QUIET`] more;
    /// returns the calls the game got meanwhile.
    async fn play(
        &mut self,
        c: &mut Client,
        done: impl Fn(&[ClientEvent]) -> bool,
    ) -> Vec<ClientEvent> {
        let from = self.game.len();
        let mut events: Vec<ClientEvent> = std::mem::take(&mut c.seen);
        for ev in events.clone() {
            route_with_reloads(ev, &self.cache, &mut self.tracker, &mut self.game);
        }
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        let mut reached = done(&events);
        let mut quiet_until = None;
        loop {
            let until = quiet_until.unwrap_or(deadline);
            match tokio::time::timeout_at(until, c.session.next_event()).await {
                Ok(Some(ev)) => {
                    let settled = matches!(ev, ClientEvent::BundlesSettled);
                    events.push(ev.clone());
                    route_with_reloads(ev, &self.cache, &mut self.tracker, &mut self.game);
                    if settled && reached && quiet_until.is_none() {
                        quiet_until = Some(tokio::time::Instant::now() + QUIET);
                    }
                    reached |= done(&events);
                }
                Ok(None) => panic!("session ended; events {events:?}"),
                Err(_) if quiet_until.is_some() => break,
                Err(_) => panic!("no settled batch; events {events:?}"),
            }
        }
        self.game[from..].to_vec()
    }
}

fn reloads(calls: &[ClientEvent]) -> Vec<ReloadScripts> {
    calls
        .iter()
        .filter_map(|c| match c {
            ClientEvent::ReloadScripts(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn installed_as(ev: &ClientEvent, plugin: &str, version: &str) -> bool {
    matches!(ev, ClientEvent::BundleInstalled { name, version: v, .. } if name == plugin && v == version)
}

fn installed(events: &[ClientEvent], plugin: &str, version: &str) -> bool {
    events.iter().any(|e| installed_as(e, plugin, version))
}

fn folder(cache: &Path, plugin: &str) -> ScriptFolder {
    ScriptFolder {
        plugin: plugin.into(),
        dir: cache.join("plugins").join(plugin),
    }
}

/// The entry points the runtime's glue calls, in order.
fn glue_calls(cache: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(cache.join(GLUE_DIR).join(GLUE_FILE))
        .unwrap_or_else(|e| panic!("the glue: {e}"));
    text.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_suffix("();"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reload_per_batch_only_for_script_changes_and_the_glue_follows_the_plugins() {
    let srv = start_server();
    let player = TestPlayer::new("vee");
    let cache = player.options(srv.addr).cache_dir;
    let mut game = Game::new(cache.clone());
    let mut c = player.join(srv.addr).await;

    // Cold join: three installs, one reload after the last of them.
    let calls = game
        .play(&mut c, |evs| {
            ["alpha", "beta", "gamma"]
                .iter()
                .all(|p| installed(evs, p, "1"))
        })
        .await;
    let r = reloads(&calls);
    assert_eq!(r.len(), 1, "{calls:?}");
    assert_eq!(
        r[0],
        ReloadScripts {
            plugins: vec![folder(&cache, "alpha"), folder(&cache, "beta")],
            removed: vec![],
        }
    );
    let reload_at = calls
        .iter()
        .position(|c| matches!(c, ClientEvent::ReloadScripts(_)))
        .unwrap_or(0);
    let last_install = calls
        .iter()
        .rposition(|c| matches!(c, ClientEvent::BundleInstalled { .. }))
        .unwrap_or(usize::MAX);
    assert!(last_install < reload_at, "{calls:?}");
    assert_eq!(glue_calls(&cache), ["AlphaInit", "BetaInit"]);

    // A new plugin whose bundle has no scripts: installed, no reload.
    let dir = srv.plugin_dir();
    std::fs::create_dir_all(dir.join("delta/assets")).unwrap();
    std::fs::write(dir.join("delta/assets/delta.archive"), blob_archive(b"d")).unwrap();
    save_file(&dir.join("delta.py"), &py("delta", "1"));
    let calls = game.play(&mut c, |evs| installed(evs, "delta", "1")).await;
    assert!(reloads(&calls).is_empty(), "{calls:?}");

    // beta's archive changes (a new bundle hash, same scripts): no reload.
    let archive = dir.join("beta/assets/beta.archive");
    std::fs::write(dir.join("beta/assets/tmp.part"), blob_archive(b"beta 1")).unwrap();
    std::fs::rename(dir.join("beta/assets/tmp.part"), &archive).unwrap();
    save_file(&dir.join("beta.py"), &py("beta", "2"));
    let calls = game.play(&mut c, |evs| installed(evs, "beta", "2")).await;
    assert!(
        calls.iter().any(|c| matches!(
            c,
            ClientEvent::BundleInstalled { name, changed: true, .. } if name == "beta"
        )),
        "the new archive was not installed: {calls:?}"
    );
    assert!(reloads(&calls).is_empty(), "{calls:?}");

    // gamma's Python only (same bundle, re-announced as a new version): no reload.
    save_file(
        &dir.join("gamma.py"),
        &format!("{}\nGREETING = 'hi'\n", py("gamma", "2")),
    );
    let calls = game.play(&mut c, |evs| installed(evs, "gamma", "2")).await;
    assert!(reloads(&calls).is_empty(), "{calls:?}");

    // alpha's script changes: exactly one reload, for alpha alone.
    save_file(&dir.join("alpha/client/alpha.reds"), &reds("Alpha", 1));
    let calls = game
        .play(&mut c, |evs| {
            evs.iter().any(|e| {
                matches!(e, ClientEvent::BundleInstalled { name, changed: true, .. } if name == "alpha")
            })
        })
        .await;
    let r = reloads(&calls);
    assert_eq!(
        r,
        vec![ReloadScripts {
            plugins: vec![folder(&cache, "alpha")],
            removed: vec![],
        }],
        "{calls:?}"
    );
    assert_eq!(glue_calls(&cache), ["AlphaInit", "BetaInit"]);

    // The server removes alpha: its call leaves the glue, and the one reload
    // says its scripts are gone.
    std::fs::remove_file(dir.join("alpha.py")).unwrap();
    let calls = game
        .play(&mut c, |evs| {
            evs.iter()
                .any(|e| matches!(e, ClientEvent::PluginRemoved { name, .. } if name == "alpha"))
        })
        .await;
    assert_eq!(glue_calls(&cache), ["BetaInit"]);
    assert_eq!(
        reloads(&calls),
        vec![ReloadScripts {
            plugins: vec![],
            removed: vec!["alpha".into()],
        }],
        "{calls:?}"
    );
    c.session.close().await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_client_prints_one_reload_on_a_cold_join_with_three_plugins() {
    let srv = start_server();
    let home = tempfile::tempdir().unwrap();
    let out = headless_join(srv.addr, home.path(), &["--do", "wait:2", "--for", "0.5"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let installs: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("\"event\":\"bundle_installed\""))
        .collect();
    let reloads: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("\"event\":\"reload_scripts\""))
        .collect();
    assert_eq!(installs.len(), 3, "{stdout}");
    assert_eq!(reloads.len(), 1, "{stdout}");
    assert!(installs.iter().all(|&i| i < reloads[0]), "{stdout}");
    let reload: serde_json::Value = serde_json::from_str(lines[reloads[0]]).unwrap();
    let plugins: Vec<&str> = reload["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["plugin"].as_str())
        .collect();
    assert_eq!(plugins, ["alpha", "beta"], "{stdout}");
    assert_eq!(
        glue_calls(&home.path().join("cache")),
        ["AlphaInit", "BetaInit"]
    );
    srv.server.shutdown().await;
}
