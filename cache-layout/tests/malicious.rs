//! Hand-crafted hostile bundles: each is refused with the right error, naming
//! the entry, and leaves the cache exactly as it was.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]

mod common;

use std::io::Write;

use common::{RawEntry, file, raw_tar, seal, snapshot, special};
use shard_cache::{BundleError, CacheError, InstallRequest, RuntimeCache, sha256, unpack_bundle};
use shard_protocol::limits::{
    MAX_BUNDLE_DEPTH, MAX_BUNDLE_ENTRIES, MAX_BUNDLE_PACKED, MAX_BUNDLE_PATH, MAX_BUNDLE_UNPACKED,
};
use tar::EntryType;

/// Installs `bytes` as plugin `evil` into a cache that already holds a good
/// install, asserts the refusal and that nothing on disk changed, and returns the error.
fn refuse(bytes: &[u8], sha: [u8; 32]) -> BundleError {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    let (good, good_sha) = seal(&raw_tar(&[file("client/ok.reds", b"class Ok {}")]));
    let req = |sha| InstallRequest {
        plugin: "evil",
        version: "1.0",
        server: "127.0.0.1:4433",
        sha256: sha,
    };
    cache.install(&req(good_sha), &good).unwrap();
    let before = snapshot(cache.root());
    let err = cache.install(&req(sha), bytes).unwrap_err();
    assert_eq!(
        snapshot(cache.root()),
        before,
        "cache changed after refusing: {err}"
    );
    match err {
        CacheError::Bundle(b) => {
            // The same bytes are refused by the plain unpack API too.
            assert!(unpack_bundle(bytes, &sha).is_err());
            b
        }
        other => panic!("expected a bundle error, got {other}"),
    }
}

/// Seals a raw tar and runs [`refuse`].
fn refuse_tar(entries: &[RawEntry]) -> BundleError {
    let (bytes, sha) = seal(&raw_tar(entries));
    refuse(&bytes, sha)
}

#[test]
fn absolute_path_is_refused() {
    let err = refuse_tar(&[file("/etc/evil.json", b"x")]);
    assert!(
        matches!(&err, BundleError::AbsolutePath { path } if path == "/etc/evil.json"),
        "{err}"
    );
    let err = refuse_tar(&[file("C:/evil.json", b"x")]);
    assert!(matches!(err, BundleError::AbsolutePath { .. }), "{err}");
}

#[test]
fn parent_dir_is_refused() {
    let err = refuse_tar(&[file("assets/../../evil.json", b"x")]);
    assert!(
        matches!(&err, BundleError::ParentDir { path } if path.contains("..")),
        "{err}"
    );
    assert!(err.to_string().contains("assets/../../evil.json"));
}

#[test]
fn symlink_is_refused() {
    let mut e = special("assets/link.json", EntryType::Symlink);
    e.link = Some(b"/etc/passwd".to_vec());
    let err = refuse_tar(&[e]);
    assert!(
        matches!(&err, BundleError::Symlink { path } if path == "assets/link.json"),
        "{err}"
    );
}

#[test]
fn hard_link_is_refused() {
    let mut e = special("assets/hard.json", EntryType::Link);
    e.link = Some(b"assets/ok.json".to_vec());
    let err = refuse_tar(&[file("assets/ok.json", b"{}"), e]);
    assert!(
        matches!(&err, BundleError::HardLink { path } if path == "assets/hard.json"),
        "{err}"
    );
}

#[test]
fn char_device_is_refused() {
    let err = refuse_tar(&[special("assets/null.json", EntryType::Char)]);
    assert!(
        matches!(&err, BundleError::SpecialFile { path, kind } if path == "assets/null.json" && kind == "character device"),
        "{err}"
    );
}

#[test]
fn block_device_and_fifo_are_refused() {
    let err = refuse_tar(&[special("assets/disk.json", EntryType::Block)]);
    assert!(
        matches!(&err, BundleError::SpecialFile { kind, .. } if kind == "block device"),
        "{err}"
    );
    let err = refuse_tar(&[special("assets/pipe.json", EntryType::Fifo)]);
    assert!(
        matches!(&err, BundleError::SpecialFile { kind, .. } if kind == "fifo"),
        "{err}"
    );
}

