//! Plugin host tests: real worker processes running real CPython, over an
//! in-memory `GameWorld` double that records what plugins did.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::print_stdout,
    reason = "prints measured figures for the test log"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use shard_protocol::{BUILTIN_PLUGIN_ID, POPUP_RPC, fn_hash};
use shard_server::plugin::events::PeerJoin;
use shard_server::plugin::{CommandOutcome, GameEvent, PluginState};

mod common;
use common::*;

fn write(path: &Path, src: &str) {
    std::fs::write(path, src).expect("write plugin");
}

#[test]
fn popup_zone_sends_one_popup_per_entry() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/popup_zone.py"
    ))
    .expect("example plugin");
    let mut f = fixture(&[("popup_zone.py", &src)]);
    assert_eq!(f.state("popup_zone"), Some(PluginState::Loaded));
    f.world.peers.insert(7, v(0.0, 0.0, 0.0));
    f.world.peers.insert(8, v(500.0, 0.0, 0.0));
    f.tick();
    assert!(f.world.rpcs.is_empty());
    f.world.peers.insert(7, v(124.0, 456.5, 0.0));
    for _ in 0..10 {
        f.tick();
    }
    assert_eq!(f.world.rpcs.len(), 1, "one popup per entry, not per tick");
    let (peer, plugin_id, hash, json) = &f.world.rpcs[0];
    assert_eq!(
        (*peer, *plugin_id, *hash),
        (7, BUILTIN_PLUGIN_ID, fn_hash(POPUP_RPC))
    );
    let json: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(json["text"], "Welcome to HexBar!");
    assert_eq!(json["duration"], 5.0);
    f.world.peers.insert(7, v(130.0, 456.0, 0.0));
    f.tick();
    f.world.peers.insert(7, v(123.0, 456.0, 1.0));
    f.tick();
    f.tick();
    assert_eq!(f.world.rpcs.len(), 2, "re-entry gives a second popup");
}

const V1: &str = "__plugin__ = {'name': 'hot', 'version': '1'}\n\
@game.on('OnTick')\n\
def t(dt):\n    game.state['n'] = game.state.get('n', 0) + 1\n    game.broadcast('v1')\n";
const V2: &str = "__plugin__ = {'name': 'hot', 'version': '2'}\n\
@game.on('OnTick')\n\
def t(dt):\n    game.state['n'] = game.state.get('n', 0) + 1\n    game.broadcast('v2 n=%d' % game.state['n'])\n";

#[test]
fn file_edit_is_live_within_one_second() {
    let mut f = fixture(&[("hot.py", V1)]);
    f.tick();
    assert_eq!(f.world.broadcasts.last().map(String::as_str), Some("v1"));
    write(&f.plugins.join("hot.py"), V2);
    let latency = f
        .poll_until(Duration::from_secs(1), |w| {
            w.broadcasts.last().is_some_and(|b| b.starts_with("v2"))
        })
        .expect("new version live within 1 s");
    println!("hot reload latency: {latency:?}");
    let info = f
        .host
        .plugins()
        .into_iter()
        .find(|p| p.name == "hot")
        .expect("info");
    assert_eq!(info.version, "2");
    // game.state survived the reload: the counter went on instead of restarting.
    let last = f.world.broadcasts.last().cloned().unwrap_or_default();
    let n: u32 = last.trim_start_matches("v2 n=").parse().expect("counter");
    assert!(n >= 2, "state lost across reload: {last}");
}

