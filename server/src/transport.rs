//! The QUIC transport the server offers every connection: idle timeout,
//! stream counts, the send window that the bundle budget leases, the
//! congestion controller (`congestion` in `server.toml`), and how large a
//! packet the path-MTU search may try.
//!
//! The packet size follows the route to each player, as TCP's segment size
//! follows the interface. Over a standard 1500-byte Ethernet or Wi-Fi route
//! quinn's path-MTU search climbs from 1200 to at most 1452 bytes, so a
//! player's link never sees a probe it cannot carry. Over a route with a
//! larger MTU (a LAN with jumbo frames, a cloud network) the search may climb
//! to what that route carries, up to [`UDP_PAYLOAD_CEILING`]; a hop further
//! on that carries less only fails probes. To a player on the same host
//! (loopback) the server sends one probe of the ceiling's size instead of a
//! search: each search probe is a packet of padding the player decrypts and
//! parses byte by byte, 3–6% of a 5 MB bundle. If that probe is lost (a
//! local tunnel or proxy that forwards to a smaller path), packets stay at
//! 1200 bytes, and since quinn counts the probe in flight until it is lost,
//! such a peer's initial window has room for it besides data. Packets
//! always start at 1200 bytes, so a handshake never depends on the path
//! carrying more. Larger packets cut the CPU a bundle push costs
//! (`bundle_push`).
//!
//! Every send goes through [`BoundedSends`], which keeps a batch of large
//! packets within what the kernel takes in one send.
//!
//! Bundles reach players over Wi-Fi and mobile links, where packets are lost
//! at random with no congestion behind the loss. A loss-based controller
//! (Cubic, quinn's default, or NewReno) halves its window at every such loss,
//! and a 5 MB bundle over an 80 ms round trip with 1% loss takes tens of
//! seconds. BBR instead paces at the bottleneck rate and round trip it
//! measures and does not read a random loss as congestion, so it is the default.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use serde::Deserialize;
use shard_protocol::limits::{BUNDLE_SEND_WINDOW, UDP_PAYLOAD_CEILING};

use crate::config::ServerConfig;
use crate::tuning;

/// The congestion controller of every connection (`congestion` in `server.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Congestion {
    /// BBR: model-based, keeps its rate through random loss (the default).
    #[default]
    Bbr,
    /// Cubic: loss-based (quinn's own default); slows to a crawl on lossy links.
    Cubic,
    /// NewReno: the classic loss-based controller, for comparison.
    NewReno,
}

/// The QUIC server configurations a connection can get, chosen per peer by
/// the MTU of the route to it (see the module documentation).
#[derive(Clone)]
pub struct PeerConfigs {
    /// Keys and crypto every configuration shares.
    base: quinn::ServerConfig,
    /// The server's settings the transport follows.
    cfg: ServerConfig,
    /// For routes with a standard MTU: quinn's path-MTU ceiling (1452).
    standard: Arc<quinn::ServerConfig>,
}

impl PeerConfigs {
    /// The configurations from one base (keys, crypto) and the server's settings.
    pub fn new(base: quinn::ServerConfig, cfg: &ServerConfig) -> Self {
        let mut standard = base.clone();
        standard.transport_config(Arc::new(server_transport(cfg, None)));
        Self {
            base,
            cfg: cfg.clone(),
            standard: Arc::new(standard),
        }
    }

    /// The configuration for a connection from `peer`: over a route with a
    /// larger MTU than Ethernet's, packets up to what that route carries.
    pub fn for_peer(&self, peer: SocketAddr) -> Arc<quinn::ServerConfig> {
        let Some(payload) = route_mtu(peer).and_then(|mtu| wide_payload(mtu, peer.is_ipv6()))
        else {
            return self.standard.clone();
        };
        let route = WideRoute {
            payload,
            one_probe: peer.ip().to_canonical().is_loopback(),
        };
        let mut wide = self.base.clone();
        wide.transport_config(Arc::new(server_transport(&self.cfg, Some(route))));
        Arc::new(wide)
    }

