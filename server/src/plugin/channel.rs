//! The typed, data-only channel between the server and one plugin worker: an
//! inherited Unix socketpair carrying length-prefixed (u32 LE) postcard
//! messages. Only plain data crosses it — numbers, strings, lists and maps —
//! never a Python object. Every message either way is defined here.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use shard_protocol::EntityKind;

use super::events::{EventKind, GameEvent};
use crate::tuning::MAX_CHANNEL_FRAME;

/// First argument that starts `shard-server` as a plugin worker.
pub const WORKER_ARG: &str = "__plugin-worker";

/// File descriptor number the worker finds its end of the channel on.
pub const WORKER_FD: i32 = 3;

/// Identifies the build, so a worker binary from another build is refused
/// with a clear error instead of misreading messages.
pub const BUILD_ID: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("SHARD_BUILD_ID"));

/// What the worker must set up before it runs any plugin code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerInit {
    /// The server's [`BUILD_ID`].
    pub build_id: String,
    /// Plugin name (or `console` for the operator's console).
    pub name: String,
    /// Budget of one callback, milliseconds.
    pub cpu_budget_ms: u64,
    /// Address-space cap, MiB.
    pub memory_mb: u64,
    /// Paths the worker may read (the Python installation, the plugin's own files).
    pub read_only: Vec<PathBuf>,
    /// Refuse to start without kernel confinement (false only when the
    /// operator set `allow_unconfined_plugins`).
    pub require_confinement: bool,
    /// The curated builtins and import allowlist (off only for the console
    /// and for test builds that check confinement without them).
    pub python_layers: bool,
}

/// Server → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// The first message: set up and say [`FromWorker::Ready`].
    Init(WorkerInit),
    /// Run a plugin version's source as generation `generation`.
    Load {
        /// Load generation assigned by the server.
        generation: u64,
        /// The file name shown in tracebacks.
        file: String,
        /// The source text (the worker reads no files).
        source: String,
    },
    /// The loaded generation goes live: drop every other generation's registrations.
    Commit {
        /// The generation that stays.
        generation: u64,
    },
    /// The loaded generation was refused: drop its registrations.
    Rollback {
        /// The generation that goes.
        generation: u64,
    },
    /// Call the live listeners of each event, in order.
    Deliver {
        /// This tick's events for this plugin.
        events: Vec<GameEvent>,
    },
    /// Run chat command `/name args` for `peer`.
    Command {
        /// Command name without `/`.
        name: String,
        /// Who typed it.
        peer: u32,
        /// The rest of the line.
        args: String,
    },
    /// Run the live handler of upstream RPC `name` for `peer` (the server
    /// already checked the whitelist, the rate and the payload).
    Rpc {
        /// RPC name (as the handler registered it).
        name: String,
        /// Who sent it.
        peer: u32,
        /// The payload, a JSON object within the RPC limits.
        json: String,
    },
    /// Operator console code (console worker only).
    Console {
        /// The code.
        code: String,
    },
    /// The answer to the worker's last [`FromWorker::Call`].
    Reply(Result<WorldValue, String>),
}

/// Worker → server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// Set up and confined; ready for work.
    Ready {
        /// The worker's [`BUILD_ID`].
        build_id: String,
        /// What confinement is in force, for the operator's log.
        confinement: String,
    },
    /// The worker could not set up (confinement missing, interpreter failed).
    SetupFailed {
        /// Why, for the operator.
        reason: String,
    },
    /// A synchronous world call; the server answers with [`ToWorker::Reply`].
    Call(WorldCall),
    /// A `game.log` line or captured `print` output.
    Log {
        /// The text.
        text: String,
    },
    /// A callback raised; counts as one error of the plugin.
    Error {
        /// Which callback (`OnTick`, `command /x`, `rpc X`).
        what: String,
        /// The exception line.
        short: String,
        /// The formatted traceback.
        traceback: String,
    },
    /// A `Load` ran cleanly; the metadata it read.
    Loaded {
        /// `__plugin__["version"]`.
        version: String,
    },
    /// A `Load` failed.
    LoadFailed {
        /// The exception line (with file name).
        short: String,
        /// The formatted traceback.
        traceback: String,
    },
    /// A `Deliver`, `Commit`, `Rollback`, `Command` or `Rpc` finished.
    Done {
        /// For a command: the exception line if its handler raised.
        failed: Option<String>,
    },
    /// Console output (what it printed, the repr, or the traceback).
    ConsoleOutput {
        /// The text.
        text: String,
    },
}

