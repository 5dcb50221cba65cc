//! Dialing a server: one QUIC connection attempt per address its name
//! resolves to, staggered as in Happy Eyeballs (RFC 8305), so a dead first
//! address (a stale DNS record, an IPv6 route that goes nowhere) costs a
//! quarter of a second instead of the whole wait; and one deadline for all
//! of them, so a mistyped address or a server that is down is said to be
//! unreachable in seconds, with what to check.

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use shard_protocol::identity::{Fingerprint, Identity, IdentityError, SERVER_NAME};
use tokio::task::JoinSet;
use tracing::debug;

use crate::session::client_endpoint;
use crate::tuning::{CONNECT_ATTEMPT_DELAY, CONNECT_TIMEOUT};

/// A connection that won the race, with the endpoint it lives on.
#[derive(Debug)]
pub(crate) struct Dialed {
    /// The QUIC endpoint (one UDP socket) the connection uses.
    pub endpoint: quinn::Endpoint,
    /// The handshaken connection.
    pub conn: quinn::Connection,
    /// The address that answered.
    pub addr: SocketAddr,
    /// The server key it presented (equal to the pin when there is one).
    pub key: Fingerprint,
}

/// Why no address gave a connection.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The TLS configuration could not be built from the player's key.
    Identity(IdentityError),
    /// An address answered with a key other than the pinned one (and none
    /// answered with the pinned key).
    KeyChanged {
        /// The pinned key.
        expected: Fingerprint,
        /// The key presented.
        got: Fingerprint,
    },
    /// Every attempt failed; one line per address saying why.
    Unreachable(String),
}

/// How one attempt failed.
#[derive(Debug)]
enum AttemptError {
    /// The server presented a key other than the pin.
    KeyChanged(Fingerprint, Fingerprint),
    /// Anything else, as a sentence.
    Other(String),
}

