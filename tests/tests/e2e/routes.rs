//! Packet sizes follow the route, over real (virtual) Ethernet links that
//! loopback cannot stand in for: the server runs in its own network
//! namespace behind a veth pair, and a player joins it across the link.
//! Over a jumbo-frame link (MTU 9000) the server finds and uses packets far
//! above Ethernet's; over a standard one (MTU 1500) no packet is larger
//! than the link carries, and the bundle still arrives whole. And a server
//! that is not on the player's machine or network (its address is public)
//! cannot aim the player's mirror downloads at the player's own machine.
//!
//! Needs root and network namespaces; where the kernel refuses them, each
//! test says NOT CHECKED and passes, except in CI (`CI` set), where it fails.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test, with its message"
)]

use std::time::Duration;

use shard_client::ClientEvent;
use shard_e2e::netns::NetnsLink;
use shard_e2e::{ServerProcess, TestPlayer, noise, workspace_bin, write_plugin_files};

/// Bytes of incompressible payload: enough packets that most are full-size.
const PAYLOAD: usize = 2 * 1024 * 1024;

/// A server with the `big` plugin in its own namespace behind a link with
/// `mtu`, configured by `config` (TOML), ready once its bundle is
/// announced; `None` when the kernel refused the link. Keep all three: the
/// link and folder go when dropped.
fn server_across_link(
    mtu: u32,
    config: &str,
) -> Option<(NetnsLink, tempfile::TempDir, ServerProcess)> {
    // CI must check it (`.ci/run` runs as root with iproute2).
    let link = shard_e2e::unless_refused("make a network namespace", NetnsLink::create(mtu))?;
    let bin = workspace_bin("shard-server");
    let (dir, server) = big_server(link.command(&bin), link.ns_ip, config);
    Some((link, dir, server))
}

/// A server with the `big` plugin, started by `command` bound to `ip`,
/// configured by `config` (TOML), ready once its bundle is announced.
fn big_server(
    command: std::process::Command,
    ip: std::net::Ipv4Addr,
    config: &str,
) -> (tempfile::TempDir, ServerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file(
            "base\\big\\interior.streamingsector",
            noise(PAYLOAD, 0x5eed_0f1a_2b3c_4d5e),
        )
        .build();
    write_plugin_files(
        &dir.path().join("plugins"),
        &[
            (
                "big.py",
                b"__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n",
            ),
            ("big/assets/big.archive", &archive),
        ],
    );
    let mut server = ServerProcess::start_as(
        command,
        dir.path(),
        &format!("admin_http = \"\"\n{config}"),
        &format!("{ip}:0"),
    )
    .unwrap();
    assert_eq!(server.addr.ip(), ip);
    server.wait_for_bundles(1, Duration::from_secs(60)).unwrap();
    (dir, server)
}

/// A server name with two addresses, the first dead: the player's client
/// (the real headless binary, its system resolver reading the namespace's
/// own `hosts` file) tries the second a moment later and joins, and pins the
/// key under the name. Before Happy Eyeballs it waited on the first until
/// it gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_whose_first_address_is_dead_joins_through_the_next() {
    let Some(link) = shard_e2e::unless_refused("make a network namespace", NetnsLink::create(1500))
    else {
        return;
    };
    // The server on this side of the link; the player inside the namespace,
    // where nothing listens on its own loopback: the name's second address
    // is the only one that answers.
    let bin = workspace_bin("shard-server");
    let (_dir, server) = big_server(std::process::Command::new(bin), link.host_ip, "");
    let port = server.addr.port();
    link.set_hosts(&format!(
        "127.0.0.1 localhost\n127.0.0.1 shard-twofold.test\n{} shard-twofold.test\n",
        link.host_ip
    ))
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let name = format!("shard-twofold.test:{port}");
    let client = link.command(&workspace_bin("shard-client"));
    let out = shard_e2e::headless_join_via(client, &name, home.path(), &["--do", "wait:1"]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(r#""event":"bundle_installed""#), "{stdout}");
    let pins = std::fs::read_to_string(home.path().join("cache").join("known_servers")).unwrap();
    assert!(
        pins.lines().any(|l| l.starts_with(&format!("{name} "))),
        "{pins}"
    );
}

/// What a player received over a link with `mtu`: the average UDP payload
/// of the datagrams that carried the session, or `None` when the kernel
/// refused the link.
async fn average_datagram_over(mtu: u32) -> Option<f64> {
    let (_link, _dir, server) = server_across_link(mtu, "")?;
    let player = TestPlayer::new("vee");
    let mut c = player.join(server.addr).await;
    c.expect(
        "installed",
        |e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "big"),
    )
    .await;
    let rx = c.session.connection().stats().udp_rx;
    c.session.close().await;
    assert!(
        rx.bytes > PAYLOAD as u64,
        "received {} bytes for a {PAYLOAD}-byte payload",
        rx.bytes
    );
    let avg = rx.bytes as f64 / rx.datagrams.max(1) as f64;
    eprintln!(
        "MTU {mtu}: {} datagrams, {avg:.0} bytes on average",
        rx.datagrams
    );
    Some(avg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_jumbo_frame_link_packets_grow_far_past_ethernets() {
    let Some(avg) = average_datagram_over(9000).await else {
        return;
    };
    // The route carries 8972-byte UDP payloads; the search for them takes
    // a few round trips, so the average sits below but far above 1452.
    assert!(
        avg > 3000.0 && avg <= 8972.0,
        "average datagram {avg:.0} bytes over a 9000-byte MTU"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_standard_ethernet_link_no_packet_exceeds_it() {
    let Some(avg) = average_datagram_over(1500).await else {
        return;
    };
    // Nothing above quinn's Ethernet ceiling (1452), and the search does
    // reach it rather than staying at QUIC's 1200-byte minimum.
    assert!(
        avg > 1200.0 && avg <= 1452.0,
        "average datagram {avg:.0} bytes over a 1500-byte MTU"
    );
}

/// Seen from the player, this server is on the internet (its address is
/// not private), so the mirrors it lists on the player's own machine are
/// refused: the literal `127.0.0.1` when the list arrives, the name
/// `localhost` when the mirror client resolves it. A listener there must see
/// no connection, and the bundle comes over QUIC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_across_the_internet_cannot_aim_its_players_at_their_own_machine() {
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let port = trap.local_addr().unwrap().port();
    let config = format!(
        "asset_mirrors = [\"http://127.0.0.1:{port}/\", \"http://localhost:{port}/\"]\ncheck_mirrors = false\n"
    );
    let Some((_link, _dir, server)) = server_across_link(1500, &config) else {
        return;
    };
    let player = TestPlayer::new("vee");
    let mut c = player.join(server.addr).await;
    let installed = c
        .expect(
            "installed",
            |e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "big"),
        )
        .await;
    assert!(
        matches!(&installed, ClientEvent::BundleInstalled { source, .. } if *source == "server"),
        "{installed:?}"
    );
    let fallback = c
        .seen
        .iter()
        .find_map(|e| match e {
            ClientEvent::MirrorFallback { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_default();
    assert!(
        fallback.contains("localhost") && fallback.contains("closer to the player"),
        "{fallback:?}"
    );
    c.session.close().await;
    assert!(
        trap.accept().is_err(),
        "a mirror on the player's machine was contacted"
    );
}
