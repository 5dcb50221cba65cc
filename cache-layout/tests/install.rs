//! Atomic install: contents, read-only files, install records, replacement,
//! crash recovery at every step, verification, listing and clearing.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::{sample_plugin, snapshot};
use shard_cache::{
    CacheError, CrashPoint, FileContents, InstallRequest, MANIFEST_FILE, PackedBundle,
    RuntimeCache, VerifyStatus, pack_plugin_dir,
};

const SERVER: &str = "127.0.0.1:4433";

fn packed(root: &Path, tag: &str) -> PackedBundle {
    let dir = sample_plugin(&root.join(tag), "popup_zone", tag);
    pack_plugin_dir(&dir).unwrap()
}

fn req<'a>(version: &'a str, b: &PackedBundle) -> InstallRequest<'a> {
    InstallRequest {
        plugin: "popup_zone",
        version,
        server: SERVER,
        sha256: b.sha256,
    }
}

/// The installed plugin folder without its install record.
fn plugin_files(cache: &RuntimeCache) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut s = snapshot(&cache.root().join("plugins/popup_zone"));
    s.remove(MANIFEST_FILE);
    s
}

/// What a fresh install of `b` puts in the plugin folder.
fn expected_files(b: &PackedBundle) -> BTreeMap<String, Option<Vec<u8>>> {
    let t = tempfile::tempdir().unwrap();
    let c = RuntimeCache::open(t.path()).unwrap();
    c.install(&req("0", b), &b.bytes).unwrap();
    plugin_files(&c)
}

/// Names in `plugins/` that are working leftovers.
fn leftovers(cache: &RuntimeCache) -> Vec<String> {
    fs::read_dir(cache.root().join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn install_writes_files_record_and_lists() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "v1");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    let got = cache.install(&req("1.0", &b), &b.bytes).unwrap();
    assert_eq!(got.hash, b.sha256);
    let dir = cache.root().join("plugins/popup_zone");
    assert_eq!(
        fs::read(dir.join("assets/popup.archive")).unwrap(),
        common::sample_archive("v1")
    );
    assert!(cache.has_bundle(&b.sha256));
    assert_eq!(cache.read_bundle(&b.sha256).unwrap(), b.bytes);
    assert_eq!(cache.installed_hash("popup_zone"), Some(b.sha256));
    assert_eq!(cache.installed_hash("other"), None);
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
    assert_eq!(record["plugin"], "popup_zone");
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["sha256"], b.sha256_hex());
    assert_eq!(record["server"], SERVER);
    assert!(record["installed_at"].as_u64().unwrap() > 0);
    let list = cache.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].plugin, "popup_zone");
    assert_eq!(list[0].version, "1.0");
    assert_eq!(list[0].size, b.unpacked_len);
    assert_eq!(list[0].server, SERVER);
    assert!(leftovers(&cache).is_empty());
}

#[cfg(unix)]
#[test]
fn installed_files_and_folders_are_read_only() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "ro");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    cache.install(&req("1", &b), &b.bytes).unwrap();
    let dir = cache.root().join("plugins/popup_zone");
    let mut checked = 0;
    for rel in [
        "",
        "assets",
        "assets/data",
        "assets/popup.archive",
        "client/popup.reds",
        MANIFEST_FILE,
    ] {
        let mode = fs::metadata(dir.join(rel)).unwrap().permissions().mode();
        assert_eq!(mode & 0o222, 0, "{rel} is writable: {mode:o}");
        checked += 1;
    }
    assert_eq!(checked, 6);
    // Replacing and clearing still work on read-only trees.
    let b2 = packed(t.path(), "ro2");
    cache.install(&req("2", &b2), &b2.bytes).unwrap();
    cache.clear().unwrap();
    assert!(cache.list().unwrap().is_empty());
    assert!(!cache.has_bundle(&b.sha256));
}