    /// The configuration the endpoint starts with (before any peer is known).
    pub fn standard(&self) -> Arc<quinn::ServerConfig> {
        self.standard.clone()
    }
}

/// How a connection over a route with an MTU above Ethernet's finds its
/// packet size (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WideRoute {
    /// The largest UDP payload the route carries, at most [`UDP_PAYLOAD_CEILING`].
    pub payload: u16,
    /// Try `payload` in one probe and keep 1200 bytes if it is lost, instead
    /// of a binary search (for peers on this host).
    pub one_probe: bool,
}

/// The smallest UDP payload QUIC allows, where every connection starts.
const QUIC_MIN_PAYLOAD: u16 = 1200;

/// The UDP payload a packet may have over a route with `mtu` (IP and UDP
/// headers off, at most [`UDP_PAYLOAD_CEILING`]), or `None` for a route no
/// larger than Ethernet's, which keeps quinn's own search.
fn wide_payload(mtu: u32, ipv6: bool) -> Option<u16> {
    if mtu <= STANDARD_MTU {
        return None;
    }
    let headers = if ipv6 { 40 + 8 } else { 20 + 8 };
    let payload = mtu
        .saturating_sub(headers)
        .min(u32::from(UDP_PAYLOAD_CEILING));
    u16::try_from(payload).ok()
}

/// The MTU of Ethernet and Wi-Fi: routes at or below it keep quinn's ceiling.
const STANDARD_MTU: u32 = 1500;

/// The MTU of the route the kernel would use to reach `peer` (what TCP
/// derives its segment size from), or `None` when it cannot tell. Asks a
/// throwaway connected UDP socket; nothing is sent.
fn route_mtu(peer: SocketAddr) -> Option<u32> {
    let bind: SocketAddr = if peer.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let probe = std::net::UdpSocket::bind(bind).ok()?;
    probe.connect(peer).ok()?;
    let (level, name) = if peer.is_ipv6() {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU)
    };
    let mut mtu: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).ok()?;
    // SAFETY: `probe` is an open socket for the whole call, and `mtu` and
    // `len` are live locals whose sizes `len` states truthfully.
    let rc = unsafe {
        libc::getsockopt(
            probe.as_raw_fd(),
            level,
            name,
            (&raw mut mtu).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    u32::try_from(mtu).ok()
}

/// The transport of a connection on a server with `cfg`; `wide` is set for
/// a route with a larger MTU than Ethernet's (`None`: quinn's search from
/// 1200 up to 1452).
pub fn server_transport(cfg: &ServerConfig, wide: Option<WideRoute>) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    let idle_ms = u32::try_from(cfg.idle_timeout_secs.saturating_mul(1000)).unwrap_or(u32::MAX);
    transport
        .max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(
            idle_ms,
        ))))
        // The most a connection may have sent and not yet had acknowledged:
        // the unit of the server-wide bundle budget, and at least the
        // bandwidth-delay product of a player's link (see `BUNDLE_SEND_WINDOW`).
        .send_window(BUNDLE_SEND_WINDOW)
        .datagram_receive_buffer_size(Some(tuning::DATAGRAM_BUFFER))
        .datagram_send_buffer_size(tuning::DATAGRAM_BUFFER)
        // A transfer's lease of the bundle budget is freed when its last
        // packet is acknowledged; a player's ACK of a lone last packet would
        // otherwise wait out quinn's 25 ms ACK delay (see `tuning::PEER_ACK_DELAY`).
        .ack_frequency_config(Some({
            let mut ack = quinn::AckFrequencyConfig::default();
            ack.max_ack_delay(Some(tuning::PEER_ACK_DELAY))
                // Acknowledge any packet that arrives out of order at once,
                // as RFC 9000 receivers do (the extension's default waits for 2).
                .reordering_threshold(quinn::VarInt::from_u32(1));
            ack
        }))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(1));
    if let Some(route) = wide {
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(route.payload);
        if route.one_probe {
            // quinn stops searching when its next step would be smaller than
            // this, but first probes the upper bound if that step is not: so
            // it probes `payload` alone (retried if lost) and stops there.
            mtu.minimum_change(route.payload.saturating_sub(QUIC_MIN_PAYLOAD).max(1));
        }
        transport.mtu_discovery_config(Some(mtu));
    }
    match cfg.congestion {
        Congestion::Bbr => {
            let mut bbr = quinn::congestion::BbrConfig::default();
            bbr.initial_window(initial_window(wide));
            transport.congestion_controller_factory(Arc::new(bbr))
        }
        // The loss-based ones keep quinn's defaults: they are there to compare with.
        Congestion::Cubic => transport
            .congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default())),
        Congestion::NewReno => transport
            .congestion_controller_factory(Arc::new(quinn::congestion::NewRenoConfig::default())),
    };
    transport
}

