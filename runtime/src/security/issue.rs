//! Building the agent TLS certificates of Consul's `tls ca create` and `tls cert create` (tlsutil/generate.go):
//! a self-signed ECDSA P-256 CA, and leaf certificates for a server, a client or the CLI signed by it. Pure
//! functions over PEM text, with the time passed in, so the agent can issue certificates (auto_encrypt) with
//! them too; nothing here reads files or flags.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::key_der;

/// Longest validity accepted, in days: about 100 years, far beyond any sensible CA and short of the dates
/// X.509 can encode (GeneralizedTime ends at 9999).
pub const VALIDITY_DAYS_MAX: u32 = 36_525;

const SECONDS_PER_DAY: u64 = 86_400;

/// What a certificate is for; decides its extended key usages and Consul's default names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
    Cli,
}

impl Role {
    /// The word Consul puts in names and file names: `server.dc1.consul`, `dc1-server-consul-0.pem`.
    pub fn word(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Cli => "cli",
        }
    }

    /// Servers and clients both accept and make connections; the CLI only connects. Consul gives the CLI
    /// certificate no extended key usage at all (any usage); ClientAuth says what it is for and is all it needs.
    fn extended_key_usages(self) -> Vec<ExtendedKeyUsagePurpose> {
        match self {
            Role::Server | Role::Client => {
                vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
            }
            Role::Cli => vec![ExtendedKeyUsagePurpose::ClientAuth],
        }
    }
}

/// What went wrong building a certificate. Nothing is written anywhere when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA certificate PEM could not be read as a certificate.
    #[error("failed to parse CA: {0}")]
    CaCertificate(String),
    /// The CA key PEM is not an ECDSA P-256 key in PKCS#8 or SEC1 form.
    #[error("failed to parse CA key: {0}")]
    CaKey(String),
    /// The request itself is unusable (a name that is not ASCII, a validity out of range).
    #[error("{0}")]
    InvalidRequest(String),
    /// rcgen refused to build or sign the certificate.
    #[error("failed to create certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The new leaf does not verify against its CA for its own name (a name constraint of the CA excludes
    /// it, for example). Consul checks this too before writing anything (tlsutil.Verify).
    #[error("certificate does not verify against the CA for {name}: {reason}")]
    DoesNotVerify { name: String, reason: String },
}

/// A CA to create: Consul's `CAOpts` without the signer and serial, which are always fresh here.
#[derive(Clone, Debug)]
pub struct CaRequest {
    /// Common name; empty means Consul's `Consul Agent CA <serial>`.
    pub common_name: String,
    pub days: u32,
    /// DNS domains the CA may sign for (X.509 name constraints, marked critical); empty means no constraint.
    pub permitted_dns_domains: Vec<String>,
    pub now: SystemTime,
}

/// A leaf certificate to issue.
#[derive(Clone, Debug)]
pub struct LeafRequest {
    pub role: Role,
    /// Subject common name, and the name the new certificate is verified for before it is returned.
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub days: u32,
    pub now: SystemTime,
}

impl LeafRequest {
    /// Consul's names for a role (command/tls/cert/create): `<role>.<dc>.<domain>` and `localhost` for every
    /// role, `127.0.0.1` for servers and clients, and for a server given a node name also
    /// `<node>.server.<dc>.<domain>`. Additional names go in `dns_names` / `ip_addresses` afterwards.
    pub fn consul(role: Role, datacenter: &str, domain: &str, node: Option<&str>, days: u32, now: SystemTime) -> Self {
        let common_name = format!("{}.{datacenter}.{domain}", role.word());
        let mut dns_names = Vec::new();
        if let (Role::Server, Some(node)) = (role, node) {
            dns_names.push(format!("{node}.server.{datacenter}.{domain}"));
        }
        dns_names.push(common_name.clone());
        dns_names.push("localhost".to_string());
        let ip_addresses = match role {
            Role::Server | Role::Client => vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            Role::Cli => Vec::new(),
        };
        LeafRequest { role, common_name, dns_names, ip_addresses, days, now }
    }
}

