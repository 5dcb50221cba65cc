//! Game content in bundles: hostile archives, hostile `.xl`/YAML and
//! tweaks that change vanilla are refused with the cache left byte for byte
//! as it was; valid archives, `.xl` and add-only tweaks install.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]

mod common;

use common::{file, raw_tar, seal, snapshot};
use shard_cache::content::rdar::{RdarBuilder, check_archive, check_archive_file, depot_hash};
use shard_cache::{
    BundleError, BundleFile, CacheError, ContentError, FileContents, InstallRequest, RuntimeCache,
    UnpackedBundle, check_bundle_content, unpack_bundle,
};

const PLUGIN: &str = "mobile_cc";

/// A valid two-file archive: 64 bytes each, so segments are easy to address.
fn base_archive() -> Vec<u8> {
    RdarBuilder::new()
        .file("base\\shard\\a.ent", vec![b'a'; 64])
        .file("base\\shard\\b.mesh", vec![b'b'; 64])
        .build()
}

fn u32_at(v: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(v[at..at + 4].try_into().unwrap())
}

fn u64_at(v: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(v[at..at + 8].try_into().unwrap())
}

fn set32(v: &mut [u8], at: usize, x: u32) {
    v[at..at + 4].copy_from_slice(&x.to_le_bytes());
}

fn set64(v: &mut [u8], at: usize, x: u64) {
    v[at..at + 8].copy_from_slice(&x.to_le_bytes());
}

/// Offsets inside `base_archive()`.
struct Layout {
    index: usize,
    entry: [usize; 2],
    seg: [usize; 2],
}

fn layout(v: &[u8]) -> Layout {
    let index = u64_at(v, 8) as usize;
    let entries = index + 28;
    let segs = entries + 2 * 56;
    Layout {
        index,
        entry: [entries, entries + 56],
        seg: [segs, segs + 16],
    }
}

/// Every crafted hostile archive, named, with the rule id it must trip.
fn hostile_archives() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let base = base_archive();
    let l = layout(&base);
    let len = base.len() as u64;
    let mut out: Vec<(&'static str, &'static str, Vec<u8>)> = Vec::new();
    let mut with = |name, rule, f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = base.clone();
        f(&mut v);
        out.push((name, rule, v));
    };
    with("bad magic", "rdar-magic", &|v| {
        v[0..4].copy_from_slice(b"PK\x03\x04")
    });
    with("bad version", "rdar-version", &|v| set32(v, 4, 13));
    with("empty file", "rdar-size", &|v| v.clear());
    with("shorter than the header", "rdar-size", &|v| v.truncate(20));
    with("truncated file", "rdar-size", &|v| v.truncate(v.len() - 10));
    with("padded file", "rdar-size", &|v| {
        v.extend_from_slice(&[0; 16])
    });
    with("index past EOF", "rdar-bounds", &|v| set64(v, 8, len + 100));
    with("index size past EOF", "rdar-bounds", &|v| {
        let size = u32_at(v, 16);
        set32(v, 16, size + 1)
    });
    with("index inside the header", "rdar-bounds", &|v| {
        set64(v, 8, 4)
    });
    with("index offset overflows", "rdar-bounds", &|v| {
        set64(v, 8, u64::MAX - 3)
    });
    with("zero-size table", "rdar-empty", &|v| set32(v, 16, 0));
    with("no files listed", "rdar-empty", &|v| {
        set32(v, l.index + 16, 0)
    });
    with("huge declared file count", "rdar-limit", &|v| {
        set32(v, l.index + 16, u32::MAX)
    });
    with("huge declared segment count", "rdar-limit", &|v| {
        set32(v, l.index + 20, 0x4000_0000)
    });
    with("huge declared dependency count", "rdar-limit", &|v| {
        set32(v, l.index + 24, u32::MAX)
    });
    with("tables larger than the index", "rdar-bounds", &|v| {
        set32(v, l.index + 24, 50)
    });
    with("bad table offset", "rdar-bounds", &|v| set32(v, l.index, 0));
    with("debug data past EOF", "rdar-bounds", &|v| {
        set64(v, 20, 100);
        set32(v, 28, u32::MAX)
    });
    with("empty segment range", "rdar-table", &|v| {
        set32(v, l.entry[0] + 24, 0)
    });
    with("segment range past the table", "rdar-table", &|v| {
        set32(v, l.entry[1] + 24, 99)
    });
    with(
        "inline buffers beyond the file's segments",
        "rdar-table",
        &|v| set32(v, l.entry[0] + 16, 5),
    );
    with("dependency range past the table", "rdar-table", &|v| {
        set32(v, l.entry[0] + 32, 3)
    });
    with("two files share a segment", "rdar-table", &|v| {
        set32(v, l.entry[1] + 20, 0)
    });
    with("duplicate name hash", "rdar-table", &|v| {
        let h = u64_at(v, l.entry[0]);
        set64(v, l.entry[1], h)
    });
    with("overlapping segments", "rdar-segment", &|v| {
        let o = u64_at(v, l.seg[0]);
        set64(v, l.seg[1], o + 32)
    });
    with("segment past EOF", "rdar-segment", &|v| {
        set64(v, l.seg[1], len - 10)
    });
    with("segment offset overflows", "rdar-segment", &|v| {
        set64(v, l.seg[1], u64::MAX - 8)
    });
    with("segment inside the header", "rdar-segment", &|v| {
        set64(v, l.seg[0], 8)
    });
    with("segment overlapping the index", "rdar-segment", &|v| {
        set64(v, l.seg[1], l.index as u64 - 8)
    });
    with("zero-size segment", "rdar-segment", &|v| {
        set32(v, l.seg[0] + 8, 0);
        set32(v, l.seg[0] + 12, 0)
    });
    with(
        "compressed segment without a KARK header",
        "rdar-segment",
        &|v| set32(v, l.seg[0] + 12, 1000),
    );
    with(
        "declared uncompressed size over the cap",
        "rdar-limit",
        &|v| {
            let data = u64_at(v, l.seg[0]) as usize;
            v[data..data + 4].copy_from_slice(b"KARK");
            set32(v, data + 4, 0xF000_0000);
            set32(v, l.seg[0] + 12, 0xF000_0000)
        },
    );
    out
}

