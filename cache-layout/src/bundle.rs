//! The bundle format: a deterministic tar (ustar headers) compressed with
//! zstd level 3, holding `assets/**` and `client/*.reds` of one plugin.
//!
//! Packing reads a plugin folder from disk and refuses anything a client would
//! refuse. Unpacking treats its input as hostile: it checks the hash first,
//! then every header, and reads through size-limited readers so a
//! decompression bomb stops at `MAX_BUNDLE_UNPACKED` without allocating past it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use shard_protocol::limits::{
    MAX_BUNDLE_DEPTH, MAX_BUNDLE_ENTRIES, MAX_BUNDLE_PACKED, MAX_BUNDLE_PATH, MAX_BUNDLE_UNPACKED,
    MAX_BUNDLE_WINDOW_LOG,
};
use tar::{EntryType, Header};

use crate::error::{BundleError, CacheError};
use crate::fsutil::{READ_PIECE, io_err, write_synced};

/// zstd level the packer uses; fixed so the same files always give the same bytes.
const ZSTD_LEVEL: i32 = 3;

/// Size of one tar block (header or data padding unit).
const TAR_BLOCK: u64 = 512;

/// The three top-level folders a bundle may contain.
pub const BUNDLE_ROOTS: [&str; 3] = [ASSETS_DIR, CLIENT_DIR, TWEAKS_DIR];

/// Top-level folder holding game content: `.archive` files with their
/// ArchiveXL `.xl`, and the `.csv`/`.json` files an `.xl` references.
pub const ASSETS_DIR: &str = "assets";

/// Top-level folder holding client REDscript (flat, `.reds` only).
pub const CLIENT_DIR: &str = "client";

/// Top-level folder holding TweakXL tweaks (flat, YAML only).
pub const TWEAKS_DIR: &str = "tweaks";

/// Extensions (lowercase, without the dot) allowed under `assets/`: what the
/// game and ArchiveXL load. Loose resources (`.ent`, `.mesh` …) are not:
/// the game only loads them packed in an `.archive`.
pub const ASSET_EXTENSIONS: &[&str] = &["archive", "xl", "csv", "json"];

/// Extensions allowed only directly in `assets/` (no sub-folder): archives
/// and their `.xl`, which the game looks for side by side.
pub const ASSET_FLAT_EXTENSIONS: &[&str] = &["archive", "xl"];

/// Extensions allowed directly under `client/`: only REDscript.
pub const CLIENT_EXTENSIONS: &[&str] = &["reds"];

/// Extensions allowed directly under `tweaks/`: TweakXL's YAML form.
pub const TWEAK_EXTENSIONS: &[&str] = &["yaml", "yml"];

/// Why TweakXL's own `.tweak` format is refused (said to authors as is).
pub const TWEAK_FORMAT_REFUSED: &str = "TweakXL's .tweak format is not accepted yet (only its YAML form is checked); write this tweak as tweaks/NAME.yaml";

/// A packed bundle, ready to store or send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedBundle {
    /// The `.tar.zst` bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`; the bundle's identity everywhere.
    pub sha256: [u8; 32],
    /// Total size of the files once unpacked, in bytes.
    pub unpacked_len: u64,
    /// Number of tar entries (files and folders).
    pub entries: usize,
}

impl PackedBundle {
    /// The SHA-256 as lowercase hex, as used in store file names and messages.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// One regular file of an unpacked bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Relative path with `/` separators, e.g. `assets/ui/popup.inkwidget`.
    pub path: String,
    /// The file's bytes, or where they were staged.
    pub contents: FileContents,
}

/// Where an unpacked file's bytes are. An unpack into memory holds every
/// file; an unpack into a staging folder streams each `.archive` (the large
/// files: game content the checks read only by offset) to disk and holds
/// only the small files the checks parse, so installing a bundle never
/// holds its archives in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContents {
    /// The bytes themselves.
    Memory(Vec<u8>),
    /// Written (and synced) to this file in the staging folder.
    Staged {
        /// The staged file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
}

