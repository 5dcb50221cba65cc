//! `shard-e2e`: the harness for end-to-end tests — a real server and real
//! clients talking QUIC over loopback, each with its own temporary folders.
//! Only this crate depends on both `shard-server` and `shard-client`.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]

pub mod attack;
pub mod netns;
pub mod nginx;
pub mod relay;
pub mod tmpfs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shard_client::{ClientEvent, ConnectOptions, ContentSettings, Dispatcher, Session};
use shard_protocol::identity::{Fingerprint, Identity};
use shard_server::Server;
use shard_server::config::ServerConfig;
use tempfile::TempDir;

/// How long a test waits for an expected event before failing.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The result of a test step that needs root and a kernel feature (a
/// network namespace, a mount): the value, or `None` after saying
/// `NOT CHECKED` where this machine refuses it, so the test passes there
/// without checking. In CI (`CI` set, running as root) a refusal fails.
pub fn unless_refused<T>(what: &str, result: anyhow::Result<T>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) if std::env::var_os("CI").is_some() => panic!("cannot {what} in CI: {e:#}"),
        Err(e) => {
            eprintln!("NOT CHECKED: cannot {what} here: {e:#}");
            None
        }
    }
}

/// Connections per address a [`TestServer`] allows, since all its clients share 127.0.0.1.
pub const LOOPBACK_PER_ADDRESS: usize = 64;

/// A server on 127.0.0.1 with its own data and plugin folders.
pub struct TestServer {
    /// The running server.
    pub server: Server,
    /// Its address.
    pub addr: SocketAddr,
    /// Its data and plugin folders (kept alive with the server).
    pub dir: TempDir,
}

/// Writes `files` (relative path, contents) under `plugin_dir`, creating
/// sub-folders, for a server about to start.
pub fn write_plugin_files(plugin_dir: &Path, files: &[(&str, &[u8])]) {
    for (rel, data) in files {
        let path = plugin_dir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("plugin sub-folder");
        }
        std::fs::write(&path, data).expect("plugin file");
    }
}

impl TestServer {
    /// Starts a server with `admins` and an empty plugin folder.
    pub fn start(admins: &[Fingerprint]) -> Self {
        Self::start_with(|cfg| cfg.admins = admins.iter().map(|a| a.to_hex()).collect())
    }

    /// Starts a server with `admins` whose plugin folder holds `files`
    /// (relative path, contents), written before the server starts.
    pub fn start_with_files(admins: &[Fingerprint], files: &[(&str, &[u8])]) -> Self {
        Self::start_with(|cfg| {
            cfg.admins = admins.iter().map(|a| a.to_hex()).collect();
            write_plugin_files(&cfg.plugin_dir, files);
        })
    }

    /// Starts a server with `admins` whose plugin folder holds the example
    /// plugin `plugins/<stem>.py` and every file of its bundle folder.
    pub fn start_with_example(admins: &[Fingerprint], stem: &str) -> Self {
        let files = example_plugin_files(stem);
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, d)| (p.as_str(), d.as_slice()))
            .collect();
        Self::start_with_files(admins, &refs)
    }

    /// Starts a server after `tweak` adjusts its configuration.
    pub fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = ServerConfig {
            bind: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().join("data"),
            plugin_dir: dir.path().join("plugins"),
            // Generous plugin budgets: these tests check behaviour on a busy
            // machine; the budget and deadline tests set their own.
            plugin_cpu_budget_ms: 500,
            plugin_kill_after_ms: 1000,
            // Every test client comes from 127.0.0.1; tests of the cap set it back.
            max_per_address: LOOPBACK_PER_ADDRESS,
            // Off unless a test turns it on (on port 0): tests run in parallel.
            admin_http: String::new(),
            // The mirror tests count what their mirrors are asked; the
            // start-up check's own requests are tested on their own.
            check_mirrors: false,
            ..ServerConfig::default()
        };
        std::fs::create_dir_all(&cfg.plugin_dir).expect("plugin dir");
        tweak(&mut cfg);
        let server = Server::start(cfg).expect("server starts");
        let addr = server.local_addr().expect("bound");
        Self { server, addr, dir }
    }

    /// The plugin folder.
    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }
}

