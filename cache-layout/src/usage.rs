//! Per-server usage accounting and least-recently-used eviction.
//!
//! Sizes always come from the disk (stored bundle files plus the unpacked
//! size recorded by each install), so accounting cannot drift from reality.
//! The ledger `usage.json` only remembers *who* used each stored bundle and
//! *when* (a logical clock for LRU order, plus wall-clock seconds for
//! people). A bundle the ledger does not know counts as the oldest.
//!
//! Eviction is crash-safe like install: the plugin folder is renamed to
//! `plugins/.evict-<name>-<n>` (so it vanishes from view atomically), then the
//! stored bundle is deleted, then the folder, then the ledger entry.
//! `RuntimeCache::open` removes leftover `.evict-*` folders and ledger
//! entries whose bundle is gone, so a crash at any step leaves either the
//! complete install or none.

use std::collections::{BTreeMap, HashSet};
use std::fs;

use serde::{Deserialize, Serialize};
use shard_protocol::limits::MAX_LEDGER_BUNDLES;

use crate::cache::{PLUGINS_DIR, RuntimeCache, list_names};
use crate::error::CacheError;
use crate::fsutil::{io_err, nonce, remove_any, sync_dir, unix_now, write_atomic};

/// The usage ledger, beside `known_servers`.
pub const USAGE_FILE: &str = "usage.json";
/// Prefix of a plugin folder being evicted: `plugins/.evict-<name>-<nonce>`.
pub(crate) const EVICT_PREFIX: &str = ".evict-";
/// Test hook: when this environment variable names an [`EvictStep`]
/// (`after_uninstalled` …), eviction stops there and sleeps, so a test can
/// `kill -9` the process at exactly that step.
pub const TEST_PAUSE_ENV: &str = "SHARD_CACHE_TEST_PAUSE";

/// The steps of an eviction after which a crash can be simulated; each names
/// the last step that completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvictStep {
    /// Every install of the bundle was renamed to `plugins/.evict-…`.
    AfterUninstalled,
    /// The bundle file was deleted from `store/`.
    AfterBundleRemoved,
    /// The `.evict-…` folders were deleted (the ledger is not yet updated).
    AfterFolderRemoved,
}

impl EvictStep {
    /// Every step, in eviction order (for exhaustive tests).
    pub const ALL: [EvictStep; 3] = [
        EvictStep::AfterUninstalled,
        EvictStep::AfterBundleRemoved,
        EvictStep::AfterFolderRemoved,
    ];

    /// The step's name as [`TEST_PAUSE_ENV`] spells it.
    pub fn name(self) -> &'static str {
        match self {
            EvictStep::AfterUninstalled => "after_uninstalled",
            EvictStep::AfterBundleRemoved => "after_bundle_removed",
            EvictStep::AfterFolderRemoved => "after_folder_removed",
        }
    }
}

/// One stored bundle a server's session used (recorded after install).
#[derive(Debug, Clone, Copy)]
pub struct BundleUse<'a> {
    /// The bundle.
    pub sha256: [u8; 32],
    /// The plugin it is installed as.
    pub plugin: &'a str,
    /// Its unpacked size, as verified at install.
    pub unpacked: u64,
}

/// What one server holds in the cache, as `shard-client cache ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerUsage {
    /// The server's key fingerprint (hex).
    pub server_key: String,
    /// The address it was last reached at.
    pub address: String,
    /// Unpacked size of the bundles it used (what its quota counts).
    pub unpacked: u64,
    /// How many stored bundles it used.
    pub bundles: usize,
    /// When a session with it last used one of them, seconds since the epoch.
    pub last_used: u64,
}

