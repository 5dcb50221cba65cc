//! How far from the player an address is, and the rule that keeps asset
//! mirrors at least as far away as the game server.
//!
//! The mirror list comes from the game server, and it is the one way a
//! server can make its players' clients send HTTP requests. Without this
//! rule a server on the internet could aim those requests at each player's
//! own machine (`http://127.0.0.1:8080/`) or home network (a router's admin
//! page). So a mirror may be no closer to the player than the server is:
//! a server on the internet gets mirrors on the internet, one on the
//! player's network also gets that network, and one on the player's own
//! machine (a modder testing locally) gets anything. The rule is checked for
//! address literals when the list arrives and for host names at every
//! connection, by the resolver the mirror client uses ([`FarEnough`]), so a
//! name that resolves (or is rebound) to a nearby address is refused too.

use std::net::{IpAddr, SocketAddr};

/// How far an address is from the player, nearest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// The player's own machine: loopback, or unspecified (which connects here).
    ThisMachine,
    /// A private network: RFC 1918, carrier-grade NAT and VPN ranges
    /// (100.64.0.0/10), link-local, IPv6 unique-local, multicast and broadcast
    /// (also behind the NAT64 prefix).
    LocalNetwork,
    /// Anywhere else.
    Internet,
}

impl Reach {
    /// The reach of `ip`. An IPv6 address that carries an IPv4 one
    /// (IPv4-mapped or -compatible, NAT64, 6to4, Teredo) counts as that
    /// IPv4, since a tunnel or translator delivers it there.
    pub fn of(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(a) => carried_ipv4(a).map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        match ip {
            // 0.0.0.0/8 is "this network": Linux may connect it here.
            IpAddr::V4(a) if a.is_loopback() || a.octets()[0] == 0 => Self::ThisMachine,
            IpAddr::V4(a)
                if a.is_private()
                    || a.is_link_local()
                    || a.is_broadcast()
                    || a.is_multicast()
                    // 100.64.0.0/10: carrier-grade NAT, and VPNs such as Tailscale.
                    || (a.octets()[0] == 100 && a.octets()[1] & 0xc0 == 64) =>
            {
                Self::LocalNetwork
            }
            IpAddr::V6(a) if a.is_loopback() || a.is_unspecified() => Self::ThisMachine,
            IpAddr::V6(a)
                if a.is_unique_local()
                    || a.is_unicast_link_local()
                    || a.is_multicast()
                    // fec0::/10, site-local: deprecated, still private where used.
                    || a.segments()[0] & 0xffc0 == 0xfec0 =>
            {
                Self::LocalNetwork
            }
            _ => Self::Internet,
        }
    }

    /// What a player reads: where the address is.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ThisMachine => "the player's own machine",
            Self::LocalNetwork => "a private network",
            Self::Internet => "the internet",
        }
    }
}

/// The IPv4 address an IPv6 address carries, where something on the way
/// would deliver it to that IPv4: IPv4-mapped (`::ffff:a.b.c.d`) and
/// IPv4-compatible (`::a.b.c.d`, not `::` or `::1`) addresses, the NAT64
/// prefix `64:ff9b::/96` (a home router's NAT64 forwards to that IPv4 on its
/// own network), 6to4 (`2002:AABB:CCDD::/48`) and Teredo (`2001:0::/32`,
/// whose client address is the last 32 bits inverted).
fn carried_ipv4(a: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = a.segments();
    let v4 = |hi: u16, lo: u16| std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(v4(hi, lo)),
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        [0x2001, 0, .., hi, lo] => Some(v4(!hi, !lo)),
        _ => None,
    }
}

/// Whether a client of a game server with reach `server` may fetch from a
/// mirror address with reach `mirror`: no closer to the player than the server.
pub fn mirror_allowed(server: Reach, mirror: Reach) -> bool {
    mirror >= server
}

/// The mirror client's resolver: the system's, keeping only the addresses
/// [`mirror_allowed`] allows for a server of reach `floor`.
#[derive(Debug, Clone, Copy)]
pub struct FarEnough {
    /// The game server's reach.
    pub floor: Reach,
}

