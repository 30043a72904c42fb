//! The keyring: the primary key that seals, and every installed key that may open (memberlist's `Keyring`).
//!
//! A sealed packet is `nonce (12 bytes) || ciphertext || tag (16 bytes)`, AES-GCM with the primary key and the
//! caller's `context` as associated data, so a packet sealed for one purpose (say LAN UDP) does not open for
//! another (WAN, or TCP) even under the same key.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};

use super::error::{KeyringError, OpenError};
use super::key::GossipKey;

/// Bytes of the nonce in front of every sealed packet (AES-GCM's 96-bit nonce).
pub const NONCE_BYTES: usize = 12;
/// Bytes of the authentication tag at the end of every sealed packet.
pub const TAG_BYTES: usize = 16;
/// What sealing adds to a payload.
pub const SEAL_OVERHEAD_BYTES: usize = NONCE_BYTES + TAG_BYTES;

/// Most keys one keyring holds. [`Keyring::open`] tries every key on every packet, so this bounds the work one
/// forged packet costs; a rotation needs two keys at a time, so 16 leaves plenty of room for staged keys.
pub const KEYS_MAX: usize = 16;

/// AES-192-GCM with the 96-bit nonce, for 24-byte keys (aes-gcm names only the 128 and 256-bit variants).
type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, U12>;

/// The installed gossip keys and which of them is primary.
///
/// Invariants (asserted after every change): at least one key; no key twice; at most [`KEYS_MAX`] keys;
/// `keys` is `installed` with the primary moved to the front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    /// Every key in the order it was installed, the primary among them.
    installed: Vec<GossipKey>,
    /// The primary, then the other keys in install order: the order [`Keyring::open`] tries them in.
    keys: Vec<GossipKey>,
}

impl Keyring {
    /// A keyring holding only `primary` (Consul's `encrypt` option on a first start).
    pub fn new(primary: GossipKey) -> Keyring {
        Keyring::from_installed(vec![primary.clone()], &primary)
    }

    pub fn primary(&self) -> &GossipKey {
        &self.keys[0]
    }

    /// The primary first, then the other keys in install order (what `consul keyring -list` shows, and what
    /// the keyring file holds).
    pub fn keys(&self) -> &[GossipKey] {
        &self.keys
    }

    /// Whether `key` is installed, primary or not.
    pub fn contains(&self, key: &GossipKey) -> bool {
        self.installed.contains(key)
    }

    /// Adds `key` so that packets sealed under it open (`consul keyring -install`). Installing a key that is
    /// already installed changes nothing, as in memberlist. The primary does not change.
    pub fn install(&mut self, key: GossipKey) -> Result<(), KeyringError> {
        if self.contains(&key) {
            return Ok(());
        }
        if self.installed.len() == KEYS_MAX {
            return Err(KeyringError::Full);
        }
        let mut installed = std::mem::take(&mut self.installed);
        installed.push(key);
        *self = Keyring::from_installed(installed, &self.keys[0]);
        Ok(())
    }

    /// Makes an installed `key` the one that seals (`consul keyring -use`); the old primary stays installed
    /// and still opens packets until it is removed. On error the keyring is unchanged.
    pub fn use_key(&mut self, key: &GossipKey) -> Result<(), KeyringError> {
        if !self.contains(key) {
            return Err(KeyringError::NotInstalled);
        }
        *self = Keyring::from_installed(std::mem::take(&mut self.installed), key);
        Ok(())
    }

    /// Uninstalls `key` (`consul keyring -remove`): packets sealed under it stop opening. Removing a key that
    /// is not installed changes nothing and is not an error, as in memberlist. The primary cannot be removed:
    /// `use` another key first. On error the keyring is unchanged.
    pub fn remove(&mut self, key: &GossipKey) -> Result<(), KeyringError> {
        if key == self.primary() {
            return Err(KeyringError::RemovePrimary);
        }
        let mut installed = std::mem::take(&mut self.installed);
        installed.retain(|k| k != key);
        *self = Keyring::from_installed(installed, &self.keys[0]);
        Ok(())
    }

