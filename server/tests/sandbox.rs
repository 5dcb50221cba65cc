//! The sandbox corpus: more than 50 escape attempts, each its own plugin,
//! loaded beside a well-behaved plugin. Every attempt fails, its log says
//! which layer stopped it, the host keeps ticking and the good plugin keeps
//! working. (Each layer also has focused tests: event matching in
//! `plugin::sandbox`, the audit hook and source check below.)

mod common;

use common::*;
use shard_server::plugin::{CommandOutcome, PluginState};

/// Where an attempt runs: while the plugin loads, or in its `OnTick` listener.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Load,
    Tick,
}

const SOURCE: &str = "shard sandbox: source check";
const IMPORTS: &str = "shard sandbox: import allowlist";
const AUDIT: &str = "(audit hook)";

/// (category, where, code, what the log must say).
const ATTEMPTS: &[(&str, At, &str, &str)] = &[
    // Read a file.
    (
        "file",
        At::Load,
        "open('/etc/passwd').read()",
        "name 'open' is not defined",
    ),
    (
        "file",
        At::Tick,
        "open('/etc/passwd').read()",
        "name 'open' is not defined",
    ),
    (
        "file",
        At::Tick,
        "import io\nio.open('/etc/passwd')",
        IMPORTS,
    ),
    (
        "file",
        At::Tick,
        "import pathlib\npathlib.Path('/etc/passwd').read_text()",
        IMPORTS,
    ),
    (
        "file",
        At::Tick,
        "import json\njson.codecs.open('/etc/passwd').read()",
        AUDIT,
    ),
    (
        "file",
        At::Load,
        "import random\nrandom._os.listdir('/')",
        SOURCE,
    ),
    (
        "file",
        At::Load,
        "import typing\ntyping.sys.modules",
        SOURCE,
    ),
    // Open a socket.
    (
        "socket",
        At::Tick,
        "import socket\nsocket.create_connection(('127.0.0.1', 1))",
        IMPORTS,
    ),
    ("socket", At::Tick, "import asyncio", IMPORTS),
    ("socket", At::Tick, "import http.client", IMPORTS),
    ("socket", At::Load, "__import__('socket')", SOURCE),
    // Run a process.
    ("process", At::Tick, "import os\nos.system('id')", IMPORTS),
    (
        "process",
        At::Tick,
        "import subprocess\nsubprocess.run(['id'])",
        IMPORTS,
    ),
    (
        "process",
        At::Load,
        "import dataclasses\ndataclasses.sys.modules['os'].system('id')",
        SOURCE,
    ),
    (
        "process",
        At::Load,
        "import dataclasses\ngetattr(dataclasses, 'sy' + 's')",
        SOURCE,
    ),
    ("process", At::Tick, "import platform", IMPORTS),
    (
        "process",
        At::Tick,
        "import json\njson.codecs.open('/bin/sh', 'rb')",
        AUDIT,
    ),
    // Import a forbidden module.
    ("import", At::Tick, "import sys", IMPORTS),
    ("import", At::Tick, "import importlib", IMPORTS),
    ("import", At::Tick, "from os import path", IMPORTS),
    (
        "import",
        At::Tick,
        "from . import popup_zone",
        "relative import is not allowed",
    ),
    (
        "import",
        At::Tick,
        "from random import _inst",
        "private name",
    ),
    ("import", At::Tick, "import good", IMPORTS),
    // Reach the real builtins.
    ("builtins", At::Load, "__builtins__['open']", SOURCE),
    ("builtins", At::Load, "().__class__.__bases__[0]", SOURCE),
    ("builtins", At::Load, "type(game).__dict__", SOURCE),
    (
        "builtins",
        At::Tick,
        "eval('1 + 1')",
        "name 'eval' is not defined",
    ),
    (
        "builtins",
        At::Tick,
        "exec('x = 1')",
        "name 'exec' is not defined",
    ),
    (
        "builtins",
        At::Tick,
        "compile('1', 'x', 'eval')",
        "name 'compile' is not defined",
    ),
    (
        "builtins",
        At::Tick,
        "globals()",
        "name 'globals' is not defined",
    ),
    ("builtins", At::Tick, "vars()", "name 'vars' is not defined"),
    (
        "builtins",
        At::Tick,
        "breakpoint()",
        "name 'breakpoint' is not defined",
    ),
    // Reach sys/os by walking objects, frames or tracebacks.
    ("walk", At::Load, "(lambda: 0).__globals__", SOURCE),
    (
        "walk",
        At::Load,
        "def g():\n    yield 1\ng().gi_frame.f_back",
        SOURCE,
    ),
    (
        "walk",
        At::Load,
        "try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_globals",
        SOURCE,
    ),
    ("walk", At::Load, "def f():\n    pass\nf.__code__", SOURCE),
    (
        "walk",
        At::Load,
        "[].__class__.__base__.__subclasses__()",
        SOURCE,
    ),
    (
        "walk",
        At::Load,
        "import statistics\nstatistics.sys",
        SOURCE,
    ),
    ("walk", At::Load, "getattr(game, '__loader__')", SOURCE),
    // ctypes.
    (
        "ctypes",
        At::Tick,
        "import ctypes\nctypes.CDLL(None).system(b'id')",
        IMPORTS,
    ),
    ("ctypes", At::Tick, "from ctypes import CDLL", IMPORTS),
    ("ctypes", At::Tick, "import _ctypes", IMPORTS),
    // Format-string attribute tricks.
    ("format", At::Load, "'{0.__class__}'.format(1)", SOURCE),
    (
        "format",
        At::Load,
        "def f():\n    pass\n'{0.__globals__}'.format(f)",
        SOURCE,
    ),
    ("format", At::Load, "'{x.gi_frame}'.format(x=None)", SOURCE),
    ("format", At::Load, "'{0[__builtins__]}'.format({})", SOURCE),
    (
        "format",
        At::Load,
        "def f():\n    pass\nf'{f.__globals__}'",
        SOURCE,
    ),
    // Tamper with game or another plugin.
    ("tamper", At::Load, "game.GameError.__init__ = None", SOURCE),
    (
        "tamper",
        At::Load,
        "setattr(game.GameError, '__init__', None)",
        SOURCE,
    ),
    ("tamper", At::Load, "game.on.__module__", SOURCE),
    ("tamper", At::Load, "setattr(game, '_state', 1)", SOURCE),
    ("tamper", At::Tick, "import good\ngood.ticks = -1", IMPORTS),
    // Infinite loops (cut by the CPU budget).
    ("loop", At::Tick, "while True:\n    pass", "PluginTimeout"),
    (
        "loop",
        At::Tick,
        "import itertools\nfor _ in itertools.count():\n    pass",
        "PluginTimeout",
    ),
    // Recursion bombs.
    (
        "recursion",
        At::Tick,
        "def f():\n    return f()\nf()",
        "RecursionError",
    ),
    (
        "recursion",
        At::Tick,
        "def a(n):\n    return b(n)\ndef b(n):\n    return a(n)\na(0)",
        "RecursionError",
    ),
    // Large allocations.
    ("memory", At::Tick, "bytearray(10 ** 13)", "MemoryError"),
    ("memory", At::Tick, "[0] * (10 ** 13)", "MemoryError"),
];

