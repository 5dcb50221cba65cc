//! The third example plugin end to end: an admin opens a poll, three real
//! clients vote through the upstream RPC their pushed scripts declare (one
//! vote per player, a second vote changes it), and a player who joins later
//! gets the open poll.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use shard_client::ClientEvent;
use shard_e2e::{Client, TestPlayer, TestServer, chat_contains, join_as};

fn start(admins: &[shard_protocol::identity::Fingerprint]) -> TestServer {
    TestServer::start_with_example(admins, "vote")
}

async fn installed(c: &mut Client) {
    let ev = c
        .expect(
            "vote installed",
            |e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "vote"),
        )
        .await;
    assert!(
        matches!(&ev, ClientEvent::BundleInstalled { rpcs, .. } if rpcs == &["PollState".to_string()]),
        "{ev:?}"
    );
}

/// Waits for a `PollState` whose counts are `counts`; returns its payload.
async fn poll_state(c: &mut Client, counts: &[u64]) -> serde_json::Value {
    let want = serde_json::json!(counts);
    let ev = c
        .expect(&format!("PollState with counts {want}"), |e| match e {
            ClientEvent::Rpc {
                plugin, name, json, ..
            } if plugin == "vote" && name == "PollState" => {
                serde_json::from_str::<serde_json::Value>(json).is_ok_and(|v| v["counts"] == want)
            }
            _ => false,
        })
        .await;
    let ClientEvent::Rpc { json, .. } = ev else {
        unreachable!()
    };
    serde_json::from_str(&json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_players_vote_once_each_and_a_late_joiner_gets_the_open_poll() {
    let admin = TestPlayer::new("boss");
    let srv = start(&[admin.fingerprint]);
    let mut boss = admin.join(srv.addr).await;
    let mut alice = join_as("alice", srv.addr).await;
    let mut bob = join_as("bob", srv.addr).await;
    for c in [&mut boss, &mut alice, &mut bob] {
        installed(c).await;
    }
    // The runtime's glue calls the plugin's checked entry point.
    let glue = admin
        .dir
        .path()
        .join("runtime_cache")
        .join(shard_client::glue::GLUE_DIR)
        .join(shard_client::glue::GLUE_FILE);
    let glue = std::fs::read_to_string(glue).unwrap();
    assert!(glue.contains("  // vote\n  VoteInit();\n"), "{glue}");

    // Only admins open polls.
    alice.session.say("/poll Mine? | yes | no").await;
    alice
        .expect("refusal", |e| chat_contains(e, "/poll is for admins only"))
        .await;

    boss.session
        .say("/poll Best bar? | Afterlife | Lizzie's | Coyote Cojo")
        .await;
    for c in [&mut boss, &mut alice, &mut bob] {
        let state = poll_state(c, &[0, 0, 0]).await;
        assert_eq!(state["question"], "Best bar?");
        assert_eq!(
            state["options"],
            serde_json::json!(["Afterlife", "Lizzie's", "Coyote Cojo"])
        );
        c.forget();
    }

    // Each click is the upstream RPC the pushed script sends.
    boss.send_rpc("vote", "Vote", r#"{"option": 1}"#)
        .await
        .unwrap();
    alice
        .send_rpc("vote", "Vote", r#"{"option": 1}"#)
        .await
        .unwrap();
    bob.send_rpc("vote", "Vote", r#"{"option": 0}"#)
        .await
        .unwrap();
    for c in [&mut boss, &mut alice, &mut bob] {
        poll_state(c, &[1, 2, 0]).await;
        c.forget();
    }
    // A second vote changes that player's choice instead of adding one.
    alice
        .send_rpc("vote", "Vote", r#"{"option": 2}"#)
        .await
        .unwrap();
    alice
        .send_rpc("vote", "Vote", r#"{"option": 2}"#)
        .await
        .unwrap();
    for c in [&mut boss, &mut alice, &mut bob] {
        poll_state(c, &[1, 1, 1]).await;
    }
    // An option that does not exist is refused by the plugin.
    bob.send_rpc("vote", "Vote", r#"{"option": 7}"#)
        .await
        .unwrap();
    bob.expect("invalid option", |e| {
        chat_contains(e, "not one of the poll's options")
    })
    .await;

    // A late joiner gets the open poll once its client installed the scripts.
    let mut carol = join_as("carol", srv.addr).await;
    installed(&mut carol).await;
    let state = poll_state(&mut carol, &[1, 1, 1]).await;
    assert_eq!(state["question"], "Best bar?");
    carol
        .send_rpc("vote", "Vote", r#"{"option": 0}"#)
        .await
        .unwrap();
    for c in [&mut boss, &mut carol] {
        poll_state(c, &[2, 1, 1]).await;
    }
    // Names the scripts do not send are refused before anything is sent.
    let err = carol.send_rpc("vote", "Rig", "{}").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("does not declare upstream RPC `Rig`"),
        "{err}"
    );

    // The last reply can arrive before the simulation counts its delivery.
    let deadline = std::time::Instant::now() + shard_e2e::EVENT_TIMEOUT;
    let counts = loop {
        let counts = srv.server.stats().client_rpc.snapshot();
        if counts.delivered >= 7 || std::time::Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(counts.delivered, 7, "{counts:?}");
    assert_eq!(
        counts.not_whitelisted + counts.no_handler + counts.malformed,
        0
    );
    srv.server.shutdown().await;
}
