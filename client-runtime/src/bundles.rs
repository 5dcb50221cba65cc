//! The bundle receiver: decides which announced bundles the cache lacks,
//! offers them to the player (one `content_offer` per burst of
//! announcements, checked against the per-server quota and the cache cap,
//! see [`crate::offer`]), fetches only what was accepted, assembles the
//! chunks in `partial/`, verifies the SHA-256 and the announced sizes, checks
//! every client script against the sandbox policy, installs atomically,
//! records the use for LRU eviction and tells the server. It runs on its own
//! thread because all of it is file I/O.
//!
//! Plugins announcing the same bundle share one download: one of them
//! fetches (a QUIC request or a mirror download), the others wait, and
//! once the bundle is stored all of them install. One stream writes a
//! download; a plugin that gets other content or goes away mid-download
//! has its stream stopped and its mirror download ended, and what arrived
//! stays in `partial/` for whichever plugin (or version) wants it next.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use shard_cache::{
    BundleUse, CacheError, ContentAnswer, InstallRequest, PartialFile, RuntimeCache,
    VerifiedBundle, mb,
};
use shard_protocol::frame::AssetChunk;
use shard_protocol::limits::{CHUNK_SIZE, MAX_BUNDLE_REQUESTS, MAX_OFFER_PLUGINS_LISTED};
use shard_protocol::{BundleRequest, ClientMsg};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::dispatch::Dispatcher;
use crate::events::ClientEvent;
use crate::mirror::{MirrorDownload, MirrorJob, MirrorOutcome, Mirrors};
use crate::offer::{
    ContentSettings, Decided, OfferMode, OfferedPlugin, content_hash, hex, remembered_applies,
};
use crate::queue::EventTx;

/// Work for the bundle thread.
#[derive(Debug)]
pub enum BundleWork {
    /// The server accepted us (it comes before any announcement).
    Welcome {
        /// Server name, for offers.
        server_name: String,
        /// Whether declining its content means leaving.
        content_required: bool,
        /// Its asset mirrors (tried before the QUIC stream).
        asset_mirrors: Vec<String>,
    },
    /// A mirror download ended (see [`crate::mirror`]).
    Mirror {
        /// Plugin.
        plugin_id: u16,
        /// The hash that was fetched.
        sha256: [u8; 32],
        /// Fetched into `partial/`, or why every mirror failed.
        outcome: MirrorOutcome,
    },
    /// A burst of announcements is complete: offer what the cache lacks.
    AnnouncementsDone,
    /// A plugin was unloaded: it no longer counts towards the server's
    /// content, and its bundle is no longer protected from eviction.
    Removed {
        /// Its id.
        plugin_id: u16,
    },
    /// The player answered the pending offer.
    Answer {
        /// Accept (true) or decline.
        accept: bool,
        /// Remember the answer for this server's content.
        remember: bool,
    },
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
        /// Its announced unpacked size (checked after download).
        unpacked_len: u64,
        /// Client scripts it carries.
        client_scripts: u16,
    },
    /// One chunk from a bundle stream (checked, its data not copied yet),
    /// with the stream's stop switch.
    Chunk(AssetChunk, StreamStop),
    /// The server will not send a bundle asked for.
    Refused {
        /// Plugin asked for.
        plugin_id: u16,
        /// The hash asked for.
        sha256: [u8; 32],
        /// The server's reason.
        reason: String,
    },
}

/// The switch a bundle stream's reader checks after each chunk: the bundle
/// thread flips it when the stream carries what is no longer wanted (a stale
/// version, a plugin gone or installed by other means), and the reader then
/// stops the stream so the server sends no more of it.
#[derive(Debug, Clone, Default)]
pub struct StreamStop(Arc<AtomicBool>);

