//! Starting and stopping worker processes: the `shard-server` binary run with
//! [`WORKER_ARG`], an empty environment, `/dev/null` for its standard
//! streams, its end of a fresh socketpair as descriptor [`WORKER_FD`], and a
//! parent-death signal so it never outlives the server.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::channel::{
    Channel, ChannelError, FromWorker, ToWorker, WORKER_ARG, WORKER_FD, WorkerInit,
};

/// Why a worker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The socketpair or the process could not be created.
    #[error("cannot start the worker process {exe}: {source}")]
    Start {
        /// The binary.
        exe: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The worker did not finish starting.
    #[error("the worker did not start: {0}")]
    Handshake(ChannelError),
    /// The worker started but refused to run plugins (e.g. no confinement).
    #[error("{0}")]
    Refused(String),
    /// The worker binary is from another build.
    #[error(
        "the worker binary {exe} is from another build ({theirs}, server {ours}); rebuild it with `cargo build -p shard-server`"
    )]
    Stale {
        /// The binary.
        exe: PathBuf,
        /// Its build id.
        theirs: String,
        /// Ours.
        ours: String,
    },
    /// It answered the handshake with something else.
    #[error("the worker answered the handshake with an unexpected message")]
    Protocol,
}

/// A running worker process and the server's end of its channel.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
    /// Killed already (its pid must not be signalled again: it may be reused).
    killed: bool,
    /// The channel to it.
    pub channel: Channel,
    /// What confinement it reported.
    pub confinement: String,
}

/// A worker process that was started and is finishing its handshake on a
/// helper thread, so the tick never waits for an interpreter to start. The
/// child itself belongs to the thread that launched it: its parent-death
/// signal follows that thread.
#[derive(Debug)]
pub struct StartingWorker {
    child: Option<Child>,
    exe: PathBuf,
    handshake: std::sync::mpsc::Receiver<Result<(Channel, String), SpawnError>>,
}

impl StartingWorker {
    /// The answer so far: None while the handshake runs.
    pub fn poll(&mut self) -> Option<Result<WorkerProcess, SpawnError>> {
        let got = match self.handshake.try_recv() {
            Ok(r) => r,
            Err(std::sync::mpsc::TryRecvError::Empty) => return None,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Err(SpawnError::Protocol),
        };
        Some(self.finish(got))
    }

    /// Waits for the handshake to end.
    pub fn wait(mut self) -> Result<WorkerProcess, SpawnError> {
        let got = self.handshake.recv().unwrap_or(Err(SpawnError::Protocol));
        self.finish(got)
    }

