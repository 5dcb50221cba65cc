//! The admin web console and `/metrics`, over real HTTP on loopback and in a
//! real headless Chromium driven over WebDriver (chromedriver): login, the
//! Players page with a real `shard-client join`, kick, broadcast and plugin
//! reload. Screenshots of a failed browser step land in
//! `<target>/test-artifacts/admin_web/`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use shard_e2e::{TestServer, chat_contains, join_as, profile_dir, workspace_bin};

/// A plugin that logs each load, counting loads in `game.state` (which
/// survives reloads), so a reload shows up in its log.
const COUNTER: &str = r#"
__plugin__ = {"name": "counter", "version": "1.0"}
game.state["loads"] = game.state.get("loads", 0) + 1
game.log("started " + str(game.state["loads"]))
"#;

fn start_server() -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.admin_http = "127.0.0.1:0".into();
        std::fs::create_dir_all(&cfg.plugin_dir).expect("plugin dir");
        std::fs::write(cfg.plugin_dir.join("counter.py"), COUNTER).expect("plugin");
    })
}

fn token(srv: &TestServer) -> String {
    std::fs::read_to_string(srv.dir.path().join("data/admin-token"))
        .expect("token file")
        .trim()
        .to_string()
}

fn admin_base(srv: &TestServer) -> String {
    format!(
        "http://{}",
        srv.server.admin_addr().expect("admin console on")
    )
}

