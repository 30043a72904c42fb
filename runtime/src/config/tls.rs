//! Transport security settings as Consul reads them: the `tls` block (`defaults`, `internal_rpc`,
//! `https`), the older top-level keys (`ca_file`, `cert_file`, `key_file`, `verify_incoming`,
//! `verify_incoming_rpc`, `verify_incoming_https`, `verify_outgoing`, `verify_server_hostname`,
//! `tls_min_version`, `tls_cipher_suites`), `auto_encrypt`, and gossip encryption (`encrypt`,
//! `encrypt_verify_incoming`, `encrypt_verify_outgoing`, `disable_keyring_file`), and
//! `enable_agent_tls_for_checks`. Files set options;
//! `resolve` turns them into what each interface uses and refuses combinations Consul refuses (verifying
//! without a CA, a certificate without its key) and what Conclave cannot do (TLS 1.0/1.1, a gRPC port).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{boolean, problem, string};

/// One section of the `tls` block, or the legacy top-level keys: every option unset until a file sets it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSection {
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub verify_incoming: Option<bool>,
    pub verify_outgoing: Option<bool>,
    pub verify_server_hostname: Option<bool>,
    pub tls_min_version: Option<String>,
    pub tls_cipher_suites: Option<String>,
}

impl TlsSection {
    /// `self` where set, else `below`.
    fn over(&self, below: &TlsSection) -> TlsSection {
        TlsSection {
            ca_file: self.ca_file.clone().or(below.ca_file.clone()),
            ca_path: self.ca_path.clone().or(below.ca_path.clone()),
            cert_file: self.cert_file.clone().or(below.cert_file.clone()),
            key_file: self.key_file.clone().or(below.key_file.clone()),
            verify_incoming: self.verify_incoming.or(below.verify_incoming),
            verify_outgoing: self.verify_outgoing.or(below.verify_outgoing),
            verify_server_hostname: self.verify_server_hostname.or(below.verify_server_hostname),
            tls_min_version: self.tls_min_version.clone().or(below.tls_min_version.clone()),
            tls_cipher_suites: self.tls_cipher_suites.clone().or(below.tls_cipher_suites.clone()),
        }
    }
}

/// The security options read from configuration files.
#[derive(Clone, Debug, Default)]
pub struct SecurityFileConfig {
    pub defaults: TlsSection,
    pub internal_rpc: TlsSection,
    pub https: TlsSection,
    /// The pre-1.12 top-level keys (`verify_incoming_rpc` and `verify_incoming_https` land in the
    /// `internal_rpc` and `https` sections of `legacy_per_interface`).
    pub legacy: TlsSection,
    pub legacy_rpc: TlsSection,
    pub legacy_https: TlsSection,
    pub auto_encrypt_tls: Option<bool>,
    pub auto_encrypt_allow_tls: Option<bool>,
    pub enable_agent_tls_for_checks: Option<bool>,
    pub auto_encrypt_dns_san: Vec<String>,
    pub auto_encrypt_ip_san: Vec<String>,
    pub encrypt: Option<String>,
    pub encrypt_verify_incoming: Option<bool>,
    pub encrypt_verify_outgoing: Option<bool>,
    pub disable_keyring_file: Option<bool>,
}

/// The lowest TLS version an interface accepts (rustls speaks 1.2 and 1.3 only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMinVersion {
    #[default]
    Tls12,
    Tls13,
}

/// What one interface (server RPC, or HTTPS) does with TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInterface {
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Require a certificate signed by the CA from every incoming connection.
    pub verify_incoming: bool,
    /// Use TLS, verifying the peer against the CA, on outgoing connections.
    pub verify_outgoing: bool,
    /// Server RPC only: a server's certificate must name `server.<datacenter>.<domain>`.
    pub verify_server_hostname: bool,
    pub min_version: TlsMinVersion,
    /// IANA names of the TLS 1.2 suites allowed (empty: rustls's defaults).
    pub cipher_suites: Vec<String>,
}