/// A packed bundle of `files` and its hash.
fn bundle(files: &[(&str, &[u8])]) -> (Vec<u8>, [u8; 32]) {
    let entries: Vec<_> = files.iter().map(|(p, d)| file(p, d)).collect();
    seal(&raw_tar(&entries))
}

fn request(sha: [u8; 32]) -> InstallRequest<'static> {
    InstallRequest {
        plugin: PLUGIN,
        version: "1.0",
        server: "127.0.0.1:7777",
        sha256: sha,
    }
}

/// Installs `files` into a cache that already holds one good install and
/// returns the refusal, asserting the cache did not change by one byte.
fn refused_install(files: &[(&str, &[u8])]) -> ContentError {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    let good = base_archive();
    let (ok, ok_sha) = bundle(&[("assets/cc.archive", &good)]);
    cache.install(&request(ok_sha), &ok).unwrap();
    let before = snapshot(cache.root());
    let (bytes, sha) = bundle(files);
    let err = cache.install(&request(sha), &bytes).unwrap_err();
    assert_eq!(snapshot(cache.root()), before, "cache changed by a refusal");
    match err {
        CacheError::Content(c) => c,
        other => panic!("expected a content refusal, got {other}"),
    }
}

fn content(files: &[(&str, &[u8])]) -> Result<shard_cache::ContentReport, ContentError> {
    let bundle = UnpackedBundle {
        dirs: Vec::new(),
        files: files
            .iter()
            .map(|(p, d)| BundleFile {
                path: (*p).to_owned(),
                contents: FileContents::Memory(d.to_vec()),
            })
            .collect(),
        unpacked_len: 0,
    };
    check_bundle_content(PLUGIN, &bundle)
}

fn rules(e: &ContentError) -> Vec<&'static str> {
    e.diagnostics.iter().map(|d| d.rule).collect()
}

#[test]
fn the_builder_writes_archives_the_reader_accepts() {
    let info = check_archive(&base_archive()).unwrap();
    assert_eq!(info.file_hashes.len(), 2);
    assert_eq!(info.segments, 2);
    assert_eq!(info.file_hashes[0], depot_hash("base/shard/A.ent"));
}