#[test]
fn reinstall_replaces_old_files_completely() {
    let t = tempfile::tempdir().unwrap();
    let b1 = packed(t.path(), "v1");
    let dir2 = t.path().join("v2/popup_zone");
    common::write_files(&dir2, &[("client/only_new.reds", b"class New {}")]);
    let b2 = pack_plugin_dir(&dir2).unwrap();
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    cache.install(&req("1", &b1), &b1.bytes).unwrap();
    cache.install(&req("2", &b2), &b2.bytes).unwrap();
    assert_eq!(plugin_files(&cache), expected_files(&b2));
    assert_eq!(cache.installed_hash("popup_zone"), Some(b2.sha256));
    assert!(leftovers(&cache).is_empty());
    // Switching back uses the store, no download needed.
    cache.install_from_store(&req("1", &b1)).unwrap();
    assert_eq!(plugin_files(&cache), expected_files(&b1));
}

#[test]
fn a_staged_install_is_checked_in_staging_then_installed_or_dropped() {
    let t = tempfile::tempdir().unwrap();
    let b1 = packed(t.path(), "v1");
    let b2 = packed(t.path(), "v2");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    cache.install(&req("1", &b1), &b1.bytes).unwrap();
    cache.store_bundle(&b2.bytes, &b2.sha256).unwrap();

    // Staged: unpacked once into a staging folder, nothing installed yet.
    let staged = cache.stage_from_store(&req("2", &b2), u64::MAX).unwrap();
    assert!(staged.path().is_dir());
    assert!(
        staged
            .bundle()
            .files
            .iter()
            .any(|f| f.path.starts_with("client/"))
    );
    assert_eq!(cache.installed_hash("popup_zone"), Some(b1.sha256));
    assert_eq!(leftovers(&cache).len(), 1);
    // The caller refuses it: dropping it removes the staging folder.
    drop(staged);
    assert!(leftovers(&cache).is_empty());
    assert_eq!(plugin_files(&cache), expected_files(&b1));

    // A crash between staging and install (the process and its handle are
    // gone): the next open removes it.
    std::mem::forget(cache.stage_from_store(&req("2", &b2), u64::MAX).unwrap());
    assert_eq!(leftovers(&cache).len(), 1);
    drop(cache);
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    assert!(leftovers(&cache).is_empty());
    assert_eq!(plugin_files(&cache), expected_files(&b1));

    // Accepted: installed as `install` would.
    let staged = cache.stage_from_store(&req("2", &b2), u64::MAX).unwrap();
    let got = cache.install_staged(staged).unwrap();
    assert_eq!(got.hash, b2.sha256);
    assert_eq!(plugin_files(&cache), expected_files(&b2));
    assert_eq!(cache.installed_hash("popup_zone"), Some(b2.sha256));
    assert!(leftovers(&cache).is_empty());
}

#[test]
fn staging_refuses_a_bundle_larger_than_announced_and_leaves_no_folder() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "v1");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    cache.store_bundle(&b.bytes, &b.sha256).unwrap();
    let err = cache
        .stage_from_store(&req("1", &b), b.unpacked_len - 1)
        .unwrap_err();
    assert!(
        matches!(err, CacheError::LargerThanAnnounced { unpacked, announced, .. }
            if unpacked == b.unpacked_len && announced == b.unpacked_len - 1),
        "{err}"
    );
    assert!(leftovers(&cache).is_empty());
    assert!(cache.installed_hash("popup_zone").is_none());
    // Exactly the announced size is fine.
    let staged = cache
        .stage_from_store(&req("1", &b), b.unpacked_len)
        .unwrap();
    cache.install_staged(staged).unwrap();
    assert_eq!(cache.installed_hash("popup_zone"), Some(b.sha256));
}

