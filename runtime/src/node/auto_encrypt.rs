//! auto_encrypt: client agents that hold only the CA get their RPC certificate from the servers, as
//! Consul distributes client certificates.
//!
//! Servers: the leader of a cluster whose servers allow it (`auto_encrypt { allow_tls = true }`) makes
//! the cluster's CA once and replicates it (`Command::Ca`); every server trusts certificates signed by it
//! on incoming RPC, and signs client agents' requests with it. A request names the node and carries the
//! agent's token: with ACLs on it needs `node:write` on that node. The server decides every name in the
//! certificate (`client.<dc>.<domain>`, `localhost`, the agent's `dns_san`/`ip_san`), and refuses names a
//! server's certificate holds, so a signed client certificate can never pose as a server.
//!
//! Client agents (`auto_encrypt { tls = true }`): make a key and a signing request, send it to a known
//! server over TLS (verified against the configured CA), install the answer as the RPC identity, and renew
//! it at half its lifetime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use conclave_core::acl::{Need, Resource};
use conclave_core::ca::CaCommand;
use conclave_core::state::{Command, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::Node;
use crate::env::Env;
use crate::raft::messages::{Reply, Request, SignRequest};
use crate::security::issue::{self, CaRequest, LeafRequest, Role};
use crate::security::tls::Identity;

/// Lifetime of a signed client certificate, in days (Consul's leaf certificates live 72 hours).
const CLIENT_CERTIFICATE_DAYS: u32 = 3;
/// Lifetime of the cluster CA, in days (Consul's built-in CA root: ten years).
const CLUSTER_CA_DAYS: u32 = 3650;
/// How often a server looks for the cluster CA until it has one, and a client retries a failed request.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait between a client agent's failed requests.
const RETRY_INTERVAL_MAX: Duration = Duration::from_secs(10);
const SIGN_TIMEOUT: Duration = Duration::from_secs(10);

fn wall_clock<E: Env>(node: &Node<E>) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(node.env.unix_time_ms())
}

/// On a server: signs a client agent's certificate request; answers the certificate and the CA roots.
pub fn sign<E: Env>(node: &Node<E>, request: &SignRequest) -> Result<(String, Vec<String>), String> {
    if !node.config.security.auto_encrypt_allow_tls {
        return Err("AutoEncrypt.Sign: auto_encrypt.allow_tls is not enabled on this server".into());
    }
    if node.config.acl.enabled {
        let identity = super::acl::resolve_on_server(node, &request.token).map_err(|e| e.to_string())?;
        let authorizer = identity.authorizer(node.config.acl.default_allow);
        if !authorizer.allows(Resource::Node, &request.node, Need::Write) {
            return Err("Permission denied: token lacks permission 'node:write' on \"".to_string()
                + &request.node
                + "\"");
        }
    }
    let server_name = node.config.server_tls_name();
    for name in &request.dns_sans {
        if name.contains('*') || name == &server_name || name.ends_with(&format!(".{server_name}")) {
            return Err(format!("AutoEncrypt.Sign: {name:?} is a server's name and cannot be given to a client"));
        }
    }
    let ca = node.state.read().ca().ca().cloned().ok_or("AutoEncrypt.Sign: the cluster CA is not initialized yet")?;
    let domain = node.config.domain.trim_end_matches('.');
    let now = wall_clock(node);
    let mut leaf =
        LeafRequest::consul(Role::Client, &node.config.datacenter, domain, None, CLIENT_CERTIFICATE_DAYS, now);
    leaf.dns_names.extend(request.dns_sans.iter().cloned());
    leaf.ip_addresses.extend(request.ip_sans.iter().copied());
    let certificate =
        issue::sign_request(&ca.cert_pem, &ca.key_pem, &request.csr_pem, &leaf).map_err(|e| e.to_string())?;
    tracing::info!(target: "conclave::event", node = %request.node, "auto_encrypt: signed a client agent's certificate");
    Ok((certificate, vec![ca.cert_pem]))
}

/// The node's auto_encrypt duties: a server's cluster CA, a client agent's certificate.
pub async fn run<E: Env>(node: Arc<Node<E>>) {
    if node.config.server {
        serve_cluster_ca(node).await;
    } else if node.config.security.auto_encrypt_tls {
        keep_client_certificate(node).await;
    }
}

/// Makes the cluster CA when this server leads and none exists, and trusts it once it is replicated.
async fn serve_cluster_ca<E: Env>(node: Arc<Node<E>>) {
    loop {
        let ca = node.state.read().ca().ca().cloned();
        match ca {
            Some(ca) => {
                match CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()) {
                    Ok(root) => match node.security.rpc.add_root(root.clone()).and(node.security.checks.add_root(root))
                    {
                        Ok(()) => tracing::debug!(target: "conclave::event", "trusting the cluster's auto_encrypt CA"),
                        Err(e) => tracing::error!(target: "conclave::event", error = %e, "cannot trust the cluster CA"),
                    },
                    Err(e) => {
                        tracing::error!(target: "conclave::event", error = %e, "the replicated cluster CA is unreadable")
                    }
                }
                return;
            }
            None if node.is_leader() && node.config.security.auto_encrypt_allow_tls => {
                initialize_cluster_ca(&node).await
            }
            None => {}
        }
        tokio::time::sleep(POLL_INTERVAL + node.jitter(POLL_INTERVAL / 4)).await;
    }
}

