//! Resumable downloads in `partial/` and server key pins in `known_servers`.
#![allow(
    clippy::cast_possible_truncation,
    reason = "test data: sizes and indices are small and known"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test, with its message"
)]

mod common;

use common::{file, raw_tar, seal};
use shard_cache::{BundleError, CacheError, PinOutcome, RuntimeCache};
use shard_protocol::limits::{CHUNK_SIZE, MAX_BUNDLE_PACKED};

fn bundle() -> (Vec<u8>, [u8; 32]) {
    seeded_bundle(1)
}

/// A second bundle, unlike [`bundle`].
fn other_bundle() -> (Vec<u8>, [u8; 32]) {
    seeded_bundle(2)
}

fn seeded_bundle(seed: u64) -> (Vec<u8>, [u8; 32]) {
    use rand::{RngCore, SeedableRng};
    let mut noise = vec![0u8; CHUNK_SIZE * 3];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut noise);
    let archive = shard_cache::content::rdar::RdarBuilder::new()
        .file("base\\noise.mesh", noise)
        .build();
    seal(&raw_tar(&[file("assets/noise.archive", &archive)]))
}

/// The finished download is in the store with these bytes, and `partial/`
/// no longer holds it.
fn assert_stored(cache: &RuntimeCache, sha: &[u8; 32], bytes: &[u8]) {
    assert!(cache.has_bundle(sha));
    assert_eq!(
        cache.read_bundle(sha).unwrap(),
        bytes,
        "the store holds the file"
    );
    assert_eq!(
        cache.partial_offset(sha).unwrap(),
        0,
        "the partial file moved"
    );
}

/// A write at `offset` past the `have` bytes held was refused as a gap.
fn assert_gap(err: &CacheError, have: u64, offset: u64) {
    assert!(
        matches!(err, CacheError::PartialGap { have: h, offset: o, .. } if *h == have && *o == offset),
        "{err}"
    );
}

/// A finished download failed its hash and left nothing behind: the next
/// try starts over and nothing reached the store.
fn assert_refused_and_discarded(err: &CacheError, cache: &RuntimeCache, sha: &[u8; 32]) {
    assert!(
        matches!(err, CacheError::Bundle(BundleError::HashMismatch { .. })),
        "{err}"
    );
    assert_eq!(
        cache.partial_offset(sha).unwrap(),
        0,
        "the next try starts over"
    );
    assert!(!cache.has_bundle(sha));
}

#[test]
fn partial_download_resumes_after_restart() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("cache");
    let (bytes, sha) = bundle();
    let chunks: Vec<&[u8]> = bytes.chunks(CHUNK_SIZE).collect();
    assert!(chunks.len() >= 3);
    {
        let cache = RuntimeCache::open(&root).unwrap();
        assert_eq!(cache.partial_offset(&sha).unwrap(), 0);
        let mut off = 0;
        for c in &chunks[..2] {
            off = cache.append_partial(&sha, off, c).unwrap();
        }
        assert_eq!(off, (CHUNK_SIZE * 2) as u64);
    }
    // "Restart": a new handle sees the same offset and continues.
    let cache = RuntimeCache::open(&root).unwrap();
    let mut off = cache.partial_offset(&sha).unwrap();
    assert_eq!(off, (CHUNK_SIZE * 2) as u64);
    assert!(!cache.has_bundle(&sha));
    for c in &chunks[2..] {
        off = cache.append_partial(&sha, off, c).unwrap();
    }
    let path = cache.finish_partial(&sha).unwrap();
    assert_eq!(path, cache.bundle_path(&sha));
    assert_stored(&cache, &sha, &bytes);
}

#[test]
fn partial_gap_is_refused_and_rewind_truncates() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (bytes, sha) = bundle();
    cache.append_partial(&sha, 0, &bytes[..100]).unwrap();
    let err = cache
        .append_partial(&sha, 200, &bytes[200..300])
        .unwrap_err();
    assert_gap(&err, 100, 200);
    // Going back rewrites from that offset.
    assert_eq!(
        cache.append_partial(&sha, 50, &bytes[50..]).unwrap(),
        bytes.len() as u64
    );
    cache.finish_partial(&sha).unwrap();
    assert!(cache.has_bundle(&sha));
}

