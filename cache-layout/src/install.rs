//! Atomic install of a verified bundle into `plugins/<name>/`: stage, seal
//! read-only, swap by two renames, remove the old copy. `RuntimeCache::open`
//! finishes or rolls back whatever a crash interrupted.

use std::fs;

use shard_protocol::limits::MAX_SERVER_NAME;

use crate::bundle::{UnpackedBundle, unpack_bundle};
use crate::cache::{
    InstallRecord, InstalledPlugin, MANIFEST_FILE, OLD_PREFIX, RuntimeCache, STAGING_PREFIX,
    validate_plugin_name, validate_version,
};
use crate::content::check_bundle_content;
use crate::error::CacheError;
use crate::fsutil::{io_err, nonce, remove_any, seal_read_only, sync_dir, unix_now, write_synced};

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

impl RuntimeCache {
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
        let stop = |point: CrashPoint| -> Result<(), CacheError> {
            if crash == Some(point) {
                Err(CacheError::SimulatedCrash(point))
            } else {
                Ok(())
            }
        };
        validate_plugin_name(req.plugin)?;
        validate_version(req.version)?;
        if req.server.is_empty() || req.server.chars().any(char::is_control) {
            return Err(CacheError::InvalidField {
                field: "server",
                value: req.server.chars().take(MAX_SERVER_NAME).collect(),
                reason: "empty or contains control characters".into(),
            });
        }
        // Everything is verified before the disk is touched.
        let unpacked = match bundle {
            Some(bytes) => {
                let unpacked = unpack_bundle(bytes, &req.sha256)?;
                check_bundle_content(req.plugin, &unpacked)?;
                let path = self.bundle_path(&req.sha256);
                if !path.is_file() {
                    crate::fsutil::write_atomic(&path, bytes)?;
                }
                unpacked
            }
            None => {
                let unpacked = unpack_bundle(&self.read_bundle(&req.sha256)?, &req.sha256)?;
                check_bundle_content(req.plugin, &unpacked)?;
                unpacked
            }
        };
        stop(CrashPoint::AfterStored)?;

        let plugins = self.plugins_dir();
        let staging = plugins.join(format!("{STAGING_PREFIX}{}-{}", req.plugin, nonce()));
        let record = InstallRecord {
            plugin: req.plugin.to_owned(),
            version: req.version.to_owned(),
            sha256: hex::encode(req.sha256),
            server: req.server.to_owned(),
            installed_at: unix_now(),
            unpacked_len: unpacked.unpacked_len,
        };
        if let Err(e) = write_staging(&staging, &unpacked, &record) {
            let _ = remove_any(&staging);
            return Err(e);
        }
        stop(CrashPoint::AfterStagingWritten)?;
        if let Err(e) = seal_read_only(&staging) {
            let _ = remove_any(&staging);
            return Err(e);
        }
        stop(CrashPoint::AfterStagingSealed)?;

        let target = plugins.join(req.plugin);
        let old = plugins.join(format!("{OLD_PREFIX}{}-{}", req.plugin, nonce()));
        let had_old = fs::symlink_metadata(&target).is_ok();
        if had_old {
            if let Err(e) = fs::rename(&target, &old) {
                let _ = remove_any(&staging);
                return Err(io_err("moving aside", &target)(e));
            }
            sync_dir(&plugins)?;
        }
        stop(CrashPoint::AfterOldMovedAside)?;
        if let Err(e) = fs::rename(&staging, &target) {
            if had_old {
                let _ = fs::rename(&old, &target);
            }
            let _ = remove_any(&staging);
            return Err(io_err("moving into place", &target)(e));
        }
        sync_dir(&plugins)?;
        stop(CrashPoint::AfterNewMovedIn)?;
        if had_old {
            remove_any(&old)?;
        }
        Ok(InstalledPlugin {
            plugin: record.plugin,
            version: record.version,
            hash: req.sha256,
            size: record.unpacked_len,
            server: record.server,
            installed_at: record.installed_at,
        })
    }
}

/// Writes every folder and file of the bundle plus the install record into `staging`.
fn write_staging(
    staging: &std::path::Path,
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
