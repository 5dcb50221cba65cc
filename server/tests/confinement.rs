//! The plugin boundary, tested as an attacker would try it: every
//! reproduction from the in-process sandbox's failures runs as its own plugin
//! beside a well-behaved plugin that answers `/ping`, in real worker
//! processes under real kernel confinement. In each case the tick keeps its
//! rate, the good plugin keeps answering, no secret is read, no process is
//! started, and the offender is logged, restarted where it was killed, and
//! finally disabled.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shard_server::plugin::events::PeerJoin;
use shard_server::plugin::{CommandOutcome, GameEvent, PluginState};

mod common;
use common::*;

const GOOD: &str = "__plugin__ = {'name': 'good', 'version': '1'}\n\
@game.register_command('ping', 'answers pong')\n\
def ping(peer, args):\n    game.send_chat(peer, 'pong')\n";

/// A secret file outside every plugin's reach, with content no plugin may ever show.
struct Secret {
    _dir: tempfile::TempDir,
    path: PathBuf,
    text: String,
}

fn secret() -> Secret {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret.txt");
    let text = format!("SECRET-{}", std::process::id());
    std::fs::write(&path, &text).expect("write secret");
    Secret {
        _dir: dir,
        path,
        text,
    }
}

fn plugin(name: &str, body: &str) -> String {
    format!("__plugin__ = {{'name': '{name}', 'version': '1'}}\n{body}")
}

/// What running an offender to its end showed.
struct Run {
    f: Fixture,
    worst_tick: Duration,
}

const BUDGET: Duration = Duration::from_millis(50);
const GRACE: Duration = Duration::from_millis(200);

/// Ticks the offender next to `good` until it is disabled (or 30 s pass),
/// checking after every tick that `/ping` still answers.
fn run_offender(name: &str, body: &str, layers: bool) -> Run {
    let src = plugin(name, body);
    let mut f = fixture_with(&[(&format!("{name}.py"), &src), ("good.py", GOOD)], |c| {
        c.cpu_budget = BUDGET;
        c.kill_after = GRACE;
        c.restart_backoff = Duration::from_millis(20);
        c.memory_mb = 256;
        if !layers {
            c.test_without_python_layers = vec![name.to_string()];
        }
    });
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    let mut pings = 0;
    while f.state(name) != Some(PluginState::Disabled) && start.elapsed() < Duration::from_secs(30)
    {
        f.host.poll_changes(&mut f.world);
        let t = Instant::now();
        f.tick();
        worst = worst.max(t.elapsed());
        f.world.chats.clear();
        assert_eq!(
            f.host.run_command(&mut f.world, 1, false, "ping", ""),
            CommandOutcome::Ran,
            "the good plugin stopped answering while {name} ran"
        );
        assert_eq!(f.world.chats, vec![(1, "pong".to_string())]);
        pings += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        f.state(name),
        Some(PluginState::Disabled),
        "{name} was not disabled; log:\n{}",
        f.log(name)
    );
    assert!(pings > 0);
    assert_eq!(f.state("good"), Some(PluginState::Loaded));
    assert!(
        f.world
            .admin_notes
            .iter()
            .any(|n| n == &format!("[Plugin {name} disabled – error]")),
        "{:?}",
        f.world.admin_notes
    );
    Run {
        f,
        worst_tick: worst,
    }
}

/// The longest a tick may take with one offender: its allowance plus
/// scheduling slack on a busy 2-core machine (a behaviour bound, not a benchmark).
fn tick_bound() -> Duration {
    BUDGET + GRACE + Duration::from_millis(400)
}

fn assert_contained(run: &Run, name: &str, secret: &Secret) {
    let seen = format!(
        "{:?}{:?}{:?}{}",
        run.f.world.broadcasts,
        run.f.world.chats,
        run.f.world.rpcs,
        run.f.log(name)
    );
    assert!(
        !seen.contains(&secret.text),
        "{name} read the secret: {seen}"
    );
    assert!(
        run.worst_tick <= tick_bound(),
        "{name} held a tick for {:?}",
        run.worst_tick
    );
}

