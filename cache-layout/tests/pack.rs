//! Packing: determinism, round trip, empty bundles and what packing refuses.
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]

mod common;

use std::fs;

use common::{sample_files, sample_plugin, write_files};
use shard_cache::{BundleError, pack_plugin_dir, read_plugin_dir, unpack_bundle};
use shard_protocol::limits::MAX_BUNDLE_PACKED;

#[test]
fn same_files_give_same_bytes_whatever_order_mtime_and_perms() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let files = sample_files("x");
    // Plugin a: natural order.
    let dir_a = a.path().join("popup_zone");
    for (rel, c) in &files {
        write_files(&dir_a, &[(rel.as_str(), c.as_slice())]);
    }
    // Plugin b: reverse creation order, different perms, later mtimes.
    let dir_b = b.path().join("popup_zone");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for (rel, c) in files.iter().rev() {
        write_files(&dir_b, &[(rel.as_str(), c.as_slice())]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir_b.join(rel), fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir_b.join("assets/data"), fs::Permissions::from_mode(0o700)).unwrap();
    }
    let pa = pack_plugin_dir(&dir_a).unwrap();
    let pb = pack_plugin_dir(&dir_b).unwrap();
    assert_eq!(pa.bytes, pb.bytes);
    assert_eq!(pa.sha256, pb.sha256);
    assert_eq!(pa.entries, 7, "assets, assets/data, client + 4 files");
    // And packing twice gives the same result.
    assert_eq!(pack_plugin_dir(&dir_a).unwrap(), pa);
}

