//! Server-side tuning: every limit, budget and deadline the server applies to
//! its own parts (plugin workers, their logs, their per-tick budgets), in one
//! place. Limits that cross the wire to clients live in
//! `shard_protocol::limits`; nothing else may write these numbers as literals.

use std::time::Duration;

/// Default wall-clock budget of one plugin callback inside its worker, in
/// milliseconds as `plugin_cpu_budget_ms` takes it.
pub const DEFAULT_CPU_BUDGET_MS: u64 = 50;

/// Default wall-clock budget of one plugin callback inside its worker; an
/// overrun raises `PluginTimeout` in the plugin (`plugin_cpu_budget_ms`).
pub const DEFAULT_CPU_BUDGET: Duration = Duration::from_millis(DEFAULT_CPU_BUDGET_MS);

/// Default kill grace in milliseconds, as `plugin_kill_after_ms` takes it.
pub const DEFAULT_KILL_AFTER_MS: u64 = 200;

/// Default grace after the budget before the server kills a worker that has
/// not answered (`plugin_kill_after_ms`): long enough for a `PluginTimeout`
/// to unwind, short enough that players do not notice the tick.
pub const DEFAULT_KILL_AFTER: Duration = Duration::from_millis(DEFAULT_KILL_AFTER_MS);

/// Default errors after which a plugin is disabled (`max_errors`).
pub const DEFAULT_MAX_ERRORS: u32 = 5;

/// Default address-space cap of one worker, MiB (`plugin_memory_mb`).
pub const DEFAULT_PLUGIN_MEMORY_MB: u64 = 256;

/// Smallest address-space cap that still lets CPython start.
pub const MIN_PLUGIN_MEMORY_MB: u64 = 96;

/// Open files a worker may hold (its channel, the interpreter's own reads).
pub const WORKER_MAX_OPEN_FILES: u64 = 64;

/// How long a new worker may take to start its interpreter and say hello.
pub const WORKER_START_TIMEOUT: Duration = Duration::from_secs(10);

/// First restart delay after a worker was killed or crashed; doubles each time.
pub const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(500);

/// Longest restart delay.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Largest message on a worker channel, either way (a 16 KiB RPC, a capped
/// traceback or a peer list of the largest server fit easily).
pub const MAX_CHANNEL_FRAME: usize = 1 << 20;

/// Largest plugin source file the server sends to a worker.
pub const MAX_PLUGIN_SOURCE: usize = 512 * 1024;

/// Longest line written to a plugin log; longer ones are cut with a mark.
pub const MAX_LOG_LINE: usize = 4 * 1024;

/// Longest log entry (a traceback, a `game.log` message) in bytes.
pub const MAX_LOG_ENTRY: usize = 16 * 1024;

/// Size at which a plugin log rotates to `<name>.log.1` (two old files kept).
pub const LOG_ROTATE_BYTES: u64 = 1024 * 1024;

/// Old plugin log files kept by rotation.
pub const LOG_KEEP_OLD: u32 = 2;

/// Log entries a plugin may write per second (burst of the same size); the
/// rest are counted and reported as one "suppressed" line.
pub const LOG_ENTRIES_PER_SEC: u32 = 50;

/// Longest error text (exception message) kept for `/plugins` and admins.
pub const MAX_ERROR_TEXT: usize = 300;

/// Per plugin, per tick: chat lines (`send_chat` + `broadcast`).
pub const BUDGET_CHAT_PER_TICK: u32 = 32;

/// Per plugin, per tick: popups.
pub const BUDGET_POPUPS_PER_TICK: u32 = 512;

/// Per plugin, per tick: RPCs sent.
pub const BUDGET_RPCS_PER_TICK: u32 = 512;

/// Per plugin, per tick: RPC JSON bytes sent.
pub const BUDGET_RPC_BYTES_PER_TICK: usize = 512 * 1024;

/// Per plugin, per tick: entities spawned.
pub const BUDGET_SPAWNS_PER_TICK: u32 = 64;

/// Per plugin, per tick and per recipient: messages of any kind, so no
/// plugin can fill one player's reliable queue.
pub const BUDGET_MSGS_PER_PEER_PER_TICK: u32 = 8;

/// Share of a peer's reliable queue, in percent, kept free for the server's
/// own messages: a plugin's message to a peer whose queue is fuller than this
/// is refused (`GameError`), never a reason to disconnect the player.
pub const PEER_QUEUE_PLUGIN_SHARE_PERCENT: usize = 50;