impl FileContents {
    /// The bytes, when held in memory (every file but a staged archive).
    pub fn in_memory(&self) -> Option<&[u8]> {
        match self {
            FileContents::Memory(b) => Some(b),
            FileContents::Staged { .. } => None,
        }
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            FileContents::Memory(b) => b.len() as u64,
            FileContents::Staged { len, .. } => *len,
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The verified contents of a bundle, in archive order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackedBundle {
    /// Folders (relative paths, no trailing `/`), parents before children.
    pub dirs: Vec<String>,
    /// Regular files with their contents.
    pub files: Vec<BundleFile>,
    /// Sum of the file sizes, in bytes.
    pub unpacked_len: u64,
}

/// SHA-256 of some bytes; the one hash function of the bundle format.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The extensions allowed under a top-level folder, or `None` for a folder
/// that may not be in a bundle.
fn extensions_of(root: &str) -> Option<&'static [&'static str]> {
    match root {
        ASSETS_DIR => Some(ASSET_EXTENSIONS),
        CLIENT_DIR => Some(CLIENT_EXTENSIONS),
        TWEAKS_DIR => Some(TWEAK_EXTENSIONS),
        _ => None,
    }
}

/// The lowercase-as-written extension of a file path, if its name has a stem.
fn extension_of(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next().unwrap_or(path);
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => Some(ext),
        _ => None,
    }
}

/// Whether `path` (relative, `/`-separated file path) may be in a bundle by
/// its folder, extension and depth; the single place the allowlist is applied.
pub fn extension_allowed(path: &str) -> bool {
    let (root, _) = path.split_once('/').unwrap_or((path, ""));
    let (Some(list), Some(ext)) = (extensions_of(root), extension_of(path)) else {
        return false;
    };
    let depth = path.split('/').count();
    let flat = root != ASSETS_DIR || ASSET_FLAT_EXTENSIONS.contains(&ext);
    list.contains(&ext) && (!flat || depth == 2)
}

