//! Bundles from HTTP(S) mirrors: a real server announcing `asset_mirrors`,
//! real clients (in process and the headless binary), and a real nginx on
//! loopback serving what `publish-bundles` wrote. Every failure of a mirror
//! (down, corrupted, truncated, another bundle's bytes, redirected off the
//! list, an untrusted certificate, a head trickled byte by byte) still
//! installs the bundle over QUIC and says why.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shard_client::{ClientEvent, ContentSettings, MirrorSettings};
use shard_e2e::nginx::{Nginx, NginxOptions};
use shard_e2e::{TestPlayer, TestServer, blob_archive, noise, workspace_bin};

const BIG_PY: &str = "__plugin__ = {\"name\": \"big\", \"version\": \"1\"}\n";
const OTHER_PY: &str = "__plugin__ = {\"name\": \"other\", \"version\": \"1\"}\n";

/// Size of the incompressible asset in each test bundle: several QUIC
/// chunks, so a half-done download is a real resume.
const ASSET: usize = 256 * 1024;

/// Writes plugin `name` whose bundle is one archive of noise from `seed`.
fn write_plugin(dir: &Path, name: &str, py: &str, seed: u64) {
    std::fs::create_dir_all(dir.join(name).join("assets")).unwrap();
    std::fs::write(dir.join(format!("{name}.py")), py).unwrap();
    std::fs::write(
        dir.join(name).join("assets").join("blob.archive"),
        blob_archive(&noise(ASSET, seed)),
    )
    .unwrap();
}

/// The packed bundle of plugin `name`, as the server builds it.
fn packed(plugins: &Path, name: &str) -> shard_cache::PackedBundle {
    shard_cache::pack_plugin_dir(&plugins.join(name)).unwrap()
}

use shard_protocol::bundle_file_name as file_name;

fn hex(sha: &[u8; 32]) -> String {
    hex::encode(sha)
}

