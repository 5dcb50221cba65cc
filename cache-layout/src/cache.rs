//! `RuntimeCache`: the on-disk `runtime_cache/` folder (see the crate README
//! for the layout) with crash recovery on open, listing, verification and
//! the content-addressed bundle store.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use shard_protocol::limits::{MAX_BUNDLE_PACKED, MAX_PLUGIN_NAME, MAX_PLUGIN_VERSION};

use crate::bundle::{sha256, unpack_bundle};
use crate::error::{BundleError, CacheError};
use crate::fsutil::{TMP_PREFIX, io_err, open_or_create, remove_any, write_atomic};

/// Folder of verified packed bundles, named `<sha256hex>.bundle`.
pub const STORE_DIR: &str = "store";
/// Folder of installed plugins, one read-only folder per plugin name.
pub const PLUGINS_DIR: &str = "plugins";
/// Folder of resumable downloads, named `<sha256hex>.part`.
pub const PARTIAL_DIR: &str = "partial";
/// Text file of pinned server keys, one `address fingerprint_hex` per line.
pub const KNOWN_SERVERS_FILE: &str = "known_servers";
/// Install record inside each `plugins/<name>/` folder.
pub const MANIFEST_FILE: &str = ".shard-bundle.json";
/// Lock file every open handle holds shared, so crash recovery leaves alone
/// what other live handles are writing (see [`RuntimeCache::open`]).
pub const LOCK_FILE: &str = ".lock";

/// Lock file held exclusively, briefly, by every change to the installed
/// plugin folders (install, uninstall, eviction), the usage ledger, the
/// server pins and the remembered answers, so two handles sharing a cache
/// (two clients) take turns instead of moving the same folder aside at
/// once or losing an update.
pub const WRITE_LOCK_FILE: &str = ".write.lock";
/// Prefix of a process's marker, `.process-<nonce>.lock`: held locked while
/// the process has the cache open, so an open beside this process's own
/// handles can tell whether another process has it open too (whose work in
/// progress it must not take for a crash's leftovers).
pub const PROCESS_PREFIX: &str = ".process-";
/// Prefix of an install being assembled: `plugins/.staging-<name>-<nonce>`.
pub(crate) const STAGING_PREFIX: &str = ".staging-";
/// Prefix of a replaced install awaiting removal: `plugins/.old-<name>-<nonce>`.
pub(crate) const OLD_PREFIX: &str = ".old-";

/// The contents of `.shard-bundle.json`: what is installed and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallRecord {
    /// Plugin name (also the folder name).
    pub plugin: String,
    /// Plugin version as announced by the server.
    pub version: String,
    /// SHA-256 hex of the installed bundle (its file name in `store/`).
    pub sha256: String,
    /// The server the bundle came from (address as the user typed it).
    pub server: String,
    /// When it was installed, seconds since the Unix epoch.
    pub installed_at: u64,
    /// Total unpacked size of the bundle's files, in bytes.
    #[serde(default)]
    pub unpacked_len: u64,
}

/// One installed plugin, as listed by [`RuntimeCache::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPlugin {
    /// Plugin name.
    pub plugin: String,
    /// Installed version.
    pub version: String,
    /// SHA-256 of the installed bundle.
    pub hash: [u8; 32],
    /// Total unpacked size of its files, in bytes.
    pub size: u64,
    /// The server it came from.
    pub server: String,
    /// Install time, seconds since the Unix epoch.
    pub installed_at: u64,
}

/// Outcome of re-checking one installed plugin against its stored bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyStatus {
    /// Every file matches the bundle.
    Ok,
    /// A file's contents differ from the bundle.
    FileDiffers(String),
    /// A file of the bundle is missing from the install.
    FileMissing(String),
    /// The install holds a file the bundle does not.
    ExtraFile(String),
    /// The bundle named by the install record is not in the store.
    MissingBundle(String),
    /// The stored bundle no longer verifies (hash or contents).
    BadBundle(String),
    /// The install record is missing or unreadable.
    BadManifest(String),
}