/// A player with its own key and cache folder.
pub struct TestPlayer {
    /// Display name.
    pub name: String,
    /// Key and cache live here.
    pub dir: TempDir,
    /// The player's identity (its fingerprint is the player id).
    pub fingerprint: Fingerprint,
}

impl TestPlayer {
    /// Creates a player with a fresh key.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (id, _) = Identity::load_or_create(&dir.path().join("identity.pem"), "shard-player")
            .expect("identity");
        Self {
            name: name.to_string(),
            dir,
            fingerprint: id.fingerprint,
        }
    }

    /// Connection options for `addr`.
    pub fn options(&self, addr: SocketAddr) -> ConnectOptions {
        ConnectOptions {
            addr: addr.into(),
            name: self.name.clone(),
            identity: self.dir.path().join("identity.pem"),
            cache_dir: self.dir.path().join("runtime_cache"),
            server_key: None,
            content: ContentSettings::default(),
        }
    }

    /// Joins and waits for `Welcome`.
    pub async fn join(&self, addr: SocketAddr) -> Client {
        self.join_with(addr, ContentSettings::default()).await
    }

    /// Joins with these content settings (offers, quota, cap) and waits for `Welcome`.
    pub async fn join_with(&self, addr: SocketAddr, content: ContentSettings) -> Client {
        let opts = ConnectOptions {
            content,
            ..self.options(addr)
        };
        let dispatcher = Arc::new(Mutex::new(Dispatcher::new()));
        let session = Session::connect_shared(opts, dispatcher.clone())
            .await
            .expect("connects");
        let mut c = Client {
            session,
            dispatcher,
            seen: Vec::new(),
            _home: None,
        };
        c.expect("Welcome", |e| matches!(e, ClientEvent::Welcome { .. }))
            .await;
        c
    }
}

/// Creates a throw-away player called `name` and joins; the client keeps the
/// player's folder alive for as long as it exists.
pub async fn join_as(name: &str, addr: SocketAddr) -> Client {
    let player = TestPlayer::new(name);
    let mut c = player.join(addr).await;
    c._home = Some(player.dir);
    c
}

/// A connected session plus every event it received, for assertions.
pub struct Client {
    /// The live session.
    pub session: Session,
    /// Its dispatcher (whitelists, callbacks and declared upstream RPCs).
    pub dispatcher: Arc<Mutex<Dispatcher>>,
    /// Events received so far.
    pub seen: Vec<ClientEvent>,
    /// The folder of a player made by [`join_as`] (key and cache).
    _home: Option<TempDir>,
}

impl Client {
    /// Waits for `bundles_settled` and checks that nothing went wrong on the
    /// way: no `error`, `bundle_failed` or `disconnected` event.
    pub async fn settles_cleanly(&mut self) {
        self.expect("bundles settled", |e| {
            matches!(e, ClientEvent::BundlesSettled)
        })
        .await;
        self.assert_clean();
    }

    /// Checks that nothing went wrong so far: no `error`, `bundle_failed`
    /// or `disconnected` event.
    pub fn assert_clean(&self) {
        self.assert_never(|e| {
            matches!(
                e,
                ClientEvent::Error { .. }
                    | ClientEvent::BundleFailed { .. }
                    | ClientEvent::Disconnected { .. }
            )
        });
    }

    /// Fails the test, listing what was seen, if any event so far matches `pred`.
    pub fn assert_never(&self, pred: impl Fn(&ClientEvent) -> bool) {
        assert!(!self.seen.iter().any(pred), "{:?}", self.seen);
    }

