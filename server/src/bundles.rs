//! Plugin bundles on the server: packing and checking them when a plugin
//! loads (the plugin host's load hook), and the catalog of what is announced
//! to clients. Every client shares the one packed copy held here.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use shard_cache::BundleSource;
use shard_protocol::ServerMsg;

use crate::plugin::{PluginLoadHook, PluginSnapshot};

/// A packed, checked bundle ready to stream.
#[derive(Debug, Clone)]
pub struct ServedBundle {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// SHA-256 of `bytes`.
    pub sha256: [u8; 32],
    /// The packed bundle, shared by every transfer.
    pub bytes: Bytes,
    /// Total unpacked size of its files (announced so clients can offer it).
    pub unpacked_len: u64,
    /// Number of client scripts (`client/*.reds`) it carries.
    pub client_scripts: u16,
    /// `fn_hash` of each RPC the client scripts register.
    pub rpc_whitelist: Vec<u32>,
    /// The RPC names themselves (for authors and logs).
    pub rpc_names: Vec<String>,
    /// What the game will load from it: archives with their `.xl`, data files, tweaks.
    pub content: shard_cache::ContentReport,
    /// Constructs in the client scripts that only one REDscript version
    /// accepts (empty: both compile them), for `check-plugin`'s report.
    pub dialect: Vec<shard_reds::DialectUse>,
    /// Sorted `fn_hash` of each upstream RPC the client scripts send with
    /// `SendServerRpc`: the only names a `ClientRpc` may carry to this plugin.
    pub upstream_whitelist: Vec<u32>,
}

impl ServedBundle {
    /// The announcement clients get for this bundle.
    pub fn announce(&self, plugin_id: u16) -> ServerMsg {
        ServerMsg::PluginAnnounce {
            plugin_id,
            name: self.name.clone(),
            version: self.version.clone(),
            bundle_sha256: self.sha256,
            bundle_len: self.bytes.len() as u64,
            unpacked_len: self.unpacked_len,
            client_scripts: self.client_scripts,
            rpc_whitelist: self.rpc_whitelist.clone(),
        }
    }
}

/// Bundles of the plugin versions that passed their load checks, by plugin
/// name, and whether that set changed since the simulation last announced it
/// (so the tick does no announcement work while nothing changes).
#[derive(Debug, Default)]
pub struct CatalogState {
    bundles: BTreeMap<String, ServedBundle>,
    changed: bool,
}

impl CatalogState {
    /// The bundle of plugin `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<&ServedBundle> {
        self.bundles.get(name)
    }

    /// Every bundle, by plugin name.
    pub fn bundles(&self) -> &BTreeMap<String, ServedBundle> {
        &self.bundles
    }

    /// Whether the set changed since the last call (and clears the mark).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    fn insert(&mut self, name: &str, bundle: ServedBundle) {
        self.bundles.insert(name.to_string(), bundle);
        self.changed = true;
    }

    fn remove(&mut self, name: &str) {
        self.changed |= self.bundles.remove(name).is_some();
    }
}

/// The catalog shared by the plugin host's load hook and the simulation.
pub type Catalog = Rc<RefCell<CatalogState>>;

/// Why a plugin's bundle was refused at load; the text is what the plugin
/// author needs to read, with every diagnostic on its own line.
#[derive(Debug, thiserror::Error)]
pub enum BundleBuildError {
    /// The bundle folder could not be read (size, paths, file kinds); the
    /// reading happened once, earlier, so this carries its message.
    #[error("{0}")]
    Read(String),
    /// The bundle could not be packed.
    #[error("{0}")]
    Pack(shard_cache::BundleError),
    /// The packed bundle does not unpack as a client would unpack it.
    #[error("{0}")]
    Unpack(shard_cache::BundleError),
    /// The game content (archives, `.xl`, tweaks) breaks the content policy.
    #[error("bundle content breaks the content policy:\n{}", diagnostics.join("\n"))]
    Content {
        /// One line per problem, each starting with the file it is in.
        diagnostics: Vec<String>,
    },
    /// A client script is not UTF-8 text.
    #[error("{path}: a client script must be UTF-8 text ({source})")]
    ScriptNotText {
        /// The script, as shown to the author.
        path: String,
        /// Where the text stops being UTF-8.
        source: std::str::Utf8Error,
    },
    /// The client scripts break the REDscript sandbox policy.
    #[error("client scripts break the sandbox policy:\n{}", diagnostics.join("\n"))]
    Scripts {
        /// One line per problem: `file:line:col [rule] message`.
        diagnostics: Vec<String>,
    },
}