/// Verification report for one plugin folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginReport {
    /// The plugin folder name.
    pub plugin: String,
    /// What was found.
    pub status: VerifyStatus,
}

/// Handle on a `runtime_cache/` folder; all reads and writes of the cache go
/// through it. Handles opened apart (a reconnecting session, the game and a
/// `shard-client cache` command) share the folder safely: each holds a
/// shared lock on [`LOCK_FILE`], and the crash recovery that removes
/// half-done installs leaves alone what another handle may be doing: with
/// a handle open in another process it does not run, and beside handles of
/// its own process it spares the staging folders they are filling.
#[derive(Debug, Clone)]
pub struct RuntimeCache {
    root: PathBuf,
    /// The shared lock on [`LOCK_FILE`], released when the last clone drops.
    lock: Arc<CacheLock>,
}

/// Handles open in this process, per cache (by canonical root), so an open
/// beside one can tell this process's work in progress from another's.
static OPEN_HERE: Mutex<BTreeMap<PathBuf, Here>> = Mutex::new(BTreeMap::new());

/// This process's handles on one cache, and its marker there.
#[derive(Debug)]
struct Here {
    handles: usize,
    /// `None` where the cache cannot be written (no handle there has work).
    marker: Option<ProcessMarker>,
}

/// This process's `.process-<nonce>.lock` in a cache, locked exclusively
/// while any handle of the process has the cache open; removed with the
/// last handle (a crash leaves it unlocked, and the next probe removes it).
#[derive(Debug)]
struct ProcessMarker {
    path: PathBuf,
    _file: fs::File,
}

impl Drop for ProcessMarker {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Names of the staging folders and temp files this process's live handles
/// are filling (each name carries a nonce, so names do not collide).
static IN_PROGRESS_HERE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Marks the staging folder or temp file `name` as being filled (`true`) or
/// no longer (`false`), so an open beside its handle in this process spares it.
pub(crate) fn in_progress(name: &str, live: bool) {
    let mut set = IN_PROGRESS_HERE
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if live {
        set.insert(name.to_owned());
    } else {
        set.remove(name);
    }
}

/// A handle's lock file and its place in [`OPEN_HERE`], given up when the
/// last clone of the handle drops.
#[derive(Debug)]
struct CacheLock {
    /// `None` for a read-only cache that has no lock file yet.
    file: Option<fs::File>,
    key: PathBuf,
}

impl CacheLock {
    /// Counts a new handle on `file` for the cache with `key` at `root`;
    /// the first of this process in a cache it can write also makes and
    /// locks the process's marker (the caller holds the write lock, so no
    /// probe sees it half made). Returns the handle, whether this process
    /// had others open there already, and this process's marker there.
    fn register(
        file: Option<fs::File>,
        key: PathBuf,
        root: &Path,
        writable: bool,
    ) -> (Self, bool, Option<PathBuf>) {
        let mut map = OPEN_HERE.lock().unwrap_or_else(PoisonError::into_inner);
        let here = map.entry(key.clone()).or_insert(Here {
            handles: 0,
            marker: None,
        });
        let others = here.handles > 0;
        if here.marker.is_none() && writable {
            // Without a marker the cache still opens; only a second
            // process's open beside its own handles cannot see this one.
            here.marker = ProcessMarker::make(root)
                .inspect_err(|error| tracing::warn!(%error, "cache open without a process marker"))
                .ok();
        }
        here.handles += 1;
        let marker = here.marker.as_ref().map(|m| m.path.clone());
        (Self { file, key }, others, marker)
    }
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        let mut map = OPEN_HERE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(here) = map.get_mut(&self.key) {
            here.handles = here.handles.saturating_sub(1);
            if here.handles == 0 {
                // Drops the marker: removed, then unlocked.
                map.remove(&self.key);
            }
        }
    }
}

