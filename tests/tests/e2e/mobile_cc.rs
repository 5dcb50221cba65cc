//! The second example plugin end to end: an admin parks the mobile command
//! centre, players walk in through its door and out again, and its bundle
//! and status RPC reach every client.

use std::path::Path;

use shard_client::ClientEvent;
use shard_e2e::{
    MOBILE_CC_ENT, MOBILE_CC_SECTOR, TestPlayer, TestServer, chat_contains, join_as,
    mobile_cc_sample_archive,
};
use shard_protocol::Vec3;

fn start(admins: &[shard_protocol::identity::Fingerprint]) -> TestServer {
    TestServer::start_with_example(admins, "mobile_cc")
}

fn vehicle_spawned(e: &ClientEvent) -> Option<u32> {
    match e {
        ClientEvent::EntitySpawned {
            entity_id,
            template,
            kind,
            ..
        } if template == "Vehicle.shard_mobile_cc_commandcenter" && *kind == "vehicle" => {
            Some(*entity_id)
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_centre_spawns_for_admins_and_its_door_leads_inside_and_out() {
    let admin = TestPlayer::new("boss");
    let srv = start(&[admin.fingerprint]);
    let expected = shard_cache::pack_plugin_dir(&srv.plugin_dir().join("mobile_cc")).unwrap();
    let mut boss = admin.join(srv.addr).await;
    let mut guest = join_as("guest", srv.addr).await;

    // Both clients install the bundle with the right hash.
    for c in [&mut boss, &mut guest] {
        let ev = c
            .expect(
                "mobile_cc installed",
                |e| matches!(e, ClientEvent::BundleInstalled { name, .. } if name == "mobile_cc"),
            )
            .await;
        assert!(
            matches!(&ev, ClientEvent::BundleInstalled { sha256, rpcs, .. }
            if *sha256 == expected.sha256_hex() && rpcs == &vec!["CcStatus".to_string()]),
            "{ev:?}"
        );
    }

    // A non-admin is refused.
    guest.session.say("/spawncc").await;
    guest
        .expect("refusal", |e| chat_contains(e, "for admins only"))
        .await;

    // The admin parks it beside them; the other player sees it.
    boss.session
        .send_position(Vec3::new(10.0, 20.0, 0.0), 0.0)
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    boss.session.say("/spawncc").await;
    let seen = guest
        .expect("vehicle seen by the guest", |e| {
            vehicle_spawned(e).is_some()
        })
        .await;
    let first = vehicle_spawned(&seen).unwrap();
    let ClientEvent::EntitySpawned { pos, .. } = &seen else {
        unreachable!()
    };
    assert!(
        (pos[0] - 14.0).abs() < 0.01 && (pos[1] - 20.0).abs() < 0.01,
        "parked beside the admin: {pos:?}"
    );

    // A second /spawncc moves it: the old one goes, exactly one new one comes.
    guest.forget();
    boss.session.say("/spawncc").await;
    guest
        .expect(
            "old one despawned",
            |e| matches!(e, ClientEvent::EntityDespawned { entity_id } if *entity_id == first),
        )
        .await;
    let again = guest
        .expect("new one spawned", |e| vehicle_spawned(e).is_some())
        .await;
    let vehicle = vehicle_spawned(&again).unwrap();
    let later = guest
        .collect_for(std::time::Duration::from_millis(300))
        .await;
    assert!(
        !later.iter().any(|e| vehicle_spawned(e).is_some()),
        "vehicles piled up: {later:?}"
    );

    // The guest uses the door: into the interior phase, with the status panel RPC.
    guest.forget();
    guest.session.interact(vehicle, "use_door").await;
    let tp = guest
        .expect("teleported inside", |e| {
            matches!(e, ClientEvent::Teleport { .. })
        })
        .await;
    let ClientEvent::Teleport { phase, .. } = tp else {
        unreachable!()
    };
    assert_eq!(phase, 1000 + vehicle);
    let rpc = guest
        .expect("status panel", |e| matches!(e, ClientEvent::Rpc { .. }))
        .await;
    assert!(
        matches!(&rpc, ClientEvent::Rpc { plugin, name, json, .. }
        if plugin == "mobile_cc" && name == "CcStatus" && json.contains("\"units\":1")),
        "{rpc:?}"
    );

    // And out again, beside the vehicle in phase 0.
    guest.forget();
    guest.session.interact(vehicle, "exit_interior").await;
    let tp = guest
        .expect("teleported out", |e| {
            matches!(e, ClientEvent::Teleport { .. })
        })
        .await;
    let ClientEvent::Teleport { phase, pos, .. } = tp else {
        unreachable!()
    };
    assert_eq!(phase, 0);
    assert!((pos[0] - 11.0).abs() < 0.01, "beside the vehicle: {pos:?}");
    srv.server.shutdown().await;
}

/// The committed sample archive is a valid RDAR container holding the files
/// the plugin's `.xl` and tweak name; `SHARD_WRITE_SAMPLE=1` rewrites it
/// from the test builder.
#[test]
fn sample_archive_is_valid_and_holds_what_the_xl_and_tweak_name() {
    use shard_cache::content::rdar::{check_archive, depot_hash};
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/mobile_cc/assets/mobile_cc.archive");
    if std::env::var_os("SHARD_WRITE_SAMPLE").is_some() {
        std::fs::write(&path, mobile_cc_sample_archive()).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let info = check_archive(&bytes).unwrap();
    for depot in [MOBILE_CC_ENT, MOBILE_CC_SECTOR] {
        assert!(info.file_hashes.contains(&depot_hash(depot)), "{depot}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/mobile_cc");
    let xl = std::fs::read_to_string(root.join("assets/mobile_cc.archive.xl")).unwrap();
    assert!(xl.contains(MOBILE_CC_SECTOR), "{xl}");
    let tweak = std::fs::read_to_string(root.join("tweaks/commandcenter.yaml")).unwrap();
    assert!(tweak.contains(MOBILE_CC_ENT), "{tweak}");
    assert!(
        tweak.contains("Vehicle.shard_mobile_cc_commandcenter:"),
        "{tweak}"
    );
}