    /// Seals `plaintext` with the primary key and `context` as associated data; returns
    /// `nonce || ciphertext || tag`, [`SEAL_OVERHEAD_BYTES`] longer than `plaintext`.
    ///
    /// `nonce` must never repeat under one key: AES-GCM loses both secrecy and authenticity when it does. Draw
    /// it at random for every call (safe for 2^32 packets per key, NIST SP 800-38D §8.3).
    pub fn seal(&self, plaintext: &[u8], context: &[u8], nonce: [u8; NONCE_BYTES]) -> Vec<u8> {
        let payload = Payload { msg: plaintext, aad: context };
        let key = self.primary().bytes();
        let sealed = match key.len() {
            16 => encrypt::<Aes128Gcm>(key, &nonce, payload),
            24 => encrypt::<Aes192Gcm>(key, &nonce, payload),
            32 => encrypt::<Aes256Gcm>(key, &nonce, payload),
            n => unreachable!("a GossipKey of {n} bytes was constructed"),
        };
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        assert_eq!(out.len(), plaintext.len() + SEAL_OVERHEAD_BYTES, "AES-GCM output is plaintext plus tag");
        out
    }

    /// Opens what [`Keyring::seal`] produced under any installed key, trying the primary first (it seals
    /// nearly all traffic), then the others in install order. `context` must be the one it was sealed with.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < SEAL_OVERHEAD_BYTES {
            return Err(OpenError::TooShort);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        for key in &self.keys {
            let payload = Payload { msg: ciphertext, aad: context };
            let key = key.bytes();
            let opened = match key.len() {
                16 => decrypt::<Aes128Gcm>(key, nonce, payload),
                24 => decrypt::<Aes192Gcm>(key, nonce, payload),
                32 => decrypt::<Aes256Gcm>(key, nonce, payload),
                n => unreachable!("a GossipKey of {n} bytes was constructed"),
            };
            if let Some(plaintext) = opened {
                return Ok(plaintext);
            }
        }
        Err(OpenError::NoKeyMatches)
    }

    /// The one constructor: orders the keys and checks the invariants. `installed` has no duplicates;
    /// `primary` is among them.
    pub(super) fn from_installed(installed: Vec<GossipKey>, primary: &GossipKey) -> Keyring {
        let mut keys = Vec::with_capacity(installed.len());
        keys.push(primary.clone());
        keys.extend(installed.iter().filter(|k| *k != primary).cloned());
        let ring = Keyring { installed, keys };
        ring.check_invariants();
        ring
    }

    fn check_invariants(&self) {
        assert!(!self.installed.is_empty(), "a keyring always has a primary key");
        assert!(self.installed.len() <= KEYS_MAX, "{} keys installed, more than {KEYS_MAX}", self.installed.len());
        assert_eq!(self.keys.len(), self.installed.len(), "a key is installed twice, or the primary is not installed");
        let mut sorted: Vec<&GossipKey> = self.installed.iter().collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), self.installed.len(), "a key is installed twice");
    }
}

/// One AES-GCM seal; `key` has the cipher's key size (checked by the caller's match on its length).
fn encrypt<C: KeyInit + Aead + AeadCore<NonceSize = U12>>(
    key: &[u8],
    nonce: &[u8; NONCE_BYTES],
    payload: Payload<'_, '_>,
) -> Vec<u8> {
    let cipher = C::new_from_slice(key).expect("key length matches the cipher");
    // AES-GCM refuses only plaintexts over 64 GiB; a gossip packet is a few KiB.
    cipher.encrypt(Nonce::<U12>::from_slice(nonce), payload).expect("AES-GCM seals any packet under 64 GiB")
}