    /// Waits for the first event (already seen or new) matching `pred`; fails the test after [`EVENT_TIMEOUT`].
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
        self.expect_within(what, EVENT_TIMEOUT, pred).await
    }

    /// [`Self::expect`] with its own wait, for tests that load the machine
    /// on purpose (many players at once) and must not fail for being slow.
    pub async fn expect_within(
        &mut self,
        what: &str,
        wait: Duration,
        pred: impl Fn(&ClientEvent) -> bool,
    ) -> ClientEvent {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.session.next_event()).await {
                Ok(Some(ev)) => {
                    self.seen.push(ev.clone());
                    if pred(&ev) {
                        return ev;
                    }
                }
                Ok(None) => panic!(
                    "session ended while waiting for {what}; saw {:?}",
                    self.seen
                ),
                Err(_) => panic!("timed out waiting for {what}; saw {:?}", self.seen),
            }
        }
    }

    /// Collects events for `d`, returning those that arrived.
    pub async fn collect_for(&mut self, d: Duration) -> Vec<ClientEvent> {
        let deadline = tokio::time::Instant::now() + d;
        let mut got = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, self.session.next_event()).await
        {
            self.seen.push(ev.clone());
            got.push(ev);
        }
        got
    }

    /// Sends upstream RPC `name` to `plugin` the way a pushed script's
    /// `SendServerRpc` does (only if the plugin's checked scripts declare it).
    pub async fn send_rpc(
        &self,
        plugin: &str,
        name: &str,
        json: &str,
    ) -> Result<(), shard_client::dispatch::SendRpcError> {
        let msg = self
            .dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .client_rpc(plugin, name, json)?;
        assert!(self.session.send(msg).await, "the session is over");
        Ok(())
    }

    /// Forgets the events seen so far (so `expect` only looks at new ones).
    pub fn forget(&mut self) {
        self.seen.clear();
    }
}

/// The example plugins shipped in `plugins/` (path relative to the repository).
pub fn example_plugin(rel: &str) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("plugins");
    std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("example plugin {rel}: {e}"))
}

/// `plugins/<stem>.py` and every file under `plugins/<stem>/`, as (path
/// relative to the plugin folder, contents).
pub fn example_plugin_files(stem: &str) -> Vec<(String, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let mut files = vec![(format!("{stem}.py"), example_plugin(&format!("{stem}.py")))];
    let walker = walkdir::WalkDir::new(root.join(stem)).sort_by_file_name();
    for entry in walker.into_iter().filter_map(Result::ok) {
        if entry.file_type().is_dir() {
            continue;
        }
        if let Ok(rel) = entry.path().strip_prefix(&root) {
            let data = std::fs::read(entry.path()).expect("example plugin file");
            files.push((rel.to_string_lossy().into_owned(), data));
        }
    }
    files
}

/// Writes a file the way an editor saves it: to a temporary name, then renamed over.
pub fn save_file(path: &std::path::Path, contents: &str) {
    let tmp = path.with_extension("tmp-save");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// `<target>/<profile>` of the running binary: a test lives in
/// `<profile>/deps/`, a bench binary in `<profile>/` itself.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("binary path");
    let dir = exe.parent().expect("binary lives in a folder");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Path of a workspace binary, built (or confirmed fresh) with cargo first so
/// a test never runs a stale copy.
pub fn workspace_bin(bin: &str) -> PathBuf {
    let profile = profile_dir();
    let target = profile.parent().expect("profile dir has a parent");
    let mut cmd =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Features as the README's test command resolves them: the whole
    // workspace, dev-dependencies included (`--examples` selects none here
    // but turns them on). `-p` alone would resolve fewer features and build
    // a second copy of tokio, hyper and the rest: a gigabyte of disk and two
    // minutes of CI, and the build that failed CI when its disk was full.
    cmd.args(["build", "-q", "--workspace", "--examples", "--bin", bin])
        .env("CARGO_TARGET_DIR", target);
    // The test runner sets these for the test; a build script that watches
    // one (ring watches CARGO_MANIFEST_DIR) would otherwise rebuild its crate
    // here and again at the next `cargo build`, every run.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k == "CARGO_MANIFEST_DIR"
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_EXE_")
            || k == "CARGO_CRATE_NAME"
            || k == "CARGO_PRIMARY_PACKAGE"
        {
            cmd.env_remove(k.as_ref());
        }
    }
    if profile.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "building {bin} failed");
    profile.join(bin)
}