/// What plugin code asks of the world; each is validated and budgeted by the
/// server, never trusted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WorldCall {
    /// `game.on(kind)` registered a listener of the current generation.
    Listen {
        /// The event.
        kind: EventKind,
    },
    /// `game.register_command(...)`.
    RegisterCommand {
        /// Command name without `/`.
        name: String,
        /// Help line.
        help: String,
        /// Admins only.
        admin: bool,
    },
    /// `game.on_rpc(name)` registered an upstream RPC handler.
    OnRpc {
        /// RPC name, as the plugin's client scripts send it.
        name: String,
    },
    /// `spawn_npc` / `spawn_vehicle`.
    Spawn {
        /// NPC or vehicle.
        kind: EntityKind,
        /// Template or TweakDB record.
        template: String,
        /// Position.
        pos: [f64; 3],
        /// Yaw.
        rot: f64,
        /// Phase.
        phase: u32,
    },
    /// `despawn(id)`.
    Despawn {
        /// Entity id.
        id: u32,
    },
    /// `teleport_peer(...)`.
    Teleport {
        /// Peer id.
        peer: u32,
        /// Position.
        pos: [f64; 3],
        /// Yaw.
        rot: f64,
        /// New phase, if any.
        phase: Option<u32>,
    },
    /// `set_weather(id)`.
    SetWeather {
        /// Preset.
        id: u32,
    },
    /// `show_popup(...)`.
    Popup {
        /// Peer id.
        peer: u32,
        /// Text.
        text: String,
        /// Seconds.
        dur: f64,
    },
    /// `get_peer_positions()`.
    PeerPositions,
    /// `get_entity_position(id)`.
    EntityPosition {
        /// Entity id.
        id: u32,
    },
    /// `send_chat(peer, text)`.
    SendChat {
        /// Peer id.
        peer: u32,
        /// Text.
        text: String,
    },
    /// `broadcast(text)`.
    Broadcast {
        /// Text.
        text: String,
    },
    /// `send_rpc(peer, fn, payload)`, the payload already JSON.
    SendRpc {
        /// Peer id.
        peer: u32,
        /// RPC name.
        name: String,
        /// JSON object text.
        json: String,
    },
}

/// The server's answer to a [`WorldCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorldValue {
    /// Nothing to return.
    Unit,
    /// A new entity id.
    Id(u32),
    /// Every peer and its position.
    Positions(Vec<(u32, [f32; 3])>),
    /// One entity's position, if it exists.
    Position(Option<[f32; 3]>),
}

/// Why a channel operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The deadline passed before the message was complete.
    #[error("no answer before the deadline")]
    Timeout,
    /// The other side closed the channel (it exited or was killed).
    #[error("the channel is closed")]
    Closed,
    /// A frame over [`MAX_CHANNEL_FRAME`].
    #[error("message of {0} bytes exceeds the channel limit of {MAX_CHANNEL_FRAME}")]
    TooLarge(usize),
    /// Bytes that do not decode as a message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Any other socket error.
    #[error("channel I/O: {0}")]
    Io(std::io::Error),
}

/// One end of a worker channel. Reads are buffered (a whole frame usually
/// arrives in one `read`), and socket timeouts are only changed when the
/// deadline asks for it, so a round trip costs few system calls.
#[derive(Debug)]
pub struct Channel {
    stream: UnixStream,
    inbox: Vec<u8>,
    read_timeout: Option<Option<std::time::Duration>>,
    write_timeout: Option<Option<std::time::Duration>>,
}

