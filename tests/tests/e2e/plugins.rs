//! The Python plugin host end to end: example plugins reach real clients,
//! hot reload, error isolation and admin-only plugin commands.
#![allow(
    clippy::print_stdout,
    reason = "prints measured figures for the test log"
)]

use std::time::{Duration, Instant};

use shard_client::ClientEvent;
use shard_e2e::{TestPlayer, TestServer, chat_contains, example_plugin, join_as, save_file};
use shard_protocol::Vec3;

fn is_popup(e: &ClientEvent, text: &str) -> bool {
    matches!(e, ClientEvent::Popup { text: t, .. } if t == text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_into_the_zone_shows_the_popup_once_per_entry() {
    let popup = example_plugin("popup_zone.py");
    let srv = TestServer::start_with_files(&[], &[("popup_zone.py", &popup)]);
    let mut c = join_as("walker", srv.addr).await;

    c.session
        .send_position(Vec3::new(123.0, 456.5, 0.0), 0.0)
        .unwrap();
    let ev = c
        .expect("popup", |e| is_popup(e, "Welcome to HexBar!"))
        .await;
    assert!(matches!(ev, ClientEvent::Popup { duration, .. } if duration == 5.0));

    // Staying inside (and moving within the zone) does not repeat it.
    for i in 0..10 {
        c.session
            .send_position(Vec3::new(123.0, 456.0 + (i as f32) * 0.1, 0.0), 0.0)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let later = c.collect_for(Duration::from_millis(500)).await;
    assert!(
        !later.iter().any(|e| is_popup(e, "Welcome to HexBar!")),
        "popup repeated: {later:?}"
    );

    // Leaving and coming back is a new entry.
    c.session
        .send_position(Vec3::new(0.0, 0.0, 0.0), 0.0)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.forget();
    c.session
        .send_position(Vec3::new(123.0, 456.0, 0.0), 0.0)
        .unwrap();
    c.expect("popup again", |e| is_popup(e, "Welcome to HexBar!"))
        .await;
    srv.server.shutdown().await;
}

const GREETER_V1: &str = r#"
__plugin__ = {"name": "greeter", "version": "1"}

@game.register_command("greet", "say hello")
def greet(peer, args):
    game.send_chat(peer, "hello v1")

@game.register_command("secret", "admins only", admin=True)
def secret(peer, args):
    game.send_chat(peer, "the secret is 42")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_plugin_is_live_within_a_second_and_a_broken_edit_keeps_the_old_one() {
    let admin = TestPlayer::new("admin");
    let srv = TestServer::start_with_files(
        &[admin.fingerprint],
        &[("greeter.py", GREETER_V1.as_bytes())],
    );
    let mut boss = admin.join(srv.addr).await;
    boss.session.say("/greet").await;
    boss.expect("v1", |e| chat_contains(e, "hello v1")).await;

    let path = srv.plugin_dir().join("greeter.py");
    let saved = Instant::now();
    save_file(
        &path,
        &GREETER_V1
            .replace("hello v1", "hello v2")
            .replace("\"1\"", "\"2\""),
    );
    // Ask until the new version answers; it must within 1 s of the save.
    let mut live_after = None;
    while saved.elapsed() < Duration::from_secs(3) {
        boss.forget();
        boss.session.say("/greet").await;
        let got = boss.collect_for(Duration::from_millis(100)).await;
        if got.iter().any(|e| chat_contains(e, "hello v2")) {
            live_after = Some(saved.elapsed());
            break;
        }
    }
    let live_after = live_after.expect("the edit went live");
    println!("hot reload latency (save → new behaviour seen by a client): {live_after:?}");
    assert!(
        live_after < Duration::from_secs(1),
        "reload took {live_after:?}"
    );

    // A syntax error: the old version keeps running, the admin is told why.
    boss.forget();
    save_file(
        &path,
        "__plugin__ = {\"name\": \"greeter\", \"version\": \"3\"}\ndef broken(:\n",
    );
    boss.expect("admin told", |e| chat_contains(e, "greeter"))
        .await;
    boss.forget();
    boss.session.say("/greet").await;
    boss.expect("v2 still runs", |e| chat_contains(e, "hello v2"))
        .await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_admin_cannot_run_an_admin_plugin_command() {
    let admin = TestPlayer::new("admin");
    let srv = TestServer::start_with_files(
        &[admin.fingerprint],
        &[("greeter.py", GREETER_V1.as_bytes())],
    );
    let mut pleb = join_as("pleb", srv.addr).await;
    pleb.session.say("/secret").await;
    pleb.expect("refused", |e| chat_contains(e, "for admins only"))
        .await;
    let got = pleb.collect_for(Duration::from_millis(300)).await;
    assert!(!got.iter().any(|e| chat_contains(e, "42")));
    pleb.session.say("/help").await;
    let help = pleb.expect("help", |e| chat_contains(e, "commands:")).await;
    assert!(
        chat_contains(&help, "/greet") && !chat_contains(&help, "/secret"),
        "{help:?}"
    );

    let mut boss = admin.join(srv.addr).await;
    boss.session.say("/secret").await;
    boss.expect("admin runs it", |e| chat_contains(e, "the secret is 42"))
        .await;
    srv.server.shutdown().await;
}

/// `/help` lists what the asking peer may run, from the same registry that
/// dispatches: admins see every builtin (`/plugins` and `/plugin` too) and the
/// admin plugin commands; players see none of those, and are refused them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_every_builtin_to_admins_and_only_player_commands_to_players() {
    let admin = TestPlayer::new("admin");
    let srv = TestServer::start_with_files(
        &[admin.fingerprint],
        &[("greeter.py", GREETER_V1.as_bytes())],
    );
    let mut boss = admin.join(srv.addr).await;
    boss.session.say("/help").await;
    let help = boss.expect("help", |e| chat_contains(e, "commands:")).await;
    for b in shard_server::commands::BUILTINS {
        assert!(
            chat_contains(&help, b.usage),
            "admin /help lacks /{}: {help:?}",
            b.name
        );
    }
    assert!(
        chat_contains(&help, "/greet") && chat_contains(&help, "/secret"),
        "{help:?}"
    );
    // What /help shows an admin, the server runs.
    boss.session.say("/plugins").await;
    boss.expect("/plugins answers", |e| {
        chat_contains(e, "greeter 1 [Loaded")
    })
    .await;

    let mut pleb = join_as("pleb", srv.addr).await;
    pleb.session.say("/help").await;
    let help = pleb.expect("help", |e| chat_contains(e, "commands:")).await;
    for b in shard_server::commands::BUILTINS {
        assert_eq!(
            chat_contains(&help, &format!("{} - ", b.usage)),
            !b.admin,
            "player /help and /{}: {help:?}",
            b.name
        );
    }
    pleb.session.say("/plugins").await;
    pleb.expect("refused", |e| chat_contains(e, "for admins only"))
        .await;
    srv.server.shutdown().await;
}

const FAULTY: &str = r#"
__plugin__ = {"name": "faulty", "version": "1"}

@game.on("OnTick")
def boom(dt):
    raise RuntimeError("faulty plugin exploded")
"#;

const STEADY: &str = r#"
__plugin__ = {"name": "steady", "version": "1"}

@game.register_command("ping", "answers pong")
def ping(peer, args):
    game.send_chat(peer, "pong")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_failing_in_on_tick_is_disabled_after_five_errors_and_others_keep_working() {
    let admin = TestPlayer::new("admin");
    let srv =
        TestServer::start_with_files(&[admin.fingerprint], &[("steady.py", STEADY.as_bytes())]);
    let mut boss = admin.join(srv.addr).await;
    // Drop the faulty plugin in while the admin is online, so the notice reaches them.
    std::fs::write(srv.plugin_dir().join("faulty.py"), FAULTY).unwrap();
    let notice = boss
        .expect("disabled notice", |e| {
            chat_contains(e, "[Plugin faulty disabled")
        })
        .await;
    assert!(
        chat_contains(&notice, "[Plugin faulty disabled – error]"),
        "{notice:?}"
    );

    let log = srv.dir.path().join("data/logs/plugins/faulty.log");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert_eq!(
        text.matches("Traceback (most recent call last)").count(),
        5,
        "{text}"
    );
    assert!(text.contains("faulty plugin exploded"));

    boss.forget();
    boss.session.say("/ping").await;
    boss.expect("steady still answers", |e| chat_contains(e, "pong"))
        .await;
    boss.session.say("/plugins").await;
    let list = boss
        .expect("plugin list", |e| chat_contains(e, "plugins:"))
        .await;
    assert!(
        chat_contains(&list, "faulty") && chat_contains(&list, "Disabled"),
        "{list:?}"
    );
    srv.server.shutdown().await;
}

const NOISY: &str = r#"
__plugin__ = {"name": "noisy", "version": "1"}

@game.on("OnTick")
def flood(dt):
    refused = 0
    for peer, _ in game.get_peer_positions():
        for i in range(10):
            for send in (
                lambda: game.show_popup(peer, "flood %d" % i, 1.0),
                lambda: game.send_rpc(peer, "Flood", {"i": i, "pad": "x" * 8000}),
                lambda: game.send_chat(peer, "spam %d" % i),
            ):
                try:
                    send()
                except game.GameError:
                    refused += 1
    game.state["refused"] = game.state.get("refused", 0) + refused

@game.register_command("refused", "how many sends the budgets refused")
def report(peer, args):
    game.send_chat(peer, "refused %d" % game.state.get("refused", 0))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_plugin_never_gets_a_player_disconnected() {
    let srv = TestServer::start_with_files(&[], &[("noisy.py", NOISY.as_bytes())]);
    let mut a = join_as("alice", srv.addr).await;
    let mut b = join_as("bob", srv.addr).await;
    // Bob does not read for a while: his queue fills with what the budgets allow.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let got = a.collect_for(Duration::from_millis(200)).await;
        assert!(
            !got.iter().any(|e| matches!(
                e,
                ClientEvent::Kick { .. } | ClientEvent::Disconnected { .. }
            )),
            "alice was disconnected: {got:?}"
        );
    }
    assert!(
        a.seen.iter().any(|e| chat_contains(e, "spam")),
        "the plugin's messages did arrive (within budget)"
    );
    b.forget();
    let got = b.collect_for(Duration::from_millis(1500)).await;
    assert!(
        !got.iter().any(|e| matches!(
            e,
            ClientEvent::Kick { .. } | ClientEvent::Disconnected { .. }
        )),
        "bob was disconnected: {:?}",
        got.iter().rev().take(3).collect::<Vec<_>>()
    );
    // Both are still served: a chat line from alice reaches bob.
    a.session.say("still here").await;
    b.expect("alice's chat", |e| chat_contains(e, "still here"))
        .await;
    a.forget();
    a.session.say("/refused").await;
    let n = a
        .expect("refusal count", |e| chat_contains(e, "refused "))
        .await;
    assert!(!chat_contains(&n, "refused 0"), "{n:?}");
    srv.server.shutdown().await;
}
