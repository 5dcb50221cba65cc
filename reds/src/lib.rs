//! `shard-reds`: REDscript parser and the client-script sandbox policy. Never depends on server or client.
