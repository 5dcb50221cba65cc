//! Content offers: before fetching anything, the player is shown what a
//! server wants to install that the cache lacks (one `content_offer` event),
//! and the download starts only once that is accepted — by the player, by a
//! remembered answer, or by the session's settings. Also the per-server
//! quota and the total cache cap that bound what any server can make a
//! player store.

use std::collections::BTreeSet;

use serde::Serialize;
use shard_cache::ContentAnswer;
use shard_protocol::limits::{DEFAULT_CACHE_CAP, DEFAULT_SERVER_QUOTA, REMEMBERED_GROWTH_PERCENT};

/// How offers are answered when no remembered answer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OfferMode {
    /// Wait for the player (the game calls `shard_client_answer_offer`).
    Ask,
    /// Accept at once (the headless client's and the library's default).
    #[default]
    Accept,
    /// Decline at once.
    Decline,
}

/// A content mode that is none of `accept`, `decline` or `ask`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content mode {0:?}: expected accept, decline or ask")]
pub struct UnknownOfferMode(pub String);

impl std::str::FromStr for OfferMode {
    type Err = UnknownOfferMode;
    fn from_str(s: &str) -> Result<Self, UnknownOfferMode> {
        match s {
            "ask" => Ok(OfferMode::Ask),
            "accept" => Ok(OfferMode::Accept),
            "decline" => Ok(OfferMode::Decline),
            other => Err(UnknownOfferMode(other.to_owned())),
        }
    }
}

/// The player's protections for one session: how offers are answered, the
/// per-server quota, the total cache cap, and the asset mirror settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSettings {
    /// How offers are answered without a remembered answer.
    pub mode: OfferMode,
    /// Most unpacked bytes one server may ask us to hold at once.
    pub server_quota: u64,
    /// Most bytes the whole runtime cache may hold.
    pub cache_cap: u64,
    /// Whether and how bundles are fetched from the server's asset mirrors.
    pub mirrors: crate::mirror::MirrorSettings,
}

impl Default for ContentSettings {
    fn default() -> Self {
        Self {
            mode: OfferMode::default(),
            server_quota: DEFAULT_SERVER_QUOTA,
            cache_cap: DEFAULT_CACHE_CAP,
            mirrors: crate::mirror::MirrorSettings::default(),
        }
    }
}

/// One plugin in a `content_offer` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfferedPlugin {
    /// Plugin name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Bytes to download.
    pub packed: u64,
    /// Bytes once installed.
    pub unpacked: u64,
    /// Client scripts it brings (code that runs in the game).
    pub scripts: u16,
}

/// What decided an offer without asking the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decided {
    /// A remembered accept for this server covers it.
    RememberedAccept,
    /// A remembered decline for this server covers it.
    RememberedDecline,
    /// The session accepts every offer (`--content accept`).
    AutoAccept,
    /// The session declines every offer (`--content decline`).
    AutoDecline,
    /// Refused: over the per-server quota.
    OverQuota,
}

impl Decided {
    /// Whether the decision lets the download start.
    pub fn accepts(self) -> bool {
        matches!(self, Decided::RememberedAccept | Decided::AutoAccept)
    }
}

/// Identity of a server's whole content: SHA-256 over every plugin name and
/// bundle hash, sorted, so the same content always hashes the same.
pub fn content_hash<'a>(plugins: impl IntoIterator<Item = (&'a str, &'a [u8; 32])>) -> String {
    let mut lines: Vec<String> = plugins
        .into_iter()
        .map(|(name, sha)| format!("{name} {}\n", hex(sha)))
        .collect();
    lines.sort();
    hex(&shard_cache::sha256(lines.concat().as_bytes()))
}

/// Lowercase hex of a hash.
pub fn hex(sha: &[u8; 32]) -> String {
    sha.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a remembered answer still applies to the server's content now:
/// the same content, or changed content that adds no client scripts (no
/// plugin with scripts the player did not see) and did not grow past the
/// remembered size by more than `REMEMBERED_GROWTH_PERCENT`.
pub fn remembered_applies(
    prev: &ContentAnswer,
    content: &str,
    script_plugins: &BTreeSet<String>,
    unpacked: u64,
) -> bool {
    if prev.content == content {
        return true;
    }
    if !script_plugins.is_subset(&prev.script_plugins) {
        return false;
    }
    let allowed = prev
        .unpacked
        .saturating_add(prev.unpacked.saturating_mul(REMEMBERED_GROWTH_PERCENT) / 100);
    unpacked <= allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(scripts: &[&str], unpacked: u64) -> ContentAnswer {
        ContentAnswer {
            accept: true,
            content: "c1".into(),
            script_plugins: scripts.iter().map(|s| s.to_string()).collect(),
            unpacked,
            answered_at: 0,
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn same_content_applies_new_scripts_or_growth_ask_again() {
        let prev = answer(&["hud"], 1000);
        assert!(remembered_applies(&prev, "c1", &set(&["hud", "x"]), 9999));
        // Changed assets or scripts of a plugin already seen with scripts.
        assert!(remembered_applies(&prev, "c2", &set(&["hud"]), 1100));
        assert!(remembered_applies(&prev, "c2", &set(&[]), 1250));
        // A plugin that now brings scripts, or too much growth.
        assert!(!remembered_applies(&prev, "c2", &set(&["hud", "x"]), 1000));
        assert!(!remembered_applies(&prev, "c2", &set(&["hud"]), 1251));
    }

    #[test]
    fn content_hash_ignores_order_and_sees_every_change() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let h = content_hash([("a", &a), ("b", &b)]);
        assert_eq!(h, content_hash([("b", &b), ("a", &a)]));
        assert_ne!(h, content_hash([("a", &a), ("b", &a)]));
        assert_ne!(h, content_hash([("a", &a)]));
        assert_eq!(h.len(), 64);
    }

    #[test]
    fn modes_parse() {
        assert_eq!("ask".parse::<OfferMode>(), Ok(OfferMode::Ask));
        assert!("maybe".parse::<OfferMode>().is_err());
    }
}
