//! auto_encrypt: client agents that hold only the CA get their certificate from the servers.
//! (Being built: the servers' signing side.)

use super::Node;
use crate::env::Env;

/// On a server: signs a client agent's certificate request.
pub fn sign<E: Env>(node: &Node<E>, _csr_pem: &str) -> Result<(String, Vec<String>), String> {
    if !node.config.security.auto_encrypt_allow_tls {
        return Err("auto_encrypt.allow_tls is not enabled on this server".into());
    }
    Err("auto_encrypt signing is not available yet".into())
}
