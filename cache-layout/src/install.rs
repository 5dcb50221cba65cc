//! Atomic install of a verified bundle into `plugins/<name>/`: stage, seal
//! read-only, swap by two renames, remove the old copy. `RuntimeCache::open`
//! finishes or rolls back whatever a crash interrupted.
//!
//! A caller with checks of its own (the client runs the REDscript sandbox
//! policy) stages first ([`RuntimeCache::stage_from_store`]: the bundle is
//! unpacked once, streaming, into a staging folder and its content checked
//! there), checks the [`StagedInstall`]'s files, then installs it
//! ([`RuntimeCache::install_staged`]) or drops it (the staging folder goes).
//! A bundle just downloaded is staged with [`RuntimeCache::stage_verified`]:
//! its download already hashed it, so it is read and unpacked once in all.
//! Archives are streamed from the packed file into staging in small pieces,
//! so an install never holds a bundle's game content in memory.

use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use shard_protocol::limits::{MAX_BUNDLE_PACKED, MAX_BUNDLE_UNPACKED, MAX_SERVER_NAME};

use crate::bundle::{Dest, UnpackedBundle, check_hash, check_packed, unpack_stream};
use crate::cache::{
    InstallRecord, InstalledPlugin, MANIFEST_FILE, OLD_PREFIX, RuntimeCache, STAGING_PREFIX,
    validate_plugin_name, validate_version,
};
use crate::content::check_bundle_content;
use crate::error::{BundleError, CacheError};
use crate::fsutil::{
    READ_PIECE, io_err, nonce, remove_any, seal_read_only, sync_dir, unix_now, write_synced,
};
use crate::partial::VerifiedBundle;

/// The steps of an install after which a crash can be simulated; each names
/// the last step that completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// The bundle was written to `store/`.
    AfterStored,
    /// The staging folder holds every file and the install record.
    AfterStagingWritten,
    /// The staging folder was made read-only.
    AfterStagingSealed,
    /// The previous install was renamed to `plugins/.old-<name>-…`.
    AfterOldMovedAside,
    /// The staging folder was renamed to `plugins/<name>`.
    AfterNewMovedIn,
}

impl CrashPoint {
    /// Every crash point, in install order (for exhaustive tests).
    pub const ALL: [CrashPoint; 5] = [
        CrashPoint::AfterStored,
        CrashPoint::AfterStagingWritten,
        CrashPoint::AfterStagingSealed,
        CrashPoint::AfterOldMovedAside,
        CrashPoint::AfterNewMovedIn,
    ];
}

/// What to install: the plugin's identity as announced, and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct InstallRequest<'a> {
    /// Plugin name; becomes the folder name, so it must pass `validate_plugin_name`.
    pub plugin: &'a str,
    /// Plugin version as announced.
    pub version: &'a str,
    /// The server address the bundle came from (recorded, not interpreted).
    pub server: &'a str,
    /// Announced SHA-256 of the bundle.
    pub sha256: [u8; 32],
}

/// A bundle unpacked once into a staging folder under `plugins/`, with its
/// game content checked, waiting to be installed by
/// [`RuntimeCache::install_staged`]. Dropping it removes the staging folder;
/// a crash leaves one that the next [`RuntimeCache::open`] removes, so the
/// cache never shows a half-checked install.
#[derive(Debug)]
pub struct StagedInstall {
    dir: PathBuf,
    record: InstallRecord,
    hash: [u8; 32],
    bundle: UnpackedBundle,
    /// Moved into place (or handed on): nothing left to remove on drop.
    done: bool,
}

impl StagedInstall {
    /// The bundle's folders and files, as unpacked and written to staging
    /// (for the caller's own checks).
    pub fn bundle(&self) -> &UnpackedBundle {
        &self.bundle
    }

    /// The staging folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for StagedInstall {
    fn drop(&mut self) {
        if !self.done {
            let _ = remove_any(&self.dir);
        }
        if let Some(name) = self.dir.file_name().and_then(|n| n.to_str()) {
            crate::cache::in_progress(name, false);
        }
    }
}