#[test]
fn partial_with_wrong_hash_is_discarded() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (bytes, sha) = bundle();
    cache
        .append_partial(&sha, 0, &bytes[..bytes.len() - 1])
        .unwrap();
    cache
        .append_partial(&sha, (bytes.len() - 1) as u64, b"!")
        .unwrap();
    let err = cache.finish_partial(&sha).unwrap_err();
    assert_refused_and_discarded(&err, &cache, &sha);
}

#[test]
fn partial_over_cap_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let sha = [9u8; 32];
    let err = cache
        .append_partial(&sha, 0, &vec![0u8; (MAX_BUNDLE_PACKED + 1) as usize])
        .unwrap_err();
    assert!(matches!(err, CacheError::PartialTooLarge { .. }), "{err}");
    cache.discard_partial(&sha).unwrap();
}

const FP_A: &str = "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11";
const FP_B: &str = "bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22";

#[test]
fn known_servers_pin_then_match_then_refuse_a_changed_key() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    assert_eq!(cache.known_server("10.0.0.1:4433").unwrap(), None);
    assert_eq!(
        cache.pin_server("127.0.0.1:4433", FP_A).unwrap(),
        PinOutcome::NewlyPinned
    );
    assert_eq!(
        cache
            .pin_server("127.0.0.1:4433", &FP_A.to_uppercase())
            .unwrap(),
        PinOutcome::Matches
    );
    let err = cache.pin_server("127.0.0.1:4433", FP_B).unwrap_err();
    assert!(matches!(err, CacheError::ServerKeyMismatch { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains(FP_A) && msg.contains(FP_B) && msg.contains("127.0.0.1:4433"),
        "{msg}"
    );
    // Persisted, and still pinned to A after the refusal.
    let reopened = RuntimeCache::open(t.path()).unwrap();
    assert_eq!(
        reopened.known_server("127.0.0.1:4433").unwrap().as_deref(),
        Some(FP_A)
    );
    reopened.replace_server("127.0.0.1:4433", FP_B).unwrap();
    assert_eq!(
        reopened.pin_server("127.0.0.1:4433", FP_B).unwrap(),
        PinOutcome::Matches
    );
    reopened.pin_server("[::1]:5000", FP_A).unwrap();
    assert_eq!(reopened.known_servers().unwrap().len(), 2);
    assert!(reopened.forget_server("[::1]:5000").unwrap());
    assert!(!reopened.forget_server("[::1]:5000").unwrap());
    // Clearing the cache keeps trust decisions.
    reopened.clear().unwrap();
    assert_eq!(reopened.known_servers().unwrap().len(), 1);
}

#[test]
fn known_servers_refuses_bad_input_and_bad_lines() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    assert!(cache.pin_server("a b", FP_A).is_err());
    assert!(cache.pin_server("host", "xyz").is_err());
    assert!(cache.pin_server("host", &"a".repeat(66)).is_err());
    std::fs::write(
        t.path().join("known_servers"),
        "# comment\n\nhost1 abcd\nbroken-line\n",
    )
    .unwrap();
    let err = cache.known_servers().unwrap_err();
    assert!(
        matches!(err, CacheError::BadKnownServers { line: 4, .. }),
        "{err}"
    );
}

