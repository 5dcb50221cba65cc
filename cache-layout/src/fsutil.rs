//! Small file-system helpers: atomic writes, directory fsync, unique temp
//! names and removal of read-only trees.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::CacheError;

/// Bytes a streaming read, copy or hash of a cache file moves at a time
/// (unpacking into staging, re-hashing a partial download, digests of
/// installed files), so no file is ever read into memory whole.
pub(crate) const READ_PIECE: usize = 64 * 1024;

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

/// Opens `path` for reading and writing, creating it empty if missing and
/// keeping what it holds otherwise: lock files and resumable downloads.
pub(crate) fn open_or_create(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
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

/// Fills `buf` from `file` at `offset` without moving its cursor, so
/// checks can read a staged file by offset (the archive check reads only
/// the header and index of a large archive).
pub(crate) fn read_exact_at(file: &fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            match std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], at)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => done += n,
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically: temp file in the same folder, fsync,
/// rename, fsync folder, so a reader (or a crash) sees the old file or the
/// whole new one; the cache and the server's published bundles use it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = format!("{TMP_PREFIX}{}", nonce());
    let tmp = dir.join(&name);
    // Live while it exists, so an open beside this handle spares it.
    crate::cache::in_progress(&name, true);
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
    crate::cache::in_progress(&name, false);
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

/// Sets or clears the read-only flag recursively, without following links;
/// folders are made writable before their contents are listed and read-only
/// after them, so the walk always works.
fn set_tree_readonly(path: &Path, readonly: bool) -> Result<(), CacheError> {
    let walker = walkdir::WalkDir::new(path)
        .follow_links(false)
        .follow_root_links(false)
        .contents_first(readonly);
    for entry in walker {
        let entry = entry.map_err(|e| {
            let at = e.path().unwrap_or(path).to_path_buf();
            io_err("listing", &at)(e.into())
        })?;
        if entry.file_type().is_symlink() {
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(|e| io_err("inspecting", entry.path())(e.into()))?;
        set_readonly(entry.path(), &meta, readonly)?;
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