async fn initialize_cluster_ca<E: Env>(node: &Node<E>) {
    let request = CaRequest {
        common_name: format!("Conclave Auto-Encrypt CA {}", node.config.datacenter),
        days: CLUSTER_CA_DAYS,
        permitted_dns_domains: Vec::new(),
        now: wall_clock(node),
    };
    let (cert_pem, key_pem) = match issue::generate_ca(&request) {
        Ok(pair) => pair,
        Err(e) => return tracing::error!(target: "conclave::event", error = %e, "cannot make the cluster CA"),
    };
    match node.write(Command::Ca(CaCommand::Initialize { cert_pem, key_pem })).await {
        Ok((_, Response::Applied)) => tracing::info!(target: "conclave::event", "auto_encrypt: cluster CA initialized"),
        Ok((_, other)) => tracing::debug!(target: "conclave::event", answer = ?other, "cluster CA not initialized"),
        Err(e) => tracing::debug!(target: "conclave::event", error = %e, "cluster CA not initialized yet"),
    }
}

/// Gets the client agent's certificate from a server, and renews it at half its lifetime.
async fn keep_client_certificate<E: Env>(node: Arc<Node<E>>) {
    let mut retry = POLL_INTERVAL;
    for attempt in 0.. {
        let wait = match request_certificate(&node, attempt).await {
            Ok(()) => {
                retry = POLL_INTERVAL;
                Duration::from_secs(u64::from(CLIENT_CERTIFICATE_DAYS) * 86_400 / 2)
            }
            Err(e) => {
                tracing::debug!(target: "conclave::event", error = %e, "auto_encrypt: no certificate yet");
                retry = (retry * 2).min(RETRY_INTERVAL_MAX);
                retry
            }
        };
        tokio::time::sleep(wait + node.jitter(wait / 8)).await;
    }
}

/// Where to ask: a server this agent knows, else (at first start, when no server can be confirmed
/// without a certificate) the join addresses on the server RPC port, as Consul's client does.
fn candidate_server<E: Env>(node: &Node<E>, attempt: usize) -> Option<SocketAddr> {
    if let Some(known) = node.pick_server().and_then(|s| s.parse().ok()) {
        return Some(known);
    }
    let joins = &node.config.join;
    let join = joins.get(attempt % joins.len().max(1))?;
    Some(SocketAddr::new(join.ip(), node.config.ports.server))
}

async fn request_certificate<E: Env>(node: &Node<E>, attempt: usize) -> Result<(), String> {
    let addr = candidate_server(node, attempt).ok_or("no server known yet and no join address")?;
    let server = addr.to_string();
    let domain = node.config.domain.trim_end_matches('.');
    let (csr_pem, key_pem) =
        issue::signing_request(&format!("client.{}.{domain}", node.config.datacenter)).map_err(|e| e.to_string())?;
    let request = Request::SignClientCertificate(SignRequest {
        csr_pem,
        node: node.config.node_name.clone(),
        token: node.agent_secret(),
        dns_sans: node.config.security.auto_encrypt_dns_san.clone(),
        ip_sans: node.config.security.auto_encrypt_ip_san.clone(),
    });
    let reply = node.pool.call(addr, &request, SIGN_TIMEOUT).await.map_err(|e| format!("{server}: {e}"))?;
    let (certificate, roots) = match reply {
        Reply::ClientCertificate(answer) => answer.map_err(|e| format!("{server}: {e}"))?,
        Reply::Refused(why) => return Err(format!("{server} refused: {why}")),
        other => return Err(format!("{server} answered {other:?}")),
    };
    let identity = Identity::from_pem(certificate.as_bytes(), key_pem.as_bytes())?;
    // Checks follow the agent's certificate and CAs too (Consul's combined pool and auto-TLS certificate).
    node.security.checks.set_identity(identity.clone())?;
    if let Some(https) = &node.security.https_auto {
        https.set(&identity)?;
    }
    node.security.rpc.set_identity(identity)?;
    for root in roots {
        let root = CertificateDer::from_pem_slice(root.as_bytes()).map_err(|e| format!("bad CA root: {e}"))?;
        node.security.checks.add_root(root.clone())?;
        node.security.rpc.add_root(root)?;
    }
    // Pooled connections were made without a certificate; new ones present it.
    node.pool.forget_all();
    tracing::info!(target: "conclave::event", server = %server, "auto_encrypt: got this agent's certificate");
    Ok(())
}