/// Checks one entry path (files: `is_dir == false`) against every path rule:
/// relative, no `..`, UTF-8, portable characters, under `assets/` or `client/`,
/// length, depth and (for files) the extension allowlist.
pub fn check_entry_path(raw: &[u8], is_dir: bool) -> Result<String, BundleError> {
    let lossy = String::from_utf8_lossy(raw).into_owned();
    if raw.len() > MAX_BUNDLE_PATH {
        return Err(BundleError::PathTooLong {
            path: lossy,
            len: raw.len(),
            limit: MAX_BUNDLE_PATH,
        });
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(BundleError::BadPath {
            path: lossy,
            reason: "path is not UTF-8".into(),
        });
    };
    let bytes = text.as_bytes();
    let drive = bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic();
    if text.starts_with('/') || text.starts_with('\\') || drive {
        return Err(BundleError::AbsolutePath { path: lossy });
    }
    let trimmed = if is_dir {
        text.strip_suffix('/').unwrap_or(text)
    } else {
        text
    };
    let parts: Vec<&str> = trimmed.split(['/', '\\']).collect();
    if parts.contains(&"..") {
        return Err(BundleError::ParentDir { path: lossy });
    }
    if text.contains('\\') {
        return Err(BundleError::BadPath {
            path: lossy,
            reason: "use `/` as the separator, not `\\`".into(),
        });
    }
    for part in &parts {
        if part.is_empty() || *part == "." {
            return Err(BundleError::BadPath {
                path: lossy,
                reason: "empty or `.` path component".into(),
            });
        }
        if let Some(c) = part
            .chars()
            .find(|c| c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*'))
        {
            return Err(BundleError::BadPath {
                path: lossy,
                reason: format!("character {c:?} is not portable to Windows"),
            });
        }
        if is_windows_device_name(part) {
            return Err(BundleError::BadPath {
                path: lossy,
                reason: format!("{part} is a reserved device name on Windows"),
            });
        }
        if part.ends_with('.') || part.ends_with(' ') {
            return Err(BundleError::BadPath {
                path: lossy,
                reason: "a name may not end with `.` or a space (Windows drops them)".into(),
            });
        }
    }
    if parts.len() > MAX_BUNDLE_DEPTH {
        return Err(BundleError::TooDeep {
            path: lossy,
            depth: parts.len(),
            limit: MAX_BUNDLE_DEPTH,
        });
    }
    let root = parts[0];
    let Some(list) = extensions_of(root) else {
        return Err(BundleError::BadPath {
            path: lossy,
            reason: "only assets/, tweaks/ and client/ may be in a bundle".into(),
        });
    };
    if root != ASSETS_DIR && parts.len() > 2 - usize::from(is_dir) {
        return Err(BundleError::BadPath {
            path: lossy,
            reason: format!("{root}/ holds its files directly, without sub-folders"),
        });
    }
    if !is_dir && root == TWEAKS_DIR && extension_of(trimmed) == Some("tweak") {
        return Err(BundleError::BadPath {
            path: lossy,
            reason: TWEAK_FORMAT_REFUSED.into(),
        });
    }
    if !is_dir
        && root == ASSETS_DIR
        && parts.len() > 2
        && extension_of(trimmed).is_some_and(|e| ASSET_FLAT_EXTENSIONS.contains(&e))
    {
        return Err(BundleError::BadPath {
            path: lossy,
            reason: ".archive and .xl files go directly in assets/, where the game looks for them side by side".into(),
        });
    }
    if !is_dir && (parts.len() < 2 || !extension_allowed(trimmed)) {
        return Err(BundleError::DisallowedExtension {
            path: lossy,
            allowed: list
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(trimmed.to_owned())
}

/// Whether a file or folder name is a Windows device name (`CON`, `nul.json`,
/// `COM1.txt` …), which Windows opens as a device instead of a file.
pub fn is_windows_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let upper = stem.to_ascii_uppercase();
    let numbered = (upper.starts_with("COM") || upper.starts_with("LPT"))
        && upper.len() == 4
        && upper.as_bytes()[3].is_ascii_digit();
    numbered || ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"].contains(&upper.as_str())
}

/// One plugin's bundle folder read into memory once: the folders and files a
/// bundle will hold, checked against every path rule and limit while reading.
/// Hashing, packing and the policy checks all work from this one copy, so a
/// load never goes back to the disk (and never sees two different versions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleSource {
    /// The plugin folder it was read from (for messages).
    dir: PathBuf,
    /// Folders, as bundle paths (`assets/ui`), sorted.
    dirs: BTreeSet<String>,
    /// Files by bundle path (`client/a.reds`), sorted, with their bytes.
    files: BTreeMap<String, Vec<u8>>,
    /// Sum of the file sizes, in bytes.
    unpacked_len: u64,
}

impl BundleSource {
    /// The plugin folder this was read from, so messages can name files on disk.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Folders (bundle paths, `/`-separated), sorted, for hashing what a bundle holds.
    pub fn dirs(&self) -> impl Iterator<Item = &str> {
        self.dirs.iter().map(String::as_str)
    }

    /// Files (bundle path, bytes) sorted by path, for hashing and checking without the disk.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, b)| (p.as_str(), b.as_slice()))
    }

    /// Total size of the files, in bytes (what the bundle unpacks to).
    pub fn unpacked_len(&self) -> u64 {
        self.unpacked_len
    }

    /// Packs these files into the deterministic bundle (same files, same bytes).
    pub fn pack(&self) -> Result<PackedBundle, BundleError> {
        pack_entries(self)
    }
}

/// Reads `plugin_dir/assets/**`, `plugin_dir/tweaks/*` and
/// `plugin_dir/client/*.reds` into memory, refusing anything a client would
/// refuse (links, special files, bad paths) and stopping at the entry and
/// unpacked-size limits; a missing folder reads as an empty bundle.
pub fn read_plugin_dir(plugin_dir: &Path) -> Result<BundleSource, BundleError> {
    let mut dirs = BTreeSet::new();
    let mut paths = BTreeMap::new();
    for root in BUNDLE_ROOTS {
        let dir = plugin_dir.join(root);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {
                dirs.insert(root.to_owned());
                walk(&dir, root, &mut dirs, &mut paths)?;
            }
            Ok(meta) => return Err(refuse_kind(&dir, &meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(BundleError::Io { path: dir, source }),
        }
    }
    // Read in bundle order, so the size limit always trips on the same file.
    let mut files = BTreeMap::new();
    let mut unpacked_len = 0u64;
    for (rel, disk) in paths {
        let remaining = MAX_BUNDLE_UNPACKED - unpacked_len;
        let io_err = |source| BundleError::Io {
            path: disk.clone(),
            source,
        };
        let file = fs::File::open(&disk).map_err(io_err)?;
        let mut data = Vec::new();
        file.take(remaining.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(io_err)?;
        let len = data.len() as u64;
        if len > remaining {
            return Err(BundleError::UnpackedTooLarge {
                entry: disk.display().to_string(),
                limit: MAX_BUNDLE_UNPACKED,
            });
        }
        unpacked_len += len;
        files.insert(rel, data);
    }
    Ok(BundleSource {
        dir: plugin_dir.to_path_buf(),
        dirs,
        files,
        unpacked_len,
    })
}

/// Packs `plugin_dir/assets/**`, `plugin_dir/tweaks/*` and
/// `plugin_dir/client/*.reds` into a deterministic bundle; the folder name is
/// the plugin name used in errors. Reads the folder once, like [`read_plugin_dir`].
pub fn pack_plugin_dir(plugin_dir: &Path) -> Result<PackedBundle, BundleError> {
    read_plugin_dir(plugin_dir)?.pack()
}

/// Error for a path that is neither a regular file nor a folder.
fn refuse_kind(path: &Path, meta: &fs::Metadata) -> BundleError {
    let shown = path.display().to_string();
    if meta.file_type().is_symlink() {
        BundleError::Symlink { path: shown }
    } else if meta.is_file() {
        BundleError::BadPath {
            path: shown,
            reason: "expected a folder".into(),
        }
    } else {
        BundleError::SpecialFile {
            path: shown,
            kind: "special file".into(),
        }
    }
}

/// Collects folders and files below `dir` (whose bundle path is `rel`),
/// refusing links and special files; a folder's path is checked before its
/// contents are listed, so a too-deep tree stops at the depth limit.
fn walk(
    dir: &Path,
    rel: &str,
    dirs: &mut BTreeSet<String>,
    files: &mut BTreeMap<String, PathBuf>,
) -> Result<(), BundleError> {
    let walker = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .follow_root_links(false);
    for entry in walker {
        let entry = entry.map_err(|e| BundleError::Io {
            path: e.path().unwrap_or(dir).to_path_buf(),
            source: e.into(),
        })?;
        let path = entry.path();
        let mut child = rel.to_owned();
        for part in path.strip_prefix(dir).unwrap_or(path).components() {
            let Some(name) = part.as_os_str().to_str() else {
                return Err(BundleError::BadPath {
                    path: path.display().to_string(),
                    reason: "file name is not UTF-8".into(),
                });
            };
            child.push('/');
            child.push_str(name);
        }
        let ft = entry.file_type();
        if ft.is_symlink() {
            return Err(BundleError::Symlink {
                path: path.display().to_string(),
            });
        } else if ft.is_dir() {
            check_entry_path(child.as_bytes(), true).map_err(|e| with_disk_path(e, path))?;
            dirs.insert(child);
        } else if ft.is_file() {
            check_entry_path(child.as_bytes(), false).map_err(|e| with_disk_path(e, path))?;
            files.insert(child, path.to_path_buf());
        } else {
            let meta = entry.metadata().map_err(|e| BundleError::Io {
                path: path.to_path_buf(),
                source: e.into(),
            })?;
            return Err(refuse_kind(path, &meta));
        }
        if dirs.len() + files.len() > MAX_BUNDLE_ENTRIES {
            return Err(BundleError::TooManyEntries {
                path: path.display().to_string(),
                limit: MAX_BUNDLE_ENTRIES,
            });
        }
    }
    Ok(())
}

/// Rewrites a path error to show the on-disk path, so authors find the file.
fn with_disk_path(err: BundleError, disk: &Path) -> BundleError {
    match err {
        BundleError::DisallowedExtension { allowed, .. } => BundleError::DisallowedExtension {
            path: disk.display().to_string(),
            allowed,
        },
        BundleError::BadPath { reason, .. } => BundleError::BadPath {
            path: disk.display().to_string(),
            reason,
        },
        other => other,
    }
}

/// Builds the deterministic tar from the sorted folders and files and compresses it.
fn pack_entries(source: &BundleSource) -> Result<PackedBundle, BundleError> {
    // Folders sort as `name/` so a parent always precedes its children.
    let mut order: Vec<(String, Option<&[u8]>)> = source
        .dirs
        .iter()
        .map(|d| (format!("{d}/"), None))
        .chain(
            source
                .files
                .iter()
                .map(|(p, data)| (p.clone(), Some(data.as_slice()))),
        )
        .collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));

    let mut builder = tar::Builder::new(Vec::new());
    let tar_err = |e| BundleError::Io {
        path: source.dir.clone(),
        source: e,
    };
    for (name, data) in &order {
        let mut header = Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match data {
            None => {
                header.set_entry_type(EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                set_name(&mut header, name)?;
                header.set_cksum();
                builder.append(&header, io::empty()).map_err(tar_err)?;
            }
            Some(data) => {
                header.set_entry_type(EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                set_name(&mut header, name)?;
                header.set_cksum();
                builder.append(&header, *data).map_err(tar_err)?;
            }
        }
    }
    let tar_bytes = builder.into_inner().map_err(tar_err)?;
    let bytes = zstd::stream::encode_all(tar_bytes.as_slice(), ZSTD_LEVEL).map_err(tar_err)?;
    let size = bytes.len() as u64;
    if size > MAX_BUNDLE_PACKED {
        let plugin = source
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "?".into());
        return Err(BundleError::PackedTooLarge {
            plugin,
            size,
            limit: MAX_BUNDLE_PACKED,
        });
    }
    Ok(PackedBundle {
        sha256: sha256(&bytes),
        bytes,
        unpacked_len: source.unpacked_len,
        entries: order.len(),
    })
}

/// Sets a ustar path (split into prefix/name when needed), refusing paths that do not fit.
fn set_name(header: &mut Header, name: &str) -> Result<(), BundleError> {
    header.set_path(name).map_err(|e| BundleError::BadPath {
        path: name.to_owned(),
        reason: format!("does not fit a tar header ({e}); shorten the file name"),
    })
}

/// Marker carried in an `io::Error` when the decompressed stream exceeds its cap.
#[derive(Debug)]
struct CapExceeded;

impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed stream exceeds its cap")
    }
}

