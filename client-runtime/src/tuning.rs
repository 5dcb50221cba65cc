//! Client-side tuning: queue sizes and waits the client runtime applies to
//! its own tasks, in one place. Limits that protect the player from a server
//! (event queue bytes, quotas, cache cap) cross the wire and live in
//! `shard_protocol::limits`; nothing else may write these numbers as literals.

use std::time::Duration;

/// Count bound of the event queue towards the game (the byte bound is
/// `limits::MAX_EVENT_QUEUE_BYTES`), so many tiny events cannot grow it either.
pub const EVENT_QUEUE: usize = 16 * 1024;

/// Capacity of the queue towards the bundle thread (chunks are 32 KiB each),
/// so a fast server waits for the disk instead of filling memory.
pub const BUNDLE_WORK_QUEUE: usize = 256;

/// Bundle streams the server may have open towards the client at once. The
/// server sends at most `limits::MAX_CONCURRENT_TRANSFERS` (2) at a time;
/// the rest of the room covers streams the client stopped (an edit mid-
/// download) until their reset arrives. Each open stream can hold up to
/// quinn's stream receive window (1.25 MB) that the client has not read
/// yet, so this bounds what a hostile server can park in the player's
/// memory (quinn's default, 100 streams, let it park 125 MB).
pub const MAX_BUNDLE_STREAMS: u32 = 8;

/// Receive buffer asked of the kernel for the client's UDP socket. A bundle
/// arrives as a burst of datagrams; Linux's default (208 KiB) overflows and
/// every dropped datagram must be sent again. The kernel caps the request at
/// `net.core.rmem_max`.
pub const UDP_RECV_BUFFER: usize = 4 * 1024 * 1024;

/// Capacity of the queue of messages the player sends; a game that sends
/// faster than the connection drains gets an error instead of a growing queue.
pub const SEND_QUEUE: usize = 1024;

/// A `BundleProgress` event is emitted every this many chunks (and on the
/// last), so progress bars move without flooding the event queue.
pub const PROGRESS_EVERY_CHUNKS: u32 = 16;

/// How long a mirror that failed as a whole (refused or timed out the
/// connection, answered 5xx, went too slow) is skipped by later downloads of
/// the session, so a dead mirror costs its timeout once, not once per bundle.
/// A failure of one file (404, wrong length or hash) does not count.
pub const MIRROR_DOWN_FOR: Duration = Duration::from_secs(60);

/// Bytes a mirror download gathers before one write to its partial file:
/// each write is a hop to tokio's blocking pool, so few large ones; but what
/// is buffered is lost if the client dies, and resume starts after the last
/// write, so not more than a slow mirror sends in a few seconds.
pub const MIRROR_WRITE_BUFFER: usize = 128 * 1024;

/// How often a host without a game frame (the headless client) polls the
/// event queue and the reload pacer, standing in for the game's frame.
pub const FRAME_POLL: Duration = Duration::from_millis(100);

/// How long joining waits for any of the server's addresses to complete a
/// handshake before saying it is unreachable: a handshake is a few round
/// trips, and QUIC resends lost handshake packets within a second or two
/// even on a lossy mobile link, so a server silent for this long is down,
/// mistyped or firewalled, and the player should hear so.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// When a name resolves to several addresses, how long one attempt may go
/// unanswered before the next starts beside it (RFC 8305's recommended
/// Happy Eyeballs delay): a dead first address costs this, not
/// [`CONNECT_TIMEOUT`].
pub const CONNECT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Most addresses of one server name tried when joining (each attempt has
/// its own socket and TLS state): a resolver that answers with hundreds
/// cannot make the client open hundreds of sockets. Real names have a few.
pub const MAX_CONNECT_ADDRESSES: usize = 8;

/// How long closing a session waits for the close to reach the server.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the DLL waits for its runtime's tasks when the game destroys a client.
pub const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);
