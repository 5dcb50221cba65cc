//! The C ABI's error paths, called exactly as the game would: null and
//! invalid pointers, bad config, short buffers, invalid UTF-8 and use after
//! destroy must return error codes (with a message), never crash.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::ffi::{CStr, CString, c_char};
use std::time::{Duration, Instant};

use shard_client::ffi::*;

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    // SAFETY: buf is valid for its length.
    let rc = unsafe { shard_client_last_error(std::ptr::null_mut(), buf.as_mut_ptr(), buf.len()) };
    assert!(rc == SHARD_OK || rc == SHARD_ERR_BUFFER_TOO_SMALL);
    // SAFETY: last_error NUL-terminates.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn create(json: &str) -> *mut ShardClient {
    let c = CString::new(json).expect("no NUL in test JSON");
    // SAFETY: c is a valid C string.
    unsafe { shard_client_create(c.as_ptr()) }
}

fn config(dir: &std::path::Path) -> String {
    serde_json::json!({
        "addr": "127.0.0.1:1",
        "name": "tester",
        "identity": dir.join("identity.pem"),
        "cache_dir": dir.join("runtime_cache"),
    })
    .to_string()
}

#[test]
fn null_config_returns_null_with_a_message() {
    // SAFETY: null is allowed.
    let c = unsafe { shard_client_create(std::ptr::null()) };
    assert!(c.is_null());
    assert!(
        last_error().contains("config_json is null"),
        "{}",
        last_error()
    );
}

