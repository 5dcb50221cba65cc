//! ArchiveXL `.xl` files: only the keys named here are accepted, and every
//! path they reference must be in the same bundle, as a loose file under
//! `assets/` or as a file inside one of the bundle's archives (matched by
//! the game's path hash).
//!
//! Accepted shape (anything else is refused with rule `xl-key`):
//!
//! ```yaml
//! factories: [path\to\factory.csv, ...]
//! localization:
//!   onscreens: {en-us: path\to\onscreens.json}   # also subtitles, lipmaps, vomaps;
//!                                                # a value may be a list of paths
//! streaming:
//!   sectors: [{path: path\to\x.streamingsector, expectedNodes: 12}]
//!   blocks: [path\to\x.streamingblock]
//! ```
//!
//! `resource.patch`, sector `nodeDeletions`/`nodeMutations` and every other
//! ArchiveXL key change vanilla resources, so they are not accepted.

use std::collections::{BTreeSet, HashSet};

use shard_protocol::limits::MAX_BUNDLE_PATH;

use super::Diagnostic;
use super::rdar::depot_hash;
use super::yaml::{Kind, Node};

/// What `.xl` references resolve against: the bundle's loose files (bundle
/// paths, lowercase) and the path hashes of every file in its archives.
pub(crate) struct Resolver<'a> {
    /// Lowercase bundle paths of loose files (`assets/ui/x.json`).
    pub loose: &'a HashSet<String>,
    /// Path hashes of the files inside the bundle's archives.
    pub packed: &'a HashSet<u64>,
}

/// Localization kinds ArchiveXL reads, each a map of language to path(s).
const LOCALIZATION_KINDS: &[&str] = &["onscreens", "subtitles", "lipmaps", "vomaps"];

/// Checks one parsed `.xl`; appends diagnostics and records the loose files it references.
pub(crate) fn check(
    file: &str,
    root: Option<&Node>,
    resolver: &Resolver<'_>,
    referenced: &mut BTreeSet<String>,
    out: &mut Vec<Diagnostic>,
) {
    let mut cx = Cx {
        file,
        resolver,
        referenced,
        out,
    };
    let Some(root) = root else { return };
    let Some(pairs) = cx.map(root, "the file") else {
        return;
    };
    for (key, value) in pairs {
        match key.as_str() {
            Some("factories") => cx.paths(value, "factories", "csv"),
            Some("localization") => cx.localization(value),
            Some("streaming") => cx.streaming(value),
            _ => cx.unknown(
                key,
                "top level",
                &["factories", "localization", "streaming"],
            ),
        }
    }
}

/// The state of one `.xl` check.
struct Cx<'a, 'b> {
    file: &'a str,
    resolver: &'a Resolver<'b>,
    referenced: &'a mut BTreeSet<String>,
    out: &'a mut Vec<Diagnostic>,
}

