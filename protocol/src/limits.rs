//! Every cap of the protocol and of the data it carries, in one place.
//!
//! Both sides (server and client runtime) and the bundle code import these
//! constants; nothing else in the workspace may spell a limit as a literal.
//! Numbers only one side applies to its own parts live beside these: the
//! server's in `shard_server::tuning`, the client's in `shard_client::tuning`.

/// Largest encoded frame on the control or bundle stream, so a peer can never
/// make the other side buffer more than this for one message.
pub const MAX_FRAME: usize = 64 * 1024;

/// Smallest piece of a received frame kept as it arrived rather than copied
/// ([`crate::frame::FramePieces`]): a kept piece holds on to the whole receive
/// buffer it sits in (at most one 64 KiB UDP batch), so only large pieces,
/// which fill most of theirs, are worth not copying.
pub const FRAME_PIECE_KEEP_MIN: usize = 8 * 1024;

/// Most pieces of one frame kept as they arrived; the rest of the frame is
/// copied. With [`FRAME_PIECE_KEEP_MIN`] this bounds what a peer sending a
/// frame as many tiny pieces of large packets can make the receiver hold:
/// two receive buffers per frame, never one per byte.
pub const FRAME_PIECES_KEPT_MAX: usize = 2;

/// Largest datagram payload we send or accept (positions); below the QUIC
/// minimum MTU so it is never fragmented or refused.
pub const MAX_DATAGRAM: usize = 1200;

/// Most position updates in one `PeerMoved` datagram; 48 of at most 21
/// encoded bytes each stay under [`MAX_DATAGRAM`].
pub const MAX_MOVES_PER_DATAGRAM: usize = 48;

/// Largest JSON payload of one `PluginRpc`, so one RPC can never crowd the
/// control stream.
pub const MAX_RPC_JSON: usize = 16 * 1024;

/// Longest chat line, in characters (Unicode scalar values).
pub const MAX_CHAT_CHARS: usize = 512;

/// Longest popup text, in characters.
pub const MAX_POPUP_CHARS: usize = 512;

/// Longest player name, in bytes of UTF-8.
pub const MAX_PLAYER_NAME: usize = 32;

/// Longest plugin name (also its folder name in the cache), in bytes.
pub const MAX_PLUGIN_NAME: usize = 64;

/// Longest plugin version string, in bytes.
pub const MAX_PLUGIN_VERSION: usize = 32;

/// Longest server name shown to players, in bytes.
pub const MAX_SERVER_NAME: usize = 64;

/// Longest entity template name (e.g. `veh_commandcenter`), in bytes.
pub const MAX_TEMPLATE: usize = 128;

/// Longest interaction action name (e.g. `use_door`), in bytes.
pub const MAX_ACTION: usize = 64;

/// Longest human-readable reason (kick, install error), in bytes.
pub const MAX_REASON: usize = 512;

/// Longest hex fingerprint we carry (SHA-256 as hex is 64).
pub const MAX_FINGERPRINT: usize = 64;

/// Most RPC names one plugin may whitelist.
pub const MAX_RPC_WHITELIST: usize = 256;

/// Most bundle requests in one `NeedBundles`.
pub const MAX_BUNDLE_REQUESTS: usize = 256;

/// Largest UDP payload the client accepts, and the largest packet the server
/// sends over a route whose MTU is above Ethernet's 1500 (loopback, a LAN
/// with jumbo frames); over standard routes packets stay at quinn's 1452.
/// It is the most one IPv4 datagram carries (65,535 bytes less 20 of IP and
/// 8 of UDP header), so where the route allows it (loopback) every packet is
/// one full send: half the packets of 32 KiB ones, and every packet costs
/// both ends CPU (`bundle_push`: about 8% less server CPU in a 64-client push).
pub const UDP_PAYLOAD_CEILING: u16 = 65_507;

/// Size of one `AssetBundle` chunk on a bundle stream.
pub const CHUNK_SIZE: usize = 32 * 1024;

/// Largest packed (compressed) plugin bundle, as the mission states (5 MiB).
pub const MAX_BUNDLE_PACKED: u64 = 5 * 1024 * 1024;

/// Largest total unpacked size of one bundle, so a decompression bomb stops here.
pub const MAX_BUNDLE_UNPACKED: u64 = 64 * 1024 * 1024;

/// Most entries (files and folders) in one bundle.
pub const MAX_BUNDLE_ENTRIES: usize = 4096;

/// Longest path of a bundle entry, in bytes.
pub const MAX_BUNDLE_PATH: usize = 200;

