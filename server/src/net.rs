//! Network tasks: accept QUIC connections, run the handshake, then shuttle
//! frames and datagrams between a client and the simulation's queues. They
//! never touch game state; a client that breaks the rules is closed with a
//! reason and nobody else notices.

use std::time::{Duration, Instant};

use shard_protocol::frame::{decode_datagram, read_frame, write_frame};
use shard_protocol::identity::peer_fingerprint;
use shard_protocol::limits::CHUNK_SIZE;
use shard_protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::admin::metrics::{self, DatagramDrop};
use crate::config::RateLimits;
use crate::sim::{Inbound, warn_if_backlogged};
use crate::world::Outbound;

/// Capacity of each client's reliable outbound queue; overflowing it disconnects the client.
pub const OUTBOUND_QUEUE: usize = 4096;

/// How long a client has to open its control stream and say `Hello`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// QUIC application close codes, so clients can tell why they were closed.
pub mod close_code {
    /// Orderly close: kicked, shutdown.
    pub const KICKED: u32 = 1;
    /// The client broke the protocol (malformed, oversize, wrong version).
    pub const PROTOCOL: u32 = 2;
    /// The client sent too much.
    pub const FLOOD: u32 = 3;
    /// The server refused the join (full, duplicate key).
    pub const REFUSED: u32 = 4;
}

/// What every connection task shares.
#[derive(Clone)]
pub struct NetCtx {
    /// The simulation's inbound queue.
    pub inbound: mpsc::Sender<Inbound>,
    /// Per-client rate limits.
    pub limits: RateLimits,
}

/// Accepts connections until the endpoint closes.
pub async fn accept_loop(endpoint: quinn::Endpoint, ctx: NetCtx) {
    while let Some(incoming) = endpoint.accept().await {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve(conn, ctx).await,
                Err(e) => debug!(%remote, "handshake failed: {e}"),
            }
        });
    }
}

fn close(conn: &quinn::Connection, code: u32, reason: &str) {
    info!(remote = %conn.remote_address(), "closing connection: {reason}");
    conn.close(quinn::VarInt::from_u32(code), reason.as_bytes());
}

/// A token bucket: `rate` per second with a burst of `rate`.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn serve(conn: quinn::Connection, ctx: NetCtx) {
    let Some(fingerprint) = peer_fingerprint(&conn) else {
        close(
            &conn,
            close_code::PROTOCOL,
            "a client certificate is required",
        );
        return;
    };
    let (send, mut recv) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!("connection ended before its control stream: {e}");
            return;
        }
        Err(_) => return close(&conn, close_code::PROTOCOL, "no control stream within 10 s"),
    };
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame::<ClientMsg, _>(&mut recv))
        .await
    {
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            return close(
                &conn,
                close_code::PROTOCOL,
                &format!("protocol violation: {e}"),
            );
        }
        Err(_) => return close(&conn, close_code::PROTOCOL, "no Hello within 10 s"),
    };
    let name = match hello {
        ClientMsg::Hello {
            name,
            protocol_version,
        } if protocol_version == PROTOCOL_VERSION => name,
        ClientMsg::Hello {
            protocol_version, ..
        } => {
            let reason = format!(
                "protocol version {protocol_version} is not supported; this server speaks version {PROTOCOL_VERSION}: update your client"
            );
            return close(&conn, close_code::PROTOCOL, &reason);
        }
        _ => {
            return close(
                &conn,
                close_code::PROTOCOL,
                "protocol violation: the first message must be Hello",
            );
        }
    };

    let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
    let (reply_tx, reply_rx) = oneshot::channel();
    let join = Inbound::Join {
        name,
        fingerprint,
        out: out_tx,
        conn: Some(conn.clone()),
        reply: reply_tx,
    };
    if ctx.inbound.send(join).await.is_err() {
        return close(&conn, close_code::KICKED, "the server is stopping");
    }
    let peer = match reply_rx.await {
        Ok(Ok(id)) => id,
        Ok(Err(reason)) => return close(&conn, close_code::REFUSED, &reason),
        Err(_) => return close(&conn, close_code::KICKED, "the server is stopping"),
    };

    let writer = tokio::spawn(write_loop(conn.clone(), send, out_rx));
    let datagrams = tokio::spawn(datagram_loop(conn.clone(), peer, ctx.clone()));
    let violation = read_loop(&mut recv, peer, &ctx).await;
    if let Some((code, reason)) = violation {
        warn!(peer, "disconnecting: {reason}");
        close(&conn, code, &reason);
    }
    datagrams.abort();
    let _ = ctx.inbound.send(Inbound::Left { peer }).await;
    // The writer ends when the simulation drops this peer's queue.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

