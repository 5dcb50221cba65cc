//! Atomic install of a verified bundle into `plugins/<name>/`: stage, seal
//! read-only, swap by two renames, remove the old copy. `RuntimeCache::open`
//! finishes or rolls back whatever a crash interrupted.
//!
//! A caller with checks of its own (the client runs the REDscript sandbox
//! policy) stages first ([`RuntimeCache::stage_from_store`]: the bundle is
//! unpacked once, content-checked and written to a staging folder), checks
//! the [`StagedInstall`]'s files, then installs it
//! ([`RuntimeCache::install_staged`]) or drops it (the staging folder goes).
//! A bundle just downloaded is staged with [`RuntimeCache::stage_verified`]
//! from what its verification unpacked, so it is read, hashed and unpacked
//! once in all.

use std::fs;
use std::path::{Path, PathBuf};

use shard_protocol::limits::MAX_SERVER_NAME;

use crate::bundle::{UnpackedBundle, unpack_bundle};
use crate::cache::{
    InstallRecord, InstalledPlugin, MANIFEST_FILE, OLD_PREFIX, RuntimeCache, STAGING_PREFIX,
    validate_plugin_name, validate_version,
};
use crate::content::check_bundle_content;
use crate::error::{BundleError, CacheError};
use crate::fsutil::{io_err, nonce, remove_any, seal_read_only, sync_dir, unix_now, write_synced};
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
    }
}

impl RuntimeCache {
    /// Unpacks the stored bundle `req.sha256` once (verifying its hash),
    /// checks its game content and writes it with its install record into a
    /// staging folder, refusing it if it unpacks to more than
    /// `max_unpacked` bytes (the size the server announced). Nothing is
    /// installed until [`RuntimeCache::install_staged`].
    pub fn stage_from_store(
        &self,
        req: &InstallRequest<'_>,
        max_unpacked: u64,
    ) -> Result<StagedInstall, CacheError> {
        self.stage(req, None, Some(max_unpacked), None)
    }

    /// [`Self::stage_from_store`] for a bundle just verified and stored by
    /// [`RuntimeCache::finish_partial_verified`]: its unpacked contents are
    /// used as they are, so the stored copy is not read, hashed or unpacked
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
        validate_request(req)?;
        self.stage_unpacked(
            req,
            verified.into_unpacked(),
            None,
            Some(max_unpacked),
            None,
        )
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
        self.install_inner(req, Some(bundle), None)
    }

    /// Installs a bundle that is already in the store (e.g. after `finish_partial`
    /// or to switch back to an earlier version).
    pub fn install_from_store(
        &self,
        req: &InstallRequest<'_>,
    ) -> Result<InstalledPlugin, CacheError> {
        self.install_inner(req, None, None)
    }

    /// Test hook: runs `install` but stops right after `crash`, leaving the disk
    /// as a crash at that moment would.
    #[doc(hidden)]
    pub fn install_with_crash_at(
        &self,
        req: &InstallRequest<'_>,
        bundle: &[u8],
        crash: CrashPoint,
    ) -> Result<InstalledPlugin, CacheError> {
        self.install_inner(req, Some(bundle), Some(crash))
    }

    /// Removes an installed plugin (its stored bundle stays in the store).
    pub fn uninstall(&self, name: &str) -> Result<(), CacheError> {
        let target = self.plugin_path(name)?;
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
        bundle: Option<&[u8]>,
        crash: Option<CrashPoint>,
    ) -> Result<InstalledPlugin, CacheError> {
        let staged = self.stage(req, bundle, None, crash)?;
        self.commit(staged, crash)
    }

    /// Validates the request, unpacks the bundle (given, or from the store)
    /// once, checks it and writes the staging folder.
    fn stage(
        &self,
        req: &InstallRequest<'_>,
        bundle: Option<&[u8]>,
        max_unpacked: Option<u64>,
        crash: Option<CrashPoint>,
    ) -> Result<StagedInstall, CacheError> {
        validate_request(req)?;
        // Everything is verified before the disk is touched.
        let stored;
        let bytes = match bundle {
            Some(bytes) => bytes,
            None => {
                stored = self.read_bundle(&req.sha256)?;
                &stored
            }
        };
        let unpacked = unpack_bundle(bytes, &req.sha256)?;
        self.stage_unpacked(req, unpacked, bundle, max_unpacked, crash)
    }

    /// Checks an unpacked bundle's size and content, stores its packed
    /// `bytes` if given, and writes the staging folder.
    fn stage_unpacked(
        &self,
        req: &InstallRequest<'_>,
        unpacked: UnpackedBundle,
        bundle: Option<&[u8]>,
        max_unpacked: Option<u64>,
        crash: Option<CrashPoint>,
    ) -> Result<StagedInstall, CacheError> {
        if let Some(announced) = max_unpacked
            && unpacked.unpacked_len > announced
        {
            return Err(CacheError::LargerThanAnnounced {
                sha256: hex::encode(req.sha256),
                unpacked: unpacked.unpacked_len,
                announced,
            });
        }
        check_bundle_content(req.plugin, &unpacked)?;
        if let Some(bytes) = bundle {
            let path = self.bundle_path(&req.sha256);
            if !path.is_file() {
                crate::fsutil::write_atomic(&path, bytes)?;
            }
        }
        stop(crash, CrashPoint::AfterStored)?;

        let plugins = self.plugins_dir();
        let staged = StagedInstall {
            dir: plugins.join(format!("{STAGING_PREFIX}{}-{}", req.plugin, nonce())),
            record: InstallRecord {
                plugin: req.plugin.to_owned(),
                version: req.version.to_owned(),
                sha256: hex::encode(req.sha256),
                server: req.server.to_owned(),
                installed_at: unix_now(),
                unpacked_len: unpacked.unpacked_len,
            },
            hash: req.sha256,
            bundle: unpacked,
            done: false,
        };
        // On an error the staging folder goes with `staged`.
        write_staging(&staged.dir, &staged.bundle, &staged.record)?;
        if crash == Some(CrashPoint::AfterStagingWritten) {
            let mut staged = staged;
            // A crash leaves the folder behind, as it is now.
            staged.done = true;
            return Err(CacheError::SimulatedCrash(CrashPoint::AfterStagingWritten));
        }
        Ok(staged)
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

/// Writes every folder and file of the bundle plus the install record into `staging`.
fn write_staging(
    staging: &Path,
    unpacked: &UnpackedBundle,
    record: &InstallRecord,
) -> Result<(), CacheError> {
    fs::create_dir(staging).map_err(io_err("creating", staging))?;
    for dir in &unpacked.dirs {
        let path = staging.join(dir);
        fs::create_dir_all(&path).map_err(io_err("creating", &path))?;
    }
    for file in &unpacked.files {
        let path = staging.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
        }
        write_synced(&path, &file.contents)?;
    }
    let json = serde_json::to_vec_pretty(record).map_err(|e| CacheError::BadManifest {
        path: staging.join(MANIFEST_FILE),
        detail: e.to_string(),
    })?;
    write_synced(&staging.join(MANIFEST_FILE), &json)?;
    sync_dir(staging)
}