#[test]
fn crash_at_each_step_of_an_upgrade_leaves_old_or_new() {
    let t = tempfile::tempdir().unwrap();
    let b1 = packed(t.path(), "old");
    let b2 = packed(t.path(), "new");
    let (old, new) = (expected_files(&b1), expected_files(&b2));
    for point in CrashPoint::ALL {
        let root = t.path().join(format!("cache-{point:?}"));
        let cache = RuntimeCache::open(&root).unwrap();
        cache.install(&req("1", &b1), &b1.bytes).unwrap();
        let err = cache
            .install_with_crash_at(&req("2", &b2), &b2.bytes, point)
            .unwrap_err();
        assert!(matches!(err, CacheError::SimulatedCrash(p) if p == point));
        // The hook gave up the handle's lock, as the crashed process would.
        let reopened = RuntimeCache::open(&root).unwrap();
        let now = plugin_files(&reopened);
        let hash = reopened.installed_hash("popup_zone");
        if point == CrashPoint::AfterNewMovedIn {
            assert_eq!(now, new, "{point:?}");
            assert_eq!(hash, Some(b2.sha256));
        } else {
            assert_eq!(now, old, "{point:?}");
            assert_eq!(hash, Some(b1.sha256));
        }
        assert!(
            leftovers(&reopened).is_empty(),
            "{point:?}: {:?}",
            leftovers(&reopened)
        );
        let stray: Vec<_> = fs::read_dir(root.join("store"))
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".bundle")
            })
            .collect();
        assert!(stray.is_empty(), "{point:?}");
        // The install can then be completed normally.
        reopened.install(&req("2", &b2), &b2.bytes).unwrap();
        assert_eq!(plugin_files(&reopened), new);
        assert!(
            reopened
                .verify()
                .unwrap()
                .iter()
                .all(|r| r.status == VerifyStatus::Ok)
        );
    }
}

#[test]
fn crash_at_each_step_of_a_first_install_leaves_nothing_or_new() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "first");
    for point in CrashPoint::ALL {
        let root = t.path().join(format!("cache-{point:?}"));
        let cache = RuntimeCache::open(&root).unwrap();
        cache
            .install_with_crash_at(&req("1", &b), &b.bytes, point)
            .unwrap_err();
        // The hook gave up the handle's lock, as the crashed process would.
        let reopened = RuntimeCache::open(&root).unwrap();
        let present = root.join("plugins/popup_zone").exists();
        assert_eq!(present, point == CrashPoint::AfterNewMovedIn, "{point:?}");
        if present {
            assert_eq!(plugin_files(&reopened), expected_files(&b));
        }
        assert!(leftovers(&reopened).is_empty(), "{point:?}");
    }
}

#[test]
fn stray_temp_files_are_removed_on_open() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("cache");
    RuntimeCache::open(&root).unwrap();
    fs::write(root.join("store/.tmp-123"), b"half").unwrap();
    fs::write(root.join(".tmp-456"), b"half").unwrap();
    fs::create_dir_all(root.join("plugins/.staging-x-1/assets")).unwrap();
    // A second download's private file (not resumable) beside a resumable one.
    let sha = "ab".repeat(32);
    fs::write(root.join(format!("partial/.tmp-789-{sha}.part")), b"half").unwrap();
    fs::write(root.join(format!("partial/{sha}.part")), b"half").unwrap();
    RuntimeCache::open(&root).unwrap();
    assert!(!root.join("store/.tmp-123").exists());
    assert!(!root.join(".tmp-456").exists());
    assert!(!root.join("plugins/.staging-x-1").exists());
    assert!(!root.join(format!("partial/.tmp-789-{sha}.part")).exists());
    assert!(root.join(format!("partial/{sha}.part")).exists());
}