/// Why the client fell back from the mirrors for plugin `big`.
fn fallback_reason(c: &shard_e2e::Client) -> &str {
    c.seen
        .iter()
        .find_map(|e| match e {
            ClientEvent::MirrorFallback { name, reason, .. } if name == "big" => {
                Some(reason.as_str())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no mirror_fallback for big: {:?}", c.seen))
}

/// Leaves `bytes` in `player`'s `partial/` for `sha`, as a cut download
/// does, and returns the partial file's path (the cache names it).
fn seed_partial(cache_dir: &Path, sha: &[u8; 32], bytes: &[u8]) -> PathBuf {
    let cache = shard_cache::RuntimeCache::open(cache_dir).unwrap();
    cache.append_partial(sha, 0, bytes).unwrap();
    cache.partial_path(sha)
}

/// Where `ev` says a bundle was installed from ("mirror", "server",
/// "cache"), if it is an install.
fn source_of(ev: &ClientEvent) -> Option<&str> {
    match ev {
        ClientEvent::BundleInstalled { source, .. } => Some(source),
        _ => None,
    }
}

/// The mirror `ev` says a bundle was installed from, if it was.
fn mirror_of(ev: &ClientEvent) -> Option<&str> {
    match ev {
        ClientEvent::BundleInstalled {
            source: "mirror",
            mirror,
            ..
        } => Some(mirror.as_deref().unwrap_or_default()),
        _ => None,
    }
}

/// Whether `ev` says a bundle was installed from a mirror.
fn from_mirror(ev: &ClientEvent) -> bool {
    source_of(ev) == Some("mirror")
}

/// A server with plugins `big` and `other`, its bundles published into
/// `www` with the library behind `publish-bundles`, and `mirrors` listed.
fn server(www: &Path, mirrors: Vec<String>) -> TestServer {
    TestServer::start_with(|cfg| {
        write_plugin(&cfg.plugin_dir, "big", BIG_PY, 0x5eed_0001);
        write_plugin(&cfg.plugin_dir, "other", OTHER_PY, 0x5eed_0002);
        let report = shard_server::publish::publish_bundles(&cfg.plugin_dir, www).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        cfg.asset_mirrors = mirrors;
    })
}

fn is_installed(e: &ClientEvent, name: &str) -> bool {
    matches!(e, ClientEvent::BundleInstalled { name: n, .. } if n == name)
}

fn nginx(www: &Path) -> Nginx {
    Nginx::start(www, &NginxOptions::default())
        .expect("nginx starts (apt-get install nginx; .ci/run does)")
}

/// Joins and waits until plugin `big` is installed; returns that event and the client.
async fn install_big(
    srv: &TestServer,
    player: &TestPlayer,
    content: ContentSettings,
) -> (ClientEvent, shard_e2e::Client) {
    let mut c = player.join_with(srv.addr, content).await;
    let ev = c.expect("big installed", |e| is_installed(e, "big")).await;
    (ev, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_join_downloads_from_the_mirror_and_the_server_sends_no_bundle_bytes() {
    let www = tempfile::tempdir().unwrap();
    let n = nginx(www.path());
    let srv = server(www.path(), vec![n.url()]);
    let big = packed(&srv.plugin_dir(), "big");
    let player = TestPlayer::new("vee");
    let (ev, mut c) = install_big(&srv, &player, ContentSettings::default()).await;
    let ClientEvent::BundleInstalled {
        source,
        mirror,
        sha256,
        ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(source, "mirror");
    assert_eq!(sha256, hex(&big.sha256));
    assert_eq!(
        mirror.as_deref(),
        Some(format!("{}{}", n.url(), file_name(&big.sha256)).as_str())
    );
    c.expect("other installed", |e| is_installed(e, "other"))
        .await;
    assert_eq!(c.session.bundle_bytes_received(), 0);
    let other = packed(&srv.plugin_dir(), "other");
    assert_eq!(
        c.session.mirror_bytes_received(),
        (big.bytes.len() + other.bytes.len()) as u64
    );
    assert_eq!(srv.server.bundle_flight().bytes_sent, 0);
    let total = big.bytes.len() as u64;
    assert!(
        c.seen.iter().any(
            |e| matches!(e, ClientEvent::BundleProgress { name, received, total: t, .. }
            if name == "big" && *received == total && *t == total)
        ),
        "no final progress event: {:?}",
        c.seen
    );
    let log = n.requests();
    let line = format!("GET /{} 200 {}", file_name(&big.sha256), big.bytes.len());
    assert!(log.iter().any(|l| l.starts_with(&line)), "{log:?}");
    c.assert_never(|e| matches!(e, ClientEvent::MirrorFallback { .. }));
}

/// Runs one fallback case: `spoil` gets the plugins folder and `big`'s
/// bundle and returns other bytes for the mirror (nginx with `opts`, or
/// `mirror` instead) to serve under `big`'s name, or `None` to leave the
/// published file; the bundle must still install over QUIC, and the
/// fallback event must name the mirror and contain `why`. Returns the client
/// and the size of `big`.
async fn falls_back(
    opts: NginxOptions,
    spoil: impl FnOnce(&Path, &shard_cache::PackedBundle) -> Option<Vec<u8>>,
    mirror: Option<String>,
    why: &str,
) -> (shard_e2e::Client, usize) {
    falls_back_with(opts, spoil, mirror, why, ContentSettings::default()).await
}

/// [`falls_back`] with the player's `content` settings (mirror timeouts).
async fn falls_back_with(
    opts: NginxOptions,
    spoil: impl FnOnce(&Path, &shard_cache::PackedBundle) -> Option<Vec<u8>>,
    mirror: Option<String>,
    why: &str,
    content: ContentSettings,
) -> (shard_e2e::Client, usize) {
    let www = tempfile::tempdir().unwrap();
    let n = Nginx::start(www.path(), &opts).unwrap();
    let url = mirror.unwrap_or_else(|| n.url());
    let srv = server(www.path(), vec![url.clone()]);
    let big = packed(&srv.plugin_dir(), "big");
    if let Some(served) = spoil(&srv.plugin_dir(), &big) {
        std::fs::write(www.path().join(file_name(&big.sha256)), served).unwrap();
    }
    let player = TestPlayer::new("vee");
    let (ev, c) = install_big(&srv, &player, content).await;
    let fallback = fallback_reason(&c);
    assert!(fallback.contains(&url), "{fallback}");
    assert!(fallback.contains(why), "expected `{why}` in: {fallback}");
    assert!(
        matches!(&ev, ClientEvent::BundleInstalled { source: "server", mirror: None, sha256, .. } if *sha256 == hex(&big.sha256)),
        "{ev:?}"
    );
    // Whatever the mirror delivered before it failed, QUIC brought the rest
    // (the other bundle may still be on its way, so only `big` is counted).
    let received = c.session.bundle_bytes_received() + c.session.mirror_bytes_received();
    assert!(
        received >= big.bytes.len() as u64,
        "{received} of {} bytes arrived",
        big.bytes.len()
    );
    // The operator sees it: the server counts a request it took although
    // mirrors are listed (the dashboard's and `/metrics`' mirror fallbacks).
    assert!(
        shard_server::admin::metrics::bundle_totals().mirror_fallbacks >= 1,
        "the fallback was not counted"
    );
    // The partial file of a failed mirror download never poisons the cache.
    let cache = shard_cache::RuntimeCache::open(player.options(srv.addr).cache_dir).unwrap();
    assert_eq!(cache.read_bundle(&big.sha256).unwrap(), big.bytes);
    (c, big.bytes.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_is_down_falls_back_to_quic() {
    let down = shard_e2e::nginx::down_mirror_url().unwrap();
    falls_back(
        NginxOptions::default(),
        |_, _| None,
        Some(down),
        "Connection refused",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_file_on_the_mirror_falls_back_to_quic() {
    falls_back(
        NginxOptions::default(),
        |_, big| {
            let mut bytes = big.bytes.clone();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            Some(bytes)
        },
        None,
        "SHA-256",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_file_on_the_mirror_falls_back_to_quic() {
    falls_back(
        NginxOptions::default(),
        |_, big| Some(big.bytes[..big.bytes.len() / 2].to_vec()),
        None,
        "but the bundle is",
    )
    .await;
}

/// A mirror that compresses what it serves, as some CDNs compress every
/// answer whatever the client accepts: nginx sends the gzipped bundle with
/// `Content-Encoding: gzip`. The client asked for no encoding, refuses the
/// compressed bytes before writing any of them, says why, and QUIC brings
/// the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_compresses_the_file_falls_back_to_quic() {
    let opts = NginxOptions::with_extra("add_header Content-Encoding gzip always;");
    let (c, _) = falls_back(
        opts,
        |_, big| Some(gzip(&big.bytes)),
        None,
        "turn compression off for .bundle files (it sent Content-Encoding: gzip)",
    )
    .await;
    // Nothing of the compressed answer counted as the bundle's bytes.
    assert_eq!(c.session.mirror_bytes_received(), 0);
}

/// `bytes` compressed by the system's `gzip`, as a CDN would send them.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "gzip failed");
    out.stdout
}

/// A mirror that answers every request with `respond(body)`, `body` as it
/// is when the request comes (the request itself is not read beyond its
/// first packet); returns its base URL.
async fn scripted_mirror(
    body: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    respond: fn(&[u8]) -> Vec<u8>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let out = respond(&body.lock().unwrap());
            tokio::spawn(async move {
                // The request head is small; its content does not matter here.
                let mut head = [0u8; 4096];
                let _ = s.read(&mut head).await;
                let _ = s.write_all(&out).await;
            });
        }
    });
    format!("http://{addr}/")
}

/// A mirror that sends `body` chunked (no `Content-Length`, as a dynamic
/// server or a proxy may).
async fn chunked_mirror(body: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> String {
    scripted_mirror(body, |body| {
        let mut out =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        for piece in body.chunks(16 * 1024) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    })
    .await
}

/// A mirror that answers 206 with the whole file even when no range was
/// asked for, as some servers do: the range starts where the download is,
/// so the file is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_always_answers_206_is_used_when_its_range_fits() {
    let www = tempfile::tempdir().unwrap();
    let body = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = scripted_mirror(body.clone(), |body| {
        let n = body.len();
        let mut out = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-{}/{n}\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n",
            n - 1
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    })
    .await;
    let srv = server(www.path(), vec![url]);
    let big = packed(&srv.plugin_dir(), "big");
    *body.lock().unwrap() = big.bytes.clone();
    let player = TestPlayer::new("vee");
    let (ev, c) = install_big(&srv, &player, ContentSettings::default()).await;
    assert!(from_mirror(&ev), "{ev:?}");
    // (Plugin `other` gets big's bytes from this one-file mirror and falls back.)
    assert!(
        !c.seen
            .iter()
            .any(|e| matches!(e, ClientEvent::MirrorFallback { name, .. } if name == "big")),
        "{:?}",
        c.seen
    );
}

/// A mirror that sends no length and then more bytes than announced: the
/// download stops at the announced length, its partial file is discarded and
/// QUIC brings the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_sends_more_than_announced_falls_back_to_quic() {
    let body = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = chunked_mirror(body.clone()).await;
    falls_back(
        NginxOptions::default(),
        |_, big| {
            let mut longer = big.bytes.clone();
            longer.extend_from_slice(&[0u8; 64 * 1024]);
            *body.lock().unwrap() = longer;
            None
        },
        Some(url),
        "sent more than the announced",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_bundle_under_this_hash_falls_back_to_quic() {
    falls_back(
        NginxOptions::default(),
        |plugins, big| {
            let other = packed(plugins, "other");
            // Same layout and sizes, other bytes: only the hash tells them apart.
            assert_eq!(big.bytes.len(), other.bytes.len());
            Some(other.bytes)
        },
        None,
        "SHA-256",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_failed_as_a_whole_is_skipped_by_the_next_download() {
    // Listed first, too slow (16 KiB/s is below the 32 KiB/s minimum); the
    // second mirror serves the same files at full speed.
    let www = tempfile::tempdir().unwrap();
    let slow = Nginx::start(www.path(), &NginxOptions::with_extra("limit_rate 16k;")).unwrap();
    let good = nginx(www.path());
    let srv = server(www.path(), vec![slow.url(), good.url()]);
    // One download at a time, so the second starts after the first failed.
    let content = ContentSettings {
        mirrors: MirrorSettings {
            concurrency: 1,
            ..MirrorSettings::default()
        },
        ..ContentSettings::default()
    };
    let player = TestPlayer::new("vee");
    let mut c = player.join_with(srv.addr, content).await;
    for name in ["big", "other"] {
        let ev = c.expect("installed", |e| is_installed(e, name)).await;
        assert!(
            mirror_of(&ev).is_some_and(|m| m.starts_with(&good.url())),
            "{ev:?}"
        );
    }
    // The slow mirror was asked once: the second bundle skipped it. (nginx
    // logs a request when its connection closes, so wait for that line.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while slow.requests().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(slow.requests().len(), 1, "{:?}", slow.requests());
    assert_eq!(good.requests().len(), 2, "{:?}", good.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_mirror_fails_over_and_quic_resumes_what_it_delivered() {
    // 16 KiB/s is below the default minimum pace of 32 KiB/s.
    let slow = NginxOptions::with_extra("limit_rate 16k;");
    let (c, len) = falls_back(slow, |_, _| None, None, "too slow").await;
    let quic = c.session.bundle_bytes_received();
    assert!(c.session.mirror_bytes_received() > 0);
    // Both bundles (the same size) fell back; QUIC resumed from the last
    // whole chunk the mirror had delivered instead of starting over.
    let both = 2 * len as u64;
    assert!(
        quic + shard_protocol::limits::CHUNK_SIZE as u64 <= both,
        "{quic} of {both} bytes came over QUIC"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_off_the_mirror_list_is_refused_and_one_on_it_is_followed() {
    // The first mirror sends `big` to a host not on the list, `other` to the second mirror.
    let www = tempfile::tempdir().unwrap();
    let second = nginx(www.path());
    let (big_sha, other_sha) = {
        let tmp = tempfile::tempdir().unwrap();
        write_plugin(tmp.path(), "big", BIG_PY, 0x5eed_0001);
        write_plugin(tmp.path(), "other", OTHER_PY, 0x5eed_0002);
        (
            packed(tmp.path(), "big").sha256,
            packed(tmp.path(), "other").sha256,
        )
    };
    let port = second.addr.port();
    let opts = NginxOptions::with_extra(format!(
        "location = /{big} {{ return 302 http://localhost:{port}/{big}; }}\n    \
         location = /{other} {{ return 302 http://127.0.0.1:{port}/{other}; }}",
        big = file_name(&big_sha),
        other = file_name(&other_sha),
    ));
    let empty = tempfile::tempdir().unwrap();
    let first = Nginx::start(empty.path(), &opts).unwrap();
    let srv = server(www.path(), vec![first.url(), second.url()]);
    let player = TestPlayer::new("vee");
    let (ev, mut c) = install_big(&srv, &player, ContentSettings::default()).await;
    let other = c
        .expect("other installed", |e| is_installed(e, "other"))
        .await;
    assert!(from_mirror(&other), "{other:?}");
    // `big`: the first mirror's redirect is refused, the second mirror serves it.
    let reason_logged = first.requests();
    assert!(
        reason_logged
            .iter()
            .any(|l| l.starts_with(&format!("GET /{} 302", file_name(&big_sha)))),
        "{reason_logged:?}"
    );
    assert!(
        mirror_of(&ev).is_some_and(|m| m.starts_with(&second.url())),
        "{ev:?}"
    );
    let second_log = second.requests();
    let big_gets = second_log
        .iter()
        .filter(|l| l.starts_with(&format!("GET /{} 200", file_name(&big_sha))))
        .count();
    assert_eq!(
        big_gets, 1,
        "only the second mirror's own URL: {second_log:?}"
    );

    // With only the redirecting mirror listed, the refusal falls back to QUIC and says why.
    let srv2 = server(www.path(), vec![first.url()]);
    let player2 = TestPlayer::new("jackie");
    let (ev, c) = install_big(&srv2, &player2, ContentSettings::default()).await;
    let reason = fallback_reason(&c);
    assert!(
        reason.contains(&format!("redirect to http://localhost:{port}/"))
            && reason.contains("not on the server's mirror list"),
        "{reason}"
    );
    assert!(source_of(&ev) == Some("server"), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_done_download_resumes_from_partial_with_a_range_request() {
    let www = tempfile::tempdir().unwrap();
    let n = nginx(www.path());
    let srv = server(www.path(), vec![n.url()]);
    let big = packed(&srv.plugin_dir(), "big");
    let half = big.bytes.len() / 2;

    // The first half is already in `partial/`, as a cut download leaves it.
    let player = TestPlayer::new("vee");
    let part = seed_partial(
        &player.options(srv.addr).cache_dir,
        &big.sha256,
        &big.bytes[..half],
    );
    let (ev, c) = install_big(&srv, &player, ContentSettings::default()).await;
    assert!(from_mirror(&ev), "{ev:?}");
    let rest = big.bytes.len() - half;
    let line = format!(
        "GET /{} 206 {rest} \"bytes={half}-\"",
        file_name(&big.sha256)
    );
    let log = n.requests();
    assert!(
        log.iter().any(|l| l.starts_with(&line)),
        "{line} in {log:?}"
    );
    assert_eq!(c.session.bundle_bytes_received(), 0);
    assert!(!part.exists());

    // A partial file longer than announced is discarded and fetched whole.
    let player2 = TestPlayer::new("jackie");
    let mut long = big.bytes.clone();
    long.extend_from_slice(b"extra bytes past the announced length");
    seed_partial(&player2.options(srv.addr).cache_dir, &big.sha256, &long);
    let (ev, _c2) = install_big(&srv, &player2, ContentSettings::default()).await;
    assert!(from_mirror(&ev), "{ev:?}");
    let whole = format!(
        "GET /{} 200 {} \"-\"",
        file_name(&big.sha256),
        big.bytes.len()
    );
    assert!(
        n.requests().iter().any(|l| l.starts_with(&whole)),
        "{:?}",
        n.requests()
    );
}

/// A static host that ignores `Range` (nginx with `max_ranges 0`, as some
/// hosts and simple file servers behave) answers a resumed download with
/// 200 and the whole file: the client starts the file over from that
/// answer, installs from the mirror, and asks the game server for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_ignores_range_requests_is_downloaded_whole() {
    let www = tempfile::tempdir().unwrap();
    let no_ranges = NginxOptions::with_extra("max_ranges 0;");
    let n = Nginx::start(www.path(), &no_ranges).unwrap();
    let srv = server(www.path(), vec![n.url()]);
    let big = packed(&srv.plugin_dir(), "big");
    let half = big.bytes.len() / 2;
    let player = TestPlayer::new("vee");
    let cache_dir = player.options(srv.addr).cache_dir;
    seed_partial(&cache_dir, &big.sha256, &big.bytes[..half]);
    let (ev, c) = install_big(&srv, &player, ContentSettings::default()).await;
    assert!(from_mirror(&ev), "{ev:?}");
    let whole = format!(
        "GET /{} 200 {} \"bytes={half}-\"",
        file_name(&big.sha256),
        big.bytes.len()
    );
    let log = n.requests();
    assert!(
        log.iter().any(|l| l.starts_with(&whole)),
        "{whole} in {log:?}"
    );
    assert_eq!(c.session.bundle_bytes_received(), 0);
    c.assert_never(|e| matches!(e, ClientEvent::MirrorFallback { .. }));
    let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    assert_eq!(cache.read_bundle(&big.sha256).unwrap(), big.bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_client_killed_mid_download_resumes_with_a_range_request() {
    // 48 KiB/s: above the minimum pace, slow enough to cut a 256 KiB bundle.
    let www = tempfile::tempdir().unwrap();
    let opts = NginxOptions::with_extra("limit_rate 48k;");
    let n = Nginx::start(www.path(), &opts).unwrap();
    let srv = TestServer::start_with(|cfg| {
        write_plugin(&cfg.plugin_dir, "big", BIG_PY, 0x5eed_0001);
        let report = shard_server::publish::publish_bundles(&cfg.plugin_dir, www.path()).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        cfg.asset_mirrors = vec![n.url()];
    });
    let big = packed(&srv.plugin_dir(), "big");
    let home = tempfile::tempdir().unwrap();
    let part = shard_cache::RuntimeCache::open(home.path().join("cache"))
        .unwrap()
        .partial_path(&big.sha256);
    let mut child = std::process::Command::new(workspace_bin("shard-client"))
        .args(["join", &srv.addr.to_string(), "--name", "vee", "--identity"])
        .arg(home.path().join("id.pem"))
        .arg("--cache")
        .arg(home.path().join("cache"))
        .args(["--do", "wait:30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let cut = loop {
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if have >= 64 * 1024 {
            break have;
        }
        assert!(Instant::now() < deadline, "no partial download");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(cut < big.bytes.len() as u64, "cut after the whole bundle");
    let held = std::fs::metadata(&part).unwrap().len();

    let out = shard_e2e::headless_join(srv.addr, home.path(), &["--do", "wait:8"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(r#""source":"mirror""#),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = format!(
        "GET /{} 206 {} \"bytes={held}-\"",
        file_name(&big.sha256),
        big.bytes.len() as u64 - held
    );
    let log = n.requests();
    assert!(
        log.iter().any(|l| l.starts_with(&line)),
        "{line} in {log:?}"
    );
    assert_eq!(srv.server.bundle_flight().bytes_sent, 0);
}

/// A player's content settings trusting the test certificate of HTTPS `n`
/// (`--mirror-ca`).
fn trusting(n: &Nginx) -> ContentSettings {
    ContentSettings {
        mirrors: MirrorSettings {
            extra_ca_pem: Some(
                n.cert_pem
                    .clone()
                    .expect("an HTTPS nginx has a certificate")
                    .into_bytes(),
            ),
            ..MirrorSettings::default()
        },
        ..ContentSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_over_http2_with_the_test_ca_trusted_and_refused_without_it() {
    let www = tempfile::tempdir().unwrap();
    let n = Nginx::start(
        www.path(),
        &NginxOptions {
            tls: true,
            ..NginxOptions::default()
        },
    )
    .unwrap();
    let srv = server(www.path(), vec![n.url()]);

    // Without the test CA the certificate is unknown: QUIC it is.
    let stranger = TestPlayer::new("stranger");
    let (ev, c) = install_big(&srv, &stranger, ContentSettings::default()).await;
    assert!(source_of(&ev) == Some("server"), "{ev:?}");
    assert!(
        c.seen.iter().any(|e| matches!(e, ClientEvent::MirrorFallback { reason, .. } if reason.contains("certificate"))),
        "{:?}",
        c.seen
    );

    let content = trusting(&n);
    let player = TestPlayer::new("vee");
    let (ev, c) = install_big(&srv, &player, content).await;
    assert!(
        mirror_of(&ev).is_some_and(|m| m.starts_with("https://127.0.0.1:")),
        "{ev:?}"
    );
    assert_eq!(c.session.bundle_bytes_received(), 0);
    let big = packed(&srv.plugin_dir(), "big");
    let log = n.requests();
    let line = format!("GET /{} 200 {}", file_name(&big.sha256), big.bytes.len());
    assert!(
        log.iter()
            .any(|l| l.starts_with(&line) && l.ends_with("HTTP/2.0")),
        "{log:?}"
    );
}

/// A mirror whose certificate expired (its operator forgot to renew it),
/// even one the player trusts by `--mirror-ca`: TLS refuses it, the reason
/// says the certificate expired, and QUIC brings the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_mirror_certificate_falls_back_to_quic_and_says_so() {
    let www = tempfile::tempdir().unwrap();
    let n = Nginx::start(
        www.path(),
        &NginxOptions {
            tls: true,
            expired_cert: true,
            ..NginxOptions::default()
        },
    )
    .unwrap();
    let srv = server(www.path(), vec![n.url()]);
    let content = trusting(&n);
    let player = TestPlayer::new("vee");
    let (ev, c) = install_big(&srv, &player, content).await;
    assert_eq!(source_of(&ev), Some("server"), "{ev:?}");
    let reason = fallback_reason(&c);
    assert!(reason.contains(&n.url()), "{reason}");
    assert!(reason.contains("expired"), "{reason}");
    assert!(
        n.requests().is_empty(),
        "a request got through: {:?}",
        n.requests()
    );
}

/// Runs `shard-server publish-bundles OUT --plugins PLUGINS`.
fn run_publish(plugins: &Path, out: &Path) -> std::process::Output {
    std::process::Command::new(workspace_bin("shard-server"))
        .arg("publish-bundles")
        .arg(out)
        .arg("--plugins")
        .arg(plugins)
        // The error must be one line even where backtraces are asked for.
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn publish_cli(plugins: &Path, out: &Path) -> String {
    let o = run_publish(plugins, out);
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout).unwrap()
}

/// An operator's mistakes get one line that says what is wrong, each cause
/// once, and exit status 1; nothing is written.
#[test]
fn publish_bundles_refuses_bad_folders_in_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mirror");
    std::fs::write(&file, b"notes").unwrap();
    let missing = dir.path().join("no-plugins");
    for (plugins, out, why) in [
        (dir.path().to_path_buf(), file.clone(), "is not a folder"),
        (
            missing.clone(),
            dir.path().join("out"),
            "cannot list plugins in",
        ),
    ] {
        let o = run_publish(&plugins, &out);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(why),
            "{err}"
        );
        if why == "cannot list plugins in" {
            // The cause, once.
            assert_eq!(
                lines[0].matches("No such file or directory").count(),
                1,
                "{err}"
            );
        }
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"notes");
    assert!(!dir.path().join("out").exists());
}

/// Run under a service's strict umask (077), `publish-bundles` still
/// writes a folder and files everyone may read: they are public by design,
/// and a web server running as another user must serve them after an
/// `rsync -a` (with the umask's modes every request would get 403).
#[test]
fn publish_bundles_output_is_readable_by_all_under_a_strict_umask() {
    use std::os::unix::fs::PermissionsExt;
    let src = tempfile::tempdir().unwrap();
    write_plugin(src.path(), "big", BIG_PY, 0x5eed_0001);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("mirror");
    let bin = workspace_bin("shard-server");
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 077 && exec \"$0\" publish-bundles \"$1\" --plugins \"$2\"")
        .arg(&bin)
        .arg(&out)
        .arg(src.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out) & 0o555, 0o555, "folder mode {:o}", mode(&out));
    let files = folder(&out);
    assert_eq!(files.len(), 1);
    let file = out.join(&files[0].0);
    assert_eq!(mode(&file) & 0o444, 0o444, "file mode {:o}", mode(&file));
}

fn folder(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_bundles_is_deterministic_and_its_output_serves_the_headless_client() {
    let src = tempfile::tempdir().unwrap();
    write_plugin(src.path(), "big", BIG_PY, 0x5eed_0001);
    write_plugin(src.path(), "other", OTHER_PY, 0x5eed_0002);
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = publish_cli(src.path(), one.path());
    assert_eq!(first.matches("wrote ").count(), 2, "{first}");
    publish_cli(src.path(), two.path());
    let a = folder(one.path());
    assert_eq!(a.len(), 2);
    assert_eq!(a, folder(two.path()), "two runs wrote other bytes");
    let again = publish_cli(src.path(), one.path());
    assert_eq!(again.matches("skipped ").count(), 2, "{again}");
    assert_eq!(a, folder(one.path()));

    let n = nginx(one.path());
    let srv = TestServer::start_with(|cfg| {
        write_plugin(&cfg.plugin_dir, "big", BIG_PY, 0x5eed_0001);
        write_plugin(&cfg.plugin_dir, "other", OTHER_PY, 0x5eed_0002);
        cfg.asset_mirrors = vec![n.url()];
    });
    let home = tempfile::tempdir().unwrap();
    let out = shard_e2e::headless_join(srv.addr, home.path(), &["--do", "wait:1"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let installed: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "bundle_installed")
        .collect();
    assert_eq!(installed.len(), 2, "{stdout}");
    for v in &installed {
        assert_eq!(v["source"], "mirror", "{v}");
        let m = v["mirror"].as_str().unwrap();
        assert!(m.starts_with(&n.url()) && m.ends_with(".bundle"), "{v}");
    }
    assert!(stderr.contains("plain http:// asset mirror"), "{stderr}");
    assert_eq!(srv.server.bundle_flight().bytes_sent, 0);
}

/// A mirror that sends its response head one byte at a time, each byte
/// well within the read timeout, so no single read ever times out (a
/// slow-loris on the head, where the minimum pace is not yet measured).
async fn trickling_head_mirror(every: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = s.read(&mut head).await;
                let status = b"HTTP/1.1 200 OK\r\nX-Pad: ";
                for b in status.iter().chain(std::iter::repeat(&b'a')) {
                    if s.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
            });
        }
    });
    format!("http://{addr}/")
}

/// The read timeout bounds the whole response head, not each byte of it: a
/// mirror trickling its head one byte per 200 ms fails over once the head
/// has taken the (here 2 s) read timeout, and QUIC brings the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_trickles_its_response_head_falls_back_to_quic() {
    let url = trickling_head_mirror(Duration::from_millis(200)).await;
    let mirrors = MirrorSettings {
        read_timeout: Duration::from_secs(2),
        ..MirrorSettings::default()
    };
    // Two seconds of head, then the QUIC download; well under the default read timeout.
    let why = "timed out, no complete response within 2 s";
    fails_over_within(url, mirrors, why, Duration::from_secs(9)).await;
}

/// Runs a fallback case for a mirror at `url` that never delivers, with the
/// player's `mirrors` timeouts: the bundle installs over QUIC within
/// `within` of the join, and the reason contains `why`.
async fn fails_over_within(url: String, mirrors: MirrorSettings, why: &str, within: Duration) {
    let content = ContentSettings {
        mirrors,
        ..ContentSettings::default()
    };
    let started = Instant::now();
    falls_back_with(
        NginxOptions::default(),
        |_, _| None,
        Some(url),
        why,
        content,
    )
    .await;
    assert!(started.elapsed() < within, "{:?}", started.elapsed());
}

/// The file a hand-made mirror was asked for: the path of the `GET` in the
/// request head read from `s` (empty when there is none).
async fn requested_file(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 4096];
    let n = s.read(&mut head).await.unwrap_or(0);
    String::from_utf8_lossy(&head[..n])
        .strip_prefix("GET /")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_default()
        .to_string()
}

/// A mirror that answers with the whole length, sends the first
/// `percent`% of the requested file from `www` and then holds the
/// connection, silent.
async fn stalling_mirror(www: PathBuf, percent: usize) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let www = www.clone();
            tokio::spawn(async move {
                let name = requested_file(&mut s).await;
                let Ok(body) = std::fs::read(www.join(&name)) else {
                    return;
                };
                let sent = body.len() * percent / 100;
                let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                    .into_bytes();
                out.extend_from_slice(&body[..sent]);
                let _ = s.write_all(&out).await;
                tokio::time::sleep(Duration::from_secs(120)).await;
            });
        }
    });
    format!("http://{addr}/")
}

/// A mirror that sends half of each file and then falls silent fails over
/// once the read timeout passes with no data, the reason says so, and QUIC
/// resumes from what the mirror delivered instead of starting over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_stalls_mid_file_falls_back_and_quic_resumes_what_it_sent() {
    let www = tempfile::tempdir().unwrap();
    let url = stalling_mirror(www.path().to_path_buf(), 50).await;
    let content = ContentSettings {
        mirrors: MirrorSettings {
            read_timeout: Duration::from_secs(2),
            ..MirrorSettings::default()
        },
        ..ContentSettings::default()
    };
    let srv = server(www.path(), vec![url.clone()]);
    let big = packed(&srv.plugin_dir(), "big");
    let player = TestPlayer::new("vee");
    let (ev, mut c) = install_big(&srv, &player, content).await;
    assert!(
        matches!(
            &ev,
            ClientEvent::BundleInstalled {
                source: "server",
                ..
            }
        ),
        "{ev:?}"
    );
    let why = fallback_reason(&c);
    assert!(
        why.contains(&url) && why.contains("timed out, no data for 2 s"),
        "{why}"
    );
    c.expect("other installed", |e| is_installed(e, "other"))
        .await;
    c.assert_clean();
    let (quic, mirror) = (
        c.session.bundle_bytes_received(),
        c.session.mirror_bytes_received(),
    );
    let both = 2 * big.bytes.len() as u64;
    assert!(mirror > 0, "the mirror delivered nothing");
    assert!(
        quic < both,
        "{quic} of {both} bytes came over QUIC: nothing was resumed"
    );
}

/// A mirror whose accept queue is full (an overloaded host): the kernel
/// drops new connections' SYNs, so a connect to it hangs. The returned
/// sockets must live as long as the mirror should stay full.
fn full_mirror() -> (String, Vec<socket2::Socket>) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut held = vec![listener];
    // A backlog of 0 admits one connection; two fill it for certain.
    for _ in 0..2 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(100));
    (format!("http://{addr}/"), held)
}

/// A mirror that accepts no connection fails over after the connect
/// timeout, and the reason says it was the connection that timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_accepts_no_connection_fails_over_after_the_connect_timeout() {
    let (url, _full) = full_mirror();
    let mirrors = MirrorSettings {
        connect_timeout: Duration::from_secs(1),
        ..MirrorSettings::default()
    };
    let why = "timed out, no connection within 1 s";
    fails_over_within(url, mirrors, why, Duration::from_secs(8)).await;
}

/// Waits until a mirror download has written the first bytes of `sha` into
/// `cache_dir`'s `partial/`; returns the partial file's path.
async fn first_bytes(cache_dir: &Path, sha: &[u8; 32]) -> PathBuf {
    let part = cache_dir
        .join(shard_cache::PARTIAL_DIR)
        .join(format!("{}.part", hex(sha)));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the mirror delivered nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    part
}

/// Content settings whose mirror read timeout is far longer than any test:
/// only what the test does may end a mirror download.
fn patient() -> ContentSettings {
    ContentSettings {
        mirrors: MirrorSettings {
            read_timeout: Duration::from_secs(60),
            ..MirrorSettings::default()
        },
        ..ContentSettings::default()
    }
}

/// A mirror that answers a request for a file in `www` with the whole
/// length and the first half of it; it sends the rest once `release` turns
/// true, or reports the file's name on `closed` if the client closes the
/// connection first. A file it lacks is a 404.
async fn half_mirror(
    www: PathBuf,
    release: tokio::sync::watch::Receiver<bool>,
    closed: tokio::sync::mpsc::UnboundedSender<String>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (www, mut release, closed) = (www.clone(), release.clone(), closed.clone());
            tokio::spawn(async move {
                let name = requested_file(&mut s).await;
                let Ok(body) = std::fs::read(www.join(&name)) else {
                    let _ = s
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    return;
                };
                let half = body.len() / 2;
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(&body[..half]);
                if s.write_all(&out).await.is_err() {
                    return;
                }
                let hung_up = async {
                    let mut rest = [0u8; 64];
                    while matches!(s.read(&mut rest).await, Ok(n) if n > 0) {}
                };
                let released = tokio::select! {
                    r = release.wait_for(|go| *go) => r.is_ok(),
                    () = hung_up => false,
                };
                if released {
                    let _ = s.write_all(&body[half..]).await;
                } else {
                    let _ = closed.send(name);
                }
            });
        }
    });
    format!("http://{addr}/")
}

/// What happens to plugin `big` while its bundle comes from a mirror.
enum Change {
    /// Its asset changes: a new bundle, not on the mirror.
    Edited,
    /// Its script and folder are deleted.
    Removed,
}

/// A plugin changed (`change`) while its bundle comes from a mirror: the
/// download of the old version ends at once (its connection closes),
/// instead of running on for a bundle no longer wanted, and the client
/// follows the change with no error.
async fn a_change_ends_the_mirror_download(change: Change) {
    let www = tempfile::tempdir().unwrap();
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    let (release, gate) = tokio::sync::watch::channel(false);
    let url = half_mirror(www.path().to_path_buf(), gate, closed_tx).await;
    let srv = server(www.path(), vec![url]);
    let old = packed(&srv.plugin_dir(), "big");
    let player = TestPlayer::new("vee");
    let content = patient();
    let mut c = player.join_with(srv.addr, content).await;
    first_bytes(&player.options(srv.addr).cache_dir, &old.sha256).await;
    let new = match change {
        Change::Edited => {
            write_plugin(&srv.plugin_dir(), "big", BIG_PY, 0x5eed_0003);
            Some(packed(&srv.plugin_dir(), "big"))
        }
        Change::Removed => {
            std::fs::remove_file(srv.plugin_dir().join("big.py")).unwrap();
            std::fs::remove_dir_all(srv.plugin_dir().join("big")).unwrap();
            None
        }
    };
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match closed.recv().await {
                Some(name) if name == file_name(&old.sha256) => return,
                Some(_) => {}
                None => panic!("the mirror stopped"),
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the mirror download of the old version was still open 10 s after the change"
    );
    // The other plugin's download, held at half like every other, may end.
    release.send(true).unwrap();
    match new {
        Some(new) => {
            assert_ne!(new.sha256, old.sha256);
            c.expect(
                "the new version installed",
                |e| matches!(e, ClientEvent::BundleInstalled { sha256, .. } if *sha256 == hex(&new.sha256)),
            )
            .await;
        }
        None => {
            c.expect(
                "the plugin removed",
                |e| matches!(e, ClientEvent::PluginRemoved { name, .. } if name == "big"),
            )
            .await;
            c.expect("the session settled", |e| {
                matches!(e, ClientEvent::BundlesSettled)
            })
            .await;
            assert!(
                !c.seen.iter().any(
                    |e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "big")
                ),
                "a removed plugin was installed: {:?}",
                c.seen
            );
        }
    }
    c.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_ends_the_mirror_download_of_the_old_version() {
    a_change_ends_the_mirror_download(Change::Edited).await;
}

/// The same when the plugin is deleted rather than edited: nothing is
/// installed, the player is told it is gone, and the download it no longer
/// needs stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_plugin_ends_its_mirror_download() {
    a_change_ends_the_mirror_download(Change::Removed).await;
}

/// Twins (one bundle under two names) download it once, from the mirror.
/// When the fetching twin is edited mid-download, the other takes the
/// mirror download over: nothing of the shared bundle comes from the game
/// server (it used to ask the server for all of it as well).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twin_takes_over_the_mirror_download_of_an_edited_twin() {
    let www = tempfile::tempdir().unwrap();
    let (release, gate) = tokio::sync::watch::channel(false);
    let (closed, _) = tokio::sync::mpsc::unbounded_channel();
    let url = half_mirror(www.path().to_path_buf(), gate, closed).await;
    let srv = TestServer::start_with(|cfg| {
        for name in ["twin_a", "twin_b"] {
            let py = format!("__plugin__ = {{\"name\": \"{name}\", \"version\": \"1\"}}\n");
            std::fs::create_dir_all(cfg.plugin_dir.join(name).join("assets")).unwrap();
            std::fs::write(cfg.plugin_dir.join(format!("{name}.py")), py).unwrap();
            std::fs::write(
                cfg.plugin_dir.join(name).join("assets/blob.archive"),
                blob_archive(&noise(ASSET, 0x7e1e_0001)),
            )
            .unwrap();
        }
        let report = shard_server::publish::publish_bundles(&cfg.plugin_dir, www.path()).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        cfg.asset_mirrors = vec![url.clone()];
    });
    let shared = packed(&srv.plugin_dir(), "twin_a");
    assert_eq!(shared.sha256, packed(&srv.plugin_dir(), "twin_b").sha256);
    let player = TestPlayer::new("vee");
    let mut c = player.join(srv.addr).await;
    first_bytes(&player.options(srv.addr).cache_dir, &shared.sha256).await;
    // The first twin announced fetches; it gains a file (not on the mirror).
    std::fs::write(
        srv.plugin_dir().join("twin_a/assets/extra.archive"),
        blob_archive(&noise(1024, 0xe7a)),
    )
    .unwrap();
    let edited = packed(&srv.plugin_dir(), "twin_a");
    let s1 = hex(&shared.sha256);
    c.expect("the edit announced", |e| {
        matches!(e, ClientEvent::PluginAnnounced { name, sha256, .. } if name == "twin_a" && *sha256 != s1)
    })
    .await;
    release.send(true).unwrap();
    let ev = c.expect("twin_b", |e| is_installed(e, "twin_b")).await;
    assert!(
        matches!(&ev, ClientEvent::BundleInstalled { sha256, source: "mirror", .. } if *sha256 == s1),
        "{ev:?}"
    );
    c.expect("twin_a's new version", |e| {
        matches!(e, ClientEvent::BundleInstalled { name, sha256, .. } if name == "twin_a" && *sha256 == hex(&edited.sha256))
    })
    .await;
    c.assert_clean();
    // Only the edited twin's new bundle (not on the mirror) came over QUIC.
    let sent = srv.server.bundle_flight().bytes_sent;
    let (new, old) = (edited.bytes.len() as u64, shared.bytes.len() as u64);
    assert!(
        sent < new + old / 2,
        "{sent} bytes sent over QUIC: the shared bundle came from the server too"
    );
}

/// A session that closes while a mirror is part-way through a bundle ends
/// that download with it: its partial file is released at once (not when
/// the stalled mirror finally times out), so the next session resumes it
/// from where it stopped instead of starting a private download from 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_session_ends_its_mirror_downloads_and_frees_them_for_resume() {
    let www = tempfile::tempdir().unwrap();
    let url = stalling_mirror(www.path().to_path_buf(), 75).await;
    let srv = server(www.path(), vec![url]);
    let big = packed(&srv.plugin_dir(), "big");
    let player = TestPlayer::new("vee");
    let content = patient();
    let c = player.join_with(srv.addr, content).await;
    let cache_dir = player.options(srv.addr).cache_dir;
    let part = first_bytes(&cache_dir, &big.sha256).await;
    c.session.close().await;
    let cache = shard_cache::RuntimeCache::open(&cache_dir).unwrap();
    let have = std::fs::metadata(&part).unwrap().len();
    assert!(have > 0 && have < big.bytes.len() as u64, "{have}");
    assert_eq!(
        cache.partial_offset(&big.sha256).unwrap(),
        have,
        "the closed session's mirror download still holds its partial file"
    );
}

