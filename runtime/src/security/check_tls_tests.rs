//! The check TLS client against an in-memory rustls server (a `tokio::io::duplex` pipe, no sockets), with
//! certificates issued by `security::issue` for `web.internal`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::security::issue::{generate_ca, issue, CaRequest, LeafRequest, Role};

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    ca_key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let request = CaRequest {
            common_name: "Check Test CA".into(),
            days: 1,
            permitted_dns_domains: Vec::new(),
            now: SystemTime::now(),
        };
        let (ca_pem, ca_key_pem) = generate_ca(&request).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        Pki { dir, ca_pem, ca_key_pem }
    }

    /// A certificate and key (PEM) signed by the CA for `name` (and `ips`).
    fn leaf(&self, role: Role, name: &str, ips: &[IpAddr]) -> (String, String) {
        let request = LeafRequest {
            role,
            common_name: name.into(),
            dns_names: vec![name.into()],
            ip_addresses: ips.to_vec(),
            days: 1,
            now: SystemTime::now(),
        };
        issue(&self.ca_pem, &self.ca_key_pem, &request).unwrap()
    }

    /// Writes a leaf where `cert_file` and `key_file` can name it.
    fn write(&self, name: &str, (cert_pem, key_pem): &(String, String)) -> (PathBuf, PathBuf) {
        let cert = self.dir.path().join(format!("{name}.pem"));
        let key = self.dir.path().join(format!("{name}-key.pem"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        (cert, key)
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

fn agent(ca_file: Option<&Path>, cert: Option<(PathBuf, PathBuf)>, agent_tls: bool) -> CheckTls {
    let (cert_file, key_file) = cert.map_or((None, None), |(c, k)| (Some(c), Some(k)));
    let interface = TlsInterface { ca_file: ca_file.map(Path::to_path_buf), cert_file, key_file, ..Default::default() };
    CheckTls::new(&interface, agent_tls).unwrap()
}

/// A target serving `leaf`; with `client_ca` it requires a client certificate signed by that CA.
fn target((cert_pem, key_pem): &(String, String), client_ca: Option<&str>) -> Arc<ServerConfig> {
    let identity = Identity::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let builder = match client_ca {
        Some(ca_pem) => {
            let roots = root_store(&[CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()]).unwrap();
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots, provider).build().unwrap(),
            )
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(builder.with_single_cert(identity.chain, identity.key).unwrap())
}

/// What the target saw of a completed handshake: the SNI, and whether a client certificate came.
type Seen = (Option<String>, bool);

/// One request over a pipe: the client's result (handshake and reading the answer) and the target's.
async fn probe(
    client: &CheckTls,
    skip: bool,
    name: &str,
    host: &str,
    server: Arc<ServerConfig>,
) -> (Result<(), String>, Result<Seen, String>) {
    let (near, far) = tokio::io::duplex(64 * 1024);
    let target = tokio::spawn(async move {
        let mut stream = TlsAcceptor::from(server).accept(far).await.map_err(|e| e.to_string())?;
        let (_, conn) = stream.get_ref();
        let seen = (conn.server_name().map(str::to_string), conn.peer_certificates().is_some_and(|c| !c.is_empty()));
        stream.write_all(b"ok").await.map_err(|e| e.to_string())?;
        stream.shutdown().await.map_err(|e| e.to_string())?;
        Ok(seen)
    });
    let name = server_name(name, host).unwrap();
    let result = async {
        let mut stream = client.connector(skip).connect(name, near).await.map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map_err(|e| e.to_string())?;
        if answer == b"ok" {
            Ok(())
        } else {
            Err(format!("answer {answer:?}"))
        }
    }
    .await;
    (result, target.await.unwrap())
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn tls_server_name_is_the_name_sent_and_verified() {
    let pki = Pki::new();
    let server = target(&pki.leaf(Role::Server, "web.internal", &[]), None);
    let checks = agent(Some(&pki.ca_file()), None, true);
    let (client, seen) = probe(&checks, false, "web.internal", "127.0.0.1", server.clone()).await;
    assert_eq!(client, Ok(()));
    assert_eq!(seen.unwrap(), (Some("web.internal".to_string()), false));
    let (client, _) = probe(&checks, false, "", "127.0.0.1", server).await;
    let error = client.unwrap_err();
    assert!(error.contains("certificate not valid for name"), "{error}");
}

#[tokio::test]
async fn an_ip_host_is_verified_against_ip_addresses_and_sends_no_sni() {
    let pki = Pki::new();
    let server = target(&pki.leaf(Role::Server, "web.internal", &[LOOPBACK]), None);
    let checks = agent(Some(&pki.ca_file()), None, true);
    let (client, seen) = probe(&checks, false, "", "127.0.0.1", server).await;
    assert_eq!(client, Ok(()));
    assert_eq!(seen.unwrap().0, None);
}

#[tokio::test]
async fn the_agent_ca_is_trusted_only_with_enable_agent_tls_for_checks() {
    let pki = Pki::new();
    let server = target(&pki.leaf(Role::Server, "web.internal", &[]), None);
    for checks in [agent(Some(&pki.ca_file()), None, false), agent(None, None, true)] {
        let (client, _) = probe(&checks, false, "web.internal", "127.0.0.1", server.clone()).await;
        let error = client.unwrap_err();
        assert!(error.contains("UnknownIssuer"), "{error}");
    }
}

#[tokio::test]
async fn skip_verify_accepts_any_certificate() {
    let pki = Pki::new();
    let server = target(&pki.leaf(Role::Server, "web.internal", &[]), None);
    let (client, _) = probe(&agent(None, None, false), true, "", "127.0.0.1", server).await;
    assert_eq!(client, Ok(()));
}

#[tokio::test]
async fn the_agent_certificate_is_presented_when_the_target_asks() {
    let pki = Pki::new();
    let server = target(&pki.leaf(Role::Server, "web.internal", &[]), Some(&pki.ca_pem));
    let cert = pki.write("client", &pki.leaf(Role::Client, "client.dc1.consul", &[]));
    let (client, seen) =
        probe(&agent(Some(&pki.ca_file()), Some(cert.clone()), true), false, "web.internal", "h", server.clone()).await;
    assert_eq!(client, Ok(()));
    assert!(seen.unwrap().1, "the target saw the agent's certificate");
    let (client, seen) = probe(&agent(Some(&pki.ca_file()), Some(cert), false), true, "", "h", server).await;
    assert!(client.is_err() && seen.is_err(), "without enable_agent_tls_for_checks no certificate is sent");
}

#[tokio::test]
async fn auto_encrypt_certificate_and_ca_are_used_only_with_enable_agent_tls_for_checks() {
    let pki = Pki::new();
    let server = target(&pki.leaf(Role::Server, "web.internal", &[]), Some(&pki.ca_pem));
    let (cert_pem, key_pem) = pki.leaf(Role::Client, "client.dc1.consul", &[]);
    let ca = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap();
    for agent_tls in [true, false] {
        let checks = agent(None, None, agent_tls);
        checks.set_identity(Identity::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap()).unwrap();
        checks.add_root(ca.clone()).unwrap();
        let (client, seen) = probe(&checks, false, "web.internal", "h", server.clone()).await;
        assert_eq!(client.is_ok() && seen.is_ok(), agent_tls, "agent_tls {agent_tls}: {client:?} {seen:?}");
    }
}

#[test]
fn server_names_come_from_tls_server_name_else_the_url_host() {
    let dns = |name: &str| ServerName::try_from(name.to_string()).unwrap();
    let table = [
        ("web.internal", "127.0.0.1", dns("web.internal")),
        ("", "example.com", dns("example.com")),
        ("", "127.0.0.1", ServerName::IpAddress(LOOPBACK.into())),
        ("", "[::1]", ServerName::IpAddress("::1".parse::<IpAddr>().unwrap().into())),
        ("10.0.0.1", "web.internal", ServerName::IpAddress("10.0.0.1".parse::<IpAddr>().unwrap().into())),
    ];
    for (tls_server_name, host, want) in table {
        assert_eq!(server_name(tls_server_name, host).unwrap(), want, "{tls_server_name:?} {host:?}");
    }
    assert!(server_name("not a name", "h").unwrap_err().contains("TLSServerName"));
}