impl StreamStop {
    /// Whether `other` is the switch of the same stream.
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Asks the stream's reader to stop it.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the bundle thread asked for the stream to stop.
    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the receiver knows of one announced plugin.
#[derive(Debug, Clone)]
struct Wanted {
    name: String,
    version: String,
    sha256: [u8; 32],
    len: u64,
    unpacked: u64,
    scripts: u16,
    /// Accepted and asked for: only then are its chunks taken.
    requested: bool,
    retried: bool,
    done: bool,
    /// The mirror URL the bytes came from, once fetched from one.
    mirror: Option<String>,
    /// Bytes arrived on the QUIC stream.
    from_server: bool,
    /// Waits for the download of another plugin with the same bundle
    /// instead of fetching it itself.
    shared: bool,
}

/// An offer waiting for the player's answer.
#[derive(Debug, Clone)]
struct PendingOffer {
    id: u64,
    /// The offered plugins with the hash each was offered at.
    plugins: Vec<(u16, [u8; 32])>,
    /// What to remember if the player asks to.
    answer: ContentAnswer,
}

/// Bundle bytes received in this session (a warm rejoin receives none).
#[derive(Debug, Default)]
pub struct TransferStats {
    /// Bundle payload bytes received on the server's QUIC stream.
    pub bytes: AtomicU64,
    /// Bundle bytes received from asset mirrors.
    pub mirror_bytes: AtomicU64,
}

/// Where the receiver's bundles come from: the server's address (recorded
/// in install records) and key (quotas, usage and answers are per key).
#[derive(Debug, Clone)]
pub struct Origin {
    /// Address as the user typed it.
    pub address: String,
    /// Key fingerprint, hex.
    pub server_key: String,
}

/// The receiver's state; owned by the bundle thread.
pub struct BundleReceiver {
    cache: RuntimeCache,
    origin: Origin,
    settings: ContentSettings,
    server_name: String,
    content_required: bool,
    wanted: HashMap<u16, Wanted>,
    /// Announced plugins the cache lacks, not yet offered.
    lacking: Vec<u16>,
    /// An `AnnouncementsDone` arrived since the last offer.
    burst_done: bool,
    offer: Option<PendingOffer>,
    next_offer_id: u64,
    events: EventTx,
    outgoing: mpsc::Sender<ClientMsg>,
    dispatcher: Arc<Mutex<Dispatcher>>,
    stats: Arc<TransferStats>,
    /// Something was installed, refused or removed since the last `BundlesSettled`.
    unsettled: bool,
    /// Checked entry points of each plugin installed in this session (the glue's input).
    entry_points: BTreeMap<String, Vec<String>>,
    /// Where mirror downloads run and report back, and the game server's
    /// address, which no mirror may be nearer the player than (set by
    /// [`Self::enable_mirrors`]).
    mirror_link: Option<(
        tokio::runtime::Handle,
        mpsc::WeakSender<BundleWork>,
        std::net::IpAddr,
    )>,
    /// This session's mirrors, once `Welcome` listed any.
    mirrors: Option<Mirrors>,
    /// Downloads from the QUIC stream in progress, kept open across chunks.
    partials: HashMap<[u8; 32], Download>,
    /// Mirror downloads running, by bundle; dropping one ends it.
    mirror_downloads: HashMap<[u8; 32], MirrorDownload>,
}

/// A download from the QUIC stream in progress: its partial file, kept open
/// across chunks, and the one stream it is written from.
#[derive(Debug)]
struct Download {
    file: PartialFile,
    /// The plugin the stream's chunks name.
    plugin_id: u16,
    /// The stream whose chunks are written. Another stream of the same
    /// bundle (a version reverted within a round trip, so the old transfer
    /// and the new request both run) is stopped while this one lives: two
    /// streams written in turn would rewind the file and leave gaps.
    stream: StreamStop,
}

impl BundleReceiver {
    /// A receiver writing into `cache` for bundles from `origin`, protecting
    /// the player with `settings`.
    pub fn new(
        cache: RuntimeCache,
        origin: Origin,
        settings: ContentSettings,
        events: EventTx,
        outgoing: mpsc::Sender<ClientMsg>,
        dispatcher: Arc<Mutex<Dispatcher>>,
        stats: Arc<TransferStats>,
    ) -> Self {
        Self {
            cache,
            origin,
            settings,
            server_name: String::new(),
            content_required: true,
            wanted: HashMap::new(),
            lacking: Vec::new(),
            burst_done: false,
            offer: None,
            next_offer_id: 1,
            events,
            outgoing,
            dispatcher,
            stats,
            unsettled: false,
            entry_points: BTreeMap::new(),
            mirror_link: None,
            mirrors: None,
            partials: HashMap::new(),
            mirror_downloads: HashMap::new(),
        }
    }