/// A mirror that serves files from `www`, except that a request for
/// `held` is reported on `asked` and answered `503` only once `answer`
/// fires.
async fn holding_mirror(
    www: PathBuf,
    held: String,
    asked: tokio::sync::mpsc::Sender<()>,
    answer: std::sync::Arc<tokio::sync::Notify>,
) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (www, held, asked, answer) =
                (www.clone(), held.clone(), asked.clone(), answer.clone());
            tokio::spawn(async move {
                let name = requested_file(&mut s).await;
                let out = if name == held {
                    let _ = asked.send(()).await;
                    answer.notified().await;
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
                } else {
                    let body = std::fs::read(www.join(&name)).unwrap_or_default();
                    let mut out = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    out.extend_from_slice(&body);
                    out
                };
                let _ = s.write_all(&out).await;
            });
        }
    });
    format!("http://{addr}/")
}

/// Two clients share a cache (two game instances): while this one's mirror
/// is failing, the other stores the same bundle. This one then installs it
/// from the cache: no fallback to the server, and no bundle bytes from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_another_client_stored_while_the_mirror_failed_is_installed_from_the_cache() {
    let www = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    write_plugin(plugins.path(), "big", BIG_PY, 0x5eed_0001);
    let big = packed(plugins.path(), "big");
    let (asked_tx, mut asked) = tokio::sync::mpsc::channel(4);
    let answer = std::sync::Arc::new(tokio::sync::Notify::new());
    let url = holding_mirror(
        www.path().to_path_buf(),
        file_name(&big.sha256),
        asked_tx,
        answer.clone(),
    )
    .await;
    let srv = server(www.path(), vec![url]);
    assert_eq!(packed(&srv.plugin_dir(), "big").sha256, big.sha256);
    let player = TestPlayer::new("vee");
    let mut c = player.join_with(srv.addr, ContentSettings::default()).await;
    tokio::time::timeout(Duration::from_secs(30), asked.recv())
        .await
        .expect("the client asked the mirror for big")
        .unwrap();
    // The other client sharing this cache finishes the same bundle.
    let shared = shard_cache::RuntimeCache::open(player.options(srv.addr).cache_dir).unwrap();
    shared.store_bundle(&big.bytes, &big.sha256).unwrap();
    answer.notify_one();

    let ev = c.expect("big installed", |e| is_installed(e, "big")).await;
    assert_eq!(source_of(&ev), Some("cache"), "{ev:?}");
    c.expect("other installed", |e| is_installed(e, "other"))
        .await;
    c.assert_never(|e| matches!(e, ClientEvent::MirrorFallback { name, .. } if name == "big"));
    assert_eq!(c.session.bundle_bytes_received(), 0);
    assert_eq!(srv.server.bundle_flight().bytes_sent, 0);
    c.session.close().await;
}

