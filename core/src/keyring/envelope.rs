//! The envelope: one kind byte in front of every gossip datagram (UDP) and every LAN TCP frame, then the
//! payload as it is ([`ENVELOPE_PLAIN`]) or sealed by the keyring ([`ENVELOPE_SEALED`]).
//!
//! Consul's two switches map onto [`wrap`] and [`unwrap`]: `encrypt_verify_outgoing` is `encrypt_outgoing`
//! (seal what we send), `encrypt_verify_incoming` is `require_encrypted` (refuse what arrives in plain). Both
//! default to true once a key is set; turning them off is how a running cluster moves to or from encryption
//! (Consul's "Enable gossip encryption for existing datacenters").

use super::error::OpenError;
use super::ring::{Keyring, NONCE_BYTES, SEAL_OVERHEAD_BYTES};

/// Kind byte: the payload follows in plain.
pub const ENVELOPE_PLAIN: u8 = 0;
/// Kind byte: the payload follows sealed, `nonce || ciphertext || tag` (see [`Keyring::seal`]).
pub const ENVELOPE_SEALED: u8 = 1;

/// Most bytes the envelope adds to a payload (kind byte, nonce, tag): what the driver adds to a packet limit
/// to size its receive buffer, or takes off the payload limit to stay under the MTU.
pub const ENVELOPE_OVERHEAD_BYTES_MAX: usize = 1 + SEAL_OVERHEAD_BYTES;

/// Why an incoming packet was dropped. Every variant is the peer's doing (or a misconfiguration across the
/// cluster), never a bug here; the driver logs the reason at debug level and drops the packet.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("empty packet")]
    Empty,
    #[error("unknown envelope kind {0}")]
    UnknownKind(u8),
    #[error("plaintext packet refused: encrypt_verify_incoming is on")]
    Plaintext,
    #[error("encrypted packet, but no gossip encryption key is set")]
    NoKeyring,
    #[error("encrypted packet opens under no installed key")]
    UnknownKey,
    #[error("encrypted packet too short to hold a nonce and a tag")]
    TooShort,
}

/// Wraps an outgoing payload: sealed with the primary key when `keyring` is `Some` and `encrypt_outgoing`
/// is true, else plain. `nonce` is used only when sealing and must be fresh for every call (see
/// [`Keyring::seal`]).
pub fn wrap(
    keyring: Option<&Keyring>,
    encrypt_outgoing: bool,
    payload: &[u8],
    context: &[u8],
    nonce: [u8; NONCE_BYTES],
) -> Vec<u8> {
    match keyring {
        Some(ring) if encrypt_outgoing => {
            let sealed = ring.seal(payload, context, nonce);
            let mut out = Vec::with_capacity(1 + sealed.len());
            out.push(ENVELOPE_SEALED);
            out.extend_from_slice(&sealed);
            out
        }
        _ => {
            let mut out = Vec::with_capacity(1 + payload.len());
            out.push(ENVELOPE_PLAIN);
            out.extend_from_slice(payload);
            out
        }
    }
}

