//! The check of `asset_mirrors`: the server asks each mirror for the head
//! of every current bundle (`<mirror><sha256>.bundle`) and reports, per
//! mirror, that it serves them all, which it does not and why, or that it
//! cannot be reached. A mirror that lacks files, answers with another
//! length, or cannot be reached costs every player a fallback to this
//! server; the operator hears it at start, or from `shard-server
//! check-mirrors` after an upload, not from players.
//!
//! Each answer is judged by the rule players use
//! (`shard_protocol::check_mirror_answer`). A host that refuses `HEAD`
//! (405, 501) is asked for each file's first byte instead, as a `GET` like
//! the players'.
//!
//! At start it runs in the background and only logs: the server never
//! waits for it. A mirror behind a private CA is trusted through
//! `mirror_ca`, the CA players give `--mirror-ca`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use tokio::sync::Semaphore;
use tracing::{info, instrument, warn};

use shard_protocol::limits::{MAX_MIRROR_REDIRECTS, MAX_REASON};

use crate::admin::snapshot::Snapshot;
use crate::publish::PublishError;
use crate::tuning::{
    MIRROR_CHECK_ANSWER, MIRROR_CHECK_CONCURRENCY, MIRROR_CHECK_CONNECT, MIRROR_CHECK_LISTED,
};

/// The mirrors to check and what to trust when checking them: the server
/// reads it once at start (a bad `mirror_ca` stops the start), for the
/// start-up check and the console's.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `asset_mirrors`, normalised.
    pub mirrors: Vec<String>,
    /// The PEM of `mirror_ca`, trusted besides the public web roots.
    pub extra_ca: Option<Vec<u8>>,
    /// The last finished check of these mirrors, shared by every clone:
    /// the start-up check and the console's record it, the Server page
    /// shows it.
    pub last: LastCheck,
}

/// A finished check of the mirrors, as the Server page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSummary {
    /// When it finished, UTC (`YYYY-MM-DD HH:MM:SS`).
    pub at: String,
    /// One row per mirror, in the order listed: the mirror and what it serves.
    pub rows: Vec<(String, String)>,
}

/// Where the last [`CheckSummary`] of one server's mirrors is kept (a
/// shared handle: clones see the same one).
#[derive(Debug, Clone, Default)]
pub struct LastCheck(Arc<Mutex<Option<CheckSummary>>>);

impl LastCheck {
    /// Keeps the summary of `reports`, `of` bundles expected.
    fn record(&self, reports: &[MirrorCheck], of: usize) {
        let rows = reports
            .iter()
            .map(|r| (r.mirror.clone(), r.summary(of)))
            .collect();
        let fmt =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let at = time::OffsetDateTime::now_utc()
            .format(&fmt)
            .unwrap_or_default();
        if let Ok(mut last) = self.0.lock() {
            *last = Some(CheckSummary { at, rows });
        }
    }

    /// The last finished check, if one has finished.
    pub fn get(&self) -> Option<CheckSummary> {
        self.0.lock().ok()?.clone()
    }
}

impl Target {
    /// The mirrors of `cfg` and its `mirror_ca`, read and checked.
    pub fn of(
        cfg: &crate::config::ServerConfig,
    ) -> Result<Self, shard_protocol::mirror::MirrorCaError> {
        let extra_ca = cfg
            .mirror_ca
            .as_deref()
            .map(shard_protocol::mirror::read_mirror_ca)
            .transpose()?;
        Ok(Self {
            mirrors: cfg.asset_mirrors.clone(),
            extra_ca,
            last: LastCheck::default(),
        })
    }
}

/// A bundle the mirrors should serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The plugin it belongs to.
    pub plugin: String,
    /// Its file name on a mirror, `<sha256 hex>.bundle`.
    pub file: String,
    /// Its packed length, which the mirror's `Content-Length` must match.
    pub len: u64,
}

/// What one mirror serves of the expected bundles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorCheck {
    /// The mirror's base URL.
    pub mirror: String,
    /// Bundles it serves with the right length.
    pub served: usize,
    /// One line per bundle it does not serve: plugin, file and why.
    pub problems: Vec<String>,
    /// Why it could not be reached (no connection, or no answer in time):
    /// the first such failure ends its check, so a dead mirror costs one
    /// timeout per request in flight, not one per bundle.
    pub unreachable: Option<String>,
}

impl MirrorCheck {
    /// The report of `mirror` before any answer.
    fn new(mirror: &str) -> Self {
        Self {
            mirror: mirror.to_owned(),
            served: 0,
            problems: Vec::new(),
            unreachable: None,
        }
    }

