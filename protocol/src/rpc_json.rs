//! The checks every RPC payload passes before anyone parses it for real:
//! size ([`MAX_RPC_JSON`]), nesting depth ([`MAX_RPC_JSON_DEPTH`], measured
//! by a scan that does not recurse) and shape (a JSON object). The server
//! applies them to `ClientRpc` before any plugin code runs; the client
//! applies them before sending, so an honest client never sends a payload
//! the server would drop.

use crate::limits::{MAX_RPC_JSON, MAX_RPC_JSON_DEPTH};

/// A JSON object, the only payload shape an RPC carries.
pub type RpcPayload = serde_json::Map<String, serde_json::Value>;

/// Why a payload was refused, one variant per cause so receivers count them apart.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RpcJsonError {
    /// Longer than [`MAX_RPC_JSON`].
    #[error("RPC payload of {len} bytes exceeds the limit of {MAX_RPC_JSON} bytes")]
    TooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// Nested deeper than [`MAX_RPC_JSON_DEPTH`].
    #[error("RPC payload nests deeper than {MAX_RPC_JSON_DEPTH} levels")]
    TooDeep,
    /// Not JSON, or JSON but not an object.
    #[error("RPC payload is not a JSON object: {0}")]
    Malformed(String),
}

/// Deepest nesting of `[`/`{` outside strings, stopping early once past
/// `limit` (linear, no recursion, so any input is cheap).
fn depth_exceeds(json: &str, limit: usize) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for b in json.bytes() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Checks `json` against the RPC limits and parses it into an object.
pub fn parse_rpc_payload(json: &str) -> Result<RpcPayload, RpcJsonError> {
    if json.len() > MAX_RPC_JSON {
        return Err(RpcJsonError::TooLarge { len: json.len() });
    }
    if depth_exceeds(json, MAX_RPC_JSON_DEPTH) {
        return Err(RpcJsonError::TooDeep);
    }
    serde_json::from_str::<RpcPayload>(json).map_err(|e| RpcJsonError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_within_limits_parse() {
        let p = parse_rpc_payload(r#"{"option": 2, "note": "a \"quoted\" [x]"}"#).unwrap();
        assert_eq!(p["option"], 2);
        let nested = format!(
            "{}1{}",
            r#"{"a":"#.repeat(MAX_RPC_JSON_DEPTH - 1) + "[",
            "]".to_string() + &"}".repeat(MAX_RPC_JSON_DEPTH - 1)
        );
        assert!(parse_rpc_payload(&nested).is_ok(), "{nested}");
    }

    #[test]
    fn each_cause_is_refused_by_name() {
        let big = format!(r#"{{"s":"{}"}}"#, "x".repeat(MAX_RPC_JSON));
        assert!(matches!(
            parse_rpc_payload(&big),
            Err(RpcJsonError::TooLarge { .. })
        ));
        let deep = "[".repeat(MAX_RPC_JSON_DEPTH + 1);
        assert_eq!(parse_rpc_payload(&deep), Err(RpcJsonError::TooDeep));
        // Brackets inside strings do not count as nesting.
        let quoted = format!(r#"{{"s":"{}"}}"#, "[".repeat(100));
        assert!(parse_rpc_payload(&quoted).is_ok());
        for bad in ["{not json", "[1,2]", "3", "\"x\"", ""] {
            assert!(
                matches!(parse_rpc_payload(bad), Err(RpcJsonError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
