#![no_main]
//! Feeds arbitrary bytes through the frame decoder in both directions.

use libfuzzer_sys::fuzz_target;
use shard_protocol::{ClientMsg, FrameDecoder, ServerMsg};

fuzz_target!(|data: &[u8]| {
    let mut d = FrameDecoder::new();
    d.push(data);
    while let Ok(Some(_)) = d.next::<ClientMsg>() {}
    let mut d = FrameDecoder::new();
    d.push(data);
    while let Ok(Some(_)) = d.next::<ServerMsg>() {}
    let _ = shard_protocol::frame::decode_datagram::<ClientMsg>(data);
});
