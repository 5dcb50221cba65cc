//! `shard-server`: the dedicated server. Never depends on `shard-client`.
