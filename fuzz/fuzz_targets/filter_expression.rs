//! Fuzzes `?filter=` expressions (the go-bexpr subset): any text parses or gives a 400, never a panic or a
//! stack overflow; a parsed filter evaluates against an agent service and a catalog row.
#![no_main]

use conclave_core::api::filter::parse_filter;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let filter = match parse_filter(text) {
        Ok(Some(filter)) => filter,
        Ok(None) => return,
        Err(error) => {
            assert_eq!(error.status, 400, "{error:?}");
            return;
        }
    };
    let service = json!({"ID": "web1", "Service": "web", "Tags": ["a", "b"], "Port": 80,
        "Meta": {"env": "prod"}, "Weights": {"Passing": 1, "Warning": 1}, "Address": ""});
    let row = json!({"Node": "n1", "ServiceName": "web", "ServiceTags": [], "NodeMeta": null});
    let _ = filter.matches(&service);
    let _ = filter.matches(&row);
});
