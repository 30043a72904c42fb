//! What the keyring refuses. Where memberlist or Consul has a text for the same refusal, it is used word for
//! word (operators and scripts know them from `consul keyring`). No message ever contains key material.

use super::file::KEYRING_FILE_BYTES_MAX;
use super::ring::KEYS_MAX;

/// A key, a keyring change or a keyring file that was refused. The keyring is unchanged in every case.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyringError {
    /// The key text is not standard base64 with padding (Go's `base64.StdEncoding`, as Consul decodes it).
    #[error("encryption key is not valid base64: {0}")]
    Base64(String),
    /// The key decodes to `0` bytes; AES-GCM needs 16, 24 or 32 (memberlist's `ValidateKey`).
    #[error("encryption key is {0} bytes: key size must be 16, 24 or 32 bytes")]
    KeyLength(usize),
    /// `use_key` of a key that was never installed (memberlist's text).
    #[error("Requested key is not in the keyring")]
    NotInstalled,
    /// `remove` of the primary key: `use` another key first (memberlist's text).
    #[error("Removing the primary key is not allowed")]
    RemovePrimary,
    /// `install` into a keyring that already holds [`KEYS_MAX`] keys.
    #[error("the keyring already holds {KEYS_MAX} keys, the most allowed: remove one first")]
    Full,
    /// The keyring file is longer than [`KEYRING_FILE_BYTES_MAX`]; it was not parsed.
    #[error("keyring file is {0} bytes, more than the {KEYRING_FILE_BYTES_MAX} allowed")]
    FileTooLarge(usize),
    /// The keyring file is not a JSON array of strings.
    #[error("keyring file is not a JSON array of base64 keys: {0}")]
    FileNotJson(String),
    /// The keyring file is an empty array (Consul's text).
    #[error("no keys present in keyring file")]
    FileEmpty,
    /// Entry `index` (from 0) of the keyring file is not a valid key, or one key too many.
    #[error("keyring file entry {index}: {problem}")]
    FileEntry { index: usize, problem: Box<KeyringError> },
}

/// Why [`super::Keyring::open`] found no plaintext. Both mean "drop the packet"; neither is a bug of ours.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than a nonce and a tag: it cannot have been sealed by any keyring.
    #[error("sealed packet shorter than a nonce and a tag")]
    TooShort,
    /// No installed key authenticates it: sealed under another keyring, or tampered with, or under another
    /// `context`.
    #[error("no installed key opens the packet")]
    NoKeyMatches,
}
