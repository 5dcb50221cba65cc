//! Resumable downloads: `partial/<sha256hex>.part` grows chunk by chunk and
//! moves into the store only once its hash matches.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use shard_protocol::limits::MAX_BUNDLE_PACKED;

use crate::bundle::{sha256, unpack_bundle};
use crate::cache::RuntimeCache;
use crate::error::{BundleError, CacheError};
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
        let have = self.partial_offset(sha)?;
        let hex_sha = hex::encode(sha);
        if offset > have {
            return Err(CacheError::PartialGap {
                sha256: hex_sha,
                offset,
                have,
            });
        }
        let end = offset.saturating_add(chunk.len() as u64);
        if end > MAX_BUNDLE_PACKED {
            return Err(CacheError::PartialTooLarge {
                sha256: hex_sha,
                size: end,
                limit: MAX_BUNDLE_PACKED,
            });
        }
        let path = self.partial_path(sha);
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        if offset < have {
            f.set_len(offset).map_err(io_err("truncating", &path))?;
        }
        f.seek(SeekFrom::Start(offset))
            .map_err(io_err("seeking", &path))?;
        f.write_all(chunk).map_err(io_err("writing", &path))?;
        Ok(end)
    }

    /// Checks the completed download's hash and contents and moves it into the
    /// store; a mismatch deletes the partial file so the next try starts over.
    pub fn finish_partial(&self, sha: &[u8; 32]) -> Result<PathBuf, CacheError> {
        let path = self.partial_path(sha);
        let bytes = fs::read(&path).map_err(io_err("reading", &path))?;
        let actual = sha256(&bytes);
        if &actual != sha {
            let _ = fs::remove_file(&path);
            return Err(BundleError::HashMismatch {
                expected: hex::encode(sha),
                actual: hex::encode(actual),
            }
            .into());
        }
        if let Err(e) = unpack_bundle(&bytes, sha) {
            let _ = fs::remove_file(&path);
            return Err(e.into());
        }
        fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(io_err("syncing", &path))?;
        let dest = self.bundle_path(sha);
        fs::rename(&path, &dest).map_err(io_err("moving into the store", &dest))?;
        sync_dir(&self.store_dir())?;
        Ok(dest)
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
