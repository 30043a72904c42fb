//! The `tls` commands end to end in a temporary directory, checked with rustls-webpki as a TLS peer would.

use std::path::Path;
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::ca_create::{create_ca_in, CaCreateArgs};
use super::cert_create::{create_cert_in, CertCreateArgs};
use crate::security::issue::{generate_ca, issue, CaRequest, LeafRequest, Role, TlsError};

fn ca_args() -> CaCreateArgs {
    CaCreateArgs {
        days: 1825,
        domain: "consul".into(),
        common_name: String::new(),
        name_constraint: false,
        additional_name_constraint: Vec::new(),
    }
}

fn cert_args(role: Role) -> CertCreateArgs {
    CertCreateArgs {
        ca: "#DOMAIN#-agent-ca.pem".into(),
        key: "#DOMAIN#-agent-ca-key.pem".into(),
        server: role == Role::Server,
        client: role == Role::Client,
        cli: role == Role::Cli,
        days: 365,
        domain: "consul".into(),
        dc: "dc1".into(),
        node: String::new(),
        additional_dnsname: Vec::new(),
        additional_ipaddress: Vec::new(),
    }
}

fn create_cert(dir: &Path, args: &CertCreateArgs) -> String {
    let mut out = Vec::new();
    create_cert_in(dir, args, SystemTime::now(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn der(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

/// Verifies `leaf` against `ca` as a trust anchor for `usage`, and then for `name` when given.
fn verify(
    ca: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    usage: webpki::KeyUsage,
    name: Option<&str>,
) -> Result<(), webpki::Error> {
    let anchor = webpki::anchor_from_trusted_cert(ca)?;
    let end_entity = webpki::EndEntityCert::try_from(leaf)?;
    end_entity.verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &[anchor], &[], UnixTime::now(), usage, None, None)?;
    match name {
        Some(name) => end_entity.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap()),
        None => Ok(()),
    }
}

#[test]
fn server_cert_verifies_for_its_name_and_client_cert_does_not() {
    let dir = tempfile::tempdir().unwrap();
    create_ca_in(dir.path(), &ca_args(), SystemTime::now(), &mut Vec::new()).unwrap();
    let server_out = create_cert(dir.path(), &cert_args(Role::Server));
    assert!(server_out.starts_with("==> WARNING: Server Certificates grants authority to become a\n"));
    assert!(server_out.ends_with(
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-server-consul-0.pem\n\
         ==> Saved dc1-server-consul-0-key.pem\n"
    ));
    let client_out = create_cert(dir.path(), &cert_args(Role::Client));
    assert_eq!(
        client_out,
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-client-consul-0.pem\n\
         ==> Saved dc1-client-consul-0-key.pem\n"
    );
    create_cert(dir.path(), &cert_args(Role::Cli));

    let ca = der(&dir.path().join("consul-agent-ca.pem"));
    let server = der(&dir.path().join("dc1-server-consul-0.pem"));
    let client = der(&dir.path().join("dc1-client-consul-0.pem"));
    let cli = der(&dir.path().join("dc1-cli-consul-0.pem"));
    let server_auth = webpki::KeyUsage::server_auth;
    let client_auth = webpki::KeyUsage::client_auth;
    verify(&ca, &server, server_auth(), Some("server.dc1.consul")).unwrap();
    verify(&ca, &server, server_auth(), Some("localhost")).unwrap();
    verify(&ca, &server, server_auth(), Some("127.0.0.1")).unwrap();
    verify(&ca, &server, client_auth(), None).unwrap();
    let error = verify(&ca, &client, server_auth(), Some("server.dc1.consul")).unwrap_err();
    assert!(matches!(error, webpki::Error::CertNotValidForName(_)), "{error:?}");
    verify(&ca, &client, server_auth(), Some("client.dc1.consul")).unwrap();
    verify(&ca, &cli, client_auth(), Some("cli.dc1.consul")).unwrap();
    let error = verify(&ca, &cli, server_auth(), None).unwrap_err();
    assert!(matches!(error, webpki::Error::RequiredEkuNotFoundContext(_)), "{error:?}");
}

#[test]
fn second_server_cert_gets_the_next_index() {
    let dir = tempfile::tempdir().unwrap();
    create_ca_in(dir.path(), &ca_args(), SystemTime::now(), &mut Vec::new()).unwrap();
    create_cert(dir.path(), &cert_args(Role::Server));
    let out = create_cert(dir.path(), &cert_args(Role::Server));
    assert!(out.ends_with("==> Saved dc1-server-consul-1.pem\n==> Saved dc1-server-consul-1-key.pem\n"), "{out}");
    assert!(dir.path().join("dc1-server-consul-1-key.pem").exists());
}

#[test]
fn node_name_and_additional_names_are_in_the_server_cert() {
    let dir = tempfile::tempdir().unwrap();
    create_ca_in(dir.path(), &ca_args(), SystemTime::now(), &mut Vec::new()).unwrap();
    let args = CertCreateArgs {
        node: "s1".into(),
        additional_dnsname: vec!["consul.example.com".into()],
        additional_ipaddress: vec!["10.0.0.7".into()],
        ..cert_args(Role::Server)
    };
    create_cert(dir.path(), &args);
    let ca = der(&dir.path().join("consul-agent-ca.pem"));
    let server = der(&dir.path().join("dc1-server-consul-0.pem"));
    for name in ["s1.server.dc1.consul", "consul.example.com", "10.0.0.7"] {
        verify(&ca, &server, webpki::KeyUsage::server_auth(), Some(name)).unwrap();
    }
}

#[test]
fn cert_create_wants_exactly_one_role() {
    let dir = tempfile::tempdir().unwrap();
    let none = CertCreateArgs { server: false, ..cert_args(Role::Server) };
    let both = CertCreateArgs { client: true, ..cert_args(Role::Server) };
    for args in [none, both] {
        let error = create_cert_in(dir.path(), &args, SystemTime::now(), &mut Vec::new()).unwrap_err();
        assert_eq!(error.to_string(), "Please provide either -server, -client, or -cli");
    }
    let node_on_client = CertCreateArgs { node: "c1".into(), ..cert_args(Role::Client) };
    let error = create_cert_in(dir.path(), &node_on_client, SystemTime::now(), &mut Vec::new()).unwrap_err();
    assert_eq!(error.to_string(), "-node requires -server");
}

#[test]
fn missing_ca_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let args = CertCreateArgs { domain: "example".into(), ..cert_args(Role::Client) };
    let error = create_cert_in(dir.path(), &args, SystemTime::now(), &mut Vec::new()).unwrap_err();
    assert!(error.to_string().starts_with("Error reading CA: open example-agent-ca.pem: "), "{error}");
}

#[test]
fn name_constrained_ca_refuses_a_name_outside_its_domains() {
    let request = CaRequest {
        common_name: String::new(),
        days: 30,
        permitted_dns_domains: vec!["consul".into(), "localhost".into()],
        now: SystemTime::now(),
    };
    let (ca_pem, ca_key_pem) = generate_ca(&request).unwrap();
    let inside = LeafRequest::consul(Role::Server, "dc1", "consul", None, 30, SystemTime::now());
    issue(&ca_pem, &ca_key_pem, &inside).unwrap();
    let mut outside = inside.clone();
    outside.dns_names.push("consul.example.com".into());
    let error = issue(&ca_pem, &ca_key_pem, &outside).unwrap_err();
    assert!(matches!(error, TlsError::DoesNotVerify { .. }), "{error}");
}

#[test]
fn ca_is_named_as_consul_names_it_unless_told() {
    let request =
        CaRequest { common_name: String::new(), days: 30, permitted_dns_domains: Vec::new(), now: SystemTime::now() };
    let (ca_pem, ca_key_pem) = generate_ca(&request).unwrap();
    // rcgen 0.14 keeps its certificate parser to itself; its Issuer shows the subject it read.
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, rcgen::KeyPair::from_pem(&ca_key_pem).unwrap()).unwrap();
    let shown = format!("{issuer:?}");
    let serial = shown.split("Consul Agent CA ").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default();
    assert!(serial.parse::<u128>().is_ok(), "{shown}");
    assert!(issuer.key_usages().contains(&rcgen::KeyUsagePurpose::KeyCertSign), "{shown}");
}