impl TlsInterface {
    pub fn has_ca(&self) -> bool {
        self.ca_file.is_some() || self.ca_path.is_some()
    }

    pub fn has_certificate(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// Gossip encryption: the initial key and the switches for turning encryption on in a running cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptSettings {
    /// `encrypt`: base64 of a 16, 24 or 32-byte key (checked when the node starts).
    pub key: Option<String>,
    pub verify_incoming: bool,
    pub verify_outgoing: bool,
    /// Keep the keyring in memory only (no `serf/local.keyring`).
    pub disable_keyring_file: bool,
}

impl Default for EncryptSettings {
    fn default() -> EncryptSettings {
        EncryptSettings { key: None, verify_incoming: true, verify_outgoing: true, disable_keyring_file: false }
    }
}

/// The resolved transport security of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecuritySettings {
    pub internal_rpc: TlsInterface,
    pub https: TlsInterface,
    /// Client agents: get a certificate from the servers (`auto_encrypt { tls = true }`).
    pub auto_encrypt_tls: bool,
    /// Servers: sign certificates for client agents (`auto_encrypt { allow_tls = true }`).
    pub auto_encrypt_allow_tls: bool,
    pub auto_encrypt_dns_san: Vec<String>,
    pub auto_encrypt_ip_san: Vec<IpAddr>,
    pub encrypt: EncryptSettings,
    /// HTTPS checks verify targets against the `internal_rpc` CA and present the agent's certificate.
    pub enable_agent_tls_for_checks: bool,
}

fn strings(file: &Path, key: &str, value: &Value) -> Result<Vec<String>, String> {
    let items = value.as_array().ok_or_else(|| problem(file, key, "expected a list of strings"))?;
    items.iter().map(|item| string(file, key, item)).collect()
}

