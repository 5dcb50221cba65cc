//! The generated plugin docs are complete and current: `DOCS.md` and
//! `plugins/game.pyi` mention every public `game` function, and CI fails
//! when the committed files differ from what `shard-server docs` writes.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The public callables of `game`, listed by the embedded interpreter itself.
fn game_functions(tmp: &Path) -> Vec<String> {
    let script = tmp.join("list.py");
    let out = tmp.join("names.txt");
    std::fs::write(
        &script,
        "import game, sys\nnames = [n for n in dir(game) if not n.startswith('_') \
         and callable(getattr(game, n)) and not isinstance(getattr(game, n), type)]\n\
         open(sys.argv[1], 'w').write('\\n'.join(sorted(names)))\n",
    )
    .unwrap();
    shard_server::plugin::run_tool(
        &script,
        &[out.display().to_string()],
        &serde_json::json!({}),
    )
    .unwrap();
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn generated_docs_cover_every_game_function_and_are_committed_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let (docs, stubs) = (tmp.path().join("DOCS.md"), tmp.path().join("game.pyi"));
    let out = Command::new(env!("CARGO_BIN_EXE_shard-server"))
        .arg("docs")
        .arg("--out")
        .arg(&docs)
        .arg("--stubs")
        .arg(&stubs)
        .arg("--plugins")
        .arg(repo().join("plugins"))
        .arg("--tool")
        .arg(repo().join("tools/gen_plugin_docs.py"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (docs, stubs) = (
        std::fs::read_to_string(docs).unwrap(),
        std::fs::read_to_string(stubs).unwrap(),
    );

    let names = game_functions(tmp.path());
    assert!(names.len() >= 15, "{names:?}");
    for name in &names {
        assert!(
            docs.contains(&format!("### `game.{name}(")),
            "DOCS.md lacks game.{name}"
        );
        assert!(
            stubs.contains(&format!("def {name}(")),
            "game.pyi lacks {name}"
        );
    }
    for event in ["OnTick", "OnPeerJoin", "OnInteract", "OnBundleInstalled"] {
        assert!(
            docs.contains(&format!("`{event}`")),
            "DOCS.md lacks {event}"
        );
    }
    assert!(
        docs.contains("GameError")
            && docs.contains("mobile_cc.py")
            && docs.contains("popup_zone.py")
    );

    let regen = "regenerate with `cargo run -p shard-server -- docs` from the repository root and commit the result";
    let committed = std::fs::read_to_string(repo().join("DOCS.md")).unwrap_or_default();
    assert!(committed == docs, "DOCS.md is stale: {regen}");
    let committed = std::fs::read_to_string(repo().join("plugins/game.pyi")).unwrap_or_default();
    assert!(committed == stubs, "plugins/game.pyi is stale: {regen}");
}
