//! One gossip encryption key: 16, 24 or 32 bytes (AES-128/192/256-GCM), written as base64 in Consul's
//! `encrypt` option, in `consul keygen`'s output and in the keyring file.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use super::error::KeyringError;

/// Go's `base64.StdEncoding`, which Consul decodes keys with: standard alphabet, padding required, and
/// (unlike the `base64` crate's `STANDARD`) nonzero trailing bits tolerated, so every key Consul takes is taken.
const GO_STD_ENCODING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// An AES-GCM key. Its `Debug` shows only its length, so a key never lands in a log.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GossipKey(Vec<u8>);

impl GossipKey {
    /// Key sizes AES-GCM takes (memberlist's `ValidateKey`).
    pub const LENGTHS: [usize; 3] = [16, 24, 32];

    /// Parses a key as Consul's `encrypt` option and `consul keyring -install` take it: standard base64 with
    /// padding, surrounding whitespace ignored.
    pub fn from_base64(text: &str) -> Result<GossipKey, KeyringError> {
        let bytes = GO_STD_ENCODING.decode(text.trim()).map_err(|e| KeyringError::Base64(e.to_string()))?;
        GossipKey::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<GossipKey, KeyringError> {
        if !GossipKey::LENGTHS.contains(&bytes.len()) {
            return Err(KeyringError::KeyLength(bytes.len()));
        }
        Ok(GossipKey(bytes.to_vec()))
    }

    /// The key as Consul writes it (`consul keygen`, `consul keyring -list`, the keyring file).
    pub fn to_base64(&self) -> String {
        GO_STD_ENCODING.encode(&self.0)
    }

    /// The raw key, for the cipher.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for GossipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GossipKey(<redacted>, {} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_32: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    const KEY_16: &str = "XvvaxkmMJVwaDHOgHlFWYA==";

    #[test]
    fn base64_keys_of_16_24_and_32_bytes_round_trip() {
        let key_24 = GossipKey::from_bytes(&[9; 24]).unwrap().to_base64();
        for (text, len) in [(KEY_16, 16), (key_24.as_str(), 24), (KEY_32, 32)] {
            let key = GossipKey::from_base64(text).unwrap();
            assert_eq!(key.bytes().len(), len, "{text}");
            assert_eq!(key.to_base64(), text);
        }
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let key = GossipKey::from_base64(&format!(" \t{KEY_32}\n")).unwrap();
        assert_eq!(key.to_base64(), KEY_32);
    }

    #[test]
    fn key_of_wrong_length_is_refused_with_its_length() {
        let err = GossipKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap_err(); // 23 bytes
        assert_eq!(err, KeyringError::KeyLength(23));
        assert_eq!(err.to_string(), "encryption key is 23 bytes: key size must be 16, 24 or 32 bytes");
        assert_eq!(GossipKey::from_bytes(&[]).unwrap_err(), KeyringError::KeyLength(0));
        assert_eq!(GossipKey::from_bytes(&[0; 64]).unwrap_err(), KeyringError::KeyLength(64));
    }

    #[test]
    fn key_that_is_not_padded_base64_is_refused() {
        for text in ["", "not base64!", "XvvaxkmMJVwaDHOgHlFWYA", "XvvaxkmM-VwaDHOgHlFWYA=="] {
            let err = GossipKey::from_base64(text).unwrap_err();
            assert!(matches!(err, KeyringError::Base64(_) | KeyringError::KeyLength(0)), "{text:?}: {err:?}");
        }
    }

    #[test]
    fn key_with_nonzero_trailing_bits_is_taken_as_go_takes_it() {
        // Go's StdEncoding is not Strict(): the last character's unused bits may be set.
        let key = GossipKey::from_base64("XvvaxkmMJVwaDHOgHlFWYB==").unwrap();
        assert_eq!(key, GossipKey::from_base64(KEY_16).unwrap());
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let key = GossipKey::from_base64(KEY_32).unwrap();
        let debug = format!("{key:?} {:?}", super::super::Keyring::new(key.clone()));
        assert!(!debug.contains(KEY_32) && !debug.contains(&KEY_32[..8]), "{debug}");
        assert!(!debug.contains(&format!("{:?}", key.bytes())), "{debug}");
        assert_eq!(format!("{key:?}"), "GossipKey(<redacted>, 32 bytes)");
    }
}
