//! Plugin logs, owned by the server: `logs/plugins/<name>.log`, written from
//! the worker's messages (workers write no files). Every entry is escaped
//! (no control characters reach a terminal that tails it), each line is cut
//! at [`MAX_LOG_LINE`], entries are rate-capped per plugin, and the file
//! rotates at [`LOG_ROTATE_BYTES`] keeping [`LOG_KEEP_OLD`] old files.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::tuning::{
    LOG_ENTRIES_PER_SEC, LOG_KEEP_OLD, LOG_ROTATE_BYTES, MAX_LOG_ENTRY, MAX_LOG_LINE,
};

/// One plugin's log file with its rate bucket.
#[derive(Debug)]
pub struct PluginLog {
    path: PathBuf,
    size: Option<u64>,
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
}

impl PluginLog {
    /// The log at `path` (created on first write).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            size: None,
            tokens: f64::from(LOG_ENTRIES_PER_SEC),
            refilled: Instant::now(),
            suppressed: 0,
        }
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry unless the plugin is over its rate; lifecycle
    /// entries (`important`) are always written.
    pub fn write(&mut self, kind: &str, text: &str, important: bool) {
        let now = Instant::now();
        let rate = f64::from(LOG_ENTRIES_PER_SEC);
        self.tokens =
            (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(rate);
        self.refilled = now;
        if self.tokens < 1.0 && !important {
            self.suppressed += 1;
            return;
        }
        self.tokens -= 1.0;
        let mut entry = String::new();
        if self.suppressed > 0 {
            entry.push_str(&format!(
                "[{}] suppressed\n{} entries over the rate of {LOG_ENTRIES_PER_SEC}/s were not written\n",
                timestamp(),
                self.suppressed
            ));
            self.suppressed = 0;
        }
        entry.push_str(&format!("[{}] {}\n", timestamp(), escape_line(kind)));
        entry.push_str(&escape_block(text));
        self.append(entry.as_bytes());
    }

    fn append(&mut self, bytes: &[u8]) {
        let size = match self.size {
            Some(s) => s,
            None => std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        };
        let size = if size + bytes.len() as u64 > LOG_ROTATE_BYTES && size > 0 {
            self.rotate();
            0
        } else {
            size
        };
        let res = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(bytes));
        match res {
            Ok(()) => self.size = Some(size + bytes.len() as u64),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot write plugin log");
                self.size = None;
            }
        }
    }

    /// `<name>.log.1` → `.2`, `<name>.log` → `.1`; the oldest goes.
    fn rotate(&mut self) {
        let old = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        for n in (1..LOG_KEEP_OLD).rev() {
            let _ = std::fs::rename(old(n), old(n + 1));
        }
        let _ = std::fs::rename(&self.path, old(1));
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC.
fn timestamp() -> String {
    let now = time::OffsetDateTime::from(SystemTime::now());
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt).unwrap_or_default()
}

/// Escapes control characters (`\x1b` → `\u{1b}`) and cuts at [`MAX_LOG_LINE`] bytes.
pub fn escape_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(MAX_LOG_LINE));
    for c in line.chars() {
        if out.len() >= MAX_LOG_LINE {
            out.push_str(" [line cut]");
            break;
        }
        if c.is_control() || is_bidi_or_format(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Escapes every line of a multi-line entry (cut at [`MAX_LOG_ENTRY`]).
fn escape_block(text: &str) -> String {
    let mut out = String::new();
    for line in text.trim_end().split('\n') {
        if out.len() >= MAX_LOG_ENTRY {
            out.push_str("[entry cut]\n");
            break;
        }
        out.push_str(&escape_line(line.strip_suffix('\r').unwrap_or(line)));
        out.push('\n');
    }
    out
}

fn is_bidi_or_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_lines_cut() {
        let line = escape_line("red \x1b[31m bell \x07 nul \0 \u{202e}evil");
        assert!(!line.chars().any(|c| c.is_control()), "{line}");
        assert!(line.contains("\\u{1b}") && line.contains("\\u{202e}"));
        let long = escape_line(&"x".repeat(MAX_LOG_LINE * 3));
        assert!(long.len() <= MAX_LOG_LINE + 20 && long.ends_with("[line cut]"));
    }

    #[test]
    fn rate_cap_suppresses_and_reports_then_rotation_keeps_two_old_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.log");
        let mut log = PluginLog::new(path.clone());
        for i in 0..(LOG_ENTRIES_PER_SEC * 4) {
            log.write("log", &format!("line {i}"), false);
        }
        let text = std::fs::read_to_string(&path).expect("log");
        let written = text.matches("] log\n").count();
        assert!(
            written <= LOG_ENTRIES_PER_SEC as usize + 2,
            "{written} entries written"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        log.write("log", "after", false);
        let text = std::fs::read_to_string(&path).expect("log");
        assert!(text.contains("were not written"), "suppression reported");
        // Lifecycle entries always pass; enough of them rotate the file twice over.
        let big = "y".repeat(MAX_LOG_LINE - 100);
        for _ in 0..(3 * usize::try_from(LOG_ROTATE_BYTES).unwrap() / big.len() + 10) {
            log.write("error", &big, true);
        }
        assert!(path.exists());
        assert!(dir.path().join("p.log.1").exists());
        assert!(dir.path().join("p.log.2").exists());
        assert!(!dir.path().join("p.log.3").exists());
        for f in ["p.log", "p.log.1", "p.log.2"] {
            let len = std::fs::metadata(dir.path().join(f)).expect("meta").len();
            assert!(len <= LOG_ROTATE_BYTES, "{f} is {len} bytes");
        }
    }
}
