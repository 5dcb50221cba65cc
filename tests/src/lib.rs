//! `shard-e2e`: end-to-end tests with a real server and real clients on loopback.
