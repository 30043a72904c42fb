//! The keyring file, `serf/local.keyring` (and `serf/remote.keyring` for WAN) in Consul's data directory: a
//! JSON array of base64 keys, primary first, written by serf as Go's `json.MarshalIndent(keys, "", "  ")`.
//! The core only turns a keyring into these bytes and back; the runtime reads and writes the file (mode 0600).

use super::error::KeyringError;
use super::key::GossipKey;
use super::ring::{Keyring, KEYS_MAX};

/// Longest keyring file read. A full keyring of 32-byte keys takes about 50 bytes a key (quotes, comma,
/// indent); the rest is room for hand-edited whitespace. Checked before parsing.
pub const KEYRING_FILE_BYTES_MAX: usize = 16 << 10;

/// Bytes one 32-byte key takes in the file as written: `  "` + 44 base64 characters + `",\n`.
const FILE_BYTES_PER_KEY_MAX: usize = 2 + 1 + 44 + 1 + 1 + 1;
const _: () =
    assert!(2 + KEYS_MAX * FILE_BYTES_PER_KEY_MAX + 2 <= KEYRING_FILE_BYTES_MAX, "a full keyring fits its file");

impl Keyring {
    /// The keyring file's bytes: the primary first, then the other keys in install order, indented as serf
    /// writes it. [`Keyring::from_file_bytes`] reads it back to an equal keyring.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let keys: Vec<String> = self.keys().iter().map(GossipKey::to_base64).collect();
        let bytes = serde_json::to_vec_pretty(&keys).expect("a list of strings always serializes");
        assert!(bytes.len() <= KEYRING_FILE_BYTES_MAX, "a keyring file of {} bytes would not read back", bytes.len());
        bytes
    }

    /// Reads a keyring file: the first key is primary, the others are installed in file order. A key listed
    /// twice is kept once, at its first place, as memberlist's `NewKeyring` does; Consul's other refusals
    /// (not JSON, an empty list, a bad key) are errors, and so is more than [`KEYS_MAX`] keys.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Keyring, KeyringError> {
        if bytes.len() > KEYRING_FILE_BYTES_MAX {
            return Err(KeyringError::FileTooLarge(bytes.len()));
        }
        let texts: Vec<String> = serde_json::from_slice(bytes).map_err(|e| KeyringError::FileNotJson(e.to_string()))?;
        let entry_error =
            |index: usize, problem: KeyringError| KeyringError::FileEntry { index, problem: Box::new(problem) };
        let mut texts = texts.iter().enumerate();
        let Some((_, first)) = texts.next() else {
            return Err(KeyringError::FileEmpty);
        };
        let mut ring = Keyring::new(GossipKey::from_base64(first).map_err(|e| entry_error(0, e))?);
        for (index, text) in texts {
            let key = GossipKey::from_base64(text).map_err(|e| entry_error(index, e))?;
            ring.install(key).map_err(|e| entry_error(index, e))?;
        }
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_32: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    const KEY_16: &str = "XvvaxkmMJVwaDHOgHlFWYA==";

    fn key(text: &str) -> GossipKey {
        GossipKey::from_base64(text).unwrap()
    }

    #[test]
    fn file_round_trips_with_the_primary_first() {
        let key_24 = GossipKey::from_bytes(&[5; 24]).unwrap();
        let mut ring = Keyring::new(key(KEY_16));
        ring.install(key_24.clone()).unwrap();
        ring.install(key(KEY_32)).unwrap();
        ring.use_key(&key(KEY_32)).unwrap();
        let bytes = ring.to_file_bytes();
        let texts: Vec<String> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(texts, [KEY_32.to_string(), KEY_16.to_string(), key_24.to_base64()]);
        let read = Keyring::from_file_bytes(&bytes).unwrap();
        assert_eq!(read.primary(), &key(KEY_32));
        assert_eq!(read.keys(), ring.keys());
    }

    #[test]
    fn file_is_written_as_serf_indents_it() {
        let mut ring = Keyring::new(key(KEY_32));
        ring.install(key(KEY_16)).unwrap();
        let expected = format!("[\n  \"{KEY_32}\",\n  \"{KEY_16}\"\n]");
        assert_eq!(String::from_utf8(ring.to_file_bytes()).unwrap(), expected);
    }

    #[test]
    fn file_of_compact_json_with_whitespace_is_read() {
        let text = format!(" [\"{KEY_16}\",\"{KEY_32}\"]\n");
        let ring = Keyring::from_file_bytes(text.as_bytes()).unwrap();
        assert_eq!(ring.keys(), &[key(KEY_16), key(KEY_32)]);
    }

    #[test]
    fn key_listed_twice_in_the_file_is_kept_once_at_its_first_place() {
        let text = format!("[\"{KEY_16}\",\"{KEY_32}\",\"{KEY_16}\",\"{KEY_32}\"]");
        let ring = Keyring::from_file_bytes(text.as_bytes()).unwrap();
        assert_eq!(ring.keys(), &[key(KEY_16), key(KEY_32)]);
    }

    #[test]
    fn file_errors_say_what_is_wrong_and_where() {
        let cases: Vec<(String, KeyringError)> = vec![
            ("[]".into(), KeyringError::FileEmpty),
            (
                format!("[\"{KEY_16}\", \"AAAA\"]"),
                KeyringError::FileEntry { index: 1, problem: Box::new(KeyringError::KeyLength(3)) },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Keyring::from_file_bytes(text.as_bytes()).unwrap_err(), expected, "{text}");
        }
        assert_eq!(Keyring::from_file_bytes(b"[]").unwrap_err().to_string(), "no keys present in keyring file");
        let err = Keyring::from_file_bytes(format!("[\"{KEY_16}\", \"AAAA\"]").as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "keyring file entry 1: encryption key is 3 bytes: key size must be 16, 24 or 32 bytes"
        );
        for text in
            ["", "{}", "null", &format!("\"{KEY_16}\""), &format!("[\"{KEY_16}\", 7]"), &format!("[\"{KEY_16}\"")]
        {
            let err = Keyring::from_file_bytes(text.as_bytes()).unwrap_err();
            assert!(matches!(err, KeyringError::FileNotJson(_)), "{text:?}: {err:?}");
        }
        let err = Keyring::from_file_bytes(b"[\"not base64!\"]").unwrap_err();
        assert!(
            matches!(&err, KeyringError::FileEntry { index: 0, problem } if matches!(**problem, KeyringError::Base64(_))),
            "{err:?}"
        );
    }

    #[test]
    fn file_error_does_not_echo_the_keys() {
        let text = format!("[\"{KEY_32}\", \"{}\"]", &KEY_16[..20]);
        let err = Keyring::from_file_bytes(text.as_bytes()).unwrap_err().to_string();
        assert!(!err.contains(KEY_32) && !err.contains(&KEY_16[..20]), "{err}");
    }

    #[test]
    fn file_over_the_size_limit_is_refused_before_parsing() {
        let text = format!("[\"{KEY_16}\"]{}", " ".repeat(KEYRING_FILE_BYTES_MAX));
        assert_eq!(Keyring::from_file_bytes(text.as_bytes()).unwrap_err(), KeyringError::FileTooLarge(text.len()));
    }

    #[test]
    fn file_with_more_than_keys_max_keys_is_refused() {
        let texts: Vec<String> =
            (0..=KEYS_MAX).map(|i| GossipKey::from_bytes(&[i as u8; 16]).unwrap().to_base64()).collect();
        let err = Keyring::from_file_bytes(&serde_json::to_vec(&texts).unwrap()).unwrap_err();
        assert_eq!(err, KeyringError::FileEntry { index: KEYS_MAX, problem: Box::new(KeyringError::Full) });
    }
}
