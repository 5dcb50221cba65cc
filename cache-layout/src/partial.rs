//! Resumable downloads: `partial/<sha256hex>.part` grows chunk by chunk and
//! moves into the store only once its hash matches. A receiver keeps one
//! [`PartialFile`] open per download, and [`RuntimeCache::finish_partial_verified`]
//! hands back the unpacked bundle so installing it neither reads, hashes nor
//! unpacks it again.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use shard_protocol::limits::MAX_BUNDLE_PACKED;

use crate::bundle::{UnpackedBundle, unpack_bundle};
use crate::cache::RuntimeCache;
use crate::error::CacheError;
use crate::fsutil::{io_err, sync_dir};

impl RuntimeCache {
    /// Path of the partial download of a bundle: `partial/<sha256hex>.part`.
    pub fn partial_path(&self, sha: &[u8; 32]) -> PathBuf {
        self.partial_dir()
            .join(format!("{}.part", hex::encode(sha)))
    }

    /// How many bytes of this bundle are already downloaded (the offset to resume from).
    pub fn partial_offset(&self, sha: &[u8; 32]) -> Result<u64, CacheError> {
        let path = self.partial_path(sha);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_err("inspecting", &path)(e)),
        }
    }

    /// Writes `chunk` at `offset` and returns the new length; an offset below
    /// the current length truncates first (the sender went back), one above it
    /// is refused since bytes would be missing.
    pub fn append_partial(
        &self,
        sha: &[u8; 32],
        offset: u64,
        chunk: &[u8],
    ) -> Result<u64, CacheError> {
        self.open_partial(sha)?.write_at(offset, chunk)
    }

    /// Opens (or creates) the partial download of a bundle for writing, so a
    /// receiver can keep it open across chunks instead of reopening it for
    /// each. It also keeps the bytes in memory (at most
    /// [`MAX_BUNDLE_PACKED`]), so [`PartialFile::finish`] need not read the
    /// file back; what an earlier run left is read once here.
    pub fn open_partial(&self, sha: &[u8; 32]) -> Result<PartialFile, CacheError> {
        let path = self.partial_path(sha);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        let len = file.metadata().map_err(io_err("inspecting", &path))?.len();
        if len > MAX_BUNDLE_PACKED {
            return Err(CacheError::PartialTooLarge {
                sha256: hex::encode(sha),
                size: len,
                limit: MAX_BUNDLE_PACKED,
            });
        }
        let mut bytes = Vec::new();
        (&mut file)
            .take(MAX_BUNDLE_PACKED)
            .read_to_end(&mut bytes)
            .map_err(io_err("reading", &path))?;
        // Writes continue where the file ends.
        let len = bytes.len() as u64;
        file.seek(SeekFrom::Start(len))
            .map_err(io_err("seeking", &path))?;
        Ok(PartialFile {
            sha256: *sha,
            path,
            file,
            bytes,
        })
    }

    /// Checks the completed download's hash and contents and moves it into the
    /// store; a mismatch deletes the partial file so the next try starts over.
    pub fn finish_partial(&self, sha: &[u8; 32]) -> Result<PathBuf, CacheError> {
        self.finish_partial_verified(sha)
            .map(|v| self.bundle_path(&v.sha256))
    }

    /// [`Self::finish_partial`], returning the bundle as unpacked by the
    /// check, for [`RuntimeCache::stage_verified`]: the file is read, hashed
    /// and unpacked once per install.
    pub fn finish_partial_verified(&self, sha: &[u8; 32]) -> Result<VerifiedBundle, CacheError> {
        let path = self.partial_path(sha);
        let bytes = fs::read(&path).map_err(io_err("reading", &path))?;
        self.verify_partial(sha, &path, &bytes)
    }

    /// Checks a completed download (`bytes` are the contents of `path`),
    /// then makes it durable and moves it into the store; on a mismatch the
    /// file is deleted so the next try starts over.
    fn verify_partial(
        &self,
        sha: &[u8; 32],
        path: &Path,
        bytes: &[u8],
    ) -> Result<VerifiedBundle, CacheError> {
        let unpacked = match unpack_bundle(bytes, sha) {
            Ok(u) => u,
            Err(e) => {
                let _ = fs::remove_file(path);
                return Err(e.into());
            }
        };
        fs::File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io_err("syncing", path))?;
        let dest = self.bundle_path(sha);
        fs::rename(path, &dest).map_err(io_err("moving into the store", &dest))?;
        sync_dir(&self.store_dir())?;
        Ok(VerifiedBundle {
            sha256: *sha,
            unpacked,
        })
    }

    /// Drops a partial download (e.g. the server announced a new version).
    pub fn discard_partial(&self, sha: &[u8; 32]) -> Result<(), CacheError> {
        let path = self.partial_path(sha);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", &path)(e)),
        }
    }
}

/// A partial download open for writing; see [`RuntimeCache::open_partial`].
#[derive(Debug)]
pub struct PartialFile {
    sha256: [u8; 32],
    path: PathBuf,
    file: File,
    /// What the file holds, so finishing does not read it back.
    bytes: Vec<u8>,
}

impl PartialFile {
    /// Bytes written so far (the offset to resume from).
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Writes `chunk` at `offset` and returns the new length; an offset below
    /// the current length truncates first (the sender went back), one above it
    /// is refused since bytes would be missing, and the total is capped at
    /// the largest bundle allowed. After an error, drop it and open it again.
    pub fn write_at(&mut self, offset: u64, chunk: &[u8]) -> Result<u64, CacheError> {
        let have = self.len();
        if offset > have {
            return Err(CacheError::PartialGap {
                sha256: hex::encode(self.sha256),
                offset,
                have,
            });
        }
        let end = offset.saturating_add(chunk.len() as u64);
        if end > MAX_BUNDLE_PACKED {
            return Err(CacheError::PartialTooLarge {
                sha256: hex::encode(self.sha256),
                size: end,
                limit: MAX_BUNDLE_PACKED,
            });
        }
        if offset < have {
            // `offset < have <= MAX_BUNDLE_PACKED`, so it fits in memory.
            self.bytes
                .truncate(usize::try_from(offset).unwrap_or(usize::MAX));
            self.file
                .set_len(offset)
                .map_err(io_err("truncating", &self.path))?;
            self.file
                .seek(SeekFrom::Start(offset))
                .map_err(io_err("seeking", &self.path))?;
        }
        self.file
            .write_all(chunk)
            .map_err(io_err("writing", &self.path))?;
        self.bytes.extend_from_slice(chunk);
        Ok(end)
    }

    /// Checks the completed download's hash and contents from memory, then
    /// moves it into the store as [`RuntimeCache::finish_partial_verified`]
    /// does, without reading the file back.
    pub fn finish(self, cache: &RuntimeCache) -> Result<VerifiedBundle, CacheError> {
        let PartialFile {
            sha256,
            path,
            file,
            bytes,
        } = self;
        drop(file);
        cache.verify_partial(&sha256, &path, &bytes)
    }
}

/// A bundle whose bytes hashed to `sha256` and unpacked cleanly, now in the
/// store; only this crate makes one, so staging it skips no check.
#[derive(Debug)]
pub struct VerifiedBundle {
    sha256: [u8; 32],
    unpacked: UnpackedBundle,
}

impl VerifiedBundle {
    /// The SHA-256 its bytes matched.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// Its unpacked folders and files.
    pub fn unpacked(&self) -> &UnpackedBundle {
        &self.unpacked
    }

    /// Gives up the unpacked contents (for staging).
    pub(crate) fn into_unpacked(self) -> UnpackedBundle {
        self.unpacked
    }
}
