//! `known_servers`: trust-on-first-use pins of server key fingerprints, one
//! `address fingerprint_hex` per line, rewritten atomically.

use std::fs;

use shard_protocol::limits::{MAX_FINGERPRINT, MAX_SERVER_NAME};

use crate::cache::{KNOWN_SERVERS_FILE, RuntimeCache};
use crate::error::CacheError;
use crate::fsutil::{io_err, write_atomic};

/// What [`RuntimeCache::pin_server`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    /// The address was unknown; its fingerprint is now pinned (trust on first use).
    NewlyPinned,
    /// The address was already pinned to this same fingerprint.
    Matches,
}

/// Checks an address: non-empty, no whitespace or control characters (it is a line field).
fn validate_address(address: &str) -> Result<(), CacheError> {
    if address.is_empty() || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CacheError::InvalidField {
            field: "address",
            value: address.chars().take(MAX_SERVER_NAME).collect(),
            reason: "empty or contains spaces or control characters".into(),
        });
    }
    Ok(())
}

/// Checks and lowercases a fingerprint: hex digits, even length, at most `MAX_FINGERPRINT`.
fn normalize_fingerprint(fp: &str) -> Result<String, CacheError> {
    if fp.is_empty()
        || fp.len() > MAX_FINGERPRINT
        || !fp.len().is_multiple_of(2)
        || !fp.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(CacheError::InvalidField {
            field: "fingerprint",
            value: fp.chars().take(MAX_FINGERPRINT).collect(),
            reason: format!("expected hex digits, at most {MAX_FINGERPRINT}"),
        });
    }
    Ok(fp.to_ascii_lowercase())
}

/// The outcome of presenting `presented` for `address`, already pinned to `pinned`.
fn compare_pin(address: &str, pinned: String, presented: String) -> Result<PinOutcome, CacheError> {
    if pinned == presented {
        Ok(PinOutcome::Matches)
    } else {
        Err(CacheError::ServerKeyMismatch {
            address: address.to_owned(),
            pinned,
            presented,
        })
    }
}

impl RuntimeCache {
    /// Reads every `(address, fingerprint)` pin; blank lines and `#` comments are skipped.
    pub fn known_servers(&self) -> Result<Vec<(String, String)>, CacheError> {
        let path = self.root().join(KNOWN_SERVERS_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(addr), Some(fp), None) => match normalize_fingerprint(fp) {
                    Ok(fp) => out.push((addr.to_owned(), fp)),
                    Err(_) => return Err(CacheError::BadKnownServers { path, line: i + 1 }),
                },
                _ => return Err(CacheError::BadKnownServers { path, line: i + 1 }),
            }
        }
        Ok(out)
    }

    /// The fingerprint pinned for `address`, if any.
    pub fn known_server(&self, address: &str) -> Result<Option<String>, CacheError> {
        Ok(self
            .known_servers()?
            .into_iter()
            .find(|(a, _)| a == address)
            .map(|(_, fp)| fp))
    }

    /// Trust on first use: pins `fingerprint` for an unknown `address`, accepts
    /// the same one again, and refuses a different one with `ServerKeyMismatch`.
    pub fn pin_server(&self, address: &str, fingerprint: &str) -> Result<PinOutcome, CacheError> {
        validate_address(address)?;
        let fp = normalize_fingerprint(fingerprint)?;
        if let Some(pinned) = self.known_server(address)? {
            return compare_pin(address, pinned, fp);
        }
        // Checked again in turn: another client sharing the cache may have
        // pinned this address meanwhile, and its pin must neither be lost
        // nor silently replaced.
        let _turn = self.lock_for_writing()?;
        if let Some(pinned) = self.known_server(address)? {
            return compare_pin(address, pinned, fp);
        }
        self.replace_server_in_turn(address, &fp)?;
        Ok(PinOutcome::NewlyPinned)
    }

    /// Pins `fingerprint` for `address` whatever was pinned before (the user
    /// confirmed a key change); the file is rewritten atomically.
    pub fn replace_server(&self, address: &str, fingerprint: &str) -> Result<(), CacheError> {
        validate_address(address)?;
        let fp = normalize_fingerprint(fingerprint)?;
        let _turn = self.lock_for_writing()?;
        self.replace_server_in_turn(address, &fp)
    }

    /// [`Self::replace_server`] for a caller holding the write lock.
    fn replace_server_in_turn(&self, address: &str, fp: &str) -> Result<(), CacheError> {
        let mut pins = self.known_servers()?;
        pins.retain(|(a, _)| a != address);
        pins.push((address.to_owned(), fp.to_owned()));
        self.write_known_servers(&pins)
    }

    /// Removes the pin for `address`; returns whether there was one.
    pub fn forget_server(&self, address: &str) -> Result<bool, CacheError> {
        let _turn = self.lock_for_writing()?;
        let mut pins = self.known_servers()?;
        let before = pins.len();
        pins.retain(|(a, _)| a != address);
        if pins.len() == before {
            return Ok(false);
        }
        self.write_known_servers(&pins)?;
        Ok(true)
    }

    /// Writes the whole pin list atomically.
    fn write_known_servers(&self, pins: &[(String, String)]) -> Result<(), CacheError> {
        let mut text = String::from(
            "# shard known_servers: address fingerprint_hex (SHA-256 of the server key)\n",
        );
        for (a, fp) in pins {
            text.push_str(a);
            text.push(' ');
            text.push_str(fp);
            text.push('\n');
        }
        write_atomic(&self.root().join(KNOWN_SERVERS_FILE), text.as_bytes())
    }
}
