//! `server.toml`: what an operator can set, with defaults that run a server
//! out of the box. `server.example.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use shard_protocol::identity::Fingerprint;
use shard_protocol::limits;

use crate::tuning;
/// Where the admin console listens unless `admin_http` says otherwise: loopback only.
pub const DEFAULT_ADMIN_HTTP: &str = "127.0.0.1:7780";

/// The whole server configuration, after defaults and command-line overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Name shown to players in `Welcome`.
    pub name: String,
    /// UDP address the QUIC endpoint listens on.
    pub bind: SocketAddr,
    /// Simulation ticks per second.
    pub tick_hz: u16,
    /// Players admitted at once; the next is refused with a reason.
    pub max_players: usize,
    /// Key fingerprints (64 hex digits) of the players who may run admin commands.
    pub admins: Vec<String>,
    /// Folder of `*.py` plugins.
    pub plugin_dir: PathBuf,
    /// Folder for the server key and logs.
    pub data_dir: PathBuf,
    /// CPU budget per plugin callback, milliseconds.
    pub plugin_cpu_budget_ms: u64,
    /// Grace after the budget before a plugin worker that has not answered is killed, milliseconds.
    pub plugin_kill_after_ms: u64,
    /// Address-space cap of each plugin worker, MiB.
    pub plugin_memory_mb: u64,
    /// Errors after which a plugin is disabled.
    pub plugin_max_errors: u32,
    /// Run plugins even on a kernel that cannot confine them (no Landlock or seccomp).
    pub allow_unconfined_plugins: bool,
    /// The binary that runs plugin workers (not in server.toml; tests and
    /// embedders set it when the running executable is not `shard-server`).
    #[serde(skip)]
    pub worker_exe: Option<PathBuf>,
    /// Whether players must accept the plugins' content (bundles) to play:
    /// one who declines it is told so and leaves. With `false` they join
    /// without it (its UI and RPC handlers are then missing for them).
    pub content_required: bool,
    /// Per-client rate limits.
    pub rate_limits: RateLimits,
    /// Slots of `max_players` only admins may take (when `admins` is not empty).
    pub admin_slots: usize,
    /// If not empty, only these key fingerprints (and admins) may join.
    pub allowlist: Vec<String>,
    /// Connections one source address may hold at once (joined or not).
    pub max_per_address: usize,
    /// Seconds a joined client may send nothing (not even a keep-alive) before it is closed.
    pub idle_timeout_secs: u64,
    /// Server-wide cap on bundle bytes in flight to all clients together.
    pub bundle_bytes_in_flight: u64,
    /// Seconds a bundle transfer may make no progress before the client is
    /// disconnected as one that does not read.
    pub bundle_stall_secs: u64,
    /// Congestion controller of every connection: BBR (default) keeps bundles
    /// moving on lossy links; `cubic` and `newreno` are there to compare.
    pub congestion: crate::transport::Congestion,
    /// Address of the admin web console and `/metrics` (`host:port`); empty turns it off.
    pub admin_http: String,
    /// PEM certificate chain for the admin console (HTTPS); needed with `admin_tls_key`.
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key for the admin console (HTTPS).
    pub admin_tls_key: Option<PathBuf>,
    /// Allows plain HTTP on a non-loopback address (the token then crosses the network in clear).
    pub admin_insecure_remote: bool,
    /// Base URLs of HTTP(S) mirrors or CDNs that serve the bundles as
    /// `<mirror><sha256 hex>.bundle` (see `publish-bundles`); sent to clients
    /// in `Welcome`, tried in order before the QUIC stream. Each is an
    /// absolute `https://` or `http://` URL, normalised to end in one `/`.
    pub asset_mirrors: Vec<String>,
    /// At start, ask every asset mirror for the head of every bundle and
    /// log what it does not serve (`mirror_check`), so a missed upload is
    /// seen before players fall back to this server.
    pub check_mirrors: bool,
    /// An extra CA certificate (PEM) the server's checks of the mirrors
    /// trust besides the public web roots: for a mirror behind a private CA
    /// that players trust with `--mirror-ca`. Read at start.
    pub mirror_ca: Option<PathBuf>,
    /// The file this configuration came from, where admin changes are written back.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// Per-client rate limits; exceeding them disconnects (chat) or drops (positions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Chat lines per second (burst of the same size); more disconnects the client.
    pub chat_per_sec: u32,
    /// Position datagrams per second; extra ones are dropped, ten times this disconnects.
    pub datagrams_per_sec: u32,
    /// `ClientRpc` messages per second (burst of the same size); extra ones are dropped and counted.
    pub client_rpc_per_sec: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            chat_per_sec: limits::DEFAULT_CHAT_PER_SEC,
            datagrams_per_sec: limits::DEFAULT_DATAGRAMS_PER_SEC,
            client_rpc_per_sec: limits::DEFAULT_CLIENT_RPC_PER_SEC,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            name: "shard server".into(),
            bind: SocketAddr::from(([0, 0, 0, 0], 7777)),
            tick_hz: tuning::DEFAULT_TICK_HZ,
            max_players: 64,
            admins: Vec::new(),
            plugin_dir: PathBuf::from("plugins"),
            data_dir: PathBuf::from("server-data"),
            plugin_cpu_budget_ms: tuning::DEFAULT_CPU_BUDGET_MS,
            plugin_kill_after_ms: tuning::DEFAULT_KILL_AFTER_MS,
            plugin_memory_mb: tuning::DEFAULT_PLUGIN_MEMORY_MB,
            plugin_max_errors: tuning::DEFAULT_MAX_ERRORS,
            allow_unconfined_plugins: false,
            worker_exe: None,
            content_required: true,
            rate_limits: RateLimits::default(),
            admin_slots: limits::DEFAULT_ADMIN_SLOTS,
            allowlist: Vec::new(),
            max_per_address: limits::DEFAULT_MAX_PER_ADDRESS,
            idle_timeout_secs: limits::DEFAULT_IDLE_TIMEOUT_SECS,
            bundle_bytes_in_flight: limits::DEFAULT_BUNDLE_BYTES_IN_FLIGHT,
            bundle_stall_secs: limits::DEFAULT_BUNDLE_STALL_SECS,
            congestion: crate::transport::Congestion::default(),
            admin_http: DEFAULT_ADMIN_HTTP.into(),
            admin_tls_cert: None,
            admin_tls_key: None,
            admin_insecure_remote: false,
            asset_mirrors: Vec::new(),
            check_mirrors: true,
            mirror_ca: None,
            source: None,
        }
    }
}