impl Channel {
    /// Wraps a connected stream.
    pub fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            inbox: Vec::new(),
            read_timeout: None,
            write_timeout: None,
        }
    }

    /// Sends one message; `deadline` bounds how long a peer that does not
    /// read can block us.
    pub fn send<T: Serialize>(
        &mut self,
        msg: &T,
        deadline: Option<Instant>,
    ) -> Result<(), ChannelError> {
        let mut frame = vec![0u8; 4];
        let mut frame = postcard::to_extend(msg, std::mem::take(&mut frame))
            .map_err(|e| ChannelError::Malformed(e.to_string()))?;
        let body = frame.len() - 4;
        if body > MAX_CHANNEL_FRAME {
            return Err(ChannelError::TooLarge(body));
        }
        let len = u32::try_from(body).map_err(|_| ChannelError::TooLarge(body))?;
        frame[..4].copy_from_slice(&len.to_le_bytes());
        let mut at = 0;
        while at < frame.len() {
            let t = slice(deadline)?;
            if self.write_timeout != Some(t) {
                self.stream.set_write_timeout(t).map_err(ChannelError::Io)?;
                self.write_timeout = Some(t);
            }
            match self.stream.write(&frame[at..]) {
                Ok(0) => return Err(ChannelError::Closed),
                Ok(n) => at += n,
                Err(e) => match io_error(e) {
                    // A slice ended before the deadline: wait another one.
                    ChannelError::Timeout => {}
                    other => return Err(other),
                },
            }
        }
        Ok(())
    }

    /// Receives one message, waiting at most until `deadline` (forever if None).
    pub fn recv<T: DeserializeOwned>(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<T, ChannelError> {
        loop {
            if self.inbox.len() >= 4 {
                let mut head = [0u8; 4];
                head.copy_from_slice(&self.inbox[..4]);
                let len = u32::from_le_bytes(head) as usize;
                if len > MAX_CHANNEL_FRAME {
                    return Err(ChannelError::TooLarge(len));
                }
                if self.inbox.len() >= 4 + len {
                    let msg = postcard::from_bytes(&self.inbox[4..4 + len])
                        .map_err(|e| ChannelError::Malformed(e.to_string()));
                    self.inbox.drain(..4 + len);
                    return msg;
                }
            }
            self.fill(deadline)?;
        }
    }

    /// Reads what is available (at least one byte) into the inbox.
    fn fill(&mut self, deadline: Option<Instant>) -> Result<(), ChannelError> {
        let t = slice(deadline)?;
        if self.read_timeout != Some(t) {
            self.stream.set_read_timeout(t).map_err(ChannelError::Io)?;
            self.read_timeout = Some(t);
        }
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(ChannelError::Closed),
            Ok(n) => {
                self.inbox.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => match io_error(e) {
                // A slice ended before the deadline: the caller waits another one.
                ChannelError::Timeout => Ok(()),
                other => Err(other),
            },
        }
    }
}

/// How long one blocking read or write may wait: a fixed slice (so the
/// socket timeout rarely changes — one system call saved per message),
/// shorter only near the deadline; an expired deadline is a timeout.
fn slice(deadline: Option<Instant>) -> Result<Option<std::time::Duration>, ChannelError> {
    const SLICE: std::time::Duration = std::time::Duration::from_millis(5);
    Ok(remaining(deadline)?.map(|r| {
        if r > SLICE {
            SLICE
        } else {
            // Round up to whole milliseconds so the timeout does not change on every call.
            std::time::Duration::from_millis(
                u64::try_from(r.as_millis()).map_or(u64::MAX, |ms| ms.saturating_add(1)),
            )
            .min(SLICE)
        }
    }))
}

/// Time left until `deadline` as a socket timeout (None = block); an expired
/// deadline is a timeout.
fn remaining(deadline: Option<Instant>) -> Result<Option<std::time::Duration>, ChannelError> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                Err(ChannelError::Timeout)
            } else {
                Ok(Some(left))
            }
        }
    }
}

fn io_error(e: std::io::Error) -> ChannelError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ChannelError::Timeout,
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof => {
            ChannelError::Closed
        }
        _ => ChannelError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn messages_round_trip_and_deadlines_expire() {
        let (a, b) = UnixStream::pair().expect("pair");
        let (mut a, mut b) = (Channel::new(a), Channel::new(b));
        let msg = FromWorker::Call(WorldCall::SendRpc {
            peer: 4,
            name: "Hi".into(),
            json: "{}".into(),
        });
        a.send(&msg, None).expect("send");
        let got: FromWorker = b.recv(None).expect("recv");
        assert!(matches!(
            got,
            FromWorker::Call(WorldCall::SendRpc { peer: 4, .. })
        ));
        let waited = Instant::now();
        let r: Result<FromWorker, _> = b.recv(Some(Instant::now() + Duration::from_millis(50)));
        assert!(matches!(r, Err(ChannelError::Timeout)), "{r:?}");
        assert!(waited.elapsed() >= Duration::from_millis(45));
        drop(a);
        let r: Result<FromWorker, _> = b.recv(None);
        assert!(matches!(r, Err(ChannelError::Closed)), "{r:?}");
    }

    #[test]
    fn oversized_frames_are_refused_before_reading_them() {
        let (mut a, b) = UnixStream::pair().expect("pair");
        let mut b = Channel::new(b);
        a.write_all(&(u32::MAX).to_le_bytes()).expect("write");
        let r: Result<FromWorker, _> = b.recv(None);
        assert!(matches!(r, Err(ChannelError::TooLarge(_))), "{r:?}");
    }
}
