//! `shard-client`: the client runtime. Never depends on `shard-server`.