    /// How many of the `of` expected bundles it does not serve (all of
    /// them when it could not be reached).
    pub fn missing(&self, of: usize) -> usize {
        if self.unreachable.is_some() {
            of
        } else {
            self.problems.len()
        }
    }

    /// One line for a person, `of` bundles expected: `serves all 3
    /// bundle(s)`, `does not serve 1 of 3: <file> (<plugin>): why` with at
    /// most [`MIRROR_CHECK_LISTED`] files named, or `cannot be reached: why`.
    pub fn summary(&self, of: usize) -> String {
        if of == 0 {
            return "nothing to check: no plugin has a bundle".into();
        }
        if let Some(why) = &self.unreachable {
            return format!("cannot be reached: {why}");
        }
        let n = self.problems.len();
        if n == 0 {
            return format!("serves all {of} bundle(s)");
        }
        let (listed, more) = self.listed();
        let more = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        format!("does not serve {n} of {of}: {listed}{more}")
    }

    /// The first [`MIRROR_CHECK_LISTED`] problems, joined by `; `, and how
    /// many more there are.
    fn listed(&self) -> (String, usize) {
        let shown = self.problems.len().min(MIRROR_CHECK_LISTED);
        (
            self.problems[..shown].join("; "),
            self.problems.len() - shown,
        )
    }
}

/// How one request of the check ended.
enum Outcome {
    Served,
    Problem(String),
    Unreachable(String),
    /// Not asked: the mirror was already found unreachable.
    Skipped,
}

/// The bundles of the plugins in `snap` (one entry per file: twins share one).
pub fn expected(snap: &Snapshot) -> Vec<Expected> {
    let mut out = Vec::new();
    for p in &snap.plugins {
        if let (Some(file), Some(len)) = (&p.bundle_file, p.bundle_bytes) {
            add(&mut out, &p.name, file, len);
        }
    }
    out
}

/// The bundles of the plugins in the folder `plugins`, built as a load
/// builds them (one entry per file), and the plugins whose bundle cannot be
/// built: what `shard-server check-mirrors` looks for without a running server.
pub fn expected_in(plugins: &Path) -> Result<(Vec<Expected>, Vec<PublishError>), PublishError> {
    let (mut out, mut failed) = (Vec::new(), Vec::new());
    for (name, built) in crate::publish::plugin_bundles(plugins)? {
        match built {
            Ok(b) => {
                let file = shard_protocol::bundle_file_name(&b.sha256);
                add(&mut out, &name, &file, b.bytes.len() as u64);
            }
            Err(e) => failed.push(e),
        }
    }
    Ok((out, failed))
}

/// Adds a bundle file to `out` unless a twin plugin's bundle already named it.
fn add(out: &mut Vec<Expected>, plugin: &str, file: &str, len: u64) {
    if out.iter().all(|e| e.file != file) {
        out.push(Expected {
            plugin: plugin.to_owned(),
            file: file.to_owned(),
            len,
        });
    }
}

/// Asks every mirror for the head of every expected bundle, at most
/// [`MIRROR_CHECK_CONCURRENCY`] requests at once; one report per mirror,
/// in the order listed.
pub async fn check(target: &Target, expected: &[Expected]) -> Vec<MirrorCheck> {
    let mirrors = &target.mirrors;
    // Redirects are followed as players follow them: within the mirror
    // list, at most `MAX_MIRROR_REDIRECTS` in a row.
    let bases: Vec<url::Url> = mirrors
        .iter()
        .filter_map(|m| url::Url::parse(m).ok())
        .collect();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_MIRROR_REDIRECTS {
            let why = format!("more than {MAX_MIRROR_REDIRECTS} redirects");
            attempt.error(why)
        } else if shard_protocol::redirect_allowed(&bases, attempt.url()) {
            attempt.follow()
        } else {
            let why = format!(
                "redirects to {}, a host not on the mirror list, which players refuse",
                attempt.url()
            );
            attempt.error(why)
        }
    });
    let mut builder = reqwest::Client::builder()
        .connect_timeout(MIRROR_CHECK_CONNECT)
        .read_timeout(MIRROR_CHECK_ANSWER)
        .redirect(policy);
    if let Some(pem) = &target.extra_ca {
        match reqwest::Certificate::from_pem(pem) {
            Ok(cert) => builder = builder.add_root_certificate(cert),
            Err(e) => return all_unreachable(mirrors, &format!("mirror_ca: {e}")),
        }
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => return all_unreachable(mirrors, &format!("cannot set up an HTTP client: {e}")),
    };
    let gate = Arc::new(Semaphore::new(MIRROR_CHECK_CONCURRENCY));
    let dead: Arc<Vec<AtomicBool>> =
        Arc::new(mirrors.iter().map(|_| AtomicBool::new(false)).collect());
    let mut tasks = tokio::task::JoinSet::new();
    for (m, mirror) in mirrors.iter().enumerate() {
        for e in expected {
            let (client, gate, dead, mirror, e) = (
                client.clone(),
                gate.clone(),
                dead.clone(),
                mirror.clone(),
                e.clone(),
            );
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let Some(dead) = dead.get(m) else {
                    return (m, Outcome::Skipped);
                };
                if dead.load(Ordering::Relaxed) {
                    return (m, Outcome::Skipped);
                }
                let outcome = ask(&client, &mirror, &e).await;
                if let Outcome::Unreachable(_) = outcome {
                    dead.store(true, Ordering::Relaxed);
                }
                (m, outcome)
            });
        }
    }
    let mut reports: Vec<MirrorCheck> = mirrors.iter().map(|m| MirrorCheck::new(m)).collect();
    while let Some(done) = tasks.join_next().await {
        let Ok((m, outcome)) = done else { continue };
        let Some(r) = reports.get_mut(m) else {
            continue;
        };
        match outcome {
            Outcome::Served => r.served += 1,
            Outcome::Problem(p) => r.problems.push(p),
            Outcome::Unreachable(why) => {
                r.unreachable.get_or_insert(why);
            }
            Outcome::Skipped => {}
        }
    }
    for r in &mut reports {
        r.problems.sort();
    }
    reports
}

