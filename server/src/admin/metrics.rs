//! Prometheus metrics: one process-wide recorder (the `metrics` crate) and
//! the names every part of the server records under, so `/metrics` and the
//! dashboard agree. Recording is a few atomic operations; rendering happens
//! only when `/metrics` is scraped.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Tick duration histogram, seconds.
pub const TICK_SECONDS: &str = "shard_tick_duration_seconds";
/// Players online (gauge).
pub const PLAYERS: &str = "shard_players";
/// Messages received from clients, by `type` (the `ClientMsg` variant).
pub const MESSAGES_IN: &str = "shard_messages_in_total";
/// Messages sent to clients, by `type` (the `ServerMsg` variant).
pub const MESSAGES_OUT: &str = "shard_messages_out_total";
/// Position datagrams dropped, by `cause`.
pub const DATAGRAMS_DROPPED: &str = "shard_datagrams_dropped_total";
/// Bundle bytes written to clients' bundle streams.
pub const BUNDLE_BYTES: &str = "shard_bundle_bytes_total";
/// Bundle transfers finished.
pub const BUNDLE_TRANSFERS: &str = "shard_bundle_transfers_total";
/// Bundle requests this server took although `asset_mirrors` are set: each
/// is a player whose mirror download failed (or who turned mirrors off).
pub const BUNDLE_MIRROR_FALLBACKS: &str = "shard_bundle_mirror_fallbacks_total";
/// Bundles an asset mirror did not serve at the server's check of it
/// (every bundle when it could not be reached), by `mirror`: alert on > 0.
pub const MIRROR_MISSING: &str = "shard_asset_mirror_missing_bundles";
/// Plugin errors, by `plugin`.
pub const PLUGIN_ERRORS: &str = "shard_plugin_errors_total";
/// Plugin worker restarts (killed or crashed, then started again), by `plugin`.
pub const PLUGIN_RESTARTS: &str = "shard_plugin_restarts_total";
/// Plugins turned off (errors or the operator), by `plugin`.
pub const PLUGIN_DISABLES: &str = "shard_plugin_disables_total";
/// RPCs dropped, by `cause`.
pub const RPC_DROPPED: &str = "shard_rpc_dropped_total";
/// Failed admin console logins.
pub const ADMIN_LOGIN_FAILURES: &str = "shard_admin_login_failures_total";

/// Why a position datagram was dropped.
#[derive(Debug, Clone, Copy)]
pub enum DatagramDrop {
    /// The client sent more than its rate allows.
    RateLimit,
    /// The simulation's inbound queue was full.
    QueueFull,
    /// QUIC refused to send (congestion, closed connection, too large).
    SendFailed,
}

impl DatagramDrop {
    fn label(self) -> &'static str {
        match self {
            Self::RateLimit => "rate_limit",
            Self::QueueFull => "queue_full",
            Self::SendFailed => "send_failed",
        }
    }
}

/// Causes of dropped RPCs, pre-registered so dashboards see zeros rather than gaps.
pub const RPC_DROP_CAUSES: &[&str] = &["no_peer", "budget", "too_large", "unknown_rpc"];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static BUNDLE_BYTES_SERVED: AtomicU64 = AtomicU64::new(0);
static BUNDLE_TRANSFERS_DONE: AtomicU64 = AtomicU64::new(0);
static BUNDLE_MIRROR_FALLBACKS_SEEN: AtomicU64 = AtomicU64::new(0);

/// Tick histogram buckets (seconds): a 30 Hz tick has 33 ms.
const TICK_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25, 1.0,
];

/// Installs the process-wide recorder (once; later calls return the same
/// handle). `None` when another recorder was installed first, in which case
/// `/metrics` says so.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(TICK_SECONDS.into()), TICK_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_histogram!(
        TICK_SECONDS,
        metrics::Unit::Seconds,
        "Simulation tick duration"
    );
    describe_gauge!(PLAYERS, "Players online");
    describe_counter!(
        MESSAGES_IN,
        "Control messages received from clients, by type"
    );
    describe_counter!(MESSAGES_OUT, "Control messages sent to clients, by type");
    describe_counter!(DATAGRAMS_DROPPED, "Position datagrams dropped, by cause");
    describe_counter!(
        BUNDLE_BYTES,
        metrics::Unit::Bytes,
        "Bundle bytes sent to clients"
    );
    describe_counter!(BUNDLE_TRANSFERS, "Bundle transfers finished");
    describe_counter!(
        BUNDLE_MIRROR_FALLBACKS,
        "Bundle requests served here although asset_mirrors are set (a player's mirror download failed)"
    );
    describe_gauge!(
        MIRROR_MISSING,
        "Bundles an asset mirror did not serve at the last check of it (all when unreachable), by mirror"
    );
    describe_counter!(PLUGIN_ERRORS, "Plugin errors, by plugin");
    describe_counter!(
        PLUGIN_RESTARTS,
        "Plugin worker restarts after a kill or crash, by plugin"
    );
    describe_counter!(PLUGIN_DISABLES, "Plugins disabled, by plugin");
    describe_counter!(RPC_DROPPED, "RPCs dropped, by cause");
    describe_counter!(ADMIN_LOGIN_FAILURES, "Failed admin console logins");
    gauge!(PLAYERS).set(0.0);
    counter!(BUNDLE_BYTES).absolute(0);
    counter!(BUNDLE_TRANSFERS).absolute(0);
    counter!(BUNDLE_MIRROR_FALLBACKS).absolute(0);
    counter!(ADMIN_LOGIN_FAILURES).absolute(0);
    for cause in RPC_DROP_CAUSES {
        counter!(RPC_DROPPED, "cause" => *cause).absolute(0);
    }
    for d in [
        DatagramDrop::RateLimit,
        DatagramDrop::QueueFull,
        DatagramDrop::SendFailed,
    ] {
        counter!(DATAGRAMS_DROPPED, "cause" => d.label()).absolute(0);
    }
}

