//! Remembered content answers: per server key, what the player answered to
//! that server's content offer, so the same (or similar) content is not
//! offered again. Like `known_servers` these are the player's decisions, not
//! cache: `clear` keeps them. A damaged file is treated as empty, so the
//! worst case is being asked again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use serde::{Deserialize, Serialize};
use shard_protocol::limits::MAX_REMEMBERED_SERVERS;

use crate::cache::RuntimeCache;
use crate::error::CacheError;
use crate::fsutil::{unix_now, write_atomic};

/// The answers file, beside `known_servers`.
pub const ANSWERS_FILE: &str = "content_answers.json";

/// What the player answered to one server's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentAnswer {
    /// Accepted (true) or declined.
    pub accept: bool,
    /// Hash of the whole content offered (every plugin name and bundle hash).
    pub content: String,
    /// The plugins whose client scripts the player saw in that offer.
    pub script_plugins: BTreeSet<String>,
    /// Unpacked size of the whole content offered, in bytes.
    pub unpacked: u64,
    /// When the player answered, seconds since the epoch.
    #[serde(default)]
    pub answered_at: u64,
}

impl RuntimeCache {
    fn read_answers(&self) -> BTreeMap<String, ContentAnswer> {
        fs::read(self.root().join(ANSWERS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The answer remembered for the server with this key, if any.
    pub fn content_answer(&self, server_key: &str) -> Option<ContentAnswer> {
        self.read_answers().remove(server_key)
    }

    /// Remembers `answer` for the server with this key (replacing an earlier
    /// one); past `MAX_REMEMBERED_SERVERS` the oldest answer is forgotten.
    pub fn remember_answer(
        &self,
        server_key: &str,
        mut answer: ContentAnswer,
    ) -> Result<(), CacheError> {
        let _turn = self.lock_for_writing()?;
        let mut all = self.read_answers();
        answer.answered_at = unix_now();
        all.insert(server_key.to_owned(), answer);
        while all.len() > MAX_REMEMBERED_SERVERS {
            let oldest = all
                .iter()
                .min_by_key(|(_, a)| a.answered_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => all.remove(&k),
                None => break,
            };
        }
        let path = self.root().join(ANSWERS_FILE);
        let json = serde_json::to_vec_pretty(&all).map_err(|e| CacheError::BadManifest {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_atomic(&path, &json)
    }
}
