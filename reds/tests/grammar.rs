//! Grammar conformance, construct by construct: what the released REDscript
//! compilers (0.5.x and 1.0) accept parses, with the single-version
//! constructs reported; what neither accepts is refused with a position;
//! flat chains of any length parse; deep nesting is a clean error.
#![allow(
    clippy::expect_used,
    reason = "test code: a failed unwrap or expect is a failed test, with its message"
)]
#![allow(
    clippy::print_stdout,
    reason = "prints measured figures for the test log"
)]

use shard_reds::{Construct, Dialect, check_script, check_scripts, parse};

/// Wraps statements in a function so each case is a whole file.
fn in_func(body: &str) -> String {
    format!("func F() -> Void {{\n{body}\n}}\n")
}

/// One accepted construct: source and the single-version construct it uses.
struct Accept {
    src: String,
    needs: Option<Construct>,
}

fn top(src: &str, needs: Option<Construct>) -> Accept {
    Accept {
        src: src.to_string(),
        needs,
    }
}

fn stmts(src: &str, needs: Option<Construct>) -> Accept {
    Accept {
        src: in_func(src),
        needs,
    }
}

fn accepted() -> Vec<Accept> {
    use Construct::*;
    vec![
        // Shared by 0.5.x and 1.0.
        top("module A.B\nimport C.*\nimport D.{E, F}\nimport G.H", None),
        top("@if(ModuleExists(\"X\"))\nimport X.*", None),
        top("func F() -> Bool = true", None),
        top("func F(x: Int32) -> Int32 = x + 1;", None),
        top("class A { let x: Bool = false; let y: Int32; }", None),
        top("let g: Int32 = 3;", None),
        top("func F() -> Int32 { return 1; };", None),
        top(
            "func F() -> Int32 { return 1; }\n;",
            Some(SpacedPunctuation),
        ),
        top("func F() -> Int32 = 1 ;\nfunc G() -> Int32 ;", None),
        top("class A { func F() {}; func G() {} }", None),
        top(
            "class A { func F() {} ; func G() {} }",
            Some(SpacedPunctuation),
        ),
        top("native func N() -> Int32\nfunc G() {}", None),
        top("native func N() -> Int32;", None),
        top(
            "public abstract class A extends IScriptable { protected cb func F() -> Bool { return true; } }",
            None,
        ),
        top("struct P { let x: Float; }", None),
        top("enum E { A = 0, B = 1, }", None),
        top("enum E { A = 5000000000l }", Some(LongEnumValue)),
        top(
            "func F(opt a: Int32, out b: Int32, const c: array<array<Int32>>) {}",
            None,
        ),
        top(
            "@wrapMethod(A) func F() -> Bool { return wrappedMethod(); }",
            None,
        ),
        top("@runtimeProperty(\"a\", \"b\") func F() {}", None),
        top("@replaceGlobal() func F() {}", None),
        stmts("let a = 1.; let b = .5d;", Some(LeadingDotFloat)),
        stmts("let a = 1.; let b = 1.25; let c = 2.5d; let d = 5d;", None),
        stmts("let a = 5u + 5l + 5ul + 0 + 10;", None),
        stmts(
            "let a = 14695981039346656037ul + 4294967295u + 9223372036854775807l;",
            None,
        ),
        stmts("let a = 007;", Some(LeadingZero)),
        stmts("let a = -2147483648;", Some(MinIntLiteral)),
        stmts("let s = s\"a \\(G(n\"x\")) b \\(\"in\") c\";", None),
        stmts("let s = s\"\\(s\"\\(1)\")\";", None),
        stmts("if a {} else if b {} else {};", None),
        stmts("while a { break; };", None),
        stmts("for x in xs { };", None),
        stmts("switch a { case 1: case 2: b = 1; break; default: };", None),
        stmts("return;", None),
        stmts("let func = 1; let in = 2; let new = in + func;", None),
        stmts("this.class = this.switch + this.module + this.enum;", None),
        stmts(
            "switch.x = 1; if = 2; let while = 0; while = while + 1;",
            None,
        ),
        stmts("let x = new C().Get();", None),
        stmts("let x = Cast<Float>(y) + a < b;", None),
        stmts("let x = y as Int32 < 5;", None),
        stmts("let x = (y as C).Get();", None),
        stmts("a += 1; a -= 1; a *= 2; a /= 2; a |= 1; a &= 1;", None),
        stmts("let t = a ? b ? 1 : 2 : c = 3;", None),
        stmts("let x = a || b && c | d ^ e & f == g < h + i * j;", None),
        stmts("let x = -!~a;", None),
        stmts("let x = [1, 2, [3]];", None),
        stmts("let x: array<>;", None),
        stmts("let c = \"\\n\\t\\r\\\\\\\"\\'\\u{263A}\";", None),
        // 1.0 only.
        stmts("continue;", Some(Continue)),
        top("class A<T> {}", Some(GenericDeclaration)),
        top(
            "func F<T, +U, -V extends IScriptable>(x: T) -> T = x",
            Some(GenericDeclaration),
        ),
        top("func F(xs: [Int32]) {}", Some(ArrayType)),
        top("class A { let xs: [Float; 4]; }", Some(StaticArrayType)),
        stmts("let f = (x: Int32) -> x + 1;", Some(Closure)),
        stmts("let f = (a, b) -> { return a; };", Some(Closure)),
        stmts("let f = () -> 0;", Some(Closure)),
        stmts("F(1, 2,);", Some(TrailingComma)),
        stmts("let a = [1,];", Some(TrailingComma)),
        top("func F(a: Int32,) {}", Some(TrailingComma)),
        top("import A.{B,}", Some(TrailingComma)),
        top("import A.*;", Some(ImportSemicolon)),
        top("func F() {}\nimport A.*", Some(ImportAfterDeclaration)),
        top("class A {};", Some(DeclarationSemicolon)),
        top("enum E { A = 0 };", Some(DeclarationSemicolon)),
        top("enum E { A, B = 2 }", Some(EnumVariantWithoutValue)),
        top(
            "class A extends B<Int32> {}",
            Some(GenericTypeInExtendsOrNew),
        ),
        stmts("let b = new Box<Int32>();", Some(GenericTypeInExtendsOrNew)),
        stmts("F()(1);", Some(CallOnExpression)),
        stmts("xs[0](1);", Some(CallOnExpression)),
        stmts("x.Get<Int32>();", Some(MethodTypeArguments)),
        top("@intrinsic(1) func F() {}", Some(UnknownAnnotation)),
        // 0.5.x only.
        stmts("a = b = 3;", Some(ChainedAssignment)),
        top("class A { let default: Int32; }", Some(ReservedWordAsName)),
        stmts("let x = this.default;", Some(ReservedWordAsName)),
        top("enum E { A = -1 }", Some(NegativeEnumValue)),
        top(
            "class A { static public func F() {} }",
            Some(QualifierBeforeVisibility),
        ),
        stmts("let x = v as C.Get();", Some(PostfixAfterCast)),
        top("module\n@if(true)\nfunc F() {}", Some(EmptyModulePath)),
        top("import .*", Some(EmptyModulePath)),
        stmts("return(a, b);", Some(StatementWordAsName)),
        stmts("let as T = 0;", Some(StatementWordAsName)),
        stmts("let = 1; let.x = 2;", None),
        stmts("let x = F<>(1);", None),
        top("class A<> {}", Some(GenericDeclaration)),
        stmts("let b = new Box<>();", Some(GenericTypeInExtendsOrNew)),
        stmts("x.Get<>();", Some(MethodTypeArguments)),
        stmts("let a: array <Int32>;", Some(SpacedTypeArguments)),
        stmts("let a = b as array <Int32>;", Some(SpacedTypeArguments)),
        stmts("let a: array< Int32 >; let b = Cast <Int32>(x);", None),
        top("@ if(true) func F() {}", Some(SpacedPunctuation)),
        top("import A .B", Some(SpacedPunctuation)),
        top("import A. B .*", None),
        stmts("F(a , b);", Some(SpacedPunctuation)),
        stmts("F(a, b );", None),
        top("enum E { A = 1 , B = 2 }", Some(SpacedPunctuation)),
        top("enum E { A = 1, B = 2 , }", None),
        stmts("let x = 1.0.Foo;", Some(MemberOfNumber)),
        stmts("let x = 1.0 .Foo; let y = 5d.Foo;", None),
        top(
            "opt static func F(public a: Int32) {}",
            Some(LegacyQualifierPlace),
        ),
        top(
            "func F(static: Int32, native: Int32) {}",
            Some(QualifierWordAsName),
        ),
    ]
}