impl ProcessMarker {
    /// Makes and locks a new marker in `root`.
    fn make(root: &Path) -> Result<Self, CacheError> {
        let path = root.join(format!("{PROCESS_PREFIX}{}.lock", crate::fsutil::nonce()));
        let file = open_or_create(&path).map_err(io_err("creating", &path))?;
        if let Err(error) = file.try_lock() {
            // Locks that do not work here: the probe cannot see this
            // process either way, as `open` itself cannot.
            tracing::debug!(path = %path.display(), %error, "process marker not locked");
        }
        Ok(Self { path, _file: file })
    }
}

/// Whether a process other than this one has the cache at `root` open: a
/// marker other than `own` is locked. A marker nobody holds is a crashed
/// process's, and is removed. Called under the write lock, which markers
/// are made under, so none is seen between its creation and its lock.
fn other_process_open(root: &Path, own: Option<&Path>) -> Result<bool, CacheError> {
    let mut open = false;
    for name in list_names(root)? {
        let path = root.join(&name);
        if !name.starts_with(PROCESS_PREFIX) || Some(path.as_path()) == own {
            continue;
        }
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // Cannot tell (another user's, or one being removed on
            // Windows): counted as open, which only defers repairs.
            Err(_) => {
                open = true;
                continue;
            }
        };
        match file.try_lock_shared() {
            Ok(()) => {
                drop(file);
                // Best effort: a stale marker left behind only costs a look.
                let _ = fs::remove_file(&path);
            }
            // Held, or a filesystem whose locks fail: counted as open.
            Err(_) => open = true,
        }
    }
    Ok(open)
}

/// Opens (creating if needed) the lock file at `path`; returns it and whether
/// the cache can be written. A cache this user may only read (a modder's
/// shared copy, read-only media) still opens for listing and verifying: its
/// lock file is opened for reading (a lock needs no write access), or, when
/// it has none, the cache opens without one. An exclusive open needs write
/// access, so it fails there.
fn open_lock_file(path: &Path, exclusive: bool) -> Result<(Option<fs::File>, bool), CacheError> {
    let error = match open_or_create(path) {
        Ok(file) => return Ok((Some(file), true)),
        Err(error) => error,
    };
    let read_only = matches!(
        error.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    );
    if !read_only || exclusive {
        return Err(io_err("opening", path)(error));
    }
    match fs::File::open(path) {
        Ok(file) => Ok((Some(file), false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, false)),
        Err(e) => Err(io_err("opening", path)(e)),
    }
}

/// Waits for and takes [`WRITE_LOCK_FILE`] of the cache at `root`; see
/// [`RuntimeCache::lock_for_writing`].
fn write_lock_at(root: &Path) -> Result<WriteGuard, CacheError> {
    let path = root.join(WRITE_LOCK_FILE);
    let file = open_or_create(&path).map_err(io_err("opening", &path))?;
    // A filesystem without working locks: go on, as `open` does.
    if let Err(error) = file.lock() {
        tracing::debug!(path = %path.display(), %error, "cache change not serialised");
    }
    Ok(WriteGuard { _file: file })
}

/// Held while a change to plugin folders or the ledger runs; see
/// [`WRITE_LOCK_FILE`]. Dropping it (or a crash) releases the lock.
#[derive(Debug)]
pub(crate) struct WriteGuard {
    _file: fs::File,
}

/// What an open may repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repair {
    /// No other handle exists: everything a crash can leave.
    All,
    /// Only handles of this process exist: everything but the staging
    /// folders and temp files they are filling.
    AllButInProgress,
    /// A handle of another process exists: nothing (its work in progress
    /// looks like a crash's leftovers); a later open repairs.
    Nothing,
}