/// A bundle removed by eviction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvictedBundle {
    /// SHA-256 hex of the bundle.
    pub sha256: String,
    /// The plugin names it was installed as (empty if it was only stored).
    pub plugins: Vec<String>,
    /// Server keys that had used it.
    pub servers: Vec<String>,
    /// Bytes freed (stored file plus installed files).
    pub freed: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Ledger {
    /// Logical clock: each recorded use gets the next value (LRU order).
    clock: u64,
    /// By bundle SHA-256 hex.
    bundles: BTreeMap<String, LedgerEntry>,
    /// By server key: the address last used, for people.
    addresses: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LedgerEntry {
    plugin: String,
    unpacked: u64,
    /// Logical time of the last use.
    stamp: u64,
    /// Server key → last use, seconds since the epoch.
    servers: BTreeMap<String, u64>,
}

/// One stored bundle with what it costs on disk.
struct Stored {
    sha_hex: String,
    bytes: u64,
    stamp: u64,
}

impl RuntimeCache {
    fn read_ledger(&self) -> Ledger {
        // A missing or damaged ledger only loses LRU order: sizes come from the
        // disk, and unknown bundles count as the oldest.
        fs::read(self.root().join(USAGE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_ledger(&self, ledger: &Ledger) -> Result<(), CacheError> {
        let path = self.root().join(USAGE_FILE);
        let json = serde_json::to_vec(ledger).map_err(|e| CacheError::BadManifest {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_atomic(&path, &json)
    }

    /// Records that the session with `server_key` (reached at `address`) uses
    /// `bundles` now, making them the most recently used.
    pub fn record_use(
        &self,
        server_key: &str,
        address: &str,
        bundles: &[BundleUse<'_>],
    ) -> Result<(), CacheError> {
        if bundles.is_empty() {
            return Ok(());
        }
        let _turn = self.lock_for_writing()?;
        let mut ledger = self.read_ledger();
        let now = unix_now();
        for b in bundles {
            ledger.clock += 1;
            let e = ledger.bundles.entry(hex::encode(b.sha256)).or_default();
            e.plugin = b.plugin.to_owned();
            e.unpacked = b.unpacked;
            e.stamp = ledger.clock;
            e.servers.insert(server_key.to_owned(), now);
        }
        ledger
            .addresses
            .insert(server_key.to_owned(), address.to_owned());
        while ledger.bundles.len() > MAX_LEDGER_BUNDLES {
            let oldest = ledger
                .bundles
                .iter()
                .min_by_key(|(_, e)| e.stamp)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => ledger.bundles.remove(&k),
                None => break,
            };
        }
        self.write_ledger(&ledger)
    }

    /// Bytes the cache holds: every stored bundle, every installed plugin's
    /// files and every partial download.
    pub fn total_use(&self) -> Result<u64, CacheError> {
        let stored: u64 = self.stored()?.iter().map(|s| s.bytes).sum();
        Ok(stored + self.partial_use()?)
    }

    fn partial_use(&self) -> Result<u64, CacheError> {
        let dir = self.partial_dir();
        Ok(list_names(&dir)?
            .iter()
            .filter_map(|n| fs::metadata(dir.join(n)).ok())
            .map(|m| m.len())
            .sum())
    }

    /// Unpacked size of the bundles a server used, per server, most recent first.
    pub fn server_usage(&self) -> Result<Vec<ServerUsage>, CacheError> {
        let ledger = self.read_ledger();
        let present: HashSet<String> = self.stored()?.into_iter().map(|s| s.sha_hex).collect();
        let mut by_server: BTreeMap<String, ServerUsage> = BTreeMap::new();
        for (sha, e) in &ledger.bundles {
            if !present.contains(sha) {
                continue;
            }
            for (key, at) in &e.servers {
                let u = by_server.entry(key.clone()).or_insert_with(|| ServerUsage {
                    server_key: key.clone(),
                    address: ledger.addresses.get(key).cloned().unwrap_or_default(),
                    unpacked: 0,
                    bundles: 0,
                    last_used: 0,
                });
                u.unpacked += e.unpacked;
                u.bundles += 1;
                u.last_used = u.last_used.max(*at);
            }
        }
        let mut out: Vec<ServerUsage> = by_server.into_values().collect();
        out.sort_by_key(|u| std::cmp::Reverse(u.last_used));
        Ok(out)
    }

    /// Last recorded use of each stored bundle, by SHA-256 hex (seconds since
    /// the epoch); bundles the ledger does not know are absent.
    pub fn last_used(&self) -> BTreeMap<String, u64> {
        self.read_ledger()
            .bundles
            .into_iter()
            .filter_map(|(k, e)| e.servers.values().max().map(|t| (k, *t)))
            .collect()
    }

    /// Every stored bundle with its disk cost (file plus installs) and LRU stamp.
    fn stored(&self) -> Result<Vec<Stored>, CacheError> {
        let ledger = self.read_ledger();
        let mut installed: BTreeMap<String, u64> = BTreeMap::new();
        for p in self.list()? {
            *installed.entry(hex::encode(p.hash)).or_default() += p.size;
        }
        let store = self.store_dir();
        let mut out = Vec::new();
        for name in list_names(&store)? {
            let Some(sha_hex) = name.strip_suffix(".bundle") else {
                continue;
            };
            let Ok(meta) = fs::metadata(store.join(&name)) else {
                continue;
            };
            out.push(Stored {
                sha_hex: sha_hex.to_owned(),
                bytes: meta.len() + installed.get(sha_hex).copied().unwrap_or(0),
                stamp: ledger.bundles.get(sha_hex).map_or(0, |e| e.stamp),
            });
        }
        Ok(out)
    }

    /// Evicts least recently used bundles, never those in `keep`, until
    /// `needed` more bytes fit under `cap`. Fails without evicting anything
    /// when even evicting every other bundle would not make room.
    pub fn make_room(
        &self,
        needed: u64,
        cap: u64,
        keep: &HashSet<[u8; 32]>,
    ) -> Result<Vec<EvictedBundle>, CacheError> {
        let keep: HashSet<String> = keep.iter().map(hex::encode).collect();
        let total = self.total_use()?;
        let mut stored = self.stored()?;
        let evictable: u64 = stored
            .iter()
            .filter(|s| !keep.contains(&s.sha_hex))
            .map(|s| s.bytes)
            .sum();
        if total.saturating_sub(evictable).saturating_add(needed) > cap {
            return Err(CacheError::CapTooSmall {
                needed,
                cap,
                kept: total.saturating_sub(evictable),
            });
        }
        stored.retain(|s| !keep.contains(&s.sha_hex));
        self.evict_lru(stored, total, cap.saturating_sub(needed))
    }

    /// Evicts least recently used bundles until the cache holds at most
    /// `target` bytes (`shard-client cache gc`); partial downloads go first.
    pub fn gc(&self, target: u64) -> Result<Vec<EvictedBundle>, CacheError> {
        let dir = self.partial_dir();
        for name in list_names(&dir)? {
            remove_any(&dir.join(name))?;
        }
        let total = self.total_use()?;
        self.evict_lru(self.stored()?, total, target)
    }

    fn evict_lru(
        &self,
        mut candidates: Vec<Stored>,
        mut total: u64,
        target: u64,
    ) -> Result<Vec<EvictedBundle>, CacheError> {
        candidates.sort_by(|a, b| a.stamp.cmp(&b.stamp).then(a.sha_hex.cmp(&b.sha_hex)));
        let mut out = Vec::new();
        for c in candidates {
            if total <= target {
                break;
            }
            let Some(sha) = crate::cache::parse_sha256_hex(&c.sha_hex) else {
                continue;
            };
            if let Some(e) = self.evict_inner(&sha, None)? {
                total = total.saturating_sub(e.freed);
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Removes one bundle: its installs, its stored file and its ledger entry.
    pub fn evict_bundle(&self, sha: &[u8; 32]) -> Result<Option<EvictedBundle>, CacheError> {
        self.evict_inner(sha, None)
    }

    /// Test hook: runs `evict_bundle` but stops right after `step`, leaving
    /// the disk as a crash at that moment would, and releasing this handle's
    /// share of the cache lock as the crashed process would.
    #[doc(hidden)]
    pub fn evict_with_crash_at(&self, sha: &[u8; 32], step: EvictStep) -> Result<(), CacheError> {
        let result = self.evict_inner(sha, Some(step)).map(|_| ());
        if matches!(result, Err(CacheError::SimulatedEvictCrash(_))) {
            self.release_lock_as_a_crash_would();
        }
        result
    }

    fn evict_inner(
        &self,
        sha: &[u8; 32],
        crash: Option<EvictStep>,
    ) -> Result<Option<EvictedBundle>, CacheError> {
        let checkpoint = |step: EvictStep| -> Result<(), CacheError> {
            if crash == Some(step) {
                return Err(CacheError::SimulatedEvictCrash(step));
            }
            if std::env::var(TEST_PAUSE_ENV).is_ok_and(|v| v == step.name()) {
                eprintln!("shard-cache: paused at {} (test hook)", step.name());
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
            Ok(())
        };
        let _turn = self.lock_for_writing()?;
        let sha_hex = hex::encode(sha);
        let bundle = self.bundle_path(sha);
        let packed = match fs::metadata(&bundle) {
            Ok(m) => m.len(),
            Err(_) => return Ok(None),
        };
        let plugins_dir = self.root().join(PLUGINS_DIR);
        let installs: Vec<_> = self
            .list()?
            .into_iter()
            .filter(|p| &p.hash == sha)
            .collect();
        let mut aside = Vec::new();
        for p in &installs {
            let from = plugins_dir.join(&p.plugin);
            let to = plugins_dir.join(format!("{EVICT_PREFIX}{}-{}", p.plugin, nonce()));
            fs::rename(&from, &to).map_err(io_err("moving aside", &from))?;
            aside.push(to);
        }
        if !aside.is_empty() {
            sync_dir(&plugins_dir)?;
        }
        checkpoint(EvictStep::AfterUninstalled)?;
        match fs::remove_file(&bundle) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &bundle)(e)),
        }
        sync_dir(&self.store_dir())?;
        checkpoint(EvictStep::AfterBundleRemoved)?;
        for dir in &aside {
            remove_any(dir)?;
        }
        checkpoint(EvictStep::AfterFolderRemoved)?;
        let mut ledger = self.read_ledger();
        let servers = ledger
            .bundles
            .remove(&sha_hex)
            .map(|e| e.servers.into_keys().collect())
            .unwrap_or_default();
        self.write_ledger(&ledger)?;
        Ok(Some(EvictedBundle {
            sha256: sha_hex,
            plugins: installs.iter().map(|p| p.plugin.clone()).collect(),
            servers,
            freed: packed + installs.iter().map(|p| p.size).sum::<u64>(),
        }))
    }

    /// Drops ledger entries whose bundle left the store (a crash between
    /// deleting a bundle and updating the ledger); called by `open`.
    pub(crate) fn reconcile_ledger(&self) -> Result<(), CacheError> {
        let path = self.root().join(USAGE_FILE);
        if !path.is_file() {
            return Ok(());
        }
        let mut ledger = self.read_ledger();
        let before = ledger.bundles.len();
        ledger
            .bundles
            .retain(|sha, _| self.store_dir().join(format!("{sha}.bundle")).is_file());
        if ledger.bundles.len() != before {
            self.write_ledger(&ledger)?;
        }
        Ok(())
    }
}