/// Creates a self-signed CA; returns (certificate PEM, PKCS#8 private key PEM).
pub fn generate_ca(request: &CaRequest) -> Result<(String, String), TlsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let serial = random_serial();
    let common_name =
        if request.common_name.is_empty() { format!("Consul Agent CA {serial}") } else { request.common_name.clone() };
    let mut params = CertificateParams::default();
    params.serial_number = Some(serial_number(serial));
    params.distinguished_name = distinguished_name(&common_name);
    set_validity(&mut params, request.now, request.days)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    if !request.permitted_dns_domains.is_empty() {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: request.permitted_dns_domains.iter().cloned().map(GeneralSubtree::DnsName).collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    let certificate = params.self_signed(&key)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// Issues a leaf certificate signed by the CA given as PEM text (certificate and key, as `generate_ca` or
/// Consul writes them); returns (certificate PEM, PKCS#8 private key PEM). The new certificate is checked to
/// verify against the CA for `request.common_name` before it is returned.
pub fn issue(ca_cert_pem: &str, ca_key_pem: &str, request: &LeafRequest) -> Result<(String, String), TlsError> {
    let issuer = ca_issuer(ca_cert_pem, ca_key_pem)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let certificate = leaf_params(request)?.signed_by(&key, &issuer)?;
    verify_leaf(ca_cert_pem, certificate.der(), request)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// Signs the public key of a certificate signing request (auto_encrypt: the key never leaves the client
/// agent). Only the key and the request's signature are taken from the CSR; every name, usage and date
/// comes from `request`, so a client cannot ask for a name it may not have. Returns the certificate PEM.
pub fn sign_request(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    csr_pem: &str,
    request: &LeafRequest,
) -> Result<String, TlsError> {
    let issuer = ca_issuer(ca_cert_pem, ca_key_pem)?;
    let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| TlsError::InvalidRequest(format!("invalid certificate signing request: {e}")))?;
    csr.params = leaf_params(request)?;
    let certificate = csr.signed_by(&issuer)?;
    verify_leaf(ca_cert_pem, certificate.der(), request)?;
    Ok(certificate.pem())
}

/// A new ECDSA P-256 key and a certificate signing request for it, both PEM (the client agent's half of
/// auto_encrypt; the names in it are advisory, the server decides them).
pub fn signing_request(common_name: &str) -> Result<(String, String), TlsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name);
    let csr = params.serialize_request(&key)?;
    Ok((csr.pem()?, key.serialize_pem()))
}

fn ca_issuer(ca_cert_pem: &str, ca_key_pem: &str) -> Result<Issuer<'static, KeyPair>, TlsError> {
    let ca_key = key_der::key_pair_from_pem(ca_key_pem).map_err(TlsError::CaKey)?;
    Issuer::from_ca_cert_pem(ca_cert_pem, ca_key).map_err(|e| TlsError::CaCertificate(e.to_string()))
}

fn leaf_params(request: &LeafRequest) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    params.serial_number = Some(serial_number(random_serial()));
    params.distinguished_name = distinguished_name(&request.common_name);
    set_validity(&mut params, request.now, request.days)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = request.role.extended_key_usages();
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = subject_alt_names(request)?;
    Ok(params)
}

fn subject_alt_names(request: &LeafRequest) -> Result<Vec<SanType>, TlsError> {
    let mut names = Vec::with_capacity(request.dns_names.len() + request.ip_addresses.len());
    for name in &request.dns_names {
        let ia5 =
            name.as_str().try_into().map_err(|_| TlsError::InvalidRequest(format!("invalid DNS name {name:?}")))?;
        names.push(SanType::DnsName(ia5));
    }
    names.extend(request.ip_addresses.iter().copied().map(SanType::IpAddress));
    Ok(names)
}

/// Consul's check after signing (tlsutil.Verify): the leaf chains to the CA and is valid for its name.
/// A common name that is not a DNS name (a custom one given by an agent) is only checked for the chain.
fn verify_leaf(ca_cert_pem: &str, leaf: &CertificateDer<'_>, request: &LeafRequest) -> Result<(), TlsError> {
    use rustls::pki_types::pem::PemObject;
    let fail = |reason: String| TlsError::DoesNotVerify { name: request.common_name.clone(), reason };
    let ca = CertificateDer::from_pem_slice(ca_cert_pem.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let anchor = webpki::anchor_from_trusted_cert(&ca).map_err(|e| fail(e.to_string()))?;
    let end_entity = webpki::EndEntityCert::try_from(leaf).map_err(|e| fail(e.to_string()))?;
    let usage = match request.role {
        Role::Server | Role::Client => webpki::KeyUsage::server_auth(),
        Role::Cli => webpki::KeyUsage::client_auth(),
    };
    let now = UnixTime::since_unix_epoch(request.now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default());
    end_entity
        .verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &[anchor], &[], now, usage, None, None)
        .map_err(|e| fail(e.to_string()))?;
    if let Ok(name) = ServerName::try_from(request.common_name.as_str()) {
        if request.dns_names.contains(&request.common_name) {
            end_entity.verify_is_valid_for_subject_name(&name).map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(())
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Valid from `now` for `days` days, as Go's `AddDate(0, 0, days)` in UTC.
fn set_validity(params: &mut CertificateParams, now: SystemTime, days: u32) -> Result<(), TlsError> {
    if days == 0 || days > VALIDITY_DAYS_MAX {
        return Err(TlsError::InvalidRequest(format!("days must be between 1 and {VALIDITY_DAYS_MAX}, not {days}")));
    }
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| TlsError::InvalidRequest("the clock is before 1970".to_string()))?;
    // rcgen takes `time` dates; its own constructor gives the epoch and std durations move from there, so
    // this crate needs no direct dependency on `time`.
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(since_epoch.as_secs());
    params.not_after = params.not_before + Duration::from_secs(u64::from(days) * SECONDS_PER_DAY);
    Ok(())
}

/// A random serial below 2^128, as Consul's GenerateSerialNumber.
fn random_serial() -> u128 {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    u128::from_be_bytes(bytes)
}

/// The serial's big-endian bytes without leading zeros (rcgen adds the sign byte DER needs).
fn serial_number(serial: u128) -> SerialNumber {
    let bytes = serial.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
    SerialNumber::from_slice(&bytes[first..])
}