/// Checks that `name` is a safe folder name for `plugins/<name>/` on every OS.
pub fn validate_plugin_name(name: &str) -> Result<(), CacheError> {
    let bad = |reason: &str| {
        Err(CacheError::InvalidPluginName {
            name: name.chars().take(MAX_PLUGIN_NAME).collect(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_PLUGIN_NAME {
        return bad(&format!("longer than {MAX_PLUGIN_NAME} bytes"));
    }
    if name.starts_with('.') {
        return bad("may not start with `.`");
    }
    if name.ends_with('.') {
        return bad("may not end with `.`");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return bad("only ASCII letters, digits, `_`, `-` and `.` are allowed");
    }
    if crate::bundle::is_windows_device_name(name) {
        return bad("reserved device name on Windows");
    }
    Ok(())
}

/// Checks a version string: non-empty, at most `MAX_PLUGIN_VERSION` bytes, printable, no spaces.
pub fn validate_version(version: &str) -> Result<(), CacheError> {
    let reason = if version.is_empty() {
        "empty"
    } else if version.len() > MAX_PLUGIN_VERSION {
        "too long"
    } else if version.chars().any(|c| c.is_control() || c.is_whitespace()) {
        "contains spaces or control characters"
    } else {
        return Ok(());
    };
    Err(CacheError::InvalidField {
        field: "version",
        value: version.chars().take(MAX_PLUGIN_VERSION).collect(),
        reason: format!("{reason} (at most {MAX_PLUGIN_VERSION} printable bytes)"),
    })
}

/// Parses a SHA-256 from 64 hex digits.
pub fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

impl RuntimeCache {
    /// Opens (creating if needed) the cache at `root` and, when no other
    /// handle has it open, repairs whatever an interrupted install or write
    /// left behind, so every plugin folder holds a complete old or new
    /// install. With another handle open, what looks left behind may be its
    /// install in progress, so it is left for a later open to repair.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, CacheError> {
        Self::open_as(root.as_ref(), false)
    }

    /// Opens the cache for a change no other handle may see half done
    /// (`shard-client cache clear` or `gc` beside a running game): fails
    /// with [`CacheError::InUse`] while any other handle has it open, and
    /// holds it exclusively until dropped, so handles opened meanwhile wait.
    pub fn open_exclusive(root: impl AsRef<Path>) -> Result<Self, CacheError> {
        Self::open_as(root.as_ref(), true)
    }

    /// [`Self::open`], or with `exclusive` [`Self::open_exclusive`].
    fn open_as(root: &Path, exclusive: bool) -> Result<Self, CacheError> {
        let root = root.to_path_buf();
        fs::create_dir_all(&root).map_err(io_err("creating", &root))?;
        let lock_path = root.join(LOCK_FILE);
        let (lock, writable) = open_lock_file(&lock_path, exclusive)?;
        let key = fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
        // Held while this process's marker is made and while what to repair
        // is decided and repaired, so another process cannot start work in
        // between (its open waits here first).
        let turn = if writable {
            Some(write_lock_at(&root)?)
        } else {
            None
        };
        let (lock, here, own_marker) = CacheLock::register(lock, key, &root, writable);
        let repair = match lock.file.as_ref().map(fs::File::try_lock) {
            // Nothing here can be changed, so nothing can be repaired.
            _ if !writable => Repair::Nothing,
            None | Some(Ok(())) => Repair::All,
            Some(Err(fs::TryLockError::WouldBlock)) if exclusive => {
                return Err(CacheError::InUse { root });
            }
            Some(Err(fs::TryLockError::WouldBlock))
                if here && !other_process_open(&root, own_marker.as_deref())? =>
            {
                Repair::AllButInProgress
            }
            Some(Err(fs::TryLockError::WouldBlock)) => Repair::Nothing,
            // A filesystem without working locks (some network shares): the
            // cache stays usable, as if no other process had it open.
            Some(Err(fs::TryLockError::Error(error))) => {
                tracing::warn!(path = %lock_path.display(), %error, "cannot lock the cache; repairing it as if no other process used it");
                Repair::AllButInProgress
            }
        };
        let cache = RuntimeCache {
            root,
            lock: Arc::new(lock),
        };
        if writable {
            for dir in [cache.store_dir(), cache.plugins_dir(), cache.partial_dir()] {
                fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
            }
        }
        match repair {
            Repair::Nothing if !writable => {
                tracing::info!(root = %cache.root.display(), "cache is read-only here: it can be listed and verified, not changed or repaired");
            }
            Repair::Nothing => {
                tracing::debug!(root = %cache.root.display(), "cache open in another process; recovery left to a later open");
            }
            Repair::All => {
                // No handle anywhere: markers nobody holds are a crash's.
                other_process_open(&cache.root, own_marker.as_deref())?;
                cache.recover(false)?;
            }
            Repair::AllButInProgress => cache.recover(true)?,
        }
        drop(turn);
        if exclusive {
            return Ok(cache);
        }
        // Shared from here on: other handles may open, none may recover. (No
        // install can start between the unlock and the shared lock, as this
        // handle is not returned yet; another open may recover in between.)
        if let Some(file) = &cache.lock.file
            && let Err(error) = file.unlock().and_then(|()| file.lock_shared())
        {
            tracing::debug!(path = %lock_path.display(), %error, "cache open without a shared lock");
        }
        Ok(cache)
    }

    /// For the crash test hooks: gives up this handle's (and its clones')
    /// share of the lock, as the end of a crashed process does, so a
    /// following [`Self::open`] repairs what the simulated crash left.
    pub(crate) fn release_lock_as_a_crash_would(&self) {
        if let Some(file) = &self.lock.file {
            let _ = file.unlock();
        }
    }

    /// Waits for and takes [`WRITE_LOCK_FILE`]; the changes it guards are a
    /// few renames and small writes, so the wait is short. Callers take it
    /// once, at the public entry point, never nested (a second lock of it
    /// in this process would wait for the first forever); `open` takes it
    /// too, so no code holding it may open a cache.
    pub(crate) fn lock_for_writing(&self) -> Result<WriteGuard, CacheError> {
        write_lock_at(&self.root)
    }

    /// The cache's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `store/`.
    pub(crate) fn store_dir(&self) -> PathBuf {
        self.root.join(STORE_DIR)
    }

    /// `plugins/`.
    pub(crate) fn plugins_dir(&self) -> PathBuf {
        self.root.join(PLUGINS_DIR)
    }

    /// `partial/`.
    pub(crate) fn partial_dir(&self) -> PathBuf {
        self.root.join(PARTIAL_DIR)
    }

    /// Path of a stored bundle: `store/<sha256hex>.bundle`.
    pub fn bundle_path(&self, sha: &[u8; 32]) -> PathBuf {
        self.store_dir()
            .join(format!("{}.bundle", hex::encode(sha)))
    }

    /// Path of an installed plugin's folder (`plugins/<name>/`), after validating the name.
    pub fn plugin_path(&self, name: &str) -> Result<PathBuf, CacheError> {
        validate_plugin_name(name)?;
        Ok(self.plugins_dir().join(name))
    }

    /// Removes staging folders and stray temp files and puts back any plugin
    /// folder whose replacement did not finish moving in.
    /// With `spare_live`, the staging folders and temp files this process's
    /// handles are filling are left alone.
    fn recover(&self, spare_live: bool) -> Result<(), CacheError> {
        let live = if spare_live {
            IN_PROGRESS_HERE
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        } else {
            BTreeSet::new()
        };
        for dir in [self.root.clone(), self.store_dir(), self.partial_dir()] {
            for name in list_names(&dir)? {
                if name.starts_with(TMP_PREFIX) && !live.contains(&name) {
                    remove_any(&dir.join(name))?;
                }
            }
        }
        let plugins = self.plugins_dir();
        let names = list_names(&plugins)?;
        for name in &names {
            if live.contains(name) {
                continue;
            }
            if name.starts_with(STAGING_PREFIX)
                || name.starts_with(TMP_PREFIX)
                || name.starts_with(crate::usage::EVICT_PREFIX)
            {
                remove_any(&plugins.join(name))?;
            }
        }
        for name in &names {
            let Some(rest) = name.strip_prefix(OLD_PREFIX) else {
                continue;
            };
            let old = plugins.join(name);
            let target = rest
                .rsplit_once('-')
                .map(|(plugin, _)| plugin)
                .filter(|plugin| validate_plugin_name(plugin).is_ok())
                .map(|plugin| plugins.join(plugin));
            match target {
                Some(target) if fs::symlink_metadata(&target).is_err() => {
                    fs::rename(&old, &target).map_err(io_err("restoring", &target))?;
                    crate::fsutil::sync_dir(&plugins)?;
                }
                _ => remove_any(&old)?,
            }
        }
        self.reconcile_ledger()
    }

    /// Whether the store holds the bundle with this SHA-256.
    pub fn has_bundle(&self, sha: &[u8; 32]) -> bool {
        self.bundle_path(sha).is_file()
    }

    /// Reads a stored bundle and re-checks its hash, so disk corruption is
    /// reported instead of installed.
    pub fn read_bundle(&self, sha: &[u8; 32]) -> Result<Vec<u8>, CacheError> {
        let path = self.bundle_path(sha);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheError::MissingBundle {
                    sha256: hex::encode(sha),
                });
            }
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        let actual = sha256(&bytes);
        if &actual != sha {
            return Err(BundleError::HashMismatch {
                expected: hex::encode(sha),
                actual: hex::encode(actual),
            }
            .into());
        }
        Ok(bytes)
    }

    /// Verifies `bytes` (hash and every entry) and stores them atomically as
    /// `store/<sha>.bundle`; storing an already present bundle is a no-op.
    pub fn store_bundle(&self, bytes: &[u8], sha: &[u8; 32]) -> Result<PathBuf, CacheError> {
        if bytes.len() as u64 > MAX_BUNDLE_PACKED {
            return Err(BundleError::ReceivedTooLarge {
                size: bytes.len() as u64,
                limit: MAX_BUNDLE_PACKED,
            }
            .into());
        }
        unpack_bundle(bytes, sha)?;
        let path = self.bundle_path(sha);
        if !path.is_file() {
            write_atomic(&path, bytes)?;
        }
        Ok(path)
    }

    /// Removes a stored bundle that no install uses (e.g. one whose content
    /// was refused after it was downloaded), so a refusal leaves the cache as
    /// it was; a bundle an installed plugin uses is kept. Returns whether it
    /// was removed.
    pub fn discard_bundle(&self, sha: &[u8; 32]) -> Result<bool, CacheError> {
        let hex = hex::encode(sha);
        for name in self.installed_names()? {
            if read_record(&self.plugins_dir().join(&name)).is_ok_and(|r| r.sha256 == hex) {
                return Ok(false);
            }
        }
        let path = self.bundle_path(sha);
        match fs::remove_file(&path) {
            Ok(()) => {
                crate::fsutil::sync_dir(&self.store_dir())?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("removing", &path)(e)),
        }
    }

    /// Reads the install record of `name`, if it is installed.
    pub fn install_record(&self, name: &str) -> Result<Option<InstallRecord>, CacheError> {
        let dir = self.plugin_path(name)?;
        if !dir.is_dir() {
            return Ok(None);
        }
        read_record(&dir).map(Some)
    }

    /// SHA-256 of the bundle installed as `name`, or `None` if it is not
    /// installed (or its record is unreadable, which calls for a reinstall).
    pub fn installed_hash(&self, name: &str) -> Option<[u8; 32]> {
        let record = self.install_record(name).ok()??;
        parse_sha256_hex(&record.sha256)
    }

    /// Every installed plugin with a readable record, sorted by name.
    pub fn list(&self) -> Result<Vec<InstalledPlugin>, CacheError> {
        let mut out = Vec::new();
        for name in self.installed_names()? {
            let Ok(record) = read_record(&self.plugins_dir().join(&name)) else {
                continue;
            };
            let Some(hash) = parse_sha256_hex(&record.sha256) else {
                continue;
            };
            out.push(InstalledPlugin {
                plugin: record.plugin,
                version: record.version,
                hash,
                size: record.unpacked_len,
                server: record.server,
                installed_at: record.installed_at,
            });
        }
        Ok(out)
    }

    /// Names of the plugin folders (hidden working folders excluded), sorted.
    fn installed_names(&self) -> Result<Vec<String>, CacheError> {
        let plugins = self.plugins_dir();
        let mut names: Vec<String> = list_names(&plugins)?
            .into_iter()
            .filter(|n| !n.starts_with('.') && plugins.join(n).is_dir())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Re-checks every installed file against its stored bundle and reports per plugin.
    pub fn verify(&self) -> Result<Vec<PluginReport>, CacheError> {
        let mut out = Vec::new();
        for name in self.installed_names()? {
            let status = self.verify_one(&name);
            out.push(PluginReport {
                plugin: name,
                status,
            });
        }
        Ok(out)
    }

    /// Verifies one installed plugin folder.
    fn verify_one(&self, name: &str) -> VerifyStatus {
        let dir = self.plugins_dir().join(name);
        let record = match read_record(&dir) {
            Ok(r) => r,
            Err(e) => return VerifyStatus::BadManifest(e.to_string()),
        };
        let Some(sha) = parse_sha256_hex(&record.sha256) else {
            return VerifyStatus::BadManifest(format!("bad sha256 {:?}", record.sha256));
        };
        let bytes = match self.read_bundle(&sha) {
            Ok(b) => b,
            Err(CacheError::MissingBundle { sha256 }) => {
                return VerifyStatus::MissingBundle(sha256);
            }
            Err(e) => return VerifyStatus::BadBundle(e.to_string()),
        };
        let bundle = match unpack_bundle(&bytes, &sha) {
            Ok(b) => b,
            Err(e) => return VerifyStatus::BadBundle(e.to_string()),
        };
        let mut expected = BTreeSet::new();
        for file in &bundle.files {
            expected.insert(file.path.clone());
            match fs::read(dir.join(&file.path)) {
                Ok(c) if file.contents.in_memory() == Some(&c[..]) => {}
                Ok(_) => return VerifyStatus::FileDiffers(file.path.clone()),
                Err(_) => return VerifyStatus::FileMissing(file.path.clone()),
            }
        }
        let mut found = Vec::new();
        collect_files(&dir, "", &mut found);
        for path in found {
            if path != MANIFEST_FILE && !expected.contains(&path) {
                return VerifyStatus::ExtraFile(path);
            }
        }
        VerifyStatus::Ok
    }

    /// Removes every stored bundle, installed plugin, partial download and
    /// the usage ledger; `known_servers` and remembered content answers (the
    /// player's decisions, not cache) are kept.
    pub fn clear(&self) -> Result<(), CacheError> {
        for dir in [self.plugins_dir(), self.partial_dir(), self.store_dir()] {
            remove_any(&dir)?;
            fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        }
        remove_any(&self.root.join(crate::usage::USAGE_FILE))
    }
}

/// Reads and parses `<dir>/.shard-bundle.json`.
pub(crate) fn read_record(dir: &Path) -> Result<InstallRecord, CacheError> {
    let path = dir.join(MANIFEST_FILE);
    let text = fs::read(&path).map_err(|e| CacheError::BadManifest {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    serde_json::from_slice(&text).map_err(|e| CacheError::BadManifest {
        path,
        detail: e.to_string(),
    })
}

/// Names (UTF-8 only) of a folder's entries; a missing folder lists nothing.
pub(crate) fn list_names(dir: &Path) -> Result<Vec<String>, CacheError> {
    let iter = match fs::read_dir(dir) {
        Ok(i) => i,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", dir)(e)),
    };
    Ok(iter
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect())
}

/// Collects relative `/`-separated paths of every non-folder under `dir`
/// (prefixed with `rel`); unreadable folders are skipped, links not followed.
pub(crate) fn collect_files(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let walker = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .follow_root_links(false);
    for entry in walker.into_iter().filter_map(Result::ok) {
        if entry.file_type().is_dir() {
            continue;
        }
        let sub = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let parts = sub
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        out.push(if rel.is_empty() {
            parts
        } else {
            format!("{rel}/{parts}")
        });
    }
}
