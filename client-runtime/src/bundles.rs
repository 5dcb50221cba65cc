//! The bundle receiver: decides which announced bundles the cache lacks,
//! assembles their chunks in `partial/`, verifies the SHA-256, checks every
//! client script against the sandbox policy, installs atomically and tells
//! the server. It runs on its own thread because all of it is file I/O.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use shard_cache::{InstallRequest, RuntimeCache};
use shard_protocol::limits::CHUNK_SIZE;
use shard_protocol::{BundleRequest, ClientMsg};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::dispatch::Dispatcher;
use crate::events::ClientEvent;

/// Work for the bundle thread.
#[derive(Debug)]
pub enum BundleWork {
    /// A plugin (or a new version of it) was announced.
    Announce {
        /// Session plugin id.
        plugin_id: u16,
        /// Plugin name.
        name: String,
        /// Version.
        version: String,
        /// Expected hash of the packed bundle.
        sha256: [u8; 32],
        /// Its length.
        len: u64,
    },
    /// One chunk from a bundle stream.
    Chunk {
        /// Plugin.
        plugin_id: u16,
        /// Total length the chunk claims.
        len: u64,
        /// Chunk index.
        chunk_id: u32,
        /// Bytes.
        data: Vec<u8>,
    },
    /// The server removed a plugin.
    Removed {
        /// Plugin.
        plugin_id: u16,
    },
}

/// What the receiver knows of one announced plugin.
#[derive(Debug, Clone)]
struct Wanted {
    name: String,
    version: String,
    sha256: [u8; 32],
    len: u64,
    retried: bool,
    done: bool,
}

/// Bundle bytes received in this session (a warm rejoin receives none).
#[derive(Debug, Default)]
pub struct TransferStats {
    /// Bundle payload bytes received.
    pub bytes: AtomicU64,
}

/// The receiver's state; owned by the bundle thread.
pub struct BundleReceiver {
    cache: RuntimeCache,
    server: String,
    wanted: HashMap<u16, Wanted>,
    events: mpsc::Sender<ClientEvent>,
    outgoing: mpsc::Sender<ClientMsg>,
    dispatcher: Arc<Mutex<Dispatcher>>,
    stats: Arc<TransferStats>,
    /// Something was installed, refused or removed since the last `BundlesSettled`.
    unsettled: bool,
}

fn hex(sha: &[u8; 32]) -> String {
    sha.iter().map(|b| format!("{b:02x}")).collect()
}

impl BundleReceiver {
    /// A receiver writing into `cache` for bundles from `server`.
    pub fn new(
        cache: RuntimeCache,
        server: String,
        events: mpsc::Sender<ClientEvent>,
        outgoing: mpsc::Sender<ClientMsg>,
        dispatcher: Arc<Mutex<Dispatcher>>,
        stats: Arc<TransferStats>,
    ) -> Self {
        Self {
            cache,
            server,
            wanted: HashMap::new(),
            events,
            outgoing,
            dispatcher,
            stats,
            unsettled: false,
        }
    }

