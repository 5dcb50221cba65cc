//! The gate every `ClientRpc` passes before any plugin code runs: the
//! sender's rate, the target plugin (announced and loaded), the plugin's
//! upstream whitelist (the literal `SendServerRpc` names of its
//! policy-checked client scripts) and the payload limits (size, depth, a
//! JSON object). What fails is dropped, counted by cause and logged once per
//! cause; it never disconnects the player, so a buggy pushed UI costs nothing
//! but the message.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use shard_protocol::rpc_json::{RpcJsonError, parse_rpc_payload};
use tracing::warn;

use crate::net::Bucket;

/// Why a client RPC was not delivered; each is counted and logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropCause {
    /// Over the sender's `client_rpc_per_sec`.
    RateLimited,
    /// No loaded plugin has that id.
    UnknownPlugin,
    /// The name is not on the plugin's upstream whitelist.
    NotWhitelisted,
    /// Payload over `MAX_RPC_JSON`.
    Oversize,
    /// Payload nested deeper than `MAX_RPC_JSON_DEPTH`.
    TooDeep,
    /// Payload not a JSON object.
    Malformed,
    /// Whitelisted, but the plugin registered no `game.on_rpc` handler.
    NoHandler,
}

/// Counts of client RPCs by outcome since the server started (shared with
/// the operator's views and tests through `TickStats`).
#[derive(Debug, Default)]
pub struct ClientRpcCounters {
    delivered: AtomicU64,
    rate_limited: AtomicU64,
    unknown_plugin: AtomicU64,
    not_whitelisted: AtomicU64,
    oversize: AtomicU64,
    too_deep: AtomicU64,
    malformed: AtomicU64,
    no_handler: AtomicU64,
}

/// A copy of [`ClientRpcCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClientRpcCounts {
    /// Reached a handler (whether or not it raised).
    pub delivered: u64,
    /// Dropped: over the rate.
    pub rate_limited: u64,
    /// Dropped: no such loaded plugin.
    pub unknown_plugin: u64,
    /// Dropped: name not whitelisted.
    pub not_whitelisted: u64,
    /// Dropped: payload too large.
    pub oversize: u64,
    /// Dropped: payload too deep.
    pub too_deep: u64,
    /// Dropped: payload not a JSON object.
    pub malformed: u64,
    /// Dropped: no handler registered.
    pub no_handler: u64,
}

impl ClientRpcCounters {
    fn slot(&self, cause: Option<DropCause>) -> &AtomicU64 {
        match cause {
            None => &self.delivered,
            Some(DropCause::RateLimited) => &self.rate_limited,
            Some(DropCause::UnknownPlugin) => &self.unknown_plugin,
            Some(DropCause::NotWhitelisted) => &self.not_whitelisted,
            Some(DropCause::Oversize) => &self.oversize,
            Some(DropCause::TooDeep) => &self.too_deep,
            Some(DropCause::Malformed) => &self.malformed,
            Some(DropCause::NoHandler) => &self.no_handler,
        }
    }