#[test]
fn every_construct_parses_with_its_dialect_note() {
    for a in accepted() {
        let m = parse("c.reds", &a.src).unwrap_or_else(|e| panic!("{}\n{e}", a.src));
        let found: Vec<Construct> = m.dialect.iter().map(|n| n.construct).collect();
        match a.needs {
            None => assert!(found.is_empty(), "{}: {found:?}", a.src),
            Some(c) => assert!(
                !found.is_empty() && found.iter().all(|&f| f == c),
                "{}: expected {c:?}, got {found:?}",
                a.src
            ),
        }
    }
}

/// What neither compiler accepts, each with the expected words of the error.
const REFUSED: &[(&str, &str)] = &[
    ("let a = 0x1F;", "hex"),
    ("let a = 1.5f;", "`f` suffix"),
    ("let a = 1e3;", "exponent"),
    ("a %= 2;", "`%=`"),
    ("a ^= 2;", "`^=`"),
    ("a = b << 2;", "shift"),
    ("a = b >> 2;", "an expression"),
    ("{ let a = 1; }", "an expression"),
    ("let a = 1;;", "an expression"),
    (";", "an expression"),
    ("let a = new C;", "`(`"),
    ("let a = \"\\0\";", "escape"),
    ("let a = \"\\u{}\";", "hex digits"),
    ("let a = \"\\u{110000}\";", "unicode"),
    ("return 1", "`;`"),
    ("if a return;", "`{`"),
    ("if a {} else return;", "`{`"),
    ("switch a { default: case 1: }", "last"),
    ("i++;", "an expression"),
    ("let f = (x) => x;", "an expression"),
    ("x.;", "member name"),
    ("let a = 2147483648;", "range"),
    ("let a = - 2147483648;", "range"),
    ("return (a, b,);", "one REDscript version"),
    ("let a = 4294967296u;", "range"),
    ("let a = 1.2.3;", "decimal point"),
    ("let a: [Int32;] = [];", "array length"),
    ("let a = b ? c;", "`:`"),
    ("let a = n \"x\";", "`;`"),
    ("let x = 1, y = 2;", "`;`"),
];

