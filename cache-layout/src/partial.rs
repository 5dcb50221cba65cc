//! Resumable downloads: `partial/<sha256hex>.part` grows chunk by chunk and
//! moves into the store only once its hash matches. A receiver keeps one
//! [`PartialFile`] open per download; it hashes each chunk as it is
//! written (while the chunk is still in the cache), so finishing only
//! compares the hash and moves the file, and it never holds the download in
//! memory. The bundle is unpacked once, when it is staged
//! ([`RuntimeCache::stage_verified`]), straight from the stored file.

use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use shard_protocol::limits::MAX_BUNDLE_PACKED;

use crate::bundle::check_hash;
use crate::cache::RuntimeCache;
use crate::error::CacheError;
use crate::fsutil::{TMP_PREFIX, io_err, nonce, open_or_create, sync_dir};

impl RuntimeCache {
    /// Path of the partial download of a bundle: `partial/<sha256hex>.part`.
    pub fn partial_path(&self, sha: &[u8; 32]) -> PathBuf {
        self.partial_dir()
            .join(format!("{}.part", hex::encode(sha)))
    }

    /// How many bytes of this bundle are already downloaded (the offset to
    /// resume from): 0 while another handle is downloading it, since this
    /// download will then write a file of its own (see [`Self::open_partial`]).
    pub fn partial_offset(&self, sha: &[u8; 32]) -> Result<u64, CacheError> {
        let path = self.partial_path(sha);
        match unheld(&path)? {
            Some(file) => Ok(file.metadata().map_err(io_err("inspecting", &path))?.len()),
            None => Ok(0),
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
        self.open_partial_as(sha, false)?.write_at(offset, chunk)
    }

    /// Opens (or creates) the partial download of a bundle for writing, so a
    /// receiver can keep it open across chunks instead of reopening it for
    /// each. What an earlier run left is hashed once here (at most
    /// [`MAX_BUNDLE_PACKED`] bytes), so the download resumes where it ended.
    ///
    /// The file is locked while open. A second download of the same bundle
    /// into the same cache (another client sharing it, at the same moment)
    /// writes a private file of its own instead, which is not resumable and
    /// goes when it is dropped, so the two never mix and both finish; one
    /// that starts after the bundle reached the store gets
    /// [`CacheError::AlreadyStored`].
    pub fn open_partial(&self, sha: &[u8; 32]) -> Result<PartialFile, CacheError> {
        self.open_partial_as(sha, true)
    }

    /// [`Self::open_partial`]; without `private_if_busy`, a busy partial
    /// file fails with [`CacheError::PartialBusy`] (for the one-shot helpers,
    /// which are about the shared file).
    fn open_partial_as(
        &self,
        sha: &[u8; 32],
        private_if_busy: bool,
    ) -> Result<PartialFile, CacheError> {
        let stored = || CacheError::AlreadyStored {
            sha256: hex::encode(sha),
        };
        if self.has_bundle(sha) {
            return Err(stored());
        }
        let path = self.partial_path(sha);
        let (file, path, private) = match open_locked(&path, sha)? {
            Some(file) => (file, path, None),
            None if private_if_busy => {
                let private = PrivatePartial::new(self, sha);
                let file = OpenOptions::new()
                    .create_new(true)
                    .read(true)
                    .write(true)
                    .open(&private.path)
                    .map_err(io_err("creating", &private.path))?;
                tracing::debug!(path = %private.path.display(), "bundle downloading elsewhere in this cache; this download writes its own file");
                (file, private.path.clone(), Some(private))
            }
            None => {
                return Err(CacheError::PartialBusy {
                    sha256: hex::encode(sha),
                });
            }
        };
        // A lock won as its holder finished may be on the file it just
        // moved into the store, which must not be written.
        if self.has_bundle(sha) {
            return Err(stored());
        }
        let len = file.metadata().map_err(io_err("inspecting", &path))?.len();
        if len > MAX_BUNDLE_PACKED {
            return Err(CacheError::PartialTooLarge {
                sha256: hex::encode(sha),
                size: len,
                limit: MAX_BUNDLE_PACKED,
            });
        }
        let mut partial = PartialFile {
            sha256: *sha,
            path,
            file,
            len: 0,
            hasher: Sha256::new(),
            _private: private,
        };
        partial.rehash(len)?;
        Ok(partial)
    }

    /// Checks the completed download's hash and moves it into the store; a
    /// mismatch deletes the partial file so the next try starts over. For a
    /// file written by other means; a receiver keeping a [`PartialFile`]
    /// open calls [`PartialFile::finish`], which this opens and calls.
    pub fn finish_partial(&self, sha: &[u8; 32]) -> Result<PathBuf, CacheError> {
        self.open_partial_as(sha, false)?
            .finish(self)
            .map(|v| self.bundle_path(&v.sha256))
    }

    /// Drops a partial download (e.g. the server announced a new version,
    /// or it failed verification). A file another handle is writing (a
    /// client sharing the cache, downloading the same bundle) is its
    /// download, not this one's, and is left alone.
    pub fn discard_partial(&self, sha: &[u8; 32]) -> Result<(), CacheError> {
        let path = self.partial_path(sha);
        if unheld(&path)?.is_none() {
            return Ok(());
        }
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
    /// Bytes the file holds (the offset to resume from).
    len: u64,
    /// SHA-256 of those bytes so far.
    hasher: Sha256,
    /// Set when this download writes a private file (the shared one was
    /// busy); removes it when dropped.
    _private: Option<PrivatePartial>,
}

/// The name of a private partial file: a temp name (`.tmp-…`) in
/// `partial/`, marked in progress while it lives, so an open beside it
/// spares it and one after a crash removes it.
#[derive(Debug)]
struct PrivatePartial {
    name: String,
    path: PathBuf,
}

impl PrivatePartial {
    fn new(cache: &RuntimeCache, sha: &[u8; 32]) -> Self {
        let name = format!("{TMP_PREFIX}{}-{}.part", nonce(), hex::encode(sha));
        crate::cache::in_progress(&name, true);
        Self {
            path: cache.partial_dir().join(&name),
            name,
        }
    }
}

impl Drop for PrivatePartial {
    fn drop(&mut self) {
        // Gone already once finished (moved into the store).
        let _ = fs::remove_file(&self.path);
        crate::cache::in_progress(&self.name, false);
    }
}

impl PartialFile {
    /// Bytes written so far (the offset to resume from).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `chunk` at `offset` and returns the new length; an offset below
    /// the current length truncates first (the sender went back), one above it
    /// is refused since bytes would be missing, and the total is capped at
    /// the largest bundle allowed. After an error, drop it and open it again.
    pub fn write_at(&mut self, offset: u64, chunk: &[u8]) -> Result<u64, CacheError> {
        self.write_parts_at(offset, &[chunk])
    }

    /// [`Self::write_at`] for a chunk in the pieces it arrived in (off a QUIC
    /// stream), written in one vectored write rather than joined first.
    pub fn write_parts_at<B: AsRef<[u8]>>(
        &mut self,
        offset: u64,
        parts: &[B],
    ) -> Result<u64, CacheError> {
        let have = self.len;
        if offset > have {
            return Err(CacheError::PartialGap {
                sha256: hex::encode(self.sha256),
                offset,
                have,
            });
        }
        let len: u64 = parts.iter().map(|p| p.as_ref().len() as u64).sum();
        let end = offset.saturating_add(len);
        if end > MAX_BUNDLE_PACKED {
            return Err(CacheError::PartialTooLarge {
                sha256: hex::encode(self.sha256),
                size: end,
                limit: MAX_BUNDLE_PACKED,
            });
        }
        if offset < have {
            self.file
                .set_len(offset)
                .map_err(io_err("truncating", &self.path))?;
            self.rehash(offset)?;
        }
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p.as_ref())).collect();
        write_all_vectored(&mut self.file, &mut slices).map_err(io_err("writing", &self.path))?;
        for p in parts {
            self.hasher.update(p.as_ref());
        }
        self.len = end;
        Ok(end)
    }