#[test]
fn every_hostile_archive_is_refused_and_the_cache_is_unchanged() {
    let cases = hostile_archives();
    assert!(cases.len() >= 20, "only {} cases", cases.len());
    for (name, rule, archive) in &cases {
        let err = refused_install(&[("assets/cc.archive", archive)]);
        assert_eq!(rules(&err), vec![*rule], "{name}: {err}");
        let d = &err.diagnostics[0];
        assert_eq!(d.file, "assets/cc.archive", "{name}");
        assert!(
            d.to_string().starts_with("assets/cc.archive: [rdar-"),
            "{name}: {d}"
        );
    }
}

#[test]
fn random_archive_corruption_never_panics_and_a_staged_file_is_judged_alike() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let base = base_archive();
    let t = tempfile::tempdir().unwrap();
    let staged = t.path().join("cc.archive");
    let mut refused = 0;
    for _ in 0..3000 {
        let mut v = base.clone();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..v.len());
            v[at] = rng.r#gen();
        }
        if rng.gen_bool(0.2) {
            v.truncate(rng.gen_range(0..v.len()));
        }
        let in_memory = check_archive(&v);
        // The install checks a staged archive by offset: the same verdict.
        std::fs::write(&staged, &v).unwrap();
        let file = std::fs::File::open(&staged).unwrap();
        assert_eq!(check_archive_file(&file, v.len() as u64), in_memory);
        refused += usize::from(in_memory.is_err());
    }
    assert!(
        refused > 1000,
        "only {refused} of 3000 corrupted archives refused"
    );
}

#[test]
fn a_staged_archive_that_cannot_be_read_is_refused_with_its_reason() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("cc.archive");
    let archive = base_archive();
    std::fs::write(&path, &archive[..archive.len() / 2]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    // The length recorded at staging no longer matches the file.
    let err = check_archive_file(&file, archive.len() as u64).unwrap_err();
    assert_eq!(err.rule(), "rdar-io", "{err}");
}

const GOOD_XL: &[u8] = b"# registers the interior sector and the text\n\
streaming:\n  sectors:\n    - path: base\\shard\\interior.streamingsector\n      expectedNodes: 3\n\
factories:\n  - factories\\cc.csv\n\
localization:\n  onscreens:\n    en-us: loc/en-us.json\n";

fn xl_archive() -> Vec<u8> {
    RdarBuilder::new()
        .file("base\\shard\\interior.streamingsector", b"sector".to_vec())
        .build()
}

#[test]
fn a_valid_xl_with_its_files_is_accepted() {
    let archive = xl_archive();
    let report = content(&[
        ("assets/cc.archive", &archive),
        ("assets/cc.archive.xl", GOOD_XL),
        (
            "assets/factories/cc.csv",
            b"name,path\ncc,base\\shard\\cc.ent\n",
        ),
        ("assets/loc/en-us.json", b"{\"entries\": []}"),
    ])
    .unwrap();
    assert_eq!(report.archives.len(), 1);
    assert_eq!(
        report.archives[0].xl.as_deref(),
        Some("assets/cc.archive.xl")
    );
    assert_eq!(
        report.data_files,
        vec!["assets/factories/cc.csv", "assets/loc/en-us.json"]
    );
}

/// `(name, xl text, rule)`: each refused `.xl`.
fn hostile_xl() -> Vec<(&'static str, String, &'static str)> {
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{i}: &{i} [{refs}]\n"));
    }
    let deep_flow = format!("factories: {}{}\n", "[".repeat(200), "]".repeat(200));
    let mut deep_block = String::from("streaming:\n");
    for d in 1..60 {
        deep_block.push_str(&format!("{}k{d}:\n", "  ".repeat(d)));
    }
    let many_aliases = format!("x: &x a\nfactories: [{}]\n", vec!["*x"; 100].join(","));
    vec![
        ("billion laughs", bomb, "yaml-alias"),
        ("too many aliases", many_aliases, "yaml-alias"),
        ("deep flow nesting", deep_flow, "yaml-depth"),
        ("deep block nesting", deep_block, "yaml-depth"),
        (
            "unknown top-level key",
            "resource:\n  patch:\n    base\\x.mesh: [base\\y.mesh]\n".into(),
            "xl-key",
        ),
        (
            "sector node deletions",
            "streaming:\n  sectors:\n    - path: base\\shard\\interior.streamingsector\n      nodeDeletions: [{index: 1}]\n".into(),
            "xl-key",
        ),
        (
            "reference outside the bundle",
            "factories:\n  - ..\\..\\r6\\config\\x.csv\n".into(),
            "xl-path",
        ),
        (
            "absolute reference",
            "factories:\n  - C:\\Windows\\x.csv\n".into(),
            "xl-path",
        ),
        (
            "reference to a missing file",
            "localization:\n  onscreens:\n    en-us: loc\\missing.json\n".into(),
            "xl-ref",
        ),
        (
            "sector not in the archive",
            "streaming:\n  sectors:\n    - path: base\\worlds\\vanilla.streamingsector\n".into(),
            "xl-ref",
        ),
        (
            "wrong kind of file",
            "factories:\n  - base\\shard\\interior.streamingsector\n".into(),
            "xl-path",
        ),
        ("two documents", "factories: []\n---\nfactories: []\n".into(), "yaml-syntax"),
        ("not YAML", "factories: [unclosed\n".into(), "yaml-syntax"),
        (
            "oversized file",
            format!("# {}\n", "x".repeat(300 * 1024)),
            "yaml-size",
        ),
    ]
}

