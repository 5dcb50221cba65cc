#![no_main]
//! Feeds arbitrary bytes to the REDscript parser and the sandbox checker;
//! any panic or stack overflow is a bug.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let _ = shard_reds::parse("fuzz.reds", &src);
    let _ = shard_reds::check_script("fuzz.reds", &src);
});
