//! The event queue towards the game, bounded in bytes as well as in count,
//! and the session's way of leaving with a reason.
//!
//! Every event is capped ([`ClientEvent::capped`]) and weighed as the JSON
//! the game receives. While more than `limits::MAX_EVENT_QUEUE_BYTES` wait for the
//! game, the next event is refused and the session leaves the server with a
//! reason the game sees in the final `disconnected` event, so a flooding
//! server can never grow the game's memory past the bound.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use shard_protocol::clip_utf8;
use shard_protocol::limits::MAX_REASON;
use tokio::sync::mpsc;
use tracing::warn;

use crate::events::ClientEvent;

use crate::tuning::EVENT_QUEUE;

/// What the session's tasks share: the connection, the reason the session
/// left (if it did), the offer awaiting an answer, and the queue's fill level.
#[derive(Debug)]
pub struct SessionLink {
    conn: Option<quinn::Connection>,
    reason: Mutex<Option<String>>,
    /// Id of the content offer waiting for the player's answer (0: none).
    pub pending_offer: AtomicU64,
    queued: AtomicUsize,
    high_water: AtomicUsize,
    max_bytes: usize,
}

impl SessionLink {
    /// A link for `conn` whose event queue holds at most `max_bytes`.
    pub fn new(conn: quinn::Connection, max_bytes: usize) -> Arc<Self> {
        Self::build(Some(conn), max_bytes)
    }

    /// A link without a connection (tests drive a receiver on its own);
    /// leaving only records the reason.
    pub fn detached(max_bytes: usize) -> Arc<Self> {
        Self::build(None, max_bytes)
    }

