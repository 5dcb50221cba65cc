//! Finding plugins on disk: `plugins/*.py` with valid names, the snapshot
//! each load reads once (source plus bundle folder, and the hash that decides
//! when a plugin changed), and the file
//! watcher (notify, debounced, with a periodic rescan as the fallback).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer_opt};
use sha2::{Digest, Sha256};
use shard_cache::{BundleError, BundleSource};
use shard_protocol::limits::MAX_PLUGIN_NAME;

use crate::tuning::{MAX_PLUGIN_SOURCE, RELOAD_DEBOUNCE, RESCAN_INTERVAL};

/// Why a plugin's source cannot be loaded; the text names the file and what
/// the author must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source is larger than [`MAX_PLUGIN_SOURCE`].
    #[error("{file}: the source is larger than the limit of {MAX_PLUGIN_SOURCE} bytes")]
    TooLarge {
        /// The plugin file.
        file: String,
    },
    /// The source is not UTF-8 text.
    #[error("{file}: cannot read: the source is not UTF-8 ({source})")]
    NotText {
        /// The plugin file.
        file: String,
        /// Where the text stops being UTF-8.
        source: std::str::Utf8Error,
    },
}

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
            tracing::warn!(file = %path.display(), max = MAX_PLUGIN_NAME, "ignoring plugin file: its name must be 1 to max ASCII letters, digits, '_' or '-'");
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

/// One version of a plugin read from disk once: its source and its bundle
/// folder in memory, with the hash that decides whether it changed. The
/// load, the bundle pack and the policy checks all use this copy, so a load
/// reads each file once and never mixes two saves.
#[derive(Debug)]
pub struct PluginSnapshot {
    /// The plugin file (`plugins/<name>.py`).
    pub path: PathBuf,
    /// The source bytes, read up to one byte past [`MAX_PLUGIN_SOURCE`].
    source: Vec<u8>,
    /// The bundle folder (`plugins/<name>/`) read into memory, or why it
    /// could not be (reported when the plugin loads, like a Python error).
    pub bundle: Result<BundleSource, BundleError>,
    /// SHA-256 (hex) over the source and the bundle folder as read.
    pub hash: String,
}

impl PluginSnapshot {
    /// Reads `source` and the bundle folder `bundle_dir` once; only an
    /// unreadable source is an error here, a bad bundle is kept for the load to report.
    pub fn read(source: &Path, bundle_dir: &Path) -> std::io::Result<Self> {
        let mut src = Vec::new();
        std::fs::File::open(source)?
            .take(MAX_PLUGIN_SOURCE as u64 + 1)
            .read_to_end(&mut src)?;
        let bundle = shard_cache::read_plugin_dir(bundle_dir);
        let mut h = Sha256::new();
        h.update(b"source\0");
        h.update((src.len() as u64).to_le_bytes());
        h.update(&src);
        match &bundle {
            Ok(b) => {
                for dir in b.dirs() {
                    h.update(b"dir\0");
                    h.update(dir.as_bytes());
                    h.update(b"\0");
                }
                for (rel, data) in b.files() {
                    h.update(rel.as_bytes());
                    h.update(b"\0");
                    h.update((data.len() as u64).to_le_bytes());
                    h.update(data);
                }
            }
            // A folder that cannot be packed changes hash when its error does.
            Err(e) => {
                h.update(b"error\0");
                h.update(e.to_string().as_bytes());
            }
        }
        Ok(Self {
            path: source.to_path_buf(),
            source: src,
            bundle,
            hash: hex::encode(h.finalize()),
        })
    }

    /// The source as text, or what the author must fix (too large, not UTF-8).
    pub fn source_text(&self) -> Result<&str, SourceError> {
        let file = || self.path.display().to_string();
        if self.source.len() > MAX_PLUGIN_SOURCE {
            return Err(SourceError::TooLarge { file: file() });
        }
        std::str::from_utf8(&self.source).map_err(|source| SourceError::NotText {
            file: file(),
            source,
        })
    }
}

