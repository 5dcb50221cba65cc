//! `shard-protocol`: the wire language spoken between a shard server and its
//! clients — message types, framing, every limit, and `fn_hash`.
//!
//! This crate holds no I/O policy (no sockets, no timeouts, no retry logic) and
//! must never depend on `shard-server`, `shard-client`, `shard-cache` or
//! `shard-reds`: both sides build on it, so it stays at the bottom of the graph.
//!
//! Decoding untrusted bytes never panics and never buffers more than
//! [`limits::MAX_FRAME`]; every violation is a [`ProtocolError`] that says what
//! was wrong.

#![forbid(unsafe_code)]

pub mod frame;
#[cfg(feature = "identity")]
pub mod identity;
pub mod limits;
pub mod messages;
pub mod mirror;
#[cfg(feature = "json")]
pub mod rpc_json;
pub mod text;

pub use frame::{FrameDecoder, decode_frame, encode_frame, read_frame, write_frame};
pub use messages::*;
pub use mirror::{
    MirrorAnswerProblem, bundle_file_name, check_mirror_answer, redirect_allowed, status_reason,
};

/// Version of the wire protocol; a `Hello` with another version is refused.
/// Version 3 has both of version 2's independent additions: `KeepAlive`
/// and `BundleRefused` (hostile-client bounds), and content offers
/// (`content_required`, sizes in `PluginAnnounce`, `AnnouncementsDone`).
/// Version 4 adds `ClientRpc` (pushed UI calling its plugin).
/// Version 5 adds `asset_mirrors` to `Welcome` (bundles from HTTP mirrors).
/// Version 6 adds `sha256` to `AssetBundle` (stale chunks told apart).
pub const PROTOCOL_VERSION: u16 = 6;

/// ALPN identifier negotiated by QUIC, so a shard client never talks to
/// something else by accident.
pub const ALPN: &[u8] = b"shard/1";

/// Plugin id of the builtin plugin, which carries the default popup handler.
pub const BUILTIN_PLUGIN_ID: u16 = 0;

/// RPC name of the builtin popup handler (`game.show_popup` sends it).
pub const POPUP_RPC: &str = "ShowPopup";

/// Shortens `s` to at most `max` bytes at a character boundary: the one way
/// every text handed on (to the game, into a message field) is capped.
pub fn clip_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// An error with its causes as one line, `what: why: deeper why`, leaving
/// out a cause whose text the message before already contains (many errors
/// here print their source in their own message): the one way the binaries
/// and the client's event reasons show an error to a person.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = cause.source();
    }
    out
}

/// QUIC application close codes, so a client can tell why it was closed
/// (the close reason carries the text for the player).
pub mod close_code {
    /// Orderly close: kicked, shutdown, replaced by a newer session.
    pub const KICKED: u32 = 1;
    /// The client broke the protocol (malformed, oversize, wrong version).
    pub const PROTOCOL: u32 = 2;
    /// The client sent or asked for too much, or stopped reading.
    pub const FLOOD: u32 = 3;
    /// The server refused the join (full, name, allowlist, address cap).
    pub const REFUSED: u32 = 4;
    /// The connection went silent.
    pub const IDLE: u32 = 5;
}

/// QUIC stream codes a client stops a bundle stream with, so the server can
/// tell why a transfer ended early.
pub mod stream_code {
    /// The client no longer wants the bundle this stream carries (its plugin
    /// was announced anew with other content, removed, or installed by other
    /// means): the server ends the transfer instead of sending the rest.
    pub const UNWANTED: u32 = 1;
}

/// FNV-1a 32-bit hash of an RPC name: the `fn_hash` carried by `PluginRpc`
/// and listed in `PluginAnnounce::rpc_whitelist`, so names never cross the wire.
pub const fn fn_hash(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

/// Everything that can be wrong with bytes received from a peer.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// A frame announced more bytes than [`limits::MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A datagram was larger than [`limits::MAX_DATAGRAM`].
    #[error("datagram of {len} bytes exceeds the limit of {max} bytes")]
    DatagramTooLarge {
        /// Actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame body is not a valid postcard encoding of a message.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message family was being decoded.
        what: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// The body decoded but bytes were left over.
    #[error("malformed {what}: {extra} trailing bytes after the message")]
    TrailingBytes {
        /// Which message family was being decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A field is longer than its limit.
    #[error("{field} is {len} {unit} long; the limit is {max}")]
    FieldTooLong {
        /// `Message.field`.
        field: &'static str,
        /// Actual length.
        len: usize,
        /// The limit.
        max: usize,
        /// "bytes", "characters" or "entries".
        unit: &'static str,
    },
    /// A field holds a value that is never valid (NaN coordinate, control chars…).
    #[error("{field} is invalid: {reason}")]
    InvalidField {
        /// `Message.field`.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// The underlying stream failed.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::{error_chain, fn_hash};

    #[derive(Debug, thiserror::Error)]
    #[error("opening {path}: {source}")]
    struct Opening {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot publish")]
    struct Publish(#[source] Opening);

    #[test]
    fn an_error_chain_names_each_cause_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        // The message already holds its source: not repeated.
        let e = Opening {
            path: "a",
            source: io(),
        };
        assert_eq!(error_chain(&e), "opening a: no such file");
        // A message without its source gets it appended, and so on down.
        let e = Publish(Opening {
            path: "a",
            source: io(),
        });
        assert_eq!(error_chain(&e), "cannot publish: opening a: no such file");
    }

    /// Published FNV-1a 32 test vectors (from the FNV reference test suite).
    #[test]
    fn fn_hash_matches_published_fnv1a_vectors() {
        assert_eq!(fn_hash(""), 0x811c_9dc5);
        assert_eq!(fn_hash("a"), 0xe40c_292c);
        assert_eq!(fn_hash("b"), 0xe70c_2de5);
        assert_eq!(fn_hash("foo"), 0xa9f3_7ed7);
        assert_eq!(fn_hash("foobar"), 0xbf9c_f968);
        assert_eq!(fn_hash("chongo was here!\n"), 0xd499_30d5);
    }

    #[test]
    fn fn_hash_is_usable_in_const_context() {
        const H: u32 = fn_hash("ShowPopup");
        assert_eq!(H, fn_hash("ShowPopup"));
        assert_ne!(fn_hash("ShowPopup"), fn_hash("showpopup"));
    }
}
