//! Build script: bakes libpython's folder into the binaries' rpath so the
//! server (which embeds CPython for plugins) starts without LD_LIBRARY_PATH.

fn main() {
    let config = pyo3_build_config::get();
    if let Some(dir) = &config.lib_dir {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