/// Every mirror of `mirrors` reported unreachable for `why` (the check
/// could not start).
fn all_unreachable(mirrors: &[String], why: &str) -> Vec<MirrorCheck> {
    mirrors
        .iter()
        .map(|m| MirrorCheck {
            unreachable: Some(why.to_owned()),
            ..MirrorCheck::new(m)
        })
        .collect()
}

/// Asks `mirror` for the head of `e`'s file and judges the answer as
/// players judge it (the body, if any, is left unread).
async fn ask(client: &reqwest::Client, mirror: &str, e: &Expected) -> Outcome {
    let url = format!("{mirror}{}", e.file);
    // A mirror's words (a header, a redirect target) are capped like every
    // reason shown to a person.
    let capped = |mut why: String| {
        shard_protocol::clip_utf8(&mut why, MAX_REASON);
        why
    };
    let named = |why: String| Outcome::Problem(capped(format!("{} ({}): {why}", e.file, e.plugin)));
    let mut answer = client.head(&url).send().await;
    // A host that refuses HEAD may still serve the GET players send: ask
    // for the file's first byte instead.
    if let Ok(r) = &answer
        && matches!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
        )
    {
        answer = client.get(&url).header(RANGE, "bytes=0-0").send().await;
    }
    let resp = match answer {
        Ok(resp) => resp,
        Err(err) if err.is_connect() || err.is_timeout() => {
            let untrusted = certificate_refused(&err);
            let mut why = shard_protocol::error_chain(&err.without_url());
            if untrusted {
                why.push_str(" (if players trust its CA with --mirror-ca, give it here too: `mirror_ca` in server.toml, or `check-mirrors --mirror-ca`)");
            }
            return Outcome::Unreachable(capped(why));
        }
        Err(err) => return named(shard_protocol::error_chain(&err.without_url())),
    };
    let status = resp.status();
    if !matches!(status, StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
        return named(shard_protocol::status_reason(
            status.as_u16(),
            status.canonical_reason(),
        ));
    }
    let head = resp.headers();
    match shard_protocol::check_mirror_answer(
        head.get(CONTENT_ENCODING).map(|v| v.as_bytes()),
        head.get(CONTENT_TYPE).map(|v| v.as_bytes()),
        whole_length(&resp),
        e.len,
    ) {
        Ok(()) => Outcome::Served,
        Err(problem) => named(problem.to_string()),
    }
}

/// Whether `err` failed on the mirror's TLS certificate (rustls refused
/// it), as with a private CA not given to the check. rustls's error sits
/// inside `io::Error`s, whose `source` skips what they wrap, so an
/// `io::Error` is looked into rather than past.
fn certificate_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_))
        ) {
            return true;
        }
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

/// The length of the whole file an answer declares: a 206's
/// `Content-Range` total, else its `Content-Length` header (read as sent,
/// since `content_length()` is the body's, empty for a head).
fn whole_length(resp: &reqwest::Response) -> Option<u64> {
    let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
    let n = if resp.status() == StatusCode::PARTIAL_CONTENT {
        header(CONTENT_RANGE)?.rsplit_once('/')?.1
    } else {
        header(CONTENT_LENGTH)?
    };
    n.trim().parse().ok()
}