/// BBR's initial window for a connection: [`tuning::BBR_INITIAL_WINDOW`],
/// plus room for the one large probe a peer on this host gets. quinn sends
/// that probe whenever the connection has nothing else it may send, and
/// counts it in flight until it is acknowledged or lost; without the room, a
/// peer behind a local tunnel to a smaller path (where the probe is lost,
/// three times) would have its first round trips' window taken by padding.
fn initial_window(wide: Option<WideRoute>) -> u64 {
    match wide {
        Some(route) if route.one_probe => tuning::BBR_INITIAL_WINDOW + u64::from(route.payload),
        _ => tuning::BBR_INITIAL_WINDOW,
    }
}

/// The server's QUIC endpoint on `bind`: its socket from [`bind_socket`],
/// every send through [`BoundedSends`], and `configs` for who connects.
pub fn server_endpoint(
    bind: SocketAddr,
    configs: &PeerConfigs,
) -> std::io::Result<quinn::Endpoint> {
    let socket = bind_socket(bind)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no tokio runtime to run the QUIC endpoint on"))?;
    let socket = BoundedSends::wrap(runtime.wrap_udp_socket(socket)?);
    quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        Some((*configs.standard()).clone()),
        socket,
        runtime,
    )
}

/// Binds the server's UDP socket and asks the kernel for a receive buffer
/// of [`tuning::UDP_RECV_BUFFER`]. Every player's packets land in this one
/// socket: when a popular server restarts and everyone rejoins at once, the
/// system default (about 208 KiB on Linux) overflows, and each handshake
/// packet it drops costs that player a second (QUIC's first retransmission
/// timer). The kernel caps the request at `net.core.rmem_max`; a capped
/// buffer is logged with what to raise.
pub fn bind_socket(bind: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(bind)?;
    let sock = socket2::SockRef::from(&socket);
    if let Err(e) = sock.set_recv_buffer_size(tuning::UDP_RECV_BUFFER) {
        tracing::warn!(error = %e, "cannot enlarge the UDP receive buffer; keeping the system's");
    }
    let granted = effective_recv_buffer(&socket);
    if granted < tuning::UDP_RECV_BUFFER {
        tracing::warn!(
            asked = tuning::UDP_RECV_BUFFER,
            granted,
            "the kernel capped the UDP receive buffer: a burst of joins may lose handshake \
             packets (a second's wait each); raise net.core.rmem_max to at least {} (sysctl)",
            tuning::UDP_RECV_BUFFER
        );
    } else {
        tracing::debug!(granted, "UDP receive buffer");
    }
    Ok(socket)
}

/// The receive buffer a socket really has, in bytes (Linux reports twice
/// what it grants, the rest being its own bookkeeping).
pub fn effective_recv_buffer(socket: &std::net::UdpSocket) -> usize {
    let reported = socket2::SockRef::from(socket)
        .recv_buffer_size()
        .unwrap_or(0);
    if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    }
}

