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

/// Quiet time after the last file event in `plugins/` before changes are
/// applied, so an editor's burst of writes causes one reload.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(100);

/// Full rescan interval of `plugins/`, the fallback when file events are lost.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(60);

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

/// Longest popup a plugin may show, in seconds, so no popup outstays a session.
pub const MAX_POPUP_SECS: f64 = 3600.0;

/// Longest chat command name a plugin may register (`/name`), in bytes.
pub const MAX_COMMAND_NAME: usize = 32;

/// Longest piece of a refused value (a bad name) quoted back in an error, in
/// characters, so an error about a huge value stays short.
pub const MAX_QUOTED_VALUE: usize = 64;

/// How long a worker that died is given to finish exiting, so its exit
/// status can say why; a hung worker is killed at once.
pub const DIED_WORKER_GRACE: Duration = Duration::from_millis(20);

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

// --- Simulation and configuration bounds ---

/// Default simulation rate, ticks per second (`tick_hz`).
pub const DEFAULT_TICK_HZ: u16 = 30;

/// Highest `tick_hz` the configuration accepts.
pub const MAX_TICK_HZ: u16 = 240;

/// Highest `max_players` the configuration accepts.
pub const MAX_MAX_PLAYERS: usize = 4096;

/// Highest `plugin_cpu_budget_ms` and `plugin_kill_after_ms` the
/// configuration accepts: past a minute a stuck plugin would stall the tick
/// for longer than any player waits.
pub const MAX_PLUGIN_TIMING_MS: u64 = 60_000;

/// Capacity of the simulation's inbound queue (all connection tasks and
/// the watcher feed it); a full queue makes senders wait, never grow memory.
pub const INBOUND_QUEUE: usize = 8192;

/// Free share of the inbound queue, in percent, below which the server warns
/// that the simulation is falling behind.
pub const BACKLOG_WARN_PERCENT: usize = 10;

/// Tick durations kept for `TickStats::summary`; the buffer starts over when full.
pub const TICK_SAMPLES_KEPT: usize = 100_000;

// --- Connections ---

/// Capacity of each client's reliable outbound queue; overflowing it disconnects the client.
pub const OUTBOUND_QUEUE: usize = 4096;

/// How long a client has to finish the QUIC handshake, open its control
/// stream and say `Hello`, each.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Control frames of any kind a client may send per allowed chat line each
/// second: generous, only to stop a flood of non-chat messages.
pub const FRAMES_PER_CHAT_LINE: u32 = 20;

/// Fewest control frames per second any client is allowed, whatever the chat limit.
pub const MIN_FRAMES_PER_SEC: u32 = 100;

/// Position datagrams dropped in one second, as a multiple of the allowed
/// rate, past which a client is disconnected for flooding.
pub const DATAGRAM_FLOOD_FACTOR: u32 = 10;

/// Bytes of datagrams the endpoint buffers each way per connection.
pub const DATAGRAM_BUFFER: usize = 64 * 1024;

/// Bundle transfers a connection may have waiting to start, beyond those running.
pub const TRANSFER_QUEUE: usize = 2 * shard_protocol::limits::MAX_CONCURRENT_TRANSFERS;

/// How often folded warnings are written out.
pub const WARN_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Most (key, cause) pairs the warning limiter tracks at once; beyond it new
/// pairs are folded into one shared entry, so its own memory is bounded too.
pub const MAX_WARN_KEYS: usize = 4096;

/// Shortest interval between two idle checks of one connection.
pub const IDLE_CHECK_MIN: Duration = Duration::from_millis(100);

/// How long a client is given to read a `Kick` and close first.
pub const KICK_GRACE: Duration = Duration::from_secs(1);

/// How long a finished connection's writer may take to flush its queue.
pub const WRITER_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a stopping server waits for its connections to close cleanly.
pub const ENDPOINT_DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

// --- Admin web console ---

/// An admin console session unused this long is forgotten, so a stolen
/// cookie does not work for ever.
pub const ADMIN_SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);

/// Admin console sessions kept at once; the least recently used goes first,
/// so logins cannot grow the server's memory.
pub const ADMIN_MAX_SESSIONS: usize = 64;

