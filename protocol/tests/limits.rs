//! One test per cap: exactly at the limit is accepted, one over is refused
//! with the error that names the field.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]

use shard_protocol::frame::{PREFIX_LEN, decode_datagram};
use shard_protocol::limits::*;
use shard_protocol::*;

/// Encodes without validation, as a hostile peer would.
fn raw_frame<M: serde::Serialize>(m: &M) -> Vec<u8> {
    let body = postcard::to_stdvec(m).unwrap();
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&body);
    f
}

fn decode_client(frame: &[u8]) -> Result<ClientMsg, ProtocolError> {
    let mut d = FrameDecoder::new();
    d.push(frame);
    d.next::<ClientMsg>().map(|m| m.expect("complete frame"))
}

fn decode_server(frame: &[u8]) -> Result<ServerMsg, ProtocolError> {
    let mut d = FrameDecoder::new();
    d.push(frame);
    d.next::<ServerMsg>().map(|m| m.expect("complete frame"))
}

fn assert_too_long(err: ProtocolError, field: &str) {
    match err {
        ProtocolError::FieldTooLong { field: f, .. } => assert_eq!(f, field),
        other => panic!("expected FieldTooLong({field}), got {other}"),
    }
}

#[test]
fn frame_length_prefix_one_over_is_refused_before_reading_the_body() {
    let mut d = FrameDecoder::new();
    d.push(&((MAX_FRAME + 1) as u32).to_be_bytes());
    let err = d.next::<ClientMsg>().unwrap_err();
    assert!(
        matches!(err, ProtocolError::FrameTooLarge { len, max } if len == MAX_FRAME + 1 && max == MAX_FRAME)
    );
    assert!(err.to_string().contains("65537"), "{err}");
}

#[test]
fn frame_at_the_limit_is_read_as_a_body() {
    let mut d = FrameDecoder::new();
    d.push(&(MAX_FRAME as u32).to_be_bytes());
    d.push(&vec![0u8; MAX_FRAME]);
    // The length is fine; the content is not a message.
    assert!(matches!(
        d.next::<ClientMsg>(),
        Err(ProtocolError::Malformed { .. }) | Err(ProtocolError::TrailingBytes { .. })
    ));
    assert_eq!(PREFIX_LEN, 4);
}

#[test]
fn chat_of_512_chars_passes_and_513_is_refused() {
    let ok = ClientMsg::Chat {
        text: "é".repeat(MAX_CHAT_CHARS),
    };
    assert_eq!(decode_client(&raw_frame(&ok)).unwrap(), ok);
    let over = ClientMsg::Chat {
        text: "é".repeat(MAX_CHAT_CHARS + 1),
    };
    assert_too_long(decode_client(&raw_frame(&over)).unwrap_err(), "Chat.text");
    assert!(encode_frame(&over).is_err(), "the sender refuses too");
}

#[test]
fn server_chat_over_the_cap_is_refused() {
    let over = ServerMsg::Chat {
        from: None,
        name: "server".into(),
        text: "x".repeat(MAX_CHAT_CHARS + 1),
    };
    assert_too_long(decode_server(&raw_frame(&over)).unwrap_err(), "Chat.text");
}

#[test]
fn rpc_json_of_16_kib_passes_and_one_byte_more_is_refused() {
    let ok = ServerMsg::PluginRpc {
        plugin_id: 1,
        fn_hash: 7,
        json: "a".repeat(MAX_RPC_JSON),
    };
    assert_eq!(decode_server(&raw_frame(&ok)).unwrap(), ok);
    let over = ServerMsg::PluginRpc {
        plugin_id: 1,
        fn_hash: 7,
        json: "a".repeat(MAX_RPC_JSON + 1),
    };
    assert_too_long(
        decode_server(&raw_frame(&over)).unwrap_err(),
        "PluginRpc.json",
    );
}