/// A plugin that counts ticks, answers a command, and greets with `game.send_chat`.
const GOOD: &str = "__plugin__ = {'name': 'good', 'version': '1'}
ticks = 0

@game.on('OnTick')
def count(dt):
    global ticks
    ticks += 1
    game.state['ticks'] = ticks

@game.register_command('ping', 'answers pong')
def ping(peer, args):
    game.send_chat(peer, f'pong {ticks}')
";

/// A plugin that rebinds its own `game.send_chat`; the good plugin must not notice.
const REBINDER: &str = "__plugin__ = {'name': 'rebinder', 'version': '1'}
def evil(peer, text):
    pass
game.send_chat = evil
game.broadcast = evil
";

fn plugin_source(name: &str, at: At, code: &str) -> String {
    let header = format!("__plugin__ = {{'name': '{name}', 'version': '1'}}\n");
    match at {
        At::Load => format!("{header}{code}\n"),
        At::Tick => {
            let body: String = code.lines().map(|l| format!("    {l}\n")).collect();
            format!("{header}@game.on('OnTick')\ndef attempt(dt):\n{body}")
        }
    }
}

#[test]
fn every_escape_attempt_fails_with_a_reason_and_the_good_plugin_keeps_working() {
    assert!(
        ATTEMPTS.len() >= 50,
        "the corpus has {} attempts",
        ATTEMPTS.len()
    );
    let mut files: Vec<(String, String)> = vec![
        ("good.py".into(), GOOD.into()),
        ("rebinder.py".into(), REBINDER.into()),
    ];
    for (i, (_, at, code, _)) in ATTEMPTS.iter().enumerate() {
        let name = format!("esc{i:02}");
        files.push((format!("{name}.py"), plugin_source(&name, *at, code)));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let mut f = fixture(&refs);
    f.world.peers.insert(7, v(0.0, 0.0, 0.0));
    for _ in 0..3 {
        f.tick();
    }

    for (i, (category, at, code, expect)) in ATTEMPTS.iter().enumerate() {
        let name = format!("esc{i:02}");
        let log = std::fs::read_to_string(f.logs.join(format!("{name}.log"))).unwrap_or_default();
        assert!(
            log.contains(expect),
            "[{category}] {name} ({}) must fail with `{expect}`:\n{code}\n--- log ---\n{log}",
            if *at == At::Load {
                "at load"
            } else {
                "in OnTick"
            }
        );
        if *at == At::Load {
            assert_eq!(
                f.state(&name),
                Some(PluginState::Failed),
                "{name} must not load"
            );
        }
    }

    // The host kept ticking and the good plugin saw every tick.
    assert_eq!(f.state("good"), Some(PluginState::Loaded));
    let out = f.host.run_command(&mut f.world, 7, false, "ping", "");
    assert_eq!(out, CommandOutcome::Ran);
    assert_eq!(
        f.world.chats.last().map(|(p, t)| (*p, t.as_str())),
        Some((7, "pong 3"))
    );
    // The rebinder changed only its own `game`.
    assert_eq!(f.state("rebinder"), Some(PluginState::Loaded));
}

#[test]
fn the_audit_hook_denies_files_even_through_an_allowed_module() {
    let src = "__plugin__ = {'name': 'sneaky', 'version': '1'}
import json
@game.register_command('read', 'reads a file through codecs')
def read(peer, args):
    game.send_chat(peer, json.codecs.open('/etc/hostname').read())
";
    let mut f = fixture(&[("sneaky.py", src)]);
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    let out = f.host.run_command(&mut f.world, 1, false, "read", "");
    assert!(
        matches!(&out, CommandOutcome::Failed(m) if m.contains("audit hook")),
        "{out:?}"
    );
    assert!(f.world.chats.is_empty());
    // The host itself (outside plugin code) still reads files.
    assert!(
        std::fs::read_to_string(f.logs.join("sneaky.log"))
            .unwrap()
            .contains("`open`")
    );
}

#[test]
fn the_source_check_names_file_and_line() {
    let src =
        "__plugin__ = {'name': 'walker', 'version': '1'}\n\nx = 1\ny = (lambda: 0).__globals__\n";
    let f = fixture(&[("walker.py", src)]);
    assert_eq!(f.state("walker"), Some(PluginState::Failed));
    let log = std::fs::read_to_string(f.logs.join("walker.log")).unwrap();
    assert!(
        log.contains("walker.py:4:") && log.contains("`.__globals__`"),
        "{log}"
    );
}

#[test]
fn allowed_modules_and_ordinary_python_still_work() {
    let src = "__plugin__ = {'name': 'fine', 'version': '1'}
import math, random, json, re, collections, itertools, functools, dataclasses, enum, typing
import string, datetime, heapq, bisect, statistics, operator, collections.abc
from collections import namedtuple, Counter
from dataclasses import dataclass

Point = namedtuple('Point', 'x y')

@dataclass
class Score:
    name: str
    value: int = 0

class Color(enum.Enum):
    RED = 1

@game.register_command('calc', 'does ordinary things')
def calc(peer, args):
    s = Score('a', 3)
    s.value += 1
    p = Point(1, 2)
    data = json.dumps({'v': s.value, 'p': p.x + p.y, 'c': Color.RED.name,
                       'm': round(math.sqrt(16)), 'r': len(re.findall('a', 'banana')),
                       'd': datetime.date(2026, 1, 2).isoformat(),
                       'top': Counter('aab').most_common(1)[0][0]})
    game.send_chat(peer, data)
";
    let mut f = fixture(&[("fine.py", src)]);
    assert_eq!(
        f.state("fine"),
        Some(PluginState::Loaded),
        "{:?}",
        f.host.plugins()
    );
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    let out = f.host.run_command(&mut f.world, 1, false, "calc", "");
    assert_eq!(out, CommandOutcome::Ran);
    let (_, text) = f.world.chats.last().cloned().unwrap();
    assert!(
        text.contains("\"v\": 4") && text.contains("\"c\": \"RED\"") && text.contains("2026-01-02"),
        "{text}"
    );
}