/// Where a bundle to stage comes from.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// Packed bytes in memory (hash checked first); stored once its content passes.
    Bytes(&'a [u8]),
    /// The store's copy, hashed as it is read and refused on a mismatch.
    Stored,
    /// The store's copy, hashed by the download that just wrote it.
    Verified,
}

/// A stored bundle being read for unpacking: counts its bytes and, when
/// asked, hashes them, so the store's copy is checked in the same pass.
struct StoreReader {
    file: fs::File,
    hasher: Option<Sha256>,
    read: u64,
}

impl Read for StoreReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.read += n as u64;
        Ok(n)
    }
}

impl RuntimeCache {
    /// Unpacks the stored bundle `req.sha256` once, streaming (hashing it
    /// as it is read), into a staging folder, checks its hash, size and game
    /// content, refusing it if it unpacks to more than `max_unpacked` bytes
    /// (the size the server announced). Nothing is installed until
    /// [`RuntimeCache::install_staged`]; a refusal removes the folder.
    pub fn stage_from_store(
        &self,
        req: &InstallRequest<'_>,
        max_unpacked: u64,
    ) -> Result<StagedInstall, CacheError> {
        self.stage(req, Source::Stored, Some(max_unpacked), None)
    }

    /// [`Self::stage_from_store`] for a bundle just verified and stored by
    /// its download ([`crate::PartialFile::finish`]): its hash is not computed
    /// again. `req.sha256` must be the hash it was verified against.
    pub fn stage_verified(
        &self,
        req: &InstallRequest<'_>,
        verified: VerifiedBundle,
        max_unpacked: u64,
    ) -> Result<StagedInstall, CacheError> {
        if verified.sha256() != &req.sha256 {
            return Err(BundleError::HashMismatch {
                expected: hex::encode(req.sha256),
                actual: hex::encode(verified.sha256()),
            }
            .into());
        }
        self.stage(req, Source::Verified, Some(max_unpacked), None)
    }

    /// Installs a staged bundle atomically as `plugins/<plugin>/`
    /// (read-only), replacing any previous install.
    pub fn install_staged(&self, staged: StagedInstall) -> Result<InstalledPlugin, CacheError> {
        self.commit(staged, None)
    }

    /// Verifies `bundle` against `req.sha256`, stores it and installs it
    /// atomically as `plugins/<plugin>/` (read-only), replacing any previous install.
    pub fn install(
        &self,
        req: &InstallRequest<'_>,
        bundle: &[u8],
    ) -> Result<InstalledPlugin, CacheError> {
        self.install_inner(req, Source::Bytes(bundle), None)
    }

    /// Installs a bundle that is already in the store (e.g. after `finish_partial`
    /// or to switch back to an earlier version).
    pub fn install_from_store(
        &self,
        req: &InstallRequest<'_>,
    ) -> Result<InstalledPlugin, CacheError> {
        self.install_inner(req, Source::Stored, None)
    }

    /// Test hook: runs `install` but stops right after `crash`, leaving the disk
    /// as a crash at that moment would, and releasing this handle's share of
    /// the cache lock as the crashed process would, so the next open repairs.
    #[doc(hidden)]
    pub fn install_with_crash_at(
        &self,
        req: &InstallRequest<'_>,
        bundle: &[u8],
        crash: CrashPoint,
    ) -> Result<InstalledPlugin, CacheError> {
        let result = self.install_inner(req, Source::Bytes(bundle), Some(crash));
        if matches!(result, Err(CacheError::SimulatedCrash(_))) {
            self.release_lock_as_a_crash_would();
        }
        result
    }

    /// Removes an installed plugin (its stored bundle stays in the store).
    pub fn uninstall(&self, name: &str) -> Result<(), CacheError> {
        let target = self.plugin_path(name)?;
        let _turn = self.lock_for_writing()?;
        if fs::symlink_metadata(&target).is_err() {
            return Err(CacheError::NotInstalled {
                name: name.to_owned(),
            });
        }
        let plugins = self.plugins_dir();
        let old = plugins.join(format!("{OLD_PREFIX}{name}-{}", nonce()));
        fs::rename(&target, &old).map_err(io_err("moving aside", &target))?;
        sync_dir(&plugins)?;
        remove_any(&old)
    }