    /// Lets this receiver fetch from the asset mirrors a `Welcome` lists:
    /// downloads run on the current tokio runtime and report on `work`
    /// (the receiver's own queue, held weakly so it still closes when the
    /// session ends). Without it every bundle comes over QUIC.
    pub fn enable_mirrors(&mut self, work: &mpsc::Sender<BundleWork>, server: std::net::IpAddr) {
        self.mirror_link = tokio::runtime::Handle::try_current()
            .ok()
            .map(|h| (h, work.downgrade(), server));
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
                BundleWork::Welcome {
                    server_name,
                    content_required,
                    asset_mirrors,
                } => {
                    self.server_name = server_name;
                    self.content_required = content_required;
                    self.set_mirrors(&asset_mirrors);
                }
                BundleWork::Mirror {
                    plugin_id,
                    sha256,
                    outcome,
                } => self.mirrored(plugin_id, sha256, outcome),
                BundleWork::AnnouncementsDone => {
                    self.burst_done = true;
                    self.maybe_offer();
                }
                BundleWork::Answer { accept, remember } => self.answer(accept, remember),
                BundleWork::Announce {
                    plugin_id,
                    name,
                    version,
                    sha256,
                    len,
                    unpacked_len,
                    client_scripts,
                } => {
                    let w = Wanted {
                        name,
                        version,
                        sha256,
                        len,
                        unpacked: unpacked_len,
                        scripts: client_scripts,
                        requested: false,
                        retried: false,
                        done: false,
                        mirror: None,
                        from_server: false,
                        shared: false,
                    };
                    self.announce(plugin_id, w)
                }
                BundleWork::Chunk(c, stop) => self.chunk(&c, &stop),
                BundleWork::Removed { plugin_id } => self.removed(plugin_id),
                BundleWork::Refused {
                    plugin_id,
                    sha256,
                    reason,
                } => self.refused(plugin_id, sha256, &reason),
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

    /// Forgets a removed plugin (it no longer counts towards the server's
    /// content) and reports it; its install stays in the cache.
    fn removed(&mut self, plugin_id: u16) {
        self.lacking.retain(|id| *id != plugin_id);
        if let Some(w) = self.wanted.remove(&plugin_id) {
            self.let_go(plugin_id, &w.sha256);
            self.unsettled = true;
            if self.entry_points.remove(&w.name).is_some() {
                self.write_glue();
            }
            let (sha256, fetching) = (w.sha256, w.requested && !w.done && !w.shared);
            self.emit(ClientEvent::PluginRemoved {
                plugin_id,
                name: w.name,
            });
            // Plugins that waited for its download fetch the bundle themselves.
            self.hand_on(plugin_id, sha256, fetching);
        }
    }

    /// Lets go of `plugin_id`'s download of `sha256` now that the plugin
    /// wants other content or is gone: stops its stream (the chunks name the
    /// plugin, so none of them would be taken) and, unless another plugin
    /// wants that bundle, closes the partial file (so edits during a
    /// download cannot pile up open files) and ends its mirror download.
    /// The file stays in `partial/`: a plugin taking the download over, or
    /// this one reverted, resumes it.
    fn let_go(&mut self, plugin_id: u16, sha256: &[u8; 32]) {
        if let Some(d) = self.partials.get(sha256)
            && d.plugin_id == plugin_id
        {
            d.stream.stop();
        }
        if !self.wanted.values().any(|w| w.sha256 == *sha256) {
            self.partials.remove(sha256);
            if self.mirror_downloads.remove(sha256).is_some() {
                debug!(
                    plugin_id,
                    "mirror download of a bundle no longer wanted ended"
                );
            }
        }
    }

    fn emit(&self, ev: ClientEvent) {
        let _ = self.events.blocking_send(ev);
    }

    /// Leaves the server with `reason` (content refused or declined while
    /// the server requires it).
    fn leave(&self, reason: &str) {
        self.events.link().leave(reason);
    }

    fn send(&self, msg: ClientMsg) {
        let _ = self.outgoing.blocking_send(msg);
    }

    fn announce(&mut self, plugin_id: u16, mut w: Wanted) {
        self.emit(ClientEvent::PluginAnnounced {
            plugin_id,
            name: w.name.clone(),
            version: w.version.clone(),
            sha256: hex(&w.sha256),
            len: w.len,
        });
        if let Some(old) = self.wanted.get(&plugin_id)
            && old.sha256 == w.sha256
            && old.len == w.len
            && old.requested
            && !old.done
        {
            // The same bundle announced again while it downloads (a change
            // to the plugin's Python only): the download goes on as it was.
            w.requested = true;
            w.retried = old.retried;
            w.shared = old.shared;
            w.mirror = old.mirror.clone();
            w.from_server = old.from_server;
            self.wanted.insert(plugin_id, w);
            return;
        }
        let sha256 = w.sha256;
        let replaced = self.wanted.insert(plugin_id, w);
        self.lacking.retain(|id| *id != plugin_id);
        // A new version replaces one whose download other plugins waited for.
        if let Some(old) = replaced
            && old.sha256 != sha256
        {
            self.let_go(plugin_id, &old.sha256);
            let fetching = old.requested && !old.done && !old.shared;
            self.hand_on(plugin_id, old.sha256, fetching);
        }
        // Already here: register its callbacks again and report, no
        // transfer. An install whose stored copy is gone (deleted by hand,
        // or by a tidy-up tool) is fetched again: its scripts are checked
        // from that copy.
        if self.cache.has_bundle(&sha256) {
            self.install(plugin_id, None);
        } else {
            self.lacking.push(plugin_id);
        }
    }

    /// Offers what the cache lacks once a burst of announcements is complete
    /// and no other offer waits for an answer.
    fn maybe_offer(&mut self) {
        if self.offer.is_some() || !self.burst_done {
            return;
        }
        let wanted = &self.wanted;
        self.lacking
            .retain(|id| wanted.get(id).is_some_and(|w| !w.done && !w.requested));
        if self.lacking.is_empty() {
            return;
        }
        self.burst_done = false;
        let ids = std::mem::take(&mut self.lacking);
        let offered: Vec<(u16, Wanted)> = ids
            .iter()
            .filter_map(|id| self.wanted.get(id).map(|w| (*id, w.clone())))
            .collect();
        // The server's whole content: what its quota and the remembered answer are about.
        let all: Vec<&Wanted> = self.wanted.values().collect();
        let server_total: u64 = all.iter().map(|w| w.unpacked).sum();
        let content = content_hash(all.iter().map(|w| (w.name.as_str(), &w.sha256)));
        let script_plugins: BTreeSet<String> = all
            .iter()
            .filter(|w| w.scripts > 0)
            .map(|w| w.name.clone())
            .collect();
        let quota = self.settings.server_quota;
        let over_quota_by = server_total.saturating_sub(quota);
        let remembered = self
            .cache
            .content_answer(&self.origin.server_key)
            .filter(|prev| remembered_applies(prev, &content, &script_plugins, server_total));
        let decided = if over_quota_by > 0 {
            Some(Decided::OverQuota)
        } else if let Some(prev) = remembered {
            Some(if prev.accept {
                Decided::RememberedAccept
            } else {
                Decided::RememberedDecline
            })
        } else {
            match self.settings.mode {
                OfferMode::Ask => None,
                OfferMode::Accept => Some(Decided::AutoAccept),
                OfferMode::Decline => Some(Decided::AutoDecline),
            }
        };
        let id = self.next_offer_id;
        self.next_offer_id += 1;
        let listed = offered
            .iter()
            .take(MAX_OFFER_PLUGINS_LISTED)
            .map(|(_, w)| OfferedPlugin {
                name: w.name.clone(),
                version: w.version.clone(),
                packed: w.len,
                unpacked: w.unpacked,
                scripts: w.scripts,
            })
            .collect();
        let plugins: Vec<(u16, [u8; 32])> = offered.iter().map(|(id, w)| (*id, w.sha256)).collect();
        if decided.is_none() {
            // Waiting before the event goes out, so an answer never finds no offer.
            self.offer = Some(PendingOffer {
                id,
                plugins: plugins.clone(),
                answer: ContentAnswer {
                    accept: false,
                    content,
                    script_plugins,
                    unpacked: server_total,
                    answered_at: 0,
                },
            });
            self.events
                .link()
                .pending_offer
                .store(id, Ordering::Release);
        }
        self.emit(ClientEvent::ContentOffer {
            offer_id: id,
            server: self.server_name.clone(),
            server_key: self.origin.server_key.clone(),
            plugins: listed,
            more_plugins: offered.len().saturating_sub(MAX_OFFER_PLUGINS_LISTED),
            // What is downloaded: a bundle several plugins share, once.
            packed: packed_once(offered.iter().map(|(_, w)| w)),
            unpacked: offered.iter().map(|(_, w)| w.unpacked).sum(),
            scripts: offered.iter().map(|(_, w)| u32::from(w.scripts)).sum(),
            required: self.content_required,
            server_total,
            server_quota: quota,
            over_quota_by,
            needs_answer: decided.is_none(),
            decided,
        });
        match decided {
            Some(Decided::OverQuota) => {
                let reason = format!(
                    "{} wants {} MB of content; your per-server quota is {} MB ({} MB over). \
                     Nothing was downloaded",
                    self.display_name(),
                    mb(server_total),
                    mb(quota),
                    mb(over_quota_by)
                );
                self.refuse(&plugins, reason, over_quota_by, quota);
            }
            Some(d) => self.apply(&plugins, d.accepts()),
            None => {}
        }
    }

    fn display_name(&self) -> String {
        if self.server_name.is_empty() {
            format!("the server at {}", self.origin.address)
        } else {
            format!("the server \"{}\"", self.server_name)
        }
    }

    /// The player's answer to the pending offer.
    fn answer(&mut self, accept: bool, remember: bool) {
        let Some(offer) = self.offer.take() else {
            return;
        };
        self.events.link().pending_offer.store(0, Ordering::Release);
        info!(offer = offer.id, accept, remember, "content offer answered");
        if remember {
            let answer = ContentAnswer {
                accept,
                ..offer.answer
            };
            if let Err(e) = self.cache.remember_answer(&self.origin.server_key, answer) {
                warn!(error = %e, "cannot remember the content answer");
            }
        }
        self.apply(&offer.plugins, accept);
        self.maybe_offer();
    }

    /// Starts the accepted downloads (after making room under the cache
    /// cap), or skips the declined plugins (leaving if the server requires them).
    fn apply(&mut self, plugins: &[(u16, [u8; 32])], accept: bool) {
        // Only what is still announced at the offered hash; a newer
        // announcement is offered on its own.
        let current: Vec<(u16, [u8; 32])> = plugins
            .iter()
            .filter(|(id, sha)| {
                self.wanted
                    .get(id)
                    .is_some_and(|w| &w.sha256 == sha && !w.done && !w.requested)
            })
            .copied()
            .collect();
        if !accept {
            let why = "not downloaded: you declined this server's content";
            for (id, _) in &current {
                self.fail(*id, why);
            }
            if self.content_required {
                self.leave(&format!(
                    "{} requires its content to play, and you declined it; you left the server",
                    self.display_name()
                ));
            }
            return;
        }
        let asked = || current.iter().filter_map(|(id, _)| self.wanted.get(id));
        // The store keeps each bundle once; each plugin's install is its own.
        let needed = packed_once(asked()) + asked().map(|w| w.unpacked).sum::<u64>();
        let keep: HashSet<[u8; 32]> = self.wanted.values().map(|w| w.sha256).collect();
        match self.cache.make_room(needed, self.settings.cache_cap, &keep) {
            Ok(evicted) => {
                for e in evicted {
                    info!(sha256 = %e.sha256, freed = e.freed, "evicted to stay under the cache cap");
                    self.emit(ClientEvent::CacheEvicted {
                        sha256: e.sha256,
                        plugins: e.plugins,
                        freed: e.freed,
                    });
                }
            }
            Err(CacheError::CapTooSmall { needed, cap, kept }) => {
                let reason = format!(
                    "{}'s content needs {} MB, but your cache cap of {} MB holds only {} MB more \
                     beside this session's content. Nothing was downloaded",
                    self.display_name(),
                    mb(needed),
                    mb(cap),
                    mb(cap.saturating_sub(kept))
                );
                let over = kept.saturating_add(needed).saturating_sub(cap);
                return self.refuse(&current, reason, over, cap);
            }
            Err(e) => warn!(error = %e, "cannot make room in the cache"),
        }
        let mut requests = Vec::new();
        for (id, _) in &current {
            // One download per bundle: plugins that share it (the same
            // content under two names) wait for the first one's.
            let shared = self
                .wanted
                .get(id)
                .is_some_and(|w| self.downloading(&w.sha256, *id));
            if let Some(w) = self.wanted.get_mut(id) {
                w.requested = true;
                w.shared = shared;
                if shared {
                    debug!(plugin = %w.name, "bundle shared with a plugin already fetching it");
                    continue;
                }
                // Either path resumes from `partial/`; an over-long file goes first.
                let offset = resume_offset(&self.cache, &self.partials, w);
                if let Some(m) = &self.mirrors {
                    let download = m.spawn(MirrorJob {
                        plugin_id: *id,
                        name: w.name.clone(),
                        sha256: w.sha256,
                        len: w.len,
                        cache: self.cache.clone(),
                    });
                    self.mirror_downloads.insert(w.sha256, download);
                    continue;
                }
                requests.push(BundleRequest {
                    plugin_id: *id,
                    sha256: w.sha256,
                    offset,
                });
            }
        }
        for batch in requests.chunks(MAX_BUNDLE_REQUESTS) {
            self.send(ClientMsg::NeedBundles {
                requests: batch.to_vec(),
            });
        }
    }

    /// Refuses an offer before any byte is fetched and tells the player why.
    fn refuse(&mut self, plugins: &[(u16, [u8; 32])], reason: String, over_by: u64, limit: u64) {
        warn!(%reason, "content refused");
        self.emit(ClientEvent::ContentRefused {
            reason: reason.clone(),
            over_by,
            limit,
        });
        for (id, _) in plugins {
            self.fail(*id, &format!("not downloaded: {reason}"));
        }
        if self.content_required {
            self.leave(&format!(
                "{reason}; the server requires its content, so you left"
            ));
        }
    }

    /// Sets up this session's mirrors from `Welcome` (none without
    /// [`Self::enable_mirrors`], when mirrors are off, or when none parses).
    fn set_mirrors(&mut self, list: &[String]) {
        let Some((runtime, work, server)) = self.mirror_link.clone() else {
            return;
        };
        match Mirrors::new(
            list,
            &self.settings.mirrors,
            server,
            runtime,
            work,
            self.stats.clone(),
            self.events.clone(),
        ) {
            Ok(m) => self.mirrors = m,
            Err(e) => warn!(error = %e, "asset mirrors not used"),
        }
    }

    /// A mirror download ended: install what it fetched (hashed as it was
    /// written and already in the store) or what another client sharing the
    /// cache stored meanwhile, or fall back to the server's QUIC stream.
    fn mirrored(&mut self, plugin_id: u16, sha256: [u8; 32], outcome: MirrorOutcome) {
        self.mirror_downloads.remove(&sha256);
        // The plugin the download was started for, or the one it was handed
        // over to when that plugin got other content (see `hand_on`).
        let fetcher = |w: &Wanted| w.sha256 == sha256 && w.requested && !w.done && !w.shared;
        let plugin_id = if self.wanted.get(&plugin_id).is_some_and(fetcher) {
            plugin_id
        } else {
            match self.wanted.iter().find(|(_, w)| fetcher(w)) {
                Some((id, _)) => *id,
                None => return,
            }
        };
        let Some(w) = self.wanted.get(&plugin_id).cloned() else {
            return;
        };
        let reason = match outcome {
            MirrorOutcome::Fetched { url, bundle } => {
                info!(plugin = %w.name, %url, "bundle fetched from an asset mirror");
                if let Some(m) = self.wanted.get_mut(&plugin_id) {
                    m.mirror = Some(url);
                }
                return self.install(plugin_id, Some(bundle));
            }
            MirrorOutcome::Stored => return self.install(plugin_id, None),
            MirrorOutcome::Failed { reason } => reason,
        };
        if self.cache.has_bundle(&sha256) {
            // Another client sharing this cache finished the same bundle
            // while the mirrors failed: nothing is left to fetch.
            info!(plugin = %w.name, %reason, "asset mirrors failed, but another client sharing this cache has stored the bundle; installing it from there");
            return self.install(plugin_id, None);
        }
        warn!(plugin = %w.name, %reason, "asset mirrors failed; fetching the bundle from the server");
        self.emit(ClientEvent::MirrorFallback {
            plugin_id,
            name: w.name.clone(),
            reason,
        });
        self.request(plugin_id, &w);
    }

    /// Asks the server for a bundle outside an offer's batch: again after
    /// a failed verification, or for a plugin taking over a shared download
    /// (see [`Self::hand_on`]).
    fn request(&self, plugin_id: u16, w: &Wanted) {
        let offset = resume_offset(&self.cache, &self.partials, w);
        let req = BundleRequest {
            plugin_id,
            sha256: w.sha256,
            offset,
        };
        self.send(ClientMsg::NeedBundles {
            requests: vec![req],
        });
    }

    fn chunk(&mut self, c: &AssetChunk, stream: &StreamStop) {
        let (plugin_id, len, chunk_id, data) = (c.plugin_id, c.len, c.chunk_id, c.data());
        if stream.stopped() {
            // Still in flight when the stream was stopped: never written.
            return;
        }
        let Some(w) = self.wanted.get_mut(&plugin_id) else {
            warn!(
                plugin_id,
                "chunk for a plugin that was not announced; stopping its stream"
            );
            return stream.stop();
        };
        if w.done || !w.requested || w.shared || len != w.len || c.sha256 != w.sha256 {
            // A version announced anew since, a download that ended, or a
            // plugin that now waits for another's download of the bundle
            // (its own stream from before a reload is not the one asked for).
            debug!(plugin = %w.name, chunk_id, "chunk no longer wanted; stopping its stream");
            return stream.stop();
        }
        let (sha256, total) = (w.sha256, w.len);
        if let Some(d) = self.partials.get_mut(&sha256)
            && !d.stream.same(stream)
        {
            if !d.stream.stopped() {
                debug!(plugin = %w.name, chunk_id, "a second stream of a download already arriving; stopping it");
                return stream.stop();
            }
            // The stream it was written from was stopped: this one takes over.
            d.stream = stream.clone();
            d.plugin_id = plugin_id;
        }
        w.from_server = true;
        self.stats
            .bytes
            .fetch_add(c.data_len() as u64, Ordering::Relaxed);
        let offset = u64::from(chunk_id) * CHUNK_SIZE as u64;
        let written = match self.partials.entry(sha256) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                e.get_mut().file.write_parts_at(offset, data)
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                self.cache.open_partial(&sha256).and_then(|file| {
                    let d = e.insert(Download {
                        file,
                        plugin_id,
                        stream: stream.clone(),
                    });
                    d.file.write_parts_at(offset, data)
                })
            }
        };
        let have = match written {
            Ok(n) => n,
            // Another client sharing this cache finished the same bundle.
            Err(CacheError::AlreadyStored { .. }) => {
                self.partials.remove(&sha256);
                return self.install(plugin_id, None);
            }
            Err(e) => {
                self.partials.remove(&sha256);
                return self.fail(plugin_id, &format!("cannot store chunk {chunk_id}: {e}"));
            }
        };
        let last = have >= total;
        if last || chunk_id.is_multiple_of(crate::tuning::PROGRESS_EVERY_CHUNKS) {
            let name = self
                .wanted
                .get(&plugin_id)
                .map(|w| w.name.clone())
                .unwrap_or_default();
            self.emit(ClientEvent::BundleProgress {
                plugin_id,
                name,
                received: have,
                total,
            });
        }
        if !last {
            return;
        }
        let Some(download) = self.partials.remove(&sha256) else {
            return;
        };
        match download.file.finish(&self.cache) {
            Ok(verified) => self.install(plugin_id, Some(verified)),
            Err(e) => {
                let _ = self.cache.discard_partial(&sha256);
                let Some(w) = self.wanted.get_mut(&plugin_id) else {
                    return;
                };
                if !w.retried {
                    warn!(plugin = %w.name, error = %e, "bundle failed verification; downloading it again");
                    w.retried = true;
                    let w = w.clone();
                    self.request(plugin_id, &w);
                } else {
                    self.fail(plugin_id, &format!("bundle failed verification twice: {e}"));
                }
            }
        }
    }

