//! `shard-e2e`: the harness for end-to-end tests — a real server and real
//! clients talking QUIC over loopback, each with its own temporary folders.
//! Only this crate depends on both `shard-server` and `shard-client`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shard_client::{ClientEvent, ConnectOptions, Dispatcher, Session};
use shard_protocol::identity::{Fingerprint, Identity};
use shard_server::Server;
use shard_server::config::ServerConfig;
use tempfile::TempDir;

/// How long a test waits for an expected event before failing.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1 with its own data and plugin folders.
pub struct TestServer {
    /// The running server.
    pub server: Server,
    /// Its address.
    pub addr: SocketAddr,
    /// Its data and plugin folders (kept alive with the server).
    pub dir: TempDir,
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
            for (rel, data) in files {
                let path = cfg.plugin_dir.join(rel);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).expect("plugin sub-folder");
                }
                std::fs::write(&path, data).expect("plugin file");
            }
        })
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
            // Off unless a test turns it on (on port 0): tests run in parallel.
            admin_http: String::new(),
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
            addr,
            name: self.name.clone(),
            identity: self.dir.path().join("identity.pem"),
            cache_dir: self.dir.path().join("runtime_cache"),
            server_key: None,
        }
    }

    /// Joins and waits for `Welcome`.
    pub async fn join(&self, addr: SocketAddr) -> Client {
        let session = Session::connect(self.options(addr), Dispatcher::new())
            .await
            .expect("connects");
        let mut c = Client {
            session,
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
    /// Events received so far.
    pub seen: Vec<ClientEvent>,
    /// The folder of a player made by [`join_as`] (key and cache).
    _home: Option<TempDir>,
}

impl Client {
    /// Waits for the first event (already seen or new) matching `pred`; fails the test after [`EVENT_TIMEOUT`].
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
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

/// Writes a file the way an editor saves it: to a temporary name, then renamed over.
pub fn save_file(path: &std::path::Path, contents: &str) {
    let tmp = path.with_extension("tmp-save");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// `<target>/<profile>` of the running test binary (it lives in `<profile>/deps/`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(std::path::Path::parent)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Path of a workspace binary, built (or confirmed fresh) with cargo first so
/// a test never runs a stale copy.
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    let profile = profile_dir();
    let target = profile.parent().expect("profile dir has a parent");
    let mut cmd =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "-q", "-p", package, "--bin", bin])
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

/// True when `ev` is a chat line containing `needle`.
pub fn chat_contains(ev: &ClientEvent, needle: &str) -> bool {
    matches!(ev, ClientEvent::Chat { text, .. } if text.contains(needle))
}
