//! The tail of a plugin's log file (`logs/plugins/<name>.log`), read with a
//! bound so a huge log never costs more than [`ADMIN_LOG_TAIL_BYTES`].

use crate::tuning::{ADMIN_LOG_TAIL_BYTES, ADMIN_LOG_TAIL_LINES};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The last lines of `dir/<plugin>.log`, or an empty string when there is no
/// log yet. `plugin` must be a plugin name the host reported (no paths).
pub fn tail(dir: &Path, plugin: &str) -> String {
    if plugin.is_empty()
        || !plugin
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return String::new();
    }
    let path = dir.join(format!("{plugin}.log"));
    let Ok(mut f) = std::fs::File::open(&path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(ADMIN_LOG_TAIL_BYTES);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    if f.take(ADMIN_LOG_TAIL_BYTES).read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line was cut in the middle.
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(ADMIN_LOG_TAIL_LINES);
    lines[from..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_and_refuses_paths() {
        let dir = tempfile::tempdir().unwrap();
        let body: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.path().join("p.log"), body).unwrap();
        let t = tail(dir.path(), "p");
        assert_eq!(t.lines().count(), ADMIN_LOG_TAIL_LINES);
        assert!(t.ends_with("line 9999"), "{t}");
        assert_eq!(tail(dir.path(), "../p"), "");
        assert_eq!(tail(dir.path(), "missing"), "");
    }
}