#[test]
fn duplicate_entry_is_refused_even_when_case_differs() {
    let err = refuse_tar(&[file("assets/a.json", b"1"), file("assets/a.json", b"2")]);
    assert!(
        matches!(&err, BundleError::Duplicate { path } if path == "assets/a.json"),
        "{err}"
    );
    let err = refuse_tar(&[file("assets/a.json", b"1"), file("assets/A.json", b"2")]);
    assert!(matches!(err, BundleError::Duplicate { .. }), "{err}");
}

#[test]
fn disallowed_extension_is_refused() {
    let err = refuse_tar(&[file("assets/payload.dll", b"MZ")]);
    assert!(
        matches!(&err, BundleError::DisallowedExtension { path, .. } if path == "assets/payload.dll"),
        "{err}"
    );
    let err = refuse_tar(&[file("client/sneaky.json", b"{}")]);
    assert!(
        matches!(err, BundleError::DisallowedExtension { .. }),
        "{err}"
    );
    let err = refuse_tar(&[file("assets/hidden.reds", b"")]);
    assert!(
        matches!(err, BundleError::DisallowedExtension { .. }),
        "scripts only in client/: {err}"
    );
}

#[test]
fn entry_outside_assets_and_client_is_refused() {
    let err = refuse_tar(&[file("r6/scripts/x.reds", b"")]);
    assert!(matches!(err, BundleError::BadPath { .. }), "{err}");
    let err = refuse_tar(&[file("assets/con.json", b"")]);
    assert!(
        matches!(err, BundleError::BadPath { .. }),
        "Windows device name: {err}"
    );
    let err = refuse_tar(&[file("assets\\win.json", b"")]);
    assert!(matches!(err, BundleError::BadPath { .. }), "{err}");
    let bad_utf8 = RawEntry {
        name: b"assets/\xff.json".to_vec(),
        kind: EntryType::Regular,
        data: Vec::new(),
        link: None,
    };
    let err = refuse_tar(&[bad_utf8]);
    assert!(matches!(err, BundleError::BadPath { .. }), "{err}");
}

#[test]
fn too_long_path_is_refused() {
    // A GNU long-name entry carries a path longer than the 100-byte header field.
    let long = format!("assets/{}.json", "a".repeat(MAX_BUNDLE_PATH));
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    builder.append_data(&mut h, &long, &b"x"[..]).unwrap();
    let (bytes, sha) = seal(&builder.into_inner().unwrap());
    let err = refuse(&bytes, sha);
    assert!(
        matches!(&err, BundleError::PathTooLong { len, .. } if *len == long.len()),
        "{err}"
    );
}

#[test]
fn too_deep_path_is_refused() {
    let deep = format!("assets/{}x.json", "d/".repeat(MAX_BUNDLE_DEPTH));
    let err = refuse_tar(&[file(&deep, b"x")]);
    assert!(
        matches!(&err, BundleError::TooDeep { path, .. } if *path == deep),
        "{err}"
    );
}

#[test]
fn too_many_entries_are_refused() {
    let entries: Vec<RawEntry> = (0..=MAX_BUNDLE_ENTRIES)
        .map(|i| special(&format!("assets/d{i}/"), EntryType::Directory))
        .collect();
    let err = refuse_tar(&entries);
    assert!(matches!(err, BundleError::TooManyEntries { .. }), "{err}");
}

#[test]
fn truncated_tar_data_is_refused() {
    let mut tar_bytes = raw_tar(&[file("assets/big.json", &[b'x'; 5000])]);
    tar_bytes.truncate(512 + 1000);
    let (bytes, sha) = seal(&tar_bytes);
    let err = refuse(&bytes, sha);
    assert!(
        matches!(&err, BundleError::Corrupt { entry: Some(e), .. } if e == "assets/big.json"),
        "{err}"
    );
}

#[test]
fn truncated_zstd_stream_is_refused() {
    let (full, _) = seal(&raw_tar(&[file("assets/a.json", &[b'q'; 9000])]));
    let cut = &full[..full.len() / 2];
    let err = refuse(cut, sha256(cut));
    assert!(matches!(err, BundleError::Corrupt { .. }), "{err}");
}

#[test]
fn not_zstd_at_all_is_refused() {
    let junk = b"this is not a bundle".to_vec();
    let err = refuse(&junk, sha256(&junk));
    assert!(matches!(err, BundleError::Corrupt { .. }), "{err}");
}

