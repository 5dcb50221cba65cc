//! The content check of a bundle: what the game will load from it must be
//! well-formed and may only add. Runs on the server when a plugin loads and
//! again on the client inside [`crate::RuntimeCache::install`], so a server
//! cannot push around it; one function, [`check_bundle_content`], for both.
//!
//! - `assets/*.archive`: parsed as RDAR with every bound checked ([`rdar`]);
//! - `assets/<name>.archive.xl`: ArchiveXL YAML beside its archive, limited
//!   keys, every referenced path inside the bundle (the `xl` module);
//! - `assets/**/*.csv|json`: must be referenced by an `.xl`, JSON must parse;
//! - `tweaks/*.yaml|yml`: TweakXL YAML, add-only under the plugin's
//!   namespace ([`tweak`]).
//!
//! Every problem is a [`Diagnostic`] with file, line (0 when it concerns
//! the whole file), a rule id and what to do, like the REDscript check.

pub mod rdar;
pub mod tweak;
mod xl;
pub mod yaml;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::bundle::{
    ASSETS_DIR, BundleFile, CLIENT_DIR, CLIENT_EXTENSIONS, FileContents, TWEAKS_DIR, UnpackedBundle,
};

pub use tweak::{TweakAdds, tweak_namespace};

/// One problem found in a bundle's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Bundle path of the file (`tweaks/cc.yaml`).
    pub file: String,
    /// 1-based line, or 0 when the problem concerns the whole file.
    pub line: usize,
    /// Stable rule id (`tweak-record`, `rdar-bounds`, `xl-ref` …).
    pub rule: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}: [{}] {}",
                self.file, self.line, self.rule, self.message
            )
        } else {
            write!(f, "{}: [{}] {}", self.file, self.rule, self.message)
        }
    }
}

/// A bundle whose content was refused, with every diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content of {plugin} refused: {}", join(diagnostics))]
pub struct ContentError {
    /// The plugin whose bundle it is.
    pub plugin: String,
    /// Every problem, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

fn join(d: &[Diagnostic]) -> String {
    d.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One archive of an accepted bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Bundle path (`assets/mobile_cc.archive`).
    pub path: String,
    /// Files inside it.
    pub files: usize,
    /// Its `.xl` (bundle path), if it has one.
    pub xl: Option<String>,
}

/// One tweak file of an accepted bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TweakReport {
    /// Bundle path (`tweaks/commandcenter.yaml`).
    pub path: String,
    /// What it adds.
    pub adds: TweakAdds,
}

/// What an accepted bundle gives the game, for `check-plugin` and load requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentReport {
    /// Archives, in path order.
    pub archives: Vec<ArchiveReport>,
    /// Loose `.csv`/`.json` files the `.xl` files reference.
    pub data_files: Vec<String>,
    /// Tweak files, in path order.
    pub tweaks: Vec<TweakReport>,
}

/// One archive to load, with its ArchiveXL file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveFiles {
    /// The `.archive`.
    pub archive: PathBuf,
    /// Its `.xl` (`<archive>.xl`), if there is one.
    pub xl: Option<PathBuf>,
}

/// What the game loads from one installed plugin folder, and a digest of
/// those files so a caller can tell whether they changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GameResources {
    /// Archives in `assets/`, by name.
    pub archives: Vec<ArchiveFiles>,
    /// Tweak files in `tweaks/`, by name.
    pub tweaks: Vec<PathBuf>,
    /// SHA-256 over the relative paths and contents of the files above and
    /// of the data files the `.xl` files reference (all of `assets/`).
    #[serde(skip)]
    pub digest: [u8; 32],
}

impl GameResources {
    /// Whether the folder gives the game nothing to load.
    pub fn is_empty(&self) -> bool {
        self.archives.is_empty() && self.tweaks.is_empty()
    }
}

