//! `conclave tls cert create -server|-client|-cli`: signs a new certificate with the agent CA and writes it as
//! `<dc>-<role>-<domain>-<n>.pem` and `-key.pem`, `n` the first index whose files are free, with Consul's
//! flags, names and messages (command/tls/cert/create).

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use clap::Args;

use super::files::save_pair;
use crate::cli::acl::fail;
use crate::security::issue::{issue, LeafRequest, Role};

/// Highest file index tried before giving up, as Consul.
pub const FILE_INDEX_MAX: u32 = 10_000;

/// Consul's warning before a server certificate is made.
const SERVER_WARNING: &str = "==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.";

#[derive(Args, Debug, Clone)]
pub struct CertCreateArgs {
    /// Path to the CA certificate.
    #[arg(long, default_value = "#DOMAIN#-agent-ca.pem")]
    pub ca: String,
    /// Path to the CA key.
    #[arg(long, default_value = "#DOMAIN#-agent-ca-key.pem")]
    pub key: String,
    /// Generate a server certificate.
    #[arg(long)]
    pub server: bool,
    /// Generate a client certificate.
    #[arg(long)]
    pub client: bool,
    /// Generate a CLI certificate.
    #[arg(long)]
    pub cli: bool,
    /// Number of days the certificate is valid for.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// DNS domain of the cluster.
    #[arg(long, default_value = "consul")]
    pub domain: String,
    /// Datacenter of the certificate.
    #[arg(long, default_value = "dc1")]
    pub dc: String,
    /// With -server: also name <node>.server.<dc>.<domain>.
    #[arg(long, default_value = "")]
    pub node: String,
    /// Another DNS name for the certificate; may be repeated.
    #[arg(long = "additional-dnsname")]
    pub additional_dnsname: Vec<String>,
    /// Another IP address for the certificate; may be repeated.
    #[arg(long = "additional-ipaddress")]
    pub additional_ipaddress: Vec<String>,
}

pub fn cert_create(args: CertCreateArgs) -> anyhow::Result<()> {
    create_cert_in(Path::new("."), &args, SystemTime::now(), &mut std::io::stdout())
}

/// The files a certificate is written to: the first `<prefix>-<n>.pem` / `<prefix>-<n>-key.pem` pair of
/// which neither exists in `dir`.
pub fn free_file_names(dir: &Path, prefix: &str) -> Option<(String, String)> {
    (0..=FILE_INDEX_MAX)
        .map(|n| (format!("{prefix}-{n}.pem"), format!("{prefix}-{n}-key.pem")))
        .find(|(cert, key)| !dir.join(cert).exists() && !dir.join(key).exists())
}

/// `tls cert create` with `dir` as the current directory; progress lines go to `out`.
pub fn create_cert_in(dir: &Path, args: &CertCreateArgs, now: SystemTime, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.ca.is_empty() {
        return fail("Please provide the ca");
    }
    if args.key.is_empty() {
        return fail("Please provide the key");
    }
    let role = match (args.server, args.client, args.cli) {
        (true, false, false) => Role::Server,
        (false, true, false) => Role::Client,
        (false, false, true) => Role::Cli,
        _ => return fail("Please provide either -server, -client, or -cli"),
    };
    if !args.node.is_empty() && role != Role::Server {
        return fail("-node requires -server");
    }
    let request = leaf_request(args, role, now)?;
    let prefix = format!("{}-{}-{}", args.dc, role.word(), args.domain);
    let Some((cert_name, key_name)) = free_file_names(dir, &prefix) else {
        return fail("Could not find a filename that doesn't already exist");
    };
    let ca_file = args.ca.replacen("#DOMAIN#", &args.domain, 1);
    let key_file = args.key.replacen("#DOMAIN#", &args.domain, 1);
    let ca_pem = match std::fs::read_to_string(dir.join(&ca_file)) {
        Ok(text) => text,
        Err(e) => return fail(format!("Error reading CA: open {ca_file}: {e}")),
    };
    let ca_key_pem = match std::fs::read_to_string(dir.join(&key_file)) {
        Ok(text) => text,
        Err(e) => return fail(format!("Error reading CA key: open {key_file}: {e}")),
    };
    if role == Role::Server {
        writeln!(out, "{SERVER_WARNING}")?;
    }
    writeln!(out, "==> Using {ca_file} and {key_file}")?;
    let (cert_pem, key_pem) = match issue(&ca_pem, &ca_key_pem, &request) {
        Ok(pair) => pair,
        Err(e) => return fail(e.to_string()),
    };
    save_pair(dir, (&cert_name, &cert_pem), (&key_name, &key_pem), out)
}

/// The names of the certificate: the flags' additional ones first, then Consul's for the role.
fn leaf_request(args: &CertCreateArgs, role: Role, now: SystemTime) -> anyhow::Result<LeafRequest> {
    let node = Some(args.node.as_str()).filter(|n| !n.is_empty());
    let standard = LeafRequest::consul(role, &args.dc, &args.domain, node, args.days, now);
    let mut dns_names: Vec<String> =
        args.additional_dnsname.iter().map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect();
    let mut ip_addresses = Vec::new();
    for text in args.additional_ipaddress.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        match text.parse::<IpAddr>() {
            Ok(ip) => ip_addresses.push(ip),
            Err(_) => return fail(format!("Invalid IP address: {text}")),
        }
    }
    dns_names.extend(standard.dns_names.iter().cloned());
    ip_addresses.extend(standard.ip_addresses.iter().copied());
    Ok(LeafRequest { dns_names, ip_addresses, ..standard })
}