#[test]
fn wrong_hash_is_refused() {
    let (bytes, mut sha) = seal(&raw_tar(&[file("assets/a.json", b"{}")]));
    sha[0] ^= 1;
    let err = refuse(&bytes, sha);
    assert!(matches!(err, BundleError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&hex::encode(sha)));
}

#[test]
fn over_cap_packed_bytes_are_refused_before_hashing() {
    let big = vec![0u8; (MAX_BUNDLE_PACKED + 1) as usize];
    let err = refuse(&big, sha256(&big));
    assert!(
        matches!(err, BundleError::ReceivedTooLarge { size, .. } if size == MAX_BUNDLE_PACKED + 1),
        "{err}"
    );
}

/// Compresses `len` zero bytes after `prefix` without holding them in memory.
fn zero_bomb(prefix: &[u8], len: u64) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.write_all(prefix).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        enc.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    enc.finish().unwrap()
}

#[test]
fn zstd_bomb_of_zeros_is_stopped_at_the_cap() {
    // 100 MB of zeros: the tar reader sees an end marker at once, but the
    // stream goes on; draining it stops at the unpacked cap.
    let bytes = zero_bomb(&[], 100 * 1024 * 1024);
    assert!(bytes.len() < 64 * 1024, "bomb is small: {}", bytes.len());
    let err = refuse(&bytes, sha256(&bytes));
    assert!(
        matches!(err, BundleError::UnpackedTooLarge { limit, .. } if limit == MAX_BUNDLE_UNPACKED),
        "{err}"
    );
}

#[test]
fn zstd_bomb_inside_a_file_entry_is_stopped_by_its_header_size() {
    let mut h = tar::Header::new_gnu();
    h.set_path("assets/zeros.json").unwrap();
    h.set_size(MAX_BUNDLE_UNPACKED + 1);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    h.set_cksum();
    let bytes = zero_bomb(h.as_bytes(), MAX_BUNDLE_UNPACKED + 1024);
    let err = refuse(&bytes, sha256(&bytes));
    assert!(
        matches!(&err, BundleError::UnpackedTooLarge { entry, .. } if entry == "assets/zeros.json"),
        "{err}"
    );
}

#[test]
fn many_files_summing_over_the_cap_are_refused() {
    let one = vec![b'a'; 8 * 1024 * 1024];
    let files: Vec<RawEntry> = (0..9)
        .map(|i| file(&format!("assets/f{i}.json"), &one))
        .collect();
    let err = refuse_tar(&files);
    assert!(
        matches!(&err, BundleError::UnpackedTooLarge { entry, .. } if entry == "assets/f8.json"),
        "{err}"
    );
}

#[test]
fn garbage_after_the_archive_is_refused() {
    let mut tar_bytes = raw_tar(&[file("assets/a.json", b"{}")]);
    tar_bytes.extend_from_slice(b"trailing junk");
    let (bytes, sha) = seal(&tar_bytes);
    let err = refuse(&bytes, sha);
    assert!(matches!(err, BundleError::Corrupt { .. }), "{err}");
}

#[test]
fn random_corruption_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let tar_bytes = raw_tar(&[
        file("assets/a.json", b"{\"a\":1}"),
        file("assets/w.archive", &[3u8; 2000]),
        file("client/x.reds", b"class X {}"),
    ]);
    for i in 0..400 {
        let mut t = tar_bytes.clone();
        let flips = rng.gen_range(1..8);
        for _ in 0..flips {
            let at = rng.gen_range(0..t.len());
            t[at] = rng.r#gen();
        }
        if i % 3 == 0 {
            let cut = rng.gen_range(0..t.len());
            t.truncate(cut);
        }
        let (mut bytes, _) = seal(&t);
        if i % 2 == 0 && !bytes.is_empty() {
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.r#gen();
        }
        let sha = sha256(&bytes);
        let _ = unpack_bundle(&bytes, &sha);
    }
}

#[test]
fn file_and_folder_with_the_same_name_are_refused() {
    let err = refuse_tar(&[
        file("assets/a.json", b"{}"),
        file("assets/a.json/b.json", b"{}"),
    ]);
    assert!(matches!(err, BundleError::BadPath { .. }), "{err}");
    let err = refuse_tar(&[
        file("assets/a.json/b.json", b"{}"),
        file("assets/a.json", b"{}"),
    ]);
    assert!(matches!(err, BundleError::BadPath { .. }), "{err}");
}
