//! Fuzzes the encrypted gossip receive path: arbitrary bytes into `keyring::unwrap` and `Keyring::open` with
//! no keyring, one key, and two keys mid-rotation, `encrypt_verify_incoming` on and off. Each packet is
//! refused for the reason its kind byte and length give, or opened — never a panic. The same bytes also
//! pick a payload, nonce and context to seal: the envelope unwraps to the payload, opens under a keyring
//! that still holds the sealing key, and is refused once any one of its bytes is changed.
#![no_main]

use conclave_core::keyring::{
    self, GossipKey, Keyring, OpenError, Refused, ENVELOPE_OVERHEAD_BYTES_MAX, ENVELOPE_PLAIN, ENVELOPE_SEALED,
    NONCE_BYTES, SEAL_OVERHEAD_BYTES,
};
use libfuzzer_sys::fuzz_target;

const KEY_32: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const KEY_16: &str = "XvvaxkmMJVwaDHOgHlFWYA==";

/// The associated data the runtime seals each pool's datagrams and streams with (`Channel::context` in
/// `runtime/src/security/keyring.rs`, which is private there).
const CONTEXTS: [&[u8]; 4] = [b"conclave/lan/udp", b"conclave/lan/tcp", b"conclave/wan/udp", b"conclave/wan/tcp"];

/// Longest payload the round trip seals. Every byte of the envelope is changed in turn and each change costs
/// an AES-GCM open per installed key, so the check is quadratic in the length (at 256 bytes it ran at 360
/// inputs/s). GCM depends on the length only through its 16-byte blocks and the last partial one, so four
/// blocks cover it.
const ROUND_TRIP_PAYLOAD_BYTES_MAX: usize = 64;

fn key(text: &str) -> GossipKey {
    GossipKey::from_base64(text).expect("fixed test key")
}

fuzz_target!(|data: &[u8]| {
    // `one`: a single 32-byte key. `rotating`: a new 16-byte primary, the old 32-byte key still installed.
    let one = Keyring::new(key(KEY_32));
    let mut rotating = Keyring::new(key(KEY_32));
    rotating.install(key(KEY_16)).expect("room for a second key");
    rotating.use_key(&key(KEY_16)).expect("the key was just installed");

    for ring in [None, Some(&one), Some(&rotating)] {
        for require_encrypted in [true, false] {
            for context in CONTEXTS {
                check_arbitrary_packet(ring, require_encrypted, data, context);
            }
        }
    }
    for ring in [&one, &rotating] {
        check_arbitrary_open(ring, data, CONTEXTS[0]);
    }
    check_round_trip(&one, &rotating, data);
});

/// Unwraps `packet` and checks the outcome against what its kind byte and length allow.
fn check_arbitrary_packet(ring: Option<&Keyring>, require_encrypted: bool, packet: &[u8], context: &[u8]) {
    let unwrapped = keyring::unwrap(ring, require_encrypted, packet, context);
    let Some((&kind, body)) = packet.split_first() else {
        assert_eq!(unwrapped, Err(Refused::Empty));
        return;
    };
    match kind {
        ENVELOPE_PLAIN if require_encrypted => assert_eq!(unwrapped, Err(Refused::Plaintext)),
        ENVELOPE_PLAIN => assert_eq!(unwrapped.as_deref(), Ok(body), "a plain packet is its body"),
        ENVELOPE_SEALED => match (ring, &unwrapped) {
            (None, _) => assert_eq!(unwrapped, Err(Refused::NoKeyring)),
            (Some(_), _) if body.len() < SEAL_OVERHEAD_BYTES => assert_eq!(unwrapped, Err(Refused::TooShort)),
            (Some(_), Ok(payload)) => assert_eq!(payload.len(), body.len() - SEAL_OVERHEAD_BYTES),
            (Some(_), Err(refused)) => assert_eq!(*refused, Refused::UnknownKey),
        },
        other => assert_eq!(unwrapped, Err(Refused::UnknownKind(other))),
    }
}

/// Opens `sealed` directly (no kind byte): the same answer as unwrapping it behind [`ENVELOPE_SEALED`].
fn check_arbitrary_open(ring: &Keyring, sealed: &[u8], context: &[u8]) {
    let opened = ring.open(sealed, context);
    let packet = [&[ENVELOPE_SEALED][..], sealed].concat();
    let unwrapped = keyring::unwrap(Some(ring), true, &packet, context);
    match opened {
        Ok(payload) => assert_eq!(unwrapped, Ok(payload)),
        Err(OpenError::TooShort) => assert_eq!(unwrapped, Err(Refused::TooShort)),
        Err(OpenError::NoKeyMatches) => assert_eq!(unwrapped, Err(Refused::UnknownKey)),
    }
}