/// Connects to the first of `addrs` that completes a handshake under
/// `pin`: the first attempt starts at once, each next one
/// [`CONNECT_ATTEMPT_DELAY`] later or as soon as the one before fails, and
/// all give up at [`CONNECT_TIMEOUT`]. Attempts still running when one wins
/// are dropped, closing their sockets.
pub(crate) async fn dial(
    identity: &Identity,
    pin: Option<Fingerprint>,
    transport: Arc<quinn::TransportConfig>,
    addrs: &[SocketAddr],
) -> Result<Dialed, DialError> {
    // Each attempt gets its own TLS config, so the key each one saw is its
    // own; attempts start in the addresses' order, taking one each.
    let mut configs = Vec::with_capacity(addrs.len());
    for _ in addrs {
        let (mut config, seen) = identity
            .quic_client_config(pin)
            .map_err(DialError::Identity)?;
        config.transport_config(transport.clone());
        configs.push((config, seen));
    }
    let mut configs = configs.into_iter();
    let attempt = move |_: usize, addr: SocketAddr| {
        let taken = configs.next();
        async move {
            let (config, seen) =
                taken.ok_or_else(|| AttemptError::Other("no configuration".into()))?;
            let bind: SocketAddr = if addr.is_ipv6() {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let endpoint = client_endpoint(bind).map_err(|e| AttemptError::Other(e.to_string()))?;
            let result = match endpoint.connect_with(config, addr, SERVER_NAME) {
                Ok(connecting) => connecting.await,
                Err(e) => return Err(AttemptError::Other(e.to_string())),
            };
            match (result, seen.get()) {
                (Ok(conn), Some(key)) => Ok(Dialed {
                    endpoint,
                    conn,
                    addr,
                    key,
                }),
                (Ok(_), None) => Err(AttemptError::Other("the server presented no key".into())),
                (Err(e), got) => match (pin, got) {
                    (Some(expected), Some(got)) if expected != got => {
                        Err(AttemptError::KeyChanged(expected, got))
                    }
                    _ => Err(AttemptError::Other(e.to_string())),
                },
            }
        }
    };
    race(addrs, CONNECT_ATTEMPT_DELAY, CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|failures| {
            if let Some((expected, got)) = failures.iter().find_map(|(_, f)| match f {
                Failure::Failed(AttemptError::KeyChanged(e, g)) => Some((*e, *g)),
                _ => None,
            }) {
                return DialError::KeyChanged { expected, got };
            }
            let lines: Vec<String> = failures
                .iter()
                .map(|(addr, failure)| {
                    let why = match failure {
                        Failure::Failed(AttemptError::Other(why)) => why.clone(),
                        Failure::Failed(AttemptError::KeyChanged(..)) => "key changed".into(),
                        Failure::NoAnswer => format!(
                            "no answer within {} s; is the server running, and is UDP port {} open to you?",
                            CONNECT_TIMEOUT.as_secs(),
                            addr.port()
                        ),
                    };
                    if failures.len() == 1 {
                        why
                    } else {
                        format!("{addr}: {why}")
                    }
                })
                .collect();
            DialError::Unreachable(lines.join("; "))
        })
}

/// How an attempt of [`race`] ended without winning.
#[derive(Debug)]
enum Failure<E> {
    /// It failed with this error.
    Failed(E),
    /// It was still waiting at the deadline (or never started).
    NoAnswer,
}

/// Runs `attempt(i, addrs[i])` for each address, staggered by `delay`
/// (the next starts early when every running one has failed), and returns
/// the first success; else every address with how it failed, in order.
async fn race<T, E, F, Fut>(
    addrs: &[SocketAddr],
    delay: Duration,
    deadline: Duration,
    mut attempt: F,
) -> Result<T, Vec<(SocketAddr, Failure<E>)>>
where
    T: Send + 'static,
    E: Send + 'static,
    F: FnMut(usize, SocketAddr) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let mut outcomes: Vec<Option<E>> = addrs.iter().map(|_| None).collect();
    let mut running = JoinSet::new();
    let mut started = 0;
    let give_up = tokio::time::sleep(deadline);
    tokio::pin!(give_up);
    // Each turn starts the next address: the first at once, then one per
    // failure and one per `delay` without an answer.
    loop {
        if let Some(&addr) = addrs.get(started) {
            debug!(%addr, "connecting");
            let (i, fut) = (started, attempt(started, addr));
            running.spawn(async move { (i, fut.await) });
            started += 1;
        }
        if running.is_empty() {
            break;
        }
        let next_due = started < addrs.len();
        tokio::select! {
            joined = running.join_next() => match joined {
                Some(Ok((_, Ok(won)))) => return Ok(won),
                Some(Ok((i, Err(e)))) => {
                    if let (Some(slot), Some(addr)) = (outcomes.get_mut(i), addrs.get(i)) {
                        debug!(%addr, "connection attempt failed");
                        *slot = Some(e);
                    }
                }
                // A panicked attempt counts as no answer.
                Some(Err(_)) | None => {}
            },
            () = tokio::time::sleep(delay), if next_due => {
                debug!("no answer yet; also trying the next address");
            }
            () = &mut give_up => break,
        }
    }
    Err(addrs
        .iter()
        .zip(outcomes)
        .map(|(addr, e)| (*addr, e.map_or(Failure::NoAnswer, Failure::Failed)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` addresses, the port of each being its place in the list (from 1).
    fn addrs(n: usize) -> Vec<SocketAddr> {
        (1..=n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], u16::try_from(p).unwrap_or(u16::MAX))))
            .collect()
    }

    const DELAY: Duration = Duration::from_millis(250);
    const DEADLINE: Duration = Duration::from_secs(10);

    /// Each address behaves as scripted: answers after a time, fails after
    /// a time, or never answers.
    #[derive(Clone, Copy)]
    enum Behaves {
        Answers(u64),
        Fails(u64),
        Silent,
    }

    async fn run(
        script: &[Behaves],
    ) -> (Result<u16, Vec<(SocketAddr, Failure<String>)>>, Duration) {
        let script = script.to_vec();
        let started = tokio::time::Instant::now();
        let out = race(&addrs(script.len()), DELAY, DEADLINE, move |i, addr| {
            let b = script[i];
            async move {
                match b {
                    Behaves::Answers(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Ok(addr.port())
                    }
                    Behaves::Fails(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Err(format!("refused by {}", addr.port()))
                    }
                    Behaves::Silent => std::future::pending().await,
                }
            }
        })
        .await;
        (out, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_address_that_answers_wins_without_waiting_for_a_silent_one() {
        let (won, took) = run(&[Behaves::Silent, Behaves::Answers(20)]).await;
        assert_eq!(won.ok(), Some(2));
        assert_eq!(took, DELAY + Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_address_starts_the_next_at_once() {
        let (won, took) = run(&[Behaves::Fails(10), Behaves::Answers(20)]).await;
        assert_eq!(won.ok(), Some(2));
        assert_eq!(took, Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_while_another_waits_starts_the_next_at_once() {
        let (won, took) = run(&[Behaves::Silent, Behaves::Fails(10), Behaves::Answers(5)]).await;
        assert_eq!(won.ok(), Some(3));
        assert_eq!(took, DELAY + Duration::from_millis(15));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_address_still_wins_when_it_answers_first() {
        let (won, took) = run(&[Behaves::Answers(300), Behaves::Answers(400)]).await;
        assert_eq!(won.ok(), Some(1));
        assert_eq!(took, Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn one_answering_address_connects_at_once() {
        let (won, took) = run(&[Behaves::Answers(5)]).await;
        assert_eq!(won.ok(), Some(1));
        assert_eq!(took, Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn when_none_answers_each_address_says_why_at_the_deadline() {
        let (out, took) = run(&[Behaves::Fails(10), Behaves::Silent, Behaves::Silent]).await;
        let failures = out.err().unwrap_or_default();
        assert_eq!(took, DEADLINE);
        assert_eq!(failures.len(), 3);
        assert!(matches!(&failures[0].1, Failure::Failed(why) if why == "refused by 1"));
        assert!(matches!(failures[1].1, Failure::NoAnswer));
        assert!(matches!(failures[2].1, Failure::NoAnswer));
    }

    #[tokio::test(start_paused = true)]
    async fn when_all_fail_fast_the_answer_comes_at_once() {
        let (out, took) = run(&[Behaves::Fails(10), Behaves::Fails(10)]).await;
        assert_eq!(out.err().map(|f| f.len()), Some(2));
        assert_eq!(took, Duration::from_millis(20));
    }

    /// A real QUIC server on IPv4 loopback that accepts every connection
    /// and keeps it; returns its address and key.
    fn real_server() -> (SocketAddr, Fingerprint, quinn::Endpoint) {
        real_server_on(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// [`real_server`] bound to `bind`.
    fn real_server_on(bind: SocketAddr) -> (SocketAddr, Fingerprint, quinn::Endpoint) {
        let id = Identity::generate("dial-test-server").unwrap();
        let endpoint = quinn::Endpoint::server(id.quic_server_config().unwrap(), bind)
            .unwrap_or_else(|e| panic!("cannot bind a QUIC server on {bind}: {e}"));
        let addr = endpoint.local_addr().unwrap();
        let accepting = endpoint.clone();
        tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Some(incoming) = accepting.accept().await {
                if let Ok(conn) = incoming.await {
                    kept.push(conn);
                }
            }
        });
        (addr, id.fingerprint, endpoint)
    }

    fn transport() -> Arc<quinn::TransportConfig> {
        Arc::new(quinn::TransportConfig::default())
    }

    #[tokio::test]
    async fn a_silent_first_address_costs_the_stagger_not_the_timeout() {
        let (live, key, _server) = real_server();
        // Bound and never read: datagrams to it vanish, as to a dead host.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = silent.local_addr().unwrap();
        let player = Identity::generate("player").unwrap();
        let started = std::time::Instant::now();
        let dialed = dial(&player, None, transport(), &[dead, live])
            .await
            .unwrap();
        assert_eq!(dialed.addr, live);
        assert_eq!(dialed.key, key);
        assert!(
            started.elapsed() >= CONNECT_ATTEMPT_DELAY,
            "the live address was tried before the silent one had its turn"
        );
        assert!(
            started.elapsed() < CONNECT_TIMEOUT,
            "waited for the silent address to time out"
        );
        assert!(dialed.conn.close_reason().is_none());
    }

    /// A dual-stack name whose IPv4 address is dead and whose IPv6 address
    /// serves: the IPv6 attempt, on an IPv6 socket of its own, wins after
    /// the stagger.
    #[tokio::test]
    async fn a_dead_ipv4_address_gives_way_to_the_ipv6_one() {
        let (live, key, _server) = real_server_on(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)));
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = silent.local_addr().unwrap();
        let player = Identity::generate("player").unwrap();
        let dialed = dial(&player, None, transport(), &[dead, live])
            .await
            .unwrap();
        assert_eq!((dialed.addr, dialed.key), (live, key));
        assert!(dialed.addr.is_ipv6());
        assert!(dialed.endpoint.local_addr().unwrap().is_ipv6());
    }

    #[tokio::test]
    async fn an_address_with_another_key_is_passed_over_for_the_pinned_one() {
        let (impostor, impostor_key, _a) = real_server();
        let (real, real_key, _b) = real_server();
        let player = Identity::generate("player").unwrap();
        let dialed = dial(&player, Some(real_key), transport(), &[impostor, real])
            .await
            .unwrap();
        assert_eq!((dialed.addr, dialed.key), (real, real_key));
        // Alone, the impostor is refused, saying which key it showed.
        match dial(&player, Some(real_key), transport(), &[impostor]).await {
            Err(DialError::KeyChanged { expected, got }) => {
                assert_eq!((expected, got), (real_key, impostor_key));
            }
            other => panic!("expected a changed key, got {other:?}"),
        }
    }
}
