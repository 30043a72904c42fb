//! The catalog table's operations in a transaction (`/v1/txn` node, service and check ops): reads answer
//! the entry or say it is missing; writes check their `cas` index, then register or deregister. A failed
//! operation changes nothing; `State` undoes the earlier ones of a failed transaction.

use serde::{Deserialize, Serialize};

use super::command::{service_id_of, CheckSpec, DeregisterRequest, HealthLoss, NodeSpec, RegisterRequest, ServiceSpec};
use super::table::CatalogTable;
use super::types::{HealthCheck, Node, ServiceInstance};

/// The verbs of node, service and check operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogVerb {
    Get,
    Set,
    Cas,
    Delete,
    DeleteCas,
}

impl CatalogVerb {
    pub fn parse(verb: &str) -> Option<CatalogVerb> {
        Some(match verb {
            "get" => CatalogVerb::Get,
            "set" => CatalogVerb::Set,
            "cas" => CatalogVerb::Cas,
            "delete" => CatalogVerb::Delete,
            "delete-cas" => CatalogVerb::DeleteCas,
            _ => return None,
        })
    }
}

/// A node, service or check operation of a transaction, borrowed from it; `index` is the modify index a
/// `cas`/`delete-cas` compares with.
#[derive(Clone, Copy, Debug)]
pub enum CatalogTxnOp<'a> {
    Node { verb: CatalogVerb, node: &'a NodeSpec, index: u64 },
    Service { verb: CatalogVerb, node: &'a str, service: &'a ServiceSpec, index: u64 },
    Check { verb: CatalogVerb, node: &'a str, check: &'a CheckSpec, index: u64 },
}

/// An entry a catalog operation answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogEntry {
    Node(Node),
    Service(ServiceInstance),
    Check(HealthCheck),
}

/// What a catalog write in a transaction answered, and the health losses it caused.
pub type TxnWritten = (Vec<CatalogEntry>, Vec<HealthLoss>);

impl CatalogTable {
    /// Answers a node, service or check read.
    pub fn txn_read(&self, op: CatalogTxnOp<'_>) -> Result<Vec<CatalogEntry>, String> {
        match op {
            CatalogTxnOp::Node { node, .. } => self
                .nodes
                .get(&node.node)
                .map(|n| vec![CatalogEntry::Node(n.clone())])
                .ok_or_else(|| format!("node {:?} doesn't exist", node.node)),
            CatalogTxnOp::Service { node, service, .. } => {
                let id = service_id_of(service);
                self.instance(node, &id)
                    .map(|s| vec![CatalogEntry::Service(s.clone())])
                    .ok_or_else(|| format!("service {id:?} on node {node:?} doesn't exist"))
            }
            CatalogTxnOp::Check { node, check, .. } => self
                .checks
                .get(&(node.to_string(), check.check_id.clone()))
                .map(|c| vec![CatalogEntry::Check(c.clone())])
                .ok_or_else(|| format!("check {:?} on node {node:?} doesn't exist", check.check_id)),
        }
    }

    /// Applies a node, service or check write at `index`. `Err` means nothing changed.
    pub fn txn_write(&mut self, index: u64, op: CatalogTxnOp<'_>) -> Result<TxnWritten, String> {
        match op {
            CatalogTxnOp::Node { verb, node, index: expected } => {
                let current = self.nodes.get(&node.node).map(|n| n.modify_index);
                let stale = || format!("failed to {} node {:?}, index is stale", verb_word(verb), node.node);
                if is_cas(verb) && current.unwrap_or(0) != expected {
                    return Err(stale());
                }
                if is_delete(verb) {
                    let mut losses = Vec::new();
                    self.remove_node(index, &node.node, &mut losses);
                    return Ok((Vec::new(), losses));
                }
                let request = RegisterRequest { node: node.clone(), ..RegisterRequest::default() };
                let losses = self.register(index, &request)?;
                Ok((vec![CatalogEntry::Node(self.nodes[&node.node].clone())], losses))
            }
            CatalogTxnOp::Service { verb, node, service, index: expected } => {
                let id = service_id_of(service);
                let current = self.instance(node, &id).map(|s| s.modify_index);
                if is_cas(verb) && current.unwrap_or(0) != expected {
                    return Err(format!("failed to {} service {id:?}, index is stale", verb_word(verb)));
                }
                if is_delete(verb) {
                    let request = DeregisterRequest { node: node.to_string(), service_id: Some(id), check_id: None };
                    return Ok((Vec::new(), self.deregister(index, &request)));
                }
                self.require_node(node)?;
                let request = RegisterRequest {
                    node: NodeSpec { node: node.to_string(), ..Default::default() },
                    skip_node_update: true,
                    service: Some(service.clone()),
                    checks: Vec::new(),
                };
                let losses = self.register(index, &request)?;
                Ok((vec![CatalogEntry::Service(self.instance(node, &id).expect("just registered").clone())], losses))
            }
            CatalogTxnOp::Check { verb, node, check, index: expected } => {
                let key = (node.to_string(), check.check_id.clone());
                let current = self.checks.get(&key).map(|c| c.modify_index);
                if is_cas(verb) && current.unwrap_or(0) != expected {
                    return Err(format!("failed to {} check {:?}, index is stale", verb_word(verb), check.check_id));
                }
                if is_delete(verb) {
                    let request = DeregisterRequest {
                        node: node.to_string(),
                        service_id: None,
                        check_id: Some(check.check_id.clone()),
                    };
                    return Ok((Vec::new(), self.deregister(index, &request)));
                }
                self.require_node(node)?;
                let request = RegisterRequest {
                    node: NodeSpec { node: node.to_string(), ..Default::default() },
                    skip_node_update: true,
                    service: None,
                    checks: vec![check.clone()],
                };
                let losses = self.register(index, &request)?;
                Ok((vec![CatalogEntry::Check(self.checks[&key].clone())], losses))
            }
        }
    }

    fn require_node(&self, node: &str) -> Result<(), String> {
        if self.nodes.contains_key(node) {
            Ok(())
        } else {
            Err(format!("node {node:?} doesn't exist"))
        }
    }
}

fn is_cas(verb: CatalogVerb) -> bool {
    matches!(verb, CatalogVerb::Cas | CatalogVerb::DeleteCas)
}

fn is_delete(verb: CatalogVerb) -> bool {
    matches!(verb, CatalogVerb::Delete | CatalogVerb::DeleteCas)
}

fn verb_word(verb: CatalogVerb) -> &'static str {
    match verb {
        CatalogVerb::Delete | CatalogVerb::DeleteCas => "delete",
        _ => "set",
    }
}
