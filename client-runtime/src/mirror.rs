//! Bundles from HTTP(S) mirrors and CDNs: the servers list base URLs in
//! `Welcome`, and a bundle's URL is `<mirror><sha256 hex>.bundle`, nothing
//! else, so a mirror cannot choose what a client runs.
//!
//! A mirror is untrusted. Each download resumes into the cache's
//! `partial/<sha256>.part` with a `Range` request, through the same
//! [`PartialFile`] writer as a QUIC transfer (it hashes as it writes), is
//! capped at the length the game server announced, must keep a minimum
//! pace, may be redirected only to hosts on the mirror list, may be no
//! nearer the player than the game server ([`crate::reach`]), and its
//! SHA-256 must match the announced one before it moves into the store; the
//! bundle receiver then runs the same policy check and install as for a
//! QUIC transfer. Any failure
//! (down, slow, redirected off-list, wrong length, wrong hash) tries the
//! next mirror and finally falls back to the server's QUIC stream.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_ENCODING, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::{StatusCode, Url};
use shard_cache::{BundleError, CacheError, PartialFile, RuntimeCache, VerifiedBundle};
use shard_protocol::limits::{
    DEFAULT_MIRROR_CONCURRENCY, DEFAULT_MIRROR_CONNECT_TIMEOUT_SECS,
    DEFAULT_MIRROR_MIN_BYTES_PER_SEC, DEFAULT_MIRROR_READ_TIMEOUT_SECS, MAX_ASSET_MIRRORS,
    MAX_MIRROR_REDIRECTS, MIRROR_PROGRESS_GRACE_SECS,
};
use tokio::sync::{Semaphore, mpsc};
use tracing::{Instrument, debug, info, warn};

use crate::bundles::{BundleWork, TransferStats};
use crate::events::ClientEvent;
use crate::queue::EventTx;
use crate::reach::{FarEnough, Reach, mirror_allowed};
use crate::tuning;
/// The reader behind `--mirror-ca` and the C ABI's `"mirror_ca"`, shared with the server.
pub use shard_protocol::mirror::{MirrorCaError, read_mirror_ca};

/// Bytes between two `bundle_progress` events of a mirror download (as
/// often as for a QUIC transfer).
const PROGRESS_EVERY: u64 =
    crate::tuning::PROGRESS_EVERY_CHUNKS as u64 * shard_protocol::limits::CHUNK_SIZE as u64;

/// How the client uses the mirrors a server lists (part of
/// [`crate::ContentSettings`], so embedders and benches set it per session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSettings {
    /// Use the server's mirrors at all; `false` always downloads over QUIC.
    pub enabled: bool,
    /// An extra CA certificate (PEM) to trust for HTTPS mirrors besides the
    /// public web roots, for private mirrors, tests and modders.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Longest wait for a mirror's TCP and TLS connection.
    pub connect_timeout: Duration,
    /// Longest a mirror may take over its whole response head, and then
    /// longest its body may send nothing (a head trickled a byte at a time
    /// still fails over after this).
    pub read_timeout: Duration,
    /// Slowest average pace (bytes per second) a download may keep once it
    /// has run for `limits::MIRROR_PROGRESS_GRACE_SECS`; a slower mirror fails over.
    pub min_bytes_per_sec: u64,
    /// Bundles downloaded from mirrors at once.
    pub concurrency: usize,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            extra_ca_pem: None,
            connect_timeout: Duration::from_secs(DEFAULT_MIRROR_CONNECT_TIMEOUT_SECS),
            read_timeout: Duration::from_secs(DEFAULT_MIRROR_READ_TIMEOUT_SECS),
            min_bytes_per_sec: DEFAULT_MIRROR_MIN_BYTES_PER_SEC,
            concurrency: DEFAULT_MIRROR_CONCURRENCY,
        }
    }
}

/// Mirror timeouts, pace and concurrency as a player (`shard-client join`
/// flags) or the game (the C ABI config) sets them; each is optional, and an
/// absent one keeps the default. [`MirrorTuning::apply`] is the one place
/// they are checked and turned into [`MirrorSettings`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorTuning {
    /// Seconds to wait for a mirror's connection (1 to `MAX_MIRROR_TIMEOUT_SECS`).
    pub connect_timeout_secs: Option<u64>,
    /// Seconds a mirror may send nothing (1 to `MAX_MIRROR_TIMEOUT_SECS`).
    pub read_timeout_secs: Option<u64>,
    /// Slowest average pace, KiB/s (1 to `MAX_MIRROR_MIN_KIB_PER_SEC`).
    pub min_kib_per_sec: Option<u64>,
    /// Bundles fetched from mirrors at once (1 to `MAX_MIRROR_CONCURRENCY`).
    pub concurrency: Option<u64>,
}