    /// Installs `plugin_id`'s bundle ([`Self::install_one`]), then, once it
    /// is in the store, every other plugin that asked for the same bundle
    /// and waits for it, whichever of them was fetching it.
    fn install(&mut self, plugin_id: u16, fresh: Option<VerifiedBundle>) {
        let Some(sha256) = self.wanted.get(&plugin_id).map(|w| w.sha256) else {
            return;
        };
        self.install_one(plugin_id, fresh);
        if !self.cache.has_bundle(&sha256) {
            return;
        }
        for id in self.others_wanting(&sha256, plugin_id, |w| w.requested && !w.done) {
            if self.wanted.get(&id).is_some_and(|w| !w.done) {
                self.install_one(id, None);
            }
        }
    }

    /// Checks the bundle's scripts, installs it and reports the result;
    /// `fresh` is a bundle just verified into the store (used as unpacked
    /// then), `None` one found already in the cache.
    fn install_one(&mut self, plugin_id: u16, fresh: Option<VerifiedBundle>) {
        let Some(w) = self.wanted.get(&plugin_id).cloned() else {
            return;
        };
        let previous = self.cache.installed_hash(&w.name);
        let (report, unpacked) = match self.check_and_install(&w, previous, fresh) {
            Ok(done) => done,
            Err(e) => {
                let error = e.to_string();
                if e.refused() {
                    // Refused content leaves the cache as it was before the
                    // download (an installed bundle is kept).
                    let _ = self.cache.discard_bundle(&w.sha256);
                    // The same content under other names gets the same
                    // verdict, and is not fetched again for each of them
                    // (they fail first, so none is handed the download).
                    for id in self.others_wanting(&w.sha256, plugin_id, |o| o.requested && !o.done)
                    {
                        self.fail(id, &error);
                    }
                }
                return self.fail(plugin_id, &error);
            }
        };
        let rpc_names = report.rpc_names;
        if let Ok(mut d) = self.dispatcher.lock() {
            for name in &rpc_names {
                d.register(&w.name, name);
            }
            d.declare_upstream(&w.name, &report.upstream_names);
        }
        if self.entry_points.get(&w.name) != Some(&report.entry_points) {
            self.entry_points
                .insert(w.name.clone(), report.entry_points);
            self.write_glue();
        }
        if let Some(m) = self.wanted.get_mut(&plugin_id) {
            m.done = true;
        }
        self.unsettled = true;
        let used = BundleUse {
            sha256: w.sha256,
            plugin: &w.name,
            unpacked,
        };
        let origin = &self.origin;
        if let Err(e) = self
            .cache
            .record_use(&origin.server_key, &origin.address, &[used])
        {
            warn!(error = %e, "cannot record cache use");
        }
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
            source: match (&w.mirror, w.from_server) {
                (Some(_), _) => "mirror",
                (None, true) => "server",
                (None, false) => "cache",
            },
            mirror: w.mirror.clone(),
        });
        self.send(ClientMsg::BundleInstalled {
            plugin_id,
            sha256: w.sha256,
            ok: true,
            error: None,
        });
    }

    /// The plugins other than `except` that announced the bundle `sha256`
    /// and match `pred` (asked for it, or waiting for another's download).
    fn others_wanting(
        &self,
        sha256: &[u8; 32],
        except: u16,
        pred: impl Fn(&Wanted) -> bool,
    ) -> Vec<u16> {
        self.wanted
            .iter()
            .filter(|(id, w)| **id != except && w.sha256 == *sha256 && pred(w))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether a plugin other than `except` is fetching the bundle `sha256`
    /// (asked for, not done, not itself waiting for another's download).
    fn downloading(&self, sha256: &[u8; 32], except: u16) -> bool {
        !self
            .others_wanting(sha256, except, |w| w.requested && !w.done && !w.shared)
            .is_empty()
    }

    /// The download of `plugin_id` ended (installed, failed or removed):
    /// the plugins waiting for it install the bundle from the store, or,
    /// when it is not there, the first of them fetches it in turn. Nothing
    /// happens unless `plugin_id` was `fetching` it (not itself waiting).
    fn hand_on(&mut self, plugin_id: u16, sha256: [u8; 32], fetching: bool) {
        if !fetching {
            return;
        }
        let waiting = self.others_wanting(&sha256, plugin_id, |w| w.shared && !w.done);
        let Some(&first) = waiting.first() else {
            return;
        };
        if self.cache.has_bundle(&sha256) {
            for id in waiting {
                self.install(id, None);
            }
        } else if let Some(w) = self.wanted.get_mut(&first) {
            w.shared = false;
            if self.mirror_downloads.contains_key(&sha256) {
                // The mirror download goes on; its result is this plugin's now.
                debug!(plugin = %w.name, "takes over a mirror download");
                return;
            }
            let w = w.clone();
            self.request(first, &w);
        }
    }

    /// The server will not send the bundle of `plugin_id`: that plugin fails
    /// with its reason, unless it has been announced anew meanwhile (a
    /// reload raced the request), or is no longer waiting for it.
    fn refused(&mut self, plugin_id: u16, sha256: [u8; 32], reason: &str) {
        let pending = self
            .wanted
            .get(&plugin_id)
            .is_some_and(|w| w.sha256 == sha256 && w.requested && !w.done);
        if pending {
            self.fail(
                plugin_id,
                &format!("the server refused to send its bundle: {reason}"),
            );
        } else {
            debug!(plugin_id, %reason, "refusal of a bundle no longer wanted (a reload crossed the request)");
        }
    }

    /// Rewrites the runtime's entry-point glue from the installed set.
    fn write_glue(&self) {
        if let Err(e) = crate::glue::write(self.cache.root(), &self.entry_points) {
            warn!(error = %e, "cannot write the entry-point glue");
        }
    }

    /// A new bundle is unpacked once, streaming from its stored copy into
    /// staging (hashed again only when not `fresh`: a fresh download was
    /// hashed as it arrived), where its content and scripts are checked
    /// before it is moved into place (dropping the staged install on a
    /// refusal removes it); one already installed is only checked again,
    /// from its stored copy, to register its RPC names.
    /// Returns the policy's report and the bundle's unpacked size.
    fn check_and_install(
        &self,
        w: &Wanted,
        previous: Option<[u8; 32]>,
        fresh: Option<VerifiedBundle>,
    ) -> Result<(shard_reds::CheckReport, u64), InstallError> {
        if previous == Some(w.sha256) {
            let scripts = self.cache.stored_scripts(&w.sha256).map_err(|e| match e {
                CacheError::Bundle(_) => InstallError::Refused(e),
                e => InstallError::Cache(e),
            })?;
            return Ok((check_scripts(&w.name, &scripts)?, scripts.unpacked_len));
        }
        let req = InstallRequest {
            plugin: &w.name,
            version: &w.version,
            server: &self.origin.address,
            sha256: w.sha256,
        };
        let staged = match fresh {
            Some(v) => self.cache.stage_verified(&req, v, w.unpacked),
            None => self.cache.stage_from_store(&req, w.unpacked),
        }
        .map_err(|e| match e {
            CacheError::Bundle(_)
            | CacheError::Content(_)
            | CacheError::LargerThanAnnounced { .. } => InstallError::Refused(e),
            e => InstallError::Cache(e),
        })?;
        let report = check_scripts(&w.name, staged.bundle())?;
        let unpacked = staged.bundle().unpacked_len;
        self.cache
            .install_staged(staged)
            .map_err(InstallError::Cache)?;
        Ok((report, unpacked))
    }

    fn fail(&mut self, plugin_id: u16, error: &str) {
        let Some(w) = self.wanted.get_mut(&plugin_id) else {
            return;
        };
        w.done = true;
        self.unsettled = true;
        let (name, sha256, shared) = (w.name.clone(), w.sha256, w.shared);
        self.partials.remove(&sha256);
        warn!(plugin = %name, %error, "bundle not installed");
        self.emit(ClientEvent::BundleFailed {
            plugin_id,
            name,
            error: error.to_string(),
        });
        self.send(ClientMsg::BundleInstalled {
            plugin_id,
            sha256,
            ok: false,
            error: Some(for_server(error, self.cache.root())),
        });
        self.hand_on(plugin_id, sha256, !shared);
    }
}