/// A handle opened beside a live one of the same process (a reconnecting
/// session, a test checking the cache) must not take the live one's install
/// in progress for a crash's leftovers; what no live handle is filling is
/// still repaired, and once every handle is gone the next open repairs all.
#[test]
fn an_open_beside_a_live_handle_leaves_its_install_in_progress_alone() {
    let t = tempfile::tempdir().unwrap();
    let b1 = packed(t.path(), "v1");
    let root = t.path().join("cache");
    let live = RuntimeCache::open(&root).unwrap();
    live.store_bundle(&b1.bytes, &b1.sha256).unwrap();
    let staged = live.stage_from_store(&req("1", &b1), u64::MAX).unwrap();
    // A crash's leftovers beside it: nobody is filling these, and the
    // crashed process's marker is held by nobody.
    fs::create_dir_all(root.join("plugins/.staging-x-1/assets")).unwrap();
    fs::write(root.join(".tmp-777"), b"half written").unwrap();
    let stale = root.join(format!("{}crashed.lock", shard_cache::PROCESS_PREFIX));
    fs::write(&stale, b"").unwrap();

    let beside = RuntimeCache::open(&root).unwrap();
    assert!(!stale.exists(), "a crashed process's marker is removed");
    assert!(
        staged.path().is_dir(),
        "the live handle's staging was removed"
    );
    assert!(!root.join("plugins/.staging-x-1").exists());
    assert!(!root.join(".tmp-777").exists());
    // The live handle finishes undisturbed, and the other sees the result.
    live.install_staged(staged).unwrap();
    assert_eq!(beside.installed_hash("popup_zone"), Some(b1.sha256));
    assert_eq!(plugin_files(&beside), expected_files(&b1));

    // A leftover of a handle that is gone: the next open alone removes it.
    std::mem::forget(live.stage_from_store(&req("1", &b1), u64::MAX).unwrap());
    drop(live);
    drop(beside);
    let alone = RuntimeCache::open(&root).unwrap();
    assert!(leftovers(&alone).is_empty(), "{:?}", leftovers(&alone));
    assert_eq!(plugin_files(&alone), expected_files(&b1));
}

/// How many process markers (`.process-<nonce>.lock`) the cache at `root` holds.
fn process_markers(root: &Path) -> usize {
    fs::read_dir(root)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy()
                .starts_with(shard_cache::PROCESS_PREFIX)
        })
        .count()
}

/// The environment variable that makes [`other_process_holding_an_install`]
/// act: the cache root and the stored bundle's SHA-256, `ROOT|SHA`.
const OTHER_PROCESS_ENV: &str = "SHARD_CACHE_TEST_OTHER_PROCESS";

/// A handle opened beside this process's own live handle must still leave
/// alone the install another process is assembling in the same cache (two
/// game instances on one `runtime_cache/`): that process's staging folder
/// is neither this process's work nor a crash's leftover.
#[test]
fn an_open_beside_own_handles_leaves_another_processs_install_alone() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "v1");
    let root = t.path().join("cache");
    let first = RuntimeCache::open(&root).unwrap();
    first.store_bundle(&b.bytes, &b.sha256).unwrap();

    // The other process: this test binary again, running the helper below.
    let mut other = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "other_process_holding_an_install",
            "--ignored",
            "--nocapture",
        ])
        .env(
            OTHER_PROCESS_ENV,
            format!("{}|{}", root.display(), hex::encode(b.sha256)),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(other.stdout.take().unwrap()));
    let staging = loop {
        let line = lines
            .next()
            .expect("the other process ended before staging")
            .unwrap();
        if let Some(path) = line.strip_prefix("STAGED ") {
            break std::path::PathBuf::from(path);
        }
    };
    assert!(staging.is_dir());
    // A crash's leftover beside it, which nobody is filling.
    fs::create_dir_all(root.join("plugins/.staging-x-1/assets")).unwrap();

    let beside = RuntimeCache::open(&root).unwrap();
    assert!(
        staging.is_dir(),
        "an open beside this process's handle removed another process's install in progress"
    );
    // With another process's handle open, nothing is repaired now...
    assert!(root.join("plugins/.staging-x-1").exists());
    // ...and that process finishes its install undisturbed.
    drop(other.stdin.take());
    assert!(
        other.wait().unwrap().success(),
        "the other process's install failed"
    );
    assert_eq!(beside.installed_hash("popup_zone"), Some(b.sha256));
    assert_eq!(plugin_files(&beside), expected_files(&b));

    // Once it is gone, an open beside this process's handles repairs again,
    // and the other process's marker is gone with it.
    let again = RuntimeCache::open(&root).unwrap();
    assert!(leftovers(&again).is_empty(), "{:?}", leftovers(&again));
    assert_eq!(
        process_markers(&root),
        1,
        "only this process's marker is left"
    );
    drop((first, beside, again));
    assert_eq!(
        process_markers(&root),
        0,
        "the last handle removes its process's marker"
    );
}

