//! Helpers shared by the integration tests: plugin folders on disk, hand-made
//! tar bundles, and snapshots of a cache folder.
#![allow(dead_code, reason = "each test crate uses only some of these helpers")]
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use shard_cache::sha256;

/// Writes `files` (relative path, contents) under `dir`, creating folders.
pub(crate) fn write_files(dir: &Path, files: &[(&str, &[u8])]) {
    for (rel, contents) in files {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
    }
}

/// The sample plugin's archive: two small files packed by the test builder.
pub(crate) fn sample_archive(tag: &str) -> Vec<u8> {
    shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\shard\\popup.inkwidget", format!("widget {tag}"))
        .file("base\\shard\\atlas.inkatlas", vec![7u8; 3000])
        .build()
}

/// A small valid plugin folder's files: an archive, its `.xl`, the
/// localization file that references, and a client script.
pub(crate) fn sample_files(tag: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("assets/popup.archive".into(), sample_archive(tag)),
        (
            "assets/popup.archive.xl".into(),
            b"localization:\n  onscreens:\n    en-us: data\\zone.json\n".to_vec(),
        ),
        (
            "assets/data/zone.json".into(),
            format!("{{\"tag\":\"{tag}\"}}").into_bytes(),
        ),
        (
            "client/popup.reds".into(),
            format!("// {tag}\nclass PopupHandler extends ShardRpcHandler {{}}\n").into_bytes(),
        ),
    ]
}

/// Writes the sample plugin under `root/<name>` and returns its folder.
pub(crate) fn sample_plugin(root: &Path, name: &str, tag: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    for (rel, contents) in sample_files(tag) {
        let path = dir.join(&rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
    }
    dir
}

/// One hand-made tar entry.
pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub link: Option<Vec<u8>>,
}

/// A regular-file entry.
pub(crate) fn file(name: &str, data: &[u8]) -> RawEntry {
    RawEntry {
        name: name.as_bytes().to_vec(),
        kind: tar::EntryType::Regular,
        data: data.to_vec(),
        link: None,
    }
}

/// An entry of some other type with no data.
pub(crate) fn special(name: &str, kind: tar::EntryType) -> RawEntry {
    RawEntry {
        name: name.as_bytes().to_vec(),
        kind,
        data: Vec::new(),
        link: None,
    }
}

/// Builds a tar with the raw header API: names are copied byte for byte
/// into the header, bypassing every check of the tar crate.
pub(crate) fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            let n = e.name.len().min(old.name.len());
            old.name[..n].copy_from_slice(&e.name[..n]);
            if let Some(link) = &e.link {
                let n = link.len().min(old.linkname.len());
                old.linkname[..n].copy_from_slice(&link[..n]);
            }
        }
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        builder.append(&h, e.data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// zstd-compresses (level 3) and returns (bytes, sha256).
pub(crate) fn seal(tar_bytes: &[u8]) -> (Vec<u8>, [u8; 32]) {
    let bytes = zstd::stream::encode_all(tar_bytes, 3).unwrap();
    let sha = sha256(&bytes);
    (bytes, sha)
}

/// Every file under `root` with its contents, plus folders (value `None`);
/// the handles' lock files are not cache content and are left out.
pub(crate) fn snapshot(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                out.insert(child.clone(), None);
                walk(&e.path(), &child, out);
            } else {
                out.insert(child, Some(fs::read(e.path()).unwrap()));
            }
        }
    }
    walk(root, "", &mut out);
    out.remove(shard_cache::LOCK_FILE);
    out.remove(shard_cache::WRITE_LOCK_FILE);
    out.retain(|name, _| !name.starts_with(shard_cache::PROCESS_PREFIX));
    out
}