/// Lists the game content of an installed plugin folder
/// (`runtime_cache/plugins/<name>/`): the archives with their `.xl` and the
/// tweaks, with a digest of everything under `assets/` and `tweaks/`.
pub fn game_resources(plugin_dir: &Path) -> std::io::Result<GameResources> {
    let mut files = Vec::new();
    for root in [ASSETS_DIR, TWEAKS_DIR] {
        crate::cache::collect_files(&plugin_dir.join(root), root, &mut files);
    }
    files.sort();
    let mut hasher = Sha256::new();
    let mut archives = Vec::new();
    let mut tweaks = Vec::new();
    for rel in &files {
        let path = plugin_dir.join(rel);
        hash_file(&mut hasher, rel, &path)?;
        if rel.starts_with("tweaks/") {
            tweaks.push(path);
        } else if rel.ends_with(".archive") && rel.matches('/').count() == 1 {
            let xl = plugin_dir.join(format!("{rel}.xl"));
            archives.push(ArchiveFiles {
                xl: xl.is_file().then_some(xl),
                archive: path,
            });
        }
    }
    Ok(GameResources {
        archives,
        tweaks,
        digest: hasher.finalize().into(),
    })
}

/// Feeds one file (relative path and contents, each length-prefixed so no
/// two different sets of files hash alike) into a folder digest, streaming
/// it so a large archive is never held in memory.
fn hash_file(hasher: &mut Sha256, rel: &str, path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    hasher.update((rel.len() as u64).to_le_bytes());
    hasher.update(rel.as_bytes());
    hasher.update(len.to_le_bytes());
    let read = std::io::copy(&mut std::io::Read::take(file, len), hasher)?;
    if read != len {
        return Err(std::io::Error::other(format!(
            "{} changed while it was read ({len} bytes, then {read})",
            path.display()
        )));
    }
    Ok(())
}

/// A digest of the client scripts (`client/*.reds`, paths and contents) of
/// an installed plugin folder, or `None` when it has none: the client asks
/// the game to recompile scripts only when this changes, not whenever the
/// bundle hash does (a new asset or a Python-only change needs no recompile).
pub fn client_scripts_digest(plugin_dir: &Path) -> std::io::Result<Option<[u8; 32]>> {
    let mut files = Vec::new();
    crate::cache::collect_files(&plugin_dir.join(CLIENT_DIR), CLIENT_DIR, &mut files);
    files.retain(|rel| {
        CLIENT_EXTENSIONS
            .iter()
            .any(|ext| rel.rsplit_once('.').is_some_and(|(_, e)| e == *ext))
    });
    if files.is_empty() {
        return Ok(None);
    }
    files.sort();
    let mut hasher = Sha256::new();
    for rel in &files {
        hash_file(&mut hasher, rel, &plugin_dir.join(rel))?;
    }
    Ok(Some(hasher.finalize().into()))
}

/// The diagnostic for a YAML file that could not be read within the limits.
fn yaml_diagnostic(file: &str, err: &yaml::YamlError) -> Diagnostic {
    Diagnostic {
        file: file.to_owned(),
        line: err.line(),
        rule: err.rule(),
        message: err.to_string(),
    }
}

/// The bytes of a file the checks parse (text: YAML, JSON, CSV). Only
/// archives are ever staged instead of held, so this is never empty for them
/// by accident.
fn text_of(f: &BundleFile) -> &[u8] {
    f.contents.in_memory().unwrap_or_default()
}

/// Checks an archive wherever its bytes are: in memory, or staged on disk
/// (read by offset, never whole).
fn archive_info(contents: &FileContents) -> Result<rdar::ArchiveInfo, rdar::ArchiveError> {
    match contents {
        FileContents::Memory(bytes) => rdar::check_archive(bytes),
        FileContents::Staged { path, len } => {
            let file = std::fs::File::open(path).map_err(|e| rdar::ArchiveError::Unreadable {
                detail: format!("{}: {e}", path.display()),
            })?;
            rdar::check_archive_file(&file, *len)
        }
    }
}

