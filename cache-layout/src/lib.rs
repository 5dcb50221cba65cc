//! `shard-cache`: the plugin bundle format and the client's on-disk
//! `runtime_cache/` folder.
//!
//! A bundle is one plugin's `assets/**`, `tweaks/*` and `client/*.reds`, packed as a
//! deterministic tar compressed with zstd (level 3) and identified by the
//! SHA-256 of those bytes. The server reads a plugin folder once with
//! [`read_plugin_dir`] and packs that [`BundleSource`] (and checks it with
//! [`unpack_bundle`], in memory, as a client would); the client runtime
//! keeps untrusted bundles in a [`RuntimeCache`]: resumable downloads in
//! `partial/` hashed as they are written ([`PartialFile`]), a
//! content-addressed `store/`, read-only `plugins/<name>/` installs unpacked
//! by streaming into a staging folder, checked there and swapped in
//! atomically, and pinned server keys in `known_servers` (see `README.md`
//! beside this crate).
//! [`check_bundle_content`] checks what the game will load from a bundle
//! (archives, ArchiveXL `.xl`, TweakXL tweaks); `install` runs it too.
//!
//! Every cap comes from `shard_protocol::limits`. This crate never depends on
//! `shard-server`, `shard-client` or `shard-reds`: both sides depend on it, and
//! the REDscript sandbox check is the caller's job before installing.

#![forbid(unsafe_code)]

mod answers;
mod bundle;
mod cache;
pub mod content;
mod error;
mod fsutil;
mod install;
mod known_servers;
mod partial;
mod usage;

pub use answers::{ANSWERS_FILE, ContentAnswer};
pub use bundle::{
    ASSET_EXTENSIONS, ASSET_FLAT_EXTENSIONS, ASSETS_DIR, BUNDLE_ROOTS, BundleFile, BundleSource,
    CLIENT_DIR, CLIENT_EXTENSIONS, FileContents, PackedBundle, TWEAK_EXTENSIONS,
    TWEAK_FORMAT_REFUSED, TWEAKS_DIR, UnpackedBundle, check_entry_path, extension_allowed,
    in_client_dir, is_client_script, is_windows_device_name, pack_plugin_dir, read_plugin_dir,
    sha256, unpack_bundle,
};
pub use cache::{
    InstallRecord, InstalledPlugin, KNOWN_SERVERS_FILE, LOCK_FILE, MANIFEST_FILE, PARTIAL_DIR,
    PLUGINS_DIR, PROCESS_PREFIX, PluginReport, RuntimeCache, STORE_DIR, VerifyStatus,
    WRITE_LOCK_FILE, parse_sha256_hex, validate_plugin_name, validate_version,
};
pub use content::{
    ArchiveFiles, ContentError, ContentReport, Diagnostic, GameResources, check_bundle_content,
    client_scripts_digest, game_resources,
};
pub use error::{BundleError, CacheError, mb};
pub use fsutil::write_atomic;
pub use install::{CrashPoint, InstallRequest, StagedInstall};
pub use known_servers::PinOutcome;
pub use partial::{PartialFile, VerifiedBundle};
pub use usage::{BundleUse, EvictStep, EvictedBundle, ServerUsage, TEST_PAUSE_ENV, USAGE_FILE};