    /// Runs until every sender of `work` is gone. Whenever the queue runs
    /// dry with every announced bundle done, a batch ends: one
    /// `BundlesSettled` event if anything was installed, refused or removed.
    pub fn run(mut self, mut work: mpsc::Receiver<BundleWork>) {
        loop {
            let w = match work.try_recv() {
                Ok(w) => w,
                Err(mpsc::error::TryRecvError::Empty) => {
                    self.settle();
                    match work.blocking_recv() {
                        Some(w) => w,
                        None => return,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.settle();
                    return;
                }
            };
            match w {
                BundleWork::Announce {
                    plugin_id,
                    name,
                    version,
                    sha256,
                    len,
                } => self.announce(plugin_id, name, version, sha256, len),
                BundleWork::Chunk {
                    plugin_id,
                    len,
                    chunk_id,
                    data,
                } => self.chunk(plugin_id, len, chunk_id, &data),
                BundleWork::Removed { plugin_id } => self.removed(plugin_id),
            }
        }
    }

    /// Ends a batch if one is open and nothing announced is still pending.
    fn settle(&mut self) {
        if self.unsettled && self.wanted.values().all(|w| w.done) {
            self.unsettled = false;
            self.emit(ClientEvent::BundlesSettled);
        }
    }

    /// Forgets a removed plugin and reports it (its install stays in the cache).
    fn removed(&mut self, plugin_id: u16) {
        if let Some(w) = self.wanted.remove(&plugin_id) {
            self.unsettled = true;
            self.emit(ClientEvent::PluginRemoved {
                plugin_id,
                name: w.name,
            });
        }
    }

    fn emit(&self, ev: ClientEvent) {
        let _ = self.events.blocking_send(ev);
    }

    fn send(&self, msg: ClientMsg) {
        let _ = self.outgoing.blocking_send(msg);
    }

    fn announce(
        &mut self,
        plugin_id: u16,
        name: String,
        version: String,
        sha256: [u8; 32],
        len: u64,
    ) {
        self.emit(ClientEvent::PluginAnnounced {
            plugin_id,
            name: name.clone(),
            version: version.clone(),
            sha256: hex(&sha256),
            len,
        });
        let w = Wanted {
            name,
            version,
            sha256,
            len,
            retried: false,
            done: false,
        };
        self.wanted.insert(plugin_id, w.clone());
        if self.cache.installed_hash(&w.name) == Some(sha256) {
            // Already installed: register its callbacks again and report, no transfer.
            self.install(plugin_id);
        } else if self.cache.has_bundle(&sha256) {
            self.install(plugin_id);
        } else {
            self.request(plugin_id, &w);
        }
    }

    fn request(&self, plugin_id: u16, w: &Wanted) {
        let offset = self.cache.partial_offset(&w.sha256).unwrap_or(0);
        if offset > 0 {
            info!(plugin = %w.name, offset, "resuming bundle download");
        }
        let req = BundleRequest {
            plugin_id,
            sha256: w.sha256,
            offset,
        };
        self.send(ClientMsg::NeedBundles {
            requests: vec![req],
        });
    }

    fn chunk(&mut self, plugin_id: u16, len: u64, chunk_id: u32, data: &[u8]) {
        let Some(w) = self.wanted.get(&plugin_id).cloned() else {
            warn!(
                plugin_id,
                "chunk for a plugin that was not announced; ignored"
            );
            return;
        };
        if w.done || len != w.len {
            return;
        }
        self.stats
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let offset = u64::from(chunk_id) * CHUNK_SIZE as u64;
        let have = match self.cache.append_partial(&w.sha256, offset, data) {
            Ok(n) => n,
            Err(e) => return self.fail(plugin_id, &format!("cannot store chunk {chunk_id}: {e}")),
        };
        let last = have >= w.len;
        if last || chunk_id.is_multiple_of(16) {
            self.emit(ClientEvent::BundleProgress {
                plugin_id,
                name: w.name.clone(),
                received: have,
                total: w.len,
            });
        }
        if !last {
            return;
        }
        match self.cache.finish_partial(&w.sha256) {
            Ok(_) => self.install(plugin_id),
            Err(e) => {
                let _ = self.cache.discard_partial(&w.sha256);
                if !w.retried {
                    warn!(plugin = %w.name, "bundle failed verification ({e}); downloading it again");
                    if let Some(m) = self.wanted.get_mut(&plugin_id) {
                        m.retried = true;
                    }
                    self.request(plugin_id, &w);
                } else {
                    self.fail(plugin_id, &format!("bundle failed verification twice: {e}"));
                }
            }
        }
    }

    /// Checks the stored bundle's scripts, installs it and reports the result.
    fn install(&mut self, plugin_id: u16) {
        let Some(w) = self.wanted.get(&plugin_id).cloned() else {
            return;
        };
        let rpc_names = match self.check_scripts(&w) {
            Ok(names) => names,
            Err(e) => {
                // A refused download leaves the cache as it was (an installed bundle is kept).
                let _ = self.cache.discard_bundle(&w.sha256);
                return self.fail(plugin_id, &e);
            }
        };
        let previous = self.cache.installed_hash(&w.name);
        if previous != Some(w.sha256) {
            let req = InstallRequest {
                plugin: &w.name,
                version: &w.version,
                server: &self.server,
                sha256: w.sha256,
            };
            if let Err(e) = self.cache.install_from_store(&req) {
                if matches!(e, shard_cache::CacheError::Content(_)) {
                    // Refused content leaves the cache as it was before the download.
                    let _ = self.cache.discard_bundle(&w.sha256);
                    return self.fail(plugin_id, &format!("refused: {e}"));
                }
                return self.fail(plugin_id, &format!("install failed: {e}"));
            }
        }
        if let Ok(mut d) = self.dispatcher.lock() {
            for name in &rpc_names {
                d.register(&w.name, name);
            }
        }
        if let Some(m) = self.wanted.get_mut(&plugin_id) {
            m.done = true;
        }
        self.unsettled = true;
        let path = self
            .cache
            .plugin_path(&w.name)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.emit(ClientEvent::BundleInstalled {
            plugin_id,
            name: w.name.clone(),
            version: w.version.clone(),
            sha256: hex(&w.sha256),
            path,
            changed: previous != Some(w.sha256),
            rpcs: rpc_names,
        });
        self.send(ClientMsg::BundleInstalled {
            plugin_id,
            sha256: w.sha256,
            ok: true,
            error: None,
        });
    }

    /// Runs the sandbox policy over the bundle's client scripts.
    fn check_scripts(&self, w: &Wanted) -> Result<Vec<String>, String> {
        let bytes = self
            .cache
            .read_bundle(&w.sha256)
            .map_err(|e| e.to_string())?;
        let unpacked = shard_cache::unpack_bundle(&bytes, &w.sha256).map_err(|e| e.to_string())?;
        let scripts: Vec<(String, String)> = unpacked
            .files
            .iter()
            .filter(|f| f.path.starts_with("client/") && f.path.ends_with(".reds"))
            .map(|f| {
                (
                    format!("{}/{}", w.name, f.path),
                    String::from_utf8_lossy(&f.contents).into_owned(),
                )
            })
            .collect();
        let report = shard_reds::check_scripts(&scripts);
        if report.diagnostics.is_empty() {
            Ok(report.rpc_names)
        } else {
            let lines: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
            Err(format!(
                "refused: client scripts break the sandbox policy: {}",
                lines.join("; ")
            ))
        }
    }

    fn fail(&mut self, plugin_id: u16, error: &str) {
        let Some(w) = self.wanted.get_mut(&plugin_id) else {
            return;
        };
        w.done = true;
        self.unsettled = true;
        let (name, sha256) = (w.name.clone(), w.sha256);
        warn!(plugin = %name, "bundle not installed: {error}");
        self.emit(ClientEvent::BundleFailed {
            plugin_id,
            name,
            error: error.to_string(),
        });
        let max = shard_protocol::limits::MAX_REASON;
        let mut error = error.to_string();
        if error.len() > max {
            let mut cut = max;
            while !error.is_char_boundary(cut) {
                cut -= 1;
            }
            error.truncate(cut);
        }
        self.send(ClientMsg::BundleInstalled {
            plugin_id,
            sha256,
            ok: false,
            error: Some(error),
        });
    }
}