#[test]
fn open_partial_file_resumes_rewinds_and_refuses_gaps() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (bytes, sha) = bundle();
    cache.append_partial(&sha, 0, &bytes[..100]).unwrap();
    // A file kept open continues where the earlier writes ended.
    let mut f = cache.open_partial(&sha).unwrap();
    assert_eq!(f.len(), 100);
    let err = f.write_at(200, &bytes[200..300]).unwrap_err();
    assert_gap(&err, 100, 200);
    assert_eq!(f.write_at(100, &bytes[100..1000]).unwrap(), 1000);
    // Going back truncates and rewrites from there.
    assert_eq!(f.write_at(500, &bytes[500..2000]).unwrap(), 2000);
    assert_eq!(
        f.write_at(2000, &bytes[2000..]).unwrap(),
        bytes.len() as u64
    );
    drop(f);
    assert_eq!(cache.partial_offset(&sha).unwrap(), bytes.len() as u64);
    cache.finish_partial(&sha).unwrap();
    assert_eq!(cache.read_bundle(&sha).unwrap(), bytes);
}

#[test]
fn an_open_partial_file_hashes_what_an_earlier_run_left_and_a_rewind() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (bytes, sha) = bundle();
    // An earlier run (killed) left the first 1000 bytes on disk.
    cache.append_partial(&sha, 0, &bytes[..1000]).unwrap();
    let mut f = cache.open_partial(&sha).unwrap();
    assert_eq!(f.len(), 1000);
    // A rewind, then the rest.
    assert_eq!(f.write_at(600, &bytes[600..1500]).unwrap(), 1500);
    assert_eq!(
        f.write_at(1500, &bytes[1500..]).unwrap(),
        bytes.len() as u64
    );
    let verified = f.finish(&cache).unwrap();
    assert_eq!(verified.sha256(), &sha);
    assert_stored(&cache, &sha, &bytes);
}

/// Chunks written in the pieces they arrived in (as off a QUIC stream:
/// empty, tiny and large pieces, a rewind across piece edges) make the same
/// file and hash as the bytes written whole.
#[test]
fn chunks_written_in_pieces_are_the_bundle() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (bytes, sha) = bundle();
    let mut f = cache.open_partial(&sha).unwrap();
    let mut at = 0usize;
    for (i, chunk) in bytes.chunks(CHUNK_SIZE).enumerate() {
        let cut = (i * 7919) % (chunk.len() + 1);
        let pieces: [&[u8]; 4] = [
            &chunk[..cut],
            &[],
            &chunk[cut..cut + (chunk.len() - cut) / 2],
            &chunk[cut + (chunk.len() - cut) / 2..],
        ];
        at += chunk.len();
        assert_eq!(
            f.write_parts_at((i * CHUNK_SIZE) as u64, &pieces).unwrap(),
            at as u64
        );
    }
    // The sender went back one chunk: written again in other pieces.
    let back = bytes.len() - CHUNK_SIZE / 2;
    let tail = &bytes[back..];
    assert_eq!(
        f.write_parts_at(back as u64, &[&tail[..1], &tail[1..]])
            .unwrap(),
        bytes.len() as u64
    );
    // A piece beyond the end is still a gap.
    assert!(matches!(
        f.write_parts_at(bytes.len() as u64 + 1, &[&b"x"[..]]),
        Err(CacheError::PartialGap { .. })
    ));
    // Reopened, what is on disk hashes the same.
    drop(f);
    let verified = cache.open_partial(&sha).unwrap().finish(&cache).unwrap();
    assert_eq!(verified.sha256(), &sha);
    assert_eq!(cache.read_bundle(&sha).unwrap(), bytes);
}

#[test]
fn an_open_partial_file_with_the_wrong_bytes_is_discarded_on_finish() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (mut bytes, sha) = bundle();
    bytes[10] ^= 0xff;
    let mut f = cache.open_partial(&sha).unwrap();
    f.write_at(0, &bytes).unwrap();
    let err = f.finish(&cache).unwrap_err();
    assert_refused_and_discarded(&err, &cache, &sha);
}

#[test]
fn an_over_long_partial_file_is_refused_on_open() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (_, sha) = bundle();
    std::fs::write(
        cache.partial_path(&sha),
        vec![0u8; MAX_BUNDLE_PACKED as usize + 1],
    )
    .unwrap();
    let err = cache.open_partial(&sha).unwrap_err();
    assert!(matches!(err, CacheError::PartialTooLarge { .. }), "{err}");
}

