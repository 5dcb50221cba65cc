//! The operator's web console and Prometheus metrics, served from the server
//! process (axum) on `admin_http` (default `127.0.0.1:7780`).
//!
//! The console never touches game state: the simulation publishes a
//! [`snapshot::Snapshot`] every half second and the console renders those;
//! actions (kick, plugin reload/enable/disable, broadcast, admin changes) go
//! through the simulation's inbound queue as [`Inbound::Admin`], like a
//! client's messages. Pages and assets are compiled into the binary.
//!
//! - `auth`: token file, sessions, CSRF, failed-login limit
//! - `routes`: the HTTP routes; `pages`: HTML and assets
//! - `snapshot`: what the simulation publishes; `metrics`: Prometheus names
//! - `admins`: writing `admins` back to `server.toml`; `logs`: plugin log tails
//! - `tls`: HTTPS when the console is bound off loopback

pub mod admins;
pub mod auth;
pub mod logs;
pub mod metrics;
pub mod pages;
pub mod routes;
pub mod snapshot;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use shard_protocol::identity::Fingerprint;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::ServerConfig;
use crate::sim::Inbound;
use snapshot::Snapshot;

/// What the console asks of the simulation.
#[derive(Debug)]
pub enum AdminCmd {
    /// Disconnect a player, telling them why.
    Kick {
        /// Peer id.
        peer: u32,
        /// Reason the player sees.
        reason: String,
    },
    /// Reload, enable or disable a plugin.
    Plugin {
        /// Plugin name.
        name: String,
        /// What to do.
        action: PluginAction,
    },
    /// A server chat line to every player.
    Broadcast {
        /// The message.
        text: String,
    },
    /// The admin list changed (already written to `server.toml`).
    SetAdmins {
        /// Every admin now.
        admins: Vec<Fingerprint>,
    },
}

/// What to do to a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginAction {
    /// Load the current files again.
    Reload,
    /// Turn a disabled plugin back on.
    Enable,
    /// Turn a plugin off.
    Disable,
}

impl PluginAction {
    /// The verb as `/plugin VERB NAME` spells it.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Reload => "reload",
            Self::Enable => "enable",
            Self::Disable => "disable",
        }
    }
}

/// Why the simulation refused a console command (shown to the operator).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AdminRefused(pub String);

/// The simulation's answer to a console command.
pub type AdminReply = Result<String, AdminRefused>;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// `admin_http` or its TLS settings are not usable.
    #[error("admin_http: {0}")]
    Config(#[from] crate::config::AdminHttpError),
    /// The token file could not be read or created.
    #[error(transparent)]
    Token(#[from] auth::TokenError),
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The TCP address could not be bound.
    #[error(
        "admin console: cannot listen on {addr}: {source} (change admin_http in server.toml, or set it to \"\" to turn the console off)"
    )]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// The running console.
pub struct AdminWeb {
    addr: SocketAddr,
    tls: bool,
    new_login_url: Option<String>,
    stop: Option<oneshot::Sender<()>>,
}

impl AdminWeb {
    /// The address bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the console speaks HTTPS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The login URL, only when the token was created by this start (print it once).
    pub fn new_login_url(&self) -> Option<&str> {
        self.new_login_url.as_deref()
    }