/// A mirror setting outside its range.
#[derive(Debug, thiserror::Error)]
#[error("{what} {value} is outside {min}..={max}")]
pub struct MirrorTuningError {
    /// Which setting (e.g. "mirror concurrency").
    pub what: &'static str,
    /// What was asked.
    pub value: u64,
    /// Its smallest allowed value.
    pub min: u64,
    /// Its largest allowed value.
    pub max: u64,
}

impl MirrorTuning {
    /// `base` with these settings applied, each checked against its range.
    pub fn apply(&self, base: MirrorSettings) -> Result<MirrorSettings, MirrorTuningError> {
        let checked = |what: &'static str, v: Option<u64>, max: u64| match v {
            Some(value) if !(1..=max).contains(&value) => Err(MirrorTuningError {
                what,
                value,
                min: 1,
                max,
            }),
            other => Ok(other),
        };
        let secs = shard_protocol::limits::MAX_MIRROR_TIMEOUT_SECS;
        let most =
            u64::try_from(shard_protocol::limits::MAX_MIRROR_CONCURRENCY).unwrap_or(u64::MAX);
        let connect = checked(
            "mirror connect timeout (s)",
            self.connect_timeout_secs,
            secs,
        )?;
        let read = checked("mirror read timeout (s)", self.read_timeout_secs, secs)?;
        let pace = checked(
            "mirror minimum rate (KiB/s)",
            self.min_kib_per_sec,
            shard_protocol::limits::MAX_MIRROR_MIN_KIB_PER_SEC,
        )?;
        let concurrency = checked("mirror concurrency", self.concurrency, most)?;
        Ok(MirrorSettings {
            connect_timeout: connect.map_or(base.connect_timeout, Duration::from_secs),
            read_timeout: read.map_or(base.read_timeout, Duration::from_secs),
            min_bytes_per_sec: pace.map_or(base.min_bytes_per_sec, |k| k * 1024),
            concurrency: concurrency
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(base.concurrency),
            ..base
        })
    }
}

