//! Bundles over a lossy, long link: a real client reaches a real server
//! through the loss and delay relay (`shard_e2e::relay`) and still gets its
//! bundle intact; the relay itself delays and drops what it is told to.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::time::{Duration, Instant};

use shard_client::ClientEvent;
use shard_e2e::relay::{ETHERNET_UDP_PAYLOAD, Relay, RelayOptions};
use shard_e2e::{TestPlayer, TestServer, noise};
use tokio::net::UdpSocket;

/// Generous: a 1 MB bundle over a 40 ms round trip with 3% loss takes about a
/// second; this only stops a broken transfer from hanging the run.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_installs_intact_through_three_percent_loss() {
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\big\\data.xbm", noise(1024 * 1024, 0x10_55e5))
        .build();
    let srv = TestServer::start_with_files(
        &[],
        &[
            (
                "big.py",
                b"__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n",
            ),
            ("big/assets/big.archive", &archive),
        ],
    );
    let expected = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("big")).unwrap();
    let relay = Relay::start(
        srv.addr,
        RelayOptions {
            one_way_delay: Duration::from_millis(20),
            loss_percent: 3.0,
            seed: 7,
            ..RelayOptions::default()
        },
    )
    .await
    .unwrap();

    let player = TestPlayer::new("roamer");
    let mut c = player.join(relay.addr).await;
    let ev = tokio::time::timeout(
        INSTALL_TIMEOUT,
        c.expect("installed", |e| {
            matches!(
                e,
                ClientEvent::BundleInstalled { .. } | ClientEvent::BundleFailed { .. }
            )
        }),
    )
    .await
    .expect("the bundle arrives through the lossy relay");
    let ClientEvent::BundleInstalled { sha256, path, .. } = ev else {
        panic!("the bundle failed: {ev:?}");
    };
    assert_eq!(sha256, expected.sha256_hex());
    let installed = std::fs::read(std::path::Path::new(&path).join("assets/big.archive")).unwrap();
    assert!(installed == archive, "the installed archive differs");
    assert_eq!(
        c.session.bundle_bytes_received(),
        expected.bytes.len() as u64,
        "each byte once: losses are repaired by QUIC, not by asking again"
    );
    let s = relay.stats();
    assert!(
        s.lost() > 0,
        "the relay dropped nothing: {} forwarded",
        s.forwarded()
    );
}

/// The relay sits on loopback, whose MTU is 64 KiB, so the server's path-MTU
/// search may try packets up to `UDP_PAYLOAD_CEILING`; the relay carries
/// what its path MTU allows.
async fn push_through(path_mtu: usize) -> (u64, u64, u64) {
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\big\\data.xbm", noise(2 * 1024 * 1024, 0x3713))
        .build();
    let srv = TestServer::start_with_files(
        &[],
        &[
            (
                "big.py",
                b"__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n",
            ),
            ("big/assets/big.archive", &archive),
        ],
    );
    let expected = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("big")).unwrap();
    let relay = Relay::start(
        srv.addr,
        RelayOptions {
            one_way_delay: Duration::from_millis(2),
            path_mtu,
            ..RelayOptions::default()
        },
    )
    .await
    .unwrap();
    let player = TestPlayer::new("jumbo");
    let mut c = player.join(relay.addr).await;
    let ev = tokio::time::timeout(
        INSTALL_TIMEOUT,
        c.expect("installed", |e| {
            matches!(
                e,
                ClientEvent::BundleInstalled { .. } | ClientEvent::BundleFailed { .. }
            )
        }),
    )
    .await
    .expect("the bundle arrives through the relay");
    let ClientEvent::BundleInstalled { sha256, .. } = ev else {
        panic!("the bundle failed: {ev:?}");
    };
    assert_eq!(sha256, expected.sha256_hex());
    let s = relay.stats();
    (expected.bytes.len() as u64, s.forwarded(), s.too_big())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_wide_route_the_push_uses_packets_larger_than_ethernets() {
    let (bytes, forwarded, too_big) = push_through(64 * 1024).await;
    let ethernet_packets = bytes / ETHERNET_UDP_PAYLOAD as u64;
    assert_eq!(too_big, 0);
    // Both directions together (data and acknowledgements) took fewer
    // datagrams than the data alone needs in Ethernet-sized packets.
    assert!(
        forwarded < ethernet_packets,
        "{forwarded} datagrams for {bytes} bytes; Ethernet-sized packets need {ethernet_packets}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_past_the_links_mtu_is_lost_and_the_bundle_still_arrives() {
    let (bytes, forwarded, too_big) = push_through(ETHERNET_UDP_PAYLOAD).await;
    // The server's search tried larger packets, the link dropped them, and
    // the transfer went on in packets the link carries.
    assert!(too_big > 0, "no probe past {ETHERNET_UDP_PAYLOAD} bytes");
    assert!(
        forwarded > bytes / ETHERNET_UDP_PAYLOAD as u64,
        "{forwarded} datagrams for {bytes} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_drops_datagrams_larger_than_its_path_mtu() {
    let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let relay = Relay::start(
        echo_addr,
        RelayOptions {
            one_way_delay: Duration::from_millis(1),
            ..RelayOptions::default()
        },
    )
    .await
    .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client
        .send_to(&vec![7u8; ETHERNET_UDP_PAYLOAD + 1], relay.addr)
        .await
        .unwrap();
    client
        .send_to(&vec![8u8; ETHERNET_UDP_PAYLOAD], relay.addr)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .expect("the datagram that fits comes back")
        .unwrap();
    assert_eq!(n, ETHERNET_UDP_PAYLOAD);
    assert_eq!(buf[0], 8);
    assert_eq!(relay.stats().too_big(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_delays_each_way_and_drops_about_its_loss_rate() {
    let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    // No loss: a round trip takes twice the one-way delay.
    let delay = Duration::from_millis(30);
    let relay = Relay::start(
        echo_addr,
        RelayOptions {
            one_way_delay: delay,
            ..RelayOptions::default()
        },
    )
    .await
    .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let t = Instant::now();
    client.send_to(b"ping", relay.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .expect("an echo")
        .unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert!(t.elapsed() >= 2 * delay, "round trip {:?}", t.elapsed());
    drop(relay);

    // 20% loss each way: about 36% of round trips fail; count the losses.
    let relay = Relay::start(
        echo_addr,
        RelayOptions {
            one_way_delay: Duration::from_millis(1),
            loss_percent: 20.0,
            seed: 42,
            ..RelayOptions::default()
        },
    )
    .await
    .unwrap();
    for i in 0..500u32 {
        client.send_to(&i.to_be_bytes(), relay.addr).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = relay.stats();
    let offered = s.lost() + s.forwarded();
    let rate = s.lost() as f64 / offered as f64;
    assert!(
        (0.12..0.28).contains(&rate),
        "loss rate {rate} of {offered}"
    );
    assert_eq!(s.overflowed(), 0);
}
