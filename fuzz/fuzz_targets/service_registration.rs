//! Fuzzes the service registration payload (`PUT /v1/agent/service/register`): any bytes either decode
//! to a valid definition or give a 4xx error, never a panic; a definition that decodes re-encodes to JSON
//! that decodes to the same definition, and becomes a catalog registration that applies cleanly.
#![no_main]

use conclave_core::api::{decode_service_definition, encode};
use conclave_core::catalog::CatalogCommand;
use conclave_core::catalog::NodeSpec;
use conclave_core::state::{Command, Response, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let definition = match decode_service_definition(data) {
        Ok(definition) => definition,
        Err(error) => {
            assert!((400..500).contains(&error.status), "decode errors are client errors: {error:?}");
            return;
        }
    };
    let json = encode::service_definition_json(&definition).to_string();
    let again = decode_service_definition(json.as_bytes()).expect("re-encoded definition decodes");
    assert_eq!(definition, again, "round trip through JSON");

    let node = NodeSpec { node: "fuzz".into(), address: "10.0.0.1".into(), ..NodeSpec::default() };
    let mut catalog = State::new();
    let response = catalog.apply(1, &Command::Catalog(CatalogCommand::Register(definition.to_register_request(&node))));
    assert_eq!(response, Response::Applied);
    catalog.assert_invariants();
});
