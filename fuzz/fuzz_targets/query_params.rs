//! Fuzzes query-string parsing as every endpoint does it (`index`, `wait`, `stale`/`consistent`, `tag`,
//! `node-meta`, `filter`, presence flags): any query parses or gives a 400, never a panic.
#![no_main]

use conclave::http::QueryParams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match QueryParams::parse(Some(text)) {
        Ok(params) => {
            let _ = params.flag("recurse");
            let _ = params.check_datacenter("dc1");
            let _ = params.keep(&serde_json::json!({"ID": "x", "Tags": ["a"]}));
        }
        Err(error) => assert_eq!(error.status.as_u16(), 400, "{}", error.message),
    }
});
