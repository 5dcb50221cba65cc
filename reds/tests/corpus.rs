//! Corpus tests: valid scripts parse, malicious scripts are refused with the
//! expected rule, the example client script and the proxy are accepted.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use shard_reds::{
    CLIENT_PLUGIN_PROXY, Dialect, Rule, check_proxy_scripts, check_script, check_scripts, parse,
    rpc_whitelist,
};

fn corpus(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&root)
        .expect("corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "reds"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, fs::read_to_string(&p).expect("read"))
        })
        .collect()
}

fn cc_status() -> (String, String) {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/mobile_cc/client/cc_status.reds");
    (
        "cc_status.reds".to_string(),
        fs::read_to_string(p).expect("cc_status.reds"),
    )
}

/// The text after `prefix` on the first line, which every corpus file uses
/// to state what is expected of it.
fn header<'a>(name: &str, src: &'a str, prefix: &str) -> &'a str {
    src.lines()
        .next()
        .and_then(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("{name}: first line must be `{prefix}…`"))
        .trim()
}

#[test]
fn valid_corpus_parses_with_its_declared_dialect() {
    let files = corpus("valid");
    assert!(files.len() >= 25, "corpus too small");
    for (name, src) in &files {
        let expect: HashSet<Dialect> = match header(name, src, "// dialect: ") {
            "both" => HashSet::new(),
            "0.5" => HashSet::from([Dialect::V05]),
            "1.0" => HashSet::from([Dialect::V1]),
            other => panic!("{name}: unknown dialect {other}"),
        };
        let m = parse(name, src).unwrap_or_else(|e| panic!("{e}"));
        let needs: HashSet<Dialect> = m.dialect.iter().map(|n| n.construct.only_in()).collect();
        assert_eq!(needs, expect, "{name}: {:?}", m.dialect);
    }
}

#[test]
fn invalid_corpus_is_refused_with_a_position() {
    let files = corpus("invalid");
    assert!(files.len() >= 40, "corpus too small");
    for (name, src) in &files {
        header(name, src, "// refused: ");
        let e = match parse(name, src) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => e,
        };
        assert_eq!(e.file, *name);
        assert!(e.span.line >= 2, "{name}: error before the code: {e}");
        let c = check_script(name, src);
        assert_eq!(c.diagnostics.len(), 1, "{name}");
        assert_eq!(c.diagnostics[0].rule, Rule::ParseError);
    }
}

#[test]
fn malicious_corpus_is_refused_with_expected_rule() {
    let files = corpus("malicious");
    assert!(files.len() >= 20, "need at least 20 malicious scripts");
    for (name, src) in &files {
        let first = src.lines().next().unwrap_or("");
        let expected = first
            .strip_prefix("// expect: ")
            .unwrap_or_else(|| panic!("{name}: first line must be `// expect: rule`"))
            .trim();
        let check = check_script(name, src);
        assert!(!check.is_ok(), "{name} was accepted");
        assert!(
            check.diagnostics.iter().any(|d| d.rule.id() == expected),
            "{name}: expected rule {expected}, got {:?}",
            check
                .diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
        );
        for d in &check.diagnostics {
            assert_eq!(d.file, *name);
            assert!(d.line >= 1 && d.col >= 1);
        }
    }
}