    fn build(conn: Option<quinn::Connection>, max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            conn,
            reason: Mutex::new(None),
            pending_offer: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            high_water: AtomicUsize::new(0),
            max_bytes,
        })
    }

    /// Completes when the connection to the game server has ended (closed
    /// by either side, or lost), so work that belongs to the session, such
    /// as a mirror download, stops with it; never, for a detached link.
    pub async fn ended(&self) {
        match &self.conn {
            Some(conn) => {
                conn.closed().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Leaves the server because of `reason` (the first reason wins); the
    /// final `disconnected` event carries it to the game.
    pub fn leave(&self, reason: &str) {
        let mut reason = reason.to_string();
        clip_utf8(&mut reason, MAX_REASON);
        {
            let mut slot = self.reason.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_some() {
                return;
            }
            *slot = Some(reason.clone());
        }
        warn!(%reason, "leaving the server");
        if let Some(conn) = &self.conn {
            conn.close(quinn::VarInt::from_u32(0), reason.as_bytes());
        }
    }

    /// Why this side left, if it did.
    pub fn left_because(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Bytes of events waiting for the game now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The most bytes of events that ever waited for the game at once.
    pub fn max_queued_bytes(&self) -> usize {
        self.high_water.load(Ordering::Relaxed)
    }
}

/// Sending half of the event queue, shared by the session's tasks.
#[derive(Debug, Clone)]
pub struct EventTx {
    tx: mpsc::Sender<(ClientEvent, usize)>,
    link: Arc<SessionLink>,
}

/// Receiving half of the event queue (the game's side).
#[derive(Debug)]
pub struct EventRx {
    rx: mpsc::Receiver<(ClientEvent, usize)>,
    link: Arc<SessionLink>,
}

/// A new event queue for the session behind `link`.
pub fn event_queue(link: Arc<SessionLink>) -> (EventTx, EventRx) {
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    (
        EventTx {
            tx,
            link: link.clone(),
        },
        EventRx { rx, link },
    )
}

impl EventTx {
    /// Caps and weighs `ev`, and takes its bytes from the budget; `None`
    /// when the session already left, or when the budget is exhausted (then
    /// the session leaves with a reason).
    fn admit(&self, ev: ClientEvent) -> Option<(ClientEvent, usize)> {
        if self.link.left_because().is_some() {
            return None;
        }
        let ev = ev.capped();
        let weight = ev.to_json().len();
        let before = self.link.queued.fetch_add(weight, Ordering::AcqRel);
        let now = before + weight;
        if now > self.link.max_bytes {
            self.link.queued.fetch_sub(weight, Ordering::AcqRel);
            self.link.leave(&format!(
                "the server sent more events than the game could take (over {} MB waiting); \
                 disconnected to protect the game's memory",
                self.link.max_bytes / (1024 * 1024)
            ));
            return None;
        }
        self.link.high_water.fetch_max(now, Ordering::Relaxed);
        Some((ev, weight))
    }

    /// Queues an event (waiting while the count bound is reached); false
    /// when the session is over or left.
    pub async fn send(&self, ev: ClientEvent) -> bool {
        match self.admit(ev) {
            Some(item) => self.tx.send(item).await.is_ok(),
            None => false,
        }
    }

    /// Like [`EventTx::send`], from a plain thread (the bundle thread).
    pub fn blocking_send(&self, ev: ClientEvent) -> bool {
        match self.admit(ev) {
            Some(item) => self.tx.blocking_send(item).is_ok(),
            None => false,
        }
    }

    /// Queues the session's last event (`disconnected`) whatever the byte
    /// budget, so the game always learns why the session ended.
    pub async fn send_final(&self, ev: ClientEvent) {
        let ev = ev.capped();
        let weight = ev.to_json().len();
        self.link.queued.fetch_add(weight, Ordering::AcqRel);
        let _ = self.tx.send((ev, weight)).await;
    }

    /// The link this queue belongs to.
    pub fn link(&self) -> &Arc<SessionLink> {
        &self.link
    }
}

impl EventRx {
    fn took(&self, item: (ClientEvent, usize)) -> ClientEvent {
        self.link.queued.fetch_sub(item.1, Ordering::AcqRel);
        item.0
    }

    /// Next event; `None` once the session is over and every event was read.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        let item = self.rx.recv().await?;
        Some(self.took(item))
    }

    /// Next event if one is ready.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
        let item = self.rx.try_recv().ok()?;
        Some(self.took(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(len: usize) -> ClientEvent {
        ClientEvent::Rpc {
            plugin_id: 1,
            plugin: "p".into(),
            name: "R".into(),
            json: "x".repeat(len),
        }
    }

    #[test]
    fn the_byte_bound_leaves_with_a_reason_and_the_final_event_still_fits() {
        let link = SessionLink::detached(64 * 1024);
        let (tx, mut rx) = event_queue(link.clone());
        let mut sent = 0;
        while tx.blocking_send(rpc(10_000)) {
            sent += 1;
            assert!(sent < 100, "the bound never tripped");
        }
        assert_eq!(sent, 6);
        assert!(link.max_queued_bytes() <= 64 * 1024);
        let reason = link.left_because().expect("left");
        assert!(reason.contains("game's memory"), "{reason}");
        // Nothing else gets in, but the final event does.
        assert!(!tx.blocking_send(rpc(1)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(tx.send_final(ClientEvent::Disconnected { reason }));
        let mut got = Vec::new();
        while let Some(ev) = rx.try_recv() {
            got.push(ev);
        }
        assert_eq!(got.len(), 7);
        assert!(matches!(got.last(), Some(ClientEvent::Disconnected { .. })));
        assert_eq!(link.queued_bytes(), 0);
    }

    #[test]
    fn strings_handed_to_the_game_are_capped() {
        use shard_protocol::limits::{MAX_GAME_STRING, MAX_REASON};
        let ev = rpc(MAX_GAME_STRING * 2).capped();
        assert!(matches!(ev, ClientEvent::Rpc { json, .. } if json.len() == MAX_GAME_STRING));
        let ev = ClientEvent::Disconnected {
            reason: "é".repeat(MAX_REASON),
        }
        .capped();
        assert!(
            matches!(ev, ClientEvent::Disconnected { reason } if reason.len() <= MAX_REASON && reason.len() >= MAX_REASON - 1)
        );
    }
}
