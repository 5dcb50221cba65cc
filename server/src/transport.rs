//! The QUIC transport the server offers every connection: idle timeout,
//! stream counts, the send window that the bundle budget leases, the
//! congestion controller (`congestion` in `server.toml`), and how large a
//! packet the path-MTU search may try.
//!
//! The packet size follows the route to each player, as TCP's segment size
//! follows the interface: over a standard 1500-byte Ethernet or Wi-Fi route
//! the search stops at quinn's 1452 bytes, so a player's link never sees a
//! probe it cannot carry; over a route with a larger MTU (loopback, a LAN
//! with jumbo frames) it may go up to [`UDP_PAYLOAD_CEILING`]. Fewer, larger
//! packets halve the CPU a bundle push costs there (`bundle_push`).
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
    /// For routes with a standard MTU: quinn's path-MTU ceiling (1452).
    standard: Arc<quinn::ServerConfig>,
    /// For routes with a larger MTU: a ceiling of [`UDP_PAYLOAD_CEILING`].
    wide: Arc<quinn::ServerConfig>,
}

impl PeerConfigs {
    /// Both configurations from one base (keys, crypto) and the server's settings.
    pub fn new(base: quinn::ServerConfig, cfg: &ServerConfig) -> Self {
        let mut standard = base.clone();
        standard.transport_config(Arc::new(server_transport(cfg, None)));
        let mut wide = base;
        wide.transport_config(Arc::new(server_transport(cfg, Some(UDP_PAYLOAD_CEILING))));
        Self {
            standard: Arc::new(standard),
            wide: Arc::new(wide),
        }
    }

    /// The configuration for a connection from `peer`.
    pub fn for_peer(&self, peer: SocketAddr) -> Arc<quinn::ServerConfig> {
        if route_mtu(peer).is_some_and(|mtu| mtu > STANDARD_MTU) {
            self.wide.clone()
        } else {
            self.standard.clone()
        }
    }

    /// The configuration the endpoint starts with (before any peer is known).
    pub fn standard(&self) -> Arc<quinn::ServerConfig> {
        self.standard.clone()
    }
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

/// The transport of a connection on a server with `cfg`; `mtu_ceiling` is
/// the largest UDP payload its path-MTU search may try (`None`: quinn's 1452).
pub fn server_transport(cfg: &ServerConfig, mtu_ceiling: Option<u16>) -> quinn::TransportConfig {
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
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(1));
    if let Some(ceiling) = mtu_ceiling {
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(ceiling);
        transport.mtu_discovery_config(Some(mtu));
    }
    match cfg.congestion {
        Congestion::Bbr => {
            let mut bbr = quinn::congestion::BbrConfig::default();
            bbr.initial_window(tuning::BBR_INITIAL_WINDOW);
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
}