/// The most UDP payload one send may carry: an IPv4 datagram's 65,535
/// bytes less its IP (20) and UDP (8) headers. A GSO batch is one send, and
/// the kernel refuses a larger one whole (`EMSGSIZE`).
const MAX_UDP_SEND: usize = 65_535 - 20 - 8;

/// The server's UDP socket as quinn sees it, with every send held to
/// `MAX_UDP_SEND`. quinn batches up to 10 packets of a connection into one
/// segmentation-offload (GSO) send; with the packets of a route with a large
/// MTU (loopback, a jumbo-frame LAN: up to 64 KiB here) such a batch is up
/// to 640 KiB, the kernel refuses it whole, and all its packets are lost:
/// losses that cost the sender its window and can make quinn's black-hole
/// detection fall back to 1200-byte packets. Here a batch too large for one
/// send goes out as several, each a whole number of packets; batches of
/// standard-size packets (10 × 1452) are passed through untouched.
#[derive(Debug)]
pub struct BoundedSends {
    inner: Arc<dyn quinn::AsyncUdpSocket>,
}

impl BoundedSends {
    /// Wraps the socket quinn's runtime made of the server's UDP socket.
    pub fn wrap(inner: Arc<dyn quinn::AsyncUdpSocket>) -> Arc<Self> {
        Arc::new(Self { inner })
    }
}

/// How many bytes of a transmit one send may carry: the whole transmit when
/// it fits, else as many whole `segment`-byte packets as fit (at least one).
fn send_piece_len(total: usize, segment: Option<usize>) -> usize {
    match segment {
        Some(seg) if seg > 0 && total > MAX_UDP_SEND => (MAX_UDP_SEND / seg).max(1) * seg,
        _ => total,
    }
}