    /// The install sequence, with an optional simulated crash.
    fn install_inner(
        &self,
        req: &InstallRequest<'_>,
        source: Source<'_>,
        crash: Option<CrashPoint>,
    ) -> Result<InstalledPlugin, CacheError> {
        let staged = self.stage(req, source, None, crash)?;
        self.commit(staged, crash)
    }

    /// Validates the request, unpacks the bundle once, streaming, into a new
    /// staging folder, checks its hash (bytes in memory before, the store's
    /// copy as it is read), size and game content, stores bytes given in
    /// memory and writes the install record. Any refusal drops the
    /// [`StagedInstall`], which removes the folder; a crash leaves one that
    /// [`RuntimeCache::open`] removes.
    fn stage(
        &self,
        req: &InstallRequest<'_>,
        source: Source<'_>,
        max_unpacked: Option<u64>,
        crash: Option<CrashPoint>,
    ) -> Result<StagedInstall, CacheError> {
        validate_request(req)?;
        if let Source::Bytes(bytes) = source {
            check_packed(bytes, &req.sha256)?;
        }
        let plugins = self.plugins_dir();
        let name = format!("{STAGING_PREFIX}{}-{}", req.plugin, nonce());
        let dir = plugins.join(&name);
        // Live before it exists, so an open beside this handle spares it.
        crate::cache::in_progress(&name, true);
        if let Err(e) = fs::create_dir(&dir) {
            crate::cache::in_progress(&name, false);
            return Err(io_err("creating", &dir)(e));
        }
        // From here on, dropping `staged` removes the folder (and its mark).
        let mut staged = StagedInstall {
            dir,
            record: InstallRecord {
                plugin: req.plugin.to_owned(),
                version: req.version.to_owned(),
                sha256: hex::encode(req.sha256),
                server: req.server.to_owned(),
                installed_at: unix_now(),
                unpacked_len: 0,
            },
            hash: req.sha256,
            bundle: UnpackedBundle::default(),
            done: false,
        };
        // Nothing past the announced size is written (`Dest::Staging`).
        let dest = Dest::Staging(&staged.dir, max_unpacked.unwrap_or(MAX_BUNDLE_UNPACKED));
        staged.bundle = match source {
            Source::Bytes(bytes) => unpack_stream(bytes, dest)?.0,
            Source::Stored | Source::Verified => {
                self.unpack_stored(&req.sha256, matches!(source, Source::Stored), dest)?
            }
        };
        let unpacked_len = staged.bundle.unpacked_len;
        staged.record.unpacked_len = unpacked_len;
        if let Some(announced) = max_unpacked
            && unpacked_len > announced
        {
            return Err(CacheError::LargerThanAnnounced {
                sha256: hex::encode(req.sha256),
                unpacked: unpacked_len,
                announced,
            });
        }
        check_bundle_content(req.plugin, &staged.bundle)?;
        if let Source::Bytes(bytes) = source {
            let path = self.bundle_path(&req.sha256);
            if !path.is_file() {
                crate::fsutil::write_atomic(&path, bytes)?;
            }
        }
        if crash == Some(CrashPoint::AfterStored) {
            // A crash leaves the half-written staging folder behind.
            staged.done = true;
            return Err(CacheError::SimulatedCrash(CrashPoint::AfterStored));
        }
        write_record(&staged.dir, &staged.record)?;
        if crash == Some(CrashPoint::AfterStagingWritten) {
            staged.done = true;
            return Err(CacheError::SimulatedCrash(CrashPoint::AfterStagingWritten));
        }
        Ok(staged)
    }

    /// The client scripts of the stored bundle `sha` (the other files are
    /// read through, checked and counted, not kept), hashed as it is read:
    /// for re-checking the scripts of a bundle already installed without
    /// holding its archives in memory. `unpacked_len` is the whole bundle's.
    pub fn stored_scripts(&self, sha: &[u8; 32]) -> Result<UnpackedBundle, CacheError> {
        self.unpack_stored(sha, true, Dest::Scripts)
    }

