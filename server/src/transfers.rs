//! The bounded bundle service: what one connection may ask for
//! ([`PeerBundles`], kept by the simulation) and the server-wide budget of
//! bundle bytes in flight ([`Flight`], shared by the connection tasks).
//!
//! Per connection, a bundle is sent only if it was announced and the client
//! does not hold it; at most once, plus [`MAX_BUNDLE_RETRIES`] more after the
//! previous transfer ended (a client asks again only when what it got failed
//! to verify); at most [`MAX_CONCURRENT_TRANSFERS`] at a time, the rest wait
//! in line. Anything else is refused with a reason, and more than
//! [`MAX_BUNDLE_REFUSALS`] refusals disconnect the client.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use shard_protocol::limits::{
    BUNDLE_SEND_WINDOW, MAX_BUNDLE_REFUSALS, MAX_BUNDLE_RETRIES, MAX_CONCURRENT_TRANSFERS,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One bundle transfer for the connection task to run.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Plugin the bundle belongs to.
    pub plugin_id: u16,
    /// Its hash (the key the simulation is told back on completion).
    pub sha256: [u8; 32],
    /// The one shared packed copy.
    pub bytes: Bytes,
    /// Bytes the client already holds (rounded down to a chunk when sent).
    pub offset: u64,
}

/// What the simulation found for a requested plugin id and hash.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Announced with that hash: here is the shared copy.
    Announced(Bytes),
    /// The plugin is announced, but with another hash (it changed meanwhile).
    Stale,
    /// Never announced (no such plugin, or no bundle).
    Unknown,
}

/// A request that will not be served, and whether the client must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why, for the client and the log.
    pub reason: String,
    /// The client passed [`MAX_BUNDLE_REFUSALS`]: disconnect it.
    pub disconnect: bool,
}

#[derive(Debug, Default)]
struct Entry {
    /// Transfers started so far (less those a plugin reload made stale).
    sends: u32,
    /// The plugins whose transfer of this bundle is queued or running. Two
    /// plugins may announce one bundle (identical client content); the
    /// client asks once, on behalf of one of them.
    serving: Vec<u16>,
    /// The plugins whose transfer of it still runs though they no longer
    /// announce it (see [`PeerBundles::superseded`]): they hold a slot until
    /// it ends, but do not make the bundle "on its way".
    stale: Vec<u16>,
    /// The client reported it installed.
    held: bool,
}

/// What one connection asked for and got; lives as long as the peer.
#[derive(Debug, Default)]
pub struct PeerBundles {
    entries: HashMap<[u8; 32], Entry>,
    queue: VecDeque<Transfer>,
    active: usize,
    refusals: u32,
}

impl PeerBundles {
    /// Files a request; returns the transfers to start now (possibly none: it
    /// waits in line), or why it is refused.
    pub fn request(
        &mut self,
        plugin_id: u16,
        sha256: [u8; 32],
        offset: u64,
        lookup: Lookup,
    ) -> Result<Vec<Transfer>, Refusal> {
        let bytes = match lookup {
            Lookup::Announced(b) => b,
            Lookup::Stale => {
                // A plugin reload raced the request: no strike, the client has the new announcement.
                return Err(Refusal {
                    reason: format!(
                        "plugin {plugin_id} changed; ask for the bundle of its latest announcement"
                    ),
                    disconnect: false,
                });
            }
            Lookup::Unknown => {
                return Err(self.strike(format!("plugin {plugin_id} has no bundle with that hash")));
            }
        };
        let e = self.entries.entry(sha256).or_default();
        if e.held {
            return Err(self.strike("you reported this bundle installed already".into()));
        }
        if !e.serving.is_empty() {
            return Err(self.strike("this bundle is already on its way to you".into()));
        }
        if e.sends > MAX_BUNDLE_RETRIES {
            let sends = e.sends;
            return Err(self.strike(format!(
                "this bundle was sent to you {sends} times; a connection gets it once plus {MAX_BUNDLE_RETRIES} retry after a failed verify"
            )));
        }
        e.sends += 1;
        e.serving.push(plugin_id);
        self.queue.push_back(Transfer {
            plugin_id,
            sha256,
            bytes,
            offset,
        });
        Ok(self.next())
    }

    /// The transfer of `sha256` on behalf of `plugin_id` ended (sent and
    /// acknowledged, or cut); returns the waiting transfers that may start now.
    pub fn finished(&mut self, plugin_id: u16, sha256: &[u8; 32]) -> Vec<Transfer> {
        if let Some(e) = self.entries.get_mut(sha256)
            && (take(&mut e.serving, plugin_id) || take(&mut e.stale, plugin_id))
        {
            self.active = self.active.saturating_sub(1);
        }
        self.next()
    }

