//! TLS contexts built from an interface's settings with rustls: the CA roots (`ca_file` and every PEM
//! file of `ca_path`), the agent's certificate, the allowed versions and TLS 1.2 suites. Server RPC
//! (`RpcTls`) always asks for a client certificate and lets the RPC layer decide what a connection
//! without one may do (`verify_incoming`); outgoing RPC verifies the server against the CA and, with
//! `verify_server_hostname`, that its certificate names `server.<dc>.<domain>`. The certificate a client
//! agent uses can be replaced while it runs (auto_encrypt), and servers can learn more client CAs.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::tls::{TlsInterface, TlsMinVersion};

/// A certificate chain and its key, as read from PEM.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl Identity {
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Identity, String> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("invalid certificate PEM: {e}"))?;
        if chain.is_empty() {
            return Err("no certificate in the PEM data".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("invalid private key PEM: {e}"))?;
        Ok(Identity { chain, key })
    }

    pub fn from_files(cert_file: &Path, key_file: &Path) -> Result<Identity, String> {
        let cert =
            std::fs::read(cert_file).map_err(|e| format!("cannot read cert_file {}: {e}", cert_file.display()))?;
        let key = std::fs::read(key_file).map_err(|e| format!("cannot read key_file {}: {e}", key_file.display()))?;
        Identity::from_pem(&cert, &key).map_err(|e| format!("{} / {}: {e}", cert_file.display(), key_file.display()))
    }
}

/// The CA certificates of `ca_file` and of every file in `ca_path`.
pub fn load_roots(interface: &TlsInterface) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut files = Vec::new();
    if let Some(file) = &interface.ca_file {
        files.push(file.clone());
    }
    if let Some(dir) = &interface.ca_path {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read ca_path {}: {e}", dir.display()))?;
        let mut found: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        found.sort();
        files.extend(found);
    }
    let mut roots = Vec::new();
    for file in files {
        let certs = CertificateDer::pem_file_iter(&file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read CA certificates from {}: {e}", file.display()))?;
        if certs.is_empty() {
            return Err(format!("no CA certificate in {}", file.display()));
        }
        roots.extend(certs);
    }
    Ok(roots)
}

pub(super) fn root_store(roots: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).map_err(|e| format!("unusable CA certificate: {e}"))?;
    }
    Ok(Arc::new(store))
}

/// The crypto provider with the interface's TLS 1.2 suites (all TLS 1.3 suites stay: they are not
/// configurable, as in Consul), and the protocol versions it allows.
pub(super) fn provider(
    interface: &TlsInterface,
) -> Result<(Arc<CryptoProvider>, &'static [&'static SupportedProtocolVersion]), String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !interface.cipher_suites.is_empty() {
        let known: Vec<String> = provider.cipher_suites.iter().map(|s| format!("{:?}", s.suite())).collect();
        if let Some(unknown) = interface.cipher_suites.iter().find(|name| !known.contains(name)) {
            return Err(format!(
                "tls_cipher_suites: {unknown:?} is not supported (Conclave supports {})",
                known.iter().filter(|n| !n.starts_with("TLS13")).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        provider.cipher_suites.retain(|suite| match suite {
            SupportedCipherSuite::Tls13(_) => true,
            SupportedCipherSuite::Tls12(_) => interface.cipher_suites.contains(&format!("{:?}", suite.suite())),
        });
    }
    static FROM_TLS12: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];
    static FROM_TLS13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    let versions: &'static [&'static SupportedProtocolVersion] = match interface.min_version {
        TlsMinVersion::Tls12 => &FROM_TLS12,
        TlsMinVersion::Tls13 => &FROM_TLS13,
    };
    Ok((Arc::new(provider), versions))
}

/// Verifies a server's chain against the CA but not the name it holds: `verify_outgoing` without
/// `verify_server_hostname`, as in Consul.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means the chain is good.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What the TLS contexts are built from; kept so they can be rebuilt when auto_encrypt changes them.
struct Material {
    interface: TlsInterface,
    provider: Arc<CryptoProvider>,
    versions: &'static [&'static SupportedProtocolVersion],
    /// The CA roots of the files, and any CA learned since (auto_encrypt's).
    roots: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
}