impl quinn::AsyncUdpSocket for BoundedSends {
    fn create_io_poller(self: Arc<Self>) -> std::pin::Pin<Box<dyn quinn::UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &quinn::udp::Transmit) -> std::io::Result<()> {
        let piece = send_piece_len(transmit.contents.len(), transmit.segment_size);
        if piece >= transmit.contents.len() {
            return self.inner.try_send(transmit);
        }
        for (i, contents) in transmit.contents.chunks(piece).enumerate() {
            let part = quinn::udp::Transmit {
                contents,
                segment_size: transmit.segment_size.filter(|&seg| contents.len() > seg),
                ..*transmit
            };
            match self.inner.try_send(&part) {
                // Nothing sent yet: quinn waits for the socket and retries it all.
                Err(e) if i == 0 => return Err(e),
                // Some packets left: the rest count as lost and are resent by
                // QUIC's loss recovery (retrying all would resend what went).
                Err(_) => return Ok(()),
                Ok(()) => {}
            }
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut std::task::Context,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [quinn::udp::RecvMeta],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_socket_gets_the_receive_buffer_it_asks_within_the_kernels_cap() {
        let socket = bind_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let granted = effective_recv_buffer(&socket);
        // What the kernel allows an unprivileged request (Linux).
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(tuning::UDP_RECV_BUFFER);
        assert_eq!(granted, tuning::UDP_RECV_BUFFER.min(cap), "rmem_max {cap}");
        // Far above the system default either way on this kind of machine.
        let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(
            granted > effective_recv_buffer(&plain) || cap <= effective_recv_buffer(&plain),
            "granted {granted}"
        );
    }

    #[test]
    fn bbr_is_the_default_and_every_controller_parses() {
        assert_eq!(ServerConfig::default().congestion, Congestion::Bbr);
        for (text, want) in [
            ("bbr", Congestion::Bbr),
            ("cubic", Congestion::Cubic),
            ("newreno", Congestion::NewReno),
        ] {
            let cfg = ServerConfig::parse(&format!("congestion = \"{text}\""), "test").unwrap();
            assert_eq!(cfg.congestion, want);
            // Builds for each.
            let _ = server_transport(&cfg, None);
        }
        let err = ServerConfig::parse("congestion = \"reno\"", "test").unwrap_err();
        assert!(err.to_string().contains("congestion"), "{err}");
    }

    #[test]
    fn the_route_mtu_is_the_interfaces() {
        // Loopback's MTU is 64 KiB on Linux, far above Ethernet's.
        let lo = route_mtu("127.0.0.1:9".parse().unwrap()).expect("loopback has a route");
        assert!(lo > STANDARD_MTU, "loopback MTU {lo}");
        let lo6 = route_mtu("[::1]:9".parse().unwrap());
        assert!(lo6.is_none_or(|m| m > STANDARD_MTU), "::1 MTU {lo6:?}");
    }

    #[test]
    fn a_batch_too_large_for_one_send_is_cut_at_whole_packets() {
        // Standard packets: ten fit in one send and pass untouched.
        assert_eq!(send_piece_len(14_520, Some(1452)), 14_520);
        // Two jumbo-route packets of 30,000 bytes fill a send; ten go out as five sends.
        assert_eq!(send_piece_len(300_000, Some(30_000)), 60_000);
        // The largest packet fills a send alone; ten go out as ten sends.
        let big = usize::from(UDP_PAYLOAD_CEILING);
        assert_eq!(send_piece_len(10 * big, Some(big)), big);
        assert!(big <= MAX_UDP_SEND);
        // A lone packet or a batch that fits is never cut.
        assert_eq!(send_piece_len(big, None), big);
        assert_eq!(send_piece_len(MAX_UDP_SEND, Some(1000)), MAX_UDP_SEND);
        // A segment larger than a send (not one quinn makes) still goes one at a time.
        assert_eq!(send_piece_len(200_000, Some(70_000)), 70_000);
    }

    /// A socket that records each send and refuses the sends listed in `refuse`
    /// (by their index) with `WouldBlock`, as a full kernel buffer does.
    #[derive(Debug, Default)]
    struct Recording {
        sent: std::sync::Mutex<Vec<(usize, Option<usize>)>>,
        calls: std::sync::atomic::AtomicUsize,
        refuse: Vec<usize>,
    }

    #[derive(Debug)]
    struct AlwaysWritable;

    impl quinn::UdpPoller for AlwaysWritable {
        fn poll_writable(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    impl quinn::AsyncUdpSocket for Recording {
        fn create_io_poller(self: Arc<Self>) -> std::pin::Pin<Box<dyn quinn::UdpPoller>> {
            Box::pin(AlwaysWritable)
        }

        fn try_send(&self, transmit: &quinn::udp::Transmit) -> std::io::Result<()> {
            let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.refuse.contains(&call) {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            self.sent
                .lock()
                .unwrap()
                .push((transmit.contents.len(), transmit.segment_size));
            Ok(())
        }

        fn poll_recv(
            &self,
            _cx: &mut std::task::Context,
            _bufs: &mut [std::io::IoSliceMut<'_>],
            _meta: &mut [quinn::udp::RecvMeta],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Pending
        }

        fn local_addr(&self) -> std::io::Result<SocketAddr> {
            Ok("127.0.0.1:1".parse().unwrap())
        }
    }

    /// What `BoundedSends` does with a full socket: refused before anything
    /// went out, the whole batch is refused (quinn waits and retries it);
    /// refused part-way, what went out stays sent and the rest is left to
    /// QUIC's loss recovery (retrying all would send packets twice).
    #[test]
    fn a_full_socket_refuses_a_whole_batch_or_leaves_its_rest_to_loss_recovery() {
        // Packets of a jumbo route, two to a send.
        let seg = 30_000;
        let contents = vec![0u8; 10 * seg];
        let transmit = quinn::udp::Transmit {
            destination: "127.0.0.1:2".parse().unwrap(),
            ecn: None,
            contents: &contents,
            segment_size: Some(seg),
            src_ip: None,
        };
        let sends = |refuse: Vec<usize>| {
            let inner = Arc::new(Recording {
                refuse,
                ..Recording::default()
            });
            let wrapped = BoundedSends::wrap(inner.clone());
            let result = quinn::AsyncUdpSocket::try_send(&*wrapped, &transmit);
            let sent = inner.sent.lock().unwrap().clone();
            (result, sent)
        };
        // Room for everything: five sends of two packets each.
        let (result, sent) = sends(vec![]);
        assert!(result.is_ok());
        assert_eq!(sent, vec![(2 * seg, Some(seg)); 5]);
        // Full at once: nothing sent, and quinn is told to wait.
        let (result, sent) = sends(vec![0]);
        assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
        assert!(sent.is_empty());
        // Full after two sends: those four packets went, the call succeeds,
        // and nothing after the refusal is attempted.
        let (result, sent) = sends(vec![2]);
        assert!(result.is_ok());
        assert_eq!(sent, vec![(2 * seg, Some(seg)); 2]);
        // A batch that fits one send goes through untouched, refusal and all.
        let small = quinn::udp::Transmit {
            contents: &contents[..3 * 1452],
            segment_size: Some(1452),
            ..transmit
        };
        let inner = Arc::new(Recording {
            refuse: vec![0],
            ..Recording::default()
        });
        let wrapped = BoundedSends::wrap(inner.clone());
        assert!(quinn::AsyncUdpSocket::try_send(&*wrapped, &small).is_err());
        assert!(quinn::AsyncUdpSocket::try_send(&*wrapped, &small).is_ok());
        assert_eq!(*inner.sent.lock().unwrap(), vec![(3 * 1452, Some(1452))]);
    }

    #[test]
    fn the_initial_window_has_room_for_the_one_large_probe_besides_data() {
        let base = tuning::BBR_INITIAL_WINDOW;
        assert_eq!(initial_window(None), base);
        let jumbo = WideRoute {
            payload: 8972,
            one_probe: false,
        };
        assert_eq!(
            initial_window(Some(jumbo)),
            base,
            "a jumbo route's probes (at most 8972 bytes) fit the window as it is"
        );
        let local = WideRoute {
            payload: UDP_PAYLOAD_CEILING,
            one_probe: true,
        };
        assert_eq!(
            initial_window(Some(local)),
            base + u64::from(UDP_PAYLOAD_CEILING)
        );
    }

    #[test]
    fn a_route_above_ethernet_gets_packets_as_large_as_it_carries() {
        assert_eq!(wide_payload(1500, false), None);
        assert_eq!(wide_payload(1280, true), None);
        assert_eq!(wide_payload(9000, false), Some(8972));
        assert_eq!(wide_payload(9000, true), Some(8952));
        assert_eq!(wide_payload(65_536, false), Some(UDP_PAYLOAD_CEILING));
    }

    /// Sends `bytes` from the server's real endpoint to a client on loopback,
    /// through a forwarder that drops datagrams over `path_payload` bytes when
    /// given (a local tunnel to a smaller path); returns the server's
    /// connection stats and the client's received UDP stats.
    async fn loopback_transfer(
        bytes: usize,
        path_payload: Option<usize>,
    ) -> (quinn::ConnectionStats, quinn::UdpStats) {
        use shard_protocol::identity::Identity;
        let server_id = Identity::generate("server").unwrap();
        let configs = PeerConfigs::new(
            server_id.quic_server_config().unwrap(),
            &ServerConfig::default(),
        );
        let server = server_endpoint("127.0.0.1:0".parse().unwrap(), &configs).unwrap();
        let mut addr = server.local_addr().unwrap();
        let serving = tokio::spawn(async move {
            let incoming = server.accept().await.expect("a connection");
            let config = configs.for_peer(incoming.remote_address());
            let conn = incoming.accept_with(config).unwrap().await.unwrap();
            let mut send = conn.open_uni().await.unwrap();
            send.write_all(&vec![7u8; bytes]).await.unwrap();
            send.finish().unwrap();
            send.stopped().await.unwrap();
            let stats = conn.stats();
            conn.close(0u32.into(), b"done");
            server.wait_idle().await;
            stats
        });
        if let Some(max) = path_payload {
            addr = forwarder(addr, max).await;
        }

        let client_id = Identity::generate("client").unwrap();
        let (client_cfg, _) = client_id
            .quic_client_config(Some(server_id.fingerprint))
            .unwrap();
        let client =
            shard_client::session::client_endpoint("127.0.0.1:0".parse().unwrap()).unwrap();
        let conn = client
            .connect_with(client_cfg, addr, shard_protocol::identity::SERVER_NAME)
            .unwrap()
            .await
            .unwrap();
        let mut recv = conn.accept_uni().await.unwrap();
        let got = recv.read_to_end(bytes).await.unwrap();
        assert_eq!(got.len(), bytes);
        let received = conn.stats().udp_rx;
        (serving.await.unwrap(), received)
    }

    /// A UDP forwarder on loopback for one client and `server`, dropping
    /// datagrams larger than `max` either way; returns its address.
    async fn forwarder(server: SocketAddr, max: usize) -> SocketAddr {
        let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let back = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        back.connect(server).await.unwrap();
        let addr = front.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut a, mut b) = (vec![0u8; 65_536], vec![0u8; 65_536]);
            let mut client = None;
            loop {
                tokio::select! {
                    r = front.recv_from(&mut a) => {
                        let Ok((n, from)) = r else { return };
                        client = Some(from);
                        if n <= max {
                            let _ = back.send(&a[..n]).await;
                        }
                    }
                    r = back.recv(&mut b) => {
                        let Ok(n) = r else { return };
                        if let (Some(to), true) = (client, n <= max) {
                            let _ = front.send_to(&b[..n], to).await;
                        }
                    }
                }
            }
        });
        addr
    }

    /// A bulk transfer to a client on this host: one probe takes the packets
    /// to the ceiling's size, and none is lost. Without [`BoundedSends`] the
    /// kernel refuses quinn's batches of such packets and the sender counts
    /// them lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_loopback_transfer_gets_the_largest_packets_and_keeps_them() {
        const BYTES: usize = 8 * 1024 * 1024;
        let (sent, received) = loopback_transfer(BYTES, None).await;
        assert_eq!(sent.path.current_mtu, UDP_PAYLOAD_CEILING);
        assert_eq!(sent.path.sent_plpmtud_probes, 1, "one probe, no search");
        // Without BoundedSends most batches are refused: many losses, and
        // black-hole detection drops the packets to 1200 bytes.
        assert_eq!(sent.path.black_holes_detected, 0);
        assert!(
            sent.path.lost_packets * 100 <= sent.path.sent_packets,
            "{} of {} packets lost",
            sent.path.lost_packets,
            sent.path.sent_packets
        );
        // Padding and headers: under 1% over the payload.
        assert!(
            received.bytes < (BYTES as u64) * 101 / 100,
            "{} bytes on the wire for {BYTES}",
            received.bytes
        );
    }

    /// Through a local tunnel to an Ethernet-sized path, the handshake still
    /// completes (packets start at 1200 bytes), the one large probe is lost,
    /// and the transfer goes on at 1200 bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_loopback_peer_behind_a_smaller_path_keeps_1200_byte_packets() {
        const BYTES: usize = 1024 * 1024;
        let (sent, _) = loopback_transfer(BYTES, Some(1472)).await;
        assert_eq!(sent.path.current_mtu, QUIC_MIN_PAYLOAD);
        // One size tried (quinn retries a lost probe), every try lost.
        assert!(sent.path.sent_plpmtud_probes <= 3, "{:?}", sent.path);
        assert_eq!(sent.path.lost_plpmtud_probes, sent.path.sent_plpmtud_probes);
    }
}
