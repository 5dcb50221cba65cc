//! Warnings a client can trigger, folded so it cannot flood the log: the
//! first warning of a key (a peer, an address) and cause in each window is
//! logged; the rest are counted and reported as one line with the count.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::tuning::MAX_WARN_KEYS;

#[derive(Debug)]
struct Window {
    since: Instant,
    suppressed: u64,
}

/// Folds repeated warnings per key and cause into one line per window.
#[derive(Debug)]
pub struct WarnLimiter<K> {
    window: Duration,
    entries: Mutex<HashMap<(Option<K>, &'static str), Window>>,
}

impl<K> Default for WarnLimiter<K> {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(shard_protocol::limits::WARN_WINDOW_SECS),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone + std::fmt::Debug> WarnLimiter<K> {
    /// A limiter that lets one warning per key and cause through per `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log a warning about `key` for `cause` now. `Some(n)` means
    /// log it, `n` being how many of the same were folded since the last
    /// logged one; `None` means it was counted and must not be logged.
    pub fn allow(&self, key: K, cause: &'static str) -> Option<u64> {
        let now = Instant::now();
        let Ok(mut map) = self.entries.lock() else {
            return Some(0);
        };
        let mut k = (Some(key), cause);
        if !map.contains_key(&k) && map.len() >= MAX_WARN_KEYS {
            k = (None, cause);
        }
        match map.get_mut(&k) {
            None => {
                map.insert(
                    k,
                    Window {
                        since: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
            Some(w) if now.duration_since(w.since) < self.window => {
                w.suppressed += 1;
                None
            }
            Some(w) => {
                let folded = w.suppressed;
                w.since = now;
                w.suppressed = 0;
                Some(folded)
            }
        }
    }

    /// Logs one line for each window that ended with folded warnings, and
    /// forgets ended windows. Call it regularly (the simulation does, per tick).
    pub fn flush(&self) {
        let now = Instant::now();
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        if map.is_empty() {
            return;
        }
        map.retain(|(key, cause), w| {
            if now.duration_since(w.since) < self.window {
                return true;
            }
            if w.suppressed > 0 {
                warn!(key = ?key, cause, repeated = w.suppressed, "the same warning repeated");
            }
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_inside_a_window_are_counted_not_logged() {
        let l = WarnLimiter::new(Duration::from_millis(50));
        assert_eq!(l.allow(1u32, "x"), Some(0));
        for _ in 0..100 {
            assert_eq!(l.allow(1, "x"), None);
        }
        // Another key or cause has its own window.
        assert_eq!(l.allow(2, "x"), Some(0));
        assert_eq!(l.allow(1, "y"), Some(0));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(l.allow(1, "x"), Some(100));
        l.flush();
    }

    #[test]
    fn tracked_pairs_are_bounded() {
        let l = WarnLimiter::new(Duration::from_secs(60));
        for k in 0..(u32::try_from(MAX_WARN_KEYS).unwrap() + 100) {
            l.allow(k, "x");
        }
        assert!(l.entries.lock().unwrap().len() <= MAX_WARN_KEYS + 1);
    }
}