#[test]
fn pack_then_unpack_round_trips() {
    let t = tempfile::tempdir().unwrap();
    let dir = sample_plugin(t.path(), "popup_zone", "rt");
    let packed = pack_plugin_dir(&dir).unwrap();
    let un = unpack_bundle(&packed.bytes, &packed.sha256).unwrap();
    let mut want = sample_files("rt");
    want.sort();
    let mut got: Vec<(String, Vec<u8>)> = un
        .files
        .iter()
        .map(|f| {
            (
                f.path.clone(),
                f.contents.in_memory().unwrap_or_default().to_vec(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(un.dirs, vec!["assets", "assets/data", "client"]);
    assert_eq!(un.unpacked_len, packed.unpacked_len);
    assert_eq!(packed.sha256_hex().len(), 64);
}

#[test]
fn plugin_without_folders_packs_to_a_valid_empty_bundle() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("empty_plugin");
    fs::create_dir(&dir).unwrap();
    let packed = pack_plugin_dir(&dir).unwrap();
    assert_eq!(packed.entries, 0);
    let un = unpack_bundle(&packed.bytes, &packed.sha256).unwrap();
    assert!(un.files.is_empty() && un.dirs.is_empty());
    // A missing plugin folder is the same as an empty one.
    let missing = pack_plugin_dir(&t.path().join("nope")).unwrap();
    assert_eq!(missing.bytes, packed.bytes);
}

#[test]
fn over_cap_packed_bundle_names_plugin_and_sizes() {
    use rand::RngCore;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("popup_zone");
    let mut noise = vec![0u8; (MAX_BUNDLE_PACKED + MAX_BUNDLE_PACKED / 5) as usize];
    rand::thread_rng().fill_bytes(&mut noise);
    write_files(&dir, &[("assets/big.archive", &noise)]);
    let err = pack_plugin_dir(&dir).unwrap_err();
    assert!(matches!(err, BundleError::PackedTooLarge { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("bundle of popup_zone is 6"), "{msg}");
    assert!(msg.contains("the limit is 5 MB"), "{msg}");
}

#[test]
fn packing_refuses_disallowed_extension_with_path() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("p");
    write_files(&dir, &[("assets/tool.exe", b"MZ")]);
    let err = pack_plugin_dir(&dir).unwrap_err();
    assert!(
        matches!(err, BundleError::DisallowedExtension { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("tool.exe"), "{err}");
    assert!(err.to_string().contains(".archive"), "lists allowed: {err}");
}

#[test]
fn packing_refuses_non_reds_in_client_and_client_subfolders() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("p");
    write_files(&dir, &[("client/data.json", b"{}")]);
    assert!(matches!(
        pack_plugin_dir(&dir).unwrap_err(),
        BundleError::DisallowedExtension { .. }
    ));
    let dir2 = t.path().join("q");
    write_files(&dir2, &[("client/sub/x.reds", b"")]);
    assert!(matches!(
        pack_plugin_dir(&dir2).unwrap_err(),
        BundleError::BadPath { .. }
    ));
}

#[cfg(unix)]
#[test]
fn packing_refuses_symlinks_with_path() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("p");
    write_files(&dir, &[("assets/a.json", b"{}")]);
    std::os::unix::fs::symlink("/etc/passwd", dir.join("assets/link.json")).unwrap();
    let err = pack_plugin_dir(&dir).unwrap_err();
    assert!(matches!(err, BundleError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("link.json"), "{err}");
}

#[test]
fn extension_allowlist_is_per_folder() {
    use shard_cache::extension_allowed;
    assert!(extension_allowed("assets/a/b.json"));
    assert!(extension_allowed("assets/a/b.csv"));
    assert!(extension_allowed("assets/x.archive"));
    assert!(extension_allowed("assets/x.archive.xl"));
    assert!(extension_allowed("tweaks/x.yaml"));
    assert!(extension_allowed("tweaks/x.yml"));
    assert!(extension_allowed("client/x.reds"));
    assert!(!extension_allowed("assets/a/x.archive"));
    assert!(!extension_allowed("assets/x.streamingsector"));
    assert!(!extension_allowed("assets/a/b.ent"));
    assert!(!extension_allowed("tweaks/x.tweak"));
    assert!(!extension_allowed("tweaks/a/x.yaml"));
    assert!(!extension_allowed("assets/x.reds"));
    assert!(!extension_allowed("client/x.json"));
    assert!(!extension_allowed("assets/x.png"));
    assert!(!extension_allowed("assets/.json"));
    assert!(!extension_allowed("assets/noext"));
    assert!(!extension_allowed("other/x.json"));
}

#[test]
fn system_tar_reads_the_bundle_with_fixed_metadata() {
    use std::process::Command;
    if Command::new("zstd").arg("--version").output().is_err() {
        eprintln!("zstd CLI not found; skipping");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = sample_plugin(t.path(), "popup_zone", "cli");
    let packed = pack_plugin_dir(&dir).unwrap();
    let file = t.path().join("b.tar.zst");
    fs::write(&file, &packed.bytes).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | tar --numeric-owner --full-time -tvf -",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 7, "{listing}");
    for line in &lines {
        assert!(line.contains(" 0/0 "), "{line}");
        assert!(line.contains("1970-01-01"), "{line}");
        assert!(
            line.starts_with("-rw-r--r--") || line.starts_with("drwxr-xr-x"),
            "{line}"
        );
    }
    assert!(lines[0].ends_with(" assets/"), "{listing}");
    assert!(lines[6].ends_with(" client/popup.reds"), "{listing}");
}

/// A fixed plugin folder whose packed bytes are pinned below: every root, a
/// nested folder, text and binary files (the test adds an empty folder).
fn pinned_plugin(root: &std::path::Path) -> std::path::PathBuf {
    let dir = root.join("pinned");
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    write_files(
        &dir,
        &[
            ("assets/pinned.archive", binary.as_slice()),
            (
                "assets/pinned.archive.xl",
                b"localization:\n  onscreens:\n    en-us: data\\a.json\n",
            ),
            ("assets/data/a.json", b"{\"a\":1}"),
            ("assets/data/deeper/b.csv", b"k,v\n1,2\n"),
            ("client/a.reds", b"// a\nfunc A() -> Void {}\n"),
            ("client/b.reds", b"// b\n"),
            ("tweaks/t.yaml", b"Items.X:\n  $type: Clothing\n"),
        ],
    );
    dir
}

/// Bundle bytes are the identity that mirrors and caches key on: the same
/// folder must pack to exactly these bytes across refactors of the packer.
#[test]
fn bundle_bytes_are_pinned() {
    let t = tempfile::tempdir().unwrap();
    let dir = pinned_plugin(t.path());
    fs::create_dir_all(dir.join("assets/empty")).unwrap();
    let packed = pack_plugin_dir(&dir).unwrap();
    assert_eq!(packed.entries, 13);
    assert_eq!(
        packed.sha256_hex(),
        "740c2b249c33c915ca8e8316af0e9678f961b26aac172c3e9ea86c587f8b90f4",
        "the packer's output changed: every published bundle's hash would change"
    );
    // The in-memory snapshot packs to the same bytes and lists what it read.
    let source = read_plugin_dir(&dir).unwrap();
    assert_eq!(source.pack().unwrap(), packed);
    assert_eq!(source.unpacked_len(), packed.unpacked_len);
    assert_eq!(
        source.dirs().collect::<Vec<_>>(),
        [
            "assets",
            "assets/data",
            "assets/data/deeper",
            "assets/empty",
            "client",
            "tweaks"
        ]
    );
    assert_eq!(source.files().count(), 7);
    assert_eq!(
        source
            .files()
            .find(|(p, _)| *p == "client/b.reds")
            .map(|(_, b)| b),
        Some(&b"// b\n"[..])
    );
}
