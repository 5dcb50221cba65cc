//! A game server's address as the player gives it: `IP:PORT`, `[IPv6]:PORT`
//! or `HOST:PORT`. A name is resolved when the session connects (on the
//! runtime, never on the game's thread), and the server's key is pinned
//! under the address as given: a server reached by name keeps its pin when
//! its IP changes, and a name pointed at another machine meets the pin.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Longest address accepted: a DNS name (253) plus `:` and a port.
pub const MAX_SERVER_ADDRESS: usize = 253 + 6;

/// A game server's address as given (checked, not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAddress(String);

/// Why a server address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "server address {shown:?}: {reason} (expected IP:PORT, [IPv6]:PORT or HOST:PORT, e.g. play.example.net:7777)"
)]
pub struct AddressError {
    /// The address as given (clipped).
    pub shown: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ServerAddress {
    /// Checks `text`: an IP address with a port (written the standard way,
    /// so one server has one pin), or a host name of letters, digits, `-`
    /// and `.` with a port.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let bad = |reason| AddressError {
            shown: text.chars().take(MAX_SERVER_ADDRESS).collect(),
            reason,
        };
        if let Ok(ip) = text.parse::<SocketAddr>() {
            return Ok(Self(ip.to_string()));
        }
        if text.len() > MAX_SERVER_ADDRESS {
            return Err(bad("too long"));
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(bad("no port"));
        };
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(bad("the port is not a number from 1 to 65535")),
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(bad("the host is neither an IP address nor a DNS name"));
        }
        Ok(Self(format!("{}:{port}", host.to_ascii_lowercase())))
    }

    /// The address as given (normalised): the key its server's pin is kept under.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The addresses to try, in order: the IP as given, or the addresses
    /// the name resolves to, IPv4 first (the server listens on IPv4 by
    /// default, and `localhost` often lists `::1` first), each once, at most
    /// [`MAX_CONNECT_ADDRESSES`](crate::tuning::MAX_CONNECT_ADDRESSES).
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = self.0.parse::<SocketAddr>() {
            return Ok(vec![ip]);
        }
        let all = to_try(tokio::net::lookup_host(self.0.as_str()).await?);
        if all.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} resolves to no address", self.0),
            ));
        }
        Ok(all)
    }
}

/// The order a name's addresses are tried in: IPv4 first, the resolver's
/// order kept within each family, each address once, at most
/// [`MAX_CONNECT_ADDRESSES`](crate::tuning::MAX_CONNECT_ADDRESSES) (read
/// from a bounded prefix of the answer).
fn to_try(resolved: impl Iterator<Item = SocketAddr>) -> Vec<SocketAddr> {
    let mut all: Vec<SocketAddr> = Vec::new();
    for addr in resolved.take(8 * crate::tuning::MAX_CONNECT_ADDRESSES) {
        if !all.contains(&addr) {
            all.push(addr);
        }
    }
    all.sort_by_key(SocketAddr::is_ipv6);
    all.truncate(crate::tuning::MAX_CONNECT_ADDRESSES);
    all
}

impl From<SocketAddr> for ServerAddress {
    fn from(addr: SocketAddr) -> Self {
        Self(addr.to_string())
    }
}

impl FromStr for ServerAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_ips_or_names_with_a_port_written_one_way() {
        for (given, kept) in [
            ("127.0.0.1:7777", "127.0.0.1:7777"),
            ("[::1]:7777", "[::1]:7777"),
            ("[0:0:0:0:0:0:0:1]:7777", "[::1]:7777"),
            ("play.example.net:7777", "play.example.net:7777"),
            ("Play.Example.NET.:7777", "play.example.net:7777"),
            ("localhost:1", "localhost:1"),
            ("a-b.c0:65535", "a-b.c0:65535"),
        ] {
            assert_eq!(
                ServerAddress::parse(given).unwrap().as_str(),
                kept,
                "{given}"
            );
        }
        for bad in [
            "",
            "play.example.net",
            "play.example.net:",
            "play.example.net:0",
            "play.example.net:65536",
            "play.example.net:77x",
            ":7777",
            "-play.example.net:7777",
            "play..example.net:7777",
            "play example.net:7777",
            "play.example.net/x:7777",
            "user@play.example.net:7777",
            "::1:7777",
            "\u{e9}t\u{e9}.example:7777",
        ] {
            assert!(ServerAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}.example:7777", "a".repeat(300));
        let err = ServerAddress::parse(&long).unwrap_err();
        assert_eq!(err.reason, "too long");
        assert!(err.to_string().contains("HOST:PORT"), "{err}");
    }

    #[test]
    fn a_names_addresses_are_tried_ipv4_first_each_once_and_a_bounded_few() {
        let v6 = |n: u16| SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, n], 7777));
        let v4 = |n: u8| SocketAddr::from(([10, 0, 0, n], 7777));
        assert_eq!(
            to_try([v6(1), v4(2), v6(3), v4(1), v4(2)].into_iter()),
            vec![v4(2), v4(1), v6(1), v6(3)]
        );
        // A resolver answering with hundreds gets a few tried.
        let flood = to_try((0..=255u8).map(v4).chain((0..500).map(v6)));
        assert_eq!(flood.len(), crate::tuning::MAX_CONNECT_ADDRESSES);
        assert!(flood.iter().all(SocketAddr::is_ipv4));
    }

    #[tokio::test]
    async fn a_name_resolves_and_an_ip_stays_as_given() {
        let ip = ServerAddress::parse("127.0.0.1:7777").unwrap();
        assert_eq!(
            ip.resolve().await.unwrap(),
            vec!["127.0.0.1:7777".parse().unwrap()]
        );
        let name = ServerAddress::parse("localhost:7777").unwrap();
        let got = name.resolve().await.unwrap();
        assert_eq!(
            got.first(),
            Some(&"127.0.0.1:7777".parse().unwrap()),
            "IPv4 first"
        );
        let once: std::collections::HashSet<_> = got.iter().collect();
        assert_eq!(once.len(), got.len(), "each address once");
        let nowhere = ServerAddress::parse("no-such-host.invalid:7777").unwrap();
        assert!(nowhere.resolve().await.is_err());
    }
}
