//! Throws 100,000 mutated corpus inputs at the parser and checker: byte
//! flips, insertions, deletions, splices, deep nesting and long flat chains.
//! Must never panic.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::fs;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOKENS: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "<",
    ">",
    "\"",
    "n\"",
    "/*",
    "*/",
    "//",
    "@wrapMethod(",
    "native ",
    "let ",
    "func ",
    "class ",
    "if ",
    "else ",
    "switch ",
    "case ",
    ":",
    ";",
    "?",
    "as ",
    "new ",
    ".",
    ",",
    "\\",
    "\\(",
    "s\"",
    "1.0f",
    "0x",
    "5ul",
    "->",
    "=",
    "+=",
    "RegisterRpc(",
    "\n",
    "\u{263A}",
];

fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        "tests/corpus/valid",
        "tests/corpus/invalid",
        "tests/corpus/malicious",
    ] {
        for e in fs::read_dir(root.join(dir)).expect("corpus").flatten() {
            out.push(fs::read(e.path()).expect("read"));
        }
    }
    out.push(shard_reds::CLIENT_PLUGIN_PROXY.as_bytes().to_vec());
    out
}

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let seed = &seeds[rng.gen_range(0..seeds.len())];
    // Work on a window so the run stays fast in debug builds.
    let start = rng.gen_range(0..seed.len().max(1));
    let len = rng.gen_range(0..=400usize);
    let mut buf: Vec<u8> = seed.iter().skip(start).take(len).copied().collect();
    for _ in 0..rng.gen_range(1..=8) {
        let at = rng.gen_range(0..=buf.len());
        match rng.gen_range(0..7) {
            0 if !buf.is_empty() => {
                let i = rng.gen_range(0..buf.len());
                buf[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => buf.insert(at, rng.r#gen()),
            2 if !buf.is_empty() => {
                let end = (at + rng.gen_range(1..16)).min(buf.len());
                buf.drain(at.min(end)..end);
            }
            3 => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                let s = rng.gen_range(0..other.len().max(1));
                let piece: Vec<u8> = other
                    .iter()
                    .skip(s)
                    .take(rng.gen_range(0..80))
                    .copied()
                    .collect();
                buf.splice(at..at, piece);
            }
            4 => {
                let t = TOKENS[rng.gen_range(0..TOKENS.len())];
                buf.splice(at..at, t.bytes());
            }
            5 => {
                // Deep nesting, and flat chains (no nesting, any length).
                let (open, close) = [
                    ("(", ")"),
                    ("{", "}"),
                    ("[", "]"),
                    ("array<", ">"),
                    ("-", ""),
                    ("s\"\\(", ")\""),
                    ("() -> ", ""),
                    ("x + ", ""),
                    ("x.y().", ""),
                    ("if x {} else ", ""),
                ][rng.gen_range(0..10)];
                let n = rng.gen_range(1..400);
                let mut piece = open.repeat(n).into_bytes();
                piece.extend_from_slice(b"x");
                piece.extend(close.repeat(rng.gen_range(0..=n)).into_bytes());
                buf.splice(at..at, piece);
            }
            _ => {
                if !buf.is_empty() {
                    let i = rng.gen_range(0..buf.len());
                    buf[i] = TOKENS[rng.gen_range(0..TOKENS.len())].as_bytes()[0];
                }
            }
        }
    }
    buf
}

#[test]
fn hundred_thousand_mutations_never_panic() {
    let seeds = seeds();
    let mut rng = StdRng::seed_from_u64(0x5348_4152_4400);
    let mut parsed = 0usize;
    // Batches go through `check_scripts` (one worker thread per batch);
    // every tenth input also goes through `check_script` alone.
    for batch in 0..1_000 {
        let files: Vec<(String, String)> = (0..100)
            .map(|i| {
                let bytes = mutate(&mut rng, &seeds);
                (
                    format!("f{i}.reds"),
                    String::from_utf8_lossy(&bytes).into_owned(),
                )
            })
            .collect();
        let report = shard_reds::check_scripts(&files);
        let failed: std::collections::HashSet<&str> = report
            .diagnostics
            .iter()
            .filter(|d| d.rule == shard_reds::Rule::ParseError)
            .map(|d| d.file.as_str())
            .collect();
        parsed += files.len() - failed.len();
        if batch % 10 == 0 {
            for (name, src) in &files {
                let _ = shard_reds::check_script(name, src);
            }
        }
    }
    // Sanity: some mutations still parse, so the checker is exercised too.
    assert!(parsed > 0);
}
