//! Admin console authentication: the token file, sessions, CSRF tokens and
//! the failed-login limiter. Secrets are compared in constant time.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::tuning::{
    ADMIN_LOGIN_WINDOW, ADMIN_MAX_FAILED_LOGINS, ADMIN_MAX_SESSIONS, ADMIN_MAX_TOKEN_FILE,
    ADMIN_MAX_TRACKED_ADDRS, ADMIN_SESSION_IDLE,
};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// File in the data dir holding the console's login token.
pub const TOKEN_FILE: &str = "admin-token";
/// File in the data dir holding the bearer token `/metrics` needs off loopback.
pub const METRICS_TOKEN_FILE: &str = "admin-metrics-token";
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "shard_admin";

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading, creating or replacing the file failed.
    #[error("admin token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file exists but holds no usable token.
    #[error(
        "admin token file {path} is empty or too long: delete it or run `shard-server admin-token --rotate`"
    )]
    Bad {
        /// The file.
        path: PathBuf,
    },
}

/// A fresh random token: 32 bytes from the OS, as hex.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Constant-time comparison of two secrets (only the length may leak).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    secrets_equal_bytes(a.as_bytes(), b.as_bytes())
}

/// Constant-time comparison of two byte strings (only the length may leak).
pub fn secrets_equal_bytes(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Reads the token in `path`, creating it (mode 0600) when missing; the
/// bool says whether it was just created.
pub fn load_or_create_token(path: &Path) -> Result<(String, bool), TokenError> {
    match read_token(path) {
        Ok(t) => Ok((t, false)),
        Err(TokenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let token = new_secret();
            write_token(path, &token)?;
            Ok((token, true))
        }
        Err(e) => Err(e),
    }
}

/// Replaces the token in `path` with a new one (atomically) and returns it.
pub fn rotate_token(path: &Path) -> Result<String, TokenError> {
    let token = new_secret();
    write_token(path, &token)?;
    Ok(token)
}

/// Reads a token file (trimmed).
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    let io = |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > ADMIN_MAX_TOKEN_FILE {
        return Err(TokenError::Bad {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Bad {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_string())
}

/// Writes `token` to a temporary file created with mode 0600 beside `path`,
/// then renames it over `path`, so the secret is never readable by others.
fn write_token(path: &Path, token: &str) -> Result<(), TokenError> {
    let io = |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(token.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The line an operator opens to log in.
pub fn login_url(addr: SocketAddr, tls: bool, token: &str) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}/login?token={token}")
}

/// SHA-256 of a token: what a session remembers of the token it logged in with.
pub fn token_digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// One logged-in browser (or script).
#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    /// Digest of the token it logged in with: a rotated token ends the session.
    token: [u8; 32],
    last_seen: Instant,
    flash: Option<String>,
}

/// What a request learns from its valid session.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The session id (the cookie's value).
    pub id: String,
    /// The CSRF token forms must send back.
    pub csrf: String,
    /// Digest of the token the session logged in with.
    pub token: [u8; 32],
}

/// Logged-in sessions, bounded in number and idle time.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for a login with the token of digest `token`; returns
    /// its id. The least recently used goes when there are too many.
    pub fn open(&self, token: [u8; 32]) -> String {
        let id = new_secret();
        let Ok(mut map) = self.map.lock() else {
            return id;
        };
        map.retain(|_, s| s.last_seen.elapsed() < ADMIN_SESSION_IDLE);
        while map.len() >= ADMIN_MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(
            id.clone(),
            Session {
                csrf: new_secret(),
                token,
                last_seen: Instant::now(),
                flash: None,
            },
        );
        id
    }

    /// The session with this id, if it is valid (and marks it used).
    pub fn get(&self, id: &str) -> Option<SessionView> {
        let mut map = self.map.lock().ok()?;
        let s = map.get_mut(id)?;
        if s.last_seen.elapsed() >= ADMIN_SESSION_IDLE {
            map.remove(id);
            return None;
        }
        s.last_seen = Instant::now();
        Some(SessionView {
            id: id.to_string(),
            csrf: s.csrf.clone(),
            token: s.token,
        })
    }

    /// Whether the session is still open (without marking it used).
    pub fn is_open(&self, id: &str) -> bool {
        self.map.lock().is_ok_and(|m| {
            m.get(id)
                .is_some_and(|s| s.last_seen.elapsed() < ADMIN_SESSION_IDLE)
        })
    }

    /// Takes the message left for the session's next page.
    pub fn take_flash(&self, id: &str) -> Option<String> {
        self.map.lock().ok()?.get_mut(id)?.flash.take()
    }

    /// Leaves a message for the session's next page.
    pub fn set_flash(&self, id: &str, text: String) {
        if let Ok(mut map) = self.map.lock()
            && let Some(s) = map.get_mut(id)
        {
            s.flash = Some(text);
        }
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(id);
        }
    }
}

/// Failed logins per client address: more than [`ADMIN_MAX_FAILED_LOGINS`] in
/// [`ADMIN_LOGIN_WINDOW`] and that address is refused until the window passes.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginLimiter {
    /// Whether `ip` may try a login now.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        let Ok(map) = self.failures.lock() else {
            return false;
        };
        match map.get(&ip) {
            Some((n, since)) => {
                *n < ADMIN_MAX_FAILED_LOGINS || since.elapsed() >= ADMIN_LOGIN_WINDOW
            }
            None => true,
        }
    }

    /// Records a failed login from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= ADMIN_MAX_TRACKED_ADDRS {
            map.retain(|_, (_, since)| since.elapsed() < ADMIN_LOGIN_WINDOW);
        }
        if map.len() >= ADMIN_MAX_TRACKED_ADDRS {
            // Still full of fresh failures: a distributed guess; keep the newest.
            map.clear();
        }
        let e = map.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= ADMIN_LOGIN_WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }

    /// Forgets the failures of `ip` after a successful login.
    pub fn succeeded(&self, ip: IpAddr) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_file_is_private_and_rotation_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join(TOKEN_FILE);
        let (t1, created) = load_or_create_token(&path).unwrap();
        assert!(created);
        assert_eq!(t1.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let (again, created) = load_or_create_token(&path).unwrap();
        assert!(!created);
        assert_eq!(again, t1);
        let t2 = rotate_token(&path).unwrap();
        assert_ne!(t1, t2);
        assert_eq!(read_token(&path).unwrap(), t2);
    }

    #[test]
    fn failed_logins_are_limited_per_address() {
        let l = LoginLimiter::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..ADMIN_MAX_FAILED_LOGINS {
            assert!(l.allowed(ip));
            l.failed(ip);
        }
        assert!(!l.allowed(ip));
        assert!(l.allowed("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
