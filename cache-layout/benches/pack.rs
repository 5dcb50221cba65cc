//! Benchmark: pack + hash a generated ~5 MB asset folder with `shard-cache`,
//! and the same files with `tar -cf - … | zstd -3 | sha256sum` for comparison.
//! Run with `cargo bench -p shard-cache --bench pack`; prints MB/s for both.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(clippy::print_stdout, reason = "a benchmark: it prints its figures")]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use shard_cache::pack_plugin_dir;

/// Writes the asset folder: half compressible JSON-like text, half random bytes.
fn generate(dir: &Path) -> u64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut total = 0u64;
    for i in 0..40 {
        let path = dir.join(format!("assets/text/t{i:02}.json"));
        fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        let mut text = String::new();
        let mut n = 0u32;
        while text.len() < 64 * 1024 {
            text.push_str(&format!(
                "{{\"id\":{n},\"name\":\"npc_{n}\",\"pos\":[{},{},0.0]}},\n",
                rng.next_u32() % 1000,
                rng.next_u32() % 1000
            ));
            n += 1;
        }
        total += text.len() as u64;
        fs::write(&path, text).expect("write");
    }
    for i in 0..10 {
        let path = dir.join(format!("assets/r{i:02}.archive"));
        fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        let mut noise = vec![0u8; 256 * 1024];
        rng.fill_bytes(&mut noise);
        total += noise.len() as u64;
        fs::write(&path, noise).expect("write");
    }
    let reds = dir.join("client/popup.reds");
    fs::create_dir_all(reds.parent().expect("has parent")).expect("mkdir");
    fs::write(&reds, "class Popup extends ShardRpcHandler {}\n").expect("write");
    total
}

/// MB/s for `bytes` processed in `elapsed`.
fn mbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("shard-cache-bench-{}", std::process::id()));
    let dir = tmp.join("bench_plugin");
    let input = generate(&dir);
    let rounds = 5u32;

    let mut packed_len = 0;
    let start = Instant::now();
    for _ in 0..rounds {
        let p = pack_plugin_dir(&dir).expect("pack");
        packed_len = p.bytes.len();
    }
    let ours = start.elapsed() / rounds;
    println!(
        "shard-cache pack+sha256: input {:.2} MB -> {:.2} MB packed, {:.1} ms/run, {:.1} MB/s",
        input as f64 / 1048576.0,
        packed_len as f64 / 1048576.0,
        ours.as_secs_f64() * 1000.0,
        mbps(input, ours)
    );

    let have_zstd = Command::new("zstd").arg("--version").output().is_ok();
    if !have_zstd {
        println!("tar | zstd -3 | sha256sum: skipped (zstd CLI not found)");
    } else {
        let script = format!(
            "tar -cf - -C '{}' assets client | zstd -3 -q -c | sha256sum > /dev/null",
            dir.display()
        );
        let start = Instant::now();
        for _ in 0..rounds {
            let ok = Command::new("sh")
                .arg("-c")
                .arg(&script)
                .status()
                .expect("sh");
            assert!(ok.success(), "pipeline failed");
        }
        let cli = start.elapsed() / rounds;
        println!(
            "tar | zstd -3 | sha256sum:  {:.1} ms/run, {:.1} MB/s",
            cli.as_secs_f64() * 1000.0,
            mbps(input, cli)
        );
    }
    content_check();
    let _ = fs::remove_dir_all(&tmp);
}

/// Times the RDAR check of a 4 MB archive of 2,000 files and the full content
/// check (archive, `.xl`, tweak) of a bundle holding it.
fn content_check() {
    use shard_cache::content::rdar::{RdarBuilder, check_archive};
    use shard_cache::{BundleFile, UnpackedBundle, check_bundle_content};
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut builder = RdarBuilder::new();
    for i in 0..2000 {
        let mut data = vec![0u8; 2048];
        rng.fill_bytes(&mut data);
        builder = builder.file(&format!("base\\bench\\f{i}.streamingblock"), data);
    }
    let archive = builder.build();
    let rounds = 20u32;
    let start = Instant::now();
    for _ in 0..rounds {
        check_archive(&archive).expect("valid archive");
    }
    let per = start.elapsed() / rounds;
    println!(
        "RDAR check: {:.2} MB, 2000 files: {:.2} ms/run, {:.0} MB/s",
        archive.len() as f64 / 1048576.0,
        per.as_secs_f64() * 1000.0,
        mbps(archive.len() as u64, per)
    );
    let mut tweak = String::new();
    for i in 0..500 {
        tweak.push_str(&format!(
            "Vehicle.shard_bench_v{i}:\n  $base: Vehicle.v_standard2_thorton_colby\n  displayName: LocKey#{i}\n  tags: !append [Bench]\n"
        ));
    }
    let bundle = UnpackedBundle {
        dirs: vec!["assets".into(), "tweaks".into()],
        files: vec![
            BundleFile {
                path: "assets/bench.archive".into(),
                contents: shard_cache::FileContents::Memory(archive),
            },
            BundleFile {
                path: "assets/bench.archive.xl".into(),
                contents: shard_cache::FileContents::Memory(
                    b"streaming:\n  blocks:\n    - base\\bench\\f1.streamingblock\n".to_vec(),
                ),
            },
            BundleFile {
                path: "tweaks/bench.yaml".into(),
                contents: shard_cache::FileContents::Memory(tweak.into_bytes()),
            },
        ],
        unpacked_len: 0,
    };
    let start = Instant::now();
    for _ in 0..rounds {
        let _ = check_bundle_content("bench", &bundle);
    }
    let per = start.elapsed() / rounds;
    println!(
        "content check (archive + .xl + 500-record tweak): {:.2} ms/run",
        per.as_secs_f64() * 1000.0
    );
}