/// Two plugins with the same bundle, from a mirror: it is fetched once, and
/// both install (the second from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_two_plugins_share_is_fetched_from_the_mirror_once() {
    let www = tempfile::tempdir().unwrap();
    let n = nginx(www.path());
    let srv = TestServer::start_with(|cfg| {
        write_plugin(&cfg.plugin_dir, "big", BIG_PY, 0x5eed_0001);
        write_plugin(
            &cfg.plugin_dir,
            "big_twin",
            "__plugin__ = {\"name\": \"big_twin\", \"version\": \"1\"}\n",
            0x5eed_0001,
        );
        let report = shard_server::publish::publish_bundles(&cfg.plugin_dir, www.path()).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        cfg.asset_mirrors = vec![n.url()];
    });
    let big = packed(&srv.plugin_dir(), "big");
    assert_eq!(packed(&srv.plugin_dir(), "big_twin").sha256, big.sha256);
    let player = TestPlayer::new("vee");
    let mut c = player.join_with(srv.addr, ContentSettings::default()).await;
    let first = c.expect("big", |e| is_installed(e, "big")).await;
    let twin = c.expect("big_twin", |e| is_installed(e, "big_twin")).await;
    let mut sources = vec![source_of(&first).unwrap(), source_of(&twin).unwrap()];
    sources.sort_unstable();
    assert_eq!(
        sources,
        ["cache", "mirror"],
        "one fetched, one from the store"
    );
    let gets = n
        .requests()
        .iter()
        .filter(|l| l.starts_with(&format!("GET /{}", file_name(&big.sha256))))
        .count();
    assert_eq!(gets, 1, "{:?}", n.requests());
    assert_eq!(srv.server.bundle_flight().bytes_sent, 0);
    c.session.close().await;
}