impl Material {
    fn server_config(&self) -> Result<Option<Arc<ServerConfig>>, String> {
        let Some(identity) = &self.identity else { return Ok(None) };
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(self.versions)
            .map_err(|e| e.to_string())?;
        let builder = match self.roots.is_empty() {
            true => builder.with_no_client_auth(),
            false => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(root_store(&self.roots)?, self.provider.clone())
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| format!("cannot build the client certificate verifier: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(|e| format!("unusable certificate or key: {e}"))?;
        Ok(Some(Arc::new(config)))
    }

    fn client_config(&self, check_hostname: bool) -> Result<Option<Arc<ClientConfig>>, String> {
        if self.roots.is_empty() {
            return Ok(None);
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(root_store(&self.roots)?, self.provider.clone())
            .build()
            .map_err(|e| format!("cannot build the server certificate verifier: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match check_hostname {
            true => verifier,
            false => Arc::new(ChainOnly(verifier)),
        };
        let builder = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(self.versions)
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|e| format!("unusable certificate or key: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Some(Arc::new(config)))
    }
}

/// TLS on server RPC (port 8300), for both directions.
pub struct RpcTls {
    material: RwLock<Material>,
    server: RwLock<Option<Arc<ServerConfig>>>,
    client: RwLock<Option<Arc<ClientConfig>>>,
    /// Outgoing RPC uses TLS (`verify_outgoing`, or a client agent with auto_encrypt).
    pub outgoing: bool,
    /// Incoming RPC without a verified certificate is refused (except what auto_encrypt needs).
    pub verify_incoming: bool,
    pub verify_server_hostname: bool,
    /// `server.<dc>.<domain>`: what servers are dialled as and what their certificates must name.
    pub server_name: String,
}

impl RpcTls {
    /// Loads the files of `interface`; `outgoing` says whether dialled RPC uses TLS.
    pub fn new(interface: &TlsInterface, outgoing: bool, server_name: String) -> Result<RpcTls, String> {
        let (provider, versions) = provider(interface)?;
        let identity = match (&interface.cert_file, &interface.key_file) {
            (Some(cert), Some(key)) => Some(Identity::from_files(cert, key)?),
            _ => None,
        };
        let material =
            Material { interface: interface.clone(), provider, versions, roots: load_roots(interface)?, identity };
        let server = material.server_config()?;
        let client = material.client_config(interface.verify_server_hostname)?;
        ServerName::try_from(server_name.clone()).map_err(|e| format!("invalid server name {server_name:?}: {e}"))?;
        Ok(RpcTls {
            material: RwLock::new(material),
            server: RwLock::new(server),
            client: RwLock::new(client),
            outgoing,
            verify_incoming: interface.verify_incoming,
            verify_server_hostname: interface.verify_server_hostname,
            server_name,
        })
    }

    /// Accepts TLS on incoming RPC: the agent has a certificate.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.server.read().expect("tls lock").clone().map(TlsAcceptor::from)
    }

    /// How to dial a server over TLS, when outgoing RPC uses it.
    pub fn connector(&self) -> Option<(TlsConnector, ServerName<'static>)> {
        if !self.outgoing {
            return None;
        }
        let config = self.client.read().expect("tls lock").clone()?;
        let name = ServerName::try_from(self.server_name.clone()).expect("checked in RpcTls::new");
        Some((TlsConnector::from(config), name))
    }

    /// Whether a verified peer certificate names `server.<dc>.<domain>` (a server, not a client agent).
    pub fn names_a_server(&self, certificate: &CertificateDer<'_>) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(certificate) else { return false };
        let Ok(name) = ServerName::try_from(self.server_name.as_str()) else { return false };
        cert.verify_is_valid_for_subject_name(&name).is_ok()
    }

    /// Replaces the agent's own certificate (a client agent's, signed through auto_encrypt).
    pub fn set_identity(&self, identity: Identity) -> Result<(), String> {
        self.rebuild(|material| material.identity = Some(identity))
    }

    /// Trusts one more CA for incoming certificates (the servers' auto_encrypt CA).
    pub fn add_root(&self, root: CertificateDer<'static>) -> Result<(), String> {
        self.rebuild(|material| {
            if !material.roots.contains(&root) {
                material.roots.push(root)
            }
        })
    }

    fn rebuild(&self, change: impl FnOnce(&mut Material)) -> Result<(), String> {
        let mut material = self.material.write().expect("tls lock");
        change(&mut material);
        let server = material.server_config()?;
        let client = material.client_config(material.interface.verify_server_hostname)?;
        *self.server.write().expect("tls lock") = server;
        *self.client.write().expect("tls lock") = client;
        Ok(())
    }
}

/// The certificate a client agent's HTTPS port serves when it has no `cert_file` of its own: the one
/// auto_encrypt got it (Consul's agents serve HTTPS with their auto-TLS certificate too). Until it
/// arrives, handshakes fail; the agent gets it moments after joining.
#[derive(Debug, Default)]
pub struct AutoCertificate(RwLock<Option<Arc<CertifiedKey>>>);

impl AutoCertificate {
    pub fn set(&self, identity: &Identity) -> Result<(), String> {
        let key = rustls::crypto::ring::sign::any_supported_type(&identity.key)
            .map_err(|e| format!("unusable auto_encrypt key: {e}"))?;
        *self.0.write().expect("tls lock") = Some(Arc::new(CertifiedKey::new(identity.chain.clone(), key)));
        Ok(())
    }
}

impl ResolvesServerCert for AutoCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().expect("tls lock").clone()
    }
}

/// The HTTPS listener's TLS: the interface's certificate (else `auto`, the auto_encrypt one), and with
/// `verify_incoming` a client certificate signed by the CA required of every connection.
pub fn https_acceptor(interface: &TlsInterface, auto: Option<Arc<AutoCertificate>>) -> Result<TlsAcceptor, String> {
    let (provider, versions) = provider(interface)?;
    let identity = match (&interface.cert_file, &interface.key_file, auto) {
        (Some(cert), Some(key), _) => Ok(Identity::from_files(cert, key)?),
        (None, None, Some(auto)) => Err(auto),
        _ => return Err("HTTPS needs cert_file and key_file (or auto_encrypt on a client agent)".into()),
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let builder = match interface.verify_incoming {
        true => {
            let roots = root_store(&load_roots(interface)?)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("cannot build the client certificate verifier: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        false => builder.with_no_client_auth(),
    };
    let mut config = match identity {
        Ok(identity) => builder
            .with_single_cert(identity.chain, identity.key)
            .map_err(|e| format!("unusable HTTPS certificate or key: {e}"))?,
        Err(auto) => builder.with_cert_resolver(auto),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