/// Seals a payload taken from `data` and checks that it comes back, and that no one-byte change gets through.
/// Layout of `data`: a flags byte (bit 0: which keyring seals, bits 1-2: the context, bits 3-5: which bit
/// of each byte the tamper check flips first), the nonce, then the payload.
fn check_round_trip(one: &Keyring, rotating: &Keyring, data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut nonce = [0u8; NONCE_BYTES];
    let nonce_len = rest.len().min(NONCE_BYTES);
    nonce[..nonce_len].copy_from_slice(&rest[..nonce_len]);
    let payload = &rest[nonce_len..];
    let payload = &payload[..payload.len().min(ROUND_TRIP_PAYLOAD_BYTES_MAX)];
    let (sealer, other) = if flags & 1 == 0 { (one, rotating) } else { (rotating, one) };
    let context_index = usize::from(flags >> 1) % CONTEXTS.len();
    let context = CONTEXTS[context_index];

    let envelope = keyring::wrap(Some(sealer), true, payload, context, nonce);
    assert_eq!(envelope.len(), payload.len() + ENVELOPE_OVERHEAD_BYTES_MAX);
    assert_eq!(envelope[0], ENVELOPE_SEALED);
    assert_eq!(&envelope[1..1 + NONCE_BYTES], &nonce, "the nonce follows the kind byte");
    for require_encrypted in [true, false] {
        assert_eq!(keyring::unwrap(Some(sealer), require_encrypted, &envelope, context).as_deref(), Ok(payload));
    }
    assert_eq!(keyring::unwrap(None, false, &envelope, context), Err(Refused::NoKeyring));
    for (i, wrong) in CONTEXTS.iter().enumerate().filter(|(i, _)| *i != context_index) {
        let unwrapped = keyring::unwrap(Some(sealer), true, &envelope, wrong);
        assert_eq!(unwrapped, Err(Refused::UnknownKey), "sealed for context {context_index}, opened for {i}");
    }
    // `rotating` still holds `one`'s key, so what `one` seals opens there; `rotating` seals under a key `one`
    // never had.
    let under_other = keyring::unwrap(Some(other), true, &envelope, context);
    if other.contains(sealer.primary()) {
        assert_eq!(under_other.as_deref(), Ok(payload), "a key still installed opens");
    } else {
        assert_eq!(under_other, Err(Refused::UnknownKey), "a key never installed does not open");
    }

    for i in 0..envelope.len() {
        let mut tampered = envelope.clone();
        tampered[i] ^= 1 << ((usize::from(flags >> 3) + i) % 8);
        // `require_encrypted` decides only about plain packets, so past the kind byte one setting is enough.
        let settings: &[bool] = if i == 0 { &[true, false] } else { &[true] };
        for &require_encrypted in settings {
            let unwrapped = keyring::unwrap(Some(sealer), require_encrypted, &tampered, context);
            match (i, tampered[0]) {
                // A changed kind byte: another kind, or plain, whose body is the sealed bytes, not the payload.
                (0, ENVELOPE_PLAIN) if !require_encrypted => {
                    assert_eq!(unwrapped.as_deref(), Ok(&envelope[1..]));
                }
                (0, ENVELOPE_PLAIN) => assert_eq!(unwrapped, Err(Refused::Plaintext)),
                (0, kind) => assert_eq!(unwrapped, Err(Refused::UnknownKind(kind))),
                _ => assert_eq!(unwrapped, Err(Refused::UnknownKey), "byte {i} changed and still opened"),
            }
        }
    }
    let shortened = keyring::unwrap(Some(sealer), true, &envelope[..envelope.len() - 1], context);
    assert!(matches!(shortened, Err(Refused::UnknownKey | Refused::TooShort)), "{shortened:?}");
    let longer = [&envelope[..], &[0]].concat();
    assert_eq!(keyring::unwrap(Some(sealer), true, &longer, context), Err(Refused::UnknownKey));

    let plain = keyring::wrap(Some(sealer), false, payload, context, nonce);
    assert_eq!(plain, [&[ENVELOPE_PLAIN][..], payload].concat(), "encrypt_verify_outgoing off sends plain");
    assert_eq!(keyring::unwrap(Some(sealer), false, &plain, context).as_deref(), Ok(payload));
    assert_eq!(keyring::unwrap(Some(sealer), true, &plain, context), Err(Refused::Plaintext));
}