impl Cx<'_, '_> {
    fn diag(&mut self, line: usize, rule: &'static str, message: String) {
        self.out.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            rule,
            message,
        });
    }

    /// The node as a mapping without duplicate keys, or a diagnostic.
    fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        let Kind::Map(pairs) = &node.kind else {
            self.diag(node.line, "xl-shape", format!("{what} must be a mapping"));
            return None;
        };
        let mut seen = HashSet::new();
        for (k, _) in pairs {
            if let Some(name) = k.as_str()
                && !seen.insert(name)
            {
                self.diag(k.line, "xl-key", format!("key `{name}` appears twice"));
                return None;
            }
        }
        Some(pairs)
    }

    fn unknown(&mut self, key: &Node, at: &str, allowed: &[&str]) {
        let name = key.as_str().unwrap_or("<not a string>");
        self.diag(
            key.line,
            "xl-key",
            format!(
                "unknown ArchiveXL key `{name}` at {at}; accepted here: {}",
                allowed.join(", ")
            ),
        );
    }

    /// A path or a sequence of paths, each with extension `ext`.
    fn paths(&mut self, node: &Node, what: &str, ext: &str) {
        match &node.kind {
            Kind::Seq(items) => {
                for item in items {
                    self.path(item, what, ext);
                }
            }
            Kind::Scalar { .. } => self.path(node, what, ext),
            Kind::Map(_) => self.diag(
                node.line,
                "xl-shape",
                format!("{what} must be a path or a list of paths"),
            ),
        }
    }

    /// One referenced path: syntax, extension, and presence in the bundle.
    fn path(&mut self, node: &Node, what: &str, ext: &str) {
        let Some(raw) = node.as_str().filter(|_| node.tag.is_none()) else {
            self.diag(node.line, "xl-shape", format!("{what}: expected a path"));
            return;
        };
        let norm = raw.replace('\\', "/");
        let bad = norm.is_empty()
            || norm.len() > MAX_BUNDLE_PATH
            || norm.starts_with('/')
            || norm.as_bytes().get(1) == Some(&b':')
            || norm
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
            || norm.chars().any(char::is_control);
        if bad {
            self.diag(
                node.line,
                "xl-path",
                format!(
                    "{what}: `{raw}` is not a relative path inside the bundle (no `..`, no leading separator, at most {MAX_BUNDLE_PATH} bytes)"
                ),
            );
            return;
        }
        let lower = norm.to_lowercase();
        if !lower.ends_with(&format!(".{ext}")) {
            self.diag(
                node.line,
                "xl-path",
                format!("{what}: `{raw}` must name a .{ext} file"),
            );
            return;
        }
        let loose = format!("{}/{lower}", crate::bundle::ASSETS_DIR);
        if self.resolver.loose.contains(&loose) {
            self.referenced.insert(loose);
        } else if !self.resolver.packed.contains(&depot_hash(&lower)) {
            self.diag(
                node.line,
                "xl-ref",
                format!(
                    "{what}: `{raw}` is neither a file under assets/ nor inside one of this bundle's archives"
                ),
            );
        }
    }

    fn localization(&mut self, node: &Node) {
        let Some(pairs) = self.map(node, "localization") else {
            return;
        };
        for (key, value) in pairs {
            let Some(kind) = key.as_str().filter(|k| LOCALIZATION_KINDS.contains(k)) else {
                self.unknown(key, "localization", LOCALIZATION_KINDS);
                continue;
            };
            let what = format!("localization.{kind}");
            let Some(langs) = self.map(value, &what) else {
                continue;
            };
            for (lang, paths) in langs {
                let ok = lang.as_str().is_some_and(|l| {
                    let b = l.as_bytes();
                    b.len() == 5
                        && b[2] == b'-'
                        && b[..2].iter().chain(&b[3..]).all(u8::is_ascii_lowercase)
                });
                if !ok {
                    self.diag(
                        lang.line,
                        "xl-key",
                        format!("{what}: a language is written like `en-us`"),
                    );
                    continue;
                }
                self.paths(paths, &what, "json");
            }
        }
    }

    fn streaming(&mut self, node: &Node) {
        let Some(pairs) = self.map(node, "streaming") else {
            return;
        };
        for (key, value) in pairs {
            match key.as_str() {
                Some("sectors") => self.sectors(value),
                Some("blocks") => self.paths(value, "streaming.blocks", "streamingblock"),
                _ => self.unknown(key, "streaming", &["sectors", "blocks"]),
            }
        }
    }

    fn sectors(&mut self, node: &Node) {
        let Kind::Seq(items) = &node.kind else {
            self.diag(
                node.line,
                "xl-shape",
                "streaming.sectors must be a list".into(),
            );
            return;
        };
        for item in items {
            let Some(pairs) = self.map(item, "a sector") else {
                continue;
            };
            let mut has_path = false;
            for (key, value) in pairs {
                match key.as_str() {
                    Some("path") => {
                        has_path = true;
                        self.path(value, "streaming.sectors.path", "streamingsector");
                    }
                    Some("expectedNodes") => {
                        if value.as_str().and_then(|v| v.parse::<u32>().ok()).is_none() {
                            self.diag(
                                value.line,
                                "xl-shape",
                                "expectedNodes must be a whole number".into(),
                            );
                        }
                    }
                    _ => self.unknown(
                        key,
                        "a sector (nodeDeletions and nodeMutations change vanilla sectors)",
                        &["path", "expectedNodes"],
                    ),
                }
            }
            if !has_path {
                self.diag(item.line, "xl-shape", "a sector needs a `path`".into());
            }
        }
    }
}