/// The other process of
/// [`an_open_beside_own_handles_leaves_another_processs_install_alone`]:
/// stages an install of the stored bundle, says where, waits for its
/// parent to close its input, then installs. Does nothing when run alone.
#[test]
#[ignore = "run by an_open_beside_own_handles_leaves_another_processs_install_alone as its other process"]
fn other_process_holding_an_install() {
    let Ok(arg) = std::env::var(OTHER_PROCESS_ENV) else {
        return;
    };
    let (root, sha) = arg.rsplit_once('|').unwrap();
    let sha: [u8; 32] = hex::decode(sha).unwrap().try_into().unwrap();
    let cache = RuntimeCache::open(root).unwrap();
    let request = InstallRequest {
        plugin: "popup_zone",
        version: "1",
        server: SERVER,
        sha256: sha,
    };
    let staged = cache.stage_from_store(&request, u64::MAX).unwrap();
    // Its parent reads this line from the child's standard output.
    std::io::Write::write_all(
        &mut std::io::stdout(),
        format!("STAGED {}\n", staged.path().display()).as_bytes(),
    )
    .unwrap();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()).unwrap();
    cache.install_staged(staged).unwrap();
}

#[test]
fn verify_reports_changed_missing_extra_files_and_missing_bundle() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "v");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    cache.install(&req("1", &b), &b.bytes).unwrap();
    assert_eq!(cache.verify().unwrap()[0].status, VerifyStatus::Ok);
    let dir = cache.root().join("plugins/popup_zone");
    let target = dir.join("assets/data/zone.json");
    let parent = dir.join("assets/data");
    let writable = |p: &Path| {
        let mut perm = fs::metadata(p).unwrap().permissions();
        #[allow(
            clippy::permissions_set_readonly_false,
            reason = "the test makes a file writable again to tamper with it"
        )]
        perm.set_readonly(false);
        fs::set_permissions(p, perm).unwrap();
    };
    writable(&parent);
    writable(&target);
    fs::write(&target, b"tampered").unwrap();
    assert_eq!(
        cache.verify().unwrap()[0].status,
        VerifyStatus::FileDiffers("assets/data/zone.json".into())
    );
    fs::remove_file(&target).unwrap();
    assert_eq!(
        cache.verify().unwrap()[0].status,
        VerifyStatus::FileMissing("assets/data/zone.json".into())
    );
    cache.install(&req("1", &b), &b.bytes).unwrap();
    writable(&parent);
    fs::write(parent.join("extra.json"), b"{}").unwrap();
    assert_eq!(
        cache.verify().unwrap()[0].status,
        VerifyStatus::ExtraFile("assets/data/extra.json".into())
    );
    cache.install(&req("1", &b), &b.bytes).unwrap();
    fs::remove_file(cache.bundle_path(&b.sha256)).unwrap();
    assert_eq!(
        cache.verify().unwrap()[0].status,
        VerifyStatus::MissingBundle(b.sha256_hex())
    );
}

#[test]
fn corrupted_store_file_is_detected_on_read() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "c");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    cache.store_bundle(&b.bytes, &b.sha256).unwrap();
    let mut bytes = b.bytes.clone();
    bytes[10] ^= 0xff;
    fs::write(cache.bundle_path(&b.sha256), &bytes).unwrap();
    assert!(cache.read_bundle(&b.sha256).is_err());
    assert!(cache.install_from_store(&req("1", &b)).is_err());
    assert!(!cache.root().join("plugins/popup_zone").exists());
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
}

#[test]
fn a_store_file_that_unpacks_but_hashes_wrong_is_refused_after_streaming() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "c");
    let other = packed(t.path(), "d");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    // A well-formed bundle under another bundle's name: it unpacks cleanly,
    // so only the hash taken while it is read can refuse it.
    fs::write(cache.bundle_path(&b.sha256), &other.bytes).unwrap();
    let err = cache.stage_from_store(&req("1", &b), u64::MAX).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Bundle(shard_cache::BundleError::HashMismatch { .. })
        ),
        "{err}"
    );
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
    assert!(cache.installed_hash("popup_zone").is_none());
}