/// At start, the real server asks each mirror for the head of every bundle
/// and logs what it serves: one mirror holding the `publish-bundles` output
/// serves all; on another, one file was never uploaded, and the warning
/// names that file and its plugin; a third is down, and is reported
/// unreachable once. The check only asks heads (no player's
/// download is counted against a mirror by it) and the server does not
/// wait for it to serve.
#[test]
fn the_server_checks_at_start_that_its_mirrors_serve_every_bundle() {
    let m = three_mirrors();
    let (good, gappy, down) = (&m.good, &m.gappy, &m.down);
    let mut srv = start_checking(&m.dir, &[good.url(), gappy.url(), down.clone()]);
    let served = log_line(&mut srv, &["serves every bundle", &good.url()]);
    assert!(served.contains("bundles=2"), "{served}");
    let missing = log_line(&mut srv, &["does not serve every bundle", &gappy.url()]);
    assert!(
        missing.contains(&format!("{} (other): HTTP status 404", m.other_file)),
        "{missing}"
    );
    assert!(
        missing.contains("missing=1") && missing.contains("of=2"),
        "{missing}"
    );
    let unreachable = log_line(&mut srv, &["cannot be reached", down]);
    assert!(unreachable.contains("Connection refused"), "{unreachable}");
    let log = srv.log_text();
    assert_eq!(log.matches("cannot be reached").count(), 1, "{log}");
    for n in [good, gappy] {
        let log = n.requests();
        assert_eq!(log.len(), 2, "{log:?}");
        assert!(log.iter().all(|l| l.starts_with("HEAD ")), "{log:?}");
    }
}