/// A host name resolved only to addresses closer to the player than the
/// game server (see the module documentation).
#[derive(Debug, thiserror::Error)]
#[error(
    "mirror host `{host}` resolves only to addresses on {} ({addrs}), closer to the player than the game server; a mirror may not be",
    .nearest.describe()
)]
pub struct TooClose {
    /// The name looked up.
    pub host: String,
    /// The nearest reach among its addresses.
    pub nearest: Reach,
    /// Its addresses.
    pub addrs: String,
}

impl reqwest::dns::Resolve for FarEnough {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let floor = self.floor;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| mirror_allowed(floor, Reach::of(a.ip())))
                .collect();
            if kept.is_empty() && !all.is_empty() {
                let nearest = all
                    .iter()
                    .map(|a| Reach::of(a.ip()))
                    .min()
                    .unwrap_or(Reach::ThisMachine);
                let addrs = all
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Box::new(TooClose {
                    host,
                    nearest,
                    addrs,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    fn reach(ip: &str) -> Reach {
        Reach::of(ip.parse().unwrap())
    }

    #[test]
    fn addresses_are_placed_by_how_near_the_player_they_are() {
        let table: [(Reach, &[&str]); 3] = [
            (
                Reach::ThisMachine,
                &[
                    "127.0.0.1",
                    "127.8.9.10",
                    "0.0.0.0",
                    "::1",
                    "::",
                    "::ffff:127.0.0.1",
                    "64:ff9b::7f00:1",
                    "0.1.2.3",
                    "::127.0.0.1",
                    "2002:7f00:1::",
                    "2002:7f00:1:5::99",
                    // Teredo: server 65.54.227.120, client 127.0.0.1 (inverted).
                    "2001:0:4136:e378:8000:63bf:80ff:fffe",
                ],
            ),
            (
                Reach::LocalNetwork,
                &[
                    "10.0.0.1",
                    "172.16.5.4",
                    "192.168.1.1",
                    "169.254.10.10",
                    "100.64.0.1",
                    "100.127.255.254",
                    "255.255.255.255",
                    "224.0.0.1",
                    "fd12:3456::1",
                    "fe80::1",
                    "ff02::1",
                    "::ffff:192.168.0.1",
                    "64:ff9b::c0a8:101",
                    "fec0::1",
                    "2002:c0a8:101::1",
                    "2001:0:4136:e378:8000:63bf:3f57:fefe",
                ],
            ),
            (
                Reach::Internet,
                &[
                    "1.1.1.1",
                    "100.128.0.1",
                    "172.32.0.1",
                    "203.0.113.7",
                    "2001:db8::1",
                    "2606:4700::1111",
                    "64:ff9b::101:101",
                    "2002:101:101::1",
                    "2001:0:4136:e378:8000:63bf:fefe:fefe",
                ],
            ),
        ];
        for (expected, ips) in table {
            for ip in ips {
                assert_eq!(reach(ip), expected, "{ip}");
            }
        }
    }

    #[test]
    fn a_mirror_may_be_no_nearer_the_player_than_the_server() {
        use Reach::*;
        assert!(mirror_allowed(Internet, Internet));
        assert!(!mirror_allowed(Internet, LocalNetwork));
        assert!(!mirror_allowed(Internet, ThisMachine));
        assert!(mirror_allowed(LocalNetwork, Internet));
        assert!(mirror_allowed(LocalNetwork, LocalNetwork));
        assert!(!mirror_allowed(LocalNetwork, ThisMachine));
        for m in [Internet, LocalNetwork, ThisMachine] {
            assert!(mirror_allowed(ThisMachine, m));
        }
    }

    /// The real system resolver: `localhost` is this machine, so a server on
    /// the internet gets an error naming it, and one on this machine gets it.
    #[tokio::test]
    async fn a_name_for_this_machine_resolves_only_for_a_server_on_it() {
        let far = FarEnough {
            floor: Reach::Internet,
        };
        let err = far
            .resolve("localhost".parse().unwrap_or_else(|_| unreachable!()))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`localhost`"), "{err}");
        assert!(err.contains("the player's own machine"), "{err}");
        let near = FarEnough {
            floor: Reach::ThisMachine,
        };
        let got: Vec<SocketAddr> = near
            .resolve("localhost".parse().unwrap_or_else(|_| unreachable!()))
            .await
            .map(Iterator::collect)
            .unwrap_or_default();
        assert!(got.iter().any(|a| a.ip().is_loopback()), "{got:?}");
    }
}
