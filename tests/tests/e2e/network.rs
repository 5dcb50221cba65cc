//! Players join a real server over QUIC on loopback, see each other, chat and
//! run commands; misbehaving clients and key changes are handled.

use std::time::Duration;

use shard_client::{ClientError, ClientEvent, Dispatcher, Session};
use shard_e2e::{TestPlayer, TestServer, chat_contains, join_as};
use shard_protocol::Vec3;
use shard_protocol::identity::{Fingerprint, Identity, SERVER_NAME};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_see_each_other_join_move_and_chat() {
    let srv = TestServer::start(&[]);
    let alice = TestPlayer::new("alice");
    let bob = TestPlayer::new("bob");
    let mut a = alice.join(srv.addr).await;
    let mut b = bob.join(srv.addr).await;

    let joined = a
        .expect(
            "bob joined",
            |e| matches!(e, ClientEvent::PeerJoined { name, .. } if name == "bob"),
        )
        .await;
    let ClientEvent::PeerJoined {
        peer_id: bob_id, ..
    } = joined
    else {
        unreachable!()
    };
    b.expect(
        "alice already there",
        |e| matches!(e, ClientEvent::PeerJoined { name, .. } if name == "alice"),
    )
    .await;

    // Positions are datagrams: send a few, the other side must see one.
    for _ in 0..5 {
        b.session
            .send_position(Vec3::new(10.0, 20.0, 1.0), 90.0)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.expect("bob moved", |e| {
        matches!(e, ClientEvent::PeerMoved { peer_id, pos, .. } if *peer_id == bob_id && *pos == [10.0, 20.0, 1.0])
    })
    .await;

    assert!(b.session.say("hello from bob").await);
    a.expect("bob's chat", |e| matches!(e, ClientEvent::Chat { name, text, from: Some(_) } if name == "bob" && text == "hello from bob")).await;
    b.expect("own chat echoed", |e| chat_contains(e, "hello from bob"))
        .await;

    b.session.close().await;
    a.expect(
        "bob left",
        |e| matches!(e, ClientEvent::PeerLeft { name, .. } if name == "bob"),
    )
    .await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_answers_and_kick_is_admin_only() {
    let admin = TestPlayer::new("admin");
    let srv = TestServer::start(&[admin.fingerprint]);
    let mut victim = join_as("victim", srv.addr).await;
    let mut pleb = join_as("pleb", srv.addr).await;
    let mut boss = admin.join(srv.addr).await;

    pleb.session.say("/help").await;
    let help = pleb
        .expect("/help answer", |e| chat_contains(e, "commands:"))
        .await;
    let ClientEvent::Chat { text, .. } = help else {
        unreachable!()
    };
    assert!(
        text.contains("/who") && !text.contains("/kick"),
        "a non-admin's /help hides admin commands: {text}"
    );

    boss.session.say("/help").await;
    boss.expect("admin /help lists /kick", |e| chat_contains(e, "/kick"))
        .await;

    pleb.session.say("/kick victim").await;
    pleb.expect("refusal", |e| chat_contains(e, "for admins only"))
        .await;
    let early = victim.collect_for(Duration::from_millis(300)).await;
    assert!(
        !early.iter().any(|e| matches!(e, ClientEvent::Kick { .. })),
        "victim must not be kicked by a non-admin"
    );

    boss.session.say("/kick victim").await;
    let kick = victim
        .expect("kicked", |e| matches!(e, ClientEvent::Kick { .. }))
        .await;
    assert!(matches!(kick, ClientEvent::Kick { reason } if reason.contains("kicked by an admin")));
    pleb.expect("others told", |e| chat_contains(e, "victim was kicked"))
        .await;
    pleb.expect(
        "victim left",
        |e| matches!(e, ClientEvent::PeerLeft { name, .. } if name == "victim"),
    )
    .await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_weather_reaches_everyone() {
    let admin = TestPlayer::new("admin");
    let srv = TestServer::start(&[admin.fingerprint]);
    let mut other = join_as("other", srv.addr).await;
    let boss = admin.join(srv.addr).await;
    boss.session.say("/weather 7").await;
    other
        .expect("weather 7", |e| matches!(e, ClientEvent::Weather { id: 7 }))
        .await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pinned_to_another_key_refuses_the_server() {
    let srv = TestServer::start(&[]);
    let player = TestPlayer::new("careful");
    let other_key = Identity::generate("someone-else").unwrap().fingerprint;
    let mut opts = player.options(srv.addr);
    opts.server_key = Some(other_key);
    let err = Session::connect(opts, Dispatcher::new())
        .await
        .err()
        .expect("must refuse");
    assert!(matches!(err, ClientError::ServerKeyChanged { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&srv.server.fingerprint().to_hex()) && msg.contains("--server-key"),
        "{msg}"
    );

    // Trust on first use: the first join pins, a later join with a changed pin is refused.
    let first = player.join(srv.addr).await;
    first.session.close().await;
    let known =
        std::fs::read_to_string(player.dir.path().join("runtime_cache/known_servers")).unwrap();
    assert!(
        known.contains(&srv.server.fingerprint().to_hex()),
        "{known}"
    );
    let fake = format!("{} {}\n", srv.addr, Fingerprint([7; 32]).to_hex());
    std::fs::write(player.dir.path().join("runtime_cache/known_servers"), fake).unwrap();
    let err = Session::connect(player.options(srv.addr), Dispatcher::new())
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("known_servers"), "{err}");
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_garbage_is_disconnected_and_others_carry_on() {
    let srv = TestServer::start(&[]);
    let mut good = join_as("good", srv.addr).await;

    // A rogue client with a valid key but a bogus frame length.
    let rogue = Identity::generate("rogue").unwrap();
    let (cfg, _) = rogue
        .quic_client_config(Some(srv.server.fingerprint()))
        .unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(cfg);
    let conn = ep.connect(srv.addr, SERVER_NAME).unwrap().await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let hello = shard_protocol::encode_frame(&shard_protocol::ClientMsg::Hello {
        name: "rogue".into(),
        protocol_version: shard_protocol::PROTOCOL_VERSION,
    })
    .unwrap();
    send.write_all(&hello).await.unwrap();
    good.expect(
        "rogue joined",
        |e| matches!(e, ClientEvent::PeerJoined { name, .. } if name == "rogue"),
    )
    .await;
    send.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("closed in time");
    match reason {
        quinn::ConnectionError::ApplicationClosed(c) => {
            let text = String::from_utf8_lossy(&c.reason).to_string();
            assert!(
                text.contains("exceeds the limit"),
                "reason says what was wrong: {text}"
            );
        }
        other => panic!("expected an application close with a reason, got {other}"),
    }
    good.expect(
        "rogue left",
        |e| matches!(e, ClientEvent::PeerLeft { name, .. } if name == "rogue"),
    )
    .await;

    // The good client is unaffected.
    good.session.say("still here").await;
    good.expect("chat still works", |e| chat_contains(e, "still here"))
        .await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_protocol_version_is_refused_with_a_reason() {
    let srv = TestServer::start(&[]);
    let id = Identity::generate("old").unwrap();
    let (cfg, _) = id.quic_client_config(None).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(cfg);
    let conn = ep.connect(srv.addr, SERVER_NAME).unwrap().await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let hello = shard_protocol::encode_frame(&shard_protocol::ClientMsg::Hello {
        name: "old".into(),
        protocol_version: 999,
    })
    .unwrap();
    send.write_all(&hello).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .unwrap()
    {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert!(String::from_utf8_lossy(&c.reason).contains("protocol version 999"));
        }
        other => panic!("unexpected {other}"),
    }
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_flood_disconnects_only_the_flooder() {
    let srv = TestServer::start(&[]);
    let mut calm = join_as("calm", srv.addr).await;
    let mut loud = join_as("loud", srv.addr).await;
    for i in 0..50 {
        loud.session.say(&format!("spam {i}")).await;
    }
    let reason = loud
        .expect("disconnected", |e| {
            matches!(e, ClientEvent::Disconnected { .. })
        })
        .await;
    assert!(matches!(reason, ClientEvent::Disconnected { reason } if reason.contains("flooding")));
    calm.expect(
        "loud left",
        |e| matches!(e, ClientEvent::PeerLeft { name, .. } if name == "loud"),
    )
    .await;
    calm.session.say("calm words").await;
    calm.expect("calm still chats", |e| chat_contains(e, "calm words"))
        .await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_notifies_clients() {
    let srv = TestServer::start(&[]);
    let mut a = join_as("a", srv.addr).await;
    srv.server.shutdown().await;
    let ev = a
        .expect("told", |e| {
            matches!(
                e,
                ClientEvent::Kick { .. } | ClientEvent::Disconnected { .. }
            )
        })
        .await;
    let reason = match ev {
        ClientEvent::Kick { reason } | ClientEvent::Disconnected { reason } => reason,
        _ => unreachable!(),
    };
    assert!(reason.contains("stopping"), "{reason}");
}

/// A session dropped without `close` (a game that tears its client down)
/// still leaves at once: the others see the player go well before the
/// idle timeout would have ended the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_dropped_without_close_leaves_at_once() {
    let srv = TestServer::start(&[]);
    let mut a = join_as("alice", srv.addr).await;
    let b = join_as("bob", srv.addr).await;
    a.expect(
        "bob joined",
        |e| matches!(e, ClientEvent::PeerJoined { name, .. } if name == "bob"),
    )
    .await;
    let dropped = std::time::Instant::now();
    drop(b);
    a.expect(
        "bob left",
        |e| matches!(e, ClientEvent::PeerLeft { name, .. } if name == "bob"),
    )
    .await;
    let idle = Duration::from_secs(shard_protocol::limits::DEFAULT_IDLE_TIMEOUT_SECS);
    assert!(
        dropped.elapsed() < idle / 4,
        "bob left only after {:?}, as the idle timeout would end him",
        dropped.elapsed()
    );
    srv.server.shutdown().await;
}
