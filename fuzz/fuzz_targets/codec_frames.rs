//! Fuzzes the codec that carries Raft entries, RPC payloads and snapshots: arbitrary bytes decode or are
//! refused (unknown version, trailing bytes, bad lengths), never a panic or a huge allocation; what
//! decodes re-encodes to the same bytes' value.
#![no_main]

use conclave_core::codec;
use conclave_core::state::{Command, Proposal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(proposal) = codec::decode::<Proposal>(data) {
        let again: Proposal = codec::decode(&codec::encode(&proposal)).expect("re-encoded proposal decodes");
        assert_eq!(again, proposal);
    }
    if let Ok(command) = codec::decode::<Command>(data) {
        let again: Command = codec::decode(&codec::encode(&command)).expect("re-encoded command decodes");
        assert_eq!(again, command);
    }
    if let Ok(catalog) = codec::decode_snapshot(data) {
        let _ = codec::encode_snapshot(&catalog);
    }
});