#[test]
fn real_builtins_one_attribute_away_still_cannot_read_files() {
    let s = secret();
    let body = format!(
        "import operator, json\n\
@game.on('OnTick')\n\
def t(dt):\n    b = operator.attrgetter('__globals__')(json.dumps)['__builtins__']\n    \
data = b['open']({:?}).read()\n    game.broadcast('LEAK ' + data)\n",
        s.path.display().to_string()
    );
    let run = run_offender("globals", &body, true);
    assert_contained(&run, "globals", &s);
    let log = run.f.log("globals");
    assert!(log.contains("PermissionError"), "{log}");
}

#[test]
fn an_exception_whose_str_never_returns_is_stopped() {
    let s = secret();
    let body = "class Evil(Exception):\n    def __str__(self):\n        while True:\n            try:\n                while True:\n                    pass\n            except BaseException:\n                pass\n\
@game.on('OnTick')\ndef t(dt):\n    raise Evil()\n";
    let run = run_offender("evilstr", body, true);
    assert_contained(&run, "evilstr", &s);
    let info = run.f.info("evilstr");
    assert!(info.restarts >= 1, "killed workers are restarted: {info:?}");
    assert!(run.f.log("evilstr").contains("worker stopped"));
}

#[test]
fn a_finaliser_that_loops_after_the_callback_is_stopped() {
    let s = secret();
    let body = "class Sticky:\n    def __del__(self):\n        while True:\n            try:\n                while True:\n                    pass\n            except BaseException:\n                pass\n\
class Boom(Exception):\n    pass\n\
@game.on('OnTick')\ndef t(dt):\n    e = Boom('boom')\n    e.sticky = Sticky()\n    raise e\n";
    let run = run_offender("finaliser", body, true);
    assert_contained(&run, "finaliser", &s);
}

#[test]
fn a_plugin_that_catches_its_timeout_and_loops_is_killed_at_the_deadline() {
    let s = secret();
    let body = "@game.on('OnTick')\ndef t(dt):\n    while True:\n        try:\n            while True:\n                pass\n        except BaseException:\n            pass\n";
    let run = run_offender("stubborn", body, true);
    assert_contained(&run, "stubborn", &s);
    let log = run.f.log("stubborn");
    assert!(log.contains("did not answer within"), "{log}");
    assert!(run.f.info("stubborn").restarts >= 1);
}

#[test]
fn a_custom_eq_on_the_metadata_key_runs_only_inside_the_worker() {
    let s = secret();
    let body = "class K(str):\n    def __eq__(self, o):\n        while True:\n            try:\n                while True:\n                    pass\n            except BaseException:\n                pass\n    __hash__ = str.__hash__\n\
__plugin__ = {K('name'): 'eqkey', K('version'): '1'}\n";
    let src = body.to_string();
    let mut f = fixture_with(&[("eqkey.py", &src), ("good.py", GOOD)], |c| {
        c.cpu_budget = BUDGET;
        c.kill_after = GRACE;
    });
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    assert_ne!(f.state("eqkey"), Some(PluginState::Loaded));
    // On a loaded machine the good plugin may miss this test's short load
    // deadline once; the host restarts it, so wait for it to be up.
    let until = Instant::now() + Duration::from_secs(5);
    while f.state("good") != Some(PluginState::Loaded) && Instant::now() < until {
        f.host.poll_changes(&mut f.world);
        f.tick();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        f.host.run_command(&mut f.world, 1, false, "ping", ""),
        CommandOutcome::Ran
    );
    assert!(!f.log("eqkey").contains(&s.text));
}

#[test]
fn threads_and_subprocesses_cannot_start_processes() {
    let s = secret();
    let marker = tempfile::tempdir().expect("tempdir");
    let flag = marker.path().join("ran");
    let body = format!(
        "import operator, json\n\
@game.on('OnTick')\ndef t(dt):\n    imp = operator.attrgetter('__globals__')(json.dumps)['__builtins__']['__import__']\n    \
subprocess = imp('subprocess')\n    _thread = imp('_thread')\n    \
def work():\n        subprocess.run(['/bin/sh', '-c', 'touch {flag}'])\n    \
_thread.start_new_thread(work, ())\n    subprocess.run(['/bin/sh', '-c', 'touch {flag}'])\n",
        flag = flag.display()
    );
    let run = run_offender("spawner", &body, true);
    assert_contained(&run, "spawner", &s);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!flag.exists(), "a process ran");
    let log = run.f.log("spawner");
    assert!(
        log.contains("PermissionError") || log.contains("Operation not permitted"),
        "{log}"
    );
}