#[test]
fn hostile_xl_is_refused_with_its_rule_and_the_cache_is_unchanged() {
    let archive = xl_archive();
    for (name, xl, rule) in hostile_xl() {
        let err = refused_install(&[
            ("assets/cc.archive", &archive),
            ("assets/cc.archive.xl", xl.as_bytes()),
        ]);
        assert!(rules(&err).contains(&rule), "{name}: {err}");
        assert!(
            err.diagnostics
                .iter()
                .all(|d| d.file == "assets/cc.archive.xl"),
            "{name}: {err}"
        );
    }
}

#[test]
fn orphan_xl_and_unreferenced_data_files_are_refused() {
    let archive = xl_archive();
    let err = content(&[
        ("assets/cc.archive", &archive),
        ("assets/other.archive.xl", b"factories: []\n"),
        ("assets/loose.xl", b"factories: []\n"),
        ("assets/ui/hud.json", b"{}"),
    ])
    .unwrap_err();
    assert_eq!(rules(&err), vec!["xl-orphan", "xl-orphan", "data-orphan"]);
    let err = content(&[
        ("assets/cc.archive", &archive),
        (
            "assets/cc.archive.xl",
            b"localization:\n  onscreens:\n    en-us: a.json\n",
        ),
        ("assets/a.json", b"{not json"),
    ])
    .unwrap_err();
    assert_eq!(rules(&err), vec!["data-syntax"]);
}

