//! Finding plugins on disk: `plugins/*.py` with valid names, the hash that
//! decides when a plugin changed (source plus bundle folder), and the file
//! watcher (notify, debounced, with a periodic rescan as the fallback).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use shard_protocol::limits::MAX_PLUGIN_NAME;

/// Quiet time after the last file event before changes are applied, so an
/// editor's burst of writes causes one reload.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(100);

/// Full rescan interval, the fallback when file events are lost.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(60);

/// Lists `dir/*.py` whose stem is a valid plugin name.
pub fn discover(dir: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("py") || !path.is_file() {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if !valid_name(stem) {
            tracing::warn!(file = %path.display(), "ignoring plugin file: name must be 1-{MAX_PLUGIN_NAME} ASCII letters, digits, '_' or '-'");
            continue;
        }
        out.insert(stem.to_owned(), path);
    }
    Ok(out)
}

/// Whether `stem` may name a plugin (it names its log file and bundle folder too).
pub fn valid_name(stem: &str) -> bool {
    !stem.is_empty()
        && !stem.starts_with('.')
        && stem.len() <= MAX_PLUGIN_NAME
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// SHA-256 (hex) over the plugin source and every file under `<bundle>/assets`,
/// `<bundle>/client` and `<bundle>/tweaks` (relative path and contents, in sorted order).
pub fn plugin_hash(source: &Path, bundle_dir: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let src = std::fs::read(source)?;
    h.update(b"source\0");
    h.update((src.len() as u64).to_le_bytes());
    h.update(&src);
    for sub in ["assets", "client", "tweaks"] {
        let root = bundle_dir.join(sub);
        if !root.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&root)
            .follow_links(false)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(walkdir::DirEntry::into_path)
            .collect();
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(bundle_dir)
                .unwrap_or(&f)
                .to_string_lossy()
                .replace('\\', "/");
            let data = std::fs::read(&f)?;
            h.update(rel.as_bytes());
            h.update(b"\0");
            h.update((data.len() as u64).to_le_bytes());
            h.update(&data);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Watches the plugins folder and says when a rescan is due.
pub struct Watcher {
    _watcher: Option<notify::RecommendedWatcher>,
    events: Receiver<notify::Result<notify::Event>>,
    last_event: Option<Instant>,
    last_rescan: Instant,
}

impl Watcher {
    /// Starts watching `dir` (recursively); without a watcher only the rescan runs.
    pub fn new(dir: &Path) -> Self {
        let (tx, events) = std::sync::mpsc::channel();
        let watcher = match notify::recommended_watcher(move |ev| {
            let _ = tx.send(ev);
        }) {
            Ok(mut w) => {
                use notify::Watcher as _;
                match w.watch(dir, notify::RecursiveMode::Recursive) {
                    Ok(()) => Some(w),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch the plugins folder; relying on the 60 s rescan");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no file watcher; relying on the 60 s rescan");
                None
            }
        };
        Self {
            _watcher: watcher,
            events,
            last_event: None,
            last_rescan: Instant::now(),
        }
    }

    /// True when files changed and have been quiet for [`RELOAD_DEBOUNCE`],
    /// or the periodic rescan is due; resets both.
    pub fn due(&mut self) -> bool {
        loop {
            match self.events.try_recv() {
                Ok(Ok(ev)) => {
                    if !matches!(ev.kind, notify::EventKind::Access(_)) {
                        self.last_event = Some(Instant::now());
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "plugin file watcher error"),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let due_event = self
            .last_event
            .is_some_and(|t| t.elapsed() >= RELOAD_DEBOUNCE);
        let due_rescan = self.last_rescan.elapsed() >= RESCAN_INTERVAL;
        if due_event || due_rescan {
            self.last_event = None;
            self.last_rescan = Instant::now();
            return true;
        }
        false
    }
}