/// Reads control frames until the stream ends; returns a violation to close with.
async fn read_loop(recv: &mut quinn::RecvStream, peer: u32, ctx: &NetCtx) -> Option<(u32, String)> {
    let mut chat = Bucket::new(ctx.limits.chat_per_sec);
    // Any frame at all: generous, only to stop a flood of non-chat messages.
    let mut frames = Bucket::new(ctx.limits.chat_per_sec.saturating_mul(20).max(100));
    loop {
        let msg = match read_frame::<ClientMsg, _>(recv).await {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(shard_protocol::ProtocolError::Io(e)) => {
                debug!(peer, "control stream ended: {e}");
                return None;
            }
            Err(e) => return Some((close_code::PROTOCOL, format!("protocol violation: {e}"))),
        };
        if !frames.take() {
            return Some((
                close_code::FLOOD,
                "flooding: too many messages per second".into(),
            ));
        }
        if matches!(msg, ClientMsg::Chat { .. }) && !chat.take() {
            return Some((
                close_code::FLOOD,
                format!(
                    "flooding: more than {} chat lines per second",
                    ctx.limits.chat_per_sec
                ),
            ));
        }
        metrics::message_in(&msg);
        warn_if_backlogged(&ctx.inbound);
        if ctx.inbound.send(Inbound::Msg { peer, msg }).await.is_err() {
            return None;
        }
    }
}

/// Reads position datagrams; drops those over the rate, closes on ten times the rate.
async fn datagram_loop(conn: quinn::Connection, peer: u32, ctx: NetCtx) {
    let mut bucket = Bucket::new(ctx.limits.datagrams_per_sec);
    let mut window = Instant::now();
    let mut dropped = 0u32;
    while let Ok(data) = conn.read_datagram().await {
        let msg = match decode_datagram::<ClientMsg>(&data) {
            Ok(m) => m,
            Err(e) => {
                return close(
                    &conn,
                    close_code::PROTOCOL,
                    &format!("protocol violation: datagram: {e}"),
                );
            }
        };
        let ClientMsg::PeerState { pos, rot } = msg else {
            return close(
                &conn,
                close_code::PROTOCOL,
                "protocol violation: only PeerState may be sent as a datagram",
            );
        };
        metrics::message_in(&msg);
        if !bucket.take() {
            metrics::datagram_dropped(DatagramDrop::RateLimit);
            if window.elapsed() > Duration::from_secs(1) {
                window = Instant::now();
                dropped = 0;
            }
            dropped += 1;
            if dropped > ctx.limits.datagrams_per_sec.saturating_mul(10) {
                return close(
                    &conn,
                    close_code::FLOOD,
                    "flooding: far too many position updates per second",
                );
            }
            continue;
        }
        // Positions are lossy: when the simulation is behind, drop rather than wait.
        if ctx
            .inbound
            .try_send(Inbound::Moved { peer, pos, rot })
            .is_err()
        {
            metrics::datagram_dropped(DatagramDrop::QueueFull);
        }
    }
}

/// Writes queued messages to the control stream; `Close` sends a Kick and ends the session.
async fn write_loop(
    conn: quinn::Connection,
    mut send: quinn::SendStream,
    mut rx: mpsc::Receiver<Outbound>,
) {
    while let Some(out) = rx.recv().await {
        match out {
            Outbound::Msg(m) => {
                metrics::message_out(&m);
                if let Err(e) = write_frame(&mut send, &m).await {
                    debug!("control stream write failed: {e}");
                    return;
                }
            }
            Outbound::Bundle {
                plugin_id,
                bytes,
                offset,
            } => {
                let conn = conn.clone();
                tokio::spawn(async move {
                    if let Err(e) = stream_bundle(&conn, plugin_id, bytes, offset).await {
                        debug!(plugin_id, "bundle transfer ended early: {e}");
                    }
                });
            }
            Outbound::Close(reason) => {
                let _ = write_frame(
                    &mut send,
                    &ServerMsg::Kick {
                        reason: reason.clone(),
                    },
                )
                .await;
                let _ = send.finish();
                // Give the client a moment to read the Kick and close first.
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
                close(&conn, close_code::KICKED, &reason);
                return;
            }
        }
    }
}

/// Sends a packed bundle on a fresh unidirectional stream, in `CHUNK_SIZE`
/// chunks, starting at the chunk that holds `offset` (resume).
async fn stream_bundle(
    conn: &quinn::Connection,
    plugin_id: u16,
    bytes: bytes::Bytes,
    offset: u64,
) -> Result<(), String> {
    let mut stream = conn.open_uni().await.map_err(|e| e.to_string())?;
    let len = bytes.len() as u64;
    let first = usize::try_from(offset.min(len) / CHUNK_SIZE as u64).unwrap_or(usize::MAX);
    for (i, chunk) in bytes.chunks(CHUNK_SIZE).enumerate().skip(first) {
        let chunk_id = u32::try_from(i).map_err(|_| "bundle has too many chunks".to_string())?;
        let msg = ServerMsg::AssetBundle {
            plugin_id,
            len,
            chunk_id,
            data: chunk.to_vec(),
        };
        write_frame(&mut stream, &msg)
            .await
            .map_err(|e| e.to_string())?;
        metrics::bundle_bytes(chunk.len() as u64);
    }
    stream.finish().map_err(|e| e.to_string())?;
    metrics::bundle_transfer_done();
    Ok(())
}
