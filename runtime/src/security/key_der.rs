//! Reading a CA's private key from PEM in either form Consul may have written it: PKCS#8 (`PRIVATE KEY`,
//! what Conclave writes) or SEC1 (`EC PRIVATE KEY`, what Consul's `tls ca create` writes). rcgen over ring
//! reads PKCS#8 only, so a SEC1 key is wrapped into PKCS#8 first (RFC 5915 inside RFC 5208).

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Largest SEC1 key accepted, in bytes. A P-256 key is 121 bytes; the bound keeps the two-byte DER length
/// form below enough for every wrapper written here.
pub const SEC1_KEY_BYTES_MAX: usize = 1024;

/// DER of the PKCS#8 AlgorithmIdentifier for an EC key on P-256: SEQUENCE { id-ecPublicKey, prime256v1 }.
const EC_P256_ALGORITHM: &[u8] = &[
    0x30, 0x13, // SEQUENCE, 19 bytes
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // OID 1.2.840.10045.2.1
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // OID 1.2.840.10045.3.1.7
];

/// The key pair in `pem`, which must be an ECDSA P-256 key; the error says why it is not usable.
pub fn key_pair_from_pem(pem: &str) -> Result<KeyPair, String> {
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("no private key found: {e}"))?;
    let pkcs8 = match key {
        PrivateKeyDer::Pkcs8(pkcs8) => pkcs8,
        PrivateKeyDer::Sec1(sec1) => wrap_sec1(sec1.secret_sec1_der())?,
        PrivateKeyDer::Pkcs1(_) => return Err("RSA keys are not supported; the CA key must be ECDSA P-256".into()),
        _ => return Err("unknown private key format".into()),
    };
    KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("the CA key must be ECDSA P-256: {e}"))
}

/// PrivateKeyInfo { version 0, ecPublicKey/P-256, OCTET STRING { the SEC1 ECPrivateKey } }. ring checks that
/// a curve named inside the SEC1 structure matches P-256, so a key on another curve is refused there.
fn wrap_sec1(sec1: &[u8]) -> Result<PrivatePkcs8KeyDer<'static>, String> {
    if sec1.len() > SEC1_KEY_BYTES_MAX {
        return Err(format!("EC private key of {} bytes is too large", sec1.len()));
    }
    let mut body = vec![0x02, 0x01, 0x00]; // INTEGER 0
    body.extend_from_slice(EC_P256_ALGORITHM);
    body.push(0x04); // OCTET STRING
    push_length(&mut body, sec1.len());
    body.extend_from_slice(sec1);
    let mut der = vec![0x30]; // SEQUENCE
    push_length(&mut der, body.len());
    der.extend_from_slice(&body);
    Ok(PrivatePkcs8KeyDer::from(der))
}

/// DER definite length: short form below 128, else the one- or two-byte long form.
fn push_length(out: &mut Vec<u8>, length: usize) {
    assert!(length <= u16::MAX as usize, "DER length {length} beyond the bound of SEC1_KEY_BYTES_MAX");
    match length {
        0..=0x7f => out.push(length as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, length as u8]),
        _ => out.extend_from_slice(&[0x82, (length >> 8) as u8, length as u8]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SEC1 structure inside a PKCS#8 key of ring's making: the last element of the PrivateKeyInfo.
    fn sec1_inside(pkcs8: &[u8]) -> Vec<u8> {
        let outer_header = if pkcs8[1] & 0x80 == 0 { 2 } else { 2 + (pkcs8[1] & 0x7f) as usize };
        let octet_string_at = outer_header + 3 + EC_P256_ALGORITHM.len();
        assert_eq!(pkcs8[octet_string_at], 0x04, "ring's P-256 PKCS#8 layout");
        let length = pkcs8[octet_string_at + 1] as usize;
        assert!(length < 0x80);
        pkcs8[octet_string_at + 2..octet_string_at + 2 + length].to_vec()
    }

    fn pem(label: &str, der: &[u8]) -> String {
        use base64::Engine;
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> =
            body.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII")).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    #[test]
    fn pkcs8_key_is_read_as_it_is() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let read = key_pair_from_pem(&key.serialize_pem()).unwrap();
        assert_eq!(read.public_key_raw(), key.public_key_raw());
    }

    #[test]
    fn sec1_key_as_consul_writes_it_is_read_as_the_same_key() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let sec1 = sec1_inside(key.serialized_der());
        let read = key_pair_from_pem(&pem("EC PRIVATE KEY", &sec1)).unwrap();
        assert_eq!(read.public_key_raw(), key.public_key_raw());
    }

    #[test]
    fn text_without_a_key_is_refused() {
        let error = key_pair_from_pem("not a key").unwrap_err();
        assert!(error.starts_with("no private key found"), "{error}");
    }

    #[test]
    fn der_lengths_use_the_shortest_form() {
        let encode = |length| {
            let mut out = Vec::new();
            push_length(&mut out, length);
            out
        };
        assert_eq!(encode(0x7f), vec![0x7f]);
        assert_eq!(encode(0x80), vec![0x81, 0x80]);
        assert_eq!(encode(0x1234), vec![0x82, 0x12, 0x34]);
    }
}
