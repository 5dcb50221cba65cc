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
    /// The reach of `ip`. An IPv4-mapped IPv6 address counts as its IPv4,
    /// and so does one in the NAT64 prefix `64:ff9b::/96`, which a home
    /// router's NAT64 would forward to that IPv4 on its own network.
    pub fn of(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(a) if a.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] => {
                let [.., hi, lo] = a.segments();
                IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(hi) << 16) | u32::from(lo),
                ))
            }
            other => other,
        };
        match ip.to_canonical() {
            IpAddr::V4(a) if a.is_loopback() || a.is_unspecified() => Self::ThisMachine,
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
                if a.is_unique_local() || a.is_unicast_link_local() || a.is_multicast() =>
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
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            assert_eq!(reach(ip), Reach::ThisMachine, "{ip}");
        }
        for ip in [
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
        ] {
            assert_eq!(reach(ip), Reach::LocalNetwork, "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "203.0.113.7",
            "2001:db8::1",
            "2606:4700::1111",
            "64:ff9b::101:101",
        ] {
            assert_eq!(reach(ip), Reach::Internet, "{ip}");
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