/// Deepest folder nesting of a bundle entry (`a/b/c.ent` has depth 3).
pub const MAX_BUNDLE_DEPTH: usize = 8;

/// Largest zstd window (as a power of two: 2^23 = 8 MiB) a bundle decoder
/// accepts, so a crafted frame header cannot make the client reserve a huge
/// decoding window; the packer's level-3 frames use at most 2^21.
pub const MAX_BUNDLE_WINDOW_LOG: u32 = 23;

/// Most plugins a server may announce (plugin ids are `u16`; 0 is builtin).
pub const MAX_PLUGINS: usize = 1024;

/// Deepest nesting of arrays and objects in one RPC payload (either way),
/// checked before the JSON is parsed so no parser recursion depends on a peer.
pub const MAX_RPC_JSON_DEPTH: usize = 16;

/// `ClientRpc` messages a player may send per second (burst of the same
/// size); extra ones are dropped and counted, never delivered to a plugin.
pub const DEFAULT_CLIENT_RPC_PER_SEC: u32 = 10;

/// Chat lines a client may send per second before it is disconnected for flooding.
pub const DEFAULT_CHAT_PER_SEC: u32 = 5;

/// Position datagrams a client may send per second before extra ones are dropped.
pub const DEFAULT_DATAGRAMS_PER_SEC: u32 = 60;

/// Deepest real nesting (blocks, expressions, interpolations) of a client
/// script (REDscript) in a bundle, so hostile input is a parse error, never a
/// stack overflow in the server's check or the player's client.
pub const MAX_SCRIPT_DEPTH: usize = 128;

/// Most files one `.archive` (RDAR) may list, so a crafted file table cannot
/// make a checker or the game allocate for millions of entries.
pub const MAX_ARCHIVE_FILES: usize = 4096;

/// Most data segments one `.archive` may list (a file has one or more).
pub const MAX_ARCHIVE_SEGMENTS: usize = 16 * 1024;

/// Most resource dependencies one `.archive` may list.
pub const MAX_ARCHIVE_DEPENDENCIES: usize = 16 * 1024;

/// Largest total uncompressed size the segments of one `.archive` may
/// declare (what the game would inflate), so a small archive cannot claim
/// gigabytes.
pub const MAX_ARCHIVE_UNPACKED: u64 = 256 * 1024 * 1024;

/// Largest YAML file (`.xl` or tweak) a bundle may carry, in bytes.
pub const MAX_YAML_BYTES: usize = 256 * 1024;

/// Deepest nesting of mappings and sequences in a bundled YAML file.
pub const MAX_YAML_DEPTH: usize = 32;

/// Most nodes a bundled YAML file may hold once its aliases are expanded,
/// so an alias bomb stops here.
pub const MAX_YAML_NODES: usize = 20_000;

/// Most aliases (`*name`) a bundled YAML file may use.
pub const MAX_YAML_ALIASES: usize = 64;

// --- Player safety against hostile servers (client runtime policy) ---

/// Most bytes of events (as JSON) waiting for the game to take them; a server
/// that floods past this is disconnected, so the game's memory stays bounded.
pub const MAX_EVENT_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// Longest text field (RPC JSON, chat, paths) in an event handed to the game.
pub const MAX_GAME_STRING: usize = MAX_RPC_JSON;

/// Most plugins listed one by one in a `content_offer` event (the totals
/// always cover all of them), so one offer stays a small event.
pub const MAX_OFFER_PLUGINS_LISTED: usize = 64;

/// Default per-server quota: the unpacked size of everything one server may
/// ask a player to hold at once (256 MiB).
pub const DEFAULT_SERVER_QUOTA: u64 = 256 * 1024 * 1024;

/// Default cap on the whole runtime cache (packed store plus installed
/// files, 2 GiB); least recently used bundles of other servers are evicted.
pub const DEFAULT_CACHE_CAP: u64 = 2 * 1024 * 1024 * 1024;

/// Default least time between two script (or resource) reload requests to
/// the game, in milliseconds; changes in between are coalesced.
pub const DEFAULT_RELOAD_INTERVAL_MS: u64 = 5_000;

/// How much (in percent) a remembered server's content may grow before the
/// player is asked again.
pub const REMEMBERED_GROWTH_PERCENT: u64 = 25;

/// Most servers whose content answers are remembered; the oldest is forgotten.
pub const MAX_REMEMBERED_SERVERS: usize = 1024;

