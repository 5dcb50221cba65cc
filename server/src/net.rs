//! Network tasks: accept QUIC connections, run the handshake, then shuttle
//! frames and datagrams between a client and the simulation's queues. They
//! never touch game state; a client that breaks the rules is closed with a
//! reason and nobody else notices.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shard_protocol::frame::{asset_chunk_header, decode_datagram, read_frame, write_frame};
use shard_protocol::identity::peer_fingerprint;
use shard_protocol::limits::CHUNK_SIZE;
use shard_protocol::text::normalize_name;
use shard_protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, instrument, warn};

pub use shard_protocol::close_code;

use crate::admin::metrics::{self, DatagramDrop};
use crate::config::RateLimits;
use crate::ratelog::WarnLimiter;
use crate::sim::{Inbound, SimWaker, warn_if_backlogged};
use crate::transfers::{Flight, Transfer};
use crate::tuning::{
    DATAGRAM_FLOOD_FACTOR, FRAMES_PER_CHAT_LINE, HANDSHAKE_TIMEOUT, IDLE_CHECK_MIN, KICK_GRACE,
    MIN_FRAMES_PER_SEC, OUTBOUND_QUEUE, TRANSFER_QUEUE, WARN_FLUSH_EVERY, WRITER_DRAIN_TIMEOUT,
};
use crate::world::Outbound;

/// What every connection task shares.
#[derive(Clone)]
pub struct NetCtx {
    /// The simulation's inbound queue (awaited sends go through `to_sim`).
    pub inbound: mpsc::Sender<Inbound>,
    /// Wakes the simulation for a message a player waits on.
    pub sim_waker: SimWaker,
    /// Per-client rate limits.
    pub limits: RateLimits,
    /// The server-wide bundle budget.
    pub flight: Arc<Flight>,
    /// Connections held per source address.
    pub slots: Arc<AddressSlots>,
    /// A joined connection that sends nothing this long is closed.
    pub idle: Duration,
    /// A bundle transfer that makes no progress this long disconnects its client.
    pub stall: Duration,
    /// Folds the warnings an address can cause (key `None`: server-wide causes).
    pub warns: Arc<WarnLimiter<Option<IpAddr>>>,
    /// The QUIC configuration for each peer (its packet-size ceiling).
    pub configs: crate::transport::PeerConfigs,
}

/// Queues `m` for the simulation, waking it when a player waits on `m`
/// ([`Inbound::urgent`]); fails only when the simulation has stopped.
async fn to_sim(ctx: &NetCtx, m: Inbound) -> Result<(), mpsc::error::SendError<Inbound>> {
    let urgent = m.urgent();
    ctx.inbound.send(m).await?;
    if urgent {
        ctx.sim_waker.wake();
    }
    Ok(())
}

/// Connections held per source address, capped so one address cannot fill the server.
#[derive(Debug)]
pub struct AddressSlots {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's hold on its address's slots; given back on drop.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<AddressSlots>,
    ip: IpAddr,
}

impl AddressSlots {
    /// At most `max` connections per address.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `ip`, or `None` when that address holds `max` already.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut held = self.held.lock().ok()?;
        let n = held.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }

    /// Connections `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        self.held
            .lock()
            .map(|h| h.get(&ip).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.slots.held.lock()
            && let Some(n) = held.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections until the endpoint closes.
pub async fn accept_loop(endpoint: quinn::Endpoint, ctx: NetCtx) {
    let flusher = tokio::spawn({
        let warns = ctx.warns.clone();
        async move {
            loop {
                tokio::time::sleep(WARN_FLUSH_EVERY).await;
                warns.flush();
            }
        }
    });
    while let Some(incoming) = endpoint.accept().await {
        let ctx = ctx.clone();
        let remote = incoming.remote_address();
        let slot = ctx.slots.take(remote.ip());
        tokio::spawn(async move {
            let connecting = match incoming.accept_with(ctx.configs.for_peer(remote)) {
                Ok(c) => c,
                Err(e) => return debug!(%remote, error = %e, "handshake failed"),
            };
            let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return debug!(%remote, error = %e, "handshake failed"),
                Err(_) => return debug!(%remote, "handshake timed out"),
            };
            match slot {
                Some(slot) => serve(conn, ctx, slot).await,
                None => {
                    let max = ctx.slots.max;
                    if let Some(folded) = ctx.warns.allow(Some(remote.ip()), "address cap") {
                        warn!(%remote, max, folded, "refusing a connection: too many from this address");
                    }
                    let reason = format!(
                        "too many connections from your address (the limit is {max}); close one and try again"
                    );
                    close(&conn, close_code::REFUSED, &reason);
                }
            }
        });
    }
    flusher.abort();
}

