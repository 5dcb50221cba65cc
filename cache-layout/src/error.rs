//! Error types of the crate: every message names the entry or path at fault
//! and says what to do about it.

use std::io;
use std::path::PathBuf;

use crate::install::CrashPoint;

/// Why packing, unpacking or verifying a bundle failed; each variant names the
/// offending entry so a plugin author (or a client log) can act on it.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading a file or folder of the plugin failed while packing.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or folder that could not be read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The packed bundle is larger than `MAX_BUNDLE_PACKED`.
    #[error(
        "bundle of {plugin} is {} MB; the limit is {} MB (shrink or remove files under its assets/ folder)",
        mb(*size),
        mb(*limit)
    )]
    PackedTooLarge {
        /// The plugin whose bundle is too large (its folder name).
        plugin: String,
        /// Size of the packed bundle (or of the received bytes), in bytes.
        size: u64,
        /// The cap that was exceeded.
        limit: u64,
    },
    /// Received bundle bytes are larger than `MAX_BUNDLE_PACKED`; refused before hashing.
    #[error(
        "received bundle is {} MB; the limit is {} MB (the server must shrink this plugin's assets)",
        mb(*size),
        mb(*limit)
    )]
    ReceivedTooLarge {
        /// Size of the received bytes.
        size: u64,
        /// The cap that was exceeded.
        limit: u64,
    },
    /// The unpacked contents exceed `MAX_BUNDLE_UNPACKED` (or a decompression bomb was stopped).
    #[error(
        "bundle unpacks to more than {} MB at entry {entry}; the limit is {} MB (shrink the assets)",
        mb(*limit),
        mb(*limit)
    )]
    UnpackedTooLarge {
        /// The entry being read when the cap was hit (`<stream>` outside any entry).
        entry: String,
        /// The cap that was exceeded.
        limit: u64,
    },
    /// The bytes do not hash to the SHA-256 the server announced.
    #[error(
        "bundle hash mismatch: expected {expected}, got {actual} (the download is corrupt or was tampered with; it was discarded)"
    )]
    HashMismatch {
        /// Announced SHA-256, hex.
        expected: String,
        /// SHA-256 of the received bytes, hex.
        actual: String,
    },
    /// An entry has an absolute path (`/x`, `\x`, `C:x`).
    #[error(
        "bundle entry {path}: absolute paths are not allowed; use a path relative to the plugin folder"
    )]
    AbsolutePath {
        /// The entry path as found.
        path: String,
    },
    /// An entry has a `..` component.
    #[error("bundle entry {path}: `..` components are not allowed")]
    ParentDir {
        /// The entry path as found.
        path: String,
    },
    /// An entry (or a file while packing) is a symbolic link.
    #[error("bundle entry {path}: symbolic links are not allowed; copy the file instead")]
    Symlink {
        /// The entry or file path.
        path: String,
    },
    /// An entry is a hard link.
    #[error("bundle entry {path}: hard links are not allowed; copy the file instead")]
    HardLink {
        /// The entry path.
        path: String,
    },
    /// An entry is a device, fifo, socket or other special file.
    #[error("bundle entry {path}: {kind} entries are not allowed; only regular files and folders")]
    SpecialFile {
        /// The entry or file path.
        path: String,
        /// What it is (e.g. `character device`).
        kind: String,
    },
    /// The same path (compared case-insensitively, as on Windows) appears twice.
    #[error("bundle entry {path} appears more than once (paths are compared case-insensitively)")]
    Duplicate {
        /// The repeated entry path.
        path: String,
    },
    /// The file's extension is not on the allowlist for its folder.
    #[error("bundle entry {path}: extension not allowed here; allowed: {allowed}")]
    DisallowedExtension {
        /// The entry path.
        path: String,
        /// The extensions allowed in that folder, comma-separated.
        allowed: String,
    },
    /// The entry path is longer than `MAX_BUNDLE_PATH` bytes.
    #[error("bundle entry {path}: path is {len} bytes; the limit is {limit}")]
    PathTooLong {
        /// The entry path (lossy UTF-8).
        path: String,
        /// Its length in bytes.
        len: usize,
        /// The cap.
        limit: usize,
    },
    /// The entry is nested deeper than `MAX_BUNDLE_DEPTH`.
    #[error("bundle entry {path}: nesting depth {depth}; the limit is {limit}")]
    TooDeep {
        /// The entry path.
        path: String,
        /// Its depth (number of components).
        depth: usize,
        /// The cap.
        limit: usize,
    },
    /// The bundle holds more than `MAX_BUNDLE_ENTRIES` entries.
    #[error("bundle has more than {limit} entries (stopped at {path}); merge or remove files")]
    TooManyEntries {
        /// The first entry past the cap.
        path: String,
        /// The cap.
        limit: usize,
    },
    /// The path is malformed (not UTF-8, empty component, forbidden character, outside assets/ or client/ …).
    #[error("bundle entry {path}: {reason}")]
    BadPath {
        /// The entry path (lossy UTF-8).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The zstd or tar stream is corrupt or truncated.
    #[error("bundle is corrupt{}: {detail}", at_entry(entry))]
    Corrupt {
        /// The entry being read, if any.
        entry: Option<String>,
        /// What went wrong.
        detail: String,
    },
}