impl std::error::Error for CapExceeded {}

/// A `Read::take` that fails (instead of reporting end of file) when more data
/// than the cap is available, so a bomb is told apart from a short stream.
struct CapReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for CapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(CapExceeded)),
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Whether an I/O error is our cap marker.
fn is_cap(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<CapExceeded>())
}

/// Maps a read error while unpacking to the right bundle error.
fn read_error(err: io::Error, entry: Option<&str>) -> BundleError {
    if is_cap(&err) {
        BundleError::UnpackedTooLarge {
            entry: entry.unwrap_or("<stream>").to_owned(),
            limit: MAX_BUNDLE_UNPACKED,
        }
    } else {
        BundleError::Corrupt {
            entry: entry.map(str::to_owned),
            detail: err.to_string(),
        }
    }
}

/// Checks untrusted packed bytes against the size limit and the announced SHA-256.
pub(crate) fn check_packed(bytes: &[u8], expected_sha256: &[u8; 32]) -> Result<(), BundleError> {
    let size = bytes.len() as u64;
    if size > MAX_BUNDLE_PACKED {
        return Err(BundleError::ReceivedTooLarge {
            size,
            limit: MAX_BUNDLE_PACKED,
        });
    }
    check_hash(&sha256(bytes), expected_sha256)
}

