//! A real nginx on loopback for mirror tests and benchmarks: its own prefix,
//! configuration, logs and port in a temporary folder, stopped on drop.
//!
//! Nothing here is a stand-in: the tests and `bundle_push --mirror` talk to
//! Debian's nginx binary (installed by `.ci/run`). Plain HTTP/1.1 by default;
//! [`NginxOptions::tls`] serves HTTPS with HTTP/2 and a certificate made for
//! this run, whose PEM the client trusts explicitly.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

/// How long [`Nginx::start`] waits for the port to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What to serve and how.
#[derive(Debug, Clone, Default)]
pub struct NginxOptions {
    /// HTTPS with HTTP/2 and a fresh self-signed certificate for `127.0.0.1`
    /// and `localhost`, instead of plain HTTP/1.1.
    pub tls: bool,
    /// Extra directives inside `server { }` (a `location` that redirects,
    /// `limit_rate`, ...), written verbatim after the defaults.
    pub extra: String,
    /// With `tls`, a certificate that expired long ago (valid in 2000 only),
    /// as a mirror whose operator forgot to renew it serves.
    pub expired_cert: bool,
    /// Worker processes (`0` means nginx's `auto`).
    pub workers: usize,
}

/// A running nginx serving a folder; killed (and its files removed) on drop.
pub struct Nginx {
    child: Child,
    /// Its address (always 127.0.0.1).
    pub addr: SocketAddr,
    /// The folder it serves at `/`; files written here are live at once.
    pub root: PathBuf,
    /// The access log, one line per request: `METHOD URI STATUS BYTES "RANGE" PROTOCOL`.
    pub access_log: PathBuf,
    /// The certificate (PEM) when serving HTTPS, for the client to trust.
    pub cert_pem: Option<String>,
    _dir: TempDir,
}

impl NginxOptions {
    /// Plain HTTP with `extra` directives inside `server { }` (a rate limit,
    /// a header, a `location`): how most mirror tests bend nginx.
    pub fn with_extra(extra: impl Into<String>) -> Self {
        Self {
            extra: extra.into(),
            ..Self::default()
        }
    }
}

impl Nginx {
    /// The master process's id, so a benchmark can add up its workers' CPU.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether an nginx binary is on `PATH` or in `/usr/sbin`.
    pub fn installed() -> bool {
        Self::binary().is_some()
    }

    fn binary() -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|d| d.join("nginx"))
            .find(|p| p.is_file())
    }

    /// Starts nginx serving `root` on a free loopback port and waits until it
    /// accepts connections.
    pub fn start(root: &Path, opts: &NginxOptions) -> anyhow::Result<Self> {
        let bin = Self::binary().context(
            "nginx is not installed (Debian: `apt-get install nginx`; `.ci/run` installs it)",
        )?;
        let dir = tempfile::tempdir().context("nginx temp folder")?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let access_log = dir.path().join("access.log");
        let mut listen = format!("listen 127.0.0.1:{port}");
        let mut tls = String::new();
        let mut cert_pem = None;
        if opts.tls {
            let mut params = rcgen::CertificateParams::new(vec![
                "127.0.0.1".to_string(),
                "localhost".to_string(),
            ])
            .context("test certificate")?;
            if opts.expired_cert {
                params.not_before = rcgen::date_time_ymd(2000, 1, 1);
                params.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
            let key = rcgen::KeyPair::generate().context("test certificate key")?;
            let cert = params.self_signed(&key).context("test certificate")?;
            let pem = cert.pem();
            std::fs::write(dir.path().join("cert.pem"), &pem)?;
            std::fs::write(dir.path().join("key.pem"), key.serialize_pem())?;
            // nginx 1.22 (Debian 12) spells HTTP/2 as a `listen` flag.
            listen.push_str(" ssl http2");
            tls = format!(
                "ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    ssl_protocols TLSv1.3;",
                d = dir.path().display()
            );
            cert_pem = Some(pem);
        }
        // A root master drops its workers to `nobody`, who cannot read a
        // private temporary folder; keep them as the current (root) user.
        let user = match std::fs::metadata("/proc/self") {
            Ok(m) if m.uid() == 0 => "user root;",
            _ => "",
        };
        let workers = if opts.workers == 0 {
            "auto".to_string()
        } else {
            opts.workers.to_string()
        };
        let d = dir.path().display();
        let conf = format!(
            r#"{user}
worker_processes {workers};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format shard '$request_method $uri $status $body_bytes_sent "$http_range" $server_protocol';
  access_log {d}/access.log shard;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types {{ application/octet-stream bundle; }}
  default_type application/octet-stream;
  server {{
    {listen};
    {tls}
    root {root};
    {extra}
  }}
}}
"#,
            root = root.display(),
            extra = opts.extra,
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(&bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut nginx = Self {
            child,
            addr,
            root: root.to_path_buf(),
            access_log,
            cert_pem,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                bail!(
                    "nginx exited ({status}) before listening: {}",
                    nginx.error_log()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not listen on {addr} within {START_TIMEOUT:?}: {}",
                    nginx.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }

    /// The base URL to put in `asset_mirrors` (ends with `/`).
    pub fn url(&self) -> String {
        let scheme = if self.cert_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/", self.addr)
    }

    /// The access log's lines so far.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// nginx's own error log so far (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL to the master leaves its workers; they exit when they see
        // the master gone, but ask politely first (SIGQUIT would wait for
        // slow clients, so SIGTERM: fast shutdown).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

/// A loopback TCP port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// A mirror URL on loopback where nothing listens (a port bound, then
/// closed): a mirror that is down, refusing connections at once.
pub fn down_mirror_url() -> anyhow::Result<String> {
    Ok(format!("http://127.0.0.1:{}/", free_port()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_files_and_logs_requests() {
        if !Nginx::installed() {
            panic!("nginx is not installed; .ci/run installs it");
        }
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("abc.bundle"), b"hello mirror").unwrap();
        let n = Nginx::start(root.path(), &NginxOptions::default()).unwrap();
        let resp = get(n.addr, "/abc.bundle");
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.ends_with("hello mirror"), "{resp}");
        let resp = get(n.addr, "/missing.bundle");
        assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
        // The log is written when the request completes.
        let log = n.requests();
        assert!(
            log.iter().any(|l| l.starts_with("GET /abc.bundle 200 12")),
            "{log:?}"
        );
        let pid = n.child.id();
        drop(n);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || {
                // A zombie is reaped by wait in drop; the folder may linger briefly.
                std::thread::sleep(Duration::from_millis(100));
                !Path::new(&format!("/proc/{pid}")).exists()
            }
        );
    }

    #[test]
    fn serves_https_over_http2() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("abc.bundle"), vec![7u8; 100_000]).unwrap();
        let opts = NginxOptions {
            tls: true,
            ..NginxOptions::default()
        };
        let n = Nginx::start(root.path(), &opts).unwrap();
        assert!(n.url().starts_with("https://127.0.0.1:"));
        assert!(n.cert_pem.as_deref().unwrap().contains("BEGIN CERTIFICATE"));
        let out = Command::new("h2load")
            .args(["-n", "2", "-c", "1"])
            .arg(format!("{}abc.bundle", n.url()))
            .output()
            .expect("h2load is installed (.ci/run installs nghttp2-client)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("2 succeeded"), "{text}");
        assert!(text.contains("h2"), "{text}");
    }
}