/// Most bundles tracked in the cache's usage ledger; beyond it the least
/// recently used are evicted first.
pub const MAX_LEDGER_BUNDLES: usize = 65_536;

/// Extra transfers of one bundle a connection may get after the first (a
/// client asks again only when what it received failed to verify), so one
/// connection costs at most `1 + MAX_BUNDLE_RETRIES` copies of what it lacked.
pub const MAX_BUNDLE_RETRIES: u32 = 1;

/// Bundle transfers one connection may have running at once; further
/// requests wait in that connection's queue.
pub const MAX_CONCURRENT_TRANSFERS: usize = 2;

/// Refused bundle requests a connection may make before it is disconnected for abuse.
pub const MAX_BUNDLE_REFUSALS: u32 = 16;

/// Bytes one connection may have sent and not yet acknowledged (QUIC send
/// window); a connection with bundle transfers running holds this much of
/// the server-wide bundle budget.
pub const BUNDLE_SEND_WINDOW: u64 = 2 * 1024 * 1024;

/// Default server-wide cap on bundle bytes in flight (a multiple of [`BUNDLE_SEND_WINDOW`]).
pub const DEFAULT_BUNDLE_BYTES_IN_FLIGHT: u64 = 32 * 1024 * 1024;

/// Most asset mirrors a server may list in `Welcome` (each is tried in
/// order, so a long list only delays the fallback to QUIC).
pub const MAX_ASSET_MIRRORS: usize = 8;

/// Longest asset mirror base URL, in bytes.
pub const MAX_MIRROR_URL: usize = 512;

/// Largest extra mirror CA file (`--mirror-ca`, the C ABI's `"mirror_ca"`,
/// the server's `mirror_ca`): a CA bundle is a few KiB (the whole public
/// web's roots are about 200 KiB).
pub const MAX_MIRROR_CA_BYTES: u64 = 1024 * 1024;

/// Redirects a client follows for one mirror request (each only to a host
/// on the server's mirror list).
pub const MAX_MIRROR_REDIRECTS: usize = 4;

/// Default seconds a client waits for a mirror's TCP/TLS connection.
pub const DEFAULT_MIRROR_CONNECT_TIMEOUT_SECS: u64 = 5;

/// Default seconds a mirror response may send nothing before the client
/// gives up on that mirror.
pub const DEFAULT_MIRROR_READ_TIMEOUT_SECS: u64 = 10;

/// Default slowest average a mirror download may keep (bytes per second,
/// measured after [`MIRROR_PROGRESS_GRACE_SECS`]); a slower mirror fails
/// over to the next one or to QUIC.
pub const DEFAULT_MIRROR_MIN_BYTES_PER_SEC: u64 = 32 * 1024;

/// Seconds of a mirror download before the minimum-progress rule applies
/// (connection set-up and slow start).
pub const MIRROR_PROGRESS_GRACE_SECS: u64 = 3;

/// Default number of bundles a client downloads from mirrors at once.
pub const DEFAULT_MIRROR_CONCURRENCY: usize = 4;

/// Most bundles a client may be told to download from mirrors at once.
pub const MAX_MIRROR_CONCURRENCY: usize = 32;

/// Longest mirror connect or read timeout a client may be given, seconds.
pub const MAX_MIRROR_TIMEOUT_SECS: u64 = 300;

/// Highest minimum pace a client may ask of mirror downloads, KiB/s (1 GiB/s).
pub const MAX_MIRROR_MIN_KIB_PER_SEC: u64 = 1024 * 1024;

/// Default seconds a bundle transfer may make no progress before the client
/// is disconnected as one that does not read.
pub const DEFAULT_BUNDLE_STALL_SECS: u64 = 15;

/// Interval of the client's keep-alive, in seconds; servers must allow more
/// than twice this before they call a connection idle.
pub const KEEPALIVE_SECS: u64 = 5;

/// Default seconds a joined connection may send nothing at all (no frame,
/// datagram or keep-alive) before the server closes it.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 30;

/// Default number of connections (and so joins) one source address may hold at once.
pub const DEFAULT_MAX_PER_ADDRESS: usize = 4;

/// Default number of `max_players` slots kept for admin keys.
pub const DEFAULT_ADMIN_SLOTS: usize = 2;

/// Fewest hex digits of a key fingerprint that name a player in commands.
pub const MIN_FINGERPRINT_PREFIX: usize = 6;

/// Seconds over which repeated warnings of one peer and cause are folded into one line.
pub const WARN_WINDOW_SECS: u64 = 10;