/// Why a `runtime_cache/` operation failed; wraps [`BundleError`] for bundle problems.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The bundle itself was refused.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The bundle's game content (archives, `.xl`, tweaks) was refused.
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    /// A file system operation in the cache failed.
    #[error(
        "runtime cache: {action} {path}: {source} (check permissions and free space, or run `shard-client cache clear`)"
    )]
    Io {
        /// What was being done (e.g. `writing`).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A change that must not run under another handle (clearing, garbage
    /// collection from the command line) found the cache open elsewhere.
    #[error(
        "runtime cache {root} is in use by a running client (the game or another shard-client); close it and try again"
    )]
    InUse {
        /// The cache's root folder.
        root: PathBuf,
    },
    /// A plugin name is not a safe folder name.
    #[error("invalid plugin name {name:?}: {reason}")]
    InvalidPluginName {
        /// The name as given (possibly truncated for display).
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A plugin version or server string is unusable.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidField {
        /// Which field (`version`, `server`, `address`, `fingerprint`).
        field: &'static str,
        /// The value as given (possibly truncated for display).
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The store does not hold the requested bundle.
    #[error("bundle {sha256} is not in the store; download it again")]
    MissingBundle {
        /// SHA-256 hex of the bundle.
        sha256: String,
    },
    /// The bundle unpacks to more than the server announced.
    #[error(
        "the bundle {sha256} unpacks to {unpacked} bytes, but the server announced {announced}"
    )]
    LargerThanAnnounced {
        /// SHA-256 hex of the bundle.
        sha256: String,
        /// Its unpacked size.
        unpacked: u64,
        /// The size the server announced.
        announced: u64,
    },
    /// The plugin is not installed.
    #[error("plugin {name} is not installed")]
    NotInstalled {
        /// The plugin name.
        name: String,
    },
    /// `.shard-bundle.json` of an installed plugin is missing or unreadable.
    #[error("{path}: bad install record: {detail} (reinstall the plugin or clear the cache)")]
    BadManifest {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A chunk was offered at an offset past the end of the partial download.
    #[error(
        "partial download {sha256}: chunk at offset {offset} but only {have} bytes are present; resume from {have}"
    )]
    PartialGap {
        /// SHA-256 hex of the bundle.
        sha256: String,
        /// The offset of the offered chunk.
        offset: u64,
        /// Bytes already present.
        have: u64,
    },
    /// Another handle on this cache has the bundle's shared partial file
    /// open (a download in progress), so a one-shot write or finish of it
    /// would mix with that download.
    #[error(
        "bundle {sha256} is being downloaded into this cache by another client sharing it; try again once that download ends"
    )]
    PartialBusy {
        /// SHA-256 hex of the bundle.
        sha256: String,
    },
    /// A download was opened for a bundle the store already holds (another
    /// client sharing the cache finished it): install from the store instead.
    #[error("bundle {sha256} is already in the store; it needs no download")]
    AlreadyStored {
        /// SHA-256 hex of the bundle.
        sha256: String,
    },
    /// The partial download would exceed `MAX_BUNDLE_PACKED`.
    #[error(
        "partial download {sha256} would reach {size} bytes; the limit is {limit}; the server sent too much"
    )]
    PartialTooLarge {
        /// SHA-256 hex of the bundle.
        sha256: String,
        /// The size it would reach.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// The server presented a key other than the pinned one.
    #[error(
        "server {address} presented key {presented} but {pinned} is pinned in known_servers; this may be an impostor. If the operator confirms the key changed, replace the pin"
    )]
    ServerKeyMismatch {
        /// The server address.
        address: String,
        /// The pinned fingerprint (hex).
        pinned: String,
        /// The fingerprint just presented (hex).
        presented: String,
    },
    /// `known_servers` has a line that is not `address fingerprint_hex`.
    #[error("{path}:{line}: expected `address fingerprint_hex`; fix or delete the line")]
    BadKnownServers {
        /// The file path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A test hook stopped the install at this step, as a crash would.
    #[error("install interrupted at {0:?} (simulated crash)")]
    SimulatedCrash(CrashPoint),
    /// A test hook stopped an eviction at this step, as a crash would.
    #[error("eviction interrupted at {0:?} (simulated crash)")]
    SimulatedEvictCrash(crate::usage::EvictStep),
    /// Even evicting every bundle the session does not use leaves no room.
    #[error(
        "the cache cap of {} MB cannot hold {} MB more: {} MB are in use by this session's content \
         (raise the cache cap or free space with `shard-client cache gc`)",
        mb(*cap), mb(*needed), mb(*kept)
    )]
    CapTooSmall {
        /// Bytes the new content needs.
        needed: u64,
        /// The cap.
        cap: u64,
        /// Bytes that may not be evicted.
        kept: u64,
    },
}

/// Formats a byte count as MB (MiB) with one decimal, dropping a trailing
/// `.0`: the one way sizes are shown to people (errors, offers, `cache ls`).
pub fn mb(bytes: u64) -> String {
    let tenths = bytes.saturating_mul(10).saturating_add(1 << 19) >> 20;
    if tenths.is_multiple_of(10) {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

/// Renders ` at entry X` when an entry is known.
fn at_entry(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!(" at entry {e}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mb_rounds_to_one_decimal_and_drops_zero() {
        assert_eq!(mb(5 * 1024 * 1024), "5");
        assert_eq!(mb(6_500_000), "6.2");
        assert_eq!(mb(0), "0");
        assert!(!mb(u64::MAX).is_empty());
    }

    #[test]
    fn packed_too_large_reads_like_the_issue() {
        let e = BundleError::PackedTooLarge {
            plugin: "popup_zone".into(),
            size: 6_500_000,
            limit: 5 * 1024 * 1024,
        };
        assert!(
            e.to_string()
                .starts_with("bundle of popup_zone is 6.2 MB; the limit is 5 MB")
        );
    }
}
