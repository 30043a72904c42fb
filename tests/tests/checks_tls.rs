//! HTTPS checks against targets with certificates of the agent's own CA, made with `conclave tls ca create`
//! and `tls cert create` and served by `openssl s_server`: `TLSServerName` is the name verified, the agent's
//! CA and certificate are used only with `enable_agent_tls_for_checks` (Consul's rule), and
//! `TLSSkipVerify` skips verification. Subnets 150–152.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conclave_tests::harness::{binary, eventually, Cluster};
use conclave_tests::http;

/// A CA, a server certificate that also names `web.internal` (and `127.0.0.1`, as Consul's do, but not
/// the targets' addresses) and a client certificate, made by the CLI the way an operator makes them.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(binary()).args(args).current_dir(dir.path()).output().expect("run conclave tls");
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&["tls", "ca", "create"]);
        run(&["tls", "cert", "create", "-server", "-additional-dnsname", "web.internal"]);
        run(&["tls", "cert", "create", "-client"]);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Agent config file `name`: the CA and the client certificate in `tls.defaults`, plus `extra`.
    fn agent_config(&self, name: &str, extra: &str) -> String {
        let text = format!(
            "tls {{\n  defaults {{\n    ca_file = {:?}\n    cert_file = {:?}\n    key_file = {:?}\n  }}\n}}\n{extra}\n",
            self.path("consul-agent-ca.pem"),
            self.path("dc1-client-consul-0.pem"),
            self.path("dc1-client-consul-0-key.pem"),
        );
        let file = self.path(name);
        std::fs::write(&file, text).unwrap();
        file.display().to_string()
    }
}

/// `openssl s_server -www` with the server certificate; with `ca` it requires a client certificate
/// signed by that CA.
struct Target {
    child: Child,
    url: String,
}

impl Target {
    fn start(pki: &Pki, ip: &str, ca: Option<&Path>) -> Target {
        let port = TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
        let mut command = Command::new("openssl");
        command.args(["s_server", "-www", "-quiet", "-accept"]).arg(format!("{ip}:{port}"));
        command.arg("-cert").arg(pki.path("dc1-server-consul-0.pem"));
        command.arg("-key").arg(pki.path("dc1-server-consul-0-key.pem"));
        if let Some(ca) = ca {
            command.args(["-Verify", "1", "-verify_return_error", "-CAfile"]).arg(ca);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start openssl s_server");
        eventually(Duration::from_secs(10), "s_server listening", || std::net::TcpStream::connect((ip, port)).ok());
        Target { child, url: format!("https://{ip}:{port}/") }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers service `web` with one HTTPS check per `(CheckID, URL, extra JSON fields)`.
fn register(agent: &str, checks: &[(&str, &str, &str)]) {
    let checks: Vec<String> = checks
        .iter()
        .map(|(id, url, extra)| format!(r#"{{"CheckID":"{id}","Name":"{id}","HTTP":"{url}","Interval":"1s"{extra}}}"#))
        .collect();
    let body = format!(r#"{{"Name":"web","Port":443,"Checks":[{}]}}"#, checks.join(","));
    let reply = http::put(&format!("{agent}/v1/agent/service/register"), &body).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Waits for check `id` to report `want` from a probe (a new check is critical with no output until its
/// first probe); returns the output.
fn wait_status(agent: &str, id: &str, want: &str) -> String {
    eventually(Duration::from_secs(10), &format!("{id} {want}"), || {
        let checks = http::get(&format!("{agent}/v1/agent/checks")).ok()?.json();
        let check = &checks[id];
        let output = check["Output"].as_str().filter(|output| !output.is_empty())?;
        (check["Status"] == want).then(|| output.to_string())
    })
}

const NAMED: &str = r#","TLSServerName":"web.internal""#;
const SKIP: &str = r#","TLSSkipVerify":true"#;

#[test]
fn https_checks_verify_the_tls_server_name_against_the_agent_ca() {
    let pki = Pki::new();
    let config = pki.agent_config("agent.hcl", "enable_agent_tls_for_checks = true");
    let cluster = Cluster::dev_with(150, &["-config-file", &config]);
    let agent = cluster.agents[0].http();
    let plain = Target::start(&pki, "127.0.150.9", None);
    let mutual = Target::start(&pki, "127.0.150.10", Some(&pki.path("consul-agent-ca.pem")));
    register(
        &agent,
        &[
            ("named", &plain.url, NAMED),
            ("unnamed", &plain.url, ""),
            ("skip", &plain.url, SKIP),
            ("mtls", &mutual.url, NAMED),
        ],
    );
    let output = wait_status(&agent, "named", "passing");
    assert!(output.starts_with(&format!("HTTP GET {}: 200", plain.url)), "{output}");
    let output = wait_status(&agent, "unnamed", "critical");
    assert!(output.contains("certificate not valid for name"), "the URL's IP is not in the certificate: {output}");
    wait_status(&agent, "skip", "passing");
    wait_status(&agent, "mtls", "passing");
    let checks = http::get(&format!("{agent}/v1/agent/checks")).unwrap().json();
    assert_eq!(checks["named"]["Definition"]["TLSServerName"], "web.internal");
    let catalog = http::get(&format!("{agent}/v1/health/checks/web")).unwrap().json();
    let named = catalog.as_array().unwrap().iter().find(|c| c["CheckID"] == "named").expect("named in the catalog");
    assert_eq!(named["Definition"]["TLSServerName"], "web.internal");
}

#[test]
fn without_enable_agent_tls_for_checks_the_agent_ca_and_certificate_are_not_used() {
    let pki = Pki::new();
    let bare = Cluster::dev(151);
    let config = pki.agent_config("agent.hcl", "");
    let with_ca = Cluster::dev_with(152, &["-config-file", &config]);
    let plain = Target::start(&pki, "127.0.151.9", None);
    let mutual = Target::start(&pki, "127.0.152.10", Some(&pki.path("consul-agent-ca.pem")));
    register(&bare.agents[0].http(), &[("named", &plain.url, NAMED)]);
    let agent = with_ca.agents[0].http();
    register(&agent, &[("named", &plain.url, NAMED), ("mtls", &mutual.url, SKIP)]);
    let output = wait_status(&bare.agents[0].http(), "named", "critical");
    assert!(output.contains("UnknownIssuer"), "an agent without a CA knows only the web PKI: {output}");
    let output = wait_status(&agent, "named", "critical");
    assert!(output.contains("UnknownIssuer"), "the CA is for checks only with the switch on: {output}");
    let output = wait_status(&agent, "mtls", "critical");
    assert!(output.contains("CertificateRequired"), "no client certificate was sent: {output}");
}
