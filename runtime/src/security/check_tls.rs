//! TLS for HTTPS health checks, as Consul's `OutgoingTLSConfigForCheck` (tlsutil/config.go): the web PKI
//! roots and no client certificate, unless `enable_agent_tls_for_checks` is on — then the agent's
//! `internal_rpc` settings: its CA as the roots (the web PKI roots when it has none, as Go's nil
//! `RootCAs`), its certificate for a target that asks for one, its TLS version and suites. A check's
//! `TLSSkipVerify` accepts any certificate; its `TLSServerName` is the name sent and verified
//! (`server_name`). Both client configurations are built when the agent starts, and again only when
//! auto_encrypt gives a client agent its certificate or the cluster's CA.

use std::sync::{Arc, Mutex, RwLock};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::https_client::SkipVerify;
use super::tls::{load_roots, provider, root_store, Identity};
use crate::config::tls::TlsInterface;

/// What the configurations are built from: the files' roots and certificate, and what auto_encrypt adds.
struct Material {
    settings: TlsInterface,
    roots: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
}

impl Material {
    fn build(&self) -> Result<Configs, String> {
        let (provider, versions) = provider(&self.settings)?;
        let roots = match self.roots.is_empty() {
            true => Arc::new(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }),
            false => root_store(&self.roots)?,
        };
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| format!("cannot build the check certificate verifier: {e}"))?;
        let skip = Arc::new(SkipVerify(provider.clone()));
        let client = |verifier: Arc<dyn ServerCertVerifier>| -> Result<Arc<ClientConfig>, String> {
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(versions)
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(verifier);
            let config = match &self.identity {
                Some(identity) => builder
                    .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                    .map_err(|e| format!("unusable certificate or key for checks: {e}"))?,
                None => builder.with_no_client_auth(),
            };
            Ok(Arc::new(config))
        };
        Ok(Configs { verifying: client(verifier)?, skipping: client(skip)? })
    }
}

/// The client configuration of checks that verify certificates and of those that skip verification.
struct Configs {
    verifying: Arc<ClientConfig>,
    skipping: Arc<ClientConfig>,
}

/// The client side of every HTTPS check this agent runs.
pub struct CheckTls {
    /// `enable_agent_tls_for_checks`: only then do auto_encrypt's certificate and CAs concern checks.
    agent_tls: bool,
    material: Mutex<Material>,
    /// Rebuilt only when auto_encrypt changes the material.
    configs: RwLock<Configs>,
}

impl CheckTls {
    /// Builds both configurations; with `agent_tls` (`enable_agent_tls_for_checks`) from `interface`,
    /// else from Go's defaults (TLS 1.2 and up, default suites). Errors name the unreadable file.
    pub fn new(interface: &TlsInterface, agent_tls: bool) -> Result<CheckTls, String> {
        let settings = if agent_tls { interface.clone() } else { TlsInterface::default() };
        let identity = match (&settings.cert_file, &settings.key_file) {
            (Some(cert), Some(key)) => Some(Identity::from_files(cert, key)?),
            _ => None,
        };
        let material = Material { roots: load_roots(&settings)?, settings, identity };
        let configs = material.build()?;
        Ok(CheckTls { agent_tls, material: Mutex::new(material), configs: RwLock::new(configs) })
    }

    /// How a check with `TLSSkipVerify` = `skip_verify` opens its TLS connections.
    pub fn connector(&self, skip_verify: bool) -> TlsConnector {
        let configs = self.configs.read().expect("check tls lock");
        TlsConnector::from(if skip_verify { configs.skipping.clone() } else { configs.verifying.clone() })
    }

    /// The client agent's certificate from auto_encrypt, which Consul's checks prefer to the files' one.
    pub fn set_identity(&self, identity: Identity) -> Result<(), String> {
        self.rebuild(|material| material.identity = Some(identity))
    }

    /// One more CA from auto_encrypt (Consul's combined CA pool).
    pub fn add_root(&self, root: CertificateDer<'static>) -> Result<(), String> {
        self.rebuild(|material| {
            if !material.roots.contains(&root) {
                material.roots.push(root);
            }
        })
    }

    fn rebuild(&self, change: impl FnOnce(&mut Material)) -> Result<(), String> {
        if !self.agent_tls {
            return Ok(());
        }
        let mut material = self.material.lock().expect("check tls lock");
        change(&mut material);
        *self.configs.write().expect("check tls lock") = material.build()?;
        Ok(())
    }
}

/// The name a check sends as SNI and verifies the target's certificate for: its `TLSServerName` when set,
/// else the URL's host. An IP (either) is verified against the certificate's IP addresses and sends no
/// SNI (RFC 6066 §3), as Go does.
pub fn server_name(tls_server_name: &str, url_host: &str) -> Result<ServerName<'static>, String> {
    if !tls_server_name.is_empty() {
        return ServerName::try_from(tls_server_name.to_string())
            .map_err(|e| format!("invalid TLSServerName {tls_server_name:?}: {e}"));
    }
    let bare = url_host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|e| format!("invalid host {url_host:?} for TLS: {e}"))
}

#[cfg(test)]
#[path = "check_tls_tests.rs"]
mod tests;
