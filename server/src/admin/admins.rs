//! Writing the admin list back to `server.toml`: only the `admins` key
//! changes (comments and other keys stay, via `toml_edit`), and the file is
//! replaced atomically (temporary file beside it, then rename).

use std::path::{Path, PathBuf};

use shard_protocol::identity::Fingerprint;

/// Why the admin list could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum AdminsError {
    /// The server runs on defaults, with no file to write to.
    #[error(
        "the server was started without --config, so there is no server.toml to write the admin list to"
    )]
    NoConfigFile,
    /// Reading or replacing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file no longer parses (someone edited it since the server started).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// `admins` is there but is not a list of fingerprint strings.
    #[error("{path}: key `admins` must be a list of 64-hex-digit fingerprints")]
    Shape {
        /// The file.
        path: PathBuf,
    },
}

/// Adds (`add`) or removes `who` in the `admins` list of the file at `path`
/// and returns the resulting list.
pub fn edit_admins(
    path: Option<&Path>,
    who: &Fingerprint,
    add: bool,
) -> Result<Vec<Fingerprint>, AdminsError> {
    let path = path.ok_or(AdminsError::NoConfigFile)?;
    let io = |source| AdminsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| AdminsError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
    let shape = || AdminsError::Shape {
        path: path.to_path_buf(),
    };
    let mut list: Vec<Fingerprint> = match doc.get("admins") {
        None => Vec::new(),
        Some(item) => {
            let arr = item.as_array().ok_or_else(shape)?;
            arr.iter()
                .map(|v| v.as_str().and_then(|s| Fingerprint::parse(s).ok()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(shape)?
        }
    };
    list.retain(|f| f != who);
    if add {
        list.push(*who);
    }
    let mut arr = toml_edit::Array::new();
    for f in &list {
        arr.push(f.to_hex());
    }
    match doc.get_mut("admins").and_then(|i| i.as_array_mut()) {
        // Keep the array's own decoration (comments after it, spacing).
        Some(existing) => {
            existing.clear();
            for f in &list {
                existing.push(f.to_hex());
            }
        }
        None => doc["admins"] = toml_edit::value(arr),
    }
    replace_file(path, doc.to_string().as_bytes()).map_err(io)?;
    Ok(list)
}

/// Writes `bytes` to a temporary file beside `path` (same permissions) and
/// renames it over `path`, so a reader sees the old file or the new one.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "server.toml".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let perms = std::fs::metadata(path)?.permissions();
    let mut f = std::fs::File::create(&tmp)?;
    f.set_permissions(perms)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn adding_and_removing_keeps_the_other_keys_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        let text = format!(
            "# my server\nname = \"hex\" # the name\nadmins = [\"{A}\"]\n\n[rate_limits]\nchat_per_sec = 7\n"
        );
        std::fs::write(&path, text).unwrap();
        let b = Fingerprint::parse(B).unwrap();
        let list = edit_admins(Some(&path), &b, true).unwrap();
        assert_eq!(list.len(), 2);
        let out = std::fs::read_to_string(&path).unwrap();
        assert!(
            out.contains("# my server") && out.contains("# the name"),
            "{out}"
        );
        assert!(out.contains(A) && out.contains(B), "{out}");
        let cfg = crate::config::ServerConfig::parse(&out, "server.toml").unwrap();
        assert_eq!(cfg.rate_limits.chat_per_sec, 7);
        assert_eq!(cfg.admins.len(), 2);

        let a = Fingerprint::parse(A).unwrap();
        let list = edit_admins(Some(&path), &a, false).unwrap();
        assert_eq!(list, vec![b]);
        let out = std::fs::read_to_string(&path).unwrap();
        assert!(!out.contains(A) && out.contains(B), "{out}");
    }

    #[test]
    fn a_file_without_admins_gets_the_key_and_no_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "name = \"x\"\n").unwrap();
        let a = Fingerprint::parse(A).unwrap();
        edit_admins(Some(&path), &a, true).unwrap();
        let cfg = crate::config::ServerConfig::load(&path).unwrap();
        assert_eq!(cfg.admins, vec![A.to_string()]);
        assert!(matches!(
            edit_admins(None, &a, true),
            Err(AdminsError::NoConfigFile)
        ));
    }
}
