//! A second host on a real (virtual) Ethernet link: a Linux network
//! namespace joined to this one by a veth pair with a chosen MTU. Tests run
//! a server inside it to see what loopback cannot show, such as packet sizes
//! that follow a route's MTU. Needs root (`CAP_NET_ADMIN`) and `ip` from
//! iproute2; `.ci/run` installs it.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};

/// A namespace and the veth pair that links it to this one; both are removed
/// when it drops.
#[derive(Debug)]
pub struct NetnsLink {
    /// The namespace's name (for `ip netns exec`).
    pub name: String,
    /// This side's end of the pair.
    host_if: String,
    /// This side's address on the link.
    pub host_ip: Ipv4Addr,
    /// The namespace's address on the link.
    pub ns_ip: Ipv4Addr,
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl NetnsLink {
    /// Creates a namespace linked to this one with `mtu` on both ends. The
    /// link gets a /30 from 198.18.0.0/15 (set aside for benchmarks, so it
    /// meets no real network), spread so tests running at once do not
    /// collide. Fails when the kernel or `ip` refuses (not root, no network
    /// namespaces).
    pub fn create(mtu: u32) -> anyhow::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        if n >= 64 {
            bail!("at most 64 links per test process");
        }
        let pid = std::process::id();
        let name = format!("shard-{pid}-{n}");
        let host_if = format!("sh{:x}h{n}", pid & 0xf_ffff);
        let ns_if = format!("sh{:x}n{n}", pid & 0xf_ffff);
        // One of the range's 32768 /30s, picked from the process, the call
        // and the clock, so links made at once by parallel tests differ.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let slot = (pid.wrapping_mul(2_654_435_761) ^ nanos ^ n.wrapping_mul(40_503)) % 32_768;
        let net = [
            198,
            18 + (slot >> 14) as u8,
            ((slot >> 6) & 0xff) as u8,
            ((slot & 0x3f) * 4) as u8,
        ];
        let host_ip = Ipv4Addr::new(net[0], net[1], net[2], net[3] + 1);
        let ns_ip = Ipv4Addr::new(net[0], net[1], net[2], net[3] + 2);
        ip(&["netns", "add", &name])?;
        let link = Self {
            name,
            host_if,
            host_ip,
            ns_ip,
        };
        let mtu = mtu.to_string();
        let (ns, host_if) = (link.name.as_str(), link.host_if.as_str());
        ip(&[
            "link", "add", host_if, "mtu", &mtu, "type", "veth", "peer", "name", &ns_if, "mtu",
            &mtu,
        ])?;
        ip(&["link", "set", &ns_if, "netns", ns])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", host_if])?;
        ip(&["link", "set", host_if, "up"])?;
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", ns, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        in_ns(&["addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if])?;
        in_ns(&["link", "set", &ns_if, "up"])?;
        in_ns(&["link", "set", "lo", "up"])?;
        Ok(link)
    }

    /// Gives the namespace its own `hosts` file: `ip netns exec` mounts
    /// `/etc/netns/<name>/hosts` over `/etc/hosts` for what it runs, so the
    /// system resolver of a program in the namespace reads `text`. Removed
    /// with the link.
    pub fn set_hosts(&self, text: &str) -> anyhow::Result<()> {
        let dir = Path::new("/etc/netns").join(&self.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, text).with_context(|| format!("writing {}", hosts.display()))
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for NetnsLink {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
    }
}
