//! One connection to a shard server: TLS identity and server-key pinning,
//! the `Hello` handshake, a reader task that turns server messages into
//! [`ClientEvent`]s, and the calls a player makes (chat, move, interact).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use shard_cache::RuntimeCache;
use shard_protocol::frame::{
    FramePieces, decode_asset_chunk_parts, decode_datagram, encode_datagram, read_frame,
    write_frame,
};
use shard_protocol::identity::{Fingerprint, Identity};
use shard_protocol::limits::MAX_EVENT_QUEUE_BYTES;
use shard_protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg, Vec3};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, instrument};

use crate::address::ServerAddress;
use crate::bundles::{BundleReceiver, BundleWork, Origin, StreamStop, TransferStats};
use crate::dial::{DialError, Dialed, dial};
use crate::dispatch::Dispatcher;
use crate::events::{ClientEvent, arr, kind_name};
use crate::offer::ContentSettings;
use crate::queue::{EventRx, EventTx, SessionLink, event_queue};

use crate::tuning::{BUNDLE_WORK_QUEUE, CLOSE_TIMEOUT, MAX_BUNDLE_STREAMS, SEND_QUEUE};

/// Everything needed to join a server.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Server address as the player gave it (resolved when connecting; the
    /// server's key is pinned under it).
    pub addr: ServerAddress,
    /// Display name.
    pub name: String,
    /// This player's key file (created on first use).
    pub identity: PathBuf,
    /// The runtime cache folder (bundles, installed plugins, `known_servers`).
    pub cache_dir: PathBuf,
    /// Expected server key; `None` pins on first contact via `known_servers`.
    pub server_key: Option<Fingerprint>,
    /// Content offers, per-server quota and cache cap.
    pub content: ContentSettings,
}

/// Why an answer to a content offer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    /// No offer is waiting for an answer.
    #[error("no content offer is waiting for an answer")]
    NoOffer,
    /// The session is over.
    #[error("the session is over")]
    Closed,
}

/// Why joining failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The player's key could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] shard_protocol::identity::IdentityError),
    /// The runtime cache could not be opened or written.
    #[error("runtime cache: {0}")]
    Cache(#[from] shard_cache::CacheError),
    /// The server presented another key than the one pinned.
    #[error(
        "the server at {addr} presented key {got}, but {expected} is pinned for it ({source_of_pin}). \
         If the operator really changed the server key, remove the `{addr}` line from {known_servers} \
         or pass --server-key {got}; otherwise do not connect: someone may be impersonating the server."
    )]
    ServerKeyChanged {
        /// Address, as pinned.
        addr: ServerAddress,
        /// Pinned key.
        expected: Fingerprint,
        /// Key seen.
        got: Fingerprint,
        /// "known_servers" or "--server-key".
        source_of_pin: &'static str,
        /// Path of the known_servers file.
        known_servers: String,
    },
    /// The connection could not be set up.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// Address, as given.
        addr: ServerAddress,
        /// Why.
        reason: String,
    },
}

/// Why a position update could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendPositionError {
    /// The update breaks a protocol limit (it cannot be encoded as a datagram).
    #[error("position update refused: {0}")]
    Encode(#[from] shard_protocol::ProtocolError),
    /// The connection cannot carry the datagram (closed, or datagrams off).
    #[error("position datagram not sent: {0}")]
    Datagram(#[from] quinn::SendDatagramError),
}

/// A live session.
pub struct Session {
    conn: quinn::Connection,
    endpoint: quinn::Endpoint,
    outgoing: mpsc::Sender<ClientMsg>,
    events: EventRx,
    work: mpsc::Sender<BundleWork>,
    /// Ends when the bundle thread has ended (see [`Session::close`]).
    bundles_done: tokio::sync::oneshot::Receiver<()>,
    link: Arc<SessionLink>,
    server_key: Fingerprint,
    stats: Arc<TransferStats>,
    /// Closes the connection when the session is dropped without
    /// [`Session::close`]: its tasks hold clones of the connection, which
    /// would otherwise keep the player in the game until the idle timeout.
    _closer: CloseOnDrop,
}

/// Closes its connection when dropped (a no-op once it is closed).
struct CloseOnDrop(quinn::Connection);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(quinn::VarInt::from_u32(0), b"bye");
    }
}

