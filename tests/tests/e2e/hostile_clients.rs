//! Hostile clients against a real server on loopback: each attack is a client
//! built on the protocol crates inside the test, while real, well-behaved
//! clients keep chatting, receiving moves and joining throughout.
//!
//! Attackers bind other loopback addresses (127.0.0.2, …) where the
//! per-address cap matters, so the real players on 127.0.0.1 are their own address.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::print_stdout,
    reason = "prints measured figures for the test log"
)]

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use shard_client::{ClientEvent, Dispatcher, Session};
use shard_e2e::attack::Raw;
use shard_e2e::{
    Client, ServerProcess, TestPlayer, TestServer, chat_contains, join_as, noise, workspace_bin,
};
use shard_protocol::frame::read_frame;
use shard_protocol::limits::{MAX_BUNDLE_RETRIES, MAX_CHAT_CHARS};
use shard_protocol::{ClientMsg, ServerMsg, Vec3, close_code};

/// How long a test waits for the server to close an attacker.
const WAIT: Duration = Duration::from_secs(30);

/// QUIC and handshake bytes a connection costs beyond its bundle data.
const OVERHEAD: u64 = 512 * 1024;

/// Log output of this test binary (every test installs the same capture first).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

/// A `Write` into the shared log buffer.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// A plugin whose bundle is `size` bytes of noise.
fn big_plugin(size: usize) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "big.py",
            b"__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n".to_vec(),
        ),
        (
            "big/assets/big.archive",
            shard_e2e::blob_archive(&noise(size, 0x5eed_1234_5678_9abc)),
        ),
    ]
}

fn start_with_big(
    size: usize,
    tweak: impl FnOnce(&mut shard_server::config::ServerConfig),
) -> TestServer {
    let files = big_plugin(size);
    TestServer::start_with(|cfg| {
        for (rel, data) in &files {
            let path = cfg.plugin_dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, data).unwrap();
        }
        tweak(cfg);
    })
}

/// Two real players in the background: one chats and moves every 300 ms,
/// the other counts what reaches it.
struct Heartbeat {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, u64, u64)>,
}