/// Sets one option of a section; false if `key` is not a TLS option.
fn set_option(section: &mut TlsSection, file: &Path, name: &str, key: &str, value: &Value) -> Result<bool, String> {
    match key {
        "ca_file" => section.ca_file = Some(PathBuf::from(string(file, name, value)?)),
        "ca_path" => section.ca_path = Some(PathBuf::from(string(file, name, value)?)),
        "cert_file" => section.cert_file = Some(PathBuf::from(string(file, name, value)?)),
        "key_file" => section.key_file = Some(PathBuf::from(string(file, name, value)?)),
        "verify_incoming" => section.verify_incoming = Some(boolean(file, name, value)?),
        "verify_outgoing" => section.verify_outgoing = Some(boolean(file, name, value)?),
        "tls_min_version" => section.tls_min_version = Some(string(file, name, value)?),
        "tls_cipher_suites" => section.tls_cipher_suites = Some(string(file, name, value)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Applies a top-level key of a file; false if it is not a security key.
pub fn apply_top_level(config: &mut SecurityFileConfig, file: &Path, key: &str, value: &Value) -> Result<bool, String> {
    match key {
        "tls" => apply_tls_block(config, file, value)?,
        "auto_encrypt" => apply_auto_encrypt(config, file, value)?,
        "verify_incoming_rpc" => config.legacy_rpc.verify_incoming = Some(boolean(file, key, value)?),
        "verify_incoming_https" => config.legacy_https.verify_incoming = Some(boolean(file, key, value)?),
        "verify_server_hostname" => config.legacy_rpc.verify_server_hostname = Some(boolean(file, key, value)?),
        "encrypt" => config.encrypt = Some(string(file, key, value)?).filter(|k| !k.is_empty()),
        "encrypt_verify_incoming" => config.encrypt_verify_incoming = Some(boolean(file, key, value)?),
        "encrypt_verify_outgoing" => config.encrypt_verify_outgoing = Some(boolean(file, key, value)?),
        "disable_keyring_file" => config.disable_keyring_file = Some(boolean(file, key, value)?),
        "enable_agent_tls_for_checks" => config.enable_agent_tls_for_checks = Some(boolean(file, key, value)?),
        _ => return set_option(&mut config.legacy, file, key, key, value),
    }
    Ok(true)
}

fn apply_tls_block(config: &mut SecurityFileConfig, file: &Path, value: &Value) -> Result<(), String> {
    for block in super::objects(value) {
        let map: &Map<String, Value> = block.as_object().ok_or_else(|| problem(file, "tls", "expected a block"))?;
        for (interface, body) in map {
            let section = match interface.as_str() {
                "defaults" => &mut config.defaults,
                "internal_rpc" => &mut config.internal_rpc,
                "https" => &mut config.https,
                "grpc" => {
                    if super::is_off(body) {
                        continue;
                    }
                    return Err(problem(
                        file,
                        "tls.grpc",
                        "Conclave serves no gRPC port, so its TLS settings are refused rather than ignored",
                    ));
                }
                other => return Err(problem(file, &format!("tls.{other}"), "unknown TLS section")),
            };
            for inner in super::objects(body) {
                let options =
                    inner.as_object().ok_or_else(|| problem(file, &format!("tls.{interface}"), "expected a block"))?;
                for (key, value) in options {
                    let name = format!("tls.{interface}.{key}");
                    if key == "verify_server_hostname" && interface == "internal_rpc" {
                        section.verify_server_hostname = Some(boolean(file, &name, value)?);
                    } else if !set_option(section, file, &name, key, value)? {
                        return Err(problem(file, &name, "unknown or unsupported TLS setting"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn apply_auto_encrypt(config: &mut SecurityFileConfig, file: &Path, value: &Value) -> Result<(), String> {
    for block in super::objects(value) {
        let map = block.as_object().ok_or_else(|| problem(file, "auto_encrypt", "expected a block"))?;
        for (key, value) in map {
            let name = format!("auto_encrypt.{key}");
            match key.as_str() {
                "tls" => config.auto_encrypt_tls = Some(boolean(file, &name, value)?),
                "allow_tls" => config.auto_encrypt_allow_tls = Some(boolean(file, &name, value)?),
                "dns_san" => config.auto_encrypt_dns_san.extend(strings(file, &name, value)?),
                "ip_san" => config.auto_encrypt_ip_san.extend(strings(file, &name, value)?),
                other => return Err(problem(file, &format!("auto_encrypt.{other}"), "unknown auto_encrypt setting")),
            }
        }
    }
    Ok(())
}

fn min_version(name: &str, text: Option<&str>) -> Result<TlsMinVersion, String> {
    match text.unwrap_or("TLSv1_2") {
        "" | "TLSv1_2" | "tls12" => Ok(TlsMinVersion::Tls12),
        "TLSv1_3" | "tls13" => Ok(TlsMinVersion::Tls13),
        "TLSv1_0" | "TLSv1_1" | "tls10" | "tls11" => Err(format!(
            "{name}.tls_min_version {text:?}: Conclave speaks TLS 1.2 and 1.3 only (rustls); use TLSv1_2 or TLSv1_3",
            text = text.unwrap_or_default()
        )),
        other => Err(format!("{name}.tls_min_version: {other:?} is not one of TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3")),
    }
}

fn interface(name: &str, section: &TlsSection) -> Result<TlsInterface, String> {
    let resolved = TlsInterface {
        ca_file: section.ca_file.clone(),
        ca_path: section.ca_path.clone(),
        cert_file: section.cert_file.clone(),
        key_file: section.key_file.clone(),
        verify_incoming: section.verify_incoming.unwrap_or(false),
        verify_outgoing: section.verify_outgoing.unwrap_or(false),
        verify_server_hostname: section.verify_server_hostname.unwrap_or(false),
        min_version: min_version(name, section.tls_min_version.as_deref())?,
        cipher_suites: section
            .tls_cipher_suites
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    };
    if resolved.cert_file.is_some() != resolved.key_file.is_some() {
        return Err(format!("{name}: cert_file and key_file must be set together"));
    }
    if resolved.verify_incoming && !resolved.has_ca() {
        return Err(format!("{name}.verify_incoming is set but no CA (ca_file or ca_path) is configured"));
    }
    if resolved.verify_incoming && !resolved.has_certificate() {
        return Err(format!("{name}.verify_incoming is set but no cert_file and key_file are configured"));
    }
    if resolved.verify_outgoing && !resolved.has_ca() {
        return Err(format!("{name}.verify_outgoing is set but no CA (ca_file or ca_path) is configured"));
    }
    if resolved.verify_server_hostname && !resolved.verify_outgoing {
        return Err(format!(
            "{name}.verify_server_hostname needs verify_outgoing (it checks the servers this agent dials)"
        ));
    }
    if !resolved.cipher_suites.is_empty() && resolved.min_version == TlsMinVersion::Tls13 {
        return Err(format!(
            "{name}.tls_cipher_suites cannot be set with TLSv1_3 (TLS 1.3 suites are not configurable)"
        ));
    }
    Ok(resolved)
}

/// Resolves the files' settings for a server or a client agent.
pub fn resolve(file: &SecurityFileConfig, server: bool) -> Result<SecuritySettings, String> {
    let defaults = file.defaults.over(&file.legacy);
    let internal_rpc = interface("tls.internal_rpc", &file.internal_rpc.over(&file.legacy_rpc).over(&defaults))?;
    let mut https_section = file.https.over(&file.legacy_https).over(&defaults);
    https_section.verify_server_hostname = None;
    let https = interface("tls.https", &https_section)?;
    let auto_encrypt_tls = file.auto_encrypt_tls.unwrap_or(false);
    let auto_encrypt_allow_tls = file.auto_encrypt_allow_tls.unwrap_or(false);
    if auto_encrypt_tls && server {
        return Err("auto_encrypt.tls can only be used on client agents (servers use auto_encrypt.allow_tls)".into());
    }
    if auto_encrypt_allow_tls && !server {
        return Err("auto_encrypt.allow_tls can only be used on servers".into());
    }
    if auto_encrypt_tls && !internal_rpc.has_ca() {
        return Err("auto_encrypt.tls needs a CA (ca_file or ca_path) to verify the servers".into());
    }
    if auto_encrypt_allow_tls && !internal_rpc.has_certificate() {
        return Err("auto_encrypt.allow_tls needs the server's cert_file and key_file".into());
    }
    let auto_encrypt_ip_san = file
        .auto_encrypt_ip_san
        .iter()
        .map(|ip| ip.parse().map_err(|_| format!("auto_encrypt.ip_san: {ip:?} is not an IP address")))
        .collect::<Result<_, _>>()?;
    let encrypt = EncryptSettings {
        key: file.encrypt.clone(),
        verify_incoming: file.encrypt_verify_incoming.unwrap_or(true),
        verify_outgoing: file.encrypt_verify_outgoing.unwrap_or(true),
        disable_keyring_file: file.disable_keyring_file.unwrap_or(false),
    };
    Ok(SecuritySettings {
        internal_rpc,
        https,
        auto_encrypt_tls,
        auto_encrypt_allow_tls,
        auto_encrypt_dns_san: file.auto_encrypt_dns_san.clone(),
        auto_encrypt_ip_san,
        encrypt,
        enable_agent_tls_for_checks: file.enable_agent_tls_for_checks.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SecurityFileConfig, String> {
        let value: Value = hcl::from_str(text).unwrap();
        let mut config = SecurityFileConfig::default();
        for (key, value) in value.as_object().unwrap() {
            assert!(apply_top_level(&mut config, Path::new("a.hcl"), key, value)?, "{key} not a security key");
        }
        Ok(config)
    }

    #[test]
    fn the_tls_block_overrides_defaults_per_interface() {
        let file = parse(
            r#"tls {
  defaults {
    ca_file = "ca.pem"
    cert_file = "s.pem"
    key_file = "s-key.pem"
    verify_incoming = true
    verify_outgoing = true
  }
  internal_rpc { verify_server_hostname = true }
  https { verify_incoming = false }
}"#,
        )
        .unwrap();
        let settings = resolve(&file, true).unwrap();
        assert!(settings.internal_rpc.verify_incoming && settings.internal_rpc.verify_server_hostname);
        assert!(!settings.https.verify_incoming && settings.https.verify_outgoing);
        assert_eq!(settings.https.cert_file.as_deref(), Some(Path::new("s.pem")));
    }

    #[test]
    fn legacy_top_level_keys_keep_their_consul_meaning() {
        let file = parse(
            "ca_file = \"ca.pem\"\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\nverify_incoming_rpc = true\nverify_outgoing = true\nverify_server_hostname = true\n",
        )
        .unwrap();
        let settings = resolve(&file, true).unwrap();
        assert!(settings.internal_rpc.verify_incoming && settings.internal_rpc.verify_server_hostname);
        assert!(!settings.https.verify_incoming);
        assert!(settings.https.verify_outgoing);
    }

    #[test]
    fn verifying_without_a_ca_or_a_certificate_is_refused() {
        let no_ca = parse("tls {\n  defaults {\n    verify_outgoing = true\n  }\n}").unwrap();
        assert!(resolve(&no_ca, true).unwrap_err().contains("verify_outgoing"));
        let no_key = parse("cert_file = \"c.pem\"").unwrap();
        assert!(resolve(&no_key, true).unwrap_err().contains("cert_file and key_file"));
        let no_cert = parse("ca_file = \"ca.pem\"\nverify_incoming = true").unwrap();
        assert!(resolve(&no_cert, true).unwrap_err().contains("verify_incoming"));
    }

    #[test]
    fn what_conclave_cannot_do_is_refused_by_name() {
        let old = parse("tls {\n  defaults {\n    tls_min_version = \"TLSv1_0\"\n  }\n}").unwrap();
        assert!(resolve(&old, true).unwrap_err().contains("tls_min_version"));
        let grpc = parse("tls {\n  grpc {\n    use_auto_cert = true\n  }\n}").unwrap_err();
        assert!(grpc.contains("tls.grpc"), "{grpc}");
        let unknown = parse("tls {\n  defaults {\n    verify_hostname = true\n  }\n}").unwrap_err();
        assert!(unknown.contains("tls.defaults.verify_hostname"), "{unknown}");
        let client_side = parse("auto_encrypt {\n  tls = true\n}\nca_file = \"ca.pem\"").unwrap();
        assert!(resolve(&client_side, true).unwrap_err().contains("auto_encrypt.tls"));
        assert!(resolve(&client_side, false).unwrap().auto_encrypt_tls);
    }

    #[test]
    fn gossip_encryption_verifies_both_ways_unless_turned_off() {
        let file = parse("encrypt = \"k\"\nencrypt_verify_incoming = false").unwrap();
        let settings = resolve(&file, false).unwrap();
        assert_eq!(settings.encrypt.key.as_deref(), Some("k"));
        assert!(!settings.encrypt.verify_incoming && settings.encrypt.verify_outgoing);
    }

    #[test]
    fn agent_tls_for_checks_is_off_unless_set() {
        assert!(!resolve(&parse("ca_file = \"ca.pem\"").unwrap(), false).unwrap().enable_agent_tls_for_checks);
        let on = parse("enable_agent_tls_for_checks = true").unwrap();
        assert!(resolve(&on, false).unwrap().enable_agent_tls_for_checks);
        assert!(parse("enable_agent_tls_for_checks = \"yes\"").unwrap_err().contains("enable_agent_tls_for_checks"));
    }
}