    /// Plugin `plugin_id` no longer announces `sha256` (reloaded with other
    /// content, or removed), so its transfer of it is stale and does not
    /// count as a send: one still waiting in line is dropped instead of
    /// sent; one running holds its slot until the client stops the stream,
    /// but no longer makes the bundle "on its way", so another plugin
    /// announcing the same bundle (whose download the client waited on) may
    /// ask for it.
    pub fn superseded(&mut self, plugin_id: u16, sha256: &[u8; 32]) {
        let Some(e) = self.entries.get_mut(sha256) else {
            return;
        };
        if !take(&mut e.serving, plugin_id) {
            return;
        }
        e.sends = e.sends.saturating_sub(1);
        let before = self.queue.len();
        self.queue
            .retain(|t| !(t.plugin_id == plugin_id && t.sha256 == *sha256));
        if self.queue.len() == before {
            e.stale.push(plugin_id);
        }
    }

    /// The client reported an install; a successful one is never sent again.
    pub fn installed(&mut self, sha256: [u8; 32], ok: bool) {
        if ok {
            self.entries.entry(sha256).or_default().held = true;
        }
    }

    /// Transfers running for this connection.
    pub fn active(&self) -> usize {
        self.active
    }

    fn next(&mut self) -> Vec<Transfer> {
        let mut start = Vec::new();
        while self.active < MAX_CONCURRENT_TRANSFERS {
            let Some(t) = self.queue.pop_front() else {
                break;
            };
            self.active += 1;
            start.push(t);
        }
        start
    }

    fn strike(&mut self, reason: String) -> Refusal {
        self.refusals += 1;
        Refusal {
            reason,
            disconnect: self.refusals > MAX_BUNDLE_REFUSALS,
        }
    }
}

/// Removes one `id` from `ids`; whether it was there.
fn take(ids: &mut Vec<u16>, id: u16) -> bool {
    match ids.iter().position(|x| *x == id) {
        Some(at) => {
            ids.remove(at);
            true
        }
        None => false,
    }
}

/// The server-wide budget of bundle bytes in flight. A connection that is
/// running transfers holds one lease of [`BUNDLE_SEND_WINDOW`] bytes (its QUIC
/// send window, the most it can have sent and not yet acknowledged), so the
/// leases bound what all transfers together have in flight; connections
/// beyond the budget wait for a lease.
#[derive(Debug)]
pub struct Flight {
    leases: Arc<Semaphore>,
    total: usize,
    sent: AtomicU64,
}

/// What the bundle service is doing right now, for tests, benchmarks and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlightStats {
    /// Connections holding a lease (running transfers).
    pub leases_in_use: usize,
    /// Leases the budget allows.
    pub leases_total: usize,
    /// Bundle bytes (frames included) handed to QUIC since start.
    pub bytes_sent: u64,
}

impl Flight {
    /// A budget of `bytes_in_flight` (at least one lease).
    pub fn new(bytes_in_flight: u64) -> Self {
        let total = usize::try_from((bytes_in_flight / BUNDLE_SEND_WINDOW).max(1)).unwrap_or(1);
        Self {
            leases: Arc::new(Semaphore::new(total)),
            total,
            sent: AtomicU64::new(0),
        }
    }

    /// Waits for a lease; dropping it gives it back.
    pub async fn lease(&self) -> Option<OwnedSemaphorePermit> {
        self.leases.clone().acquire_owned().await.ok()
    }

