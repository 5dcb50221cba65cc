//! End to end: a real server, real clients, real nginx and Chromium, each
//! feature in its own module. One test binary rather than one per file: the
//! workspace links it once, and CI's disk holds one copy of the server and
//! the client instead of twenty (each copy is 60 MB unoptimised).

mod admin_web;
mod bench_smoke;
mod bundles;
mod c_smoke;
mod cache_lru;
mod client_rpc;
mod content;
mod full_disk;
mod headless_cli;
mod hostile_clients;
mod hostile_server;
mod lossy_link;
mod mirror;
mod mobile_cc;
mod network;
mod plugins;
mod reload_batch;
mod reload_pacing;
mod resources;
mod routes;
mod vote;