/// A plain HTTP/1.1 client for the console.
struct Http {
    client: HttpClient<HttpConnector, Full<Bytes>>,
    base: String,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Http {
    fn new(base: String) -> Self {
        Self {
            client: HttpClient::builder(TokioExecutor::new()).build_http(),
            base,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        let res = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .expect("answer within 10 s")
            .expect("HTTP request");
        let status = res.status();
        let headers = res.headers().clone();
        let body = if path.starts_with("/events") && status.is_success() {
            String::new() // an endless stream
        } else {
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers, "").await
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        self.send(Method::POST, path, headers, body).await
    }
}

/// The routes that need a session, with their method.
fn protected_routes(fp: &str) -> Vec<(Method, String)> {
    let mut v: Vec<(Method, String)> = [
        "/",
        "/players",
        "/plugins",
        "/chat",
        "/server",
        "/events/dashboard",
        "/events/players",
        "/api/snapshot",
    ]
    .iter()
    .map(|p| (Method::GET, p.to_string()))
    .collect();
    for p in [
        "/logout".to_string(),
        "/players/1/kick".into(),
        "/plugins/counter/reload".into(),
        "/plugins/counter/enable".into(),
        "/plugins/counter/disable".into(),
        "/broadcast".into(),
        "/mirrors/check".into(),
        "/admins/add".into(),
        format!("/admins/{fp}/remove"),
    ] {
        v.push((Method::POST, p));
    }
    v
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in the page: {page}"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of the value")].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_a_session_and_every_post_its_csrf_token() {
    let srv = start_server();
    let token = token(&srv);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(srv.dir.path().join("data/admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");
    }
    let http = Http::new(admin_base(&srv));
    let fp = "a".repeat(64);

    for (method, path) in protected_routes(&fp) {
        let r = http.send(method.clone(), &path, &[], "csrf=x").await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a session"
        );
    }
    // Assets and the login page are public; they carry no state.
    assert_eq!(
        http.get("/assets/style.css", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(http.get("/login", &[]).await.status, StatusCode::OK);

    // A wrong token is refused, and logged in no session.
    let wrong = http.get("/login?token=0000", &[]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get("set-cookie").is_none());

    let ok = http.get(&format!("/login?token={token}"), &[]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.headers["location"], "/");
    let set = ok.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let with = [("cookie", cookie.as_str())];

    let page = http.get("/players", &with).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let csrf = csrf_of(&page.body);

    for (method, path) in protected_routes(&fp) {
        if method == Method::POST {
            let r = http.post(&path, &with, "reason=x&text=hi").await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {path} without CSRF");
            let r = http.post(&path, &with, "csrf=wrong&text=hi").await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "POST {path} with a wrong CSRF"
            );
        } else {
            let r = http.get(&path, &with).await;
            assert_eq!(r.status, StatusCode::OK, "GET {path} with a session");
        }
    }

    // Scripted use: the token in a header, JSON back.
    let scripted = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = http.post("/plugins/counter/reload", &scripted, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let r = http.post("/players/999/kick", &scripted, "reason=x").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = http.post("/mirrors/check", &scripted, "").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body.contains("no asset_mirrors are configured"),
        "{}",
        r.body
    );

    // A form POST with the field redirects back with the outcome on the next page.
    let body = format!("csrf={csrf}&text=hello+from+the+console");
    let r = http.post("/broadcast", &with, &body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let chat = http.get("/chat", &with).await;
    assert!(
        chat.body.contains("message sent to every player"),
        "{}",
        chat.body
    );

    // Logging out ends the session.
    let r = http.post("/logout", &with, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        http.get("/players", &with).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Rotating the token ends the sessions opened with the old one.
    let data = srv.dir.path().join("data");
    let (cookie2, _) = login(&http, &token).await;
    let rotated = shard_server::admin::auth::rotate_token(&data.join("admin-token")).unwrap();
    let with2 = [("cookie", cookie2.as_str())];
    assert_eq!(
        http.get("/players", &with2).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (cookie3, _) = login(&http, &rotated).await;
    let with3 = [("cookie", cookie3.as_str())];
    assert_eq!(http.get("/players", &with3).await.status, StatusCode::OK);

    srv.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited() {
    let srv = start_server();
    let http = Http::new(admin_base(&srv));
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(http.get("/login?token=nope", &[]).await.status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(statuses[7], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Even the right token waits out the window now.
    let r = http
        .get(&format!("/login?token={}", token(&srv)), &[])
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    srv.server.shutdown().await;
}

async fn login(http: &Http, token: &str) -> (String, String) {
    let ok = http.get(&format!("/login?token={token}"), &[]).await;
    let set = ok.headers["set-cookie"].to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let page = http.get("/server", &[("cookie", cookie.as_str())]).await;
    let csrf = csrf_of(&page.body);
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_added_in_the_console_go_to_server_toml_and_apply_at_once() {
    let conf_dir = tempfile::tempdir().unwrap();
    let toml = conf_dir.path().join("server.toml");
    std::fs::write(
        &toml,
        "# the operator's notes\nname = \"hexbar\"\nadmins = []\n",
    )
    .unwrap();
    let srv = TestServer::start_with(|cfg| {
        cfg.admin_http = "127.0.0.1:0".into();
        cfg.source = Some(toml.clone());
    });
    let http = Http::new(admin_base(&srv));
    let (cookie, csrf) = login(&http, &token(&srv)).await;
    let player = shard_e2e::TestPlayer::new("vee");
    let mut vee = player.join(srv.addr).await;
    vee.session.say("/plugins").await;
    vee.expect("a refusal", |e| chat_contains(e, "admins only"))
        .await;

    let fp = player.fingerprint.to_hex();
    let h = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = http
        .post("/admins/add", &h, &format!("fingerprint={fp}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(
        text.contains(&fp) && text.contains("# the operator's notes"),
        "{text}"
    );
    assert!(text.contains("name = \"hexbar\""), "{text}");
    vee.session.say("/plugins").await;
    vee.expect("the plugin list", |e| chat_contains(e, "no plugins"))
        .await;
    let snap = http.get("/api/snapshot", &h[..1]).await.body;
    assert!(snap.contains(&fp), "{snap}");

    let r = http.post(&format!("/admins/{fp}/remove"), &h, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!std::fs::read_to_string(&toml).unwrap().contains(&fp));
    vee.forget();
    vee.session.say("/plugins").await;
    vee.expect("a refusal again", |e| chat_contains(e, "admins only"))
        .await;
    let bad = http.post("/admins/add", &h, "fingerprint=xyz").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    srv.server.shutdown().await;
}

/// Sum of a metric's samples whose labels include `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape =
        prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|c| c.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_when_players_join_and_chat() {
    let srv = start_server();
    let http = Http::new(admin_base(&srv));
    let before = http.get("/metrics", &[]).await;
    assert_eq!(before.status, StatusCode::OK, "loopback /metrics is open");
    let b = before.body;
    for name in [
        "shard_players",
        "shard_tick_duration_seconds",
        "shard_rpc_dropped_total",
        "shard_datagrams_dropped_total",
        "shard_bundle_bytes_total",
        "shard_bundle_mirror_fallbacks_total",
    ] {
        assert!(b.contains(name), "{name} missing:\n{b}");
    }
    assert_eq!(metric(&b, "shard_players", &[]), 0.0, "{b}");

    let mut vee = join_as("vee", srv.addr).await;
    let mut jackie = join_as("jackie", srv.addr).await;
    vee.session.say("preem").await;
    jackie
        .expect("vee's chat", |e| chat_contains(e, "preem"))
        .await;
    vee.expect("the echo", |e| chat_contains(e, "preem")).await;

    // The players gauge follows snapshots (every 0.5 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let text = http.get("/metrics", &[]).await.body;
        if metric(&text, "shard_players", &[]) == 2.0 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(metric(&after, "shard_players", &[]), 2.0, "{after}");
    let chat_in = |t: &str| metric(t, "shard_messages_in_total", &[("type", "Chat")]);
    let chat_out = |t: &str| metric(t, "shard_messages_out_total", &[("type", "Chat")]);
    let hello_in = |t: &str| metric(t, "shard_messages_in_total", &[("type", "Hello")]);
    assert_eq!(chat_in(&after) - chat_in(&b), 1.0, "{after}");
    assert!(chat_out(&after) - chat_out(&b) >= 2.0, "{after}");
    assert_eq!(
        hello_in(&after),
        0.0,
        "Hello is read before the session counts messages"
    );
    assert!(
        metric(&after, "shard_messages_out_total", &[("type", "Welcome")]) >= 2.0,
        "{after}"
    );
    assert!(
        metric(&after, "shard_tick_duration_seconds_count", &[]) > 0.0
            || metric(&after, "shard_tick_duration_seconds", &[]) > 0.0,
        "{after}"
    );
    srv.server.shutdown().await;
}

/// The Server page and `/metrics` show the server's start-up check of its
/// asset mirrors: a real nginx holding the `publish-bundles` output serves
/// the bundle, a mirror that is down cannot be reached; the missing-bundles
/// gauge is 0 for the one and 1 (every bundle) for the other. After the file
/// goes missing, "Check the mirrors now" shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_page_and_metrics_show_what_each_mirror_serves() {
    let www = tempfile::tempdir().unwrap();
    let good = shard_e2e::nginx::Nginx::start(www.path(), &Default::default()).unwrap();
    let down = shard_e2e::nginx::down_mirror_url().unwrap();
    let srv = TestServer::start_with(|cfg| {
        cfg.admin_http = "127.0.0.1:0".into();
        let assets = cfg.plugin_dir.join("crate").join("assets");
        std::fs::create_dir_all(&assets).unwrap();
        let py = "__plugin__ = {\"name\": \"crate\", \"version\": \"1.0\"}\n";
        std::fs::write(cfg.plugin_dir.join("crate.py"), py).unwrap();
        let archive = shard_e2e::blob_archive(&shard_e2e::noise(64 * 1024, 7));
        std::fs::write(assets.join("blob.archive"), archive).unwrap();
        shard_server::publish::publish_bundles(&cfg.plugin_dir, www.path()).unwrap();
        cfg.asset_mirrors = vec![good.url(), down.clone()];
        cfg.check_mirrors = true;
    });
    let http = Http::new(admin_base(&srv));
    let (cookie, csrf) = login(&http, &token(&srv)).await;
    let with = [("cookie", cookie.as_str())];
    // The row of `mirror` on the Server page once it holds `needle`.
    let row = async |mirror: &str, needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let page = http.get("/server", &with).await.body;
            let row = page
                .split("<tr>")
                .find(|r| r.contains(&format!("<code>{mirror}</code>")))
                .unwrap_or_default()
                .to_string();
            if row.contains(needle) {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "no `{needle}` for {mirror}:\n{page}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    row(&good.url(), "serves all 1 bundle(s)").await;
    row(&down, "cannot be reached").await;
    let missing = async |m: &str| {
        let text = http.get("/metrics", &[]).await.body;
        metric(
            &text,
            "shard_asset_mirror_missing_bundles",
            &[("mirror", m)],
        )
    };
    assert_eq!(missing(&good.url()).await, 0.0);
    assert_eq!(missing(&down).await, 1.0);

    // The operator deletes the file by mistake and checks again from the console.
    for f in std::fs::read_dir(www.path()).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let r = http
        .post("/mirrors/check", &with, &format!("csrf={csrf}"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let gone = row(&good.url(), "does not serve 1 of 1").await;
    assert!(gone.contains("HTTP status 404"), "{gone}");
    assert_eq!(missing(&good.url()).await, 1.0);
    srv.server.shutdown().await;
}

// ---------------------------------------------------------------- browser

/// Chromium's flags: headless, no network of its own, a fresh profile.
const CHROME_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1366,768",
];

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// chromedriver on a free loopback port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(chromedriver: &PathBuf) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver
}

/// The browser session, with the folder its screenshots go to.
struct Browser {
    client: fantoccini::Client,
    artifacts: PathBuf,
    _profile: tempfile::TempDir,
}

async fn open_browser(driver: &Driver, chromium: &PathBuf) -> Browser {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut args: Vec<String> = CHROME_FLAGS.iter().map(|s| s.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"binary": chromium, "args": args}),
    );
    let client = fantoccini::ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver");
    let artifacts = profile_dir()
        .parent()
        .expect("target dir")
        .join("test-artifacts")
        .join("admin_web");
    Browser {
        client,
        artifacts,
        _profile: profile,
    }
}

type Step<T> = Result<T, String>;

impl Browser {
    async fn goto(&self, url: &str) -> Step<()> {
        self.client
            .goto(url)
            .await
            .map_err(|e| format!("open {url}: {e}"))
    }

    async fn text_of(&self, css: &str) -> Step<String> {
        let el = self
            .client
            .find(fantoccini::Locator::Css(css))
            .await
            .map_err(|e| format!("find {css}: {e}"))?;
        el.text().await.map_err(|e| format!("text of {css}: {e}"))
    }

    /// Waits (up to 10 s) until the text of `css` contains `needle`: live
    /// updates arrive by Server-Sent Events.
    async fn wait_text(&self, css: &str, needle: &str) -> Step<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(t) = self.text_of(css).await {
                if t.contains(needle) {
                    return Ok(t);
                }
                last = t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "`{css}` never showed `{needle}`; last text:\n{last}"
        ))
    }

    /// Types into `css`; retried because a live update may replace the
    /// element between finding it and typing (updates pause once it has focus).
    async fn fill(&self, css: &str, text: &str) -> Step<()> {
        self.retry(css, |el| async move { el.send_keys(text).await })
            .await
    }

    /// Clicks `css`, retried like [`Browser::fill`].
    async fn click(&self, css: &str) -> Step<()> {
        self.retry(css, |el| async move { el.click().await }).await
    }

    async fn retry<F, Fut>(&self, css: &str, act: F) -> Step<()>
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let mut last = String::new();
        for _ in 0..10 {
            match self.client.find(fantoccini::Locator::Css(css)).await {
                Ok(el) => match act(el).await {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{css}: {last}"))
    }

    /// Saves a screenshot and the page source for a failed step.
    async fn save_failure(&self, name: &str) -> String {
        let _ = std::fs::create_dir_all(&self.artifacts);
        let png = self.artifacts.join(format!("{name}.png"));
        if let Ok(shot) = self.client.screenshot().await {
            let _ = std::fs::write(&png, shot);
        }
        if let Ok(src) = self.client.source().await {
            let _ = std::fs::write(self.artifacts.join(format!("{name}.html")), src);
        }
        png.display().to_string()
    }
}

/// A `shard-client join` process whose JSON event lines are collected.
struct HeadlessClient {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    _home: tempfile::TempDir,
}

impl HeadlessClient {
    fn join(addr: SocketAddr, name: &str) -> Self {
        let exe = workspace_bin("shard-client");
        let home = tempfile::tempdir().expect("client home");
        let mut child = Command::new(exe)
            .args(["join", &addr.to_string(), "--name", name, "--identity"])
            .arg(home.path().join("id.pem"))
            .arg("--cache")
            .arg(home.path().join("cache"))
            .args(["--for", "120"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start shard-client join");
        let out = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Self {
            child,
            lines,
            _home: home,
        }
    }

    /// Waits (up to 10 s) for an event line containing every one of `parts`.
    async fn wait_line(&self, parts: &[&str]) -> Step<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(l) = self
                .lines
                .lock()
                .map_err(|_| "client output lock".to_string())?
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return Ok(l.clone());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = self.lines.lock().map(|l| l.join("\n")).unwrap_or_default();
        Err(format!(
            "the client never printed {parts:?}; it printed:\n{seen}"
        ))
    }
}

impl Drop for HeadlessClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium and chromedriver, or `None` (with a message) when this machine
/// has none. CI installs both (`.ci/run`), so there a missing browser fails.
fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let driver = find_program(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must install Debian's chromium and chromium-driver (see .ci/run)")
        }
        _ => {
            eprintln!(
                "SKIPPED: the browser tests need Debian's `chromium` and `chromium-driver` \
                 (apt-get install chromium chromium-driver); they are not installed here"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_logs_in_kicks_broadcasts_and_reloads_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_programs() else {
        return;
    };
    let srv = start_server();
    let base = admin_base(&srv);
    let token = token(&srv);
    let driver = start_driver(&chromedriver).await;
    let b = open_browser(&driver, &chromium).await;
    let client = HeadlessClient::join(srv.addr, "vee");

    let mut step = "start";
    let run = async {
        step = "a wrong token is refused";
        b.goto(&format!("{base}/login?token=not-the-token")).await?;
        b.wait_text("[role=alert]", "Wrong token").await?;
        b.goto(&format!("{base}/players")).await?;
        b.wait_text("h1", "Not logged in").await?;

        step = "the login URL logs in and lands on the dashboard";
        b.goto(&format!("{base}/login?token={token}")).await?;
        b.wait_text("h1", "Dashboard").await?;
        let url = b.client.current_url().await.map_err(|e| e.to_string())?;
        if url.path() != "/" || url.query().is_some() {
            return Err(format!(
                "landed on {url}, not the dashboard without the token"
            ));
        }

        step = "the headless client shows up in Players";
        client.wait_line(&["\"event\":\"welcome\""]).await?;
        b.click("nav a[href='/players']").await?;
        b.wait_text("#players tbody", "vee").await?;

        step = "a broadcast reaches the client";
        b.click("nav a[href='/chat']").await?;
        b.fill("#broadcast-text", "the bar closes at 3").await?;
        b.click("form[action='/broadcast'] button").await?;
        b.wait_text("#status", "message sent").await?;
        client
            .wait_line(&["\"event\":\"chat\"", "the bar closes at 3"])
            .await?;
        b.wait_text("#live", "the bar closes at 3").await?;

        step = "reload, disable and enable a plugin from the Plugins page";
        b.click("nav a[href='/plugins']").await?;
        b.wait_text("#plugin-counter .log", "started 1").await?;
        // The bundle's file name on a mirror, for operators checking an upload.
        b.wait_text("#plugin-counter .fields", "Mirror file")
            .await?;
        // A reload keeps the worker's interpreter, so game.state counts on.
        b.click("#plugin-counter button[data-action=reload]")
            .await?;
        b.wait_text("#status", "reload counter").await?;
        b.wait_text("#plugin-counter .log", "started 2").await?;
        b.wait_text("#plugin-counter h2", "loaded").await?;
        b.click("#plugin-counter button[data-action=disable]")
            .await?;
        b.wait_text("#status", "disable counter").await?;
        b.wait_text("#plugin-counter h2", "disabled").await?;
        b.wait_text("#plugin-counter .log", "disabled by the operator")
            .await?;
        b.click("#plugin-counter button[data-action=enable]")
            .await?;
        b.wait_text("#status", "enable counter").await?;
        b.wait_text("#plugin-counter h2", "loaded").await?;

        step = "kick the client with a reason it receives";
        b.click("nav a[href='/players']").await?;
        b.wait_text("#players tbody", "vee").await?;
        b.fill("#players tbody input[name=reason]", "too much chrome")
            .await?;
        b.click("#players tbody button").await?;
        b.wait_text("#status", "kicked vee").await?;
        client
            .wait_line(&["\"event\":\"kick\"", "too much chrome"])
            .await?;
        b.wait_text("#players caption", "0 players").await?;
        Ok::<(), String>(())
    };
    let result = run.await;
    if let Err(e) = result {
        let shot = b.save_failure("operator_session").await;
        panic!("browser step `{step}` failed: {e}\nscreenshot: {shot}");
    }
    let _ = b.client.close().await;
    srv.server.shutdown().await;
}
