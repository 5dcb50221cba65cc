//! Every message survives encode → frame → decode unchanged (property tests).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use proptest::prelude::*;
use shard_protocol::frame::{decode_datagram, encode_datagram};
use shard_protocol::limits::*;
use shard_protocol::*;

fn vec3() -> impl Strategy<Value = Vec3> {
    (-1e6f32..1e6, -1e6f32..1e6, -1e4f32..1e4).prop_map(|(x, y, z)| Vec3::new(x, y, z))
}

fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..=max_chars.min(64))
        .prop_map(|v| v.into_iter().collect())
}

fn ascii(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9][a-zA-Z0-9_ .-]{{0,{}}}", max - 1)).unwrap()
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    prop_oneof![
        (
            any::<u16>(),
            ascii(MAX_SERVER_NAME),
            any::<u32>(),
            "[0-9a-f]{64}",
            any::<bool>(),
            any::<u16>(),
            any::<bool>()
        )
            .prop_map(
                |(
                    protocol_version,
                    server_name,
                    peer_id,
                    player_id,
                    admin,
                    tick_hz,
                    content_required,
                )| {
                    ServerMsg::Welcome {
                        protocol_version,
                        server_name,
                        peer_id,
                        player_id,
                        admin,
                        tick_hz,
                        content_required,
                        asset_mirrors: vec![format!("https://cdn.example/{peer_id}/")],
                    }
                }
            ),
        (
            any::<u16>(),
            ascii(MAX_PLUGIN_NAME),
            ascii(MAX_PLUGIN_VERSION),
            any::<[u8; 32]>(),
            (0..=MAX_BUNDLE_PACKED, 0..=MAX_BUNDLE_UNPACKED, any::<u8>()),
            proptest::collection::vec(any::<u32>(), 0..=MAX_RPC_WHITELIST)
        )
            .prop_map(
                |(plugin_id, name, version, bundle_sha256, sizes, rpc_whitelist)| {
                    let (bundle_len, unpacked_len, scripts) = sizes;
                    ServerMsg::PluginAnnounce {
                        plugin_id,
                        name,
                        version,
                        bundle_sha256,
                        bundle_len,
                        unpacked_len,
                        client_scripts: u16::from(scripts),
                        rpc_whitelist,
                    }
                }
            ),
        Just(ServerMsg::AnnouncementsDone),
        any::<u16>().prop_map(|plugin_id| ServerMsg::PluginRemoved { plugin_id }),
        (any::<u16>(), any::<u32>(), text(200)).prop_map(|(plugin_id, fn_hash, json)| {
            ServerMsg::PluginRpc {
                plugin_id,
                fn_hash,
                json,
            }
        }),
        (
            any::<u16>(),
            any::<[u8; 32]>(),
            0u32..160,
            proptest::collection::vec(any::<u8>(), 0..=CHUNK_SIZE)
        )
            .prop_map(
                |(plugin_id, sha256, chunk_id, data)| ServerMsg::AssetBundle {
                    plugin_id,
                    sha256,
                    len: MAX_BUNDLE_PACKED,
                    chunk_id,
                    data
                }
            ),
        (
            proptest::option::of(any::<u32>()),
            ascii(MAX_PLAYER_NAME),
            text(MAX_CHAT_CHARS)
        )
            .prop_map(|(from, name, text)| ServerMsg::Chat { from, name, text }),
        (vec3(), -360f32..360.0, any::<u32>()).prop_map(|(pos, rot, phase)| ServerMsg::Teleport {
            pos,
            rot,
            phase
        }),
        any::<u32>().prop_map(|id| ServerMsg::Weather { id }),
        (
            any::<u32>(),
            any::<bool>(),
            ascii(MAX_TEMPLATE),
            vec3(),
            -360f32..360.0,
            any::<u32>()
        )
            .prop_map(|(entity_id, npc, template, pos, rot, phase)| {
                ServerMsg::EntitySpawned {
                    entity_id,
                    kind: if npc {
                        EntityKind::Npc
                    } else {
                        EntityKind::Vehicle
                    },
                    template,
                    pos,
                    rot,
                    phase,
                }
            }),
        any::<u32>().prop_map(|entity_id| ServerMsg::EntityDespawned { entity_id }),
        (any::<u32>(), ascii(MAX_PLAYER_NAME))
            .prop_map(|(peer_id, name)| ServerMsg::PeerJoined { peer_id, name }),
        (any::<u32>(), ascii(MAX_PLAYER_NAME))
            .prop_map(|(peer_id, name)| ServerMsg::PeerLeft { peer_id, name }),
        (any::<u32>(), vec3(), -360f32..360.0).prop_map(|(peer_id, pos, rot)| {
            ServerMsg::PeerMoved {
                moves: vec![PeerMove { peer_id, pos, rot }],
            }
        }),
        ascii(MAX_REASON).prop_map(|reason| ServerMsg::Kick { reason }),
    ]
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        (ascii(MAX_PLAYER_NAME), any::<u16>()).prop_map(|(name, protocol_version)| {
            ClientMsg::Hello {
                name,
                protocol_version,
            }
        }),
        text(MAX_CHAT_CHARS).prop_map(|text| ClientMsg::Chat { text }),
        proptest::collection::vec(
            (any::<u16>(), any::<[u8; 32]>(), 0..=MAX_BUNDLE_PACKED),
            0..=MAX_BUNDLE_REQUESTS
        )
        .prop_map(|v| ClientMsg::NeedBundles {
            requests: v
                .into_iter()
                .map(|(plugin_id, sha256, offset)| BundleRequest {
                    plugin_id,
                    sha256,
                    offset
                })
                .collect()
        }),
        (
            any::<u16>(),
            any::<[u8; 32]>(),
            any::<bool>(),
            proptest::option::of(ascii(MAX_REASON))
        )
            .prop_map(
                |(plugin_id, sha256, ok, error)| ClientMsg::BundleInstalled {
                    plugin_id,
                    sha256,
                    ok,
                    error
                }
            ),
        (any::<u32>(), ascii(MAX_ACTION))
            .prop_map(|(entity_id, action)| ClientMsg::Interact { entity_id, action }),
        (any::<u16>(), any::<u32>(), ascii(MAX_RPC_JSON)).prop_map(|(plugin_id, fn_hash, json)| {
            ClientMsg::ClientRpc {
                plugin_id,
                fn_hash,
                json,
            }
        }),
        (vec3(), -360f32..360.0).prop_map(|(pos, rot)| ClientMsg::PeerState { pos, rot }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn server_messages_round_trip_through_a_frame(msg in server_msg()) {
        let frame = encode_frame(&msg).unwrap();
        let mut dec = FrameDecoder::new();
        dec.push(&frame);
        let back: ServerMsg = dec.next().unwrap().unwrap();
        prop_assert_eq!(back, msg);
        prop_assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn client_messages_round_trip_through_a_frame(msg in client_msg()) {
        let frame = encode_frame(&msg).unwrap();
        let back: ClientMsg = decode_frame(&frame[4..]).unwrap();
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn frames_split_at_any_point_reassemble(msg in client_msg(), cut in 0usize..4096) {
        let frame = encode_frame(&msg).unwrap();
        let cut = cut % (frame.len() + 1);
        let mut dec = FrameDecoder::new();
        dec.push(&frame[..cut]);
        if cut < frame.len() {
            prop_assert!(dec.next::<ClientMsg>().unwrap().is_none());
        }
        dec.push(&frame[cut..]);
        let got = dec.next::<ClientMsg>().unwrap();
        prop_assert_eq!(got, Some(msg));
    }

    /// A hostile server's bundle-stream body: the in-place chunk decoder
    /// never panics, and says "a chunk" exactly when the whole-message
    /// decoder finds a valid `AssetBundle`, with the same fields and data.
    #[test]
    fn a_chunk_read_in_place_agrees_with_the_whole_message_decoder(
        msg in server_msg(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in proptest::option::of(any::<usize>()),
        splits in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let mut body = encode_frame(&msg).unwrap()[4..].to_vec();
        for (at, x) in flips {
            if !body.is_empty() {
                let i = at % body.len();
                body[i] ^= x;
            }
        }
        if let Some(c) = cut {
            body.truncate(c % (body.len() + 1));
        }
        let whole = decode_frame::<ServerMsg>(&body);
        // The same body in pieces, as it may come off a QUIC stream, reads the same.
        let mut at: Vec<usize> = splits.iter().map(|s| s % (body.len() + 1)).collect();
        at.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for &to in at.iter().chain(std::iter::once(&body.len())) {
            pieces.push(bytes::Bytes::copy_from_slice(&body[from..to]));
            from = to;
        }
        let in_pieces = frame::decode_asset_chunk_parts(pieces);
        match (&in_pieces, &frame::decode_asset_chunk(body.clone())) {
            (Ok(Some(a)), Ok(Some(b))) => {
                prop_assert_eq!((a.plugin_id, a.sha256, a.len, a.chunk_id), (b.plugin_id, b.sha256, b.len, b.chunk_id));
                prop_assert_eq!(a.data().concat(), b.data().concat());
            }
            (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "in pieces: {:?}; whole: {:?}", a, b),
        }
        match frame::decode_asset_chunk(body.clone()) {
            Ok(Some(c)) => {
                let Ok(ServerMsg::AssetBundle { plugin_id, sha256, len, chunk_id, data }) = whole else {
                    return Err(TestCaseError::fail(format!("in place: a chunk; whole: {whole:?}")));
                };
                prop_assert_eq!((c.plugin_id, c.sha256, c.len, c.chunk_id), (plugin_id, sha256, len, chunk_id));
                prop_assert_eq!(c.data().concat(), data.clone());
            }
            Ok(None) => prop_assert!(
                matches!(whole, Ok(ref m) if !matches!(m, ServerMsg::AssetBundle { .. })),
                "in place: not a chunk; whole: {:?}", whole
            ),
            Err(_) => prop_assert!(
                !matches!(whole, Ok(ServerMsg::AssetBundle { .. })),
                "in place refused a valid chunk: {:?}", whole
            ),
        }
    }

    #[test]
    fn position_datagrams_round_trip(pos in vec3(), rot in -360f32..360.0) {
        let msg = ClientMsg::PeerState { pos, rot };
        let d = encode_datagram(&msg).unwrap();
        prop_assert!(d.len() <= MAX_DATAGRAM);
        prop_assert_eq!(decode_datagram::<ClientMsg>(&d).unwrap(), msg);
    }
}

#[test]
fn a_full_position_batch_fits_one_datagram() {
    let m = PeerMove {
        peer_id: u32::MAX,
        pos: Vec3::new(-1e6, 1e6, 3.5),
        rot: 359.0,
    };
    let msg = ServerMsg::PeerMoved {
        moves: vec![m; MAX_MOVES_PER_DATAGRAM],
    };
    let d = encode_datagram(&msg).unwrap();
    assert!(d.len() <= MAX_DATAGRAM, "{} bytes", d.len());
    let over = ServerMsg::PeerMoved {
        moves: vec![m; MAX_MOVES_PER_DATAGRAM + 1],
    };
    assert!(encode_datagram(&over).is_err());
}

#[tokio::test]
async fn async_frames_round_trip_and_clean_eof_is_none() {
    let msgs = vec![
        ClientMsg::Hello {
            name: "vee".into(),
            protocol_version: PROTOCOL_VERSION,
        },
        ClientMsg::Chat { text: "hi".into() },
    ];
    let mut wire = Vec::new();
    for m in &msgs {
        write_frame(&mut wire, m).await.unwrap();
    }
    let mut r = wire.as_slice();
    for m in &msgs {
        let got: ClientMsg = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!(&got, m);
    }
    assert!(read_frame::<ClientMsg, _>(&mut r).await.unwrap().is_none());
}

#[tokio::test]
async fn a_stream_cut_inside_a_frame_is_truncated() {
    let frame = encode_frame(&ClientMsg::Chat {
        text: "hello".into(),
    })
    .unwrap();
    let mut r = &frame[..frame.len() - 2];
    let err = read_frame::<ClientMsg, _>(&mut r).await.unwrap_err();
    assert!(matches!(err, ProtocolError::Truncated { .. }), "{err}");
}