#[test]
fn player_name_cap_and_content() {
    let ok = ClientMsg::Hello {
        name: "n".repeat(MAX_PLAYER_NAME),
        protocol_version: 1,
    };
    assert!(decode_client(&raw_frame(&ok)).is_ok());
    let over = ClientMsg::Hello {
        name: "n".repeat(MAX_PLAYER_NAME + 1),
        protocol_version: 1,
    };
    assert_too_long(decode_client(&raw_frame(&over)).unwrap_err(), "Hello.name");
    for bad in ["", "   ", "a\nb", "tab\there"] {
        let m = ClientMsg::Hello {
            name: bad.into(),
            protocol_version: 1,
        };
        assert!(
            matches!(
                decode_client(&raw_frame(&m)),
                Err(ProtocolError::InvalidField { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn plugin_name_and_version_caps() {
    let mk = |name: String, version: String| ServerMsg::PluginAnnounce {
        plugin_id: 1,
        name,
        version,
        bundle_sha256: [0; 32],
        bundle_len: 0,
        unpacked_len: 0,
        client_scripts: 0,
        rpc_whitelist: vec![],
    };
    assert!(decode_server(&raw_frame(&mk("p".repeat(MAX_PLUGIN_NAME), "1".into()))).is_ok());
    assert_too_long(
        decode_server(&raw_frame(&mk("p".repeat(MAX_PLUGIN_NAME + 1), "1".into()))).unwrap_err(),
        "PluginAnnounce.name",
    );
    assert_too_long(
        decode_server(&raw_frame(&mk(
            "p".into(),
            "1".repeat(MAX_PLUGIN_VERSION + 1),
        )))
        .unwrap_err(),
        "PluginAnnounce.version",
    );
}

#[test]
fn rpc_whitelist_cap() {
    let mk = |n: usize| ServerMsg::PluginAnnounce {
        plugin_id: 1,
        name: "p".into(),
        version: "1".into(),
        bundle_sha256: [0; 32],
        bundle_len: 0,
        unpacked_len: 0,
        client_scripts: 0,
        rpc_whitelist: vec![1; n],
    };
    assert!(decode_server(&raw_frame(&mk(MAX_RPC_WHITELIST))).is_ok());
    assert_too_long(
        decode_server(&raw_frame(&mk(MAX_RPC_WHITELIST + 1))).unwrap_err(),
        "PluginAnnounce.rpc_whitelist",
    );
}

#[test]
fn announced_bundle_length_cap() {
    let mk = |bundle_len| ServerMsg::PluginAnnounce {
        plugin_id: 1,
        name: "p".into(),
        version: "1".into(),
        bundle_sha256: [0; 32],
        bundle_len,
        unpacked_len: 0,
        client_scripts: 0,
        rpc_whitelist: vec![],
    };
    assert!(decode_server(&raw_frame(&mk(MAX_BUNDLE_PACKED))).is_ok());
    assert_too_long(
        decode_server(&raw_frame(&mk(MAX_BUNDLE_PACKED + 1))).unwrap_err(),
        "PluginAnnounce.bundle_len",
    );
}

#[test]
fn chunk_of_32_kib_passes_and_one_byte_more_is_refused() {
    let mk = |n: usize| ServerMsg::AssetBundle {
        plugin_id: 1,
        sha256: [1; 32],
        len: MAX_BUNDLE_PACKED,
        chunk_id: 0,
        data: vec![7; n],
    };
    assert!(decode_server(&raw_frame(&mk(CHUNK_SIZE))).is_ok());
    assert_too_long(
        decode_server(&raw_frame(&mk(CHUNK_SIZE + 1))).unwrap_err(),
        "AssetBundle.data",
    );
}

#[test]
fn chunk_beyond_the_bundle_is_refused() {
    let m = ServerMsg::AssetBundle {
        plugin_id: 1,
        sha256: [1; 32],
        len: 10,
        chunk_id: 1,
        data: vec![1],
    };
    assert!(matches!(
        decode_server(&raw_frame(&m)),
        Err(ProtocolError::InvalidField {
            field: "AssetBundle.chunk_id",
            ..
        })
    ));
}

#[test]
fn template_action_reason_caps() {
    let spawn = |n: usize| ServerMsg::EntitySpawned {
        entity_id: 1,
        kind: EntityKind::Vehicle,
        template: "t".repeat(n),
        pos: Vec3::default(),
        rot: 0.0,
        phase: 0,
    };
    assert!(decode_server(&raw_frame(&spawn(MAX_TEMPLATE))).is_ok());
    assert_too_long(
        decode_server(&raw_frame(&spawn(MAX_TEMPLATE + 1))).unwrap_err(),
        "EntitySpawned.template",
    );

    let act = |n: usize| ClientMsg::Interact {
        entity_id: 1,
        action: "a".repeat(n),
    };
    assert!(decode_client(&raw_frame(&act(MAX_ACTION))).is_ok());
    assert_too_long(
        decode_client(&raw_frame(&act(MAX_ACTION + 1))).unwrap_err(),
        "Interact.action",
    );

    let kick = |n: usize| ServerMsg::Kick {
        reason: "r".repeat(n),
    };
    assert!(decode_server(&raw_frame(&kick(MAX_REASON))).is_ok());
    assert_too_long(
        decode_server(&raw_frame(&kick(MAX_REASON + 1))).unwrap_err(),
        "Kick.reason",
    );

    let inst = |n: usize| ClientMsg::BundleInstalled {
        plugin_id: 1,
        sha256: [0; 32],
        ok: false,
        error: Some("e".repeat(n)),
    };
    assert!(decode_client(&raw_frame(&inst(MAX_REASON))).is_ok());
    assert_too_long(
        decode_client(&raw_frame(&inst(MAX_REASON + 1))).unwrap_err(),
        "BundleInstalled.error",
    );
}

#[test]
fn bundle_request_count_cap() {
    let mk = |n: usize| ClientMsg::NeedBundles {
        requests: vec![
            BundleRequest {
                plugin_id: 1,
                sha256: [0; 32],
                offset: 0
            };
            n
        ],
    };
    assert!(decode_client(&raw_frame(&mk(MAX_BUNDLE_REQUESTS))).is_ok());
    assert_too_long(
        decode_client(&raw_frame(&mk(MAX_BUNDLE_REQUESTS + 1))).unwrap_err(),
        "NeedBundles.requests",
    );
}

#[test]
fn non_finite_coordinates_are_refused() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let m = ClientMsg::PeerState {
            pos: Vec3::new(bad, 0.0, 0.0),
            rot: 0.0,
        };
        assert!(matches!(
            decode_client(&raw_frame(&m)),
            Err(ProtocolError::InvalidField {
                field: "PeerState.pos",
                ..
            })
        ));
        let m = ClientMsg::PeerState {
            pos: Vec3::default(),
            rot: bad,
        };
        assert!(matches!(
            decode_client(&raw_frame(&m)),
            Err(ProtocolError::InvalidField {
                field: "PeerState.rot",
                ..
            })
        ));
    }
}

#[test]
fn datagram_cap() {
    let err = decode_datagram::<ClientMsg>(&vec![0u8; MAX_DATAGRAM + 1]).unwrap_err();
    assert!(matches!(err, ProtocolError::DatagramTooLarge { .. }));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut f = raw_frame(&ClientMsg::Chat { text: "hi".into() });
    f.push(0);
    let len = (f.len() - 4) as u32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(
        decode_client(&f),
        Err(ProtocolError::TrailingBytes { extra: 1, .. })
    ));
}

#[test]
fn welcome_server_name_and_player_id_caps() {
    let mk = |server_name: String, player_id: String| ServerMsg::Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_name,
        peer_id: 1,
        player_id,
        admin: false,
        tick_hz: 30,
        content_required: true,
        asset_mirrors: Vec::new(),
    };
    let ok = mk("s".repeat(MAX_SERVER_NAME), "f".repeat(MAX_FINGERPRINT));
    assert_eq!(decode_server(&raw_frame(&ok)).unwrap(), ok);
    assert_too_long(
        decode_server(&raw_frame(&mk("s".repeat(MAX_SERVER_NAME + 1), "f".into()))).unwrap_err(),
        "Welcome.server_name",
    );
    assert_too_long(
        decode_server(&raw_frame(&mk("s".into(), "f".repeat(MAX_FINGERPRINT + 1)))).unwrap_err(),
        "Welcome.player_id",
    );
}

#[test]
fn welcome_asset_mirror_caps() {
    let mk = |asset_mirrors: Vec<String>| ServerMsg::Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_name: "s".into(),
        peer_id: 1,
        player_id: "f".into(),
        admin: false,
        tick_hz: 30,
        content_required: true,
        asset_mirrors,
    };
    let long = format!("https://{}/", "m".repeat(MAX_MIRROR_URL - 9));
    let ok = mk(vec![long.clone(); MAX_ASSET_MIRRORS]);
    assert_eq!(decode_server(&raw_frame(&ok)).unwrap(), ok);
    assert_too_long(
        decode_server(&raw_frame(&mk(vec![long.clone(); MAX_ASSET_MIRRORS + 1]))).unwrap_err(),
        "Welcome.asset_mirrors",
    );
    assert_too_long(
        decode_server(&raw_frame(&mk(vec![format!("{long}x")]))).unwrap_err(),
        "Welcome.asset_mirrors",
    );
    let control = mk(vec!["https://a/\n".into()]);
    assert!(matches!(
        decode_server(&raw_frame(&control)),
        Err(ProtocolError::InvalidField {
            field: "Welcome.asset_mirrors",
            ..
        })
    ));
}

#[test]
fn announced_unpacked_size_cap() {
    let mk = |unpacked_len| ServerMsg::PluginAnnounce {
        plugin_id: 1,
        name: "p".into(),
        version: "1".into(),
        bundle_sha256: [0; 32],
        bundle_len: 0,
        unpacked_len,
        client_scripts: 1,
        rpc_whitelist: vec![],
    };
    assert!(decode_server(&raw_frame(&mk(MAX_BUNDLE_UNPACKED))).is_ok());
    assert_too_long(
        decode_server(&raw_frame(&mk(MAX_BUNDLE_UNPACKED + 1))).unwrap_err(),
        "PluginAnnounce.unpacked_len",
    );
}

#[test]
fn clip_utf8_cuts_at_a_character_boundary() {
    let mut s = "héllo".to_string();
    shard_protocol::clip_utf8(&mut s, 2);
    assert_eq!(s, "h");
    let mut t = "abc".to_string();
    shard_protocol::clip_utf8(&mut t, 10);
    assert_eq!(t, "abc");
}