fn close(conn: &quinn::Connection, code: u32, reason: &str) {
    debug!(remote = %conn.remote_address(), code, reason, "closing connection");
    conn.close(quinn::VarInt::from_u32(code), reason.as_bytes());
}

/// A token bucket: `rate` per second with a burst of `rate`.
pub(crate) struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    pub(crate) fn take(&mut self) -> bool {
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

/// One connection from handshake to goodbye. Its span carries the address,
/// and the peer id and key once known, so every line of a session (its tasks
/// included) can be filtered by peer. The span is at error level so that its
/// fields reach every line whatever filter the operator chose.
#[instrument(
    name = "conn",
    level = "error",
    skip_all,
    fields(remote = %conn.remote_address(), peer = tracing::field::Empty, key = tracing::field::Empty)
)]
async fn serve(conn: quinn::Connection, ctx: NetCtx, _slot: Slot) {
    let ip = conn.remote_address().ip();
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
            debug!(error = %e, "connection ended before its control stream");
            return;
        }
        Err(_) => {
            let reason = format!("no control stream within {} s", HANDSHAKE_TIMEOUT.as_secs());
            return close(&conn, close_code::PROTOCOL, &reason);
        }
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
        Err(_) => {
            let reason = format!("no Hello within {} s", HANDSHAKE_TIMEOUT.as_secs());
            return close(&conn, close_code::PROTOCOL, &reason);
        }
    };
    let name = match hello {
        ClientMsg::Hello {
            name,
            protocol_version,
        } if protocol_version == PROTOCOL_VERSION => match normalize_name(&name) {
            Ok(n) => n,
            Err(e) => {
                return close(&conn, close_code::REFUSED, &format!("name refused: {e}"));
            }
        },
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

    tracing::Span::current().record("key", tracing::field::display(&fingerprint));
    let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
    let (reply_tx, reply_rx) = oneshot::channel();
    let join = Inbound::Join {
        name,
        fingerprint,
        out: out_tx,
        conn: Some(conn.clone()),
        reply: reply_tx,
    };
    if to_sim(&ctx, join).await.is_err() {
        return close(&conn, close_code::KICKED, "the server is stopping");
    }
    let peer = match reply_rx.await {
        Ok(Ok(id)) => id,
        Ok(Err(refusal)) => {
            let reason = refusal.to_string();
            if let Some(folded) = ctx.warns.allow(Some(ip), "join refused") {
                info!(%ip, reason, folded, "join refused");
            }
            return close(&conn, close_code::REFUSED, &reason);
        }
        Err(_) => return close(&conn, close_code::KICKED, "the server is stopping"),
    };

    tracing::Span::current().record("peer", peer);
    let writer =
        tokio::spawn(write_loop(conn.clone(), send, out_rx, peer, ctx.clone()).in_current_span());
    let datagrams = tokio::spawn(datagram_loop(conn.clone(), peer, ctx.clone()).in_current_span());
    let idle = tokio::spawn(idle_watch(conn.clone(), ctx.idle).in_current_span());
    let violation = read_loop(&mut recv, peer, &ctx).await;
    if let Some((code, reason)) = violation {
        if let Some(folded) = ctx.warns.allow(Some(ip), "violation") {
            warn!(peer, %ip, reason, folded, "disconnecting");
        }
        close(&conn, code, &reason);
    }
    datagrams.abort();
    idle.abort();
    let path = conn.stats().path;
    debug!(
        peer,
        mtu = path.current_mtu,
        lost_packets = path.lost_packets,
        black_holes = path.black_holes_detected,
        "connection ended"
    );
    let _ = to_sim(&ctx, Inbound::Left { peer }).await;
    // The writer ends when the simulation drops this peer's queue.
    let _ = tokio::time::timeout(WRITER_DRAIN_TIMEOUT, writer).await;
}

