//! Text people read: the one sanitiser for every string a server relays to
//! players (chat, server lines, popups, kick reasons), and the rules that
//! make player names identities people can tell apart.
//!
//! Relayed text keeps what a person can see and loses what only a terminal
//! or a text renderer acts on: control characters (newlines, ANSI escapes,
//! NUL), bidirectional overrides and invisible formatting characters.
//! Names are stricter: they are NFKC-normalised and refused (with the reason)
//! when they hold any such character or are reserved.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::limits::MAX_PLAYER_NAME;

/// The zero-width joiner, kept in relayed text because emoji sequences need it.
const ZWJ: char = '\u{200D}';

/// True for the Unicode bidirectional controls (embeddings, overrides,
/// isolates and marks), which can make text read differently from what it is.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// What kind of hidden character `c` is (control, line break, bidi control or
/// invisible formatting), or `None` for a character a person can see.
pub fn hidden_kind(c: char) -> Option<&'static str> {
    if is_bidi_control(c) {
        return Some("a bidirectional control character");
    }
    match c.general_category() {
        GeneralCategory::Control => Some("a control character"),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some("a line or paragraph separator")
        }
        GeneralCategory::Format => Some("an invisible formatting character"),
        _ => None,
    }
}

/// The sanitiser for every string the server relays to players: control
/// characters and line breaks become one space, bidi controls and invisible
/// formatting characters are removed (the zero-width joiner of emoji stays),
/// the ends are trimmed, and the result is cut to `max_chars` characters
/// (ending in `…` when cut). An empty result means "nothing to relay".
pub fn clean_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    for c in text.chars() {
        match hidden_kind(c) {
            None => out.push(c),
            Some(_) if c == ZWJ => out.push(c),
            Some(_) => {
                let breaks = matches!(
                    c.general_category(),
                    GeneralCategory::Control
                        | GeneralCategory::LineSeparator
                        | GeneralCategory::ParagraphSeparator
                );
                if breaks && !out.ends_with(char::is_whitespace) {
                    out.push(' ');
                }
            }
        }
    }
    let trimmed = out.trim();
    if trimmed.chars().count() <= max_chars {
        return trimmed.to_string();
    }
    let mut cut: String = trimmed.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Why a player name was refused; the message is shown to the player.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing visible is left.
    #[error("the name is empty")]
    Empty,
    /// Longer than [`MAX_PLAYER_NAME`] bytes after normalisation.
    #[error("the name is {len} bytes long after normalisation; the limit is {max}")]
    TooLong {
        /// Bytes after NFKC.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Holds a character that could hide what the name really is.
    #[error("the name contains {kind} (U+{code:04X}); use visible characters only")]
    Hidden {
        /// What kind of character it is.
        kind: &'static str,
        /// Its code point.
        code: u32,
    },
    /// A name the server keeps for itself or for commands.
    #[error("the name `{name}` is reserved: {why}")]
    Reserved {
        /// The normalised name.
        name: String,
        /// Why it is reserved.
        why: &'static str,
    },
}

/// Normalises a requested player name (Unicode NFKC, whitespace runs folded to
/// one space, ends trimmed) and checks it: no control, format or bidi
/// characters, no private-use or unassigned code points, at most
/// [`MAX_PLAYER_NAME`] bytes, and not reserved (`server`, a leading `/`, or a
/// bare number or `#number`, which commands read as a peer id).
pub fn normalize_name(raw: &str) -> Result<String, NameError> {
    let nfkc: String = raw.nfkc().collect();
    for c in nfkc.chars() {
        let kind = hidden_kind(c).or(match c.general_category() {
            GeneralCategory::PrivateUse => Some("a private-use character"),
            GeneralCategory::Unassigned | GeneralCategory::Surrogate => {
                Some("an unassigned code point")
            }
            _ => None,
        });
        if let Some(kind) = kind {
            return Err(NameError::Hidden {
                kind,
                code: u32::from(c),
            });
        }
    }
    let name = nfkc.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_PLAYER_NAME {
        return Err(NameError::TooLong {
            len: name.len(),
            max: MAX_PLAYER_NAME,
        });
    }
    let reserved = |why| {
        Err(NameError::Reserved {
            name: name.clone(),
            why,
        })
    };
    if name.starts_with('/') {
        return reserved("names may not start with `/` (commands do)");
    }
    if name_key(&name) == "server" {
        return reserved("the server speaks under that name");
    }
    let digits = name.strip_prefix('#').unwrap_or(&name);
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        return reserved("commands read a number as a peer id");
    }
    Ok(name)
}

