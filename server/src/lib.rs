//! `shard-server`: the dedicated server — QUIC endpoint, simulation thread,
//! world, chat commands and (in `plugin`) the Python plugin host.
//!
//! Data flows one way (DESIGN.md): connection tasks → bounded inbound queue →
//! simulation thread (the only owner of game state) → per-peer outbound
//! queues → connection tasks. It never depends on `shard-client`.

pub mod admin;
pub mod bundles;
pub mod client_rpc;
pub mod commands;
pub mod config;
pub mod docs;
pub mod mirror_check;
pub mod net;
pub mod plugin;
pub mod publish;
pub mod ratelog;
pub mod sim;
pub mod transfers;
pub mod transport;
pub mod tuning;
pub mod world;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shard_protocol::identity::{Fingerprint, Identity};
use tokio::sync::mpsc;

use crate::config::ServerConfig;
use crate::sim::{Inbound, TickStats};

/// File name of the server's key and certificate inside the data dir.
pub const SERVER_KEY_FILE: &str = "server-key.pem";

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The server key could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] shard_protocol::identity::IdentityError),
    /// The UDP socket could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server running there? choose another with --bind)"
    )]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The simulation thread or the plugin host could not start.
    #[error(transparent)]
    Sim(#[from] sim::SimStartError),
    /// The admin web console could not start.
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
    /// `mirror_ca` cannot be used.
    #[error("mirror_ca: {0}")]
    MirrorCa(#[from] shard_protocol::mirror::MirrorCaError),
}

/// A running server: its address, key, statistics and a way to stop it.
pub struct Server {
    endpoint: quinn::Endpoint,
    inbound: mpsc::Sender<Inbound>,
    sim: Option<std::thread::JoinHandle<()>>,
    fingerprint: Fingerprint,
    stats: Arc<TickStats>,
    flight: Arc<transfers::Flight>,
    admin: Option<admin::AdminWeb>,
}

impl Server {
    /// Loads (or creates) the server key, binds the endpoint and starts the
    /// simulation. Must be called inside a tokio runtime.
    pub fn start(cfg: ServerConfig) -> Result<Self, StartError> {
        let key_path = cfg.data_dir.join(SERVER_KEY_FILE);
        let (identity, created) = Identity::load_or_create(&key_path, "shard-server")?;
        if created {
            tracing::info!(path = %key_path.display(), "created a new server key");
        }
        Self::start_with_identity(cfg, &identity)
    }

    /// Starts with a given identity (tests reuse one key across restarts).
    pub fn start_with_identity(cfg: ServerConfig, identity: &Identity) -> Result<Self, StartError> {
        let configs = transport::PeerConfigs::new(identity.quic_server_config()?, &cfg);
        let bind_err = |source| StartError::Bind {
            addr: cfg.bind,
            source,
        };
        let endpoint = transport::server_endpoint(cfg.bind, &configs).map_err(bind_err)?;
        // Read before anything starts: a bad `mirror_ca` stops the start here.
        let target = mirror_check::Target::of(&cfg)?;
        let (tx, rx) = mpsc::channel(tuning::INBOUND_QUEUE);
        let stats = Arc::new(TickStats::default());
        let cfg = Arc::new(cfg);
        // Record from the first tick on, whether or not the console is on.
        admin::metrics::install();
        let (snap_tx, snap_rx) = admin::snapshot::channel();
        let sim = sim::spawn(cfg.clone(), rx, stats.clone(), snap_tx)?;
        if cfg.check_mirrors && !cfg.asset_mirrors.is_empty() {
            let mut snaps = snap_rx.clone();
            let mirrors = target.clone();
            tokio::spawn(async move {
                // The first snapshot the running simulation publishes has
                // its plugins loaded and their bundles built.
                if snaps.changed().await.is_ok() {
                    let snap = snaps.borrow_and_update().clone();
                    mirror_check::check_and_log(mirrors, snap).await;
                }
            });
        }
        let admin = match admin::start(&cfg, snap_rx, tx.clone(), target) {
            Ok(a) => a,
            Err(e) => {
                // Stop the simulation that already started before reporting.
                let _ = tx.try_send(Inbound::Shutdown);
                let _ = sim.join();
                return Err(e.into());
            }
        };
        let flight = Arc::new(transfers::Flight::new(cfg.bundle_bytes_in_flight));
        let ctx = net::NetCtx {
            inbound: tx.clone(),
            sim_waker: sim::SimWaker::new(sim.thread().clone()),
            limits: cfg.rate_limits.clone(),
            flight: flight.clone(),
            slots: net::AddressSlots::new(cfg.max_per_address),
            idle: Duration::from_secs(cfg.idle_timeout_secs),
            stall: Duration::from_secs(cfg.bundle_stall_secs),
            warns: Arc::new(ratelog::WarnLimiter::default()),
            configs,
        };
        tokio::spawn(net::accept_loop(endpoint.clone(), ctx));
        tracing::info!(addr = %endpoint.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            fingerprint = %identity.fingerprint, "server listening");
        Ok(Self {
            endpoint,
            inbound: tx,
            sim: Some(sim),
            fingerprint: identity.fingerprint,
            stats,
            flight,
            admin,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The server key's fingerprint, which clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The admin console's address, when it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(admin::AdminWeb::addr)
    }

    /// The admin login URL, only when this start created the token (print it once).
    pub fn admin_login_url(&self) -> Option<&str> {
        self.admin.as_ref().and_then(admin::AdminWeb::new_login_url)
    }

    /// Tick time statistics.
    pub fn stats(&self) -> Arc<TickStats> {
        self.stats.clone()
    }

    /// What the bundle service is doing: leases of the server-wide budget in
    /// use and bundle bytes sent (for tests, benchmarks and operators).
    pub fn bundle_flight(&self) -> transfers::FlightStats {
        self.flight.stats()
    }

    /// Runs operator console code (`py CODE`) in the admin namespace.
    pub async fn console(&self, code: &str) -> String {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .inbound
            .send(Inbound::Console {
                code: code.to_string(),
                reply: tx,
            })
            .await
            .is_err()
        {
            return "the simulation has stopped".into();
        }
        rx.await
            .unwrap_or_else(|_| "the simulation has stopped".into())
    }

    /// Tells every client the server is stopping, waits (bounded) for them to
    /// go, and stops the simulation.
    pub async fn shutdown(mut self) {
        if let Some(a) = self.admin.as_mut() {
            a.stop();
        }
        let _ = self.inbound.send(Inbound::Shutdown).await;
        if let Some(sim) = self.sim.take() {
            let _ = tokio::task::spawn_blocking(move || sim.join()).await;
        }
        let _ =
            tokio::time::timeout(tuning::ENDPOINT_DRAIN_TIMEOUT, self.endpoint.wait_idle()).await;
        self.endpoint.close(
            quinn::VarInt::from_u32(net::close_code::KICKED),
            b"the server is stopping",
        );
    }
}

/// Loads the config file if given, else defaults (a missing default file is fine).
pub fn load_config(path: Option<&Path>) -> Result<ServerConfig, config::ConfigError> {
    match path {
        Some(p) => ServerConfig::load(p),
        None => Ok(ServerConfig::default()),
    }
}
