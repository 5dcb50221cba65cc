//! A loss and delay UDP relay on loopback, to see how QUIC copes with the
//! links players really have (Wi-Fi, mobile) without leaving the machine.
//!
//! Clients send to [`Relay::addr`]; the relay gives each client address its
//! own upstream socket towards the server, so the server sees one distinct
//! address per client. Every datagram, either way, is dropped with the
//! configured probability (a seeded generator per flow and direction, so a
//! run is repeatable packet by packet) or else sent on after the one-way
//! delay: a round trip through the relay takes twice [`RelayOptions::one_way_delay`].
//! Datagrams larger than the path MTU ([`RelayOptions::path_mtu`], Ethernet's
//! by default) are dropped, as a real link drops them, so QUIC's path-MTU
//! search meets the limit a player's link has and not loopback's 64 KB.
//! Queues are bounded ([`RelayOptions::max_queued`], tail drop, like a
//! router's buffer), and so is the number of flows. Stopped on drop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Largest datagram the relay reads (the largest UDP payload).
const MAX_DATAGRAM: usize = 65_535;

/// Largest UDP payload over a 1500-byte Ethernet or Wi-Fi MTU (IPv4).
pub const ETHERNET_UDP_PAYLOAD: usize = 1500 - 28;

/// Most client addresses (flows) one relay serves; datagrams from further
/// addresses are dropped and counted.
pub const MAX_FLOWS: usize = 1024;

/// How the relay treats traffic.
#[derive(Debug, Clone, Copy)]
pub struct RelayOptions {
    /// Delay added to every datagram in each direction (RTT = twice this).
    pub one_way_delay: Duration,
    /// Chance, in percent (0 to 100), that a datagram is dropped, each way.
    pub loss_percent: f64,
    /// Seed of the loss pattern.
    pub seed: u64,
    /// Datagrams waiting in one flow's direction before new ones are dropped.
    pub max_queued: usize,
    /// Largest UDP payload the link carries; larger datagrams are dropped
    /// and counted as [`RelayStats::too_big`].
    pub path_mtu: usize,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            one_way_delay: Duration::from_millis(40),
            loss_percent: 0.0,
            seed: 1,
            max_queued: 16 * 1024,
            path_mtu: ETHERNET_UDP_PAYLOAD,
        }
    }
}

/// What the relay did, summed over flows and directions.
#[derive(Debug, Default)]
pub struct RelayStats {
    forwarded: AtomicU64,
    lost: AtomicU64,
    overflowed: AtomicU64,
    too_big: AtomicU64,
}

impl RelayStats {
    /// Datagrams sent on.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Datagrams dropped on purpose (the configured loss).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Datagrams dropped because a queue or the flow table was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Datagrams dropped for being larger than the path MTU (QUIC's MTU probes).
    pub fn too_big(&self) -> u64 {
        self.too_big.load(Ordering::Relaxed)
    }
}

/// A running relay in front of one server; stopped on drop.
pub struct Relay {
    /// Where clients send (127.0.0.1).
    pub addr: SocketAddr,
    stats: Arc<RelayStats>,
    tasks: JoinSet<()>,
}

impl Relay {
    /// Starts a relay on a free loopback port in front of `server`. Must be
    /// called inside a tokio runtime.
    pub async fn start(server: SocketAddr, opts: RelayOptions) -> std::io::Result<Self> {
        if !(0.0..=100.0).contains(&opts.loss_percent) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("loss_percent {} is outside 0..=100", opts.loss_percent),
            ));
        }
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let stats = Arc::new(RelayStats::default());
        let mut tasks = JoinSet::new();
        tasks.spawn(front_loop(front, server, opts, stats.clone()));
        Ok(Self { addr, stats, tasks })
    }

    /// What the relay did so far.
    pub fn stats(&self) -> &RelayStats {
        &self.stats
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// One direction of one flow: decides loss at arrival, delays the rest.
struct Line {
    rng: StdRng,
    loss: f64,
    delay: Duration,
    path_mtu: usize,
    queue: mpsc::Sender<(Instant, Vec<u8>)>,
    stats: Arc<RelayStats>,
}

impl Line {
    /// Starts the delay line that sends on `sock` to `to`.
    fn start(
        sock: Arc<UdpSocket>,
        to: SocketAddr,
        seed: u64,
        opts: &RelayOptions,
        stats: Arc<RelayStats>,
        tasks: &mut JoinSet<()>,
    ) -> Self {
        let (queue, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(opts.max_queued.max(1));
        let sent = stats.clone();
        tasks.spawn(async move {
            while let Some((due, pkt)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if sock.send_to(&pkt, to).await.is_ok() {
                    sent.forwarded.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Self {
            rng: StdRng::seed_from_u64(seed),
            loss: opts.loss_percent / 100.0,
            delay: opts.one_way_delay,
            path_mtu: opts.path_mtu,
            queue,
            stats,
        }
    }

    /// Drops `pkt` if it exceeds the path MTU or with the loss chance, else
    /// queues it for later.
    fn offer(&mut self, pkt: &[u8]) {
        if pkt.len() > self.path_mtu {
            self.stats.too_big.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.loss > 0.0 && self.rng.r#gen::<f64>() < self.loss {
            self.stats.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self
            .queue
            .try_send((Instant::now() + self.delay, pkt.to_vec()))
            .is_err()
        {
            self.stats.overflowed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Reads what clients send, opens a flow per client address and feeds its
/// upstream line; each flow's upstream socket feeds the line back.
async fn front_loop(
    front: Arc<UdpSocket>,
    server: SocketAddr,
    opts: RelayOptions,
    stats: Arc<RelayStats>,
) {
    let mut tasks = JoinSet::new();
    let mut flows: HashMap<SocketAddr, Line> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let Ok((n, from)) = front.recv_from(&mut buf).await else {
            // Loopback reports a peer's closed port as an error; carry on.
            continue;
        };
        let pkt = buf.get(..n).unwrap_or_default();
        if let Some(line) = flows.get_mut(&from) {
            line.offer(pkt);
            continue;
        }
        if flows.len() >= MAX_FLOWS {
            stats.overflowed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let Ok(up) = UdpSocket::bind("127.0.0.1:0").await else {
            stats.overflowed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let up = Arc::new(up);
        let flow = flows.len() as u64;
        let seed = |dir: u64| opts.seed ^ (flow << 1 | dir).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut upstream = Line::start(
            up.clone(),
            server,
            seed(0),
            &opts,
            stats.clone(),
            &mut tasks,
        );
        let mut downstream = Line::start(
            front.clone(),
            from,
            seed(1),
            &opts,
            stats.clone(),
            &mut tasks,
        );
        tasks.spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                match up.recv_from(&mut buf).await {
                    Ok((n, src)) if src == server => {
                        downstream.offer(buf.get(..n).unwrap_or_default());
                    }
                    Ok(_) | Err(_) => {}
                }
            }
        });
        upstream.offer(pkt);
        flows.insert(from, upstream);
    }
}
