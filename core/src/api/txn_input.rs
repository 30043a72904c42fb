//! `PUT /v1/txn` bodies: a JSON array of operations, each an object with exactly one of `KV`, `Node`,
//! `Service` or `Check` (Consul's `api.TxnOps`). KV values are base64; at most `TXN_OPS_MAX` operations.

use base64::Engine;
use serde::Deserialize;

use super::catalog_input::{check_spec, service_spec, AgentServiceInput, HealthCheckInput};
use super::keys::decode_object;
use super::ApiError;
use crate::catalog::NodeSpec;
use crate::kv::txn::{CatalogVerb, KvVerb};
use crate::kv::{TxnOp, KV_VALUE_BYTES_MAX, TXN_OPS_MAX};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TxnOpInput {
    kv: Option<KvOpInput>,
    node: Option<NodeOpInput>,
    service: Option<ServiceOpInput>,
    check: Option<CheckOpInput>,
}

// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KvOpInput {
    verb: Option<String>,
    key: Option<String>,
    value: Option<String>,
    flags: Option<u64>,
    index: Option<u64>,
    session: Option<String>,
    namespace: Option<String>,
    partition: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeOpInput {
    verb: Option<String>,
    node: Option<NodeInput>,
}

// Consul fields Conclave accepts but does not act on are kept so payloads carrying them decode.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeInput {
    id: Option<String>,
    node: Option<String>,
    address: Option<String>,
    datacenter: Option<String>,
    #[serde(rename = "taggedaddresses")]
    tagged_addresses: Option<std::collections::BTreeMap<String, String>>,
    meta: Option<std::collections::BTreeMap<String, String>>,
    partition: Option<String>,
    #[serde(rename = "createindex")]
    create_index: Option<u64>,
    #[serde(rename = "modifyindex")]
    modify_index: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceOpInput {
    verb: Option<String>,
    node: Option<String>,
    service: Option<AgentServiceInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckOpInput {
    verb: Option<String>,
    check: Option<HealthCheckInput>,
}

/// Decodes a transaction body into its operations, with Consul's messages for what is wrong.
pub fn decode_txn(body: &[u8]) -> Result<Vec<TxnOp>, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Failed to parse body: {e}")))?;
    let serde_json::Value::Array(items) = value else {
        return Err(ApiError::bad_request(
            "Failed to parse body: json: cannot unmarshal object into Go value of type api.TxnOps",
        ));
    };
    if items.len() > TXN_OPS_MAX {
        return Err(ApiError::too_large(format!(
            "Transaction contains too many operations ({} > {TXN_OPS_MAX})",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| {
            let bytes = serde_json::to_vec(item).expect("a parsed value serializes");
            op(decode_object(&bytes, "api.TxnOp")?)
        })
        .collect()
}

fn op(input: TxnOpInput) -> Result<TxnOp, ApiError> {
    let given = [input.kv.is_some(), input.node.is_some(), input.service.is_some(), input.check.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ApiError::bad_request("Each operation must hold exactly one of KV, Node, Service or Check"));
    }
    if let Some(kv) = input.kv {
        let verb_text = kv.verb.unwrap_or_default();
        let verb =
            KvVerb::parse(&verb_text).ok_or_else(|| ApiError::bad_request(format!("Invalid KV verb {verb_text:?}")))?;
        let value = match kv.value.as_deref() {
            None | Some("") => Vec::new(),
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| ApiError::bad_request(format!("Failed to decode KV value: {e}")))?,
        };
        if value.len() > KV_VALUE_BYTES_MAX {
            return Err(ApiError::too_large(format!(
                "Value for key {:?} is too large ({} > {KV_VALUE_BYTES_MAX} bytes)",
                kv.key.unwrap_or_default(),
                value.len()
            )));
        }
        let key = kv.key.unwrap_or_default();
        if key.is_empty() && verb != KvVerb::DeleteTree && verb != KvVerb::GetTree {
            return Err(ApiError::bad_request("Missing key name"));
        }
        return Ok(TxnOp::Kv {
            verb,
            key,
            value,
            flags: kv.flags.unwrap_or(0),
            index: kv.index.unwrap_or(0),
            session: kv.session.unwrap_or_default(),
        });
    }
    let catalog_verb = |text: Option<String>| {
        let text = text.unwrap_or_default();
        CatalogVerb::parse(&text).ok_or_else(|| ApiError::bad_request(format!("Invalid verb {text:?}")))
    };
    if let Some(node_op) = input.node {
        let verb = catalog_verb(node_op.verb)?;
        let node = node_op.node.unwrap_or_default();
        let spec = NodeSpec {
            id: node.id.unwrap_or_default(),
            node: node.node.unwrap_or_default(),
            address: node.address.unwrap_or_default(),
            datacenter: node.datacenter.unwrap_or_default(),
            tagged_addresses: node.tagged_addresses.unwrap_or_default(),
            meta: node.meta.unwrap_or_default(),
        };
        if spec.node.is_empty() {
            return Err(ApiError::bad_request("Must provide node"));
        }
        return Ok(TxnOp::Node { verb, node: spec, index: node.modify_index.unwrap_or(0) });
    }
    if let Some(service_op) = input.service {
        let verb = catalog_verb(service_op.verb)?;
        let node =
            service_op.node.filter(|n| !n.is_empty()).ok_or_else(|| ApiError::bad_request("Must provide node"))?;
        let input = service_op.service.unwrap_or_default();
        let index = input.modify_index.unwrap_or(0);
        return Ok(TxnOp::Service { verb, node, service: service_spec(input)?, index });
    }
    let check_op = input.check.expect("exactly one operation kind is present");
    let verb = catalog_verb(check_op.verb)?;
    let input = check_op.check.unwrap_or_default();
    let node =
        input.node.clone().filter(|n| !n.is_empty()).ok_or_else(|| ApiError::bad_request("Must provide node"))?;
    let index = input.modify_index.unwrap_or(0);
    Ok(TxnOp::Check { verb, check: check_spec(input, &node)?, node, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_operations_decode_with_base64_values() {
        let body = br#"[{"KV":{"Verb":"cas","Key":"a","Value":"aGk=","Index":3}},{"kv":{"verb":"get","key":"a"}}]"#;
        let ops = decode_txn(body).unwrap();
        assert_eq!(
            ops[0],
            TxnOp::Kv {
                verb: KvVerb::Cas,
                key: "a".into(),
                value: b"hi".to_vec(),
                flags: 0,
                index: 3,
                session: String::new()
            }
        );
        assert!(ops[1].is_read());
    }

    #[test]
    fn bad_transactions_are_refused() {
        assert!(decode_txn(br#"{"KV":{}}"#).is_err());
        assert!(decode_txn(br#"[{"KV":{"Verb":"explode","Key":"a"}}]"#).is_err());
        assert!(decode_txn(br#"[{"KV":{"Verb":"set","Key":"a","Value":"%%%"}}]"#).is_err());
        assert!(decode_txn(br#"[{}]"#).is_err());
        let many = format!("[{}]", vec![r#"{"KV":{"Verb":"get","Key":"a"}}"#; 65].join(","));
        assert_eq!(decode_txn(many.as_bytes()).unwrap_err().status, 413);
    }
}