    /// Hashes the file's first `len` bytes afresh (opening a file an earlier
    /// run left, or going back) and leaves the cursor at `len` for writing.
    fn rehash(&mut self, len: u64) -> Result<(), CacheError> {
        self.hasher = Sha256::new();
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_err("seeking", &self.path))?;
        let hashed = std::io::copy(&mut (&self.file).take(len), &mut self.hasher)
            .map_err(io_err("reading", &self.path))?;
        if hashed != len {
            return Err(io_err("reading", &self.path)(std::io::Error::from(
                std::io::ErrorKind::UnexpectedEof,
            )));
        }
        // The cursor is at `len`, where writing continues.
        self.len = len;
        Ok(())
    }

    /// Compares the completed download's hash with the announced one; on a
    /// match makes it durable and moves it into the store, on a mismatch
    /// deletes it so the next try starts over.
    pub fn finish(self, cache: &RuntimeCache) -> Result<VerifiedBundle, CacheError> {
        let PartialFile {
            sha256,
            path,
            file,
            len: _,
            hasher,
            _private,
        } = self;
        let actual: [u8; 32] = hasher.finalize().into();
        if let Err(e) = check_hash(&actual, &sha256) {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(e.into());
        }
        file.sync_all().map_err(io_err("syncing", &path))?;
        let dest = cache.bundle_path(&sha256);
        // Moved while still locked: a download waiting for the lock then
        // finds the bundle stored instead of writing into the store's file.
        fs::rename(&path, &dest).map_err(io_err("moving into the store", &dest))?;
        drop(file);
        sync_dir(&cache.store_dir())?;
        Ok(VerifiedBundle { sha256 })
    }
}

/// The partial file at `path`, opened for reading, unless it is missing or
/// another handle's download holds it (its lock): what this handle may
/// measure or discard as its own.
fn unheld(path: &Path) -> Result<Option<File>, CacheError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("opening", path)(e)),
    };
    match file.try_lock_shared() {
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        // Locked, or on a filesystem without working locks (as `open_locked`).
        _ => Ok(Some(file)),
    }
}

/// Opens `path` (creating it) and locks it exclusively; `None` while
/// another handle has it locked.
fn open_locked(path: &Path, sha: &[u8; 32]) -> Result<Option<File>, CacheError> {
    let file = open_or_create(path).map_err(io_err("opening", path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        // A filesystem without working locks: go on unlocked, as the cache
        // itself does; the hash check still refuses a mixed file.
        Err(fs::TryLockError::Error(error)) => {
            tracing::debug!(path = %path.display(), %error, sha256 = %hex::encode(sha), "partial download not locked");
            Ok(Some(file))
        }
    }
}

/// Writes every byte of `bufs` (`Write::write_all_vectored` is not stable).
fn write_all_vectored(file: &mut File, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    // Drops leading empty slices, so a chunk of only empty pieces writes
    // nothing instead of failing with `WriteZero`.
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match file.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A bundle whose bytes hashed to `sha256` as they were written, now in the
/// store; only this crate makes one, so staging it need not hash it again.
/// Its entries are checked when it is staged.
#[derive(Debug)]
pub struct VerifiedBundle {
    sha256: [u8; 32],
}

impl VerifiedBundle {
    /// The SHA-256 its bytes matched.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }
}