#[test]
fn syntax_error_keeps_old_version_and_notifies_admins() {
    let mut f = fixture(&[("hot.py", V1)]);
    write(
        &f.plugins.join("hot.py"),
        "__plugin__ = {'name': 'hot', 'version': '3'}\ndef broken(:\n",
    );
    f.poll_until(Duration::from_secs(2), |w| !w.admin_notes.is_empty())
        .expect("admins told");
    assert!(
        f.world.admin_notes[0].contains("hot") && f.world.admin_notes[0].contains("SyntaxError"),
        "{:?}",
        f.world.admin_notes
    );
    f.world.broadcasts.clear();
    f.tick();
    assert_eq!(
        f.world.broadcasts,
        vec!["v1".to_string()],
        "old version keeps running"
    );
    assert_eq!(f.state("hot"), Some(PluginState::Loaded));
    // Bad metadata and an exception at import are rejected the same way.
    write(&f.plugins.join("hot.py"), "__plugin__ = {'name': 'hot'}\n");
    f.poll_until(Duration::from_secs(2), |w| w.admin_notes.len() >= 2)
        .expect("admins told");
    assert!(
        f.world.admin_notes[1].contains("version"),
        "{:?}",
        f.world.admin_notes
    );
    write(
        &f.plugins.join("hot.py"),
        "__plugin__ = {'name': 'hot', 'version': '4'}\nraise RuntimeError('boom')\n",
    );
    f.poll_until(Duration::from_secs(2), |w| w.admin_notes.len() >= 3)
        .expect("admins told");
    assert!(
        f.world.admin_notes[2].contains("boom"),
        "{:?}",
        f.world.admin_notes
    );
    f.world.broadcasts.clear();
    f.tick();
    assert_eq!(f.world.broadcasts, vec!["v1".to_string()]);
}

#[test]
fn failing_plugin_is_disabled_after_five_errors_others_keep_working() {
    let bad = "__plugin__ = {'name': 'bad', 'version': '1'}\n\
@game.on('OnTick')\ndef t(dt):\n    raise ValueError('tick failed')\n\
@game.register_command('badcmd', 'never works')\ndef c(peer, args):\n    pass\n\
game.spawn_npc('npc_a', (1.0, 2.0, 3.0))\n";
    let good = "__plugin__ = {'name': 'good', 'version': '1'}\n\
@game.on('OnTick')\ndef t(dt):\n    game.broadcast('good')\n";
    let mut f = fixture(&[("bad.py", bad), ("good.py", good)]);
    assert_eq!(f.world.entities.len(), 1);
    for _ in 0..8 {
        f.tick();
    }
    assert_eq!(f.state("bad"), Some(PluginState::Disabled));
    assert_eq!(
        f.world.admin_notes,
        vec!["[Plugin bad disabled – error]".to_string()]
    );
    let log = std::fs::read_to_string(f.logs.join("bad.log")).expect("log");
    assert_eq!(
        log.matches("Traceback (most recent call last)").count(),
        5,
        "{log}"
    );
    assert_eq!(
        log.matches("error in OnTick").count(),
        5,
        "one entry per error"
    );
    assert!(f.world.entities.is_empty(), "owned entities despawned");
    assert_eq!(
        f.host.run_command(&mut f.world, 1, true, "badcmd", ""),
        CommandOutcome::NotFound
    );
    assert_eq!(f.world.broadcasts.len(), 8, "the other plugin kept running");
    assert_eq!(f.state("good"), Some(PluginState::Loaded));
}

