//! Which requests a peer may send on which port, decided from the port, what TLS learnt of the peer and
//! whether the frame was sealed under a gossip key: the LAN port admits discovery greetings and sealed
//! LAN keyring operations only; the RPC port under `verify_incoming` admits nothing without a verified
//! certificate (except auto_encrypt's signing request over TLS), and under `verify_server_hostname`
//! Raft, server greetings and WAN keyring operations only from a certificate naming a server.

use crate::raft::messages::Request;
use crate::security::conn::PeerAuth;
use crate::security::keyring::KeyPool;
use crate::security::tls::RpcTls;

/// Which listener a connection arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// Server RPC (8300).
    Rpc,
    /// The LAN port's TCP side (8301).
    Lan,
}

/// Whether a request may be served from this peer on this port.
pub fn admission(
    tls: &RpcTls,
    port: Port,
    auth: PeerAuth,
    sealed: bool,
    request: &Request,
) -> Result<(), &'static str> {
    match port {
        Port::Lan => match request {
            Request::Hello(_) => Ok(()),
            Request::Keyring { pool: KeyPool::Lan, .. } if sealed => Ok(()),
            Request::Keyring { .. } => Err("LAN keyring operations must be sealed under an installed gossip key"),
            _ => Err("only discovery and keyring operations are served on the LAN port"),
        },
        Port::Rpc => {
            if tls.verify_incoming && !auth.verified {
                return match request {
                    Request::SignClientCertificate(_) if auth.tls => Ok(()),
                    _ => Err("verify_incoming: a certificate signed by the CA is required"),
                };
            }
            let server_only = matches!(
                request,
                Request::AppendEntries(_)
                    | Request::Vote(_)
                    | Request::InstallSnapshot(_)
                    | Request::ElectNow { .. }
                    | Request::Keyring { pool: KeyPool::Wan, .. }
            ) || matches!(request, Request::Hello(info) if info.server);
            if server_only && tls.verify_server_hostname && !auth.server {
                return Err("verify_server_hostname: this request needs a server certificate");
            }
            match request {
                Request::Keyring { pool: KeyPool::Lan, .. } => Err("LAN keyring operations go to the LAN port"),
                _ => Ok(()),
            }
        }
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