#[test]
fn rebinding_a_shared_module_affects_only_the_plugin_that_did_it() {
    let spy = "__plugin__ = {'name': 'spy', 'version': '1'}\n\
import json\n\
seen = []\n\
orig = json.JSONEncoder.encode\n\
def encode(self, o):\n    seen.append(o)\n    return '{\"hijacked\":1}'\n\
json.JSONEncoder.encode = encode\n\
@game.register_command('seen', 'what the spy saw')\ndef s(peer, args):\n    game.send_chat(peer, 'seen=%d' % len(seen))\n";
    let victim = "__plugin__ = {'name': 'victim', 'version': '1'}\n\
@game.register_command('send', 'sends an rpc')\ndef s(peer, args):\n    game.send_rpc(peer, 'Secret', {'pin': 1234})\n";
    let mut f = fixture(&[("spy.py", spy), ("victim.py", victim)]);
    f.world.peers.insert(2, v(0.0, 0.0, 0.0));
    assert_eq!(
        f.host.run_command(&mut f.world, 2, false, "send", ""),
        CommandOutcome::Ran
    );
    assert_eq!(f.world.rpcs.len(), 1);
    assert_eq!(f.world.rpcs[0].3, r#"{"pin":1234}"#);
    assert_eq!(
        f.host.run_command(&mut f.world, 2, false, "seen", ""),
        CommandOutcome::Ran
    );
    assert_eq!(f.world.chats, vec![(2, "seen=0".to_string())]);
}

#[test]
fn each_listener_gets_its_own_copy_of_the_event() {
    let src = "__plugin__ = {'name': 'copies', 'version': '1'}\n\
@game.on('OnPeerJoin')\ndef first(ev):\n    ev['name'] = 'evil'\n    ev.clear()\n\
@game.on('OnPeerJoin')\ndef second(ev):\n    game.broadcast('second saw %s' % ev['name'])\n";
    let mut f = fixture(&[("copies.py", src)]);
    f.host.fire_event(
        &mut f.world,
        GameEvent::PeerJoin(PeerJoin {
            peer: 9,
            name: "vee".into(),
            admin: false,
        }),
    );
    assert_eq!(f.world.broadcasts, vec!["second saw vee".to_string()]);
}

#[test]
fn a_stack_overflow_crashes_only_the_worker() {
    let s = secret();
    let body = "import sys, json\n\
@game.on('OnTick')\ndef t(dt):\n    sys.setrecursionlimit(10**7)\n    json.loads('[' * 2000000 + ']' * 2000000)\n";
    let run = run_offender("deep", body, true);
    assert_contained(&run, "deep", &s);
    let log = run.f.log("deep");
    assert!(
        log.contains("worker stopped") || log.contains("RecursionError"),
        "{log}"
    );
}

#[test]
fn a_long_single_c_call_is_cut_off_at_the_deadline() {
    let s = secret();
    let body = "@game.on('OnTick')\ndef t(dt):\n    x = 3 ** (10 ** 8)\n";
    let run = run_offender("bigpow", body, true);
    assert_contained(&run, "bigpow", &s);
    assert!(run.f.log("bigpow").contains("did not answer within"));
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn memory_past_the_cap_stops_the_plugin_not_the_server() {
    let s = secret();
    let before = rss_kib(std::process::id());
    // Past the 256 MiB cap at once: the allocation fails fast (no page is touched).
    let body = "hoard = []\n\
@game.on('OnTick')\ndef t(dt):\n    hoard.append(bytearray(400 * 1024 * 1024))\n";
    let run = run_offender("hog", body, true);
    assert_contained(&run, "hog", &s);
    let log = run.f.log("hog");
    assert!(
        log.contains("MemoryError") || log.contains("worker stopped"),
        "{log}"
    );
    let after = rss_kib(std::process::id());
    assert!(
        after < before + 64 * 1024,
        "server RSS grew from {before} KiB to {after} KiB"
    );
}

#[test]
fn plugins_see_none_of_the_servers_environment() {
    // SAFETY: this test's process runs only this test (nextest), before any thread reads it.
    unsafe { std::env::set_var("SHARD_TEST_SECRET_ENV", "hunter2") };
    let src = "__plugin__ = {'name': 'envy', 'version': '1'}\n\
import os\n\
@game.register_command('env', 'shows the environment')\ndef e(peer, args):\n    game.send_chat(peer, repr(sorted(os.environ.items())))\n";
    let mut f = fixture_with(&[("envy.py", src)], |c| {
        c.test_without_python_layers = vec!["envy".into()];
    });
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    assert_eq!(
        f.host.run_command(&mut f.world, 1, false, "env", ""),
        CommandOutcome::Ran
    );
    assert_eq!(f.world.chats, vec![(1, "[]".to_string())]);
}

/// Runs `code` in a plugin without the Python comfort layer and returns
/// what it reported: each attempt prints `NAME: ok` or `NAME: denied (...)`.
fn raw_attempts(code: &[&str]) -> (String, String) {
    let mut lines = vec![
        "@game.register_command('try', 'attempts')".to_string(),
        "def attempt(peer, args):".into(),
        "    out = []".into(),
        "    def probe(name, fn):".into(),
        "        try:".into(),
        "            fn()".into(),
        "            out.append(name + ': ok')".into(),
        "        except BaseException as e:".into(),
        "            game.log(name + ': denied (' + type(e).__name__ + ': ' + str(e) + ')')".into(),
        "            out.append(name + ': denied')".into(),
    ];
    lines.extend(code.iter().map(|l| format!("    {l}")));
    lines.push("    game.send_chat(peer, '; '.join(out))".into());
    let src = plugin("raw", &(lines.join("\n") + "\n"));
    let mut f = fixture_with(&[("raw.py", &src)], |c| {
        c.test_without_python_layers = vec!["raw".into()];
    });
    assert_eq!(
        f.state("raw"),
        Some(PluginState::Loaded),
        "{}",
        f.log("raw")
    );
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    assert_eq!(
        f.host.run_command(&mut f.world, 1, false, "try", ""),
        CommandOutcome::Ran
    );
    let said = f
        .world
        .chats
        .first()
        .map(|c| c.1.clone())
        .unwrap_or_default();
    (said, f.log("raw"))
}

#[test]
fn confinement_holds_without_the_python_layers() {
    let s = secret();
    let out_dir = tempfile::tempdir().expect("tempdir");
    let written = out_dir.path().join("written.txt");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let secret_path = s.path.display().to_string();
    let written_path = written.display().to_string();
    let code = [
        "import os, socket".to_string(),
        "probe('read_hostname', lambda: open('/etc/hostname').read())".into(),
        format!("probe('read_secret', lambda: open({secret_path:?}).read())"),
        format!("probe('write_file', lambda: open({written_path:?}, 'w').write('x'))"),
        "probe('os_system', lambda: os.system('true') == 0 or (_ for _ in ()).throw(OSError('system failed')))".into(),
        "probe('fork', lambda: os.fork())".into(),
        format!("probe('socket_connect', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=1))"),
        "probe('kill_server', lambda: os.kill(os.getppid(), 0))".into(),
    ];
    let code: Vec<&str> = code.iter().map(String::as_str).collect();
    let (said, log) = raw_attempts(&code);
    for name in [
        "read_hostname",
        "read_secret",
        "write_file",
        "os_system",
        "fork",
        "socket_connect",
        "kill_server",
    ] {
        assert!(
            said.contains(&format!("{name}: denied")),
            "{name}: {said}\n{log}"
        );
        assert!(
            log.contains(&format!("{name}: denied")),
            "failure logged: {log}"
        );
    }
    assert!(!written.exists(), "a file was written");
    assert!(
        listener.accept().is_err(),
        "a connection reached the listener"
    );
    assert!(!log.contains(&s.text));
}

#[test]
fn ordinary_python_works_in_a_plugin() {
    let src = r##"
__plugin__ = {"name": "ordinary", "version": "1"}
import base64, collections, contextlib, dataclasses, datetime, enum, fractions
import functools, hashlib, heapq, io, itertools, json, math, pprint, random, re
import statistics, string, textwrap, typing, uuid

class Counter:
    def __init__(self):
        self._n = 0
        self.__secret = "mangled"
    def bump(self):
        self._n += 1
        return self._n
    def secret(self):
        return self.__secret

@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float

Pair = collections.namedtuple("Pair", "a b")

class Colour(enum.Enum):
    RED = 1

@contextlib.contextmanager
def tagged(out, tag):
    out.append("<" + tag)
    yield
    out.append(tag + ">")

@functools.lru_cache(maxsize=None)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def checks():
    c = Counter(); c.bump(); c.bump()
    out = []
    with tagged(out, "b"):
        out.append("x")
    p = Pair(1, 2)._replace(b=3)
    buf = io.StringIO(); pprint.pprint({"k": [1, 2]}, stream=buf)
    return [
        c._n == 2, c.secret() == "mangled", out == ["<b", "x", "b>"],
        p == (1, 3), Point(1, 2).x == 1, Colour(1) is Colour.RED, fib(30) == 832040,
        hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf"),
        len(str(uuid.uuid4())) == 36, base64.b64decode(base64.b64encode(b"hi")) == b"hi",
        "{:>5}|{:.2f}".format("a", 3.14159) == "    a|3.14", f"{2**10:,}" == "1,024",
        json.loads(json.dumps({"a": [1]})) == {"a": [1]}, re.sub(r"\d", "#", "a1b2") == "a#b#",
        statistics.mean([1, 2, 3]) == 2, fractions.Fraction(1, 3) * 3 == 1,
        heapq.nsmallest(2, [5, 1, 3]) == [1, 3], list(itertools.islice(itertools.count(), 3)) == [0, 1, 2],
        datetime.date(2024, 1, 1).isoformat() == "2024-01-01", "key=" in buf.getvalue() or "'k'" in buf.getvalue(),
        isinstance(typing.cast(int, 3), int), eval("1 + 1") == 2, getattr(c, "_n") == 2,
        type(c).__name__ == "Counter", vars(c)["_n"] == 2, textwrap.shorten("hello world", 8) == "[...]",
        math.isclose(math.pi, 3.14159, rel_tol=1e-5), random.Random(1).randint(1, 6) in range(1, 7),
        string.ascii_lowercase[:3] == "abc",
    ]

@game.register_command("check", "runs ordinary python")
def check(peer, args):
    results = checks()
    bad = [i for i, ok in enumerate(results) if not ok]
    game.send_chat(peer, "ok %d" % len(results) if not bad else "bad %r" % bad)
"##;
    let mut f = fixture(&[("ordinary.py", src)]);
    assert_eq!(
        f.state("ordinary"),
        Some(PluginState::Loaded),
        "{}",
        f.log("ordinary")
    );
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    assert_eq!(
        f.host.run_command(&mut f.world, 1, false, "check", ""),
        CommandOutcome::Ran,
        "{}",
        f.log("ordinary")
    );
    assert_eq!(
        f.world.chats,
        vec![(1, "ok 29".to_string())],
        "{}",
        f.log("ordinary")
    );
}

#[test]
fn refused_modules_say_why_they_cannot_work() {
    let src = plugin(
        "refused",
        "@game.register_command('why', 'import errors')\ndef why(peer, args):\n    for m in ('os', 'socket', 'subprocess', 'threading', 'asyncio'):\n        try:\n            __import__(m)\n        except ImportError as e:\n            game.send_chat(peer, str(e)[:400])\n    try:\n        open('/etc/hostname')\n    except PermissionError as e:\n        game.send_chat(peer, str(e)[:400])\n",
    );
    let mut f = fixture(&[("refused.py", &src)]);
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    assert_eq!(
        f.host.run_command(&mut f.world, 1, false, "why", ""),
        CommandOutcome::Ran
    );
    let said: Vec<String> = f.world.chats.iter().map(|c| c.1.clone()).collect();
    assert_eq!(said.len(), 6, "{said:?}");
    assert!(said[0].contains("no file system"), "{said:?}");
    assert!(said[1].contains("cannot open sockets"), "{said:?}");
    assert!(said[2].contains("cannot start processes"), "{said:?}");
    assert!(said[3].contains("one callback at a time"), "{said:?}");
    assert!(said[4].contains("event loop"), "{said:?}");
    assert!(said[5].contains("open() is not available"), "{said:?}");
}

#[test]
fn flood_budgets_refuse_with_a_clear_error() {
    let src = plugin(
        "noisy",
        "@game.register_command('flood', 'floods')\ndef flood(peer, args):\n    counts = {}\n    for what, fn in (('chat', lambda: game.broadcast('x')), ('popup', lambda: game.show_popup(peer, 'hi', 1.0)), ('rpc', lambda: game.send_rpc(peer, 'R', {'a': 1})), ('spawn', lambda: game.spawn_npc('npc', (0.0, 0.0, 0.0)))):\n        n = 0\n        for _ in range(1000):\n            try:\n                fn()\n                n += 1\n            except game.GameError as e:\n                counts[what] = (n, str(e))\n                break\n    game.log(repr(counts))\n    game.state['counts'] = counts\n",
    );
    let mut f = fixture(&[("noisy.py", &src)]);
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    f.tick();
    assert_eq!(
        f.host.run_command(&mut f.world, 1, false, "flood", ""),
        CommandOutcome::Ran,
        "{}",
        f.log("noisy")
    );
    let log = f.log("noisy");
    for (what, n) in [("chat", 32), ("popup", 8), ("rpc", 0), ("spawn", 64)] {
        assert!(
            log.contains(&format!("'{what}': ({n}, 'budget spent")),
            "{what}: {log}"
        );
    }
    // The per-recipient budget (8 messages per tick per plugin) stopped the
    // popups and left no room for RPCs to the same player.
    assert!(
        log.contains("messages per tick to one player (peer 1)"),
        "{log}"
    );
    assert_eq!(f.world.broadcasts.len(), 32, "chat lines per tick");
    assert_eq!(f.world.rpcs.len(), 8, "messages to one peer per tick");
    assert_eq!(f.world.entities.len(), 64, "spawns per tick");
    // A new tick gives a new budget.
    f.tick();
    f.world.broadcasts.clear();
    assert_eq!(
        f.host.run_command(&mut f.world, 1, false, "flood", ""),
        CommandOutcome::Ran
    );
    assert_eq!(f.world.broadcasts.len(), 32);
    assert!(f.log("noisy").matches("'chat': (32,").count() >= 2);
    // A peer whose queue is full gets no plugin messages at all.
    f.tick();
    f.world.full_peers.push(1);
    f.world.rpcs.clear();
    let _ = f.host.run_command(&mut f.world, 1, false, "flood", "");
    assert!(f.world.rpcs.is_empty());
}

#[test]
fn plugin_logs_are_capped_and_rotated() {
    let src = plugin(
        "chatty",
        "@game.on('OnTick')\ndef t(dt):\n    for i in range(200):\n        game.log('\\x1b[31mred\\x07 ' + 'x' * 9000)\n        print('printed', i)\n",
    );
    let mut f = fixture(&[("chatty.py", &src)]);
    for _ in 0..40 {
        f.tick();
    }
    let log = f.log("chatty");
    assert!(
        !log.contains('\x1b') && !log.contains('\x07'),
        "control characters escaped"
    );
    assert!(log.contains("\\u{1b}"));
    assert!(log.contains("were not written"), "rate cap reported");
    for line in log.lines() {
        assert!(line.len() <= 4096 + 20, "line of {} bytes", line.len());
    }
    let total: u64 = ["chatty.log", "chatty.log.1", "chatty.log.2", "chatty.log.3"]
        .iter()
        .filter_map(|n| std::fs::metadata(f.logs.join(n)).ok())
        .map(|m| m.len())
        .sum();
    assert!(total <= 3 * 1024 * 1024, "logs hold {total} bytes");
    assert!(!f.logs.join("chatty.log.3").exists());
}

#[test]
fn a_disabled_plugin_has_no_worker_and_enable_brings_it_back() {
    let mut f = fixture(&[("good.py", GOOD)]);
    let pid = f.info("good").worker_pid.expect("running worker");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(f.host.disable(&mut f.world, "good"));
    assert_eq!(f.info("good").worker_pid, None);
    // The kill is immediate; the reaper collects the child soon after (later
    // on a loaded machine), so poll rather than sleep a fixed time.
    let gone = |pid: u32| {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.is_empty() || s.contains("State:\tZ")
    };
    let until = Instant::now() + Duration::from_secs(5);
    while !gone(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone(pid), "worker {pid} still runs after disable");
    assert!(f.host.enable(&mut f.world, "good"));
    let until = Instant::now() + Duration::from_secs(5);
    while f.state("good") != Some(PluginState::Loaded) && Instant::now() < until {
        f.host.poll_changes(&mut f.world);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(f.state("good"), Some(PluginState::Loaded));
    f.world.peers.insert(1, v(0.0, 0.0, 0.0));
    assert_eq!(
        f.host.run_command(&mut f.world, 1, false, "ping", ""),
        CommandOutcome::Ran
    );
}