#[test]
fn open_partial_file_is_capped() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (_, sha) = bundle();
    let mut f = cache.open_partial(&sha).unwrap();
    let err = f.write_at(0, &vec![0u8; MAX_BUNDLE_PACKED as usize + 1]);
    assert!(
        matches!(err, Err(CacheError::PartialTooLarge { .. })),
        "{err:?}"
    );
}

#[test]
fn verified_partial_stages_only_under_its_own_hash() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (bytes, sha) = bundle();
    cache.append_partial(&sha, 0, &bytes).unwrap();
    let verified = cache.open_partial(&sha).unwrap().finish(&cache).unwrap();
    assert_eq!(verified.sha256(), &sha);
    assert!(cache.has_bundle(&sha));
    assert_eq!(cache.partial_offset(&sha).unwrap(), 0);
    let unpacked_len = shard_cache::unpack_bundle(&bytes, &sha)
        .unwrap()
        .unpacked_len;
    let mut other = sha;
    other[0] ^= 1;
    let req = |sha256| shard_cache::InstallRequest {
        plugin: "noise",
        version: "1",
        server: "127.0.0.1:1",
        sha256,
    };
    // Staging under another hash than the one verified is refused.
    let err = cache
        .stage_verified(&req(other), verified, unpacked_len)
        .unwrap_err();
    assert!(
        matches!(err, CacheError::Bundle(BundleError::HashMismatch { .. })),
        "{err}"
    );
    // The size the server announced still caps it.
    let again = || {
        // A stored bundle needs no download (`AlreadyStored`).
        cache.discard_bundle(&sha).unwrap();
        cache.append_partial(&sha, 0, &bytes).unwrap();
        cache.open_partial(&sha).unwrap().finish(&cache).unwrap()
    };
    let err = cache
        .stage_verified(&req(sha), again(), unpacked_len - 1)
        .unwrap_err();
    assert!(
        matches!(err, CacheError::LargerThanAnnounced { .. }),
        "{err}"
    );
    let staged = cache
        .stage_verified(&req(sha), again(), unpacked_len)
        .unwrap();
    let installed = cache.install_staged(staged).unwrap();
    assert_eq!(installed.hash, sha);
    assert_eq!(cache.installed_hash("noise"), Some(sha));
}

#[test]
fn verified_partial_with_wrong_hash_is_discarded() {
    let t = tempfile::tempdir().unwrap();
    let cache = RuntimeCache::open(t.path()).unwrap();
    let (mut bytes, sha) = bundle();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    cache.append_partial(&sha, 0, &bytes).unwrap();
    let err = cache
        .open_partial(&sha)
        .unwrap()
        .finish(&cache)
        .unwrap_err();
    assert_refused_and_discarded(&err, &cache, &sha);
}