/// Runs the headless client (`shard-client join ADDR --name vee`) as its own
/// process with its key and cache under `home`, then `args` (actions such
/// as `--do wait:1`); returns its output once it exits.
pub async fn headless_join(addr: SocketAddr, home: &std::path::Path, args: &[&str]) -> Output {
    headless_join_at(&addr.to_string(), home, args).await
}

/// [`headless_join`] to an address as a player types it (`HOST:PORT` too).
pub async fn headless_join_at(addr: &str, home: &std::path::Path, args: &[&str]) -> Output {
    let client = std::process::Command::new(workspace_bin("shard-client"));
    headless_join_via(client, addr, home, args).await
}

/// [`headless_join_at`], with the headless client started by `client`
/// (e.g. inside a network namespace).
pub async fn headless_join_via(
    mut client: std::process::Command,
    addr: &str,
    home: &std::path::Path,
    args: &[&str],
) -> Output {
    let addr = addr.to_string();
    let home = home.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        client
            .args(["join", &addr, "--name", "vee", "--identity"])
            .arg(home.join("id.pem"))
            .arg("--cache")
            .arg(home.join("cache"))
            .args(&args)
            .output()
            .expect("run shard-client")
    })
    .await
    .expect("join the client process")
}

/// Checks that every plugin installed in the cache at `dir` verifies
/// against its stored bundle (`shard-client cache verify`); returns how many.
pub fn assert_cache_verifies(dir: &std::path::Path) -> usize {
    let cache = shard_cache::RuntimeCache::open(dir).expect("open the cache");
    let reports = cache.verify().expect("verify the cache");
    assert!(
        reports
            .iter()
            .all(|r| r.status == shard_cache::VerifyStatus::Ok),
        "{reports:?}"
    );
    reports.len()
}

/// Incompressible pseudo-random bytes (xorshift from `seed`), so a bundle
/// made of them packs to about its own size and spans many chunks.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A valid `.archive` (RDAR, made by the test builder) holding one file
/// with `contents`: the allowed way for a test to ship game assets of a
/// chosen size.
pub fn blob_archive(contents: &[u8]) -> Vec<u8> {
    shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\shard\\blob.bin", contents.to_vec())
        .build()
}

/// True when `ev` is a chat line containing `needle`.
pub fn chat_contains(ev: &ClientEvent, needle: &str) -> bool {
    matches!(ev, ClientEvent::Chat { text, .. } if text.contains(needle))
}

/// Depot path of mobile_cc's vehicle entity inside its archive (the tweak's
/// `entityTemplatePath`).
pub const MOBILE_CC_ENT: &str = "base\\shard\\mobile_cc\\commandcenter.ent";

/// Depot path of mobile_cc's interior sector inside its archive (the `.xl`'s sector).
pub const MOBILE_CC_SECTOR: &str = "base\\shard\\mobile_cc\\interior.streamingsector";

/// The sample `plugins/mobile_cc/assets/mobile_cc.archive`, as the test
/// builder makes it: a valid RDAR container whose two files are placeholders
/// at the depot paths the plugin's `.xl` and tweak name. Regenerate the
/// committed file with `SHARD_WRITE_SAMPLE=1 cargo nextest run -p shard-e2e
/// mobile_cc::sample`.
pub fn mobile_cc_sample_archive() -> Vec<u8> {
    let note = "shard sample placeholder, not a CR2W resource; replace this archive with a WolvenKit-packed one (see plugins/mobile_cc/README.md)\n";
    shard_cache::content::rdar::RdarBuilder::new()
        .file(MOBILE_CC_ENT, format!("commandcenter.ent: {note}"))
        .file(
            MOBILE_CC_SECTOR,
            format!("interior.streamingsector: {note}"),
        )
        .build()
}

