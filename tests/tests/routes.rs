//! Packet sizes follow the route, over real (virtual) Ethernet links that
//! loopback cannot stand in for: the server runs in its own network
//! namespace behind a veth pair, and a player joins it across the link.
//! Over a jumbo-frame link (MTU 9000) the server finds and uses packets far
//! above Ethernet's; over a standard one (MTU 1500) no packet is larger
//! than the link carries, and the bundle still arrives whole.
//!
//! Needs root and network namespaces; where the kernel refuses them, each
//! test says NOT CHECKED and passes.
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

/// What a player received over a link with `mtu`: the average UDP payload
/// of the datagrams that carried the session, or `None` when the kernel
/// refused the link.
async fn average_datagram_over(mtu: u32) -> Option<f64> {
    let link = match NetnsLink::create(mtu) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("NOT CHECKED: cannot make a network namespace here: {e:#}");
            return None;
        }
    };
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
    let bin = workspace_bin("shard-server", "shard-server");
    let mut server = ServerProcess::start_as(
        link.command(&bin),
        dir.path(),
        "admin_http = \"\"\n",
        &format!("{}:0", link.ns_ip),
    )
    .unwrap();
    assert_eq!(server.addr.ip(), link.ns_ip);
    server.wait_for_bundles(1, Duration::from_secs(60)).unwrap();

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