/// A configuration file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// TOML syntax or a key with the wrong type or name; the message carries line and column.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, which names the line, column and key.
        message: String,
    },
    /// A value that parses but cannot work.
    #[error("config {path}: key `{key}`: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// What is wrong with an `asset_mirrors` entry.
#[derive(Debug, thiserror::Error)]
pub enum MirrorUrlError {
    /// More mirrors than a `Welcome` may carry.
    #[error("{count} mirrors listed; at most {max} are sent to clients")]
    TooMany {
        /// Entries listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// One entry is unusable; `index` counts from 1.
    #[error("entry {index} `{url}`: {why}")]
    Entry {
        /// Position in the list, from 1.
        index: usize,
        /// The entry as written.
        url: String,
        /// What is wrong with it.
        why: MirrorUrlProblem,
    },
}

/// Why one mirror URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum MirrorUrlProblem {
    /// It does not parse as an absolute URL.
    #[error("not an absolute URL ({0}); write e.g. https://cdn.example.net/shard/")]
    NotAbsolute(url::ParseError),
    /// Another scheme than http or https.
    #[error("scheme `{0}` is not https:// or http://")]
    Scheme(String),
    /// No host name.
    #[error("no host")]
    NoHost,
    /// A user name or password, which every player would receive.
    #[error("credentials in a mirror URL would be sent to every player")]
    Credentials,
    /// A query or fragment, which would break `<mirror><sha256>.bundle`.
    #[error("a mirror URL has no query (`?`) or fragment (`#`)")]
    QueryOrFragment,
    /// The same mirror as an earlier entry, once normalised: players would
    /// try a failing mirror twice before the game server.
    #[error("the same mirror as entry {first}")]
    Repeated {
        /// The earlier entry, from 1.
        first: usize,
    },
    /// Longer than the protocol carries.
    #[error("{len} bytes long; the limit is {max}")]
    TooLong {
        /// Its length once normalised.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks every `asset_mirrors` entry and normalises it (one trailing `/`),
/// so the URL of a bundle is always `<mirror><sha256 hex>.bundle`; the error
/// names the entry and what is wrong with it.
pub fn normalise_mirrors(mirrors: &[String]) -> Result<Vec<String>, MirrorUrlError> {
    if mirrors.len() > limits::MAX_ASSET_MIRRORS {
        return Err(MirrorUrlError::TooMany {
            count: mirrors.len(),
            max: limits::MAX_ASSET_MIRRORS,
        });
    }
    let mut out: Vec<String> = Vec::with_capacity(mirrors.len());
    for (i, m) in mirrors.iter().enumerate() {
        let entry = |why| MirrorUrlError::Entry {
            index: i + 1,
            url: m.clone(),
            why,
        };
        let url = normalise_mirror(m).map_err(entry)?;
        if let Some(first) = out.iter().position(|earlier| *earlier == url) {
            return Err(entry(MirrorUrlProblem::Repeated { first: first + 1 }));
        }
        out.push(url);
    }
    Ok(out)
}

/// The mirrors on this machine's loopback (`127.0.0.0/8`, `::1`,
/// `localhost`): players on other machines refuse those (a mirror may not
/// be nearer the player than the game server), so a server listening
/// beyond loopback warns about them at start.
pub fn loopback_mirrors(mirrors: &[String]) -> Vec<&str> {
    mirrors
        .iter()
        .filter(|m| {
            url::Url::parse(m).is_ok_and(|u| match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => {
                    let d = d.trim_end_matches('.').to_ascii_lowercase();
                    d == "localhost" || d.ends_with(".localhost")
                }
                None => false,
            })
        })
        .map(String::as_str)
        .collect()
}

/// One mirror URL, normalised; see [`normalise_mirrors`].
pub fn normalise_mirror(mirror: &str) -> Result<String, MirrorUrlProblem> {
    let mut url = url::Url::parse(mirror.trim()).map_err(MirrorUrlProblem::NotAbsolute)?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(MirrorUrlProblem::Scheme(url.scheme().to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(MirrorUrlProblem::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(MirrorUrlProblem::Credentials);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(MirrorUrlProblem::QueryOrFragment);
    }
    let path = format!("{}/", url.path().trim_end_matches('/'));
    url.set_path(&path);
    let out = url.to_string();
    if out.len() > limits::MAX_MIRROR_URL {
        return Err(MirrorUrlProblem::TooLong {
            len: out.len(),
            max: limits::MAX_MIRROR_URL,
        });
    }
    Ok(out)
}

/// Why `admin_http` and its TLS settings cannot serve the admin console.
#[derive(Debug, thiserror::Error)]
pub enum AdminHttpError {
    /// `admin_http` is not a socket address.
    #[error("`{text}` is not an address like 127.0.0.1:7780: {source}")]
    NotAnAddress {
        /// The text given.
        text: String,
        /// The parser's reason.
        source: std::net::AddrParseError,
    },
    /// Only one of the certificate and the key is set.
    #[error("admin_tls_cert and admin_tls_key must be set together")]
    HalfTls,
    /// A network address without TLS and without the explicit opt-out.
    #[error(
        "{addr} is not a loopback address: set admin_tls_cert and admin_tls_key, \
         or admin_insecure_remote = true to serve plain HTTP to the network"
    )]
    RemoteWithoutTls {
        /// The address asked for.
        addr: SocketAddr,
    },
}

impl ServerConfig {
    /// Reads and checks a `server.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg = Self::parse(&text, &path.display().to_string())?;
        cfg.source = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parses and checks TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut cfg: ServerConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.asset_mirrors =
            normalise_mirrors(&cfg.asset_mirrors).map_err(|reason| ConfigError::Invalid {
                path: origin.to_string(),
                key: "asset_mirrors",
                reason: reason.to_string(),
            })?;
        cfg.check(origin)?;
        Ok(cfg)
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key, reason: String| ConfigError::Invalid {
            path: origin.to_string(),
            key,
            reason,
        };
        if !(1..=tuning::MAX_TICK_HZ).contains(&self.tick_hz) {
            return Err(bad(
                "tick_hz",
                format!("{} is outside 1..={}", self.tick_hz, tuning::MAX_TICK_HZ),
            ));
        }
        if !(1..=tuning::MAX_MAX_PLAYERS).contains(&self.max_players) {
            return Err(bad(
                "max_players",
                format!(
                    "{} is outside 1..={}",
                    self.max_players,
                    tuning::MAX_MAX_PLAYERS
                ),
            ));
        }
        if self.name.is_empty() || self.name.len() > limits::MAX_SERVER_NAME {
            return Err(bad(
                "name",
                format!("must be 1 to {} bytes", limits::MAX_SERVER_NAME),
            ));
        }
        for a in &self.admins {
            Fingerprint::parse(a).map_err(|e| bad("admins", e.to_string()))?;
        }
        if self.rate_limits.chat_per_sec == 0
            || self.rate_limits.datagrams_per_sec == 0
            || self.rate_limits.client_rpc_per_sec == 0
        {
            return Err(bad(
                "rate_limits",
                "limits must be at least 1 per second".into(),
            ));
        }
        let timing = 1..=tuning::MAX_PLUGIN_TIMING_MS;
        let timing_reason = || format!("must be 1 to {}", tuning::MAX_PLUGIN_TIMING_MS);
        if !timing.contains(&self.plugin_cpu_budget_ms) {
            return Err(bad("plugin_cpu_budget_ms", timing_reason()));
        }
        if !timing.contains(&self.plugin_kill_after_ms) {
            return Err(bad("plugin_kill_after_ms", timing_reason()));
        }
        if self.plugin_memory_mb < tuning::MIN_PLUGIN_MEMORY_MB {
            return Err(bad(
                "plugin_memory_mb",
                format!(
                    "{} is below {}, too little for CPython to start",
                    self.plugin_memory_mb,
                    tuning::MIN_PLUGIN_MEMORY_MB
                ),
            ));
        }
        if self.plugin_max_errors == 0 {
            return Err(bad("plugin_max_errors", "must be at least 1".into()));
        }
        for a in &self.allowlist {
            Fingerprint::parse(a).map_err(|e| bad("allowlist", e.to_string()))?;
        }
        if self.admin_slots >= self.max_players {
            return Err(bad(
                "admin_slots",
                format!(
                    "{} leaves no slot for other players (max_players = {})",
                    self.admin_slots, self.max_players
                ),
            ));
        }
        if self.max_per_address == 0 {
            return Err(bad("max_per_address", "must be at least 1".into()));
        }
        let min_idle = 2 * limits::KEEPALIVE_SECS + 1;
        if self.idle_timeout_secs < min_idle {
            return Err(bad(
                "idle_timeout_secs",
                format!(
                    "{} is too short: clients send a keep-alive every {} s, so allow at least {min_idle}",
                    self.idle_timeout_secs,
                    limits::KEEPALIVE_SECS
                ),
            ));
        }
        if self.bundle_bytes_in_flight < limits::BUNDLE_SEND_WINDOW {
            return Err(bad(
                "bundle_bytes_in_flight",
                format!(
                    "must be at least {} (one connection's send window)",
                    limits::BUNDLE_SEND_WINDOW
                ),
            ));
        }
        if self.bundle_stall_secs == 0 {
            return Err(bad("bundle_stall_secs", "must be at least 1".into()));
        }
        self.check_admin_http()
            .map_err(|e| bad("admin_http", e.to_string()))?;
        Ok(())
    }