    /// Counts one RPC that reached its handler.
    pub fn delivered(&self) {
        self.slot(None).fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> ClientRpcCounts {
        let get = |c: Option<DropCause>| self.slot(c).load(Ordering::Relaxed);
        ClientRpcCounts {
            delivered: get(None),
            rate_limited: get(Some(DropCause::RateLimited)),
            unknown_plugin: get(Some(DropCause::UnknownPlugin)),
            not_whitelisted: get(Some(DropCause::NotWhitelisted)),
            oversize: get(Some(DropCause::Oversize)),
            too_deep: get(Some(DropCause::TooDeep)),
            malformed: get(Some(DropCause::Malformed)),
            no_handler: get(Some(DropCause::NoHandler)),
        }
    }
}

/// Per-player rate buckets and the once-per-cause log memory; lives on the
/// simulation thread.
pub struct ClientRpcGate {
    per_sec: u32,
    buckets: HashMap<u32, Bucket>,
    logged: HashSet<DropCause>,
}

impl ClientRpcGate {
    /// A gate allowing `per_sec` client RPCs per player per second.
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec,
            buckets: HashMap::new(),
            logged: HashSet::new(),
        }
    }

    /// Checks one RPC from `peer` before the plugin is asked: rate, then
    /// the target's upstream whitelist (`None` = no loaded plugin with that
    /// id), then the payload.
    pub fn admit(
        &mut self,
        peer: u32,
        fn_hash: u32,
        json: &str,
        upstream_whitelist: Option<&[u32]>,
    ) -> Result<(), DropCause> {
        let per_sec = self.per_sec;
        if !self
            .buckets
            .entry(peer)
            .or_insert_with(|| Bucket::new(per_sec))
            .take()
        {
            return Err(DropCause::RateLimited);
        }
        let Some(whitelist) = upstream_whitelist else {
            return Err(DropCause::UnknownPlugin);
        };
        if whitelist.binary_search(&fn_hash).is_err() {
            return Err(DropCause::NotWhitelisted);
        }
        parse_rpc_payload(json).map(drop).map_err(|e| match e {
            RpcJsonError::TooLarge { .. } => DropCause::Oversize,
            RpcJsonError::TooDeep => DropCause::TooDeep,
            RpcJsonError::Malformed(_) => DropCause::Malformed,
        })
    }

    /// Counts a dropped RPC and logs the first of each cause.
    pub fn dropped(
        &mut self,
        counters: &ClientRpcCounters,
        cause: DropCause,
        peer: u32,
        plugin_id: u16,
        fn_hash: u32,
    ) {
        counters.slot(Some(cause)).fetch_add(1, Ordering::Relaxed);
        if self.logged.insert(cause) {
            warn!(
                peer,
                plugin_id,
                fn_hash = format!("{fn_hash:#010x}"),
                ?cause,
                "dropping client RPC (logged once per cause; see the counters)"
            );
        }
    }

    /// Forgets a player who left.
    pub fn forget(&mut self, peer: u32) {
        self.buckets.remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_its_cause_in_order() {
        let mut g = ClientRpcGate::new(3);
        let wl = [shard_protocol::fn_hash("Vote")];
        let vote = wl[0];
        assert_eq!(g.admit(1, vote, "{}", None), Err(DropCause::UnknownPlugin));
        assert_eq!(
            g.admit(1, 7, "{}", Some(&wl)),
            Err(DropCause::NotWhitelisted)
        );
        assert_eq!(
            g.admit(1, vote, "[1]", Some(&wl)),
            Err(DropCause::Malformed)
        );
        // Three per second: the fourth within the second is over the rate,
        // whatever it carries, while another player is unaffected.
        assert_eq!(
            g.admit(1, vote, "{}", Some(&wl)),
            Err(DropCause::RateLimited)
        );
        assert_eq!(g.admit(2, vote, r#"{"option":1}"#, Some(&wl)), Ok(()));
        let big = format!(
            r#"{{"s":"{}"}}"#,
            "x".repeat(shard_protocol::limits::MAX_RPC_JSON)
        );
        assert_eq!(g.admit(2, vote, &big, Some(&wl)), Err(DropCause::Oversize));
        let deep = "[".repeat(shard_protocol::limits::MAX_RPC_JSON_DEPTH + 1);
        assert_eq!(g.admit(2, vote, &deep, Some(&wl)), Err(DropCause::TooDeep));
        g.forget(1);
        assert_eq!(g.admit(1, vote, "{}", Some(&wl)), Ok(()));
    }

    #[test]
    fn drops_are_counted_by_cause() {
        let mut g = ClientRpcGate::new(1);
        let c = ClientRpcCounters::default();
        g.dropped(&c, DropCause::Oversize, 1, 2, 3);
        g.dropped(&c, DropCause::Oversize, 1, 2, 3);
        g.dropped(&c, DropCause::NoHandler, 1, 2, 3);
        c.delivered();
        let s = c.snapshot();
        assert_eq!((s.oversize, s.no_handler, s.delivered), (2, 1, 1));
        assert_eq!(s.malformed + s.rate_limited + s.unknown_plugin, 0);
    }
}