/// Compares a computed hash with the announced one.
pub(crate) fn check_hash(actual: &[u8; 32], expected: &[u8; 32]) -> Result<(), BundleError> {
    if actual != expected {
        return Err(BundleError::HashMismatch {
            expected: hex::encode(expected),
            actual: hex::encode(actual),
        });
    }
    Ok(())
}

/// Verifies untrusted bundle bytes against the announced SHA-256 and unpacks
/// them in memory, refusing every unsafe or over-limit entry.
pub fn unpack_bundle(
    bytes: &[u8],
    expected_sha256: &[u8; 32],
) -> Result<UnpackedBundle, BundleError> {
    check_packed(bytes, expected_sha256)?;
    match unpack_stream(bytes, Dest::Memory) {
        Ok((unpacked, _)) => Ok(unpacked),
        Err(CacheError::Bundle(e)) => Err(e),
        // Unpacking into memory writes no file; kept as a corrupt bundle all the same.
        Err(other) => Err(BundleError::Corrupt {
            entry: None,
            detail: other.to_string(),
        }),
    }
}

/// Where [`unpack_stream`] puts the files it unpacks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dest<'a> {
    /// Every file's bytes in memory.
    Memory,
    /// Every folder and file written (and synced) under this new, empty
    /// staging folder; archives are streamed there in small pieces and
    /// never held in memory, other files are also kept in memory for the checks.
    /// Files that would take the total past the second field (the unpacked
    /// size the server announced) are only read through and counted, not
    /// written or kept: the caller refuses such a bundle by its
    /// `unpacked_len`, and a server cannot make the client write more than
    /// it announced.
    Staging(&'a Path, u64),
    /// Only the client scripts (`client/`) in memory; every other file is
    /// read through, checked and counted, and not kept (re-checking the
    /// scripts of a bundle already installed).
    Scripts,
}