#[test]
fn cc_status_example_is_accepted() {
    let (name, src) = cc_status();
    let check = check_script(&name, &src);
    assert!(
        check.is_ok(),
        "{:?}",
        check
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(check.rpc_names, vec!["CcStatus".to_string()]);
    assert!(check.dialect.is_empty(), "{:?}", check.dialect);
    let report = check_scripts(&[(name, src)]);
    assert!(report.is_ok());
    assert_eq!(report.rpc_names, vec!["CcStatus".to_string()]);
}

const UI_SCRIPT: &str = r#"
// A scoreboard that shows kills and a banner.
public class ScoreHandler extends ShardRpcHandler {
  private let m_text: ref<inkText>;

  public func OnRpc(json: String) -> Void {
    if !IsDefined(this.m_text) {
      this.m_text = new inkText();
      this.m_text.SetFontSize(30);
      this.m_text.SetAnchor(inkEAnchor.BottomLeft);
      this.m_text.Reparent(ShardHudRoot());
    }
    let kills = Cast<Int32>(ShardJsonGetNumber(json, "/kills"));
    this.m_text.SetText("Kills: " + IntToString(kills) + " / " + FloatToString(Cast<Float>(kills) / 2.0));
  }
}

public class BannerHandler extends ScoreHandler {
  public func OnRpc(json: String) -> Void {
    super.OnRpc(json);
  }
}

public func ScoreInit() -> Void {
  RegisterRpc(n"Scoreboard", new ScoreHandler());
  RegisterRpc("Banner", new BannerHandler());
  RegisterRpc(n"Scoreboard", new ScoreHandler());
}
"#;

#[test]
fn ui_script_accepted_and_rpc_names_extracted() {
    let check = check_script("ui.reds", UI_SCRIPT);
    assert!(
        check.is_ok(),
        "{:?}",
        check
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(check.rpc_names, ["Scoreboard", "Banner", "Scoreboard"]);
    let report = check_scripts(&[("ui.reds".into(), UI_SCRIPT.into()), cc_status()]);
    assert!(report.is_ok());
    assert_eq!(report.rpc_names, ["Banner", "CcStatus", "Scoreboard"]);
    let wl = rpc_whitelist(&report.rpc_names);
    let mut expect: Vec<u32> = report
        .rpc_names
        .iter()
        .map(|n| shard_protocol::fn_hash(n))
        .collect();
    expect.sort_unstable();
    assert_eq!(wl, expect);
}

#[test]
fn scripts_may_use_sibling_file_classes() {
    let a = (
        "a.reds".to_string(),
        "public class Base extends ShardRpcHandler { public func Paint() -> Void {} }".to_string(),
    );
    let b = ("b.reds".to_string(), "public class Leaf extends Base { public func OnRpc(json: String) -> Void { this.Paint(); Paint(); } }\npublic func Init() -> Void { RegisterRpc(n\"Leaf\", new Leaf()); }".to_string());
    let report = check_scripts(&[a, b]);
    assert!(report.is_ok(), "{:?}", report.diagnostics);
    assert_eq!(report.rpc_names, ["Leaf"]);
}

#[test]
fn proxy_scripts_parse_and_pass_proxy_mode_only() {
    let m = parse("ClientPluginProxy.reds", CLIENT_PLUGIN_PROXY).expect("proxy parses");
    assert!(
        m.dialect.is_empty(),
        "proxy must compile on 0.5.x and 1.0: {:?}",
        m.dialect
    );
    let files = [(
        "ClientPluginProxy.reds".to_string(),
        CLIENT_PLUGIN_PROXY.to_string(),
    )];
    let proxy = check_proxy_scripts(&files);
    assert!(proxy.is_ok(), "{:?}", proxy.diagnostics);
    let client = check_scripts(&files);
    assert!(
        client
            .diagnostics
            .iter()
            .any(|d| d.rule == Rule::NativeDecl)
    );
    assert!(
        client
            .diagnostics
            .iter()
            .any(|d| d.rule == Rule::HookAnnotation)
    );
    for native in [
        "ShardPollEvent() -> String",
        "ShardRegisterRpc(plugin: String, name: String) -> Int32",
        "ShardSendPosition(x: Float, y: Float, z: Float, yaw: Float) -> Int32",
        "ShardSendChat(text: String) -> Int32",
        "ShardSendInteract(entityId: Int32, action: String) -> Int32",
        "ShardLastError() -> String",
        "ShardSendRpc(plugin: String, name: String, json: String) -> Int32",
    ] {
        assert!(
            CLIENT_PLUGIN_PROXY.contains(&format!("native func {native}")),
            "{native}"
        );
    }
}

#[test]
fn diagnostic_display_format() {
    let check = check_script("x.reds", "// hi\n  @wrapMethod(A)\nfunc F() -> Void {}");
    let d = check.diagnostics.first().expect("diagnostic");
    assert_eq!(d.to_string().split(" [").next(), Some("x.reds:2:3:"));
    assert!(d.to_string().starts_with("x.reds:2:3: [hook-annotation] "));
}

#[test]
fn parse_errors_say_where_and_what() {
    let e = parse("bad.reds", "func F() -> Void {\n  let x = ;\n}").expect_err("must fail");
    assert_eq!((e.span.line, e.span.col), (2, 11));
    assert!(
        e.to_string()
            .starts_with("bad.reds:2:11: expected an expression"),
        "{e}"
    );
    let c = check_script("bad.reds", "class {");
    assert_eq!(c.diagnostics.len(), 1);
    assert_eq!(c.diagnostics[0].rule, Rule::ParseError);
    for bad in [
        "/* never closed",
        "\"open",
        "let x = 1.0q;",
        "n\"\\q\"",
        "func F() { x = 1 +; }",
        "$",
        "func F() { x = 0x1F; }",
        "func F() { x %= 2; }",
    ] {
        assert!(parse("b.reds", bad).is_err(), "{bad}");
    }
}

#[test]
fn numeric_and_string_literals() {
    let src = r#"func F() { let a = 1.0; let a2 = 1.; let b = 5u; let c = 5l; let c2 = 5ul; let d = 2.5d; let e = n"N"; let f = r"a\\b"; let g = t"Items.X"; let h = s"x"; let i = "q\"\u{41}"; }"#;
    let m = parse("lit.reds", src).expect("parses");
    assert_eq!(m.items.len(), 1);
    assert!(m.dialect.is_empty());
}

#[test]
fn method_diagnostic_points_at_method_name() {
    let c = check_script(
        "m.reds",
        "func F() -> Void {\n  let w = new inkText();\n  w.GetController();\n}",
    );
    let d: Vec<String> = c.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        d,
        ["m.reds:3:5: [forbidden-method] method `GetController` is not on the sandbox allowlist"]
    );
}

#[test]
fn rpc_whitelist_uses_fn_hash_sorted_and_deduped() {
    let wl = rpc_whitelist(&["ShowPopup", "CcStatus", "ShowPopup"]);
    let mut expect = vec![
        shard_protocol::fn_hash("ShowPopup"),
        shard_protocol::fn_hash("CcStatus"),
    ];
    expect.sort_unstable();
    assert_eq!(wl, expect);
    assert!(rpc_whitelist::<&str>(&[]).is_empty());
}

#[test]
fn interpolated_or_computed_rpc_names_are_refused() {
    for arg in ["s\"Name\"", "NameOf()", "n\"A\" + n\"B\""] {
        let src = format!(
            "class H extends ShardRpcHandler {{}}\nfunc I() -> Void {{ RegisterRpc({arg}, new H()); }}"
        );
        let c = check_script("r.reds", &src);
        assert!(
            c.diagnostics
                .iter()
                .any(|d| d.rule == Rule::RpcNameNotLiteral),
            "{arg}: {:?}",
            c.diagnostics
        );
        assert!(c.rpc_names.is_empty());
    }
}

#[test]
fn large_script_checks_quickly() {
    let mut src = String::from("func F() -> Void {\n");
    for i in 0..20_000 {
        src.push_str(&format!(
            "  let v{i}: Int32 = {i};\n  v{i} += IntToString(v{i}) == \"\" ? 1 : 0;\n"
        ));
    }
    src.push_str("}\n");
    let start = std::time::Instant::now();
    let c = check_script("big.reds", &src);
    assert!(c.is_ok(), "{:?}", c.diagnostics.first());
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}

#[test]
fn send_server_rpc_with_a_literal_name_is_the_upstream_whitelist() {
    let src = r#"
class VoteButton extends IScriptable {
  public func Click(i: Int32) -> Void {
    SendServerRpc(n"Vote", "{\"option\":" + IntToString(i) + "}");
    SendServerRpc("Hello", "{}");
    SendServerRpc(n"Vote", "{}");
  }
}
"#;
    let c = check_script("v.reds", src);
    assert!(c.is_ok(), "{:?}", c.diagnostics);
    assert_eq!(c.upstream_names, ["Vote", "Hello", "Vote"]);
    assert!(
        c.rpc_names.is_empty(),
        "sending does not register a handler"
    );
    let report = check_scripts(&[("v.reds".into(), src.into())]);
    assert_eq!(report.upstream_names, ["Hello", "Vote"]);
}

#[test]
fn send_server_rpc_with_a_computed_name_is_refused() {
    for arg in [
        "s\"Vote\"",
        "StringToName(\"Vote\")",
        "n\"A\" + n\"B\"",
        "name",
    ] {
        let src = format!("func S(name: CName) -> Void {{ SendServerRpc({arg}, \"{{}}\"); }}");
        let c = check_script("s.reds", &src);
        assert!(
            c.diagnostics
                .iter()
                .any(|d| d.rule == Rule::RpcNameNotLiteral && d.message.contains("SendServerRpc")),
            "{arg}: {:?}",
            c.diagnostics
        );
        assert!(c.upstream_names.is_empty(), "{arg}");
    }
    // The payload argument is still checked like any expression.
    let c = check_script(
        "p.reds",
        "func S() -> Void { SendServerRpc(n\"Vote\", GetGameInstance()); }",
    );
    assert!(
        c.diagnostics
            .iter()
            .any(|d| d.rule == Rule::ForbiddenFunction),
        "{:?}",
        c.diagnostics
    );
}