#[test]
fn tweak_files_in_the_tweak_format_are_refused_with_a_reason() {
    let (bytes, sha) = bundle(&[("tweaks/cc.tweak", b"Vehicle.x = 1")]);
    let err = unpack_bundle(&bytes, &sha).unwrap_err();
    assert!(matches!(err, BundleError::BadPath { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(".tweak format is not accepted yet"),
        "{err}"
    );
    let (bytes, sha) = bundle(&[("tweaks/sub/cc.yaml", b"{}")]);
    assert!(unpack_bundle(&bytes, &sha).is_err());
    let (bytes, sha) = bundle(&[("assets/sub/cc.archive", &base_archive())]);
    let err = unpack_bundle(&bytes, &sha).unwrap_err();
    assert!(err.to_string().contains("directly in assets/"), "{err}");
}

const GOOD_TWEAK: &str = "\
# the command centre: a clone of a vanilla van
Vehicle.shard_mobile_cc_commandcenter:
  $base: Vehicle.v_van_chevalier_emperor_620_player
  displayName: LocKey#shard_mobile_cc_name
  tags: !append [ShardCommandCenter]
  driving:
    $type: gamedataVehicleDriveModelData_Record
    total_mass: 3200.0
Vehicle.shard_mobile_cc_fresh:
  $type: gamedataVehicle_Record
Vehicle.shard_mobile_cc_top_speed: 42.0
Vehicle.shard_mobile_cc_commandcenter.manufacturer: Vehicle.Chevalier
";

#[test]
fn add_only_tweaks_are_accepted() {
    let report = content(&[("tweaks/cc.yaml", GOOD_TWEAK.as_bytes())]).unwrap();
    let adds = &report.tweaks[0].adds;
    assert_eq!(
        adds.records,
        vec![
            "Vehicle.shard_mobile_cc_commandcenter",
            "Vehicle.shard_mobile_cc_fresh"
        ]
    );
    assert_eq!(
        adds.flats,
        vec![
            "Vehicle.shard_mobile_cc_top_speed",
            "Vehicle.shard_mobile_cc_commandcenter.manufacturer"
        ]
    );
}

#[test]
fn tweaks_that_change_or_delete_vanilla_are_refused_with_file_line_and_rule() {
    let cases: &[(&str, &str, &str, usize)] = &[
        (
            "modifies the katana preset",
            "Items.Preset_Katana_Default:\n  quality: Quality.Legendary\n",
            "tweak-record",
            1,
        ),
        (
            "deletes a record",
            "# gone\nItems.Preset_Katana_Default: null\n",
            "tweak-delete",
            2,
        ),
        (
            "deletes with a tag",
            "Items.Preset_Katana_Default: !delete {}\n",
            "tweak-delete",
            1,
        ),
        (
            "writes a flat of a vanilla record",
            "Vehicle.shard_mobile_cc_ok:\n  $type: gamedataVehicle_Record\nItems.Preset_Katana_Default.damage: 1000\n",
            "tweak-flat",
            3,
        ),
        (
            "writes a flat outside the namespace",
            "Vehicle.speed_multiplier: 10\n",
            "tweak-flat",
            1,
        ),
        (
            "another plugin's namespace",
            "Vehicle.shard_vote_x:\n  $type: gamedataVehicle_Record\n",
            "tweak-record",
            1,
        ),
        (
            "bare namespace prefix",
            "Vehicle.shard_mobile_cc_:\n  $type: gamedataVehicle_Record\n",
            "tweak-record",
            1,
        ),
        (
            "new record without origin",
            "Vehicle.shard_mobile_cc_x:\n  displayName: x\n",
            "tweak-new-record",
            2,
        ),
        (
            "unknown directive",
            "Vehicle.shard_mobile_cc_x:\n  $base: Vehicle.v_van\n  $instances: [{a: 1}]\n",
            "tweak-directive",
            3,
        ),
        ("not an id", "Vehicle:\n  $type: x\n", "tweak-key", 1),
        (
            "nulls a property",
            "Vehicle.shard_mobile_cc_x:\n  $base: Vehicle.v_van\n  tags: ~\n",
            "tweak-delete",
            3,
        ),
        (
            "unknown tag",
            "Vehicle.shard_mobile_cc_x:\n  $base: Vehicle.v_van\n  tags: !python/object [x]\n",
            "tweak-tag",
            3,
        ),
        (
            "duplicate id",
            "Vehicle.shard_mobile_cc_a: 1\nVehicle.shard_mobile_cc_a: 2\n",
            "tweak-duplicate",
            2,
        ),
        ("not a mapping", "- a\n- b\n", "tweak-shape", 1),
    ];
    for (name, text, rule, line) in cases {
        let err = refused_install(&[("tweaks/cc.yaml", text.as_bytes())]);
        let d = err
            .diagnostics
            .iter()
            .find(|d| d.rule == *rule)
            .unwrap_or_else(|| panic!("{name}: no {rule} in {err}"));
        assert_eq!(d.line, *line, "{name}: {d}");
        assert!(
            d.to_string()
                .starts_with(&format!("tweaks/cc.yaml:{line}: [{rule}]")),
            "{name}: {d}"
        );
    }
}

#[test]
fn a_good_bundle_installs_and_a_refused_download_can_be_discarded() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path().join("cache")).unwrap();
    let archive = xl_archive();
    let (bytes, sha) = bundle(&[
        ("assets/cc.archive", &archive),
        (
            "assets/cc.archive.xl",
            b"streaming:\n  sectors:\n    - path: base\\shard\\interior.streamingsector\n",
        ),
        ("tweaks/cc.yaml", GOOD_TWEAK.as_bytes()),
    ]);
    cache.install(&request(sha), &bytes).unwrap();
    assert!(cache.has_bundle(&sha));
    // An installed bundle is never discarded; an unused one is.
    assert!(!cache.discard_bundle(&sha).unwrap());
    let before = snapshot(cache.root());
    let (bad, bad_sha) = bundle(&[("tweaks/cc.yaml", b"Items.Preset_Katana_Default: {}\n")]);
    cache.store_bundle(&bad, &bad_sha).unwrap();
    assert!(
        cache
            .install_from_store(&request(bad_sha))
            .is_err_and(|e| matches!(e, CacheError::Content(_)))
    );
    assert!(cache.discard_bundle(&bad_sha).unwrap());
    assert_eq!(snapshot(cache.root()), before);
}
