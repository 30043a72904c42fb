//! Fuzzes `PUT /v1/catalog/register` and `/v1/catalog/deregister` bodies: any bytes decode or give a 4xx,
//! never a panic; what decodes applies to a catalog without breaking its invariants, and the catalog
//! survives a snapshot round trip.
#![no_main]

use conclave_core::api::{decode_catalog_deregister, decode_catalog_register};
use conclave_core::catalog::CatalogCommand;
use conclave_core::codec;
use conclave_core::state::{Command, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut catalog = State::new();
    match decode_catalog_register(data) {
        Ok(request) => {
            catalog.apply(1, &Command::Catalog(CatalogCommand::Register(request)));
            catalog.assert_invariants();
        }
        Err(error) => assert!((400..500).contains(&error.status), "{error:?}"),
    }
    match decode_catalog_deregister(data) {
        Ok(request) => {
            catalog.apply(2, &Command::Catalog(CatalogCommand::Deregister(request)));
            catalog.assert_invariants();
        }
        Err(error) => assert!((400..500).contains(&error.status), "{error:?}"),
    }
    let restored = codec::decode_snapshot(&codec::encode_snapshot(&catalog)).expect("snapshot restores");
    assert_eq!(restored, catalog);
});
