//! JSON for pushed scripts, done by serde_json in the runtime instead of by
//! hand in REDscript: read a string, number, bool or size at a JSON Pointer
//! (RFC 6901, e.g. `/options/2`), and build an object to send key by key.
//! The C ABI exposes these as `shard_client_json_*`; the proxy declares them
//! as `ShardJson*` natives.

use serde_json::{Map, Value};
use shard_protocol::limits::MAX_RPC_JSON;

/// Why a JSON native could not answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonNativeError {
    /// The input is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// Nothing of the asked kind at that pointer.
    #[error("no {kind} at `{pointer}`")]
    NotFound {
        /// The pointer.
        pointer: String,
        /// "string", "number", "bool" or "array or object".
        kind: &'static str,
    },
    /// The object being built is not an object.
    #[error("can only add keys to a JSON object")]
    NotAnObject,
    /// The built object would exceed the RPC payload limit.
    #[error("the object would exceed {MAX_RPC_JSON} bytes")]
    TooLarge,
}

fn parse(json: &str) -> Result<Value, JsonNativeError> {
    serde_json::from_str(json).map_err(|e| JsonNativeError::NotJson(e.to_string()))
}

fn at<T>(
    json: &str,
    pointer: &str,
    kind: &'static str,
    pick: impl FnOnce(&Value) -> Option<T>,
) -> Result<T, JsonNativeError> {
    parse(json)?
        .pointer(pointer)
        .and_then(pick)
        .ok_or_else(|| JsonNativeError::NotFound {
            pointer: pointer.to_string(),
            kind,
        })
}

/// The string at `pointer`.
pub fn get_string(json: &str, pointer: &str) -> Result<String, JsonNativeError> {
    at(json, pointer, "string", |v| v.as_str().map(str::to_string))
}

/// The number at `pointer`.
pub fn get_number(json: &str, pointer: &str) -> Result<f64, JsonNativeError> {
    at(json, pointer, "number", Value::as_f64)
}

/// The bool at `pointer`.
pub fn get_bool(json: &str, pointer: &str) -> Result<bool, JsonNativeError> {
    at(json, pointer, "bool", Value::as_bool)
}

/// Entries of the array or object at `pointer`.
pub fn get_size(json: &str, pointer: &str) -> Result<usize, JsonNativeError> {
    at(json, pointer, "array or object", |v| match v {
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    })
}

/// `object` (`""` = a new empty object) with `key` set to `value`, as compact JSON.
pub fn set(object: &str, key: &str, value: Value) -> Result<String, JsonNativeError> {
    let mut map = if object.trim().is_empty() {
        Map::new()
    } else {
        match parse(object)? {
            Value::Object(m) => m,
            _ => return Err(JsonNativeError::NotAnObject),
        }
    };
    map.insert(key.to_string(), value);
    let out = Value::Object(map).to_string();
    if out.len() > MAX_RPC_JSON {
        return Err(JsonNativeError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_hand_scanning_got_wrong() {
        // Spaces after colons, nesting, escaped quotes, arrays.
        let j = r#"{ "question" : "Best \"bar\"?", "options": ["Afterlife", "Lizzie's"], "counts": [2, 0], "open": true, "meta": {"round": 3.5} }"#;
        assert_eq!(get_string(j, "/question").unwrap(), "Best \"bar\"?");
        assert_eq!(get_string(j, "/options/1").unwrap(), "Lizzie's");
        assert_eq!(get_number(j, "/counts/0").unwrap(), 2.0);
        assert_eq!(get_number(j, "/meta/round").unwrap(), 3.5);
        assert!(get_bool(j, "/open").unwrap());
        assert_eq!(get_size(j, "/options").unwrap(), 2);
        assert_eq!(get_size(j, "").unwrap(), 5);
        assert!(matches!(
            get_string(j, "/counts/0"),
            Err(JsonNativeError::NotFound { kind: "string", .. })
        ));
        assert!(matches!(
            get_string("{", "/a"),
            Err(JsonNativeError::NotJson(_))
        ));
    }

    #[test]
    fn builds_objects_to_send() {
        let o = set("", "option", Value::from(2)).unwrap();
        let o = set(&o, "note", Value::from("a \"b\"")).unwrap();
        assert_eq!(o, r#"{"note":"a \"b\"","option":2}"#);
        assert_eq!(
            set("[1]", "k", Value::Null),
            Err(JsonNativeError::NotAnObject)
        );
        let big = "x".repeat(MAX_RPC_JSON);
        assert_eq!(
            set("", "k", Value::from(big)),
            Err(JsonNativeError::TooLarge)
        );
    }
}
