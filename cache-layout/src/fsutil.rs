//! Small file-system helpers: atomic writes, directory fsync, unique temp
//! names and removal of read-only trees.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::CacheError;

/// Prefix of temporary files written next to their final name; `open` removes strays.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Builds a `CacheError::Io` for `action` on `path`.
pub(crate) fn io_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> CacheError {
    let path = path.to_path_buf();
    move |source| CacheError::Io {
        action,
        path,
        source,
    }
}

/// A name fragment unique within this machine for the life of the cache
/// (process id, time and a counter; no `-` so it can end a `-`-joined name).
pub(crate) fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:x}{:x}", std::process::id(), nanos, n)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Flushes a directory's entries to disk so a rename inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io_err("syncing", dir))?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file in the same folder, fsync, rename, fsync folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!("{TMP_PREFIX}{}", nonce()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(io_err("creating", &tmp))?;
        f.write_all(bytes).map_err(io_err("writing", &tmp))?;
        f.sync_all().map_err(io_err("syncing", &tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io_err("renaming into place", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes a new file and fsyncs it (used inside staging folders).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let mut f = fs::File::create(path).map_err(io_err("creating", path))?;
    f.write_all(bytes).map_err(io_err("writing", path))?;
    f.sync_all().map_err(io_err("syncing", path))
}

/// Makes every file and folder under `root` (and `root`) read-only, children first.
pub(crate) fn seal_read_only(root: &Path) -> Result<(), CacheError> {
    set_tree_readonly(root, true)
}

/// Restores write permission on a tree so it can be removed or replaced.
pub(crate) fn unseal(root: &Path) -> Result<(), CacheError> {
    set_tree_readonly(root, false)
}

/// Sets or clears the read-only flag recursively; folders are made writable
/// before descending and read-only after, so the walk always works.
fn set_tree_readonly(path: &Path, readonly: bool) -> Result<(), CacheError> {
    let meta = fs::symlink_metadata(path).map_err(io_err("inspecting", path))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() {
        if !readonly {
            set_readonly(path, &meta, false)?;
        }
        let entries: Vec<PathBuf> = fs::read_dir(path)
            .map_err(io_err("listing", path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        for child in entries {
            set_tree_readonly(&child, readonly)?;
        }
        if readonly {
            set_readonly(path, &meta, true)?;
        }
    } else {
        set_readonly(path, &meta, readonly)?;
    }
    Ok(())
}

/// Sets one path's read-only flag (all write bits on Unix).
fn set_readonly(path: &Path, meta: &fs::Metadata, readonly: bool) -> Result<(), CacheError> {
    let mut perms = meta.permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = perms.mode();
        let mode = if readonly {
            mode & !0o222
        } else {
            mode | 0o200
        };
        perms.set_mode(mode);
    }
    #[cfg(not(unix))]
    {
        perms.set_readonly(readonly);
    }
    fs::set_permissions(path, perms).map_err(io_err("changing permissions of", path))
}

/// Removes a file or tree that may be read-only; a missing path is fine.
pub(crate) fn remove_any(path: &Path) -> Result<(), CacheError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("inspecting", path)(e)),
    };
    if meta.is_dir() {
        unseal(path)?;
        fs::remove_dir_all(path).map_err(io_err("removing", path))
    } else {
        fs::remove_file(path).map_err(io_err("removing", path))
    }
}
