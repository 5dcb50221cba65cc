//! A bounds-checked reader for the game's `.archive` container (RDAR), and a
//! builder that writes small valid archives so tests and samples need no
//! game files.
//!
//! The layout is the publicly documented one (WolvenKit, mackron's
//! "Cyberpunk 2077 Archive File Format"); every integer is little-endian:
//!
//! ```text
//! header (40 bytes at 0)   magic "RDAR" · version u32 (12) · index_position u64 · index_size u32
//!                          debug_position u64 · debug_size u32 · file_size u64
//! data                     the segments' bytes (uncompressed, or "KARK" + u32 size + Oodle data)
//! index (at index_position) table_offset u32 (8) · table_size u32 · crc u64
//!                          file_count u32 · segment_count u32 · dependency_count u32
//!                          file_count × file entry (56 bytes):
//!                            name_hash u64 (FNV-1a 64 of the depot path) · timestamp i64
//!                            inline_buffer_segments u32 · segments_start u32 · segments_end u32
//!                            dependencies_start u32 · dependencies_end u32 · sha1 [20]
//!                          segment_count × segment (16 bytes): offset u64 · zsize u32 · size u32
//!                          dependency_count × dependency (8 bytes): path hash u64
//! ```
//!
//! The reader never sizes a buffer from a declared count before checking the
//! count against its cap and the bytes actually present. It does not check
//! the index CRC or the per-file SHA-1 (their exact inputs are not publicly
//! specified); it checks structure: everything in bounds, no overlaps.

use shard_protocol::limits::{
    MAX_ARCHIVE_DEPENDENCIES, MAX_ARCHIVE_FILES, MAX_ARCHIVE_SEGMENTS, MAX_ARCHIVE_UNPACKED,
};

/// The four bytes every archive starts with.
pub const RDAR_MAGIC: [u8; 4] = *b"RDAR";

/// The only archive version the game (since 1.0) writes and reads.
pub const RDAR_VERSION: u32 = 12;

/// Size of the fixed header.
pub const RDAR_HEADER_LEN: u64 = 40;

/// Where the builder puts the first segment (the header plus zero padding,
/// as WolvenKit and the game's own archives do).
const DATA_START: u64 = 0xAC;

/// Bytes of the index before its tables.
const INDEX_PREAMBLE: u64 = 28;

/// Bytes of one file entry.
const FILE_ENTRY_LEN: u64 = 56;

/// Bytes of one segment descriptor.
const SEGMENT_LEN: u64 = 16;

/// Bytes of one dependency.
const DEPENDENCY_LEN: u64 = 8;

/// Marker of an Oodle-compressed segment, followed by its uncompressed size.
const KARK: [u8; 4] = *b"KARK";

