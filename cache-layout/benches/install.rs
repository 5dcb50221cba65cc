//! Benchmark: installing a downloaded ~16 MB bundle the way the client does
//! now (unpack once into staging, check there, move into place:
//! `stage_from_store` + `install_staged`) against the old way (unpack to
//! check the scripts, then `install_from_store`, which unpacks again).
//! Run with `cargo bench -p shard-cache --bench install`; prints ms per
//! install and MB/s of unpacked data for both.
#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    reason = "a benchmark binary: its figures go to stdout, and a failed setup step should stop it"
)]

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use shard_cache::{InstallRequest, RuntimeCache, pack_plugin_dir, unpack_bundle};

/// Writes a plugin folder: compressible JSON under `assets/`, incompressible
/// archives, one client script; returns the bytes written.
fn generate(dir: &Path) -> u64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut total = 0u64;
    for i in 0..8 {
        // Half incompressible, half repetitive: ~4 MB packed (the packed
        // limit is 5 MB), ~16 MB unpacked.
        let mut archive = vec![0u8; 2 * 1024 * 1024];
        if i % 2 == 0 {
            rng.fill_bytes(&mut archive[..1024 * 1024]);
        } else {
            for (n, b) in archive.iter_mut().enumerate() {
                *b = b"shard bench record "[n % 19];
            }
        }
        let builder = shard_cache::content::rdar::RdarBuilder::new()
            .file(&format!("base\\bench\\blob{i}.bin"), archive);
        let bytes = builder.build();
        let path = dir.join(format!("assets/b{i}.archive"));
        fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        total += bytes.len() as u64;
        fs::write(&path, bytes).expect("write");
    }
    let reds = dir.join("client/bench.reds");
    fs::create_dir_all(reds.parent().expect("has parent")).expect("mkdir");
    let script = "public func BenchInit() -> Void {}\n".repeat(2000);
    total += script.len() as u64;
    fs::write(&reds, script).expect("write");
    total
}

fn mbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("shard-install-bench-{}", std::process::id()));
    let dir = tmp.join("src/bench");
    let unpacked = generate(&dir);
    let packed = pack_plugin_dir(&dir).expect("pack");
    let cache = RuntimeCache::open(tmp.join("cache")).expect("cache");
    cache
        .store_bundle(&packed.bytes, &packed.sha256)
        .expect("store");
    let rounds = 10u32;
    let req = |version: &'static str| InstallRequest {
        plugin: "bench",
        version,
        server: "127.0.0.1:7777",
        sha256: packed.sha256,
    };

    let start = Instant::now();
    for _ in 0..rounds {
        let bytes = cache.read_bundle(&packed.sha256).expect("read");
        let files = unpack_bundle(&bytes, &packed.sha256).expect("unpack");
        assert!(files.files.iter().any(|f| f.path.starts_with("client/")));
        cache.install_from_store(&req("1")).expect("install");
    }
    let old = start.elapsed() / rounds;

    let start = Instant::now();
    for _ in 0..rounds {
        let staged = cache
            .stage_from_store(&req("1"), packed.unpacked_len)
            .expect("stage");
        assert!(
            staged
                .bundle()
                .files
                .iter()
                .any(|f| f.path.starts_with("client/"))
        );
        cache.install_staged(staged).expect("install");
    }
    let new = start.elapsed() / rounds;

    println!(
        "install of {:.1} MB unpacked ({:.1} MB packed), {rounds} rounds each:",
        unpacked as f64 / 1048576.0,
        packed.bytes.len() as f64 / 1048576.0
    );
    println!(
        "  unpack to check + install_from_store: {:.1} ms/install, {:.0} MB/s",
        old.as_secs_f64() * 1000.0,
        mbps(unpacked, old)
    );
    println!(
        "  stage_from_store + install_staged:    {:.1} ms/install, {:.0} MB/s",
        new.as_secs_f64() * 1000.0,
        mbps(unpacked, new)
    );
    let _ = fs::remove_dir_all(&tmp);
}