/// Runs [`check`] on the bundles of `snap` and logs one line per mirror.
#[instrument(level = "info", name = "mirror_check", skip_all)]
pub async fn check_and_log(target: Target, snap: Arc<Snapshot>) {
    if target.mirrors.is_empty() {
        return;
    }
    let expected = expected(&snap);
    // With no bundle there is nothing to ask for; the mirrors still show
    // as checked (every report empty), so a check asked for does not look
    // as if it never ran.
    let reports = check(&target, &expected).await;
    crate::admin::metrics::mirror_missing(&reports, expected.len());
    target.last.record(&reports, expected.len());
    for r in reports {
        if let Some(why) = &r.unreachable {
            warn!(
                mirror = %r.mirror,
                error = %why,
                served = r.served,
                of = expected.len(),
                "the asset mirror cannot be reached; players fetch its bundles from this server instead"
            );
            continue;
        }
        if r.problems.is_empty() {
            info!(mirror = %r.mirror, bundles = r.served, "the asset mirror serves every bundle");
            continue;
        }
        let (listed, more) = r.listed();
        warn!(
            mirror = %r.mirror,
            missing = r.problems.len(),
            of = expected.len(),
            problems = %listed,
            more,
            "the asset mirror does not serve every bundle; players fetch those from this server instead: run `shard-server publish-bundles` and upload the folder"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::snapshot::PluginRow;

    fn row(name: &str, bundle: Option<(&str, u64)>) -> PluginRow {
        PluginRow {
            name: name.into(),
            state: "loaded",
            version: "1".into(),
            hash: String::new(),
            errors: 0,
            restarts: 0,
            worker_pid: None,
            last_error: None,
            bundle_bytes: bundle.map(|(_, len)| len),
            bundle_file: bundle.map(|(file, _)| file.into()),
            rpc_names: Vec::new(),
        }
    }

    #[test]
    fn each_bundle_file_is_expected_once_and_plugins_without_one_not_at_all() {
        let snap = Snapshot {
            plugins: vec![
                row("twin_a", Some(("aa.bundle", 10))),
                row("twin_b", Some(("aa.bundle", 10))),
                row("solo", Some(("bb.bundle", 20))),
                row("starting", None),
            ],
            ..Snapshot::default()
        };
        assert_eq!(
            expected(&snap),
            [
                Expected {
                    plugin: "twin_a".into(),
                    file: "aa.bundle".into(),
                    len: 10
                },
                Expected {
                    plugin: "solo".into(),
                    file: "bb.bundle".into(),
                    len: 20
                },
            ]
        );
    }

    #[test]
    fn a_report_reads_as_one_line_naming_at_most_five_files() {
        let mut r = MirrorCheck::new("https://m/");
        r.served = 1;
        assert_eq!(r.summary(1), "serves all 1 bundle(s)");
        r.problems = (0..7).map(|i| format!("f{i}: 404")).collect();
        assert_eq!(r.missing(8), 7);
        assert_eq!(
            r.summary(8),
            "does not serve 7 of 8: f0: 404; f1: 404; f2: 404; f3: 404; f4: 404; and 2 more"
        );
        r.unreachable = Some("refused".into());
        assert_eq!(r.missing(8), 8);
        assert_eq!(r.summary(8), "cannot be reached: refused");
        assert_eq!(r.summary(0), "nothing to check: no plugin has a bundle");
    }

    /// A mirror answering every request with `head` (then closing).
    async fn answering(head: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let head = head.clone();
                tokio::spawn(async move {
                    let mut req = [0u8; 4096];
                    let _ = s.read(&mut req).await;
                    let _ = s.write_all(head.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/")
    }

    /// What a mirror says is capped like every reason shown to a person:
    /// a 4 KB `Content-Encoding` still yields one short line that says what
    /// is wrong.
    #[tokio::test]
    async fn a_mirror_cannot_flood_the_report_with_a_long_header() {
        let long = "x".repeat(4096);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Encoding: {long}\r\nConnection: close\r\n\r\n"
        );
        let mirror = answering(head).await;
        let expected = [Expected {
            plugin: "p".into(),
            file: "aa.bundle".into(),
            len: 10,
        }];
        let target = Target {
            mirrors: vec![mirror],
            ..Target::default()
        };
        let reports = check(&target, &expected).await;
        let problem = &reports[0].problems[0];
        assert!(problem.len() <= MAX_REASON, "{}", problem.len());
        assert!(
            problem.starts_with("aa.bundle (p): the mirror sent the file compressed"),
            "{problem}"
        );
        assert_eq!(reports[0].served, 0);
    }
}