const REFUSED_TOP: &[(&str, &str)] = &[
    ("@wrapMethod\nfunc F() {}", "`(`"),
    ("enum E { A = 1.5 }", "integer"),
    ("enum E { A = - 1 }", "right after `-`"),
    ("class C extends A, B {}", "`{`"),
    ("func F(x) {}", "`:`"),
    ("class C { let x = 1; }", "`:`"),
    ("let x = 1;", "`:`"),
    ("class A { class B {} }", "a method"),
    ("struct S extends T {}", "`{`"),
    ("func F(out: Int32) {}", "a parameter name"),
    ("inline func F() {}", "a declaration"),
    ("func F() {}\n/* open", "`*/`"),
    (
        "func F(xs: [Float]) -> Float { return .5; }",
        "one REDscript version",
    ),
];

#[test]
fn constructs_neither_compiler_accepts_are_refused_with_position() {
    let cases = REFUSED
        .iter()
        .map(|(s, w)| (in_func(s), *w))
        .chain(REFUSED_TOP.iter().map(|(s, w)| (s.to_string(), *w)));
    for (src, words) in cases {
        let e = match parse("bad.reds", &src) {
            Ok(_) => panic!("accepted: {src}"),
            Err(e) => e,
        };
        let text = e.to_string();
        assert!(text.starts_with("bad.reds:"), "{text}");
        assert!(text.contains(words), "{src}\n{text}");
    }
}

#[test]
fn notes_name_version_and_place() {
    let c = check_script("v.reds", "func F() {\n  continue;\n}\n");
    assert!(c.is_ok(), "{:?}", c.diagnostics);
    assert_eq!(shard_reds::needed_dialect(&c.dialect), Some(Dialect::V1));
    assert_eq!(
        c.dialect[0].to_string(),
        "v.reds:2:3: needs REDscript 1.0: `continue;`"
    );
    let old = check_script("o.reds", "func F() -> Float { return .5; }");
    assert_eq!(shard_reds::needed_dialect(&old.dialect), Some(Dialect::V05));
    let plain = check_script("p.reds", "func F() -> Float { return 0.5; }");
    assert_eq!(shard_reds::needed_dialect(&plain.dialect), None);
}

#[test]
fn plugin_files_needing_different_versions_are_refused_together() {
    let files = [
        ("a.reds".to_string(), "func A() { continue; }".to_string()),
        (
            "b.reds".to_string(),
            "func B() -> Float { return .5; }".to_string(),
        ),
    ];
    let r = check_scripts(&files);
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.message.contains("one REDscript version")),
        "{:?}",
        r.diagnostics
    );
    assert_eq!(r.dialect.len(), 2);
}

