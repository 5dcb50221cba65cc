//! `reds/scripts/ClientPluginProxy.reds` declares exactly the native
//! functions the C ABI implements: `ShardFooBar` ↔ `shard_client_foo_bar`,
//! every header function but the loader's create/connect/destroy.

use std::collections::BTreeSet;

use shard_reds::ast::DeclKind;

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn proxy_natives_match_the_c_abi() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let proxy =
        std::fs::read_to_string(root.join("../reds/scripts/ClientPluginProxy.reds")).unwrap();
    let module = shard_reds::parse("ClientPluginProxy.reds", &proxy).expect("the proxy parses");
    let mut natives = BTreeSet::new();
    for decl in &module.items {
        if let DeclKind::Function(f) = &decl.kind
            && decl
                .modifiers
                .iter()
                .any(|(m, _)| matches!(m, shard_reds::ast::Modifier::Native))
        {
            let rest = f
                .name
                .strip_prefix("Shard")
                .expect("natives are named Shard*");
            natives.insert(format!("shard_client_{}", snake(rest)));
        }
    }
    let header = std::fs::read_to_string(root.join("include/shard_client.h")).unwrap();
    let mut exported = BTreeSet::new();
    for line in header.lines() {
        if let Some(i) = line.find("shard_client_")
            && let Some(j) = line[i..].find('(')
            && !line.trim_start().starts_with("//")
            && !line.trim_start().starts_with('*')
        {
            exported.insert(line[i..i + j].to_string());
        }
    }
    for loader_only in [
        "shard_client_create",
        "shard_client_connect",
        "shard_client_destroy",
    ] {
        assert!(
            exported.remove(loader_only),
            "{loader_only} missing from the header"
        );
    }
    assert_eq!(natives, exported, "proxy natives (left) vs C ABI (right)");
}