/// Why a mirror could not be used or one download from it failed; each is
/// reported (with the mirror's URL) when the client falls back.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The server listed something that is not an absolute http(s) base URL.
    #[error("mirror `{url}` is not an absolute http:// or https:// URL ending in `/`")]
    BadMirror {
        /// What the server sent.
        url: String,
    },
    /// The server listed a mirror address nearer the player than itself
    /// (see [`crate::reach`]).
    #[error(
        "mirror `{url}` is on {}, closer to the player than the game server (on {}); a mirror may not be",
        .mirror.describe(),
        .server.describe()
    )]
    TooClose {
        /// What the server sent.
        url: String,
        /// Where the mirror's address is.
        mirror: Reach,
        /// Where the game server is.
        server: Reach,
    },
    /// The extra CA certificate could not be read.
    #[error("the extra CA certificate for mirrors is not valid PEM: {0}")]
    Ca(#[source] reqwest::Error),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for mirrors: {0}")]
    Client(#[source] reqwest::Error),
    /// The request failed (connect, TLS, timeout, refused redirect, ...).
    #[error("{url}: {}", shard_protocol::error_chain(.source))]
    Request {
        /// The bundle URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The mirror answered with a status other than 200 or 206.
    #[error("{url}: {}", shard_protocol::status_reason(.status.as_u16(), .status.canonical_reason()))]
    Status {
        /// The bundle URL.
        url: String,
        /// What it answered.
        status: StatusCode,
    },
    /// A resumed request came back with another range than asked for.
    #[error("{url}: asked for bytes from {offset} on, the mirror sent range `{range}`")]
    BadRange {
        /// The bundle URL.
        url: String,
        /// Where the download resumed.
        offset: u64,
        /// The `Content-Range` it sent.
        range: String,
    },
    /// The answer's head shows it is not the bundle (compressed on the
    /// way, another length): nothing of it is written.
    #[error("{url}: {problem}")]
    Answer {
        /// The bundle URL.
        url: String,
        /// What its head shows.
        problem: shard_protocol::MirrorAnswerProblem,
    },
    /// The mirror sent more than the announced length (the partial file is discarded).
    #[error("{url}: sent more than the announced {expected} bytes")]
    TooLong {
        /// The bundle URL.
        url: String,
        /// Announced length.
        expected: u64,
    },
    /// The body ended early (what arrived is kept in `partial/` to resume).
    #[error("{url}: the file ended after {got} of {expected} bytes")]
    Truncated {
        /// The bundle URL.
        url: String,
        /// Bytes held.
        got: u64,
        /// Announced length.
        expected: u64,
    },
    /// The bytes do not hash to the announced SHA-256 (discarded).
    #[error("{url}: the file's SHA-256 is {actual}, not the announced {expected}")]
    HashMismatch {
        /// The bundle URL.
        url: String,
        /// Announced hash (hex).
        expected: String,
        /// Hash of what arrived (hex).
        actual: String,
    },
    /// The download went slower than the minimum pace.
    #[error("{url}: too slow, {got} bytes in {millis} ms (the minimum is {min} bytes/s)")]
    TooSlow {
        /// The bundle URL.
        url: String,
        /// Bytes received in this attempt.
        got: u64,
        /// Time spent.
        millis: u128,
        /// The minimum pace.
        min: u64,
    },
    /// No data arrived for the read timeout.
    #[error("{url}: timed out, no data for {secs} s")]
    Stalled {
        /// The bundle URL.
        url: String,
        /// The read timeout.
        secs: u64,
    },
    /// No connection (TCP and TLS) within the connect timeout.
    #[error("{url}: timed out, no connection within {secs} s")]
    ConnectTimeout {
        /// The bundle URL.
        url: String,
        /// The connect timeout.
        secs: u64,
    },
    /// The response head did not arrive within the read timeout.
    #[error("{url}: timed out, no complete response within {secs} s")]
    HeadTimeout {
        /// The bundle URL.
        url: String,
        /// The read timeout.
        secs: u64,
    },
    /// A redirect pointed at a host that is not on the mirror list.
    #[error("redirect to {to} refused: that host is not on the server's mirror list")]
    RedirectRefused {
        /// Where it pointed.
        to: String,
    },
    /// Too many redirects in a row.
    #[error("more than {max} redirects")]
    TooManyRedirects {
        /// The limit.
        max: usize,
    },
    /// The partial file could not be read, written or moved into the store.
    #[error("the partial download: {0}")]
    Partial(#[source] CacheError),
}

/// Which part of a mirror request failed: up to and including the response
/// head, or the body.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Head,
    Body,
}

/// One bundle to fetch.
#[derive(Debug, Clone)]
pub struct MirrorJob {
    /// The announced plugin.
    pub plugin_id: u16,
    /// Its name (for progress events).
    pub name: String,
    /// Its announced hash.
    pub sha256: [u8; 32],
    /// Its announced packed length.
    pub len: u64,
    /// The cache whose `partial/<sha256>.part` the download grows in and
    /// whose store it moves into once its hash matches.
    pub cache: RuntimeCache,
}

/// How a mirror download ended, sent back to the bundle receiver.
#[derive(Debug)]
pub enum MirrorOutcome {
    /// The download hashed to the announced SHA-256 as it was written and
    /// is now in the store, ready to stage.
    Fetched {
        /// The bundle URL it came from.
        url: String,
        /// The stored bundle.
        bundle: VerifiedBundle,
    },
    /// Another client sharing this cache stored the bundle meanwhile: the
    /// receiver installs it from the store, fetching nothing more.
    Stored,
    /// Every mirror failed; the receiver falls back to QUIC.
    Failed {
        /// Each mirror's failure, in the order tried.
        reason: String,
    },
}

impl MirrorError {
    /// Whether this failure says the mirror as a whole is unusable now
    /// (unreachable, failing, or too slow), not just this one file. A
    /// refused redirect is about one file, and costs no wait to find again.
    pub fn is_mirror_wide(&self) -> bool {
        match self {
            Self::Request { source, .. } => !source.is_redirect(),
            Self::TooSlow { .. }
            | Self::Stalled { .. }
            | Self::ConnectTimeout { .. }
            | Self::HeadTimeout { .. } => true,
            Self::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}

/// Mirrors that failed as a whole this session, with when and why, so
/// later downloads skip them for [`tuning::MIRROR_DOWN_FOR`].
type DownList = Arc<std::sync::Mutex<HashMap<Url, (Instant, String)>>>;

/// The mirrors of one session and the HTTP client that fetches from them.
pub struct Mirrors {
    client: reqwest::Client,
    bases: Vec<Url>,
    down: DownList,
    gate: Arc<Semaphore>,
    settings: MirrorSettings,
    runtime: tokio::runtime::Handle,
    /// Weak, so the receiver that owns this does not keep its own queue
    /// open: the bundle thread ends when the session's senders are gone.
    work: mpsc::WeakSender<BundleWork>,
    stats: Arc<TransferStats>,
    events: EventTx,
}

/// The mirrors of `list` a client of a game server at `server` may use:
/// those that parse ([`parse_mirror`]) and whose address, when written as
/// one, is no nearer the player than the server (host names are held to the
/// same rule when they resolve, by [`FarEnough`]); each other entry comes
/// back as the reason it is skipped.
pub fn usable_mirrors(list: &[String], server: IpAddr) -> (Vec<Url>, Vec<MirrorError>) {
    let floor = Reach::of(server);
    let (mut bases, mut skipped) = (Vec::new(), Vec::new());
    for m in list.iter().take(MAX_ASSET_MIRRORS) {
        let u = match parse_mirror(m) {
            Ok(u) => u,
            Err(e) => {
                skipped.push(e);
                continue;
            }
        };
        // The URL parser reads every spelling of an address host (`0x7f.1`
        // is `127.0.0.1`) as that address.
        let literal = match u.host() {
            Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            _ => None,
        };
        match literal.map(Reach::of) {
            Some(mirror) if !mirror_allowed(floor, mirror) => skipped.push(MirrorError::TooClose {
                url: m.clone(),
                mirror,
                server: floor,
            }),
            _ => bases.push(u),
        }
    }
    (bases, skipped)
}

/// Parses one mirror base URL sent by the server.
pub fn parse_mirror(url: &str) -> Result<Url, MirrorError> {
    let bad = || MirrorError::BadMirror {
        url: url.to_string(),
    };
    let u = Url::parse(url).map_err(|_| bad())?;
    let ok = matches!(u.scheme(), "http" | "https")
        && u.host_str().is_some_and(|h| !h.is_empty())
        && u.path().ends_with('/')
        && u.query().is_none()
        && u.fragment().is_none()
        && u.username().is_empty()
        && u.password().is_none();
    if ok { Ok(u) } else { Err(bad()) }
}

/// The HTTP client for the mirrors `bases` of a game server at `server`:
/// rustls with HTTP/2, the timeouts of `settings`, redirects only within
/// the mirrors' origins, and names resolved by [`FarEnough`].
fn http_client(
    bases: &[Url],
    settings: &MirrorSettings,
    server: IpAddr,
) -> Result<reqwest::Client, MirrorError> {
    let allowed = bases.to_vec();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_MIRROR_REDIRECTS {
            return attempt.error(MirrorError::TooManyRedirects {
                max: MAX_MIRROR_REDIRECTS,
            });
        }
        if shard_protocol::redirect_allowed(&allowed, attempt.url()) {
            attempt.follow()
        } else {
            let to = attempt.url().to_string();
            attempt.error(MirrorError::RedirectRefused { to })
        }
    });
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("shard-client/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(settings.connect_timeout)
        // Bounds the wait for the response head and each body read; a
        // timeout becomes `HeadTimeout` or `Stalled` (`request_error`).
        .read_timeout(settings.read_timeout)
        .redirect(policy)
        .dns_resolver(Arc::new(FarEnough {
            floor: Reach::of(server),
        }))
        .http2_adaptive_window(true);
    if let Some(pem) = &settings.extra_ca_pem {
        let cert = reqwest::Certificate::from_pem(pem).map_err(MirrorError::Ca)?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(MirrorError::Client)
}

impl Mirrors {
    /// The mirrors of `list` that parse (a bad entry is logged and skipped;
    /// `None` when none is usable or mirrors are off). Warns once per plain
    /// `http://` mirror: integrity holds, privacy does not. Outcomes go to
    /// `work` while it is open.
    pub fn new(
        list: &[String],
        settings: &MirrorSettings,
        server: IpAddr,
        runtime: tokio::runtime::Handle,
        work: mpsc::WeakSender<BundleWork>,
        stats: Arc<TransferStats>,
        events: EventTx,
    ) -> Result<Option<Self>, MirrorError> {
        if !settings.enabled || list.is_empty() {
            return Ok(None);
        }
        let (bases, skipped) = usable_mirrors(list, server);
        for e in &skipped {
            warn!(error = %e, "asset mirror skipped");
        }
        for u in bases.iter().filter(|u| u.scheme() == "http") {
            warn!(mirror = %u, "plain http:// asset mirror: bundles are still checked against their SHA-256, but the network can see which ones this player fetches");
        }
        if bases.is_empty() {
            return Ok(None);
        }
        let client = http_client(&bases, settings, server)?;
        info!(mirrors = bases.len(), "asset mirrors in use");
        Ok(Some(Self {
            client,
            bases,
            down: DownList::default(),
            gate: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings: settings.clone(),
            runtime,
            work,
            stats,
            events,
        }))
    }

    /// Starts fetching `job` (at most `concurrency` run at once); the
    /// outcome arrives on the bundle queue as [`BundleWork::Mirror`].
    /// Dropping the returned handle ends the download (the bundle is no
    /// longer wanted); what it wrote stays in `partial/` to resume.
    pub fn spawn(&self, job: MirrorJob) -> MirrorDownload {
        let (handle, cancelled) = tokio::sync::oneshot::channel::<()>();
        let fetch = Fetch {
            client: self.client.clone(),
            bases: self.bases.clone(),
            down: self.down.clone(),
            settings: self.settings.clone(),
            stats: self.stats.clone(),
            events: self.events.clone(),
        };
        let gate = self.gate.clone();
        let Some(work) = self.work.upgrade() else {
            return MirrorDownload { _cancel: handle };
        };
        let link = self.events.link().clone();
        // The download's lines carry the session's span, like the rest of its lines.
        let span = tracing::Span::current();
        let task = async move {
            let fetched = async {
                match gate.acquire_owned().await {
                    Ok(_permit) => fetch.run(&job).await,
                    Err(_) => MirrorOutcome::Failed {
                        reason: "mirror downloads are shut down".into(),
                    },
                }
            };
            // A download ends with its session: its partial file is
            // released for the next session to resume, and the session's
            // close does not wait for a slow mirror.
            let outcome = tokio::select! {
                outcome = fetched => outcome,
                () = link.ended() => return,
                _ = cancelled => return,
            };
            let _ = work
                .send(BundleWork::Mirror {
                    plugin_id: job.plugin_id,
                    sha256: job.sha256,
                    outcome,
                })
                .await;
        };
        self.runtime.spawn(task.instrument(span));
        MirrorDownload { _cancel: handle }
    }
}

/// A running mirror download; dropping it ends the download (see
/// [`Mirrors::spawn`]).
#[derive(Debug)]
pub struct MirrorDownload {
    /// Dropped with the handle, which wakes the download's task to end it.
    _cancel: tokio::sync::oneshot::Sender<()>,
}

/// What one download task needs.
struct Fetch {
    client: reqwest::Client,
    bases: Vec<Url>,
    down: DownList,
    settings: MirrorSettings,
    stats: Arc<TransferStats>,
    events: EventTx,
}

impl Fetch {
    /// Tries each mirror in order until one delivers the verified bundle.
    async fn run(&self, job: &MirrorJob) -> MirrorOutcome {
        let file = shard_protocol::bundle_file_name(&job.sha256);
        let mut reasons = Vec::new();
        for base in &self.bases {
            if let Some(why) = self.down_since(base) {
                reasons.push(format!(
                    "{base}: skipped, it failed earlier this session ({why})"
                ));
                continue;
            }
            let url = match base.join(&file) {
                Ok(u) => u,
                Err(_) => {
                    reasons.push(format!("cannot form the bundle URL under {base}"));
                    continue;
                }
            };
            match self.one(&url, job).await {
                Ok(bundle) => {
                    return MirrorOutcome::Fetched {
                        url: url.to_string(),
                        bundle,
                    };
                }
                Err(MirrorError::Partial(CacheError::AlreadyStored { .. })) => {
                    return MirrorOutcome::Stored;
                }
                Err(e) => {
                    warn!(mirror = %base, plugin_id = job.plugin_id, error = %e, "asset mirror failed");
                    if e.is_mirror_wide()
                        && let Ok(mut down) = self.down.lock()
                    {
                        down.insert(base.clone(), (Instant::now(), e.to_string()));
                    }
                    reasons.push(e.to_string());
                }
            }
        }
        MirrorOutcome::Failed {
            reason: reasons.join("; "),
        }
    }

    /// Why `base` is skipped, if it failed as a whole within
    /// [`tuning::MIRROR_DOWN_FOR`]; an older failure is forgotten.
    fn down_since(&self, base: &Url) -> Option<String> {
        let mut down = self.down.lock().ok()?;
        match down.get(base) {
            Some((at, why)) if at.elapsed() < tuning::MIRROR_DOWN_FOR => Some(why.clone()),
            Some(_) => {
                down.remove(base);
                None
            }
            None => None,
        }
    }

    /// One download from one mirror, resuming what `partial/` holds. The
    /// bytes go through the cache's [`PartialFile`], which hashes them as it
    /// writes (the same writer the QUIC stream uses), so a download is
    /// hashed once and moved into the store here.
    async fn one(&self, url: &Url, job: &MirrorJob) -> Result<VerifiedBundle, MirrorError> {
        let u = url.to_string();
        let (cache, sha) = (job.cache.clone(), job.sha256);
        // Hashes what an earlier try left; the receiver discarded a file
        // longer than announced before the job started (`resume_offset`).
        let mut partial = blocking(move || cache.open_partial(&sha)).await?;
        let mut have = partial.len();
        if have > job.len {
            (partial, _) = Piece::new(0).write(partial).await?;
            have = 0;
        }
        if have == job.len {
            // A complete file from an earlier try that was never moved into the store.
            return self.finish(&u, job, partial).await;
        }
        let mut req = self.client.get(url.clone());
        if have > 0 {
            req = req.header(RANGE, format!("bytes={have}-"));
        }
        let mut resp = req
            .send()
            .await
            .map_err(|source| self.request_error(&u, source, Phase::Head))?;
        let status = resp.status();
        let restart = match status {
            // Some servers answer 206 even when the whole file was asked
            // for; its range must still start where this download is.
            StatusCode::PARTIAL_CONTENT => {
                let range = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if !range_starts_at(&range, have, job.len) {
                    return Err(MirrorError::BadRange {
                        url: u,
                        offset: have,
                        range,
                    });
                }
                debug!(url = %u, offset = have, "resuming a mirror download");
                false
            }
            StatusCode::OK => true,
            _ => return Err(MirrorError::Status { url: u, status }),
        };
        if restart && have > 0 {
            debug!(url = %u, "the mirror ignored the range; starting over");
            have = 0;
        }
        let head = resp.headers();
        if let Err(problem) = shard_protocol::check_mirror_answer(
            head.get(CONTENT_ENCODING).map(|v| v.as_bytes()),
            head.get(CONTENT_TYPE).map(|v| v.as_bytes()),
            resp.content_length().map(|n| have.saturating_add(n)),
            job.len,
        ) {
            return Err(MirrorError::Answer { url: u, problem });
        }
        // Bytes gather in `piece` and go to the partial file in few large
        // writes (each a hop to the blocking pool); what is gathered when an
        // attempt fails is written first, so a resume keeps it.
        let mut piece = Piece::new(have);
        let started = Instant::now();
        let grace = Duration::from_secs(MIRROR_PROGRESS_GRACE_SECS);
        let mut got: u64 = 0;
        loop {
            // The client's read timeout bounds each wait here (see `http_client`).
            let chunk = match resp.chunk().await {
                Err(source) => {
                    piece.write(partial).await?;
                    return Err(self.request_error(&u, source, Phase::Body));
                }
                Ok(None) => break,
                Ok(Some(c)) => c,
            };
            let n = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            if have.saturating_add(n) > job.len {
                drop(partial);
                let cache = job.cache.clone();
                let _ = blocking(move || cache.discard_partial(&sha)).await;
                return Err(MirrorError::TooLong {
                    url: u,
                    expected: job.len,
                });
            }
            piece.bytes.extend_from_slice(&chunk);
            have += n;
            got += n;
            if piece.bytes.len() >= tuning::MIRROR_WRITE_BUFFER {
                (partial, piece) = piece.write(partial).await?;
            }
            self.stats.mirror_bytes.fetch_add(n, Ordering::Relaxed);
            if have / PROGRESS_EVERY != (have - n) / PROGRESS_EVERY || have == job.len {
                self.events
                    .send(ClientEvent::BundleProgress {
                        plugin_id: job.plugin_id,
                        name: job.name.clone(),
                        received: have,
                        total: job.len,
                    })
                    .await;
            }
            let elapsed = started.elapsed();
            if elapsed > grace
                && u128::from(got) * 1000
                    < u128::from(self.settings.min_bytes_per_sec) * elapsed.as_millis()
            {
                piece.write(partial).await?;
                return Err(MirrorError::TooSlow {
                    url: u,
                    got,
                    millis: elapsed.as_millis(),
                    min: self.settings.min_bytes_per_sec,
                });
            }
        }
        (partial, _) = piece.write(partial).await?;
        if have < job.len {
            return Err(MirrorError::Truncated {
                url: u,
                got: have,
                expected: job.len,
            });
        }
        self.finish(&u, job, partial).await
    }

    /// The error for a failed request or body read at `url`: a timeout
    /// says which one fired and after how long (reqwest's own message,
    /// "error decoding response body: operation timed out", names neither).
    fn request_error(&self, url: &str, source: reqwest::Error, phase: Phase) -> MirrorError {
        let url = url.to_string();
        if !source.is_timeout() {
            // reqwest names the URL in its own message too; once is enough.
            return MirrorError::Request {
                url,
                source: source.without_url(),
            };
        }
        let (connect, read) = (
            self.settings.connect_timeout.as_secs(),
            self.settings.read_timeout.as_secs(),
        );
        match phase {
            Phase::Head if source.is_connect() => {
                MirrorError::ConnectTimeout { url, secs: connect }
            }
            Phase::Head => MirrorError::HeadTimeout { url, secs: read },
            Phase::Body => MirrorError::Stalled { url, secs: read },
        }
    }

    /// Compares the finished download's hash with the announced one and
    /// moves it into the store; a mismatch discards the partial file.
    async fn finish(
        &self,
        u: &str,
        job: &MirrorJob,
        partial: PartialFile,
    ) -> Result<VerifiedBundle, MirrorError> {
        let cache = job.cache.clone();
        match blocking(move || partial.finish(&cache)).await {
            Err(MirrorError::Partial(CacheError::Bundle(BundleError::HashMismatch {
                expected,
                actual,
            }))) => Err(MirrorError::HashMismatch {
                url: u.to_string(),
                expected,
                actual,
            }),
            other => other,
        }
    }
}

/// Bytes gathered for one write to the partial file, at `at`.
struct Piece {
    at: u64,
    bytes: Vec<u8>,
}

impl Piece {
    fn new(at: u64) -> Self {
        Self {
            at,
            bytes: Vec::with_capacity(tuning::MIRROR_WRITE_BUFFER),
        }
    }

    /// Writes the gathered bytes (an offset below the file's length cuts it
    /// there first) on the blocking pool; returns the file and an empty
    /// piece that follows them.
    async fn write(self, mut partial: PartialFile) -> Result<(PartialFile, Piece), MirrorError> {
        let Piece { at, mut bytes } = self;
        blocking(move || {
            let end = partial.write_at(at, &bytes)?;
            bytes.clear();
            Ok((partial, Piece { at: end, bytes }))
        })
        .await
    }
}

/// Runs cache file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, MirrorError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(MirrorError::Partial),
        Err(e) => Err(MirrorError::Partial(CacheError::Io {
            action: "writing",
            path: PathBuf::from(shard_cache::PARTIAL_DIR),
            source: std::io::Error::other(e.to_string()),
        })),
    }
}

/// Whether a `Content-Range: bytes START-END/TOTAL` starts where we resumed
/// and ends within the announced length.
fn range_starts_at(range: &str, offset: u64, len: u64) -> bool {
    let Some(spec) = range.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((span, total)) = spec.split_once('/') else {
        return false;
    };
    let Some((start, end)) = span.split_once('-') else {
        return false;
    };
    let (Ok(start), Ok(end)) = (start.parse::<u64>(), end.parse::<u64>()) else {
        return false;
    };
    let total_ok = total == "*" || total.parse::<u64>().is_ok_and(|t| t == len);
    start == offset && end < len && total_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mirror client itself resolves through [`FarEnough`]: for a game
    /// server on the internet a name for this machine is refused before any
    /// connection; for a server on this machine it is fetched.
    #[tokio::test]
    async fn the_mirror_client_refuses_a_name_for_this_machine_for_a_server_on_the_internet() {
        use std::sync::atomic::AtomicUsize;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut head = [0u8; 1024];
                let _ = s.read(&mut head).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            }
        });
        let base: Url = format!("http://localhost:{port}/").parse().unwrap();
        let url = base.join("x.bundle").unwrap();
        let settings = MirrorSettings::default();
        let bases = std::slice::from_ref(&base);

        let far = http_client(bases, &settings, "198.51.100.20".parse().unwrap()).unwrap();
        let err = far.get(url.clone()).send().await.unwrap_err();
        let text = shard_protocol::error_chain(&err);
        assert!(
            text.contains("closer to the player than the game server"),
            "{text}"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "the refused mirror was contacted"
        );

        let near = http_client(bases, &settings, "127.0.0.1".parse().unwrap()).unwrap();
        let body = near.get(url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "ok");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_server_on_the_internet_gets_no_mirror_on_the_players_machine_or_network() {
        let list: Vec<String> = [
            "http://127.0.0.1:8080/",
            "http://[::1]/x/",
            "http://0x7f.1/",
            "http://192.168.1.1/",
            "https://100.100.1.1/",
            "https://cdn.example.net/shard/",
            "http://203.0.113.9/",
        ]
        .map(String::from)
        .to_vec();
        let names = |v: &[Url]| v.iter().map(Url::to_string).collect::<Vec<_>>();

        let (bases, skipped) = usable_mirrors(&list, "198.51.100.20".parse().unwrap());
        assert_eq!(
            names(&bases),
            ["https://cdn.example.net/shard/", "http://203.0.113.9/"]
        );
        assert_eq!(skipped.len(), 5, "{skipped:?}");
        assert!(
            skipped
                .iter()
                .all(|e| matches!(e, MirrorError::TooClose { .. }))
        );
        let text = skipped[0].to_string();
        assert!(
            text.contains("127.0.0.1:8080") && text.contains("the player's own machine"),
            "{text}"
        );
        assert!(skipped[3].to_string().contains("a private network"));

        // A server on the player's network may also list mirrors on it.
        let (bases, _) = usable_mirrors(&list, "192.168.1.10".parse().unwrap());
        assert_eq!(
            names(&bases),
            [
                "http://192.168.1.1/",
                "https://100.100.1.1/",
                "https://cdn.example.net/shard/",
                "http://203.0.113.9/"
            ]
        );
        // A server on the player's own machine (a modder's) may list any.
        let (bases, skipped) = usable_mirrors(&list, "::1".parse().unwrap());
        assert_eq!(bases.len(), 7, "{skipped:?}");
    }

    #[test]
    fn mirror_tuning_applies_what_is_set_and_refuses_what_is_out_of_range() {
        let base = MirrorSettings::default();
        assert_eq!(MirrorTuning::default().apply(base.clone()).unwrap(), base);
        let t = MirrorTuning {
            connect_timeout_secs: Some(2),
            read_timeout_secs: Some(30),
            min_kib_per_sec: Some(8),
            concurrency: Some(1),
        };
        let s = t.apply(base.clone()).unwrap();
        assert_eq!(s.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.read_timeout, Duration::from_secs(30));
        assert_eq!(s.min_bytes_per_sec, 8 * 1024);
        assert_eq!(s.concurrency, 1);
        for bad in [
            MirrorTuning {
                concurrency: Some(0),
                ..MirrorTuning::default()
            },
            MirrorTuning {
                read_timeout_secs: Some(shard_protocol::limits::MAX_MIRROR_TIMEOUT_SECS + 1),
                ..MirrorTuning::default()
            },
            MirrorTuning {
                min_kib_per_sec: Some(0),
                ..MirrorTuning::default()
            },
        ] {
            let err = bad.apply(base.clone()).unwrap_err().to_string();
            assert!(err.contains("is outside 1..="), "{err}");
        }
    }

    #[test]
    fn only_failures_of_the_whole_mirror_make_later_downloads_skip_it() {
        let url = || "http://m/x.bundle".to_string();
        let status = |code: u16| MirrorError::Status {
            url: url(),
            status: StatusCode::from_u16(code).unwrap(),
        };
        assert!(status(503).is_mirror_wide());
        assert!(!status(404).is_mirror_wide(), "one missing file");
        let slow = MirrorError::TooSlow {
            url: url(),
            got: 1,
            millis: 1,
            min: 2,
        };
        assert!(slow.is_mirror_wide());
        let stalled = MirrorError::Stalled {
            url: url(),
            secs: 1,
        };
        assert!(stalled.is_mirror_wide());
        let unreachable = MirrorError::ConnectTimeout {
            url: url(),
            secs: 5,
        };
        assert!(unreachable.is_mirror_wide());
        let mute = MirrorError::HeadTimeout {
            url: url(),
            secs: 10,
        };
        assert!(mute.is_mirror_wide());
        let wrong = MirrorError::HashMismatch {
            url: url(),
            expected: "a".into(),
            actual: "b".into(),
        };
        assert!(!wrong.is_mirror_wide(), "one stale file");
        let short = MirrorError::Answer {
            url: url(),
            problem: shard_protocol::MirrorAnswerProblem::WrongLength {
                got: 1,
                expected: 2,
                web_page: false,
            },
        };
        assert!(!short.is_mirror_wide());
    }

    #[test]
    fn mirror_urls_must_be_http_bases() {
        assert!(parse_mirror("https://cdn.example/shard/").is_ok());
        assert!(parse_mirror("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "ftp://cdn.example/",
            "https://cdn.example/shard",
            "file:///etc/",
            "https://u:p@cdn.example/",
            "https://cdn.example/?x=/",
            "/relative/",
        ] {
            assert!(parse_mirror(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_range_must_start_at_the_resume_point() {
        assert!(range_starts_at("bytes 100-199/200", 100, 200));
        assert!(range_starts_at("bytes 100-199/*", 100, 200));
        assert!(!range_starts_at("bytes 0-199/200", 100, 200));
        assert!(!range_starts_at("bytes 100-299/300", 100, 200));
        assert!(!range_starts_at("", 100, 200));
        assert!(!range_starts_at("bytes 100-abc/200", 100, 200));
    }
}