/// Counts one message from a client.
pub fn message_in(msg: &shard_protocol::ClientMsg) {
    let kind: &'static str = msg.into();
    counter!(MESSAGES_IN, "type" => kind).increment(1);
}

/// Counts one message to a client.
pub fn message_out(msg: &shard_protocol::ServerMsg) {
    let kind: &'static str = msg.into();
    counter!(MESSAGES_OUT, "type" => kind).increment(1);
}

/// Counts `n` datagrams sent to clients (position batches).
pub fn datagrams_out(n: u64) {
    counter!(MESSAGES_OUT, "type" => "PeerMoved").increment(n);
}

/// Counts a dropped position datagram.
pub fn datagram_dropped(cause: DatagramDrop) {
    counter!(DATAGRAMS_DROPPED, "cause" => cause.label()).increment(1);
}

/// Counts bundle bytes written to a client's bundle stream.
pub fn bundle_bytes(n: u64) {
    BUNDLE_BYTES_SERVED.fetch_add(n, Ordering::Relaxed);
    counter!(BUNDLE_BYTES).increment(n);
}

/// Counts one finished bundle transfer.
pub fn bundle_transfer_done() {
    BUNDLE_TRANSFERS_DONE.fetch_add(1, Ordering::Relaxed);
    counter!(BUNDLE_TRANSFERS).increment(1);
}

/// Counts one bundle request taken although `asset_mirrors` are set.
pub fn bundle_mirror_fallback() {
    BUNDLE_MIRROR_FALLBACKS_SEEN.fetch_add(1, Ordering::Relaxed);
    counter!(BUNDLE_MIRROR_FALLBACKS).increment(1);
}

/// The bundle service's totals since the process started, for the dashboard
/// (and tests), read without the Prometheus recorder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BundleTotals {
    /// Bundle bytes written to clients' bundle streams.
    pub bytes: u64,
    /// Transfers finished.
    pub transfers: u64,
    /// Requests taken although `asset_mirrors` are set.
    pub mirror_fallbacks: u64,
}

/// Bundle bytes served, transfers finished and mirror fallbacks since the process started.
pub fn bundle_totals() -> BundleTotals {
    BundleTotals {
        bytes: BUNDLE_BYTES_SERVED.load(Ordering::Relaxed),
        transfers: BUNDLE_TRANSFERS_DONE.load(Ordering::Relaxed),
        mirror_fallbacks: BUNDLE_MIRROR_FALLBACKS_SEEN.load(Ordering::Relaxed),
    }
}

/// Sets the missing-bundles gauge of each mirror from a finished check,
/// `of` bundles expected.
pub fn mirror_missing(reports: &[crate::mirror_check::MirrorCheck], of: usize) {
    for r in reports {
        gauge!(MIRROR_MISSING, "mirror" => r.mirror.clone()).set(r.missing(of) as f64);
    }
}

/// Counts a dropped RPC; `cause` should be one of [`RPC_DROP_CAUSES`].
pub fn rpc_dropped(cause: &'static str) {
    counter!(RPC_DROPPED, "cause" => cause).increment(1);
}

/// Records one tick's duration.
pub fn tick(d: std::time::Duration) {
    histogram!(TICK_SECONDS).record(d.as_secs_f64());
}

/// Sets the players gauge.
pub fn players(n: usize) {
    gauge!(PLAYERS).set(n as f64);
}

/// Counts `n` new errors of a plugin.
pub fn plugin_errors(plugin: &str, n: u64) {
    counter!(PLUGIN_ERRORS, "plugin" => plugin.to_string()).increment(n);
}

/// Counts `n` worker restarts of a plugin.
pub fn plugin_restarts(plugin: &str, n: u64) {
    counter!(PLUGIN_RESTARTS, "plugin" => plugin.to_string()).increment(n);
}

/// Counts a plugin being disabled.
pub fn plugin_disabled(plugin: &str) {
    counter!(PLUGIN_DISABLES, "plugin" => plugin.to_string()).increment(1);
}

/// Counts a failed admin login.
pub fn login_failed() {
    counter!(ADMIN_LOGIN_FAILURES).increment(1);
}