/// Packs a plugin's bundle (read once into `source`), checks its game
/// content (archives, `.xl`, tweaks) with the same shard-cache check clients
/// run before installing, and its client scripts against the sandbox policy;
/// the error is what the plugin author needs to read.
pub fn build_bundle(
    name: &str,
    version: &str,
    source: &BundleSource,
) -> Result<ServedBundle, BundleBuildError> {
    let packed = source.pack().map_err(BundleBuildError::Pack)?;
    let content = check_content(name, source.dir(), &packed)?;
    let (report, scripts) = check_client_scripts(source)?;
    Ok(ServedBundle {
        name: name.to_string(),
        version: version.to_string(),
        sha256: packed.sha256,
        bytes: Bytes::from(packed.bytes),
        unpacked_len: packed.unpacked_len,
        client_scripts: u16::try_from(scripts).unwrap_or(u16::MAX),
        rpc_whitelist: shard_reds::rpc_whitelist(&report.rpc_names),
        rpc_names: report.rpc_names,
        upstream_whitelist: shard_reds::rpc_whitelist(&report.upstream_names),
        dialect: report.dialect,
        content,
    })
}

/// Reads the bundle folder `dir` once and builds its bundle as
/// [`build_bundle`] does: for tools (`check-plugin`, `publish-bundles`) that
/// have no load snapshot at hand.
pub fn build_bundle_from_dir(
    name: &str,
    version: &str,
    dir: &Path,
) -> Result<ServedBundle, BundleBuildError> {
    let source =
        shard_cache::read_plugin_dir(dir).map_err(|e| BundleBuildError::Read(e.to_string()))?;
    build_bundle(name, version, &source)
}

/// Runs the content check on the packed bundle exactly as a client will
/// (unpacking it in memory, with every client-side refusal);
/// diagnostics are prefixed with the bundle folder so authors find the file.
fn check_content(
    name: &str,
    bundle_dir: &Path,
    packed: &shard_cache::PackedBundle,
) -> Result<shard_cache::ContentReport, BundleBuildError> {
    let unpacked = shard_cache::unpack_bundle(&packed.bytes, &packed.sha256)
        .map_err(BundleBuildError::Unpack)?;
    shard_cache::check_bundle_content(name, &unpacked).map_err(|e| BundleBuildError::Content {
        diagnostics: e
            .diagnostics
            .iter()
            .map(|d| format!("{}/{d}", bundle_dir.display()))
            .collect(),
    })
}

/// Runs the REDscript sandbox check on the bundle's `client/*.reds` (named by
/// their path on disk in diagnostics); returns the report (the RPC names they
/// register and send) with the number of scripts, or every diagnostic
/// (file:line:col [rule] message).
fn check_client_scripts(
    source: &BundleSource,
) -> Result<(shard_reds::CheckReport, usize), BundleBuildError> {
    let mut files = Vec::new();
    for (rel, data) in source.files() {
        if !shard_cache::is_client_script(rel) {
            continue;
        }
        let shown = source.dir().join(rel).display().to_string();
        let text = match std::str::from_utf8(data) {
            Ok(t) => t.to_owned(),
            Err(source) => {
                return Err(BundleBuildError::ScriptNotText {
                    path: shown,
                    source,
                });
            }
        };
        files.push((shown, text));
    }
    let report = shard_reds::check_scripts(&files);
    if report.diagnostics.is_empty() {
        Ok((report, files.len()))
    } else {
        Err(BundleBuildError::Scripts {
            diagnostics: report.diagnostics.iter().map(|d| d.to_string()).collect(),
        })
    }
}