/// Mirrors of plugins `big` and `other` as an operator may have them: one
/// serving the `publish-bundles` output, one where `other`'s file was never
/// uploaded, and one down.
struct ThreeMirrors {
    /// The server folder (its `plugins/`).
    dir: tempfile::TempDir,
    good: Nginx,
    gappy: Nginx,
    /// Where nothing listens.
    down: String,
    /// The file `gappy` lacks.
    other_file: String,
    _www: [tempfile::TempDir; 2],
}

fn three_mirrors() -> ThreeMirrors {
    let (dir, full) = published_pair();
    let partial = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    shard_server::publish::publish_bundles(&plugins, partial.path()).unwrap();
    let other_file = file_name(&packed(&plugins, "other").sha256);
    std::fs::remove_file(partial.path().join(&other_file)).unwrap();
    ThreeMirrors {
        good: nginx(full.path()),
        gappy: nginx(partial.path()),
        down: shard_e2e::nginx::down_mirror_url().unwrap(),
        other_file,
        dir,
        _www: [full, partial],
    }
}

/// `check-mirrors` is the start-up check on demand, for after an upload or
/// in a deploy script. A mirror holding the `publish-bundles` output, given
/// on the command line, serves all: exit 0. Read from server.toml's
/// `asset_mirrors`, a mirror missing a file is listed with the file, its
/// plugin and why, a mirror that is down says so, and the exit status is 1.
#[test]
fn check_mirrors_lists_what_each_mirror_lacks_and_fails_unless_all_serve_all() {
    let m = three_mirrors();
    let run = |server: &[&str], mirrors: &[&str]| check_mirrors_cli(&m.dir, server, mirrors);
    let (ok, out, err) = run(&[], &[&m.good.url()]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.trim(),
        format!("ok       {}: serves all 2 bundle(s)", m.good.url())
    );
    let config = m.dir.path().join("server.toml");
    let listed = format!(
        "asset_mirrors = [\"{}\", \"{}\", \"{}\"]\n",
        m.good.url(),
        m.gappy.url(),
        m.down
    );
    std::fs::write(&config, listed).unwrap();
    let (ok, out, err) = run(&["--config", config.to_str().unwrap()], &[]);
    assert!(!ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("ok       "), "{out}");
    assert_eq!(
        lines[1],
        format!(
            "missing  {}: does not serve 1 of 2 bundle(s):",
            m.gappy.url()
        )
    );
    assert_eq!(
        lines[2].trim(),
        format!("{} (other): HTTP status 404 Not Found", m.other_file)
    );
    assert!(
        lines[3].starts_with(&format!("down     {}: cannot be reached: ", m.down))
            && lines[3].contains("Connection refused"),
        "{out}"
    );
    assert!(
        err.contains("2 of 3 mirror(s) do not serve every bundle"),
        "{err}"
    );
    // Nothing to check is said plainly.
    std::fs::write(&config, "").unwrap();
    let (ok, _, err) = run(&["--config", config.to_str().unwrap()], &[]);
    assert!(!ok && err.contains("no asset mirror to check"), "{err}");
}

