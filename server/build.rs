//! Build script: bakes libpython's folder into the binaries' rpath so the
//! server (which embeds CPython for plugin workers) starts without
//! LD_LIBRARY_PATH, and derives `SHARD_BUILD_ID` from the worker channel's
//! message definitions, so a stale worker binary is refused by name.

use std::hash::Hasher;

/// The files whose content defines what crosses the worker channel.
const CHANNEL_SOURCES: &[&str] = &["src/plugin/channel.rs", "src/plugin/events.rs"];

fn main() {
    let config = pyo3_build_config::get();
    if let Some(dir) = &config.lib_dir {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    // The interpreter's home (prefix), so workers, which start with an empty
    // environment, find this Python's standard library and no other.
    let home = config
        .lib_dir
        .as_deref()
        .and_then(|d| std::path::Path::new(d).parent())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=SHARD_PYTHON_HOME={home}");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    // FNV-1a 64 over the channel definitions: stable across builds of the same source.
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for f in CHANNEL_SOURCES {
        println!("cargo:rerun-if-changed={f}");
        h.write(&std::fs::read(f).unwrap_or_default());
    }
    println!("cargo:rustc-env=SHARD_BUILD_ID={:016x}", h.finish());
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
