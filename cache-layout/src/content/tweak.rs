//! The pushed-tweak policy: a TweakXL YAML tweak may only add. It may create
//! records and flats named `<Package>.shard_<plugin>_<name>` (the plugin's
//! namespace; `-` and `.` in the plugin name become `_`), and a new record
//! may clone any record, vanilla included, with `$base`. It may not change
//! or delete anything outside its namespace, so a server cannot rebalance or
//! break a player's game beyond its own new content.
//!
//! Rule ids: `tweak-record` (changes an existing record), `tweak-flat`
//! (writes a flat outside the namespace), `tweak-delete` (deletes or nulls
//! an entry), `tweak-key` (not a `Package.Name` id), `tweak-new-record` (a
//! new record without `$type` or `$base`), `tweak-property` (a property name
//! that is not an identifier), `tweak-directive` (a `$` key other than
//! `$type`/`$base`), `tweak-tag` (a YAML tag other than TweakXL's list
//! operations), `tweak-duplicate`, `tweak-shape`.

use std::collections::HashSet;

use super::Diagnostic;
use super::yaml::{Kind, Node};

/// YAML tags TweakXL gives meaning to inside a record (list operations).
const LIST_OPS: &[&str] = &[
    "!append",
    "!append-once",
    "!prepend",
    "!prepend-once",
    "!merge",
    "!remove",
];

/// What one accepted tweak file adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TweakAdds {
    /// New records (`Vehicle.shard_mobile_cc_commandcenter`).
    pub records: Vec<String>,
    /// New flats (`Vehicle.shard_mobile_cc_speed`).
    pub flats: Vec<String>,
}

/// The namespace prefix of a plugin's names: `shard_<plugin>_` with every
/// character other than ASCII letters, digits and `_` turned into `_`.
pub fn tweak_namespace(plugin: &str) -> String {
    let clean: String = plugin
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("shard_{clean}_")
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks one parsed tweak file for `plugin`; appends diagnostics, returns what it adds.
pub(crate) fn check(
    file: &str,
    plugin: &str,
    root: Option<&Node>,
    out: &mut Vec<Diagnostic>,
) -> TweakAdds {
    let mut adds = TweakAdds::default();
    let Some(root) = root else { return adds };
    let mut diag = |line: usize, rule: &'static str, message: String| {
        out.push(Diagnostic {
            file: file.to_owned(),
            line,
            rule,
            message,
        })
    };
    let Kind::Map(pairs) = &root.kind else {
        diag(
            root.line,
            "tweak-shape",
            "a tweak is a mapping of record and flat ids".into(),
        );
        return adds;
    };
    let ns = tweak_namespace(plugin);
    let mut seen = HashSet::new();
    for (key, value) in pairs {
        let Some(id) = key.as_str().filter(|_| key.tag.is_none()) else {
            diag(key.line, "tweak-key", "an id must be plain text".into());
            continue;
        };
        if !seen.insert(id) {
            diag(key.line, "tweak-duplicate", format!("`{id}` appears twice"));
            continue;
        }
        let parts: Vec<&str> = id.split('.').collect();
        if parts.len() < 2 || !parts.iter().all(|p| is_ident(p)) {
            diag(
                key.line,
                "tweak-key",
                format!("`{id}` is not a TweakDB id like `Package.Name`"),
            );
            continue;
        }
        let ours = parts[1].len() > ns.len() && parts[1].starts_with(&ns);
        let deletes = value.is_null()
            || value
                .tag
                .as_deref()
                .is_some_and(|t| t == "!delete" || t == "!remove");
        if deletes {
            diag(
                key.line,
                "tweak-delete",
                format!("`{id}`: pushed tweaks may not delete or null records or flats"),
            );
            continue;
        }
        if !ours {
            let (rule, what) = match (&value.kind, parts.len()) {
                (Kind::Map(_), 2) => ("tweak-record", "changes the existing record"),
                _ => ("tweak-flat", "writes the flat"),
            };
            diag(
                key.line,
                rule,
                format!(
                    "{what} `{id}` outside this plugin's namespace; pushed tweaks may only add records and flats named `{}.{ns}*` (clone vanilla records with `$base`)",
                    parts[0]
                ),
            );
            continue;
        }
        if let Some(tag) = value.tag.as_deref() {
            diag(
                value.line,
                "tweak-tag",
                format!("`{id}`: tag {tag} is not allowed on a top-level entry"),
            );
            continue;
        }
        match (&value.kind, parts.len()) {
            (Kind::Map(props), 2) => {
                let mut has_origin = false;
                for (prop, _) in props {
                    if matches!(prop.as_str(), Some("$type" | "$base")) {
                        has_origin = true;
                    }
                }
                if !has_origin {
                    diag(
                        value.line,
                        "tweak-new-record",
                        format!(
                            "new record `{id}` needs `$type` or `$base` (a vanilla record to clone)"
                        ),
                    );
                }
                record_body(value, &mut diag);
                adds.records.push(id.to_owned());
            }
            _ => {
                values(value, &mut diag);
                adds.flats.push(id.to_owned());
            }
        }
    }
    adds
}

/// Checks a record's properties (and nested inline records) for names, directives and tags.
fn record_body(node: &Node, diag: &mut impl FnMut(usize, &'static str, String)) {
    let Kind::Map(props) = &node.kind else {
        return;
    };
    let mut seen = HashSet::new();
    for (prop, value) in props {
        let Some(name) = prop.as_str().filter(|_| prop.tag.is_none()) else {
            diag(
                prop.line,
                "tweak-property",
                "a property name must be plain text".into(),
            );
            continue;
        };
        if !seen.insert(name) {
            diag(
                prop.line,
                "tweak-duplicate",
                format!("property `{name}` appears twice"),
            );
            continue;
        }
        if let Some(directive) = name.strip_prefix('$') {
            if directive != "type" && directive != "base" {
                diag(
                    prop.line,
                    "tweak-directive",
                    format!("`{name}` is not accepted; only `$type` and `$base`"),
                );
            } else if !value
                .as_str()
                .is_some_and(|v| !v.is_empty() && v.split('.').all(is_ident))
            {
                diag(
                    value.line,
                    "tweak-key",
                    format!("`{name}` must name a record type or id"),
                );
            }
            continue;
        }
        if !is_ident(name) {
            diag(
                prop.line,
                "tweak-property",
                format!("`{name}` is not a property name (letters, digits and `_`)"),
            );
            continue;
        }
        if value.is_null() {
            diag(
                value.line,
                "tweak-delete",
                format!("property `{name}`: pushed tweaks may not null a value"),
            );
            continue;
        }
        values(value, diag);
    }
}

/// Checks a property value: tags limited to TweakXL's list operations;
/// mappings are inline records.
fn values(node: &Node, diag: &mut impl FnMut(usize, &'static str, String)) {
    if let Some(tag) = node.tag.as_deref()
        && !LIST_OPS.contains(&tag)
    {
        diag(
            node.line,
            "tweak-tag",
            format!(
                "tag {tag} is not allowed; TweakXL's list operations are {}",
                LIST_OPS.join(", ")
            ),
        );
    }
    match &node.kind {
        Kind::Scalar { .. } => {}
        Kind::Seq(items) => {
            for item in items {
                values(item, diag);
            }
        }
        Kind::Map(_) => record_body(node, diag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_safe_for_any_plugin_name() {
        assert_eq!(tweak_namespace("mobile_cc"), "shard_mobile_cc_");
        assert_eq!(tweak_namespace("hud-2.x"), "shard_hud_2_x_");
    }
}