#[test]
fn staging_streams_archives_to_disk_and_holds_only_the_small_files() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "s");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    cache.store_bundle(&b.bytes, &b.sha256).unwrap();
    let staged = cache.stage_from_store(&req("1", &b), u64::MAX).unwrap();
    let originals: BTreeMap<String, Vec<u8>> = common::sample_files("s").into_iter().collect();
    for f in &staged.bundle().files {
        let on_disk = fs::read(staged.path().join(&f.path)).unwrap();
        assert_eq!(&on_disk, &originals[&f.path], "{}", f.path);
        assert_eq!(f.contents.len(), on_disk.len() as u64, "{}", f.path);
        match &f.contents {
            FileContents::Staged { path, .. } => {
                assert!(f.path.ends_with(".archive"), "{} staged", f.path);
                assert_eq!(path, &staged.path().join(&f.path));
            }
            FileContents::Memory(bytes) => {
                assert!(!f.path.ends_with(".archive"), "{} held in memory", f.path);
                assert_eq!(bytes, &on_disk);
            }
        }
    }
    assert!(
        staged
            .bundle()
            .files
            .iter()
            .any(|f| matches!(f.contents, FileContents::Staged { .. })),
        "the sample has an archive"
    );
    cache.install_staged(staged).unwrap();
    assert_eq!(plugin_files(&cache), expected_files(&b));
}

#[test]
fn unsafe_plugin_names_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "n");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    let long = "a".repeat(shard_protocol::limits::MAX_PLUGIN_NAME + 1);
    for name in [
        "",
        ".hidden",
        "..",
        "a/b",
        "a\\b",
        "con",
        "COM1",
        "x.",
        long.as_str(),
        "sp ace",
    ] {
        let r = InstallRequest {
            plugin: name,
            version: "1",
            server: SERVER,
            sha256: b.sha256,
        };
        let err = cache.install(&r, &b.bytes).unwrap_err();
        assert!(
            matches!(err, CacheError::InvalidPluginName { .. }),
            "{name:?}: {err}"
        );
    }
    let bad_version = InstallRequest {
        plugin: "ok",
        version: "1 0",
        server: SERVER,
        sha256: b.sha256,
    };
    assert!(matches!(
        cache.install(&bad_version, &b.bytes).unwrap_err(),
        CacheError::InvalidField {
            field: "version",
            ..
        }
    ));
    assert!(
        snapshot(cache.root()).values().all(Option::is_none),
        "nothing written"
    );
}

#[test]
fn uninstall_removes_the_folder_but_keeps_the_bundle() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "u");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    cache.install(&req("1", &b), &b.bytes).unwrap();
    cache.uninstall("popup_zone").unwrap();
    assert_eq!(cache.installed_hash("popup_zone"), None);
    assert!(cache.has_bundle(&b.sha256));
    assert!(matches!(
        cache.uninstall("popup_zone").unwrap_err(),
        CacheError::NotInstalled { .. }
    ));
}

#[test]
fn stored_scripts_keeps_only_the_scripts_and_hashes_the_store_copy() {
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "s");
    let other = packed(t.path(), "o");
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    cache.store_bundle(&b.bytes, &b.sha256).unwrap();
    let scripts = cache.stored_scripts(&b.sha256).unwrap();
    let paths: Vec<&str> = scripts.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["client/popup.reds"]);
    assert!(matches!(scripts.files[0].contents, FileContents::Memory(_)));
    // The size is the whole bundle's, archives included.
    assert_eq!(scripts.unpacked_len, b.unpacked_len);
    // Another bundle under this name is refused by the hash taken while reading.
    fs::write(cache.bundle_path(&b.sha256), &other.bytes).unwrap();
    let err = cache.stored_scripts(&b.sha256).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Bundle(shard_cache::BundleError::HashMismatch { .. })
        ),
        "{err}"
    );
}