/// The platform file watcher without access events (opening or reading a
/// file): the server's own rescans cause those, and they change nothing, so
/// passing them on would make every rescan schedule the next one.
struct ChangeWatcher(notify::RecommendedWatcher);

impl notify::Watcher for ChangeWatcher {
    fn new<F: notify::EventHandler>(
        mut handler: F,
        config: notify::Config,
    ) -> notify::Result<Self> {
        let filtered = move |ev: notify::Result<notify::Event>| {
            if !matches!(&ev, Ok(e) if e.kind.is_access()) {
                handler.handle_event(ev);
            }
        };
        notify::RecommendedWatcher::new(filtered, config).map(Self)
    }

    fn watch(&mut self, path: &Path, recursive_mode: notify::RecursiveMode) -> notify::Result<()> {
        self.0.watch(path, recursive_mode)
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.0.unwatch(path)
    }

    fn kind() -> notify::WatcherKind {
        notify::RecommendedWatcher::kind()
    }
}

/// Watches the plugins folder and says when a rescan is due: after file
/// changes have been quiet for [`RELOAD_DEBOUNCE`] (notify-debouncer-mini),
/// or every [`RESCAN_INTERVAL`] in case events were lost.
pub struct Watcher {
    _debouncer: Option<Debouncer<ChangeWatcher>>,
    events: Receiver<DebounceEventResult>,
    last_rescan: Instant,
}

impl Watcher {
    /// Starts watching `dir` (recursively); without a watcher only the rescan runs.
    pub fn new(dir: &Path) -> Self {
        let (tx, events) = std::sync::mpsc::channel();
        let config = notify_debouncer_mini::Config::default().with_timeout(RELOAD_DEBOUNCE);
        let debouncer = match new_debouncer_opt::<_, ChangeWatcher>(config, tx) {
            Ok(mut d) => match d.watcher().watch(dir, notify::RecursiveMode::Recursive) {
                Ok(()) => Some(d),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the plugins folder; relying on the 60 s rescan");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no file watcher; relying on the 60 s rescan");
                None
            }
        };
        Self {
            _debouncer: debouncer,
            events,
            last_rescan: Instant::now(),
        }
    }

    /// True when files changed and have since been quiet for
    /// [`RELOAD_DEBOUNCE`], or the periodic rescan is due; resets both.
    pub fn due(&mut self) -> bool {
        let mut changed = false;
        loop {
            match self.events.try_recv() {
                Ok(Ok(batch)) => changed |= !batch.is_empty(),
                Ok(Err(e)) => tracing::warn!(error = %e, "plugin file watcher error"),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if changed || self.last_rescan.elapsed() >= RESCAN_INTERVAL {
            self.last_rescan = Instant::now();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Polls `due` for up to `within`; whether it said yes.
    fn due_within(w: &mut Watcher, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if w.due() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// A save makes a rescan due once its events are quiet; reading the
    /// files (what every rescan does) does not, or rescans would feed themselves.
    #[test]
    fn a_save_makes_a_rescan_due_and_reading_does_not() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("p.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        let mut w = Watcher::new(t.path());
        assert!(!due_within(&mut w, Duration::from_millis(300)));

        let saved = Instant::now();
        std::fs::write(&file, "x = 2\n").unwrap();
        assert!(
            due_within(&mut w, Duration::from_secs(2)),
            "no rescan after a save"
        );
        assert!(saved.elapsed() >= RELOAD_DEBOUNCE);
        // On a loaded machine the save's truncate and write may reach the
        // watcher as two batches; let the save settle before reading.
        let settle = Instant::now() + Duration::from_secs(5);
        while due_within(&mut w, RELOAD_DEBOUNCE * 4) && Instant::now() < settle {}

        let _ = PluginSnapshot::read(&file, &t.path().join("p")).unwrap();
        let _ = std::fs::read(&file).unwrap();
        assert!(
            !due_within(&mut w, RELOAD_DEBOUNCE * 4),
            "reading the plugin made a rescan due"
        );
    }
}
