//! `shard-server publish-bundles DIR`: writes every current plugin bundle as
//! `DIR/<sha256 hex>.bundle`, ready to upload to any static host, S3 bucket
//! or CDN listed in `asset_mirrors`.
//!
//! The bundles are built by [`crate::bundles::build_bundle`], the code the
//! server runs when it loads a plugin, so the files hash to exactly what the
//! server announces. Each file is written under a temporary name and renamed
//! (a mirror never serves half a file), a file already present with the
//! right hash is left alone (idempotent), and nothing is ever deleted: a
//! player still on an older version keeps finding it. Everything written is
//! readable by all, whatever the umask: the files are public by design, and
//! a web server running as another user must be able to serve them.

use std::fs;
use std::path::{Path, PathBuf};

use shard_protocol::bundle_file_name;

use crate::bundles::{ServedBundle, build_bundle_from_dir};
use crate::plugin::loader::discover;

/// What happened to one plugin's bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The file was written (it was missing or held other bytes).
    Wrote {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        bytes: u64,
    },
    /// The file was already there with this exact content.
    Skipped {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
    },
}

/// Why publishing stopped or a plugin could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The plugins folder could not be listed.
    #[error("cannot list plugins in {dir}: {source}")]
    ListPlugins {
        /// The folder.
        dir: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file operation in the output folder failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The output path exists and is not a folder.
    #[error("{path} is not a folder: publish-bundles writes a folder of <sha256>.bundle files")]
    NotAFolder {
        /// The path given.
        path: String,
    },
    /// A bundle file could not be written into the output folder.
    #[error(transparent)]
    Write(#[from] shard_cache::CacheError),
    /// A plugin's bundle fails the checks a load runs (so the server would not announce it).
    #[error("plugin {plugin}: its bundle would not load: {reason}")]
    Bundle {
        /// Plugin name.
        plugin: String,
        /// What the bundle check said.
        reason: crate::bundles::BundleBuildError,
    },
}

/// Outcome of one run: what was written or skipped, and the plugins that failed.
#[derive(Debug, Default)]
pub struct PublishReport {
    /// One entry per plugin whose bundle is now in the folder.
    pub published: Vec<Published>,
    /// Plugins whose bundle could not be built or written.
    pub failed: Vec<PublishError>,
}

/// Builds every plugin bundle of `plugins` and writes it into `out`
/// (created if missing); see the module docs for the guarantees.
pub fn publish_bundles(plugins: &Path, out: &Path) -> Result<PublishReport, PublishError> {
    let bundles = plugin_bundles(plugins)?;
    if fs::metadata(out).is_ok_and(|m| !m.is_dir()) {
        return Err(PublishError::NotAFolder {
            path: out.display().to_string(),
        });
    }
    if !out.exists() {
        fs::create_dir_all(out).map_err(io("creating", out))?;
        readable_by_all(out, 0o555)?;
    }
    let mut report = PublishReport::default();
    for (name, built) in bundles {
        let bundle = match built {
            Ok(b) => b,
            Err(e) => {
                // Reported once, by the caller, from `report.failed`.
                report.failed.push(e);
                continue;
            }
        };
        match write_atomically(out, &bundle.sha256, &bundle.bytes) {
            Ok(true) => report.published.push(Published::Wrote {
                plugin: name,
                path: out.join(bundle_file_name(&bundle.sha256)),
                bytes: u64::try_from(bundle.bytes.len()).unwrap_or(u64::MAX),
            }),
            Ok(false) => report.published.push(Published::Skipped {
                plugin: name,
                path: out.join(bundle_file_name(&bundle.sha256)),
            }),
            Err(e) => report.failed.push(e),
        }
    }
    Ok(report)
}

/// The plugins of `plugins`, each with its bundle built as a load builds
/// it (or why it cannot be), one at a time as the iterator is read: what
/// `publish-bundles` writes and `check-mirrors` looks for on the mirrors.
pub fn plugin_bundles(
    plugins: &Path,
) -> Result<impl Iterator<Item = (String, Result<ServedBundle, PublishError>)>, PublishError> {
    let found = discover(plugins).map_err(|source| PublishError::ListPlugins {
        dir: plugins.display().to_string(),
        source,
    })?;
    let plugins = plugins.to_path_buf();
    Ok(found.into_keys().map(move |name| {
        // The version is not part of the packed bytes, only of the announcement.
        let built =
            build_bundle_from_dir(&name, "publish", &plugins.join(&name)).map_err(|reason| {
                PublishError::Bundle {
                    plugin: name.clone(),
                    reason,
                }
            });
        (name, built)
    }))
}

/// Writes `bytes` as `out/<sha>.bundle` atomically
/// (`shard_cache::write_atomic`); returns false when the file already holds
/// exactly these bytes.
fn write_atomically(out: &Path, sha256: &[u8; 32], bytes: &[u8]) -> Result<bool, PublishError> {
    let dest = out.join(bundle_file_name(sha256));
    // Only a file of the right length is read to compare (whatever else
    // sits under the name, however large, is replaced unread).
    let same_len = fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64);
    if same_len
        && let Ok(existing) = fs::read(&dest)
        && existing == bytes
    {
        return Ok(false);
    }
    shard_cache::write_atomic(&dest, bytes)?;
    readable_by_all(&dest, 0o444)?;
    Ok(true)
}