    fn finish(
        &mut self,
        got: Result<(Channel, String), SpawnError>,
    ) -> Result<WorkerProcess, SpawnError> {
        let Some(mut child) = self.child.take() else {
            return Err(SpawnError::Protocol);
        };
        match got {
            Ok((channel, confinement)) => Ok(WorkerProcess {
                child,
                killed: false,
                channel,
                confinement,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(match e {
                    SpawnError::Stale { theirs, ours, .. } => SpawnError::Stale {
                        exe: self.exe.clone(),
                        theirs,
                        ours,
                    },
                    other => other,
                })
            }
        }
    }
}

impl Drop for StartingWorker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl WorkerProcess {
    /// Starts `exe` as a worker and begins the handshake (send `init`, wait
    /// until `deadline` for it to be ready) on a helper thread.
    pub fn launch(
        exe: &Path,
        init: &WorkerInit,
        deadline: Instant,
    ) -> Result<StartingWorker, SpawnError> {
        let start = |source| SpawnError::Start {
            exe: exe.to_path_buf(),
            source,
        };
        let (ours, theirs) = UnixStream::pair().map_err(start)?;
        let fd = theirs.as_raw_fd();
        let mut cmd = Command::new(exe);
        cmd.arg(WORKER_ARG)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2, fcntl, prctl, getppid,
        // kill) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if fd == WORKER_FD {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, WORKER_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The server may have died between fork and prctl.
                if libc::getppid() == 1 {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(start)?;
        drop(theirs);
        let (tx, rx) = std::sync::mpsc::channel();
        let init = init.clone();
        let mut channel = Channel::new(ours);
        let spawned = std::thread::Builder::new()
            .name("plugin-handshake".into())
            .spawn(move || {
                let r = handshake(&mut channel, &init, deadline).map(|c| (channel, c));
                let _ = tx.send(r);
            });
        let mut starting = StartingWorker {
            child: Some(child),
            exe: exe.to_path_buf(),
            handshake: rx,
        };
        if let Err(e) = spawned {
            starting.finish(Err(SpawnError::Start {
                exe: exe.to_path_buf(),
                source: e,
            }))?;
        }
        Ok(starting)
    }

    /// Starts a worker and waits for its handshake.
    pub fn spawn(exe: &Path, init: &WorkerInit, deadline: Instant) -> Result<Self, SpawnError> {
        Self::launch(exe, init, deadline)?.wait()
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the worker (SIGKILL) without waiting for it: returns how it
    /// ended if it already has, and otherwise leaves the reaping to a
    /// helper thread, so a kill never holds up the tick.
    pub fn kill(&mut self) -> String {
        self.stop(std::time::Duration::ZERO)
    }

    /// Like [`kill`](Self::kill), but first gives a worker that closed its
    /// channel up to `grace` to finish exiting, so its real exit status (a
    /// crash signal, say) is what gets reported.
    pub fn stop(&mut self, grace: std::time::Duration) -> String {
        if self.killed {
            return "already stopped".into();
        }
        self.killed = true;
        let until = std::time::Instant::now() + grace;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return describe(status);
            }
            if std::time::Instant::now() >= until {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let _ = self.child.kill();
        let pid = self.child.id();
        // The child is SIGKILLed and exits shortly; a thread reaps it so no
        // zombie is left (std's `Child` is not waited for again after this).
        let _ = std::thread::Builder::new()
            .name("plugin-reaper".into())
            .spawn(move || {
                let mut status = 0;
                if let Ok(pid) = libc::pid_t::try_from(pid) {
                    // SAFETY: waitpid on our own child's pid with a valid pointer.
                    unsafe { libc::waitpid(pid, &mut status, 0) };
                }
            });
        "killed by the server (SIGKILL)".into()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `init` and waits for `Ready`; returns the confinement it reports.
fn handshake(
    channel: &mut Channel,
    init: &WorkerInit,
    deadline: Instant,
) -> Result<String, SpawnError> {
    channel
        .send(&ToWorker::Init(init.clone()), Some(deadline))
        .map_err(SpawnError::Handshake)?;
    match channel
        .recv(Some(deadline))
        .map_err(SpawnError::Handshake)?
    {
        FromWorker::Ready {
            build_id,
            confinement,
        } => {
            if build_id != init.build_id {
                return Err(SpawnError::Stale {
                    exe: PathBuf::new(),
                    theirs: build_id,
                    ours: init.build_id.clone(),
                });
            }
            Ok(confinement)
        }
        FromWorker::SetupFailed { reason } => Err(SpawnError::Refused(reason)),
        _ => Err(SpawnError::Protocol),
    }
}

/// "exited with status 1", "killed by signal 9 (SIGKILL)".
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGKILL => " (SIGKILL: killed by the server or the kernel's OOM killer)",
            libc::SIGSEGV => " (SIGSEGV: crashed, e.g. a stack overflow)",
            libc::SIGABRT => " (SIGABRT: aborted, e.g. out of memory)",
            libc::SIGSYS => " (SIGSYS: a forbidden system call)",
            libc::SIGXFSZ => " (SIGXFSZ: tried to write a file)",
            _ => "",
        };
        format!("killed by signal {sig}{name}")
    } else {
        format!("exited with status {}", status.code().unwrap_or(-1))
    }
}

/// Finds the `shard-server` binary that runs workers: `configured` if set,
/// else this executable when it is `shard-server`, else a `shard-server`
/// beside it or one folder up (how cargo lays out test binaries).
pub fn worker_exe(configured: Option<&Path>) -> Result<PathBuf, std::io::Error> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    let me = std::env::current_exe()?;
    if me.file_stem().is_some_and(|s| s == "shard-server") {
        return Ok(me);
    }
    let dir = me.parent().map(Path::to_path_buf).unwrap_or_default();
    for cand in [dir.join("shard-server"), dir.join("../shard-server")] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!(
            "no shard-server binary next to {} to run plugin workers; build it with `cargo build -p shard-server`",
            me.display()
        ),
    ))
}
