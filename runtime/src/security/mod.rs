//! Transport security of the node's own protocols and of HTTPS: TLS contexts (`tls`), the client side
//! of HTTPS checks (`check_tls`), the RPC connection handshake (`conn`), the gossip keyrings (`keyring`),
//! and certificate issuing for `conclave tls` and auto_encrypt (`issue`). Without certificates and keys
//! everything here lets plain traffic through, which is Consul's behaviour without them too.

pub mod check_tls;
pub mod conn;
pub mod https_client;
pub mod issue;
mod key_der;
pub mod keyring;
pub mod tls;

use std::sync::Arc;

use crate::config::NodeConfig;
use crate::env::Store;

/// What a node uses to secure its transports, built once at start.
pub struct Security {
    pub rpc: Arc<tls::RpcTls>,
    pub gossip: Arc<keyring::GossipKeys>,
    /// The TLS client of HTTPS checks (Consul's `OutgoingTLSConfigForCheck`).
    pub checks: check_tls::CheckTls,
    /// A client agent's HTTPS certificate from auto_encrypt, when HTTPS has no `cert_file`.
    pub https_auto: Option<Arc<tls::AutoCertificate>>,
}

impl Security {
    /// Loads certificates and keyrings named by `config` (an unreadable file is an error naming it).
    pub fn load(config: &NodeConfig, store: Arc<dyn Store>, rng_seed: u64) -> Result<Security, String> {
        let settings = &config.security;
        let outgoing = settings.internal_rpc.verify_outgoing || settings.auto_encrypt_tls;
        let rpc = tls::RpcTls::new(&settings.internal_rpc, outgoing, config.server_tls_name())?;
        let gossip = keyring::GossipKeys::load(&settings.encrypt, store, rng_seed, config.server)?;
        // Consul's checks use the internal RPC settings (tlsutil's internalRPCTLSConfig).
        let checks = check_tls::CheckTls::new(&settings.internal_rpc, settings.enable_agent_tls_for_checks)?;
        let https_auto = (settings.auto_encrypt_tls && !config.server && settings.https.cert_file.is_none())
            .then(|| Arc::new(tls::AutoCertificate::default()));
        Ok(Security { rpc: Arc::new(rpc), gossip: Arc::new(gossip), checks, https_auto })
    }
}
