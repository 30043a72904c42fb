//! Fuzzes the keyring file loader (`serf/local.keyring`, a JSON array of base64 keys): arbitrary bytes give
//! a keyring or an error saying what is wrong, never a panic. A keyring read is written back as serf writes
//! it and reads again to the same keys, primary first; the size limit holds at its boundary.
#![no_main]

use conclave_core::keyring::{Keyring, KeyringError, KEYRING_FILE_BYTES_MAX, KEYS_MAX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let read = Keyring::from_file_bytes(data);
    match &read {
        Ok(ring) => check_round_trip(ring),
        Err(err) => check_error(data, err),
    }
    if data.len() <= KEYRING_FILE_BYTES_MAX {
        check_size_limit(data, &read);
    }
});

/// A keyring read from a file is written and read back to the same keys in the same order.
fn check_round_trip(ring: &Keyring) {
    assert!((1..=KEYS_MAX).contains(&ring.keys().len()), "{} keys read", ring.keys().len());
    let bytes = ring.to_file_bytes();
    let again = Keyring::from_file_bytes(&bytes).expect("a written keyring file reads back");
    assert_eq!(again.keys(), ring.keys(), "the keys and their order survive a write and a read");
    assert_eq!(again.primary(), ring.primary());
    assert_eq!(again.to_file_bytes(), bytes, "writing is stable");
    let texts: Vec<String> = serde_json::from_slice(&bytes).expect("the file is a JSON array of strings");
    assert_eq!(texts.len(), ring.keys().len(), "one entry per key, none twice");
}

/// An error names a cause that the input can have, and has a message.
fn check_error(data: &[u8], err: &KeyringError) {
    assert!(!err.to_string().is_empty());
    match err {
        KeyringError::FileTooLarge(len) => assert!(*len == data.len() && *len > KEYRING_FILE_BYTES_MAX),
        KeyringError::FileNotJson(_) | KeyringError::FileEmpty => {}
        KeyringError::FileEntry { index, problem } => {
            let entries: Vec<String> = serde_json::from_slice(data).expect("an entry error means the file is JSON");
            assert!(*index < entries.len(), "entry {index} of {}", entries.len());
            // A key listed twice is kept once, so the key one too many can come after entry KEYS_MAX.
            let one_too_many = *index >= KEYS_MAX && **problem == KeyringError::Full;
            assert!(
                matches!(**problem, KeyringError::Base64(_) | KeyringError::KeyLength(_)) || one_too_many,
                "entry {index}: {problem:?}"
            );
        }
        other => panic!("a file read cannot fail with {other:?}"),
    }
}

/// Trailing whitespace is JSON's: padded to exactly the limit the file reads as before (the same keys, or the
/// same refusal; a JSON error's position may move); one byte more and it is refused unread.
fn check_size_limit(data: &[u8], read: &Result<Keyring, KeyringError>) {
    let mut padded = data.to_vec();
    padded.resize(KEYRING_FILE_BYTES_MAX, b' ');
    let padded_read = Keyring::from_file_bytes(&padded);
    match (read, &padded_read) {
        (Ok(ring), Ok(padded_ring)) => assert_eq!(ring.keys(), padded_ring.keys()),
        (Err(KeyringError::FileNotJson(_)), Err(KeyringError::FileNotJson(_))) => {}
        (Err(err), Err(padded_err)) => assert_eq!(err, padded_err),
        _ => panic!("trailing whitespace changed the outcome: {read:?} then {padded_read:?}"),
    }
    padded.push(b' ');
    assert_eq!(Keyring::from_file_bytes(&padded).unwrap_err(), KeyringError::FileTooLarge(KEYRING_FILE_BYTES_MAX + 1));
}