    /// Checks the admin console's address against its TLS settings: a
    /// non-loopback address needs a certificate and key, or an explicit opt-out.
    pub fn check_admin_http(&self) -> Result<(), AdminHttpError> {
        let Some(addr) = self.admin_addr()? else {
            return Ok(());
        };
        if self.admin_tls_cert.is_some() != self.admin_tls_key.is_some() {
            return Err(AdminHttpError::HalfTls);
        }
        if !addr.ip().is_loopback() && self.admin_tls_cert.is_none() && !self.admin_insecure_remote
        {
            return Err(AdminHttpError::RemoteWithoutTls { addr });
        }
        Ok(())
    }

    /// The admin console's address, or `None` when `admin_http` is empty (off).
    pub fn admin_addr(&self) -> Result<Option<SocketAddr>, AdminHttpError> {
        let text = self.admin_http.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|source| AdminHttpError::NotAnAddress {
                text: text.to_owned(),
                source,
            })
    }

    /// The admin fingerprints, parsed (checked at load).
    pub fn admin_keys(&self) -> Vec<Fingerprint> {
        self.admins
            .iter()
            .filter_map(|a| Fingerprint::parse(a).ok())
            .collect()
    }

    /// How the plugin host runs this server's plugins.
    pub fn host_config(&self) -> crate::plugin::HostConfig {
        let mut h = crate::plugin::HostConfig::new(
            &self.plugin_dir,
            self.data_dir.join("logs").join("plugins"),
        );
        h.cpu_budget = Duration::from_millis(self.plugin_cpu_budget_ms);
        h.kill_after = Duration::from_millis(self.plugin_kill_after_ms);
        h.memory_mb = self.plugin_memory_mb;
        h.max_errors = self.plugin_max_errors;
        h.allow_unconfined = self.allow_unconfined_plugins;
        h.worker_exe = self.worker_exe.clone();
        h
    }

    /// The allowlisted fingerprints, parsed (checked at load); empty admits every key.
    pub fn allowlist_keys(&self) -> Vec<Fingerprint> {
        self.allowlist
            .iter()
            .filter_map(|a| Fingerprint::parse(a).ok())
            .collect()
    }

    /// Duration of one simulation tick.
    pub fn tick(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.tick_hz))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_mirrors_are_normalised_and_bad_ones_named() {
        let cfg = ServerConfig::parse(
            r#"asset_mirrors = ["https://cdn.example.net/shard", "http://10.0.0.2:8080/a//", "https://x.example/"]"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            cfg.asset_mirrors,
            [
                "https://cdn.example.net/shard/",
                "http://10.0.0.2:8080/a/",
                "https://x.example/"
            ]
        );
        for (bad, why) in [
            ("ftp://cdn.example.net/", "scheme `ftp`"),
            ("cdn.example.net/shard", "not an absolute URL"),
            ("https://u:p@cdn.example.net/", "credentials"),
            ("https://cdn.example.net/?a=1", "query"),
            ("https://OK.example//", "the same mirror as entry 1"),
        ] {
            let text = format!(r#"asset_mirrors = ["https://ok.example/", "{bad}"]"#);
            let e = ServerConfig::parse(&text, "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains("asset_mirrors"), "{e}");
            assert!(e.contains(&format!("entry 2 `{bad}`")), "{e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn mirrors_on_loopback_are_picked_out() {
        let listed: Vec<String> = [
            "https://127.0.0.1/a/",
            "http://[::1]:8080/",
            "https://LOCALHOST./x/",
            "https://cdn.localhost/",
            "https://cdn.example.net/",
            "http://10.0.0.2/",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            loopback_mirrors(&listed),
            [
                "https://127.0.0.1/a/",
                "http://[::1]:8080/",
                "https://LOCALHOST./x/",
                "https://cdn.localhost/"
            ]
        );
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = ServerConfig::parse("", "server.toml").unwrap();
        assert_eq!(c.bind.port(), 7777);
        assert_eq!(c.tick_hz, 30);
        assert_eq!(c.plugin_dir, PathBuf::from("plugins"));
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../server.example.toml");
        ServerConfig::parse(text, "server.example.toml").unwrap();
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let err = ServerConfig::parse("name = \"x\"\ntick_rate = 30\n", "server.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("tick_rate") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn a_wrong_type_is_named_with_its_line() {
        let err = ServerConfig::parse("\n\nmax_players = \"many\"\n", "server.toml").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("line 3") && msg.contains("max_players"),
            "{msg}"
        );
    }

    #[test]
    fn hostile_client_settings_are_checked() {
        for (text, key) in [
            ("max_players = 2\nadmin_slots = 2", "admin_slots"),
            ("max_per_address = 0", "max_per_address"),
            ("idle_timeout_secs = 3", "idle_timeout_secs"),
            ("bundle_bytes_in_flight = 1000", "bundle_bytes_in_flight"),
            ("allowlist = [\"zz\"]", "allowlist"),
        ] {
            let err = ServerConfig::parse(text, "server.toml").unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn the_admin_console_is_on_loopback_by_default_and_empty_turns_it_off() {
        let c = ServerConfig::parse("", "server.toml").unwrap();
        assert_eq!(
            c.admin_addr().unwrap(),
            Some(DEFAULT_ADMIN_HTTP.parse().unwrap())
        );
        let c = ServerConfig::parse("admin_http = \"\"", "server.toml").unwrap();
        assert_eq!(c.admin_addr().unwrap(), None);
    }

    #[test]
    fn a_remote_admin_console_needs_tls_or_an_explicit_opt_out() {
        let err = ServerConfig::parse("admin_http = \"0.0.0.0:7780\"", "server.toml").unwrap_err();
        assert!(err.to_string().contains("admin_tls_cert"), "{err}");
        ServerConfig::parse(
            "admin_http = \"0.0.0.0:7780\"\nadmin_insecure_remote = true",
            "server.toml",
        )
        .unwrap();
        ServerConfig::parse(
            "admin_http = \"0.0.0.0:7780\"\nadmin_tls_cert = \"c.pem\"\nadmin_tls_key = \"k.pem\"",
            "server.toml",
        )
        .unwrap();
        let err = ServerConfig::parse("admin_http = \"nowhere\"", "server.toml").unwrap_err();
        assert!(err.to_string().contains("admin_http"), "{err}");
    }

    #[test]
    fn a_bad_admin_fingerprint_is_refused() {
        let err = ServerConfig::parse("admins = [\"nope\"]", "server.toml").unwrap_err();
        assert!(err.to_string().contains("admins"), "{err}");
    }
}