impl Session {
    /// Connects, checks the server key against the pin, says `Hello` and
    /// starts the reader tasks. The first event is `Welcome` or `Kick`.
    pub async fn connect(
        opts: ConnectOptions,
        dispatcher: Dispatcher,
    ) -> Result<Self, ClientError> {
        Self::connect_shared(opts, Arc::new(Mutex::new(dispatcher))).await
    }

    /// Like [`Session::connect`], but the caller keeps a handle on the
    /// dispatcher so it can register RPC callbacks after joining (the C ABI).
    pub async fn connect_shared(
        opts: ConnectOptions,
        dispatcher: Arc<Mutex<Dispatcher>>,
    ) -> Result<Self, ClientError> {
        let (identity, created) = Identity::load_or_create(&opts.identity, "shard-player")?;
        if created {
            info!(path = %opts.identity.display(), fingerprint = %identity.fingerprint, "created a new player key");
        }
        let cache = RuntimeCache::open(&opts.cache_dir)?;
        let addr_key = opts.addr.as_str().to_owned();
        let (pin, source_of_pin) = match opts.server_key {
            Some(k) => (Some(k), "--server-key"),
            None => {
                let known = cache.known_server(&addr_key)?;
                (
                    known.and_then(|k| Fingerprint::parse(&k).ok()),
                    "known_servers",
                )
            }
        };
        let connect_err = |reason: String| ClientError::Connect {
            addr: opts.addr.clone(),
            reason,
        };
        let addrs = opts
            .addr
            .resolve()
            .await
            .map_err(|e| connect_err(format!("cannot resolve it: {e}")))?;
        let mut transport = quinn::TransportConfig::default();
        transport
            .keep_alive_interval(Some(std::time::Duration::from_secs(
                shard_protocol::limits::KEEPALIVE_SECS,
            )))
            .max_idle_timeout(
                quinn::IdleTimeout::try_from(std::time::Duration::from_secs(
                    shard_protocol::limits::DEFAULT_IDLE_TIMEOUT_SECS,
                ))
                .ok(),
            )
            // The server opens only bundle streams; any other stream it
            // opened would sit unread in memory, up to a window each.
            .max_concurrent_bidi_streams(quinn::VarInt::from_u32(0))
            .max_concurrent_uni_streams(quinn::VarInt::from_u32(MAX_BUNDLE_STREAMS));
        let Dialed {
            endpoint,
            conn,
            addr: server,
            key: server_key,
        } = dial(&identity, pin, Arc::new(transport), &addrs)
            .await
            .map_err(|e| match e {
                DialError::Identity(e) => ClientError::from(e),
                DialError::KeyChanged { expected, got } => ClientError::ServerKeyChanged {
                    addr: opts.addr.clone(),
                    expected,
                    got,
                    source_of_pin,
                    known_servers: cache.root().join("known_servers").display().to_string(),
                },
                DialError::Unreachable(reason) => connect_err(reason),
            })?;
        if pin.is_none() {
            cache.pin_server(&addr_key, &server_key.to_hex())?;
            info!(server = %opts.addr, ip = %server, key = %server_key, "pinned the server key on first contact");
        }

        let (mut send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let hello = ClientMsg::Hello {
            name: opts.name.clone(),
            protocol_version: PROTOCOL_VERSION,
        };
        write_frame(&mut send, &hello)
            .await
            .map_err(|e| connect_err(e.to_string()))?;

        let link = SessionLink::new(conn.clone(), MAX_EVENT_QUEUE_BYTES);
        let (ev_tx, ev_rx) = event_queue(link.clone());
        let (out_tx, out_rx) = mpsc::channel(SEND_QUEUE);
        let (work_tx, work_rx) = mpsc::channel(BUNDLE_WORK_QUEUE);
        let stats = Arc::new(TransferStats::default());
        let origin = Origin {
            address: addr_key,
            server_key: server_key.to_hex(),
        };
        let mut receiver = BundleReceiver::new(
            cache,
            origin,
            opts.content,
            ev_tx.clone(),
            out_tx.clone(),
            dispatcher.clone(),
            stats.clone(),
        );
        receiver.enable_mirrors(&work_tx, server.ip());
        // Every task of this session logs inside one span, so a session's
        // lines can be told apart (and filtered) by server and key; at error
        // level so its fields reach every line whatever the filter.
        let span = tracing::error_span!("session", server = %opts.addr, key = %server_key);
        let bundle_span = span.clone();
        // Dropped when the thread ends, with its downloads' partial files.
        let (bundles_running, bundles_done) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("shard-bundles".into())
            .spawn(move || {
                bundle_span.in_scope(|| receiver.run(work_rx));
                drop(bundles_running);
            })
            .map_err(|e| connect_err(format!("cannot start the bundle thread: {e}")))?;
        tokio::spawn(write_loop(send, out_rx).instrument(span.clone()));
        let me = Arc::new(AtomicU32::new(0));
        let reader = Reader {
            events: ev_tx.clone(),
            dispatcher,
            work: work_tx.clone(),
            me: me.clone(),
        };
        tokio::spawn(read_loop(conn.clone(), recv, reader).instrument(span.clone()));
        tokio::spawn(bundle_streams(conn.clone(), work_tx.clone()).instrument(span.clone()));
        tokio::spawn(datagram_loop(conn.clone(), ev_tx, me).instrument(span));
        Ok(Self {
            _closer: CloseOnDrop(conn.clone()),
            conn,
            endpoint,
            outgoing: out_tx,
            events: ev_rx,
            work: work_tx,
            bundles_done,
            link,
            server_key,
            stats,
        })
    }

    /// Answers the content offer waiting for the player (a `content_offer`
    /// event with `needs_answer`); `remember` keeps the answer for this
    /// server's content so the same content is not offered again.
    pub fn answer_offer(&self, accept: bool, remember: bool) -> Result<(), OfferError> {
        if self.pending_offer().is_none() {
            return Err(OfferError::NoOffer);
        }
        self.work
            .try_send(BundleWork::Answer { accept, remember })
            .map_err(|_| OfferError::Closed)
    }

    /// Id of the content offer waiting for an answer, if any.
    pub fn pending_offer(&self) -> Option<u64> {
        match self
            .link
            .pending_offer
            .load(std::sync::atomic::Ordering::Acquire)
        {
            0 => None,
            id => Some(id),
        }
    }

    /// Bytes of events waiting to be taken now (bounded by
    /// `limits::MAX_EVENT_QUEUE_BYTES`).
    pub fn queued_event_bytes(&self) -> usize {
        self.link.queued_bytes()
    }

    /// The most bytes of events that ever waited to be taken in this session.
    pub fn max_queued_event_bytes(&self) -> usize {
        self.link.max_queued_bytes()
    }

    /// Bundle bytes received from the server's QUIC stream in this session
    /// (a warm rejoin, or a join served by asset mirrors, receives none).
    pub fn bundle_bytes_received(&self) -> u64 {
        self.stats.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bundle bytes received from asset mirrors in this session.
    pub fn mirror_bytes_received(&self) -> u64 {
        self.stats
            .mirror_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The server's key fingerprint as seen in the handshake.
    pub fn server_key(&self) -> Fingerprint {
        self.server_key
    }

    /// Next event; `None` once the session is over and every event was read.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }

    /// Next event if one is ready, without waiting (the game polls each frame).
    pub fn try_next_event(&mut self) -> Option<ClientEvent> {
        self.events.try_recv()
    }

    /// Sends a chat line or `/command`.
    pub async fn say(&self, text: &str) -> bool {
        self.outgoing
            .send(ClientMsg::Chat {
                text: text.to_string(),
            })
            .await
            .is_ok()
    }

    /// Uses an entity (e.g. `use_door`).
    pub async fn interact(&self, entity_id: u32, action: &str) -> bool {
        self.outgoing
            .send(ClientMsg::Interact {
                entity_id,
                action: action.to_string(),
            })
            .await
            .is_ok()
    }

    /// Queues any client message on the control stream.
    pub async fn send(&self, msg: ClientMsg) -> bool {
        self.outgoing.send(msg).await.is_ok()
    }

    /// A handle to queue messages from other tasks.
    pub fn sender(&self) -> mpsc::Sender<ClientMsg> {
        self.outgoing.clone()
    }

    /// Sends our position as a datagram (lossy by design).
    pub fn send_position(&self, pos: Vec3, rot: f32) -> Result<(), SendPositionError> {
        let bytes = encode_datagram(&ClientMsg::PeerState { pos, rot })?;
        self.conn.send_datagram(bytes.into())?;
        Ok(())
    }

    /// The underlying QUIC connection (tests use it to misbehave on purpose).
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Closes the session and waits (bounded) for the close to reach the
    /// server and for the bundle thread to end, so its downloads' partial
    /// files are released: a session opened next on the same cache (a
    /// reconnect) resumes them instead of downloading beside them.
    pub async fn close(self) {
        let Session {
            conn,
            endpoint,
            work,
            bundles_done,
            events,
            ..
        } = self;
        conn.close(quinn::VarInt::from_u32(0), b"bye");
        // Nobody reads events any more: a bundle thread waiting for room in
        // a full queue gives up at once instead of holding the close.
        drop(events);
        drop(work);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            endpoint.wait_idle().await;
            let _ = bundles_done.await;
        })
        .await;
    }
}

/// Writes the player's messages; after [`KEEPALIVE_SECS`] with nothing to
/// send it sends `KeepAlive`, so the server knows the session is alive.
///
/// [`KEEPALIVE_SECS`]: shard_protocol::limits::KEEPALIVE_SECS
#[instrument(level = "debug", skip_all)]
async fn write_loop(mut send: quinn::SendStream, mut rx: mpsc::Receiver<ClientMsg>) {
    let every = std::time::Duration::from_secs(shard_protocol::limits::KEEPALIVE_SECS);
    loop {
        let m = match tokio::time::timeout(every, rx.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(_) => ClientMsg::KeepAlive,
        };
        if let Err(e) = write_frame(&mut send, &m).await {
            debug!(error = %e, "send failed");
            return;
        }
    }
    let _ = send.finish();
}

/// What the control-stream reader feeds.
struct Reader {
    events: EventTx,
    dispatcher: Arc<Mutex<Dispatcher>>,
    work: mpsc::Sender<BundleWork>,
    me: Arc<AtomicU32>,
}

#[instrument(level = "debug", skip_all)]
async fn read_loop(conn: quinn::Connection, mut recv: quinn::RecvStream, reader: Reader) {
    let Reader {
        events,
        dispatcher,
        work,
        me,
    } = reader;
    let mut kicked = false;
    loop {
        match read_frame::<ServerMsg, _>(&mut recv).await {
            Ok(Some(msg)) => {
                if matches!(msg, ServerMsg::Kick { .. }) {
                    kicked = true;
                }
                if let ServerMsg::Welcome { peer_id, .. } = &msg {
                    me.store(*peer_id, Ordering::Relaxed);
                }
                if let Some(w) = bundle_work(&msg)
                    && work.send(w).await.is_err()
                {
                    return;
                }
                let evs = {
                    let mut d = dispatcher.lock().unwrap_or_else(|p| p.into_inner());
                    translate(msg, &mut d)
                };
                for ev in evs {
                    if !events.send(ev).await {
                        break;
                    }
                }
                if events.link().left_because().is_some() {
                    break;
                }
                if kicked {
                    conn.close(quinn::VarInt::from_u32(0), b"kicked");
                    break;
                }
            }
            Ok(None) => break,
            Err(shard_protocol::ProtocolError::Io(_)) => break,
            Err(e) => {
                let message = format!("the server sent a bad message: {e}");
                events
                    .send(ClientEvent::Error {
                        message: message.clone(),
                    })
                    .await;
                conn.close(quinn::VarInt::from_u32(2), message.as_bytes());
                break;
            }
        }
    }
    let closed = conn.closed().await;
    let reason = match (events.link().left_because(), closed) {
        (Some(ours), _) => ours,
        (None, quinn::ConnectionError::ApplicationClosed(c)) => {
            String::from_utf8_lossy(&c.reason).into_owned()
        }
        (None, other) => other.to_string(),
    };
    if !kicked {
        events
            .send_final(ClientEvent::Disconnected { reason })
            .await;
    }
}

/// The bundle thread's share of a control-stream message, if any.
fn bundle_work(msg: &ServerMsg) -> Option<BundleWork> {
    Some(match msg {
        ServerMsg::Welcome {
            server_name,
            content_required,
            asset_mirrors,
            ..
        } => BundleWork::Welcome {
            server_name: server_name.clone(),
            content_required: *content_required,
            asset_mirrors: asset_mirrors.clone(),
        },
        ServerMsg::PluginAnnounce {
            plugin_id,
            name,
            version,
            bundle_sha256,
            bundle_len,
            unpacked_len,
            client_scripts,
            ..
        } => BundleWork::Announce {
            plugin_id: *plugin_id,
            name: name.clone(),
            version: version.clone(),
            sha256: *bundle_sha256,
            len: *bundle_len,
            unpacked_len: *unpacked_len,
            client_scripts: *client_scripts,
        },
        ServerMsg::AnnouncementsDone => BundleWork::AnnouncementsDone,
        ServerMsg::PluginRemoved { plugin_id } => BundleWork::Removed {
            plugin_id: *plugin_id,
        },
        ServerMsg::BundleRefused {
            plugin_id,
            sha256,
            reason,
        } => BundleWork::Refused {
            plugin_id: *plugin_id,
            sha256: *sha256,
            reason: reason.clone(),
        },
        _ => return None,
    })
}

/// Accepts the server's bundle streams and feeds their chunks to the bundle thread.
#[instrument(level = "debug", skip_all)]
async fn bundle_streams(conn: quinn::Connection, work: mpsc::Sender<BundleWork>) {
    while let Ok(mut stream) = conn.accept_uni().await {
        let work = work.clone();
        let conn = conn.clone();
        let stream_task = async move {
            let mut frames = FramePieces::default();
            let stop = StreamStop::default();
            loop {
                if stop.stopped() {
                    let _ = stream.stop(quinn::VarInt::from_u32(
                        shard_protocol::stream_code::UNWANTED,
                    ));
                    return;
                }
                let chunk = match next_frame_body(&mut stream, &mut frames).await {
                    Ok(Some(body)) => decode_asset_chunk_parts(body),
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                match chunk {
                    Ok(Some(c)) => {
                        if work.send(BundleWork::Chunk(c, stop.clone())).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {
                        let reason = "the server sent a non-bundle message on a bundle stream";
                        conn.close(
                            quinn::VarInt::from_u32(shard_protocol::close_code::PROTOCOL),
                            reason.as_bytes(),
                        );
                        return;
                    }
                    Err(e) => {
                        // A cut transfer resumes from `partial/` on the next announcement.
                        debug!(error = %e, "bundle stream ended");
                        return;
                    }
                }
            }
        };
        tokio::spawn(stream_task.in_current_span());
    }
}

/// The next frame body on a bundle stream, cut from the stream's own
/// buffers (bundle bytes are copied only into the store); `Ok(None)` at a
/// clean end between frames.
async fn next_frame_body(
    stream: &mut quinn::RecvStream,
    frames: &mut FramePieces,
) -> Result<Option<Vec<Bytes>>, shard_protocol::ProtocolError> {
    loop {
        if let Some(body) = frames.next_frame()? {
            return Ok(Some(body));
        }
        match stream.read_chunk(frames.wanted(), true).await {
            Ok(Some(piece)) => frames.push(piece.bytes),
            Ok(None) => return frames.finish().map(|()| None),
            Err(e) => return Err(shard_protocol::ProtocolError::Io(e.into())),
        }
    }
}

/// Reads position datagrams; each carries a batch of moves for our phase,
/// including our own, which is skipped (`me` is set once `Welcome` arrives).
#[instrument(level = "debug", skip_all)]
async fn datagram_loop(conn: quinn::Connection, events: EventTx, me: Arc<AtomicU32>) {
    while let Ok(data) = conn.read_datagram().await {
        match decode_datagram::<ServerMsg>(&data) {
            Ok(ServerMsg::PeerMoved { moves }) => {
                let me = me.load(Ordering::Relaxed);
                for m in moves.into_iter().filter(|m| m.peer_id != me) {
                    let ev = ClientEvent::PeerMoved {
                        peer_id: m.peer_id,
                        pos: arr(m.pos),
                        rot: m.rot,
                    };
                    if !events.send(ev).await {
                        return;
                    }
                }
            }
            Ok(_) => debug!("ignoring a non-position datagram"),
            Err(e) => debug!(error = %e, "ignoring a bad datagram"),
        }
    }
}

/// Maps one server message to the events the user sees.
fn translate(msg: ServerMsg, dispatcher: &mut Dispatcher) -> Vec<ClientEvent> {
    let ev = match msg {
        ServerMsg::Welcome {
            server_name,
            peer_id,
            player_id,
            admin,
            ..
        } => ClientEvent::Welcome {
            server: server_name,
            peer_id,
            player_id,
            admin,
        },
        ServerMsg::Chat { from, name, text } => ClientEvent::Chat { from, name, text },
        ServerMsg::PeerJoined { peer_id, name } => ClientEvent::PeerJoined { peer_id, name },
        ServerMsg::PeerLeft { peer_id, name } => ClientEvent::PeerLeft { peer_id, name },
        // Positions travel as datagrams; a batch on the control stream is ignored.
        ServerMsg::PeerMoved { .. } | ServerMsg::AnnouncementsDone => return Vec::new(),
        ServerMsg::Teleport { pos, rot, phase } => ClientEvent::Teleport {
            pos: arr(pos),
            rot,
            phase,
        },
        ServerMsg::Weather { id } => ClientEvent::Weather { id },
        ServerMsg::EntitySpawned {
            entity_id,
            kind,
            template,
            pos,
            rot,
            phase,
        } => ClientEvent::EntitySpawned {
            entity_id,
            kind: kind_name(kind),
            template,
            pos: arr(pos),
            rot,
            phase,
        },
        ServerMsg::EntityDespawned { entity_id } => ClientEvent::EntityDespawned { entity_id },
        ServerMsg::Kick { reason } => ClientEvent::Kick { reason },
        // The bundle thread reports a refusal of a download still wanted
        // (`bundle_failed`); one that crossed a reload concerns nothing the
        // player waits for, and is no error.
        ServerMsg::BundleRefused { .. } => return Vec::new(),
        ServerMsg::PluginRpc {
            plugin_id,
            fn_hash,
            json,
        } => return dispatcher.rpc(plugin_id, fn_hash, &json),
        ServerMsg::PluginAnnounce { .. }
        | ServerMsg::PluginRemoved { .. }
        | ServerMsg::AssetBundle { .. } => {
            return dispatcher.plugin_msg(msg);
        }
    };
    vec![ev]
}

/// A client QUIC endpoint bound to `bind` that accepts datagrams up to
/// [`UDP_PAYLOAD_CEILING`](shard_protocol::limits::UDP_PAYLOAD_CEILING), so
/// the server's path-MTU search can use the path's real MTU (quinn's default
/// stops at Ethernet's 1472). Must be called inside a tokio runtime.
pub fn client_endpoint(bind: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    let mut config = quinn::EndpointConfig::default();
    config
        .max_udp_payload_size(shard_protocol::limits::UDP_PAYLOAD_CEILING)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let socket = std::net::UdpSocket::bind(bind)?;
    if let Err(e) =
        socket2::SockRef::from(&socket).set_recv_buffer_size(crate::tuning::UDP_RECV_BUFFER)
    {
        debug!(error = %e, "cannot enlarge the UDP receive buffer; keeping the system's");
    }
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no tokio runtime to run the QUIC endpoint on"))?;
    quinn::Endpoint::new(config, None, socket, runtime)
}
