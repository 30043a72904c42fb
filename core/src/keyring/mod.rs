//! Gossip encryption: Consul's keyring and the envelope around every gossip datagram (UDP) and LAN TCP frame.
//!
//! Consul's `encrypt` option gives the first key; the agent keeps every installed key in `serf/local.keyring`
//! (a JSON array of base64 keys, primary first, [`Keyring::to_file_bytes`]), and `consul keyring
//! -install/-use/-remove` rotates them ([`Keyring::install`], [`Keyring::use_key`], [`Keyring::remove`]).
//! Outgoing traffic is sealed with the primary key; incoming traffic opens under any installed key, which is
//! what lets a cluster rotate without a flag day (memberlist's `Keyring`).
//!
//! Modules: [`key`] (one AES-GCM key), [`ring`] (the keyring, sealing and opening), [`file`] (the keyring
//! file), [`envelope`] (the kind byte in front of every packet, Consul's `encrypt_verify_incoming` and
//! `encrypt_verify_outgoing`), [`error`] (what the keyring refuses).
//!
//! Deterministic like the rest of the crate: the caller passes a fresh nonce into every seal (the runtime
//! draws it from the OS, the simulator from its seed); nothing here draws randomness or keeps a counter.

pub mod envelope;
pub mod error;
pub mod file;
pub mod key;
pub mod ring;

pub use envelope::{unwrap, wrap, Refused, ENVELOPE_OVERHEAD_BYTES_MAX, ENVELOPE_PLAIN, ENVELOPE_SEALED};
pub use error::{KeyringError, OpenError};
pub use file::KEYRING_FILE_BYTES_MAX;
pub use key::GossipKey;
pub use ring::{Keyring, KEYS_MAX, NONCE_BYTES, SEAL_OVERHEAD_BYTES, TAG_BYTES};
