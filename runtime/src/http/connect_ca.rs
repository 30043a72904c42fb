//! `/v1/connect/ca/roots` and `/v1/agent/connect/ca/roots`: the cluster's auto_encrypt CA, the root that
//! signs client agents' certificates (Consul's built-in CA signs them the same way). A client that talks
//! HTTPS to a client agent serving its auto_encrypt certificate trusts this root. `?pem=true` answers the
//! roots as one PEM chain. No ACL is needed, as in Consul: roots are public.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderValue;
use axum::response::Response;
use ring::digest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};

use conclave_core::api::encode_acl::rfc3339;

use super::{json_response, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;

pub async fn roots<E: Env>(State(node): State<Arc<Node<E>>>, RawQuery(query): RawQuery) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    if params.consistency != super::Consistency::Stale {
        node.read_barrier().await?;
    }
    let ca = node.state.read().ca().ca().cloned();
    let pem_wanted = params.all.iter().any(|(k, v)| k == "pem" && (v.is_empty() || v == "true"));
    if pem_wanted {
        let mut response = Response::new(ca.map(|ca| ca.cert_pem).unwrap_or_default().into());
        response.headers_mut().insert("content-type", HeaderValue::from_static("application/pem-certificate-chain"));
        return Ok(response);
    }
    let roots: Vec<Value> = ca.iter().filter_map(|ca| root_json(&ca.cert_pem, ca.created_index)).collect();
    let active = roots.first().map(|root| root["ID"].clone()).unwrap_or(Value::String(String::new()));
    let trust_domain = ca.as_ref().map(|ca| trust_domain(&ca.cert_pem)).unwrap_or_default();
    Ok(json_response(&json!({ "ActiveRootID": active, "TrustDomain": trust_domain, "Roots": roots }), &params))
}

/// One root in Consul's `CARoot` shape; `None` when the replicated PEM does not parse.
fn root_json(cert_pem: &str, index: u64) -> Option<Value> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let key_id = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => Some(colon_hex(id.0)),
            _ => None,
        })
        .unwrap_or_default();
    let serial: u64 = cert.tbs_certificate.serial.iter_u64_digits().next().unwrap_or(0);
    let rfc3339 = |t: x509_parser::time::ASN1Time| rfc3339(u64::try_from(t.timestamp()).unwrap_or(0) * 1000);
    Some(json!({
        "ID": colon_hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref()).as_ref()),
        "Name": cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or("Conclave CA Root Cert"),
        "SerialNumber": serial,
        "SigningKeyID": key_id,
        "ExternalTrustDomain": trust_domain(cert_pem),
        "NotBefore": rfc3339(cert.validity().not_before),
        "NotAfter": rfc3339(cert.validity().not_after),
        "RootCert": cert_pem,
        "IntermediateCerts": null,
        "Active": true,
        "PrivateKeyType": "ec",
        "PrivateKeyBits": 256,
        "CreateIndex": index,
        "ModifyIndex": index,
    }))
}

/// Consul's trust domain is `<cluster id>.consul`; Conclave's cluster ID is the UUID-shaped digest of its CA.
fn trust_domain(cert_pem: &str) -> String {
    let hash = digest::digest(&digest::SHA256, cert_pem.as_bytes());
    let hex: String = hash.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}.consul", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}