/// An install error as the server is told it: the cache's folder, whose
/// path often holds the player's user name, reads `runtime_cache`, so the
/// operator learns what failed and nothing of the player's machine; clipped
/// to the protocol's length for a reason.
fn for_server(error: &str, cache_root: &std::path::Path) -> String {
    let mut text = error.to_string();
    let canonical = std::fs::canonicalize(cache_root).ok();
    for root in [Some(cache_root), canonical.as_deref()]
        .into_iter()
        .flatten()
    {
        let shown = root.display().to_string();
        if !shown.is_empty() {
            text = text.replace(&shown, "runtime_cache");
        }
    }
    shard_protocol::clip_utf8(&mut text, shard_protocol::limits::MAX_REASON);
    text
}

/// The packed size of `wanted`'s bundles, each distinct bundle counted once
/// (plugins with the same content share one download and one stored copy).
fn packed_once<'a>(wanted: impl Iterator<Item = &'a Wanted>) -> u64 {
    let mut seen = HashSet::new();
    wanted
        .filter(|w| seen.insert(w.sha256))
        .map(|w| w.len)
        .sum()
}

/// Why a bundle was not installed; the text goes to the player and the server.
#[derive(Debug, thiserror::Error)]
enum InstallError {
    /// The bundle or its game content is refused (hash, format, content
    /// policy, larger than announced).
    #[error("refused: {0}")]
    Refused(CacheError),
    /// Its client scripts break the sandbox policy.
    #[error("refused: client scripts break the sandbox policy: {}", join_diagnostics(.0))]
    Policy(Vec<shard_reds::Diagnostic>),
    /// The cache could not read or write it.
    #[error("install failed: {0}")]
    Cache(CacheError),
}