    /// Stops serving.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for AdminWeb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the console when `admin_http` is set: creates the token on first
/// start, binds, and serves in a tokio task. Must run inside a tokio runtime.
pub fn start(
    cfg: &ServerConfig,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    inbound: mpsc::Sender<Inbound>,
    mirrors: crate::mirror_check::Target,
) -> Result<Option<AdminWeb>, AdminError> {
    cfg.check_admin_http()?;
    let Some(want) = cfg.admin_addr()? else {
        return Ok(None);
    };
    let token_path = cfg.data_dir.join(auth::TOKEN_FILE);
    let (token, created) = auth::load_or_create_token(&token_path)?;
    let metrics_token = if want.ip().is_loopback() {
        None
    } else {
        Some(auth::load_or_create_token(&cfg.data_dir.join(auth::METRICS_TOKEN_FILE))?.0)
    };
    let acceptor = match (&cfg.admin_tls_cert, &cfg.admin_tls_key) {
        (Some(c), Some(k)) => Some(tls::acceptor(c, k)?),
        _ => None,
    };
    let bind = |source| AdminError::Bind { addr: want, source };
    let std_listener = std::net::TcpListener::bind(want).map_err(bind)?;
    std_listener.set_nonblocking(true).map_err(bind)?;
    let addr = std_listener.local_addr().map_err(bind)?;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind)?;
    let state = Arc::new(routes::AppState {
        snapshots,
        inbound,
        sessions: auth::Sessions::default(),
        limiter: auth::LoginLimiter::default(),
        token_path,
        metrics_token,
        prometheus: metrics::install(),
        secure_cookie: acceptor.is_some(),
        logs_dir: cfg.data_dir.join("logs").join("plugins"),
        config_rows: config_rows(cfg),
        config_path: cfg.source.clone(),
        admins_lock: tokio::sync::Mutex::new(()),
        mirrors,
        mirror_check_running: Default::default(),
    });
    let app = routes::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stop_rx.await;
    };
    let tls = acceptor.is_some();
    match acceptor {
        Some(acceptor) => {
            let l = tls::TlsListener {
                inner: listener,
                acceptor,
            }
            .tap_io(|_| {});
            tokio::spawn(async move {
                let _ = axum::serve(l, app).with_graceful_shutdown(shutdown).await;
            });
        }
        None => {
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await;
            });
        }
    }
    tracing::info!(%addr, tls, "admin console listening");
    Ok(Some(AdminWeb {
        addr,
        tls,
        new_login_url: created.then(|| auth::login_url(addr, tls, &token)),
        stop: Some(stop_tx),
    }))
}

/// The configuration as the Server page shows it; key paths are hidden.
fn config_rows(cfg: &ServerConfig) -> Vec<(String, String)> {
    let path = |p: &std::path::Path| p.display().to_string();
    let opt = |p: &Option<std::path::PathBuf>| p.as_deref().map(path).unwrap_or_else(|| "—".into());
    vec![
        ("config file".into(), opt(&cfg.source)),
        ("name".into(), cfg.name.clone()),
        ("bind".into(), cfg.bind.to_string()),
        ("tick_hz".into(), cfg.tick_hz.to_string()),
        ("max_players".into(), cfg.max_players.to_string()),
        ("plugin_dir".into(), path(&cfg.plugin_dir)),
        ("data_dir".into(), path(&cfg.data_dir)),
        (
            "plugin_cpu_budget_ms".into(),
            cfg.plugin_cpu_budget_ms.to_string(),
        ),
        (
            "rate_limits.chat_per_sec".into(),
            cfg.rate_limits.chat_per_sec.to_string(),
        ),
        (
            "rate_limits.datagrams_per_sec".into(),
            cfg.rate_limits.datagrams_per_sec.to_string(),
        ),
        (
            "asset_mirrors".into(),
            if cfg.asset_mirrors.is_empty() {
                "—".into()
            } else {
                cfg.asset_mirrors.join(" ")
            },
        ),
        ("check_mirrors".into(), cfg.check_mirrors.to_string()),
        ("mirror_ca".into(), opt(&cfg.mirror_ca)),
        ("admin_http".into(), cfg.admin_http.clone()),
        ("admin_tls_cert".into(), opt(&cfg.admin_tls_cert)),
        (
            "admin_tls_key".into(),
            if cfg.admin_tls_key.is_some() {
                "(set, hidden)".into()
            } else {
                "—".into()
            },
        ),
        (
            "admin_insecure_remote".into(),
            cfg.admin_insecure_remote.to_string(),
        ),
        ("admin token".into(), "(in the data dir, hidden)".into()),
    ]
}