/// Adds `bits` (read, and for a folder search) for everyone to `path`'s
/// mode: a umask such as 077 would leave the output unreadable to nginx
/// after an `rsync -a`, and every player would fall back to the game server.
fn readable_by_all(path: &Path, bits: u32) -> Result<(), PublishError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(io("reading the mode of", path))?
            .permissions()
            .mode();
        if mode & bits != bits {
            fs::set_permissions(path, fs::Permissions::from_mode(mode | bits))
                .map_err(io("making readable", path))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, bits);
    Ok(())
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PublishError {
    let path = path.display().to_string();
    move |source| PublishError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(dir: &Path, name: &str, asset: &[u8]) {
        fs::write(
            dir.join(format!("{name}.py")),
            "__plugin__ = {'name': 'x', 'version': '1'}\n",
        )
        .unwrap();
        fs::create_dir_all(dir.join(name).join("assets")).unwrap();
        let archive = shard_cache::content::rdar::RdarBuilder::new()
            .file("base\\shard\\blob.bin", asset.to_vec())
            .build();
        fs::write(dir.join(name).join("assets").join("a.archive"), archive).unwrap();
    }

    #[test]
    fn writes_each_bundle_under_its_hash_then_skips_and_never_deletes() {
        let plugins = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        plugin(plugins.path(), "alpha", b"one");
        plugin(plugins.path(), "beta", b"two");
        let first = publish_bundles(plugins.path(), out.path()).unwrap();
        assert!(first.failed.is_empty(), "{:?}", first.failed);
        assert_eq!(first.published.len(), 2);
        for p in &first.published {
            let Published::Wrote { path, .. } = p else {
                panic!("expected a write: {p:?}")
            };
            let bytes = fs::read(path).unwrap();
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(name, bundle_file_name(&shard_cache::sha256(&bytes)));
        }
        let again = publish_bundles(plugins.path(), out.path()).unwrap();
        assert!(
            again
                .published
                .iter()
                .all(|p| matches!(p, Published::Skipped { .. }))
        );
        // A new version adds a file; the old one stays for players still on it.
        plugin(plugins.path(), "alpha", b"one, changed");
        let third = publish_bundles(plugins.path(), out.path()).unwrap();
        assert_eq!(
            third
                .published
                .iter()
                .filter(|p| matches!(p, Published::Wrote { .. }))
                .count(),
            1
        );
        let files: Vec<_> = fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files.len(), 3, "{files:?}");
    }

    #[test]
    fn an_output_path_that_is_a_file_is_refused_by_name_and_kept() {
        let plugins = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        plugin(plugins.path(), "alpha", b"one");
        let file = dir.path().join("mirror");
        fs::write(&file, b"notes").unwrap();
        let err = publish_bundles(plugins.path(), &file).unwrap_err();
        assert!(matches!(err, PublishError::NotAFolder { .. }), "{err}");
        assert!(err.to_string().contains("is not a folder"), "{err}");
        assert_eq!(fs::read(&file).unwrap(), b"notes");
    }

    #[test]
    fn a_corrupted_file_is_replaced() {
        let plugins = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        plugin(plugins.path(), "alpha", b"one");
        let first = publish_bundles(plugins.path(), out.path()).unwrap();
        let Published::Wrote { path, .. } = &first.published[0] else {
            panic!("expected a write")
        };
        let good = fs::read(path).unwrap();
        fs::write(path, b"garbage").unwrap();
        let again = publish_bundles(plugins.path(), out.path()).unwrap();
        assert!(matches!(again.published[0], Published::Wrote { .. }));
        assert_eq!(fs::read(path).unwrap(), good);
        // The same length with one byte changed is compared, and replaced.
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 1;
        fs::write(path, &flipped).unwrap();
        let third = publish_bundles(plugins.path(), out.path()).unwrap();
        assert!(matches!(third.published[0], Published::Wrote { .. }));
        assert_eq!(fs::read(path).unwrap(), good);
    }
}
