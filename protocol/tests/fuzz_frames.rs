//! 100,000 random and mutated frames through the decoder: no panic, and every
//! failure is a typed error.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shard_protocol::limits::MAX_FRAME;
use shard_protocol::*;

fn seeds() -> Vec<Vec<u8>> {
    let c = [
        ClientMsg::Hello {
            name: "vee".into(),
            protocol_version: PROTOCOL_VERSION,
        },
        ClientMsg::Chat {
            text: "/help".into(),
        },
        ClientMsg::NeedBundles {
            requests: vec![BundleRequest {
                plugin_id: 3,
                sha256: [9; 32],
                offset: 77,
            }],
        },
        ClientMsg::BundleInstalled {
            plugin_id: 1,
            sha256: [1; 32],
            ok: false,
            error: Some("bad".into()),
        },
        ClientMsg::Interact {
            entity_id: 4,
            action: "use_door".into(),
        },
        ClientMsg::PeerState {
            pos: Vec3::new(1.0, 2.0, 3.0),
            rot: 90.0,
        },
    ];
    let s = [
        ServerMsg::PluginAnnounce {
            plugin_id: 1,
            name: "popup_zone".into(),
            version: "1.0".into(),
            bundle_sha256: [3; 32],
            bundle_len: 100,
            unpacked_len: 0,
            client_scripts: 0,
            rpc_whitelist: vec![fn_hash("A"), fn_hash("B")],
        },
        ServerMsg::AssetBundle {
            plugin_id: 1,
            sha256: [3; 32],
            len: 100,
            chunk_id: 0,
            data: vec![5; 100],
        },
        ServerMsg::EntitySpawned {
            entity_id: 1,
            kind: EntityKind::Vehicle,
            template: "veh_commandcenter".into(),
            pos: Vec3::default(),
            rot: 0.0,
            phase: 0,
        },
        ServerMsg::Kick {
            reason: "bye".into(),
        },
    ];
    c.iter()
        .map(|m| encode_frame(m).unwrap())
        .chain(s.iter().map(|m| encode_frame(m).unwrap()))
        .collect()
}

fn mutate(rng: &mut StdRng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.gen_range(1..6) {
        match rng.gen_range(0..6) {
            0 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] = rng.r#gen();
            }
            2 => {
                let i = rng.gen_range(0..=v.len());
                v.insert(i, rng.r#gen());
            }
            3 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v.remove(i);
            }
            4 => v.truncate(rng.gen_range(0..=v.len())),
            _ => {
                // Rewrite the length prefix to something plausible or hostile.
                if v.len() >= 4 {
                    let len: u32 = if rng.gen_bool(0.5) {
                        (v.len() - 4) as u32
                    } else {
                        rng.r#gen()
                    };
                    v[..4].copy_from_slice(&len.to_be_bytes());
                }
            }
        }
    }
    v
}

#[test]
fn decoder_survives_100k_random_and_mutated_frames() {
    let mut rng = StdRng::seed_from_u64(0x5ead_0001);
    let seeds = seeds();
    let (mut ok, mut err) = (0u32, 0u32);
    for i in 0..100_000u32 {
        let input = if i % 4 == 0 {
            let n = rng.gen_range(0..256);
            (0..n).map(|_| rng.r#gen()).collect::<Vec<u8>>()
        } else {
            let base = &seeds[rng.gen_range(0..seeds.len())];
            mutate(&mut rng, base)
        };
        let mut d = FrameDecoder::new();
        d.push(&input);
        // Decode as both directions; whichever, it must not panic.
        let r1 = d.next::<ClientMsg>();
        let mut d2 = FrameDecoder::new();
        d2.push(&input);
        let r2 = d2.next::<ServerMsg>();
        for r in [r1.map(|m| m.is_some()), r2.map(|m| m.is_some())] {
            match r {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    err += 1;
                }
            }
        }
        assert!(d.buffered() <= input.len() && input.len() <= MAX_FRAME + 4 + 256);
        if input.len() >= 4 {
            let _ = decode_frame::<ClientMsg>(&input[4..]);
            let _ = shard_protocol::frame::decode_datagram::<ServerMsg>(&input);
        }
    }
    assert!(
        ok > 0 && err > 0,
        "mutation should produce both outcomes: ok={ok} err={err}"
    );
}