#[test]
fn bad_json_and_bad_fields_are_rejected() {
    for (json, needle) in [
        ("{not json", "config JSON"),
        (r#"{"addr":"nowhere","name":"a"}"#, "addr"),
        (r#"{"addr":"127.0.0.1:1","name":""}"#, "name"),
        (
            r#"{"addr":"127.0.0.1:1","name":"a","server_key":"zz"}"#,
            "server_key",
        ),
        (r#"{"addr":"127.0.0.1:1","name":"a","extra":1}"#, "extra"),
        (
            r#"{"addr":"127.0.0.1:1","name":"a","content":"maybe"}"#,
            "content",
        ),
        (
            r#"{"addr":"127.0.0.1:1","name":"a","server_quota_mb":0}"#,
            "server_quota_mb",
        ),
        (
            r#"{"addr":"127.0.0.1:1","name":"a","cache_cap_mb":18446744073709551615}"#,
            "cache_cap_mb",
        ),
        (
            r#"{"addr":"127.0.0.1:1","name":"a","mirror_concurrency":0}"#,
            "mirror concurrency 0 is outside 1..=32",
        ),
        (
            r#"{"addr":"127.0.0.1:1","name":"a","mirror_read_timeout_secs":301}"#,
            "mirror read timeout (s) 301 is outside 1..=300",
        ),
    ] {
        assert!(create(json).is_null(), "{json} must be rejected");
        assert!(last_error().contains(needle), "{json}: {}", last_error());
    }
}

/// A `"mirror_ca"` that is no certificate is refused when the client is
/// created, naming the file, not found out at the first HTTPS mirror.
#[test]
fn a_mirror_ca_without_a_certificate_is_refused_at_create() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let json =
        serde_json::json!({"addr": "127.0.0.1:1", "name": "a", "mirror_ca": junk}).to_string();
    assert!(create(&json).is_null(), "a junk mirror_ca was accepted");
    let err = last_error();
    assert!(
        err.contains("mirror_ca") && err.contains("junk.pem") && err.contains("no PEM certificate"),
        "{err}"
    );
}

#[test]
fn mirror_tuning_in_range_is_accepted() {
    let c = create(
        r#"{"addr":"127.0.0.1:1","name":"a","mirror_connect_timeout_secs":2,"mirror_read_timeout_secs":30,"mirror_min_kib_per_sec":8,"mirror_concurrency":1}"#,
    );
    assert!(!c.is_null(), "{}", last_error());
    // SAFETY: a handle from shard_client_create, destroyed once.
    unsafe { shard_client_destroy(c) };
}

#[test]
fn invalid_utf8_is_an_error() {
    let bad = [0xffu8, 0xfe, b'{', 0];
    // SAFETY: NUL-terminated.
    let c = unsafe { shard_client_create(bad.as_ptr().cast()) };
    assert!(c.is_null());
    assert!(last_error().contains("UTF-8"));

    let dir = tempfile::tempdir().expect("temp dir");
    let c = create(&config(dir.path()));
    assert!(!c.is_null(), "{}", last_error());
    let name = c"hexbar";
    // SAFETY: both strings are NUL-terminated.
    let rc = unsafe { shard_client_register_rpc(c, name.as_ptr(), bad.as_ptr().cast()) };
    assert_eq!(rc, SHARD_ERR_INVALID_UTF8);
    // SAFETY: as above.
    let rc = unsafe { shard_client_send_chat(c, bad.as_ptr().cast()) };
    assert_eq!(rc, SHARD_ERR_INVALID_UTF8);
    // SAFETY: valid handle.
    assert_eq!(unsafe { shard_client_destroy(c) }, SHARD_OK);
}

#[test]
fn null_arguments_and_calls_before_connect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let c = create(&config(dir.path()));
    assert!(!c.is_null(), "{}", last_error());
    let mut len = 0usize;
    // SAFETY: null buffer is allowed and reported.
    let rc = unsafe { shard_client_poll_event(c, std::ptr::null_mut(), 64, &mut len) };
    assert_eq!(rc, SHARD_ERR_NULL_POINTER);
    // SAFETY: nulls are reported.
    unsafe {
        assert_eq!(
            shard_client_register_rpc(c, std::ptr::null(), c"x".as_ptr()),
            SHARD_ERR_NULL_POINTER
        );
        assert_eq!(
            shard_client_register_rpc(c, c"".as_ptr(), c"x".as_ptr()),
            SHARD_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            shard_client_register_rpc(c, c"p".as_ptr(), c"Rpc".as_ptr()),
            SHARD_OK
        );
        assert_eq!(
            shard_client_send_chat(c, std::ptr::null()),
            SHARD_ERR_NULL_POINTER
        );
        assert_eq!(
            shard_client_send_chat(c, c"hi".as_ptr()),
            SHARD_ERR_NOT_CONNECTED
        );
        assert_eq!(
            shard_client_send_interact(c, 1, c"use_door".as_ptr()),
            SHARD_ERR_NOT_CONNECTED
        );
        assert_eq!(
            shard_client_send_position(c, f32::NAN, 0.0, 0.0, 0.0),
            SHARD_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            shard_client_send_position(c, 1.0, 2.0, 3.0, 0.0),
            SHARD_ERR_NOT_CONNECTED
        );
        assert_eq!(
            shard_client_answer_offer(c, SHARD_OFFER_ACCEPT),
            SHARD_ERR_NOT_CONNECTED
        );
        assert_eq!(shard_client_answer_offer(c, -1), SHARD_ERR_INVALID_ARGUMENT);
        assert_eq!(
            shard_client_last_error(c, std::ptr::null_mut(), 10),
            SHARD_ERR_NULL_POINTER
        );
        let mut buf = [0 as c_char; 64];
        assert_eq!(
            shard_client_poll_event(c, buf.as_mut_ptr(), buf.len(), &mut len),
            SHARD_OK
        );
        assert_eq!(len, 0);
        assert_eq!(shard_client_destroy(c), SHARD_OK);
    }
}

#[test]
fn short_buffer_keeps_the_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The identity path lies under a regular file, so connecting fails at
    // once and queues an "error" event without any network.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let json = serde_json::json!({
        "addr": "127.0.0.1:1",
        "name": "tester",
        "identity": blocker.join("identity.pem"),
        "cache_dir": dir.path().join("runtime_cache"),
    })
    .to_string();
    let c = create(&json);
    assert!(!c.is_null(), "{}", last_error());
    // SAFETY: valid handle and buffers throughout.
    unsafe {
        assert_eq!(shard_client_connect(c), SHARD_OK);
        assert_eq!(shard_client_connect(c), SHARD_ERR_ALREADY_CONNECTED);
        let mut small = [0 as c_char; 4];
        let mut need = 0usize;
        let deadline = Instant::now() + Duration::from_secs(10);
        let rc = loop {
            let rc = shard_client_poll_event(c, small.as_mut_ptr(), small.len(), &mut need);
            if rc != SHARD_OK || Instant::now() > deadline {
                break rc;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(rc, SHARD_ERR_BUFFER_TOO_SMALL);
        assert!(need > small.len());
        // Asking again with a short buffer still reports the same event.
        let mut need2 = 0usize;
        assert_eq!(
            shard_client_poll_event(c, small.as_mut_ptr(), small.len(), &mut need2),
            SHARD_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(need, need2);
        let mut big = vec![0 as c_char; need];
        let mut got = 0usize;
        assert_eq!(
            shard_client_poll_event(c, big.as_mut_ptr(), big.len(), &mut got),
            SHARD_EVENT
        );
        assert_eq!(got, need);
        let text = CStr::from_ptr(big.as_ptr()).to_string_lossy().into_owned();
        assert_eq!(text.len() + 1, need);
        let v: serde_json::Value = serde_json::from_str(&text).expect("event is JSON");
        assert_eq!(v["event"], "error", "{text}");
        // Then the session ends; a new connect is allowed.
        assert_eq!(
            shard_client_poll_event(c, big.as_mut_ptr(), big.len(), &mut got),
            SHARD_EVENT
        );
        assert!(
            CStr::from_ptr(big.as_ptr())
                .to_string_lossy()
                .contains("disconnected")
        );
        assert_eq!(shard_client_destroy(c), SHARD_OK);
    }
}

#[test]
fn use_after_destroy_and_double_destroy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let c = create(&config(dir.path()));
    assert!(!c.is_null(), "{}", last_error());
    // SAFETY: the handle is never dereferenced, only looked up.
    unsafe {
        assert_eq!(shard_client_destroy(c), SHARD_OK);
        assert_eq!(shard_client_destroy(c), SHARD_ERR_INVALID_HANDLE);
        assert!(last_error().contains("invalid handle"));
        let mut buf = [0 as c_char; 64];
        let mut len = 0usize;
        assert_eq!(
            shard_client_poll_event(c, buf.as_mut_ptr(), buf.len(), &mut len),
            SHARD_ERR_INVALID_HANDLE
        );
        assert_eq!(shard_client_connect(c), SHARD_ERR_INVALID_HANDLE);
        assert_eq!(
            shard_client_send_chat(c, c"hi".as_ptr()),
            SHARD_ERR_INVALID_HANDLE
        );
        assert_eq!(
            shard_client_register_rpc(c, c"p".as_ptr(), c"n".as_ptr()),
            SHARD_ERR_INVALID_HANDLE
        );
        assert_eq!(
            shard_client_send_position(c, 0.0, 0.0, 0.0, 0.0),
            SHARD_ERR_INVALID_HANDLE
        );
        assert_eq!(
            shard_client_destroy(std::ptr::null_mut()),
            SHARD_ERR_INVALID_HANDLE
        );
        assert_eq!(
            shard_client_connect(std::ptr::null_mut()),
            SHARD_ERR_INVALID_HANDLE
        );
    }
}

#[test]
fn last_error_truncates_to_the_buffer() {
    assert!(create("{not json").is_null());
    let mut buf = [0x55 as c_char; 8];
    // SAFETY: buf is valid for its length.
    let rc = unsafe { shard_client_last_error(std::ptr::null_mut(), buf.as_mut_ptr(), buf.len()) };
    assert_eq!(rc, SHARD_ERR_BUFFER_TOO_SMALL);
    // SAFETY: NUL-terminated by the call.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
    assert_eq!(s.to_bytes().len(), 7);
    // SAFETY: a zero length is reported, nothing written.
    let rc = unsafe { shard_client_last_error(std::ptr::null_mut(), buf.as_mut_ptr(), 0) };
    assert_eq!(rc, SHARD_ERR_BUFFER_TOO_SMALL);
}

#[test]
fn json_natives_read_by_pointer_and_build_objects() {
    let cs = |s: &str| CString::new(s).expect("no NUL");
    let json = cs(
        r#"{ "question" : "Best \"bar\"?", "options": ["Afterlife", "Lizzie's"], "counts": [2, 0], "open": true }"#,
    );
    let mut buf = [0 as c_char; 64];
    let mut need = 0usize;
    // SAFETY: all pointers are valid for the call; buf for its length.
    let rc = unsafe {
        shard_client_json_get_string(
            json.as_ptr(),
            cs("/options/1").as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut need,
        )
    };
    assert_eq!(rc, SHARD_OK);
    // SAFETY: NUL-terminated by the call.
    let got = unsafe { CStr::from_ptr(buf.as_ptr()) };
    assert_eq!(got.to_str().unwrap(), "Lizzie's");
    assert_eq!(need, "Lizzie's".len() + 1);
    let mut n = 0.0f64;
    // SAFETY: valid pointers.
    let got =
        unsafe { shard_client_json_get_number(json.as_ptr(), cs("/counts/0").as_ptr(), &mut n) };
    assert_eq!(got, SHARD_OK);
    assert_eq!(n, 2.0);
    let mut b = 0i32;
    // SAFETY: valid pointers.
    let got = unsafe { shard_client_json_get_bool(json.as_ptr(), cs("/open").as_ptr(), &mut b) };
    assert_eq!(got, SHARD_OK);
    assert_eq!(b, 1);
    // SAFETY: valid pointers.
    let got = unsafe { shard_client_json_get_size(json.as_ptr(), cs("/options").as_ptr()) };
    assert_eq!(got, 2);
    // A missing key and a wrong kind are errors with a message, not crashes.
    // SAFETY: valid pointers.
    let rc =
        unsafe { shard_client_json_get_number(json.as_ptr(), cs("/question").as_ptr(), &mut n) };
    assert_eq!(rc, SHARD_ERR_JSON);
    assert!(
        last_error().contains("no number at `/question`"),
        "{}",
        last_error()
    );
    // SAFETY: null out pointer is refused.
    let rc = unsafe {
        shard_client_json_get_bool(json.as_ptr(), cs("/open").as_ptr(), std::ptr::null_mut())
    };
    assert_eq!(rc, SHARD_ERR_NULL_POINTER);

    // Build {"option":1,"why":"x"} in two steps, as a script would.
    let mut obj = [0 as c_char; 64];
    // SAFETY: valid pointers; obj for its length.
    let rc = unsafe {
        shard_client_json_set_number(
            cs("").as_ptr(),
            cs("option").as_ptr(),
            1.0,
            obj.as_mut_ptr(),
            obj.len(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, SHARD_OK);
    // SAFETY: NUL-terminated by the call.
    let first = unsafe { CStr::from_ptr(obj.as_ptr()) }.to_owned();
    let mut out = [0 as c_char; 64];
    // SAFETY: valid pointers.
    let rc = unsafe {
        shard_client_json_set_string(
            first.as_ptr(),
            cs("why").as_ptr(),
            cs("x").as_ptr(),
            out.as_mut_ptr(),
            out.len(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, SHARD_OK);
    // SAFETY: NUL-terminated by the call.
    let got = unsafe { CStr::from_ptr(out.as_ptr()) };
    assert_eq!(got.to_str().unwrap(), r#"{"option":1,"why":"x"}"#);
    // Too small a buffer says how much is needed.
    let mut tiny = [0 as c_char; 4];
    // SAFETY: valid pointers.
    let rc = unsafe {
        shard_client_json_set_bool(
            first.as_ptr(),
            cs("ok").as_ptr(),
            1,
            tiny.as_mut_ptr(),
            tiny.len(),
            &mut need,
        )
    };
    assert_eq!(rc, SHARD_ERR_BUFFER_TOO_SMALL);
    assert_eq!(need, r#"{"ok":true,"option":1}"#.len() + 1);
    // Non-finite numbers are refused.
    // SAFETY: valid pointers.
    let rc = unsafe {
        shard_client_json_set_number(
            cs("").as_ptr(),
            cs("x").as_ptr(),
            f64::NAN,
            out.as_mut_ptr(),
            out.len(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, SHARD_ERR_INVALID_ARGUMENT);
}
