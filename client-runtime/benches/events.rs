//! Benchmark: the cost of the game-side event queue's byte bound — capping
//! and weighing each event as the JSON the game receives, then queueing and
//! taking it. Run with `cargo bench -p shard-client --bench events`; prints
//! events/s and MB/s per event kind.
#![allow(clippy::print_stdout, reason = "a benchmark: it prints its figures")]

use std::time::Instant;

use shard_client::ClientEvent;
use shard_client::queue::{SessionLink, event_queue};
use shard_protocol::limits::{MAX_EVENT_QUEUE_BYTES, MAX_RPC_JSON};

/// Events queued before the consumer drains them (below the count bound).
const BATCH: usize = 1000;

fn run(label: &str, ev: &ClientEvent, rounds: usize) {
    let link = SessionLink::detached(MAX_EVENT_QUEUE_BYTES * 4);
    let (tx, mut rx) = event_queue(link.clone());
    let bytes = ev.to_json().len();
    let start = Instant::now();
    for _ in 0..rounds {
        for _ in 0..BATCH {
            assert!(tx.blocking_send(ev.clone()), "queue refused an event");
        }
        for _ in 0..BATCH {
            assert!(rx.try_recv().is_some(), "event missing");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (rounds * BATCH) as f64;
    println!(
        "{label:>18}: {bytes:>6} B/event  {:>10.0} events/s  {:>8.1} MB/s  peak queue {} B",
        n / secs,
        n * bytes as f64 / secs / 1e6,
        link.max_queued_bytes()
    );
}

fn main() {
    let moved = ClientEvent::PeerMoved {
        peer_id: 7,
        pos: [1.0, 2.0, 3.0],
        rot: 90.0,
    };
    run("peer_moved", &moved, 200);
    let rpc = ClientEvent::Rpc {
        plugin_id: 3,
        plugin: "mobile_cc".into(),
        name: "CcStatus".into(),
        json: format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_RPC_JSON - 16)),
    };
    run("rpc (16 KiB json)", &rpc, 20);
    let chat = ClientEvent::Chat {
        from: Some(1),
        name: "vee".into(),
        text: "é".repeat(512),
    };
    run("chat (512 chars)", &chat, 100);
}