/// The key two names are compared by: NFKC after lower-casing, so names that
/// differ only in case or in compatibility forms (`Ｌｅｇｉｔ`) collide.
pub fn name_key(name: &str) -> String {
    let nfkc: String = name.nfkc().collect();
    nfkc.to_lowercase().nfkc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_removes_what_only_terminals_see() {
        assert_eq!(clean_text("hi\nthere", 512), "hi there");
        assert_eq!(clean_text("\u{1b}[31mred\u{1b}[0m", 512), "[31mred [0m");
        assert_eq!(clean_text("\u{1b}]0;pwned\u{7}x", 512), "]0;pwned x");
        assert_eq!(clean_text("a\0b", 512), "a b");
        assert_eq!(clean_text("\u{202e}nimda", 512), "nimda");
        assert_eq!(clean_text("le\u{200b}git", 512), "legit");
        assert_eq!(clean_text(" \r\n\t ", 512), "");
        assert_eq!(clean_text("a\u{2028}b", 512), "a b");
        // Emoji sequences keep their joiner.
        assert_eq!(clean_text("👩\u{200D}💻", 512), "👩\u{200D}💻");
        assert_eq!(clean_text("héllo wörld", 512), "héllo wörld");
    }

    #[test]
    fn clean_text_counts_characters_and_marks_a_cut() {
        let long = "é".repeat(600);
        let c = clean_text(&long, 512);
        assert_eq!(c.chars().count(), 512);
        assert!(c.ends_with('…'));
        assert_eq!(clean_text(&"é".repeat(512), 512).chars().count(), 512);
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize_name("  Vee  ").unwrap(), "Vee");
        assert_eq!(normalize_name("ｌｅｇｉｔ").unwrap(), "legit");
        assert_eq!(normalize_name("a\u{3000}\u{a0} b").unwrap(), "a b");
        assert_eq!(name_key("LeGiT"), name_key("legit"));
        assert_eq!(name_key("ＬＥＧＩＴ"), "legit");
    }

    #[test]
    fn hidden_characters_in_names_are_refused_with_the_reason() {
        for (raw, kind) in [
            ("le\u{200b}git", "formatting"),
            ("\u{202e}nimda", "bidirectional"),
            ("a\u{2066}b", "bidirectional"),
            ("a\nb", "control"),
            ("a\u{1b}b", "control"),
            ("a\u{e000}b", "private-use"),
        ] {
            let e = normalize_name(raw).unwrap_err();
            assert!(e.to_string().contains(kind), "{raw:?}: {e}");
        }
    }

    #[test]
    fn reserved_names_are_refused() {
        for raw in ["server", "SERVER", "ｓｅｒｖｅｒ", "/kick", "42", "#7"] {
            let e = normalize_name(raw).unwrap_err();
            assert!(matches!(e, NameError::Reserved { .. }), "{raw}: {e}");
        }
        assert!(matches!(normalize_name("   "), Err(NameError::Empty)));
        assert!(normalize_name("server2").is_ok());
        assert!(normalize_name("v2").is_ok());
    }

    #[test]
    fn nfkc_expansion_is_checked_against_the_byte_limit() {
        // U+FDFA expands to 18 characters (33 bytes) under NFKC.
        let e = normalize_name("\u{FDFA}").unwrap_err();
        assert!(matches!(e, NameError::TooLong { .. }), "{e}");
    }
}