/// A cache this user may only read (a modder's shared copy, read-only
/// media) still opens for listing and verifying, with or without a lock
/// file: it repairs nothing (it could not), changes fail with what was
/// refused, and an exclusive open (`cache clear`) fails rather than pretend.
/// The kernel makes it read-only (Landlock, on this thread only), since
/// permission bits do not stop root.
#[cfg(target_os = "linux")]
#[test]
fn a_cache_that_may_only_be_read_opens_for_listing_and_verifying() {
    use landlock::{
        ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
        path_beneath_rules,
    };
    let t = tempfile::tempdir().unwrap();
    let b = packed(t.path(), "v1");
    let b2 = packed(t.path(), "v2");
    let root = t.path().join("cache");
    RuntimeCache::open(&root)
        .unwrap()
        .install(&req("1", &b), &b.bytes)
        .unwrap();
    // What a crash left: a writable open would remove it.
    fs::create_dir_all(root.join("plugins/.staging-x-1")).unwrap();

    let check = |root: std::path::PathBuf, b: PackedBundle, b2: PackedBundle| {
        std::thread::spawn(move || {
            let abi = ABI::V2;
            let status = Ruleset::default()
                .handle_access(AccessFs::from_all(abi))
                .unwrap()
                .create()
                .unwrap()
                .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))
                .unwrap()
                .restrict_self()
                .unwrap();
            if status.ruleset == RulesetStatus::NotEnforced {
                eprintln!("NOT CHECKED: this kernel has no Landlock");
                return;
            }
            assert!(
                fs::write(root.join("probe"), b"x").is_err(),
                "not read-only"
            );
            let cache = RuntimeCache::open(&root).unwrap();
            assert!(root.join("plugins/.staging-x-1").is_dir(), "repaired");
            let listed = cache.list().unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].hash, b.sha256);
            assert_eq!(cache.verify().unwrap()[0].status, VerifyStatus::Ok);
            let err = cache.install(&req("2", &b2), &b2.bytes).unwrap_err();
            assert!(err.to_string().contains("ermission denied"), "{err}");
            assert_eq!(cache.installed_hash("popup_zone"), Some(b.sha256));
            let err = RuntimeCache::open_exclusive(&root).unwrap_err();
            assert!(err.to_string().contains(".lock"), "{err}");
        })
        .join()
        .unwrap();
    };
    check(root.clone(), b.clone(), b2.clone());
    // A cache made before the lock file existed, or copied without it.
    fs::remove_file(root.join(shard_cache::LOCK_FILE)).unwrap();
    check(root.clone(), b.clone(), b2.clone());
    assert!(!root.join(shard_cache::LOCK_FILE).exists());

    // Writable again, the next open repairs and installs.
    let cache = RuntimeCache::open(&root).unwrap();
    assert!(!root.join("plugins/.staging-x-1").exists());
    cache.install(&req("2", &b2), &b2.bytes).unwrap();
}

/// Two handles on one cache (two clients sharing it) installing the same
/// plugin at the same moment take turns: each install moves its folder in
/// whole, none fails because the other moved the folder aside first, and
/// the cache ends verified with nothing left over.
#[test]
fn two_handles_installing_the_same_plugin_at_once_take_turns() {
    let t = tempfile::tempdir().unwrap();
    let b1 = packed(t.path(), "v1");
    let b2 = packed(t.path(), "v2");
    let root = t.path().join("cache");
    let setup = RuntimeCache::open(&root).unwrap();
    setup.store_bundle(&b1.bytes, &b1.sha256).unwrap();
    setup.store_bundle(&b2.bytes, &b2.sha256).unwrap();
    let threads: Vec<_> = [b1.clone(), b2.clone()]
        .into_iter()
        .map(|b| {
            let cache = RuntimeCache::open(&root).unwrap();
            std::thread::spawn(move || {
                for round in 0..40 {
                    cache
                        .install_from_store(&req("1", &b))
                        .unwrap_or_else(|e| panic!("round {round}: {e}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let hash = setup.installed_hash("popup_zone").unwrap();
    let winner = if hash == b1.sha256 { &b1 } else { &b2 };
    assert_eq!(plugin_files(&setup), expected_files(winner));
    assert_eq!(setup.verify().unwrap()[0].status, VerifyStatus::Ok);
    assert!(leftovers(&setup).is_empty(), "{:?}", leftovers(&setup));
}