/// Unpacks a packed bundle read from `input` (the caller checks its hash:
/// before, for bytes in memory, or after, from the returned reader, which
/// holds whatever the decoder did not need) into `dest`, refusing every
/// unsafe or over-limit entry. Bundle faults are `CacheError::Bundle`;
/// failures to write the staging folder are `CacheError::Io`.
pub(crate) fn unpack_stream<R: io::BufRead>(
    input: R,
    dest: Dest<'_>,
) -> Result<(UnpackedBundle, R), CacheError> {
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(input).map_err(|e| read_error(e, None))?;
    decoder
        .window_log_max(MAX_BUNDLE_WINDOW_LOG)
        .map_err(|e| read_error(e, None))?;
    // Tar framing: per entry one header block plus under one block of padding,
    // plus the end-of-archive blocks; the file data itself is capped separately.
    let overhead = (MAX_BUNDLE_ENTRIES as u64 + 4) * 2 * TAR_BLOCK;
    let capped = CapReader {
        inner: decoder,
        remaining: MAX_BUNDLE_UNPACKED + overhead,
    };
    let mut archive = tar::Archive::new(capped);
    let mut out = UnpackedBundle::default();
    let mut seen = HashSet::new();
    let mut file_keys: HashSet<String> = HashSet::new();
    let mut dir_keys: HashSet<String> = HashSet::new();
    let mut count = 0usize;
    let mut piece = Vec::new();
    {
        let entries = archive.entries().map_err(|e| read_error(e, None))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| read_error(e, None))?;
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            count += 1;
            if count > MAX_BUNDLE_ENTRIES {
                return Err(BundleError::TooManyEntries {
                    path: shown,
                    limit: MAX_BUNDLE_ENTRIES,
                }
                .into());
            }
            let kind = entry.header().entry_type();
            let is_dir = match kind {
                EntryType::Regular | EntryType::Continuous => false,
                EntryType::Directory => true,
                EntryType::Symlink => return Err(BundleError::Symlink { path: shown }.into()),
                EntryType::Link => return Err(BundleError::HardLink { path: shown }.into()),
                other => {
                    let kind = match other {
                        EntryType::Char => "character device".to_owned(),
                        EntryType::Block => "block device".to_owned(),
                        EntryType::Fifo => "fifo".to_owned(),
                        EntryType::GNUSparse => "sparse file".to_owned(),
                        o => format!("tar type {:?}", o.as_byte() as char),
                    };
                    return Err(BundleError::SpecialFile { path: shown, kind }.into());
                }
            };
            let path = check_entry_path(&raw, is_dir)?;
            let key = path.to_lowercase();
            if !seen.insert(key.clone()) {
                return Err(BundleError::Duplicate { path }.into());
            }
            // A file may not share its name with a folder (explicit or implied by a path).
            let mut prefix = String::new();
            for part in key.split('/') {
                if !prefix.is_empty() && file_keys.contains(&prefix) {
                    return Err(BundleError::BadPath {
                        path,
                        reason: format!("its folder {prefix} is also a file in the bundle"),
                    }
                    .into());
                }
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                if prefix.len() < key.len() {
                    dir_keys.insert(prefix.clone());
                }
            }
            if is_dir {
                dir_keys.insert(key);
            } else if dir_keys.contains(&key) {
                return Err(BundleError::BadPath {
                    path,
                    reason: "a folder of the same name is also in the bundle".into(),
                }
                .into());
            } else {
                file_keys.insert(key);
            }
            // Every path below is checked: relative, no `..`, no links.
            let on_disk = match dest {
                Dest::Memory | Dest::Scripts => None,
                Dest::Staging(root, _) => Some(root.join(&path)),
            };
            if is_dir {
                if let Some(dir) = &on_disk {
                    fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
                }
                out.dirs.push(path);
                continue;
            }
            let remaining = MAX_BUNDLE_UNPACKED - out.unpacked_len;
            let declared = entry.size();
            if declared > remaining {
                return Err(BundleError::UnpackedTooLarge {
                    entry: path,
                    limit: MAX_BUNDLE_UNPACKED,
                }
                .into());
            }
            let over_announced = matches!(dest, Dest::Staging(_, announced)
                if out.unpacked_len.saturating_add(declared) > announced);
            let count_only =
                over_announced || (matches!(dest, Dest::Scripts) && !in_client_dir(&path));
            if count_only {
                let len = stream_entry(
                    &mut entry,
                    declared,
                    remaining,
                    &mut io::sink(),
                    &path,
                    &mut piece,
                )
                .map_err(|e| e.at(Path::new(&path)))?;
                out.unpacked_len += len;
                continue;
            }
            let contents = match &on_disk {
                Some(file) if extension_of(&path) == Some("archive") => {
                    create_parent(file)?;
                    let mut copy = fs::File::create(file).map_err(io_err("creating", file))?;
                    let len = stream_entry(
                        &mut entry, declared, remaining, &mut copy, &path, &mut piece,
                    )
                    .map_err(|e| e.at(file))?;
                    copy.sync_all().map_err(io_err("syncing", file))?;
                    FileContents::Staged {
                        path: file.clone(),
                        len,
                    }
                }
                _ => {
                    // Sized once from the header (at most `remaining`, the cap a real
                    // bundle may also reach) rather than doubling through the file.
                    let mut bytes =
                        Vec::with_capacity(usize::try_from(declared).unwrap_or(usize::MAX));
                    (&mut entry)
                        .take(remaining + 1)
                        .read_to_end(&mut bytes)
                        .map_err(|e| read_error(e, Some(&path)))?;
                    check_entry_len(bytes.len() as u64, declared, remaining, &path)?;
                    if let Some(file) = &on_disk {
                        create_parent(file)?;
                        write_synced(file, &bytes)?;
                    }
                    FileContents::Memory(bytes)
                }
            };
            out.unpacked_len += contents.len();
            out.files.push(BundleFile { path, contents });
        }
    }
    // Whatever follows the end-of-archive marker must be zero padding within the
    // cap; this also stops a bomb hidden after the archive.
    let mut rest = archive.into_inner();
    let mut buf = [0u8; 8192];
    loop {
        let n = rest.read(&mut buf).map_err(|e| read_error(e, None))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Err(BundleError::Corrupt {
                entry: None,
                detail: "data after the end of the archive".into(),
            }
            .into());
        }
    }
    Ok((out, rest.inner.finish()))
}