/// Checks everything the game will load from `bundle` (the plugin's name
/// sets the tweak namespace); returns what it holds or every problem.
pub fn check_bundle_content(
    plugin: &str,
    bundle: &UnpackedBundle,
) -> Result<ContentReport, ContentError> {
    let mut diags = Vec::new();
    let mut report = ContentReport::default();
    let ext = |p: &str| {
        p.rsplit_once('.')
            .map(|(_, e)| e.to_owned())
            .unwrap_or_default()
    };
    let mut packed = HashSet::new();
    let mut archives = BTreeSet::new();
    let mut loose = HashSet::new();
    for f in &bundle.files {
        let e = ext(&f.path);
        if !f.path.starts_with(&format!("{ASSETS_DIR}/")) {
            continue;
        }
        match e.as_str() {
            "archive" => match archive_info(&f.contents) {
                Ok(info) => {
                    packed.extend(info.file_hashes.iter().copied());
                    archives.insert(f.path.clone());
                    report.archives.push(ArchiveReport {
                        path: f.path.clone(),
                        files: info.file_hashes.len(),
                        xl: None,
                    });
                }
                Err(err) => diags.push(Diagnostic {
                    file: f.path.clone(),
                    line: 0,
                    rule: err.rule(),
                    message: err.to_string(),
                }),
            },
            "csv" | "json" => {
                loose.insert(f.path.to_lowercase());
            }
            _ => {}
        }
    }
    let mut referenced = BTreeSet::new();
    let resolver = xl::Resolver {
        loose: &loose,
        packed: &packed,
    };
    for f in bundle.files.iter().filter(|f| ext(&f.path) == "xl") {
        let Some(archive) = f
            .path
            .strip_suffix(".xl")
            .filter(|a| a.ends_with(".archive"))
        else {
            diags.push(Diagnostic {
                file: f.path.clone(),
                line: 0,
                rule: "xl-orphan",
                message: "name an .xl after its archive: assets/NAME.archive.xl beside assets/NAME.archive".into(),
            });
            continue;
        };
        if !archives.contains(archive) && !bundle.files.iter().any(|a| a.path == archive) {
            diags.push(Diagnostic {
                file: f.path.clone(),
                line: 0,
                rule: "xl-orphan",
                message: format!("{archive} is not in the bundle"),
            });
            continue;
        }
        if let Some(a) = report.archives.iter_mut().find(|a| a.path == archive) {
            a.xl = Some(f.path.clone());
        }
        match yaml::parse(text_of(f)) {
            Ok(root) => xl::check(
                &f.path,
                root.as_ref(),
                &resolver,
                &mut referenced,
                &mut diags,
            ),
            Err(err) => diags.push(yaml_diagnostic(&f.path, &err)),
        }
    }
    for f in &bundle.files {
        let e = ext(&f.path);
        if !matches!(e.as_str(), "csv" | "json") {
            continue;
        }
        if !referenced.contains(&f.path.to_lowercase()) {
            diags.push(Diagnostic {
                file: f.path.clone(),
                line: 0,
                rule: "data-orphan",
                message: "no .xl references this file, so the game would never load it; list it under factories or localization".into(),
            });
            continue;
        }
        let bad = if e == "json" {
            serde_json::from_slice::<serde_json::Value>(text_of(f))
                .err()
                .map(|err| (err.line(), format!("not valid JSON: {err}")))
        } else {
            std::str::from_utf8(text_of(f))
                .err()
                .map(|_| (0, "a factory .csv must be UTF-8 text".to_owned()))
        };
        match bad {
            Some((line, message)) => diags.push(Diagnostic {
                file: f.path.clone(),
                line,
                rule: "data-syntax",
                message,
            }),
            None => report.data_files.push(f.path.clone()),
        }
    }
    for f in &bundle.files {
        if !f.path.starts_with(&format!("{TWEAKS_DIR}/")) {
            continue;
        }
        match yaml::parse(text_of(f)) {
            Ok(root) => {
                let adds = tweak::check(&f.path, plugin, root.as_ref(), &mut diags);
                report.tweaks.push(TweakReport {
                    path: f.path.clone(),
                    adds,
                });
            }
            Err(err) => diags.push(yaml_diagnostic(&f.path, &err)),
        }
    }
    if diags.is_empty() {
        Ok(report)
    } else {
        Err(ContentError {
            plugin: plugin.to_owned(),
            diagnostics: diags,
        })
    }
}