impl InstallError {
    /// Whether the bundle itself was refused (so the stored copy goes).
    fn refused(&self) -> bool {
        matches!(self, InstallError::Refused(_) | InstallError::Policy(_))
    }
}

/// Where a download of the bundle `sha256` (announced as `len` bytes)
/// resumes: the length of its partial file, or 0 after discarding one that is
/// longer than announced (it cannot be a prefix of this bundle).
/// The offset to ask for `w`'s bundle from: where a download of it still
/// open in this receiver stopped (one handed over from another plugin), else
/// what `partial/` holds; an over-long partial file is discarded.
fn resume_offset(cache: &RuntimeCache, partials: &HashMap<[u8; 32], Download>, w: &Wanted) -> u64 {
    if let Some(open) = partials.get(&w.sha256) {
        return open.file.len().min(w.len);
    }
    let (plugin, sha256, len) = (w.name.as_str(), &w.sha256, w.len);
    let offset = cache.partial_offset(sha256).unwrap_or(0);
    if offset > len {
        warn!(
            plugin,
            have = offset,
            announced = len,
            "partial download longer than announced; discarded"
        );
        let _ = cache.discard_partial(sha256);
        return 0;
    }
    if offset > 0 {
        info!(plugin, offset, "resuming bundle download");
    }
    offset
}