/// Why an archive was refused; each variant says what is wrong and where
/// (byte offsets, entry indices) so an author can find it with a hex viewer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// The file is shorter than the fixed header.
    #[error("file is {len} bytes, shorter than the {RDAR_HEADER_LEN}-byte RDAR header")]
    TooShort {
        /// Actual length.
        len: u64,
    },
    /// The first four bytes are not `RDAR`.
    #[error("bad magic {found:?} (expected \"RDAR\"); this is not a game archive")]
    BadMagic {
        /// The bytes found, lossy.
        found: String,
    },
    /// The version is not 12.
    #[error("archive version {found}; only version {RDAR_VERSION} is supported")]
    BadVersion {
        /// The version found.
        found: u32,
    },
    /// The header's file size does not match the file (truncated or padded).
    #[error(
        "header says the archive is {declared} bytes but the file is {actual} bytes (truncated or padded)"
    )]
    SizeMismatch {
        /// Size in the header.
        declared: u64,
        /// Actual length.
        actual: u64,
    },
    /// A region (index, debug data, a table) lies outside the file or inside the header.
    #[error(
        "{what} at {offset}..+{len} is outside the file (length {file_len}) or inside the header"
    )]
    OutOfBounds {
        /// Which region.
        what: String,
        /// Its start.
        offset: u64,
        /// Its length.
        len: u64,
        /// File length.
        file_len: u64,
    },
    /// The index is empty or lists no files.
    #[error("the index {detail}; an archive must list at least one file")]
    EmptyTable {
        /// What is empty.
        detail: String,
    },
    /// A declared count is above its cap.
    #[error("the index declares {count} {what}; the limit is {limit}")]
    TooMany {
        /// Which count.
        what: &'static str,
        /// Declared.
        count: u64,
        /// Cap.
        limit: usize,
    },
    /// The tables the index declares do not fit in its size.
    #[error("the index is {index_size} bytes but its tables need {needed}")]
    IndexTooSmall {
        /// Declared index size.
        index_size: u64,
        /// Bytes the declared counts need.
        needed: u64,
    },
    /// The table offset is not the documented 8.
    #[error("index table offset is {found}; expected 8")]
    BadTableOffset {
        /// The offset found.
        found: u32,
    },
    /// A file entry's segment or dependency range is empty, reversed or past its table.
    #[error("file entry {entry}: {what} range {start}..{end} is invalid (table has {count})")]
    BadRange {
        /// Entry index.
        entry: usize,
        /// `segments`, `inline buffers` or `dependencies`.
        what: &'static str,
        /// Range start.
        start: u32,
        /// Range end (exclusive).
        end: u32,
        /// Entries in that table.
        count: u32,
    },
    /// Two file entries claim the same segments.
    #[error("file entries {a} and {b} share segments")]
    SharedSegments {
        /// First entry.
        a: usize,
        /// Second entry.
        b: usize,
    },
    /// Two file entries have the same name hash.
    #[error("file entries {a} and {b} have the same name hash {hash:#018x}")]
    DuplicateName {
        /// First entry.
        a: usize,
        /// Second entry.
        b: usize,
        /// The hash.
        hash: u64,
    },
    /// A segment is empty, out of bounds, or overlaps the header, the index or another segment.
    #[error("segment {segment} at {offset}..+{len}: {detail}")]
    BadSegment {
        /// Segment index.
        segment: usize,
        /// Its offset.
        offset: u64,
        /// Its stored size.
        len: u64,
        /// What is wrong.
        detail: String,
    },
    /// The archive could not be read from disk (a staged file).
    #[error("could not read the archive: {detail}")]
    Unreadable {
        /// The I/O error.
        detail: String,
    },
    /// The declared uncompressed sizes add up to more than the cap.
    #[error("segments declare {total} uncompressed bytes; the limit is {limit}")]
    UnpackedTooLarge {
        /// Declared total.
        total: u64,
        /// Cap.
        limit: u64,
    },
}

impl ArchiveError {
    /// The rule id diagnostics show for this error.
    pub fn rule(&self) -> &'static str {
        match self {
            ArchiveError::TooShort { .. } | ArchiveError::SizeMismatch { .. } => "rdar-size",
            ArchiveError::BadMagic { .. } => "rdar-magic",
            ArchiveError::BadVersion { .. } => "rdar-version",
            ArchiveError::OutOfBounds { .. }
            | ArchiveError::IndexTooSmall { .. }
            | ArchiveError::BadTableOffset { .. } => "rdar-bounds",
            ArchiveError::EmptyTable { .. } => "rdar-empty",
            ArchiveError::TooMany { .. } | ArchiveError::UnpackedTooLarge { .. } => "rdar-limit",
            ArchiveError::BadRange { .. }
            | ArchiveError::SharedSegments { .. }
            | ArchiveError::DuplicateName { .. } => "rdar-table",
            ArchiveError::BadSegment { .. } => "rdar-segment",
            ArchiveError::Unreadable { .. } => "rdar-io",
        }
    }
}

/// What a checked archive holds, for reports and reference checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// Name hashes of its files (FNV-1a 64 of each depot path), in table order.
    pub file_hashes: Vec<u64>,
    /// Number of segments.
    pub segments: usize,
    /// Sum of the declared uncompressed sizes.
    pub unpacked: u64,
}

