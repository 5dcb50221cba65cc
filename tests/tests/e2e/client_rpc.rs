//! Client→plugin RPCs that must not reach plugin code: a name the plugin's
//! scripts do not send, a plugin that is not loaded, an oversize, malformed
//! or too deep payload, a name without a handler, and a flood past the rate
//! limit. Each is dropped and counted by cause, and is harmless: the player
//! stays connected and a good RPC still works.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::time::Duration;

use shard_client::ClientEvent;
use shard_e2e::{Client, TestServer, chat_contains, join_as};
use shard_protocol::limits::{MAX_RPC_JSON, MAX_RPC_JSON_DEPTH};
use shard_protocol::{ClientMsg, fn_hash};
use shard_server::client_rpc::ClientRpcCounts;

const ECHO_PY: &str = r#"
__plugin__ = {"name": "echo", "version": "1"}

@game.on_rpc("Ping")
def ping(peer, payload):
    game.send_chat(peer, "pong " + str(payload.get("n")))
"#;

/// Declares two upstream names; the plugin handles only `Ping`.
const ECHO_REDS: &str = r#"
public func EchoPing() -> Void {
  SendServerRpc(n"Ping", "{\"n\":1}");
  SendServerRpc(n"Silent", "{}");
}
"#;

fn start(per_sec: u32) -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.rate_limits.client_rpc_per_sec = per_sec;
        std::fs::write(cfg.plugin_dir.join("echo.py"), ECHO_PY).unwrap();
        std::fs::create_dir_all(cfg.plugin_dir.join("echo/client")).unwrap();
        std::fs::write(cfg.plugin_dir.join("echo/client/echo.reds"), ECHO_REDS).unwrap();
    })
}

async fn echo_id(c: &mut Client) -> u16 {
    match c
        .expect(
            "echo installed",
            |e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "echo"),
        )
        .await
    {
        ClientEvent::BundleInstalled { plugin_id, .. } => plugin_id,
        _ => unreachable!(),
    }
}

fn raw(plugin_id: u16, name: &str, json: impl Into<String>) -> ClientMsg {
    ClientMsg::ClientRpc {
        plugin_id,
        fn_hash: fn_hash(name),
        json: json.into(),
    }
}

/// Waits until the server's counters satisfy `ok` (the simulation counts asynchronously).
async fn counts_until(srv: &TestServer, ok: impl Fn(&ClientRpcCounts) -> bool) -> ClientRpcCounts {
    let deadline = tokio::time::Instant::now() + shard_e2e::EVENT_TIMEOUT;
    loop {
        let c = srv.server.stats().client_rpc.snapshot();
        if ok(&c) {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "counters stuck at {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_client_rpc_is_dropped_counted_and_harmless() {
    let srv = start(1000);
    let mut c = join_as("mallory", srv.addr).await;
    let id = echo_id(&mut c).await;

    let deep = format!(
        "{}1{}",
        r#"{"a":"#.repeat(MAX_RPC_JSON_DEPTH + 1),
        "}".repeat(MAX_RPC_JSON_DEPTH + 1)
    );
    let oversize = format!(r#"{{"n":"{}"}}"#, "x".repeat(MAX_RPC_JSON));
    for msg in [
        raw(id, "Cheat", "{}"),       // not on the upstream whitelist
        raw(id + 40, "Ping", "{}"),   // no such plugin
        raw(0, "Ping", "{}"),         // the builtin plugin takes no client RPCs
        raw(id, "Ping", oversize),    // over MAX_RPC_JSON
        raw(id, "Ping", "{\"n\": 1"), // not JSON
        raw(id, "Ping", "[1, 2]"),    // JSON, not an object
        raw(id, "Ping", deep),        // too deep
        raw(id, "Silent", "{}"),      // whitelisted, no handler
    ] {
        assert!(c.session.send(msg).await);
    }
    let counts = counts_until(&srv, |k| k.no_handler == 1).await;
    assert_eq!(
        counts,
        ClientRpcCounts {
            delivered: 0,
            rate_limited: 0,
            unknown_plugin: 2,
            not_whitelisted: 1,
            oversize: 1,
            too_deep: 1,
            malformed: 2,
            no_handler: 1,
        }
    );
    // Nothing reached the handler, and the player is still there: a good
    // RPC is delivered and answered.
    assert!(
        !c.seen.iter().any(|e| chat_contains(e, "pong")),
        "{:?}",
        c.seen
    );
    c.send_rpc("echo", "Ping", r#"{"n": 42}"#).await.unwrap();
    c.expect("pong 42", |e| chat_contains(e, "pong 42")).await;
    assert!(
        !c.seen.iter().any(|e| matches!(
            e,
            ClientEvent::Disconnected { .. } | ClientEvent::Kick { .. }
        )),
        "{:?}",
        c.seen
    );
    // The handler's reply can arrive before the simulation counts the delivery.
    counts_until(&srv, |k| k.delivered == 1).await;
    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_rate_limit_is_dropped_per_player() {
    let srv = start(3);
    let mut flooder = join_as("flooder", srv.addr).await;
    let mut other = join_as("other", srv.addr).await;
    let id = echo_id(&mut flooder).await;
    echo_id(&mut other).await;

    for n in 0..20 {
        flooder
            .send_rpc("echo", "Ping", &format!(r#"{{"n": {n}}}"#))
            .await
            .unwrap();
    }
    let counts = counts_until(&srv, |k| k.delivered + k.rate_limited == 20).await;
    // A burst of three (plus what refilled while they arrived) got through.
    assert!((3..=5).contains(&counts.delivered), "{counts:?}");
    assert!(counts.rate_limited >= 15, "{counts:?}");
    // Another player's budget is their own, and the flooder stays connected.
    other
        .send_rpc("echo", "Ping", r#"{"n": "other"}"#)
        .await
        .unwrap();
    other
        .expect("pong other", |e| chat_contains(e, "pong other"))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        flooder
            .session
            .send(raw(id, "Ping", r#"{"n": "later"}"#))
            .await
    );
    flooder
        .expect("pong later", |e| chat_contains(e, "pong later"))
        .await;
    srv.server.shutdown().await;
}
