//! A small tmpfs mounted for one test: a disk that fills up, so the tests
//! can see what a player's full disk does to an install. Needs root (CI
//! runs as root); see [`crate::unless_refused`] for where it cannot be made.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A tmpfs of a chosen size mounted on a folder; unmounted when dropped.
#[derive(Debug)]
pub struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `kib` KiB on `path` (created if missing).
    pub fn mount(path: &Path, kib: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={kib}k,mode=0755"))
            .arg("shard-test")
            .arg(path))?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Gives the disk `kib` KiB, keeping what it holds (a player freeing space).
    pub fn resize(&self, kib: u64) -> anyhow::Result<()> {
        run(Command::new("mount")
            .arg("-o")
            .arg(format!("remount,size={kib}k"))
            .arg(&self.path))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Runs `cmd`, failing with its output when it does not succeed.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