/// The plugin host's load hook: builds the bundle of each new plugin version
/// and files it in the catalog; a failure rejects that version.
pub struct BundleHook {
    /// Shared with the simulation, which announces what changed.
    pub catalog: Catalog,
}

impl PluginLoadHook for BundleHook {
    fn check(
        &mut self,
        name: &str,
        version: &str,
        snap: &PluginSnapshot,
    ) -> Result<(), BundleBuildError> {
        let source = snap
            .bundle
            .as_ref()
            .map_err(|e| BundleBuildError::Read(e.to_string()))?;
        let bundle = build_bundle(name, version, source)?;
        let c = &bundle.content;
        tracing::info!(
            plugin = name,
            bytes = bundle.bytes.len(),
            archives = c.archives.len(),
            xl = c.archives.iter().filter(|a| a.xl.is_some()).count(),
            tweaks = c.tweaks.len(),
            scripts_rpcs = bundle.rpc_names.len(),
            "bundle checked"
        );
        self.catalog.borrow_mut().insert(name, bundle);
        Ok(())
    }

    fn unloaded(&mut self, name: &str) {
        self.catalog.borrow_mut().remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The served bundle comes from the files as the snapshot read them: a
    /// save landing after the read (mid-load) changes neither the bundle nor
    /// its checks, and the next snapshot sees it with a new hash.
    #[test]
    fn a_load_uses_the_one_snapshot_it_read() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("hud.py");
        let dir = t.path().join("hud");
        write(
            t.path(),
            "hud.py",
            "__plugin__ = {'name': 'hud', 'version': '1'}\n",
        );
        write(&dir, "client/hud.reds", "func A() -> Void {}\n");
        let snap = PluginSnapshot::read(&src, &dir).unwrap();
        let expected = shard_cache::pack_plugin_dir(&dir).unwrap();

        // A save after the read: a script that breaks the policy, one more script.
        write(
            &dir,
            "client/hud.reds",
            "func A() -> Void { NotAllowed(); }\n",
        );
        write(&dir, "client/b.reds", "func B() -> Void {}\n");
        let source = snap.bundle.as_ref().unwrap();
        let built = build_bundle("hud", "1", source).unwrap();
        assert_eq!(built.sha256, expected.sha256);
        assert_eq!(built.client_scripts, 1);

        let later = PluginSnapshot::read(&src, &dir).unwrap();
        assert_ne!(later.hash, snap.hash);
        let err = build_bundle("hud", "1", later.bundle.as_ref().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("sandbox policy"), "{err}");
        assert!(err.contains("hud/client/hud.reds"), "{err}");
    }

    /// What the hash covers: an empty folder (it is in the bundle) and a
    /// bundle error both change it; reading twice does not.
    #[test]
    fn the_hash_follows_the_bundle() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("p.py");
        let dir = t.path().join("p");
        write(t.path(), "p.py", "x = 1\n");
        let a = PluginSnapshot::read(&src, &dir).unwrap();
        assert_eq!(a.hash, PluginSnapshot::read(&src, &dir).unwrap().hash);
        std::fs::create_dir_all(dir.join("assets/empty")).unwrap();
        let b = PluginSnapshot::read(&src, &dir).unwrap();
        assert_ne!(a.hash, b.hash);
        write(&dir, "assets/bad.exe", "MZ");
        let c = PluginSnapshot::read(&src, &dir).unwrap();
        assert!(c.bundle.is_err());
        assert_ne!(b.hash, c.hash);
        assert_eq!(c.source_text(), Ok("x = 1\n"));
    }
}