/// One AES-GCM open; `None` when the tag does not verify under this key.
fn decrypt<C: KeyInit + Aead + AeadCore<NonceSize = U12>>(
    key: &[u8],
    nonce: &[u8],
    payload: Payload<'_, '_>,
) -> Option<Vec<u8>> {
    let cipher = C::new_from_slice(key).expect("key length matches the cipher");
    cipher.decrypt(Nonce::<U12>::from_slice(nonce), payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_32: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    const KEY_16: &str = "XvvaxkmMJVwaDHOgHlFWYA==";
    const CONTEXT: &[u8] = b"lan/udp";

    fn key(text: &str) -> GossipKey {
        GossipKey::from_base64(text).unwrap()
    }

    fn key_24() -> GossipKey {
        GossipKey::from_bytes(&(0..24).collect::<Vec<u8>>()).unwrap()
    }

    fn nonce(n: u8) -> [u8; NONCE_BYTES] {
        [n; NONCE_BYTES]
    }

    #[test]
    fn test_keys_have_the_lengths_they_claim() {
        assert_eq!(key(KEY_32).bytes().len(), 32);
        assert_eq!(key(KEY_16).bytes().len(), 16);
        assert_eq!(key_24().bytes().len(), 24);
    }

    #[test]
    fn seal_then_open_round_trips_for_16_24_and_32_byte_keys() {
        for primary in [key(KEY_16), key_24(), key(KEY_32)] {
            let ring = Keyring::new(primary.clone());
            for plaintext in [&b""[..], b"x", &[7; 1400]] {
                let sealed = ring.seal(plaintext, CONTEXT, nonce(1));
                assert_eq!(sealed.len(), plaintext.len() + SEAL_OVERHEAD_BYTES);
                assert_eq!(&sealed[..NONCE_BYTES], &nonce(1), "the nonce leads the packet");
                assert_eq!(ring.open(&sealed, CONTEXT).unwrap(), plaintext, "{primary:?}");
            }
        }
    }

    /// The output layout is standard AES-GCM: checked against the GCM spec's test cases 2, 8 and 14
    /// (McGrew & Viega, "The Galois/Counter Mode of Operation"): zero key, zero nonce, 16 zero bytes.
    #[test]
    fn seal_output_is_nonce_then_standard_aes_gcm_ciphertext_and_tag() {
        let cases = [
            (16, "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"),
            (24, "98e7247c07f0fe411c267e4384b0f600", "2ff58d80033927ab8ef4d4587514f0fb"),
            (32, "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"),
        ];
        for (len, ciphertext, tag) in cases {
            let ring = Keyring::new(GossipKey::from_bytes(&vec![0; len]).unwrap());
            let sealed = ring.seal(&[0; 16], b"", [0; NONCE_BYTES]);
            let hex: String = sealed[NONCE_BYTES..].iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, format!("{ciphertext}{tag}"), "AES-{} test case", len * 8);
        }
    }

    #[test]
    fn packet_sealed_under_old_primary_opens_while_the_old_key_is_installed() {
        let mut ring = Keyring::new(key(KEY_16));
        let sealed_old = ring.seal(b"hello", CONTEXT, nonce(1));
        ring.install(key(KEY_32)).unwrap();
        ring.use_key(&key(KEY_32)).unwrap();
        assert_eq!(ring.primary(), &key(KEY_32));
        assert_eq!(ring.open(&sealed_old, CONTEXT).unwrap(), b"hello");
        let sealed_new = ring.seal(b"hello", CONTEXT, nonce(2));
        assert_eq!(Keyring::new(key(KEY_16)).open(&sealed_new, CONTEXT), Err(OpenError::NoKeyMatches));
    }

    #[test]
    fn packet_sealed_under_a_rotated_out_key_no_longer_opens() {
        let mut ring = Keyring::new(key(KEY_16));
        let sealed_old = ring.seal(b"hello", CONTEXT, nonce(1));
        ring.install(key(KEY_32)).unwrap();
        ring.use_key(&key(KEY_32)).unwrap();
        ring.remove(&key(KEY_16)).unwrap();
        assert_eq!(ring.keys(), &[key(KEY_32)]);
        assert_eq!(ring.open(&sealed_old, CONTEXT), Err(OpenError::NoKeyMatches));
    }

    #[test]
    fn packet_does_not_open_under_another_context() {
        let ring = Keyring::new(key(KEY_32));
        let sealed = ring.seal(b"hello", b"lan/udp", nonce(1));
        assert_eq!(ring.open(&sealed, b"wan/udp"), Err(OpenError::NoKeyMatches));
        assert_eq!(ring.open(&sealed, b""), Err(OpenError::NoKeyMatches));
    }

    #[test]
    fn tampering_with_any_bit_of_a_sealed_packet_is_detected() {
        let mut ring = Keyring::new(key(KEY_16));
        ring.install(key(KEY_32)).unwrap();
        let sealed = ring.seal(b"a gossip packet", CONTEXT, nonce(3));
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut tampered = sealed.clone();
                tampered[i] ^= 1 << bit;
                assert_eq!(ring.open(&tampered, CONTEXT), Err(OpenError::NoKeyMatches), "byte {i} bit {bit}");
            }
        }
        assert_eq!(ring.open(&sealed[..sealed.len() - 1], CONTEXT), Err(OpenError::NoKeyMatches));
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(ring.open(&longer, CONTEXT), Err(OpenError::NoKeyMatches));
    }

    #[test]
    fn packet_shorter_than_nonce_and_tag_is_too_short() {
        let ring = Keyring::new(key(KEY_32));
        for len in 0..SEAL_OVERHEAD_BYTES {
            assert_eq!(ring.open(&vec![0; len], CONTEXT), Err(OpenError::TooShort), "{len} bytes");
        }
        assert_eq!(ring.open(&[0; SEAL_OVERHEAD_BYTES], CONTEXT), Err(OpenError::NoKeyMatches));
    }

    #[test]
    fn keys_lists_the_primary_first_then_the_others_in_install_order() {
        let (a, b, c) = (key(KEY_16), key_24(), key(KEY_32));
        let mut ring = Keyring::new(a.clone());
        ring.install(b.clone()).unwrap();
        ring.install(c.clone()).unwrap();
        assert_eq!(ring.keys(), &[a.clone(), b.clone(), c.clone()]);
        ring.use_key(&c).unwrap();
        assert_eq!(ring.keys(), &[c.clone(), a.clone(), b.clone()]);
        ring.use_key(&b).unwrap();
        assert_eq!(ring.keys(), &[b.clone(), a.clone(), c.clone()]);
        assert_eq!(ring.primary(), &b);
    }

    #[test]
    fn installing_an_installed_key_changes_nothing() {
        let mut ring = Keyring::new(key(KEY_16));
        ring.install(key(KEY_32)).unwrap();
        let before = ring.clone();
        ring.install(key(KEY_32)).unwrap();
        ring.install(key(KEY_16)).unwrap();
        assert_eq!(ring, before);
    }

    #[test]
    fn use_of_a_key_not_installed_is_refused_with_memberlists_text() {
        let mut ring = Keyring::new(key(KEY_16));
        let before = ring.clone();
        let err = ring.use_key(&key(KEY_32)).unwrap_err();
        assert_eq!(err.to_string(), "Requested key is not in the keyring");
        assert_eq!(ring, before);
    }

    #[test]
    fn removing_the_primary_key_is_refused() {
        let mut ring = Keyring::new(key(KEY_16));
        ring.install(key(KEY_32)).unwrap();
        let before = ring.clone();
        let err = ring.remove(&key(KEY_16)).unwrap_err();
        assert_eq!(err, KeyringError::RemovePrimary);
        assert_eq!(err.to_string(), "Removing the primary key is not allowed");
        assert_eq!(ring, before);
    }

    #[test]
    fn removing_a_key_not_installed_is_a_no_op() {
        let mut ring = Keyring::new(key(KEY_16));
        let before = ring.clone();
        ring.remove(&key(KEY_32)).unwrap();
        assert_eq!(ring, before);
    }

    #[test]
    fn install_beyond_keys_max_is_refused() {
        let mut ring = Keyring::new(GossipKey::from_bytes(&[0; 16]).unwrap());
        for i in 1..KEYS_MAX {
            ring.install(GossipKey::from_bytes(&[i as u8; 16]).unwrap()).unwrap();
        }
        assert_eq!(ring.keys().len(), KEYS_MAX);
        let before = ring.clone();
        assert_eq!(ring.install(key(KEY_32)), Err(KeyringError::Full));
        assert_eq!(ring, before);
        ring.install(GossipKey::from_bytes(&[1; 16]).unwrap()).unwrap();
    }
}