/// Runs `shard-server SERVER... check-mirrors --plugins DIR/plugins
/// MIRRORS...` in `dir` (the server's own options come before the command);
/// returns whether it succeeded, its stdout and its stderr.
fn check_mirrors_cli(
    dir: &tempfile::TempDir,
    server: &[&str],
    mirrors: &[&str],
) -> (bool, String, String) {
    let o = std::process::Command::new(workspace_bin("shard-server"))
        .args(server)
        .arg("check-mirrors")
        .arg("--plugins")
        .arg(dir.path().join("plugins"))
        .args(mirrors)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (o.status.success(), text(&o.stdout), text(&o.stderr))
}

/// A host that refuses HEAD but serves GET, as players send it, is not
/// reported as missing files: the check asks it for each file's first byte
/// instead and reads the length from the answer's range.
#[test]
fn a_mirror_refusing_head_requests_is_checked_with_a_ranged_get() {
    let (dir, full) = published_pair();
    let no_head = Nginx::start(
        full.path(),
        &NginxOptions::with_extra("if ($request_method = HEAD) { return 405; }"),
    )
    .unwrap();
    let (ok, out, err) = check_mirrors_cli(&dir, &[], &[&no_head.url()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("serves all 2 bundle(s)"), "{out}");
    let log = no_head.requests();
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("HEAD ") && l.contains(" 405 "))
            .count(),
        2,
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("GET ") && l.contains(" 206 "))
            .count(),
        2,
        "{log:?}"
    );
}