    /// Unpacks the store's copy of `sha` into `dest`, streaming; when
    /// `hashed`, it is hashed in the same pass and refused on a mismatch
    /// (disk corruption is reported, not installed).
    fn unpack_stored(
        &self,
        sha: &[u8; 32],
        hashed: bool,
        dest: Dest<'_>,
    ) -> Result<UnpackedBundle, CacheError> {
        let path = self.bundle_path(sha);
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheError::MissingBundle {
                    sha256: hex::encode(sha),
                });
            }
            Err(e) => return Err(io_err("opening", &path)(e)),
        };
        let reader = StoreReader {
            file,
            hasher: hashed.then(Sha256::new),
            read: 0,
        };
        let input = BufReader::with_capacity(READ_PIECE, reader);
        let (unpacked, rest) = unpack_stream(input, dest)?;
        let mut reader = rest.into_inner();
        // Whatever the decoder left unread still counts towards the hash and size.
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(io_err("reading", &path))?;
        if reader.read > MAX_BUNDLE_PACKED {
            return Err(BundleError::ReceivedTooLarge {
                size: reader.read,
                limit: MAX_BUNDLE_PACKED,
            }
            .into());
        }
        if let Some(hasher) = reader.hasher {
            check_hash(&hasher.finalize().into(), sha)?;
        }
        Ok(unpacked)
    }

    /// Seals the staging folder read-only and swaps it in by two renames.
    fn commit(
        &self,
        mut staged: StagedInstall,
        crash: Option<CrashPoint>,
    ) -> Result<InstalledPlugin, CacheError> {
        let plugin = staged.record.plugin.clone();
        seal_read_only(&staged.dir)?;
        if crash == Some(CrashPoint::AfterStagingSealed) {
            staged.done = true;
        }
        stop(crash, CrashPoint::AfterStagingSealed)?;

        let _turn = self.lock_for_writing()?;
        let plugins = self.plugins_dir();
        let target = plugins.join(&plugin);
        let old = plugins.join(format!("{OLD_PREFIX}{plugin}-{}", nonce()));
        let had_old = fs::symlink_metadata(&target).is_ok();
        if had_old {
            fs::rename(&target, &old).map_err(io_err("moving aside", &target))?;
            sync_dir(&plugins)?;
        }
        if crash == Some(CrashPoint::AfterOldMovedAside) {
            staged.done = true;
        }
        stop(crash, CrashPoint::AfterOldMovedAside)?;
        if let Err(e) = fs::rename(&staged.dir, &target) {
            if had_old {
                let _ = fs::rename(&old, &target);
            }
            return Err(io_err("moving into place", &target)(e));
        }
        staged.done = true;
        sync_dir(&plugins)?;
        stop(crash, CrashPoint::AfterNewMovedIn)?;
        if had_old {
            remove_any(&old)?;
        }
        let record = &staged.record;
        Ok(InstalledPlugin {
            plugin: record.plugin.clone(),
            version: record.version.clone(),
            hash: staged.hash,
            size: record.unpacked_len,
            server: record.server.clone(),
            installed_at: record.installed_at,
        })
    }
}

/// Refuses a request whose name, version or server cannot be recorded.
fn validate_request(req: &InstallRequest<'_>) -> Result<(), CacheError> {
    validate_plugin_name(req.plugin)?;
    validate_version(req.version)?;
    if req.server.is_empty() || req.server.chars().any(char::is_control) {
        return Err(CacheError::InvalidField {
            field: "server",
            value: req.server.chars().take(MAX_SERVER_NAME).collect(),
            reason: "empty or contains control characters".into(),
        });
    }
    Ok(())
}

/// Stops the sequence after `point` when a test asked for a crash there.
fn stop(crash: Option<CrashPoint>, point: CrashPoint) -> Result<(), CacheError> {
    if crash == Some(point) {
        Err(CacheError::SimulatedCrash(point))
    } else {
        Ok(())
    }
}

/// Writes the install record into `staging` (its files are already
/// there, each synced) and syncs the folder.
fn write_record(staging: &Path, record: &InstallRecord) -> Result<(), CacheError> {
    let json = serde_json::to_vec_pretty(record).map_err(|e| CacheError::BadManifest {
        path: staging.join(MANIFEST_FILE),
        detail: e.to_string(),
    })?;
    write_synced(&staging.join(MANIFEST_FILE), &json)?;
    sync_dir(staging)
}
