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

/// What one push through the relay left behind.
struct Pushed {
    /// The bundle's packed length.
    packed_len: u64,
    /// Bundle bytes the client took off its streams.
    received: u64,
    /// The archive the plugin ships, and the one the client installed.
    archive: Vec<u8>,
    installed_archive: Vec<u8>,
    /// The relay's counts, both directions together.
    forwarded: u64,
    lost: u64,
    too_big: u64,
}

/// One client installs a plugin carrying an archive of `archive_len` noise
/// bytes from a real server through a relay with `opts`. The relay is on
/// loopback, whose MTU is 64 KiB, so the server's path-MTU search may try
/// packets up to `UDP_PAYLOAD_CEILING`; the relay carries what its own path
/// MTU allows.
async fn push_through(opts: RelayOptions, archive_len: usize) -> Pushed {
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\big\\data.xbm", noise(archive_len, 0x10_55e5))
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
    let relay = Relay::start(srv.addr, opts).await.unwrap();
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
    .expect("the bundle arrives through the relay");
    let ClientEvent::BundleInstalled { sha256, path, .. } = ev else {
        panic!("the bundle failed: {ev:?}");
    };
    assert_eq!(sha256, expected.sha256_hex());
    let installed_archive =
        std::fs::read(std::path::Path::new(&path).join("assets/big.archive")).unwrap();
    let s = relay.stats();
    Pushed {
        packed_len: expected.bytes.len() as u64,
        received: c.session.bundle_bytes_received(),
        archive,
        installed_archive,
        forwarded: s.forwarded(),
        lost: s.lost(),
        too_big: s.too_big(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_installs_intact_through_three_percent_loss() {
    let opts = RelayOptions {
        one_way_delay: Duration::from_millis(20),
        loss_percent: 3.0,
        seed: 7,
        ..RelayOptions::default()
    };
    let p = push_through(opts, 1024 * 1024).await;
    assert!(
        p.installed_archive == p.archive,
        "the installed archive differs"
    );
    assert_eq!(
        p.received, p.packed_len,
        "each byte once: losses are repaired by QUIC, not by asking again"
    );
    assert!(
        p.lost > 0,
        "the relay dropped nothing: {} forwarded",
        p.forwarded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_wide_route_the_push_uses_packets_larger_than_ethernets() {
    let opts = RelayOptions {
        one_way_delay: Duration::from_millis(2),
        path_mtu: 64 * 1024,
        ..RelayOptions::default()
    };
    let p = push_through(opts, 2 * 1024 * 1024).await;
    let ethernet_packets = p.packed_len / ETHERNET_UDP_PAYLOAD as u64;
    assert_eq!(p.too_big, 0);
    // Both directions together (data and acknowledgements) took fewer
    // datagrams than the data alone needs in Ethernet-sized packets.
    assert!(
        p.forwarded < ethernet_packets,
        "{} datagrams for {} bytes; Ethernet-sized packets need {ethernet_packets}",
        p.forwarded,
        p.packed_len
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_past_the_links_mtu_is_lost_and_the_bundle_still_arrives() {
    let opts = RelayOptions {
        one_way_delay: Duration::from_millis(2),
        ..RelayOptions::default()
    };
    let p = push_through(opts, 2 * 1024 * 1024).await;
    // The server's search tried larger packets, the link dropped them, and
    // the transfer went on in packets the link carries.
    assert!(p.too_big > 0, "no probe past {ETHERNET_UDP_PAYLOAD} bytes");
    assert!(
        p.installed_archive == p.archive,
        "the installed archive differs"
    );
    assert!(
        p.forwarded > p.packed_len / ETHERNET_UDP_PAYLOAD as u64,
        "{} datagrams for {} bytes",
        p.forwarded,
        p.packed_len
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
