//! Fuzzes the KV-side bodies: `PUT /v1/session/create` and `PUT /v1/txn`. Any bytes decode or give a
//! 4xx, never a panic; a decoded transaction applies to a catalog (all or nothing) keeping its invariants,
//! and a read-only one gives the same answer through `read_txn` as through a Raft apply.
#![no_main]

use conclave_core::api::{decode_session_create, decode_txn};
use conclave_core::kv::TxnOp;
use conclave_core::state::{Command, Response, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(error) = decode_session_create(data, "agent") {
        assert!((400..500).contains(&error.status), "{error:?}");
    }
    let ops = match decode_txn(data) {
        Ok(ops) => ops,
        Err(error) => {
            assert!((400..500).contains(&error.status), "{error:?}");
            return;
        }
    };
    let mut catalog = State::new();
    let read_only = ops.iter().all(TxnOp::is_read).then(|| catalog.read_txn(&ops));
    let response = catalog.apply(1, &Command::Txn(ops));
    catalog.assert_invariants();
    let Response::Txn(outcome) = response else { panic!("a transaction answered {response:?}") };
    if let Some(read) = read_only {
        assert_eq!(read, outcome);
    }
});
