//! Case-insensitive keys. Go's `encoding/json` matches object keys to struct fields ignoring case, and
//! Consul adds snake_case aliases by hand; both are had here by normalising every struct-shaped key
//! (lower case, no `_`) before serde sees it. Keys of user maps (`Meta`, `NodeMeta`, `Header`,
//! `TaggedAddresses`) are data and are kept exactly.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ApiError;

/// Normalised names of fields whose value is a map keyed by user data.
const MAP_FIELDS: &[&str] = &["meta", "nodemeta", "servicemeta", "header", "taggedaddresses", "servicetaggedaddresses"];

pub fn normalize_key(key: &str) -> String {
    key.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect()
}

/// Rewrites struct-shaped keys to their normal form, remembering how the user spelled each one.
fn normalize(value: Value, spelled: &mut BTreeMap<String, String>, keep_keys: bool) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                if keep_keys {
                    out.insert(key, normalize(child, spelled, false));
                } else {
                    let normal = normalize_key(&key);
                    let child_is_map = MAP_FIELDS.contains(&normal.as_str());
                    spelled.insert(normal.clone(), key);
                    out.insert(normal, normalize(child, spelled, child_is_map));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| normalize(v, spelled, false)).collect()),
        other => other,
    }
}

/// Parses `body` as a JSON object and decodes it into `T` (whose serde field names are normalised),
/// with Consul's error messages.
pub fn decode_object<T: DeserializeOwned>(body: &[u8], go_type: &str) -> Result<T, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "Request decode failed: json: cannot unmarshal {} into Go value of type {go_type}",
            json_type(&value)
        )));
    }
    let mut spelled = BTreeMap::new();
    let value = normalize(value, &mut spelled, false);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        ApiError::bad_request(format!("Request decode failed: {}", go_message(&inner, &path, go_type, &spelled)))
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Turns serde's message into Go's wording where there is one.
fn go_message(inner: &str, path: &str, go_type: &str, spelled: &BTreeMap<String, String>) -> String {
    if let Some(rest) = inner.strip_prefix("unknown field `") {
        let normal = rest.split('`').next().unwrap_or(rest);
        let original = spelled.get(normal).map(String::as_str).unwrap_or(normal);
        return format!("json: unknown field {original:?}");
    }
    let field = path
        .split('.')
        .filter(|segment| !segment.starts_with('[') && *segment != "?")
        .map(|segment| spelled.get(segment).map(String::as_str).unwrap_or(segment).to_string())
        .collect::<Vec<_>>()
        .join(".");
    if field.is_empty() {
        format!("json: {inner}")
    } else {
        format!("json: cannot unmarshal into Go struct field {go_type}.{field}: {inner}")
    }
}
