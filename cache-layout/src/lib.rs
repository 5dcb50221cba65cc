//! `shard-cache`: bundle format and the on-disk `runtime_cache/` layout. Never depends on server or client.