/// Whether a bundle path lies under `client/`, where the client's files go
/// (the server and the client both pick the scripts out this way).
pub fn in_client_dir(path: &str) -> bool {
    path.strip_prefix(CLIENT_DIR)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a bundle path is a client REDscript (`client/**.reds`): the files
/// the sandbox policy checks on the server before packing and on the client
/// before installing.
pub fn is_client_script(path: &str) -> bool {
    in_client_dir(path) && path.ends_with(".reds")
}

/// Refuses an entry whose data was longer than the unpacked cap allows or
/// not the length its header declared (`got` bytes were read, at most
/// `remaining + 1`).
fn check_entry_len(got: u64, declared: u64, remaining: u64, path: &str) -> Result<(), BundleError> {
    if got > remaining {
        return Err(BundleError::UnpackedTooLarge {
            entry: path.to_owned(),
            limit: MAX_BUNDLE_UNPACKED,
        });
    }
    if got != declared {
        return Err(BundleError::Corrupt {
            entry: Some(path.to_owned()),
            detail: format!("header says {declared} bytes but {got} were present"),
        });
    }
    Ok(())
}

/// Creates the folders above a staged file (its path is checked and relative).
fn create_parent(file: &Path) -> Result<(), CacheError> {
    match file.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(io_err("creating", parent)),
        None => Ok(()),
    }
}

/// Why streaming an entry failed: the bundle's fault, or writing its copy.
enum StreamError {
    /// The entry is bad (cut, over the cap, not its declared length).
    Bundle(BundleError),
    /// The destination could not be written.
    Write(io::Error),
}

impl StreamError {
    /// As a cache error, naming `file` for a write failure.
    fn at(self, file: &Path) -> CacheError {
        match self {
            StreamError::Bundle(e) => e.into(),
            StreamError::Write(e) => io_err("writing", file)(e),
        }
    }
}

