//! Benchmark: the client's receive-and-install path without a network.
//! `--bundles` downloads of one ~5 MB bundle (an incompressible archive,
//! like `bundle_push`'s) arrive in protocol-sized chunks, on `--threads`
//! threads at once: each is written chunk by chunk into `partial/`,
//! verified, moved into the store, staged and installed, exactly as the
//! client's bundle thread does. Prints the wall time, the process CPU time
//! per bundle and the aggregate MB/s: the ceiling the install work puts on
//! a push, whatever the transport.
//!
//! Run with `cargo bench -p shard-cache --bench receive -- [--bundles N]
//! [--threads T] [--dir DIR]` (e.g. `--dir /dev/shm`, as `bundle_push
//! --client-dir` does).
#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark binary: its figures go to stdout, and a failed setup step should stop it"
)]

use std::path::PathBuf;
use std::time::Instant;

use rand::{RngCore, SeedableRng};
use shard_cache::{InstallRequest, RuntimeCache};
use shard_protocol::limits::CHUNK_SIZE;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// User + system CPU seconds of this process so far.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ")".
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let bundles: usize = arg("--bundles").and_then(|v| v.parse().ok()).unwrap_or(64);
    let threads: usize = arg("--threads").and_then(|v| v.parse().ok()).unwrap_or(2);
    let base = arg("--dir")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(&base).expect("temp dir");

    let plugin = tmp.path().join("src/big");
    let mut noise = vec![0u8; 4900 * 1024];
    rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut noise);
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\big\\interior.streamingsector", noise)
        .build();
    std::fs::create_dir_all(plugin.join("assets")).expect("mkdir");
    std::fs::write(plugin.join("assets/big.archive"), archive).expect("write");
    let packed = shard_cache::pack_plugin_dir(&plugin).expect("pack");
    let (bytes, sha256, unpacked) = (packed.bytes, packed.sha256, packed.unpacked_len);

    let cpu0 = cpu_secs();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (bytes, root) = (&bytes, tmp.path());
            s.spawn(move || {
                for i in (t..bundles).step_by(threads) {
                    let cache = RuntimeCache::open(root.join(format!("client{i}"))).expect("cache");
                    let mut partial = cache.open_partial(&sha256).expect("open partial");
                    for (n, chunk) in bytes.chunks(CHUNK_SIZE).enumerate() {
                        partial
                            .write_at((n * CHUNK_SIZE) as u64, chunk)
                            .expect("write chunk");
                    }
                    let verified = partial.finish(&cache).expect("verify");
                    let req = InstallRequest {
                        plugin: "big",
                        version: "1",
                        server: "127.0.0.1:7777",
                        sha256,
                    };
                    let staged = cache
                        .stage_verified(&req, verified, unpacked)
                        .expect("stage");
                    cache.install_staged(staged).expect("install");
                }
            });
        }
    });
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let total = (bytes.len() * bundles) as f64;
    println!(
        "receive+install: {bundles} x {:.2} MB bundles on {threads} threads in {wall:.3} s: {:.1} MB/s aggregate, {:.2} ms CPU per bundle ({cpu:.2} s CPU)",
        bytes.len() as f64 / 1e6,
        total / 1e6 / wall,
        cpu * 1e3 / bundles as f64
    );
}