#[test]
fn admin_commands_refuse_non_admins() {
    let src = "__plugin__ = {'name': 'cmds', 'version': '1'}\n\
@game.register_command('kickall', 'kicks everyone', admin=True)\ndef k(peer, args):\n    game.broadcast('kicked by %d' % peer)\n\
@game.register_command('hello', 'says hello')\ndef h(peer, args):\n    game.send_chat(peer, 'hello ' + args)\n";
    let mut f = fixture(&[("cmds.py", src)]);
    f.world.peers.insert(3, v(0.0, 0.0, 0.0));
    assert_eq!(
        f.host.run_command(&mut f.world, 3, false, "kickall", ""),
        CommandOutcome::Refused
    );
    assert!(f.world.broadcasts.is_empty());
    assert_eq!(
        f.host.run_command(&mut f.world, 3, true, "kickall", ""),
        CommandOutcome::Ran
    );
    assert_eq!(f.world.broadcasts, vec!["kicked by 3".to_string()]);
    assert_eq!(
        f.host.run_command(&mut f.world, 3, false, "/hello", "you"),
        CommandOutcome::Ran
    );
    assert_eq!(f.world.chats, vec![(3, "hello you".to_string())]);
    assert_eq!(
        f.host.run_command(&mut f.world, 3, false, "nope", ""),
        CommandOutcome::NotFound
    );
    let names = |admin| {
        f.host
            .command_list(admin)
            .into_iter()
            .map(|c| c.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(false), vec!["hello"]);
    assert_eq!(names(true), vec!["hello", "kickall"]);
}

#[test]
fn duplicate_command_across_plugins_is_a_clear_error() {
    let a = "__plugin__ = {'name': 'a', 'version': '1'}\n@game.register_command('x', 'x')\ndef x(p, a):\n    pass\n";
    let b = "__plugin__ = {'name': 'b', 'version': '1'}\n@game.register_command('x', 'x')\ndef x(p, a):\n    pass\n";
    let f = fixture(&[("a.py", a), ("b.py", b)]);
    let info = f
        .host
        .plugins()
        .into_iter()
        .find(|p| p.name == "b")
        .expect("b");
    assert_eq!(info.state, PluginState::Failed);
    let err = info.last_error.unwrap_or_default();
    assert!(
        err.contains("command 'x' is already registered by plugin 'a'"),
        "{err}"
    );
}

#[test]
fn unknown_event_name_lists_valid_ones() {
    let src =
        "__plugin__ = {'name': 'ev', 'version': '1'}\n@game.on('OnTock')\ndef t(dt):\n    pass\n";
    let f = fixture(&[("ev.py", src)]);
    let info = f
        .host
        .plugins()
        .into_iter()
        .find(|p| p.name == "ev")
        .expect("ev");
    assert_eq!(info.state, PluginState::Failed);
    let err = info.last_error.unwrap_or_default();
    assert!(
        err.contains("GameError") && err.contains("'OnTock'"),
        "{err}"
    );
    for name in [
        "OnTick",
        "OnPeerJoin",
        "OnChatMsg",
        "OnInteract",
        "OnBundleInstalled",
    ] {
        assert!(err.contains(name), "{err}");
    }
    assert!(
        f.world.admin_notes[0].contains("ev"),
        "{:?}",
        f.world.admin_notes
    );
}

#[test]
fn bad_arguments_raise_game_error() {
    let src = r#"
import game as g
__plugin__ = {"name": "args", "version": "1"}
CASES = {
    "nan": lambda p: g.spawn_npc("npc", (float("nan"), 0.0, 0.0)),
    "inf_rot": lambda p: g.spawn_vehicle("car", (0.0, 0.0, 0.0), rot=float("inf")),
    "unknown_peer": lambda p: g.send_chat(999, "hi"),
    "oversize": lambda p: g.send_rpc(p, "Big", {"x": "a" * 20000}),
    "not_json": lambda p: g.send_rpc(p, "Obj", {"x": object()}),
    "not_dict": lambda p: g.send_rpc(p, "List", [1]),
    "long_popup": lambda p: g.show_popup(p, "x" * 600, 1.0),
    "empty_tpl": lambda p: g.spawn_npc("", (0.0, 0.0, 0.0)),
    "no_entity": lambda p: g.despawn(12345),
}
@g.register_command("check", "argument checks")
def check(peer, args):
    for name, f in CASES.items():
        try:
            f(peer)
            g.broadcast(name + ": no error")
        except g.GameError as e:
            g.broadcast(name + ": " + str(e))
    g.send_rpc(peer, "Ok", {"a": [1, 2.5, None, True]})
"#;
    let mut f = fixture(&[("args.py", src)]);
    f.world.peers.insert(4, v(0.0, 0.0, 0.0));
    assert_eq!(
        f.host.run_command(&mut f.world, 4, false, "check", ""),
        CommandOutcome::Ran
    );
    let b = f.world.broadcasts.join("\n");
    println!("{b}");
    assert!(!b.contains("no error"), "{b}");
    assert!(
        b.contains("nan: pos: coordinate x = NaN is not a finite number"),
        "{b}"
    );
    assert!(b.contains("unknown_peer: unknown peer 999"), "{b}");
    assert!(
        b.contains("oversize: payload is") && b.contains("the limit is 16384"),
        "{b}"
    );
    assert!(
        b.contains("not_json: payload is not JSON-serialisable"),
        "{b}"
    );
    assert!(b.contains("not_dict: payload must be a dict"), "{b}");
    assert_eq!(f.world.rpcs.len(), 1);
    let (peer, pid, hash, json) = &f.world.rpcs[0];
    let info = f
        .host
        .plugins()
        .into_iter()
        .find(|p| p.name == "args")
        .expect("args");
    assert_eq!((*peer, *pid, *hash), (4, info.id, fn_hash("Ok")));
    assert_eq!(json, r#"{"a":[1,2.5,null,true]}"#);
}

#[test]
fn reload_replaces_listeners_and_entities_and_keeps_state() {
    let v1 = "__plugin__ = {'name': 'ent', 'version': '1'}\n\
game.state['loads'] = game.state.get('loads', 0) + 1\n\
game.spawn_npc('npc_v1', (0.0, 0.0, 0.0))\n\
@game.on('OnPeerJoin')\ndef j(ev):\n    game.broadcast('v1 join %d' % ev['peer'])\n";
    let mut f = fixture(&[("ent.py", v1)]);
    let v2 = v1
        .replace("v1", "v2")
        .replace("'version': '1'", "'version': '2'");
    write(&f.plugins.join("ent.py"), &v2);
    assert!(f.host.reload(&mut f.world, "ent"));
    let tpls: Vec<String> = f.world.entities.values().map(|e| e.1.clone()).collect();
    assert_eq!(
        tpls,
        vec!["npc_v2".to_string()],
        "old entity removed, new one kept"
    );
    f.host.fire_event(
        &mut f.world,
        GameEvent::PeerJoin(PeerJoin {
            peer: 5,
            name: "five".into(),
            admin: false,
        }),
    );
    assert_eq!(
        f.world.broadcasts,
        vec!["v2 join 5".to_string()],
        "only the new listener runs"
    );
    let out = f.host.console(&mut f.world, "1 + 1");
    assert_eq!(out.trim(), "2");
    let out = f
        .host
        .console(&mut f.world, "print(game.spawn_npc.__text_signature__)");
    assert_eq!(out.trim(), "(tpl, pos, phase=0)");
    let out = f.host.console(&mut f.world, "raise KeyError('zz')");
    assert!(
        out.contains("Traceback") && out.contains("KeyError: 'zz'"),
        "{out}"
    );
}

#[test]
fn state_counter_survives_reload() {
    let src = "__plugin__ = {'name': 'st', 'version': '1'}\n\
game.state['loads'] = game.state.get('loads', 0) + 1\n\
game.broadcast('loads=%d' % game.state['loads'])\n";
    let mut f = fixture(&[("st.py", src)]);
    write(&f.plugins.join("st.py"), &format!("{src}# edited\n"));
    assert!(f.host.reload(&mut f.world, "st"));
    assert_eq!(
        f.world.broadcasts,
        vec!["loads=1".to_string(), "loads=2".to_string()]
    );
}

#[test]
fn deleted_file_unloads_plugin() {
    let src = "__plugin__ = {'name': 'gone', 'version': '1'}\n\
game.spawn_npc('npc', (0.0, 0.0, 0.0))\n\
@game.on('OnTick')\ndef t(dt):\n    game.broadcast('tick')\n\
@game.on('OnUnload')\ndef u(ev):\n    game.broadcast('bye')\n";
    let mut f = fixture(&[("gone.py", src)]);
    assert_eq!(f.world.entities.len(), 1);
    std::fs::remove_file(f.plugins.join("gone.py")).expect("rm");
    f.poll_until(Duration::from_secs(2), |w| {
        w.broadcasts.iter().any(|b| b == "bye")
    })
    .expect("unloaded");
    assert!(f.host.plugins().is_empty());
    assert!(f.world.entities.is_empty());
    f.world.broadcasts.clear();
    f.tick();
    assert!(f.world.broadcasts.is_empty());
}

#[test]
fn runaway_callback_is_interrupted_by_cpu_budget() {
    let src = "__plugin__ = {'name': 'spin', 'version': '1'}\n\
@game.on('OnTick')\ndef t(dt):\n    while True:\n        pass\n";
    let mut f = fixture(&[("spin.py", src)]);
    let start = Instant::now();
    f.tick();
    let took = start.elapsed();
    println!("runaway tick took {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "watchdog did not fire: {took:?}"
    );
    let log = std::fs::read_to_string(f.logs.join("spin.log")).expect("log");
    assert!(log.contains("PluginTimeout"), "{log}");
    let info = f
        .host
        .plugins()
        .into_iter()
        .find(|p| p.name == "spin")
        .expect("spin");
    assert_eq!(info.errors, 1);
}

#[test]
fn bad_metadata_names_file_and_field() {
    let f = fixture(&[
        ("nometa.py", "x = 1\n"),
        (
            "wrongname.py",
            "__plugin__ = {'name': 'other', 'version': '1'}\n",
        ),
        (
            "badver.py",
            "__plugin__ = {'name': 'badver', 'version': 2}\n",
        ),
    ]);
    let err = |n: &str| {
        f.host
            .plugins()
            .into_iter()
            .find(|p| p.name == n)
            .and_then(|p| p.last_error)
            .unwrap_or_default()
    };
    assert!(
        err("nometa").contains("nometa.py: __plugin__ is missing"),
        "{}",
        err("nometa")
    );
    assert!(
        err("wrongname").contains("__plugin__[\"name\"] is \"other\""),
        "{}",
        err("wrongname")
    );
    assert!(
        err("badver").contains("badver.py: __plugin__[\"version\"] must be a string"),
        "{}",
        err("badver")
    );
}

#[test]
fn every_game_function_has_doc_and_signature() {
    let mut f = fixture(&[]);
    let out = f.host.console(
        &mut f.world,
        "names = ['on', 'register_command', 'spawn_npc', 'spawn_vehicle', 'despawn', \
         'teleport_peer', 'set_weather', 'show_popup', 'get_peer_positions', \
         'get_entity_position', 'dist', 'send_chat', 'broadcast', 'send_rpc', 'log']\n\
         print([n for n in names if not getattr(game, n).__doc__ \
         or getattr(game, n).__text_signature__ is None])\n\
         print(game.send_rpc.__text_signature__, game.teleport_peer.__text_signature__)\n\
         print(issubclass(game.GameError, Exception), issubclass(game.PluginTimeout, Exception))",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().copied(), Some("[]"), "{out}");
    assert_eq!(
        lines.get(1).copied(),
        Some("(peer, fn, payload) (peer, pos, rot=0.0, phase=None)"),
        "{out}"
    );
    assert_eq!(lines.get(2).copied(), Some("True False"), "{out}");
}

#[test]
fn bundle_change_changes_hash_and_reloads() {
    let src = "__plugin__ = {'name': 'bun', 'version': '1'}\n\
game.state['loads'] = game.state.get('loads', 0) + 1\n\
game.broadcast('load %d' % game.state['loads'])\n";
    let mut f = fixture(&[("bun.py", src)]);
    let before = f.host.plugins()[0].hash.clone();
    assert_eq!(before.len(), 64);
    let assets = f.plugins.join("bun/assets/ui");
    std::fs::create_dir_all(&assets).expect("mkdir");
    write(&assets.join("icon.inkatlas"), "atlas");
    f.poll_until(Duration::from_secs(2), |w| w.broadcasts.len() >= 2)
        .expect("reloaded on bundle change");
    assert_eq!(
        f.world.broadcasts,
        vec!["load 1".to_string(), "load 2".to_string()]
    );
    let after = f.host.plugins()[0].hash.clone();
    assert_ne!(before, after);
    assert_eq!(f.host.bundle_dir("bun"), f.plugins.join("bun"));
}
