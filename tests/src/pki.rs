//! Certificates, gossip keys and agent configuration for the transport-security tests, made the way a
//! user makes them: `conclave tls ca create`, `conclave tls cert create` and `conclave keygen`, run in a
//! directory of their own, and HCL files naming what they wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::binary;

/// Runs `conclave ARGS` in `dir` and returns its stdout; a failure panics with its output.
pub fn conclave(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(binary()).args(args).current_dir(dir).output().expect("run conclave");
    assert!(
        output.status.success(),
        "conclave {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A CA and what it signed, in one directory, with Consul's file names.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// A new CA in `dir`, a server certificate valid for `server_ips`, a client and a CLI certificate.
    pub fn create(dir: &Path, server_ips: &[String]) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        conclave(dir, &["tls", "ca", "create"]);
        let mut server = vec!["tls", "cert", "create", "-server", "-dc", "dc1"];
        for ip in server_ips {
            server.extend(["-additional-ipaddress", ip.as_str()]);
        }
        conclave(dir, &server);
        conclave(dir, &["tls", "cert", "create", "-client", "-dc", "dc1"]);
        conclave(dir, &["tls", "cert", "create", "-cli", "-dc", "dc1"]);
        Pki { dir: dir.to_path_buf() }
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    pub fn ca(&self) -> String {
        self.file("consul-agent-ca.pem")
    }

    /// (certificate, key) of `role` (`server`, `client`, `cli`).
    pub fn pair(&self, role: &str) -> (String, String) {
        (self.file(&format!("dc1-{role}-consul-0.pem")), self.file(&format!("dc1-{role}-consul-0-key.pem")))
    }

    /// A server's configuration: TLS on RPC and HTTPS (port 8501) with every verification on,
    /// auto_encrypt signing, and gossip encryption under `key`. `cert` picks the certificate pair.
    pub fn server_config(&self, cert: (&str, &str), key: &str) -> String {
        format!(
            r#"tls {{
  defaults {{
    ca_file = "{ca}"
    cert_file = "{cert}"
    key_file = "{cert_key}"
    verify_incoming = true
    verify_outgoing = true
  }}
  internal_rpc {{ verify_server_hostname = true }}
}}
auto_encrypt {{ allow_tls = true }}
ports {{ https = 8501 }}
encrypt = "{key}"
"#,
            ca = self.ca(),
            cert = cert.0,
            cert_key = cert.1,
        )
    }

    /// A client agent's configuration: only the CA, its certificate through auto_encrypt.
    pub fn client_config(&self, key: &str) -> String {
        format!(
            r#"tls {{
  defaults {{
    ca_file = "{ca}"
    verify_outgoing = true
  }}
  internal_rpc {{ verify_server_hostname = true }}
}}
auto_encrypt {{ tls = true }}
encrypt = "{key}"
"#,
            ca = self.ca(),
        )
    }

    /// curl's TLS arguments with the CLI certificate.
    pub fn curl_args(&self) -> Vec<String> {
        let (cert, key) = self.pair("cli");
        vec!["--cacert".into(), self.ca(), "--cert".into(), cert, "--key".into(), key]
    }

    /// The `conclave` CLI's TLS flags with the CLI certificate.
    pub fn cli_flags(&self, https_addr: &str) -> Vec<String> {
        let (cert, key) = self.pair("cli");
        vec![
            "-http-addr".into(),
            format!("https://{https_addr}"),
            "-ca-file".into(),
            self.ca(),
            "-client-cert".into(),
            cert,
            "-client-key".into(),
            key,
        ]
    }
}

/// A new gossip key from `conclave keygen`.
pub fn keygen(dir: &Path) -> String {
    conclave(dir, &["keygen"]).trim().to_string()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}