/// FNV-1a 64 of a depot path as the game hashes it: lowercase, `\` separators.
pub fn depot_hash(path: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in path.chars().flat_map(char::to_lowercase) {
        let c = if c == '/' { '\\' } else { c };
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Little-endian reads that fail instead of panicking.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl Cursor<'_> {
    fn u32(&self, at: u64) -> Option<u32> {
        let at = usize::try_from(at).ok()?;
        let b = self.bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    fn u64(&self, at: u64) -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b = self.bytes.get(at..at.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
}

/// Where the check reads an archive from: the checker only ever reads the
/// header, the index tables and the first bytes of each compressed
/// segment, so an archive staged on disk is checked without reading its
/// data into memory.
trait ArchiveSource {
    /// The archive's length in bytes.
    fn len(&self) -> u64;
    /// Fills `buf` from offset `at`; the caller keeps `at + buf.len()` within [`Self::len`].
    fn read_at(&self, at: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl ArchiveSource for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let part = usize::try_from(at)
            .ok()
            .and_then(|at| self.get(at..at.checked_add(buf.len())?))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(part);
        Ok(())
    }
}

/// An archive file and its length, read by offset.
struct FileSource<'a> {
    file: &'a std::fs::File,
    len: u64,
}

impl ArchiveSource for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
        crate::fsutil::read_exact_at(self.file, buf, at)
    }
}

/// Reads `len` bytes at `at` (already bounds-checked against the source);
/// `len` is at most the largest index the caps allow.
fn read_region(src: &dyn ArchiveSource, at: u64, len: u64) -> Result<Vec<u8>, ArchiveError> {
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    src.read_at(at, &mut buf)
        .map_err(|e| ArchiveError::Unreadable {
            detail: e.to_string(),
        })?;
    Ok(buf)
}

/// Checks that `offset..offset+len` lies inside the file and after the header.
fn region(what: &str, offset: u64, len: u64, file_len: u64) -> Result<(), ArchiveError> {
    let end = offset.checked_add(len);
    if offset < RDAR_HEADER_LEN || end.is_none_or(|e| e > file_len) {
        return Err(ArchiveError::OutOfBounds {
            what: what.to_owned(),
            offset,
            len,
            file_len,
        });
    }
    Ok(())
}

/// One file entry's fields that the checks use.
struct Entry {
    hash: u64,
    inline: u32,
    seg: (u32, u32),
    dep: (u32, u32),
}

/// Parses and checks an archive: header, index and every table within
/// bounds, counts under their caps, segments inside the data area without
/// overlaps, compressed segments framed as the game expects.
pub fn check_archive(bytes: &[u8]) -> Result<ArchiveInfo, ArchiveError> {
    check_archive_in(&bytes)
}

/// [`check_archive`] on an archive file of `len` bytes (one staged on disk
/// by the client's install), reading only the header, the index and the
/// compressed segments' first bytes: the data is never held in memory.
pub fn check_archive_file(file: &std::fs::File, len: u64) -> Result<ArchiveInfo, ArchiveError> {
    check_archive_in(&FileSource { file, len })
}