impl Heartbeat {
    async fn start(addr: SocketAddr) -> Heartbeat {
        let mut talker = join_as("talker", addr).await;
        let mut listener = join_as("listener", addr).await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut sent, mut heard, mut moves) = (0u64, 0u64, 0u64);
            while !flag.load(Ordering::Relaxed) {
                sent += 1;
                talker.session.say(&format!("beat {sent}")).await;
                let _ = talker
                    .session
                    .send_position(Vec3::new(sent as f32, 1.0, 2.0), 0.0);
                for ev in listener.collect_for(Duration::from_millis(300)).await {
                    match ev {
                        ClientEvent::Chat { text, .. } if text.starts_with("beat ") => heard += 1,
                        ClientEvent::PeerMoved { .. } => moves += 1,
                        ClientEvent::Disconnected { reason } | ClientEvent::Kick { reason } => {
                            panic!("a real player was disconnected: {reason}")
                        }
                        _ => {}
                    }
                }
                talker.collect_for(Duration::ZERO).await;
                talker.forget();
                listener.forget();
            }
            (sent, heard, moves)
        });
        Heartbeat { stop, task }
    }

    /// Stops and checks that chat and moves kept flowing the whole time.
    async fn check(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (sent, heard, moves) = self.task.await.expect("heartbeat task");
        assert!(sent >= 3, "the heartbeat ran ({sent} beats)");
        assert!(
            heard + 2 >= sent,
            "chat kept flowing: {heard} of {sent} lines heard"
        );
        assert!(moves > 0, "moves kept flowing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplification_is_bounded_per_connection() {
    logs();
    let size = 1_000_000;
    let srv = start_with_big(size, |_| {});
    let hb = Heartbeat::start(srv.addr).await;
    let mut a = Raw::connect(srv.addr, srv.server.fingerprint(), "127.0.0.1:0", "amp")
        .await
        .unwrap();
    a.welcomed().await.unwrap();
    let (req, _) = a.announcement().await.expect("an announcement");
    let finished = a.drain_bundles();

    // One at a time: the bundle, one retry, then refusals.
    let (mut transfers, mut refusals) = (0, 0);
    for _ in 0..4 {
        let before = finished.load(Ordering::Relaxed);
        assert!(
            a.send(&ClientMsg::NeedBundles {
                requests: vec![req.clone()]
            })
            .await
        );
        loop {
            if finished.load(Ordering::Relaxed) > before {
                transfers += 1;
                // Let the server see the acknowledgement of the last byte.
                tokio::time::sleep(Duration::from_millis(300)).await;
                break;
            }
            match tokio::time::timeout(
                Duration::from_millis(100),
                read_frame::<ServerMsg, _>(&mut a.recv),
            )
            .await
            {
                Ok(Ok(Some(ServerMsg::BundleRefused { reason, .. }))) => {
                    assert!(reason.contains("sent to you"), "{reason}");
                    refusals += 1;
                    break;
                }
                Ok(Ok(Some(_))) | Err(_) => {}
                Ok(other) => panic!("control stream ended: {other:?}"),
            }
        }
    }
    assert_eq!(transfers, 1 + MAX_BUNDLE_RETRIES, "once plus the retries");
    assert_eq!(refusals, 4 - transfers);

    // The attack of the report: hundreds of requests for the same bundle.
    let flood = ClientMsg::NeedBundles {
        requests: vec![req.clone(); 256],
    };
    a.send(&flood).await;
    a.send(&flood).await;
    let (code, reason) = a.closed(WAIT).await;
    assert_eq!(code, close_code::FLOOD, "{reason}");
    assert!(
        reason.contains("too many refused bundle requests"),
        "{reason}"
    );
    let (bytes_in, bytes_out) = (a.bytes_in(), a.bytes_out());
    println!(
        "amplification: {bytes_out} bytes in, {bytes_in} bytes out ({:.1}x), bundle {size} bytes",
        bytes_in as f64 / bytes_out as f64
    );
    assert!(
        bytes_in <= 2 * size as u64 + OVERHEAD,
        "bytes out per client stay within twice the bundle: {bytes_in}"
    );

    // Real players still join and get the bundle.
    let mut late = join_as("late", srv.addr).await;
    late.expect("bundle installed", |e| {
        matches!(e, ClientEvent::BundleInstalled { .. })
    })
    .await;
    hb.check().await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_reading_clients_are_disconnected_and_what_they_held_is_freed() {
    logs();
    let size = 2_000_000;
    let srv = start_with_big(size, |cfg| {
        cfg.bundle_stall_secs = 2;
        // Two leases: the six attackers must give theirs back for anyone else to get one.
        cfg.bundle_bytes_in_flight = 2 * shard_protocol::limits::BUNDLE_SEND_WINDOW;
    });
    let hb = Heartbeat::start(srv.addr).await;
    let mut attackers = Vec::new();
    for i in 0..6 {
        let mut a = Raw::connect(
            srv.addr,
            srv.server.fingerprint(),
            "127.0.0.1:0",
            &format!("sink{i}"),
        )
        .await
        .unwrap();
        a.welcomed().await.unwrap();
        let (req, _) = a.announcement().await.expect("an announcement");
        a.send(&ClientMsg::NeedBundles {
            requests: vec![req],
        })
        .await;
        // From here on it reads nothing at all.
        attackers.push(a);
    }
    for a in &attackers {
        let (code, reason) = a.closed(WAIT).await;
        assert_eq!(code, close_code::FLOOD, "{reason}");
        assert!(reason.contains("not reading"), "{reason}");
        assert!(
            a.bytes_in() <= 2 * size as u64 + OVERHEAD,
            "bounded bytes: {}",
            a.bytes_in()
        );
    }
    // Their leases and transfers are freed: the budget is whole again.
    let mut stats = srv.server.bundle_flight();
    for _ in 0..50 {
        if stats.leases_in_use == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats = srv.server.bundle_flight();
    }
    assert_eq!(stats.leases_in_use, 0, "{stats:?}");
    let mut late = join_as("late", srv.addr).await;
    late.expect("bundle installed", |e| {
        matches!(e, ClientEvent::BundleInstalled { .. })
    })
    .await;
    hb.check().await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_from_one_address_fails_and_silent_sessions_are_closed() {
    logs();
    let srv = TestServer::start_with(|cfg| {
        cfg.max_players = 16;
        cfg.max_per_address = shard_protocol::limits::DEFAULT_MAX_PER_ADDRESS;
        cfg.idle_timeout_secs = 2 * shard_protocol::limits::KEEPALIVE_SECS + 1;
    });
    let hb = Heartbeat::start(srv.addr).await;
    let (mut joined, mut refused, mut told) = (Vec::new(), 0, 0);
    for i in 0..40 {
        match Raw::connect(
            srv.addr,
            srv.server.fingerprint(),
            "127.0.0.2:0",
            &format!("lock{i}"),
        )
        .await
        {
            Ok(mut r) => match r.welcomed().await {
                Ok(()) => joined.push(r),
                // The server closes a refused connection at once and forgets
                // it soon after; on a loaded machine the client may only
                // see the stateless reset that follows a lost close packet.
                Err((code, reason)) if code == u32::MAX && reason.contains("reset") => {
                    refused += 1;
                }
                Err((code, reason)) => {
                    assert_eq!(code, close_code::REFUSED, "{reason}");
                    assert!(
                        reason.contains("too many connections from your address"),
                        "{reason}"
                    );
                    refused += 1;
                    told += 1;
                }
            },
            Err(_) => refused += 1,
        }
    }
    assert!(told > 0, "no refused client was told why");
    assert_eq!(
        joined.len(),
        shard_protocol::limits::DEFAULT_MAX_PER_ADDRESS
    );
    assert_eq!(refused, 40 - joined.len());

    // A real player still joins.
    let mut newcomer = join_as("newcomer", srv.addr).await;

    // The silent throwaway sessions are closed once idle; the real ones stay.
    for r in &joined {
        let (code, reason) = r.closed(WAIT).await;
        assert_eq!(code, close_code::IDLE, "{reason}");
        assert!(reason.contains("idle"), "{reason}");
    }
    let after = newcomer.collect_for(Duration::from_secs(1)).await;
    assert!(
        !after.iter().any(|e| matches!(
            e,
            ClientEvent::Disconnected { .. } | ClientEvent::Kick { .. }
        )),
        "{after:?}"
    );
    // And the address may connect again.
    let mut again = Raw::connect(srv.addr, srv.server.fingerprint(), "127.0.0.2:0", "again")
        .await
        .unwrap();
    again.welcomed().await.unwrap();
    hb.check().await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_joins_a_full_server_and_the_allowlist_admits_listed_keys_only() {
    logs();
    let admin = TestPlayer::new("boss");
    let listed: Vec<TestPlayer> = (0..4).map(|i| TestPlayer::new(&format!("p{i}"))).collect();
    let stranger = TestPlayer::new("stranger");
    let allow: Vec<String> = listed.iter().map(|p| p.fingerprint.to_hex()).collect();
    let srv = TestServer::start_with(|cfg| {
        cfg.admins = vec![admin.fingerprint.to_hex()];
        cfg.max_players = 4;
        cfg.admin_slots = 1;
        cfg.allowlist = allow;
    });
    // A key not on the list is refused with the reason, even with room.
    let mut s = Session::connect(stranger.options(srv.addr), Dispatcher::new())
        .await
        .unwrap();
    let ev = s.next_event().await;
    assert!(
        matches!(&ev, Some(ClientEvent::Disconnected { reason }) if reason.contains("listed keys only")),
        "{ev:?}"
    );
    let mut first = listed[0].join(srv.addr).await;
    let _second = listed[1].join(srv.addr).await;
    let _third = listed[2].join(srv.addr).await;
    // Three players fill the slots that are not kept for admins.
    let mut s = Session::connect(listed[3].options(srv.addr), Dispatcher::new())
        .await
        .unwrap();
    let ev = s.next_event().await;
    assert!(
        matches!(&ev, Some(ClientEvent::Disconnected { reason }) if reason.contains("full") && reason.contains("admins")),
        "{ev:?}"
    );
    // The admin (not on the allowlist) still gets in.
    let mut boss = admin.join(srv.addr).await;
    boss.session.say("/who").await;
    let who = boss.expect("/who", |e| chat_contains(e, "online:")).await;
    let ClientEvent::Chat { text, .. } = who else {
        unreachable!()
    };
    assert!(
        text.contains("4 online") && text.contains("#1 p0"),
        "{text}"
    );
    first.session.say("still here").await;
    first
        .expect("chat works", |e| chat_contains(e, "still here"))
        .await;
    srv.server.shutdown().await;
}

/// Runs `shard-client join` with `args`; returns the child with stdout piped.
fn client_cmd(
    addr: SocketAddr,
    home: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> std::process::Command {
    let exe = workspace_bin("shard-client");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["join", &addr.to_string(), "--name", name, "--identity"])
        .arg(home.join("identity.pem"))
        .arg("--cache")
        .arg(home.join("cli-cache"))
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Starts the client and waits for its `welcome` line.
async fn spawn_welcomed(mut cmd: std::process::Command) -> std::process::Child {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("shard-client starts");
        let out = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(out).lines();
        loop {
            let line = lines
                .next()
                .expect("a welcome line before the end")
                .expect("stdout");
            if line.contains(r#""event":"welcome""#) {
                break;
            }
        }
        // Keep reading stdout so the client never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        child
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_player_rejoins_at_once_and_the_stale_session_goes() {
    logs();
    let srv = TestServer::start(&[]);
    let mut watcher = join_as("watcher", srv.addr).await;
    let player = TestPlayer::new("crashy");
    let mut child = spawn_welcomed(client_cmd(
        srv.addr,
        player.dir.path(),
        "crashy",
        &["--do", "wait:60"],
    ))
    .await;
    watcher
        .expect(
            "crashy joined",
            |e| matches!(e, ClientEvent::PeerJoined { name, .. } if name == "crashy"),
        )
        .await;
    child.kill().expect("SIGKILL"); // no close reaches the server
    let _ = child.wait();
    watcher.forget();
    // The same key rejoins at once; the stale session is replaced.
    let back = player.join(srv.addr).await;
    watcher
        .expect(
            "stale session left",
            |e| matches!(e, ClientEvent::PeerLeft { name, .. } if name == "crashy"),
        )
        .await;
    watcher
        .expect(
            "crashy is back",
            |e| matches!(e, ClientEvent::PeerJoined { name, .. } if name == "crashy"),
        )
        .await;
    back.session.say("I'm back").await;
    watcher
        .expect("chat", |e| chat_contains(e, "I'm back"))
        .await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_look_alike_names_are_refused_and_kick_refuses_an_ambiguous_target() {
    logs();
    let admin = TestPlayer::new("boss");
    let srv = TestServer::start(&[admin.fingerprint]);
    let mut legit = join_as("legit", srv.addr).await;
    for (name, why) in [
        ("legit", "taken"),
        ("LEGIT", "taken"),
        ("ｌｅｇｉｔ", "taken"),
        ("le\u{200b}git", "formatting"),
        ("\u{202e}nimda", "bidirectional"),
        ("server", "reserved"),
        ("/kick", "reserved"),
        ("7", "reserved"),
    ] {
        let p = TestPlayer::new(name);
        let mut s = Session::connect(p.options(srv.addr), Dispatcher::new())
            .await
            .unwrap();
        let ev = s.next_event().await;
        match &ev {
            Some(ClientEvent::Disconnected { reason }) => {
                assert!(reason.contains(why), "{name:?}: {reason}")
            }
            other => panic!("{name:?} must be refused, got {other:?}"),
        }
    }

    // The real client will not even send a name with control characters; an attacker does.
    let mut raw = Raw::connect(
        srv.addr,
        srv.server.fingerprint(),
        "127.0.0.1:0",
        "legit\u{1b}[0m",
    )
    .await
    .unwrap();
    let (_, reason) = raw.welcomed().await.unwrap_err();
    assert!(reason.contains("control"), "{reason}");

    // A name that is also another player's key prefix makes `/kick` ambiguous.
    let hex = legit_key_prefix(&srv, &mut legit).await;
    let mut shadow = join_as(&hex, srv.addr).await;
    let mut boss = admin.join(srv.addr).await;
    boss.session.say(&format!("/kick {hex}")).await;
    let reply = boss
        .expect("ambiguity", |e| chat_contains(e, "ambiguous"))
        .await;
    let ClientEvent::Chat { text, .. } = reply else {
        unreachable!()
    };
    assert!(text.contains("legit") && text.contains(&hex), "{text}");
    let none = legit.collect_for(Duration::from_millis(300)).await;
    assert!(!none.iter().any(|e| matches!(e, ClientEvent::Kick { .. })));

    // By peer id it is exact.
    let ClientEvent::Welcome { peer_id, .. } = shadow
        .expect("welcome", |e| matches!(e, ClientEvent::Welcome { .. }))
        .await
    else {
        unreachable!()
    };
    boss.session.say(&format!("/kick #{peer_id}")).await;
    shadow
        .expect("kicked", |e| matches!(e, ClientEvent::Kick { .. }))
        .await;
    boss.session.say("/kick LEGIT").await;
    legit
        .expect("kicked by a case-insensitive name", |e| {
            matches!(e, ClientEvent::Kick { .. })
        })
        .await;
    srv.server.shutdown().await;
}

/// The shortest prefix of legit's key (at least the minimum) that is not a
/// bare number, read from `/who` the way an admin would.
async fn legit_key_prefix(srv: &TestServer, legit: &mut Client) -> String {
    let _ = srv;
    legit.session.say("/who").await;
    let ClientEvent::Welcome { player_id, .. } = legit
        .expect("welcome", |e| matches!(e, ClientEvent::Welcome { .. }))
        .await
    else {
        unreachable!()
    };
    let min = shard_protocol::limits::MIN_FINGERPRINT_PREFIX;
    (min..=player_id.len())
        .map(|n| player_id[..n].to_string())
        .find(|p| !p.chars().all(|c| c.is_ascii_digit()))
        .expect("a key has a hex letter somewhere")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_popups_are_sanitised_and_empty_lines_dropped() {
    logs();
    let popper = br#"
__plugin__ = {"name": "popper", "version": "1"}

@game.register_command("pop", "shows a popup with hidden characters")
def pop(peer, args):
    game.show_popup(peer, "hi\nthere\u202e\u200b!", 5)
"#;
    let srv = TestServer::start_with_files(&[], &[("popper.py", popper.as_slice())]);
    let a = join_as("alice", srv.addr).await;
    let mut b = join_as("bob", srv.addr).await;
    a.session.say("a\nb\u{1b}[31mc\u{202e}d\0").await;
    a.session.say(" \r\n\t\u{200b} ").await;
    a.session.say("marker").await;
    let long = "é".repeat(MAX_CHAT_CHARS);
    a.session.say(&long).await;
    let got = b.expect("the long line", |e| chat_contains(e, "éé")).await;
    let lines: Vec<String> = b
        .seen
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Chat {
                from: Some(_),
                text,
                ..
            } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(lines[0], "a b [31mcd", "{lines:?}");
    assert_eq!(lines[1], "marker", "the empty line was dropped: {lines:?}");
    assert!(
        matches!(got, ClientEvent::Chat { text, .. } if text.chars().count() == MAX_CHAT_CHARS && !text.contains('…'))
    );
    b.session.say("/pop").await;
    let pop = b
        .expect("popup", |e| matches!(e, ClientEvent::Popup { .. }))
        .await;
    assert!(
        matches!(&pop, ClientEvent::Popup { text, .. } if text == "hi there!"),
        "{pop:?}"
    );
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_install_reports_are_folded_into_one_line_per_peer() {
    let logs = logs();
    let srv = TestServer::start(&[]);
    let hb = Heartbeat::start(srv.addr).await;
    let mut liars = Vec::new();
    for i in 0..3 {
        let mut r = Raw::connect(
            srv.addr,
            srv.server.fingerprint(),
            "127.0.0.1:0",
            &format!("liar{i}"),
        )
        .await
        .unwrap();
        r.welcomed().await.unwrap();
        let lie = ClientMsg::BundleInstalled {
            plugin_id: 1,
            sha256: [7; 32],
            ok: false,
            error: Some(format!("{i}\u{1b}[31m{}", "x".repeat(400))),
        };
        for _ in 0..90 {
            assert!(r.send(&lie).await);
        }
        liars.push(r);
    }
    // The window ends, and the folded count is written as one line.
    tokio::time::sleep(Duration::from_secs(
        shard_protocol::limits::WARN_WINDOW_SECS + 2,
    ))
    .await;
    let text = log_text();
    let _ = logs;
    let warned = text
        .lines()
        .filter(|l| l.contains("failed to install a bundle"))
        .count();
    assert_eq!(warned, 3, "one line per peer:\n{text}");
    let folded = text
        .lines()
        .filter(|l| l.contains("bundle install failed") && l.contains("repeated=89"))
        .count();
    assert_eq!(folded, 3, "one count per peer:\n{text}");
    assert!(!text.contains('\u{1b}'), "no escape codes reach the log");
    for r in &liars {
        assert!(
            r.conn.close_reason().is_none(),
            "reports alone are no flood"
        );
    }
    hb.check().await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_exit_status_tells_refused_from_disconnected() {
    logs();
    let srv = TestServer::start(&[]);
    let home = tempfile::tempdir().unwrap();

    // Refused: a reserved name.
    let out = tokio::task::spawn_blocking({
        let cmd = client_cmd(srv.addr, home.path(), "server", &[]);
        move || {
            let mut cmd = cmd;
            cmd.output().unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("refused:") && stderr.contains("reserved"),
        "{stderr}"
    );

    // Disconnected after joining: the same key joins again elsewhere.
    let player = TestPlayer::new("twin");
    let mut child = spawn_welcomed(client_cmd(
        srv.addr,
        player.dir.path(),
        "twin",
        &["--do", "wait:60"],
    ))
    .await;
    let _twin = player.join(srv.addr).await;
    let status = tokio::task::spawn_blocking(move || {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        (child.wait().unwrap(), err)
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(4), "{}", status.1);
    assert!(
        status.1.contains("disconnected:") && status.1.contains("replaced"),
        "{}",
        status.1
    );
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_binary_logs_plain_text_and_folds_what_a_client_floods() {
    logs();
    let bin = workspace_bin("shard-server");
    let dir = tempfile::tempdir().unwrap();
    let srv = ServerProcess::start(&bin, dir.path(), "").expect("the server starts");
    let mut liar = Raw::connect(srv.addr, srv.key, "127.0.0.1:0", "liar")
        .await
        .unwrap();
    liar.welcomed().await.unwrap();
    let lie = ClientMsg::BundleInstalled {
        plugin_id: 1,
        sha256: [7; 32],
        ok: false,
        error: Some("\u{1b}[31mred\u{1b}]0;title\u{7}".into()),
    };
    for _ in 0..60 {
        assert!(liar.send(&lie).await);
    }
    let mut good = join_as("good", srv.addr).await;
    good.session.say("fine").await;
    good.expect("chat", |e| chat_contains(e, "fine")).await;
    let text = srv.log_text();
    assert!(text.contains("server listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes in the log file:\n{text}"
    );
    assert_eq!(
        text.matches("failed to install a bundle").count(),
        1,
        "sixty reports, one line:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_log_lines_carry_its_address_peer_and_key() {
    let logs = logs();
    let srv = TestServer::start(&[]);
    let id = shard_protocol::identity::Identity::generate("flooder").unwrap();
    let mut r = Raw::connect_as(
        &id,
        srv.addr,
        srv.server.fingerprint(),
        "127.0.0.1:0",
        "flooder",
    )
    .await
    .unwrap();
    r.welcomed().await.unwrap();
    let local = r.conn.local_ip();
    // Far past the chat rate: the server disconnects with a warning, logged
    // by the connection task inside its span.
    for i in 0..50 {
        if !r
            .send(&ClientMsg::Chat {
                text: format!("spam {i}"),
            })
            .await
        {
            break;
        }
    }
    let (code, _) = r.closed(WAIT).await;
    assert_eq!(code, close_code::FLOOD);
    let text = log_text();
    let _ = logs;
    let line = text
        .lines()
        .find(|l| l.contains("disconnecting") && l.contains("flooding"))
        .unwrap_or_else(|| panic!("no disconnect warning:\n{text}"));
    assert!(
        line.contains("conn{remote="),
        "span with the address: {line}"
    );
    assert!(
        line.contains(&format!("key={}", id.fingerprint)),
        "span with the key: {line}"
    );
    assert!(line.contains(" peer="), "span with the peer id: {line}");
    if let Some(ip) = local {
        assert!(line.contains(&ip.to_string()), "the address: {line}");
    }
    srv.server.shutdown().await;
}
