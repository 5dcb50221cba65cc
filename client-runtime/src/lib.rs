//! `shard-client`: the client runtime — connection and identity, the event
//! stream the game (or the headless client) consumes, and RPC dispatch.
//!
//! It never depends on `shard-server`; the wire language comes from
//! `shard-protocol` and the on-disk cache from `shard-cache`.

pub mod address;
pub mod bundles;
mod dial;
pub mod dispatch;
pub mod events;
pub mod ffi;
pub mod game;
pub mod glue;
pub mod json;
pub mod mirror;
pub mod offer;
pub mod queue;
pub mod reach;
pub mod session;
pub mod tuning;

pub use address::{AddressError, ServerAddress};
pub use dispatch::Dispatcher;
pub use events::ClientEvent;
pub use mirror::{MirrorSettings, MirrorTuning};
pub use offer::{ContentSettings, OfferMode};
pub use session::{ClientError, ConnectOptions, OfferError, SendPositionError, Session};

use std::path::PathBuf;

/// Default location of the player's key: `<user data dir>/shard/identity.pem`.
pub fn default_identity_path() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("shard")
        .join("identity.pem")
}

/// Default runtime cache folder: `./runtime_cache`.
pub fn default_cache_dir() -> PathBuf {
    PathBuf::from("runtime_cache")
}