/// A mirror behind a private CA (one players trust with `--mirror-ca`) is
/// checked with the same CA: without it the check reports the certificate,
/// with `--mirror-ca` (or `mirror_ca` in server.toml) it serves all. A file
/// that is no CA stops the command, and the server's start, with a line
/// naming the key and the file.
#[test]
fn check_mirrors_trusts_the_private_ca_it_is_given() {
    let (dir, full) = published_pair();
    let https = Nginx::start(
        full.path(),
        &NginxOptions {
            tls: true,
            ..NginxOptions::default()
        },
    )
    .unwrap();
    let ca = dir.path().join("mirror-ca.pem");
    std::fs::write(&ca, https.cert_pem.as_deref().unwrap()).unwrap();
    let ca = ca.to_str().unwrap();
    let (ok, out, err) = check_mirrors_cli(&dir, &[], &[&https.url()]);
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains("certificate") && out.contains("give it here too: `mirror_ca`"),
        "{out}{err}"
    );
    let (ok, out, err) = check_mirrors_cli(&dir, &[], &[&https.url(), "--mirror-ca", ca]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("serves all 2 bundle(s)"), "{out}");
    let config = dir.path().join("server.toml");
    let listed = format!(
        "asset_mirrors = [\"{}\"]\nmirror_ca = \"{ca}\"\n",
        https.url()
    );
    std::fs::write(&config, listed).unwrap();
    let config = config.to_str().unwrap();
    let (ok, out, err) = check_mirrors_cli(&dir, &["--config", config], &[]);
    assert!(ok, "{out}{err}");

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let junk = junk.to_str().unwrap();
    let (ok, _, err) = check_mirrors_cli(&dir, &[], &[&https.url(), "--mirror-ca", junk]);
    assert!(
        !ok && err.contains("mirror_ca") && err.contains("junk.pem"),
        "{err}"
    );
    let bad = format!(
        "bind = \"127.0.0.1:0\"\nadmin_http = \"\"\nasset_mirrors = [\"{}\"]\nmirror_ca = \"{junk}\"\n",
        https.url()
    );
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let o = std::process::Command::new(workspace_bin("shard-server"))
        .args(["--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("mirror_ca") && err.contains("junk.pem") && err.contains("no PEM certificate"),
        "{err}"
    );
}

/// A server folder with plugins `big` and `other`, and a folder beside it
/// holding their bundles as `publish-bundles` writes them.
fn published_pair() -> (tempfile::TempDir, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    write_plugin(&plugins, "big", BIG_PY, 0x5eed_0001);
    write_plugin(&plugins, "other", OTHER_PY, 0x5eed_0002);
    let www = tempfile::tempdir().unwrap();
    shard_server::publish::publish_bundles(&plugins, www.path()).unwrap();
    (dir, www)
}

/// The real server binary in `dir` with `mirrors` listed (and checked at
/// start, its default).
fn start_checking(dir: &tempfile::TempDir, mirrors: &[String]) -> shard_e2e::ServerProcess {
    let listed: Vec<String> = mirrors.iter().map(|m| format!("\"{m}\"")).collect();
    let config = format!(
        "asset_mirrors = [{}]\nadmin_http = \"\"\n",
        listed.join(", ")
    );
    shard_e2e::ServerProcess::start(&workspace_bin("shard-server"), dir.path(), &config).unwrap()
}

/// The first line of `srv`'s log holding every one of `needles`, waiting up
/// to 30 s for it; fails with the log.
fn log_line(srv: &mut shard_e2e::ServerProcess, needles: &[&str]) -> String {
    srv.wait_for_line(needles, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The start-up check follows redirects as players do: a mirror that
/// redirects to another on the list serves every bundle; one that
/// redirects to a host off the list serves none, and the warning says
/// players refuse that host.
#[test]
fn the_start_up_check_follows_redirects_as_players_do() {
    let (dir, full) = published_pair();
    let good = nginx(full.path());
    let port = good.addr.port();
    let empty = tempfile::tempdir().unwrap();
    let hop = Nginx::start(
        empty.path(),
        &NginxOptions::with_extra(format!("return 302 http://127.0.0.1:{port}$uri;")),
    )
    .unwrap();
    let away = Nginx::start(
        empty.path(),
        &NginxOptions::with_extra(format!("return 302 http://localhost:{port}$uri;")),
    )
    .unwrap();
    let mut srv = start_checking(&dir, &[good.url(), hop.url(), away.url()]);
    let hopped = log_line(&mut srv, &["serves every bundle", &hop.url()]);
    assert!(hopped.contains("bundles=2"), "{hopped}");
    let refused = log_line(&mut srv, &["does not serve every bundle", &away.url()]);
    assert!(
        refused.contains("missing=2") && refused.contains("a host not on the mirror list"),
        "{refused}"
    );
}

/// An nginx answering every bundle request with a "not found" web page and
/// status 200, as single-page-app hosting and an S3 website's error
/// document do (a "soft 404").
fn soft_404(empty: &Path) -> Nginx {
    let page = r#"location ~ \.bundle$ { types { } default_type text/html; return 200 "<html><body><h1>Page not found</h1></body></html>"; }"#;
    Nginx::start(empty, &NginxOptions::with_extra(page)).unwrap()
}

/// The start-up check refuses what players refuse, by the same rule
/// (`shard_protocol::check_mirror_answer`), with the same reason: a CDN
/// that compresses the files, and a host that answers a missing file with
/// a web page and status 200, each serve none of the bundles. A bucket
/// answering 403 for a missing file (as S3 does) is named as such.
#[test]
fn the_start_up_check_reports_what_real_hosts_get_wrong() {
    let (dir, full) = published_pair();
    let zipping = Nginx::start(
        full.path(),
        &NginxOptions::with_extra("add_header Content-Encoding gzip always;"),
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let pages = soft_404(empty.path());
    let bucket = Nginx::start(
        empty.path(),
        &NginxOptions::with_extra(r"location ~ \.bundle$ { return 403; }"),
    )
    .unwrap();
    let mut srv = start_checking(&dir, &[zipping.url(), pages.url(), bucket.url()]);
    let zipped = log_line(&mut srv, &["does not serve every bundle", &zipping.url()]);
    assert!(
        zipped.contains("missing=2")
            && zipped.contains(
                "turn compression off for .bundle files (it sent Content-Encoding: gzip)"
            ),
        "{zipped}"
    );
    let soft = log_line(&mut srv, &["does not serve every bundle", &pages.url()]);
    assert!(
        soft.contains("missing=2")
            && soft.contains("it answered with a web page (Content-Type: text/html)"),
        "{soft}"
    );
    let denied = log_line(&mut srv, &["does not serve every bundle", &bucket.url()]);
    assert!(
        denied.contains("HTTP status 403 Forbidden (S3 and a CDN in front of it answer 403"),
        "{denied}"
    );
}

/// A player meets the soft 404 too: the page's length is not the bundle's,
/// the reason says it was a web page, nothing of it is written, and QUIC
/// brings the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_404_web_page_falls_back_to_quic_and_says_so() {
    let empty = tempfile::tempdir().unwrap();
    let pages = soft_404(empty.path());
    let (c, _) = falls_back(
        NginxOptions::default(),
        |_, _| None,
        Some(pages.url()),
        "it answered with a web page (Content-Type: text/html)",
    )
    .await;
    assert_eq!(c.session.mirror_bytes_received(), 0);
}

/// A mirror that sends a spoiled first half of the file and then ends it
/// (chunked, so no length gives it away): the half stays in `partial/` and
/// QUIC resumes after it, as it would after an honest cut; the whole fails
/// its SHA-256, is discarded and fetched again from the start over QUIC, and
/// installs. An untrusted mirror costs the server at most half a bundle
/// more, and the player no failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoiled_half_from_a_mirror_is_discarded_and_fetched_again() {
    let body = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = chunked_mirror(body.clone()).await;
    let (c, len) = falls_back(
        NginxOptions::default(),
        |_, big| {
            let half: Vec<u8> = big.bytes[..big.bytes.len() / 2]
                .iter()
                .map(|b| !b)
                .collect();
            *body.lock().unwrap() = half;
            None
        },
        Some(url),
        "the file ended after",
    )
    .await;
    assert!(c.session.mirror_bytes_received() > 0);
    assert!(
        !c.seen
            .iter()
            .any(|e| matches!(e, ClientEvent::BundleFailed { .. })),
        "{:?}",
        c.seen
    );
    // `big` came whole over QUIC after the resumed tail failed; `other`
    // (the same size, spoiled the same way by this one-file mirror) too.
    let quic = c.session.bundle_bytes_received();
    assert!(quic >= len as u64, "{quic} of {len}");
}
