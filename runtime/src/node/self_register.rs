//! Keeps this server in the catalog as Consul does: a node with its address, the `consul` service on the
//! server port and the `serfHealth` check. It compares the catalog with what it should hold and writes
//! only when they differ, so it costs nothing once the registration is in place.

use std::sync::Arc;
use std::time::Duration;

use conclave_core::catalog::{CheckSpec, CheckStatus, NodeSpec, RegisterRequest, ServiceSpec};
use conclave_core::state::Command;

use super::Node;
use crate::env::Env;
use conclave_core::catalog::CatalogCommand;

/// How often the registration is compared with the catalog once it is in place.
const RECHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How often a client agent re-sends its registration (it cannot compare with a catalog).
const CLIENT_RESEND_INTERVAL: Duration = Duration::from_secs(60);
/// How often it is retried while it is missing.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

pub const SERF_HEALTH_CHECK_ID: &str = "serfHealth";

impl<E: Env> Node<E> {
    /// The node half of every registration this agent makes for itself.
    pub fn node_spec(&self) -> NodeSpec {
        NodeSpec {
            id: self.node_id.clone(),
            node: self.config.node_name.clone(),
            address: self.config.advertise_addr.to_string(),
            datacenter: self.config.datacenter.clone(),
            meta: self.config.node_meta.clone(),
            ..NodeSpec::default()
        }
    }

    fn server_registration(&self) -> RegisterRequest {
        let service = self.config.server.then(|| ServiceSpec {
            id: "consul".to_string(),
            service: "consul".to_string(),
            port: self.config.ports.server,
            ..ServiceSpec::default()
        });
        RegisterRequest {
            node: self.node_spec(),
            skip_node_update: false,
            service,
            checks: vec![CheckSpec {
                check_id: SERF_HEALTH_CHECK_ID.to_string(),
                name: "Serf Health Status".to_string(),
                status: CheckStatus::Passing,
                output: "Agent alive and reachable".to_string(),
                ..CheckSpec::default()
            }],
        }
    }

    fn registration_in_place(&self) -> bool {
        let catalog = self.state.read();
        let wanted = self.node_spec();
        let node_ok = catalog.node(&wanted.node).is_some_and(|n| n.address == wanted.address && n.id == wanted.id);
        let service_ok = catalog.instance(&wanted.node, "consul").is_some_and(|s| s.port == self.config.ports.server);
        let check_ok = catalog.node_checks(&wanted.node).iter().any(|c| c.check_id == SERF_HEALTH_CHECK_ID);
        node_ok && service_ok && check_ok
    }
}

pub async fn run<E: Env>(node: Arc<Node<E>>) {
    loop {
        if node.is_leader() {
            super::acl::ensure_initial_management(&node).await;
        }
        // A client agent has no catalog of its own to compare with: it re-sends its registration, which
        // changes nothing (and wakes no blocking query) when it is already in place.
        let in_place = node.config.server && node.registration_in_place();
        let wait = if in_place {
            RECHECK_INTERVAL
        } else if node.leader().is_some() || !node.config.server {
            // A client agent registers its node with its agent token; a server's registration is the
            // cluster's own.
            let authority = if node.config.server { None } else { node.agent_authority() };
            let registration = Command::Catalog(CatalogCommand::Register(node.server_registration()));
            match node.write_as(registration, authority).await {
                Ok((_, conclave_core::state::Response::Denied(why))) => {
                    tracing::warn!(target: "conclave::acl", error = %why, "node registration refused: set an agent token that may write this node");
                    CLIENT_RESEND_INTERVAL
                }
                Ok(_) if node.config.server => RECHECK_INTERVAL,
                Ok(_) => CLIENT_RESEND_INTERVAL,
                Err(e) => {
                    tracing::debug!(target: "conclave::event", error = %e, "self-registration not applied yet");
                    RETRY_INTERVAL
                }
            }
        } else {
            RETRY_INTERVAL
        };
        tokio::time::sleep(wait + node.jitter(wait / 4)).await;
    }
}