const N: usize = 10_000;

/// Runs `f` on a thread with the default spawn stack (2 MiB), the smallest
/// a caller is likely to have.
fn on_default_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().expect("no panic or overflow");
}

fn flat_chains() -> Vec<String> {
    vec![
        in_func(&format!("let x = 1{};", " + 1".repeat(N))),
        in_func(&format!("let x = a{};", " * b - c".repeat(N))),
        in_func(&format!(
            "if x == 0 {{}}{} else {{}}",
            " else if x == 1 { y = 1; }".repeat(N)
        )),
        in_func(&format!("let x = a{};", ".b".repeat(N))),
        in_func(&format!("a{};", ".B()".repeat(N))),
        in_func(&format!("let x = a{};", "[0]".repeat(N))),
        in_func(&format!("let x = a{};", " as B".repeat(N))),
        in_func(&"F();\n".repeat(N)),
        format!(
            "enum E {{ {} }}",
            (0..N)
                .map(|i| format!("V{i} = {i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ]
}

#[test]
fn flat_chains_of_ten_thousand_parse_and_check() {
    on_default_stack(|| {
        for src in flat_chains() {
            let m = parse("flat.reds", &src);
            assert!(m.is_ok(), "{:?}", m.err());
            drop(m);
            let c = check_script("flat.reds", &src);
            assert!(
                c.diagnostics.iter().all(|d| d.rule.id() != "parse-error"),
                "{:?}",
                c.diagnostics.first()
            );
        }
    });
}

#[test]
fn ten_thousand_levels_of_nesting_are_a_clean_error() {
    on_default_stack(|| {
        let cases = [
            in_func(&format!("let x = {}1{};", "(".repeat(N), ")".repeat(N))),
            in_func(&format!("{}{}", "if x { ".repeat(N), "}".repeat(N))),
            in_func(&format!("{}{}", "while x { ".repeat(N), "}".repeat(N))),
            in_func(&format!("let x = {}1;", "-".repeat(N))),
            in_func(&format!("let x = {}1;", "!".repeat(N))),
            in_func(&format!("{}1;", "a = ".repeat(N))),
            in_func(&format!(
                "let x = {}1{};",
                "c ? ".repeat(N),
                " : 2".repeat(N)
            )),
            in_func(&format!("let x = {}1{};", "F(".repeat(N), ")".repeat(N))),
            in_func(&format!("let x = {}{};", "[".repeat(N), "]".repeat(N))),
            in_func(&format!(
                "let x: {}Int32{};",
                "array<".repeat(N),
                ">".repeat(N)
            )),
            in_func(&format!("let x: {}Int32{};", "[".repeat(N), "]".repeat(N))),
            in_func(&format!(
                "let x = {}0{};",
                "s\"\\(".repeat(N),
                ")\"".repeat(N)
            )),
            in_func(&format!("let f = {}0;", "() -> ".repeat(N))),
            in_func(&format!("let x = a{};", "[b".repeat(N) + &"]".repeat(N))),
        ];
        for src in &cases {
            let e = match parse("deep.reds", src) {
                Ok(_) => panic!("accepted {}", &src[..80]),
                Err(e) => e,
            };
            assert!(
                e.expected.contains("nesting no deeper") || e.expected.contains("nested at most"),
                "{e}"
            );
            let c = check_script("deep.reds", src);
            assert_eq!(c.diagnostics.len(), 1);
        }
    });
}

#[test]
fn failing_nested_statements_are_not_reparsed_exponentially() {
    // Each level fails as a `return` statement; retrying every level as an
    // expression statement would cost 2^25 parses.
    let levels = 25;
    let src = in_func(&format!(
        "{}x = ;{}",
        "return (() -> { ".repeat(levels),
        " });".repeat(levels)
    ));
    let start = std::time::Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(parse("slow.reds", &src).is_err()));
    // A termination check, not a speed assertion: exponential re-parsing
    // would take hours, the fixed parser takes milliseconds.
    let refused = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("parse finishes");
    assert!(refused);
    println!("{levels} failing levels parsed in {:?}", start.elapsed());
}

#[test]
fn moderate_nesting_parses() {
    let ok = in_func(&format!("let x = {}1{};", "(".repeat(40), ")".repeat(40)));
    parse("ok.reds", &ok).expect("moderate nesting parses");
}