/// Reads control frames until the stream ends; returns a violation to close with.
#[instrument(level = "debug", skip(recv, ctx))]
async fn read_loop(recv: &mut quinn::RecvStream, peer: u32, ctx: &NetCtx) -> Option<(u32, String)> {
    let mut chat = Bucket::new(ctx.limits.chat_per_sec);
    // Any frame at all: generous, only to stop a flood of non-chat messages.
    let mut frames = Bucket::new(
        ctx.limits
            .chat_per_sec
            .saturating_mul(FRAMES_PER_CHAT_LINE)
            .max(MIN_FRAMES_PER_SEC),
    );
    loop {
        let msg = match read_frame::<ClientMsg, _>(recv).await {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(shard_protocol::ProtocolError::Io(e)) => {
                debug!(peer, error = %e, "control stream ended");
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
        if matches!(msg, ClientMsg::KeepAlive) {
            // Its arrival is all that counts (see `idle_watch`).
            continue;
        }
        metrics::message_in(&msg);
        warn_if_backlogged(&ctx.inbound, &ctx.warns, None);
        if to_sim(ctx, Inbound::Msg { peer, msg }).await.is_err() {
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
            if dropped
                > ctx
                    .limits
                    .datagrams_per_sec
                    .saturating_mul(DATAGRAM_FLOOD_FACTOR)
            {
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

/// Closes a joined connection that sends no frame and no datagram for
/// `idle`. Clients send `KeepAlive` when they have nothing else to say; QUIC
/// acknowledgements and pings do not count, since a client's QUIC stack
/// sends them whether or not anyone is playing.
async fn idle_watch(conn: quinn::Connection, idle: Duration) {
    let activity = |c: &quinn::Connection| {
        let f = c.stats().frame_rx;
        f.stream + f.datagram
    };
    let mut last = activity(&conn);
    let mut since = Instant::now();
    let step = (idle / 4).max(IDLE_CHECK_MIN);
    loop {
        tokio::time::sleep(step).await;
        let now = activity(&conn);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= idle {
            let reason = format!("idle: nothing received for {} s", idle.as_secs());
            return close(&conn, close_code::IDLE, &reason);
        }
    }
}

/// Writes queued messages to the control stream and hands bundle transfers
/// to this connection's transfer runner; `Close` sends a Kick and ends the session.
async fn write_loop(
    conn: quinn::Connection,
    mut send: quinn::SendStream,
    mut rx: mpsc::Receiver<Outbound>,
    peer: u32,
    ctx: NetCtx,
) {
    let (transfers, transfers_rx) = mpsc::channel(TRANSFER_QUEUE);
    let runner =
        tokio::spawn(run_transfers(conn.clone(), transfers_rx, peer, ctx).in_current_span());
    while let Some(out) = rx.recv().await {
        match out {
            Outbound::Msg(m) => {
                metrics::message_out(&m);
                if let Err(e) = write_frame(&mut send, &m).await {
                    debug!(peer, error = %e, "control stream write failed");
                    break;
                }
            }
            Outbound::Bundle(t) => {
                if transfers.send(t).await.is_err() {
                    break;
                }
            }
            Outbound::Close { code, reason } => {
                let _ = write_frame(
                    &mut send,
                    &ServerMsg::Kick {
                        reason: reason.clone(),
                    },
                )
                .await;
                let _ = send.finish();
                // Give the client a moment to read the Kick and close first.
                let _ = tokio::time::timeout(KICK_GRACE, conn.closed()).await;
                close(&conn, code, &reason);
                break;
            }
        }
    }
    // Whatever this connection held of the bundle budget goes back now.
    runner.abort();
}

/// Why a bundle transfer ended early.
#[derive(Debug, thiserror::Error)]
enum TransferError {
    /// The client did not take any data for the stall deadline.
    #[error("no progress for {} s", .0.as_secs())]
    Stalled(Duration),
    /// The stream or connection failed, or the client stopped the stream.
    #[error("{0}")]
    Stream(String),
}

/// Runs this connection's bundle transfers (the simulation starts at most
/// `MAX_CONCURRENT_TRANSFERS` at a time), holding one lease of the
/// server-wide budget while any runs; a transfer that stalls disconnects the
/// client, which frees its lease and its transfers at once.
async fn run_transfers(
    conn: quinn::Connection,
    mut rx: mpsc::Receiver<Transfer>,
    peer: u32,
    ctx: NetCtx,
) {
    let mut running: JoinSet<(u16, [u8; 32], Result<(), TransferError>)> = JoinSet::new();
    let mut lease = None;
    loop {
        tokio::select! {
            t = rx.recv() => {
                let Some(t) = t else { break };
                if lease.is_none() {
                    lease = tokio::select! {
                        l = ctx.flight.lease() => l,
                        _ = conn.closed() => break,
                    };
                }
                let (conn, flight, stall) = (conn.clone(), ctx.flight.clone(), ctx.stall);
                running.spawn(
                    async move {
                        let (plugin_id, sha) = (t.plugin_id, t.sha256);
                        (plugin_id, sha, stream_bundle(&conn, t, stall, &flight).await)
                    }
                    .in_current_span(),
                );
            }
            Some(done) = running.join_next(), if !running.is_empty() => {
                let Ok((plugin_id, sha256, result)) = done else { continue };
                match result {
                    Ok(()) => {}
                    Err(TransferError::Stalled(d)) => {
                        if let Some(folded) = ctx.warns.allow(Some(conn.remote_address().ip()), "stalled transfer") {
                            warn!(peer, folded, "disconnecting a client that does not read its bundle stream");
                        }
                        let reason = format!(
                            "not reading: a bundle transfer made no progress for {} s",
                            d.as_secs()
                        );
                        close(&conn, close_code::FLOOD, &reason);
                        break;
                    }
                    Err(e) => debug!(peer, error = %e, "bundle transfer ended early"),
                }
                if to_sim(&ctx, Inbound::BundleSent { peer, plugin_id, sha256 }).await.is_err() {
                    break;
                }
                if running.is_empty() {
                    lease = None;
                }
            }
        }
    }
    drop(lease);
}

/// Sends a packed bundle on a fresh unidirectional stream, in `CHUNK_SIZE`
/// chunks straight from the shared copy, starting at the chunk that holds
/// `offset` (resume), and waits until the client acknowledged all of it.
/// Each step must make progress within `stall`.
async fn stream_bundle(
    conn: &quinn::Connection,
    t: Transfer,
    stall: Duration,
    flight: &Flight,
) -> Result<(), TransferError> {
    let stream_err = |e: &dyn std::fmt::Display| TransferError::Stream(e.to_string());
    let mut stream = tokio::time::timeout(stall, conn.open_uni())
        .await
        .map_err(|_| TransferError::Stalled(stall))?
        .map_err(|e| stream_err(&e))?;
    let len = t.bytes.len();
    let first = usize::try_from(t.offset).unwrap_or(usize::MAX).min(len) / CHUNK_SIZE;
    for (i, start) in (0..len).step_by(CHUNK_SIZE).enumerate().skip(first) {
        let end = (start + CHUNK_SIZE).min(len);
        let chunk_id = u32::try_from(i).map_err(|e| stream_err(&e))?;
        let header = asset_chunk_header(t.plugin_id, t.sha256, len as u64, chunk_id, end - start)
            .map_err(|e| stream_err(&e))?;
        let sent = (header.len() + end - start) as u64;
        let mut parts = [Bytes::from(header), t.bytes.slice(start..end)];
        tokio::time::timeout(stall, stream.write_all_chunks(&mut parts))
            .await
            .map_err(|_| TransferError::Stalled(stall))?
            .map_err(|e| stream_err(&e))?;
        flight.count(sent);
        metrics::bundle_bytes(sent);
    }
    stream.finish().map_err(|e| stream_err(&e))?;
    match tokio::time::timeout(stall, stream.stopped()).await {
        Err(_) => Err(TransferError::Stalled(stall)),
        Ok(Ok(None)) => {
            metrics::bundle_transfer_done();
            Ok(())
        }
        Ok(Ok(Some(code))) => Err(TransferError::Stream(format!(
            "the client stopped the stream (code {code})"
        ))),
        Ok(Err(e)) => Err(stream_err(&e)),
    }
}