/// The one archive check, over any [`ArchiveSource`].
fn check_archive_in(src: &dyn ArchiveSource) -> Result<ArchiveInfo, ArchiveError> {
    let file_len = src.len();
    if file_len < RDAR_HEADER_LEN {
        return Err(ArchiveError::TooShort { len: file_len });
    }
    let head = read_region(src, 0, RDAR_HEADER_LEN)?;
    let c = Cursor { bytes: &head };
    let magic = head.get(..4).unwrap_or_default();
    if magic != RDAR_MAGIC {
        return Err(ArchiveError::BadMagic {
            found: String::from_utf8_lossy(magic).into_owned(),
        });
    }
    let header = |at| c.u32(at).unwrap_or_default();
    let header64 = |at| c.u64(at).unwrap_or_default();
    let version = header(4);
    if version != RDAR_VERSION {
        return Err(ArchiveError::BadVersion { found: version });
    }
    let index_pos = header64(8);
    let index_size = u64::from(header(16));
    let debug_pos = header64(20);
    let debug_size = u64::from(header(28));
    let declared = header64(32);
    if declared != file_len {
        return Err(ArchiveError::SizeMismatch {
            declared,
            actual: file_len,
        });
    }
    if index_size == 0 {
        return Err(ArchiveError::EmptyTable {
            detail: "has size 0".into(),
        });
    }
    region("index", index_pos, index_size, file_len)?;
    if debug_size > 0 {
        region("debug data", debug_pos, debug_size, file_len)?;
    }
    if index_size < INDEX_PREAMBLE {
        return Err(ArchiveError::IndexTooSmall {
            index_size,
            needed: INDEX_PREAMBLE,
        });
    }
    let preamble = read_region(src, index_pos, INDEX_PREAMBLE)?;
    let p = Cursor { bytes: &preamble };
    let table_offset = p.u32(0).unwrap_or_default();
    if table_offset != 8 {
        return Err(ArchiveError::BadTableOffset {
            found: table_offset,
        });
    }
    let files = p.u32(16).unwrap_or_default();
    let segments = p.u32(20).unwrap_or_default();
    let deps = p.u32(24).unwrap_or_default();
    for (what, count, limit) in [
        ("files", files, MAX_ARCHIVE_FILES),
        ("segments", segments, MAX_ARCHIVE_SEGMENTS),
        ("dependencies", deps, MAX_ARCHIVE_DEPENDENCIES),
    ] {
        if count as usize > limit {
            return Err(ArchiveError::TooMany {
                what,
                count: u64::from(count),
                limit,
            });
        }
    }
    if files == 0 {
        return Err(ArchiveError::EmptyTable {
            detail: "lists no files".into(),
        });
    }
    // Caps above keep this far from overflow: 4096·56 + 16384·16 + 16384·8.
    let needed = INDEX_PREAMBLE
        + u64::from(files) * FILE_ENTRY_LEN
        + u64::from(segments) * SEGMENT_LEN
        + u64::from(deps) * DEPENDENCY_LEN;
    if needed > index_size {
        return Err(ArchiveError::IndexTooSmall { index_size, needed });
    }
    // The tables, read once (at most what the caps allow), at index-relative offsets.
    let index = read_region(src, index_pos, needed)?;
    let c = Cursor { bytes: &index };

    let entries_at = INDEX_PREAMBLE;
    let mut entries = Vec::with_capacity(files as usize);
    for i in 0..u64::from(files) {
        let e = entries_at + i * FILE_ENTRY_LEN;
        let f = |off| c.u32(e + off).unwrap_or_default();
        entries.push(Entry {
            hash: c.u64(e).unwrap_or_default(),
            inline: f(16),
            seg: (f(20), f(24)),
            dep: (f(28), f(32)),
        });
    }
    let mut names = std::collections::HashMap::new();
    let mut ranges = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        if let Some(first) = names.insert(e.hash, i) {
            return Err(ArchiveError::DuplicateName {
                a: first,
                b: i,
                hash: e.hash,
            });
        }
        let (s, t) = e.seg;
        if s >= t || t > segments {
            return Err(ArchiveError::BadRange {
                entry: i,
                what: "segments",
                start: s,
                end: t,
                count: segments,
            });
        }
        if e.inline >= t - s {
            return Err(ArchiveError::BadRange {
                entry: i,
                what: "inline buffers",
                start: s,
                end: s.saturating_add(e.inline),
                count: t - s,
            });
        }
        let (ds, dt) = e.dep;
        if ds > dt || dt > deps {
            return Err(ArchiveError::BadRange {
                entry: i,
                what: "dependencies",
                start: ds,
                end: dt,
                count: deps,
            });
        }
        ranges.push((s, t, i));
    }
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(ArchiveError::SharedSegments {
                a: w[0].2,
                b: w[1].2,
            });
        }
    }

    let segs_at = entries_at + u64::from(files) * FILE_ENTRY_LEN;
    let mut spans = Vec::with_capacity(segments as usize);
    let mut unpacked = 0u64;
    for i in 0..segments as usize {
        let s = segs_at + i as u64 * SEGMENT_LEN;
        let offset = c.u64(s).unwrap_or_default();
        let zsize = u64::from(c.u32(s + 8).unwrap_or_default());
        let size = u64::from(c.u32(s + 12).unwrap_or_default());
        let bad = |detail: String| ArchiveError::BadSegment {
            segment: i,
            offset,
            len: zsize,
            detail,
        };
        if zsize == 0 {
            return Err(bad("empty segment".into()));
        }
        let Some(end) = offset.checked_add(zsize).filter(|e| *e <= file_len) else {
            return Err(bad(format!("past the end of the file ({file_len} bytes)")));
        };
        if offset < RDAR_HEADER_LEN {
            return Err(bad("overlaps the header".into()));
        }
        if offset < index_pos + index_size && index_pos < end {
            return Err(bad("overlaps the index".into()));
        }
        if debug_size > 0 && offset < debug_pos + debug_size && debug_pos < end {
            return Err(bad("overlaps the debug data".into()));
        }
        if zsize != size {
            // Compressed: "KARK", the uncompressed size, then the Oodle stream.
            let mut head = [0u8; 8];
            let head: &[u8] = if zsize >= 8 {
                src.read_at(offset, &mut head)
                    .map_err(|e| ArchiveError::Unreadable {
                        detail: e.to_string(),
                    })?;
                &head
            } else {
                &[]
            };
            let ok = head.len() == 8
                && head[..4] == KARK
                && head[4..8]
                    .try_into()
                    .ok()
                    .map(u32::from_le_bytes)
                    .map(u64::from)
                    == Some(size);
            if !ok {
                return Err(bad(format!(
                    "stored size {zsize} differs from size {size} but the data is not a KARK block of that size"
                )));
            }
        }
        unpacked = unpacked.saturating_add(size);
        spans.push((offset, end, i));
    }
    if unpacked > MAX_ARCHIVE_UNPACKED {
        return Err(ArchiveError::UnpackedTooLarge {
            total: unpacked,
            limit: MAX_ARCHIVE_UNPACKED,
        });
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            let (offset, end, segment) = w[1];
            return Err(ArchiveError::BadSegment {
                segment,
                offset,
                len: end - offset,
                detail: format!("overlaps segment {}", w[0].2),
            });
        }
    }
    Ok(ArchiveInfo {
        file_hashes: entries.iter().map(|e| e.hash).collect(),
        segments: segments as usize,
        unpacked,
    })
}

