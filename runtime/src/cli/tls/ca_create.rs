//! `conclave tls ca create`: writes a new agent CA, `<domain>-agent-ca.pem` and `<domain>-agent-ca-key.pem`,
//! in the current directory, with Consul's flags and messages (command/tls/ca/create).

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use clap::Args;

use super::files::save_pair;
use crate::cli::acl::fail;
use crate::security::issue::{generate_ca, CaRequest};

#[derive(Args, Debug, Clone)]
pub struct CaCreateArgs {
    /// Number of days the CA is valid for.
    #[arg(long, default_value_t = 1825)]
    pub days: u32,
    /// DNS domain of the cluster: names the files, and is permitted with -name-constraint.
    #[arg(long, default_value = "consul")]
    pub domain: String,
    /// Common name of the CA (default: Consul Agent CA <serial>).
    #[arg(long = "common-name", default_value = "")]
    pub common_name: String,
    /// Let the CA sign only for localhost, -domain and -additional-name-constraint.
    #[arg(long = "name-constraint")]
    pub name_constraint: bool,
    /// Another DNS domain the CA may sign for with -name-constraint; may be repeated.
    #[arg(long = "additional-name-constraint")]
    pub additional_name_constraint: Vec<String>,
}

pub fn ca_create(args: CaCreateArgs) -> anyhow::Result<()> {
    create_ca_in(Path::new("."), &args, SystemTime::now(), &mut std::io::stdout())
}

/// The file names of the CA of `domain`: (certificate, key).
pub fn ca_file_names(domain: &str) -> (String, String) {
    (format!("{domain}-agent-ca.pem"), format!("{domain}-agent-ca-key.pem"))
}

/// `tls ca create` with `dir` as the current directory; progress lines go to `out`.
pub fn create_ca_in(dir: &Path, args: &CaCreateArgs, now: SystemTime, out: &mut dyn Write) -> anyhow::Result<()> {
    let (cert_name, key_name) = ca_file_names(&args.domain);
    for name in [&cert_name, &key_name] {
        if dir.join(name).exists() {
            return fail(format!("{name} already exists."));
        }
    }
    // Consul lists the extra domains first, then the cluster's domain and localhost.
    let permitted_dns_domains = if args.name_constraint {
        let mut domains: Vec<String> = args.additional_name_constraint.clone();
        domains.extend([args.domain.clone(), "localhost".to_string()]);
        domains
    } else {
        Vec::new()
    };
    let request = CaRequest { common_name: args.common_name.clone(), days: args.days, permitted_dns_domains, now };
    let (cert_pem, key_pem) = match generate_ca(&request) {
        Ok(pair) => pair,
        Err(e) => return fail(e.to_string()),
    };
    save_pair(dir, (&cert_name, &cert_pem), (&key_name, &key_pem), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CaCreateArgs {
        CaCreateArgs {
            days: 1825,
            domain: "consul".into(),
            common_name: String::new(),
            name_constraint: false,
            additional_name_constraint: Vec::new(),
        }
    }

    #[test]
    fn ca_create_writes_both_files_and_says_so_as_consul() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        create_ca_in(dir.path(), &args(), SystemTime::now(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n"
        );
        let cert = std::fs::read_to_string(dir.path().join("consul-agent-ca.pem")).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = std::fs::read_to_string(dir.path().join("consul-agent-ca-key.pem")).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn ca_create_refuses_to_overwrite_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("example-agent-ca-key.pem"), "keep me").unwrap();
        let args = CaCreateArgs { domain: "example".into(), ..args() };
        let error = create_ca_in(dir.path(), &args, SystemTime::now(), &mut Vec::new()).unwrap_err();
        assert_eq!(error.to_string(), "example-agent-ca-key.pem already exists.");
        assert!(!dir.path().join("example-agent-ca.pem").exists(), "nothing is written when one file exists");
        assert_eq!(std::fs::read_to_string(dir.path().join("example-agent-ca-key.pem")).unwrap(), "keep me");
    }
}
