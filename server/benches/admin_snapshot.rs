//! What the admin console costs the simulation: building and publishing one
//! snapshot (done every 0.5 s on the simulation thread) with N players, and,
//! off that thread, rendering the Players page's live part from it.
//! Run: `cargo bench -p shard-server --bench admin_snapshot`.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(clippy::print_stdout, reason = "a benchmark: it prints its figures")]

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shard_protocol::identity::Fingerprint;
use shard_protocol::{ServerMsg, Vec3};
use shard_server::admin::pages::{self, Ctx, Page};
use shard_server::admin::snapshot::{self, ChatKind, Publisher};
use shard_server::bundles::CatalogState;
use shard_server::plugin::{PluginInfo, PluginState};
use shard_server::world::World;

fn fingerprint(i: usize) -> Fingerprint {
    Fingerprint::parse(&format!("{i:064x}")).expect("fingerprint")
}

fn per_call(iters: u32, mut f: impl FnMut()) -> Duration {
    f();
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed() / iters
}

fn main() {
    let plugins: Vec<PluginInfo> = (0..10)
        .map(|i| PluginInfo {
            name: format!("plugin{i}"),
            id: i + 1,
            version: "1.0".into(),
            state: PluginState::Loaded,
            errors: 0,
            restarts: 0,
            worker_pid: None,
            hash: "ab".repeat(32),
            bundle_dir: PathBuf::from("plugins"),
            last_error: None,
        })
        .collect();
    let catalog = CatalogState::default();
    println!("players  publish/snapshot  render Players page  snapshot JSON");
    for n in [16usize, 64, 256, 1024] {
        let mut world = World::new();
        let mut queues = Vec::new();
        for i in 0..n {
            let (tx, rx) = tokio::sync::mpsc::channel(4 * n + 16);
            queues.push(rx);
            let id = world.add_peer(
                format!("player{i}"),
                fingerprint(i),
                i == 0,
                tx,
                None,
                |_| ServerMsg::Weather { id: 0 },
            );
            world.move_peer(
                id,
                Vec3 {
                    x: i as f32,
                    y: 1.0,
                    z: 2.0,
                },
                0.0,
            );
        }
        let admins: HashSet<Fingerprint> = [fingerprint(0)].into_iter().collect();
        let (tx, rx) = snapshot::channel();
        let mut publisher = Publisher::new(tx);
        for i in 0..shard_server::tuning::ADMIN_CHAT_LINES {
            publisher.chat(ChatKind::Chat, "player1", &format!("line {i} of chat"));
        }
        let publish = per_call(200, || {
            publisher.publish(&world, plugins.clone(), &catalog, &admins, 30);
        });
        let snap = rx.borrow().clone();
        let rows: Vec<(String, String)> = Vec::new();
        let logs = PathBuf::from("/nonexistent");
        let render = per_call(50, || {
            let ctx = Ctx {
                snap: &snap,
                csrf: "x",
                logs_dir: &logs,
                bundles: shard_server::admin::metrics::BundleTotals::default(),
                config_rows: &rows,
                mirrors: None,
                mirror_list: &[],
            };
            std::hint::black_box(pages::live(Page::Players, &ctx).into_string());
        });
        let json = per_call(50, || {
            std::hint::black_box(serde_json::to_string(&*snap).unwrap_or_default());
        });
        println!(
            "{n:>7}  {:>16.1?}  {:>19.1?}  {:>13.1?}",
            publish, render, json
        );
    }
}