fn join_diagnostics(diagnostics: &[shard_reds::Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// Runs the sandbox policy over the bundle's client scripts; returns its
/// report (RPC names registered and sent, entry points) or the refusals.
fn check_scripts(
    plugin: &str,
    bundle: &shard_cache::UnpackedBundle,
) -> Result<shard_reds::CheckReport, InstallError> {
    let scripts: Vec<(String, String)> = bundle
        .files
        .iter()
        .filter(|f| shard_cache::is_client_script(&f.path))
        .map(|f| {
            (
                format!("{plugin}/{}", f.path),
                String::from_utf8_lossy(f.contents.in_memory().unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    let mut report = shard_reds::check_scripts(&scripts);
    if report.diagnostics.is_empty() {
        Ok(report)
    } else {
        Err(InstallError::Policy(std::mem::take(
            &mut report.diagnostics,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server hears of a failed install names files inside the
    /// cache, never the player's folders around it.
    #[test]
    fn the_server_is_told_the_error_without_the_players_folders() {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join("alice").join("runtime_cache");
        std::fs::create_dir_all(&root).unwrap();
        let error = format!(
            "install failed: writing {}: No space left on device (os error 28)",
            root.join("plugins/.staging-x/assets/a.archive").display()
        );
        let told = for_server(&error, &root);
        assert_eq!(
            told,
            "install failed: writing runtime_cache/plugins/.staging-x/assets/a.archive: No space left on device (os error 28)"
        );
        assert!(!told.contains("alice"), "{told}");
        let long = "e".repeat(shard_protocol::limits::MAX_REASON * 2);
        assert!(for_server(&long, &root).len() <= shard_protocol::limits::MAX_REASON);
    }

    /// The same folder reached through a link is hidden too.
    #[cfg(unix)]
    #[test]
    fn a_cache_reached_through_a_link_is_hidden_too() {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join("alice").join("runtime_cache");
        std::fs::create_dir_all(&root).unwrap();
        let link = home.path().join("link");
        std::os::unix::fs::symlink(home.path().join("alice"), &link).unwrap();
        let through = format!(
            "reading {}",
            root.canonicalize()
                .unwrap()
                .join("store/x.bundle")
                .display()
        );
        let told = for_server(&through, &link.join("runtime_cache"));
        assert_eq!(told, "reading runtime_cache/store/x.bundle");
    }
}