/// Two clients sharing one cache and joining the same server download the
/// same bundle at once: the second may not write over the first (their
/// chunks and truncations would mix, or land in the store's file once the
/// first moved it there), so it writes a private file; both finish, and
/// nothing is left in `partial/`. One that starts after the bundle reached
/// the store is told it needs no download.
#[test]
fn two_downloads_of_the_same_bundle_into_one_cache_do_not_mix() {
    let t = tempfile::tempdir().unwrap();
    let first = RuntimeCache::open(t.path()).unwrap();
    let second = RuntimeCache::open(t.path()).unwrap();
    let (bytes, sha) = bundle();
    let mut f = first.open_partial(&sha).unwrap();
    f.write_at(0, &bytes[..100]).unwrap();

    // The second asks its sender to start from 0, and its file is its own.
    assert_eq!(second.partial_offset(&sha).unwrap(), 0);
    let mut g = second.open_partial(&sha).unwrap();
    assert_eq!(g.len(), 0, "the second download shares the first's file");
    // Discarding "its" partial download (after a failure of its own) leaves
    // the first's file alone.
    second.discard_partial(&sha).unwrap();
    assert!(
        second.partial_path(&sha).exists(),
        "the first's download was discarded"
    );
    // The one-shot helpers are about the shared file: busy meanwhile.
    let err = second.append_partial(&sha, 0, b"junk").unwrap_err();
    assert!(matches!(err, CacheError::PartialBusy { .. }), "{err}");
    assert!(
        err.to_string().contains("another client sharing it"),
        "{err}"
    );
    assert!(matches!(
        second.finish_partial(&sha),
        Err(CacheError::PartialBusy { .. })
    ));
    // A third open beside them spares the private file (in progress).
    drop(RuntimeCache::open(t.path()).unwrap());

    // Interleaved, including a rewind of the second: neither sees the other.
    g.write_at(0, &bytes[..5000]).unwrap();
    f.write_at(100, &bytes[100..200]).unwrap();
    g.write_at(10, &bytes[10..]).unwrap();
    f.write_at(200, &bytes[200..]).unwrap();
    g.finish(&second).unwrap();
    f.finish(&first).unwrap();
    assert_eq!(second.read_bundle(&sha).unwrap(), bytes);
    assert!(
        shard_cache_partial_names(&second).is_empty(),
        "{:?}",
        shard_cache_partial_names(&second)
    );

    let err = second.open_partial(&sha).unwrap_err();
    assert!(matches!(err, CacheError::AlreadyStored { .. }), "{err}");
    assert!(
        !second.partial_path(&sha).exists(),
        "an empty partial file was left"
    );

    // A private download dropped unfinished leaves nothing behind, and the
    // shared one, given back, resumes.
    let (other, other_sha) = other_bundle();
    let mut f = first.open_partial(&other_sha).unwrap();
    f.write_at(0, &other[..1000]).unwrap();
    let mut g = second.open_partial(&other_sha).unwrap();
    g.write_at(0, &other[..10]).unwrap();
    drop(g);
    drop(f);
    assert_eq!(shard_cache_partial_names(&second).len(), 1);
    assert_eq!(second.partial_offset(&other_sha).unwrap(), 1000);
    let g = second.open_partial(&other_sha).unwrap();
    assert_eq!(g.len(), 1000);
}

fn shard_cache_partial_names(cache: &RuntimeCache) -> Vec<String> {
    std::fs::read_dir(cache.root().join("partial"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Two clients sharing one cache pin servers and remember offer answers at
/// the same moment: each file is read, changed and written in turn, so no
/// pin or answer of one is lost to the other's write, and a key pinned by
/// one is seen (and enforced) by the other.
#[test]
fn pins_and_answers_written_at_once_by_two_handles_are_all_kept() {
    let t = tempfile::tempdir().unwrap();
    const EACH: usize = 40;
    let threads: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|who| {
            let cache = RuntimeCache::open(t.path()).unwrap();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let address = format!("{who}.example:{}", 7000 + i);
                    let outcome = cache.pin_server(&address, &"ab".repeat(32)).unwrap();
                    assert_eq!(outcome, PinOutcome::NewlyPinned);
                    let answer = shard_cache::ContentAnswer {
                        accept: true,
                        content: format!("{who}{i}"),
                        script_plugins: Default::default(),
                        unpacked: 1,
                        answered_at: 0,
                    };
                    cache.remember_answer(&address, answer).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let cache = RuntimeCache::open(t.path()).unwrap();
    assert_eq!(cache.known_servers().unwrap().len(), 2 * EACH);
    for who in ["a", "b"] {
        for i in 0..EACH {
            let address = format!("{who}.example:{}", 7000 + i);
            let answer = cache.content_answer(&address).unwrap();
            assert_eq!(answer.content, format!("{who}{i}"));
        }
    }
    let err = cache
        .pin_server("a.example:7000", &"cd".repeat(32))
        .unwrap_err();
    assert!(matches!(err, CacheError::ServerKeyMismatch { .. }), "{err}");
}