/// Streams one tar entry into `out` through `piece` (reused across
/// entries), checking its length as the in-memory path does; returns its length.
fn stream_entry(
    entry: &mut impl Read,
    declared: u64,
    remaining: u64,
    out: &mut impl Write,
    path: &str,
    piece: &mut Vec<u8>,
) -> Result<u64, StreamError> {
    piece.resize(READ_PIECE, 0);
    let mut limited = entry.take(remaining + 1);
    let mut got = 0u64;
    loop {
        let n = match limited.read(piece) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Bundle(read_error(e, Some(path)))),
        };
        got += n as u64;
        if got > remaining {
            break;
        }
        out.write_all(&piece[..n]).map_err(StreamError::Write)?;
    }
    check_entry_len(got, declared, remaining, path).map_err(StreamError::Bundle)?;
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_scripts_are_reds_files_under_client_only() {
        assert!(is_client_script("client/hud.reds"));
        assert!(is_client_script("client/ui/panel.reds"));
        assert!(!is_client_script("client/readme.txt"));
        assert!(!is_client_script("clientele/hud.reds"));
        assert!(!is_client_script("assets/client/hud.reds"));
        assert!(!is_client_script("client.reds"));
        assert!(in_client_dir("client/readme.txt"));
        assert!(!in_client_dir("client"));
        assert!(!in_client_dir("clients/x"));
    }

    #[test]
    fn entry_paths_are_checked() {
        assert_eq!(
            check_entry_path(b"assets/ui/", true).ok().as_deref(),
            Some("assets/ui")
        );
        assert!(check_entry_path(b"assets/ui/a.json", false).is_ok());
        assert!(check_entry_path(b"assets/cc.archive", false).is_ok());
        assert!(check_entry_path(b"assets/cc.archive.xl", false).is_ok());
        assert!(check_entry_path(b"tweaks/cc.yml", false).is_ok());
        assert!(check_entry_path(b"client/a.reds", false).is_ok());
        assert!(check_entry_path(b"client", true).is_ok());
        // (path, is a folder): files in the wrong place, then bad folders.
        for (bad, is_dir) in [
            (&b"assets/ui/a.inkwidget"[..], false),
            (b"assets/ui/cc.archive", false),
            (b"tweaks/sub/cc.yaml", false),
            (b"tweaks/cc.tweak", false),
            (b"tweaks/cc.json", false),
            (b"client/cc.yaml", false),
            (b"client/sub/", true),
            (b"./assets/", true),
            (b"assets//x/", true),
            (b"/assets/", true),
            (b"assets/a:b/", true),
            (b"assets/ends./", true),
        ] {
            assert!(
                check_entry_path(bad, is_dir).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn staging_writes_nothing_past_the_announced_size_but_counts_it_all() {
        let t = tempfile::tempdir().unwrap();
        let plugin = t.path().join("p");
        fs::create_dir_all(plugin.join("assets")).unwrap();
        let archive = |fill: u8, len: usize| {
            crate::content::rdar::RdarBuilder::new()
                .file("base\\p\\x.mesh", vec![fill; len])
                .build()
        };
        let (a, b) = (archive(1, 1000), archive(2, 50_000));
        fs::write(plugin.join("assets/a.archive"), &a).unwrap();
        fs::write(plugin.join("assets/b.archive"), &b).unwrap();
        let packed = read_plugin_dir(&plugin).unwrap().pack().unwrap();
        let total = (a.len() + b.len()) as u64;

        // Announced: room for the first archive only.
        let staging = t.path().join("staging");
        fs::create_dir(&staging).unwrap();
        let announced = a.len() as u64;
        let (unpacked, _) =
            unpack_stream(packed.bytes.as_slice(), Dest::Staging(&staging, announced)).unwrap();
        assert_eq!(unpacked.unpacked_len, total, "the whole size is counted");
        assert_eq!(fs::read(staging.join("assets/a.archive")).unwrap(), a);
        assert!(
            !staging.join("assets/b.archive").exists(),
            "nothing past the announced size is written"
        );
        assert_eq!(unpacked.files.len(), 1);

        // Announced truthfully: both are staged.
        let staging = t.path().join("staging2");
        fs::create_dir(&staging).unwrap();
        let (unpacked, _) =
            unpack_stream(packed.bytes.as_slice(), Dest::Staging(&staging, total)).unwrap();
        assert_eq!(unpacked.unpacked_len, total);
        assert_eq!(fs::read(staging.join("assets/b.archive")).unwrap(), b);
    }

    #[test]
    fn cap_reader_fails_only_when_more_data_exists() {
        let data = [1u8; 10];
        let mut exact = CapReader {
            inner: &data[..],
            remaining: 10,
        };
        let mut out = Vec::new();
        assert!(exact.read_to_end(&mut out).is_ok());
        assert_eq!(out.len(), 10);
        let mut short = CapReader {
            inner: &data[..],
            remaining: 9,
        };
        let err = short.read_to_end(&mut Vec::new()).err();
        assert!(err.as_ref().is_some_and(is_cap));
    }
}