/// Failed admin logins allowed per address within [`ADMIN_LOGIN_WINDOW`],
/// so the token cannot be guessed by brute force.
pub const ADMIN_MAX_FAILED_LOGINS: u32 = 5;

/// Window of the failed-login limit.
pub const ADMIN_LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Addresses the failed-login limiter remembers at once, so its own memory
/// is bounded too.
pub const ADMIN_MAX_TRACKED_ADDRS: usize = 4096;

/// Longest admin token file accepted (a token is 64 hex digits), so a
/// wrong path cannot make the server read a huge file.
pub const ADMIN_MAX_TOKEN_FILE: u64 = 1024;

/// How often the simulation publishes a snapshot for the admin console:
/// fresh enough for a person, rare enough to cost the tick nothing.
pub const ADMIN_PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// How often a point is added to the admin console's tick-time chart.
pub const ADMIN_CHART_STEP: Duration = Duration::from_secs(5);

/// Points kept on the tick-time chart (10 minutes at [`ADMIN_CHART_STEP`]).
pub const ADMIN_CHART_POINTS: usize = 120;

/// Chat and command lines kept for the admin console's Chat page.
pub const ADMIN_CHAT_LINES: usize = 200;

/// Largest request body the admin console accepts (forms are small).
pub const ADMIN_MAX_BODY: usize = 16 * 1024;

/// How long an admin console action waits for the simulation's answer.
pub const ADMIN_ACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// An admin console client gets this long to finish its TLS handshake, so
/// idle sockets cannot pile up.
pub const ADMIN_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes the admin console reads from the end of a plugin log at most.
pub const ADMIN_LOG_TAIL_BYTES: u64 = 16 * 1024;

/// Plugin log lines the admin console shows at most.
pub const ADMIN_LOG_TAIL_LINES: usize = 40;

/// Pause after a failed accept on the admin console's socket (out of file
/// descriptors, say), so the loop does not spin.
pub const ADMIN_ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// BBR's congestion window before it has measured anything, in bytes: 32
/// packets of the QUIC minimum size (RFC 9002 suggests 10; quinn's BBR starts
/// at 200). Enough that a bundle over a long round trip is not held back by
/// start-up, small enough not to burst into a slow link. A peer on this
/// host gets room for its one large path-MTU probe on top (see `transport`).
pub const BBR_INITIAL_WINDOW: u64 = 32 * 1200;

/// Least time between two wakes of the simulation between ticks (see
/// `Sim::wait_for_tick`): what an urgent message may wait at most for the
/// ones behind it, and what caps the wakes a flood of them costs at 1000 a
/// second whatever the number of players.
pub const SIM_WAKE_GAP: Duration = Duration::from_millis(1);

/// The longest a player may hold back an acknowledgement, asked of every
/// connection (QUIC's ACK-frequency extension; quinn's own default is 25 ms).
/// Acknowledgements still go out every second packet during a transfer;
/// this bounds only the wait for a lone packet, such as a transfer's last,
/// whose acknowledgement frees the transfer's lease of the bundle budget for
/// the next player in the queue.
pub const PEER_ACK_DELAY: Duration = Duration::from_millis(1);

/// Receive buffer asked of the kernel for the server's one UDP socket
/// ([`crate::transport::bind_socket`]): every player's handshakes and
/// acknowledgements arrive there, and a burst of joins overflows the system
/// default. Capped by the kernel at `net.core.rmem_max`.
pub const UDP_RECV_BUFFER: usize = 4 * 1024 * 1024;

/// How long the start-up mirror check waits for one mirror's connection
/// (TCP and TLS), and then for each answer: a mirror slower than this is
/// one players' clients give up on too (their defaults are 5 s and 10 s).
pub const MIRROR_CHECK_CONNECT: Duration = Duration::from_secs(5);

/// See [`MIRROR_CHECK_CONNECT`]: the wait for each answer's head.
pub const MIRROR_CHECK_ANSWER: Duration = Duration::from_secs(10);

/// Requests the start-up mirror check has in flight at once, over all
/// mirrors: a server with hundreds of plugins must not burst at its CDN.
pub const MIRROR_CHECK_CONCURRENCY: usize = 8;

/// Problems the start-up mirror check lists by name per mirror; the rest
/// are counted, so a mirror missing every file logs one readable line.
pub const MIRROR_CHECK_LISTED: usize = 5;