    /// Counts bytes handed to QUIC.
    pub fn count(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// Current leases and bytes sent.
    pub fn stats(&self) -> FlightStats {
        FlightStats {
            leases_in_use: self.total - self.leases.available_permits(),
            leases_total: self.total,
            bytes_sent: self.sent.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announced() -> Lookup {
        Lookup::Announced(Bytes::from_static(b"bundle"))
    }

    /// A connection whose every transfer slot is taken by plugin 9
    /// (bundles `[0; 32]`, `[1; 32]`, …), so the next request waits in line.
    fn busy_line() -> PeerBundles {
        let mut p = PeerBundles::default();
        for i in 0..MAX_CONCURRENT_TRANSFERS {
            let sha = [u8::try_from(i).unwrap_or(u8::MAX); 32];
            p.request(9, sha, 0, announced()).unwrap();
        }
        p
    }

    #[test]
    fn a_bundle_is_sent_once_plus_bounded_retries() {
        let mut p = PeerBundles::default();
        let sha = [1; 32];
        assert_eq!(p.request(1, sha, 0, announced()).unwrap().len(), 1);
        let dup = p.request(1, sha, 0, announced()).unwrap_err();
        assert!(dup.reason.contains("on its way"), "{dup:?}");
        assert!(p.finished(1, &sha).is_empty());
        // The retry after a failed verify.
        assert_eq!(p.request(1, sha, 0, announced()).unwrap().len(), 1);
        p.finished(1, &sha);
        let again = p.request(1, sha, 0, announced()).unwrap_err();
        assert!(again.reason.contains("sent to you 2 times"), "{again:?}");
    }

    /// Two plugins announce one bundle; the client asked for it on behalf
    /// of the first, which a reload then changed. The second may now ask
    /// for it, with no strike, while the stale transfer runs out; a request
    /// for a bundle still on its way on behalf of a current plugin is refused.
    #[test]
    fn a_transfer_made_stale_by_a_reload_does_not_block_a_twin() {
        let mut p = PeerBundles::default();
        let sha = [5; 32];
        assert_eq!(p.request(1, sha, 0, announced()).unwrap().len(), 1);
        let twin_too_early = p.request(2, sha, 0, announced()).unwrap_err();
        assert!(
            twin_too_early.reason.contains("on its way"),
            "{twin_too_early:?}"
        );
        // Plugin 1 was reloaded with other content: its transfer is stale.
        p.superseded(1, &sha);
        assert_eq!(p.request(2, sha, 0, announced()).unwrap().len(), 1);
        assert_eq!(p.active(), 2, "the stale transfer still runs out");
        let dup = p.request(2, sha, 0, announced()).unwrap_err();
        assert!(dup.reason.contains("on its way"), "{dup:?}");
        assert_eq!(
            p.refusals, 2,
            "the twin's request after the reload is no strike"
        );
        // The stale transfer ends: only its own slot is given back.
        p.finished(1, &sha);
        assert_eq!(p.active(), 1);
        p.finished(2, &sha);
        assert_eq!(p.active(), 0);
        // A failed verify still gets its one retry: the stale send did not count.
        assert_eq!(p.request(2, sha, 0, announced()).unwrap().len(), 1);
    }

    /// A stale transfer still waiting in line is dropped, not sent.
    #[test]
    fn a_stale_transfer_waiting_in_line_is_dropped() {
        let mut p = busy_line();
        let sha = [200; 32];
        assert!(p.request(1, sha, 0, announced()).unwrap().is_empty());
        p.superseded(1, &sha);
        assert!(p.request(2, sha, 0, announced()).unwrap().is_empty());
        assert_eq!(p.queue.len(), 1, "plugin 1's stale transfer left the line");
        let started = p.finished(9, &[0; 32]);
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].plugin_id, 2);
    }

    /// A reload drops the changed plugin's transfer still in line, leaves
    /// the running one and other plugins' alone, and forgives the send.
    #[test]
    fn a_superseded_transfer_waiting_in_line_is_dropped_at_the_reload() {
        let mut p = busy_line();
        let (sha, other) = ([100; 32], [101; 32]);
        assert!(p.request(1, sha, 0, announced()).unwrap().is_empty());
        assert!(p.request(2, other, 0, announced()).unwrap().is_empty());
        p.superseded(1, &sha);
        // A running transfer is the client's to stop.
        p.superseded(9, &[0; 32]);
        assert_eq!(p.active(), MAX_CONCURRENT_TRANSFERS);
        let started = p.finished(9, &[0; 32]);
        assert_eq!(
            started.iter().map(|t| t.plugin_id).collect::<Vec<_>>(),
            vec![2],
            "plugin 1's superseded transfer left the line"
        );
        // The dropped transfer was no send: the bundle may still be asked
        // for once plus a retry (by a plugin announcing it again).
        p.finished(9, &[1; 32]);
        p.finished(2, &other);
        assert_eq!(p.active(), 0);
        assert_eq!(p.request(1, sha, 0, announced()).unwrap().len(), 1);
        p.finished(1, &sha);
        assert_eq!(p.request(1, sha, 0, announced()).unwrap().len(), 1);
    }

    #[test]
    fn held_unknown_and_stale_requests_are_refused() {
        let mut p = PeerBundles::default();
        p.installed([2; 32], true);
        assert!(p.request(1, [2; 32], 0, announced()).is_err());
        assert!(p.request(1, [3; 32], 0, Lookup::Unknown).is_err());
        let stale = p.request(1, [4; 32], 0, Lookup::Stale).unwrap_err();
        assert!(!stale.disconnect);
        assert_eq!(p.refusals, 2, "a stale request is no strike");
    }

    #[test]
    fn concurrency_is_capped_and_the_line_moves_on() {
        let mut p = PeerBundles::default();
        let mut started = 0;
        for i in 0..5u8 {
            started += p.request(1, [i; 32], 0, announced()).unwrap().len();
        }
        assert_eq!(started, MAX_CONCURRENT_TRANSFERS);
        assert_eq!(p.finished(1, &[0; 32]).len(), 1);
        assert_eq!(p.active(), MAX_CONCURRENT_TRANSFERS);
    }

    #[test]
    fn repeated_abuse_asks_for_a_disconnect() {
        let mut p = PeerBundles::default();
        let sha = [9; 32];
        p.request(1, sha, 0, announced()).unwrap();
        let mut last = None;
        for _ in 0..=MAX_BUNDLE_REFUSALS {
            last = p.request(1, sha, 0, announced()).err();
        }
        assert!(last.unwrap().disconnect);
    }

    #[tokio::test]
    async fn leases_are_bounded_and_given_back() {
        let f = Flight::new(3 * BUNDLE_SEND_WINDOW);
        let a = f.lease().await.unwrap();
        let _b = f.lease().await.unwrap();
        assert_eq!(f.stats().leases_in_use, 2);
        drop(a);
        assert_eq!(f.stats().leases_in_use, 1);
        assert_eq!(f.stats().leases_total, 3);
    }
}