/// Unwraps an incoming packet into its payload. With `require_encrypted` (Consul's
/// `encrypt_verify_incoming`, default true when a keyring exists) a plain packet is refused. A sealed packet
/// with no keyring, or under no installed key, or under another `context`, is refused; so is an empty packet
/// or an unknown kind byte.
pub fn unwrap(
    keyring: Option<&Keyring>,
    require_encrypted: bool,
    packet: &[u8],
    context: &[u8],
) -> Result<Vec<u8>, Refused> {
    let (&kind, body) = packet.split_first().ok_or(Refused::Empty)?;
    match kind {
        ENVELOPE_PLAIN if require_encrypted => Err(Refused::Plaintext),
        ENVELOPE_PLAIN => Ok(body.to_vec()),
        ENVELOPE_SEALED => {
            let ring = keyring.ok_or(Refused::NoKeyring)?;
            ring.open(body, context).map_err(|e| match e {
                OpenError::TooShort => Refused::TooShort,
                OpenError::NoKeyMatches => Refused::UnknownKey,
            })
        }
        other => Err(Refused::UnknownKind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::GossipKey;

    const KEY_32: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    const KEY_16: &str = "XvvaxkmMJVwaDHOgHlFWYA==";
    const CONTEXT: &[u8] = b"lan/udp";
    const NONCE: [u8; NONCE_BYTES] = [4; NONCE_BYTES];

    fn ring(text: &str) -> Keyring {
        Keyring::new(GossipKey::from_base64(text).unwrap())
    }

    #[test]
    fn sealed_packet_unwraps_to_its_payload() {
        let ring = ring(KEY_32);
        let packet = wrap(Some(&ring), true, b"ping", CONTEXT, NONCE);
        assert_eq!(packet[0], ENVELOPE_SEALED);
        assert_eq!(packet.len(), 4 + ENVELOPE_OVERHEAD_BYTES_MAX);
        assert!(!packet.windows(4).any(|w| w == b"ping"), "the payload is not readable in the packet");
        for require_encrypted in [true, false] {
            assert_eq!(unwrap(Some(&ring), require_encrypted, &packet, CONTEXT).unwrap(), b"ping");
        }
    }

    #[test]
    fn wrap_is_plain_without_keyring_or_with_encrypt_outgoing_off() {
        let ring = ring(KEY_32);
        for packet in [wrap(None, true, b"ping", CONTEXT, NONCE), wrap(Some(&ring), false, b"ping", CONTEXT, NONCE)] {
            assert_eq!(packet, [&[ENVELOPE_PLAIN][..], b"ping"].concat());
        }
    }

    #[test]
    fn plain_packet_is_refused_when_encryption_is_required() {
        let ring = ring(KEY_32);
        let packet = wrap(None, false, b"ping", CONTEXT, NONCE);
        assert_eq!(unwrap(Some(&ring), true, &packet, CONTEXT), Err(Refused::Plaintext));
        assert_eq!(unwrap(None, true, &packet, CONTEXT), Err(Refused::Plaintext));
    }

    #[test]
    fn plain_packet_is_accepted_when_encryption_is_not_required() {
        let ring = ring(KEY_32);
        let packet = wrap(None, false, b"ping", CONTEXT, NONCE);
        assert_eq!(unwrap(Some(&ring), false, &packet, CONTEXT).unwrap(), b"ping");
        assert_eq!(unwrap(None, false, &packet, CONTEXT).unwrap(), b"ping");
        assert_eq!(unwrap(None, false, &[ENVELOPE_PLAIN], CONTEXT).unwrap(), b"");
    }

    #[test]
    fn sealed_packet_without_a_keyring_is_refused() {
        let packet = wrap(Some(&ring(KEY_32)), true, b"ping", CONTEXT, NONCE);
        assert_eq!(unwrap(None, false, &packet, CONTEXT), Err(Refused::NoKeyring));
    }

    #[test]
    fn sealed_packet_under_another_key_or_context_is_refused() {
        let packet = wrap(Some(&ring(KEY_32)), true, b"ping", CONTEXT, NONCE);
        assert_eq!(unwrap(Some(&ring(KEY_16)), true, &packet, CONTEXT), Err(Refused::UnknownKey));
        assert_eq!(unwrap(Some(&ring(KEY_32)), true, &packet, b"lan/tcp"), Err(Refused::UnknownKey));
    }

    #[test]
    fn empty_truncated_and_unknown_kind_packets_are_refused() {
        let ring = ring(KEY_32);
        assert_eq!(unwrap(Some(&ring), false, b"", CONTEXT), Err(Refused::Empty));
        assert_eq!(unwrap(Some(&ring), false, &[ENVELOPE_SEALED; 20], CONTEXT), Err(Refused::TooShort));
        assert_eq!(unwrap(Some(&ring), false, &[2, 0, 0], CONTEXT), Err(Refused::UnknownKind(2)));
        assert_eq!(unwrap(None, false, &[0xff], CONTEXT), Err(Refused::UnknownKind(0xff)));
    }

    #[test]
    fn refusals_read_as_short_reasons() {
        assert_eq!(Refused::UnknownKind(7).to_string(), "unknown envelope kind 7");
        assert_eq!(Refused::Plaintext.to_string(), "plaintext packet refused: encrypt_verify_incoming is on");
    }
}
