//! TLS for the agent's HTTPS clients (the CLI talking to an agent's HTTPS port): the CA roots given
//! (`-ca-file`/`-ca-path`, `CONSUL_CACERT`/`CONSUL_CAPATH`), else the web PKI roots; an optional client
//! certificate (`-client-cert`/`-client-key`); or, with `CONSUL_HTTP_SSL_VERIFY=false`, no verification of
//! the agent's certificate at all, as Consul's `InsecureSkipVerify`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::tls::{load_roots, Identity};
use crate::config::tls::TlsInterface;

/// What an HTTPS client trusts and presents.
#[derive(Clone, Debug, Default)]
pub struct HttpsClientTls {
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Accept any certificate (Consul's `CONSUL_HTTP_SSL_VERIFY=false`).
    pub skip_verify: bool,
}

impl HttpsClientTls {
    /// The rustls configuration; an unreadable or unusable file is an error naming it.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = if self.skip_verify {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let config = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let identity = Identity::from_files(cert, key)?;
                builder
                    .with_client_auth_cert(identity.chain, identity.key)
                    .map_err(|e| format!("unusable client certificate or key: {e}"))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("a client certificate needs both -client-cert and -client-key".to_string()),
        };
        Ok(Arc::new(config))
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let interface =
            TlsInterface { ca_file: self.ca_file.clone(), ca_path: self.ca_path.clone(), ..Default::default() };
        if !interface.has_ca() {
            return Ok(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() });
        }
        let mut store = RootCertStore::empty();
        for root in load_roots(&interface)? {
            store.add(root).map_err(|e| format!("unusable CA certificate: {e}"))?;
        }
        Ok(store)
    }
}

/// Accepts any certificate while still checking the handshake's signatures.
#[derive(Debug)]
pub struct SkipVerify(pub Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