/// Writes small valid archives: each file is one uncompressed segment, name
/// hashes are FNV-1a 64 of the depot paths, timestamps, CRC and SHA-1 are
/// zero. For tests and samples; real content is packed with WolvenKit.
#[derive(Debug, Clone, Default)]
pub struct RdarBuilder {
    files: Vec<(String, Vec<u8>)>,
}

impl RdarBuilder {
    /// An archive with no files yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file at depot path `path` (e.g. `base\shard\cc.ent`).
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_owned(), contents.into()));
        self
    }

    /// The archive's bytes.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "sample archives are far below 4 GiB, so every offset and count fits the format's u32 fields"
    )]
    pub fn build(&self) -> Vec<u8> {
        let mut out = vec![0u8; DATA_START as usize];
        let mut segs = Vec::new();
        for (_, data) in &self.files {
            segs.push((out.len() as u64, data.len() as u32));
            out.extend_from_slice(data);
        }
        let index_pos = out.len() as u64;
        let n = self.files.len() as u64;
        let index_size = INDEX_PREAMBLE + n * FILE_ENTRY_LEN + n * SEGMENT_LEN;
        out.extend_from_slice(&8u32.to_le_bytes());
        out.extend_from_slice(&((index_size - 8) as u32).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for (i, (path, _)) in self.files.iter().enumerate() {
            out.extend_from_slice(&depot_hash(path).to_le_bytes());
            out.extend_from_slice(&0i64.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(i as u32).to_le_bytes());
            out.extend_from_slice(&(i as u32 + 1).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&[0u8; 20]);
        }
        for (offset, len) in &segs {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        let total = out.len() as u64;
        out[0..4].copy_from_slice(&RDAR_MAGIC);
        out[4..8].copy_from_slice(&RDAR_VERSION.to_le_bytes());
        out[8..16].copy_from_slice(&index_pos.to_le_bytes());
        out[16..20].copy_from_slice(&(index_size as u32).to_le_bytes());
        out[32..40].copy_from_slice(&total.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_archives_check_and_list_their_hashes() {
        let bytes = RdarBuilder::new()
            .file("base\\a.ent", b"entity".to_vec())
            .file("base/b.mesh", b"mesh".to_vec())
            .build();
        let info = check_archive(&bytes).expect("valid");
        assert_eq!(
            info.file_hashes,
            vec![depot_hash("base\\a.ent"), depot_hash("BASE\\B.MESH")]
        );
        assert_eq!(info.unpacked, 10);
    }

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(depot_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(depot_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