/// A client script registering the `HudUpdate` RPC handler (shared by the
/// bundle and content tests).
pub const HUD_REDS: &str = r#"
public class HudHandler extends ShardRpcHandler {
  public func OnRpc(json: String) -> Void {
    let t = new inkText();
    t.SetText(ShardJsonGetString(json, "/text"));
  }
}

public func HudInit() -> Void {
  RegisterRpc(n"HudUpdate", new HudHandler());
}
"#;

/// Resident memory of a process, from /proc (Linux), in bytes.
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The real `shard-server` binary as a child process in `dir` (plugins in
/// `dir/plugins`, data in `dir/data`, its stderr log in `dir/server.log`);
/// killed on drop.
pub struct ServerProcess {
    /// The child.
    pub child: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its key.
    pub key: Fingerprint,
    /// Its log (stderr).
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts `bin` with `config` (TOML) on 127.0.0.1 and waits for its
    /// "listening on ADDR with key FP" line.
    pub fn start(
        bin: &std::path::Path,
        dir: &std::path::Path,
        config: &str,
    ) -> anyhow::Result<Self> {
        Self::start_as(std::process::Command::new(bin), dir, config, "127.0.0.1:0")
    }

    /// [`Self::start`] through `command` (the server binary, perhaps behind
    /// `ip netns exec`), listening on `bind`.
    pub fn start_as(
        mut command: std::process::Command,
        dir: &std::path::Path,
        config: &str,
        bind: &str,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        use std::io::BufRead;
        std::fs::create_dir_all(dir.join("plugins"))?;
        std::fs::write(dir.join("server.toml"), config)?;
        let log = dir.join("server.log");
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .arg("--config")
            .arg(dir.join("server.toml"))
            .args(["--bind", bind, "--plugins"])
            .arg(dir.join("plugins"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let out = child.stdout.take().context("server stdout")?;
        let mut lines = std::io::BufReader::new(out).lines();
        let Some(Ok(first)) = lines.next() else {
            let _ = child.kill();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow::bail!("the server printed nothing; its log:\n{text}");
        };
        let words: Vec<&str> = first.split_whitespace().collect();
        let (Some(addr), Some(key)) = (words.get(3), words.get(6)) else {
            anyhow::bail!("unexpected first line from the server: {first}");
        };
        let addr = addr.parse().context("server address")?;
        let key = Fingerprint::parse(key)?;
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            addr,
            key,
            log,
        })
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the server has logged "announcing bundle" `bundles`
    /// times, so a measurement starts when its plugins are loaded and
    /// packed rather than after a guessed pause. Fails with the log when
    /// the server exits or `timeout` passes first.
    pub fn wait_for_bundles(&mut self, bundles: usize, timeout: Duration) -> anyhow::Result<()> {
        let what = format!("announcing {bundles} bundle(s)");
        self.wait_for_log(&what, timeout, |text| {
            (text.matches("announcing bundle").count() >= bundles).then_some(())
        })
    }

    /// The first line of the log holding every one of `needles`, once the
    /// server has logged it; fails with the log when the server exits or
    /// `timeout` passes first.
    pub fn wait_for_line(&mut self, needles: &[&str], timeout: Duration) -> anyhow::Result<String> {
        let what = format!("a line with {needles:?}");
        self.wait_for_log(&what, timeout, |text| {
            text.lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_owned)
        })
    }

    /// Polls the log until `found` picks something out of it (`what` names
    /// it in the error): the one way tests wait on what a server logs.
    fn wait_for_log<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        found: impl Fn(&str) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let text = self.log_text();
            if let Some(t) = found(&text) {
                return Ok(t);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                anyhow::bail!("the server exited ({status}) before {what}; its log:\n{text}");
            }
            if std::time::Instant::now() >= deadline {
                anyhow::bail!("no {what} within {timeout:?}; its log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
